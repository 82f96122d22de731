"""How many CPU threads PyTorch uses while sklenet trains and predicts.

PyTorch runs its CPU kernels on an OpenMP team of one thread per core, and
LeNet-5's kernels are so short (tens of microseconds) that every one ends in a
barrier where the team waits for its slowest member. When other processes keep
the cores busy, one of the team is always descheduled, and the rest spin at the
barrier in the meantime: on our 2-core machine with two busy processes the
README's quick start took 16.6 s with PyTorch's default two threads against
5.7 s with one (docs/performance.md). Small batches gain nothing from a second
thread even on an idle machine.

So ``n_threads=None`` (the default of :class:`~sklenet.LeNet5Classifier`) picks,
for each ``fit``/``predict`` call, at most

* the threads this thread of the caller allows: ``torch.get_num_threads()``,
  which reflects ``OMP_NUM_THREADS``, ``torch.set_num_threads``, threadpoolctl's
  OpenMP limits and those joblib sets in its workers, and no more than
  ``joblib.cpu_count()`` (CPU affinity, cgroup quotas), as scikit-learn's
  OpenMP estimators do;
* one thread for steps (a training batch, an inference chunk) of fewer than
  :data:`MIN_IMAGES_FOR_THREADS` images, and for calls on fewer than
  :data:`MIN_IMAGES_TO_MEASURE` images in all (epochs times images), for which
  watching the CPUs would cost more than a second thread can save;
* the CPUs that other work leaves idle right now (:func:`idle_cpus`).

On an idle machine with large batches that is what PyTorch's default gives.

An int is used as given (negative: counted from the limit, as scikit-learn's
``n_jobs=-1``), so that a caller who wants a fixed arithmetic (the order of the
sums, hence the last bits, depends on the thread count) can have it.

:func:`torch_threads` sets the count for the duration of a call and restores
it afterwards, on an exception too. ``torch.set_num_threads`` is only partly
per thread: with PyTorch's OpenMP backend the count is per OS thread, but the
call also sets MKL's count and the count that threads take when they first use
torch, for the whole process. So fits running at once in several Python threads
each set their own thread's count, and a thread whose torch starts during
another's call (a thread pool growing as it gets work) would take that call's
temporary count as its own: every call made while another is running restores
the count from before the first of them, and the last one out restores the
process-wide settings. MKL (the small fully connected layers only) follows the
latest call meanwhile.
"""

import contextlib
import os
import threading
import time

import torch
from joblib import cpu_count

__all__ = ["MIN_IMAGES_FOR_THREADS", "MIN_IMAGES_TO_MEASURE", "idle_cpus", "resolve_n_threads",
           "torch_threads"]

#: A step of fewer images than this runs on one thread: on the idle 2-core AMD
#: EPYC the README's quick start (batches of 32) took 2.3 s on one thread and
#: 2.4 s on two. Larger steps keep PyTorch's default on idle CPUs: where a
#: second thread starts to pay was not measured (the machine was never idle
#: while this was written; docs/performance.md).
MIN_IMAGES_FOR_THREADS = 128

#: A call on fewer images than this (all epochs together) runs on one thread
#: without watching the CPUs: about half a second of one-thread work, against
#: the :data:`IDLE_WINDOW` that :func:`idle_cpus` sleeps.
MIN_IMAGES_TO_MEASURE = 8192

#: How long :func:`idle_cpus` watches the CPUs, in seconds.
IDLE_WINDOW = 0.05

#: A CPU counts as free when at least this fraction of it was idle.
_FREE_FRACTION = 0.75

#: :func:`idle_cpus` answers from a measurement at most this old (seconds),
#: so that predicting right after a fit does not wait for a new one.
_IDLE_CACHE_S = 1.0
_last_idle = (float("-inf"), None)

_lock = threading.Lock()
_depth = threading.local()  # torch_threads blocks open in this thread
_active = 0  # ... and in the whole process
_outside = None  # the count before the first of the blocks now open


