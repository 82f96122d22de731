"""ONNX export: sklenet.to_onnx and the skl2onnx pipeline converter."""

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import sklenet
from sklenet import LeNet5Classifier

# The ONNX graph computes in float32: models under test are fitted in float32 so that
# its outputs match predict_proba to float rounding (bfloat16 would differ by ~1e-2).
F32 = dict(random_state=0, precision="float32")

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

#: The bar set by the issue for probabilities of the exported model.
ATOL = 1e-5


def _session(model):
    return ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])


def _run(session, X):
    label, proba = session.run(["label", "probabilities"], {"input": X})
    return label, proba


@pytest.fixture(scope="module")
def fashion(fashion_dir):
    from sklenet.datasets import fetch_fashion_mnist

    X_train, y_train = fetch_fashion_mnist(subset="train", data_home=fashion_dir,
                                           download_if_missing=False, return_X_y=True,
                                           verbose=False)
    X_test, _ = fetch_fashion_mnist(subset="test", data_home=fashion_dir,
                                    download_if_missing=False, return_X_y=True, verbose=False)
    clf = LeNet5Classifier(max_epochs=2, **F32)
    clf.fit(X_train[:2000], y_train[:2000])  # uint8 pixels, as loaded
    return clf, X_test[:1000]


def test_fashion_mnist_flat_rows(fashion, tmp_path):
    clf, X = fashion
    path = tmp_path / "lenet5.onnx"
    sklenet.to_onnx(clf, path)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape == ["N", 784]
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    label, proba = _run(session, X.astype(np.float32))
    expected = clf.predict_proba(X)
    assert proba.dtype == np.float32 and proba.shape == (1000, 10)
    assert np.abs(proba - expected).max() <= ATOL
    assert label.dtype == np.int64
    assert np.array_equal(label, clf.predict(X))
    assert clf.score(X, label) == 1.0  # sanity: the model did learn something
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)


@pytest.mark.parametrize("layout, shape", [("nchw", (1, 28, 28)), ("nhw", (28, 28))])
def test_fashion_mnist_images(fashion, layout, shape):
    clf, X = fashion
    images = X.reshape((-1,) + shape)
    session = _session(sklenet.to_onnx(clf, input_layout=layout))
    label, proba = _run(session, images.astype(np.float32))
    assert np.abs(proba - clf.predict_proba(images)).max() <= ATOL
    assert np.array_equal(label, clf.predict(images))


def test_fashion_mnist_uint8_input(fashion):
    clf, X = fashion
    session = _session(sklenet.to_onnx(clf, input_dtype="uint8"))
    label, proba = _run(session, X)  # raw uint8 pixels, no cast
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))


@pytest.mark.parametrize("batch_size", [1, 2, 7, 300])
def test_any_batch_size(fashion, batch_size):
    clf, X = fashion
    session = _session(sklenet.to_onnx(clf))
    X = X[:batch_size]
    label, proba = _run(session, X.astype(np.float32))
    assert proba.shape == (batch_size, 10)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))


@pytest.mark.parametrize("labels", ["int", "str", "bool", "float", "one_hot"])
def test_labels_and_resizing_on_digits(digits, labels):
    # 8x8 digits: the graph resizes them to 28x28 like the network does.
    X, y = digits
    X, y = X[:500], y[:500]
    if labels == "str":
        y = np.array([f"digit {d}" for d in y])
    elif labels == "bool":
        y = y >= 5
    elif labels == "float":
        y = y.astype(float)
    elif labels == "one_hot":
        y = np.eye(10, dtype=int)[y]
    clf = LeNet5Classifier(max_epochs=1, **F32).fit(X, y)
    session = _session(sklenet.to_onnx(clf, input_dtype="float64"))
    label, proba = _run(session, X)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    if labels == "one_hot":
        assert np.array_equal(label, clf.predict(X).argmax(axis=1))
    else:
        assert label.dtype.kind == clf.classes_.dtype.kind or labels == "str"
        assert np.array_equal(label, clf.predict(X))


def test_color_images(digits):
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, size=(200, 3, 12, 12)).astype(np.float32)
    y = (X[:, 0].mean(axis=(1, 2)) > X[:, 2].mean(axis=(1, 2))).astype(int)
    clf = LeNet5Classifier(max_epochs=1, **F32,
                           activation="relu", pooling="avg").fit(X, y)
    for layout, data in [("nchw", X), ("flat", X.reshape(200, -1))]:
        label, proba = _run(_session(sklenet.to_onnx(clf, input_layout=layout)), data)
        assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
        assert np.array_equal(label, clf.predict(X))
    with pytest.raises(ValueError, match="one-channel"):
        sklenet.to_onnx(clf, input_layout="nhw")


