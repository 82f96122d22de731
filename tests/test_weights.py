"""Sample weights and class weights: the loss they define and how they steer training."""


import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score, log_loss, recall_score
from sklearn.utils.class_weight import compute_class_weight

from sklenet import LeNet5Classifier

# Unsmoothed loss: the assertions compare with log_loss / cross_entropy.
FAST = dict(max_epochs=1, validation_fraction=None, random_state=0, label_smoothing=0.0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def net(digits):
    """A fitted skorch net, for calling its loss directly."""
    X, y = digits
    return LeNet5Classifier(**FAST).fit(X[:60], y[:60]).net_


def _loss(net, logits, y, weight=None):
    X = torch.zeros(len(y), 1, 8, 8)  # get_loss reads only the weights from X
    if weight is not None:
        X = {"X": X, "sample_weight": torch.as_tensor(weight, dtype=torch.float32)}
    return float(net.get_loss(logits, torch.as_tensor(y), X=X, training=True))


def test_weighted_loss_equals_loss_on_duplicated_samples(net):
    rng = np.random.RandomState(0)
    logits = torch.as_tensor(rng.normal(size=(12, 10)), dtype=torch.float32)
    y = rng.randint(0, 10, 12)
    counts = np.array([1, 2, 0, 3, 1, 1, 4, 0, 2, 1, 1, 5])
    duplicated = np.repeat(np.arange(12), counts)
    weighted = _loss(net, logits, y, counts)
    assert weighted == pytest.approx(_loss(net, logits[duplicated], y[duplicated]), rel=1e-6)
    # A weighted mean: only the weights' proportions matter.
    assert _loss(net, logits, y, counts * 0.25) == pytest.approx(weighted, rel=1e-6)
    assert _loss(net, logits, y, np.ones(12)) == pytest.approx(_loss(net, logits, y), rel=1e-6)


def test_weighted_loss_is_the_weighted_mean_cross_entropy(net):
    rng = np.random.RandomState(1)
    logits = torch.as_tensor(rng.normal(size=(9, 10)), dtype=torch.float32)
    y = rng.randint(0, 10, 9)
    w = rng.uniform(0, 3, 9)
    per_sample = torch.nn.functional.cross_entropy(logits, torch.as_tensor(y),
                                                   reduction="none").numpy()
    assert _loss(net, logits, y, w) == pytest.approx(np.average(per_sample, weights=w),
                                                     rel=1e-5)


def test_one_batch_training_matches_duplicated_samples(digits):
    # With the whole set in one batch, a weighted fit and a fit on duplicated
    # samples take the same gradient steps; only the input standardisation
    # differs (its statistics count each row once), hence the tolerance.
    X, y = digits[0][:120], digits[1][:120]
    counts = np.random.RandomState(0).randint(0, 4, len(y))
    params = dict(max_epochs=3, batch_size=1000, optimizer="sgd", lr=0.05,
                  lr_schedule="constant", validation_fraction=None, random_state=0)
    weighted = LeNet5Classifier(**params).fit(X, y, sample_weight=counts)
    repeated = LeNet5Classifier(**params).fit(np.repeat(X, counts, axis=0),
                                              np.repeat(y, counts))
    np.testing.assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X),
                               atol=1e-3)
    np.testing.assert_allclose([h["train_loss"] for h in weighted.history_],
                               [h["train_loss"] for h in repeated.history_], rtol=1e-3)


def test_zero_weight_class_is_not_learned(digits):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:900], y[:900], X[900:], y[900:]
    params = dict(max_epochs=4, lr=2e-3, validation_fraction=None, random_state=0)
    plain = LeNet5Classifier(**params).fit(X_train, y_train)
    weighted = LeNet5Classifier(**params).fit(
        X_train, y_train, sample_weight=np.where(y_train == 0, 0.0, 1.0)
    )
    def recall_of_0(clf):
        return recall_score(y_test, clf.predict(X_test), labels=[0], average=None)[0]

    assert recall_of_0(plain) > 0.8
    assert recall_of_0(weighted) < 0.05
    # The other classes are still learned.
    assert weighted.score(X_test[y_test != 0], y_test[y_test != 0]) > 0.6


def _imbalanced(digits, minority=3, n_minority=4):
    X, y = digits
    X_train, y_train = X[:900], y[:900]
    rows = np.r_[np.flatnonzero(y_train != minority),
                 np.flatnonzero(y_train == minority)[:n_minority]]
    return X_train[rows], y_train[rows], X[900:], y[900:]


