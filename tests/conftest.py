import hashlib
import os
from pathlib import Path

import pytest
import torch
from sklearn.datasets import load_digits

from sklenet import datasets

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
