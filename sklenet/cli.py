"""The ``sklenet`` command (also ``python -m sklenet``).

``sklenet reproduce`` reproduces "Classification of Fashion-MNIST Dataset by
Using LeNet-5" and compares LeNet-5 with classic scikit-learn baselines; see
:func:`sklenet.study.run_study`. Run ``sklenet reproduce --help`` for the
options.

Exit status: 0 on success, 1 when the run fails (one line on stderr), 2 for
invalid arguments (one line on stderr), 130 on Ctrl-C (SIGINT), 143 on
SIGTERM (both with one line on stderr, and no files written). Only light modules
are imported before the arguments are checked, so ``--help``, ``--version``
and mistakes are answered at once; PyTorch and scikit-learn are imported by
the command itself.
"""

import argparse
import inspect
import math
import os
import select
import signal
import sys
import threading

from ._version import __version__
from ._options import ACTIVATIONS, DEVICES, POOLINGS
from .study import (BASELINES, DATASETS, DEFAULT_BASELINES, N_CLASSES, RECIPES,
                    DatasetUnavailableError, ProtocolError, TrainingError, check_seed,
                    check_seeds, run_study)

__all__ = ["main", "build_parser"]

#: Set to 1/true/yes to forbid downloads (the same as ``--no-download``).
OFFLINE_ENV = "SKLENET_OFFLINE"

#: ``--quick``: enough images for LeNet-5 to show what it does, each recipe with its own
#: epochs, in about a minute on two cores. Training accuracy is measured on fewer
#: images, since predicting 10,000 of them takes SVC longer than fitting.
_QUICK = {"max_train_samples": 10_000, "max_test_samples": 2000, "train_eval_samples": 2000}

_TRAIN_EVAL_SAMPLES = inspect.signature(run_study).parameters["train_eval_samples"].default

#: Seconds a Ctrl-C (or SIGTERM) may take to end the run before the process is ended for it.
INTERRUPT_GRACE = 1.0

#: The signals that end a run, each with its one line on stderr; the exit status is
#: 128 + the signal's number, as a shell reports a process the signal ended.
_STOPPING = {
    signal.SIGINT: "sklenet: interrupted; no results were written",
    signal.SIGTERM: "sklenet: terminated; no results were written",
}


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: ``prog: error: message``.

    argparse prints the usage before the error; for a long command that
    buries the one line that matters. ``--help`` still shows the usage.
    """

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Shows a default once, where it is a value the user could type.

    A default of None means "the recipe's" or "PyTorch's" and a flag's
    default is its absence; their help says so in words instead.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or "%(default)" in text
                or action.default in (None, argparse.SUPPRESS)
                or isinstance(action.default, bool)):
            return text
        return f"{text} (default: %(default)s)"


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
_positive_float = _number(float, lambda v: 0 < v < math.inf, "a positive finite number")
_fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")


def _integer_or_text(text):
    # Text that is no integer goes on as it is, for the study's check to name it.
    try:
        return int(text)
    except ValueError:
        return text


def _seed(text):
    """An argparse type: a seed, checked as the study checks it."""
    try:
        return check_seed(_integer_or_text(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed_list(text):
    """An argparse type: distinct seeds separated by commas."""
    items = [item.strip() for item in text.replace(" ", ",").split(",") if item.strip()]
    try:
        return check_seeds([_integer_or_text(item) for item in items])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    parser = _Parser(
        prog="sklenet",
        description="LeNet-5 as a scikit-learn estimator: reproduce the Fashion-MNIST "
                    "LeNet-5 study.",
    )
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
            "accuracy per epoch, test confusion matrix, reliability diagram) into --out. "
            "The tables give each model's accuracies, log-losses and test calibration "
            "error (ECE). The files appear "
            "only when the run has finished; an interrupted or failed run leaves --out "
            "as it was."
        ),
        formatter_class=_HelpFormatter,
    )
    _add_data_options(rep.add_argument_group("data"))
    _add_lenet_options(rep.add_argument_group(
        "LeNet-5", "These options override the recipe's values in every LeNet-5 row."))
    _add_baseline_options(rep.add_argument_group("baselines"))
    _add_run_options(rep.add_argument_group("run"))
    return parser


def _add_data_options(data):
    """Where the images come from and how many are used."""
    data.add_argument(
        "--dataset", choices=DATASETS, default="auto",
        help="'auto': Fashion-MNIST when its files can be found, otherwise scikit-learn's "
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
    data.add_argument("--validation-fraction", type=_fraction, default=0.2, metavar="F",
                      help="stratified fraction of the training set held out for validation")
    data.add_argument("--max-train-samples", type=_positive_int, default=None, metavar="N",
                      help="use a stratified sample of N training images (before the "
                           "validation split), for a quick run (default: all)")
    data.add_argument("--max-test-samples", type=_positive_int, default=None, metavar="N",
                      help="evaluate on a stratified sample of N test images (default: all)")
    data.add_argument("--train-eval-samples", type=_positive_int, default=None, metavar="N",
                      help="measure the training accuracy and loss on a sample of N "
                           f"training images (default: {_TRAIN_EVAL_SAMPLES})")


def _of_recipes(param):
    """A recipe parameter's values, for the help: ``20 for study, ...``."""
    return ", ".join(f"{RECIPES[name].get(param, 'the estimator default')} for {name}"
                     for name in RECIPES)


