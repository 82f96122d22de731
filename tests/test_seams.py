"""Modules talk through public seams: no module reads another's private names.

sklenet's modules whose names start with an underscore (``_training``,
``_input``, ``_model_file``...) are package-private helpers: any sklenet module
may call their public functions. What no module may do is reach into another
module's underscore names (``from .report import _seconds``,
``plotting._confident_errors``) or into an object's private attributes
(``clf._images``, ``estimator.__getstate__()["_one_hot"]``). Each module may
use the underscore names it defines itself; the few private names of other
libraries sklenet relies on are listed below, each with the test that pins it.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sklenet"
MODULES = sorted(PACKAGE.glob("*.py"))

#: Private names of other libraries, used by design.
THIRD_PARTY = {
    # skorch.NeuralNet (tests/test_engine_state.py pins each)
    "_set_training", "_default_callbacks", "_modules", "_criteria",
    # sklearn's BaseEstimator._validate_params: the check fit runs (through
    # _fit_context), which sklearn offers no public way to run without fitting;
    # sklenet.classifier.check_params is the one place that calls it
    "_validate_params",
    # torch's CPU feature probes (sklenet._speed), guarded by getattr
    "_is_amx_tile_supported", "_is_avx512_bf16_supported",
    # Python's own protocol names
    "_replace", "_asdict", "_fields", "_exit",
}


def _own_private_names(tree):
    """Underscore names a module defines: functions, classes, methods, attributes
    it assigns (``self._x = ...``) and module-level names."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # getattr(obj, "_name") / setattr of its own
    return {name for name in names if name.startswith("_")}


def _self_or_super(node):
    return (isinstance(node, ast.Name) and node.id in ("self", "cls")) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == "super")


def _foreign_private_uses(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = _own_private_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or "sklenet" in (node.module or "")):
            for alias in node.names:
                module = (node.module or "").rsplit(".", 1)[-1]
                if (alias.name.startswith("_") and not alias.name.endswith("__")
                        and not (PACKAGE / f"{alias.name}.py").exists()):
                    found.append(f"{path.name}:{node.lineno} imports {module}.{alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            if node.attr.startswith("__") and node.attr.endswith("__"):
                if node.attr in ("__getstate__", "__setstate__") and not _self_or_super(node.value):
                    found.append(f"{path.name}:{node.lineno} calls .{node.attr} of another object")
                continue
            if _self_or_super(node.value):
                continue
            if node.attr in own or node.attr in THIRD_PARTY:
                continue
            if (PACKAGE / f"{node.attr}.py").exists():
                continue  # a package-private helper module, e.g. sklenet._training
            found.append(f"{path.name}:{node.lineno} reads .{node.attr}")
    return found


@pytest.mark.parametrize("path", MODULES, ids=[p.name for p in MODULES])
def test_no_module_reads_another_modules_private_names(path):
    assert _foreign_private_uses(path) == []
