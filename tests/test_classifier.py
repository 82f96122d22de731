"""Behaviour of LeNet5Classifier: inputs, labels, training, the sklearn ecosystem, errors."""

import pickle
import subprocess
import sys
import textwrap

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from scipy.stats import loguniform
from skorch.callbacks import Callback
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.metrics import log_loss
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC

from sklenet import LeNet5Classifier
from sklenet._batching import ImageAugmentation

FAST = dict(max_epochs=4, random_state=0)


@pytest.fixture(scope="module")
def split(digits):
    X, y = digits
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def fitted(split):
    X_train, _, y_train, _ = split
    return LeNet5Classifier(**FAST).fit(X_train, y_train)


# ------------------------------------------------------------------ training


def test_learns_digits_and_predicts_consistently(fitted, split):
    _, X_test, _, y_test = split
    assert fitted.score(X_test, y_test) > 0.85
    proba = fitted.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(fitted.predict(X_test), fitted.classes_[proba.argmax(1)])
    np.testing.assert_allclose(np.exp(fitted.predict_log_proba(X_test)), proba, rtol=1e-9)


def test_fitted_attributes(fitted, split):
    X_train = split[0]
    assert fitted.n_features_in_ == 64
    assert fitted.image_shape_ == (1, 8, 8)
    np.testing.assert_array_equal(fitted.classes_, np.arange(10))
    assert fitted.n_iter_ == len(fitted.history_) == FAST["max_epochs"]
    assert not hasattr(fitted, "feature_names_in_")
    assert fitted.net_.module_.lenet5.c1.in_channels == 1
    # The input scale is learned from the data the network trains on.
    whole = LeNet5Classifier(max_epochs=1, validation_fraction=None).fit(X_train, split[2])
    adapter = whole.net_.module_.adapter
    assert adapter.mean.item() == pytest.approx(X_train.mean(), rel=1e-5)
    assert 1 / adapter.inv_std.item() == pytest.approx(X_train.std(), rel=1e-5)


def test_history_records_every_epoch(fitted):
    keys = {"epoch", "train_loss", "train_accuracy", "valid_loss", "valid_accuracy", "lr",
            "duration"}
    for epoch, record in enumerate(fitted.history_, start=1):
        assert set(record) == keys
        assert record["epoch"] == epoch
        assert 0 <= record["train_accuracy"] <= 1 and 0 <= record["valid_accuracy"] <= 1
        assert record["train_loss"] > 0 and record["valid_loss"] > 0 and record["duration"] > 0
    assert fitted.history_[-1]["train_loss"] < fitted.history_[0]["train_loss"]


def test_same_random_state_gives_identical_predictions(fitted, split):
    X_train, X_test, y_train, _ = split
    again = LeNet5Classifier(**FAST).fit(X_train, y_train)
    np.testing.assert_array_equal(again.predict_proba(X_test), fitted.predict_proba(X_test))
    other = LeNet5Classifier(max_epochs=4, random_state=1).fit(X_train, y_train)
    assert not np.array_equal(other.predict_proba(X_test), fitted.predict_proba(X_test))


def test_fit_does_not_touch_global_torch_rng(split):
    X_train, _, y_train, _ = split
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LeNet5Classifier(max_epochs=1, random_state=0).fit(X_train, y_train)
    torch.testing.assert_close(torch.rand(3), expected)


def test_predictions_do_not_depend_on_batching(fitted, split):
    X_test = split[1][:300]
    full = fitted.predict_proba(X_test)
    one_by_one = np.vstack([fitted.predict_proba(row[None]) for row in X_test[:20]])
    np.testing.assert_array_equal(full[:20], one_by_one)
    for size in (7, 33, 100, 257):
        batched = np.vstack([
            fitted.predict_proba(X_test[i:i + size]) for i in range(0, len(X_test), size)
        ])
        np.testing.assert_array_equal(batched, full)
    np.testing.assert_array_equal(fitted.predict_proba(X_test[::-1])[::-1], full)