def _add_lenet_options(net):
    """The LeNet-5 recipes, and what overrides their values."""
    net.add_argument(
        "--recipes", type=_choice_list(list(RECIPES), "recipe"), default="study,default",
        metavar="LIST",
        help="comma-separated LeNet-5 recipes, one result row each: 'study' (the study's "
             "tanh, average pooling and training), 'default' (LeNet5Classifier() as it "
             "comes), 'strong' (relu, max pooling, shift/flip/erasing augmentation, AdamW, "
             "one-cycle, test-time flips), or 'none'",
    )
    net.add_argument("--epochs", type=_positive_int, default=None,
                     help=f"training epochs (default: the recipe's: {_of_recipes('max_epochs')})")
    net.add_argument("--batch-size", type=_positive_int, default=None,
                     help=f"mini-batch size (default: the recipe's: {_of_recipes('batch_size')})")
    net.add_argument("--lr", type=_positive_float, default=None,
                     help=f"peak or initial learning rate (default: the recipe's: "
                          f"{_of_recipes('lr')})")
    net.add_argument("--activation", choices=ACTIVATIONS, default=None,
                     help="activation (default: the recipe's)")
    net.add_argument("--pooling", choices=POOLINGS, default=None,
                     help="subsampling layers (default: the recipe's)")
    net.add_argument("--device", choices=DEVICES, default=None,
                     help="where LeNet-5 trains (default: auto)")


def _add_baseline_options(base):
    """The scikit-learn baselines."""
    base.add_argument(
        "--baselines", type=_choice_list(list(BASELINES), "baseline"),
        default=",".join(DEFAULT_BASELINES), metavar="LIST",
        help=f"comma-separated scikit-learn baselines from {', '.join(BASELINES)}, or 'all' "
             f"or 'none'",
    )
    base.add_argument("--svc-max-train-samples", type=_positive_int, default=10_000,
                      metavar="N", help="fit SVC on a stratified sample of N training images "
                                        "(kernel SVMs scale quadratically)")


