"""Inputs and parameters a hostile (or unlucky) user passes: every one either
trains a sound model or is refused with a ValueError that names what is wrong,
and the estimator is never left half-changed (docs/reliability.md)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.utils._param_validation import InvalidParameterError

from sklenet import LeNet5Classifier, LeNet5Features
from sklenet._callbacks import NonFiniteTrainingError

REPO = Path(__file__).resolve().parents[1]
FAST = dict(max_epochs=1, random_state=0, validation_fraction=None)


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:200].astype(np.float32), y[:200]


def fitted_state(clf):
    return {key: value for key, value in vars(clf).items() if key.endswith("_")}


# ------------------------------------------------- building the network


def test_building_the_network_imports_no_compiler_machinery():
    """Construction used to import sympy (through meta ``empty_like``), a second
    of imports a Ctrl-C could cut short, breaking every later fit."""
    code = textwrap.dedent("""
        import sys
        import torch
        from sklenet._training import build_module
        architecture = dict(in_channels=1, n_classes=10, activation="tanh",
                            pooling="max", dropout=0.0)
        build_module(architecture, [0.0], [1.0], seed=0)
        build_module(architecture)
        print(sorted(m for m in ("sympy", "torch._dynamo",
                                 "torch.fx.experimental.symbolic_shapes")
                     if m in sys.modules))
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------ weights


@pytest.mark.parametrize("scale", [1e-320, 1e-40, 1e39, 1e308])
def test_uniform_weights_of_any_magnitude_train_as_weights_of_one(data, scale):
    X, y = data
    n = len(y)
    reference = LeNet5Classifier(**FAST).fit(X, y, sample_weight=np.ones(n))
    clf = LeNet5Classifier(**FAST).fit(X, y, sample_weight=np.full(n, scale))
    np.testing.assert_array_equal(clf.predict_proba(X), reference.predict_proba(X))
    partial = LeNet5Classifier(**FAST).partial_fit(
        X, y, classes=np.arange(10), sample_weight=np.full(n, scale))
    assert np.isfinite(partial.predict_proba(X)).all()


def test_weight_ratios_beyond_float32_keep_their_meaning(data):
    """A class weighted 1e308 times more than the others is the only one learned."""
    X, y = data
    for clf in (LeNet5Classifier(**FAST, class_weight={0: 1e308}).fit(X, y),
                LeNet5Classifier(**FAST, class_weight={0: 1e308}).partial_fit(
                    X, y, classes=np.arange(10)),
                LeNet5Classifier(**FAST).fit(X, y, sample_weight=np.where(y == 0, 1e308, 1.0))):
        proba = clf.predict_proba(X)
        assert np.isfinite(proba).all()


def test_balanced_class_weight_with_a_class_of_zero_weight(data):
    X, y = data
    clf = LeNet5Classifier(**FAST, class_weight="balanced")
    clf.fit(X, y, sample_weight=np.where(y == 3, 0.0, 1e300))
    assert np.isfinite(clf.predict_proba(X)).all()


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_weights_that_are_all_zero_are_refused_naming_them(data, method):
    X, y = data
    clf = LeNet5Classifier(**FAST, class_weight={c: 0.0 for c in range(10)})
    call = (lambda: clf.fit(X, y)) if method == "fit" else (
        lambda: clf.partial_fit(X, y, classes=np.arange(10)))
    with pytest.raises(ValueError, match=r"\(class_weight\) are 0 for every training sample"):
        call()
    assert not hasattr(clf, "net_")
    clf = LeNet5Classifier(**FAST, class_weight={c: 0.0 for c in range(1, 10)})
    with pytest.raises(ValueError, match=r"sample_weight times class_weight\) are 0"):
        clf.fit(X, y, sample_weight=np.where(y == 0, 0.0, 1.0))


