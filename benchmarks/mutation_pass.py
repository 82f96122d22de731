"""A mutation pass over the engine, persistence and input modules: does the test suite
catch realistic bugs?

Each mutant is one planted bug, ``(file, original snippet, mutated snippet, rationale,
tests)``. The script copies the working tree (tracked and untracked, not ignored files)
to a temporary directory, checks that the copy's ``sklenet`` is the one imported there,
then for each mutant applies it in the copy, runs its targeted tests (``-x``, one
thread, a timeout) and puts the file back. A test that kills a mutant is run again on
the unmutated copy: if it fails there too (e.g. someone's half-done edit), it is
deselected and the mutant run again. The working tree itself is never modified. A
mutant is *killed* when a test fails (or the run times out), *survived* when all pass,
*skipped* when its original snippet is not in the file exactly once.

Run from the repository root::

    python benchmarks/mutation_pass.py              # writes results/mutation_pass.json
    python benchmarks/mutation_pass.py --only M02,M19 --keep   # some mutants, keep the copy
    python benchmarks/mutation_pass.py --only M19 --tests tests/test_engine_contract.py

The JSON holds, per mutant, its id, file, rationale, status, tests run, seconds and
the tail of pytest's output; and the kill rate over the mutants that applied.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = "tests/test_engine_contract.py"
CLASSIFIER = "tests/test_classifier.py"
LIFECYCLE = "tests/test_lifecycle.py"
OPTIONS = "tests/test_training_options.py"
WEIGHTS = "tests/test_weights.py"
STATE = "tests/test_engine_state.py"
PERSISTENCE = "tests/test_persistence.py"

# (id, file, original, mutated, rationale, tests)
MUTANTS = [
    # ----------------------------------------------------------- the engine
    ("M01", "sklenet/classifier.py",
     "train_set = self._dataset(X, y, train_idx, weight)",
     "train_set = self._dataset(X, y, np.arange(len(X)), weight)",
     "fit also trains on the held-out validation rows", [CONTRACT, CLASSIFIER]),
    ("M02", "sklenet/_training.py",
     'if params["ema_decay"]:\n        callbacks.append(("weight_average"',
     'if False:\n        callbacks.append(("weight_average"',
     "ema_decay ignored", [CONTRACT, OPTIONS]),
    ("M03", "sklenet/_training.py",
     'weight = X.get("sample_weight") if isinstance(X, dict) else None',
     "weight = None",
     "sample weights ignored in the loss", [WEIGHTS, CONTRACT]),
    ("M04", "sklenet/_training.py",
     "if training:\n            losses = self.criterion_(y_pred, y_true)",
     "if True:\n            losses = self.criterion_(y_pred, y_true)",
     "validation reports the label-smoothed loss, not the log-loss",
     [WEIGHTS, CLASSIFIER, CONTRACT]),
    ("M05", "sklenet/_training.py",
     "except KeyboardInterrupt as interrupt:\n"
     "            raise UserInterrupt(interrupt) from interrupt",
     "except KeyboardInterrupt:\n            return self",
     "Ctrl-C swallowed: a half-trained model returned as if complete", [LIFECYCLE, STATE]),
    ("M06", "sklenet/_training.py",
     'if method_name == "on_epoch_end" and self._early_stopping_triggered():',
     "if False:",
     "early stopping taken for the user's Ctrl-C", [LIFECYCLE, CLASSIFIER]),
    ("M07", "sklenet/_training.py",
     "iterator_train__shuffle=True,", "iterator_train__shuffle=False,",
     "training batches never shuffled", [CONTRACT, CLASSIFIER]),
    ("M08", "sklenet/_training.py",
     'optimizer_kwargs["optimizer__momentum"] = 0.9',
     'optimizer_kwargs["optimizer__momentum"] = 0.0',
     "optimizer='sgd' without its documented momentum 0.9", [OPTIONS, LIFECYCLE, CLASSIFIER]),
    ("M09", "sklenet/_training.py",
     "steps = -(-n_train // batch_size)", "steps = n_train // batch_size",
     "one-cycle schedule one step short per epoch (floor, not ceil)",
     [OPTIONS, CLASSIFIER, CONTRACT]),
    ("M10", "sklenet/_training.py",
     'monitor="train_loss" if valid_set is None else "valid_loss",',
     'monitor="train_loss",',
     "early stopping watches the training loss despite a validation set",
     [CLASSIFIER, LIFECYCLE, CONTRACT]),
    ("M11", "sklenet/_training.py",
     'net.history.clear()\n    net.history.extend(copy.deepcopy(state["history"]))',
     "net.history.clear()",
     "a continued fit / unpickled model loses its history", [LIFECYCLE, STATE]),
    ("M12", "sklenet/_training.py",
     'if optimizer and saved.get("name") == type(net.optimizer_).__name__:',
     "if False:",
     "warm start drops Adam's moments", [LIFECYCLE, STATE]),
    ("M13", "sklenet/_training.py",
     "padded[:n] = chunk", "padded[-n:] = chunk",
     "inference pads at the front, so a short last chunk predicts the wrong rows",
     [CLASSIFIER, OPTIONS]),
    ("M14", "sklenet/_training.py",
     "mirrored = run_module(module, chunk.flip(-1),",
     "mirrored = run_module(module, chunk.flip(-2),",
     "test-time flip mirrors top-bottom", [OPTIONS]),
    ("M15", "sklenet/_training.py",
     '["act6"], amp_dtype, n_threads)["act6"]',
     '["f6"], amp_dtype, n_threads)["f6"]',
     "extract_features returns F6 before its activation", [CLASSIFIER, STATE, CONTRACT]),
    ("M16", "sklenet/_training.py",
     "nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)",
     "nn.init.kaiming_uniform_(layer.weight, a=0, generator=generator)",
     "weights not initialized as PyTorch does", [LIFECYCLE]),
    ("M17", "sklenet/_training.py",
     "InputAdapter(mean, std)", "InputAdapter(std, mean)",
     "input standardization with mean and std swapped", [CONTRACT, CLASSIFIER]),
    # ---------------------------------------------------------- callbacks
    ("M18", "sklenet/_callbacks.py",
     "average.lerp_(param, 1.0 - decay)", "average.lerp_(param, decay)",
     "moving average weighted the wrong way round", [CONTRACT, OPTIONS]),
    ("M19", "sklenet/_callbacks.py",
     "math.cos(math.pi * self.epoch_ / self.n_epochs)",
     "math.cos(math.pi * (self.epoch_ + 1) / self.n_epochs)",
     "cosine schedule one epoch ahead", [CLASSIFIER, LIFECYCLE]),
    ("M20", "sklenet/_callbacks.py",
     "self.seen_[training] += float(weight.sum())",
     "self.seen_[training] += len(y_true)",
     "weighted accuracy divided by the count, not the weight sum", [WEIGHTS]),
    # ----------------------------------------------------------- batching
    ("M21", "sklenet/_batching.py",
     "for start in range(0, n, self.batch_size):",
     "for start in range(0, n - self.batch_size + 1, self.batch_size):",
     "the last, partial batch of each epoch dropped", [CONTRACT, CLASSIFIER]),
    ("M22", "sklenet/_batching.py",
     'X = {"X": X, "sample_weight": _take(self.sample_weight, rows)}',
     'X = {"X": X, "sample_weight": _take(self.sample_weight, i)}',
     "sample weights taken by batch position, not by row", [WEIGHTS, CONTRACT]),
    ("M23", "sklenet/_batching.py",
     "X = torch.where(mirror.view(-1, 1, 1, 1), X.flip(-1), X)",
     "X = torch.where(mirror.view(-1, 1, 1, 1), X.flip(-2), X)",
     "horizontal_flip augmentation flips vertically", [OPTIONS, CLASSIFIER]),
    # ------------------------------------------------------- the estimator
    ("M24", "sklenet/classifier.py",
     "weight = scale_loss_weights(weight * scale_loss_weights(class_weights)[y])",
     "weight = scale_loss_weights(weight)",
     "class_weight ignored", [WEIGHTS]),
    ("M25", "sklenet/classifier.py",
     "classes, y[train_idx], None if sample_weight is None else sample_weight[train_idx]",
     "classes, y, sample_weight",
     "'balanced' class weights counted over the validation rows too", [WEIGHTS, CONTRACT]),
    ("M26", "sklenet/classifier.py",
     "stats = channel_mean_std(X, self.image_shape_[0], rows=train_idx)",
     "stats = channel_mean_std(X, self.image_shape_[0], rows=None)",
     "input statistics learned from the validation rows too", [CONTRACT]),
    ("M27", "sklenet/classifier.py",
     'stream_seed = seed + (len(previous["history"]) if previous else 0)',
     "stream_seed = seed",
     "a continued fit replays the shuffling of the epochs already trained",
     [LIFECYCLE, STATE, CONTRACT]),
    ("M28", "sklenet/classifier.py",
     "return softmax(model._logits(X) / model.temperature_, axis=1)",
     "return softmax(model._logits(X) / model.temperature_, axis=0)",
     "softmax over the samples instead of the classes", [CLASSIFIER]),
    ("M29", "sklenet/classifier.py",
     "work.__dict__.update(estimator.__dict__)",
     "work.__dict__ = estimator.__dict__",
     "the working copy shares the estimator's attributes: a failed fit changes them",
     [LIFECYCLE, STATE]),
    # -------------------------------------------------------------- input
    ("M30", "sklenet/_input.py",
     "return np.sort(train), np.sort(valid)",
     "return np.sort(np.append(train, valid[:1])), np.sort(valid)",
     "off-by-one in the split: one validation row also trained on", [CONTRACT, CLASSIFIER]),
    ("M31", "sklenet/_input.py",
     "indices = np.searchsorted(classes, found)[indices]",
     "indices = indices",
     "labels of a partial_fit batch indexed by the batch's classes, not the model's",
     [CLASSIFIER, LIFECYCLE, CONTRACT]),
    ("M32", "sklenet/_input.py",
     "    return classes[indices]", "    return classes[::-1][indices]",
     "wrong class order in decode", [CLASSIFIER, PERSISTENCE]),
    ("M33", "sklenet/_input.py",
     "std = np.sqrt(squares / count)", "std = squares / count",
     "standardization divides by the variance", [CONTRACT, CLASSIFIER]),
    ("M34", "sklenet/_input.py",
     "    if sample_shape is None:\n        return",
     "    if True:\n        return",
     "image shape of predict's images never checked", [LIFECYCLE, CLASSIFIER]),
    # -------------------------------------------------------- persistence
    ("P01", "sklenet/persistence.py",
     '"one_hot": model.one_hot,', '"one_hot": False,',
     "one-hot flag lost on save", [PERSISTENCE]),
    ("P02", "sklenet/_model_file.py",
     "h.update(np.ascontiguousarray(array).tobytes())", "pass",
     "digest does not cover the tensor bytes", [PERSISTENCE]),
    ("P03", "sklenet/_model_file.py",
     "if int(version) > FORMAT_VERSION:", "if int(version) < FORMAT_VERSION:",
     "files of a newer format version accepted", [PERSISTENCE]),
    ("P04", "sklenet/_model_file.py",
     "if start != position:", "if start < position:",
     "gaps between tensors accepted", [PERSISTENCE]),
    ("P05", "sklenet/_model_config.py",
     'return tuple(decode_value(v) for v in value["tuple"])',
     'return [decode_value(v) for v in value["tuple"]]',
     "tuples come back as lists", [PERSISTENCE]),
    ("P06", "sklenet/_model_config.py",
     "if shape is None or len(shape) <= axis or shape[axis] != wanted:",
     "if shape is None:",
     "declared class/channel counts not checked against the tensors", [PERSISTENCE]),
    ("P07", "sklenet/_model_config.py",
     "if n_features != math.prod(image_shape):", "if False:",
     "n_features_in not checked against image_shape", [PERSISTENCE]),
    ("P08", "sklenet/_model_config.py",
     '"temperature_": float(temperature),', '"temperature_": 1.0,',
     "temperature lost on load", [PERSISTENCE, "tests/test_calibration.py"]),
    ("P09", "sklenet/_labels.py",
     '"int": np.int64,', '"int": np.int32,',
     "int labels come back as int32", [PERSISTENCE, "sklenet/_labels.py"]),
    ("P10", "sklenet/_labels.py",
     "if not np.all(classes[:-1] < classes[1:]):",
     "if not np.all(classes[:-1] <= classes[1:]):",
     "duplicate class labels accepted from a file", [PERSISTENCE, "sklenet/_labels.py"]),
    ("P11", "sklenet/_labels.py",
     'if kind in "iu":', 'if kind in "i":',
     "unsigned-integer labels refused on save", [PERSISTENCE, "sklenet/_labels.py"]),
]


def tracked_and_untracked(root):
    """Files of the working tree that git tracks or would track (not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, check=True, capture_output=True,
    ).stdout.decode()
    skip = (".venvs/", "results/", ".git/")
    return sorted({p for p in out.split("\0") if p and not p.startswith(skip)})


