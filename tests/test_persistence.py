"""Safe model files: sklenet.save / sklenet.load (safetensors + JSON, no pickle)."""

import errno
import json
import os
import pickle
import stat
import struct
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import sklenet
from sklenet import LeNet5Classifier, ModelFileError, _model_file, persistence
from sklenet.persistence import MAX_JSON_DEPTH

pytest.importorskip("safetensors")


def _fit(X, y, **params):
    params = {"max_epochs": 2, "random_state": 0} | params
    return LeNet5Classifier(**params).fit(X, y)


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return _fit(X[:600], y[:600])


@pytest.fixture
def model_file(fitted, tmp_path):
    path = tmp_path / "model.sklenet"
    sklenet.save(fitted, path)
    return path


def _read(path):
    """``(header, data)`` of a safetensors file, parsed here (as a forger would)."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), raw[8 + n:]


def _arrays(header, data):
    arrays = {}
    for name, info in header.items():
        if name != "__metadata__":
            start, end = info["data_offsets"]
            dtype = {"F32": np.float32, "I64": np.int64}[info["dtype"]]
            arrays[name] = np.frombuffer(data[start:end], dtype).reshape(info["shape"])
    return arrays


def _write(path, header, data, rehash=False):
    """Write a safetensors file; ``rehash`` recomputes the digest as a forger would."""
    if rehash:
        metadata = header["__metadata__"]
        metadata["sha256"] = _model_file.digest(_arrays(header, data), metadata)
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


def _forge(path, rehash=True, **fields):
    """Rewrite the model file at ``path`` with config ``fields`` replaced."""
    header, data = _read(path)
    config = json.loads(header["__metadata__"]["config"])
    config.update(fields)
    header["__metadata__"]["config"] = json.dumps(config)
    _write(path, header, data, rehash=rehash)


@pytest.mark.parametrize("labels", ["int", "str", "bool", "one_hot"])
def test_round_trip_gives_identical_predictions(digits, tmp_path, labels):
    X, y = digits
    X, y = X[:400], y[:400]
    if labels == "str":
        y = np.array([f"digit {d}" for d in y])
    elif labels == "bool":
        y = y % 2 == 0
    elif labels == "one_hot":
        y = np.eye(10, dtype=int)[y]
    clf = _fit(X, y, max_epochs=1)
    path = sklenet.save(clf, tmp_path / "m.sklenet")
    loaded = sklenet.load(path)
    assert type(loaded) is LeNet5Classifier
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.predict_log_proba(X), clf.predict_log_proba(X))
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.predict(X).dtype == clf.predict(X).dtype
    assert np.array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype.kind == clf.classes_.dtype.kind
    # And in the user's own labels, not only like the saved model (a decoding bug
    # both share would match that): the label of the most probable column, in
    # the dtype of y, right on most training images.
    predicted, best = loaded.predict(X), loaded.predict_proba(X).argmax(axis=1)
    assert predicted.dtype == y.dtype
    if labels == "one_hot":
        assert np.array_equal(loaded.classes_, np.arange(10))
        assert np.array_equal(predicted, np.eye(10, dtype=y.dtype)[best])
        assert np.mean(predicted.argmax(axis=1) == y.argmax(axis=1)) > 0.6
    else:
        assert np.array_equal(loaded.classes_, np.unique(y))
        assert np.array_equal(predicted, np.unique(y)[best])
        assert np.mean(predicted == y) > 0.6


def test_unsigned_integer_labels_round_trip(digits, tmp_path):
    X, y = digits
    X, y = X[:300], y[:300].astype(np.uint8)
    clf = _fit(X, y, max_epochs=1)
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "m.sklenet"))
    assert np.array_equal(loaded.classes_, np.unique(y))
    assert np.array_equal(loaded.predict(X), clf.predict(X))


@pytest.mark.parametrize("params", [
    {"precision": "bfloat16", "channels_last": False},
    {"channels_last": True, "activation": "relu", "dropout": 0.2},
])
def test_round_trip_with_execution_settings(digits, tmp_path, params):
    X, y = digits
    params = {k: v for k, v in params.items()
              if k in LeNet5Classifier().get_params()}  # settings this version has
    clf = _fit(X[:300], y[:300], max_epochs=1, **params)
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "m.sklenet"))
    assert loaded.get_params() == clf.get_params()
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_round_trip_restores_params_and_attributes(fitted, model_file):
    loaded = sklenet.load(model_file)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.image_shape_ == fitted.image_shape_
    assert loaded.n_features_in_ == fitted.n_features_in_
    assert loaded.history_ == fitted.history_
    assert loaded.n_iter_ == fitted.n_iter_
    assert str(loaded.net_.device) == "cpu"
    for name, tensor in fitted.net_.module_.state_dict().items():
        assert torch.equal(loaded.net_.module_.state_dict()[name], tensor)


def test_round_trip_params_of_every_kind(digits, tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X[:300], columns=[f"px{i}" for i in range(64)])
    clf = _fit(df, y[:300], max_epochs=1, optimizer=torch.optim.AdamW, image_shape=(8, 8),
               validation_fraction=None, pooling="avg", lr=float("5e-4"))
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "m.sklenet"))
    assert loaded.get_params() == clf.get_params()
    assert loaded.optimizer is torch.optim.AdamW
    assert loaded.image_shape == (8, 8)
    assert list(loaded.feature_names_in_) == list(clf.feature_names_in_)
    assert np.array_equal(loaded.predict_proba(df), clf.predict_proba(df))


def test_loaded_model_keeps_training(fitted, model_file, digits):
    X, y = digits
    loaded = sklenet.load(model_file)
    loaded.partial_fit(X[:200], y[:200])
    assert loaded.n_iter_ == 1  # a fresh optimizer and history, same weights
    assert loaded.score(X[:600], y[:600]) > 0.5


def test_python_object_params_warn_and_are_not_saved(model_file, tmp_path):
    from skorch.callbacks import EpochTimer

    clf = sklenet.load(model_file).set_params(callbacks=[EpochTimer()],
                                              random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning) as record:
        sklenet.save(clf, tmp_path / "m.sklenet")
    messages = " ".join(str(w.message) for w in record)
    assert "callbacks=" in messages and "random_state=" in messages
    loaded = sklenet.load(tmp_path / "m.sklenet")
    assert loaded.callbacks is None and loaded.random_state is None


def test_file_is_a_plain_safetensors_file(model_file, fitted):
    from safetensors import safe_open

    with safe_open(model_file, framework="pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    assert keys == set(fitted.net_.module_.state_dict())
    assert metadata["format"] == persistence.FORMAT_NAME
    assert metadata["format_version"] == str(persistence.FORMAT_VERSION)
    assert metadata["sklenet_version"] == sklenet.__version__
    config = json.loads(metadata["config"])
    assert config["classes"] == list(range(10)) and config["classes_kind"] == "int"


def test_load_leaves_global_random_state_alone(model_file):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    sklenet.load(model_file)
    assert torch.equal(torch.rand(3), expected)


def test_unfitted_estimator_cannot_be_saved(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        sklenet.save(LeNet5Classifier(), tmp_path / "m.sklenet")


# ------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="Cannot read"):
        sklenet.load(tmp_path / "nope.sklenet")


@pytest.mark.parametrize("keep", [0, 5, 8, 100, -1, -300])
def test_truncated_file(model_file, keep):
    raw = model_file.read_bytes()
    model_file.write_bytes(raw[:keep] if keep >= 0 else raw[:len(raw) + keep])
    with pytest.raises(ModelFileError, match="truncated|bytes long"):
        sklenet.load(model_file)


def test_tampered_weights(model_file):
    raw = bytearray(model_file.read_bytes())
    raw[-100] ^= 0x01  # one bit of one weight
    model_file.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="damaged or was modified"):
        sklenet.load(model_file)


def test_tampered_header(model_file):
    raw = bytearray(model_file.read_bytes())
    (n,) = struct.unpack("<Q", raw[:8])
    # A backslash making an invalid escape, \o. (The header's middle byte, used
    # before, differs between saves and was sometimes a backslash already: the
    # file was then left unchanged.)
    at = raw.index(b'"format_version"', 8, 8 + n) + 1
    raw[at] = ord("\\")
    model_file.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        sklenet.load(model_file)


def test_tampered_metadata(model_file):
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["params"]["activation"] = "relu"
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match="damaged or was modified"):
        sklenet.load(model_file)


@pytest.mark.parametrize("field, value, match", [
    ("classes", [1, 0, 2, 3, 4, 5, 6, 7, 8, 9], "sorted and distinct"),
    ("classes", [0, 1, 1, 3, 4, 5, 6, 7, 8, 9], "sorted and distinct"),
    ("classes", ["0"] + list(range(1, 10)), "Class label '0' is not an int64"),
    ("classes", list(range(9)) + [2 ** 70], "not an int64"),
    ("classes_kind", ["int"], "kind of class labels"),
    ("one_hot", 1, "one_hot"),
    ("n_iter", -1, "n_iter"),
    ("image_shape", [1, 8, 9], "does not match"),
    ("feature_names_in", ["a"], "feature_names_in"),
    ("history", [{"epoch": {"tuple": []}}], "history"),
])
def test_forged_metadata_is_validated(model_file, field, value, match):
    # A forger can recompute the digest; every field is still checked.
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config[field] = value
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_non_string_metadata(model_file):
    header, data = _read(model_file)
    header["__metadata__"]["config"] = {"params": {}}
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match="must be strings"):
        sklenet.load(model_file)


class _Payload:
    """Unpickling this creates a directory: the side effect must never happen."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_not_a_model_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some text, long enough to have a header length")
    with pytest.raises(ModelFileError, match="not start with a safetensors header"):
        sklenet.load(path)


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_pickle_payload_is_never_executed(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.sklenet"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Payload(marker), protocol=4))
    else:
        import joblib

        joblib.dump(_Payload(marker), path)
    with pytest.raises(ModelFileError, match="pickle"):
        sklenet.load(path)
    assert not marker.exists()
    # Sanity check of the test itself: unpickling does run the payload.
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


def test_pickle_inside_metadata_is_never_unpickled(model_file, tmp_path):
    marker = tmp_path / "pwned"
    header, data = _read(model_file)
    header["__metadata__"]["config"] = pickle.dumps(_Payload(marker), protocol=0).decode(
        "latin-1")
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match="'config' metadata is not valid JSON"):
        sklenet.load(model_file)
    assert not marker.exists()


