"""Notebook 05's checks: they pass the package's own pieces and refuse wrong ones, saying how."""

from __future__ import annotations

import math

import pytest
import torch

from e2far_lite.course.checks import CheckFailed
from e2far_lite.course.training import (
    check_gram_loss,
    check_lr_schedule,
    check_multitask_loss,
    check_training_loop,
    check_vertex_loss,
    random_schedules,
)
from e2far_lite.train import gram_matrix, lr_at, quadratic_vertex_loss


def vertex_loss(model, pred, target):
    neutral = model.neutral(pred["a_id"]) - model.neutral(target["a_id"])
    offset = model.expression_offset(pred["a_exp"]) - model.expression_offset(target["a_exp"])
    return neutral.square().sum(-1).mean(), offset.square().sum(-1).mean()


def multitask_loss(loss_fn, pred, target):
    cfg = loss_fn.config
    neutral = quadratic_vertex_loss(pred["a_id"] - target["a_id"], loss_fn.gram_id,
                                    loss_fn.num_vertices).mean()
    expression = quadratic_vertex_loss(pred["a_exp"] - target["a_exp"], loss_fn.gram_exp,
                                       loss_fn.num_vertices).mean()
    return (neutral + cfg.lambda_exp * expression
            + cfg.landmark_weight * loss_fn.landmark_loss(pred, target)
            + cfg.pose_weight * loss_fn.pose_loss(pred, target))


def train_loop(net, loss_fn, optimizer, config, next_batch, steps, constant_lr=False):
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr if constant_lr else lr_at(step, config)
        batch = next_batch(step)
        loss = loss_fn(net(batch["image"]), batch)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_the_checks_pass_the_packages_pieces(capsys):
    check_vertex_loss(vertex_loss)
    check_gram_loss(gram_matrix, quadratic_vertex_loss)
    check_multitask_loss(multitask_loss)
    check_training_loop(train_loop)
    assert capsys.readouterr().out.count("✓") == 4


def test_unwritten_pieces_say_so():
    for check, args in ((check_vertex_loss, (lambda *a: None,)),
                        (check_gram_loss, (lambda *a: None, quadratic_vertex_loss)),
                        (check_multitask_loss, (lambda *a: None,)),
                        (check_training_loop, (lambda *a: None,)),
                        (check_training_loop, (lambda *a: [],))):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(*args)


def test_wrong_pieces_are_refused_with_what_differs():
    def sum_not_mean(model, pred, target):  # summed over vertices, not averaged
        neutral, expression = vertex_loss(model, pred, target)
        return neutral * model.num_vertices, expression

    with pytest.raises(CheckFailed, match="neutral.*elements differ.*times the expected one, "
                                          "and .* is the number of vertices V"):
        check_vertex_loss(sum_not_mean)
    with pytest.raises(CheckFailed, match="basis_gram.*differ"):  # σ forgotten
        check_gram_loss(lambda basis, std: gram_matrix(basis, torch.ones_like(std)),
                        quadratic_vertex_loss)

    def fixed_lambda(loss_fn, pred, target):  # λ = 5 written as a number
        cfg = loss_fn.config
        terms = loss_fn(pred, target)
        return (terms["neutral"] + 5 * terms["expression"]
                + cfg.landmark_weight * terms["landmarks"] + cfg.pose_weight * terms["pose"])

    with pytest.raises(CheckFailed, match="random weights.*total.*the package's terms are"):
        check_multitask_loss(fixed_lambda)
    with pytest.raises(CheckFailed, match="the loss of step 1.*lr_at\\(0, config\\)"):
        check_training_loop(lambda *args: train_loop(*args, constant_lr=True))


def my_lr(step, config, slip=None):
    """The notebook's solution; ``slip`` makes one of the mistakes the check names."""
    lr, warmup = config.lr, config.warmup_steps
    if step < warmup:
        return lr * (step if slip == "late warm-up" else step + 1) / warmup
    floor = 0.0 if slip == "no floor" else config.min_lr_ratio * lr
    span = config.steps - 1 - warmup
    span = span if slip == "no guard" else max(1, span)
    progress = (step - warmup) / span
    return floor + 0.5 * (lr - floor) * (1 + math.cos(math.pi * progress))


def test_random_schedules_include_the_edge_cases():
    configs = dict(random_schedules(torch.Generator().manual_seed(0)))
    assert any(c.warmup_steps == 0 for c in configs.values())
    assert any(c.steps == c.warmup_steps + 1 for c in configs.values())
    assert len({c.min_lr_ratio for c in configs.values()}) > 1


def test_the_schedule_check_passes_the_solution_and_lr_at(capsys):
    check_lr_schedule(my_lr)
    check_lr_schedule(lr_at)
    check_lr_schedule(lambda step, config: torch.tensor(my_lr(step, config)))  # a 0-dim tensor
    assert capsys.readouterr().out.count("✓") == 3


def test_wrong_schedules_are_refused_saying_why():
    with pytest.raises(CheckFailed, match="not written yet"):
        check_lr_schedule(lambda step, config: None)
    with pytest.raises(CheckFailed, match=r"the first is step 0, in the warm-up .*: my_lr gives "
                                          r"0, lr_at [\d.e-]+\. your warm-up is one step behind"):
        check_lr_schedule(lambda step, config: my_lr(step, config, "late warm-up"))
    with pytest.raises(CheckFailed, match="your warm-up starts at lr"):
        check_lr_schedule(lambda step, config: config.lr if step < config.warmup_steps
                          else my_lr(step, config))
    with pytest.raises(CheckFailed, match="your cosine ends at 0"):
        check_lr_schedule(lambda step, config: my_lr(step, config, "no floor"))
    with pytest.raises(CheckFailed, match="ZeroDivisionError.*a single step follows the warm-up"):
        check_lr_schedule(lambda step, config: my_lr(step, config, "no guard"))
    with pytest.raises(CheckFailed, match="expected a number"):
        check_lr_schedule(lambda step, config: [my_lr(step, config)])


def test_a_check_refuses_a_wrapper_around_the_reference():
    from e2far_lite.course.checks import CheckFailed
    from e2far_lite.course.training import check_lr_schedule
    from e2far_lite.train.loop import lr_at

    with pytest.raises(CheckFailed, match="calls the package's `lr_at`"):
        check_lr_schedule(lambda step, config: lr_at(step, config))

    def nested(step, config):  # hidden one level down, in a helper of its own
        def inner():
            return lr_at(step, config)
        return inner()

    with pytest.raises(CheckFailed, match="calls the package's `lr_at`"):
        check_lr_schedule(nested)
