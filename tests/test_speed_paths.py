"""Correctness of the fast paths: batching, layer order, precision and layout options.

No wall-clock assertions here: speed is measured by benchmarks/bench_speed.py.
"""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, Subset, TensorDataset

from sklenet import LeNet5, LeNet5Classifier
from sklenet import _speed
from sklenet._batching import BatchIterator, TensorSubset
from sklenet._pooling import MaxPool2x2
from sklenet.network import WholeInputConv2d

NATIVE_BF16 = _speed.cpu_has_native_bf16()
needs_bf16 = pytest.mark.skipif(
    not NATIVE_BF16,
    reason="this CPU has no native bfloat16 (AMX-BF16 / AVX512-BF16): bfloat16 would be "
           "emulated and slow, and precision='auto' falls back to float32",
)

# (precision, channels_last) combinations the estimator offers.
OPTIONS = [
    pytest.param("float32", False, id="float32-nchw"),
    pytest.param("float32", True, id="float32-channels_last"),
    pytest.param("bfloat16", True, id="bfloat16-channels_last", marks=needs_bf16),
    pytest.param("bfloat16", False, id="bfloat16-nchw", marks=needs_bf16),
    pytest.param("auto", True, id="auto-channels_last"),
]


# ------------------------------------------------------------------ batching


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100])
@pytest.mark.parametrize("seed", [0, 3])
def test_batch_iterator_matches_dataloader(batch_size, seed):
    """Same batches, in the same order, over several epochs as torch's DataLoader."""
    X = (torch.arange(90 * 4) % 251).to(torch.uint8).view(90, 1, 2, 2)
    y = torch.arange(90)
    rows = torch.arange(3, 90, 2)  # a subset, like a training split
    fast = BatchIterator(TensorSubset(X, y, rows), batch_size, shuffle=True, seed=seed)
    sampler = RandomSampler(
        range(len(rows)), generator=torch.Generator().manual_seed(seed)
    )
    plain = DataLoader(Subset(TensorDataset(X, y), rows.tolist()), batch_size=batch_size,
                       sampler=sampler)
    for _ in range(3):  # epochs: each draws a fresh permutation from the same stream
        got = list(fast)
        want = list(plain)
        assert len(got) == len(want) == len(fast)
        for (xb, yb), (xw, yw) in zip(got, want):
            assert torch.equal(xb, xw)
            assert torch.equal(yb, yw)
            assert xb.dtype == torch.uint8  # no conversion on the way


