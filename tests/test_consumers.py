"""LeNet5Classifier and LeNet5Features inside the libraries that consume sklearn estimators.

Each test runs the real consumer (sklearn's meta-estimators and metadata routing,
skops, MLflow, skorch's callbacks) and checks what it produces, not only that
it runs.
"""

import io
import pickle
import pickletools
import re

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.ensemble import AdaBoostClassifier, BaggingClassifier
from sklearn.exceptions import UnsetMetadataPassedError
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from sklenet import LeNet5Classifier, LeNet5Features

_SKLEARN = tuple(int(part) for part in sklearn.__version__.split(".")[:3] if part.isdigit())
#: Metadata routing through Pipeline.score came with scikit-learn 1.8, and a
#: Pipeline routing sample_weight to a transformer's inner fit works from 1.9.1
#: (tested on the declared floor, 1.7: docs/performance.md, "Tested versions").
needs_sklearn_1_8 = pytest.mark.skipif(
    _SKLEARN < (1, 8), reason="metadata routing through Pipeline.score needs scikit-learn>=1.8")
needs_sklearn_1_9_1 = pytest.mark.skipif(
    _SKLEARN < (1, 9, 1),
    reason="a Pipeline routes sample_weight to a transformer's inner fit from scikit-learn 1.9.1")

FAST = dict(max_epochs=1, validation_fraction=None, random_state=0)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300], y[:300]


@pytest.fixture(scope="module")
def weights(digits):
    return np.random.RandomState(0).uniform(0.2, 3.0, len(digits[1]))


@pytest.fixture(scope="module")
def fitted(digits):
    return LeNet5Classifier(**FAST).fit(*digits)


#: Digit names: sorted, their order is not the digits' (a class index is no label).
NAMES = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                  "nine"])


@pytest.fixture(scope="module", params=["int", "str"])
def fitted_labels(request, digits):
    """``(model, y)``: a model fitted on int labels or on digit names, and its labels."""
    X, y = digits
    y = y if request.param == "int" else NAMES[y]
    return LeNet5Classifier(**FAST).fit(X, y), y


def assert_predicts_like(loaded, original, X, y):
    """``loaded`` predicts what ``original`` does, in the values and dtype of the
    labels ``y`` it was fitted on (not only like itself: a decoding bug shared by
    both would pass that)."""
    proba = loaded.predict_proba(X)
    np.testing.assert_array_equal(proba, original.predict_proba(X))
    predicted = loaded.predict(X)
    np.testing.assert_array_equal(predicted, original.predict(X))
    assert predicted.dtype == np.asarray(y).dtype
    np.testing.assert_array_equal(loaded.classes_, np.unique(y))
    np.testing.assert_array_equal(predicted, np.unique(y)[proba.argmax(axis=1)])
    assert accuracy_score(y, predicted) > 0.3  # ten classes: chance is 0.1


class RecordingLeNet5(LeNet5Classifier):
    """Records the ``sample_weight`` each fit receives."""

    received = []

    def fit(self, X, y, sample_weight=None, validation_data=None):
        type(self).received.append(None if sample_weight is None
                                   else np.array(sample_weight, dtype=float))
        return super().fit(X, y, sample_weight=sample_weight, validation_data=validation_data)


# ------------------------------------------------------- pipelines and routing

def test_pipeline_passes_sample_weight_by_step_name(digits, weights):
    X, y = digits
    scaled = MinMaxScaler().fit_transform(X)
    direct = LeNet5Classifier(**FAST).fit(scaled, y, sample_weight=weights)
    pipe = make_pipeline(MinMaxScaler(), LeNet5Classifier(**FAST))
    pipe.fit(X, y, lenet5classifier__sample_weight=weights)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(scaled))
    unweighted = make_pipeline(MinMaxScaler(), LeNet5Classifier(**FAST)).fit(X, y)
    assert not np.array_equal(unweighted.predict_proba(X), direct.predict_proba(scaled))


