import pytest
import torch
from sklearn.datasets import load_digits
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    # CI machines have 2 cores; more threads than cores only adds noise.
    torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def digits():
    """sklearn's 8x8 digits: (X float 0-16 flat rows, y ints)."""
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def fashion_dir():
    path = SHARED_DATA / "fashion-mnist"
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"the Fashion-MNIST files are not in {path}")
    return path
