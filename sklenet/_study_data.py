"""The study's data: Fashion-MNIST, MNIST or scikit-learn's digits, as plain arrays.

:func:`load_study_data` puts the fetchers of :mod:`sklenet.datasets` and
scikit-learn's bundled digits behind one name, and says in terms of the
study (and its command line) why a data set is not there. The public names
are re-exported by :mod:`sklenet.study`, where they are documented.
"""

import os
from pathlib import Path

import numpy as np

__all__ = ["DATASETS", "N_CLASSES", "DatasetUnavailableError", "load_study_data"]

#: Data sets :func:`load_study_data` knows.
DATASETS = ("auto", "fashion-mnist", "mnist", "digits")

#: Classes of each data set ("auto" is Fashion-MNIST or its digits fallback),
#: known before loading so that the command line can check a split up front.
N_CLASSES = {"auto": 10, "fashion-mnist": 10, "mnist": 10, "digits": 10}

_TITLES = {"fashion-mnist": "Fashion-MNIST", "mnist": "MNIST"}


class DatasetUnavailableError(RuntimeError):
    """The requested data set could not be loaded (missing or corrupted files, no network)."""


# Tracebacks and the documentation name the class where users import it from.
DatasetUnavailableError.__module__ = "sklenet.study"


def load_study_data(dataset="auto", *, data_home=None, download=True, log=print):
    """Load the training and test images of the study.

    Parameters
    ----------
    dataset : {"auto", "fashion-mnist", "mnist", "digits"}, default="auto"
        ``"auto"`` loads Fashion-MNIST when its files can be found (locally,
        or by a download when ``download=True``) and otherwise falls back to
        scikit-learn's bundled digits, saying so in one line through ``log``:
        also when the download cache cannot be written. A file that is there
        but corrupted is an error, never a reason to fall back.
        ``"digits"`` (8x8 images, no official test set) is split 75/25,
        stratified, with a fixed seed.
    data_home : str or path, default=None
        Directory holding the original IDX files (see
        :mod:`sklenet.datasets`); None reads ``$SKLENET_DATA_HOME``. A
        directory named this way that does not exist is an error (a mistyped
        path), whatever ``dataset`` other than ``"digits"`` asks for.
    download : bool, default=True
        Whether missing files may be downloaded. A download says so in one
        line through ``log`` before it starts, then shows its progress on
        stderr (each mirror that answers, failed attempts of a mirror that
        was reached). Offline, nothing more is printed: if it fails, why is
        said once, through ``log`` or in the error.
    log : callable, default=print
        Receives progress and fallback messages.

    Returns
    -------
    data : dict
        ``name``, ``X_train``, ``y_train``, ``X_test``, ``y_test``,
        ``target_names``, ``image_shape`` (height, width), ``source``.

    Raises
    ------
    DatasetUnavailableError
        When an explicitly requested data set cannot be loaded, or when a
        data file is corrupted.

    Examples
    --------
    >>> from sklenet.study import load_study_data
    >>> data = load_study_data("digits")
    >>> data["X_train"].shape, data["image_shape"]
    ((1347, 64), (8, 8))
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {dataset!r}.")
    if dataset == "digits":
        return _digits()
    name = "mnist" if dataset == "mnist" else "fashion-mnist"
    title = _TITLES[name]
    _check_data_home(data_home, title)
    try:
        train, test = _fetch_idx(name, data_home, download, log)
    except OSError as exc:
        # Missing files, every download failed, or the cache cannot be written
        # (the operating system's errno): the data is not there, and "auto"
        # may fall back. sklenet's own errors about a file that is there but
        # not the official one carry no errno: never a reason to fall back.
        unreachable = isinstance(exc, FileNotFoundError) or exc.errno is not None
        if dataset != "auto" or not unreachable:
            raise DatasetUnavailableError(f"{title} is not available: {exc}") from exc
        log(f"{title} is not available ({_first_sentence(exc)}); using scikit-learn's "
            f"bundled digits (8x8 images) instead. Pass --data-home DIR with the {title} "
            f"files to run the study on its data set.")
        return _digits()
    except ValueError as exc:  # a file is there but malformed
        raise DatasetUnavailableError(f"{title} is not available: {exc}") from exc
    return {
        "name": name,
        "X_train": train.data,
        "y_train": train.target,
        "X_test": test.data,
        "y_test": test.target,
        "target_names": list(train.target_names),
        "image_shape": (28, 28),
        "source": str(Path(train.filenames[0]).parent),
    }


def _check_data_home(data_home, title):
    """A data home named by the caller or the environment must exist: say so before anything."""
    from .datasets import DATA_HOME_ENV

    origin = "data_home"
    if data_home is None:
        data_home, origin = os.environ.get(DATA_HOME_ENV, "").strip() or None, f"${DATA_HOME_ENV}"
    if data_home is not None and not Path(data_home).expanduser().is_dir():
        raise DatasetUnavailableError(
            f"{title} is not available: {origin} {str(data_home)!r} is not a directory.")


def _fetch_idx(name, data_home, download, log):
    """The training and the test Bunch of ``"fashion-mnist"`` or ``"mnist"``."""
    from . import datasets

    fetch = datasets.fetch_mnist if name == "mnist" else datasets.fetch_fashion_mnist

    def both(may_download):
        # A real download shows its progress; offline the fetchers print
        # nothing (a mirror that cannot be reached is tried once, silently),
        # so the caller's one line says what failed.
        return tuple(fetch(subset=subset, data_home=data_home,
                           download_if_missing=may_download, verbose=may_download)
                     for subset in ("train", "test"))

    if not download:
        return both(False)
    try:
        return both(False)
    except FileNotFoundError:
        log(f"Downloading {_TITLES[name]} into the scikit-learn data home ...")
    except OSError:  # not the official file: in the cache, a download replaces it
        pass
    return both(True)


def _first_sentence(exc):
    text = " ".join(str(exc).split())
    return text.split(". ")[0].rstrip(".")


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X_train, X_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=0.25,
        stratify=digits.target, random_state=0,
    )
    return {
        "name": "digits",
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "y_test": y_test,
        "target_names": [str(t) for t in digits.target_names],
        "image_shape": (8, 8),
        "source": "sklearn.datasets.load_digits (bundled)",
    }
