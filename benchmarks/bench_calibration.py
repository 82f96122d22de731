"""Calibration benchmark (issue 19): accuracy, log-loss and ECE before and after the temperature.

For each configuration and seed it fits ``LeNet5Classifier(random_state=seed,
**params)`` once on the 60,000 Fashion-MNIST training images (the estimator's
own 20% validation split, on which ``fit`` fits ``temperature_``) and scores
the 10,000 test images twice from that one fit:

* **before**: the network's own softmax, ``T = 1`` (the fit's logits, i.e.
  ``predict_log_proba * temperature_``);
* **after**: ``predict_proba`` as it comes, ``softmax(logits / temperature_)``.

``calibration="temperature"`` is set on every row, whatever its recipe says,
so that each has an "after". ``predict`` and hence the accuracy are the same
in both. Metrics: test
accuracy, log-loss (``sklearn.metrics.log_loss``) and the expected calibration
error of the top-label confidence in 15 equal-width bins
(``sklenet._calibration.expected_calibration_error``), with the fit's CPU
seconds (``time.process_time()``, which includes fitting the temperature) and
the seconds the temperature itself took.

Configurations (``--configs``): ``default`` (``LeNet5Classifier()``), ``study``
(``recipe_params("study")``, the study's configuration), ``strong``
(``strong_recipe()``, ~330 CPU s a seed: its seeds are ``--strong-seeds``),
``smoothing-0.1`` / ``smoothing-0.0`` (the default with that
``label_smoothing``), ``digits`` (the default on scikit-learn's digits,
``train_test_split(random_state=0)``), ``mnist`` (the default on MNIST), and
``candidate`` / ``candidate-digits`` / ``candidate-mnist`` (the default with
``label_smoothing=0.0, optimizer="adamw", weight_decay=0.05``).

    python benchmarks/bench_calibration.py --out benchmarks/calibration   # ~10 CPU min
    python benchmarks/bench_calibration.py --quick --out /tmp/cal           # smoke: ~1 min

``--quick`` trains 2 epochs on 6,000 images, first seed only: the numbers then
only check that the script runs.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import log_loss

REPO = Path(__file__).resolve().parents[1]
try:  # an installed sklenet, or the one PYTHONPATH names (e.g. a worktree)
    import sklenet
except ImportError:
    sys.path.insert(0, str(REPO))
    import sklenet
sys.path.insert(0, str(REPO / "benchmarks"))

from sklenet import LeNet5Classifier  # noqa: E402
from sklenet._calibration import expected_calibration_error  # noqa: E402
from sklenet.study import recipe_params, strong_recipe  # noqa: E402

from bench_time_to_accuracy import (  # noqa: E402
    default_data_home,
    load_digits_split,
    load_mnist_like,
)

#: Issue 19's goals (Fashion-MNIST test set, mean of the seeds).
GOALS = {"default_ece": 0.015, "default_log_loss": 0.26, "default_accuracy": 0.905,
         "strong_ece": 0.015}

#: Default settings that bring the calibrated default under issue 19's log-loss goal.
CANDIDATE = {"label_smoothing": 0.0, "optimizer": "adamw", "weight_decay": 0.05}

CONFIGS = {
    "default": ("LeNet5Classifier()", "fashion-mnist", {}),
    "study": ("study configuration", "fashion-mnist", recipe_params("study")),
    "strong": ("strong recipe", "fashion-mnist", strong_recipe()),
    "smoothing-0.1": ("default, label_smoothing=0.1", "fashion-mnist",
                      {"label_smoothing": 0.1}),
    "smoothing-0.0": ("default, label_smoothing=0.0", "fashion-mnist",
                      {"label_smoothing": 0.0}),
    # What issue 19's log-loss goal needs (docs/performance.md, "Calibration").
    "candidate": ("default, label_smoothing=0.0, AdamW weight_decay=0.05", "fashion-mnist",
                  CANDIDATE),
    "candidate-digits": ("default, label_smoothing=0.0, AdamW weight_decay=0.05", "digits",
                         CANDIDATE),
    "candidate-mnist": ("default, label_smoothing=0.0, AdamW weight_decay=0.05", "mnist",
                        CANDIDATE),
    "digits": ("LeNet5Classifier()", "digits", {}),
    "mnist": ("LeNet5Classifier()", "mnist", {}),
}


def scores(clf, X_test, y_test):
    """Accuracy, log-loss and ECE of one fitted ``clf``, before and after its temperature."""
    log_proba = clf.predict_log_proba(X_test)
    after = np.exp(log_proba)
    logits = log_proba * clf.temperature_  # the logits up to a constant per row
    before = np.exp(logits - logits.max(axis=1, keepdims=True))
    before /= before.sum(axis=1, keepdims=True)
    accuracy = float(np.mean(clf.predict(X_test) == y_test))
    out = {"test_accuracy": accuracy}
    for name, proba in (("before", before), ("after", after)):
        out[f"log_loss_{name}"] = float(log_loss(y_test, proba, labels=clf.classes_))
        out[f"ece_{name}"] = expected_calibration_error(y_test, proba, labels=clf.classes_)
    return out


def fit_and_score(params, seed, X, y, X_test, y_test):
    # Calibration on for every row, the study's included, so that each has an "after".
    clf = LeNet5Classifier(random_state=seed, **(params | {"calibration": "temperature"}))
    start = time.process_time()
    clf.fit(X, y)
    fit_s = time.process_time() - start
    return {"seed": seed, "epochs": clf.n_iter_, "temperature": clf.temperature_,
            "fit_cpu_s": fit_s} | scores(clf, X_test, y_test)


def summarize(runs):
    keys = ["test_accuracy", "log_loss_before", "log_loss_after", "ece_before", "ece_after",
            "temperature", "fit_cpu_s"]
    return {k: {"mean": statistics.fmean(r[k] for r in runs),
                "min": min(r[k] for r in runs), "max": max(r[k] for r in runs)}
            for k in keys}


def load(kind, data_home, n_sub):
    if kind == "digits":
        X, X_test, y, y_test = load_digits_split()
        return X, y, X_test, y_test
    X, y, X_test, y_test = load_mnist_like(kind, data_home)
    if n_sub:
        X, y, X_test, y_test = X[:n_sub], y[:n_sub], X_test[:n_sub // 6], y_test[:n_sub // 6]
    return X, y, X_test, y_test


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", type=Path, default=default_data_home(),
                        help="folder holding fashion-mnist/ and mnist/ "
                             "(default: $SKLENET_DATA_HOME or ../shared/data)")
    parser.add_argument("--configs", default="default,study,digits,mnist",
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated random_state values")
    parser.add_argument("--strong-seeds", default="0",
                        help="seeds of the strong recipe (~330 CPU s each)")
    parser.add_argument("--mnist-seeds", default="0", help="seeds of the MNIST row")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 6,000 images, 2 epochs, first seed only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/calibration"))
    parser.add_argument("--merge", type=Path, nargs="+", metavar="RESULTS_JSON",
                        help="run nothing: merge the results.json of runs made side by side "
                             "(e.g. one seed each) into --out")
    args = parser.parse_args(argv)
    if args.merge:
        return write(merge(args.merge), args.out)

    torch.set_num_threads(args.threads)

    def seed_list(text):
        seeds = [int(s) for s in text.split(",") if s.strip()]
        return seeds[:1] if args.quick else seeds

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = set(names) - set(CONFIGS)
    if unknown:
        parser.error(f"unknown configs {sorted(unknown)}; choose from {', '.join(CONFIGS)}")
    print(f"sklenet {sklenet.__file__}, torch {torch.__version__}, {args.threads} thread(s)",
          flush=True)
    data, rows = {}, []
    for name in names:
        label, kind, params = CONFIGS[name]
        params = dict(params)
        if args.quick and kind != "digits":
            params["max_epochs"] = 2
        if kind not in data:
            data[kind] = load(kind, args.data_home, 6_000 if args.quick else None)
        seeds = seed_list({"strong": args.strong_seeds, "mnist": args.mnist_seeds,
                           "candidate-mnist": args.mnist_seeds}.get(name, args.seeds))
        runs = []
        for seed in seeds:
            run = fit_and_score(params, seed, *data[kind])
            runs.append(run)
            print(f"  {name} seed {seed}: accuracy {run['test_accuracy']:.4f}, log-loss "
                  f"{run['log_loss_before']:.4f} -> {run['log_loss_after']:.4f}, ECE "
                  f"{run['ece_before']:.2%} -> {run['ece_after']:.2%} (T "
                  f"{run['temperature']:.3f}), fit {run['fit_cpu_s']:.1f} CPU s", flush=True)
        rows.append({"config": name, "label": label, "data": kind,
                     "params": {k: (f"{v.__module__}.{v.__name__}" if isinstance(v, type)
                                    else v) for k, v in params.items()},
                     "runs": runs, "summary": summarize(runs)})
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": args.threads},
        "quick": args.quick,
        "rows": rows,
        "goals": check_goals(rows, args.quick),
    }
    return write(result, args.out)


def write(result, out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    markdown = to_markdown(result)
    (out / "results.md").write_text(markdown)
    print()
    print(markdown)
    return result


def merge(paths):
    """One result from several runs' ``results.json``: the runs of each
    configuration put together (in the order given), summaries recomputed."""
    results = [json.loads(Path(p).read_text()) for p in paths]
    rows = {}
    for result in results:
        for row in result["rows"]:
            merged = rows.setdefault(row["config"], dict(row, runs=[]))
            merged["runs"] += row["runs"]
    for row in rows.values():
        row["summary"] = summarize(row["runs"])
    quick = any(r["quick"] for r in results)
    return {"machine": results[0]["machine"], "quick": quick, "rows": list(rows.values()),
            "goals": check_goals(list(rows.values()), quick)}


def check_goals(rows, quick):
    by_config = {r["config"]: r["summary"] for r in rows}
    checks = []

    def add(name, value, goal, ok):
        checks.append({"goal": name, "value": value, "target": goal,
                       "met": None if quick else bool(ok)})

    if "default" in by_config:
        d = by_config["default"]
        add("default: mean ECE", d["ece_after"]["mean"], "<= 0.015",
            d["ece_after"]["mean"] <= GOALS["default_ece"])
        add("default: mean log-loss", d["log_loss_after"]["mean"], "<= 0.26",
            d["log_loss_after"]["mean"] <= GOALS["default_log_loss"])
        add("default: mean accuracy", d["test_accuracy"]["mean"], ">= 0.905",
            d["test_accuracy"]["mean"] >= GOALS["default_accuracy"])
    if "strong" in by_config:
        s = by_config["strong"]
        add("strong recipe: mean ECE", s["ece_after"]["mean"], "<= 0.015",
            s["ece_after"]["mean"] <= GOALS["strong_ece"])
    return checks


def _spread(stat, fmt):
    text = fmt(stat["mean"])
    if stat["min"] != stat["max"]:
        text += f" ({fmt(stat['min'])}-{fmt(stat['max'])})"
    return text


def to_markdown(r):
    def pct(v):
        return f"{100 * v:.2f}%"

    def dec(v):
        return f"{v:.3f}"

    lines = [
        "# Calibration" + (" (quick smoke run: not a measurement)" if r["quick"] else ""),
        "",
        f"torch {r['machine']['torch']}, {r['machine']['threads']} thread(s). Before: the "
        f"network's softmax (T = 1); after: `predict_proba` (the temperature fitted on the "
        f"validation rows); one fit for both. Mean over the seeds (min-max).",
        "",
        "| configuration | data | seeds | accuracy | log-loss before | log-loss after | "
        "ECE before | ECE after | T | fit CPU s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        s = row["summary"]
        seeds = ",".join(str(run["seed"]) for run in row["runs"])
        lines.append(
            f"| {row['label']} | {row['data']} | {seeds} | {_spread(s['test_accuracy'], pct)} | "
            f"{_spread(s['log_loss_before'], dec)} | {_spread(s['log_loss_after'], dec)} | "
            f"{_spread(s['ece_before'], pct)} | {_spread(s['ece_after'], pct)} | "
            f"{_spread(s['temperature'], dec)} | {s['fit_cpu_s']['mean']:.1f} |")
    lines += ["", "| configuration | seed | accuracy | log-loss before | log-loss after | "
              "ECE before | ECE after | T |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        for run in row["runs"]:
            lines.append(
                f"| {row['label']} ({row['data']}) | {run['seed']} | "
                f"{pct(run['test_accuracy'])} | {dec(run['log_loss_before'])} | "
                f"{dec(run['log_loss_after'])} | {pct(run['ece_before'])} | "
                f"{pct(run['ece_after'])} | {dec(run['temperature'])} |")
    if r["goals"]:
        lines += ["", "| goal | value | target | met |", "|---|---:|---|---|"]
        for c in r["goals"]:
            met = {True: "yes", False: "**no**", None: "-"}[c["met"]]
            lines.append(f"| {c['goal']} | {c['value']:.4f} | {c['target']} | {met} |")
    lines += ["", "Parameters:", ""]
    for row in r["rows"]:
        lines.append(f"* {row['config']}: `{json.dumps(row['params'])}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
