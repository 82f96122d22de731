"""Hostile files and mirrors (issue 17): each is refused quickly, with little memory.

Model files forged to cost time or memory, paths and file modes that confused
``save``, mirrors and data files that hung or bloated the downloader and
``read_idx``. Sizes are kept small where the old code paid in proportion (a
refusal must not depend on how large the file claims to be).
"""

import http.server
import json
import os
import re
import stat
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import sklenet
from sklenet import LeNet5Classifier, ModelFileError, _atomic_write, _model_file
from sklenet import datasets
from sklenet._input import decode_predictions
from sklenet._labels import MAX_CLASSES, MAX_LABEL_CHARS, MAX_LABEL_LENGTH
from sklenet.datasets import DatasetNotFoundError, fetch_fashion_mnist, read_idx

pytest.importorskip("safetensors")

TEST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
POSIX = pytest.mark.skipif(os.name != "posix", reason="POSIX files and permissions")
FIFO = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


@pytest.fixture(autouse=True)
def _isolated_environment(isolated_download_env):
    """Every test here runs without the user's data home, cache or proxies."""


def _in_thread(call, seconds=10):
    """Run ``call()`` in a daemon thread: ``(finished_within_seconds, exception)``."""
    result = {}

    def run():
        try:
            call()
        except BaseException as exc:  # reported to the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive(), result.get("error")


def _peak_bytes(call):
    """``(exception or None, peak bytes traced)`` of ``call()``."""
    tracemalloc.start()
    try:
        call()
        error = None
    except Exception as exc:  # the caller checks it
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return error, peak


# --------------------------------------------------------------------------- #
# Model files
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return LeNet5Classifier(max_epochs=1, random_state=0, device="cpu").fit(X[:300], y[:300])


@pytest.fixture
def model_file(fitted, tmp_path):
    return Path(sklenet.save(fitted, tmp_path / "model.sklenet"))


def _read(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _arrays(header, data):
    return {name: np.frombuffer(data[info["data_offsets"][0]:info["data_offsets"][1]],
                                np.float32).reshape(info["shape"])
            for name, info in header.items() if name != "__metadata__"}


def _save_forged(path, arrays, metadata, config):
    """Write ``arrays`` with ``config``, the digest recomputed (as a forger would)."""
    from safetensors.numpy import save_file

    metadata = dict(metadata, config=json.dumps(config))
    metadata["sha256"] = _model_file.digest(arrays, metadata)
    save_file(arrays, path, metadata=metadata)


def _forge_classes(path, classes, kind):
    """Rewrite the model file at ``path`` with these classes (and an output layer to match)."""
    header, data = _read(path)
    arrays = {k: v.copy() for k, v in _arrays(header, data).items()}
    arrays["lenet5.output.weight"] = np.zeros((len(classes), 84), np.float32)
    arrays["lenet5.output.bias"] = np.zeros(len(classes), np.float32)
    config = json.loads(header["__metadata__"]["config"])
    config.update(classes=classes, classes_kind=kind)
    _save_forged(path, arrays, header["__metadata__"], config)


def _forge_config(path, **fields):
    header, data = _read(path)
    config = json.loads(header["__metadata__"]["config"])
    config.update(fields)
    _save_forged(path, _arrays(header, data), header["__metadata__"], config)


@pytest.mark.parametrize("name", ["Optimizer", "SparseAdam", "Rprop", "LBFGS", "Muon"])
def test_optimizer_that_cannot_be_built_is_refused(model_file, name):
    # Issue 17 #4: "torch.optim.Optimizer" made load raise TypeError (weight_decay).
    import torch

    if not hasattr(torch.optim, name):
        pytest.skip(f"no torch.optim.{name} in this PyTorch")
    header, _ = _read(model_file)
    params = json.loads(header["__metadata__"]["config"])["params"]
    _forge_config(model_file, params=dict(params, optimizer={"optimizer": f"torch.optim.{name}"}))
    with pytest.raises(ModelFileError, match=f"optimizer 'torch.optim.{name}' cannot train"):
        sklenet.load(model_file)


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop"])
def test_optimizers_that_can_be_built_still_load(model_file, name):
    header, _ = _read(model_file)
    params = json.loads(header["__metadata__"]["config"])["params"]
    _forge_config(model_file, params=dict(params, optimizer={"optimizer": f"torch.optim.{name}"}))
    assert sklenet.load(model_file).optimizer.__name__ == name


def test_save_refuses_another_estimator(tmp_path, digits):
    # Issue 17 #5: KeyError: '_one_hot'.
    from sklearn.svm import SVC

    X, y = digits
    for estimator in (SVC().fit(X[:100], y[:100]), SVC(), "model"):
        with pytest.raises(TypeError, match="estimator.*LeNet5Classifier"):
            sklenet.save(estimator, tmp_path / "svc.sklenet")
    assert not list(tmp_path.iterdir())


def test_save_accepts_a_fitted_subclass(tmp_path, digits):
    class Mine(LeNet5Classifier):
        pass

    X, y = digits
    clf = Mine(max_epochs=1, random_state=0, device="cpu").fit(X[:200], y[:200])
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "mine.sklenet"))
    np.testing.assert_array_equal(loaded.predict(X[:50]), clf.predict(X[:50]))


