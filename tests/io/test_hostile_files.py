"""Corrupt and hostile files: model ``.npz``, checkpoint ``.pt`` and FLAME ``.pkl``.

Each is refused with a ``ValueError`` (or the unpickler's ``RefusedGlobal``) whose message names
the file, quickly and without allocating what a forged header claims; nothing in a file is ever
run (payloads would create a marker file, which must not appear); a failed save leaves neither a
half-written file nor a temp file behind, and the previous file intact.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers_models import tiny_model

import e2far_lite.model.morphable_model as mm
from e2far_lite.io import atomic, safe_pickle
from e2far_lite.model.loaders import load_flame
from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.nets.network import E2FARNet
from e2far_lite.train.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import train

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(64))


class Payload:
    """Unpickling this would run ``touch MARKER`` (a shell command), i.e. arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture()
def marker(tmp_path):
    path = tmp_path / "PAYLOAD_RAN"
    yield path
    assert not path.exists(), "a payload in a file was executed"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------ npz models
def npy_bytes(shape: tuple[int, ...], descr: str = "<f4", data: bytes = b"\0" * 64) -> bytes:
    """A .npy file written by hand: version 1.0 header claiming ``shape``, then ``data``."""
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * ((-(10 + len(header) + 1)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data


def rewrite_npz(src: Path, dst: Path, replace: dict[str, bytes], drop: tuple[str, ...] = ()):
    """Copy ``src`` to ``dst`` with members replaced (by raw bytes) or dropped."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename in drop or info.filename in replace:
                continue
            zout.writestr(info.filename, zin.read(info))
        for name, data in replace.items():
            zout.writestr(name, data)
    return dst


@pytest.fixture()
def saved_model(tmp_path) -> Path:
    return tiny_model().save(tmp_path / "good.npz")


def test_the_untouched_file_loads(saved_model):
    assert MorphableModel.load(saved_model).num_vertices == 50


@pytest.mark.parametrize("kind", ["truncated", "empty", "png renamed", "zip of text",
                                  "flipped bytes"])
def test_unreadable_model_files_are_refused(tmp_path, saved_model, kind):
    data = saved_model.read_bytes()
    bad = tmp_path / "bad.npz"
    if kind == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "png renamed":
        bad.write_bytes(PNG)
    elif kind == "zip of text":
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("readme.txt", "hello")
    else:  # corrupt the compressed data in the middle, keep the zip directory
        middle = bytearray(data)
        for i in range(len(data) // 3, len(data) // 3 + 200):
            middle[i] ^= 0xFF
        bad.write_bytes(bytes(middle))
    with pytest.raises(ValueError, match=r"^path: expected .*'bad.npz'"):
        MorphableModel.load(bad)


def test_object_arrays_are_refused_without_running_them(tmp_path, saved_model, marker):
    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    bad = rewrite_npz(saved_model, tmp_path / "object.npz", {"mean.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"^path: expected plain numeric arrays .*object array "
                                         r"'mean'"):
        MorphableModel.load(bad)


@pytest.mark.parametrize("shape", [(10**6, 10**6, 3), (2**62,), (10**9, 10**9)])
def test_a_header_claiming_a_gigantic_shape_is_refused_before_reading(
        tmp_path, saved_model, monkeypatch, shape):
    """A zip-bomb-like file: a hand-made header says terabytes, the file holds 64 bytes."""
    bad = rewrite_npz(saved_model, tmp_path / "bomb.npz", {"mean.npy": npy_bytes(shape)})
    assert bad.stat().st_size < 100_000

    def no_reading(*args, **kwargs):
        raise AssertionError("np.load ran: the arrays were read before the headers were checked")

    monkeypatch.setattr(mm.np, "load", no_reading)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^path: expected array 'mean' in 'bomb.npz' to hold "
                                         r"its shape .*a corrupt file"):
        MorphableModel.load(bad)
    assert time.perf_counter() - start < 1.0


def test_zero_size_elements_cannot_claim_a_huge_count(tmp_path, saved_model, monkeypatch):
    """A dtype of 0 bytes (``V0``) with 10**12 elements: no bytes, but a loop of 10**12."""
    bad = rewrite_npz(saved_model, tmp_path / "zero.npz",
                      {"blendshape_names.npy": npy_bytes((10**12,), descr="|V0", data=b"")})
    monkeypatch.setattr(mm.np, "load", lambda *a, **k: pytest.fail("np.load ran"))
    with pytest.raises(ValueError, match=r"'blendshape_names' .*a corrupt file"):
        MorphableModel.load(bad)


def test_too_many_bytes_in_all_are_refused(tmp_path, saved_model, monkeypatch):
    """Real data beyond MAX_MODEL_BYTES (lowered here to 100 kB; the default is 2 GiB)."""
    monkeypatch.setattr(mm, "MAX_MODEL_BYTES", 100_000)
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((20_000, 3), np.float32))  # 240 kB, compresses to almost nothing
    bad = rewrite_npz(saved_model, tmp_path / "big.npz", {"mean.npy": buffer.getvalue()})
    with pytest.raises(ValueError, match=r"^path: expected at most 100000 bytes of arrays"):
        MorphableModel.load(bad)


def test_wrong_contents_name_the_array(tmp_path, saved_model):
    def npy(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    cases = {
        "missing": ({}, ("exp_std.npy",), r"^path: expected keys .*missing \['exp_std'\]"),
        "text mean": ({"mean.npy": npy(np.array(["a", "b"]))}, (),
                      r"^mean: expected numeric values in 'case.npz', got dtype <U1"),
        "float triangles": ({"triangles.npy": npy(np.full((3, 3), 0.5))}, (),
                            r"^triangles: expected integer values"),
        "bad index": ({"triangles.npy": npy(np.array([[0, 1, 999]]))}, (),
                      r"^triangles: expected indices in \[0, 49\]"),
        "wrong shape": ({"id_std.npy": npy(np.ones(3, np.float32))}, (),
                        r"^id_std: expected shape \(5,\), got \(3,\)"),
        "not an array": ({"notes.txt": b"hello"}, (),
                         r"^path: expected only .npy arrays in 'case.npz', got member 'notes"),
        "nan": ({"mean.npy": npy(np.full((50, 3), np.nan, np.float32))}, (),
                r"^mean: expected finite values"),
    }
    for case, (replace, drop, message) in cases.items():
        bad = rewrite_npz(saved_model, tmp_path / "case.npz", replace, drop)
        with pytest.raises(ValueError, match=message):
            MorphableModel.load(bad)
        bad.unlink()
        assert case


def test_a_failed_model_save_leaves_nothing_half_written(tmp_path, monkeypatch):
    model = tiny_model()
    target = model.save(tmp_path / "model.npz")
    before = target.read_bytes()

    def fail_midway(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(mm.np, "savez_compressed", fail_midway)
    with pytest.raises(OSError, match="disk full"):
        model.save(target)
    with pytest.raises(OSError, match="disk full"):
        model.save(tmp_path / "new.npz")
    monkeypatch.undo()
    assert target.read_bytes() == before  # the previous file is intact
    assert not (tmp_path / "new.npz").exists() and leftovers(tmp_path) == []
    assert MorphableModel.load(target).num_vertices == 50
    # a parent that is a file: refused by the file system, nothing written anywhere
    (tmp_path / "plain").write_text("x")
    with pytest.raises(OSError):
        model.save(tmp_path / "plain" / "model.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "plain"]


def test_saving_where_no_file_may_be_created(tmp_path, monkeypatch):
    """What a read-only folder does (as root, which CI is, a chmod cannot show it)."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError):
        tiny_model().save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes into read-only folders; needs an ordinary user")
def test_saving_into_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            tiny_model().save(folder / "model.npz")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


# ----------------------------------------------------------------------------- checkpoints
def tiny_config():
    return get_config("smoke", steps=2, val_size=8)


@pytest.fixture()
def checkpoint(tmp_path) -> Path:
    model = tiny_model()
    config = tiny_config()
    torch.manual_seed(0)
    net = E2FARNet(model.num_id, model.num_exp, config.net)
    return save_checkpoint(tmp_path / "good.pt", net, model, config, step=2,
                           optimizer=torch.optim.AdamW(net.parameters()))


def test_the_untouched_checkpoint_loads(checkpoint):
    net, model, config = load_checkpoint(checkpoint, model=tiny_model(), device="cpu")
    assert config.image_size == 64 and model.num_id == 5


@pytest.mark.parametrize("kind", ["truncated", "empty", "png renamed", "npz renamed",
                                  "pickle of a dict"])
def test_unreadable_checkpoints_are_refused(tmp_path, checkpoint, kind):
    bad = tmp_path / "bad.pt"
    if kind == "truncated":
        data = checkpoint.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        bad.write_bytes(b"")
    elif kind == "png renamed":
        bad.write_bytes(PNG)
    elif kind == "npz renamed":
        bad.write_bytes(tiny_model().save(tmp_path / "m.npz").read_bytes())
    else:  # readable, but not a checkpoint: a plain dict without the format tag
        torch.save({"net": {}}, bad)
    with pytest.raises(ValueError, match=r"^path: expected an e2far-lite checkpoint.*'bad.pt'"):
        read_checkpoint(bad)
    with pytest.raises(ValueError, match=r"^path: expected an e2far-lite checkpoint"):
        load_checkpoint(bad, model=tiny_model(), device="cpu")


@pytest.mark.parametrize("container", ["torch zip", "plain pickle"])
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, marker, container):
    payload = {"format": "e2far-lite-checkpoint", "version": 1, "net": Payload(marker)}
    evil = tmp_path / "evil.pt"
    if container == "torch zip":
        torch.save(payload, evil)
    else:
        evil.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(pickle.UnpicklingError):  # torch itself refuses, before anything runs
        torch.load(evil, weights_only=True)
    with pytest.raises(ValueError, match=r"weights_only=True\), got 'evil.pt', refused: "
                                         r"UnpicklingError") as info:
        read_checkpoint(evil)
    assert "weights_only` set to `False`" not in str(info.value)  # no advice to load unsafely


def test_a_forged_checkpoint_structure_is_refused(tmp_path, checkpoint):
    payload = torch.load(checkpoint, weights_only=True)
    for key, value, message in (
            ("net", "weights", r"expected 'net' \(dict\)"),
            ("net", {"w": [1.0, 2.0]}, r"non-tensors \['w'\]"),
            ("model", {"num_id": 5}, r"missing \['num_exp', 'num_vertices', 'fingerprint'\]"),
            ("step", "2", r"expected 'step' \(int\)"),
            ("version", 99, r"expected checkpoint version 1, got 99")):
        forged = tmp_path / "forged.pt"
        torch.save({**payload, key: value}, forged)
        with pytest.raises(ValueError, match=r"^path: .*" + message):
            read_checkpoint(forged)


def test_a_checkpoint_of_another_model_or_config_says_what_differs(tmp_path, checkpoint):
    # another model size: the shipped default (62 identity, 29 expression, 6706 vertices)
    with pytest.raises(ValueError, match=r"^model: .*another morphable model \(checkpoint vs "
                                         r"given: num_id 5 vs 62, num_exp 4 vs 29, "
                                         r"num_vertices 50 vs 6706\)"):
        load_checkpoint(checkpoint, device="cpu")
    # the same size, other numbers
    with pytest.raises(ValueError, match=r"another morphable model of the same size "
                                         r"\(fingerprint"):
        load_checkpoint(checkpoint, model=tiny_model(seed=1), device="cpu")
    # weights of another architecture under this config
    payload = torch.load(checkpoint, weights_only=True)
    other = get_config("smoke", steps=2, val_size=8, image_size=32)
    payload["net"] = E2FARNet(5, 4, other.net).state_dict()
    forged = tmp_path / "other_net.pt"
    torch.save(payload, forged)
    with pytest.raises(ValueError, match=r"(?s)the stored weights do not fit the network its "
                                         r"config describes .*size mismatch"):
        load_checkpoint(forged, model=tiny_model(), device="cpu")
    # resuming under another config: refused, every difference listed, before any training
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"^resume: checkpoint .* another config \(checkpoint "
                                         r"vs now\): .*lr: 0.002 vs 0.01.*widths"):
        train(get_config("smoke", steps=2, val_size=8, lr=1e-2,
                         net=dict(get_config("smoke").to_dict()["net"],
                                  backbone={"widths": (8, 8, 16, 32, 64)})),
              tmp_path / "run", device="cpu", progress=False, resume=checkpoint,
              model=tiny_model(), cache_dir=tmp_path / "cache")
    assert time.perf_counter() - start < 5.0


