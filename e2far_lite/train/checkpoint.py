"""Checkpoints that load with ``torch.load(path, weights_only=True)``: tensors and plain data only.

A checkpoint is one dict, no pickled classes::

    format, version    "e2far-lite-checkpoint", 1
    config             TrainConfig.to_dict(): nested dicts of str / int / float / bool / tuple
    model              the morphable model it was trained for: num_id, num_exp, num_vertices and
                       a sha256 fingerprint of its arrays (the arrays themselves are not stored)
    net                E2FARNet.state_dict() (float16 in exported files, read back as float32)
    step               optimizer steps done
    history            list of dicts of numbers (the training log)
    extra              dict of plain values (e.g. the best validation error, the baseline)
    train_state        only in training checkpoints, for an exact resume: optimizer and
                       GradScaler state dicts, and the torch RNG states

Files are written atomically (a temp file in the same folder, then ``os.replace``), so a crash
while saving leaves the previous checkpoint intact.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import check_path
from ..errors import BadInput, MissingFile
from ..io.atomic import atomic_write
from ..io.sniff import file_head
from ..model.morphable_model import MorphableModel
from ..nets.network import E2FARNet
from .configs import TrainConfig

FORMAT = "e2far-lite-checkpoint"
VERSION = 1
_FINGERPRINT_ARRAYS = ("mean", "id_basis", "id_std", "exp_basis", "exp_std", "triangles",
                       "landmarks")


def model_fingerprint(model: MorphableModel) -> str:
    """sha256 (hex) of the model's arrays, as float32 / int64 bytes: equal models, equal hash."""
    h = hashlib.sha256()
    for name in _FINGERPRINT_ARRAYS:
        array = getattr(model, name).detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(tuple(array.shape)).encode())
        h.update(array.numpy().tobytes())
    return h.hexdigest()


def model_info(model: MorphableModel) -> dict[str, Any]:
    """What a checkpoint records about its morphable model: sizes and fingerprint."""
    return {"num_id": model.num_id, "num_exp": model.num_exp,
            "num_vertices": model.num_vertices, "fingerprint": model_fingerprint(model)}


def check_model(info: dict[str, Any], model: MorphableModel, source: str = "checkpoint") -> None:
    """Raise :class:`~e2far_lite.errors.BadInput` (``model``) naming what differs if ``model``
    is not the one in ``info``."""
    have = model_info(model)
    sizes = [f"{key} {info[key]} vs {have[key]}" for key in ("num_id", "num_exp", "num_vertices")
             if info[key] != have[key]]
    expected = f"the morphable model {source} was trained for"
    if sizes:
        raise BadInput("model", expected, f"another morphable model (checkpoint vs given: "
                                          f"{', '.join(sizes)})")
    if info["fingerprint"] != have["fingerprint"]:
        raise BadInput("model", f"{expected} (pass that one)",
                       f"another morphable model of the same size (fingerprint "
                       f"{info['fingerprint'][:12]} vs {have['fingerprint'][:12]})")


def rng_state() -> dict[str, Any]:
    """torch's CPU (and CUDA) random states, as tensors."""
    state: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only where CUDA is present)."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(payload: dict[str, Any], path: Path) -> Path:
    with atomic_write(path) as handle:
        torch.save(payload, handle)
    return path


def _state_dict(net: nn.Module, half: bool) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in net.state_dict().items():
        value = value.detach().cpu().contiguous()
        out[key] = value.half() if half and value.is_floating_point() else value.clone()
    return out


