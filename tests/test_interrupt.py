"""Ctrl-C at each phase of ``sklenet reproduce``, with a real SIGINT, and SIGTERM.

Each test starts ``python -m sklenet reproduce`` on a small run, waits for the
line that opens a phase, sends SIGINT and checks what a user sees: exit status
130 within a couple of seconds, one line on stderr, no traceback, and no
results files (an older ``results.json`` is left exactly as it was). SIGTERM
(what ``kill``, a batch scheduler or a container stop sends) is the same with
exit status 143.
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MESSAGE = "sklenet: interrupted; no results were written"
TERMINATED = "sklenet: terminated; no results were written"
# Generous for a loaded CI machine; the command itself gives up after about 1 s.
EXIT_WITHIN = 5.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _interrupt(args, tmp_path, opens_phase, signum=signal.SIGINT, delay=0.0):
    """Run the command, signal it ``delay`` s after the first stdout line matching
    ``opens_phase``."""
    env = dict(os.environ, SKLENET_OFFLINE="1", OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               SCIKIT_LEARN_DATA=str(tmp_path / "sklearn_data"),
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO),
                                                        os.environ.get("PYTHONPATH")])))
    env.pop("SKLENET_DATA_HOME", None)
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "sklenet", "reproduce", *args, "--threads", "1",
         "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if re.search(opens_phase, line):
                break
        else:
            pytest.fail(f"the run ended before {opens_phase!r}:\n{''.join(seen)}"
                        f"{proc.stderr.read()}")
        time.sleep(delay)
        proc.send_signal(signum)
        sent = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, "".join(seen) + stdout, stderr, took


def _assert_interrupted(code, stdout, stderr, took, out):
    assert code == 130, (code, stdout[-2000:], stderr[-3000:])
    assert stderr.splitlines() == [MESSAGE], stderr
    assert "Traceback" not in stdout + stderr
    assert took < EXIT_WITHIN, f"took {took:.1f} s to exit"
    if out.exists():
        names = {p.name for p in out.iterdir()}
        assert not names & {"results.json", "results.md", "samples.png", "loss.png",
                            "accuracy.png", "confusion_matrix.png"}, names
        assert not [n for n in names if n.startswith(".sklenet")], names


def test_interrupt_while_importing_and_loading(tmp_path):
    # The line comes before the first heavy import (scikit-learn, for the digits).
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "digits", "--quick"], tmp_path, r"^Loading the data set")
    _assert_interrupted(code, stdout, stderr, took, tmp_path / "out")
    assert "Data set:" not in stdout


def test_interrupt_while_loading_fashion_mnist(fashion_dir, tmp_path):
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "fashion-mnist", "--data-home", str(fashion_dir), "--quick"],
        tmp_path, r"^Loading the data set")
    _assert_interrupted(code, stdout, stderr, took, tmp_path / "out")


def test_interrupt_while_training_lenet5(tmp_path):
    # After epoch 2 of 50: the interrupt lands in the middle of training.
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "digits", "--epochs", "50", "--recipes", "study", "--baselines",
         "none"], tmp_path, r"^\s+2\s")
    _assert_interrupted(code, stdout, stderr, took, tmp_path / "out")
    assert "LeNet-5 (study" not in stdout.split("epoch", 1)[-1], "training went on"


def test_interrupt_while_fitting_baselines(fashion_dir, tmp_path):
    # libsvm fits in C for seconds without giving Python a chance to raise
    # KeyboardInterrupt: the command must end anyway.
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "fashion-mnist", "--data-home", str(fashion_dir),
         "--max-train-samples", "6000", "--recipes", "none", "--baselines", "mlp,svc"],
        tmp_path, r"^\[mlp\]")
    _assert_interrupted(code, stdout, stderr, took, tmp_path / "out")


def test_interrupt_while_writing_keeps_the_previous_results(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    previous = b'{"from": "an earlier, finished run"}\n'
    (out / "results.json").write_bytes(previous)
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "digits", "--epochs", "1", "--recipes", "study", "--baselines",
         "none"], tmp_path, r"^Writing results")
    assert code == 130, (code, stdout[-2000:], stderr[-3000:])
    assert stderr.splitlines() == [MESSAGE], stderr
    assert took < EXIT_WITHIN
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]
    assert (out / "results.json").read_bytes() == previous


def _no_hidden_folders(out):
    return [p.name for p in out.iterdir() if p.name.startswith(".")] if out.exists() else []


def test_sigterm_while_training_is_a_clean_stop(tmp_path):
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "digits", "--epochs", "50", "--recipes", "study", "--baselines",
         "none"], tmp_path, r"^\s+2\s", signal.SIGTERM)
    assert code == 143, (code, stdout[-2000:], stderr[-3000:])
    assert stderr.splitlines() == [TERMINATED], stderr
    assert "Traceback" not in stdout + stderr
    assert took < EXIT_WITHIN
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("delay", [0.0, 0.3])
def test_sigterm_while_writing_leaves_nothing_behind(tmp_path, delay):
    # Writing takes a few seconds (the figures): the signal lands at its start, in the
    # middle or near its end; the hidden staging folder must go with the new files.
    out = tmp_path / "out"
    out.mkdir()
    previous = b'{"from": "an earlier, finished run"}\n'
    (out / "results.json").write_bytes(previous)
    code, stdout, stderr, took = _interrupt(
        ["--dataset", "digits", "--epochs", "1", "--recipes", "study", "--baselines",
         "none"], tmp_path, r"^Writing results", signal.SIGTERM, delay)
    assert code == 143, (code, stdout[-2000:], stderr[-3000:])
    assert stderr.splitlines() == [TERMINATED], stderr
    assert took < EXIT_WITHIN
    assert sorted(p.name for p in out.iterdir()) == ["results.json"], _no_hidden_folders(out)
    assert (out / "results.json").read_bytes() == previous

