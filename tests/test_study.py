"""The study's protocol (``sklenet.study``) and its report (``sklenet.report``)."""

import json
import math

import numpy as np
import pytest

from sklenet import plotting, report, study

FIGURES = {"samples.png", "loss.png", "accuracy.png", "confusion_matrix.png",
           "calibration.png", "misclassified.png"}
#: Drawn only from the fitted estimators (``run_study(return_estimators=True)``).
FEATURES = "learned_features.png"


@pytest.fixture(scope="module")
def digits_data():
    return study.load_study_data("digits")


@pytest.fixture(scope="module")
def small_results(digits_data):
    return study.run_study(digits_data, recipes=["study"], lenet_params={"max_epochs": 1},
                           baselines=["knn", "svc"], max_train_samples=500, verbose=0)


def test_recipes_are_plain_data():
    # No classes or functions: the recipes survive JSON, and study.py need not import torch.
    assert json.loads(json.dumps(study.RECIPES)) == study.RECIPES
    assert study.RECIPES["strong"]["optimizer"] == "adamw"


def test_study_recipe_does_not_move_with_the_defaults():
    # The study's row must stay put: the recipe pins the training of the study's
    # measurements (the library defaults they were made with), whatever today's are.
    from sklenet import LeNet5Classifier

    clf = LeNet5Classifier(**study.recipe_params("study"))
    assert {k: clf.get_params()[k] for k in (
        "activation", "pooling", "max_epochs", "batch_size", "lr", "optimizer",
        "lr_schedule", "weight_decay", "label_smoothing", "ema_decay", "random_erasing",
        "test_time_flip", "precision")} == {
        "activation": "tanh", "pooling": "avg", "max_epochs": 20, "batch_size": 128,
        "lr": 1e-3, "optimizer": "adam", "lr_schedule": "cosine", "weight_decay": 0.0,
        "label_smoothing": 0.0, "ema_decay": 0.0, "random_erasing": 0.0,
        "test_time_flip": False, "precision": "float32"}


def test_strong_recipe_is_the_measured_one():
    from sklenet import LeNet5Classifier

    params = study.strong_recipe()
    assert params == {
        "activation": "relu", "pooling": "max", "random_shift": 1, "horizontal_flip": True,
        "random_erasing": 0.3, "label_smoothing": 0.0, "optimizer": "adamw",
        "weight_decay": 0.05, "lr": 3e-3, "lr_schedule": "onecycle", "batch_size": 256,
        "precision": "auto", "test_time_flip": True, "max_epochs": 80}
    params["lr"] = 1.0  # a copy: the registry is left alone
    assert study.RECIPES["strong"]["lr"] == 3e-3
    LeNet5Classifier(**study.strong_recipe())._validate_params()
    assert study.recipe_params("default") == {}


