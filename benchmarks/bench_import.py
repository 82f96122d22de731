"""Start-up benchmark: ``import sklenet`` and the ``sklenet`` command's quick answers.

Each measurement is a fresh interpreter (``python -c``, ``python -m sklenet``),
timed from the outside, so it includes the interpreter's own start-up; a bare
``python -c pass`` is measured too, as the floor. The table reports the median
and the spread (min-max) over ``--repeats`` runs, interleaved round-robin so
that a noisy machine hurts every row alike.

    python benchmarks/bench_import.py                  # 7 repeats
    python benchmarks/bench_import.py --repeats 15 --json /tmp/import.json

For comparison, ``import torch`` alone is measured as well: it is what
``import sklenet`` used to cost before the imports became lazy.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CASES = {
    "python -c pass": ["-c", "pass"],
    "import sklenet": ["-c", "import sklenet"],
    "sklenet --version": ["-m", "sklenet", "--version"],
    "sklenet --help": ["-m", "sklenet", "--help"],
    "sklenet reproduce --help": ["-m", "sklenet", "reproduce", "--help"],
    "sklenet reprodce (typo)": ["-m", "sklenet", "reprodce"],
    "import torch": ["-c", "import torch"],
    "from sklenet import LeNet5Classifier": ["-c", "from sklenet import LeNet5Classifier"],
}


def _time(args, env):
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="runs per case (default: 7)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for case in CASES.values():  # warm the file system cache and the .pyc files
        _time(case, env)
    times = {name: [] for name in CASES}
    for _ in range(args.repeats):
        for name, case in CASES.items():
            times[name].append(_time(case, env))

    width = max(map(len, CASES))
    print(f"{'':{width}}  median (min-max) over {args.repeats} runs, seconds")
    for name, values in times.items():
        print(f"{name:{width}}  {statistics.median(values):6.3f} "
              f"({min(values):.3f}-{max(values):.3f})")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "repeats": args.repeats,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "median_s": {name: statistics.median(v) for name, v in times.items()},
            "times_s": times,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
