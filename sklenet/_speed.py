"""Execution settings that make LeNet-5 run at the hardware's pace.

Two knobs, both measured on a 2-core AVX-512/AMX Xeon (see ``docs/performance.md``):

* ``channels_last``: activations and convolution weights in NHWC memory layout.
  oneDNN's convolutions and PyTorch's max-pooling kernels are much faster in that
  layout than in NCHW for LeNet-5's few channels. Arithmetic stays float32.
* ``precision="bfloat16"``: the model runs under ``torch.autocast`` in
  bfloat16, of which LeNet-5 uses it for its two convolutions only (pooling,
  activations and the small fully connected layers are faster in float32;
  weights and loss stay float32).
  Fast on CPUs with native bfloat16 (AMX-BF16 or AVX512-BF16) and on recent GPUs;
  ``"auto"`` picks it only there.
"""

import contextlib

import torch

from ._options import PRECISIONS

__all__ = ["cpu_has_native_bf16", "resolve_precision", "run_module"]


def cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 natively (AMX-BF16 or AVX512-BF16).

    Elsewhere oneDNN emulates bfloat16 and it is slower than float32. Returns
    False when this torch build cannot tell.
    """
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        check = getattr(cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except Exception:  # pragma: no cover - depends on the torch build
            pass
    return False


def resolve_precision(precision, device):
    """The autocast dtype for ``precision`` on ``device``, or None for float32.

    ``"auto"`` gives bfloat16 on a CPU with native bfloat16 and on a CUDA device
    that supports it, float32 elsewhere. An explicit ``"bfloat16"`` is honoured
    wherever autocast supports it (emulated, hence slow, on older CPUs).
    """
    if precision == "float32":
        return None
    cuda = str(device).startswith("cuda")
    if precision == "auto":
        if cuda:
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if precision == "bfloat16":
        return torch.bfloat16
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")


def autocast(device, amp_dtype):
    """``torch.autocast`` for ``amp_dtype`` on ``device``; a no-op for None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    device_type = "cuda" if str(device).startswith("cuda") else "cpu"
    return torch.autocast(device_type, dtype=amp_dtype)


def run_module(module, x, device, amp_dtype=None, channels_last=False):
    """Forward ``x`` through ``module`` with the execution settings; float32 logits.

    The input is moved to ``device`` (still uint8 when it came as uint8: the
    module casts it) and, for ``channels_last``, given NHWC strides, which for
    one channel is free.
    """
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(device, amp_dtype):
        out = module(x)
    return out.float()


def set_memory_format(module, channels_last):
    """Put the 4-d weights of ``module`` in NHWC (or back to NCHW), in place.

    ``Module.to`` replaces ``param.data``, so an optimizer holding the
    parameters keeps working.
    """
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return module.to(memory_format=fmt)
