"""Imports of the optional ``deploy`` dependencies, with an error that says what to install."""

import importlib

__all__ = ["import_optional"]


def import_optional(module, purpose):
    """Import ``module`` (dotted name), or say how to install it for ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs the '{package}' package: pip install {package} (or, in a "
            f"checkout of sklenet, pip install -e '.[deploy]')."
        ) from exc
