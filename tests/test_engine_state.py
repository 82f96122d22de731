"""State that follows the device, one answer for the same weights, fitted
attributes that change together, and the skorch seams the engine relies on.

CI has no GPU: these tests pin on the CPU the invariants a CUDA run depends on
(optimizer state placed like its parameter, true float32 inference), and run
unchanged on CUDA with ``SKLENET_TEST_DEVICE=cuda``.
"""

import threading

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from skorch.callbacks import Callback, EpochScoring

from sklenet import LeNet5Classifier, _training


@pytest.fixture(scope="module")
def data():
    X, y = load_digits(return_X_y=True)
    return X[:400], y[:400]


def _restored_optimizer_step(fused, channels_last):
    """Parameters after one Adam step taken in the live optimizer and one taken
    after its state went through a snapshot and back."""
    torch.manual_seed(0)
    weight = torch.randn(16, 6, 5, 5)
    if channels_last:
        weight = weight.contiguous(memory_format=torch.channels_last)
    grads = [torch.randn(weight.shape).contiguous(memory_format=torch.channels_last)
             for _ in range(2)]
    results = []
    for restore in (False, True):
        param = torch.nn.Parameter(weight.clone(memory_format=torch.preserve_format))
        optimizer = torch.optim.Adam([param], lr=0.1, fused=fused)
        param.grad = grads[0].clone()
        optimizer.step()
        if restore:
            saved = [_training._to_numpy(optimizer.state_dict()["state"][0])]
            optimizer = torch.optim.Adam([param], lr=0.1, fused=fused)
            optimizer.load_state_dict({
                "state": _training.optimizer_state_for([param], saved),
                "param_groups": optimizer.state_dict()["param_groups"],
            })
        param.grad = grads[1].clone()
        optimizer.step()
        results.append((param.detach().clone(), optimizer.state[param]))
    return results


@pytest.mark.parametrize("fused", [False, True])
def test_a_restored_optimizer_continues_exactly_as_the_live_one(fused):
    if fused and not _training._fused_adam_works("cpu"):
        pytest.skip("fused Adam does not run on this CPU build")
    (live, _), (restored, state) = _restored_optimizer_step(fused, channels_last=True)
    # A contiguous moment next to a channels-last weight made fused Adam read
    # the moment in the wrong element order (0.16 off on the CPU, an error on CUDA).
    assert torch.equal(live, restored)


def test_restored_optimizer_state_takes_the_parameters_device_dtype_and_layout():
    param = torch.nn.Parameter(
        torch.zeros(4, 3, 5, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last))
    saved = [{"step": np.array(3.0, np.float32),
              "exp_avg": np.ones((4, 3, 5, 5), np.float32),
              "exp_avg_sq": np.ones((4, 3, 5, 5), np.float32)}]
    state = _training.optimizer_state_for([param], saved)[0]
    for key in ("exp_avg", "exp_avg_sq"):
        assert state[key].device == param.device
        assert state[key].dtype == param.dtype
        assert state[key].stride() == param.stride()
    assert state["step"].item() == 3.0


def test_continued_training_keeps_every_optimizer_tensor_beside_its_parameter(data, device):
    X, y = data
    clf = LeNet5Classifier(max_epochs=1, random_state=0, device=device).fit(X, y)
    clf.set_params(warm_start=True).fit(X, y)
    clf.partial_fit(X, y)
    optimizer = clf.net_.optimizer_
    for param in clf.net_.module_.parameters():
        for key, value in optimizer.state[param].items():
            if key != "step":
                assert (value.device, value.dtype, value.stride()) == (
                    param.device, param.dtype, param.stride()), key


def test_inference_on_cuda_turns_tf32_off_and_restores_it():
    flags = torch.backends.cudnn, torch.backends.cuda.matmul
    before = [f.allow_tf32 for f in flags]
    for f in flags:
        f.allow_tf32 = True
    try:
        with _training._exact_float32("cuda"):
            assert [f.allow_tf32 for f in flags] == [False, False]
        assert [f.allow_tf32 for f in flags] == [True, True]
        with _training._exact_float32("cpu"):
            assert [f.allow_tf32 for f in flags] == [True, True]
    finally:
        for f, value in zip(flags, before):
            f.allow_tf32 = value


def test_inference_is_float32_whatever_precision_trained(data):
    X, y = data
    clf = LeNet5Classifier(max_epochs=1, random_state=0, precision="bfloat16").fit(X, y)
    images = torch.from_numpy(X.astype(np.float32)).view(-1, 1, 8, 8)
    module = clf.net_.module_.eval()
    with torch.inference_mode():
        logits = module(images.contiguous(memory_format=torch.channels_last)).double()
    reference = torch.softmax(logits / clf.temperature_, dim=1).numpy()
    np.testing.assert_allclose(clf.predict_proba(X), reference, atol=1e-6)
    bf16 = clf.set_params(inference_precision="bfloat16").predict_proba(X)
    assert np.abs(bf16 - reference).max() > 1e-5


