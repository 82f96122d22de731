"""
Quick start: LeNet-5 on the digits data set
===========================================

Train :class:`~sklenet.LeNet5Classifier` on scikit-learn's bundled 8x8 digits
(resized to 28x28 inside the network), evaluate it on a held-out test set and
look at a few predictions with their probabilities. No download is needed.
"""

import os

QUICK = os.environ.get("SKLENET_EXAMPLES_QUICK") == "1"  # CI: tiny run

# %%
# Load the data
# -------------
# ``X`` holds one flat row of 64 pixels per image; ``LeNet5Classifier`` reads
# square rows as images, so nothing needs reshaping.
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from sklenet import LeNet5Classifier

X, y = load_digits(return_X_y=True)
if QUICK:
    X, y = X[:400], y[:400]
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print(f"{X_train.shape[0]} training images, {X_test.shape[0]} test images")

# %%
# Train
# -----
# ``verbose=1`` prints one line per epoch: training and validation loss and
# accuracy (20% of the training data is held out for validation by default)
# and the time taken. ``random_state`` makes the run reproducible. The defaults
# (a few epochs of one-cycle Adam, batches sized to the data) suit small data
# sets like this one as well as Fashion-MNIST's 48,000 training images.
clf = LeNet5Classifier(verbose=1, random_state=0)
if QUICK:
    clf.set_params(max_epochs=2)
clf.fit(X_train, y_train)

# %%
# Evaluate
# --------
# ``score`` is the accuracy, as for every scikit-learn classifier;
# ``predict_proba`` gives the softmax output, one column per class in
# ``classes_``.
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
proba = clf.predict_proba(X_test[:1])
print("classes:      ", clf.classes_)
print("probabilities:", proba.round(2))

# %%
# Look at some predictions
# ------------------------
y_pred = clf.predict(X_test)
fig, axes = plt.subplots(2, 8, figsize=(10, 3))
for ax, image, true, pred in zip(axes.ravel(), X_test, y_test, y_pred):
    ax.imshow(image.reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{pred}" if pred == true else f"{pred} (true {true})",
                 color="black" if pred == true else "red", fontsize=9)
    ax.axis("off")
fig.suptitle("Predicted labels on test images")
fig.tight_layout()
plt.show()