def test_torch_save_zip_is_rejected(tmp_path, fitted):
    path = tmp_path / "model.pt"
    torch.save(fitted.net_.module_.state_dict(), path)
    with pytest.raises(ModelFileError, match="zip archive"):
        sklenet.load(path)


def test_other_safetensors_file_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(ModelFileError, match="not an sklenet model file"):
        sklenet.load(path)


def test_wrong_tensor_shapes(model_file):
    from safetensors.numpy import save_file

    header, data = _read(model_file)
    arrays = {k: v.copy() for k, v in _arrays(header, data).items()}
    arrays["lenet5.c3.weight"] = np.zeros((16, 6, 3, 3), np.float32)  # 3x3, not 5x5
    metadata = dict(header["__metadata__"])
    metadata["sha256"] = _model_file.digest(arrays, metadata)
    save_file(arrays, model_file, metadata=metadata)
    match = r"lenet5.c3.weight.* has shape \(16, 6, 3, 3\).*needs \(16, 6, 5, 5\)"
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_output_layer_must_match_the_classes(model_file):
    from safetensors.numpy import save_file

    header, data = _read(model_file)
    arrays = {k: v.copy() for k, v in _arrays(header, data).items()}
    arrays["lenet5.output.weight"] = np.zeros((3, 84), np.float32)  # 3 classes, not 10
    arrays["lenet5.output.bias"] = np.zeros(3, np.float32)
    metadata = dict(header["__metadata__"])
    metadata["sha256"] = _model_file.digest(arrays, metadata)
    save_file(arrays, model_file, metadata=metadata)
    match = r"declares 10 classes, but its tensor 'lenet5.output.weight' has shape \(3, 84\)"
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_missing_tensor(model_file):
    from safetensors.numpy import save_file

    header, data = _read(model_file)
    arrays = _arrays(header, data)
    del arrays["lenet5.c1.bias"]
    metadata = dict(header["__metadata__"])
    metadata["sha256"] = _model_file.digest(arrays, metadata)
    save_file(arrays, model_file, metadata=metadata)
    with pytest.raises(ModelFileError, match=r"missing \['lenet5.c1.bias'\]"):
        sklenet.load(model_file)


