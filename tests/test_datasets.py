"""Tests of sklenet.datasets: loading, checksums, downloading, IDX parsing."""

import functools
import gzip
import hashlib
import http.server
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from sklenet import datasets
from sklenet.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    DownloadError,
    IDXFormatError,
    load_fashion_mnist,
    load_mnist,
    read_idx,
)

# CI clones the repository in some folder with a copy of shared/ beside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FASHION_DIR = SHARED_DATA / "fashion-mnist"
MNIST_DIR = SHARED_DATA / "mnist"

TRAIN_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
TEST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
ALL_FILES = TRAIN_FILES + TEST_FILES

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _have(directory):
    return all((directory / f).is_file() for f in ALL_FILES)


needs_fashion = pytest.mark.skipif(
    not _have(FASHION_DIR),
    reason=f"Fashion-MNIST IDX files not found in {FASHION_DIR} (shared/ beside the repo)",
)
needs_mnist = pytest.mark.skipif(
    not _have(MNIST_DIR),
    reason=f"MNIST IDX files not found in {MNIST_DIR} (shared/ beside the repo)",
)


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """No user data home, a private scikit-learn data home, no proxies."""
    monkeypatch.delenv("SKLENET_DATA_HOME", raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "sklearn_data"))
    for var in ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy",
                "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "FTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT", 5)


def _cache(tmp_path, name="fashion-mnist"):
    return tmp_path / "sklearn_data" / name


# --------------------------------------------------------------------------- #
# Real data, loaded the way a user does
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def fashion_train():
    if not _have(FASHION_DIR):
        pytest.skip(f"Fashion-MNIST IDX files not found in {FASHION_DIR}")
    return load_fashion_mnist(subset="train", data_home=FASHION_DIR, download=False,
                              verbose=False)


@pytest.fixture(scope="module")
def fashion_test():
    if not _have(FASHION_DIR):
        pytest.skip(f"Fashion-MNIST IDX files not found in {FASHION_DIR}")
    return load_fashion_mnist(subset="test", data_home=FASHION_DIR, download=False,
                              verbose=False)


def test_fashion_train(fashion_train):
    b = fashion_train
    assert b.data.shape == (60000, 784)
    assert b.images.shape == (60000, 28, 28)
    assert b.data.dtype == np.uint8 and b.images.dtype == np.uint8
    assert np.shares_memory(b.data, b.images)
    for i in (0, 12345, 59999):
        np.testing.assert_array_equal(b.images[i].ravel(), b.data[i])
    assert b.target.shape == (60000,) and b.target.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(b.target, minlength=10), [6000] * 10)
    assert b.target_names == FASHION_NAMES
    assert len(b.feature_names) == 784
    assert "Fashion-MNIST" in b.DESCR and "MIT" in b.DESCR and "1708.07747" in b.DESCR
    assert b.data.min() == 0 and b.data.max() == 255
    assert b.data.flags.writeable
    # First training image of Fashion-MNIST is an ankle boot.
    assert b.target[0] == 9


def test_fashion_test_split(fashion_test):
    b = fashion_test
    assert b.data.shape == (10000, 784)
    assert b.images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(b.target, minlength=10), [1000] * 10)


@needs_fashion
def test_fashion_env_var_and_return_X_y(monkeypatch, fashion_test):
    monkeypatch.setenv("SKLENET_DATA_HOME", str(FASHION_DIR))
    X, y = load_fashion_mnist(subset="test", download=False, return_X_y=True,
                              verbose=False)
    assert X.shape == (10000, 784) and X.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.int64
    np.testing.assert_array_equal(X, fashion_test.data)
    np.testing.assert_array_equal(y, fashion_test.target)


@needs_fashion
def test_fashion_parent_directory_is_accepted(fashion_test):
    # data_home may also be a folder with a "fashion-mnist" subdirectory.
    X, y = load_fashion_mnist(subset="test", data_home=SHARED_DATA, download=False,
                              return_X_y=True, verbose=False)
    np.testing.assert_array_equal(y, fashion_test.target)


