"""Checks for notebook 05: the vertex loss, its Gram form, the multi-task loss, a training
loop and its learning-rate schedule, written by the student and compared with
:mod:`e2far_lite.train` on fresh random inputs.

The pieces, as the notebook names them::

    vertex_loss(model, pred, target)        -> (neutral, expression), mm², built from vertices
    basis_gram(basis, std)                  -> (K, K) mm², the basis Gram matrix
    gram_loss(delta, gram, num_vertices)    -> (B,) mm², dᵀ G d / V per face
    multitask_loss(loss_fn, pred, target)   -> the scalar that MultiTaskLoss calls "total"
    train_loop(net, loss_fn, optimizer, config, next_batch, steps) -> each step's loss
    my_lr(step, config)                     -> the learning rate of that step, as lr_at
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
from ..train.loop import lr_at, make_optimizer, train, training_batches
from ..train.losses import (
    LossConfig,
    MultiTaskLoss,
    gram_matrix,
    quadratic_vertex_loss,
    vertex_loss_explicit,
)
from .checks import (
    CheckFailed,
    call,
    compare,
    fresh_generator,
    not_written,
    passed,
    refuse_reference,
)


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


# ---------------------------------------------------------------------------- the schedule
def random_schedules(g: torch.Generator) -> list[tuple[str, TrainConfig]]:
    """(label, config) of fresh random schedules: steps, warm-up, peak rate and floor drawn
    afresh, with the edge cases no warm-up and a single step after the warm-up."""
    def randint(low: int, high: int) -> int:
        return int(torch.randint(low, high + 1, (), generator=g))

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=g))

    def schedule(steps: int, warmup_steps: int) -> TrainConfig:
        return get_config("smoke", steps=steps, warmup_steps=warmup_steps,
                          lr=float(f"{10 ** uniform(-4, -2):.3g}"),
                          min_lr_ratio=round(uniform(0.02, 0.3), 3))

    steps = randint(40, 300)
    warmup = randint(3, 20)
    return [("a random schedule", schedule(steps, randint(3, steps // 3))),
            ("no warm-up (warmup_steps = 0)", schedule(randint(20, 200), 0)),
            ("one step after the warm-up (steps = warmup_steps + 1)", schedule(warmup + 1, warmup)),
            ("a long schedule", schedule(randint(5_000, 40_000), randint(100, 1_000)))]


def _schedule_steps(config: TrainConfig, g: torch.Generator) -> list[int]:
    """Every step of a short schedule; of a long one, the steps around the warm-up's end and the
    last step, and random steps between."""
    steps, warmup = config.steps, config.warmup_steps
    if steps <= 400:
        return list(range(steps))
    chosen = {0, 1, warmup - 1, warmup, warmup + 1, steps // 2, steps - 2, steps - 1}
    chosen |= {int(t) for t in torch.randint(steps, (40,), generator=g)}
    return sorted(t for t in chosen if 0 <= t < steps)


def _cosine(step: int, config: TrainConfig, floor: float, span: int, rising: bool = False,
            turns: float = 0.5) -> float:
    """The cosine part from ``lr`` down to ``floor`` over ``span`` steps (or up, ``rising``);
    ``turns`` = 1 goes down and back up, a whole period."""
    progress = min(1.0, (step - config.warmup_steps) / max(1, span))
    cosine = math.cos(2 * math.pi * turns * progress)
    return floor + 0.5 * (config.lr - floor) * (1 - cosine if rising else 1 + cosine)


def _schedule_slips(config: TrainConfig) -> list[tuple[Callable[[int], float], str]]:
    """(a wrong schedule, what the message says about it): slips a schedule often makes."""
    lr, warmup, steps = config.lr, config.warmup_steps, config.steps
    floor = lr * config.min_lr_ratio
    span = steps - 1 - warmup

    def warm(step: int, warm_up: Callable[[int], float],
             after: Callable[[int], float] | None = None) -> float:
        return warm_up(step) if step < warmup else (after or (lambda t: lr_at(t, config)))(step)

    return [
        (lambda t: warm(t, lambda t: lr * t / warmup),
         f"your warm-up is one step behind: step 0 is the first update and already takes "
         f"lr/T_w, and the warm-up reaches lr at step T_w − 1 = {warmup - 1}"),
        (lambda t: warm(t, lambda t: lr),
         f"your warm-up starts at lr; over the first T_w = {warmup} steps the rate must rise "
         "linearly, from lr/T_w at step 0 to lr at step T_w − 1"),
        (lambda t: warm(t, lambda t: lr * (t + 1) / warmup, lambda t: _cosine(t, config, 0, span)),
         f"your cosine ends at 0; it must end at min_lr_ratio · lr (here "
         f"{config.min_lr_ratio:g} · {lr:g} = {floor:.6g}) at the last step"),
        (lambda t: warm(t, lambda t: lr * (t + 1) / warmup,
                        lambda t: _cosine(t, config, floor, span, rising=True)),
         "your cosine rises; it must fall, from lr at step T_w to min_lr_ratio · lr at the last "
         "step"),
        (lambda t: warm(t, lambda t: lr * (t + 1) / warmup,
                        lambda t: _cosine(t, config, floor, span, turns=1)),
         "your cosine comes back up to lr at the last step: it must be half a period (an angle "
         "from 0 to π), from lr down to min_lr_ratio · lr"),
        (lambda t: warm(t, lambda t: lr * (t + 1) / warmup,
                        lambda t: _cosine(t, config, floor, span + 1)),
         f"your cosine reaches its floor one step too late: steps are 0-based, so the last step "
         f"is T − 1 = {steps - 1}, and it must take min_lr_ratio · lr"),
    ]


def _same_rate(got: float, expected: float, config: TrainConfig) -> bool:
    """Equal learning rates, but for float rounding."""
    return math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-9 * config.lr)


def check_lr_schedule(my_lr: Callable) -> None:
    """``my_lr(step, config)`` -> the learning rate of update ``step`` (0-based), a number equal
    to :func:`~e2far_lite.train.lr_at` (to a relative 1e-6), on fresh random schedules (steps,
    warm-up, peak rate and floor drawn afresh, with no warm-up and with a single step after the
    warm-up among them), at every step of a short schedule and at the boundary and random steps
    of a long one."""
    refuse_reference(my_lr, ("lr_at",), "my_lr(step, config)")
    g = fresh_generator()
    for label, config in random_schedules(g):
        steps = _schedule_steps(config, g)
        named = (f"steps={config.steps}, warmup_steps={config.warmup_steps}, lr={config.lr:g}, "
                 f"min_lr_ratio={config.min_lr_ratio:g}")
        got = {}
        for step in steps:
            what = f"my_lr({step}, config) for {label} ({named})"
            try:
                value = call(my_lr, what, step, config)
            except CheckFailed as err:
                single = config.steps == config.warmup_steps + 1
                raise CheckFailed(f"{err}" + (" (here T − 1 − T_w = 0: a single step follows "
                                              "the warm-up, and it takes lr)" if single else "")
                                  ) from None
            not_written(value, what)
            if isinstance(value, Tensor) and value.numel() == 1:
                value = value.item()
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise CheckFailed(f"{what}: expected a number (the learning rate), got "
                                  f"{type(value).__name__}")
            got[step] = float(value)
        expected = {t: lr_at(t, config) for t in steps}
        wrong = [t for t in steps if not _same_rate(got[t], expected[t], config)]
        if not wrong:
            continue
        first = wrong[0]
        phase = (f"in the warm-up (steps 0 to {config.warmup_steps - 1})"
                 if first < config.warmup_steps else
                 f"in the cosine (steps {config.warmup_steps} to {config.steps - 1})")
        where = (f"my_lr(step, config) for {label} ({named}): {len(wrong)} of {len(steps)} "
                 f"steps differ; the first is "
                 f"step {first}, {phase}: my_lr gives {got[first]:.6g}, lr_at "
                 f"{expected[first]:.6g}")
        for slip, message in _schedule_slips(config):
            if all(_same_rate(got[t], slip(t), config) for t in steps):
                raise CheckFailed(f"{where}. {message}")
        raise CheckFailed(f"{where} (compare with the formula of section 5)")
    passed("my_lr equals lr_at on fresh random schedules (no warm-up, a single step after it, "
           "short and long), at every step tested")


__all__ = ["check_vertex_loss", "check_gram_loss", "check_multitask_loss",
           "check_training_loop", "check_lr_schedule", "random_coefficients",
           "random_schedules"]
