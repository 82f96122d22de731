"""Speed benchmark: LeNet5Classifier against a hand-written PyTorch loop, plain
skorch and sklearn's MLPClassifier, on Fashion-MNIST.

All contenders run in one process, interleaved (round-robin) over ``--repeats``
repeats; the table reports the median and the spread (min-max). Ratios are
taken between medians of the same run, so they survive a noisy machine far
better than absolute seconds do.

    python benchmarks/bench_speed.py --out benchmarks/results          # full run
    python benchmarks/bench_speed.py --quick --out /tmp/bench          # ~2 minutes

Writes ``results.json`` and ``results.md`` into ``--out`` and prints the table.
"""

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sklenet import LeNet5, LeNet5Classifier  # noqa: E402
from sklenet._speed import cpu_has_native_bf16, resolve_precision  # noqa: E402
from sklenet.network import InputAdapter  # noqa: E402

BATCH = 128
N_TRAIN = 48_000
CHUNK = 256

# ----------------------------------------------------------------------- data


def load_data(data_home):
    """(X_train, y_train, X_test, y_test, source); images uint8 (n, 28, 28)."""
    if data_home is not None and Path(data_home, "train-images-idx3-ubyte.gz").exists():
        from sklenet.datasets import fetch_fashion_mnist

        train = fetch_fashion_mnist(subset="train", data_home=data_home,
                                    download_if_missing=False, verbose=False)
        test = fetch_fashion_mnist(subset="test", data_home=data_home,
                                   download_if_missing=False, verbose=False)
        return (train.images, train.target, test.images, test.target,
                f"Fashion-MNIST ({data_home})")
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, 60_000), rng.integers(0, 256, (10_000, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, 10_000), "random data shaped like Fashion-MNIST (files absent)")


# ----------------------------------------------------------------- contenders