@needs_sklearn_1_8
def test_routed_grid_search_over_a_pipeline_trains_weighted(digits, weights):
    X, y = digits
    RecordingLeNet5.received = []
    with sklearn.config_context(enable_metadata_routing=True):
        clf = (RecordingLeNet5(**FAST)
               .set_fit_request(sample_weight=True)
               .set_score_request(sample_weight=True))
        search = GridSearchCV(make_pipeline(MinMaxScaler(), clf),
                              {"recordinglenet5__lr": [1e-3]}, cv=2)
        search.fit(X, y, sample_weight=weights)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    # Each fold's fit got its training rows' weights, the refit all of them.
    received = RecordingLeNet5.received
    assert len(received) == 3
    assert [len(w) for w in received] == [150, 150, 300]
    # Two folds: each sample is trained on in exactly one of them.
    assert received[0].sum() + received[1].sum() == pytest.approx(weights.sum())
    np.testing.assert_array_equal(received[2], weights)
    # And the refitted model is the weighted one.
    expected = make_pipeline(MinMaxScaler(), LeNet5Classifier(**FAST, lr=1e-3)).fit(
        X, y, lenet5classifier__sample_weight=weights
    )
    np.testing.assert_array_equal(search.predict_proba(X), expected.predict_proba(X))


@needs_sklearn_1_8
def test_routing_refuses_weights_nobody_requested(digits, weights):
    # Without set_fit_request, weights are an error, never silently dropped.
    with sklearn.config_context(enable_metadata_routing=True):
        pipe = make_pipeline(MinMaxScaler(), LeNet5Classifier(**FAST))
        with pytest.raises(UnsetMetadataPassedError, match="LeNet5Classifier.fit"):
            pipe.fit(*digits, sample_weight=weights)
        search = GridSearchCV(pipe, {"lenet5classifier__lr": [1e-3]}, cv=2,
                              error_score="raise")
        with pytest.raises(UnsetMetadataPassedError, match="LeNet5Classifier.fit"):
            search.fit(*digits, sample_weight=weights)


def test_routed_score_is_weighted(digits, weights):
    X, y = digits
    with sklearn.config_context(enable_metadata_routing=True):
        clf = (LeNet5Classifier(**FAST)
               .set_fit_request(sample_weight=False)
               .set_score_request(sample_weight=True))
        result = cross_validate(clf, X, y, cv=2, params={"sample_weight": weights},
                                return_estimator=True, return_indices=True)
    for estimator, test in zip(result["estimator"], result["indices"]["test"]):
        expected = accuracy_score(y[test], estimator.predict(X[test]),
                                  sample_weight=weights[test])
        assert expected != pytest.approx(estimator.score(X[test], y[test]))
    assert list(result["test_score"]) == pytest.approx([
        accuracy_score(y[test], est.predict(X[test]), sample_weight=weights[test])
        for est, test in zip(result["estimator"], result["indices"]["test"])
    ])


def test_adaboost_boosts_lenet5(digits):
    X, y = digits
    ada = AdaBoostClassifier(LeNet5Classifier(**FAST), n_estimators=2, random_state=0)
    ada.fit(X, y)
    assert len(ada.estimators_) == 2
    assert np.all(ada.estimator_weights_ > 0)
    assert ada.predict(X).shape == y.shape
    assert ada.score(X, y) > 0.3  # ten classes: chance is 0.1


def test_bagging_feature_subsets_become_strips(digits):
    # Documented in the user guide: pixel subsets are no images any more.
    X, y = digits
    bagging = BaggingClassifier(LeNet5Classifier(**FAST), max_features=0.5, n_estimators=2,
                                random_state=0).fit(X, y)
    assert [member.image_shape_ for member in bagging.estimators_] == [(1, 1, 32)] * 2


# ------------------------------------------------------------ LeNet5Features

def test_features_pipeline_with_svc_beats_chance_clearly():
    X, y = load_digits(return_X_y=True)
    features = LeNet5Features(LeNet5Classifier(max_epochs=3, validation_fraction=None,
                                               random_state=0))
    model = make_pipeline(features, SVC()).fit(X[:600], y[:600])
    assert model.score(X[600:900], y[600:900]) > 0.7  # ten classes: chance is 0.1
    assert model[0].transform(X[:2]).shape == (2, 84)
    names = model[0].get_feature_names_out()
    assert names[0] == "lenet5_f6_0" and names[-1] == "lenet5_f6_83"


def test_features_are_the_classifier_f6_activations(digits, fitted):
    X, y = digits
    features = LeNet5Features(LeNet5Classifier(**FAST)).fit(X, y)
    np.testing.assert_array_equal(features.transform(X), fitted.extract_features(X))
    assert features.n_features_in_ == 64
    assert features.classifier is not features.classifier_  # cloned, left untouched


