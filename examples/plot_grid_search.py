"""
Tuning LeNet-5 with GridSearchCV
================================

:class:`~sklenet.LeNet5Classifier` is an ordinary scikit-learn estimator, so
its parameters can be tuned by :class:`~sklearn.model_selection.GridSearchCV`.
Here we search over the learning rate, the activation function and the pooling
layers on the digits data set, with 3-fold cross-validation.
"""

import os

QUICK = os.environ.get("SKLENET_EXAMPLES_QUICK") == "1"  # CI: tiny run

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from sklenet import LeNet5Classifier

X, y = load_digits(return_X_y=True)
if QUICK:
    X, y = X[:300], y[:300]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The search
# ----------
# The cross-validation folds already set data aside, so the per-epoch
# validation split is switched off (``validation_fraction=0``) and every fit
# trains on its whole training fold. ``n_jobs`` works as for any estimator,
# but each fit already uses the available cores through PyTorch.
param_grid = {
    "lr": [1e-3, 3e-3],
    "activation": ["tanh", "relu"],
    "pooling": ["max", "avg"],
}
base = LeNet5Classifier(max_epochs=1 if QUICK else 8, validation_fraction=0, random_state=0)
search = GridSearchCV(base, param_grid, cv=2 if QUICK else 3)
search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"best cross-validated accuracy: {search.best_score_:.3f}")
print(f"test accuracy of the refitted best model: {search.score(X_test, y_test):.3f}")

# %%
# All the candidates
# ------------------
results = search.cv_results_
labels = [
    f"lr={p['lr']:g}\n{p['activation']}, {p['pooling']}" for p in results["params"]
]
order = np.argsort(results["mean_test_score"])
fig, ax = plt.subplots(figsize=(7, 5))
ax.barh(
    np.arange(len(order)),
    results["mean_test_score"][order],
    xerr=results["std_test_score"][order],
    color="tab:blue",
    alpha=0.8,
)
ax.set_yticks(np.arange(len(order)), [labels[i] for i in order], fontsize=8)
ax.set_xlabel("mean cross-validated accuracy")
ax.set_title("GridSearchCV over LeNet-5 parameters")
fig.tight_layout()
plt.show()
