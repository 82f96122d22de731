"""Output of the study: ``results.json``, ``results.md`` and figures.

:func:`sklenet.study.run_study` computes the results and writes nothing;
this module renders them. :func:`write_report` writes every file into a
hidden staging directory first and moves them into place only once all of
them are complete, ``results.json`` last: a run that fails or is interrupted
leaves the output directory as it was, and a ``results.json`` there always
belongs to a finished run.

Examples
--------
>>> from sklenet.report import format_table
>>> row = {"name": "knn", "train_accuracy": 0.99, "valid_accuracy": 0.98,
...        "test_accuracy": 0.975, "train_loss": None, "valid_loss": None,
...        "test_loss": None, "test_ece": None, "fit_time": 0.01, "predict_time": 0.2,
...        "n_params": None, "n_train": 1077}
>>> print(format_table({"models": [row]}, markdown=True))
| model | train acc | valid acc | test acc | ... | fit on |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| knn | 99.00% | 98.00% | 97.50% |  |  |  |  | 0.0 s | 0.2 s |  | 1077 |
"""

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["FIGURES", "prepare_output_dir", "format_table", "format_seconds",
           "render_markdown", "write_report"]

#: Figure name -> file name in the output directory.
FIGURES = {
    "samples": "samples.png",
    "loss": "loss.png",
    "accuracy": "accuracy.png",
    "confusion_matrix": "confusion_matrix.png",
    "calibration": "calibration.png",
    "features": "learned_features.png",
    "misclassified": "misclassified.png",
}

_HEADERS = ["model", "train acc", "valid acc", "test acc", "train loss", "valid loss",
            "test loss", "test ECE", "fit time", "predict time", "parameters", "fit on"]


def prepare_output_dir(out):
    """Check that the directory ``out`` can be made and written to; creates nothing.

    Call it before a long computation, so that a bad ``out`` fails at once
    and a run that ends early leaves no trace. :func:`write_report` makes
    the directory when it writes.

    Parameters
    ----------
    out : str or path
        The output directory; it and its parents may be missing.

    Returns
    -------
    out : pathlib.Path

    Raises
    ------
    OSError
        When ``out`` cannot be created or written to; the message names it.

    Examples
    --------
    >>> import tempfile
    >>> from sklenet.report import prepare_output_dir
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     out = prepare_output_dir(f"{tmp}/new/results")
    ...     out.exists()
    False
    """
    out_dir = Path(out)
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(existing))
        # An anonymous file: the probe leaves nothing behind, even on Ctrl-C.
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OSError(f"cannot write to output directory {str(out_dir)!r}: {reason}") from exc
    return out_dir


def _pct(value):
    return "" if value is None else f"{100 * value:.2f}%"


