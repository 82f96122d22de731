"""sklenet: LeNet-5 as a scikit-learn estimator.

The public names are imported on first use (PEP 562): ``import sklenet``
does not import PyTorch, scikit-learn or skorch, so the ``sklenet`` command
answers ``--help`` at once and scripts pay for torch only when they touch a
network.

Examples
--------
>>> import sys
>>> import sklenet
>>> sorted(sklenet.__all__)
['LeNet5', 'LeNet5Classifier', 'LeNet5Features', 'ModelFileError', '__version__',
 'load', 'save', 'to_onnx']
>>> sklenet.LeNet5Classifier.__name__
'LeNet5Classifier'
>>> "sklenet.classifier" in sys.modules
True
"""

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

# Public name -> the submodule that defines it.
_LAZY = {
    "LeNet5": "network",
    "LeNet5Classifier": "classifier",
    "LeNet5Features": "features",
    "save": "persistence",
    "load": "persistence",
    "ModelFileError": "persistence",
    "to_onnx": "export",
}

# Submodules reachable as attributes (``sklenet.study.run_study`` after a bare
# ``import sklenet``), as they were when this file imported them eagerly.
_SUBMODULES = ("cli", "datasets", "export", "network", "persistence", "plotting", "report",
               "study")

__all__ = ["LeNet5", "LeNet5Classifier", "LeNet5Features", "save", "load", "ModelFileError",
           "to_onnx", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        # Cached, so later lookups are plain attribute reads.
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    # What a user may reach: the public names, the submodules and the dunders,
    # not this file's own helpers.
    dunders = {name for name in globals() if name.startswith("__")}
    return sorted(dunders | set(__all__) | set(_SUBMODULES))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .classifier import LeNet5Classifier
    from .export import to_onnx
    from .features import LeNet5Features
    from .network import LeNet5
    from .persistence import ModelFileError, load, save
