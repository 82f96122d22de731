"""The study's protocol (``sklenet.study``) and its report (``sklenet.report``)."""

import json
import math

import numpy as np
import pytest

from sklenet import plotting, report, study

FIGURES = {"samples.png", "loss.png", "accuracy.png", "confusion_matrix.png"}


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


def test_run_study_writes_nothing(digits_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study.run_study(digits_data, recipes=[], baselines=["knn"], max_train_samples=200,
                    verbose=0)
    assert list(tmp_path.iterdir()) == []


def test_every_row_is_built_alike(small_results):
    rows = small_results["models"]
    assert [r["key"] for r in rows] == ["lenet5-study", "knn", "svc"]
    common = set.intersection(*(set(r) for r in rows))
    assert {"history", "epochs"} == set(rows[0]) - common
    assert set(rows[1]) == set(rows[2]) == common
    assert rows[0]["params"] == {"pooling": "avg", "max_epochs": 1, "random_state": 0}
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
    ({"random_state": -1}, r"random_state must be an integer in \[0, 2\*\*32 - 1\]"),
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


def test_old_import_locations_keep_working():
    assert study.write_report is report.write_report
    assert study.format_table is report.format_table
    with pytest.raises(AttributeError):
        study.no_such_name  # noqa: B018


def test_write_report(small_results, digits_data, tmp_path):
    out = tmp_path / "new" / "out"
    written = report.write_report(small_results, out, data=digits_data)
    assert "figures" not in small_results  # the caller's dict is left alone
    assert set(written["figures"].values()) == FIGURES
    assert {p.name for p in out.iterdir()} == FIGURES | {"results.json", "results.md"}
    assert json.loads((out / "results.json").read_text()) == written
    md = (out / "results.md").read_text()
    assert "| LeNet-5 (study: tanh, avg pooling) |" in md and "![loss](loss.png)" in md


def test_write_report_without_data_skips_the_samples(small_results, tmp_path):
    written = report.write_report(small_results, tmp_path)
    assert set(written["figures"].values()) == FIGURES - {"samples.png"}


@pytest.mark.parametrize("error", [RuntimeError("disk trouble"), KeyboardInterrupt()])
def test_failed_write_leaves_the_directory_as_it_was(small_results, digits_data, tmp_path,
                                                     monkeypatch, error):
    (tmp_path / "results.json").write_text("{}\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def fail(*args, **kwargs):
        raise error

    # The last figure is drawn after the first ones are already on disk.
    monkeypatch.setattr(plotting, "_draw_confusion_matrix", fail)
    with pytest.raises(type(error)):
        report.write_report(small_results, tmp_path, data=digits_data)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_unwritable_output_directory_is_named(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write to output directory .*a-file/out"):
        report.prepare_output_dir(blocker / "out")
