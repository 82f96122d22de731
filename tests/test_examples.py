"""Every script in ``examples/`` runs to completion in its quick mode.

Each one runs in a fresh interpreter with ``SKLENET_EXAMPLES_QUICK=1`` (a small
subset, one or two epochs), the non-interactive ``Agg`` backend, and the
Fashion-MNIST files when the tests find them (``SKLENET_DATA_HOME``, then
``../shared/data``; never the network: the quick mode does not download). New
examples are picked up automatically.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
TIMEOUT = 600

pytest.importorskip("matplotlib")


@pytest.fixture
def fashion_home(request):
    """The Fashion-MNIST directory the tests use, or None (the examples fall back)."""
    try:
        return request.getfixturevalue("fashion_dir")
    except pytest.skip.Exception:
        return None


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path, fashion_home):
    env = dict(
        os.environ,
        SKLENET_EXAMPLES_QUICK="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    env.pop("SKLENET_DATA_HOME", None)
    if fashion_home is not None:
        env["SKLENET_DATA_HOME"] = str(fashion_home)
    # In a scratch directory, so that files an example writes stay out of the checkout.
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-5000:]}"
    )


def test_study_example_uses_the_library():
    # The example shows the library's loader and figures, not copies of them.
    text = (ROOT / "examples" / "plot_fashion_mnist_study.py").read_text()
    for name in ("load_study_data", "recipe_params", "plot_history", "plot_confusion_matrix",
                 "plot_samples"):
        assert name in text, name
    assert "ConfusionMatrixDisplay" not in text and "load_digits" not in text
