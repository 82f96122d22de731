"""What the training engine does with the data and the weights, observed from outside.

A recording skorch callback (the public ``callbacks=`` hook) sees every batch the
net trains and validates on, and the weights after every optimizer step; the tests
check those against the documented contract: the held-out rows are never trained
on, the input statistics come from the training rows only, and ``ema_decay`` keeps
the running average of the weights.
"""

import math

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import log_loss
from sklearn.utils import compute_class_weight
from skorch.callbacks import Callback

from sklenet import LeNet5Classifier

N = 300


@pytest.fixture(scope="module")
def tagged():
    """Digits whose top-left pixel (always 0 in the digits) holds the row number,
    so each image a batch carries tells which row of X it is."""
    X, y = load_digits(return_X_y=True)
    X = X[:N].astype(np.float32)
    X[:, 0] = np.arange(N)
    return X, y[:N]


class RowRecorder(Callback):
    """Records the row numbers (see ``tagged``) of every batch, per epoch."""

    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_begin(self, net, **kwargs):
        self.epochs.append({True: [], False: []})

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        images = batch[0]["X"] if isinstance(batch[0], dict) else batch[0]
        rows = images[:, 0, 0, 0].detach().cpu().double().numpy()
        self.epochs[-1][training].extend(rows.tolist())

    def rows(self, epoch, training):
        return np.array(self.epochs[epoch][training])


def _as_int(rows):
    assert np.array_equal(rows, np.round(rows))  # the tags came through unchanged
    return rows.astype(int)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_held_out_rows_are_validated_on_and_never_trained_on(tagged, weighted):
    X, y = tagged
    recorder = RowRecorder()
    clf = LeNet5Classifier(max_epochs=2, random_state=0, validation_fraction=0.2,
                           callbacks=[recorder])
    weight = np.linspace(0.5, 2.0, N) if weighted else None
    clf.fit(X, y, sample_weight=weight)
    assert len(recorder.epochs) == 2
    for epoch in range(2):
        train = _as_int(recorder.rows(epoch, True))
        valid = _as_int(recorder.rows(epoch, False))
        # Each row once per epoch, in exactly one of the two sets, all rows covered.
        assert len(np.unique(train)) == len(train)
        assert len(np.unique(valid)) == len(valid)
        assert len(valid) == math.ceil(0.2 * N)
        assert np.intersect1d(train, valid).size == 0
        assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(N))
    # The same split in every epoch, stratified by class.
    assert np.array_equal(np.sort(recorder.rows(0, False)), np.sort(recorder.rows(1, False)))
    valid = _as_int(recorder.rows(0, False))
    expected = 0.2 * np.bincount(y, minlength=10)
    assert np.all(np.abs(np.bincount(y[valid], minlength=10) - expected) <= 1)


def test_shuffled_training_rows_differ_between_epochs(tagged):
    X, y = tagged
    recorder = RowRecorder()
    LeNet5Classifier(max_epochs=2, random_state=0, validation_fraction=None,
                     callbacks=[recorder]).fit(X, y)
    first, second = recorder.rows(0, True), recorder.rows(1, True)
    assert np.array_equal(np.sort(first), np.arange(N))
    assert np.array_equal(np.sort(second), np.arange(N))
    assert not np.array_equal(first, second)  # a new permutation each epoch
    assert recorder.rows(0, False).size == 0  # no validation at all


@pytest.mark.filterwarnings("ignore:validation_data is on another scale")  # the tags
def test_validation_data_validates_on_it_and_trains_on_all_of_x(tagged):
    X, y = tagged
    recorder = RowRecorder()
    LeNet5Classifier(max_epochs=1, random_state=0, callbacks=[recorder]).fit(
        X[100:], y[100:], validation_data=(X[:100], y[:100]))
    assert np.array_equal(np.sort(_as_int(recorder.rows(0, True))), np.arange(100, N))
    assert np.array_equal(np.sort(_as_int(recorder.rows(0, False))), np.arange(100))


