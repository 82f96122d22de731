"""The ``sklenet`` command (also ``python -m sklenet``).

``sklenet reproduce`` reproduces "Classification of Fashion-MNIST Dataset by
Using LeNet-5" and compares LeNet-5 with classic scikit-learn baselines; see
:func:`sklenet.study.run_study`. Run ``sklenet reproduce --help`` for the
options.
"""

import argparse
import os
import sys

__all__ = ["main", "build_parser"]

#: Set to 1/true/yes to forbid downloads (the same as ``--no-download``).
OFFLINE_ENV = "SKLENET_OFFLINE"

_QUICK = {"epochs": 3, "max_train_samples": 3000, "max_test_samples": 2000}


def _number(convert, accept, expected):
    """An argparse type: ``convert(text)``, rejected unless ``accept(value)``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, lambda v: v >= 1, "a positive integer")
_positive_float = _number(float, lambda v: v > 0, "a positive number")
_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def _choice_list(choices, what):
    def parse(text):
        items = [item.strip() for item in text.replace(" ", ",").split(",") if item.strip()]
        if items == ["none"]:
            return []
        if items == ["all"]:
            return list(choices)
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"invalid {what} {', '.join(map(repr, unknown)) or repr(text)} "
                f"(choose from {', '.join(choices)}, 'all' or 'none')"
            )
        return list(dict.fromkeys(items))

    return parse


def build_parser():
    """The argument parser of the ``sklenet`` command."""
    from .study import BASELINES, DATASETS, DEFAULT_BASELINES, RECIPES

    parser = argparse.ArgumentParser(
        prog="sklenet",
        description="LeNet-5 as a scikit-learn estimator: reproduce the Fashion-MNIST "
                    "LeNet-5 study.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"sklenet {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    rep = sub.add_parser(
        "reproduce",
        help="train LeNet-5 and sklearn baselines as in the study; write results and figures",
        description=(
            "Reproduce 'Classification of Fashion-MNIST Dataset by Using LeNet-5': train "
            "LeNet-5 on the training set with a stratified validation split, evaluate on "
            "the official test set, run scikit-learn baselines on the same split, and "
            "write results.json, results.md and figures (sample images, loss and "
            "accuracy per epoch, test confusion matrix) into --out."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = rep.add_argument_group("data")
    data.add_argument(
        "--dataset", choices=DATASETS, default="auto",
        help="'auto': Fashion-MNIST when it can be loaded, otherwise scikit-learn's "
             "bundled digits; an explicit name fails if the data is unavailable",
    )
    data.add_argument(
        "--data-home", metavar="DIR", default=None,
        help="directory holding the original IDX .gz files (default: $SKLENET_DATA_HOME, "
             "then the scikit-learn data home cache)",
    )
    data.add_argument(
        "--no-download", dest="download", action="store_false",
        help=f"never download missing data files (also when ${OFFLINE_ENV}=1)",
    )
    data.add_argument("--validation-fraction", type=_fraction, default=0.2,
                      help="stratified fraction of the training set held out for validation")
    data.add_argument("--max-train-samples", type=_positive_int, default=None, metavar="N",
                      help="use a stratified sample of N training images (before the "
                           "validation split), for a quick run")
    data.add_argument("--max-test-samples", type=_positive_int, default=None, metavar="N",
                      help="evaluate on a stratified sample of N test images")

    net = rep.add_argument_group(
        "LeNet-5", "These options override the recipe's values in every LeNet-5 row.")
    net.add_argument(
        "--recipes", type=_choice_list(list(RECIPES), "recipe"), default=["study", "default"],
        metavar="LIST",
        help="comma-separated LeNet-5 recipes, one result row each: 'study' (tanh, average "
             "pooling), 'default' (LeNet5Classifier()), 'strong' (relu, max pooling, "
             "shift/flip augmentation, AdamW, 60 epochs); default: study,default",
    )
    net.add_argument("--epochs", type=_positive_int, default=None,
                     help="training epochs (default: the recipe's, 20 for study and default)")
    net.add_argument("--batch-size", type=_positive_int, default=None,
                     help="mini-batch size (default: 128)")
    net.add_argument("--lr", type=_positive_float, default=None,
                     help="initial learning rate of Adam (default: the recipe's, 1e-3)")
    net.add_argument("--activation", choices=["tanh", "relu"], default=None,
                     help="activation (default: the recipe's)")
    net.add_argument("--pooling", choices=["avg", "max"], default=None,
                     help="subsampling layers (default: the recipe's)")
    net.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                     help="where LeNet-5 trains (default: auto)")

    base = rep.add_argument_group("baselines")
    base.add_argument(
        "--baselines", type=_choice_list(list(BASELINES), "baseline"),
        default=list(DEFAULT_BASELINES), metavar="LIST",
        help=f"comma-separated scikit-learn baselines from {', '.join(BASELINES)}, or 'all' "
             f"or 'none'; default: {','.join(DEFAULT_BASELINES)}",
    )
    base.add_argument("--svc-max-train-samples", type=_positive_int, default=10_000,
                      metavar="N", help="fit SVC on a stratified sample of N training images "
                                        "(kernel SVMs scale quadratically)")

    run = rep.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0, help="seed of the split and every model")
    run.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                     help="PyTorch CPU threads (default: PyTorch's choice; 1 is much faster "
                          "on a machine whose cores are busy with other work)")
    run.add_argument("--out", metavar="DIR", default="results",
                     help="directory for results.json, results.md and the figures")
    run.add_argument(
        "--quick", action="store_true",
        help=f"a fast smoke run: {_QUICK['epochs']} epochs, at most "
             f"{_QUICK['max_train_samples']} training and {_QUICK['max_test_samples']} test "
             f"images (explicit options win)",
    )
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print only the final table")
    run.add_argument("--progress", action="store_true",
                     help="also show a progress bar over the batches of each epoch")
    return parser


def _offline_env():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _reproduce(args):
    from .study import DatasetUnavailableError, format_table, run_study

    epochs = args.epochs
    max_train = args.max_train_samples
    max_test = args.max_test_samples
    if args.quick:
        epochs = epochs or _QUICK["epochs"]
        max_train = max_train or _QUICK["max_train_samples"]
        max_test = max_test or _QUICK["max_test_samples"]
    overrides = {
        "max_epochs": epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "activation": args.activation,
        "pooling": args.pooling,
        "device": args.device,
    }
    overrides = {k: v for k, v in overrides.items() if v is not None}
    verbose = 0 if args.quiet else (2 if args.progress else 1)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    try:
        results = run_study(
            args.dataset,
            data_home=args.data_home,
            download=args.download and not _offline_env(),
            recipes=args.recipes,
            lenet_params=overrides,
            baselines=args.baselines,
            validation_fraction=args.validation_fraction,
            max_train_samples=max_train,
            max_test_samples=max_test,
            baseline_max_train_samples={"svc": args.svc_max_train_samples},
            random_state=args.seed,
            out=args.out,
            verbose=verbose,
            log=lambda msg: print(msg, flush=True),
        )
    except DatasetUnavailableError as exc:
        _error(str(exc))
        return 1
    except OSError as exc:
        _error(str(exc))
        return 1
    print()
    print(format_table(results))
    return 0


def _error(message):
    print(f"sklenet: error: {message}", file=sys.stderr, flush=True)


def main(argv=None):
    """Entry point of the ``sklenet`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns
    -------
    status : int
        0 on success, 1 on a user error (reported in one line on stderr), 2 on
        invalid arguments (argparse), 130 on Ctrl-C.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return _reproduce(args)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