@needs_fashion
def test_fashion_subset_all(fashion_train, fashion_test):
    b = load_fashion_mnist(subset="all", data_home=FASHION_DIR, download=False,
                           verbose=False)
    assert b.data.shape == (70000, 784) and b.images.shape == (70000, 28, 28)
    assert np.shares_memory(b.data, b.images)
    np.testing.assert_array_equal(b.target[:60000], fashion_train.target)
    np.testing.assert_array_equal(b.target[60000:], fashion_test.target)
    np.testing.assert_array_equal(b.data[60000:], fashion_test.data)
    np.testing.assert_array_equal(np.bincount(b.target), [7000] * 10)


@needs_mnist
def test_mnist_shapes():
    b = load_mnist(subset="all", data_home=MNIST_DIR, download=False, verbose=False)
    assert b.data.shape == (70000, 784) and b.images.shape == (70000, 28, 28)
    assert b.data.dtype == np.uint8 and b.target.dtype == np.int64
    assert b.target_names == [str(i) for i in range(10)]
    np.testing.assert_array_equal(
        np.bincount(b.target[:60000]),
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
    )
    assert "LeCun" in b.DESCR
    X, y = load_mnist(subset="test", data_home=MNIST_DIR, download=False,
                      return_X_y=True, verbose=False)
    assert X.shape == (10000, 784) and y.shape == (10000,)


@needs_fashion
@needs_mnist
def test_checksums_of_shared_files_are_the_official_ones():
    for directory, spec in ((FASHION_DIR, datasets._FASHION_MNIST),
                            (MNIST_DIR, datasets._MNIST)):
        for fname in ALL_FILES:
            assert datasets._md5(directory / fname) == spec.md5[fname]


