"""Time-to-accuracy benchmark (issue 12): what ``fit()`` costs to reach a given test accuracy.

Measures, on the real data and in one process:

* the budget: a naive hand-written PyTorch loop (``bench_speed.TextbookLeNet5``:
  stock layers, NCHW float32, batch 128, unfused Adam at 1e-3) on the 48,000
  training images of Fashion-MNIST's default 20% validation split, timed for
  ``--naive-epochs`` epochs and scaled to its 20-epoch budget;
* ``LeNet5Classifier()`` with its defaults on Fashion-MNIST (60,000 training
  images, the estimator's own 20% validation split, the 10,000 test images),
  one fit per seed (target: mean test accuracy >= 90.5%, each seed >= 90.0%,
  in <= 0.30x the naive budget; moonshot 0.20x);
* the same defaults on scikit-learn's digits (``train_test_split(random_state=0)``,
  1,347 training images; target: mean >= 96%) and on the real MNIST (first
  seed; target >= 99.0%);
* the strong recipe, ``sklenet.study.strong_recipe()`` (the same 61,706-parameter
  LeNet-5), on Fashion-MNIST (target: mean >= 92.5% in no more CPU time than
  the strong recipe of the previous release, ``PREVIOUS_STRONG`` below, whose
  60-epoch CPU time is estimated from ``--strong-epochs`` epochs timed in this run).

Times are CPU seconds of the process (``time.process_time()``), steadier than
wall time on a shared machine; with ``--threads 1`` they are close to the
wall time of an idle core. Ratios are to the naive loop's budget of the same
run. Prints a table and writes ``results.json`` and ``results.md`` into
``--out``.

    python benchmarks/bench_time_to_accuracy.py --out benchmarks/tta   # full: ~20 CPU min
    python benchmarks/bench_time_to_accuracy.py --quick --out /tmp/tta  # smoke: ~1-2 min

``--quick`` trains every contender for 2 epochs on a 6,000-image subset (digits:
its defaults) and times 1 naive epoch: the numbers then only check that the
script runs. ``--skip`` leaves parts out; ``--strong-epochs 0`` skips timing
today's strong recipe.
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
from torch import nn

REPO = Path(__file__).resolve().parents[1]
try:  # an installed sklenet, or the one PYTHONPATH names (e.g. a worktree)
    import sklenet
except ImportError:
    sys.path.insert(0, str(REPO))
    import sklenet
sys.path.insert(0, str(REPO / "benchmarks"))

from sklenet import LeNet5Classifier  # noqa: E402
from sklenet.datasets import fetch_fashion_mnist, fetch_mnist  # noqa: E402
from sklenet.network import InputAdapter  # noqa: E402
from sklenet.study import strong_recipe  # noqa: E402

from bench_speed import TextbookLeNet5  # noqa: E402

#: The strong recipe of the previous release (ReLU, max pooling, shifts and flips, AdamW,
#: cosine decay, 60 epochs): the CPU budget the new recipe must stay within.
PREVIOUS_STRONG = {
    "activation": "relu", "pooling": "max", "random_shift": 1, "horizontal_flip": True,
    "optimizer": "adamw", "weight_decay": 0.05, "lr": 2e-3, "lr_schedule": "cosine",
    "max_epochs": 60, "batch_size": 128, "label_smoothing": 0.0, "precision": "float32",
}

TARGETS = {
    "defaults_mean": 0.905,
    "defaults_each": 0.900,
    "defaults_ratio": 0.30,
    "defaults_ratio_moonshot": 0.20,
    "digits_mean": 0.96,
    "mnist": 0.990,
    "recipe_mean": 0.925,
}

NAIVE_BATCH = 128
NAIVE_TRAIN = 48_000
NAIVE_EPOCHS = 20


def default_data_home():
    return Path(os.environ.get("SKLENET_DATA_HOME") or REPO.parent / "shared" / "data")


def load_mnist_like(kind, data_home):
    """(X_train, y_train, X_test, y_test) uint8 images of ``data_home/kind``."""
    fetch = fetch_fashion_mnist if kind == "fashion-mnist" else fetch_mnist
    home = Path(data_home) / kind
    train = fetch(subset="train", data_home=home, download_if_missing=False, verbose=False)
    test = fetch(subset="test", data_home=home, download_if_missing=False, verbose=False)
    return train.images, train.target, test.images, test.target


def load_digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, random_state=0)


# ------------------------------------------------------------------- timing


def naive_epoch_seconds(X, y, epochs, n_train=NAIVE_TRAIN, seed=0):
    """CPU seconds per epoch of the naive loop over the first ``n_train`` images."""
    torch.manual_seed(seed)
    X = X.reshape(len(X), -1)[:n_train]
    y = torch.from_numpy(np.asarray(y[:n_train], dtype=np.int64))
    module = nn.Sequential(InputAdapter([float(X.mean())], [float(X.std())]), TextbookLeNet5())
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    images = torch.from_numpy(X).view(-1, 1, 28, 28)
    generator = torch.Generator().manual_seed(seed)
    module.train()
    start = time.process_time()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=generator)
        for i in range(0, len(images), NAIVE_BATCH):
            rows = order[i:i + NAIVE_BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(module(images.index_select(0, rows)), y[rows])
            loss.backward()
            optimizer.step()
    return (time.process_time() - start) / epochs


def fit_and_score(params, seed, X, y, X_test, y_test):
    """Fit ``LeNet5Classifier(**params)``; CPU seconds of fit and predict, test accuracy."""
    clf = LeNet5Classifier(random_state=seed, **params)
    start = time.process_time()
    clf.fit(X, y)
    fit_s = time.process_time() - start
    start = time.process_time()
    accuracy = float(np.mean(clf.predict(X_test) == y_test))
    predict_s = time.process_time() - start
    return {
        "seed": seed,
        "epochs": clf.n_iter_,
        "batch_size": getattr(clf, "batch_size_", clf.batch_size),
        "test_accuracy": accuracy,
        "fit_cpu_s": fit_s,
        "predict_cpu_s": predict_s,
    }


def summarize(runs):
    accs = [r["test_accuracy"] for r in runs]
    fits = [r["fit_cpu_s"] for r in runs]
    return {
        "mean_accuracy": statistics.fmean(accs),
        "min_accuracy": min(accs),
        "max_accuracy": max(accs),
        "mean_fit_cpu_s": statistics.fmean(fits),
    }


def _params_json(params):
    return {k: (f"{v.__module__}.{v.__name__}" if isinstance(v, type) else v)
            for k, v in params.items()}


# --------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", type=Path, default=default_data_home(),
                        help="folder holding fashion-mnist/ and mnist/ "
                             "(default: $SKLENET_DATA_HOME or ../shared/data)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated random_state values")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--naive-epochs", type=int, default=2,
                        help="epochs of the naive loop timed (scaled to 20)")
    parser.add_argument("--strong-epochs", type=int, default=2,
                        help="epochs of today's strong recipe timed (scaled to its 60); "
                             "0 skips it")
    parser.add_argument("--skip", default="",
                        help="comma-separated parts to skip: defaults,digits,mnist,recipe")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 6,000 images, 1-2 epochs, first seed only")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/tta"))
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    defaults, recipe, strong = {}, strong_recipe(), dict(PREVIOUS_STRONG)
    n_sub = None
    if args.quick:
        seeds = seeds[:1]
        n_sub = 6_000
        defaults = {"max_epochs": 2}
        recipe["max_epochs"] = 2
        args.naive_epochs = 1
        args.strong_epochs = min(args.strong_epochs, 1)

    X, y, X_test, y_test = load_mnist_like("fashion-mnist", args.data_home)
    if n_sub:
        X, y, X_test, y_test = X[:n_sub], y[:n_sub], X_test[:n_sub // 6], y_test[:n_sub // 6]
    n_train = int(round(len(X) * 0.8))
    print(f"sklenet {sklenet.__file__}, torch {torch.__version__}, {args.threads} thread(s)",
          flush=True)

    naive = naive_epoch_seconds(X, y, args.naive_epochs, n_train=n_train)
    budget = NAIVE_EPOCHS * naive
    print(f"naive loop: {naive:.2f} CPU s/epoch on {n_train} images -> 20-epoch budget "
          f"{budget:.1f} s", flush=True)
    rows = []

    def record(part, label, data, params, runs):
        for r in runs:
            print(f"  {label} seed {r['seed']}: {r['test_accuracy']:.4f} in "
                  f"{r['fit_cpu_s']:.1f} CPU s ({r['fit_cpu_s'] / budget:.3f}x naive)",
                  flush=True)
        rows.append({"part": part, "label": label, "data": data,
                     "params": _params_json(params), "runs": runs} | summarize(runs))

    if "defaults" not in skip:
        runs = [fit_and_score(defaults, s, X, y, X_test, y_test) for s in seeds]
        record("defaults", "LeNet5Classifier()", "Fashion-MNIST", defaults, runs)
    if "digits" not in skip:
        Xd, Xd_test, yd, yd_test = load_digits_split()
        digit_params = {k: v for k, v in defaults.items() if k != "max_epochs"}
        runs = [fit_and_score(digit_params, s, Xd, yd, Xd_test, yd_test) for s in seeds]
        record("digits", "LeNet5Classifier()", "digits (1,347 train)", digit_params, runs)
    if "mnist" not in skip:
        Xm, ym, Xm_test, ym_test = load_mnist_like("mnist", args.data_home)
        if n_sub:
            Xm, ym, Xm_test, ym_test = (Xm[:n_sub], ym[:n_sub], Xm_test[:n_sub // 6],
                                        ym_test[:n_sub // 6])
        runs = [fit_and_score(defaults, seeds[0], Xm, ym, Xm_test, ym_test)]
        record("mnist", "LeNet5Classifier()", "MNIST", defaults, runs)

    strong_60 = None
    if "recipe" not in skip:
        if args.strong_epochs:
            short = strong | {"max_epochs": args.strong_epochs}
            r = fit_and_score(short, seeds[0], X, y, X_test, y_test)
            strong_60 = r["fit_cpu_s"] / args.strong_epochs * strong["max_epochs"]
            print(f"today's strong recipe: {r['fit_cpu_s'] / args.strong_epochs:.2f} CPU "
                  f"s/epoch -> {strong['max_epochs']} epochs ~{strong_60:.0f} s", flush=True)
        runs = [fit_and_score(recipe, s, X, y, X_test, y_test) for s in seeds]
        record("recipe", "time-to-accuracy recipe", "Fashion-MNIST", recipe, runs)

    checks = check_targets(rows, budget, strong_60, quick=args.quick)
    result = {
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch": torch.__version__,
                    "threads": args.threads},
        "quick": args.quick,
        "seeds": seeds,
        "naive": {"epoch_cpu_s": naive, "epochs_timed": args.naive_epochs,
                  "budget_20_epochs_cpu_s": budget, "train_images": n_train},
        "strong_recipe_cpu_s_estimate": strong_60,
        "rows": rows,
        "targets": checks,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    markdown = to_markdown(result)
    (args.out / "results.md").write_text(markdown)
    print()
    print(markdown)
    return result


def check_targets(rows, budget, strong_60, quick):
    by_part = {r["part"]: r for r in rows}
    checks = []

    def add(name, value, goal, ok):
        checks.append({"target": name, "value": value, "goal": goal, "met": bool(ok)})

    if "defaults" in by_part:
        d = by_part["defaults"]
        ratio = d["mean_fit_cpu_s"] / budget
        add("defaults: mean test accuracy", d["mean_accuracy"], ">= 0.905",
            d["mean_accuracy"] >= TARGETS["defaults_mean"])
        add("defaults: every seed", d["min_accuracy"], ">= 0.900",
            d["min_accuracy"] >= TARGETS["defaults_each"])
        add("defaults: fit CPU / naive 20-epoch budget", ratio, "<= 0.30 (moonshot 0.20)",
            ratio <= TARGETS["defaults_ratio"])
    if "digits" in by_part:
        add("defaults on digits: mean", by_part["digits"]["mean_accuracy"], ">= 0.96",
            by_part["digits"]["mean_accuracy"] >= TARGETS["digits_mean"])
    if "mnist" in by_part:
        add("defaults on MNIST (first seed)", by_part["mnist"]["mean_accuracy"], ">= 0.990",
            by_part["mnist"]["mean_accuracy"] >= TARGETS["mnist"])
    if "recipe" in by_part:
        r = by_part["recipe"]
        add("recipe: mean test accuracy", r["mean_accuracy"], ">= 0.925",
            r["mean_accuracy"] >= TARGETS["recipe_mean"])
        if strong_60:
            add("recipe: fit CPU / today's strong recipe (60 epochs)",
                r["mean_fit_cpu_s"] / strong_60, "<= 1.00", r["mean_fit_cpu_s"] <= strong_60)
    if quick:
        for c in checks:
            c["met"] = None  # a smoke run measures nothing
    return checks


def to_markdown(r):
    budget = r["naive"]["budget_20_epochs_cpu_s"]
    lines = [
        "# Time to accuracy" + (" (quick smoke run: not a measurement)" if r["quick"] else ""),
        "",
        f"torch {r['machine']['torch']}, {r['machine']['threads']} thread(s), "
        f"{r['machine']['cpus']} CPUs. Naive loop: {r['naive']['epoch_cpu_s']:.2f} CPU s per "
        f"epoch of {r['naive']['train_images']:,} images -> 20-epoch budget {budget:.1f} s.",
        "",
        "| contender | data | seed | epochs | batch | test accuracy | fit CPU s | x naive budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in r["rows"]:
        for run in row["runs"]:
            lines.append(
                f"| {row['label']} | {row['data']} | {run['seed']} | {run['epochs']} | "
                f"{run['batch_size']} | {run['test_accuracy']:.4f} | {run['fit_cpu_s']:.1f} | "
                f"{run['fit_cpu_s'] / budget:.3f} |")
        lines.append(
            f"| **{row['label']}, mean** | {row['data']} | | | | "
            f"**{row['mean_accuracy']:.4f}** ({row['min_accuracy']:.4f}-"
            f"{row['max_accuracy']:.4f}) | {row['mean_fit_cpu_s']:.1f} | "
            f"{row['mean_fit_cpu_s'] / budget:.3f} |")
    if r["strong_recipe_cpu_s_estimate"]:
        lines += ["", f"Today's strong recipe, 60 epochs (estimated from the epochs timed): "
                      f"{r['strong_recipe_cpu_s_estimate']:.0f} CPU s "
                      f"({r['strong_recipe_cpu_s_estimate'] / budget:.2f}x naive budget)."]
    lines += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    for c in r["targets"]:
        met = {True: "yes", False: "**no**", None: "-"}[c["met"]]
        lines.append(f"| {c['target']} | {c['value']:.4f} | {c['goal']} | {met} |")
    lines += ["", "Parameters:", ""]
    for row in r["rows"]:
        lines.append(f"* {row['label']} ({row['data']}): `{json.dumps(row['params'])}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