def test_run_study_writes_nothing(digits_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study.run_study(digits_data, recipes=[], baselines=["knn"], max_train_samples=200,
                    verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_every_row_is_built_alike(small_results):
    rows = small_results["models"]
    assert [r["key"] for r in rows] == ["lenet5-study", "knn", "svc"]
    common = set.intersection(*(set(r) for r in rows))
    assert {"history", "label_smoothing", "epochs", "misclassified"} == set(rows[0]) - common
    assert set(rows[1]) == set(rows[2]) == common
    assert rows[0]["params"] == {"pooling": "avg", "max_epochs": 1, "batch_size": 128,
                                 "lr": 1e-3, "lr_schedule": "cosine", "optimizer": "adam",
                                 "weight_decay": 0.0, "precision": "float32",
                                 "calibration": None, "random_state": 0}
    assert rows[0]["epochs"] == 1 and len(rows[0]["history"]) == 1
    assert rows[2]["test_loss"] is None  # SVC has no predict_proba
    assert small_results["dataset"]["n_train"] + small_results["dataset"]["n_valid"] == 500
    json.dumps(small_results, allow_nan=False)  # JSON as it is


def test_progress_goes_through_log(digits_data):
    lines = []
    study.run_study(digits_data, recipes=[], baselines=["knn"], max_train_samples=200,
                    log=lines.append)
    assert lines[0].startswith("Data set: digits")
    assert lines[1].startswith("[knn] fitting KNeighborsClassifier")
    assert "test accuracy" in lines[2]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.2, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("n_classes", [2, 10])
def test_check_split_names_the_smallest_size_that_works(fraction, n_classes):
    with pytest.raises(study.ProtocolError) as exc:
        study.check_split(n_classes, n_classes, fraction)
    n = int(str(exc.value).split("use at least ")[1].split()[0])
    n_train, n_valid = study.check_split(n, n_classes, fraction)
    assert n_train + n_valid == n and min(n_train, n_valid) >= n_classes
    assert n_valid == math.ceil(fraction * n)  # scikit-learn's rounding
    with pytest.raises(study.ProtocolError):
        study.check_split(n - 1, n_classes, fraction)


def test_too_small_a_sample_is_a_protocol_error(digits_data):
    with pytest.raises(study.ProtocolError, match="max_train_samples=30 .* use at least 46"):
        study.run_study(digits_data, recipes=[], baselines=["knn"], max_train_samples=30,
                        verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"recipes": ["best"]}, "recipes must be taken from study, default, strong; got 'best'"),
    ({"baselines": ["xgboost"]}, "baselines must be taken from"),
    ({"validation_fraction": 1.0}, "validation_fraction must be in"),
    ({"random_state": -1}, r"random_state must be an integer in \[0, 4294967295\]"),
    ({"random_state": 2**32}, "random_state must be an integer"),
])
def test_bad_parameters_are_named(digits_data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        study.run_study(digits_data, verbose=0, **kwargs)


def test_largest_seed_works(digits_data):
    # The training-evaluation sample uses a seed derived from random_state.
    results = study.run_study(digits_data, recipes=[], baselines=["knn"],
                              max_train_samples=200, random_state=2**32 - 1, verbose=0)
    assert results["protocol"]["random_state"] == 2**32 - 1


def test_subsample_close_to_everything():
    # Stratifying would leave fewer rest rows than classes; a plain sample still works.
    X = np.arange(100).reshape(50, 2)
    y = np.repeat(np.arange(10), 5)
    X_sub, y_sub = study._subsample(X, y, 47, seed=0)
    assert len(y_sub) == 47 and len(np.unique(X_sub[:, 0])) == 47


def test_write_report(small_results, digits_data, tmp_path):
    out = tmp_path / "new" / "out"
    written = report.write_report(small_results, out, data=digits_data)
    assert "figures" not in small_results  # the caller's dict is left alone
    assert set(written["figures"].values()) == FIGURES
    assert {p.name for p in out.iterdir()} == FIGURES | {"results.json", "results.md"}
    assert json.loads((out / "results.json").read_text()) == written
    md = (out / "results.md").read_text()
    assert "| LeNet-5 (study: tanh, avg pooling) |" in md and "![loss](loss.png)" in md


def test_write_report_without_data_skips_the_images(small_results, tmp_path):
    written = report.write_report(small_results, tmp_path)
    assert set(written["figures"].values()) == FIGURES - {"samples.png", "misclassified.png"}


@pytest.mark.parametrize("error", [RuntimeError("disk trouble"), KeyboardInterrupt()])
def test_failed_write_leaves_the_directory_as_it_was(small_results, digits_data, tmp_path,
                                                     monkeypatch, error):
    (tmp_path / "results.json").write_text("{}\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*args, **kwargs):
        raise error

    # The last figure is drawn after the first ones are already on disk.
    monkeypatch.setattr(plotting, "plot_confusion_matrix_counts", fail)
    with pytest.raises(type(error)):
        report.write_report(small_results, tmp_path, data=digits_data)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_unwritable_output_directory_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write to output directory .*a-file/out"):
        report.prepare_output_dir(blocker / "out")


def test_misclassified_are_the_models_most_confident_mistakes(digits_data):
    results = study.run_study(digits_data, recipes=["default"], baselines=[],
                              lenet_params={"max_epochs": 1}, max_train_samples=400,
                              max_test_samples=300, return_estimators=True, verbose=0)
    row = results["models"][0]
    clf = results["estimators"]["lenet5-default"]
    mistakes = row["misclassified"]
    assert len(mistakes) == study.N_MISCLASSIFIED
    X = digits_data["X_test"][[m["index"] for m in mistakes]]
    proba = clf.predict_proba(X)
    classes = results["dataset"]["classes"]
    for m, p in zip(mistakes, proba):
        # The index points into the whole test set, the classes into the results' list.
        assert str(digits_data["target_names"][digits_data["y_test"][m["index"]]]) == \
            classes[m["true"]]
        assert np.argmax(p) == m["predicted"] != m["true"]
        assert p[m["predicted"]] == pytest.approx(m["confidence"])
    confidences = [m["confidence"] for m in mistakes]
    assert confidences == sorted(confidences, reverse=True)
    # No mistake of the sampled test set more confident than the last one kept is left out.
    sample = study._sample_rows(digits_data["y_test"], 300, 0)
    proba = clf.predict_proba(digits_data["X_test"][sample])
    wrong = clf.classes_[proba.argmax(axis=1)] != digits_data["y_test"][sample]
    surer = sample[wrong & (proba.max(axis=1) > confidences[-1])]
    assert set(surer.tolist()) <= {m["index"] for m in mistakes}


def test_write_report_draws_what_lenet5_learned(digits_data, tmp_path):
    results = study.run_study(digits_data, recipes=["study", "default"], baselines=["knn"],
                              lenet_params={"max_epochs": 1}, max_train_samples=300,
                              return_estimators=True, verbose=0)
    assert set(results["estimators"]) == {"lenet5-study", "lenet5-default", "knn"}
    written = report.write_report(results, tmp_path, data=digits_data)
    assert "estimators" in results and "estimators" not in written  # not JSON data
    assert set(written["figures"].values()) == FIGURES | {FEATURES}
    assert "estimators" not in json.loads((tmp_path / "results.json").read_text())
    assert "![features](learned_features.png)" in (tmp_path / "results.md").read_text()


@pytest.fixture(scope="module")
def two_seeds(digits_data):
    return study.run_study(digits_data, recipes=["default"], lenet_params={"max_epochs": 1},
                           baselines=["knn", "svc"], max_train_samples=400, seeds=[3, 5],
                           verbose=0)


def test_several_seeds_report_mean_and_range(digits_data, two_seeds):
    assert two_seeds["protocol"]["seeds"] == [3, 5]
    assert two_seeds["protocol"]["random_state"] == 3
    for row in two_seeds["models"]:
        runs = row["per_seed"]
        assert [run["seed"] for run in runs] == [3, 5]
        for measure in ("train_accuracy", "valid_accuracy", "test_accuracy", "fit_time"):
            values = [run[measure] for run in runs]
            assert row[measure] == pytest.approx(np.mean(values))
            assert row["spread"][measure] == [min(values), max(values)]
    svc = two_seeds["models"][-1]
    assert svc["test_loss"] is None and "test_loss" not in svc["spread"]
    json.dumps(two_seeds, allow_nan=False)


def test_each_seed_is_the_run_of_that_seed_alone(digits_data, two_seeds):
    # The seeds differ in split and models, as separate runs with --seed would.
    alone = study.run_study(digits_data, recipes=["default"], lenet_params={"max_epochs": 1},
                            baselines=["knn", "svc"], max_train_samples=400,
                            random_state=5, verbose=0)
    for row, single in zip(two_seeds["models"], alone["models"]):
        run = dict(row["per_seed"][1])
        assert run.pop("seed") == 5
        for key in ("fit_time", "predict_time"):
            run.pop(key), single.pop(key)
        if "history" in single:  # epoch durations are timings too
            for epoch in run["history"] + single["history"]:
                epoch.pop("duration", None)
        assert run == single
    accuracies = [run["test_accuracy"] for run in two_seeds["models"][0]["per_seed"]]
    assert accuracies[0] != accuracies[1]


def test_one_seed_looks_as_before(small_results):
    assert small_results["protocol"]["seeds"] == [0]
    assert all("per_seed" not in row and "spread" not in row
               for row in small_results["models"])
    table = report.format_table(small_results)
    assert "acc (min-max)" not in table and table.splitlines()[0].startswith("model")


def test_several_seeds_in_the_table_and_markdown(two_seeds):
    table = report.format_table(two_seeds)
    lines = table.splitlines()
    assert lines[0] == ("Means over seeds 3, 5; accuracies with the lowest and highest "
                        "seed's (min-max).")
    assert "test acc (min-max)" in lines[1]
    knn = two_seeds["models"][1]
    low, high = (100 * v for v in knn["spread"]["test_accuracy"])
    assert f"{100 * knn['test_accuracy']:.2f}% ({low:.2f}-{high:.2f})" in lines[4]
    md = report.render_markdown(two_seeds)
    assert "Seeds 3, 5: each one seeds the split and every model" in md
    assert "| model | seed 3 | seed 5 |" in md
    per_seed = [f"{100 * run['test_accuracy']:.2f}%" for run in knn["per_seed"]]
    assert f"| {knn['name']} | {per_seed[0]} | {per_seed[1]} |" in md


@pytest.mark.parametrize("seeds, match", [
    ([], "at least one seed"),
    (3, "seeds must be a sequence of integers"),
    ("0,1", "seeds must be a sequence of integers"),
    ([0, -1], r"each seed must be an integer in \[0, 4294967295\]; got -1"),
    ([0, 1.5], "each seed must be an integer"),
    ([1, 1], "seeds must differ"),
])
def test_bad_seeds_are_named(digits_data, seeds, match):
    with pytest.raises(ValueError, match=match):
        study.run_study(digits_data, recipes=[], baselines=["knn"], seeds=seeds, verbose=0)


def test_test_ece_and_reliability_of_each_row(small_results, digits_data):
    # The row's numbers are those of the test probabilities, by the estimator's own measure.
    from sklenet._calibration import expected_calibration_error

    results = study.run_study(digits_data, recipes=["default"], baselines=["knn", "svc"],
                              lenet_params={"max_epochs": 1}, max_train_samples=400,
                              max_test_samples=300, return_estimators=True, verbose=0)
    rows = {row["key"]: row for row in results["models"]}
    test = study._sample_rows(digits_data["y_test"], 300, 0)
    X_test, y_test = digits_data["X_test"][test], digits_data["y_test"][test]
    for key in ("lenet5-default", "knn"):
        model = results["estimators"][key]
        proba = model.predict_proba(X_test)
        row = rows[key]
        assert row["test_ece"] == pytest.approx(expected_calibration_error(
            y_test, proba, n_bins=15, labels=model.classes_))
        assert 0 < row["test_ece"] < 1
        curve = row["reliability"]
        assert sum(curve["counts"]) == len(y_test)
        # The counts weigh each bin's gap into the ECE.
        gaps = np.abs(np.subtract(curve["accuracy"], curve["confidence"]))
        assert np.dot(curve["counts"], gaps) / len(y_test) == pytest.approx(row["test_ece"])
        # The last point is the mean confidence of the highest non-empty bin.
        confidence = proba.max(axis=1)
        bins = np.ceil(confidence * 15)
        assert curve["confidence"][-1] == pytest.approx(confidence[bins == bins.max()].mean())
    assert rows["svc"]["test_ece"] is None and rows["svc"]["reliability"] is None
    table = report.format_table(results, markdown=True)
    assert "| test ECE |" in table
    assert f"| {100 * rows['knn']['test_ece']:.2f}% |" in table.splitlines()[3]


def test_several_seeds_average_the_ece(two_seeds):
    lenet = two_seeds["models"][0]
    values = [run["test_ece"] for run in lenet["per_seed"]]
    assert lenet["test_ece"] == pytest.approx(np.mean(values))
    assert lenet["spread"]["test_ece"] == [min(values), max(values)]


def test_a_diverged_training_is_a_training_error(digits_data):
    # Whether fit refuses the diverged network or returns it, no row is made of it and
    # log_loss never sees NaN probabilities.
    with pytest.raises(study.TrainingError, match=r"LeNet-5 \(library default\)"):
        study.run_study(digits_data, recipes=["default"], baselines=[],
                        lenet_params={"lr": 1e300, "max_epochs": 1}, max_train_samples=300,
                        verbose=0)


def test_non_finite_probabilities_are_a_training_error(digits_data, monkeypatch):
    # However a model gets there: probabilities with a NaN make no row.
    from sklearn.neighbors import KNeighborsClassifier

    def nan_proba(self, X):
        return np.full((len(X), len(self.classes_)), np.nan)

    monkeypatch.setattr(KNeighborsClassifier, "predict_proba", nan_proba)
    with pytest.raises(study.TrainingError, match="KNeighborsClassifier .* not finite"):
        study.run_study(digits_data, recipes=[], baselines=["knn"], max_train_samples=200,
                        verbose=0)


def test_the_study_samples_and_splits_as_the_estimator_does(digits_data):
    # One stratified split for the estimator's validation rows and the study's samples.
    from sklenet import _input

    y = digits_data["y_train"]
    train, valid = _input.split_validation(y, 0.2, 7)
    rows = study._sample_rows(y, len(y) - len(valid), 7)
    np.testing.assert_array_equal(np.sort(rows), train)
    counts = np.bincount(y[rows], minlength=10) / len(rows)
    np.testing.assert_allclose(counts, np.bincount(y, minlength=10) / len(y), atol=0.01)
