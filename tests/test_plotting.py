"""The figures of ``sklenet.plotting``: what they hold, not how they look."""

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from sklenet import LeNet5Classifier, plotting  # noqa: E402

NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X[:400], y[:400])
    return clf, X[400:], y[400:]


def _colorbars(fig):
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_learned_features_layout(fitted):
    clf, X, y = fitted
    fig = plotting.plot_learned_features(clf, X, y, target_names=NAMES, title="digits")
    images = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    # 6 filters, then per class: the image, 6 C1 maps, 16 C3 maps.
    assert len(images) == 6 + 10 * (1 + 6 + 16)
    # One colour bar each for the filters, the C1 maps and the C3 maps, all labelled.
    assert sorted(cb.get_ylabel() or cb.get_xlabel() for cb in _colorbars(fig)) == [
        "C1 output", "C3 output", "weight"]
    titles = [ax.get_title() for ax in images]
    assert titles[:6] == [f"filter {i}" for i in range(1, 7)]
    # Each class's row starts with its image, titled with the class name.
    row_starts = titles[6::23]
    assert row_starts == NAMES
    assert titles[7:13] == [f"C1 {k}" for k in range(1, 7)]
    assert titles[13:29] == [f"C3 {k}" for k in range(1, 17)]
    assert fig._suptitle.get_text() == "digits"


def test_learned_features_show_the_network(fitted):
    clf, X, y = fitted
    fig = plotting.plot_learned_features(clf, X, y, max_classes=2)
    images = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    weights = clf.net_.module_.lenet5.c1.weight.detach().numpy()[:, 0]
    for ax, kernel in zip(images[:6], weights):
        np.testing.assert_allclose(ax.get_images()[0].get_array(), kernel, rtol=1e-6)
    # A feature map is the convolution of the (standardized) image: its shape says which.
    first_c1, first_c3 = images[7], images[13]
    assert first_c1.get_images()[0].get_array().shape == (28, 28)
    assert first_c3.get_images()[0].get_array().shape == (10, 10)
    # Without target names, the labels themselves; classes missing from y are left out.
    assert [images[6].get_title(), images[6 + 23].get_title()] == ["0", "1"]
    # The hooks are gone: predictions work as before.
    assert not clf.net_.module_.lenet5.c1._forward_hooks
    assert clf.predict(X[:3]).shape == (3,)


def test_learned_features_need_a_known_class(fitted):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match="none of the classes"):
        plotting.plot_learned_features(clf, X[:3], np.array([42, 42, 42]))


def test_misclassified_most_confident_first():
    X = np.arange(5 * 16).reshape(5, 16)
    y = np.array([0, 1, 2, 0, 1])
    proba = np.array([
        [0.9, 0.05, 0.05],  # right
        [0.7, 0.2, 0.1],    # wrong, 70%
        [0.05, 0.9, 0.05],  # wrong, 90%
        [0.1, 0.1, 0.8],    # wrong, 80%
        [0.2, 0.7, 0.1],    # right
    ])
    fig = plotting.plot_misclassified(X, y, proba, target_names=["cat", "dog", "emu"])
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in shown] == [
        "true: emu\npredicted: dog (90%)",
        "true: cat\npredicted: emu (80%)",
        "true: dog\npredicted: cat (70%)",
    ]
    np.testing.assert_array_equal(shown[0].get_images()[0].get_array(), X[2].reshape(4, 4))
    assert "most confident mistakes" in fig._suptitle.get_text()


def test_misclassified_with_labels_and_a_cap(fitted):
    clf, X, y = fitted
    proba = clf.predict_proba(X)
    wrong = np.sum(clf.predict(X) != y)
    assert wrong > 4  # one short epoch: mistakes to show
    fig = plotting.plot_misclassified(X, y, proba, classes=clf.classes_, n_images=4,
                                      n_cols=2)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 4 and len(fig.axes) == 4
    confidences = [float(ax.get_title().rsplit("(", 1)[1].rstrip("%)")) for ax in shown]
    assert confidences == sorted(confidences, reverse=True)
    for ax in shown:
        true, predicted = (line.split(": ")[1].split(" ")[0]
                           for line in ax.get_title().splitlines())
        assert true != predicted