class TextbookLeNet5(nn.Module):
    """LeNet-5 written the plain way: stock layers, activation before pooling."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, kernel_size=5, padding=2)
        self.s2 = nn.MaxPool2d(2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.s4 = nn.MaxPool2d(2)
        self.c5 = nn.Conv2d(16, 120, kernel_size=5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, 10)

    def forward(self, x):
        x = self.s2(torch.tanh(self.c1(x)))
        x = self.s4(torch.tanh(self.c3(x)))
        x = torch.tanh(self.c5(x)).flatten(1)
        return self.output(torch.tanh(self.f6(x)))


# Options of the estimator, and of the hand-written loop doing the same thing.
CONFIGS = {
    "fp32 eager (NCHW)": dict(precision="float32", channels_last=False),
    "fp32 channels-last": dict(precision="float32", channels_last=True),
    "auto precision + channels-last": dict(precision="auto", channels_last=True),
}


def _module(mean, std, classic=False, channels_last=False):
    net = LeNet5(1, 10, "tanh", "max")
    if classic:  # same initial weights, plain layers
        textbook = TextbookLeNet5()
        textbook.load_state_dict(net.state_dict())
        net = textbook
    module = nn.Sequential(InputAdapter([mean], [std]), net)
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    return module


def hand_loop(X, y, mean, std, *, classic=False, channels_last=False, amp=None,
              fused=False, seed=0):
    """One epoch of a hand-written loop slicing preloaded tensors; returns (seconds, module)."""
    torch.manual_seed(seed)
    module = _module(mean, std, classic, channels_last)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    loss_fn = nn.CrossEntropyLoss()
    Xt = torch.from_numpy(X).view(-1, 1, 28, 28)
    yt = torch.from_numpy(y)
    perm = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(seed))
    module.train()
    start = time.perf_counter()
    for i in range(0, len(Xt), BATCH):
        idx = perm[i:i + BATCH]
        xb = Xt[idx]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
            out = module(xb)
        loss = loss_fn(out.float(), yt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start, module


def hand_predict(module, X, channels_last=False, amp=None):
    """Batched inference in fixed chunks of 256 images, like the estimator."""
    Xt = torch.from_numpy(X).view(-1, 1, 28, 28)
    out = np.empty((len(Xt), 10), np.float32)
    module.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=amp, enabled=amp is not None):
        for i in range(0, len(Xt), CHUNK):
            xb = Xt[i:i + CHUNK]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            out[i:i + len(xb)] = torch.softmax(module(xb).float(), 1).numpy()
    return out


def estimator(cfg, epochs=1, seed=0):
    # The hand loop's settings (lr 1e-3, plain cross-entropy), not the estimator's defaults.
    return LeNet5Classifier(max_epochs=epochs, batch_size=BATCH, lr_schedule="constant",
                            lr=1e-3, label_smoothing=0.0,
                            validation_fraction=None, activation="tanh", pooling="max",
                            device="cpu", random_state=seed, **cfg)


def skorch_plain(X, y, seed=0):
    from skorch import NeuralNetClassifier

    torch.manual_seed(seed)
    net = NeuralNetClassifier(
        TextbookLeNet5,
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam, lr=1e-3,
        batch_size=BATCH, max_epochs=1, train_split=None, iterator_train__shuffle=True,
        device="cpu", verbose=0,
    )
    Xf = (X.reshape(-1, 1, 28, 28) / np.float32(255)).astype(np.float32)
    start = time.perf_counter()
    net.fit(Xf, y)
    return time.perf_counter() - start, net


def mlp(X, y, seed=0):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(max_iter=1, batch_size=BATCH, random_state=seed)
    Xf = X.reshape(len(X), -1) / np.float32(255)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xf, y)
    return time.perf_counter() - start, clf


# --------------------------------------------------------------- measurement


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def latency(predict_one, n_calls):
    times = []
    for _ in range(n_calls):
        t = time.perf_counter()
        predict_one()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"p50_ms": 1e3 * times[len(times) // 2],
            "p99_ms": 1e3 * times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]}


def macs_per_image():
    """Multiply-adds of one 28x28 forward pass, counted from the layer shapes."""
    net = LeNet5(1, 10, "tanh", "max")
    total = []

    def hook(layer, inputs, output):
        if isinstance(layer, nn.Conv2d):
            k = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
            total.append(output[0].numel() * k)
        else:
            total.append(layer.in_features * layer.out_features)

    hooks = [m.register_forward_hook(hook) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        net(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return sum(total)


def cpu_peak(fma_units):
    """fp32 peak GFLOP/s = cores x FMA units x SIMD lanes x 2 flops x GHz."""
    cores = os.cpu_count() or 1
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    cores = caps.get("num_physical_cores", cores)
    lanes = 16 if caps.get("avx512_f") else 8 if caps.get("avx2") else 4
    ghz, source = None, None
    try:
        text = Path("/proc/cpuinfo").read_text()
        mhz = [float(line.split(":")[1]) for line in text.splitlines()
               if line.startswith("cpu MHz")]
        if mhz:
            ghz, source = max(mhz) / 1e3, "/proc/cpuinfo 'cpu MHz'"
    except OSError:
        pass
    if ghz is None:
        ghz, source = 2.5, "assumed 2.5 GHz"
    peak = cores * fma_units * lanes * 2 * ghz
    return {"cores": cores, "fma_units": fma_units, "fp32_lanes": lanes, "ghz": round(ghz, 3),
            "clock_source": source, "peak_gflops": peak,
            "formula": f"{cores} cores x {fma_units} FMA units x {lanes} fp32 lanes x 2 flop x "
                       f"{ghz:.2f} GHz = {peak:.0f} GFLOP/s"}


_RSS_CHILD = r"""
import resource, sys, time, json
sys.path.insert(0, {repo!r})
import numpy as np, torch


def peak_kb():
    # VmHWM belongs to this process's own memory map. ru_maxrss does not do here: Linux
    # carries into it the RSS of the parent that forked this child before exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


torch.set_num_threads({threads})
from sklenet import LeNet5Classifier
rng = np.random.default_rng(0)
X = rng.random((60000, 784), dtype=np.float32)
y = rng.integers(0, 10, 60000)
base = peak_kb()
if {fit}:
    LeNet5Classifier(max_epochs={epochs}, random_state=0, device="cpu").fit(X, y)