def test_validation_split_is_stratified_and_reproducible(digits):
    X, y = digits
    clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X, y)
    valid = clf.net_.history[-1]["batches"]
    n_valid = sum(b["valid_batch_size"] for b in valid if "valid_batch_size" in b)
    assert n_valid == int(np.ceil(0.2 * len(X)))
    from sklenet._input import split_validation

    train_idx, valid_idx = split_validation(y, 0.2, seed=7)
    assert set(train_idx).isdisjoint(valid_idx) and len(train_idx) + len(valid_idx) == len(y)
    np.testing.assert_allclose(
        np.bincount(y[valid_idx]) / len(valid_idx), np.bincount(y) / len(y), atol=0.01
    )
    np.testing.assert_array_equal(split_validation(y, 0.2, seed=7)[1], valid_idx)


def test_validation_split_degrades_gracefully():
    from sklenet._input import split_validation

    y = np.array([0] * 10 + [1])
    with pytest.warns(UserWarning, match="plain random split"):
        train, valid = split_validation(y, 0.2, seed=0)
    assert len(valid) == 3
    with pytest.warns(UserWarning, match="without validation"):
        train, valid = split_validation(np.array([0]), 0.2, seed=0)
    assert valid is None and list(train) == [0]


@pytest.mark.parametrize("fraction", [0, None])
def test_no_validation_split(split, fraction):
    X_train, _, y_train, _ = split
    clf = LeNet5Classifier(max_epochs=1, validation_fraction=fraction, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.history_[0]["valid_loss"] is None
    assert clf.history_[0]["valid_accuracy"] is None


def test_explicit_validation_data(split):
    X_train, X_test, y_train, y_test = split
    clf = LeNet5Classifier(max_epochs=2, random_state=0)
    clf.fit(X_train, y_train, validation_data=(X_test, y_test))
    # All training data was used and the validation accuracy is the test accuracy
    # of the model as it stood after the last epoch.
    batches = clf.net_.history[-1]["batches"]
    assert sum(b.get("train_batch_size", 0) for b in batches) == len(X_train)
    assert clf.history_[-1]["valid_accuracy"] == pytest.approx(clf.score(X_test, y_test))


def test_early_stopping_stops_and_keeps_best_weights(split):
    X_train, X_test, y_train, y_test = split
    clf = LeNet5Classifier(
        max_epochs=40, lr=0.01, lr_schedule="constant", early_stopping=True, patience=2,
        label_smoothing=0.0, calibration=None, precision="float32", random_state=0,
    ).fit(X_train, y_train)
    assert clf.n_iter_ < 40
    losses = [r["valid_loss"] for r in clf.history_]
    best = int(np.argmin(losses))
    assert best == clf.n_iter_ - 3  # patience epochs without improvement
    # The weights are those of the best epoch: its validation loss, recomputed.
    X_valid, y_valid = _validation_rows(clf, X_train, y_train)
    proba = clf.predict_proba(X_valid)
    assert log_loss(y_valid, proba, labels=clf.classes_) == pytest.approx(losses[best], rel=1e-4)


def _validation_rows(clf, X, y):
    from sklenet._input import split_validation

    seed = np.random.RandomState(clf.random_state).randint(np.iinfo(np.int32).max)
    _, valid = split_validation(y, clf.validation_fraction, seed)
    return X[valid], y[valid]


def test_cosine_schedule_decays_learning_rate(split):
    X_train, _, y_train, _ = split
    clf = LeNet5Classifier(max_epochs=4, lr=1e-3, lr_schedule="cosine", random_state=0)
    clf.fit(X_train, y_train)
    # Epochs ran at lr * (1 + cos(pi * epoch / 4)) / 2: 1e-3, 8.5e-4, 5e-4, 1.5e-4.
    expected = [1e-3 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)]
    np.testing.assert_allclose([row["lr"] for row in clf.history_], expected)
    constant = LeNet5Classifier(max_epochs=2, lr=1e-3, lr_schedule="constant", random_state=0)
    constant.fit(X_train, y_train)
    assert constant.net_.optimizer_.param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("optimizer", ["sgd", torch.optim.AdamW])