def test_misclassified_without_mistakes():
    fig = plotting.plot_misclassified(np.zeros((2, 4)), [0, 1], np.eye(2))
    assert [t.get_text() for t in fig.axes[0].texts] == ["no misclassified images"]


def test_misclassified_checks_lengths():
    with pytest.raises(ValueError, match="hold 2, 3 and 2 samples"):
        plotting.plot_misclassified(np.zeros((2, 4)), [0, 1, 1], np.eye(2))


def test_loss_curves_say_what_they_measure(fitted):
    # With label smoothing the training loss is that objective, not the
    # validation's plain log-loss, and the legend must not let it pass for one.
    clf, _, _ = fitted
    assert clf.label_smoothing == 0
    fig = plotting.plot_history(clf, "loss")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == [
        "training loss", "validation log-loss"]
    fig = plotting.plot_history(clf.history_, "loss", label_smoothing=0.1, label="a")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == [
        "a: training loss (label-smoothed objective)", "a: validation log-loss"]


def test_learned_features_use_the_public_interface(fitted, monkeypatch):
    # The figure reads the fitted network through public attributes only, and its
    # feature maps are those of the network's batch-invariant inference.
    from sklenet import _training

    clf, X, y = fitted
    monkeypatch.delattr(LeNet5Classifier, "_images")
    fig = plotting.plot_learned_features(clf, X, y, max_classes=1)
    first = int(np.flatnonzero(y == clf.classes_[0])[0])
    images = plotting._network_input(clf, X[[first]])
    maps = _training.layer_outputs(clf.net_, images, ["c1", "c3"])
    shown = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    np.testing.assert_array_equal(shown[7].get_images()[0].get_array(), maps["c1"][0, 0])
    np.testing.assert_array_equal(shown[13].get_images()[0].get_array(), maps["c3"][0, 0])


def test_reliability_curve_and_diagram(fitted):
    clf, X, y = fitted
    proba = clf.predict_proba(X)
    accuracy, confidence, counts = plotting.reliability_curve(y, proba, classes=clf.classes_)
    assert counts.sum() == len(y) and np.all(counts > 0)
    # Each point: the accuracy and mean confidence of its bin of 15.
    top = proba.max(axis=1)
    right = clf.classes_[proba.argmax(axis=1)] == y
    bins = np.ceil(top * 15)
    for acc, conf, n, b in zip(accuracy, confidence, counts, np.unique(bins)):
        assert n == np.sum(bins == b)
        assert acc == pytest.approx(right[bins == b].mean())
        assert conf == pytest.approx(top[bins == b].mean())
    fig = plotting.plot_reliability(accuracy, confidence, counts=counts, ece=0.0123,
                                    label="LeNet-5", title="digits")
    ax = fig.axes[0]
    assert "LeNet-5 (ECE 1.23%)" in ax.get_legend_handles_labels()[1]
    curve = [line for line in ax.get_lines() if line.get_label().startswith("LeNet-5")][0]
    np.testing.assert_allclose(curve.get_xdata(), confidence)
    np.testing.assert_allclose(curve.get_ydata(), accuracy)
    assert sum(patch.get_height() for patch in ax.patches) == pytest.approx(1.0)


def test_drawing_what_results_hold():
    # A study's results hold counts and chosen mistakes, not predictions.
    fig = plotting.plot_confusion_matrix_counts([[5, 1], [0, 4]], display_labels=["a", "b"],
                                                title="counts")
    assert [t.get_text() for t in fig.axes[0].texts] == ["5", "1", "0", "4"]
    fig = plotting.plot_mistakes(np.arange(32).reshape(2, 16), ["a", "b"], ["b", "a"],
                                 [0.9, 0.6], n_cols=2)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in shown] == ["true: a\npredicted: b (90%)",
                                                "true: b\npredicted: a (60%)"]
    with pytest.raises(ValueError, match="hold 2, 1, 2 and 2 entries"):
        plotting.plot_mistakes(np.zeros((2, 4)), ["a"], ["b", "a"], [0.9, 0.6])