def test_features_output_as_dataframe(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    features = LeNet5Features(LeNet5Classifier(**FAST)).set_output(transform="pandas")
    out = features.fit_transform(X, y)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[:2]) == ["lenet5_f6_0", "lenet5_f6_1"]


@needs_sklearn_1_9_1
def test_features_pass_weights_to_the_classifier(digits, weights):
    X, y = digits
    expected = LeNet5Classifier(**FAST).fit(X, y, sample_weight=weights).extract_features(X)
    pipe = make_pipeline(LeNet5Features(LeNet5Classifier(**FAST)), LogisticRegression())
    pipe.fit(X, y, lenet5features__sample_weight=weights)
    np.testing.assert_array_equal(pipe[0].transform(X), expected)
    with sklearn.config_context(enable_metadata_routing=True):
        inner = LeNet5Classifier(**FAST).set_fit_request(sample_weight=True)
        routed = make_pipeline(
            LeNet5Features(inner),
            LogisticRegression().set_fit_request(sample_weight=False),
        ).fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(routed[0].transform(X), expected)


def test_features_grid_search_over_the_network_parameters(digits):
    X, y = digits
    pipe = make_pipeline(LeNet5Features(LeNet5Classifier(**FAST)), LogisticRegression())
    lrs = [1e-4, 3e-2]
    search = GridSearchCV(pipe, {"lenet5features__classifier__lr": lrs}, cv=2).fit(X, y)
    # Each candidate scores what the pipeline fitted by hand with its lr scores: the
    # nested parameter reaches the network inside the cloned feature extractor.
    for i, lr in enumerate(lrs):
        candidate = clone(pipe).set_params(lenet5features__classifier__lr=lr)
        for k, (train, test) in enumerate(StratifiedKFold(2).split(X, y)):
            score = clone(candidate).fit(X[train], y[train]).score(X[test], y[test])
            assert search.cv_results_[f"split{k}_test_score"][i] == score
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] != scores[1]
    best = lrs[int(np.argmax(scores))]
    assert search.best_params_ == {"lenet5features__classifier__lr": best}
    assert search.best_estimator_[0].classifier_.lr == best


# -------------------------------------------------------------- persistence

def _globals(data):
    """Module names of the classes and functions a pickle refers to."""
    modules = set()
    strings = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
        elif opcode.name == "GLOBAL":
            modules.add(arg.split(" ")[0])
    return modules


def test_pickle_holds_plain_data_and_is_smaller(fitted_labels, digits):
    fitted, y = fitted_labels
    data = pickle.dumps(fitted)
    assert not any(m.split(".")[0] in ("torch", "skorch") for m in _globals(data))
    # Smaller than the skorch net alone, pickled the usual way (torch.save inside).
    assert len(data) < len(pickle.dumps(fitted.net_))
    assert_predicts_like(pickle.loads(data), fitted, digits[0], y)
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    assert_predicts_like(joblib.load(buffer), fitted, digits[0], y)


def test_skops_round_trip(fitted_labels, digits, tmp_path):
    sio = pytest.importorskip("skops.io")
    fitted, y = fitted_labels
    X = digits[0]
    path = tmp_path / "model.skops"
    sio.dump(fitted, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted == ["sklenet.classifier.LeNet5Classifier"]
    loaded = sio.load(path, trusted=untrusted)
    assert_predicts_like(loaded, fitted, X, y)
    assert loaded.history_ == fitted.history_
    # Training goes on from the loaded state: partial_fit, then a warm start.
    loaded.partial_fit(X, y)
    assert loaded.n_iter_ == 2
    loaded.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert loaded.n_iter_ == 4
    assert loaded.score(X, y) > fitted.score(X, y)


# MLflow's sqlite store uses an SQLAlchemy loader that SQLAlchemy deprecates.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.skipif(_SKLEARN < (1, 8), reason="mlflow>=3.14, the floor this test needs, "
                    "imports scikit-learn internals that 1.7 lacks")
def test_mlflow_default_format_round_trip(fitted, digits, tmp_path):
    pytest.importorskip("mlflow")
    import mlflow.sklearn
    from mlflow.models import Model

    X, _ = digits
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    # Artifacts would otherwise go to ./mlruns, in whatever directory pytest runs.
    experiment = mlflow.create_experiment(
        "sklenet", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    mlflow.set_experiment(experiment_id=experiment)
    # MLflow's default format is skops, which loads only the types it is told
    # to trust: the one skops.io.get_untrusted_types reports.
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            fitted, name="model",
            skops_trusted_types=["sklenet.classifier.LeNet5Classifier"],
            # Given, so MLflow does not infer them (slow, and beside the point here).
            pip_requirements=["sklenet"],
        )
    flavor = Model.load(info.model_uri).flavors["sklearn"]
    assert flavor["serialization_format"] == "skops"
    assert list((tmp_path / "artifacts").rglob("model.skops"))
    loaded = mlflow.sklearn.load_model(info.model_uri)
    assert_predicts_like(loaded, fitted, X, digits[1])