def test_model_is_valid_and_standalone(fashion):
    clf, _ = fashion
    model = sklenet.to_onnx(clf)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert ops <= {"Reshape", "Sub", "Mul", "Conv", "Tanh", "Relu", "MaxPool",
                   "AveragePool", "Flatten", "Gemm", "Softmax", "ArgMax", "Gather",
                   "Identity", "Cast", "Resize", "Shape", "Slice", "Concat", "Div", "Add"}
    assert model.producer_name == "sklenet"


def test_export_errors(fashion):
    clf, _ = fashion
    with pytest.raises(NotFittedError):
        sklenet.to_onnx(LeNet5Classifier())
    with pytest.raises(ValueError, match="input_layout"):
        sklenet.to_onnx(clf, input_layout="nhwc")
    with pytest.raises(ValueError, match="input_dtype"):
        sklenet.to_onnx(clf, input_dtype="int8")
    with pytest.raises(ValueError, match="opset"):
        sklenet.to_onnx(clf, opset=11)


def test_only_a_lenet5_classifier_is_exported(digits):
    # It was an AttributeError from deep inside the export.
    from sklearn.svm import SVC

    X, y = digits
    with pytest.raises(TypeError, match="estimator must be a fitted sklenet.LeNet5Classifier; "
                                        "got an instance of sklearn.*SVC"):
        sklenet.to_onnx(SVC().fit(X[:100], y[:100]))


# --------------------------------------------- loads in the runtimes people have


@pytest.mark.parametrize("opset, ir_version", [(13, 7), (17, 8)])
def test_ir_version_is_the_lowest_the_opset_needs(small, tmp_path, opset, ir_version):
    # onnx.helper.make_model writes the newest IR version the installed onnx knows
    # (14 with onnx 1.23), which onnxruntime 1.30 and older refuse to load
    # ("Unsupported model IR version"). ci/versions oldest runs this in the oldest
    # onnxruntime declared.
    clf, X = small
    path = tmp_path / "lenet5.onnx"
    sklenet.to_onnx(clf, path, opset=opset)
    model = onnx.load(str(path))
    assert model.ir_version == ir_version
    assert model.ir_version == onnx.helper.find_min_ir_version_for(list(model.opset_import))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    label, proba = _run(session, X)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))


# ------------------------------------------------ one answer: predict_proba


def test_calibrated_probabilities_match(small):
    # predict_proba divides the logits by temperature_ (fitted on the validation split).
    clf, X = small
    assert abs(clf.temperature_ - 1) > 0.05
    model = sklenet.to_onnx(clf)
    assert "Div" in {node.op_type for node in model.graph.node}
    label, proba = _run(_session(model), X)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))


def test_test_time_flip_matches(small):
    # predict_proba averages the logits of each image and its mirror image.
    import copy

    clf, X = small
    flipped = copy.deepcopy(clf).set_params(test_time_flip=True)
    assert np.abs(flipped.predict_proba(X) - clf.predict_proba(X)).max() > 100 * ATOL
    for layout, data in [("flat", X), ("nchw", X.reshape(-1, 1, 8, 8))]:
        label, proba = _run(_session(sklenet.to_onnx(flipped, input_layout=layout)), data)
        assert np.abs(proba - flipped.predict_proba(X)).max() <= ATOL
        assert np.array_equal(label, flipped.predict(X))


def test_default_precision_matches_without_a_warning(digits):
    # precision="auto" trains in bfloat16 where the CPU has it; inference runs in
    # float32 by default (inference_precision), as the ONNX graph does.
    import warnings

    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, random_state=0, device="cpu").fit(X[:300], y[:300])
    X = X[300:400].astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = sklenet.to_onnx(clf)
    label, proba = _run(_session(model), X)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))
    clf.set_params(inference_precision="bfloat16")
    with pytest.warns(UserWarning, match="inference_precision='bfloat16'"):
        sklenet.to_onnx(clf)


# ----------------------------------------------------------------- skl2onnx


@pytest.mark.parametrize("labels", ["int", "str"])
def test_pipeline_with_skl2onnx(digits, labels):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MinMaxScaler

    from sklenet.export import register_skl2onnx_converter

    register_skl2onnx_converter()
    register_skl2onnx_converter()  # idempotent
    X, y = digits
    if labels == "str":
        y = np.array(["abcdefghij"[d] for d in y])
    pipe = make_pipeline(
        MinMaxScaler(), LeNet5Classifier(max_epochs=2, **F32)
    ).fit(X[:600], y[:600])
    X = X[600:900].astype(np.float32)
    model = skl2onnx.to_onnx(pipe, X[:1], options={LeNet5Classifier: {"zipmap": False}})
    session = _session(model)
    label, proba = session.run(None, {session.get_inputs()[0].name: X})
    assert np.abs(proba - pipe.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, pipe.predict(X))

    # skl2onnx's default: probabilities as a list of {class: probability} maps.
    session = _session(skl2onnx.to_onnx(pipe, X[:1]))
    label, maps = session.run(None, {session.get_inputs()[0].name: X[:3]})
    assert np.array_equal(label, pipe.predict(X[:3]))
    assert list(maps[0]) == list(pipe.classes_)