def test_other_optimizers(split, optimizer):
    X_train, X_test, y_train, y_test = split
    lr = 0.05 if optimizer == "sgd" else 1e-3
    clf = LeNet5Classifier(max_epochs=4, optimizer=optimizer, lr=lr, random_state=0)
    clf.fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.8
    expected = torch.optim.SGD if optimizer == "sgd" else torch.optim.AdamW
    assert type(clf.net_.optimizer_) is expected


def test_augmentation_and_dropout_train(split):
    X_train, X_test, y_train, y_test = split
    clf = LeNet5Classifier(
        max_epochs=8, activation="relu", dropout=0.1, random_shift=1, random_state=0,
    ).fit(X_train, y_train)
    assert clf.score(X_test, y_test) > 0.7
    assert isinstance(clf.net_.iterator_train__transform, ImageAugmentation)


def test_random_shift_and_flip_move_pixels_only():
    X = torch.zeros(500, 1, 5, 5, dtype=torch.uint8)
    X[:, 0, 2, 1] = 9
    generator = torch.Generator().manual_seed(0)
    shifted = ImageAugmentation(max_shift=1)(X, generator)
    assert shifted.shape == X.shape and shifted.dtype == X.dtype
    rows, cols = np.nonzero(shifted[:, 0].sum(0).numpy())
    assert set(rows) == {1, 2, 3} and set(cols) == {0, 1, 2}
    assert (shifted.flatten(1).sum(1) == 9).all()  # an interior pixel is never lost
    flipped = ImageAugmentation(flip=True)(X, generator)
    mirrored = (flipped[:, 0, 2, 3] == 9).float().mean()
    assert 0.4 < mirrored < 0.6
    assert ((flipped[:, 0, 2, 1] == 9) | (flipped[:, 0, 2, 3] == 9)).all()


def test_warm_start_continues_training(split):
    X_train, _, y_train, _ = split
    clf = LeNet5Classifier(max_epochs=2, warm_start=True, random_state=0).fit(X_train, y_train)
    weights = clf.net_.module_.lenet5.c1.weight.detach().clone()
    clf.fit(X_train, y_train)
    assert clf.n_iter_ == 4
    cold = LeNet5Classifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    torch.testing.assert_close(cold.net_.module_.lenet5.c1.weight, weights)
    cold.fit(X_train, y_train)
    assert cold.n_iter_ == 2


def test_partial_fit_trains_one_epoch_at_a_time(split):
    X_train, X_test, y_train, y_test = split
    clf = LeNet5Classifier(random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X_train, y_train)
    clf.partial_fit(X_train[:200], y_train[:200], classes=np.arange(10))
    assert clf.n_iter_ == 1
    for _ in range(3):
        clf.partial_fit(X_train, y_train)
    assert clf.n_iter_ == 4
    assert clf.score(X_test, y_test) > 0.8
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X_train[:5], np.full(5, 11))
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X_train, y_train, classes=[0, 1])


def test_user_callbacks_are_set_up_as_skorch_does_and_clones_stay_independent(split):
    X_train, _, y_train, _ = split

    class CountEpochs(Callback):
        def initialize(self):
            self.epochs_ = 0
            return self

        def on_epoch_end(self, net, **kwargs):
            self.epochs_ += 1

    callback = CountEpochs()
    clf = LeNet5Classifier(max_epochs=3, callbacks=[("count", callback)], random_state=0)
    copy = clone(clf)
    clf.fit(X_train, y_train)
    assert dict(clf.net_.callbacks_)["count"] is callback
    assert callback.epochs_ == 3
    assert not hasattr(copy.callbacks[0][1], "epochs_")


