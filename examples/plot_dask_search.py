"""
Hyper-parameter search on a Dask cluster
========================================

scikit-learn parallelizes ``GridSearchCV`` with joblib, and joblib can hand the
work to a `Dask <https://distributed.dask.org>`_ cluster: every
(parameter combination, cross-validation split) fit of
:class:`~sklenet.LeNet5Classifier` then runs on a Dask worker, on this machine
or on a hundred. Nothing in the search code changes; only the joblib backend
does.

By default this script starts a local cluster of two worker processes. Point
it at a real cluster with ``--scheduler-address tcp://scheduler-host:8786``
(see ``docs/dask.md`` for starting one, and for GPU workers).

Needs ``pip install sklenet[dask]``. Run it as a script: Dask starts its
worker processes with *spawn*, so the code sits under
``if __name__ == "__main__":``.
"""

import argparse
import time

import joblib
import numpy as np
from distributed import Client, LocalCluster
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV

from sklenet import LeNet5Classifier


def make_search(device="cpu"):
    """A small search: 2 activations x 2 learning rates x 3 folds = 12 fits."""
    return GridSearchCV(
        LeNet5Classifier(max_epochs=3, random_state=0, device=device),
        {"activation": ["tanh", "relu"], "lr": [1e-3, 3e-3]},
        cv=3,
        verbose=1,
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--scheduler-address", default=None,
        help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
             "(default: start a local cluster)",
    )
    parser.add_argument("--n-workers", type=int, default=2,
                        help="worker processes of the local cluster (default: 2)")
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda", "auto"],
        help="where each fit trains; 'cuda' needs a GPU on every worker "
             "(one worker per GPU, see docs/dask.md)",
    )
    args = parser.parse_args(argv)

    X, y = load_digits(return_X_y=True)

    if args.scheduler_address:
        client = Client(args.scheduler_address)
        cluster = None
    else:
        # One thread per worker: each fit is already a single-threaded torch job
        # there, and more threads than cores only make them fight.
        cluster = LocalCluster(n_workers=args.n_workers, threads_per_worker=1,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        workers = client.scheduler_info()["workers"]
        print(f"Dask cluster: {client.scheduler.address}, {len(workers)} workers")
        # The workers need sklenet (and the same torch/sklearn versions) installed.
        search = make_search(args.device)
        start = time.perf_counter()
        with joblib.parallel_config(backend="dask"):
            search.fit(X, y)
        print(f"search took {time.perf_counter() - start:.1f} s")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    res = search.cv_results_
    print("rank  activation  lr      accuracy (mean +- std)  fit time (s)")
    for i in np.argsort(res["rank_test_score"]):
        print(f"{res['rank_test_score'][i]:4d}  {res['param_activation'][i]:10s}  "
              f"{res['param_lr'][i]:<6g}  {res['mean_test_score'][i]:.3f} +- "
              f"{res['std_test_score'][i]:.3f}          {res['mean_fit_time'][i]:.1f}")
    print("best:", search.best_params_, f"accuracy {search.best_score_:.3f}")
    return search


if __name__ == "__main__":
    main()