def test_batch_iterator_covers_every_sample_once_per_epoch():
    rows = torch.arange(0, 1000, 3)
    it = BatchIterator(TensorSubset(torch.zeros(1000, 1, 1, 1), torch.arange(1000), rows),
                       batch_size=64, shuffle=True, seed=1)
    orders = []
    for _ in range(2):
        seen = torch.cat([yb for _, yb in it])
        assert sorted(seen.tolist()) == rows.tolist()
        orders.append(seen)
    assert not torch.equal(orders[0], orders[1])  # reshuffled each epoch
    sizes = [len(yb) for _, yb in it]
    assert sizes == [64] * (len(rows) // 64) + [len(rows) % 64]


def test_batch_iterator_without_shuffle_is_sequential():
    X = torch.arange(10).view(10, 1, 1, 1)
    it = BatchIterator(TensorSubset(X, torch.arange(10)), batch_size=4)
    assert [yb.tolist() for _, yb in it] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ----------------------------------------------------------- network order


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_pool_before_activation_is_the_same_network(activation):
    """Max pooling commutes with monotonic activations: same values and gradients."""
    torch.manual_seed(0)
    net = LeNet5(1, 10, activation, "max").double()
    x = torch.randn(8, 1, 28, 28, dtype=torch.float64)

    def classic(x):
        x = net.s2(net.act1(net.c1(x)))
        x = net.s4(net.act3(net.c3(x)))
        x = net.flatten(net.act5(net.c5(x)))
        return net.output(net.act6(net.f6(x)))

    torch.testing.assert_close(net(x), classic(x), rtol=1e-12, atol=1e-12)
    g_fast = torch.autograd.grad(net(x).sum(), net.c1.weight)[0]
    g_classic = torch.autograd.grad(classic(x).sum(), net.c1.weight)[0]
    torch.testing.assert_close(g_fast, g_classic, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ kernels


def _channels_last(x):
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("shape", [(5, 6, 28, 28), (3, 16, 10, 10), (1, 1, 2, 2)])
def test_two_pass_max_pooling_equals_max_pool2d(shape):
    torch.manual_seed(0)
    x = torch.randn(shape)
    x[:, :, : shape[2] // 2] = 0.5  # plateaus: every window of the top half is a tie
    x = _channels_last(x).requires_grad_(True)
    out = MaxPool2x2()(x)
    want = torch.nn.functional.max_pool2d(x, 2)
    assert torch.equal(out, want)
    assert out.is_contiguous(memory_format=torch.channels_last)
    grad = torch.randn_like(want)
    (got,) = torch.autograd.grad(out, x, grad)
    # Each window passes its gradient, whole, to exactly one of its maxima.
    windows = got.unfold(2, 2, 2).unfold(3, 2, 2).reshape(*want.shape, 4)
    values = x.detach().unfold(2, 2, 2).unfold(3, 2, 2).reshape(*want.shape, 4)
    assert torch.equal(windows.sum(-1), grad)
    assert ((windows != 0).sum(-1) <= 1).all()
    hit = windows != 0
    assert torch.equal(values[hit], want.detach().unsqueeze(-1).expand_as(values)[hit])


@pytest.mark.parametrize("make", [
    pytest.param(lambda: torch.randn(2, 6, 8, 8), id="nchw"),
    pytest.param(lambda: _channels_last(torch.randn(2, 6, 8, 8, dtype=torch.float64)),
                 id="float64"),
    pytest.param(lambda: _channels_last(torch.randn(2, 6, 9, 7)), id="odd-size"),
])
def test_two_pass_max_pooling_falls_back_to_max_pool2d(make):
    x = make().requires_grad_(True)
    out = MaxPool2x2()(x)
    assert out.grad_fn.name().startswith("MaxPool2DWithIndices")
    assert torch.equal(out, torch.nn.functional.max_pool2d(x, 2))


@pytest.mark.parametrize("size, options", [
    (5, {}), (9, {}), (5, {"padding": 1}), (5, {"groups": 2}), (5, {"dilation": 2, "padding": 4}),
])
def test_whole_input_conv_is_the_convolution(size, options):
    torch.manual_seed(0)
    layer = WholeInputConv2d(16, 120, kernel_size=5, **options).double()
    conv = torch.nn.Conv2d(16, 120, kernel_size=5, **options).double()
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(4, 16, size, size, dtype=torch.float64)
    torch.testing.assert_close(layer(x), conv(x), rtol=1e-12, atol=1e-12)
    got = torch.autograd.grad(layer(x).sum(), layer.weight)[0]
    want = torch.autograd.grad(conv(x).sum(), conv.weight)[0]
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_bfloat16_autocast_keeps_pooling_activations_and_head_in_float32():
    net = LeNet5(pooling="max")
    seen = {}
    for name in ("c1", "s2", "act1", "c3", "c5", "f6", "output"):
        getattr(net, name).register_forward_hook(
            lambda mod, inp, out, name=name: seen.__setitem__(name, out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        net(torch.zeros(2, 1, 28, 28))
    assert seen == {"c1": torch.bfloat16, "s2": torch.float32, "act1": torch.float32,
                    "c3": torch.bfloat16, "c5": torch.float32, "f6": torch.float32,
                    "output": torch.float32}


# ------------------------------------------------------------------ options


@pytest.fixture(scope="module")
def small_digits(digits):
    X, y = digits
    return X[:512].astype(np.float32), y[:512], X[600:856].astype(np.float32), y[600:856]


_FITTED = {}


def _fit(data, precision, channels_last, seed=0, cached=True):
    """A small fit (512 digits, 4 epochs); ``cached`` reuses one made earlier."""
    key = (precision, channels_last, seed, id(data[0]))
    if cached and key in _FITTED:
        return _FITTED[key]
    X, y, _, _ = data
    clf = LeNet5Classifier(max_epochs=4, batch_size=32, lr=3e-3, validation_fraction=None,
                           precision=precision, channels_last=channels_last, device="cpu",
                           random_state=seed)
    clf.fit(X, y)
    if cached:
        _FITTED[key] = clf
    return clf


@pytest.mark.parametrize("precision, channels_last", OPTIONS)
def test_option_trains_predicts_and_reproduces(small_digits, precision, channels_last):
    _, _, X_test, y_test = small_digits
    clf = _fit(small_digits, precision, channels_last)
    assert clf.net_.channels_last is channels_last
    want = _speed.resolve_precision(precision, "cpu")
    assert clf.net_.amp_dtype == want
    assert clf.score(X_test, y_test) > 0.8
    proba = clf.predict_proba(X_test)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    # Same random_state, same configuration: identical predictions.
    again = _fit(small_digits, precision, channels_last, cached=False)
    np.testing.assert_array_equal(again.predict_proba(X_test), proba)
    # Bitwise independent of how the samples are batched.
    one_by_one = np.vstack([clf.predict_proba(X_test[i:i + 1]) for i in range(0, 256, 37)])
    np.testing.assert_array_equal(one_by_one, proba[0:256:37])
    np.testing.assert_array_equal(clf.predict_proba(X_test[::-1])[::-1], proba)


def test_channels_last_is_the_same_float32_arithmetic(small_digits):
    _, _, X_test, _ = small_digits
    nchw = _fit(small_digits, "float32", False)
    nhwc = _fit(small_digits, "float32", True)
    # Different summation order only: nearly all predictions agree.
    agree = np.mean(nchw.predict(X_test) == nhwc.predict(X_test))
    assert agree > 0.95
    w = nhwc.net_.module_.lenet5.c3.weight
    assert w.is_contiguous(memory_format=torch.channels_last)


@needs_bf16
def test_bfloat16_close_to_float32(small_digits):
    _, _, X_test, y_test = small_digits
    fp32 = _fit(small_digits, "float32", True)
    bf16 = _fit(small_digits, "bfloat16", True)
    assert abs(fp32.score(X_test, y_test) - bf16.score(X_test, y_test)) < 0.05
    # Weights stay float32; only the arithmetic is bfloat16.
    assert all(p.dtype == torch.float32 for p in bf16.net_.module_.parameters())


def test_auto_falls_back_to_float32_without_native_bf16(small_digits, monkeypatch):
    monkeypatch.setattr(_speed, "cpu_has_native_bf16", lambda: False)
    assert _speed.resolve_precision("auto", "cpu") is None
    _, _, X_test, _ = small_digits
    auto = _fit(small_digits, "auto", True, cached=False)
    assert auto.net_.amp_dtype is None
    fp32 = _fit(small_digits, "float32", True)
    np.testing.assert_array_equal(auto.predict_proba(X_test), fp32.predict_proba(X_test))


def test_resolve_precision():
    assert _speed.resolve_precision("float32", "cpu") is None
    assert _speed.resolve_precision("bfloat16", "cpu") is torch.bfloat16
    expected = torch.bfloat16 if NATIVE_BF16 else None
    assert _speed.resolve_precision("auto", "cpu") is expected
    with pytest.raises(ValueError, match="precision"):
        _speed.resolve_precision("float16", "cpu")


def test_invalid_precision_is_rejected(small_digits):
    X, y, _, _ = small_digits
    with pytest.raises(ValueError, match="precision"):
        LeNet5Classifier(precision="fp8").fit(X, y)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_auto_precision_on_cuda(small_digits):
    X, y, X_test, y_test = small_digits
    clf = LeNet5Classifier(max_epochs=3, precision="auto", device="cuda", random_state=0)
    clf.fit(X, y)
    assert clf.score(X_test, y_test) > 0.8
