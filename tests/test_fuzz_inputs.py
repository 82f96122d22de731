"""Random bad inputs (the attack of docs/reliability.md, in small): every call either
works or raises ValueError / TypeError, and a rejected call leaves a fitted model's
predictions bit-identical."""

import random
import warnings

import numpy as np
import pytest
import torch

from sklenet import LeNet5Classifier

N_TRIALS = 80


def _bad_X(rng, nrng):
    kind = rng.choice(["shape", "dtype", "values", "list"])
    if kind == "shape":
        return nrng.rand(*[rng.choice([0, 1, 2, 3, 8, 40]) for _ in range(rng.randint(1, 5))])
    if kind == "dtype":
        dtype = rng.choice([np.int8, np.uint8, np.float16, np.float64, np.bool_, object, str,
                            np.complex64])
        return (nrng.rand(40, 64) * 10).astype(dtype)
    if kind == "values":
        X = nrng.rand(40, 64)
        X[rng.randrange(40), rng.randrange(64)] = rng.choice([np.nan, np.inf, -np.inf, 1e300])
        return X
    return [[rng.random() for _ in range(rng.choice([63, 64, 65]))]
            for _ in range(rng.choice([1, 40]))]


def _bad_y(rng, n):
    base = np.arange(n) % 4
    return rng.choice([
        base, base.astype(str), base + 0.5, None, base.reshape(-1, 1, 1), base[:-1],
        np.array([str(v) if v % 2 else int(v) for v in base], dtype=object),
        np.ones((n, 4)),
    ])


def _bad_params(rng):
    return rng.choice([
        {}, {"image_shape": rng.choice([(8, 8), (-8, -8), (8.5, 8), (64,), (1, 1, 1, 64),
                                        "88"])},
        {"random_shift": rng.choice([3, 8, 100])}, {"batch_size": rng.choice([1, "auto", 10**6])},
        {"callbacks": rng.choice([[1], ["x"], [("a", 1)]])},
        {"class_weight": rng.choice(["balanced", {0: 2.0}, {99: 1.0}])},
        {"optimizer": rng.choice(["adamw", torch.optim.LBFGS, int])},
    ])


@pytest.mark.filterwarnings("ignore")
def test_random_bad_inputs_are_rejected_cleanly_and_change_nothing():
    rng, nrng = random.Random(0), np.random.RandomState(0)
    good_X, good_y = nrng.rand(40, 64).astype(np.float32), np.arange(40) % 4
    fitted = LeNet5Classifier(max_epochs=1, random_state=0, validation_fraction=None)
    fitted.fit(good_X, good_y)
    reference = fitted.predict_proba(good_X)
    for _ in range(N_TRIALS):
        X = _bad_X(rng, nrng)
        n = len(X)
        y = _bad_y(rng, n)
        method = rng.choice(["fit", "fit_weighted", "partial_fit", "predict_proba"])
        on_fitted = method in ("partial_fit", "predict_proba")
        clf = fitted if on_fitted else LeNet5Classifier(max_epochs=1, validation_fraction=None)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if not on_fitted:
                    clf.set_params(**_bad_params(rng))
                if method == "predict_proba":
                    clf.predict_proba(X)
                elif method == "partial_fit":
                    clf.partial_fit(X, y)
                elif method == "fit_weighted":
                    clf.fit(X, y, sample_weight=rng.choice([np.ones(3), -np.ones(n), "w"]))
                else:
                    clf.fit(X, y)
        except (ValueError, TypeError):
            if on_fitted:
                np.testing.assert_array_equal(fitted.predict_proba(good_X), reference)
            continue
        if method == "partial_fit":  # it worked: the model moved on, take it as the new reference
            reference = fitted.predict_proba(good_X)