def test_newer_format_version(model_file):
    header, data = _read(model_file)
    header["__metadata__"]["format_version"] = str(persistence.FORMAT_VERSION + 1)
    header["__metadata__"]["sklenet_version"] = "99.0"
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match="written by sklenet 99.0.*Upgrade sklenet"):
        sklenet.load(model_file)


def test_unknown_parameter_from_newer_version(model_file):
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["params"]["quantum_mode"] = True
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with pytest.raises(ModelFileError, match="quantum_mode.*Upgrade sklenet"):
        sklenet.load(model_file)


@pytest.mark.parametrize("name, value, match", [
    ("optimizer", {"optimizer": "os.system"}, "unknown optimizer 'os.system'"),
    ("optimizer", {"optimizer": "torch.optim.lr_scheduler"},
     "unknown optimizer 'torch.optim.lr_scheduler'"),
    ("activation", "sigmoid", "invalid parameters: The 'activation' parameter.*'sigmoid'"),
    ("max_epochs", {"__reduce__": "os.system"}, "Unexpected value {'__reduce__'"),
])
def test_invalid_parameter_values(model_file, name, value, match):
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["params"][name] = value
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_cuda_model_loads_on_cpu(model_file):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["device"] = "cuda"
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = sklenet.load(model_file)
    assert any("no CUDA device" in str(w.message) for w in caught)
    assert str(loaded.net_.device) == "cpu"