def test_nul_byte_in_path_names_the_argument(fitted, tmp_path):
    # Before: "embedded null byte", from deep inside os.
    path = str(tmp_path / "a\0b.sklenet")
    with pytest.raises(ValueError, match="'path' argument contains a NUL byte"):
        sklenet.save(fitted, path)
    with pytest.raises(ValueError, match="'path' argument contains a NUL byte"):
        sklenet.load(path)
    assert not list(tmp_path.iterdir())


def test_long_name_counted_in_bytes_is_saved(fitted, tmp_path):
    # 'é' * 121 is 242 bytes, a legal name; its temporary name was counted in
    # characters and came out longer than 255 bytes ("File name too long").
    path = tmp_path / ("é" * 121)
    sklenet.save(fitted, path)
    assert os.listdir(tmp_path) == [path.name]
    assert sklenet.load(path).n_features_in_ == fitted.n_features_in_


@POSIX
def test_overwrite_keeps_the_mode_of_a_private_file(fitted, tmp_path):
    # Issue 17 #18: chmod 600, save again: the file came back 0644.
    path = tmp_path / "private.sklenet"
    old = os.umask(0o022)
    try:
        sklenet.save(fitted, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # new: as the umask says
        path.chmod(0o600)
        sklenet.save(fitted, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        path.chmod(0o640)
        sklenet.save(fitted, path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
    finally:
        os.umask(old)
    assert os.listdir(tmp_path) == [path.name]


def test_write_returning_zero_bytes_raises(tmp_path, monkeypatch):
    # Issue 17 #13: os.write returning 0 made the write loop spin forever.
    monkeypatch.setattr(os, "write", lambda fd, data: 0)
    path = tmp_path / "out.bin"
    finished, error = _in_thread(lambda: _atomic_write.write_atomically(str(path), b"x" * 10),
                                 seconds=5)
    monkeypatch.undo()
    assert finished
    assert isinstance(error, OSError) and str(path) in str(error)
    assert not list(tmp_path.iterdir())


def test_write_error_message_names_the_file_not_a_model(tmp_path, monkeypatch):
    # Issue 18: "Cannot write the model file" for any file.
    def fsync(fd):
        raise OSError("the disk went away")

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "results.json"
    with pytest.raises(OSError, match="Cannot write .*results.json.*disk went away") as excinfo:
        _atomic_write.write_atomically(str(path), b"{}")
    assert "model" not in str(excinfo.value)


def test_file_without_batch_size_is_refused(model_file):
    # Issue 18: no "files from before batch_size='auto'" within format version 1.
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    del config["batch_size"]
    _save_forged(model_file, _arrays(header, data), header["__metadata__"], config)
    with pytest.raises(ModelFileError, match="field 'batch_size' must be an int > 0"):
        sklenet.load(model_file)


@pytest.mark.parametrize("case", ["one long label", "many padded labels", "too many classes"])
def test_label_bombs_are_refused_before_numpy(model_file, case):
    # Issue 17 #14: 200 labels, one 2.5 M characters long, cost 1.87 GB (numpy
    # pads each to the longest); 5,000 such labels asked for 261 GiB. Here at
    # a size the old code still loaded.
    if case == "one long label":
        classes = sorted([f"c{i:03d}" for i in range(199)] + ["z" * 100_000])
        kind, match = "str", f"MAX_LABEL_LENGTH={MAX_LABEL_LENGTH}"
    elif case == "many padded labels":
        classes = [f"{i:05d}" + "x" * (MAX_LABEL_LENGTH - 5) for i in range(5_000)]
        kind, match = "str", f"MAX_LABEL_CHARS={MAX_LABEL_CHARS}"
    else:
        classes = list(range(MAX_CLASSES + 1))
        kind, match = "int", f"MAX_CLASSES={MAX_CLASSES}"
    _forge_classes(model_file, classes, kind)
    start = time.perf_counter()
    error, peak = _peak_bytes(lambda: sklenet.load(model_file))
    assert isinstance(error, ModelFileError) and match in str(error), error
    assert time.perf_counter() - start < 5
    assert peak < 2 * model_file.stat().st_size + (32 << 20)


def test_labels_within_the_bounds_round_trip(model_file, fitted, digits):
    classes = sorted(f"{i}" + "é" * 1000 for i in range(10))
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config.update(classes=classes, classes_kind="str")
    _save_forged(model_file, _arrays(header, data), header["__metadata__"], config)
    loaded = sklenet.load(model_file)
    X, _ = digits
    np.testing.assert_array_equal(loaded.predict(X[:20]),
                                  np.array(classes)[fitted.predict(X[:20])])


def test_save_refuses_labels_load_would_refuse(tmp_path, digits):
    X, y = digits
    labels = np.array(["short"] * 9 + ["x" * (MAX_LABEL_LENGTH + 1)], dtype=object)
    clf = LeNet5Classifier(max_epochs=1, random_state=0, device="cpu").fit(X[:200],
                                                                            labels[y[:200]])
    with pytest.raises(TypeError, match="MAX_LABEL_LENGTH"):
        sklenet.save(clf, tmp_path / "long.sklenet")
    assert not list(tmp_path.iterdir())


def test_one_hot_predictions_cost_no_identity_matrix():
    # Issue 17 #15: np.eye(n_classes) made predict of one row take 405 MB at
    # 8,000 classes (6.7 GiB at 30,000).
    indices = np.array([7, 0, 7_999])
    error, peak = _peak_bytes(lambda: decode_predictions(indices, np.arange(8_000), True,
                                                         np.int64))
    assert error is None and peak < 1 << 20
    rows = decode_predictions(indices, np.arange(8_000), True, np.int64)
    assert rows.shape == (3, 8_000) and rows.dtype == np.int64
    np.testing.assert_array_equal(rows.argmax(axis=1), indices)
    assert rows.sum() == 3


@POSIX
@pytest.mark.parametrize("forgery", ["extra tensor", "huge shape"])
def test_large_tensor_table_is_refused_before_reading_the_tensors(model_file, forgery):
    # Issue 17 #16: a sparse file of 3 GB apparent size with a consistent
    # tensor table was read whole (2.6 GB, 18 s) before its names were checked.
    header, data = _read(model_file)
    junk = 200 << 20  # bytes: the old code read them all; sparse, they cost no disk
    end = len(data)
    if forgery == "extra tensor":
        header["junk"] = {"dtype": "F32", "shape": [junk // 4], "data_offsets": [end, end + junk]}
        match = r"unexpected \['junk'\]"
    else:
        entry = header["lenet5.output.weight"]
        start = entry["data_offsets"][0]
        for info in header.values():  # the tensors after it move by the difference
            if isinstance(info.get("data_offsets"), list) and info["data_offsets"][0] > start:
                info["data_offsets"] = [o + junk for o in info["data_offsets"]]
        entry["shape"] = [10, 84 + junk // 40]
        entry["data_offsets"][1] += junk
        match = r"'lenet5.output.weight' has shape \(10, \d+\), but .* needs \(10, 84\)"
    raw = json.dumps(header).encode()
    with open(model_file, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
        f.truncate(8 + len(raw) + len(data) + junk)
    start = time.perf_counter()
    error, peak = _peak_bytes(lambda: sklenet.load(model_file))
    assert isinstance(error, ModelFileError) and re.search(match, str(error)), error
    assert time.perf_counter() - start < 2
    assert peak < 32 << 20


# --------------------------------------------------------------------------- #
# Downloads and data files
# --------------------------------------------------------------------------- #
class _SlowHeaders(http.server.BaseHTTPRequestHandler):
    """A mirror that sends its status line and headers one byte every 0.5 s, forever."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        text = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-Slow-%d: y\r\n" % i for i in range(10_000))
        try:
            for byte in text:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if self.server.stopping.wait(0.5):
                    break
        except OSError:  # the client hung up, as it should
            pass
        self.close_connection = True


@pytest.fixture
def slow_mirror():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SlowHeaders)
    httpd.daemon_threads = True
    httpd.stopping = threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_response_headers_sent_slowly_are_cut_by_the_deadline(slow_mirror, tmp_path):
    # Issue 17 #10: a byte of headers every 0.5 s never trips a per-read
    # timeout; fetch_fashion_mnist(timeout=3) ran past 45 s.
    outcome = {}

    def fetch():
        start = time.monotonic()
        try:
            fetch_fashion_mnist(subset="test", mirrors=[slow_mirror], timeout=3, delay=0,
                                verbose=False)
        finally:
            outcome["elapsed"] = time.monotonic() - start

    finished, error = _in_thread(fetch, seconds=15)
    assert finished
    assert isinstance(error, DatasetNotFoundError) and "too slow" in str(error)
    assert 2.5 <= outcome["elapsed"] < 5.5
    assert not (tmp_path / "sklearn_data").exists()


@FIFO
def test_file_mirror_pointing_at_a_named_pipe_does_not_block(tmp_path):
    # Issue 17 #11: open() of the FIFO waited for a writer forever.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    fifo = mirror / TEST_FILES[0]
    os.mkfifo(fifo)
    finished, error = _in_thread(lambda: fetch_fashion_mnist(
        subset="test", mirrors=[mirror.as_uri()], delay=0, verbose=False))
    if not finished:  # let the old code's open() return
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert finished
    assert isinstance(error, DatasetNotFoundError) and "named pipe" in str(error)


@FIFO
def test_named_pipe_in_data_home_is_named_not_read(tmp_path, fashion_dir):
    user = tmp_path / "user"
    user.mkdir()
    os.mkfifo(user / TEST_FILES[0])
    (user / TEST_FILES[1]).symlink_to(fashion_dir / TEST_FILES[1])
    finished, error = _in_thread(lambda: fetch_fashion_mnist(
        subset="test", data_home=user, download_if_missing=False, verbose=False))
    assert finished
    assert isinstance(error, OSError) and "named pipe" in str(error)
    assert str(user / TEST_FILES[0]) in str(error)


@POSIX
def test_huge_sparse_file_in_data_home_is_refused_by_its_size(tmp_path, fashion_dir):
    # Issue 17 #12: an 8 GB sparse file of the official name took 60 s to hash.
    user = tmp_path / "user"
    user.mkdir()
    with open(user / TEST_FILES[0], "wb") as f:
        f.truncate(8 << 30)
    (user / TEST_FILES[1]).symlink_to(fashion_dir / TEST_FILES[1])
    start = time.monotonic()
    with pytest.raises(OSError, match=f"its size is {8 << 30} bytes, the official file's "
                                      f"4422102") as excinfo:
        fetch_fashion_mnist(subset="test", data_home=user, download_if_missing=False,
                            verbose=False)
    assert time.monotonic() - start < 1
    assert not isinstance(excinfo.value, FileNotFoundError)


@POSIX
def test_read_idx_of_a_huge_sparse_file_reads_only_the_header(tmp_path):
    # Issue 17 #17: a 3 GB sparse file with a 10-label header used 3.25 GB.
    path = tmp_path / "labels.idx"
    with open(path, "wb") as f:
        f.write(struct.pack(">II", 2049, 10) + bytes(range(10)))
        f.truncate(300 << 20)
    error, peak = _peak_bytes(lambda: read_idx(path))
    assert isinstance(error, ValueError)
    assert f"a file of 18 bytes, but the file has {300 << 20}" in str(error)
    assert peak < 1 << 20


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_read_idx_refuses_a_device():
    # Issue 17 #17: read_idx('/dev/zero') grew to 5.4 GB.
    error, peak = _peak_bytes(lambda: read_idx("/dev/zero"))
    assert isinstance(error, ValueError) and "a character device" in str(error)
    assert peak < 1 << 20


@FIFO
def test_read_idx_refuses_a_named_pipe(tmp_path):
    fifo = tmp_path / "labels.idx"
    os.mkfifo(fifo)
    finished, error = _in_thread(lambda: read_idx(fifo))
    if not finished:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert finished
    assert isinstance(error, ValueError) and "named pipe" in str(error)


def test_read_idx_streams_a_file_object():
    # A labels header declaring 10 bytes, followed by far more: read no further.
    class Endless:
        header = struct.pack(">II", 2049, 10)

        def __init__(self):
            self.given = 0

        def read(self, size=-1):
            assert size is not None and size >= 0, "asked to read everything"
            data = (self.header[self.given:] + bytes(size))[:size]
            self.given += size
            return data

    f = Endless()
    with pytest.raises(ValueError, match="unexpected extra bytes"):
        read_idx(f, name="endless")
    assert f.given <= 8 + 10 + 1


def test_datasets_has_no_download_settings_shim():
    # Issue 18: four constants re-exported under "noqa: F401"; one, public, stays.
    for name in ("DOWNLOAD_TIMEOUT", "DOWNLOAD_TIMEOUT_ENV", "READ_TIMEOUT"):
        assert not hasattr(datasets, name)
    assert datasets.DATA_HOME_ENV == "SKLENET_DATA_HOME" and "DATA_HOME_ENV" in datasets.__all__