def test_input_statistics_come_from_the_training_rows_only(tagged):
    X, y = tagged
    recorder = RowRecorder()
    clf = LeNet5Classifier(max_epochs=1, random_state=0, validation_fraction=0.2,
                           callbacks=[recorder]).fit(X, y)
    train = _as_int(recorder.rows(0, True))
    adapter = clf.net_.module_.adapter
    pixels = X[train].astype(np.float64)
    np.testing.assert_allclose(adapter.mean.flatten().numpy(), [pixels.mean()], rtol=1e-6)
    np.testing.assert_allclose(1.0 / adapter.inv_std.flatten().numpy(), [pixels.std()],
                               rtol=1e-5)
    everything = X.astype(np.float64)
    assert abs(adapter.mean.item() - everything.mean()) > 1e-3  # the two differ here


# ------------------------------------------------------------ ema_decay

class WeightRecorder(Callback):
    """The weights at the start of training and after every training step."""

    def on_train_begin(self, net, **kwargs):
        self.start = self._weights(net)
        self.steps = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps.append(self._weights(net))

    def on_train_end(self, net, **kwargs):
        self.end = self._weights(net)

    @staticmethod
    def _weights(net):
        return [p.detach().cpu().clone() for p in net.module_.parameters()]


def _running_average(start, steps, decay):
    """The documented average: after step t (1-based),
    ``avg = d * avg + (1 - d) * w`` with ``d = min(decay, (1 + t) / (10 + t))``."""
    average = [w.double() for w in start]
    for t, weights in enumerate(steps, start=1):
        d = min(decay, (1 + t) / (10 + t))
        average = [d * a + (1 - d) * w.double() for a, w in zip(average, weights)]
    return average


@pytest.mark.parametrize("decay", [0.1, 0.9])
def test_ema_decay_keeps_the_running_average_of_the_weights(tagged, decay):
    X, y = tagged
    recorder = WeightRecorder()
    # A constant rate: the weights still move in the last steps (onecycle ends at 0).
    params = dict(max_epochs=2, random_state=0, lr_schedule="constant")
    clf = LeNet5Classifier(**params, ema_decay=decay, callbacks=[recorder]).fit(X, y)
    assert len(recorder.steps) == 2 * math.ceil(0.8 * N / clf.batch_size_)
    expected = _running_average(recorder.start, recorder.steps, decay)
    kept = [p.detach().cpu().double() for p in clf.net_.module_.parameters()]
    for got, want in zip(kept, expected):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # Not the raw weights of the last step, which is what ignoring ema_decay keeps.
    assert max((got - last.double()).abs().max().item()
               for got, last in zip(kept, recorder.steps[-1])) > 1e-4
    # The averaged weights are the ones that predict.
    plain = LeNet5Classifier(**params).fit(X, y)
    assert not np.array_equal(clf.predict_proba(X), plain.predict_proba(X))


# ------------------------------------------- survivors of benchmarks/mutation_pass.py

def test_validation_reports_the_plain_log_loss_not_the_smoothed_one(digits):
    X, y = digits
    # calibration=None and float32: predict_proba then gives the probabilities
    # validation scored (validation runs in the training precision).
    clf = LeNet5Classifier(max_epochs=1, label_smoothing=0.3, calibration=None,
                           precision="float32", random_state=0)
    clf.fit(X[:300], y[:300], validation_data=(X[300:500], y[300:500]))
    expected = log_loss(y[300:500], clf.predict_proba(X[300:500]), labels=clf.classes_)
    assert clf.history_[-1]["valid_loss"] == pytest.approx(expected, rel=1e-5)


class LRRecorder(Callback):
    """The learning rate of every training step, as the optimizer runs it."""

    def on_train_begin(self, net, **kwargs):
        self.lrs = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.lrs.append(net.optimizer_.param_groups[0]["lr"])


