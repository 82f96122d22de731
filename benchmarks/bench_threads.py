"""Thread-count benchmark: ``n_threads=None`` (the default) against 1 and 2 threads,
on an idle machine and on one whose cores this script keeps busy itself.

Two fits, as a user runs them:

* ``digits``: the README's quick start, ``LeNet5Classifier(random_state=0).fit``
  on sklearn's digits (``train_test_split(random_state=0)``, batches of 32);
* ``fashion``: a Fashion-MNIST subset (``--fashion-samples`` images, the default
  20% validation split, ``batch_size=256``, what ``"auto"`` gives on the full
  set, ``--fashion-epochs`` epochs).

For the ``loaded`` condition the script starts ``--busy`` processes that spin
(one per CPU by default), so that the load is known rather than whatever else
the machine runs; ``idle`` means no process of ours besides the fit. Conditions,
workloads and thread settings are interleaved over ``--repeats`` repeats; the
table reports medians of wall and CPU time (CPU time of this process only) and
the ratio of the default's median wall time to the best of the fixed settings
(the goal: at most 1.2). A fit still running after ``--max-fit-s`` seconds is
stopped there and counted at that time, marked ``>`` (a lower bound): on a
crowded machine two threads can take minutes where one takes seconds.

    python benchmarks/bench_threads.py --out /tmp/bench_threads.json
    python benchmarks/bench_threads.py --repeats 1 --fashion-epochs 1 --out /tmp/t.json  # smoke

Set nothing thread-related in the environment (``OMP_NUM_THREADS`` would cap
every setting); the script refuses to run when it is set.
"""

import argparse
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETTINGS = {"default": None, "1 thread": 1, "2 threads": 2}


def spin():
    """A busy process: what another job on the machine looks like to the scheduler."""
    while True:
        pass


def start_busy(n):
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # let them reach their loop (and the 1 s idle cache expire)
    return procs


def stop_busy(procs):
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join()
    time.sleep(1.0)


def load_workloads(data_home, fashion_samples):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X_train, _, y_train, _ = train_test_split(X, y, random_state=0)
    workloads = {"digits": (X_train, y_train, {})}
    if Path(data_home, "train-images-idx3-ubyte.gz").exists():
        from sklenet.datasets import fetch_fashion_mnist

        train = fetch_fashion_mnist(subset="train", data_home=data_home,
                                    download_if_missing=False, verbose=False)
        workloads["fashion"] = (train.images[:fashion_samples], train.target[:fashion_samples],
                                {"batch_size": 256})
    else:
        print(f"Fashion-MNIST not found in {data_home}: digits only", flush=True)
    return workloads


class Stopped(Exception):
    """A fit ran past ``--max-fit-s``."""


def timed_fit(X, y, params, n_threads, max_fit_s=float("inf")):
    import torch
    from skorch.callbacks import Callback

    from sklenet import LeNet5Classifier

    seen = []
    start = time.perf_counter()

    class Watch(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen.append(torch.get_num_threads())

        def on_batch_end(self, net, **kwargs):
            if time.perf_counter() - start > max_fit_s:
                raise Stopped

    clf = LeNet5Classifier(random_state=0, n_threads=n_threads, callbacks=[Watch()], **params)
    before = torch.get_num_threads()
    cpu = time.process_time()
    try:
        clf.fit(X, y)
        stopped = False
    except Stopped:
        stopped = True
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert torch.get_num_threads() == before, "the caller's thread count was not restored"
    return {"wall_s": wall, "cpu_s": cpu, "stopped": stopped, "threads_per_epoch": seen}


def summarize(runs):
    summary = {}
    for condition, by_workload in runs.items():
        for workload, by_setting in by_workload.items():
            medians = {s: {"wall_s": statistics.median(r["wall_s"] for r in rs),
                           "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                           "wall_min_max": [min(r["wall_s"] for r in rs),
                                            max(r["wall_s"] for r in rs)]}
                       for s, rs in by_setting.items()}
            for s, rs in by_setting.items():
                medians[s]["stopped"] = sum(r["stopped"] for r in rs)
            best = min(medians[s]["wall_s"] for s in medians if s != "default")
            summary.setdefault(condition, {})[workload] = {
                "median": medians,
                "default_over_best_fixed": medians["default"]["wall_s"] / best,
                "default_threads_seen": sorted({t for r in by_setting["default"]
                                                for t in r["threads_per_epoch"]}),
            }
    return summary


