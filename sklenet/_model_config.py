"""The ``config`` of a model file: parameters and fitted attributes as JSON, and back.

Writing turns the estimator's parameters and fitted attributes into plain JSON
values; reading checks every field of an untrusted ``config`` before anything
is built from it, and raises :class:`~sklenet._model_file.ModelFileError` for
any value that :func:`sklenet.save` would not have written. Which parameter
values are *valid* is not restated here: the estimator's own parameter
constraints (built from :mod:`sklenet._options`) decide that when
:mod:`sklenet.persistence` rebuilds it.

Examples
--------
>>> from sklenet._model_config import decode_value, encode_value
>>> encode_value((28, 28)), encode_value(float("inf"))
({'tuple': [28, 28]}, {'float': 'inf'})
>>> decode_value({"tuple": [28, 28]})
(28, 28)
"""

import math
import warnings

import numpy as np

from ._labels import label_array
from ._options import available_device
from ._model_file import ModelFileError, short

__all__ = [
    "decode_value",
    "encode_value",
    "fitted_from_config",
    "params_from_json",
    "params_to_json",
    "saved_device",
]

#: Where the size of the network a file asks for shows in its tensors, as
#: ``(tensor, axis)``: the output layer has a row per class, the first
#: convolution a slice per input channel. Every other LeNet-5 layer has a fixed
#: size.
_CLASSES_AXIS = ("lenet5.output.weight", 0)
_CHANNELS_AXIS = ("lenet5.c1.weight", 1)
_NON_FINITE = ("inf", "-inf", "nan")
_TORCH_OPTIMIZER_PREFIX = "torch.optim."


# ------------------------------------------------------------------ JSON values