# --------------------------------------------------------------------------- #
# Argument validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kwargs, match", [
    ({"subset": "training"}, "subset must be one of"),
    ({"subset": None}, "subset must be one of"),
    ({"data_home": 3}, "data_home must be"),
    ({"download": "yes"}, "download must be True or False"),
    ({"return_X_y": 1}, "return_X_y must be True or False"),
    ({"verbose": None}, "verbose must be True or False"),
    ({"mirrors": []}, "at least one"),
    ({"mirrors": [3]}, "base URLs"),
    ({"mirrors": ["example.com/data/"]}, "not a http"),
    ({"mirrors": 3}, "list of base URLs"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_fashion_mnist(**{"download": False, **kwargs})


def test_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        load_fashion_mnist("train")


# --------------------------------------------------------------------------- #
# Checksums of local files
# --------------------------------------------------------------------------- #
@needs_fashion
def test_corrupted_file_in_data_home_is_an_error_and_kept(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    for f in TEST_FILES:
        shutil.copy(FASHION_DIR / f, user / f)
    bad = user / TEST_FILES[1]
    content = bytearray(bad.read_bytes())
    content[100] ^= 0xFF
    bad.write_bytes(bytes(content))
    actual = hashlib.md5(bytes(content)).hexdigest()
    expected = datasets._FASHION_MNIST.md5[TEST_FILES[1]]
    with pytest.raises(ChecksumError) as excinfo:
        load_fashion_mnist(subset="test", data_home=user, verbose=False)
    msg = str(excinfo.value)
    assert str(bad) in msg and expected in msg and actual in msg
    assert excinfo.value.expected == expected and excinfo.value.actual == actual
    assert isinstance(excinfo.value, OSError)
    assert bad.read_bytes() == bytes(content)  # user files are never touched


@needs_fashion
def test_corrupted_cache_without_download_is_an_error(tmp_path):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(FASHION_DIR / TEST_FILES[0], cache / TEST_FILES[0])
    truncated = (FASHION_DIR / TEST_FILES[1]).read_bytes()[:-10]
    (cache / TEST_FILES[1]).write_bytes(truncated)
    with pytest.raises(ChecksumError, match="download=True") as excinfo:
        load_fashion_mnist(subset="test", download=False, verbose=False)
    assert str(cache / TEST_FILES[1]) in str(excinfo.value)


def test_missing_data_home_warns(tmp_path):
    with pytest.warns(UserWarning, match="does not exist"):
        with pytest.raises(DatasetNotFoundError):
            load_fashion_mnist(data_home=tmp_path / "nope", download=False,
                               verbose=False)


# --------------------------------------------------------------------------- #
# Downloads from a local HTTP server
# --------------------------------------------------------------------------- #
class _Server:
    """Serve subdirectories of ``root`` as mirrors; record every request."""

    def __init__(self, root):
        self.root = Path(root)
        self.requests = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(self.root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def url(self, mirror):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mirror}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server(tmp_path):
    """Mirrors: ``empty`` (404), ``good``, ``corrupt`` (a flipped byte), ``short``
    (truncated files)."""
    if not _have(FASHION_DIR):
        pytest.skip(f"Fashion-MNIST IDX files not found in {FASHION_DIR}")
    root = tmp_path / "www"
    for mirror in ("empty", "good", "corrupt", "short"):
        (root / mirror).mkdir(parents=True)
    for f in TEST_FILES:
        content = (FASHION_DIR / f).read_bytes()
        (root / "good" / f).write_bytes(content)
        flipped = bytearray(content)
        flipped[len(flipped) // 2] ^= 0xFF
        (root / "corrupt" / f).write_bytes(bytes(flipped))
        (root / "short" / f).write_bytes(content[: len(content) // 2])
    srv = _Server(root)
    yield srv
    srv.close()


def _assert_cache_is_clean(cache, files):
    # Only the verified files: no leftover temporary files.
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    for f in files:
        assert datasets._md5(cache / f) == datasets._FASHION_MNIST.md5[f]


def test_download_falls_back_to_next_mirror(server, tmp_path, fashion_test):
    mirrors = [server.url("empty"), server.url("corrupt"), server.url("short"),
               server.url("good")]
    b = load_fashion_mnist(subset="test", mirrors=mirrors, verbose=False)
    assert b.data.shape == (10000, 784)
    np.testing.assert_array_equal(b.target, fashion_test.target)
    np.testing.assert_array_equal(b.data, fashion_test.data)
    _assert_cache_is_clean(_cache(tmp_path), TEST_FILES)
    assert len(server.requests) == 8  # 4 mirrors x 2 files

    # Second call: served from the cache, no request.
    server.requests.clear()
    X, y = load_fashion_mnist(subset="test", mirrors=mirrors, return_X_y=True,
                              download=False, verbose=False)
    np.testing.assert_array_equal(y, fashion_test.target)
    assert server.requests == []


def test_download_verbose_progress(server, tmp_path, capsys):
    load_fashion_mnist(subset="test", mirrors=[server.url("empty"), server.url("good")],
                       return_X_y=True, verbose=True)
    err = capsys.readouterr().err
    assert "Downloading" in err and "404" in err
    _assert_cache_is_clean(_cache(tmp_path), TEST_FILES)


def test_only_missing_files_are_downloaded(server, tmp_path):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(FASHION_DIR / TEST_FILES[0], cache / TEST_FILES[0])
    load_fashion_mnist(subset="test", mirrors=[server.url("good")], verbose=False)
    assert [Path(p).name for p in server.requests] == [TEST_FILES[1]]
    _assert_cache_is_clean(cache, TEST_FILES)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_cache_is_downloaded_again(server, tmp_path, damage):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    for f in TEST_FILES:
        content = (FASHION_DIR / f).read_bytes()
        if damage == "flip":
            content = content[:50] + bytes([content[50] ^ 1]) + content[51:]
        else:
            content = content[: len(content) - 100]
        (cache / f).write_bytes(content)
    b = load_fashion_mnist(subset="test", mirrors=[server.url("good")], verbose=False)
    assert b.data.shape == (10000, 784)
    assert sorted(Path(p).name for p in server.requests) == sorted(TEST_FILES)
    _assert_cache_is_clean(cache, TEST_FILES)


def test_all_mirrors_fail(server, tmp_path):
    mirrors = [server.url("empty"), server.url("corrupt"), server.url("short")]
    with pytest.raises(DownloadError) as excinfo:
        load_fashion_mnist(subset="test", mirrors=mirrors, verbose=False)
    err = excinfo.value
    msg = str(err)
    for m in mirrors:
        assert m in msg
    assert "404" in msg and "md5 mismatch" in msg
    assert isinstance(err, DatasetNotFoundError) and isinstance(err, OSError)
    assert len(err.failures) == 3
    assert TEST_FILES[0] in err.missing
    # Nothing (neither bad downloads nor temporary files) is left in the cache.
    cache = _cache(tmp_path)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_unreachable_mirror(server, tmp_path):
    # A port nothing listens on (bound then closed), then a good mirror.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(DownloadError, match="cannot connect"):
        load_fashion_mnist(subset="test", mirrors=[dead], verbose=False)
    load_fashion_mnist(subset="test", mirrors=[dead, server.url("good")], verbose=False)
    _assert_cache_is_clean(_cache(tmp_path), TEST_FILES)


def test_download_false_never_touches_the_network(server, tmp_path):
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_fashion_mnist(subset="all", download=False,
                           mirrors=[server.url("good")], verbose=False)
    msg = str(excinfo.value)
    for f in ALL_FILES:
        assert f in msg
    assert str(_cache(tmp_path)) in msg
    assert "data_home" in msg and "SKLENET_DATA_HOME" in msg and "download=True" in msg
    assert not isinstance(excinfo.value, DownloadError)
    assert isinstance(excinfo.value, FileNotFoundError)
    assert server.requests == []


def test_download_false_lists_user_directory(tmp_path, monkeypatch):
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("SKLENET_DATA_HOME", str(user))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_mnist(subset="test", download=False, verbose=False)
    msg = str(excinfo.value)
    assert str(user) in msg and str(_cache(tmp_path, "mnist")) in msg
    assert TEST_FILES[0] in msg and TRAIN_FILES[0] not in msg
    assert excinfo.value.missing == TEST_FILES


@needs_fashion
def test_user_directory_completes_with_cache(tmp_path):
    # Test files in the user's directory, train labels... nowhere: with
    # download=False only the missing ones are reported.
    user = tmp_path / "user"
    user.mkdir()
    for f in TEST_FILES:
        shutil.copy(FASHION_DIR / f, user / f)
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(FASHION_DIR / TRAIN_FILES[1], cache / TRAIN_FILES[1])
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_fashion_mnist(subset="all", data_home=user, download=False, verbose=False)
    assert excinfo.value.missing == [TRAIN_FILES[0]]


# --------------------------------------------------------------------------- #
# IDX parsing
# --------------------------------------------------------------------------- #
def _idx(magic, dims, payload):
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


def _write_gz(path, raw):
    path.write_bytes(gzip.compress(raw))
    return path


def test_read_idx_images_and_labels(tmp_path):
    pixels = np.arange(2 * 28 * 28, dtype=np.uint8)
    images = read_idx(_write_gz(tmp_path / "img.gz", _idx(2051, (2, 28, 28), pixels.tobytes())))
    assert images.shape == (2, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images.ravel(), pixels)
    assert images.flags.writeable and images.flags.owndata

    labels = read_idx(_write_gz(tmp_path / "lbl.gz", _idx(2049, (3,), bytes([1, 2, 9]))))
    np.testing.assert_array_equal(labels, [1, 2, 9])


def test_read_idx_uncompressed_and_fileobj(tmp_path):
    raw = _idx(2049, (3,), bytes([0, 5, 7]))
    path = tmp_path / "labels.idx"
    path.write_bytes(raw)
    np.testing.assert_array_equal(read_idx(path), [0, 5, 7])
    np.testing.assert_array_equal(read_idx(str(path)), [0, 5, 7])
    with open(path, "rb") as f:
        np.testing.assert_array_equal(read_idx(f), [0, 5, 7])


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([[1, -2], [300, 40000]], dtype=">i4")
    out = read_idx(_write_gz(tmp_path / "ints.gz", _idx(0x0C02, (2, 2), values.tobytes())))
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, [[1, -2], [300, 40000]])


@pytest.mark.parametrize("raw, match", [
    (_idx(0x01020803, (1, 28, 28), bytes(784)), "bad magic number"),
    # Magic says 4 dimensions: the 4th "dimension" is read from the pixels (0).
    (_idx(2052, (1, 28, 28), bytes(784)), "780 unexpected extra bytes"),
    (_idx(0x0703, (1, 28, 28), bytes(784)), "bad magic number"),  # unknown type
    (_idx(0x0800, (), b""), "zero dimensions"),
    (b"\x00\x00", "too short"),
    (b"", "too short"),
    (_idx(2051, (2, 28, 28), bytes(784)), "truncated IDX payload"),
    (_idx(2051, (1, 28, 28), bytes(785)), "1 unexpected extra bytes"),
    (_idx(2049, (5,), bytes(3)), "truncated IDX payload"),
    (struct.pack(">II", 2051, 1), "truncated IDX header"),
])
def test_read_idx_malformed(tmp_path, raw, match):
    path = _write_gz(tmp_path / "malformed-idx3-ubyte.gz", raw)
    with pytest.raises(IDXFormatError, match=match) as excinfo:
        read_idx(path)
    assert "malformed-idx3-ubyte.gz" in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_read_idx_bad_gzip(tmp_path):
    good = gzip.compress(_idx(2049, (1000,), bytes(1000)))
    path = tmp_path / "cut-labels.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXFormatError, match="cut-labels.gz: truncated gzip"):
        read_idx(path)
    path = tmp_path / "garbage-labels.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip data" * 10)
    with pytest.raises(IDXFormatError, match="garbage-labels.gz: corrupted gzip"):
        read_idx(path)


def test_read_idx_name_in_message():
    import io

    with pytest.raises(IDXFormatError, match="^custom-name: "):
        read_idx(io.BytesIO(b"\x00"), name="custom-name")


def _pair(tmp_path, images_raw, labels_raw):
    return (_write_gz(tmp_path / "x-images-idx3-ubyte.gz", images_raw),
            _write_gz(tmp_path / "x-labels-idx1-ubyte.gz", labels_raw))


def test_read_images_labels_checks(tmp_path):
    img3 = _idx(2051, (3, 28, 28), bytes(3 * 784))
    lbl3 = _idx(2049, (3,), bytes([0, 1, 9]))

    images, labels = datasets._read_images_labels(*_pair(tmp_path, img3, lbl3))
    assert images.shape == (3, 28, 28) and labels.dtype == np.int64

    # Labels file where images are expected (and vice versa): wrong dimensions.
    with pytest.raises(IDXFormatError, match="x-images-idx3-ubyte.gz: not an IDX images"):
        datasets._read_images_labels(*_pair(tmp_path, lbl3, lbl3))
    with pytest.raises(IDXFormatError, match="x-labels-idx1-ubyte.gz: not an IDX labels"):
        datasets._read_images_labels(*_pair(tmp_path, img3, img3))
    # Wrong image size.
    with pytest.raises(IDXFormatError, match="expected 28x28 images, got 32x32"):
        datasets._read_images_labels(
            *_pair(tmp_path, _idx(2051, (3, 32, 32), bytes(3 * 1024)), lbl3))
    # Labels out of range.
    with pytest.raises(IDXFormatError, match="labels must be in 0..9.*10 at index 1"):
        datasets._read_images_labels(
            *_pair(tmp_path, img3, _idx(2049, (3,), bytes([0, 10, 1]))))
    # Count mismatch.
    with pytest.raises(IDXFormatError, match="holds 3 images but .* holds 2 labels"):
        datasets._read_images_labels(
            *_pair(tmp_path, img3, _idx(2049, (2,), bytes([0, 1]))))