print(json.dumps({{"base_kb": base, "peak_kb": peak_kb()}}))
"""


def peak_rss(threads, epochs):
    """Peak RSS (MB) of a child that fits on 60,000 float32 images, and of one that only loads."""
    out = {}
    for fit in (False, True):
        code = _RSS_CHILD.format(repo=str(REPO), threads=threads, fit=fit, epochs=epochs)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True)
        out["fit" if fit else "load_only"] = json.loads(res.stdout.strip().splitlines()[-1])
    data_mb = 60000 * 784 * 4 / 2**20
    peak = out["fit"]["peak_kb"] / 1024
    before_fit = out["fit"]["base_kb"] / 1024
    fixed = out["load_only"]["base_kb"] / 1024 - data_mb  # interpreter + libraries
    return {"dataset_float32_mb": data_mb, "peak_mb": peak, "rss_before_fit_mb": before_fit,
            "imports_mb": fixed, "growth_during_fit_mb": peak - before_fit,
            "budget_mb": 2 * data_mb + fixed + 300,
            "budget_rule": "2 x float32 data + libraries' RSS + 300 MB",
            "epochs": epochs}


# ------------------------------------------------------------------------ main


def main(argv=None):
    default_home = REPO.parent / "shared" / "data" / "fashion-mnist"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-home", default=str(default_home) if default_home.exists()
                        else None, help="folder with the Fashion-MNIST IDX .gz files")
    parser.add_argument("--repeats", type=int, default=None,
                        help="interleaved repeats (default 3; 2 with --quick)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--quick", action="store_true",
                        help="12,800 training images, 2 repeats, 200 latency calls, no RSS")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's, i.e. the physical cores)")
    parser.add_argument("--accuracy-epochs", type=int, default=0,
                        help="also train each estimator option this many epochs on all "
                             "48k images and report test accuracy (0: skip)")
    parser.add_argument("--fma-units", type=int, default=2,
                        help="FMA units per core for the fp32 peak (2 on AVX-512 Xeons)")
    parser.add_argument("--skip", default="",
                        help="comma-separated contenders to leave out: skorch, mlp, rss")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (2 if args.quick else 3)
    n_train = 12_800 if args.quick else N_TRAIN
    n_latency = 200 if args.quick else 1000
    if args.quick:
        skip.add("rss")

    X, y, Xtest, ytest, source = load_data(args.data_home)
    X, y = X[:n_train], y[:n_train]
    mean, std = float(X.mean()), float(X.std())
    amp = resolve_precision("auto", "cpu")
    print(f"data: {source}; training on {len(X)} images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}", flush=True)

    # --- contenders: name -> callable(seed) returning (epoch_seconds, fitted, extra)
    def fit_est(cfg):
        def run(seed):
            clf = estimator(cfg, seed=seed)
            t = time.perf_counter()
            clf.fit(X, y)
            wall = time.perf_counter() - t
            return clf.history_[0]["duration"], clf, {"fit_wall_s": wall}
        return run

    def fit_hand(cfg, classic=False, fused=True):
        def run(seed):
            cl = cfg["channels_last"]
            a = resolve_precision(cfg["precision"], "cpu")
            sec, module = hand_loop(X, y, mean, std, classic=classic, channels_last=cl, amp=a,
                                    fused=fused, seed=seed)
            return sec, (module, cl, a), {}
        return run

    train = {"hand-written naive loop (textbook layer order, NCHW fp32, Adam)":
             fit_hand(CONFIGS["fp32 eager (NCHW)"], classic=True, fused=False)}
    for name, cfg in CONFIGS.items():
        train[f"LeNet5Classifier.fit, {name}"] = fit_est(cfg)
        train[f"hand-written loop, {name}"] = fit_hand(cfg)
    if "skorch" not in skip:
        train["skorch NeuralNetClassifier, plain (numpy float32)"] = (
            lambda seed: skorch_plain(X, y, seed) + ({},))
    if "mlp" not in skip:
        train["sklearn MLPClassifier (1 epoch)"] = lambda seed: mlp(X, y, seed) + ({},)

    times = {k: [] for k in train}
    extras = {k: [] for k in train}
    fitted = {}
    print("warm-up ...", flush=True)
    for name, run in train.items():  # warm-up: first-call costs (oneDNN primitives, imports)
        if "MLP" not in name:
            run(0)
    for r in range(repeats):
        for name, run in train.items():
            sec, model, extra = run(r)
            times[name].append(sec)
            extras[name].append(extra)
            fitted[name] = model
            print(f"  repeat {r + 1}/{repeats}  {name}: {sec:.2f} s", flush=True)

    # --- inference: predict_proba on the 10k test images, latency of one image
    def infer_fn(name):
        model = fitted[name]
        if isinstance(model, LeNet5Classifier):
            return model.predict_proba
        if isinstance(model, tuple):
            module, cl, a = model
            return lambda Z: hand_predict(module, Z, cl, a)
        if "MLP" in name:
            return lambda Z: model.predict_proba(Z.reshape(len(Z), -1) / np.float32(255))
        return lambda Z: model.predict_proba(
            (Z.reshape(-1, 1, 28, 28) / np.float32(255)).astype(np.float32))

    infer = {name: infer_fn(name) for name in train}
    pred_times = {k: [] for k in infer}
    for name, f in infer.items():
        f(Xtest[:300])  # warm-up
    for r in range(repeats):
        for name, f in infer.items():
            t = time.perf_counter()
            f(Xtest)
            pred_times[name].append(time.perf_counter() - t)
    lat = {name: latency(lambda f=f: f(Xtest[:1]), n_latency) for name, f in infer.items()}

    # --- figures
    macs = macs_per_image()
    flops_train = 3 * 2 * macs  # forward 2 flop/MAC, backward ~2x forward
    peak = cpu_peak(args.fma_units)
    results = {"data": source, "n_train": len(X), "n_test": len(Xtest), "batch_size": BATCH,
               "repeats": repeats, "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version(),
               "cpu": platform.processor() or platform.machine(),
               "native_bf16": cpu_has_native_bf16(), "auto_precision": str(amp),
               "macs_per_image": macs, "train_flops_per_image": flops_train, "peak": peak,
               "train": {}, "predict": {}}
    for name in train:
        s = summary(times[name])
        s["images_per_s"] = len(X) / s["median"]
        s["gflops"] = flops_train * len(X) / s["median"] / 1e9
        s["pct_of_peak"] = 100 * s["gflops"] / peak["peak_gflops"]
        if extras[name] and extras[name][0]:
            s["fit_wall_s"] = summary([e["fit_wall_s"] for e in extras[name]])
        results["train"][name] = s
        p = summary(pred_times[name])
        p.update(lat[name])
        results["predict"][name] = p

    def ratio(a, b, table):
        return results[table][a]["median"] / results[table][b]["median"]

    naive = next(iter(train))
    ratios = {}
    for cfg in CONFIGS:
        est, hand = f"LeNet5Classifier.fit, {cfg}", f"hand-written loop, {cfg}"
        ratios[cfg] = {"fit_vs_hand_loop": ratio(est, hand, "train"),
                       "predict_proba_vs_hand": ratio(est, hand, "predict"),
                       "fit_vs_naive_loop": ratio(est, naive, "train")}
        if "skorch" not in skip:
            ratios[cfg]["skorch_vs_fit"] = ratio(
                "skorch NeuralNetClassifier, plain (numpy float32)", est, "train")
    results["ratios"] = ratios

    if args.accuracy_epochs:
        acc = {}
        Xall, yall = load_data(args.data_home)[:2]
        Xall, yall = Xall[:N_TRAIN], yall[:N_TRAIN]
        for cfg_name, cfg in CONFIGS.items():
            clf = estimator(cfg, epochs=args.accuracy_epochs, seed=0).set_params(
                lr_schedule="cosine")
            t = time.perf_counter()
            clf.fit(Xall, yall)
            acc[cfg_name] = {"test_accuracy": clf.score(Xtest, ytest),
                             "fit_s": time.perf_counter() - t}
            print(f"  accuracy {cfg_name}: {acc[cfg_name]['test_accuracy']:.4f}", flush=True)
        results["accuracy"] = {"epochs": args.accuracy_epochs, "train_images": len(Xall),
                               "per_option": acc}

    if "rss" not in skip:
        print("peak RSS of a 60k fit (child process) ...", flush=True)
        results["rss"] = peak_rss(torch.get_num_threads(), epochs=1)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    md = to_markdown(results)
    (out / "results.md").write_text(md)
    print(md)
    return results


def to_markdown(r):
    lines = [f"Data: {r['data']}; {r['n_train']} training images, batch {r['batch_size']}, "
             f"{r['repeats']} interleaved repeats, torch {r['torch']}, {r['threads']} threads; "
             f"native bf16: {r['native_bf16']} (precision='auto' -> {r['auto_precision']}).",
             "",
             "### Training, one epoch (median, min-max)",
             "",
             "| contender | epoch s | spread s | images/s | GFLOP/s | % of fp32 peak |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, s in r["train"].items():
        lines.append(f"| {name} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} | "
                     f"{s['images_per_s']:,.0f} | {s['gflops']:.1f} | {s['pct_of_peak']:.1f} |")
    lines += ["", "Estimator epoch = skorch's epoch duration in `history_` (the training pass "
              "only); hand-written loops are timed around their batch loop; skorch and MLP "
              "around `fit` (1 epoch).", ""]
    walls = {n: s["fit_wall_s"]["median"] for n, s in r["train"].items() if "fit_wall_s" in s}
    if walls:
        lines.append("Whole `fit` wall time (validation, setup included): " + "; ".join(
            f"{n.split(', ', 1)[1]} {w:.2f} s" for n, w in walls.items()))
        lines.append("")
    lines += ["### Inference on the test images",
              "",
              "| contender | predict_proba 10k s | spread s | 1 image p50 ms | 1 image p99 ms |",
              "|---|---:|---:|---:|---:|"]
    for name, p in r["predict"].items():
        lines.append(f"| {name} | {p['median']:.3f} | {p['min']:.3f}-{p['max']:.3f} | "
                     f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} |")
    lines += ["", "### Ratios (medians of this run)", "",
              "| option | fit / hand loop | predict_proba / hand | fit / naive loop | "
              "skorch / fit |", "|---|---:|---:|---:|---:|"]
    for cfg, q in r["ratios"].items():
        sk = f"{q['skorch_vs_fit']:.2f}x" if "skorch_vs_fit" in q else "-"
        lines.append(f"| {cfg} | {q['fit_vs_hand_loop']:.3f} | {q['predict_proba_vs_hand']:.3f} "
                     f"| {q['fit_vs_naive_loop']:.3f} | {sk} |")
    p = r["peak"]
    lines += ["", f"FLOPs: {r['macs_per_image']:,} multiply-adds per image forward "
              f"(counted from the layer shapes) -> {r['train_flops_per_image'] / 1e6:.2f} MFLOP "
              f"per training image (2 flop/MAC forward, backward 2x forward). "
              f"fp32 peak: {p['formula']} (clock from {p['clock_source']})."]
    if "accuracy" in r:
        a = r["accuracy"]
        lines += ["", f"### Test accuracy, {a['epochs']} epochs on {a['train_images']} images "
                  "(cosine lr, random_state=0)", "", "| option | test accuracy | fit s |",
                  "|---|---:|---:|"]
        for cfg, v in a["per_option"].items():
            lines.append(f"| {cfg} | {v['test_accuracy']:.4f} | {v['fit_s']:.1f} |")
    if "rss" in r:
        m = r["rss"]
        lines += ["", f"Peak RSS of a fit on 60,000 float32 images ({m['epochs']} epoch, child "
                  f"process): {m['peak_mb']:.0f} MB; before fit {m['rss_before_fit_mb']:.0f} MB "
                  f"(libraries ~{m['imports_mb']:.0f} MB + data {m['dataset_float32_mb']:.0f} MB); "
                  f"growth during fit {m['growth_during_fit_mb']:.0f} MB; budget "
                  f"({m['budget_rule']}) {m['budget_mb']:.0f} MB."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