def encode_value(value):
    """``value`` as JSON-able data, tuples tagged so they come back as tuples.

    Raises ``TypeError`` for anything but None, bools, numbers, strings and
    lists or tuples of them.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, tuple):
        return {"tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    raise TypeError(type(value).__name__)


def decode_value(value):
    """The inverse of :func:`encode_value`; ModelFileError for any other object."""
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"tuple"} and isinstance(value["tuple"], list):
            return tuple(decode_value(v) for v in value["tuple"])
        if set(value) == {"float"} and value["float"] in _NON_FINITE:
            return float(value["float"])
        raise ModelFileError(f"Unexpected value {short(value)} in the model file.")
    return value


# ------------------------------------------------------------------ parameters
# Named optimizers ("adam", "adamw", ...) are plain strings. A torch.optim class
# is stored by its dotted name, so that estimators given one keep it; any other
# class is code, which a model file never holds.


def _torch_optimizer_name(optimizer):
    """``"torch.optim.<Name>"`` for a class of ``torch.optim``, else None."""
    import torch

    name = getattr(optimizer, "__name__", None)
    if name and getattr(torch.optim, name, None) is optimizer:
        return _TORCH_OPTIMIZER_PREFIX + name
    return None


def _torch_optimizer(path, stored):
    """The ``torch.optim`` class a model file names in ``{"optimizer": dotted}``."""
    import torch

    dotted = stored.get("optimizer")
    cls = None
    if isinstance(dotted, str) and dotted.startswith(_TORCH_OPTIMIZER_PREFIX):
        cls = getattr(torch.optim, dotted[len(_TORCH_OPTIMIZER_PREFIX):], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ModelFileError(f"{path!r}: unknown optimizer {short(dotted)} in the parameters.")
    # Built as the estimator builds it, on parameters of LeNet-5's ranks (biases,
    # dense and convolution weights): save() never wrote one that fails there.
    dummies = [torch.nn.Parameter(torch.zeros((1,) * rank)) for rank in (1, 2, 4)]
    try:
        cls(dummies, lr=1e-3, weight_decay=0.0)
    except Exception as exc:  # any class of torch.optim: whatever its refusal
        raise ModelFileError(
            f"{path!r}: optimizer {short(dotted)} cannot train LeNet-5 with lr and "
            f"weight_decay, as LeNet5Classifier builds it ({type(exc).__name__}: "
            f"{short(str(exc), 120)}); no fitted model uses it."
        ) from None
    return cls


def params_to_json(params, defaults):
    """The estimator's parameters ``params`` as JSON values.

    A parameter that is a Python object (``callbacks``, a ``RandomState``, an
    optimizer class outside ``torch.optim``) is code, which a model file never
    holds: it is stored as its default (from ``defaults``), with a warning.
    """
    out = {}
    for name, value in params.items():
        if name == "optimizer" and isinstance(value, type):
            dotted = _torch_optimizer_name(value)
            if dotted is not None:
                out[name] = {"optimizer": dotted}
                continue
        if name == "callbacks" and not value:
            out[name] = None
            continue
        try:
            out[name] = encode_value(value)
        except TypeError:
            default = defaults.get(name)
            warnings.warn(
                f"Parameter {name}={value!r} is a Python object and is not saved (a "
                f"safe model file holds no code); the loaded model gets the default "
                f"{name}={default!r}. Predictions are unaffected; set it again before "
                f"refitting.",
                UserWarning,
                stacklevel=3,
            )
            out[name] = encode_value(default)
    return out


def params_from_json(path, data, valid_names):
    """The parameters stored by :func:`params_to_json`, as plain values.

    Only their form is checked here (known names, JSON values sklenet writes);
    the estimator's constraints check their values.
    """
    if not isinstance(data, dict):
        raise ModelFileError(f"{path!r}: the 'params' field must be a JSON object.")
    unknown = sorted(set(data) - set(valid_names))
    if unknown:
        raise ModelFileError(
            f"{path!r} sets parameters {short(unknown)} that this version of sklenet "
            f"does not know; it was probably written by a newer sklenet. Upgrade sklenet."
        )
    params = {}
    for name, value in data.items():
        if name == "optimizer" and isinstance(value, dict):
            params[name] = _torch_optimizer(path, value)
        elif name == "callbacks" and value is not None:
            # save() never stores callbacks (they are code): anything else is forged.
            raise ModelFileError(
                f"{path!r}: the 'callbacks' parameter must be null in a model file, got "
                f"{short(value)}."
            )
        else:
            params[name] = decode_value(value)
    return params


# ------------------------------------------------------------ fitted attributes


def _field(path, config, name, check, what):
    value = config.get(name)
    if not check(value):
        raise ModelFileError(
            f"{path!r}: invalid model file: field {name!r} must be {what}, got "
            f"{short(value)}."
        )
    return value


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_network_size(path, shapes, n_classes, channels):
    """Refuse a file whose tensors are smaller than the network it asks for.

    Run before anything is built. Every layer of LeNet-5 has a fixed size but
    the output layer (a row per class) and the first convolution (a slice per
    input channel), so with these two checked the network built is no larger
    than the weights the file really holds: a forged header declaring millions
    of classes is refused here, without allocating their network.
    """
    for (name, axis), wanted, what in ((_CLASSES_AXIS, n_classes, "classes"),
                                       (_CHANNELS_AXIS, channels, "channels")):
        shape = shapes.get(name)
        if shape is None or len(shape) <= axis or shape[axis] != wanted:
            raise ModelFileError(
                f"{path!r} declares {wanted} {what}, but its tensor {name!r} has shape "
                f"{shape}: the file is damaged or forged."
            )


def _history(path, config):
    rows = _field(path, config, "history",
                  lambda v: isinstance(v, list) and all(isinstance(r, dict) for r in v),
                  "a list of objects")
    history = [{k: decode_value(v) for k, v in row.items()} for row in rows]
    for row in history:
        for value in row.values():
            if not (value is None or isinstance(value, (int, float))):
                raise ModelFileError(f"{path!r}: bad value {short(value)} in the history.")
    return history


def fitted_from_config(path, config, shapes):
    """The fitted attributes stored in ``config``, checked against the tensor ``shapes``.

    Returns
    -------
    fitted : dict
        ``classes_``, ``one_hot``, ``image_shape_``, ``n_features_in_``,
        ``history_``, ``n_iter_``, ``batch_size_``, ``temperature_`` and, when
        stored, ``feature_names_in_``.
    """
    values = _field(path, config, "classes", lambda v: isinstance(v, list) and len(v) >= 2,
                    "a list of at least 2 class labels")
    image_shape = tuple(_field(
        path, config, "image_shape",
        lambda v: isinstance(v, list) and len(v) == 3 and all(_is_int(d) and d > 0
                                                             for d in v),
        "a list of 3 positive ints"))
    _check_network_size(path, shapes, len(values), image_shape[0])
    try:
        classes = label_array(config.get("classes_kind"), values)
    except ValueError as exc:
        raise ModelFileError(f"{path!r}: invalid classes: {exc}") from None
    one_hot = _field(path, config, "one_hot", lambda v: isinstance(v, bool), "true or false")
    n_features = _field(path, config, "n_features_in", _is_int, "an int")
    if n_features != math.prod(image_shape):
        raise ModelFileError(
            f"{path!r}: n_features_in={n_features} does not match "
            f"image_shape={image_shape}."
        )
    feature_names = _field(
        path, config, "feature_names_in",
        lambda v: v is None or (isinstance(v, list) and len(v) == n_features
                                and all(isinstance(f, str) for f in v)),
        f"null or a list of {n_features} strings")
    history = _history(path, config)
    n_iter = _field(path, config, "n_iter", lambda v: _is_int(v) and v >= 0,
                    "an int >= 0")
    batch_size = _field(path, config, "batch_size", lambda v: _is_int(v) and v > 0,
                        "an int > 0")
    temperature = _field(
        path, config, "temperature",
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
        and math.isfinite(v) and v > 0,
        "a finite number > 0")
    fitted = {
        "classes_": classes,
        "one_hot": one_hot,
        "image_shape_": image_shape,
        "n_features_in_": n_features,
        "history_": history,
        "n_iter_": n_iter,
        "batch_size_": batch_size,
        "temperature_": float(temperature),
    }
    if feature_names is not None:
        fitted["feature_names_in_"] = np.array(feature_names, dtype=object)
    return fitted


def saved_device(path, config):
    """The device the model ran on when saved, as :func:`available_device` places it."""
    device = config.get("device", "cpu")
    if not isinstance(device, str):
        raise ModelFileError(f"{path!r}: bad device {short(device)}.")
    return available_device(device, stacklevel=3)
