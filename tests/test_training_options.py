"""Training options of issue 12: batch_size="auto", lr_schedule="onecycle",
label_smoothing, random_erasing, ema_decay, test_time_flip."""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sklenet import LeNet5Classifier
from sklenet._batching import ImageAugmentation, auto_batch_size
from sklenet._callbacks import ONECYCLE_START_DIV, onecycle_lr


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


@pytest.mark.parametrize("n, want", [(0, 32), (500, 32), (1077, 32), (10_000, 64),
                                     (25_000, 128), (48_000, 256), (1_000_000, 256)])
def test_auto_batch_size(n, want):
    assert auto_batch_size(n) == want


def test_onecycle_lr_shape():
    total, lr = 200, 1e-2
    lrs = [onecycle_lr(t, total, lr, warmup=0.15) for t in range(total)]
    n_warm = 30
    start = lr / ONECYCLE_START_DIV
    assert lrs[0] == pytest.approx(start + (lr - start) / n_warm)
    assert max(lrs) == pytest.approx(lr)
    assert int(np.argmax(lrs)) == n_warm - 1
    assert all(a <= b for a, b in zip(lrs[:n_warm], lrs[1:n_warm]))
    assert all(a >= b for a, b in zip(lrs[n_warm:], lrs[n_warm + 1:]))
    assert lrs[-1] == pytest.approx(0.0, abs=1e-12)
    # No warm-up: a per-batch cosine decay.
    assert onecycle_lr(0, 10, 1.0, warmup=0) == pytest.approx(0.5 * (1 + math.cos(math.pi / 10)))


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_erasing_zeroes_one_rectangle(dtype):
    X = torch.full((64, 1, 28, 28), 7, dtype=dtype)
    out = ImageAugmentation(erasing=1.0)(X, torch.Generator().manual_seed(0))
    assert out.dtype == dtype and out.shape == X.shape
    for image in out[:, 0]:
        rows, cols = torch.nonzero(image == 0, as_tuple=True)
        assert len(rows) > 0
        h = int(rows.max() - rows.min()) + 1
        w = int(cols.max() - cols.min()) + 1
        assert len(rows) == h * w  # one filled rectangle
        assert 0.3 * 28 * 28 * 0.02 <= h * w <= 0.33 * 28 * 28 + 2 * 28
    assert torch.equal(X, torch.full_like(X, 7))  # input untouched


def test_random_erasing_probability_and_determinism():
    X = torch.ones(2000, 1, 28, 28)
    aug = ImageAugmentation(erasing=0.25)
    a = aug(X, torch.Generator().manual_seed(1))
    b = aug(X, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    erased = (a == 0).flatten(1).any(1).float().mean().item()
    assert 0.2 < erased < 0.3
    assert torch.equal(ImageAugmentation(erasing=0.0)(X, torch.Generator()), X)


def test_new_options_fit_predict(digits):
    X, y = digits
    clf = LeNet5Classifier(
        batch_size="auto", lr_schedule="onecycle", lr=3e-3, label_smoothing=0.1,
        random_erasing=0.5, ema_decay=0.9, test_time_flip=True, max_epochs=3,
        random_state=0,
    ).fit(X, y)
    assert clf.batch_size_ == 32
    # The one-cycle schedule ends at 0.
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)
    proba = clf.predict_proba(X[:50])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    # Test-time flips keep predictions independent of the batch.
    one_by_one = np.vstack([clf.predict_proba(X[i:i + 1]) for i in range(7)])
    np.testing.assert_array_equal(one_by_one, proba[:7])
    again = LeNet5Classifier(**clf.get_params()).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X[:50]), proba)


def test_test_time_flip_averages_mirrored_logits(digits):
    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y)
    images = X.reshape(-1, 8, 8)
    plain = clf._logits(X[:20])
    mirrored = clf._logits(images[:20, :, ::-1].reshape(20, -1).copy())
    clf.test_time_flip = True
    np.testing.assert_allclose(clf._logits(X[:20]), 0.5 * (plain + mirrored), atol=1e-5)


def test_partial_fit_ignores_onecycle(digits):
    X, y = digits
    clf = LeNet5Classifier(lr_schedule="onecycle", lr=2e-3, random_state=0)
    clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(2e-3)


@pytest.mark.parametrize("params", [
    {"label_smoothing": 1.0}, {"label_smoothing": -0.1}, {"random_erasing": 1.5},
    {"ema_decay": 1.0}, {"batch_size": "big"}, {"lr_schedule": "step"},
    {"test_time_flip": "yes"},
])
def test_invalid_new_options(params, digits):
    X, y = digits
    with pytest.raises(ValueError):
        LeNet5Classifier(max_epochs=1, **params).fit(X, y)