def test_verbose_prints_an_epoch_table(split, capsys):
    X_train, _, y_train, _ = split
    LeNet5Classifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    assert capsys.readouterr().out == ""
    LeNet5Classifier(max_epochs=2, verbose=1, random_state=0).fit(X_train, y_train)
    out = capsys.readouterr().out
    for column in ("epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "dur"):
        assert column in out
    assert len([line for line in out.splitlines() if line.strip().startswith(("1 ", "2 "))]) == 2


# -------------------------------------------------------------------- labels


@pytest.mark.parametrize(
    "make_labels",
    [
        lambda y: y * 7 - 20,  # ints in any range
        lambda y: np.array(["digit-%d" % v for v in y], dtype=object),
        lambda y: np.array(["digit-%d" % v for v in y]),
        lambda y: y >= 5,
        lambda y: (y - 4.5) * 2,  # floats with integral meaning
    ],
    ids=["ints", "object-strings", "unicode-strings", "bools", "floats"],
)
def test_labels_come_back_in_their_own_form(split, make_labels):
    X_train, X_test, y_train, y_test = split
    clf = LeNet5Classifier(**FAST).fit(X_train, make_labels(y_train))
    pred = clf.predict(X_test)
    expected = make_labels(y_test)
    assert pred.dtype == np.asarray(expected).dtype
    assert set(np.unique(pred)) <= set(np.unique(expected))
    assert np.mean(pred == expected) > 0.8
    np.testing.assert_array_equal(clf.classes_, np.unique(make_labels(y_train)))


def test_one_hot_labels_give_one_hot_predictions(split):
    X_train, X_test, y_train, y_test = split
    Y_train = np.eye(10, dtype=np.float32)[y_train]
    clf = LeNet5Classifier(**FAST).fit(X_train, Y_train)
    Y_pred = clf.predict(X_test)
    assert Y_pred.shape == (len(X_test), 10)
    np.testing.assert_array_equal(Y_pred.sum(axis=1), 1)
    assert clf.score(X_test, np.eye(10)[y_test]) > 0.85
    # Same model as integer labels: one-hot is only a different spelling.
    plain = LeNet5Classifier(**FAST).fit(X_train, y_train)
    np.testing.assert_array_equal(Y_pred.argmax(1), plain.predict(X_test))


def test_not_one_hot_matrix_is_rejected(split):
    X_train, _, y_train, _ = split
    Y = np.eye(10)[y_train]
    Y[0, 3] = 1
    with pytest.raises(ValueError, match="exactly one 1"):
        LeNet5Classifier(**FAST).fit(X_train, Y)


def test_column_vector_y_warns(split):
    X_train, _, y_train, _ = split
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X_train, y_train[:, None])
    assert clf.predict(X_train[:3]).shape == (3,)


# -------------------------------------------------------------------- images


