"""Checks for notebook 04: the fusion CNN, built by the student as an ``nn.Module`` with the
package's layer names (:class:`~e2far_lite.nets.FusionCNN` for the taps pool4 and pool5).

The check loads the shipped network's fusion weights (in smoke mode the smoke network's, as
:func:`~e2far_lite.train.pretrained` chooses) into the student's module with
``load_state_dict(strict=True)``, feeds both the same backbone features of fresh random images,
and compares the expression coefficients.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from ..nets.backbone import TAP_NAMES
from ..nets.complexity import count_parameters
from ..nets.fusion import FusionCNN, FusionConfig
from .checks import CheckFailed, as_count, call, compare, fresh_generator, not_written, passed
from .modules import built_like

#: expression coefficients (std units) must agree to this, absolute and relative
TOLERANCE = 1e-5
#: the taps the student's fusion CNN reads, as in the paper
TAPS = ("pool4", "pool5")


def _shipped_net() -> nn.Module:
    from ..train.shipped import pretrained

    net = pretrained()[0].eval()
    if tuple(net.fusion.taps) != TAPS:
        raise TypeError(f"expected the shipped network to fuse the taps {TAPS}, got "
                        f"{net.fusion.taps}")
    return net


def _diagnose(student: nn.Module, reference: FusionCNN, features: Mapping[str, Tensor],
              what: str) -> bool:
    """Compare the student's parts (same names as the package's) one by one on ``features``;
    raise :class:`CheckFailed` at the first that differs. Parts that cannot be called alone
    are skipped: the caller then reports the whole output. Returns whether every part was
    compared and agreed (then what differs is how ``forward`` connects them)."""
    try:
        parts = [(f"{what}.projections[{tap!r}](features[{tap!r}])",
                  student.projections[tap], reference.projections[tap], features[tap])
                 for tap in TAPS]
        fused_in = torch.cat([reference.projections[tap](features[tap]) for tap in TAPS], 1)
        parts.append((f"{what}.fuse(concatenated projections)", student.fuse, reference.fuse,
                      fused_in))
        parts.append((f"{what}.head(fused map)", student.head, reference.head,
                      reference.fuse(fused_in)))
    except (AttributeError, KeyError, TypeError, IndexError):
        return False
    for name, mine, theirs, x in parts:
        if not callable(mine):
            return False
        got = call(mine, name, x)
        compare(got, theirs(x), name, atol=TOLERANCE, rtol=TOLERANCE)
    return True


def _parts_agree(failed: CheckFailed) -> CheckFailed:
    return CheckFailed(f"{failed} (the projections, fuse and head each compute what the "
                       "package's do: look at how forward connects them)")


def check_fusion(fusion_class: type, net: nn.Module | None = None) -> None:
    """``fusion_class(tap_channels, num_exp, width, hidden, grid_size)`` must hold the package's
    parameters under its names (``projections.pool4.0.weight``, ``fuse.1.running_mean``,
    ``head.3.bias``, ...), load the shipped fusion CNN's weights strictly, and map the
    backbone's features ``{"pool4": (B, C4, 2g, 2g), "pool5": (B, C5, g, g), ...}`` to the same
    (B, E) expression coefficients, to 1e-5, for fresh random images.

    Args:
        fusion_class: the student's class.
        net: an :class:`~e2far_lite.nets.E2FARNet` whose fusion fuses pool4 and pool5
            (default: the shipped network, or the smoke network in smoke mode).
    """
    net = net or _shipped_net()
    reference: FusionCNN = net.fusion
    channels = {tap: reference.tap_channels[tap] for tap in TAPS}
    width, hidden, grid = reference.config.width, reference.config.hidden, reference.grid_size
    what = f"Fusion({channels}, {reference.num_exp}, {width}, {hidden}, {grid})"
    student = built_like(fusion_class, reference, what, channels, reference.num_exp, width,
                         hidden, grid)
    g = fresh_generator()
    images = torch.rand(3, 3, 32 * grid, 32 * grid, generator=g)
    images = images.to(next(net.parameters()).device)
    call_what = f"{what}(features) for the features of images of shape {tuple(images.shape)}"
    with torch.no_grad():
        features = net.backbone(images)
        expected = reference(features)
        try:
            got = call(student, call_what, features)
        except CheckFailed as failed:
            # names the first part that differs
            if _diagnose(student, reference, features, what):
                raise _parts_agree(failed) from None
            raise
        not_written(got, call_what)
        try:
            compare(got, expected, call_what, atol=TOLERANCE, rtol=TOLERANCE)
        except CheckFailed as failed:
            if _diagnose(student, reference, features, what):
                raise _parts_agree(failed) from None
            raise
    passed("Fusion loads the shipped fusion CNN's weights with strict=True and predicts the "
           f"same a_exp from the backbone features of fresh random images, to {TOLERANCE:g}")


def _randint(low: int, high: int, generator: torch.Generator) -> int:
    return int(torch.randint(low, high + 1, (), generator=generator))


def check_fusion_parameters(fusion_parameters: object) -> None:
    """``fusion_parameters(tap_channels, num_exp, width, hidden, grid_size)`` must equal
    ``count_parameters(FusionCNN(tap_channels, num_exp, FusionConfig(taps=tuple(tap_channels),
    width=width, hidden=hidden), grid_size))`` for fresh random taps and sizes (exact)."""
    g = fresh_generator()
    for _ in range(5):
        others = [tap for tap in TAP_NAMES[:-1] if bool(torch.rand((), generator=g) < 0.5)]
        taps = (*others, TAP_NAMES[-1])
        tap_channels = {tap: _randint(2, 40, g) for tap in taps}
        num_exp, width = _randint(1, 30, g), _randint(2, 24, g)
        hidden, grid = _randint(2, 40, g), _randint(1, 4, g)
        what = (f"fusion_parameters({tap_channels}, num_exp={num_exp}, width={width}, "
                f"hidden={hidden}, grid_size={grid})")
        config = FusionConfig(taps=taps, width=width, hidden=hidden)
        expected = count_parameters(FusionCNN(tap_channels, num_exp, config, grid))
        got = call(fusion_parameters, what, tap_channels, num_exp, width, hidden, grid)
        got = as_count(got, what)
        if got != expected:
            raise CheckFailed(f"{what}: got {got:,}, expected {expected:,}")
    passed("fusion_parameters equals count_parameters of the package's FusionCNN for fresh "
           "random taps and sizes")


__all__ = ["check_fusion", "check_fusion_parameters"]
