"""Checks for notebook 05: the vertex loss, its Gram form, the multi-task loss and a training
loop, written by the student and compared with :mod:`e2far_lite.train` on fresh random inputs.

The four pieces, as the notebook names them::

    vertex_loss(model, pred, target)        -> (neutral, expression), mm², built from vertices
    basis_gram(basis, std)                  -> (K, K) mm², the basis Gram matrix
    gram_loss(delta, gram, num_vertices)    -> (B,) mm², dᵀ G d / V per face
    multitask_loss(loss_fn, pred, target)   -> the scalar that MultiTaskLoss calls "total"
    train_loop(net, loss_fn, optimizer, config, next_batch, steps) -> each step's loss
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..model.morphable_model import NUM_LANDMARKS, MorphableModel
from ..nets.network import E2FARNet
from ..train.configs import TrainConfig, get_config
from ..train.loop import make_optimizer, train, training_batches
from ..train.losses import (
    LossConfig,
    MultiTaskLoss,
    gram_matrix,
    quadratic_vertex_loss,
    vertex_loss_explicit,
)
from .checks import CheckFailed, call, compare, fresh_generator, not_written, passed


# ---------------------------------------------------------------------------- fresh inputs
def random_coefficients(model: MorphableModel, batch: int, g: torch.Generator,
                        ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """``(pred, target)``: coefficients ``"a_id"`` (B, K), ``"a_exp"`` (B, E) drawn from the
    model's prior, the prediction off by about a third of a standard deviation; a pose
    ``"pose"`` (B, 6) near a frontal face at 64 px; 68 target landmarks (B, 68, 2) px, a random
    fifth of them hidden (``"visible"`` (B, 68) bool)."""
    target = {"a_id": torch.randn(batch, model.num_id, generator=g),
              "a_exp": torch.rand(batch, model.num_exp, generator=g) * 2 - 0.5}
    pred = {k: v + 0.3 * torch.randn(v.shape, generator=g) for k, v in target.items()}
    for coefficients in (pred, target):
        angles = 0.3 * torch.randn(batch, 3, generator=g)
        shift = 32 + 3 * torch.randn(batch, 2, generator=g)
        scale = 0.3 * (1 + 0.1 * torch.randn(batch, 1, generator=g))
        coefficients["pose"] = torch.cat([angles, shift, scale], 1)
    target["landmarks"] = 32 + 12 * torch.randn(batch, NUM_LANDMARKS, 2, generator=g)
    target["visible"] = torch.rand(batch, NUM_LANDMARKS, generator=g) > 0.2
    return pred, target


def _pair(result: Any, what: str) -> tuple[Any, Any]:
    not_written(result, what)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{what}: expected a tuple (neutral, expression), got "
                          f"{type(result).__name__}")
    return result


def _scale_hint(got: Any, expected: Tensor, counts: dict[int, str]) -> str:
    """A sentence when ``got`` is ``expected`` times (or divided by) one of ``counts`` (a count
    of the inputs, e.g. the number of vertices, with what it counts), else ``""``."""
    if not (isinstance(got, Tensor) and got.shape == expected.shape):
        return ""
    ratio = (got.detach().double().cpu() / expected.detach().double().cpu()).flatten()
    if not bool(torch.isfinite(ratio).all()) or float(ratio.max() - ratio.min()) > 1e-3 * float(
            ratio.abs().max()):
        return ""
    ratio = float(ratio.mean())
    for n, counted in counts.items():
        if n <= 1:
            continue
        for factor, words in ((n, f"{n} times"), (1 / n, f"1/{n} of")):
            if math.isclose(ratio, factor, rel_tol=1e-3):
                return (f" Every value is {words} the expected one, and {n} is {counted}: look "
                        "at what your code sums and what it averages over.")
    return ""


def _compare_scaled(got: Any, expected: Tensor, what: str, counts: dict[int, str],
                    atol: float, rtol: float) -> None:
    """:func:`compare`, its message followed by :func:`_scale_hint`'s sentence if there is one."""
    try:
        compare(got, expected, what, atol=atol, rtol=rtol)
    except CheckFailed as err:
        hint = _scale_hint(got, expected, counts)
        if not hint:
            raise
        raise CheckFailed(f"{err}{hint}") from None