def _fashion_like(n=600, seed=0):
    """Synthetic 28x28 uint8 images whose class is the position of a bright square."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        X[i, 4 + 12 * r: 12 + 12 * r, 4 + 12 * col: 12 + 12 * col] = 230
    return X, y


def test_images_in_any_layout_give_the_same_model():
    X, y = _fashion_like()
    flat = LeNet5Classifier(max_epochs=2, random_state=0).fit(X.reshape(len(X), -1), y)
    stacked = LeNet5Classifier(max_epochs=2, random_state=0).fit(X, y)
    channels = LeNet5Classifier(max_epochs=2, random_state=0).fit(X[:, None], y)
    listed = LeNet5Classifier(max_epochs=2, random_state=0).fit(X.tolist(), y.tolist())
    expected = flat.predict_proba(X)
    for clf in (stacked, channels, listed):
        assert clf.image_shape_ == (1, 28, 28)
        assert clf.n_features_in_ == 784
        np.testing.assert_array_equal(clf.predict_proba(X), expected)
    # A model fitted on images predicts flat rows and vice versa.
    np.testing.assert_array_equal(stacked.predict_proba(X.reshape(len(X), -1)), expected)
    np.testing.assert_array_equal(flat.predict_proba(X), expected)


def test_uint8_and_unit_floats_train_alike():
    X, y = _fashion_like()
    as_uint8 = LeNet5Classifier(max_epochs=3, random_state=0).fit(X, y)
    as_float = LeNet5Classifier(max_epochs=3, random_state=0).fit(X / 255.0, y)
    assert as_uint8.score(X, y) > 0.95 and as_float.score(X / 255.0, y) > 0.95
    np.testing.assert_allclose(
        as_uint8.predict_proba(X), as_float.predict_proba(X / 255.0), atol=1e-3
    )


def test_color_images_and_other_sizes():
    X, y = _fashion_like(n=300)
    rgb = np.repeat(X[:, None], 3, axis=1)
    big = np.pad(rgb, ((0, 0), (0, 0), (2, 2), (2, 2)))  # 3 x 32 x 32
    clf = LeNet5Classifier(max_epochs=3, random_state=0).fit(big, y)
    assert clf.image_shape_ == (3, 32, 32)
    assert clf.net_.module_.lenet5.c1.in_channels == 3
    assert clf.n_features_in_ == 3 * 32 * 32
    assert clf.score(big, y) > 0.9


def test_image_shape_parameter_reads_flat_rows():
    X, y = _fashion_like(n=300)
    rgb = np.repeat(X[:, None], 3, axis=1).reshape(300, -1)
    clf = LeNet5Classifier(max_epochs=1, image_shape=(3, 28, 28), random_state=0).fit(rgb, y)
    assert clf.image_shape_ == (3, 28, 28)
    wide = LeNet5Classifier(max_epochs=1, image_shape=(14, 56), random_state=0)
    assert wide.fit(X.reshape(300, -1), y).image_shape_ == (1, 14, 56)
    with pytest.raises(ValueError, match="image_shape=.*784"):
        LeNet5Classifier(image_shape=(27, 27)).fit(X.reshape(300, -1), y)


def test_non_square_rows_train_as_strips():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + X[:, 3] > 0).astype(int)
    clf = LeNet5Classifier(max_epochs=10, random_state=0).fit(X, y)
    assert clf.image_shape_ == (1, 1, 5)
    assert clf.score(X, y) > 0.85


def test_dataframe_input_keeps_feature_names(split):
    X_train, X_test, y_train, _ = split
    columns = [f"pixel{i}" for i in range(64)]
    clf = LeNet5Classifier(max_epochs=1, random_state=0)
    clf.fit(pd.DataFrame(X_train, columns=columns), pd.Series(y_train))
    np.testing.assert_array_equal(clf.feature_names_in_, columns)
    assert clf.predict(pd.DataFrame(X_test, columns=columns)).shape == (len(X_test),)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X_test)


# -------------------------------------------------------- the sklearn ecosystem


def test_clone_and_params():
    clf = LeNet5Classifier(lr=0.01, activation="relu", callbacks=[])
    cloned = clone(clf)
    assert cloned.get_params() == clf.get_params()
    assert cloned is not clf
    pipe = make_pipeline(MinMaxScaler(), clf)
    pipe.set_params(lenet5classifier__lr=0.02, lenet5classifier__max_epochs=3)
    assert pipe.get_params()["lenet5classifier__lr"] == 0.02
    assert clf.max_epochs == 3


def test_pipeline(split):
    X_train, X_test, y_train, y_test = split
    pipe = Pipeline([("scale", StandardScaler()), ("cnn", LeNet5Classifier(**FAST))])
    pipe.fit(X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.85
    assert pipe.predict_proba(X_test).shape == (len(X_test), 10)


def test_grid_and_randomized_search_in_parallel(split):
    X_train, _, y_train, _ = split
    grid = GridSearchCV(
        LeNet5Classifier(max_epochs=2, random_state=0),
        {"lr": [1e-3, 3e-3], "pooling": ["max", "avg"]},
        cv=2, n_jobs=2,
    ).fit(X_train, y_train)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_estimator_.n_iter_ == 2
    assert grid.best_score_ > 0.5
    randomized = RandomizedSearchCV(
        LeNet5Classifier(max_epochs=2, random_state=0),
        {"lr": loguniform(1e-4, 1e-2), "activation": ["tanh", "relu"]},
        n_iter=3, cv=2, n_jobs=2, random_state=0,
    ).fit(X_train, y_train)
    assert len(randomized.cv_results_["params"]) == 3


def test_cross_val_score_beside_svc_and_random_forest(digits):
    X, y = digits
    scores = {
        name: cross_val_score(model, X, y, cv=3)
        for name, model in {
            "lenet5": LeNet5Classifier(max_epochs=5, random_state=0),
            "svc": make_pipeline(StandardScaler(), SVC()),
            "forest": RandomForestClassifier(n_estimators=50, random_state=0),
        }.items()
    }
    for name, values in scores.items():
        assert values.shape == (3,)
        assert values.mean() > 0.85, name


def test_pickle_round_trip_in_the_same_process(fitted, split):
    X_test = split[1]
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(X_test), fitted.predict_proba(X_test))


def _predict_in_fresh_process(model_path, X, tmp_path, env_extra=""):
    np.save(tmp_path / "X.npy", X)
    code = textwrap.dedent(f"""
        {env_extra}
        import joblib, numpy as np
        clf = joblib.load({str(model_path)!r})
        X = np.load({str(tmp_path / "X.npy")!r})
        np.save({str(tmp_path / "proba.npy")!r}, clf.predict_proba(X))
        print(clf.net_.device)
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return np.load(tmp_path / "proba.npy"), result