def test_a_failed_checkpoint_save_keeps_the_previous_one(tmp_path, checkpoint, monkeypatch):
    before = checkpoint.read_bytes()
    real_save = torch.save

    def fail_midway(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt  # even an interrupt (BaseException) cleans up

    monkeypatch.setattr(torch, "save", fail_midway)
    model = tiny_model()
    net = E2FARNet(model.num_id, model.num_exp, tiny_config().net)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(checkpoint, net, model, tiny_config(), step=4)
    monkeypatch.setattr(torch, "save", real_save)
    assert checkpoint.read_bytes() == before
    assert leftovers(checkpoint.parent) == []
    assert read_checkpoint(checkpoint)["step"] == 2


# ------------------------------------------------------------------------- FLAME pickles
def test_a_flame_pickle_that_would_run_code_is_refused(tmp_path, marker):
    evil = tmp_path / "generic_model.pkl"
    evil.write_bytes(pickle.dumps({"v_template": Payload(marker), "f": np.zeros((1, 3))},
                                  protocol=2))
    with pytest.raises(safe_pickle.RefusedGlobal, match=r"refused global 'posix.system'"):
        safe_pickle.load(evil)
    with pytest.raises(safe_pickle.RefusedGlobal, match=r"nothing was run"):
        load_flame(evil)


@pytest.mark.parametrize("kind", ["truncated", "empty", "png renamed", "not a dict"])
def test_unreadable_flame_files_are_refused(tmp_path, kind):
    good = pickle.dumps({"v_template": np.zeros((4, 3)), "shapedirs": np.zeros((4, 3, 2)),
                         "f": np.zeros((1, 3), np.int64)}, protocol=2)
    bad = tmp_path / "generic_model.pkl"
    bad.write_bytes({"truncated": good[: len(good) // 2], "empty": b"", "png renamed": PNG,
                     "not a dict": pickle.dumps([1, 2, 3], protocol=2)}[kind])
    # a PNG's second byte happens to be pickle's PERSID opcode: refused as such, nothing run
    refusal = r"^generic_model.pkl: refused persistent id" if kind == "png renamed" else \
        r"^path: expected a FLAME generic_model.pkl"
    with pytest.raises((ValueError, safe_pickle.RefusedGlobal), match=refusal):
        load_flame(bad)
