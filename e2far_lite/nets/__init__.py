"""The networks (notebooks 03-04): VGG-style backbone, fusion CNN, E2FARNet, MobileNetV1."""

from .backbone import (
    ARCHS,
    STRIDE,
    TAP_NAMES,
    BackboneConfig,
    TappedBackbone,
    VGGBackbone,
    build_backbone,
    check_images,
    torchvision_backbone,
)
from .complexity import count_macs, count_parameters
from .folding import fold_batch_norm, for_inference
from .fusion import FusionCNN, FusionConfig
from .mobilenet import BLOCKS, INPUT_SIZE, MACS, NUM_OUTPUTS, PARAMETERS, MobileNetV1
from .network import E2FARNet, NetConfig

__all__ = [
    "ARCHS",
    "BLOCKS",
    "BackboneConfig",
    "E2FARNet",
    "FusionCNN",
    "FusionConfig",
    "INPUT_SIZE",
    "MACS",
    "MobileNetV1",
    "NUM_OUTPUTS",
    "NetConfig",
    "PARAMETERS",
    "STRIDE",
    "TAP_NAMES",
    "TappedBackbone",
    "VGGBackbone",
    "build_backbone",
    "check_images",
    "count_macs",
    "count_parameters",
    "fold_batch_norm",
    "for_inference",
    "torchvision_backbone",
]
