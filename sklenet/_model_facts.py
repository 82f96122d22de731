"""What a result row of the study says about a fitted model, as JSON data.

Any fitted classifier of the study, LeNet-5 or a scikit-learn baseline
(alone or at the end of a Pipeline), is described by its size, a note on
what it stores, and the parameters that differ from its class defaults.
Each function looks at fitted attributes only, so a new baseline needs no
code here unless it stores something new.

Examples
--------
>>> from sklearn.neighbors import KNeighborsClassifier
>>> from sklenet._model_facts import model_notes, shown_params
>>> knn = KNeighborsClassifier(n_neighbors=3).fit([[0.0], [1.0], [2.0]], [0, 1, 1])
>>> model_notes(knn), shown_params(knn)
('stores 3 training images', {'n_neighbors': 3})
"""

import math

import numpy as np

__all__ = ["n_params", "model_notes", "shown_params", "jsonable"]


def _final(model):
    return model.steps[-1][1] if hasattr(model, "steps") else model


def n_params(model):
    """The number of learned parameters, or None for models without weights."""
    final = _final(model)
    if hasattr(final, "net_"):  # LeNet-5
        return int(sum(p.numel() for p in final.net_.module_.parameters()))
    if hasattr(final, "coefs_"):  # MLP
        return int(sum(c.size for c in final.coefs_) + sum(b.size for b in final.intercepts_))
    if hasattr(final, "coef_") and hasattr(final, "intercept_"):  # linear
        return int(final.coef_.size + np.size(final.intercept_))
    return None


def model_notes(model):
    """A short note on what the model holds (support vectors, trees, ...), or None."""
    final = _final(model)
    if hasattr(final, "support_vectors_"):
        return f"{len(final.support_vectors_)} support vectors"
    if hasattr(final, "estimators_") and hasattr(final.estimators_[0], "tree_"):
        nodes = sum(t.tree_.node_count for t in final.estimators_)
        return f"{len(final.estimators_)} trees, {nodes} nodes"
    if hasattr(final, "n_samples_fit_"):
        return f"stores {final.n_samples_fit_} training images"
    if hasattr(final, "n_iter_") and not hasattr(final, "net_"):
        return f"{int(np.max(final.n_iter_))} iterations"
    return None


def shown_params(model):
    """Preprocessing steps, then the final estimator's parameters that differ from
    its class defaults (``verbose`` says nothing about the model, so it is left out)."""
    final = _final(model)
    params = {}
    if hasattr(model, "steps"):
        params["preprocessing"] = [type(step).__name__ for _, step in model.steps[:-1]]
    defaults = type(final)().get_params(deep=False)
    params.update(
        (k, v) for k, v in final.get_params(deep=False).items()
        if k != "verbose" and (k not in defaults or repr(v) != repr(defaults[k]))
    )
    return params


def jsonable(value):
    """``value`` with numpy scalars, tuples, classes and non-finite floats made JSON data.

    Examples
    --------
    >>> import numpy as np
    >>> from sklenet._model_facts import jsonable
    >>> jsonable({"lr": np.float32(0.5), "sizes": (1, 2), "best": float("inf")})
    {'lr': 0.5, 'sizes': [1, 2], 'best': 'inf'}
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)