def thread_limit():
    """The most threads a call may use: ``torch.get_num_threads()`` in the
    calling thread, capped by the CPUs this process may run on."""
    return max(1, min(torch.get_num_threads(), cpu_count(only_physical_cores=False)))


def _cpu_times(cpus):
    """``{cpu: (idle, total)}`` jiffies from ``/proc/stat`` for ``cpus``."""
    times = {}
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if not line.startswith(b"cpu") or line[3:4] == b" ":
                continue
            fields = line.split()
            cpu = int(fields[0][3:])
            if cpu in cpus:
                values = [int(v) for v in fields[1:9]]
                # idle + iowait is idle; user, nice, system, irq, softirq and
                # steal (another VM on our CPU) are busy.
                times[cpu] = (values[3] + values[4], sum(values))
    return times


def idle_cpus(window=IDLE_WINDOW):
    """How many of this process's CPUs other work leaves idle, or None if unknown.

    The sum of the idle fractions of the CPUs in this process's affinity mask
    over ``window`` seconds, read from ``/proc/stat`` (Linux). The caller is
    asleep meanwhile, so only other processes, or other threads of this one,
    count as busy; unlike the load average it neither lags nor counts this
    process's own past work. A measurement younger than ``_IDLE_CACHE_S`` is
    reused.
    """
    global _last_idle
    taken, idle = _last_idle
    if time.monotonic() - taken < _IDLE_CACHE_S:
        return idle
    try:
        cpus = os.sched_getaffinity(0)
        before = _cpu_times(cpus)
        time.sleep(window)
        after = _cpu_times(cpus)
    except (AttributeError, OSError, ValueError):
        return None
    idle = 0.0
    for cpu, (idle_after, total_after) in after.items():
        idle_before, total_before = before.get(cpu, (idle_after, total_after))
        elapsed = total_after - total_before
        # A CPU with no tick in the window (tickless, idle) was idle.
        idle += 1.0 if elapsed <= 0 else (idle_after - idle_before) / elapsed
    if not after:
        return None
    _last_idle = (time.monotonic(), idle)
    return idle


def resolve_n_threads(n_threads, images_per_step, images_in_all, device="cpu"):
    """The number of PyTorch CPU threads for a call (see the module docstring).

    Parameters
    ----------
    n_threads : int or None
        The estimator's ``n_threads``: None picks automatically; a positive
        int is used as given; a negative one counts from the limit (-1: all the
        threads allowed, -2: all but one).
    images_per_step : int
        Images in one training batch or inference chunk.
    images_in_all : int
        Images the call processes (training: images times epochs).
    device : str or torch.device
        Where the network runs: automatic choice does not touch the CPU
        threads of a CUDA call.
    """
    if n_threads is not None:
        if n_threads > 0:
            return int(n_threads)
        return max(1, thread_limit() + 1 + int(n_threads))
    limit = thread_limit()
    if str(device).startswith("cuda"):
        return torch.get_num_threads()
    if (limit == 1 or images_per_step < MIN_IMAGES_FOR_THREADS
            or images_in_all < MIN_IMAGES_TO_MEASURE):
        return 1
    idle = idle_cpus()
    if idle is None:
        return limit
    return max(1, min(limit, int(idle + 1 - _FREE_FRACTION)))


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``torch.set_num_threads(n_threads)``, then restore the
    calling thread's previous count (on an exception too).

    Nothing is set when the count is already ``n_threads``, so the common case
    (one thread in a joblib worker) touches no process-wide setting. See the
    module docstring for calls in several threads at once.
    """
    global _active, _outside
    nested = getattr(_depth, "n", 0) > 0
    with _lock:
        current = torch.get_num_threads()
        if _active == 0:
            _outside = current
        previous = current if nested or _active == 0 else _outside
        _active += 1
        if current != n_threads:
            torch.set_num_threads(n_threads)
    _depth.n = getattr(_depth, "n", 0) + 1
    try:
        yield
    finally:
        _depth.n -= 1
        with _lock:
            _active -= 1
            if torch.get_num_threads() != previous:
                torch.set_num_threads(previous)
