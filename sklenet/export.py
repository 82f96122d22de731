"""Export a fitted :class:`~sklenet.LeNet5Classifier` to ONNX.

The ONNX graph is written directly from the trained weights with standard ONNX
operators (Reshape, Sub/Mul, Resize, Conv, Tanh/Relu, MaxPool/AveragePool, Gemm,
Softmax, ArgMax, Gather), so it runs in any ONNX runtime without PyTorch, and the
same graph serves both :func:`to_onnx` and the `skl2onnx
<https://onnx.ai/sklearn-onnx/>`_ converter that makes whole scikit-learn
pipelines ending in a ``LeNet5Classifier`` exportable.

The standalone model (:func:`to_onnx`) has

* one input, ``input`` (the name can be changed): images as the estimator
  receives them, any batch size ``N``; flat rows ``(N, n_features)`` by
  default, ``(N, channels, height, width)`` with ``input_layout="nchw"`` or
  ``(N, height, width)`` with ``input_layout="nhw"`` (ONNX fixes the rank of
  an input); float32 by default (``input_dtype="uint8"`` or ``"float64"`` build
  a graph that takes raw 0-255 pixels or doubles and casts them inside);
* two outputs, ``label`` ``(N,)``: the predicted classes as the original class
  values (int64 for integer or boolean classes, double for float classes,
  strings for string classes), and ``probabilities`` ``(N, n_classes)``
  float32, columns ordered as ``classes_``.

For a model fitted on one-hot rows, ``label`` is the predicted column number
(``predict(X).argmax(axis=1)``).

onnx is an optional dependency: ``pip install -e ".[deploy]"`` in a checkout.
"""

import os
import warnings
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._labels import KINDS, label_values
from ._optional import import_optional
from .classifier import fitted_model

__all__ = ["to_onnx", "register_skl2onnx_converter", "DEFAULT_OPSET"]

#: ONNX opset of the standalone export (Softmax/ArgMax/Resize semantics of opset 13+).
DEFAULT_OPSET = 17
_MIN_OPSET = 13
_OUTPUT_NAMES = ("label", "probabilities")
#: The ONNX element type (a ``onnx.TensorProto`` attribute) of each ``input_dtype``.
_INPUT_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "uint8": "UINT8"}
#: The ONNX element type of the ``label`` output for each kind of class labels
#: (:data:`sklenet._labels.KINDS`).
_LABEL_TYPES = {"bool": "BOOL", "int": "INT64", "float": "DOUBLE", "str": "STRING"}
#: The ONNX operator of each choice of ``activation`` and of ``pooling`` in
#: :mod:`sklenet._options` (a test checks that every choice has one).
_ACTIVATION_OPS = {"tanh": "Tanh", "relu": "Relu"}
_POOLING_OPS = {"max": "MaxPool", "avg": "AveragePool"}


def _import_onnx():
    return import_optional("onnx", "Exporting to ONNX")


class _GraphBuilder:
    """Collect constants and nodes; ``new_name(hint)`` must return unique names."""

    def __init__(self, new_name, new_node_name=None):
        self.new_name = new_name
        self.new_node_name = new_node_name or new_name
        self.constants = []  # (name, ndarray)
        self.nodes = []  # (op_type, inputs, outputs, name, attrs)

    def const(self, hint, value):
        name = self.new_name(hint)
        self.constants.append((name, np.asarray(value)))
        return name

    def op(self, op_type, inputs, hint=None, out=None, **attrs):
        """Append a node; its output is ``out``, or a new name from ``hint``."""
        out = out or self.new_name(hint or op_type.lower())
        self.nodes.append((op_type, list(inputs), [out], self.new_node_name(op_type), attrs))
        return out


