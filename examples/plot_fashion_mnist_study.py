"""
Fashion-MNIST with the study's protocol
=======================================

The protocol of *"Classification of Fashion-MNIST Dataset by Using LeNet-5"*:
LeNet-5 with tanh activations and average pooling, trained on Fashion-MNIST
with one-hot labels and a softmax output, with 20% of the training set held out
(stratified) for validation, loss and accuracy followed epoch by epoch, and a
final evaluation on the official test set.

The data is read with :func:`sklenet.datasets.fetch_fashion_mnist` from the
directory named by ``SKLENET_DATA_HOME`` (or the scikit-learn data home), and
downloaded when missing. Without the files and without a network the example
falls back to scikit-learn's digits and says so. The full reproduction, with
baselines and a report, is ``sklenet reproduce``.
"""

import os

QUICK = os.environ.get("SKLENET_EXAMPLES_QUICK") == "1"  # CI: tiny run

# %%
# Load the data
# -------------
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sklenet import LeNet5Classifier
from sklenet.datasets import FASHION_MNIST_CLASSES, fetch_fashion_mnist

data_home = os.environ.get("SKLENET_DATA_HOME")
try:
    X_train, y_train = fetch_fashion_mnist(
        subset="train", data_home=data_home, download_if_missing=not QUICK, return_X_y=True
    )
    X_test, y_test = fetch_fashion_mnist(
        subset="test", data_home=data_home, download_if_missing=not QUICK, return_X_y=True
    )
    target_names = list(FASHION_MNIST_CLASSES)
    image_size = 28
except (OSError, ValueError) as exc:  # no local files and no network
    print(f"Fashion-MNIST is not available ({type(exc).__name__}); using digits instead.")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    target_names = [str(d) for d in range(10)]
    image_size = 8

if QUICK:  # a stratified subset, for a run of a few seconds
    X_train, _, y_train, _ = train_test_split(
        X_train, y_train, train_size=600, stratify=y_train, random_state=0
    )
    X_test, y_test = X_test[:300], y_test[:300]
print(f"training set {X_train.shape}, test set {X_test.shape}")

# %%
# One-hot labels
# --------------
# The study encodes the labels one-hot. ``LeNet5Classifier`` accepts one-hot
# rows as ``y`` directly (and then predicts one-hot rows); plain integer labels
# work just as well.
Y_train = np.eye(10, dtype=np.int64)[y_train]
print(Y_train[:3])

# %%
# Train with the study's configuration
# ------------------------------------
# ``activation="tanh"`` and ``pooling="avg"`` are the study's network (the
# library defaults are tanh and max pooling). ``validation_fraction=0.2``
# holds out a stratified 20% of the training set, reported each epoch.
clf = LeNet5Classifier(
    activation="tanh",
    pooling="avg",
    validation_fraction=0.2,
    max_epochs=2 if QUICK else 10,
    random_state=0,
    verbose=1,
)
clf.fit(X_train, Y_train)

# %%
# Learning curves
# ---------------
# ``history_`` holds one record per epoch.
history = clf.history_
epochs = [h["epoch"] for h in history]
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
for split in ("train", "valid"):
    ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], "o-", label=split)
    ax_acc.plot(epochs, [h[f"{split}_accuracy"] for h in history], "o-", label=split)
ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
for ax in (ax_loss, ax_acc):
    ax.legend()
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout()

# %%
# Test set
# --------
# Predictions come back one-hot, like the labels the model was trained on;
# ``argmax`` turns them back into class numbers.
Y_pred = clf.predict(X_test)
y_pred = Y_pred.argmax(axis=1)
print(f"test accuracy: {np.mean(y_pred == y_test):.3f}")

fig, ax = plt.subplots(figsize=(7, 6))
ConfusionMatrixDisplay.from_predictions(
    y_test, y_pred, labels=np.arange(10), display_labels=target_names,
    xticks_rotation=60, colorbar=False, ax=ax,
)
ax.set_title("Confusion matrix on the test set")
fig.tight_layout()

# %%
# Some test images
# ----------------
fig, axes = plt.subplots(2, 6, figsize=(10, 4))
for ax, image, true, pred in zip(axes.ravel(), X_test, y_test, y_pred):
    ax.imshow(image.reshape(image_size, image_size), cmap="gray_r")
    ax.set_title(target_names[pred], color="black" if pred == true else "red", fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