def test_onecycle_schedule_spans_every_training_step(tagged):
    from sklenet._callbacks import onecycle_lr

    X, y = tagged
    recorder = LRRecorder()
    clf = LeNet5Classifier(max_epochs=2, lr=1e-2, lr_schedule="onecycle", random_state=0,
                           callbacks=[recorder]).fit(X, y)
    steps = 2 * math.ceil(0.8 * N / clf.batch_size_)  # the last batch of an epoch is partial
    assert len(recorder.lrs) == steps
    np.testing.assert_allclose(recorder.lrs, [onecycle_lr(t, steps, 1e-2) for t in range(steps)])
    assert min(recorder.lrs[:-1]) > 0  # only the very last step reaches 0


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_features_are_the_f6_activations(digits, activation):
    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, random_state=0, activation=activation).fit(X, y)
    captured = []
    hook = clf.net_.module_.lenet5.f6.register_forward_hook(
        lambda layer, inputs, output: captured.append(output.detach().double()))
    try:
        clf.predict_proba(X[:50])
    finally:
        hook.remove()
    pre = captured[0][:50].numpy()  # inference pads a chunk to 64 images
    expected = np.tanh(pre) if activation == "tanh" else np.maximum(pre, 0)
    np.testing.assert_allclose(clf.extract_features(X[:50]), expected, rtol=1e-5, atol=1e-6)


def test_early_stopping_watches_the_validation_loss(digits):
    X, y = digits
    # Validation labels at random: the validation loss rises as the training loss
    # falls, so only early stopping on the validation loss stops early.
    y_val = np.random.RandomState(0).permutation(y[300:600])
    clf = LeNet5Classifier(max_epochs=20, early_stopping=True, patience=2, calibration=None,
                           precision="float32", random_state=0)
    clf.fit(X[:300], y[:300], validation_data=(X[300:600], y_val))
    losses = [row["valid_loss"] for row in clf.history_]
    assert clf.n_iter_ < 20
    best = int(np.argmin(losses))
    assert best == clf.n_iter_ - 1 - 2
    # The weights kept are those of the best epoch.
    kept = log_loss(y_val, clf.predict_proba(X[300:600]), labels=clf.classes_)
    assert kept == pytest.approx(losses[best], rel=1e-5)


class BatchRecorder(Callback):
    """Row numbers (see ``tagged``), targets and sample weights of every training batch."""

    def on_train_begin(self, net, **kwargs):
        self.rows, self.targets, self.weights = [], [], []

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            return
        X, targets = batch
        images = X["X"] if isinstance(X, dict) else X
        self.rows += images[:, 0, 0, 0].cpu().double().numpy().astype(int).tolist()
        self.targets += targets.cpu().numpy().tolist()
        if isinstance(X, dict):
            self.weights += X["sample_weight"].cpu().double().numpy().tolist()


def test_balanced_class_weights_count_the_training_rows_only(tagged):
    X, y = tagged
    recorder = BatchRecorder()
    clf = LeNet5Classifier(max_epochs=1, random_state=0, validation_fraction=0.3,
                           class_weight="balanced", callbacks=[recorder]).fit(X, y)
    rows = np.array(recorder.rows)
    on_train = compute_class_weight("balanced", classes=clf.classes_, y=y[rows])
    # Up to a common factor: the loss is their weighted mean.
    ratio = np.array(recorder.weights) / on_train[y[rows]]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    on_all = compute_class_weight("balanced", classes=clf.classes_, y=y)
    assert not np.allclose(on_train, on_all)  # the two differ on this split


def test_a_continued_fit_shuffles_anew(tagged):
    X, y = tagged
    recorder = BatchRecorder()
    clf = LeNet5Classifier(max_epochs=1, random_state=0, validation_fraction=None,
                           callbacks=[recorder]).fit(X, y)
    first = list(recorder.rows)
    clf.set_params(warm_start=True).fit(X, y)  # its epoch 2
    assert sorted(recorder.rows) == sorted(first)
    assert recorder.rows != first  # not a replay of epoch 1


def test_partial_fit_targets_are_the_models_class_indices(tagged):
    X, y = tagged
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    recorder = BatchRecorder()
    clf = LeNet5Classifier(random_state=0, callbacks=[recorder])
    clf.partial_fit(X, names[y], classes=names)
    some = np.isin(y, [3, 7])  # a batch holding two of the ten classes only
    clf.partial_fit(X[some], names[y][some])
    rows = np.array(recorder.rows)
    expected = np.searchsorted(clf.classes_, names[y][rows])
    assert np.array_equal(recorder.targets, expected)
    assert set(recorder.targets) == {list(clf.classes_).index("three"),
                                     list(clf.classes_).index("seven")}