def _num(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def format_seconds(seconds):
    """A duration as the tables show it: seconds below two minutes, minutes above.

    Parameters
    ----------
    seconds : float
        The duration.

    Returns
    -------
    text : str

    Examples
    --------
    >>> from sklenet.report import format_seconds
    >>> format_seconds(4.25), format_seconds(150)
    ('4.2 s', '2.5 min')
    """
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _several_seeds(results):
    return len(results.get("protocol", {}).get("seeds", [0])) > 1


def _accuracy(row, part):
    """The accuracy, with the lowest and highest seed's when there are several."""
    text = _pct(row[f"{part}_accuracy"])
    spread = row.get("spread", {}).get(f"{part}_accuracy")
    if spread is None:
        return text
    return f"{text} ({100 * spread[0]:.2f}-{100 * spread[1]:.2f})"


def _headers(results):
    if not _several_seeds(results):
        return _HEADERS
    # Several seeds: every number is a mean; the accuracies also give their range.
    return [f"{h} (min-max)" if h.endswith(" acc") else h for h in _HEADERS]


def _table_rows(results):
    return [
        [
            m["name"],
            _accuracy(m, "train"),
            _accuracy(m, "valid"),
            _accuracy(m, "test"),
            _num(m["train_loss"]),
            _num(m["valid_loss"]),
            _num(m["test_loss"]),
            _pct(m["test_ece"]),
            format_seconds(m["fit_time"]),
            format_seconds(m["predict_time"]),
            "" if m["n_params"] is None else f"{m['n_params']:,}",
            str(m["n_train"]),
        ]
        for m in results["models"]
    ]


def format_table(results, markdown=False):
    """The results as a text table (plain for the terminal, or Markdown).

    Parameters
    ----------
    results : dict
        What :func:`sklenet.study.run_study` returned.
    markdown : bool, default=False
        Markdown pipe table instead of aligned plain text.

    Returns
    -------
    table : str

    Examples
    --------
    >>> from sklenet.report import format_table
    >>> from sklenet.study import run_study
    >>> results = run_study("digits", recipes=[], baselines=["knn"], verbose=0)
    >>> print(format_table(results))  # doctest: +NORMALIZE_WHITESPACE
    model ... fit on
    ------...
    KNeighborsClassifier (k=5, min-max scaling) ... 1077
    """
    rows = _table_rows(results)
    headers = _headers(results)
    if markdown:
        lines = ["| " + " | ".join(headers) + " |",
                 "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    lines = [fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows]
    if _several_seeds(results):
        seeds = ", ".join(map(str, results["protocol"]["seeds"]))
        lines.insert(0, f"Means over seeds {seeds}; accuracies with the lowest and highest "
                        f"seed's (min-max).")
    return "\n".join(lines)


def render_markdown(results):
    """The text of ``results.md``: the protocol, the table, each model's parameters.

    Parameters
    ----------
    results : dict
        What :func:`sklenet.study.run_study` returned (with ``figures`` when
        they were written).

    Returns
    -------
    text : str

    Examples
    --------
    >>> from sklenet.report import render_markdown
    >>> from sklenet.study import run_study
    >>> results = run_study("digits", recipes=[], baselines=["knn"], verbose=0)
    >>> print(render_markdown(results).splitlines()[0])
    # LeNet-5 and scikit-learn baselines on digits
    """
    d = results["dataset"]
    p = results["protocol"]
    seeds = p.get("seeds", [p["random_state"]])
    several = len(seeds) > 1
    seed_text = (f"Seeds {', '.join(map(str, seeds))}: each one seeds the split and every "
                 f"model, and each row gives the mean over the seeds, with the lowest and "
                 f"highest accuracy in parentheses (min-max); times are means per seed." if several
                 else f"Seed {p['random_state']}.")
    lines = [
        f"# LeNet-5 and scikit-learn baselines on {d['name']}",
        "",
        f"Training images: {d['n_train']}; validation: {d['n_valid']} "
        f"(stratified {p['validation_fraction']:.0%} of the training set); test: "
        f"{d['n_test']}. Training accuracy and loss are measured on "
        f"{d['n_train_eval']} training images. {seed_text} "
        f"Source: {d['source']}.",
        "",
        format_table(results, markdown=True),
        "",
        "Losses are log-losses (cross-entropy), given where the model has "
        "`predict_proba`; so is the test ECE, the expected calibration error of those "
        "probabilities (15 equal-width bins of the highest probability; 0 is perfectly "
        "calibrated). Predict time is for the test set. \"fit on\" is the number of "
        "training images the model was fitted on.",
        "",
    ]
    if several:
        lines += ["## Test accuracy of each seed", "",
                  "| model | " + " | ".join(f"seed {s}" for s in seeds) + " |",
                  "|---|" + "---:|" * len(seeds)]
        lines += ["| " + " | ".join([m["name"]] + [_pct(r["test_accuracy"])
                                                   for r in m["per_seed"]]) + " |"
                  for m in results["models"]]
        lines += ["", "The learning curves, confusion matrices and mistakes are those of "
                      f"seed {seeds[0]}.", ""]
    lines += [
        "## Models",
        "",
        "Parameters that differ from the estimator's defaults:",
        "",
    ]
    for m in results["models"]:
        params = ", ".join(f"{k}={v}" for k, v in m["params"].items()) or "defaults"
        note = f" ({m['notes']})" if m.get("notes") else ""
        lines.append(f"- **{m['name']}**{note}: {params}")
    if results.get("figures"):
        lines += ["", "## Figures", ""]
        lines += [f"![{key}]({fname})" for key, fname in results["figures"].items()]
    env = results.get("environment", {})
    if env:
        lines += ["", "## Environment", "",
                  ", ".join(f"{k} {v}" for k, v in env.items()),
                  "", f"Total time: {format_seconds(results.get('total_time', 0))}."]
    return "\n".join(lines) + "\n"


def write_report(results, out, *, data=None, figures=True):
    """Write ``results.json``, ``results.md`` and the figures into ``out``.

    All or nothing: the files are written into a hidden staging directory
    inside ``out`` and moved into place (``os.replace``) only when every one
    of them is complete, ``results.json`` last. On any exception, Ctrl-C
    included, ``out`` keeps the files it had.

    Parameters
    ----------
    results : dict
        What :func:`sklenet.study.run_study` returned.
    out : str or path
        The output directory; created when missing.
    data : dict, default=None
        What :func:`sklenet.study.load_study_data` returned; needed for the
        figures that show images (samples, what LeNet-5 learned, its
        mistakes).
    figures : bool, default=True
        Whether to draw the figures (:data:`FIGURES`): sample training
        images; loss and accuracy per epoch of each LeNet-5 row; the test
        confusion matrices; the reliability diagram of each LeNet-5 row's
        test probabilities; and, for the LeNet-5 row of the best test
        accuracy, C1's filters with the C1 and C3 feature maps of one test
        image per class (when ``results`` holds the ``estimators`` that
        ``run_study(return_estimators=True)`` adds) and its most confident
        mistakes on the test set.

    Returns
    -------
    results : dict
        A copy of ``results`` with ``figures``: figure name -> file name,
        and without ``estimators``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklenet.report import write_report
    >>> from sklenet.study import run_study
    >>> results = run_study("digits", recipes=[], baselines=["knn"], verbose=0)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     written = write_report(results, tmp, figures=False)
    ...     sorted(os.listdir(tmp))
    ['results.json', 'results.md']
    """
    out_dir = prepare_output_dir(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".sklenet-report-", dir=out_dir))
    try:
        results = dict(results)
        estimators = results.pop("estimators", None) or {}
        results["figures"] = (_write_figures(staging, results, data, estimators)
                              if figures else {})
        (staging / "results.md").write_text(render_markdown(results), encoding="utf-8")
        text = json.dumps(results, indent=2, allow_nan=False, default=_json_default)
        (staging / "results.json").write_text(text + "\n", encoding="utf-8")
        names = list(results["figures"].values()) + ["results.md", "results.json"]
        for name in names:
            _fsync(staging / name)
        for name in names:
            os.replace(staging / name, out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results


def _fsync(path):
    # The data reaches the disk before the rename makes it visible.
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"results hold a {type(value).__name__}, which JSON cannot store.")


def _grid(n_panels, width, height):
    """A figure of ``n_panels`` axes side by side, outside pyplot: nothing to close."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    return fig, fig.subplots(1, n_panels, squeeze=False)[0]


def _write_figures(directory, results, data, estimators):
    """Draw the figures into ``directory``; returns figure name -> file name."""
    from . import plotting

    name = results["dataset"]["name"]
    target_names = results["dataset"]["classes"]
    written = {}

    def save(fig, key):
        fig.savefig(directory / FIGURES[key], dpi=100)
        if fig.canvas.manager is not None:  # made by pyplot, which keeps it until closed
            import matplotlib.pyplot as plt

            plt.close(fig)
        written[key] = FIGURES[key]

    if data is not None:
        save(plotting.plot_samples(
            data["X_train"], data["y_train"], target_names=data["target_names"],
            n_per_class=3, image_shape=data["image_shape"],
            title=f"{name}: sample training images"), "samples")
    rows = [m for m in results["models"] if m.get("history")]
    if rows:
        for metric in ("loss", "accuracy"):
            fig, axes = _grid(len(rows), 5.2, 3.8)
            for ax in axes[1:]:
                ax.sharey(axes[0])
            for ax, row in zip(axes, rows):
                plotting.plot_history(row["history"], metric, ax=ax, title=row["name"],
                                      label_smoothing=row["label_smoothing"])
            fig.suptitle(f"{name}: training and validation {metric} per epoch")
            save(fig, metric)
        fig, axes = _grid(len(rows), 6.4, 6.0)
        for ax, row in zip(axes, rows):
            plotting.plot_confusion_matrix_counts(
                row["confusion_matrix"], display_labels=target_names, ax=ax,
                title=f"{row['name']}\ntest accuracy {row['test_accuracy']:.4f}")
        fig.suptitle(f"{name}: test confusion matrix")
        save(fig, "confusion_matrix")
        fig, axes = _grid(len(rows), 4.6, 4.6)
        for ax, row in zip(axes, rows):
            curve = row["reliability"]
            plotting.plot_reliability(curve["accuracy"], curve["confidence"],
                                      counts=curve["counts"], ece=row["test_ece"], ax=ax,
                                      label="test set", title=row["name"])
        fig.suptitle(f"{name}: reliability of the test probabilities")
        save(fig, "calibration")
    if rows and data is not None:
        _draw_best_lenet5(save, results, data, estimators, rows)
    return written


def _draw_best_lenet5(save, results, data, estimators, rows):
    """What the LeNet-5 row of the best test accuracy learned, and its worst mistakes."""
    from . import plotting

    name = results["dataset"]["name"]
    target_names = results["dataset"]["classes"]
    best = max(rows, key=lambda row: row["test_accuracy"])
    seeds = results["protocol"].get("seeds", [])
    which = best["name"] + (f", seed {seeds[0]}" if len(seeds) > 1 else "")
    if best["key"] in estimators:
        save(plotting.plot_learned_features(
            estimators[best["key"]], data["X_test"], data["y_test"],
            target_names=data["target_names"], title=f"{name}: what {which} learned"),
            "features")
    mistakes = best["misclassified"]
    save(plotting.plot_mistakes(
        data["X_test"][[m["index"] for m in mistakes]],
        [target_names[m["true"]] for m in mistakes],
        [target_names[m["predicted"]] for m in mistakes],
        [m["confidence"] for m in mistakes], image_shape=data["image_shape"],
        title=f"{name}: the most confident mistakes of {which} on the test set"),
        "misclassified")