def test_balanced_class_weight_raises_minority_recall(digits):
    X_train, y_train, X_test, y_test = _imbalanced(digits)
    params = dict(max_epochs=4, lr=2e-3, validation_fraction=None, random_state=0)
    recalls = {}
    for class_weight in (None, "balanced"):
        clf = LeNet5Classifier(class_weight=class_weight, **params).fit(X_train, y_train)
        recalls[class_weight] = recall_score(y_test, clf.predict(X_test), labels=[3],
                                             average=None)[0]
    assert recalls[None] < 0.2
    assert recalls["balanced"] > 0.5


def test_class_weight_multiplies_sample_weight(digits):
    X, y = digits[0][:150], digits[1][:150]
    y = np.array(list("abcdefghij"))[y]  # dict keys are labels, not indices
    w = np.random.RandomState(0).uniform(0.5, 2, len(y))
    class_weight = {"a": 3.0, "d": 0.5}  # the other classes weigh 1, as in sklearn
    per_class = np.select([y == "a", y == "d"], [3.0, 0.5], 1.0)
    proba = [
        LeNet5Classifier(class_weight=class_weight, **FAST).fit(X, y).predict_proba(X),
        LeNet5Classifier(**FAST).fit(X, y, sample_weight=per_class).predict_proba(X),
        LeNet5Classifier(class_weight=class_weight, **FAST)
        .fit(X, y, sample_weight=w).predict_proba(X),
        LeNet5Classifier(**FAST).fit(X, y, sample_weight=w * per_class).predict_proba(X),
    ]
    np.testing.assert_array_equal(proba[0], proba[1])
    np.testing.assert_array_equal(proba[2], proba[3])
    assert not np.array_equal(proba[0], proba[2])


def test_balanced_class_weight_counts_sample_weights(digits):
    X, y = digits[0][:150], digits[1][:150]
    w = np.random.RandomState(0).randint(1, 4, len(y)).astype(float)
    by_weight = compute_class_weight("balanced", classes=np.unique(y), y=y, sample_weight=w)
    balanced = LeNet5Classifier(class_weight="balanced", **FAST).fit(X, y, sample_weight=w)
    explicit = LeNet5Classifier(**FAST).fit(X, y, sample_weight=w * by_weight[y])
    np.testing.assert_array_equal(balanced.predict_proba(X), explicit.predict_proba(X))


def test_partial_fit_class_weight_dict_and_sample_weight(digits):
    X, y = digits[0][:150], digits[1][:150]
    classes = np.arange(10)
    per_class = np.where(y == 0, 4.0, 1.0)
    a = LeNet5Classifier(class_weight={0: 4.0}, random_state=0)
    b = LeNet5Classifier(random_state=0)
    for _ in range(2):
        a.partial_fit(X, y, classes=classes)
        b.partial_fit(X, y, classes=classes, sample_weight=per_class)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
        LeNet5Classifier(class_weight="balanced").partial_fit(X, y, classes=classes)


def test_validation_accuracy_is_weighted(digits):
    X, y = digits
    X_val, y_val = X[300:600], y[300:600]
    w_val = np.r_[np.full(256, 0.01), np.full(44, 5.0)]
    clf = LeNet5Classifier(max_epochs=2, random_state=0).fit(
        X[:300], y[:300], validation_data=(X_val, y_val, w_val)
    )
    expected = accuracy_score(y_val, clf.predict(X_val), sample_weight=w_val)
    assert clf.history_[-1]["valid_accuracy"] == pytest.approx(expected)
    assert expected != pytest.approx(accuracy_score(y_val, clf.predict(X_val)))


@pytest.mark.parametrize("n_val", [
    200,  # one validation batch
    500,  # two batches of different weight sums
])
def test_validation_loss_is_the_weighted_log_loss(digits, n_val):
    X, y = digits
    X_val, y_val = X[300:300 + n_val], y[300:300 + n_val]
    # Weights that differ between the batches, not only within them.
    w_val = np.r_[np.full(n_val // 2, 0.1), np.full(n_val - n_val // 2, 3.0)]
    # Validation runs in the training precision, predict_proba in float32.
    clf = LeNet5Classifier(max_epochs=1, label_smoothing=0.0, calibration=None,
                           precision="float32", random_state=0).fit(
        X[:300], y[:300], validation_data=(X_val, y_val, w_val)
    )
    expected = log_loss(y_val, clf.predict_proba(X_val), sample_weight=w_val,
                        labels=clf.classes_)
    assert clf.history_[-1]["valid_loss"] == pytest.approx(expected, rel=1e-5)