def test_validation_weights_that_are_all_zero_are_refused_naming_them(data):
    X, y = data
    clf = LeNet5Classifier(**FAST, class_weight={0: 0.0})
    zeros = y == 0
    with pytest.raises(ValueError, match="are 0 for every sample of validation_data"):
        clf.fit(X, y, validation_data=(X[zeros], y[zeros]))
    clf = LeNet5Classifier(max_epochs=1, random_state=0, validation_fraction=0.2)
    weights = np.zeros(len(y))
    # Only a class-0 sample weighs: wherever the split puts it, one side is all 0.
    weights[np.flatnonzero(zeros)[0]] = 1.0
    with pytest.raises(ValueError, match="are 0 for every (training sample|sample of the "
                                         "validation split)"):
        clf.fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("weight", [np.nan, np.inf, -1.0, "a", True])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_class_weight_values_are_validated(data, weight, method):
    X, y = data
    clf = LeNet5Classifier(**FAST, class_weight={0: weight})
    with pytest.raises(InvalidParameterError, match="'class_weight' parameter"):
        clf.fit(X, y) if method == "fit" else clf.partial_fit(X, y, classes=np.arange(10))


# -------------------------------------------------- non-finite training


@pytest.mark.parametrize("params", [dict(lr=1e38),
                                    dict(weight_decay=1e38, lr=1e-3, optimizer="sgd")])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_diverging_training_raises_and_changes_nothing(data, params, method):
    X, y = data
    clf = LeNet5Classifier(**FAST).fit(X, y)
    before, proba = fitted_state(clf), clf.predict_proba(X)
    clf.set_params(**params)
    with pytest.raises(NonFiniteTrainingError, match="Training diverged.*likely too large"):
        clf.fit(X, y) if method == "fit" else clf.partial_fit(X, y)
    assert fitted_state(clf) == before
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
    fresh = LeNet5Classifier(**FAST, **params)
    with pytest.raises(ValueError, match="Training diverged"):
        fresh.fit(X, y) if method == "fit" else fresh.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(fresh, "net_")


@pytest.mark.parametrize("lr", [3e38, 1e37])
def test_divergence_in_the_last_step_of_an_epoch_is_caught(data, lr):
    """One batch per epoch: the loss of that batch is finite, the step after it
    makes the weights infinite (3e38) or so large that the output overflows (1e37)."""
    X, y = data
    clf = LeNet5Classifier(**FAST, lr=lr, batch_size=len(y), lr_schedule="constant",
                           precision="float32")
    with pytest.raises(NonFiniteTrainingError,
                       match="the network's (weights|output) became NaN or infinite"):
        clf.fit(X, y)


@pytest.mark.parametrize("param", ["lr", "weight_decay"])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_rates_beyond_float32_are_refused(data, param, method):
    """torch cannot apply them to float32 weights (SGD raised a RuntimeError)."""
    X, y = data
    clf = LeNet5Classifier(**FAST, optimizer="sgd", **{param: 1e300})
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter.*at most 3.4e"):
        clf.fit(X, y) if method == "fit" else clf.partial_fit(X, y, classes=np.arange(10))


# ------------------------------------------------------------ classes


@pytest.mark.parametrize("classes, match", [
    (list(range(10)) + [np.nan], "classes contains NaN"),
    (np.r_[np.arange(10.0), np.inf], "classes contains infinity"),
    (list(range(10)) + [None], "classes has missing labels"),
    (np.array([1, "a"], dtype=object), "classes mixes strings"),
    ([1, "a"], "classes mixes strings"),  # a list numpy would turn into strings
    (np.arange(10).reshape(2, 5), "classes must be a 1-d array"),
    (5, "classes must be a 1-d array"),
])
def test_partial_fit_refuses_classes_fit_would_refuse_as_labels(data, classes, match):
    X, y = data
    clf = LeNet5Classifier(**FAST)
    with pytest.raises(ValueError, match=match):
        clf.partial_fit(X, y, classes=classes)
    assert not hasattr(clf, "classes_")
    clf.partial_fit(X, y, classes=np.arange(10))
    with pytest.raises(ValueError, match=match):
        clf.partial_fit(X, y, classes=classes)