def test_joblib_round_trip_in_a_fresh_process(fitted, split, tmp_path):
    X_test = split[1]
    path = tmp_path / "model.joblib"
    joblib.dump(fitted, path)
    proba, _ = _predict_in_fresh_process(path, X_test, tmp_path)
    np.testing.assert_array_equal(proba, fitted.predict_proba(X_test))


def test_model_fitted_on_cuda_loads_on_a_cpu_only_machine(split, tmp_path):
    X_train, X_test, y_train, _ = split
    if torch.cuda.is_available():
        clf = LeNet5Classifier(max_epochs=1, device="cuda", random_state=0).fit(X_train, y_train)
        reference = clf.predict_proba(X_test)
    else:
        # Without a GPU, mark the fitted net as living on CUDA: the file then
        # records device "cuda" exactly as a GPU-fitted model's would.
        clf = LeNet5Classifier(max_epochs=1, random_state=0).fit(X_train, y_train)
        reference = clf.predict_proba(X_test)
        clf.set_params(device="cuda")
        clf.net_.device = "cuda"
    path = tmp_path / "cuda-model.joblib"
    joblib.dump(clf, path)
    hide_gpus = "import os; os.environ['CUDA_VISIBLE_DEVICES'] = ''"
    proba, result = _predict_in_fresh_process(path, X_test, tmp_path, env_extra=hide_gpus)
    assert result.stdout.strip() == "cpu"
    assert "PyTorch sees no CUDA device" in result.stderr
    np.testing.assert_allclose(proba, reference, atol=1e-5)


def test_device_cuda_without_gpu_is_a_clear_error(split):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    X_train, _, y_train, _ = split
    with pytest.raises(ValueError, match="device='cuda'.*no CUDA device"):
        LeNet5Classifier(device="cuda").fit(X_train, y_train)


