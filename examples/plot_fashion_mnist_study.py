"""
Fashion-MNIST with the study's protocol
=======================================

The protocol of *"Classification of Fashion-MNIST Dataset by Using LeNet-5"*:
LeNet-5 with tanh activations and average pooling, trained on Fashion-MNIST
with one-hot labels and a softmax output, with 20% of the training set held out
(stratified) for validation, loss and accuracy followed epoch by epoch, and a
final evaluation on the official test set.

The data comes from :func:`sklenet.study.load_study_data`, the loader of
``sklenet reproduce``: Fashion-MNIST from the directory named by
``SKLENET_DATA_HOME`` (or the scikit-learn data home), downloaded when missing;
without the files and without a network it falls back to scikit-learn's digits
and says so. The figures are those of :mod:`sklenet.plotting`, including what the network
learned and its most confident mistakes. The full
reproduction, with baselines and a report, is ``sklenet reproduce``, or
:func:`sklenet.study.run_study` followed by :func:`sklenet.report.write_report`.
"""

import os

QUICK = os.environ.get("SKLENET_EXAMPLES_QUICK") == "1"  # CI: tiny run

# %%
# Load the data
# -------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklenet import LeNet5Classifier
from sklenet.plotting import (plot_confusion_matrix, plot_history, plot_learned_features,
                              plot_misclassified, plot_samples)
from sklenet.study import load_study_data, recipe_params

data = load_study_data("auto", download=not QUICK)
X_train, y_train = data["X_train"], data["y_train"]
X_test, y_test = data["X_test"], data["y_test"]
target_names = data["target_names"]

if QUICK:  # a stratified subset, for a run of a few seconds
    X_train, _, y_train, _ = train_test_split(
        X_train, y_train, train_size=600, stratify=y_train, random_state=0
    )
    X_test, y_test = X_test[:300], y_test[:300]
print(f"{data['name']}: training set {X_train.shape}, test set {X_test.shape}")

fig = plot_samples(X_train, y_train, target_names=target_names, n_per_class=2,
                   image_shape=data["image_shape"], title="Sample training images")

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
# The ``"study"`` recipe is the study's network, ``activation="tanh"`` and
# ``pooling="avg"``, with the study's training: Adam at 1e-3 with cosine
# decay, batches of 128, 20 epochs (the library defaults differ: max pooling
# and a few one-cycle epochs). ``validation_fraction=0.2`` holds out a stratified
# 20% of the training set, reported each epoch. Here the recipe trains for 10
# epochs, to keep the example short.
params = recipe_params("study")
print(params)
params["max_epochs"] = 2 if QUICK else 10
clf = LeNet5Classifier(**params, validation_fraction=0.2, random_state=0, verbose=1)
clf.fit(X_train, Y_train)

# %%
# Learning curves
# ---------------
# ``history_`` holds one record per epoch; ``plot_history`` draws the
# training and validation curves of a fitted model.
fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
plot_history(clf, "loss", ax=ax_loss, title="Loss")
plot_history(clf, "accuracy", ax=ax_acc, title="Accuracy")

# %%
# Test set
# --------
# Predictions come back one-hot, like the labels the model was trained on;
# ``argmax`` turns them back into class numbers.
Y_pred = clf.predict(X_test)
y_pred = Y_pred.argmax(axis=1)
print(f"test accuracy: {np.mean(y_pred == y_test):.3f}")

fig = plot_confusion_matrix(y_test, y_pred, target_names=target_names,
                            title="Confusion matrix on the test set")

# %%
# The most confident mistakes
# ---------------------------
# The test images the network got wrong while most sure of itself, with the
# probability it gave to its wrong answer. Compare the pairs of classes with
# the confusion matrix above: some of these images would puzzle a person too.
proba = clf.predict_proba(X_test)  # one column per one-hot position, as classes_
fig = plot_misclassified(X_test, y_test, proba, target_names=target_names,
                         image_shape=data["image_shape"])

# %%
# What the network learned
# ------------------------
# C1's six 5x5 filters, and what C1 and C3 compute from one test image of
# each class: edge and stroke detectors in C1, parts of shapes in C3.
# ``plot_learned_features`` takes them with forward hooks on the network's
# ``c1`` and ``c3`` layers.
fig = plot_learned_features(clf, X_test, y_test, target_names=target_names,
                            title="What LeNet-5 learned")
plt.show()