def copy_tree(root, dest):
    """Copy the working tree into ``dest/main``; ``dest/shared`` links to ``root``'s."""
    main = dest / "main"
    for rel in tracked_and_untracked(root):
        src = root / rel
        if src.is_file():  # deleted in the working tree: not copied
            target = main / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    shared = root.parent / "shared"
    if shared.exists():
        (dest / "shared").symlink_to(shared)
    return main


def environment(copy):
    env = dict(os.environ, PYTHONPATH=str(copy), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    return env


def check_import(copy):
    out = subprocess.run([sys.executable, "-c", "import sklenet; print(sklenet.__file__)"],
                         cwd=copy, env=environment(copy), capture_output=True, text=True,
                         check=True).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"the copy imports sklenet from {out}, not from {copy}")
    return out


def _default_sigint():
    # A background job (``nohup ... &``) ignores SIGINT, and so would the tests'
    # own Ctrl-C: give the child the default disposition back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_pytest(copy, tests, deselect, timeout, extra=()):
    cmd = [sys.executable, "-m", "pytest", *tests, "-x", "-q", "-p", "no:cacheprovider",
           "-W", "ignore::pytest.PytestUnraisableExceptionWarning", *extra]
    for node in deselect:
        cmd += ["--deselect", node]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=environment(copy), capture_output=True,
                              text=True, timeout=timeout, preexec_fn=_default_sigint)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = "timeout"
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
    return rc, output, time.perf_counter() - start