# -------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "params, match",
    [
        ({"max_epochs": 0}, "'max_epochs' parameter"),
        ({"lr": -1.0}, "'lr' parameter"),
        ({"optimizer": "adagrad"}, "'optimizer' parameter"),
        ({"optimizer": dict}, "'optimizer' parameter"),
        ({"activation": "sigmoid"}, "'activation' parameter"),
        ({"pooling": "min"}, "'pooling' parameter"),
        ({"validation_fraction": 1.0}, "'validation_fraction' parameter"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"device": "tpu"}, "'device' parameter"),
        ({"dropout": 1.5}, "'dropout' parameter"),
        ({"callbacks": "print"}, "'callbacks' parameter"),
    ],
)
def test_invalid_parameters_are_named_by_fit(split, params, match):
    X_train, _, y_train, _ = split
    clf = LeNet5Classifier(**params)  # __init__ never validates
    with pytest.raises(ValueError, match=match):
        clf.fit(X_train, y_train)


@pytest.mark.parametrize(
    "make_bad, error, match",
    [
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X), y),
         ValueError, "NaN"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, np.inf, X), y),
         ValueError, "infinity"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "0 sample"),
        (lambda X, y: (X, np.zeros_like(y)), ValueError, "only one class"),
        (lambda X, y: (X, y + 0.5), ValueError, "Unknown label type: continuous"),
        (lambda X, y: (X, y[:-1]), ValueError, "inconsistent numbers of samples"),
        (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 5, "a", X.astype(object)), y),
         ValueError, "could not convert string to float"),
        (lambda X, y: (X + 1j, y), ValueError, "Complex data not supported"),
        (lambda X, y: (sp.csr_matrix(X), y), TypeError, "Sparse data was passed"),
        (lambda X, y: (X, None), ValueError, "requires y to be passed"),
        (lambda X, y: (X[:, :, None, None, None], y), ValueError, "Expected images shaped"),
    ],
    ids=["nan", "inf", "empty", "one-class", "continuous-y", "y-length", "object-X",
         "complex-X", "sparse-X", "y-none", "5d-X"],
)
def test_bad_training_data_gets_a_clear_error(split, make_bad, error, match):
    X_train, _, y_train, _ = split
    X_bad, y_bad = make_bad(X_train[:100], y_train[:100])
    with pytest.raises(error, match=match):
        LeNet5Classifier(max_epochs=1).fit(X_bad, y_bad)


def test_predict_errors(fitted, split):
    X_test = split[1]
    with pytest.raises(NotFittedError):
        LeNet5Classifier().predict(X_test)
    with pytest.raises(ValueError, match="X has 63 features, but LeNet5Classifier is expecting 64"):
        fitted.predict(X_test[:, :63])
    with pytest.raises(ValueError, match="NaN"):
        fitted.predict_proba(np.full((2, 64), np.nan))
    with pytest.raises(ValueError, match="Reshape your data"):
        fitted.predict(X_test[0])


def test_rejected_calls_leave_the_fitted_model_intact(split):
    X_train, X_test, y_train, _ = split
    clf = LeNet5Classifier(max_epochs=2, random_state=0).fit(X_train, y_train)
    before = clf.predict_proba(X_test)
    state = dict(clf.__dict__)
    attempts = [
        lambda: clf.fit(X_train[:, :10], np.zeros(len(X_train))),  # features change, y bad
        lambda: clf.fit(X_train, y_train, validation_data=(X_test[:, :3], y_train[:10])),
        lambda: clf.partial_fit(X_train[:, :10], y_train),
        lambda: clf.partial_fit(X_train, np.full(len(X_train), 99)),
        lambda: clf.set_params(lr=-1).fit(X_train, y_train),
    ]
    for attempt in attempts:
        with pytest.raises(ValueError):
            attempt()
        clf.set_params(lr=state["lr"])
        assert clf.__dict__.keys() == state.keys()
        for key, value in state.items():
            assert clf.__dict__[key] is value, key
        np.testing.assert_array_equal(clf.predict_proba(X_test), before)