def _add_run_options(run):
    """Seeds, threads, output and verbosity."""
    seeds = run.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=_seed, default=0,
                       help="seed of the split and every model")
    seeds.add_argument("--seeds", type=_seed_list, default=None, metavar="LIST",
                       help="comma-separated seeds, e.g. 0,1,2: the whole run once per seed; "
                            "each row gives the mean accuracy with the lowest and highest "
                            "(min-max), and the mean times (default: --seed alone)")
    run.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                     help="the most PyTorch CPU threads LeNet-5 may use (default: PyTorch's "
                          "count); it uses fewer for small batches and when other work "
                          "keeps the cores busy")
    run.add_argument("--out", metavar="DIR", default="results",
                     help="directory for results.json, results.md and the figures")
    run.add_argument(
        "--quick", action="store_true",
        help=f"a run of about a minute on two cores: at most "
             f"{_QUICK['max_train_samples']:,} training and {_QUICK['max_test_samples']:,} "
             f"test images, training accuracy on {_QUICK['train_eval_samples']:,}, each "
             f"recipe's own epochs (explicit options win)",
    )
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print only the final table")
    run.add_argument("--progress", action="store_true",
                     help="also show a progress bar over the batches of each epoch")


def _check_args(parser, args):
    """Reject what argparse's types cannot see alone, before anything slow starts."""
    def fail(message):
        parser.exit(2, f"{parser.prog} {args.command}: error: {message}\n")

    if args.quick:
        for name, value in _QUICK.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    n_classes = N_CLASSES[args.dataset]
    if "svc" in args.baselines and args.svc_max_train_samples < n_classes:
        fail(f"argument --svc-max-train-samples: SVC needs at least one image per "
             f"class ({n_classes} classes), got {args.svc_max_train_samples}")
    if args.device not in (None, "auto", "cpu"):
        from ._options import resolve_device

        try:
            resolve_device(args.device)
        except ValueError as exc:
            fail(f"argument --device: {exc}")


def _offline_env():
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _reproduce(args):
    # The heavy imports (scikit-learn, PyTorch) happen here, once the
    # arguments are known to be good, and under main's Ctrl-C handling.
    from . import report, study

    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    out_dir = report.prepare_output_dir(args.out)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    say(f"Loading the data set ({args.dataset}) ...")
    download = args.download and not _offline_env()
    data = study.load_study_data(args.dataset, data_home=args.data_home, download=download,
                                 log=lambda msg: print(msg, flush=True))
    overrides = {
        "max_epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "activation": args.activation,
        "pooling": args.pooling,
        "device": args.device,
    }
    results = study.run_study(
        data,
        recipes=args.recipes,
        lenet_params={k: v for k, v in overrides.items() if v is not None},
        baselines=args.baselines,
        validation_fraction=args.validation_fraction,
        max_train_samples=args.max_train_samples,
        max_test_samples=args.max_test_samples,
        baseline_max_train_samples={"svc": args.svc_max_train_samples},
        train_eval_samples=args.train_eval_samples or _TRAIN_EVAL_SAMPLES,
        random_state=args.seed,
        seeds=args.seeds,
        return_estimators=True,
        verbose=0 if args.quiet else (2 if args.progress else 1),
        log=lambda msg: print(msg, flush=True),
    )
    say(f"Writing results.json, results.md and the figures to {out_dir} ...")
    results = report.write_report(results, out_dir, data=data)
    n = len(results["figures"])
    say(f"Wrote results.json, results.md and {n} figure{'' if n == 1 else 's'} to {out_dir}")
    print()
    print(report.format_table(results), flush=True)
    return 0


def _error(message):
    # One line, whatever the exception's message holds.
    print(f"sklenet: error: {' '.join(str(message).split())}", file=sys.stderr, flush=True)