def test_history_keeps_what_user_callbacks_record(data):
    X, y = data
    clf = LeNet5Classifier(max_epochs=2, random_state=0, callbacks=[
        EpochScoring("f1_macro", name="f1_macro", lower_is_better=False)]).fit(X, y)
    assert all(isinstance(row["f1_macro"], float) for row in clf.history_)
    assert [row["f1_macro"] for row in clf.history_] == [
        row["f1_macro"] for row in clf.net_.history]
    assert not any(key.endswith("_batch_count") for key in clf.history_[0])


def test_a_random_state_instance_is_drawn_once_per_fit(data):
    X, y = data
    # An int seeds a fresh RandomState per fit; an instance is drawn from once
    # per fit (it used to be drawn twice: once for the split, once for the weights).
    from_instance = LeNet5Classifier(max_epochs=1, random_state=np.random.RandomState(0))
    from_int = LeNet5Classifier(max_epochs=1, random_state=0)
    np.testing.assert_array_equal(from_instance.fit(X, y).predict_proba(X),
                                  from_int.fit(X, y).predict_proba(X))
    # The instance moves on: a second fit is another draw, as in scikit-learn.
    assert not np.array_equal(from_instance.fit(X, y).predict_proba(X),
                              from_int.predict_proba(X))


# ------------------------------------------------------------------ threads

def test_concurrent_fits_of_one_estimator_leave_one_consistent_model(data):
    X, y = data
    clf = LeNet5Classifier(max_epochs=1, random_state=0)
    subsets = [y < 3, y >= 6]  # 3 classes and 4 classes
    errors = []

    def fit(rows):
        try:
            clf.fit(X[rows], y[rows])
        except Exception as exc:  # pragma: no cover - the failure being tested
            errors.append(exc)

    threads = [threading.Thread(target=fit, args=(rows,)) for rows in subsets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert clf.net_.module_.lenet5.output.out_features == len(clf.classes_)
    assert set(clf.predict(X)) <= set(clf.classes_)


def test_predict_during_a_refit_in_another_thread_sees_one_model(data):
    X, y = data
    clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y)
    ten, three = set(np.unique(y)), {0, 1, 2}
    done = threading.Event()
    seen, errors = [], []

    def predict_until_done():
        while not done.is_set():
            try:
                proba = clf.predict_proba(X[:64])
                labels = clf.predict(X[:64])
                seen.append((proba.shape[1], set(labels)))
            except Exception as exc:  # pragma: no cover - the failure being tested
                errors.append(exc)
                return

    reader = threading.Thread(target=predict_until_done)
    reader.start()
    try:
        rows = y < 3
        clf.set_params(max_epochs=2).fit(X[rows], y[rows])
    finally:
        done.set()
        reader.join()
    assert not errors
    assert seen
    for n_columns, labels in seen:
        assert (n_columns, labels <= ten) == (10, True) or (n_columns, labels <= three) == (
            3, True)


def test_fit_changes_no_attribute_before_it_completes(data):
    X, y = data
    observed, before = [], {}

    class Observe(Callback):
        def on_epoch_end(self, net, **kwargs):
            observed.append({key: vars(clf).get(key) is before[key] for key in before})

    clf = LeNet5Classifier(max_epochs=1, random_state=0, callbacks=[Observe()]).fit(X, y)
    before.update(vars(clf))
    observed.clear()
    rows = y < 3
    clf.fit(X[rows], y[rows])
    assert observed and all(all(same.values()) for same in observed)
    assert len(clf.classes_) == 3


# ----------------------------------------------------- skorch's private names
# sklenet relies on four private names of skorch's NeuralNet; each test fails
# if skorch stops behaving as the engine assumes.

def test_skorch_calls_set_training_around_every_batch(data, monkeypatch):
    X, y = data
    calls = []
    original = _training.LeNet5Net._set_training

    def spy(self, training=True):
        calls.append(training)
        return original(self, training)

    monkeypatch.setattr(_training.LeNet5Net, "_set_training", spy)
    clf = LeNet5Classifier(max_epochs=2, random_state=0, batch_size=32).fit(X, y)
    n_train_batches = sum(row["train_batch_count"] for row in clf.net_.history)
    assert calls.count(True) >= n_train_batches
    assert False in calls  # back to eval for validation


def test_set_training_switches_the_module_and_criterion_skorch_registers(data):
    X, y = data
    net = LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y).net_
    assert "module" in net._modules and "criterion" in net._criteria
    net.module_.eval()
    net._set_training(True)
    assert all(m.training for m in net.module_.modules())
    net._set_training(False)
    assert not any(m.training for m in net.module_.modules())


def test_skorch_builds_its_callbacks_from_default_callbacks(data):
    X, y = data
    net = LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y).net_
    names = [name for name, _ in net.callbacks_]
    assert names[:4] == ["epoch_timer", "train_loss", "valid_loss", "accuracy"]
    assert "print_log" not in names  # skorch's own default, dropped when silent
    assert {"train_acc", "valid_acc", "train_loss", "valid_loss"} <= set(net.history[-1])


def test_skorch_partial_fit_reaches_our_fit_loop_and_interrupts_propagate(data):
    X, y = data
    clf = LeNet5Classifier(max_epochs=1, random_state=0)

    class Interrupt(Callback):
        def on_batch_end(self, net, **kwargs):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        clf.set_params(callbacks=[Interrupt()]).fit(X, y)
    assert not hasattr(clf, "net_")
