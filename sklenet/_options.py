"""The one list of every named choice the estimator, CLI, exports and file formats accept.

Parameter constraints, ``argparse`` choices, export checks and JSON codecs all
derive from these tuples, so adding a choice here is the whole change.
"""

__all__ = [
    "ACTIVATIONS",
    "POOLINGS",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "PRECISIONS",
    "INFERENCE_PRECISIONS",
    "DEVICES",
    "resolve_device",
    "available_device",
]

ACTIVATIONS = ("tanh", "relu")
POOLINGS = ("max", "avg")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("onecycle", "cosine", "constant")
PRECISIONS = ("float32", "bfloat16", "auto")
INFERENCE_PRECISIONS = ("float32", "bfloat16")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device):
    """The torch device string for a ``device`` parameter: ``"cpu"`` or ``"cuda"``.

    ``"auto"`` picks CUDA when PyTorch sees a device; an explicit ``"cuda"``
    without one raises the ``ValueError`` every entry point shares.
    """
    import torch

    cuda = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if cuda else "cpu"
    if str(device).startswith("cuda") and not cuda:
        raise ValueError(
            "device='cuda' was requested, but PyTorch sees no CUDA device "
            "(torch.cuda.is_available() is False). Use device='cpu' or 'auto'."
        )
    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}.")
    return device


def available_device(device, stacklevel=2):
    """Where a model saved or pickled on ``device`` runs here.

    A CUDA model lands on the CPU, with a warning, where PyTorch sees no CUDA
    device, and on the current CUDA device where its own index is not here.
    """
    import warnings

    import torch

    device = str(device)
    if not device.startswith("cuda"):
        return "cpu"
    if not torch.cuda.is_available():
        warnings.warn(
            f"The model was fitted on {device[:40]}, but PyTorch sees no CUDA device; "
            f"it runs on the CPU.", UserWarning, stacklevel=stacklevel + 1,
        )
        return "cpu"
    index = device.partition(":")[2]
    if index and not (index.isdecimal() and len(index) < 4
                      and int(index) < torch.cuda.device_count()):
        return "cuda"
    return device