def table(summary):
    lines = ["| condition | workload | setting | wall s (median, min-max) | CPU s "
             "| default / best |", "|---|---|---|---:|---:|---:|"]
    for condition, by_workload in summary.items():
        for workload, entry in by_workload.items():
            for setting, m in entry["median"].items():
                ratio = (f"**{entry['default_over_best_fixed']:.2f}** (threads "
                         f"{entry['default_threads_seen']})" if setting == "default" else "")
                lo, hi = m["wall_min_max"]
                mark = ">" if m["stopped"] else ""
                lines.append(f"| {condition} | {workload} | {setting} | {mark}{m['wall_s']:.2f} "
                             f"({lo:.2f}-{hi:.2f}) | {m['cpu_s']:.2f} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=len(os.sched_getaffinity(0)),
                        help="busy processes of the loaded condition (default: one per CPU)")
    parser.add_argument("--conditions", default="idle,loaded")
    parser.add_argument("--workloads", default="digits,fashion")
    parser.add_argument("--data-home", default=str(REPO.parent / "shared/data/fashion-mnist"))
    parser.add_argument("--fashion-samples", type=int, default=20_000)
    parser.add_argument("--fashion-epochs", type=int, default=2)
    parser.add_argument("--max-fit-s", type=float, default=60.0,
                        help="stop a fit after this many seconds (counted as that time)")
    args = parser.parse_args(argv)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name):
            parser.error(f"{name} is set; unset it so that each setting is what it says")

    import sklearn
    import torch

    import sklenet

    workloads = load_workloads(args.data_home, args.fashion_samples)
    workloads = {k: v for k, v in workloads.items() if k in args.workloads.split(",")}
    if "fashion" in workloads:
        workloads["fashion"][2]["max_epochs"] = args.fashion_epochs
    conditions = args.conditions.split(",")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads by default, "
          f"{len(os.sched_getaffinity(0))} CPUs, load average {os.getloadavg()}", flush=True)
    timed_fit(*workloads["digits"][:2], {"max_epochs": 1}, 1)  # warm-up: imports, kernels
    runs = {}
    for repeat in range(args.repeats):
        for condition in conditions:
            busy = start_busy(args.busy) if condition == "loaded" else []
            try:
                for workload, (X, y, params) in workloads.items():
                    # Rotate the order so that no setting always runs first.
                    names = list(SETTINGS)
                    names = names[repeat % 3:] + names[:repeat % 3]
                    for setting in names:
                        run = timed_fit(X, y, params, SETTINGS[setting], args.max_fit_s)
                        run["load_average_1min"] = os.getloadavg()[0]
                        runs.setdefault(condition, {}).setdefault(workload, {}) \
                            .setdefault(setting, []).append(run)
                        print(f"repeat {repeat} {condition:6s} {workload:7s} {setting:9s} "
                              f"wall {run['wall_s']:6.2f} s  cpu {run['cpu_s']:6.2f} s  "
                              f"threads {sorted(set(run['threads_per_epoch']))}"
                              f"{'  (stopped)' if run['stopped'] else ''}", flush=True)
            finally:
                stop_busy(busy)
    summary = summarize(runs)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"cpus": len(os.sched_getaffinity(0)), "processor": platform.processor(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "sklearn": sklearn.__version__, "sklenet": sklenet.__version__},
        "args": {k: str(v) for k, v in vars(args).items()},
        "summary": summary,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(summary))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
