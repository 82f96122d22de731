"""Random bad inputs (the attack of docs/reliability.md, in small): every call either
works or raises ValueError / TypeError; an input known to be bad is always rejected,
one known to be good always accepted; and a rejected call leaves an already fitted
model exactly as it was (its pickled state and its predictions)."""

import pickle
import random
import warnings

import numpy as np
import pytest
import torch

from sklenet import LeNet5Classifier

N_TRIALS = 120
GOOD_PARAMS = dict(max_epochs=1, random_state=0, validation_fraction=None, batch_size="auto",
                   image_shape=None, random_shift=0, callbacks=None, class_weight=None,
                   optimizer="adam", warm_start=False)

# Each generator returns ``(value, bad)``: ``bad`` is True for an input that must be
# rejected, False for one that must be accepted, None where it depends on the rest.


def _X(rng, nrng, n_features, fuzz=True):
    kind = rng.choice(["shape", "dtype", "values", "list"]) if fuzz else "good"
    if kind == "good":
        return nrng.rand(40, n_features).astype(np.float32), False
    if kind == "shape":
        shape = [rng.choice([0, 1, 2, 3, 8, 40]) for _ in range(rng.randint(1, 5))]
        X = nrng.rand(*shape)
        channels_last = len(shape) == 4 and shape[1] not in (1, 3, 4) and shape[3] in (1, 3, 4)
        return X, True if len(shape) == 1 or 0 in shape or channels_last else None
    if kind == "dtype":
        dtype = rng.choice([np.int8, np.uint8, np.float16, np.float64, np.bool_, object, str,
                            np.complex64])
        bad = {np.complex64: True, object: None, str: None}.get(dtype, False)
        return (nrng.rand(40, n_features) * 10).astype(dtype), bad
    if kind == "values":
        X = nrng.rand(40, n_features)
        value = rng.choice([np.nan, np.inf, -np.inf, 1e300])
        X[rng.randrange(40), rng.randrange(n_features)] = value
        return X, True if not np.isfinite(value) else None
    width = rng.choice([n_features - 1, n_features, n_features + 1])
    X = [[rng.random() for _ in range(width)] for _ in range(rng.choice([1, 40]))]
    return X, False if (width, len(X)) == (n_features, 40) else None


def _y(rng, n, fuzz=True):
    base = np.arange(n) % 4
    if not fuzz:
        return base, False if n > 1 else None  # one sample is one class: fit refuses it
    return rng.choice([
        (base, False if n > 1 else None),
        (base.astype(str), None),  # labels a model fitted on ints does not know
        (base + 0.5, True),  # continuous
        (None, True),
        (base.reshape(-1, 1, 1), True),
        (base[:-1], True),  # one label short
        (np.array([str(v) if v % 2 else int(v) for v in base], dtype=object),
         True if n > 1 else None),
        (np.ones((n, 4)), True),  # not one-hot
    ])


def _weights(rng, n, fuzz=True):
    if not fuzz:
        return np.ones(n), False
    return rng.choice([(np.ones(3), True if n != 3 else False),
                       (-np.ones(n), True if n else None), ("w", True)])


def _params(rng, fuzz=True):
    if not fuzz:
        return {}, False
    return rng.choice([
        ({"image_shape": (8, 8)}, None),
        ({"image_shape": rng.choice([(-8, -8), (8.5, 8), (64,), (1, 1, 1, 64), "88"])}, True),
        ({"random_shift": rng.choice([3, 8])}, None), ({"random_shift": 100}, True),
        ({"batch_size": rng.choice([1, 10**6])}, False),
        ({"callbacks": rng.choice([[1], ["x"], [("a", 1)]])}, True),
        ({"class_weight": "balanced"}, False),
        ({"class_weight": rng.choice([{0: 2.0}, {99: 1.0}])}, None),
        ({"optimizer": "adamw"}, False),
        ({"lr": 1e30}, None),  # diverges: refused after the data was read
        ({"optimizer": rng.choice([torch.optim.LBFGS, int])}, True),
    ])


def _verdict(*flags):
    """True if any input is bad, False if all are good, None if it is not known."""
    if any(flag is True for flag in flags):
        return True
    return False if all(flag is False for flag in flags) else None


def _call(clf, method, X, y, weight):
    if method == "predict_proba":
        clf.predict_proba(X)
    elif method == "partial_fit":
        clf.partial_fit(X, y)
    elif method == "fit_weighted":
        clf.fit(X, y, sample_weight=weight)
    else:
        clf.fit(X, y)


@pytest.mark.filterwarnings("ignore")
def test_random_bad_inputs_are_rejected_cleanly_and_change_nothing():
    rng, nrng = random.Random(0), np.random.RandomState(0)
    good_X, good_y = nrng.rand(40, 64).astype(np.float32), np.arange(40) % 4
    pickled = pickle.dumps(LeNet5Classifier(**GOOD_PARAMS).fit(good_X, good_y))
    reference = pickle.loads(pickled).predict_proba(good_X)
    counts = {"rejected": 0, "accepted": 0, "rejected on a fitted model": 0}
    for _ in range(N_TRIALS):
        method = rng.choice(["fit", "fit_weighted", "warm_fit", "partial_fit",
                             "predict_proba"])
        on_fitted = method in ("warm_fit", "partial_fit", "predict_proba") or rng.random() < 0.5
        # Mostly one input at a time is fuzzed, the others are good: a bad input is then
        # rejected for its own sake, not for a worse one beside it. Two at a time make
        # calls that fail late, after the data was read (other X, then a bad y or lr).
        fuzzed = rng.sample(["X", "X", "y", "weight", "params"], rng.choice([0, 1, 1, 1, 2]))
        X, X_bad = _X(rng, nrng, 64, "X" in fuzzed)
        n = len(X)
        y, y_bad = _y(rng, n, "y" in fuzzed)
        weight, weight_bad = _weights(rng, n, "weight" in fuzzed)
        params, params_bad = _params(rng, "params" in fuzzed and method != "predict_proba")
        clf = pickle.loads(pickled) if on_fitted else LeNet5Classifier(**GOOD_PARAMS)
        clf.set_params(**params, warm_start=method == "warm_fit")
        if method == "predict_proba":
            bad = _verdict(X_bad)
        elif method == "partial_fit":
            if "random_shift" in params:  # checked against the images of a first call only
                params_bad = None
            if params.get("class_weight") == "balanced":  # refused by partial_fit
                params_bad = True
            bad = _verdict(X_bad, y_bad, params_bad)
        else:
            bad = _verdict(X_bad, y_bad, params_bad,
                           weight_bad if method == "fit_weighted" else False)
        before = pickle.dumps(clf)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _call(clf, method, X, y, weight)
        except (ValueError, TypeError) as error:
            assert bad is not False, f"{method} refused good input: {error}"
            counts["rejected"] += 1
            if on_fitted:
                counts["rejected on a fitted model"] += 1
                assert pickle.dumps(clf) == before, f"a rejected {method} changed the model"
                np.testing.assert_array_equal(clf.predict_proba(good_X), reference)
            continue
        assert bad is not True, f"{method} accepted bad input: X {X_bad}, y {y_bad}, {params}"
        counts["accepted"] += 1
    # The attack did both: it was refused and it went through, on fitted models too.
    assert min(counts.values()) >= 15, counts