def save_checkpoint(path: str | os.PathLike, net: E2FARNet, model: MorphableModel,
                    config: TrainConfig, *, step: int = 0,
                    optimizer: torch.optim.Optimizer | None = None,
                    scaler: torch.amp.GradScaler | None = None,
                    history: list[dict[str, Any]] | None = None,
                    extra: dict[str, Any] | None = None, half: bool = False) -> Path:
    """Write a checkpoint atomically; see the module docstring for its contents.

    Args:
        path: the ``.pt`` file to write (its folder is created).
        net: the network; its state dict is stored on the CPU.
        model: the morphable model it predicts coefficients of (only its fingerprint is kept).
        config: the run's :class:`~e2far_lite.train.TrainConfig`.
        step: optimizer steps done.
        optimizer: given: a training checkpoint, with optimizer, scaler and RNG state.
        scaler: the GradScaler of fp16 training, if any.
        history: the training log (list of dicts of plain numbers).
        extra: more plain values to keep.
        half: store floating tensors of the network as float16.

    Returns:
        the path written.
    """
    payload: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "config": config.to_dict(),
        "model": model_info(model), "net": _state_dict(net, half), "step": int(step),
        "history": list(history or []), "extra": dict(extra or {}),
    }
    if optimizer is not None:
        payload["train_state"] = {
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
            "rng": rng_state(),
        }
    return _atomic_save(payload, Path(path))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The raw checkpoint dict, loaded with ``weights_only=True`` onto the CPU.

    Raises:
        MissingFile: ``path`` names no file (a ``FileNotFoundError`` too).
        BadInput: (argument ``path``) a file that is not a readable e2far-lite checkpoint:
            truncated, another format or version, entries of the wrong kind.
        TypeError: ``path`` is not a path.
    """
    path = check_path(path, "path")
    if not path.is_file():
        raise MissingFile("path", "an existing checkpoint file", repr(str(path)))
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError as err:
        raise BadInput("path", "a checkpoint file this user may read",
                       f"{path.name!r}: {err.strerror}") from None
    except Exception as err:  # truncated (OSError too), not a torch file, or a pickle naming code
        raise BadInput("path", "an e2far-lite checkpoint (a torch.save file that loads with "
                               "weights_only=True)",
                       f"{path.name!r}, refused: {_load_failure(err, path)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BadInput("path", "an e2far-lite checkpoint",
                       f"{path.name!r} without format {FORMAT!r}")
    if payload.get("version") != VERSION:
        raise BadInput("path", f"checkpoint version {VERSION}",
                       f"{payload.get('version')!r} in {path.name!r}")
    for key, kind in (("config", dict), ("model", dict), ("net", dict), ("step", int)):
        if not isinstance(payload.get(key), kind):
            raise BadInput("path", f"{key!r} ({kind.__name__}) in checkpoint {path.name!r}",
                           type(payload.get(key)).__name__)
    missing = [k for k in ("num_id", "num_exp", "num_vertices", "fingerprint")
               if k not in payload["model"]]
    not_tensors = [k for k, v in payload["net"].items() if not isinstance(v, torch.Tensor)]
    if missing or not_tensors:
        raise BadInput("path", f"model sizes and tensor weights in checkpoint {path.name!r}",
                       f"missing {missing}, non-tensors {not_tensors[:3]}")
    return payload


def _load_failure(err: Exception, path: Path) -> str:
    """Why ``torch.load`` refused ``path``, without its advice to load unsafely."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    if not head:
        return "an empty file"
    if not head.startswith((b"PK\x03\x04", b"\x80")):  # a zip (torch.save) or a pickle
        return f"not a torch.save file ({file_head(path)})"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reasons = [line for line in lines if not line.startswith(
        ("Weights only load failed", "Check the documentation", "Please file an issue"))]
    reason = (reasons or lines or ["empty or truncated file"])[0].split(". ")[0]
    if isinstance(err, OSError) or "zip archive" in reason or "central directory" in reason:
        return f"the file is truncated or damaged ({type(err).__name__}: {reason[:200]})"
    return f"{type(err).__name__}: {reason[:200]}"


def build_net(payload: dict[str, Any], model: MorphableModel, config: TrainConfig,
              source: str = "checkpoint", argument: str = "payload") -> E2FARNet:
    """An E2FARNet for ``config`` and ``model`` holding the checkpoint's weights (float32).

    Raises :class:`~e2far_lite.errors.BadInput` named ``argument`` (the caller's name for the
    checkpoint) when the weights do not fit that network; the message names ``source``.
    """
    net = E2FARNet(model.num_id, model.num_exp, config.net)
    state = {k: v.float() if v.is_floating_point() else v for k, v in payload["net"].items()}
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise BadInput(argument, "weights that fit the network its config describes",
                       f"{source}, whose do not ({err})",
                       message=f"{source}: the stored weights do not fit the network its "
                               f"config describes ({err})") from err
    return net


