"""What kind of values the class labels are, decided in one place.

A fitted ``classes_`` holds booleans, integers, floats or strings. A model
fitted on one-hot rows has the column numbers ``0 .. n_classes - 1`` as its
classes, so it is of the "int" kind. The model file stores the kind next to
the labels as plain JSON values, and the ONNX export picks the type of its
label tensor from it: both go through :func:`label_values` and
:func:`label_array`.

Examples
--------
>>> import numpy as np
>>> from sklenet._labels import label_array, label_values
>>> kind, values = label_values(np.array(["cat", "dog"], dtype=object))
>>> kind, values
('str', ['cat', 'dog'])
>>> label_array(kind, values)
array(['cat', 'dog'], dtype='<U3')
>>> label_values(np.array([False, True]))
('bool', [False, True])
>>> label_array("int", [0, 1, 2]).dtype
dtype('int64')
"""

import math

import numpy as np

__all__ = ["KINDS", "MAX_CLASSES", "MAX_LABEL_CHARS", "MAX_LABEL_LENGTH", "label_kind",
           "label_values", "label_array"]

#: The kinds of class labels, each with the numpy dtype that holds them.
KINDS = {"bool": np.bool_, "int": np.int64, "float": np.float64, "str": np.str_}
#: Most classes a model file holds (the output layer then has 8.4 M weights).
MAX_CLASSES = 100_000
#: Longest string label a model file holds, in characters.
MAX_LABEL_LENGTH = 1024
#: Most characters the string labels may take once numpy pads each to the
#: longest (the number of classes times the longest label): 16 MiB as ``str``.
MAX_LABEL_CHARS = 1 << 22

_INT64 = np.iinfo(np.int64)


def label_kind(classes):
    """The kind of the class labels ``classes``: "bool", "int", "float" or "str".

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        Class labels, e.g. a fitted ``classes_``.

    Returns
    -------
    kind : {"bool", "int", "float", "str"}

    Raises
    ------
    TypeError
        For labels of any other kind, e.g. an object array that mixes integers
        and strings.
    """
    classes = np.asarray(classes)
    kind = classes.dtype.kind
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind == "U" or (kind == "O" and all(isinstance(c, str) for c in classes.ravel())):
        return "str"
    raise TypeError(
        f"Class labels must all be booleans, integers, floats or strings; got "
        f"{classes.tolist()!r} (dtype {classes.dtype})."
    )


def label_values(classes):
    """The kind of ``classes`` and the labels as plain Python values.

    Parameters
    ----------
    classes : array-like of shape (n_classes,)
        Class labels, e.g. a fitted ``classes_``.

    Returns
    -------
    kind : {"bool", "int", "float", "str"}
        As :func:`label_kind` says.
    values : list of bool, int, float or str
        The labels, which :func:`label_array` turns back into ``classes``.

    Raises
    ------
    TypeError
        For labels of another kind, integers outside int64 and non-finite
        floats (neither survive the round trip), and labels beyond the bounds
        :func:`label_array` enforces.
    """
    kind = label_kind(classes)
    convert = {"bool": bool, "int": int, "float": float, "str": str}[kind]
    values = [convert(c) for c in np.asarray(classes).ravel()]
    try:
        _check_values(kind, values)
        _check_size(kind, values)
    except ValueError as exc:
        raise TypeError(str(exc)) from None
    return kind, values


def label_array(kind, values):
    """The class labels of kind ``kind`` as an array, checked.

    The inverse of :func:`label_values`. Untrusted input (a model file) comes
    through here, so every value is checked before numpy sees it.

    Parameters
    ----------
    kind : {"bool", "int", "float", "str"}
        The kind of the labels.
    values : list
        The labels, as plain Python values of that kind.

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        bool, int64, float64 or str.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, a value is not of that kind (or out of the
        int64 range, or not finite), the labels are not sorted and distinct
        as a fitted ``classes_`` is, or they exceed :data:`MAX_CLASSES`,
        :data:`MAX_LABEL_LENGTH` or :data:`MAX_LABEL_CHARS`; all checked
        before numpy builds the array.
    """
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"The kind of class labels must be one of {tuple(KINDS)}, got "
                         f"{kind!r}.")
    if not isinstance(values, list):
        raise ValueError(f"Class labels must be a list, got {type(values).__name__}.")
    _check_values(kind, values)
    _check_size(kind, values)  # before numpy pads every label to the longest
    classes = np.array(values, dtype=KINDS[kind])
    if not np.all(classes[:-1] < classes[1:]):
        raise ValueError("Class labels must be sorted and distinct, as classes_ is.")
    return classes


def _check_values(kind, values):
    # bool is an int subclass, and JSON writes 1.0 as 1: the checks say which is which.
    for value in values:
        if kind == "bool":
            ok = isinstance(value, bool)
        elif kind == "int":
            ok = (isinstance(value, int) and not isinstance(value, bool)
                  and _INT64.min <= value <= _INT64.max)
        elif kind == "float":
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and _is_finite(value))
        else:
            ok = isinstance(value, str)
        if not ok:
            what = {"int": "an int64 integer", "float": "a finite number"}.get(kind, kind)
            raise ValueError(f"Class label {value!r} is not {what}.")


def _check_size(kind, values):
    if len(values) > MAX_CLASSES:
        raise ValueError(f"{len(values)} classes, more than a model holds "
                         f"(MAX_CLASSES={MAX_CLASSES}).")
    if kind != "str":
        return
    longest = max(map(len, values), default=0)
    if longest > MAX_LABEL_LENGTH:
        raise ValueError(f"a class label of {longest} characters, longer than a label "
                         f"may be (MAX_LABEL_LENGTH={MAX_LABEL_LENGTH}).")
    if longest * len(values) > MAX_LABEL_CHARS:
        raise ValueError(
            f"{len(values)} labels of up to {longest} characters take "
            f"{longest * len(values)} characters as an array, more than labels may "
            f"(MAX_LABEL_CHARS={MAX_LABEL_CHARS}).")


def _is_finite(number):
    try:
        return math.isfinite(number)
    except OverflowError:  # an int too large for a float
        return False