# ------------------------------------------------------- hostile files


def _refuse_to_build(monkeypatch):
    """Make building the estimator fail the test: a refusal must come before it."""
    def build(*args, **kwargs):
        raise AssertionError("load() built the network of a file it should refuse")

    monkeypatch.setattr(persistence, "_rebuild_estimator", build)


@pytest.mark.parametrize("n_classes, match", [
    (4_000_000, "header takes .* bytes, more than .*MAX_HEADER_BYTES"),
    (100_000, "declares 100000 classes, but its tensor 'lenet5.output.weight' has shape"),
])
def test_forged_class_count_is_refused_before_building(model_file, monkeypatch, n_classes,
                                                       match):
    # The digest proves integrity, not origin: a forger recomputes it. Before,
    # a 29 MiB file declaring 4,000,000 classes made load() build their network
    # (+1.3-1.6 GiB, ~12 s) before refusing it.
    _forge(model_file, classes=list(range(n_classes)))
    _refuse_to_build(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)
    assert time.perf_counter() - start < 1.0


def test_forged_channel_count_is_refused_before_building(model_file, monkeypatch):
    # C1 has a slice per input channel: a million channels is a 600 MB network.
    _forge(model_file, image_shape=[1_000_000, 1, 1], n_features_in=1_000_000)
    _refuse_to_build(monkeypatch)
    with pytest.raises(ModelFileError, match="declares 1000000 channels"):
        sklenet.load(model_file)


def _nested(depth):
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, 200_000])
def test_deeply_nested_header_is_refused(model_file, depth):
    # 200,000 deep raised RecursionError before.
    header, data = _read(model_file)
    header["__metadata__"]["deep"] = "DEEP"  # at depth 2: {"__metadata__": {"deep":
    raw = json.dumps(header).replace('"DEEP"', _nested(depth)).encode()
    model_file.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    with pytest.raises(ModelFileError, match="header nests arrays and objects deeper than"):
        sklenet.load(model_file)


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, 200_000])
def test_deeply_nested_config_is_refused(model_file, depth, monkeypatch):
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["history"] = "DEEP"  # at depth 1: {"history":
    header["__metadata__"]["config"] = json.dumps(config).replace('"DEEP"', _nested(depth))
    _write(model_file, header, data, rehash=True)
    _refuse_to_build(monkeypatch)
    if depth + 1 <= MAX_JSON_DEPTH:  # parsed, then refused as a bad history
        match = "field 'history' must be a list of objects"
    else:
        match = "'config' metadata nests arrays and objects deeper than"
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_brackets_inside_strings_are_not_nesting(digits, tmp_path):
    X, y = digits
    labels = np.array(['[[[[[[[[[[[[[[[[[[[[ "{{{{{{{{{{{{{{{{{{{{ \\', "a"])
    clf = _fit(X[:100], labels[y[:100] % 2], max_epochs=1)
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "m.sklenet"))
    assert list(loaded.classes_) == list(clf.classes_)