def _fitted_network(model):
    """``(lenet5, weights)`` of :class:`~sklenet.classifier.FittedModel` ``model``.

    ``lenet5`` is an empty :class:`~sklenet.network.LeNet5` of the fitted
    architecture (on the meta device: no weights): the layers' geometry (C1's
    padding, the pooling windows) is read from it rather than restated here,
    so that the network stays the one source of LeNet-5's shape. ``weights``
    maps the module's state dict names to float32 arrays.
    """
    import torch

    from .network import LeNet5

    if model.params["inference_precision"] == "bfloat16":
        warnings.warn(
            "The model predicts with bfloat16 autocast (inference_precision='bfloat16'); "
            "the ONNX graph computes in float32 with the same weights, so its "
            "probabilities differ from predict_proba's by the bfloat16 rounding (~1e-2).",
            UserWarning,
            stacklevel=5,  # the caller of to_onnx, past its validate_params wrapper
        )
    architecture = model.architecture
    for name, ops in (("activation", _ACTIVATION_OPS), ("pooling", _POOLING_OPS)):
        if architecture[name] not in ops:
            raise TypeError(
                f"Cannot export {name}={architecture[name]!r}: the ONNX export knows "
                f"{tuple(ops)}."
            )
    with torch.device("meta"):
        lenet5 = LeNet5(**architecture)
    weights = {name: np.asarray(value, np.float32) for name, value in model.weights.items()}
    return lenet5, weights


def _label_tensor(classes, *, integers_or_strings=False):
    """The class labels as the tensor ``label`` is gathered from, and their kind.

    The kind comes from :func:`sklenet._labels.label_values`, as in model
    files. With ``integers_or_strings`` (skl2onnx knows only int64 and string
    labels), booleans and integral floats become int64.
    """
    try:
        kind, values = label_values(classes)
    except TypeError as exc:
        raise TypeError(f"Cannot export this model to ONNX: {exc}") from None
    if integers_or_strings and kind in ("bool", "float"):
        if not all(v == int(v) for v in values):
            raise TypeError(
                f"skl2onnx labels must be integers or strings; LeNet5Classifier.classes_ "
                f"holds non-integral floats {values[:5]!r}."
            )
        kind, values = "int", [int(v) for v in values]
    dtype = object if kind == "str" else KINDS[kind]  # ONNX strings are object arrays
    return np.array(values, dtype=dtype), kind


def _output_tail(g, logits, labels, label_name, proba_name):
    """Append the outputs to builder ``g``: softmax probabilities, and the label
    of the winning column gathered from ``labels``. Both exports end this way."""
    g.op("Softmax", [logits], out=proba_name, axis=1)
    index = g.op("ArgMax", [logits], hint="index", axis=1, keepdims=0)
    g.op("Gather", [g.const("classes", labels), index], out=label_name, axis=0)


def _resize_to_lenet5(g, x, channels):
    """Append to builder ``g`` the bilinear resizing of images ``x`` to LeNet-5's
    input size, as ``F.interpolate(mode="bilinear", align_corners=False)``."""
    from .network import LENET5_INPUT_SIZE

    sizes = g.const("resize_sizes", np.array(
        [0, channels, LENET5_INPUT_SIZE, LENET5_INPUT_SIZE], np.int64))
    zero = g.const("zero", np.array([0], np.int64))
    one = g.const("one", np.array([1], np.int64))
    batch = g.op("Slice", [g.op("Shape", [x], hint="shape"), zero, one], hint="batch")
    tail = g.op("Slice", [sizes, one, g.const("four", np.array([4], np.int64))],
                hint="tail")
    sizes = g.op("Concat", [batch, tail], hint="sizes", axis=0)
    # Empty roi and scales tensors rather than empty names: skl2onnx's graph
    # sorting does not know optional inputs.
    empty = g.const("empty", np.zeros(0, np.float32))
    return g.op("Resize", [x, empty, empty, sizes], hint="resized", mode="linear",
                coordinate_transformation_mode="pytorch_half_pixel")


