"""Training on several processes with PyTorch's DistributedDataParallel (DDP).

    torchrun --nproc_per_node 2 -m e2far_lite train --config cpu-quick

``torchrun`` starts the command N times and gives each copy ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``. :func:`~e2far_lite.train.train` reads them
through :func:`init`: with W > 1 processes it joins the process group (NCCL on CUDA, one GPU per
process, ``cuda:LOCAL_RANK``; gloo on the CPU). Without those variables, or with W = 1, nothing
changes: one process trains exactly as before.

How W processes reproduce one process with the same global batch B:

* Data: B must be divisible by W. At step s, rank r renders its own slice of the synthetic
  stream, items ``s*B + r*B/W .. s*B + (r+1)*B/W - 1`` (modulo ``train_pool`` with a pool), so
  the union over ranks is exactly the single-process batch. Indices depend only on the global
  step and B, so a run can resume with another number of processes.
* Gradients: every loss term is a mean over the batch, and DDP averages the gradients over
  ranks: the mean of W equal-sized local means is the global mean. One exception: the
  landmark term divides by the number of visible landmarks counted per rank, not over the
  global batch, which moves the gradient by about 1% (smoke preset, 2 ranks). AdamW, which
  normalises every parameter's step, turns even that into weight differences of the order of
  the learning rate (6e-3 after 6 smoke steps), though the losses agree to 4e-4 (relative).
  Without the landmark term two processes match one to 4e-6 after 6 steps.
* BatchNorm: in training mode it normalises with the statistics of the batch it sees, B/W
  images per rank. With W > 1 every BN layer is converted so that statistics cover the global
  batch: ``torch.nn.SyncBatchNorm`` on CUDA; on the CPU, where SyncBatchNorm refuses to run
  (``aten::batch_norm_stats`` has no CPU kernel in torch 2.13), :class:`AllReduceBatchNorm2d`,
  which sums per-channel sums and squared sums over ranks with a differentiable all-reduce
  (first-step gradients equal to 2e-5 relative; tests/train/test_distributed.py measures weights).
  After training the returned net keeps these layers; in eval mode they are plain BN, and
  checkpoints have the usual keys.
* Rank 0 alone validates, logs and writes checkpoints; the others wait for it in the next
  collective (the next step's gradient all-reduce, or the final broadcast). Logged loss terms
  are averaged over ranks. Every process returns rank 0's history.

A checkpoint stores the global step and the config (with B), and the optimizer state, identical
on every rank, so it loads with any number of processes.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn


@dataclass(frozen=True)
class Process:
    """Where this process stands: rank r of W processes (0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1  # W
    local_rank: int = 0  # rank on this machine: the GPU index on CUDA
    owns_group: bool = False  # init() opened the process group (close() will close it)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs and saves."""
        return self.rank == 0


def from_env() -> Process:
    """The rank and world size torchrun set (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    return Process(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def init(device: torch.device) -> tuple[Process, torch.device]:
    """Join torchrun's process group when there are several processes.

    Args:
        device: the device asked for; with W > 1 on CUDA each process takes
            ``cuda:LOCAL_RANK``.

    Returns:
        ``(process, device)``: this process and the device it trains on (``device`` itself for
        a single process).
    """
    proc = from_env()
    if proc.world_size == 1:
        return proc, device
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected cpu or cuda for {proc.world_size} processes "
                         f"(gloo or NCCL), got {device.type}")
    if device.type == "cuda":
        device = torch.device("cuda", proc.local_rank)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        # long timeout: rank 0 may render a pool or validate while the others wait
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(hours=1),
                                device_id=device if device.type == "cuda" else None)
    return Process(dist.get_rank(), dist.get_world_size(), proc.local_rank, owns), device


def close(proc: Process) -> None:
    """Leave the process group if :func:`init` opened it, once every rank is done with it: a
    rank that tore the group down while another still received its last broadcast could abort
    (seen once in CI, gloo)."""
    if proc.owns_group and dist.is_initialized():
        if proc.world_size > 1:
            dist.barrier()
        dist.destroy_process_group()


def local_batch(batch_size: int, proc: Process) -> tuple[int, int]:
    """This rank's share of a global batch: ``(first, size)``, items ``step*B + first ..``.

    Raises:
        ValueError: B is not divisible by the number of processes.
    """
    if batch_size % proc.world_size:
        raise ValueError(f"batch_size: expected a multiple of the number of processes "
                         f"({proc.world_size}), got {batch_size}")
    size = batch_size // proc.world_size
    return proc.rank * size, size


class _SumOverRanks(torch.autograd.Function):
    """``all_reduce`` (sum) that autograd goes through: every rank's share of a sum over ranks
    gets the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the global batch of all processes.

    A stand-in for ``torch.nn.SyncBatchNorm`` with gloo on the CPU. Per-channel sums and counts,
    then the sums of squared deviations from the global mean, are summed over ranks with an
    all-reduce whose backward all-reduces the gradients too, so every rank's gradient is that of
    the global batch. Outside training, or without a process group, it is a plain BatchNorm2d;
    the state dict is the same.
    """

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(input)
        channels = input.shape[1]
        dims = (0, 2, 3)
        shape = (1, channels, 1, 1)
        count = input.new_full((1,), input.numel() // channels)
        totals = _SumOverRanks.apply(torch.cat([input.sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        centred = input - mean.view(shape)
        # two passes, as accurate as BatchNorm2d itself: E[x²] - E[x]² in float32 cancels in a
        # channel whose variance is small beside its mean (mean 30, std 0.01: outputs off by
        # 6 standard deviations)
        var = _SumOverRanks.apply(centred.square().sum(dims)) / n  # biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                momentum = (self.momentum if self.momentum is not None
                            else 1.0 / float(self.num_batches_tracked))
                self.running_mean.lerp_(mean, momentum)
                self.running_var.lerp_(var * n / (n - 1), momentum)  # unbiased, as BN keeps
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def _to_all_reduce_bn(module: nn.Module, device: torch.device) -> nn.Module:
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, AllReduceBatchNorm2d):
        bn = AllReduceBatchNorm2d(module.num_features, module.eps, module.momentum,
                                  module.affine, module.track_running_stats, device=device)
        bn.load_state_dict(module.state_dict())
        if module.affine:  # keep the very Parameter objects (an optimizer may hold them)
            bn.weight, bn.bias = module.weight, module.bias
        return bn.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, _to_all_reduce_bn(child, device))
    return module


def wrap(net: nn.Module, proc: Process, device: torch.device,
         find_unused_parameters: bool = False) -> tuple[nn.Module, nn.Module]:
    """Prepare ``net`` for W processes: ``(net, train_net)``.

    With W = 1 both are ``net`` itself. With W > 1 the BN layers of ``net`` are synchronised
    (SyncBatchNorm on CUDA, :class:`AllReduceBatchNorm2d` on the CPU; the state dict keeps its
    keys) and ``train_net`` is ``net`` wrapped in DistributedDataParallel: call it for the
    training forward, and ``net`` for validation and checkpoints.
    """
    if proc.world_size == 1:
        return net, net
    if device.type == "cuda":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    else:
        net = _to_all_reduce_bn(net, device)
    ddp = nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters)
    return net, ddp


def reduce_log(running: Tensor, first_bad: Tensor, proc: Process) -> None:
    """In place, over ranks: the mean of the summed loss terms ``running`` and the earliest
    non-finite step ``first_bad`` (-1: none). One process: nothing to do."""
    if proc.world_size == 1:
        return
    dist.all_reduce(running)
    running /= proc.world_size
    never = torch.iinfo(first_bad.dtype).max
    bad = torch.where(first_bad < 0, never, first_bad)
    dist.all_reduce(bad, op=dist.ReduceOp.MIN)
    first_bad.copy_(torch.where(bad == never, -1, bad))


def broadcast(value: Any, proc: Process) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank."""
    if proc.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


@contextmanager
def main_first(proc: Process) -> Iterator[None]:
    """Rank 0 runs the ``with`` block first (e.g. renders and caches a pool), the others after
    it (and read the cache)."""
    if proc.world_size > 1 and not proc.is_main:
        dist.barrier()
    yield
    if proc.world_size > 1 and proc.is_main:
        dist.barrier()


__all__ = ["Process", "from_env", "init", "close", "local_batch", "wrap", "reduce_log",
           "broadcast", "main_first", "AllReduceBatchNorm2d"]
