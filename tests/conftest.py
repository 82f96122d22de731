import hashlib
import os
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

from sklenet import _options, datasets

#: The device every estimator the suite builds trains and predicts on, from one
#: switch: ``SKLENET_TEST_DEVICE=cuda python -m pytest`` runs the whole suite on
#: the GPU (each estimator's default ``device="auto"`` resolves to it); unset or
#: ``cpu``, the suite runs on the CPU even where a GPU is present.
TEST_DEVICE = os.environ.get("SKLENET_TEST_DEVICE", "cpu").strip().lower() or "cpu"
CUDA = torch.cuda.is_available()

# CI clones the repository in some folder with a copy of shared/ beside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _find_data(spec):
    """The directory holding the four original files of ``spec``, or None.

    ``SKLENET_DATA_HOME`` is looked at first (the files directly in it, or in
    its ``fashion-mnist`` / ``mnist`` subdirectory), then ``../shared/data``.
    A directory counts only if its test labels are the official ones, so that
    a ``SKLENET_DATA_HOME`` holding MNIST is not taken for Fashion-MNIST.
    """
    candidates = [SHARED_DATA / spec.dirname]
    env = os.environ.get(datasets.DATA_HOME_ENV, "").strip()
    if env:
        candidates[:0] = [Path(env).expanduser(), Path(env).expanduser() / spec.dirname]
    labels = "t10k-labels-idx1-ubyte.gz"
    for directory in candidates:
        if all((directory / f).is_file() for f in spec.files) and hashlib.md5(
                (directory / labels).read_bytes()).hexdigest() == spec.files[labels][0]:
            return directory
    return None


# Read when the tests are collected: test modules may clear SKLENET_DATA_HOME
# for their own tests afterwards.
DATA_DIRS = {s.dirname: _find_data(s) for s in (datasets._FASHION_MNIST, datasets._MNIST)}


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_raises():
    # A shell without job control starts background jobs (`pytest &`) with
    # SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # the Ctrl-C tests need Python's own.
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # CI machines have 2 cores; more threads than cores only adds noise.
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def digits():
    """sklearn's 8x8 digits: (X float 0-16 flat rows, y ints)."""
    X, y = load_digits(return_X_y=True)
    return X, y


def _data_dir(name):
    if DATA_DIRS[name] is None:
        pytest.skip(f"the {name} files are neither in ${datasets.DATA_HOME_ENV} nor in "
                    f"{SHARED_DATA / name}")
    return DATA_DIRS[name]


@pytest.fixture(scope="session")
def fashion_dir():
    """Directory of the original Fashion-MNIST files (skips the test without them)."""
    return _data_dir("fashion-mnist")


@pytest.fixture(scope="session")
def mnist_dir():
    """Directory of the original MNIST files (skips the test without them)."""
    return _data_dir("mnist")


def pytest_configure(config):
    config.addinivalue_line("markers", "cpu_only: the test is about a machine without CUDA")
    if TEST_DEVICE not in ("cpu", "cuda"):
        raise pytest.UsageError(
            f"SKLENET_TEST_DEVICE must be 'cpu' or 'cuda', got {TEST_DEVICE!r}."
        )


def pytest_collection_modifyitems(config, items):
    if TEST_DEVICE == "cuda" and not CUDA:
        skip = pytest.mark.skip(
            reason="SKLENET_TEST_DEVICE=cuda, but PyTorch sees no CUDA device here")
    elif CUDA:
        skip = pytest.mark.skip(reason="about a machine without CUDA; this one has it")
        items = [item for item in items if item.get_closest_marker("cpu_only")]
    else:
        return
    for item in items:
        item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _test_device():
    """Make ``device="auto"`` resolve to :data:`TEST_DEVICE` in this process."""
    from sklenet import classifier

    resolve = _options.resolve_device
    with pytest.MonkeyPatch.context() as patch:
        for module in (_options, classifier):
            patch.setattr(module, "resolve_device",
                          lambda device: resolve(TEST_DEVICE if device == "auto" else device))
        yield TEST_DEVICE


@pytest.fixture(scope="session")
def device():
    """The suite's device (:data:`TEST_DEVICE`), for tests that name one."""
    return TEST_DEVICE


@pytest.fixture
def isolated_download_env(tmp_path, monkeypatch):
    """No user data home, a private scikit-learn data home, no proxies."""
    from sklenet import _download

    for var in (datasets.DATA_HOME_ENV, _download.DOWNLOAD_TIMEOUT_ENV, "http_proxy",
                "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn_data"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(_download, "READ_TIMEOUT", 5)
