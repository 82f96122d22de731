"""Safe model files: sklenet.save / sklenet.load (safetensors + JSON, no pickle)."""

import json
import os
import pickle
import struct
import warnings

import numpy as np
import pytest
import torch

import sklenet
from sklenet import LeNet5Classifier, ModelFileError
from sklenet import persistence

pytest.importorskip("safetensors")


def _fit(X, y, **params):
    params = {"max_epochs": 2, "random_state": 0, "device": "cpu"} | params
    return LeNet5Classifier(**params).fit(X, y)


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    return _fit(X[:600], y[:600])


@pytest.fixture
def model_file(fitted, tmp_path):
    path = tmp_path / "model.sklenet"
    fitted.save(path)
    return path


def _read(path):
    header, data = persistence._read_header(os.fspath(path))
    return header, data


def _write(path, header, data, rehash=False):
    """Write a safetensors file; ``rehash`` recomputes the digest as a forger would."""
    if rehash:
        arrays = persistence._tensors_from_header("f", header, data)
        header["__metadata__"]["sha256"] = persistence._digest(arrays, header["__metadata__"])
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


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
    path = clf.save(tmp_path / "m.sklenet")
    loaded = sklenet.load(path)
    assert type(loaded) is LeNet5Classifier
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert np.array_equal(loaded.predict_log_proba(X), clf.predict_log_proba(X))
    assert np.array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.predict(X).dtype == clf.predict(X).dtype
    assert np.array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype.kind == clf.classes_.dtype.kind


@pytest.mark.parametrize("params", [
    {"precision": "bfloat16", "channels_last": False},
    {"channels_last": True, "activation": "relu", "dropout": 0.2},
])
def test_round_trip_with_execution_settings(digits, tmp_path, params):
    X, y = digits
    params = {k: v for k, v in params.items()
              if k in LeNet5Classifier().get_params()}  # settings this version has
    clf = _fit(X[:300], y[:300], max_epochs=1, **params)
    loaded = sklenet.load(clf.save(tmp_path / "m.sklenet"))
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
    loaded = sklenet.load(clf.save(tmp_path / "m.sklenet"))
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


def test_python_object_params_warn_and_are_not_saved(fitted, tmp_path):
    import copy

    from skorch.callbacks import EpochTimer

    clf = copy.deepcopy(fitted).set_params(callbacks=[EpochTimer()],
                                           random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning) as record:
        clf.save(tmp_path / "m.sklenet")
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
        LeNet5Classifier().save(tmp_path / "m.sklenet")


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
    ("classes", ["0", 1], "list of at least 2 int"),
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
    with pytest.raises(ModelFileError, match="not JSON"):
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
    arrays = persistence._tensors_from_header("f", header, data)
    arrays = {k: v.copy() for k, v in arrays.items()}
    arrays["lenet5.output.weight"] = np.zeros((3, 84), np.float32)  # 3 classes, not 10
    arrays["lenet5.output.bias"] = np.zeros(3, np.float32)
    metadata = dict(header["__metadata__"])
    metadata["sha256"] = persistence._digest(arrays, metadata)
    save_file(arrays, model_file, metadata=metadata)
    match = r"lenet5.output.weight.* has shape \(3, 84\).*needs \(10, 84\)"
    with pytest.raises(ModelFileError, match=match):
        sklenet.load(model_file)


def test_missing_tensor(model_file):
    from safetensors.numpy import save_file

    header, data = _read(model_file)
    arrays = dict(persistence._tensors_from_header("f", header, data))
    del arrays["lenet5.c1.bias"]
    metadata = dict(header["__metadata__"])
    metadata["sha256"] = persistence._digest(arrays, metadata)
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


@pytest.mark.parametrize("name, value", [
    ("optimizer", {"optimizer": "os.system"}),
    ("optimizer", {"optimizer": "torch.optim.lr_scheduler"}),
    ("activation", "sigmoid"),
    ("max_epochs", {"__reduce__": "os.system"}),
])
def test_invalid_parameter_values(model_file, name, value):
    header, data = _read(model_file)
    config = json.loads(header["__metadata__"]["config"])
    config["params"][name] = value
    header["__metadata__"]["config"] = json.dumps(config)
    _write(model_file, header, data, rehash=True)
    with pytest.raises(ModelFileError):
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
