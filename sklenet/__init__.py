"""sklenet: LeNet-5 as a scikit-learn estimator."""

__version__ = "0.1.0"

from .network import LeNet5  # noqa: E402
from .classifier import LeNet5Classifier  # noqa: E402
from .export import to_onnx  # noqa: E402
from .persistence import ModelFileError, load  # noqa: E402

__all__ = ["LeNet5", "LeNet5Classifier", "load", "ModelFileError", "to_onnx", "__version__"]
