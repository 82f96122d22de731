"""skorch callbacks used by :class:`sklenet.LeNet5Classifier`."""

from skorch.callbacks import Callback

__all__ = ["BatchAccuracy"]


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
