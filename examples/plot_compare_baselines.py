"""
LeNet-5 against SVC and a random forest
=======================================

Because :class:`~sklenet.LeNet5Classifier` follows the scikit-learn API, it can
be compared with any other classifier using the same cross-validation tools.
Here :func:`~sklearn.model_selection.cross_val_score` evaluates LeNet-5 and two
of the study's baselines, built by :func:`sklenet.study.make_baseline` (an RBF
support vector machine on standardized pixels and a random forest), on the
same 5 folds of the digits data set.
"""

import os

QUICK = os.environ.get("SKLENET_EXAMPLES_QUICK") == "1"  # CI: tiny run

# %%
# Models
# ------
# ``make_baseline`` gives the baselines exactly as ``sklenet reproduce`` runs
# them: the SVC gets its pixels standardized in a pipeline, the random forest
# needs no scaling. LeNet-5 learns the input scale itself.
import time

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold, cross_val_score

from sklenet import LeNet5Classifier
from sklenet.study import BASELINES, make_baseline

X, y = load_digits(return_X_y=True)
if QUICK:
    X, y = X[:300], y[:300]

forest = make_baseline("random-forest", random_state=0)
if QUICK:
    forest.set_params(n_estimators=20)
models = {
    # The default number of epochs is enough on digits: 15 or 30 score about the same.
    "LeNet-5": LeNet5Classifier(random_state=0),
    "SVC (RBF)": make_baseline("svc", random_state=0),
    "Random forest": forest,
}
if QUICK:
    models["LeNet-5"].set_params(max_epochs=1)
for name in ("svc", "random-forest"):
    print(f"{name}: {BASELINES[name][0]}")

# %%
# Cross-validation
# ----------------
cv = StratifiedKFold(n_splits=3 if QUICK else 5, shuffle=True, random_state=0)
scores = {}
for name, model in models.items():
    start = time.perf_counter()
    scores[name] = cross_val_score(model, X, y, cv=cv)
    elapsed = time.perf_counter() - start
    print(f"{name:14s} accuracy {scores[name].mean():.3f} +/- {scores[name].std():.3f}"
          f"  ({elapsed:.1f} s)")

# %%
# Plot the scores of each fold
# ----------------------------
fig, ax = plt.subplots(figsize=(6, 4))
ax.boxplot(list(scores.values()), tick_labels=list(scores))
for i, fold_scores in enumerate(scores.values(), start=1):
    ax.plot([i] * len(fold_scores), fold_scores, "o", color="tab:red", alpha=0.6)
ax.set_ylabel("accuracy per fold")
ax.set_title("Cross-validated accuracy on digits")
ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
plt.show()
