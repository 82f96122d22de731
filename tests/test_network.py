import pytest
import torch

from sklenet import LeNet5
from sklenet.network import InputAdapter


def _output_shapes(net, x):
    shapes = {}
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda mod, inp, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in ("c1", "s2", "c3", "s4", "c5", "f6", "output")
    ]
    net(x)
    for hook in hooks:
        hook.remove()
    return shapes


def test_parameter_count_is_the_studys():
    net = LeNet5()
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == 61_706


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_layer_output_shapes(activation, pooling):
    net = LeNet5(activation=activation, pooling=pooling)
    shapes = _output_shapes(net, torch.zeros(3, 1, 28, 28))
    assert shapes == {
        "c1": (3, 6, 28, 28),
        "s2": (3, 6, 14, 14),
        "c3": (3, 16, 10, 10),
        "s4": (3, 16, 5, 5),
        "c5": (3, 120, 1, 1),
        "f6": (3, 84),
        "output": (3, 10),
    }


def test_options_change_layers():
    net = LeNet5(in_channels=3, n_classes=4, activation="relu", pooling="max")
    assert isinstance(net.act1, torch.nn.ReLU)
    assert isinstance(net.s2, torch.nn.MaxPool2d)
    assert net(torch.zeros(2, 3, 28, 28)).shape == (2, 4)
    assert isinstance(LeNet5().s4, torch.nn.AvgPool2d)


@pytest.mark.parametrize("kwargs", [{"activation": "sigmoid"}, {"pooling": "min"}])
def test_bad_options_are_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LeNet5(**kwargs)


@pytest.mark.parametrize("size", [(8, 8), (32, 32), (1, 5), (28, 28)])
def test_adapter_resizes_to_28(size):
    adapter = InputAdapter(mean=[10.0], std=[2.0])
    x = torch.full((2, 1) + size, 12, dtype=torch.uint8)
    out = adapter(x)
    assert out.shape == (2, 1, 28, 28)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.ones_like(out))
