"""``import sklenet`` and the command's quick answers stay free of the heavy imports.

PyTorch, scikit-learn, skorch and matplotlib take seconds to import; they are
imported when a network, a baseline or a figure is needed, never by
``import sklenet``, ``sklenet --help``, ``--version`` or a mistyped command.
Each check runs in a fresh interpreter, since this test session has imported
everything already.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "skorch", "matplotlib", "scipy")


def _python(code):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_sklenet_imports_no_heavy_module():
    out = _python(f"""
        import sys
        import sklenet
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        print(sklenet.__version__)
    """)
    assert out.splitlines() == ["[]", "0.1.0"]


def test_public_names_load_on_first_use():
    out = _python("""
        import sys
        import sklenet
        assert "torch" not in sys.modules
        names = sorted(sklenet.__all__)
        assert set(names) <= set(dir(sklenet)), dir(sklenet)
        from sklenet import *  # every name of __all__ resolves
        print(LeNet5Classifier.__module__, LeNet5.__module__, load.__module__,
              save.__module__, to_onnx.__module__, ModelFileError.__mro__[1].__name__)
        print("torch" in sys.modules, sklenet.study.__name__, sklenet.report.__name__)
    """)
    assert out.splitlines() == [
        "sklenet.classifier sklenet.network sklenet.persistence sklenet.persistence "
        "sklenet.export ValueError",
        "True sklenet.study sklenet.report",
    ]


def test_unknown_attribute_is_an_attribute_error():
    import sklenet

    with pytest.raises(AttributeError, match="has no attribute 'LeNet6'"):
        sklenet.LeNet6  # noqa: B018


@pytest.mark.parametrize("argv, code", [
    (["--version"], 0),
    (["--help"], 0),
    (["reproduce", "--help"], 0),
    (["reproduce", "--seed", "-1"], 2),
    (["reprodce"], 2),
])
def test_quick_answers_import_no_heavy_module(argv, code):
    # main() in a fresh interpreter, then a look at what it imported.
    out = _python(f"""
        import sys
        from sklenet.cli import main
        try:
            status = main({argv!r})
        except SystemExit as exc:
            status = exc.code
        print(status, sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert out.splitlines()[-1] == f"{code} []"


def test_study_and_report_import_no_heavy_module():
    # The command's parser reads the registries of sklenet.study.
    out = _python(f"""
        import sys
        import sklenet.study, sklenet.report, sklenet.plotting, sklenet.cli
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert out.splitlines() == ["[]"]


def _sklenet_imports():
    """Module -> the sklenet modules it imports, function-level imports included."""
    import ast

    package = REPO / "sklenet"
    modules = {p.stem for p in package.glob("*.py")}
    graph = {}
    for path in package.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                deps.update(n.split(".")[0] for n in names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklenet."):
                deps.add(node.module.split(".")[1])
        graph[path.stem] = deps & modules - {path.stem, "__init__"}
    return graph


def test_command_study_and_report_are_in_no_import_cycle():
    # The command sits on top: cli -> study / report -> estimator -> ...; nothing below
    # may import them back, not even inside a function.
    graph = _sklenet_imports()

    def reachable(start):
        seen, todo = set(), [start]
        while todo:
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        return seen

    for module in ("cli", "study", "report", "plotting"):
        assert module not in reachable(module), module
    assert graph["report"] <= {"plotting"}  # output depends on no protocol
    assert "cli" not in set().union(*(graph[m] for m in graph if m != "__main__"))