@pytest.mark.parametrize("entry, value, match", [
    ("dtype", ["F32"], "unsupported dtype"),  # TypeError (unhashable) before
    ("dtype", "F8_E4M3", "unsupported dtype"),
    ("shape", [True, 6], "bad shape"),
    ("shape", [1] * 1000, "bad shape"),
    ("data_offsets", [0, 2 ** 80], "offsets span|truncated"),
    ("data_offsets", "0-24", "bad shape or offsets"),
])
def test_malformed_tensor_table(model_file, entry, value, match):
    header, data = _read(model_file)
    header["lenet5.c1.bias"][entry] = value
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_unused_bytes_between_tensors_are_refused(model_file):
    # Every byte of the data section belongs to exactly one tensor: a gap could
    # hide anything, even when the digest is recomputed over the tensors.
    header, data = _read(model_file)
    last = max((name for name in header if name != "__metadata__"),
               key=lambda name: header[name]["data_offsets"][0])
    start, end = header[last]["data_offsets"]
    header[last]["data_offsets"] = [start + 8, end + 8]
    _write(model_file, header, data[:start] + b"\0" * 8 + data[start:], rehash=True)
    with pytest.raises(ModelFileError, match="overlaps or has gaps"):
        sklenet.load(model_file)


@pytest.mark.parametrize("callbacks", [[1], ["skorch.callbacks.EpochTimer"], {"x": 1}])
def test_forged_callbacks_are_refused(model_file, callbacks):
    # AttributeError before: the "callbacks" reached skorch.
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["params"]["callbacks"] = callbacks
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with pytest.raises(ModelFileError, match="'callbacks' parameter must be null"):
        sklenet.load(model_file)


@pytest.mark.parametrize("metadata, match", [
    # str.isdigit() accepts it, int() does not
    ({"format_version": "\u00b2"}, "invalid format_version '\u00b2'"),
    # more digits than int() parses
    ({"format_version": "9" * 5000}, "invalid format_version '9999"),
    ({"sha256": None}, "the metadata has no 'sha256' digest"),
])
def test_malformed_metadata(model_file, metadata, match):
    header, data = _read(model_file)
    header["__metadata__"].update(metadata)
    if metadata.get("sha256", "") is None:
        del header["__metadata__"]["sha256"]
    _write(model_file, header, data)
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_huge_integer_in_header(model_file):
    header, data = _read(model_file)
    header["__metadata__"]["big"] = "BIG"
    raw = json.dumps(header).replace('"BIG"', "9" * 5000).encode()
    model_file.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    with pytest.raises(ModelFileError, match="not valid JSON"):
        sklenet.load(model_file)


_ODD_VALUES = [None, True, False, -1, 0, 3, 2 ** 70, -(2 ** 70), 1.5, 1e308, "", "x",
               "cuda", [], [0], [1, 2], [[1]], ["a", "b"], [None, None], {}, {"a": 1},
               {"tuple": []}, {"tuple": [1, 2]}, {"float": "inf"}, {"float": [1]},
               {"optimizer": "torch.optim.Adam"}, [1_000_000] * 3, "F32", ["F32"]]


def _header_mutations(header):
    """Forged variants of a valid header: ``(name, header, rehash)``."""
    import copy

    config = json.loads(header["__metadata__"]["config"])

    def with_config(new_config):
        forged = copy.deepcopy(header)
        forged["__metadata__"]["config"] = json.dumps(new_config)
        return forged

    for field in list(config) + ["unknown_field"]:
        for i, value in enumerate(_ODD_VALUES):
            yield f"config.{field}={i}", with_config(dict(config, **{field: value})), True
        yield f"config.-{field}", with_config({k: v for k, v in config.items()
                                              if k != field}), True
    for name in list(config["params"]):
        for i, value in enumerate(_ODD_VALUES):
            params = dict(config["params"], **{name: value})
            yield f"params.{name}={i}", with_config(dict(config, params=params)), True
    for key in list(header["__metadata__"]):
        for i, value in enumerate(_ODD_VALUES):
            forged = copy.deepcopy(header)
            forged["__metadata__"][key] = value
            yield f"metadata.{key}={i}", forged, key != "sha256"
    for tensor in ("lenet5.output.weight", "adapter.mean"):
        for entry in ("dtype", "shape", "data_offsets"):
            for i, value in enumerate(_ODD_VALUES):
                forged = copy.deepcopy(header)
                forged[tensor][entry] = value
                yield f"{tensor}.{entry}={i}", forged, False
    for i, value in enumerate(_ODD_VALUES):
        yield f"header={i}", value, False
        forged = copy.deepcopy(header)
        forged["__metadata__"] = value
        yield f"__metadata__={i}", forged, False


