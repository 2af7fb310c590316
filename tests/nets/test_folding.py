import pytest
import torch
from torch import nn

from e2far_lite.nets.folding import fold_batch_norm, for_inference
from e2far_lite.nets.mobilenet import MobileNetV1
from e2far_lite.nets.network import E2FARNet


def _trained_statistics(net: nn.Module) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    g = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            module.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=g) * 0.1)
    return net.eval()


def test_folded_e2farnet_computes_the_same_function():
    net = _trained_statistics(E2FARNet(62, 29))
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # original untouched
    images = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = net(images), folded(images)
    for key in ("a_id", "a_exp", "pose"):
        torch.testing.assert_close(b[key], a[key], atol=1e-4, rtol=1e-4)


def test_folded_mobilenet_computes_the_same_function():
    net = _trained_statistics(MobileNetV1())
    images = torch.rand(2, 3, 120, 120)
    with torch.no_grad():
        torch.testing.assert_close(fold_batch_norm(net)(images), net(images), atol=1e-4,
                                   rtol=1e-4)


def test_fold_refuses_non_modules():
    with pytest.raises(TypeError, match="net: expected a torch.nn.Module, got str"):
        fold_batch_norm("net")


def test_for_inference_is_channels_last_and_the_same_function():
    net = _trained_statistics(E2FARNet(62, 29))
    fast = for_inference(net)
    conv = fast.backbone.stages.pool1.conv1_1
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(fast(images)["a_id"], net(images)["a_id"], atol=1e-4,
                                   rtol=1e-4)
