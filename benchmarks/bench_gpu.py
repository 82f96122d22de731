"""GPU benchmark (issue 15): what ``fit`` and ``predict_proba`` cost on a CUDA device.

Measures, on the real Fashion-MNIST (60,000 training images with the
estimator's own 20% validation split, the 10,000 test images), seeds 0-2:

* ``LeNet5Classifier()`` with its defaults: wall time of ``fit`` and test
  accuracy (goal: mean >= 90.5% in <= 2.5 s on an H200-class GPU; moonshot 1 s);
* the strong recipe, ``sklenet.study.recipe_params("strong")`` (goal: <= 20 s at
  >= 92.4%; ``--skip strong`` leaves it out);
* ``predict_proba`` on the 10,000 test images, the median of ``--repeats``
  calls after a warm-up (goal: <= 10 ms);
* the agreement of the GPU model with itself loaded on the CPU
  (``sklenet.save`` / ``sklenet.load(device="cpu")``): the largest probability
  difference (goal: <= 1e-5) and the share of equal predictions.

Every timing is wall time between ``torch.cuda.synchronize()`` calls. The
GPU's name, torch / CUDA versions and the figures go to ``--out`` as JSON::

    python benchmarks/bench_gpu.py --data-home ../shared/data --out bench_gpu.json

``--device cpu`` runs the same measurements on the CPU (to check the script
where no GPU is lent); ``--quick`` uses 6,000 training images and 2 epochs.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
try:  # an installed sklenet, or the one PYTHONPATH names
    import sklenet
except ImportError:
    sys.path.insert(0, str(REPO))
    import sklenet

from sklenet import LeNet5Classifier  # noqa: E402
from sklenet.datasets import fetch_fashion_mnist  # noqa: E402
from sklenet.study import recipe_params  # noqa: E402

GOALS = {"default_seconds": 2.5, "default_accuracy": 0.905, "strong_seconds": 20.0,
         "strong_accuracy": 0.924, "predict_proba_ms": 10.0, "cpu_gpu_max_diff": 1e-5}


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(device, function):
    _sync(device)
    start = time.perf_counter()
    result = function()
    _sync(device)
    return result, time.perf_counter() - start


def _load(data_home, quick):
    def fetch(subset):
        return fetch_fashion_mnist(subset=subset, data_home=data_home,
                                   download_if_missing=False, return_X_y=True, verbose=False)

    (X_train, y_train), (X_test, y_test) = fetch("train"), fetch("test")
    if quick:
        X_train, y_train = X_train[:6000], y_train[:6000]
    return X_train, y_train, X_test, y_test


def _fit_rows(name, params, seeds, data, device, quick):
    X_train, y_train, X_test, y_test = data
    rows = []
    for seed in seeds:
        settings = dict(params, random_state=seed, device=device)
        if quick:
            settings["max_epochs"] = 2
        clf = LeNet5Classifier(**settings)
        _, seconds = _timed(device, lambda: clf.fit(X_train, y_train))
        accuracy = float(clf.score(X_test, y_test))
        rows.append({"seed": seed, "fit_seconds": round(seconds, 3),
                     "test_accuracy": round(accuracy, 5)})
        print(f"{name:8s} seed {seed}: fit {seconds:7.2f} s, test accuracy {accuracy:.4f}",
              flush=True)
    return {"runs": rows, **_summary(rows)}, clf


def _summary(rows):
    summary = {}
    for key in ("fit_seconds", "test_accuracy"):
        values = [row[key] for row in rows]
        summary[key] = {"mean": round(statistics.mean(values), 5),
                        "min": min(values), "max": max(values)}
    return summary


def _predict_proba_ms(clf, X_test, device, repeats):
    clf.predict_proba(X_test)  # warm-up: kernels, caches
    times = [_timed(device, lambda: clf.predict_proba(X_test))[1] for _ in range(repeats)]
    return round(1000 * statistics.median(times), 3)


def _cpu_agreement(clf, X_test):
    with tempfile.TemporaryDirectory() as directory:
        path = sklenet.save(clf, os.path.join(directory, "model.sklenet"))
        on_cpu = sklenet.load(path, device="cpu")
    here, there = clf.predict_proba(X_test), on_cpu.predict_proba(X_test)
    return {"max_abs_diff": float(np.abs(here - there).max()),
            "same_predictions": float(np.mean(here.argmax(1) == there.argmax(1)))}


def _environment(device):
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "sklenet": sklenet.__version__, "device": device}
    if device.startswith("cuda"):
        env |= {"gpu": torch.cuda.get_device_name(), "cuda": torch.version.cuda}
    else:
        env["cpu"] = platform.processor() or platform.machine()
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", default=os.environ.get("SKLENET_DATA_HOME"))
    parser.add_argument("--out", default="bench_gpu.json")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--skip", nargs="*", default=[], choices=["default", "strong"])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; pass --device cpu to check the script")
    data = _load(args.data_home, args.quick)
    results = {"environment": _environment(args.device), "goals": GOALS, "quick": args.quick}
    for name in ("default", "strong"):
        if name in args.skip:
            continue
        results[name], clf = _fit_rows(name, recipe_params(name), args.seeds, data,
                                       args.device, args.quick)
        if name == "default":
            results["predict_proba_ms"] = _predict_proba_ms(clf, data[2], args.device,
                                                            args.repeats)
            results["cpu_agreement"] = _cpu_agreement(clf, data[2])
            print(f"predict_proba on {len(data[2])} images: "
                  f"{results['predict_proba_ms']} ms; on the CPU: {results['cpu_agreement']}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