def test_validation_labels_outside_the_training_classes_are_named(data):
    X, y = data
    y_val = y[:20].copy()
    y_val[0] = 42
    with pytest.raises(ValueError, match=r"Invalid validation_data: y_val contains labels "
                                         r"\[42\]") as error:
        LeNet5Classifier(**FAST).fit(X, y, validation_data=(X[:20], y_val))
    assert "partial_fit" not in str(error.value)


# -------------------------------------------------------------- layouts


def test_channels_first_images_with_one_pixel_are_read_channels_first(data):
    X, y = data
    images = np.repeat(X[:, :, None, None], 5, axis=1)  # (n, 320, 1, 1)
    clf = LeNet5Classifier(**FAST).fit(images, y)
    assert clf.image_shape_ == (320, 1, 1)
    assert clf.predict(images).shape == y.shape


def test_channels_last_images_are_still_refused_with_both_fixes(data):
    X, y = data
    images = X.reshape(-1, 8, 8, 1)
    with pytest.raises(ValueError, match=r"channels-last.*transpose\(0, 3, 1, 2\).*"
                                         r"image_shape=\(8, 8, 1\)"):
        LeNet5Classifier(**FAST).fit(images, y)


# ------------------------------------------------------------ optimizers


@pytest.mark.parametrize("optimizer", [torch.optim.SparseAdam, torch.optim.Rprop,
                                       torch.optim.Optimizer, torch.optim.LBFGS])
def test_optimizers_that_cannot_train_the_network_are_refused(data, optimizer):
    X, y = data
    with pytest.raises(InvalidParameterError, match="'optimizer' parameter.*SparseAdam, "
                                                    "which needs sparse gradients"):
        LeNet5Classifier(**FAST, optimizer=optimizer).fit(X, y)


def test_an_optimizer_taking_any_keywords_is_accepted(data):
    X, y = data

    class Plain(torch.optim.SGD):
        def __init__(self, params, **kwargs):
            super().__init__(params, **kwargs)

    clf = LeNet5Classifier(**FAST, optimizer=Plain).fit(X, y)
    assert np.isfinite(clf.predict_proba(X)).all()


# ------------------------------------------------ LeNet5Features all-or-nothing


def _interrupt_at_line(fit, n_lines):
    """Run ``fit()`` with a KeyboardInterrupt raised at the ``n_lines``-th line
    LeNet5Features.fit executes (after its inner fit); True if it was raised."""
    code = LeNet5Features.fit.__wrapped__.__code__
    seen = []

    def local(frame, event, arg):
        if event == "line":
            seen.append(frame.f_lineno)
            if len(seen) == n_lines:
                raise KeyboardInterrupt
        return local

    def trace(frame, event, arg):
        return local if frame.f_code is code else None

    sys.settrace(trace)
    try:
        fit()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(None)
    return False


@pytest.mark.parametrize("before", ["unfitted", "fitted on a DataFrame"])
def test_lenet5features_fit_is_all_or_nothing_at_every_line(data, before):
    X, y = data
    X, y = X[:100], y[:100]
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(X.shape[1])])
    features = LeNet5Features(LeNet5Classifier(**FAST))
    if before != "unfitted":
        features.fit(frame, y)
    old = dict(vars(features))
    outcomes = []
    n_lines = 1
    while _interrupt_at_line(lambda: features.fit(X, y), n_lines):
        state = vars(features)
        if state.keys() == old.keys() and all(state[k] is v for k, v in old.items()):
            outcomes.append("unchanged")
        else:  # interrupted after the commit: the whole new model, nothing of the old
            assert sorted(state) == ["_n_features_out", "classifier", "classifier_",
                                     "n_features_in_"]
            assert state["classifier_"] is not old.get("classifier_")
            assert features.transform(X).shape == (100, 84)
            outcomes.append("new")
        features.__dict__ = dict(old)
        n_lines += 1
    # Every line of fit was interrupted once; all but the last (return) changed nothing.
    assert outcomes[:-1] == ["unchanged"] * (len(outcomes) - 1) and len(outcomes) > 3
    assert "feature_names_in_" not in vars(features)
    assert len(features.get_feature_names_out()) == 84