# -------------------------------------------------------- skorch callbacks

def test_epoch_scoring_with_classification_scorers(digits):
    from skorch.callbacks import EpochScoring

    X, y = digits
    X_all, y_all = load_digits(return_X_y=True)
    X_val, y_val = X_all[300:500], y_all[300:500]
    callbacks = [
        EpochScoring("accuracy", name="accuracy_cb"),
        EpochScoring("f1_macro", name="f1", lower_is_better=False),
        ("auc", EpochScoring("roc_auc_ovr", lower_is_better=False)),
    ]
    # skorch's scorers see the net's own probabilities: uncalibrated, in the
    # training precision.
    clf = LeNet5Classifier(max_epochs=2, random_state=0, callbacks=callbacks,
                           calibration=None, precision="float32")
    clf.fit(X, y, validation_data=(X_val, y_val))
    last = clf.net_.history[-1]
    assert last["accuracy_cb"] == pytest.approx(accuracy_score(y_val, clf.predict(X_val)))
    assert last["accuracy_cb"] == pytest.approx(clf.history_[-1]["valid_accuracy"])
    assert last["f1"] == pytest.approx(f1_score(y_val, clf.predict(X_val), average="macro"))
    assert last["roc_auc_ovr"] == pytest.approx(
        roc_auc_score(y_val, clf.predict_proba(X_val), multi_class="ovr")
    )
    assert 0.5 < last["roc_auc_ovr"] <= 1


def test_checkpoint_and_load_init_state_resume_training(digits, tmp_path):
    from skorch.callbacks import Checkpoint, LoadInitState, TrainEndCheckpoint

    X, y = digits
    # skorch's resume pattern: the same callbacks on every run.
    checkpoint = Checkpoint(dirname=tmp_path / "best")
    clf = LeNet5Classifier(max_epochs=2, random_state=0,
                           callbacks=[checkpoint, LoadInitState(checkpoint)])
    clf.fit(X, y)
    assert (tmp_path / "best" / "params.pt").exists()
    first = [row["valid_loss"] for row in clf.net_.history]
    clf.fit(X, y)  # starts from the checkpoint of the best epoch
    assert len(clf.history_) > 2
    assert [row["valid_loss"] for row in clf.net_.history][:len(first)] == first

    # TrainEndCheckpoint saves at the end; LoadInitState starts another model from it.
    end = TrainEndCheckpoint(dirname=tmp_path / "end")
    done = LeNet5Classifier(max_epochs=2, random_state=0, callbacks=[end]).fit(X, y)
    resumed = LeNet5Classifier(max_epochs=1, random_state=0, callbacks=[LoadInitState(end)])
    resumed.fit(X, y)
    assert resumed.n_iter_ == 3
    assert resumed.history_[:2] == done.history_
    assert resumed.history_[-1]["train_loss"] < done.history_[0]["train_loss"]


def test_clones_do_not_share_callbacks(digits, tmp_path):
    from skorch.callbacks import TrainEndCheckpoint

    X, y = digits
    template = LeNet5Classifier(**FAST, callbacks=[TrainEndCheckpoint(dirname=tmp_path)])
    one, two = clone(template), clone(template)
    assert one.callbacks[0] is not template.callbacks[0]
    assert one.callbacks[0] is not two.callbacks[0]
    one.fit(X, y)
    assert hasattr(one.callbacks[0], "checkpoint_")
    assert not hasattr(two.callbacks[0], "checkpoint_")
    assert not hasattr(template.callbacks[0], "checkpoint_")


def test_verbose_output_to_a_pipe_has_no_colour_codes(digits, capsys):
    LeNet5Classifier(max_epochs=2, random_state=0, verbose=1).fit(*digits)
    out = capsys.readouterr().out
    assert "train_loss" in out and "valid_loss" in out
    assert "\x1b[" not in out
    assert re.search(r"^\s+2\s+\d", out, re.MULTILINE)  # the epoch-2 row is there