# ------------------------------------------------------- one graph, one tail


@pytest.fixture(scope="module")
def small(digits):
    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, **F32).fit(X[:300], y[:300])
    return clf, X[300:400].astype(np.float32)


def _producers(model):
    return {out: node.op_type for node in model.graph.node for out in node.output}


def test_both_exports_end_with_the_same_tail(small):
    # One helper emits softmax -> probabilities and argmax -> label for both
    # the standalone export and the skl2onnx converter (they were written
    # twice, each with its own Identity and Gather nodes).
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklenet.export import register_skl2onnx_converter

    clf, X = small
    register_skl2onnx_converter()
    standalone = sklenet.to_onnx(clf)
    converted = skl2onnx.to_onnx(clf, X[:1], options={LeNet5Classifier: {"zipmap": False}})
    for model in (standalone, converted):
        ops = [node.op_type for node in model.graph.node]
        assert ops.count("Softmax") == ops.count("ArgMax") == ops.count("Gather") == 1
        assert "Identity" not in ops
        producers = _producers(model)
        label, proba = (output.name for output in model.graph.output)
        assert (producers[label], producers[proba]) == ("Gather", "Softmax")
        label, proba = _session(model).run(None, {model.graph.input[0].name: X})
        assert np.array_equal(label, clf.predict(X))
        assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL


@pytest.mark.parametrize("labels", ["int", "str", "bool", "float"])
def test_label_type_follows_the_kind_a_model_file_records(small, tmp_path, labels):
    # One helper (sklenet._labels) decides the kind for both file formats.
    pytest.importorskip("safetensors")
    import json

    from safetensors import safe_open

    clf, X = small
    X_train, y = X, clf.predict(X)
    y = {"int": y, "str": np.array([f"c{d}" for d in y]), "bool": y % 2 == 0,
         "float": y.astype(float)}[labels]
    clf = LeNet5Classifier(max_epochs=1, **F32).fit(X_train, y)
    with safe_open(sklenet.save(clf, tmp_path / "m.sklenet"), framework="np") as f:
        kind = json.loads(f.metadata()["config"])["classes_kind"]
    elem = sklenet.to_onnx(clf).graph.output[0].type.tensor_type.elem_type
    expected = {"int": onnx.TensorProto.INT64, "str": onnx.TensorProto.STRING,
                "bool": onnx.TensorProto.BOOL, "float": onnx.TensorProto.DOUBLE}[kind]
    assert kind == labels and elem == expected


def test_labels_outside_int64_are_refused(digits):
    # They were wrapped around silently: class 2**63 + 5 came out as a negative label.
    X, y = digits
    y = np.array([3, 2 ** 63 + 5], dtype=np.uint64)[y[:200] % 2]
    clf = LeNet5Classifier(max_epochs=1, **F32).fit(X[:200], y)
    with pytest.raises(TypeError, match="Cannot export .* 9223372036854775813 is not an int64"):
        sklenet.to_onnx(clf)


# ------------------------------------------------------- one vocabulary


def test_every_choice_has_an_onnx_counterpart():
    # The export's tables are keyed by the vocabularies of sklenet._options and
    # sklenet._labels: a choice added there must get its ONNX operator or type.
    from sklenet import export
    from sklenet._labels import KINDS
    from sklenet._options import ACTIVATIONS, POOLINGS

    assert set(export._ACTIVATION_OPS) == set(ACTIVATIONS)
    assert set(export._POOLING_OPS) == set(POOLINGS)
    assert set(export._LABEL_TYPES) == set(KINDS)
    for name in [*export._INPUT_TYPES.values(), *export._LABEL_TYPES.values()]:
        assert hasattr(onnx.TensorProto, name)


def test_export_follows_the_fitted_network_not_changed_params(small):
    # set_params after fit changes the parameters, not the fitted network.
    import copy

    clf, X = small
    changed = copy.deepcopy(clf).set_params(activation="relu", pooling="avg")
    label, proba = _run(_session(sklenet.to_onnx(changed)), X)
    assert np.abs(proba - clf.predict_proba(X)).max() <= ATOL
    assert np.array_equal(label, clf.predict(X))


def test_invalid_input_name(small):
    clf, _ = small
    for name in ["", "label", "probabilities"]:
        with pytest.raises(ValueError, match="input_name must be a non-empty string"):
            sklenet.to_onnx(clf, input_name=name)
