"""skorch callbacks used by :class:`sklenet.LeNet5Classifier`."""

import math

import torch
from skorch.callbacks import Callback

__all__ = ["BatchAccuracy", "FiniteTraining", "LRSchedule", "NonFiniteTrainingError",
           "WeightAverage", "onecycle_lr"]

#: Fraction of the steps of ``lr_schedule="onecycle"`` spent warming up.
ONECYCLE_WARMUP = 0.15
#: The warm-up starts at ``lr / ONECYCLE_START_DIV``.
ONECYCLE_START_DIV = 25.0


def onecycle_lr(step, total_steps, lr, warmup=ONECYCLE_WARMUP):
    """Learning rate of step ``step`` (0-based) of ``total_steps``.

    A linear warm-up from ``lr / 25`` to ``lr`` over the first ``warmup``
    fraction of the steps, then a cosine decay that reaches 0 at the last step.

    >>> [round(onecycle_lr(t, 10, 1.0, warmup=0.2), 3) for t in range(10)]
    [0.52, 1.0, 0.962, 0.854, 0.691, 0.5, 0.309, 0.146, 0.038, 0.0]
    """
    n_warm = int(round(warmup * total_steps))
    if step < n_warm:
        start = lr / ONECYCLE_START_DIV
        return start + (lr - start) * (step + 1) / n_warm
    span = max(total_steps - n_warm, 1)
    t = min(step - n_warm + 1, span) / span
    return 0.5 * lr * (1.0 + math.cos(math.pi * t))


class BatchAccuracy(Callback):
    """Record ``train_acc`` and ``valid_acc`` from the predictions made while training.

    skorch's ``EpochScoring`` would predict the training set a second time each
    epoch; counting correct predictions batch by batch costs nothing. The
    training accuracy is, like the training loss, measured on the batches as
    they were trained (augmented, in train mode). With sample weights in the
    batch, it is the weighted accuracy, as ``accuracy_score(sample_weight=...)``.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.correct_ = {True: 0, False: 0}
        self.seen_ = {True: 0, False: 0}

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        y_true = batch[1].to(y_pred.device)
        hits = (y_pred.argmax(dim=1) == y_true).double()
        X = batch[0]
        if isinstance(X, dict) and X.get("sample_weight") is not None:
            weight = X["sample_weight"].to(hits.device, hits.dtype)
            self.correct_[training] += float((hits * weight).sum())
            self.seen_[training] += float(weight.sum())
        else:
            self.correct_[training] += float(hits.sum())
            self.seen_[training] += len(y_true)

    def on_epoch_end(self, net, **kwargs):
        for training, key in ((True, "train_acc"), (False, "valid_acc")):
            if self.seen_[training]:
                net.history.record(key, self.correct_[training] / self.seen_[training])


class LRSchedule(Callback):
    """Set the learning rate of one training call.

    The schedule runs over the epochs of the call it was built for, starting
    from the net's ``lr``, whatever the history holds from earlier calls.
    (skorch's ``LRScheduler`` derives the position from the history length
    instead, which resumes a finished cosine at lr 0 on the next call.)

    Parameters
    ----------
    policy : {"onecycle", "cosine"}
        ``"onecycle"``: :func:`onecycle_lr`, set before every training batch.
        ``"cosine"``: ``lr * (1 + cos(pi * e / n_epochs)) / 2`` in epoch ``e``.
    n_epochs : int
        Epochs of the training call.
    steps_per_epoch : int
        Training batches per epoch.
    """

    def __init__(self, policy, n_epochs, steps_per_epoch):
        self.policy = policy
        self.n_epochs = n_epochs
        self.steps_per_epoch = steps_per_epoch

    def on_train_begin(self, net, **kwargs):
        self.epoch_ = 0
        self.step_ = 0

    def _set(self, net, lr):
        for group in net.optimizer_.param_groups:
            group["lr"] = lr

    def on_epoch_begin(self, net, **kwargs):
        if self.policy == "cosine":
            self._set(net, net.lr * (1 + math.cos(math.pi * self.epoch_ / self.n_epochs)) / 2)
        self.epoch_ += 1

    def on_batch_begin(self, net, training=False, **kwargs):
        if training and self.policy == "onecycle":
            total = self.n_epochs * self.steps_per_epoch
            self._set(net, onecycle_lr(self.step_, total, net.lr))
            self.step_ += 1


class WeightAverage(Callback):
    """Exponential moving average of the weights, swapped in at the end of training.

    After each training step ``average = decay * average + (1 - decay) *
    weights``, the decay ramped up as ``min(decay, (1 + t) / (10 + t))`` over
    the first steps ``t``; ``on_train_end`` copies the averages into the
    network. Validation during training sees the raw weights.

    Parameters
    ----------
    decay : float
        Weight of the running average at each step, in [0, 1).
    """

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.params_ = [p for p in net.module_.parameters() if p.requires_grad]
        self.average_ = [p.detach().clone() for p in self.params_]
        self.steps_ = 0

    def on_batch_end(self, net, training=False, **kwargs):
        if not training:
            return
        self.steps_ += 1
        decay = min(self.decay, (1 + self.steps_) / (10 + self.steps_))
        with torch.no_grad():
            for average, param in zip(self.average_, self.params_):
                average.lerp_(param, 1.0 - decay)

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            for param, average in zip(self.params_, self.average_):
                param.copy_(average)
        # Plain state once training is over: the fitted net holds no extra tensors.
        del self.params_, self.average_


class NonFiniteTrainingError(ValueError):
    """Training diverged: the training loss or the network's weights became NaN or infinite.

    A ``ValueError``, as scikit-learn raises when its own solvers overflow
    (``SGDClassifier``, ``MLPClassifier``): the cause is a setting (a learning
    rate or weight decay far too large), and ``GridSearchCV`` scores such a
    candidate with its ``error_score``.
    """


class FiniteTraining(Callback):
    """Stop training with :class:`NonFiniteTrainingError` once it diverges.

    Checks the loss of every training batch, and at the end of each epoch the
    weights and the output on the epoch's last batch: the last optimizer step
    of an epoch has no loss after it, and weights can be finite yet so large
    that the network's output overflows. Sample and class weights cannot cause
    it: they are scaled into float32's range and the loss is their weighted
    mean. Raising ends the training call like any other error, so the
    estimator keeps the model it had instead of a network that predicts NaN.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.batches_ = 0
        self.last_batch_ = None

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if not training:
            return
        self.batches_ += 1
        self.last_batch_ = batch
        if loss is not None and not math.isfinite(loss.item()):
            self._fail(net, f"the training loss became {loss.item()} in batch "
                            f"{self.batches_} of epoch {len(net.history)}")

    def on_epoch_end(self, net, **kwargs):
        batch, self.last_batch_ = self.last_batch_, None
        with torch.no_grad():
            finite = all(bool(p.isfinite().all()) for p in net.module_.parameters())
        if not finite:
            self._fail(net, f"the network's weights became NaN or infinite in epoch "
                            f"{len(net.history)}")
        if batch is not None and not bool(net.evaluation_step(batch).isfinite().all()):
            self._fail(net, f"the network's output became NaN or infinite in epoch "
                            f"{len(net.history)}")

    @staticmethod
    def _fail(net, what):
        decay = net.get_params().get("optimizer__weight_decay") or 0
        causes = f"lr={net.lr:g}" + (f" or weight_decay={decay:g}" if decay else "")
        raise NonFiniteTrainingError(
            f"Training diverged: {what}. The learning rate or weight decay is likely too "
            f"large ({causes}); try a smaller one. The estimator was left as it was."
        )
