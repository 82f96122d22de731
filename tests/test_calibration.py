"""Calibrated probabilities: the temperature fitted on the validation rows (issue 19)."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pytest
from scipy.special import softmax
from sklearn.metrics import log_loss

import sklenet
from sklenet import LeNet5Classifier, _training
from sklenet._calibration import (
    expected_calibration_error,
    fit_temperature,
    temperature_log_loss,
)
from sklenet._input import split_validation
from sklenet.classifier import _draw_seed

# Short fits on the digits; label smoothing leaves the network under-confident,
# so the fitted temperature is well below 1 (pinned: the test needs a T far from 1,
# whatever the default).
FAST = dict(max_epochs=4, label_smoothing=0.1, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    train, valid = order[:1300], order[1300:]
    return X[train], y[train], X[valid], y[valid]


@pytest.fixture(scope="module")
def pair(split):
    """The same fit with and without calibration, on explicit validation data."""
    X, y, X_val, y_val = split
    calibrated = LeNet5Classifier(**FAST).fit(X, y, validation_data=(X_val, y_val))
    raw = LeNet5Classifier(calibration=None, **FAST).fit(X, y, validation_data=(X_val, y_val))
    return calibrated, raw


def _relative_logits(clf, X):
    """The logits of ``X`` up to a constant per row (all a softmax depends on)."""
    return clf.predict_log_proba(X) * clf.temperature_


def assert_minimizes_log_loss(clf, X_val, y_val, sample_weight=None):
    """``clf.temperature_`` is the best temperature for the rows ``(X_val, y_val)``,
    checked against nearby temperatures and 1.0 (not with ``fit_temperature``)."""
    logits = _relative_logits(clf, X_val)
    y = np.searchsorted(clf.classes_, y_val)
    t = clf.temperature_

    def loss(temperature):
        return temperature_log_loss(logits, y, temperature, sample_weight)

    assert loss(t) < loss(t * 1.01) and loss(t) < loss(t / 1.01)
    assert loss(t) < loss(1.0)


# ------------------------------------------------------------- the estimator


def test_calibration_changes_no_prediction(pair, split):
    calibrated, raw = pair
    X_val = split[2]
    assert raw.temperature_ == 1.0
    assert 0.2 < calibrated.temperature_ < 0.9  # label smoothing: sharpened
    np.testing.assert_array_equal(calibrated.predict(X_val), raw.predict(X_val))
    proba, raw_proba = calibrated.predict_proba(X_val), raw.predict_proba(X_val)
    np.testing.assert_array_equal(proba.argmax(axis=1), raw_proba.argmax(axis=1))
    assert calibrated.score(X_val, split[3]) == raw.score(X_val, split[3])
    # The same network; its logits divided by the temperature.
    np.testing.assert_allclose(
        proba, softmax(np.log(raw_proba) / calibrated.temperature_, axis=1), atol=1e-12)
    np.testing.assert_allclose(calibrated.predict_log_proba(X_val), np.log(proba), atol=1e-12)
    assert proba.max(axis=1).mean() > raw_proba.max(axis=1).mean()


def test_temperature_lowers_the_validation_log_loss(pair, split):
    calibrated, raw = pair
    X_val, y_val = split[2:]
    assert log_loss(y_val, calibrated.predict_proba(X_val)) < 0.8 * log_loss(
        y_val, raw.predict_proba(X_val))
    assert_minimizes_log_loss(calibrated, X_val, y_val)


def test_temperature_is_fitted_on_the_estimators_own_validation_rows(digits):
    X, y = digits
    clf = LeNet5Classifier(**FAST).fit(X, y)
    _, valid = split_validation(y, clf.validation_fraction, _draw_seed(FAST["random_state"]))
    assert_minimizes_log_loss(clf, X[valid], y[valid])


def test_temperature_follows_the_validation_weights(split):
    X, y, X_val, y_val = split
    # Weight the rows the network gets wrong or is unsure of most: a different
    # optimum from the unweighted one.
    w_val = np.where(y_val % 3 == 0, 5.0, 0.5)
    clf = LeNet5Classifier(**FAST).fit(X, y, validation_data=(X_val, y_val, w_val))
    assert_minimizes_log_loss(clf, X_val, y_val, w_val)
    unweighted = LeNet5Classifier(**FAST).fit(X, y, validation_data=(X_val, y_val))
    assert abs(clf.temperature_ - unweighted.temperature_) > 1e-3


def test_temperature_is_fitted_on_the_logits_predict_proba_uses(split):
    # Test-time flips average each image's logits with its mirror image's: the
    # temperature must be fitted on those, not on the plain logits.
    X, y, X_val, y_val = split
    clf = LeNet5Classifier(test_time_flip=True, **FAST).fit(
        X, y, validation_data=(X_val, y_val))
    assert_minimizes_log_loss(clf, X_val, y_val)


@pytest.mark.parametrize("fraction", [0, None])
def test_no_validation_split_means_no_calibration(digits, fraction):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # documented, silent: the default warns no one
        clf = LeNet5Classifier(validation_fraction=fraction, **FAST).fit(X[:500], y[:500])
    assert clf.temperature_ == 1.0
    logits = _relative_logits(clf, X[:50])
    np.testing.assert_allclose(clf.predict_proba(X[:50]), softmax(logits, axis=1), atol=1e-12)


def test_too_few_samples_to_split_means_no_calibration(digits):
    X, y = digits
    with pytest.warns(UserWarning, match="without validation"):
        clf = LeNet5Classifier(validation_fraction=0.9, **FAST).fit(X[:2], [0, 1])
    assert clf.temperature_ == 1.0


def test_invalid_calibration_is_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match="calibration"):
        LeNet5Classifier(calibration="isotonic").fit(X[:100], y[:100])


def test_partial_fit_resets_the_temperature(pair, split):
    X, y, X_val, _ = split
    clf = pickle.loads(pickle.dumps(pair[0]))
    assert clf.temperature_ != 1.0
    clf.partial_fit(X, y)
    assert clf.temperature_ == 1.0
    fresh = LeNet5Classifier(**FAST).partial_fit(X, y, classes=np.unique(y))
    assert fresh.temperature_ == 1.0


def test_warm_start_fit_refits_the_temperature_for_its_network(pair, split):
    X, y, X_val, y_val = split
    clf = pickle.loads(pickle.dumps(pair[0]))
    before = clf.temperature_
    clf.set_params(warm_start=True, max_epochs=2)
    clf.fit(X, y, validation_data=(X_val, y_val))
    assert clf.n_iter_ == 6
    assert clf.temperature_ != before
    assert_minimizes_log_loss(clf, X_val, y_val)
    # A continued fit without validation rows has nothing to fit it on.
    clf.set_params(validation_fraction=None).fit(X, y)
    assert clf.temperature_ == 1.0


def test_calibration_none_after_a_calibrated_fit(pair, split):
    X, y, X_val, y_val = split
    clf = pickle.loads(pickle.dumps(pair[0]))
    clf.set_params(calibration=None).fit(X, y, validation_data=(X_val, y_val))
    assert clf.temperature_ == 1.0
    np.testing.assert_array_equal(clf.predict_proba(X_val), pair[1].predict_proba(X_val))


@pytest.mark.parametrize("where", ["training", "calibration"])
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_failed_fit_leaves_the_temperature_unchanged(pair, split, monkeypatch, where, exc):
    X, y, X_val, y_val = split
    clf = pickle.loads(pickle.dumps(pair[0]))
    before, proba = clf.temperature_, clf.predict_proba(X_val)

    def fail(*args, **kwargs):
        raise exc("interrupted")

    if where == "training":
        monkeypatch.setattr(_training, "train_epochs", fail)
    else:
        monkeypatch.setattr(sklenet.classifier, "fit_temperature", fail)
    with pytest.raises(exc):
        clf.set_params(random_state=1).fit(X, y, validation_data=(X_val, y_val))
    assert clf.temperature_ == before
    np.testing.assert_array_equal(clf.predict_proba(X_val), proba)


# ------------------------------------------------------------- persistence


def _assert_same_probabilities(loaded, original, X):
    assert loaded.temperature_ == original.temperature_
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict_log_proba(X), original.predict_log_proba(X))


def test_temperature_survives_pickle_and_joblib(pair, split):
    calibrated = pair[0]
    _assert_same_probabilities(pickle.loads(pickle.dumps(calibrated)), calibrated, split[2])
    buffer = io.BytesIO()
    joblib.dump(calibrated, buffer)
    buffer.seek(0)
    _assert_same_probabilities(joblib.load(buffer), calibrated, split[2])


def test_temperature_survives_skops(pair, split, tmp_path):
    sio = pytest.importorskip("skops.io")
    calibrated = pair[0]
    path = tmp_path / "model.skops"
    sio.dump(calibrated, path)
    loaded = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    _assert_same_probabilities(loaded, calibrated, split[2])


def test_temperature_survives_a_model_file(pair, split, tmp_path):
    pytest.importorskip("safetensors")
    calibrated = pair[0]
    path = tmp_path / "model.sklenet"
    sklenet.save(calibrated, path)
    loaded = sklenet.load(path)
    _assert_same_probabilities(loaded, calibrated, split[2])
    assert loaded.get_params()["calibration"] == "temperature"


def test_onnx_export_applies_the_temperature(split):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    X, y, X_val, y_val = split
    # float32 convolutions: the graph's arithmetic (bfloat16 would differ by ~1e-2).
    clf = LeNet5Classifier(precision="float32", **FAST).fit(
        X, y, validation_data=(X_val, y_val))
    assert abs(clf.temperature_ - 1.0) > 0.1
    model = sklenet.to_onnx(clf)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    label, proba = session.run(["label", "probabilities"],
                               {"input": X_val.astype(np.float32)})
    assert np.abs(proba - clf.predict_proba(X_val)).max() <= 1e-5
    np.testing.assert_array_equal(label, clf.predict(X_val))


# ------------------------------------------------------------- the functions


def _reference_ece(y, proba, n_bins, weight):
    """ECE by the textbook loop over bins ((b - 1) / n_bins, b / n_bins]."""
    confidence, predicted = proba.max(axis=1), proba.argmax(axis=1)
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        in_bin = (confidence > lo) & (confidence <= hi)
        if b == 0:
            in_bin |= confidence == 0
        if weight[in_bin].sum() > 0:
            accuracy = np.average(predicted[in_bin] == y[in_bin], weights=weight[in_bin])
            mean_confidence = np.average(confidence[in_bin], weights=weight[in_bin])
            total += weight[in_bin].sum() * abs(accuracy - mean_confidence)
    return total / weight.sum()


def test_expected_calibration_error_by_hand():
    proba = np.array([[0.95, 0.05], [0.85, 0.15], [0.35, 0.65], [0.45, 0.55]])
    y = np.array([0, 1, 1, 0])
    # One bin: accuracy 2/4 against mean confidence (0.95+0.85+0.65+0.55)/4 = 0.75.
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(0.25)
    # Ten bins: every sample alone, |1-0.95| + |0-0.85| + |1-0.65| + |0-0.55| over 4.
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(1.8 / 4)
    labels = np.array(["b", "a"])  # column 0 is "b"
    assert expected_calibration_error(labels[y], proba, n_bins=10, labels=labels) == (
        pytest.approx(1.8 / 4))


def test_expected_calibration_error_matches_the_textbook_loop():
    rng = np.random.default_rng(0)
    proba = softmax(3 * rng.normal(size=(2000, 10)), axis=1)
    y = rng.integers(0, 10, 2000)
    weight = rng.random(2000)
    for n_bins in (1, 15, 40):
        assert expected_calibration_error(y, proba, n_bins=n_bins) == pytest.approx(
            _reference_ece(y, proba, n_bins, np.ones(2000)))
        assert expected_calibration_error(y, proba, n_bins=n_bins, sample_weight=weight) == (
            pytest.approx(_reference_ece(y, proba, n_bins, weight)))


def test_expected_calibration_error_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(0)
    proba = softmax(2 * rng.normal(size=(50_000, 5)), axis=1)
    y = np.array([rng.choice(5, p=p) for p in proba])  # labels drawn from proba
    assert expected_calibration_error(y, proba) < 0.01
    over_confident = softmax(np.log(proba) * 3, axis=1)
    assert expected_calibration_error(y, over_confident) > 0.1


def test_expected_calibration_error_rejects_bad_input():
    proba = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match="column indices"):
        expected_calibration_error(np.array([0.0, 1.0, 0.0]), proba)
    with pytest.raises(ValueError, match="outside"):
        expected_calibration_error(np.array([0, 2, 0]), proba)
    with pytest.raises(ValueError, match="not in labels"):
        expected_calibration_error(np.array(["a", "c", "a"]), proba, labels=["a", "b"])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(np.array([0, 1, 0]), proba, n_bins=0)


def test_fit_temperature_recovers_the_true_temperature():
    rng = np.random.default_rng(0)
    logits = 4 * rng.normal(size=(20_000, 10))
    y = np.array([rng.choice(10, p=p) for p in softmax(logits / 2.5, axis=1)])
    assert fit_temperature(logits, y) == pytest.approx(2.5, rel=0.05)
    # The optimum shifts with the logits: a network twice as confident needs twice the T.
    assert fit_temperature(2 * logits, y) == pytest.approx(2 * fit_temperature(logits, y),
                                                          rel=1e-4)


def test_fit_temperature_weights_count_as_copies():
    rng = np.random.default_rng(1)
    logits = 3 * rng.normal(size=(500, 4))
    y = rng.integers(0, 4, 500)
    weight = rng.integers(0, 4, 500)
    repeated = fit_temperature(np.repeat(logits, weight, axis=0), np.repeat(y, weight))
    assert fit_temperature(logits, y, weight) == pytest.approx(repeated, rel=1e-4)
    assert fit_temperature(logits, y, weight.astype(float) / 7) == pytest.approx(repeated,
                                                                               rel=1e-4)


def test_fit_temperature_degenerate_rows_give_one():
    logits = np.array([[3.0, 0.0], [0.0, 2.0], [1.0, -1.0]])
    assert fit_temperature(logits[:0], np.array([], dtype=int)) == 1.0
    assert fit_temperature(logits, np.array([0, 1, 0]), np.zeros(3)) == 1.0
    # Every row right: the log-loss falls without end as T -> 0; nothing to fit.
    assert fit_temperature(logits, np.array([0, 1, 0])) == 1.0
    # The only wrong row weighs nothing: the same.
    assert fit_temperature(logits, np.array([0, 1, 1]), [1.0, 1.0, 0.0]) == 1.0
    # One wrong row of weight: a finite temperature that beats 1.0.
    t = fit_temperature(logits, np.array([0, 1, 1]))
    assert 0.01 < t < 100 and t != 1.0
    assert temperature_log_loss(logits, [0, 1, 1], t) < temperature_log_loss(logits, [0, 1, 1],
                                                                              1.0)