def failed_nodes(output):
    return [line.split(" ", 1)[1].split(" - ")[0]
            for line in output.splitlines() if line.startswith(("FAILED ", "ERROR "))]


def fails_unmutated(copy, nodes, timeout):
    """The nodes among ``nodes`` that fail on the unmutated copy as well."""
    rc, output, _ = run_pytest(copy, nodes, [], timeout, extra=("--no-header",))
    if rc == 0:
        return []
    return failed_nodes(output) or list(nodes)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "mutation_pass.json"))
    parser.add_argument("--only", help="comma-separated mutant ids")
    parser.add_argument("--tests", help="comma-separated tests instead of each mutant's")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per pytest run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    mutants = MUTANTS
    if args.only:
        wanted = set(args.only.split(","))
        mutants = [m for m in MUTANTS if m[0] in wanted]
    tmp = Path(tempfile.mkdtemp(prefix="sklenet-mutants-"))
    copy = copy_tree(ROOT, tmp)
    print(f"copy: {copy}; sklenet imported there from {check_import(copy)}", flush=True)
    results, deselect = [], []
    try:
        for ident, rel, original, mutated, rationale, tests in mutants:
            tests = args.tests.split(",") if args.tests else tests
            path = copy / rel
            source = path.read_text()
            record = {"id": ident, "file": rel, "rationale": rationale, "tests": tests,
                      "original": original, "mutated": mutated}
            if source.count(original) != 1:
                record.update(status="skipped",
                              reason=f"snippet found {source.count(original)} times")
                results.append(record)
                print(f"{ident} skipped ({record['reason']})", flush=True)
                continue
            while True:
                path.write_text(source.replace(original, mutated))
                try:
                    rc, output, seconds = run_pytest(copy, tests, deselect, args.timeout)
                finally:
                    path.write_text(source)
                killers = failed_nodes(output)
                if rc in (0, "timeout") or not killers:
                    break
                # A test that fails without the mutant (someone's half-done edit)
                # kills nothing: deselect it and run the mutant again.
                broken = fails_unmutated(copy, killers, args.timeout)
                if not broken:
                    break
                print(f"  deselected, failing unmutated: {broken}", flush=True)
                deselect += broken
            status = "survived" if rc == 0 else "killed"
            record.update(status=status, returncode=rc, seconds=round(seconds, 1),
                          killed_by=killers[:3], output_tail=output[-1500:])
            results.append(record)
            print(f"{ident} {status} in {seconds:.0f}s {killers[:1]} ({rationale})",
                  flush=True)
    finally:
        applied = [r for r in results if r["status"] != "skipped"]
        killed = [r for r in applied if r["status"] == "killed"]
        summary = {
            "applied": len(applied), "killed": len(killed), "deselected": deselect,
            "kill_rate": round(len(killed) / len(applied), 3) if applied else None,
            "survived": [r["id"] for r in applied if r["status"] == "survived"],
            "skipped": [r["id"] for r in results if r["status"] == "skipped"],
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"summary": summary, "mutants": results},
                                             indent=1))
        print(json.dumps(summary), flush=True)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
