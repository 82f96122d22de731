"""End-to-end tests of the ``sklenet reproduce`` command (never touches the network)."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from sklenet import _download, cli, datasets

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURES = ("samples.png", "loss.png", "accuracy.png", "confusion_matrix.png",
           "calibration.png", "learned_features.png", "misclassified.png")
ROW_KEYS = {
    "key", "name", "kind", "params", "train_accuracy", "train_loss", "valid_accuracy",
    "valid_loss", "test_accuracy", "test_loss", "test_ece", "fit_time", "predict_time",
    "n_params", "n_train", "notes", "confusion_matrix", "reliability",
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    """No downloads, no user data directories, no real cache."""
    def no_network(url, *args, **kwargs):
        raise AssertionError(f"the tests must not download anything ({url})")

    monkeypatch.setattr(_download, "_download_verified", no_network)
    monkeypatch.setenv(cli.OFFLINE_ENV, "1")
    monkeypatch.delenv(datasets.DATA_HOME_ENV, raising=False)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path_factory.mktemp("sklearn_data")))


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("digits") / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(cli.OFFLINE_ENV, "1")
        from io import StringIO

        buffer = StringIO()
        mp.setattr(sys, "stdout", buffer)
        code = cli.main(["reproduce", "--dataset", "digits", "--quick", "--epochs", "2",
                         "--out", str(out)])
    return code, buffer.getvalue(), out


def test_digits_quick_end_to_end(digits_run):
    code, stdout, out = digits_run
    assert code == 0
    for name in ("results.json", "results.md") + FIGURES:
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "digits"
    assert results["dataset"]["n_valid"] == pytest.approx(
        0.2 * (results["dataset"]["n_train"] + results["dataset"]["n_valid"]), abs=1)
    keys = [m["key"] for m in results["models"]]
    assert keys == ["lenet5-study", "lenet5-default", "logistic-regression",
                    "random-forest", "mlp", "knn", "svc"]
    for row in results["models"]:
        assert ROW_KEYS <= set(row), row["key"]
        for part in ("train", "valid", "test"):
            assert 0 <= row[f"{part}_accuracy"] <= 1
        assert row["fit_time"] >= 0 and row["predict_time"] >= 0
        assert len(row["confusion_matrix"]) == 10
        assert sum(map(sum, row["confusion_matrix"])) == results["dataset"]["n_test"]
    lenet = [m for m in results["models"] if m["kind"] == "lenet5"]
    assert [m["n_params"] for m in lenet] == [61706, 61706]
    # Parameters that differ from LeNet5Classifier's defaults.
    assert lenet[0]["params"] == {"pooling": "avg", "max_epochs": 2, "batch_size": 128,
                                  "lr": 1e-3, "lr_schedule": "cosine", "optimizer": "adam",
                                  "weight_decay": 0.0, "precision": "float32",
                                  "calibration": None, "random_state": 0}
    assert lenet[1]["params"] == {"max_epochs": 2, "random_state": 0}
    for row in lenet:
        assert len(row["history"]) == 2
        assert {"train_loss", "valid_loss", "train_accuracy", "valid_accuracy"} <= set(
            row["history"][0])
        assert row["test_loss"] > 0
    for row in results["models"][:-1]:  # log-loss and ECE wherever there is predict_proba
        assert row["test_loss"] > 0 and 0 < row["test_ece"] < 1
        assert sum(row["reliability"]["counts"]) == results["dataset"]["n_test"]
    svc = results["models"][-1]
    assert svc["test_loss"] is None and svc["test_ece"] is None  # no predict_proba
    assert svc["n_params"] is None
    assert results["models"][2]["n_params"] == 65 * 10  # logistic regression: 64x10 + 10
    for name in FIGURES:
        width, height = _png_size(out / name)
        assert 200 <= width <= 4000 and 150 <= height <= 3000, (name, width, height)
        assert 5_000 < (out / name).stat().st_size < 2_000_000
    md = (out / "results.md").read_text()
    assert "| LeNet-5 (study: tanh, avg pooling) |" in md
    assert "test acc" in md and "| test ECE |" in md
    assert "![calibration](calibration.png)" in md
    # Progress and the final table on the terminal.
    assert "epoch" in stdout and "valid_loss" in stdout
    assert "[svc]" in stdout
    assert stdout.rstrip().splitlines()[-1].startswith("SVC")


def test_fashion_mnist_subset(fashion_dir, tmp_path, capsys):
    out = tmp_path / "fashion"
    code, stdout, err = _run(
        ["reproduce", "--dataset", "fashion-mnist", "--data-home", str(fashion_dir),
         "--max-train-samples", "1500", "--max-test-samples", "1000", "--epochs", "1",
         "--recipes", "study", "--baselines", "logistic-regression,knn", "--quiet",
         "--out", str(out)], capsys)
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    d = results["dataset"]
    assert d["name"] == "fashion-mnist"
    assert (d["n_train"], d["n_valid"], d["n_test"]) == (1200, 300, 1000)
    assert d["classes"][0] == "T-shirt/top" and len(d["classes"]) == 10
    assert [m["key"] for m in results["models"]] == [
        "lenet5-study", "logistic-regression", "knn"]
    assert results["models"][0]["test_accuracy"] > 0.3  # chance is 0.1; 1 short epoch
    assert results["models"][1]["n_params"] == 785 * 10
    for name in FIGURES:
        _png_size(out / name)
    # --quiet: no per-epoch lines, only the table.
    assert "epoch" not in stdout
    assert "LeNet-5 (study: tanh, avg pooling)" in stdout


def test_unknown_dataset_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--dataset", "cifar10", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'cifar10'" in err


def test_unknown_baseline_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--baselines", "svc,xgboost", "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "'xgboost'" in capsys.readouterr().err


def test_missing_fashion_mnist_fails_clearly(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stdout, err = _run(
        ["reproduce", "--dataset", "fashion-mnist", "--data-home", str(empty),
         "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sklenet: error: Fashion-MNIST is not available")
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_auto_falls_back_to_digits(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    code, stdout, err = _run(
        ["reproduce", "--data-home", str(empty), "--quick", "--epochs", "1",
         "--recipes", "study", "--baselines", "none", "--out", str(out)], capsys)
    assert code == 0, err
    fallback = [line for line in stdout.splitlines() if "Fashion-MNIST is not available" in line]
    assert len(fallback) == 1
    assert "digits" in fallback[0]
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["name"] == "digits"
    assert [m["key"] for m in results["models"]] == ["lenet5-study"]


def test_unwritable_out_fails_clearly(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, stdout, err = _run(
        ["reproduce", "--dataset", "digits", "--out", str(blocker / "results")], capsys)
    assert code == 1
    assert err.startswith("sklenet: error: cannot write to output directory")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_no_subcommand_prints_help(capsys):
    assert cli.main([]) == 2
    assert "reproduce" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["reproduce", "--help"]])
def test_python_m_sklenet_help(args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    proc = subprocess.run([sys.executable, "-m", "sklenet", *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "reproduce" in proc.stdout
    if "reproduce" in args:
        for option in ("--dataset", "--data-home", "--epochs", "--batch-size", "--lr",
                       "--activation", "--pooling", "--validation-fraction", "--baselines",
                       "--max-train-samples", "--seed", "--out", "--quick", "--recipes"):
            assert option in proc.stdout


@pytest.mark.parametrize("args, argument", [
    (["--lr", "inf"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "1099511627776"], "--seed"),
    (["--max-train-samples", "5"], "--max-train-samples"),
    (["--validation-fraction", "0.99", "--max-train-samples", "20"], "--max-train-samples"),
    (["--validation-fraction", "1"], "--validation-fraction"),
    (["--svc-max-train-samples", "3"], "--svc-max-train-samples"),
    (["--epochs", "0"], "--epochs"),
    (["--activation", "sigmoid"], "--activation"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, argument, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", *args, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("sklenet reproduce: error: argument " + argument), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_split_error_says_what_works(capsys):
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--max-train-samples", "5"])
    assert "use at least 46 images" in capsys.readouterr().err


def test_cuda_without_cuda_is_an_argument_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--device", "cuda", "--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("sklenet reproduce: error: argument --device: device='cuda'")


def _reproduce_help(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def test_help_shows_each_default_once_and_right(capsys):
    text = " ".join(_reproduce_help(capsys).split())
    assert "(default: None)" not in text
    assert "(default: True)" not in text and "(default: False)" not in text
    # One default per option: the text between two options holds at most one.
    for chunk in text.split(" --")[1:]:
        assert chunk.count("default:") <= 1, chunk
    for shown in ("(default: auto)", "(default: 0.2)", "(default: study,default)",
                  "(default: 0)", "(default: results)", "(default: 10000)",
                  "(default: the recipe's: 128 for study"):
        assert shown in text, shown


def test_choices_come_from_the_options_module():
    from sklenet import _options

    reproduce = cli.build_parser()._subparsers._group_actions[0].choices["reproduce"]
    choices = {action.dest: action.choices for action in reproduce._actions}
    assert tuple(choices["activation"]) == _options.ACTIVATIONS
    assert tuple(choices["pooling"]) == _options.POOLINGS
    assert tuple(choices["device"]) == _options.DEVICES


@pytest.mark.parametrize("dataset", ["auto", "fashion-mnist"])
def test_corrupted_file_in_data_home_is_named(dataset, tmp_path, capsys):
    # Every file is there, one is not the official one: an error naming it,
    # never a silent fallback to the digits.
    home = tmp_path / "home"
    home.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (home / name).write_bytes(b"not the official file")
    code, stdout, err = _run(
        ["reproduce", "--dataset", dataset, "--data-home", str(home), "--quick",
         "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("sklenet: error: Fashion-MNIST is not available")
    assert str(home / "train-images-idx3-ubyte.gz") in err
    assert "digits" not in stdout
    assert not (tmp_path / "out").exists()


def test_split_the_data_cannot_carry_fails_in_one_line(tmp_path, capsys):
    # Known only once the data is loaded: 1347 digits, 99.5% of them for validation.
    code, stdout, err = _run(
        ["reproduce", "--dataset", "digits", "--validation-fraction", "0.995",
         "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("sklenet: error: max_train_samples=None and validation_fraction="
                          "0.995 on digits: ")
    assert not (tmp_path / "out").exists()


def test_ctrl_c_in_process_returns_130(tmp_path, capsys, monkeypatch):
    # Called with argv (a test, an embedding program): no watchdog, no os._exit.
    from sklenet import study

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_study", interrupted)
    code, stdout, err = _run(["reproduce", "--dataset", "digits", "--out",
                              str(tmp_path / "out")], capsys)
    assert code == 130
    assert err == "sklenet: interrupted; no results were written\n"
    assert not (tmp_path / "out").exists()


def test_seeds_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = _run(
        ["reproduce", "--dataset", "digits", "--max-train-samples", "300", "--epochs", "1",
         "--recipes", "default", "--baselines", "knn", "--seeds", "0,1", "--out", str(out)],
        capsys)
    assert code == 0, err
    assert "Seed 0 (1 of 2)" in stdout and "Seed 1 (2 of 2)" in stdout
    results = json.loads((out / "results.json").read_text())
    assert results["protocol"]["seeds"] == [0, 1]
    for row in results["models"]:
        assert [run["seed"] for run in row["per_seed"]] == [0, 1]
        assert set(row["spread"]) >= {"train_accuracy", "valid_accuracy", "test_accuracy",
                                      "fit_time"}
    table = stdout.split("\n\n")[-1]
    assert table.startswith("Means over seeds 0, 1")
    assert "test acc (min-max)" in table
    assert "| model | seed 0 | seed 1 |" in (out / "results.md").read_text()


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0,x"], "argument --seeds: each seed must be an integer in [0, 4294967295]; "
                         "got 'x'"),
    (["--seeds", "1,1"], "argument --seeds: seeds must differ from one another"),
    (["--seeds", ","], "argument --seeds: seeds must hold at least one seed"),
    (["--seed", "x"], "argument --seed: seed must be an integer in [0, 4294967295]; got 'x'"),
    (["--seed", "1", "--seeds", "0,1"], "argument --seeds: not allowed with argument --seed"),
])
def test_bad_seeds_are_one_line_and_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["reproduce", *args, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def _arguments_of_run_study(argv, monkeypatch, capsys):
    """What ``sklenet reproduce ARGV`` passes to run_study (which is not run)."""
    from sklenet import study

    seen = {}

    def record(*args, **kwargs):
        seen.update(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(study, "run_study", record)
    assert cli.main(["reproduce", "--dataset", "digits", *argv]) == 130
    capsys.readouterr()
    return seen


def test_quick_run_settings(tmp_path, monkeypatch, capsys):
    kwargs = _arguments_of_run_study(["--quick", "--out", str(tmp_path)], monkeypatch, capsys)
    # Each recipe keeps its own epochs; enough images for LeNet-5 to learn.
    assert kwargs["lenet_params"] == {}
    assert (kwargs["max_train_samples"], kwargs["max_test_samples"],
            kwargs["train_eval_samples"]) == (10_000, 2000, 2000)
    assert kwargs["seeds"] is None and kwargs["random_state"] == 0
    assert kwargs["return_estimators"] is True
    # Explicit options win.
    kwargs = _arguments_of_run_study(
        ["--quick", "--epochs", "3", "--max-train-samples", "500", "--train-eval-samples",
         "100", "--seeds", "2,7", "--out", str(tmp_path)], monkeypatch, capsys)
    assert kwargs["lenet_params"] == {"max_epochs": 3}
    assert (kwargs["max_train_samples"], kwargs["train_eval_samples"]) == (500, 100)
    assert kwargs["seeds"] == [2, 7]
    # Without --quick: run_study's own default.
    kwargs = _arguments_of_run_study(["--out", str(tmp_path)], monkeypatch, capsys)
    assert kwargs["train_eval_samples"] == 10_000 and kwargs["max_train_samples"] is None


def test_a_diverging_training_is_one_line(tmp_path, capsys):
    # lr=1e300 drives the loss to NaN: one line that names the model, never log_loss's
    # "Input contains NaN" traceback.
    code, stdout, err = _run(
        ["reproduce", "--dataset", "digits", "--lr", "1e300", "--recipes", "default",
         "--baselines", "none", "--max-train-samples", "300", "--epochs", "1", "--quiet",
         "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("sklenet: error: LeNet-5 (library default)"), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_auto_falls_back_when_the_cache_cannot_be_written(tmp_path, monkeypatch, capsys):
    # Downloads allowed, but the download cache lies under a regular file.
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.delenv(cli.OFFLINE_ENV)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(blocker / "sklearn_data"))
    out = tmp_path / "out"
    code, stdout, err = _run(
        ["reproduce", "--max-train-samples", "300", "--epochs", "1", "--recipes", "study",
         "--baselines", "none", "--out", str(out)], capsys)
    assert code == 0, err
    fallback = [line for line in stdout.splitlines() if "Fashion-MNIST is not available" in line]
    assert len(fallback) == 1 and "digits" in fallback[0], stdout
    assert json.loads((out / "results.json").read_text())["dataset"]["name"] == "digits"
    # An explicit data set cannot fall back: one line.
    code, stdout, err = _run(
        ["reproduce", "--dataset", "fashion-mnist", "--out", str(out)], capsys)
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("sklenet: error: Fashion-MNIST is not available")


@pytest.mark.parametrize("dataset", ["fashion-mnist", "auto"])
def test_a_missing_data_home_is_said_first_and_once(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(cli.OFFLINE_ENV)  # downloads allowed; none may be tried
    missing = tmp_path / "missing"
    code, stdout, err = _run(
        ["reproduce", "--dataset", dataset, "--data-home", str(missing),
         "--out", str(tmp_path / "out")], capsys)
    assert code == 1
    assert err == f"sklenet: error: Fashion-MNIST is not available: data_home " \
                  f"{str(missing)!r} is not a directory.\n"
    assert "Downloading" not in stdout + err
    # The same for a data home named by the environment.
    monkeypatch.setenv(datasets.DATA_HOME_ENV, str(missing))
    code, stdout, err = _run(["reproduce", "--dataset", dataset,
                              "--out", str(tmp_path / "out")], capsys)
    assert code == 1 and f"${datasets.DATA_HOME_ENV} {str(missing)!r}" in err, err


# The real downloader, which the autouse fixture replaces: for the tests that play
# the network's part at the socket level.
_DOWNLOAD_VERIFIED = _download._download_verified


def test_offline_fallback_is_one_line_not_a_list_of_retries(tmp_path, monkeypatch, capsys):
    # No network: no host name resolves, at once (whatever the real DNS does here).
    import socket
    import urllib.parse

    lookups, sleeps = [], []

    def getaddrinfo(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(_download, "_download_verified", _DOWNLOAD_VERIFIED)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(_download.time, "sleep", sleeps.append)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.delenv(cli.OFFLINE_ENV)
    code, stdout, err = _run(
        ["reproduce", "--max-train-samples", "300", "--epochs", "1", "--recipes", "study",
         "--baselines", "none", "--quiet", "--out", str(tmp_path / "out")], capsys)
    assert code == 0, err
    assert err == ""
    loading = stdout.split("\n\n")[0].splitlines()
    # What is tried, then why it failed and what happens instead: once each.
    assert loading[0] == "Downloading Fashion-MNIST into the scikit-learn data home ..."
    assert loading[1].startswith("Fashion-MNIST is not available (") and "digits" in loading[1]
    assert "Name or service not known" in loading[1]
    assert len(loading) == 2, loading
    # Each official mirror looked up once for the first file, none retried (issue 17).
    assert lookups == [urllib.parse.urlsplit(m).hostname
                       for m in datasets._FASHION_MNIST.mirrors]
    assert sleeps == []


def test_a_real_download_shows_its_progress(tmp_path, monkeypatch, capsys, fashion_dir):
    # The official mirrors replaced by a local one serving the real files.
    import dataclasses
    import functools
    import http.server
    import threading

    from sklenet import study

    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(fashion_dir))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    mirror = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        monkeypatch.setattr(datasets, "_FASHION_MNIST", dataclasses.replace(
            datasets._FASHION_MNIST, mirrors=(mirror,)))
        monkeypatch.setattr(_download, "_download_verified", _DOWNLOAD_VERIFIED)
        monkeypatch.setenv("no_proxy", "*")
        # What `sklenet reproduce` loads its data with (the study itself is not run).
        data = study.load_study_data("fashion-mnist", download=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert data["X_train"].shape == (60000, 784)
    stdout, err = capsys.readouterr()
    assert stdout == "Downloading Fashion-MNIST into the scikit-learn data home ...\n"
    # Each file announced once on stderr, when the mirror answers, then its progress bar.
    announced = [line.rsplit("\r", 1)[-1] for line in err.split("\n")
                 if "Downloading" in line]
    assert announced == [f"Downloading {mirror}{f}" for f in datasets._FASHION_MNIST.files]
    assert "%|" in err