def _build_lenet5(g, x, model):
    """Append the network of :class:`~sklenet.classifier.FittedModel` ``model``
    to builder ``g``; ``x`` is float32 ``(N, ...)``.

    Returns the name of the float32 ``(N, n_classes)`` logits divided by the
    temperature, as ``predict_proba`` takes the softmax of: with
    ``test_time_flip``, the mean over each image and its mirror image.
    """
    from .network import LENET5_INPUT_SIZE

    net, weights = _fitted_network(model)
    architecture, flip = model.architecture, model.params["test_time_flip"]
    c, h, w = model.image_shape
    x = g.op("Reshape", [x, g.const("image_shape", np.array([-1, c, h, w], np.int64))],
             hint="images")
    if flip:
        # One pass over the images and their mirror images, stacked on the batch axis.
        int64_max = np.iinfo(np.int64).max
        mirrored = g.op("Slice", [x, g.const("flip_start", np.array([-1], np.int64)),
                                  g.const("flip_end", np.array([-int64_max], np.int64)),
                                  g.const("flip_axis", np.array([3], np.int64)),
                                  g.const("flip_step", np.array([-1], np.int64))],
                        hint="mirrored")
        x = g.op("Concat", [x, mirrored], hint="both", axis=0)
    x = g.op("Sub", [x, g.const("mean", weights["adapter.mean"])], hint="centered")
    x = g.op("Mul", [x, g.const("inv_std", weights["adapter.inv_std"])], hint="standardized")
    if (h, w) != (LENET5_INPUT_SIZE, LENET5_INPUT_SIZE):
        x = _resize_to_lenet5(g, x, c)

    def conv(x, layer, hint):
        pads = [int(p) for p in layer.padding] * 2
        return g.op("Conv", [x, g.const(hint + "_w", weights[f"lenet5.{hint}.weight"]),
                             g.const(hint + "_b", weights[f"lenet5.{hint}.bias"])],
                    hint=hint, kernel_shape=list(layer.kernel_size), pads=pads,
                    strides=list(layer.stride))

    def act(x, hint):
        return g.op(_ACTIVATION_OPS[architecture["activation"]], [x], hint=hint)

    def pool(x, layer, hint):
        k = layer.kernel_size if isinstance(layer.kernel_size, int) else layer.kernel_size[0]
        s = layer.stride if isinstance(layer.stride, int) else layer.stride[0]
        return g.op(_POOLING_OPS[architecture["pooling"]], [x], hint=hint,
                    kernel_shape=[k, k], strides=[s, s])

    def gemm(x, name, hint):
        return g.op("Gemm", [x, g.const(hint + "_w", weights[f"lenet5.{name}.weight"]),
                             g.const(hint + "_b", weights[f"lenet5.{name}.bias"])],
                    hint=hint, transB=1)

    x = pool(act(conv(x, net.c1, "c1"), "a1"), net.s2, "s2")
    x = pool(act(conv(x, net.c3, "c3"), "a3"), net.s4, "s4")
    x = act(conv(x, net.c5, "c5"), "a5")
    x = g.op("Flatten", [x], hint="flat", axis=1)
    x = act(gemm(x, "f6", "f6"), "a6")
    logits = gemm(x, "output", "logits")
    if flip:
        halves = g.op("Reshape", [logits, g.const(
            "halves_shape", np.array([2, -1, net.output.out_features], np.int64))],
            hint="halves")
        plain, flipped = (g.op("Gather", [halves, g.const(f"half_{i}", np.array(i, np.int64))],
                               hint=f"logits_{i}", axis=0) for i in (0, 1))
        logits = g.op("Mul", [g.op("Add", [plain, flipped], hint="logits_sum"),
                              g.const("one_half", np.array(0.5, np.float32))],
                      hint="logits_mean")
    if model.temperature != 1.0:
        logits = g.op("Div", [logits, g.const("temperature",
                                              np.array(model.temperature, np.float32))],
                      hint="scaled_logits")
    return logits


def _counter_names():
    used = set()

    def new_name(hint):
        name, i = hint, 1
        while name in used:
            i += 1
            name = f"{hint}_{i}"
        used.add(name)
        return name

    return new_name


def _tensor_proto(onnx, name, value):
    if value.dtype == object:
        return onnx.helper.make_tensor(
            name, onnx.TensorProto.STRING, list(value.shape),
            [str(v).encode("utf-8") for v in value.ravel()],
        )
    return onnx.numpy_helper.from_array(value, name)


