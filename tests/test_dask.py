"""Hyper-parameter search on a real dask.distributed cluster through joblib."""

import contextlib

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from sklenet import LeNet5Classifier

distributed = pytest.importorskip("distributed")


@contextlib.contextmanager
def _torch_threads(n):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _search():
    return GridSearchCV(
        LeNet5Classifier(max_epochs=2, random_state=0, device="cpu"),
        {"lr": [1e-3, 3e-3]},
        cv=2,
    )


def test_grid_search_on_local_dask_cluster_equals_local_run(digits):
    X, y = digits
    X, y = X[:800], y[:800]
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        # The cluster is up before its workers have all registered.
        client.wait_for_workers(2, timeout=120)
        # Dask workers run torch with one thread; the refit of the best model
        # and the local search run the same way here, so that both searches do
        # exactly the same arithmetic.
        with distributed.get_task_stream(client) as stream, _torch_threads(1):
            with joblib.parallel_backend("dask"):
                on_dask = _search().fit(X, y)
        worker_threads = set(client.run(torch.get_num_threads).values())
    assert stream.data, "no task ran on the Dask workers"
    assert worker_threads == {1}
    with _torch_threads(1):
        local = _search().fit(X, y)

    for key in ["split0_test_score", "split1_test_score", "mean_test_score",
                "rank_test_score"]:
        np.testing.assert_array_equal(on_dask.cv_results_[key], local.cv_results_[key])
    assert on_dask.best_params_ == local.best_params_
    assert np.array_equal(on_dask.predict_proba(X), local.predict_proba(X))
