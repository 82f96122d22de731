"""Every script in ``examples/`` runs to completion in its quick mode.

Each one runs in a fresh interpreter with ``SKLENET_EXAMPLES_QUICK=1`` (a small
subset, one or two epochs), the non-interactive ``Agg`` backend, and the
shared Fashion-MNIST files when they are there (never the network: the quick
mode does not download). New examples are picked up automatically.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
FASHION_MNIST = ROOT.parent / "shared" / "data" / "fashion-mnist"
TIMEOUT = 600

pytest.importorskip("matplotlib")


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    env = dict(
        os.environ,
        SKLENET_EXAMPLES_QUICK="1",
        MPLBACKEND="Agg",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    if FASHION_MNIST.is_dir():
        env["SKLENET_DATA_HOME"] = str(FASHION_MNIST)
    # In a scratch directory, so that files an example writes stay out of the checkout.
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, (
        f"{script.name} exited with {proc.returncode}:\n{proc.stdout[-3000:]}\n"
        f"{proc.stderr[-5000:]}"
    )