def test_fuzzed_headers_give_only_model_file_errors(model_file, tmp_path):
    """Hundreds of forged headers: each loads or raises ModelFileError, nothing else."""
    header, data = _read(model_file)
    header_text = json.dumps(header)
    path = tmp_path / "forged.sklenet"
    outcomes = {}
    for name, forged, rehash in _header_mutations(header):
        if rehash:
            try:
                forged["__metadata__"]["sha256"] = _model_file.digest(
                    _arrays(forged, data), forged["__metadata__"])
            except Exception:  # the forgery breaks the forger's own tools: no matter
                pass
        raw = json.dumps(forged).encode()
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
        outcomes[name] = _load_outcome(path)
    # Byte-level damage to the header as well, deterministically.
    rng = np.random.RandomState(0)
    for i in range(150):
        raw = bytearray(header_text.encode())
        for at in rng.randint(0, len(raw), size=rng.randint(1, 4)):
            raw[at] = rng.randint(0, 256)
        path.write_bytes(struct.pack("<Q", len(raw)) + bytes(raw) + data)
        outcomes[f"bytes{i}"] = _load_outcome(path)
    others = {name: outcome for name, outcome in outcomes.items()
              if outcome not in ("loaded", "ModelFileError")}
    assert not others
    assert len(outcomes) > 1000
    assert sum(outcome == "ModelFileError" for outcome in outcomes.values()) > 900