def _input_shape(image_shape, input_layout):
    """The shape of the model input in ``input_layout``, with a dynamic batch ``N``."""
    c, h, w = (int(d) for d in image_shape)
    if input_layout == "nhw" and c != 1:
        raise ValueError(
            f"input_layout='nhw' is for one-channel images; this model takes {c} "
            f"channels: use 'nchw' or 'flat'."
        )
    return {"flat": ["N", c * h * w], "nchw": ["N", c, h, w], "nhw": ["N", h, w]}[input_layout]


@validate_params(
    {
        # fitted_model checks it: the class, then the fit, with their own messages.
        "estimator": "no_validation",
        "path": [str, os.PathLike, None],
        "input_layout": [StrOptions({"flat", "nchw", "nhw"})],
        "input_dtype": [StrOptions(set(_INPUT_TYPES))],
        "input_name": [str],
        "opset": [Interval(Integral, _MIN_OPSET, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def to_onnx(estimator, path=None, *, input_layout="flat", input_dtype="float32",
            input_name="input", opset=DEFAULT_OPSET):
    """Write a fitted :class:`~sklenet.LeNet5Classifier` as an ONNX model.

    Parameters
    ----------
    estimator : LeNet5Classifier
        A fitted estimator.
    path : str, os.PathLike or None, default=None
        Where to write the ``.onnx`` file; with None nothing is written.
    input_layout : {"flat", "nchw", "nhw"}, default="flat"
        Shape of the model input: flat rows ``(N, n_features)`` as in
        ``predict_proba(X)``; images ``(N, channels, height, width)``; or, for
        one-channel images, ``(N, height, width)``. ONNX fixes the rank of an
        input, so export once per layout you need; the batch size ``N`` is
        dynamic in all of them and the results are the same.
    input_dtype : {"float32", "float64", "uint8"}, default="float32"
        Element type of the model input. The graph casts it to float32 first,
        as ``predict_proba`` does, so ``"uint8"`` takes raw 0-255 pixels.
    input_name : str, default="input"
        Name of the model input (not ``"label"`` or ``"probabilities"``, the
        outputs' names).
    opset : int, default=17
        ONNX opset (13 or newer).

    Returns
    -------
    model : onnx.ModelProto
        The model. Its input takes images in ``input_layout``, with a dynamic
        batch size ``N``. Its outputs are ``label`` ``(N,)`` (the class values:
        int64, bool, double or string) and ``probabilities``
        ``(N, n_classes)`` float32.

    Raises
    ------
    ValueError
        For arguments outside the values above, and for
        ``input_layout="nhw"`` with images of more than one channel.
    TypeError
        For an estimator that is not a :class:`~sklenet.LeNet5Classifier`, and
        for class labels ONNX cannot hold (integers outside int64).

    Examples
    --------
    >>> import onnxruntime as ort  # doctest: +SKIP
    >>> sklenet.to_onnx(clf, "lenet5.onnx")  # doctest: +SKIP
    >>> session = ort.InferenceSession("lenet5.onnx")  # doctest: +SKIP
    >>> labels, proba = session.run(None, {"input": X.astype("float32")})  # doctest: +SKIP
    """
    onnx = _import_onnx()
    from onnx import TensorProto, helper

    fitted = fitted_model(estimator, "estimator")
    if input_name in ("",) + _OUTPUT_NAMES:
        raise ValueError(
            f"input_name must be a non-empty string other than the output names, got "
            f"{input_name!r}."
        )
    input_shape = _input_shape(fitted.image_shape, input_layout)
    labels, kind = _label_tensor(fitted.classes)
    g = _GraphBuilder(_counter_names())
    for name in (input_name,) + _OUTPUT_NAMES:
        g.new_name(name)  # reserved, so that no node takes them
    x = input_name
    if input_dtype != "float32":
        x = g.op("Cast", [x], hint="input_float", to=TensorProto.FLOAT)
    _output_tail(g, _build_lenet5(g, x, fitted), labels, *_OUTPUT_NAMES)

    input_type = getattr(TensorProto, _INPUT_TYPES[input_dtype])
    graph = helper.make_graph(
        [helper.make_node(t, i, o, name=n, **a) for t, i, o, n, a in g.nodes],
        "sklenet_LeNet5Classifier",
        inputs=[helper.make_tensor_value_info(input_name, input_type, input_shape)],
        outputs=[
            helper.make_tensor_value_info("label", getattr(TensorProto, _LABEL_TYPES[kind]),
                                          ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                          ["N", len(labels)]),
        ],
        initializer=[_tensor_proto(onnx, name, value) for name, value in g.constants],
    )
    from ._version import __version__

    opset_imports = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        graph, opset_imports=opset_imports,
        # The IR version the opset needs, not the newest the installed onnx knows
        # (make_model's default), which older runtimes refuse to load.
        ir_version=helper.find_min_ir_version_for(opset_imports),
        producer_name="sklenet", producer_version=__version__,
        doc_string=(
            f"LeNet-5 classifier exported by sklenet {__version__}. Input "
            f"'{input_name}': {input_dtype} {tuple(input_shape)}. Outputs: 'label' (N,), "
            f"'probabilities' (N, {len(labels)})."
        ),
    )
    helper.set_model_props(model, {
        "classes": repr(labels.tolist()),
        "image_shape": repr(fitted.image_shape),
    })
    onnx.checker.check_model(model)
    if path is not None:
        onnx.save_model(model, path)
    return model


# ----------------------------------------------------------------- skl2onnx


def _shape_calculator(operator):
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )
    from skl2onnx.common.utils_classifier import get_label_classes

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    _, kind = _label_tensor(get_label_classes(operator.scope_inst, model),
                            integers_or_strings=True)
    operator.outputs[0].type = StringTensorType([n]) if kind == "str" else Int64TensorType([n])
    operator.outputs[1].type = FloatTensorType([n, len(model.classes_)])


def _converter(scope, operator, container):
    import onnx.numpy_helper
    from onnx import TensorProto

    model = operator.raw_operator
    if container.target_opset < _MIN_OPSET:
        raise RuntimeError(
            f"LeNet5Classifier needs target_opset >= {_MIN_OPSET}, got "
            f"{container.target_opset}."
        )
    from skl2onnx.common.utils_classifier import get_label_classes

    labels, _ = _label_tensor(get_label_classes(scope, model), integers_or_strings=True)
    g = _GraphBuilder(scope.get_unique_variable_name, scope.get_unique_operator_name)
    x = g.op("Cast", [operator.inputs[0].full_name], hint="lenet5_input",
             to=TensorProto.FLOAT)
    _output_tail(g, _build_lenet5(g, x, fitted_model(model)), labels,
                 operator.outputs[0].full_name, operator.outputs[1].full_name)
    for name, value in g.constants:
        if value.dtype == object:
            container.add_initializer(name, TensorProto.STRING, list(value.shape),
                                      [str(v) for v in value.ravel()])
        else:
            container.add_initializer(name, None, list(value.shape),
                                      onnx.numpy_helper.from_array(value, name))
    for op_type, inputs, outputs, name, attrs in g.nodes:
        container.add_node(op_type, inputs, outputs, name=name, op_version=_MIN_OPSET,
                           **attrs)


_REGISTERED = False


def register_skl2onnx_converter():
    """Teach skl2onnx to convert :class:`~sklenet.LeNet5Classifier`.

    After this call ``skl2onnx.to_onnx(pipeline, X[:1].astype("float32"))``
    converts pipelines that end in (or contain) a ``LeNet5Classifier``: the
    network becomes standard ONNX nodes. The classifier gets skl2onnx's usual
    outputs ``label`` and ``probabilities`` and options (``zipmap``, ``nocl``;
    pass ``options={LeNet5Classifier: {"zipmap": False}}`` for a plain
    probability tensor). Float class values must be integral (they become
    int64 labels), as skl2onnx only knows integer and string labels.
    :func:`to_onnx` does not need this. Calling it again does
    nothing.

    Returns
    -------
    None
    """
    global _REGISTERED
    if _REGISTERED:
        return
    skl2onnx = import_optional("skl2onnx", "Converting pipelines to ONNX")
    from .classifier import LeNet5Classifier

    skl2onnx.update_registered_converter(
        LeNet5Classifier, "SklenetLeNet5Classifier", _shape_calculator, _converter,
        options={"zipmap": [True, False, "columns"], "nocl": [False, True]},
    )
    _REGISTERED = True
