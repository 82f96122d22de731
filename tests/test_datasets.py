"""Tests of sklenet.datasets: loading, checksums, downloads from local servers, IDX parsing."""

import errno
import gzip
import hashlib
import http.server
import io
import os
import shutil
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from sklenet import _download, datasets
from sklenet.datasets import DatasetNotFoundError, fetch_fashion_mnist, fetch_mnist, read_idx

TRAIN_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
TEST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
ALL_FILES = TRAIN_FILES + TEST_FILES
FASHION = datasets._FASHION_MNIST

FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


@pytest.fixture(autouse=True)
def _isolated_environment(isolated_download_env):
    """Every test here runs without the user's data home, cache or proxies."""


def _md5(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _cache(tmp_path, name="fashion-mnist"):
    return tmp_path / "sklearn_data" / name


def _fetch(**kwargs):
    """fetch_fashion_mnist of the test split, quietly and without waiting between retries."""
    return fetch_fashion_mnist(**{"subset": "test", "verbose": False, "delay": 0, **kwargs})


# --------------------------------------------------------------------------- #
# Real data, loaded the way a user does
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def fashion_train(fashion_dir):
    return fetch_fashion_mnist(subset="train", data_home=fashion_dir,
                               download_if_missing=False, verbose=False)


@pytest.fixture(scope="module")
def fashion_test(fashion_dir):
    return fetch_fashion_mnist(subset="test", data_home=fashion_dir,
                               download_if_missing=False, verbose=False)


def test_fashion_train(fashion_train):
    b = fashion_train
    assert b.data.shape == (60000, 784) and b.images.shape == (60000, 28, 28)
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
    assert b.target[0] == 9  # the first training image of Fashion-MNIST is an ankle boot


def test_fashion_test_split(fashion_test):
    assert fashion_test.data.shape == (10000, 784)
    np.testing.assert_array_equal(np.bincount(fashion_test.target, minlength=10), [1000] * 10)


def test_fashion_env_var_and_return_X_y(monkeypatch, fashion_dir, fashion_test):
    monkeypatch.setenv("SKLENET_DATA_HOME", str(fashion_dir))
    X, y = _fetch(download_if_missing=False, return_X_y=True)
    assert X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(X, fashion_test.data)
    np.testing.assert_array_equal(y, fashion_test.target)


def test_fashion_parent_directory_is_accepted(tmp_path, fashion_dir, fashion_test):
    # data_home may also be a folder with a "fashion-mnist" subdirectory.
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "fashion-mnist").symlink_to(fashion_dir)
    X, y = _fetch(data_home=tmp_path / "parent", download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(y, fashion_test.target)


def test_fashion_subset_all(fashion_dir, fashion_train, fashion_test):
    b = fetch_fashion_mnist(subset="all", data_home=fashion_dir, download_if_missing=False,
                            verbose=False)
    assert b.data.shape == (70000, 784) and np.shares_memory(b.data, b.images)
    np.testing.assert_array_equal(b.target[:60000], fashion_train.target)
    np.testing.assert_array_equal(b.data[60000:], fashion_test.data)
    np.testing.assert_array_equal(np.bincount(b.target), [7000] * 10)


def test_mnist_shapes(mnist_dir):
    b = fetch_mnist(subset="all", data_home=mnist_dir, download_if_missing=False,
                    verbose=False)
    assert b.data.shape == (70000, 784) and b.images.shape == (70000, 28, 28)
    assert b.data.dtype == np.uint8 and b.target.dtype == np.int64
    assert b.target_names == [str(i) for i in range(10)]
    np.testing.assert_array_equal(np.bincount(b.target[:60000]),
                                  [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    assert "LeCun" in b.DESCR


def test_sizes_and_checksums_of_the_real_files_are_the_official_ones(fashion_dir, mnist_dir):
    for directory, spec in ((fashion_dir, FASHION), (mnist_dir, datasets._MNIST)):
        for fname, (md5, size) in spec.files.items():
            assert (directory / fname).stat().st_size == size
            assert _md5(directory / fname) == md5


def test_official_mirrors_are_https_first():
    for spec in (FASHION, datasets._MNIST):
        assert spec.mirrors[0].startswith("https://")


# --------------------------------------------------------------------------- #
# Argument validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kwargs, match", [
    ({"subset": "training"}, "'subset' parameter"),
    ({"subset": None}, "'subset' parameter"),
    ({"data_home": 3}, "'data_home' parameter"),
    ({"download_if_missing": "yes"}, "'download_if_missing' parameter"),
    ({"return_X_y": 1}, "'return_X_y' parameter"),
    ({"verbose": None}, "'verbose' parameter"),
    ({"mirrors": []}, "at least one base URL"),
    ({"mirrors": [3]}, "'mirrors' parameter must hold http"),
    ({"mirrors": ["example.com/data/"]}, "'mirrors' parameter must hold http"),
    ({"mirrors": "https://example.com/"}, "'mirrors' parameter"),
    ({"n_retries": -1}, "'n_retries' parameter"),
    ({"delay": -1}, "'delay' parameter"),
    ({"timeout": 0}, "'timeout' parameter"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _fetch(**{"download_if_missing": False, **kwargs})


def test_positional_arguments_are_rejected():
    with pytest.raises(TypeError):
        fetch_fashion_mnist("train")


@pytest.mark.parametrize("value", ["soon", "0", "-5", "nan"])
def test_invalid_timeout_environment_variable(monkeypatch, value):
    monkeypatch.setenv("SKLENET_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(ValueError, match="SKLENET_DOWNLOAD_TIMEOUT must be a positive"):
        _fetch(mirrors=["http://127.0.0.1:9/"])


# --------------------------------------------------------------------------- #
# Local files: a corrupted file is named, never replaced, never "not available"
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_file_in_data_home_is_named_and_kept(tmp_path, fashion_dir, damage):
    user = tmp_path / "user"
    user.mkdir()
    for f in TEST_FILES:
        shutil.copy(fashion_dir / f, user / f)
    bad = user / TEST_FILES[0]
    content = bytearray(bad.read_bytes())
    if damage == "flip":
        content[100] ^= 0xFF
    else:
        del content[len(content) // 3:]
    bad.write_bytes(bytes(content))
    with pytest.raises(OSError) as excinfo:
        _fetch(data_home=user)
    msg = str(excinfo.value)
    assert str(bad) in msg
    if damage == "flip":
        assert FASHION.files[TEST_FILES[0]][0] in msg
        assert hashlib.md5(bytes(content)).hexdigest() in msg
    else:  # told by its size, without hashing it
        assert f"its size is {len(content)} bytes" in msg
    assert "data-home" not in msg and "\n" not in msg
    # "Not available" is for missing files; a corrupted one must not pass for it.
    assert not isinstance(excinfo.value, FileNotFoundError)
    assert bad.read_bytes() == bytes(content)  # the user's files are never touched
    assert not _cache(tmp_path).exists()


def test_study_auto_names_a_corrupted_file_instead_of_falling_back(tmp_path, fashion_dir):
    # issue 9, item 7: ``--dataset auto --data-home DIR`` with a truncated file there.
    from sklenet import study

    user = tmp_path / "user"
    user.mkdir()
    for f in ALL_FILES:
        (user / f).symlink_to(fashion_dir / f)
    bad = user / TRAIN_FILES[0]
    bad.unlink()
    bad.write_bytes((fashion_dir / TRAIN_FILES[0]).read_bytes()[:1000])
    logged = []
    with pytest.raises(Exception) as excinfo:
        study.load_study_data("auto", data_home=user, download=False, log=logged.append)
    msg = str(excinfo.value)
    assert str(bad) in msg and "corrupted" in msg and "data-home" not in msg
    assert not isinstance(excinfo.value, FileNotFoundError)
    assert logged == []  # no "using digits instead"


def test_study_auto_falls_back_to_digits_when_files_are_missing(tmp_path):
    from sklenet import study

    logged = []
    data = study.load_study_data("auto", data_home=tmp_path, download=False,
                                 log=logged.append)
    assert data["name"] == "digits"
    assert len(logged) == 1 and "digits" in logged[0] and TRAIN_FILES[0] in logged[0]


def test_corrupted_cache_without_download_is_named(tmp_path, fashion_dir):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(fashion_dir / TEST_FILES[0], cache / TEST_FILES[0])
    (cache / TEST_FILES[1]).write_bytes((fashion_dir / TEST_FILES[1]).read_bytes()[:-10])
    with pytest.raises(OSError, match="download_if_missing=True") as excinfo:
        _fetch(download_if_missing=False)
    assert str(cache / TEST_FILES[1]) in str(excinfo.value)
    assert not isinstance(excinfo.value, FileNotFoundError)


def test_missing_data_home_warns(tmp_path, fashion_dir):
    # The files are in the cache: they are used, with a warning at the caller's line.
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    for f in TEST_FILES:
        shutil.copy(fashion_dir / f, cache / f)
    with pytest.warns(UserWarning, match="'.*nope' does not exist") as record:
        _fetch(data_home=tmp_path / "nope", download_if_missing=False)
    assert record[0].filename == __file__  # points at the caller's line


def test_missing_data_home_is_what_the_error_says_first(tmp_path, recwarn):
    # issue 17: the error listed the places searched but never said that the
    # directory given does not exist (--data-home /nonexistent).
    with pytest.raises(DatasetNotFoundError) as excinfo:
        _fetch(data_home=tmp_path / "nope", download_if_missing=False)
    assert str(excinfo.value).startswith(
        f"The data_home directory {str(tmp_path / 'nope')!r} does not exist.")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]  # said once


def test_download_false_lists_files_and_places(tmp_path, monkeypatch):
    user = tmp_path / "user"
    user.mkdir()
    monkeypatch.setenv("SKLENET_DATA_HOME", str(user))
    with pytest.raises(DatasetNotFoundError) as excinfo:
        fetch_mnist(subset="test", download_if_missing=False, verbose=False)
    msg = str(excinfo.value)
    for place in (user, user / "mnist", _cache(tmp_path, "mnist")):
        assert str(place) in msg
    assert TEST_FILES[0] in msg and "download_if_missing=False" in msg
    assert "data_home" in msg and "SKLENET_DATA_HOME" in msg and "\n" not in msg
    assert isinstance(excinfo.value, FileNotFoundError)
    assert not _cache(tmp_path, "mnist").exists()  # looking creates nothing


# --------------------------------------------------------------------------- #
# Downloads from local HTTP servers
# --------------------------------------------------------------------------- #
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files under the server's root, plus misbehaving mirrors.

    ``/junk/*`` streams junk forever without a Content-Length, ``/trickle/*``
    sends a byte every 1.5 s, ``/liar/*`` announces the wrong Content-Length,
    and ``/flaky/*`` answers 503 to the first request for each file.
    """

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        mirror = self.path.split("/")[1]
        if mirror == "flaky" and self.server.requests.count(self.path) == 1:
            self.send_error(503)
        elif mirror in ("junk", "trickle", "liar"):
            self.send_response(200)
            if mirror == "liar":
                self.send_header("Content-Length", "123")
            self.end_headers()
            try:
                while not self.server.stopping.is_set():
                    self.wfile.write(b"x" if mirror == "trickle" else b"x" * 65536)
                    self.wfile.flush()
                    if mirror == "trickle":
                        self.server.stopping.wait(1.5)
            except OSError:  # the client hung up, as it should
                pass
            self.close_connection = True
        else:
            super().do_GET()


@pytest.fixture
def server(tmp_path, fashion_dir):
    """Mirrors ``empty`` (404), ``good``, ``flaky``, ``corrupt`` (a flipped byte),
    ``short`` (truncated files), ``half`` (good images only) and the misbehaving ones."""
    root = tmp_path / "www"
    for mirror in ("empty", "good", "flaky", "corrupt", "short", "half"):
        (root / mirror).mkdir(parents=True)
    for f in TEST_FILES:
        content = (fashion_dir / f).read_bytes()
        (root / "good" / f).write_bytes(content)
        (root / "flaky" / f).write_bytes(content)
        flipped = bytearray(content)
        flipped[len(flipped) // 2] ^= 0xFF
        (root / "corrupt" / f).write_bytes(bytes(flipped))
        (root / "short" / f).write_bytes(content[: len(content) // 2])
    shutil.copy(fashion_dir / TEST_FILES[0], root / "half" / TEST_FILES[0])
    handler = lambda *args: _Handler(*args, directory=str(root))  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    httpd.requests, httpd.stopping = [], threading.Event()
    httpd.url = lambda mirror: f"http://127.0.0.1:{httpd.server_address[1]}/{mirror}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _assert_cache_holds(cache, files):
    # Only the verified files: no leftover temporary files.
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    for f in files:
        assert _md5(cache / f) == FASHION.files[f][0]


def test_download_falls_back_to_next_mirror(server, tmp_path, fashion_test):
    mirrors = [server.url(m) for m in ("empty", "corrupt", "short", "good")]
    b = _fetch(mirrors=mirrors)
    np.testing.assert_array_equal(b.target, fashion_test.target)
    np.testing.assert_array_equal(b.data, fashion_test.data)
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)
    assert len(server.requests) == 8  # 4 mirrors x 2 files, no retries of wrong answers

    # Second call: served from the cache, no request.
    server.requests.clear()
    _fetch(mirrors=mirrors, download_if_missing=False)
    assert server.requests == []


def test_download_verbose_progress(server, tmp_path, capsys):
    _fetch(mirrors=[server.url("empty"), server.url("good")], verbose=True)
    err = capsys.readouterr().err
    assert "Downloading" in err and "404" in err
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)


def test_server_errors_are_retried_after_the_delay(server, tmp_path):
    start = time.monotonic()
    _fetch(mirrors=[server.url("flaky")], n_retries=1, delay=0.2)
    assert time.monotonic() - start >= 0.4  # one delay per file
    assert len(server.requests) == 4
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)


def test_no_retries(server, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="HTTP error 503"):
        _fetch(mirrors=[server.url("flaky")], n_retries=0)
    assert len(server.requests) == 1


def test_only_missing_files_are_downloaded(server, tmp_path, fashion_dir):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    shutil.copy(fashion_dir / TEST_FILES[0], cache / TEST_FILES[0])
    _fetch(mirrors=[server.url("good")])
    assert [Path(p).name for p in server.requests] == [TEST_FILES[1]]
    _assert_cache_holds(cache, TEST_FILES)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_cache_is_downloaded_again(server, tmp_path, fashion_dir, damage):
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    for f in TEST_FILES:
        content = (fashion_dir / f).read_bytes()
        if damage == "flip":
            content = content[:50] + bytes([content[50] ^ 1]) + content[51:]
        else:
            content = content[: len(content) - 100]
        (cache / f).write_bytes(content)
    _fetch(mirrors=[server.url("good")])
    assert sorted(Path(p).name for p in server.requests) == sorted(TEST_FILES)
    _assert_cache_holds(cache, TEST_FILES)


def test_all_mirrors_fail(server, tmp_path):
    mirrors = [server.url(m) for m in ("empty", "corrupt", "short")]
    with pytest.raises(DatasetNotFoundError) as excinfo:
        _fetch(mirrors=mirrors)
    msg = str(excinfo.value)
    for m in mirrors:
        assert m in msg
    assert "404" in msg and "md5 mismatch" in msg and "announces" in msg
    assert TEST_FILES[0] in msg and "\n" not in msg
    # Nothing is left: neither bad downloads, temporary files nor the folders made for them.
    assert not (tmp_path / "sklearn_data").exists()


def test_unreachable_mirror(server, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on: bound, then closed
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    with pytest.raises(DatasetNotFoundError, match="cannot connect"):
        _fetch(mirrors=[dead], n_retries=2)
    _fetch(mirrors=[dead, server.url("good")])
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)


def test_junk_without_content_length_stops_at_the_official_size(server, tmp_path,
                                                                 monkeypatch):
    # issue 9: such a mirror once put 150-200 MiB into the cache for a 4.2 MiB file.
    written = []
    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):  # the size of each temporary file when discarded
        if str(path).endswith(".part"):
            written.append(os.path.getsize(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match="sent more than the 4422102 bytes"):
        _fetch(mirrors=[server.url("junk")])
    assert time.monotonic() - start < 10
    assert len(written) == 1 and 0 < written[0] <= FASHION.files[TEST_FILES[0]][1]
    assert not (tmp_path / "sklearn_data").exists()


def test_wrong_content_length_is_refused_before_reading(server, tmp_path):
    with pytest.raises(DatasetNotFoundError, match="announces 123 bytes"):
        _fetch(mirrors=[server.url("liar")])


@pytest.mark.parametrize("how", ["parameter", "environment"])
def test_trickling_mirror_is_cut_off_at_the_deadline(server, tmp_path, monkeypatch, how,
                                                     fashion_test):
    # A byte every 1.5 s never trips the 5 s per-read timeout; the deadline must.
    kwargs = {"timeout": 1} if how == "parameter" else {}
    monkeypatch.setenv("SKLENET_DOWNLOAD_TIMEOUT", "1" if how == "environment" else "1e9")
    start = time.monotonic()
    b = _fetch(mirrors=[server.url("trickle"), server.url("good")], **kwargs)
    elapsed = time.monotonic() - start
    assert 2 <= elapsed < 7  # 1 s per file, plus at most one 1.5 s trickle each
    np.testing.assert_array_equal(b.target, fashion_test.target)
    assert sum("/trickle/" in r for r in server.requests) == 2  # a slow mirror isn't retried


def test_failure_mid_call_leaves_the_cache_as_it_was(server, tmp_path, monkeypatch):
    # The images arrive, the labels cannot: the call raises, and caches nothing.
    with pytest.raises(DatasetNotFoundError, match=TEST_FILES[1]):
        _fetch(mirrors=[server.url("half")])
    assert not (tmp_path / "sklearn_data").exists()

    # Ctrl-C after the first file has arrived.
    cache = _cache(tmp_path)
    cache.mkdir(parents=True)
    (cache / "unrelated.txt").write_text("kept")
    real_download = _download._download_verified

    def interrupted(url, *args, **kwargs):
        if url.endswith(TEST_FILES[1]):
            raise KeyboardInterrupt
        return real_download(url, *args, **kwargs)

    monkeypatch.setattr(_download, "_download_verified", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _fetch(mirrors=[server.url("good")])
    assert [p.name for p in cache.iterdir()] == ["unrelated.txt"]


def test_a_local_write_error_is_not_blamed_on_the_mirror(server, tmp_path, monkeypatch):
    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left") as excinfo:
        _fetch(mirrors=[server.url("good"), server.url("good")])
    assert not isinstance(excinfo.value, FileNotFoundError)
    assert len(server.requests) == 1  # neither retried nor sent to the next mirror
    assert not (tmp_path / "sklearn_data").exists()


def test_two_downloads_into_one_cache(server, tmp_path, fashion_test):
    results, errors = [], []

    def fetch():
        try:
            results.append(_fetch(mirrors=[server.url("good")], return_X_y=True))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for X, y in results:
        np.testing.assert_array_equal(y, fashion_test.target)
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)


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
    path = tmp_path / "labels.idx"
    path.write_bytes(_idx(2049, (3,), bytes([0, 5, 7])))
    np.testing.assert_array_equal(read_idx(path), [0, 5, 7])
    np.testing.assert_array_equal(read_idx(str(path)), [0, 5, 7])
    with open(path, "rb") as f:
        np.testing.assert_array_equal(read_idx(f), [0, 5, 7])
    with open(path, "r", encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        read_idx(f)


def test_read_idx_big_endian_types(tmp_path):
    values = np.array([[1, -2], [300, 40000]], dtype=">i4")
    out = read_idx(_write_gz(tmp_path / "ints.gz", _idx(0x0C02, (2, 2), values.tobytes())))
    assert out.dtype == np.int32 and out.dtype.isnative
    np.testing.assert_array_equal(out, [[1, -2], [300, 40000]])


@pytest.mark.parametrize("raw, match", [
    (_idx(0x01020803, (1, 28, 28), bytes(784)), "bad magic number"),
    # Magic says 4 dimensions: the 4th "dimension" is read from the pixels (0).
    (_idx(2052, (1, 28, 28), bytes(784)), "unexpected extra bytes"),
    (_idx(0x0703, (1, 28, 28), bytes(784)), "bad magic number"),  # unknown type
    (_idx(0x0800, (), b""), "bad magic number"),  # zero dimensions
    (b"\x00\x00", "too short"),
    (b"", "too short"),
    (_idx(2051, (2, 28, 28), bytes(784)), "truncated IDX payload"),
    (_idx(2051, (1, 28, 28), bytes(785)), "unexpected extra bytes"),
    (_idx(2049, (5,), bytes(3)), "truncated IDX payload"),
    (struct.pack(">II", 2051, 1), "truncated IDX header"),
    # 255 dimensions of 2**32 - 1: the size must not overflow into something small.
    (_idx(0x08FF, (2**32 - 1,) * 255, b""), "more than max_bytes"),
])
def test_read_idx_malformed(tmp_path, raw, match):
    path = _write_gz(tmp_path / "malformed-idx3-ubyte.gz", raw)
    with pytest.raises(ValueError, match=match) as excinfo:
        read_idx(path)
    assert str(excinfo.value).startswith(f"{path}: ")


def test_read_idx_bad_gzip(tmp_path):
    good = gzip.compress(_idx(2049, (1000,), bytes(1000)))
    path = tmp_path / "cut-labels.gz"
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="cut-labels.gz: truncated gzip"):
        read_idx(path)
    path = tmp_path / "garbage-labels.gz"
    path.write_bytes(b"\x1f\x8b" + b"not really gzip data" * 10)
    with pytest.raises(ValueError, match="garbage-labels.gz: corrupted gzip"):
        read_idx(path)


def test_read_idx_name_in_message():
    with pytest.raises(ValueError, match="^custom-name: "):
        read_idx(io.BytesIO(b"\x00"), name="custom-name")


def _gzip_bomb(header, n_zeros):
    """A real gzip bomb: ``header`` then ``n_zeros`` zero bytes, about 1000:1."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip container
    parts = [z.compress(header)]
    block = bytes(1 << 20)
    for _ in range(n_zeros >> 20):
        parts.append(z.compress(block))
    return b"".join(parts) + z.flush()


def test_read_idx_stops_decompressing_a_gzip_bomb():
    # 10 labels declared, 256 MiB inflated: the old reader inflated it all.
    bomb = _gzip_bomb(_idx(2049, (10,), b""), 256 << 20)
    assert len(bomb) < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="bomb.gz: unexpected extra bytes"):
            read_idx(io.BytesIO(bomb), name="bomb.gz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_read_idx_refuses_declared_sizes_over_max_bytes():
    # 100000 images of 1000x1000 declared: refused before anything is inflated.
    bomb = _gzip_bomb(_idx(2051, (100_000, 1000, 1000), b""), 1 << 20)
    with pytest.raises(ValueError, match="100000x1000x1000 elements.*max_bytes=1073741824"):
        read_idx(io.BytesIO(bomb), name="big.gz")
    small = gzip.compress(_idx(2049, (3,), bytes(3)))
    assert read_idx(io.BytesIO(small), max_bytes=3).shape == (3,)
    with pytest.raises(ValueError, match="more than max_bytes=2"):
        read_idx(io.BytesIO(small), max_bytes=2)


# --------------------------------------------------------------------------- #
# No network: each mirror is tried once, and nothing is printed (issue 17)
# --------------------------------------------------------------------------- #
_NOWHERE = "nonexistent.invalid"  # the .invalid TLD never resolves


@pytest.fixture
def offline(monkeypatch):
    """Host names under .invalid do not resolve, at once (no real DNS); every lookup
    and every sleep is recorded."""
    lookups, sleeps = [], []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_download.time, "sleep", sleeps.append)
    return lookups, sleeps


@pytest.mark.parametrize("error", ["no such host", "network unreachable", "host unreachable"])
def test_offline_each_mirror_is_tried_once_and_nothing_is_printed(tmp_path, monkeypatch,
                                                                   capsys, offline, error):
    lookups, sleeps = offline
    if error != "no such host":  # the name resolves, but no route leads there
        code = errno.ENETUNREACH if error == "network unreachable" else errno.EHOSTUNREACH

        def create_connection(address, *args, **kwargs):
            lookups.append(address[0])
            raise OSError(code, os.strerror(code))

        monkeypatch.setattr(socket, "create_connection", create_connection)
    mirrors = [f"https://{_NOWHERE}/a/", f"http://mirror2.{_NOWHERE}/b/"]
    with pytest.raises(DatasetNotFoundError) as excinfo:
        _fetch(mirrors=mirrors, n_retries=3, delay=1.0, verbose=True)
    # One attempt per mirror (not 1 + n_retries), no wait, and the first file's
    # failure ends the call: the second file is not tried.
    assert lookups == [_NOWHERE, f"mirror2.{_NOWHERE}"]
    assert sleeps == []
    assert capsys.readouterr() == ("", "")  # the error says it, once
    msg = str(excinfo.value)
    reason = "Name or service not known" if error == "no such host" else os.strerror(code)
    assert msg.count(reason) == 2 and all(m + TEST_FILES[0] in msg for m in mirrors)
    assert not (tmp_path / "sklearn_data").exists()


def test_unreachable_mirror_is_passed_over_once_for_all_files(server, tmp_path, capsys,
                                                              offline):
    lookups, sleeps = offline
    _fetch(mirrors=[f"https://{_NOWHERE}/", server.url("good")], n_retries=3,
           verbose=True)
    _assert_cache_holds(_cache(tmp_path), TEST_FILES)
    # Tried for the first file only: it would not resolve for the second either.
    assert lookups.count(_NOWHERE) == 1 and sleeps == []
    assert len(server.requests) == 2
    # Each download is announced once, when the mirror answers; the unreachable
    # mirror is not mentioned (no progress bar either: tqdm redraws with "\r").
    err = capsys.readouterr().err
    assert _NOWHERE not in err
    lines = [line.rsplit("\r", 1)[-1].strip() for line in err.split("\n")]
    assert [line for line in lines if line] == [
        f"Downloading {server.url('good')}{f}" for f in TEST_FILES]


@pytest.fixture
def unavailable_server():
    """A mirror that answers 503 to every request."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.server.requests.append(self.path)
            self.send_error(503)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_server_errors_are_still_retried_n_retries_times(unavailable_server, tmp_path,
                                                         monkeypatch, capsys):
    httpd, url = unavailable_server
    sleeps = []
    monkeypatch.setattr(_download.time, "sleep", sleeps.append)
    with pytest.raises(DatasetNotFoundError, match="HTTP error 503"):
        _fetch(mirrors=[url], n_retries=2, delay=0.5, verbose=True)
    assert httpd.requests == ["/" + TEST_FILES[0]] * 3 and sleeps == [0.5, 0.5]
    # Online, each failure of a mirror that answered is reported, on one line.
    failed = f"  {url}{TEST_FILES[0]}: HTTP error 503: Service Unavailable"
    assert capsys.readouterr().err.splitlines() == [
        f"{failed}; retry 1 of 2 in 0.5 s", f"{failed}; retry 2 of 2 in 0.5 s", failed]
    assert not (tmp_path / "sklearn_data").exists()