def _load_outcome(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            sklenet.load(path)
        except ModelFileError:
            return "ModelFileError"
        except Exception as exc:  # what the test is looking for
            return f"{type(exc).__name__}: {exc}"
    return "loaded"


# ------------------------------------------------------ non-regular files


def _load_in_thread(path):
    """Run load(path) in a thread; ``(finished_within_10_s, exception)``."""
    result = {}

    def run():
        try:
            sklenet.load(path)
        except BaseException as exc:  # reported to the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    return not thread.is_alive(), result.get("error")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    # Blocked forever before, waiting for a writer.
    fifo = tmp_path / "model.sklenet"
    os.mkfifo(fifo)
    finished, error = _load_in_thread(fifo)
    assert finished
    assert isinstance(error, ModelFileError) and "named pipe" in str(error)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_file_replaced_by_a_pipe_after_the_check(model_file, tmp_path, monkeypatch):
    # A FIFO swapped in between the stat and the open: opening does not block,
    # and the open file is checked again.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sklenet.load(model_file)  # imports done before os.stat lies
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        if os.fspath(path) == os.fspath(fifo):
            path = model_file
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    finished, error = _load_in_thread(fifo)
    assert finished
    assert isinstance(error, ModelFileError) and "named pipe" in str(error)


@pytest.mark.parametrize("special, what", [("dir", "a directory"),
                                           ("/dev/zero", "a character device")])
def test_special_files_are_refused(tmp_path, special, what):
    path = tmp_path if special == "dir" else Path(special)
    if not path.exists():
        pytest.skip(f"no {special} here")
    finished, error = _load_in_thread(path)
    assert finished
    assert isinstance(error, ModelFileError) and what in str(error)


# ----------------------------------------------------------------- device


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_load_on_missing_cuda_gives_the_estimators_error(model_file, digits):
    # AssertionError from inside torch before.
    X, y = digits
    with pytest.raises(ValueError) as from_estimator:
        LeNet5Classifier(device="cuda", max_epochs=1).fit(X[:50], y[:50])
    with pytest.raises(ValueError) as from_load:
        sklenet.load(model_file, device="cuda")
    assert not isinstance(from_load.value, ModelFileError)
    assert str(from_load.value) == str(from_estimator.value)


def test_load_device_values(model_file, fitted, digits):
    assert str(sklenet.load(model_file, device="cpu").net_.device) == "cpu"
    auto = sklenet.load(model_file, device="auto")
    assert str(auto.net_.device) == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        X = digits[0][:100]
        assert np.array_equal(auto.predict_proba(X), fitted.predict_proba(X))
    with pytest.raises(ValueError, match="device must be one of"):
        sklenet.load(model_file, device="tpu")


# ------------------------------------------------------------------- save


def _listing(directory):
    return sorted(p.name for p in Path(directory).iterdir())


class _Fault:
    """Make ``os.<name>`` fail (or be interrupted) on its first call on a save."""

    def __init__(self, monkeypatch, name, exc):
        self.real = getattr(os, name)
        self.exc = exc
        monkeypatch.setattr(os, name, self)

    def __call__(self, *args, **kwargs):
        if self.exc is not None:
            exc, self.exc = self.exc, None
            if isinstance(exc, OSError) and self.real is os.write:
                self.real(args[0], args[1][:1000])  # a part is written first
            if self.real is os.close:
                self.real(*args)  # the descriptor is released even when close fails
            raise exc
        return self.real(*args, **kwargs)


def _disk_full():
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("call, exc", [
    ("write", _disk_full()),
    ("fsync", _disk_full()),
    ("close", _disk_full()),  # NFS reports a full disk on close
    ("replace", OSError(errno.EACCES, os.strerror(errno.EACCES))),
    ("write", KeyboardInterrupt()),
    ("fsync", KeyboardInterrupt()),
])
@pytest.mark.parametrize("previous", [True, False])
def test_failed_save_leaves_the_previous_file(fitted, tmp_path, monkeypatch, call, exc,
                                              previous):
    # With safetensors 0.7.0 a disk-full overwrite truncated the previous
    # file, and errors were SafetensorErrors naming a hidden .tmpXXXX path.
    path = tmp_path / "model.sklenet"
    if previous:
        path.write_bytes(b"the previous model file")
    before = _listing(tmp_path)
    _Fault(monkeypatch, call, exc)
    with pytest.raises(type(exc)) as raised:
        sklenet.save(fitted, path)
    monkeypatch.undo()
    assert _listing(tmp_path) == before  # no temporary file left behind
    if previous:
        assert path.read_bytes() == b"the previous model file"
    if isinstance(exc, OSError):
        assert raised.value.errno == exc.errno
        assert raised.value.strerror == exc.strerror
        assert raised.value.filename == str(path)
        assert ".tmp" not in str(raised.value)


def test_save_errors_name_the_users_path(fitted, tmp_path):
    path = tmp_path / "missing-directory" / "model.sklenet"
    with pytest.raises(FileNotFoundError) as raised:
        sklenet.save(fitted, path)
    assert raised.value.filename == str(path)
    assert not isinstance(raised.value, ValueError)


def test_save_does_not_depend_on_safetensors_writing_files(fitted, tmp_path, monkeypatch):
    import safetensors.numpy
    import safetensors.torch

    def save_file(*args, **kwargs):
        raise AssertionError("the file must be written by sklenet, atomically")

    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)
    monkeypatch.setattr(safetensors.torch, "save_file", save_file)
    path = tmp_path / "model.sklenet"
    path.write_bytes(b"old")
    sklenet.save(fitted, path)
    assert _listing(tmp_path) == ["model.sklenet"]
    assert sklenet.load(path).n_iter_ == fitted.n_iter_


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_file_follows_the_umask(fitted, tmp_path, umask, mode):
    # Files were 0600 whatever the umask before.
    old = os.umask(umask)
    try:
        path = sklenet.save(fitted, tmp_path / "model.sklenet")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_save_refuses_a_file_load_would_refuse(fitted, tmp_path, monkeypatch):
    path = tmp_path / "model.sklenet"
    path.write_bytes(b"old")
    monkeypatch.setattr(persistence, "MAX_HEADER_BYTES", 1000)
    with pytest.raises(ValueError, match="MAX_HEADER_BYTES=1000.*history_"):
        sklenet.save(fitted, path)
    assert path.read_bytes() == b"old"


def test_round_trip_of_the_time_to_accuracy_options(tmp_path):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = LeNet5Classifier(max_epochs=1, batch_size="auto", lr_schedule="onecycle",
                           label_smoothing=0.1, ema_decay=0.9, random_erasing=0.3,
                           test_time_flip=True, random_state=0).fit(X[:300], y[:300])
    loaded = sklenet.load(sklenet.save(clf, tmp_path / "m.sklenet"))
    assert loaded.get_params() == clf.get_params()
    assert loaded.batch_size_ == clf.batch_size_ == 32
    np.testing.assert_array_equal(loaded.predict_proba(X[:50]), clf.predict_proba(X[:50]))
