"""PyTorch CPU threads of fit and predict: ``n_threads`` and its automatic choice."""

import threading

import joblib
import pytest
import torch
from skorch.callbacks import Callback

from sklenet import LeNet5Classifier, _threads


class ThreadsSeen(Callback):
    """Records ``torch.get_num_threads()`` at each epoch of training."""

    def __init__(self, seen=None):
        self.seen = seen

    def on_epoch_begin(self, net, **kwargs):
        self.seen.append(torch.get_num_threads())


class Boom(Callback):
    def __init__(self, error=RuntimeError):
        self.error = error

    def on_epoch_end(self, net, **kwargs):
        raise self.error("boom")


@pytest.fixture
def torch_threads_2():
    """The caller runs torch with 2 threads (restored afterwards)."""
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def idle(monkeypatch):
    """Pretend that ``n`` CPUs are idle, and that the test's small fits are
    large enough to look at them."""
    def set_idle(n):
        monkeypatch.setattr(_threads, "idle_cpus", lambda window=None: n)
        monkeypatch.setattr(_threads, "MIN_IMAGES_TO_MEASURE", 0)
    return set_idle


def _fit_recording(X, y, **params):
    seen = []
    params = {"max_epochs": 1, "validation_fraction": None, "random_state": 0, **params}
    clf = LeNet5Classifier(callbacks=[ThreadsSeen(seen)], **params).fit(X, y)
    return clf, seen


def _predict_recording(clf, X):
    seen = []
    hook = clf.net_.module_.register_forward_pre_hook(
        lambda module, args: seen.append(torch.get_num_threads()))
    try:
        clf.predict_proba(X)
    finally:
        hook.remove()
    return seen


def test_n_threads_is_used_in_fit_and_predict_and_the_caller_count_restored(
        digits, torch_threads_2):
    X, y = digits[0][:300], digits[1][:300]
    clf, seen = _fit_recording(X, y, n_threads=1)
    assert seen == [1]
    assert torch.get_num_threads() == 2
    assert set(_predict_recording(clf, X)) == {1}
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_caller_thread_count_restored_after_a_failed_fit(digits, torch_threads_2, error):
    X, y = digits[0][:200], digits[1][:200]
    clf = LeNet5Classifier(max_epochs=2, validation_fraction=None, n_threads=1,
                           callbacks=[Boom(error)])
    with pytest.raises(error):
        clf.fit(X, y)
    assert torch.get_num_threads() == 2


def test_auto_uses_one_thread_for_small_batches_even_on_idle_cpus(digits, torch_threads_2, idle):
    # Batches of 32 (the digits' automatic batch size): a second thread only
    # adds barrier waits.
    idle(2.0)
    clf, seen = _fit_recording(*digits)
    assert clf.batch_size_ == 32
    assert seen == [1]
    assert set(_predict_recording(clf, digits[0][:100])) == {1}
    assert torch.get_num_threads() == 2


def test_auto_uses_the_idle_cpus_for_large_batches(digits, torch_threads_2, idle):
    X, y = digits[0][:300], digits[1][:300]
    idle(2.0)
    clf, seen = _fit_recording(X, y, batch_size=256)
    assert seen == [2]
    assert set(_predict_recording(clf, X)) == {2}


def test_auto_uses_one_thread_when_other_work_keeps_the_cores_busy(
        digits, torch_threads_2, idle):
    X, y = digits[0][:300], digits[1][:300]
    idle(0.6)
    clf, seen = _fit_recording(X, y, batch_size=256)
    assert seen == [1]
    assert set(_predict_recording(clf, X)) == {1}
    assert torch.get_num_threads() == 2


def test_auto_does_not_watch_the_cpus_for_small_calls(digits, torch_threads_2, monkeypatch):
    # 300 images, one epoch: watching the CPUs would cost more than it saves.
    def watched(window=None):
        raise AssertionError("idle_cpus called")
    monkeypatch.setattr(_threads, "idle_cpus", watched)
    clf, seen = _fit_recording(digits[0][:300], digits[1][:300], batch_size=256)
    assert seen == [1]
    assert set(_predict_recording(clf, digits[0])) == {1}


def test_auto_never_exceeds_the_callers_limit(digits, idle):
    X, y = digits[0][:300], digits[1][:300]
    idle(64.0)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _, seen = _fit_recording(X, y, batch_size=256)
        assert seen == [1]
        # -1: the limit, not the machine's cores.
        _, seen = _fit_recording(X, y, batch_size=256, n_threads=-1)
        assert seen == [1]
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)


def _fit_in_worker(X, y):
    # Simulate an idle machine: only the worker's limit can keep it at one thread.
    _threads.idle_cpus = lambda window=None: 64.0
    _threads.MIN_IMAGES_TO_MEASURE = 0
    _, seen = _fit_recording(X, y, batch_size=256)
    return seen, torch.get_num_threads()


def test_joblib_worker_limit_of_one_thread_is_respected(digits):
    X, y = digits[0][:300], digits[1][:300]
    with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
        results = joblib.Parallel(n_jobs=2)(joblib.delayed(_fit_in_worker)(X, y)
                                            for _ in range(2))
    assert results == [([1], 1), ([1], 1)]


def test_fits_in_two_python_threads_restore_each_threads_count(digits, torch_threads_2):
    X, y = digits[0][:200], digits[1][:200]
    seen, errors = [], []

    def fit():
        try:
            _, threads = _fit_recording(X, y, max_epochs=3, n_threads=1)
            seen.append((threads, torch.get_num_threads()))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=fit) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    # Each fit ran on one thread; each Python thread got its own count back
    # (a new thread starts with the process default, 2 here).
    assert seen == [([1, 1, 1], 2)] * 2
    assert torch.get_num_threads() == 2
    fresh = []
    probe = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    probe.start()
    probe.join()
    assert fresh == [2]


@pytest.mark.parametrize("n_threads", [0, 1.5, "auto"])
def test_invalid_n_threads_is_rejected_in_fit(digits, n_threads):
    with pytest.raises((ValueError, TypeError), match="n_threads"):
        LeNet5Classifier(n_threads=n_threads).fit(*digits)


def test_idle_cpus_counts_this_process_cpus():
    idle = _threads.idle_cpus(window=0.02)
    if idle is None:  # pragma: no cover - not Linux
        pytest.skip("no /proc/stat")
    assert 0.0 <= idle <= len(_threads.os.sched_getaffinity(0)) + 1e-9


def test_nested_thread_settings_restore_in_order(torch_threads_2):
    # A prediction inside a training callback: the inner call must give the
    # outer one its count back, not the caller's.
    with _threads.torch_threads(1):
        with _threads.torch_threads(2):
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
