"""The LeNet-5 network and the input adapter that feeds it.

The architecture is the one of "Classification of Fashion-MNIST Dataset by Using
LeNet-5": C1 (6 kernels 5x5, padding 2) -> S2 (2x2 pooling) -> C3 (16 kernels 5x5)
-> S4 (2x2 pooling) -> C5 (120 kernels 5x5) -> F6 (84 units) -> output layer.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._options import ACTIVATIONS, POOLINGS
from ._pooling import MaxPool2x2

__all__ = ["LeNet5", "InputAdapter", "SeededDropout", "WholeInputConv2d", "LENET5_INPUT_SIZE"]

#: Height and width of the images the LeNet-5 layers are built for.
LENET5_INPUT_SIZE = 28

_ACTIVATION_LAYERS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_POOLING_LAYERS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def _widen(x):
    """Half-precision activations (from autocast's convolutions) as float32.

    The CPU pooling and activation kernels are several times faster in float32
    than in bfloat16 at LeNet-5's sizes; the next convolution casts back.
    """
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class WholeInputConv2d(nn.Conv2d):
    """A convolution computed as a matrix product where its kernel covers the whole input.

    That is LeNet-5's C5: 5x5 kernels on the 5x5 maps of S4, one output value per
    kernel, i.e. a fully connected layer. A matrix product computes it several
    times faster than oneDNN's convolution, forward and backward; other input
    sizes take the ordinary convolution. Parameters as :class:`torch.nn.Conv2d`.

    Examples
    --------
    >>> import torch
    >>> from sklenet.network import WholeInputConv2d
    >>> layer = WholeInputConv2d(16, 120, kernel_size=5)
    >>> x = torch.randn(3, 16, 5, 5)
    >>> want = torch.nn.functional.conv2d(x, layer.weight, layer.bias)
    >>> torch.allclose(layer(x), want, atol=1e-5)
    True
    """

    def forward(self, x):
        if (tuple(x.shape[-2:]) != self.kernel_size or self.padding != (0, 0)
                or self.dilation != (1, 1) or self.groups != 1):
            return super().forward(x)
        out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
        return out[:, :, None, None]


class SeededDropout(nn.Dropout):
    """Dropout whose masks come from ``generator`` when one is set.

    ``torch.nn.functional.dropout`` can only draw from the process-global
    generator, which other threads share; the classifier sets ``generator``
    for the duration of a fit so that its masks are its own. Without a
    generator it is exactly :class:`torch.nn.Dropout`.

    Examples
    --------
    >>> import torch
    >>> from sklenet.network import SeededDropout
    >>> layer = SeededDropout(0.5).train()
    >>> layer.generator = torch.Generator().manual_seed(0)
    >>> a = layer(torch.ones(1000))
    >>> layer.generator = torch.Generator().manual_seed(0)
    >>> torch.equal(a, layer(torch.ones(1000))), sorted(a.unique().tolist())
    (True, [0.0, 2.0])
    """

    generator = None

    def forward(self, x):
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        keep = torch.rand(x.shape, generator=self.generator, device=x.device) >= self.p
        return x * keep / (1 - self.p)


class LeNet5(nn.Module):
    """LeNet-5 for 28x28 images.

    The forward pass returns one logit per class; apply ``torch.softmax`` to get
    the probabilities of the study's softmax output layer (the classifier does).
    Keeping the softmax out of the module lets training use the numerically
    stable ``CrossEntropyLoss``.

    Parameters
    ----------
    in_channels : int, default=1
        Number of input channels (1 for grayscale, 3 for RGB).
    n_classes : int, default=10
        Number of output units, one per class.
    activation : {"tanh", "relu"}, default="tanh"
        Non-linearity after every convolution and after F6 (the study uses tanh).
    pooling : {"avg", "max"}, default="avg"
        Kind of the 2x2, stride-2 subsampling layers S2 and S4 (the study
        averages).
    dropout : float, default=0.0
        Dropout probability before the F6 and output layers (0 disables it).

    Examples
    --------
    >>> import torch
    >>> from sklenet import LeNet5
    >>> net = LeNet5()
    >>> sum(p.numel() for p in net.parameters())
    61706
    >>> net(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, in_channels=1, n_classes=10, activation="tanh", pooling="avg",
                 dropout=0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
        act = _ACTIVATION_LAYERS[activation]
        pool = _POOLING_LAYERS[pooling]
        self.c1 = nn.Conv2d(in_channels, 6, kernel_size=5, padding=2)
        self.act1 = act()
        # C1 has 6 channels, too few for PyTorch's channels-last max-pooling kernel
        # to vectorize; S4 (16 channels, 4x fewer values) is faster with it.
        self.s2 = MaxPool2x2() if pooling == "max" else pool(kernel_size=2, stride=2)
        self.c3 = nn.Conv2d(6, 16, kernel_size=5)
        self.act3 = act()
        self.s4 = pool(kernel_size=2, stride=2)
        self.c5 = WholeInputConv2d(16, 120, kernel_size=5)
        self.act5 = act()
        self.flatten = nn.Flatten()
        self.drop5 = SeededDropout(dropout)
        self.f6 = nn.Linear(120, 84)
        self.act6 = act()
        self.drop6 = SeededDropout(dropout)
        self.output = nn.Linear(84, n_classes)

    def forward(self, x):
        if isinstance(self.s2, nn.MaxPool2d):
            # Max pooling commutes with the monotonic activations: pooling first
            # gives the same values with a quarter of the activation work.
            x = self.act1(self.s2(_widen(self.c1(x))))
            x = self.act3(_widen(self.s4(self.c3(x))))
        else:
            x = self.s2(self.act1(_widen(self.c1(x))))
            x = self.s4(self.act3(_widen(self.c3(x))))
        # Under autocast, the small matrix products of the head would cost more
        # in casts to bfloat16 than they save: they stay in float32.
        with torch.autocast(x.device.type, enabled=False):
            x = self.flatten(self.act5(self.c5(x)))
            x = self.act6(self.f6(self.drop5(x)))
            return self.output(self.drop6(x))


class InputAdapter(nn.Module):
    """Turn the images a user passes into what LeNet-5 expects.

    Casts the pixels to float32, standardizes each channel with statistics learned
    from the training data (so uint8 0-255 pixels and 0-1 floats train alike), and
    resizes any other height/width to 28x28 with bilinear interpolation, so the
    LeNet-5 layers keep their exact shapes.

    Parameters
    ----------
    mean : sequence of float
        Per-channel mean of the training pixels.
    std : sequence of float
        Per-channel standard deviation of the training pixels (must be > 0).
    """

    def __init__(self, mean, std):
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
        self.register_buffer("mean", mean)
        self.register_buffer("inv_std", 1.0 / std)

    def forward(self, x):
        x = (x.float() - self.mean) * self.inv_std
        if x.shape[-2:] != (LENET5_INPUT_SIZE, LENET5_INPUT_SIZE):
            x = F.interpolate(x, size=(LENET5_INPUT_SIZE, LENET5_INPUT_SIZE),
                              mode="bilinear", align_corners=False)
        return x