class _Watchdog:
    """Ends the process soon after a Ctrl-C or SIGTERM that the main thread cannot act on.

    Python raises ``KeyboardInterrupt`` only when the main thread runs
    bytecode, so a long C call (libsvm fitting an SVC, a BLAS kernel) or a
    thread pool waiting for its workers would delay a Ctrl-C for minutes,
    and a library that catches the exception would swallow it. The C-level
    signal handler writes to the wakeup file descriptor at once, even then;
    this thread reads it, gives the main thread ``grace`` seconds to exit
    cleanly, and otherwise prints the one line and ends the process. Nothing
    is lost by that: the results are written only at the end, atomically.
    """

    def __init__(self, grace):
        self.grace = grace
        self.signum = None  # the first stopping signal received
        self.reported = False
        self._lock = threading.Lock()
        self._read, self._write = os.pipe()
        try:
            os.set_blocking(self._write, False)
            self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        except BaseException:
            os.close(self._read)
            os.close(self._write)
            raise
        threading.Thread(target=self._watch, name="sklenet-interrupt-watchdog",
                         daemon=True).start()

    def _watch(self):
        seen = False
        while True:
            timeout = self.grace if seen else None
            ready, _, _ = select.select([self._read], [], [], timeout)
            if not ready:  # grace is over: the main thread is stuck
                self.end()
            data = os.read(self._read, 64)
            if not data:  # disarmed
                os.close(self._read)
                return
            stopping = [s for s in _STOPPING if s in data]
            if stopping:
                if seen:  # a second signal: no more waiting
                    self.end()
                seen = True
                self.received(stopping[0])

    def received(self, signum):
        """Note the stopping signal, the first one only."""
        with self._lock:
            if self.signum is None:
                self.signum = signum

    def status(self):
        return 128 + (self.signum or signal.SIGINT)

    def report(self):
        """Print the signal's line once, whoever gets there first."""
        with self._lock:
            if self.reported:
                return
            self.reported = True
            line = _STOPPING[self.signum or signal.SIGINT]
            # os.write: the main thread may hold sys.stderr's lock.
            os.write(2, (line + "\n").encode())

    def end(self):
        """Print the line and end the process at once."""
        self.report()
        os._exit(self.status())

    def disarm(self):
        signal.set_wakeup_fd(self._previous)
        os.close(self._write)


def main(argv=None):
    """Entry point of the ``sklenet`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (without the program name); ``sys.argv[1:]`` when None.
        None also means "this is the program": a Ctrl-C or a SIGTERM then
        ends the process within about a second even when the main thread is
        busy in C code, and without the interpreter's slow shutdown.

    Returns
    -------
    status : int
        0 on success, 1 when the run fails, 2 on invalid arguments (both
        reported in one line on stderr), 130 on Ctrl-C; as the program, 143
        on SIGTERM.

    Examples
    --------
    >>> from sklenet.cli import main
    >>> main(["reproduce", "--seed", "-1"])
    Traceback (most recent call last):
    ...
    SystemExit: 2
    """
    program = argv is None
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    watchdog = previous_sigterm = None
    if program and threading.current_thread() is threading.main_thread():
        try:
            watchdog = _Watchdog(INTERRUPT_GRACE)
        except (OSError, ValueError):  # no pipe as wakeup fd (Windows): plain Ctrl-C
            watchdog = None
    if watchdog is not None:
        def terminate(signum, frame):
            # SIGTERM ends the run as Ctrl-C does, through the same clean-up.
            watchdog.received(signum)
            raise KeyboardInterrupt

        previous_sigterm = signal.signal(signal.SIGTERM, terminate)
    try:
        _check_args(parser, args)  # may import torch (--device), so under the watchdog
        return _reproduce(args)
    except KeyboardInterrupt:
        if watchdog is None:
            print(_STOPPING[signal.SIGINT], file=sys.stderr, flush=True)
            return 130
        watchdog.received(signal.SIGINT)  # unless a SIGTERM came first
        # Skip the interpreter's shutdown: modules cut off in mid-import and
        # thread pools still winding down would print errors or hang.
        sys.stdout.flush()
        watchdog.end()
    except ProtocolError as exc:
        if args.max_train_samples is None:
            _error(exc)
            return 1
        # Known once the data is loaded: too few images for the split.
        parser.exit(2, f"{parser.prog} {args.command}: error: argument --max-train-samples: "
                       f"{' '.join(str(exc).split())}\n")
    except (OSError, DatasetUnavailableError, TrainingError) as exc:
        # The data, the output directory, or a model that cannot be trained.
        _error(exc)
        return 1
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
        if watchdog is not None and not watchdog.reported:
            watchdog.disarm()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