# ---------------------------------------------------------------------------- the losses
def check_vertex_loss(vertex_loss: Callable, model: MorphableModel | None = None) -> None:
    """``vertex_loss(model, pred, target)`` -> ``(neutral, expression)`` scalars in mm² must
    equal :func:`~e2far_lite.train.vertex_loss_explicit`'s, on fresh random coefficients
    (batches of 1 and 6), to 1e-4 relative."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    for batch in (1, 6):
        pred, target = random_coefficients(model, batch, g)
        what = f"vertex_loss(model, pred, target) for a batch of {batch}"
        neutral, expression = _pair(call(vertex_loss, what, model, pred, target), what)
        ref = vertex_loss_explicit(model, pred, target)
        counts = {3: "the number of coordinates of a vertex (x, y, z)",
                  model.num_vertices: "the number of vertices V", batch: "the batch size B"}
        _compare_scaled(neutral, ref["neutral"], f"{what}: neutral (mm²)", counts, atol=1e-5,
                        rtol=1e-4)
        _compare_scaled(expression, ref["expression"], f"{what}: expression (mm²)", counts,
                        atol=1e-5, rtol=1e-4)
    passed("vertex_loss equals the package's vertex losses, built from (B, V, 3) shapes, on "
           "fresh random coefficients (batches of 1 and 6)")


def check_gram_loss(basis_gram: Callable, gram_loss: Callable,
                    model: MorphableModel | None = None) -> None:
    """``basis_gram(basis, std)`` -> (K, K) must equal :func:`~e2far_lite.train.gram_matrix`
    (for a random basis and for the model's own), and ``gram_loss(delta, gram, V)`` -> (B,)
    must equal :func:`~e2far_lite.train.quadratic_vertex_loss`; together they must give the
    explicit vertex losses, on fresh random inputs."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    basis = torch.randn(7, 30, 3, generator=g, dtype=torch.float64)
    std = torch.rand(7, generator=g, dtype=torch.float64) * 5 + 0.5
    what = "basis_gram(basis, std) for a random (7, 30, 3) basis"
    compare(call(basis_gram, what, basis, std), gram_matrix(basis, std), what, atol=1e-8,
            rtol=1e-6)
    grams = {}
    for name in ("id", "exp"):
        basis, std = getattr(model, f"{name}_basis"), getattr(model, f"{name}_std")
        what = f"basis_gram(model.{name}_basis, model.{name}_std)"
        grams[name] = call(basis_gram, what, basis, std)
        expected = gram_matrix(basis, std)
        # float32 sums over 3V products: off the diagonal, about 1e-7 of the largest entry
        compare(grams[name], expected, f"{what} (mm²)", atol=1e-5 * float(expected.abs().max()),
                rtol=1e-4)
    delta = torch.randn(5, 7, generator=g, dtype=torch.float64)
    gram = torch.randn(7, 7, generator=g, dtype=torch.float64)
    gram = gram @ gram.T
    what = "gram_loss(delta, gram, num_vertices=30) for a batch of 5"
    _compare_scaled(call(gram_loss, what, delta, gram, 30),
                    quadratic_vertex_loss(delta, gram, 30), what,
                    {30: "num_vertices", 3: "the number of coordinates of a vertex (x, y, z)"},
                    atol=1e-8, rtol=1e-6)
    pred, target = random_coefficients(model, 6, g)
    ref = vertex_loss_explicit(model, pred, target)
    for name, key in (("id", "neutral"), ("exp", "expression")):
        what = (f"gram_loss(pred['a_{name}'] - target['a_{name}'], basis_gram(model), "
                f"model.num_vertices).mean()")
        got = call(gram_loss, what, pred[f"a_{name}"] - target[f"a_{name}"], grams[name],
                   model.num_vertices)
        not_written(got, what)
        compare(got.mean() if isinstance(got, Tensor) else got, ref[key],
                f"{what}, against the {key} loss built from vertices (mm²)", atol=1e-5,
                rtol=1e-4)
    passed("basis_gram and gram_loss equal the package's, and give the vertex losses without "
           "building a single vertex, on fresh random inputs")


def _random_loss_config(g: torch.Generator) -> LossConfig:
    """Loss weights drawn afresh, so that a weight written as a number cannot pass."""
    def weight() -> float:
        return round(float(torch.rand((), generator=g)) * 4 + 0.5, 3)

    return LossConfig(lambda_exp=weight(), landmark_weight=weight(), pose_weight=weight(),
                      image_size=64)


def check_multitask_loss(multitask_loss: Callable, model: MorphableModel | None = None) -> None:
    """``multitask_loss(loss_fn, pred, target)`` must equal ``loss_fn(pred, target)["total"]``
    of :class:`~e2far_lite.train.MultiTaskLoss`, for the notebook's weights and for random
    ones, on fresh random predictions and targets."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    configs = {"the notebook's weights": get_config("cpu-quick").loss,
               "random weights": _random_loss_config(g)}
    for name, config in configs.items():
        loss_fn = MultiTaskLoss(model, config)
        pred, target = random_coefficients(model, 6, g)
        ref = loss_fn(pred, target)
        what = (f"multitask_loss(loss_fn, pred, target) with {name} (λ = {config.lambda_exp:g}, "
                f"landmarks {config.landmark_weight:g}, pose {config.pose_weight:g})")
        got = call(multitask_loss, what, loss_fn, pred, target)
        not_written(got, what)
        if isinstance(got, dict):
            raise CheckFailed(f"{what}: expected the total (a scalar tensor), got a dict")
        if isinstance(got, Tensor) and got.dim() > 0:
            raise CheckFailed(f"{what}: expected a scalar (averaged over the batch), got "
                              f"shape {tuple(got.shape)}")
        try:
            compare(got, ref["total"], f"{what}: total", atol=1e-4, rtol=1e-4)
        except CheckFailed as err:
            raise CheckFailed(
                f"{err}. For these inputs the package's terms are: neutral "
                f"{float(ref['neutral']):.6g} mm², expression {float(ref['expression']):.6g} "
                f"mm², landmarks {float(ref['landmarks']):.6g} %², pose {float(ref['pose']):.6g}"
                " (each a mean over the batch): compare each of your terms with these, and the "
                "weights with those of the formula in section 4") from None
    passed("multitask_loss equals MultiTaskLoss's total, for the notebook's weights and for "
           "random ones, on fresh random predictions")


# ---------------------------------------------------------------------------- the loop
def _check_config(g: torch.Generator) -> TrainConfig:
    """A few tiny steps of the smoke network, with a fresh initial seed and fresh faces."""
    return get_config("smoke", steps=3, batch_size=4, warmup_steps=2, val_size=4, log_every=1,
                      val_every=3, ckpt_every=3, seed=random.SystemRandom().randrange(2**31),
                      train_seed=int(torch.randint(10**6, (), generator=g)))


def _losses(result: Any, steps: int, what: str) -> list[float]:
    """The loss of each step, as floats, or a :class:`CheckFailed` saying what came back."""
    not_written(result, what)
    if isinstance(result, (list, tuple)) and not result:
        raise CheckFailed(f"{what}: returned no losses: the loop's code is not written yet "
                          "(replace the ... with your code and run the cell again)")
    try:
        losses = [float(v) for v in result]
    except (TypeError, ValueError):
        raise CheckFailed(f"{what}: expected the loss of each step (a list of numbers), got "
                          f"{type(result).__name__}") from None
    if len(losses) != steps:
        raise CheckFailed(f"{what}: expected {steps} losses, one per step, got {len(losses)}")
    return losses


def check_training_loop(train_loop: Callable, model: MorphableModel | None = None) -> None:
    """``train_loop(net, loss_fn, optimizer, config, next_batch, steps)`` must train like
    :func:`~e2far_lite.train.train`: on a freshly seeded tiny network and fresh faces, three
    steps (the learning rate changing at each), the same loss at every step and the same
    weights after the last, to 1e-4."""
    model = model or MorphableModel.default()
    g = fresh_generator()
    config = _check_config(g)
    what = "train_loop(net, loss_fn, optimizer, config, next_batch, steps=3)"
    with tempfile.TemporaryDirectory(prefix="e2far-check-") as out:
        next_batch = training_batches(config, model, cache_dir=out + "/cache", progress=False)
        torch.manual_seed(config.seed)  # train() draws its initial weights just so
        net = E2FARNet(model.num_id, model.num_exp, config.net).train()
        optimizer = make_optimizer(net, config)  # AdamW, as train() makes it
        losses = _losses(call(train_loop, what, net, MultiTaskLoss(model, config.loss),
                              optimizer, config, next_batch, config.steps), config.steps, what)
        reference = train(config, out + "/run", device="cpu", progress=False,
                          cache_dir=out + "/cache", model=model)
    expected = [r["loss_total"] for r in reference.history if "loss_total" in r]
    for step, (got, want) in enumerate(zip(losses, expected, strict=True)):
        if not math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-4):
            cause = ("the forward or the loss" if step == 0 else
                     f"the update of step {step - 1} (its gradient, the optimizer step, or "
                     f"its learning rate lr_at({step - 1}, config))")
            raise CheckFailed(f"{what}: the loss of step {step} is {got:.6g}, expected "
                              f"{want:.6g} (every earlier one matched): look at {cause}")
    for name, value in reference.net.state_dict().items():
        compare(net.state_dict()[name], value, f"{what}: weight {name!r} after the last step",
                atol=1e-4, rtol=1e-4)
    passed("train_loop makes the same steps as the package's train(): the same loss at each "
           "of 3 steps and the same weights after them, from a fresh random initialisation")


__all__ = ["check_vertex_loss", "check_gram_loss", "check_multitask_loss",
           "check_training_loop", "random_coefficients"]