def load_checkpoint(path: str | os.PathLike, model: MorphableModel | None = None,
                    device: torch.device | str | None = None,
                    ) -> tuple[E2FARNet, MorphableModel, TrainConfig]:
    """Read a checkpoint (training or exported) and rebuild its network, ready to predict.

    Args:
        path: a file from :func:`save_checkpoint` or :func:`export_checkpoint`.
        model: the morphable model it was trained for; ``None``: the shipped default. Refused
            (``ValueError`` saying what differs) when its sizes or arrays do not match.
        device: where to put the network and model (default: ``devices.default_device()``).

    Returns:
        ``(net, model, config)``: the float32 network in eval mode, the morphable model and
        the :class:`~e2far_lite.train.TrainConfig` of the run.

    Raises:
        MissingFile, BadInput: see :func:`read_checkpoint` and :func:`from_payload`; each
            names ``path`` (or ``model``, for a ``model`` given that does not match).
    """
    return from_payload(read_checkpoint(path), model, device, name=Path(path).name)


def from_payload(payload: dict[str, Any], model: MorphableModel | None = None,
                 device: torch.device | str | None = None, name: str = "checkpoint",
                 ) -> tuple[E2FARNet, MorphableModel, TrainConfig]:
    """What :func:`load_checkpoint` returns, from the dict :func:`read_checkpoint` returned
    (for a caller that needs both without reading the file twice).

    Args:
        payload: the checkpoint dict.
        model, device: as for :func:`load_checkpoint`.
        name: the file's name, for messages.

    Returns:
        ``(net, model, config)``, as :func:`load_checkpoint`.

    Raises:
        BadInput: named ``path`` (the file the payload came from) when its config cannot be
            read, its weights do not fit, or (``model=None``) it was trained for another
            morphable model than the shipped one; named ``model`` when it was trained for
            another morphable model than the ``model`` given.
    """
    from ..devices import default_device

    source = f"checkpoint {name!r}"
    if model is None:
        model = MorphableModel.default()
        try:
            check_model(payload["model"], model, source)
        except BadInput as err:  # the file, not the model, is what the caller chose
            raise BadInput("path", "a checkpoint of the shipped default morphable model",
                           f"{name!r}, trained for {err.received}",
                           message=f"{err}; it is not the shipped default model, so pass "
                                   "load_checkpoint(path, model=...)") from None
    else:
        check_model(payload["model"], model, source)
    try:
        config = TrainConfig.from_dict(payload["config"])
    except (TypeError, ValueError) as err:
        raise BadInput("path", "a training config this version of e2far-lite reads",
                       f"{name!r}, refused: {err}") from None
    device = torch.device(device) if device is not None else default_device()
    net = build_net(payload, model, config, source, argument="path")
    return net.to(device).eval(), model.to(device), config


def export_checkpoint(src: str | os.PathLike, dst: str | os.PathLike,
                      half: bool = True) -> Path:
    """Write a small copy of ``src`` for committing: weights (float16 by default), config,
    model fingerprint, step, history and extra values; no optimizer or RNG state.

    :func:`load_checkpoint` reads it back as float32.
    """
    check_path(src, "src")
    if check_path(dst, "dst").is_dir():
        raise ValueError(f"dst: expected a file name for the exported checkpoint, got the "
                         f"folder {str(dst)!r}")
    try:
        payload = read_checkpoint(src)
    except BadInput as err:
        raise err.renamed("src") from None
    payload.pop("train_state", None)
    payload["net"] = {k: v.half() if half and v.is_floating_point() else v
                      for k, v in payload["net"].items()}
    return _atomic_save(payload, Path(dst))


__all__ = ["save_checkpoint", "load_checkpoint", "from_payload", "export_checkpoint",
           "read_checkpoint", "build_net", "model_fingerprint", "model_info", "check_model"]
