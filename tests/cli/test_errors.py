"""Bad inputs on the command line end in one clear line and a non-zero exit, writing nothing."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from e2far_lite.cli import main
from e2far_lite.paths import data_dir
from e2far_lite.train.shipped import SHIPPED_FILE

SHIPPED = data_dir() / SHIPPED_FILE


def _huge_png_header(path, width: int = 20_000, height: int = 20_000) -> None:
    """A PNG whose header claims width x height pixels (a decompression bomb's signature)."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    start = data.index(b"IHDR")
    data[start + 4:start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[start:start + 17])) & 0xFFFFFFFF
    data[start + 17:start + 21] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))


def test_truncated_checkpoint(tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(SHIPPED.read_bytes()[:30_000])
    with pytest.raises(SystemExit, match=r"--checkpoint: .*'broken.pt'.*truncated or damaged"):
        main(["evaluate", "--checkpoint", str(broken), "--n", "2", "--no-fit"])
    photo = tmp_path / "face.png"
    Image.new("RGB", (64, 64)).save(photo)
    with pytest.raises(SystemExit, match=r"--checkpoint: .*'broken.pt'"):
        main(["reconstruct", str(photo), "--box", "0", "0", "64", "64", "--checkpoint",
              str(broken), "-o", str(tmp_path / "face.obj")])
    assert not (tmp_path / "face.obj").exists()


def test_decompression_bomb_is_refused(tmp_path):
    bomb = tmp_path / "huge.png"
    _huge_png_header(bomb)
    with pytest.raises(SystemExit, match=r"huge.png: refused as a possible decompression bomb"):
        main(["reconstruct", str(bomb), "-o", str(tmp_path / "face.obj")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.png"]


@pytest.mark.parametrize("command", [
    ["render", "--n", "1", "--out", "{blocked}/samples.png"],
    ["evaluate", "--checkpoint", str(SHIPPED), "--n", "2", "--no-fit", "--json",
     "{blocked}/figures.json"],
    ["reconstruct", "{photo}", "--box", "0", "0", "64", "64", "-o", "{blocked}/face.obj"],
    ["reconstruct", "{photo}", "--box", "0", "0", "64", "64", "-o", "{tmp}/face.obj",
     "--overlay", "{blocked}/overlay.png"],
], ids=["render", "evaluate", "reconstruct", "overlay"])
def test_unwritable_output_folder(tmp_path, command):
    photo = tmp_path / "face.png"
    Image.new("RGB", (64, 64)).save(photo)
    blocked = tmp_path / "a-file"  # a file where the output's folder should be
    blocked.write_text("not a folder")
    argv = [a.format(blocked=blocked, photo=photo, tmp=tmp_path) for a in command]
    flag = argv[argv.index(next(a for a in argv if "a-file" in a)) - 1]
    flag = {"-o": "-o/--out"}.get(flag, flag)
    with pytest.raises(SystemExit, match=f"^{flag}: cannot write .*a file stands where its "
                                         "folder should be"):
        main(argv)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "face.png"]


def test_hog_detector_without_dlib_is_one_clear_line(tmp_path, monkeypatch):
    from e2far_lite.photo import detect as photo_module

    def no_dlib():
        raise ImportError("No module named 'dlib'")

    monkeypatch.setattr(photo_module, "_hog", no_dlib)
    photo = tmp_path / "face.png"
    Image.new("RGB", (64, 64)).save(photo)
    with pytest.raises(SystemExit, match=r"^--detector: 'hog' needs dlib .*pip install dlib-bin, "
                                         r"or pass --detector cascade"):
        main(["reconstruct", str(photo), "--detector", "hog", "-o", str(tmp_path / "f.obj")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png"]


def test_train_init_that_is_missing_or_another_network(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(SystemExit, match=r"--init: expected a checkpoint file, got .*nothing.pt"):
        main(["train", "--config", "smoke", "--init", str(tmp_path / "nothing.pt"),
              "--out", str(out), "--quiet"])
    assert not out.exists()
    # the shipped network (96 px, wider) cannot start the smoke preset's
    with pytest.raises(SystemExit, match=r"--init: .*expected the network of this config"):
        main(["train", "--config", "smoke", "--init", str(SHIPPED), "--out", str(out),
              "--steps", "2", "--quiet", "--cache-dir", str(tmp_path / "cache")])
    assert not out.exists()  # the run's folder, made before the network was refused, went again


def _folder_after(tmp_path):
    return sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--checkpoint", "{smoke}", "--n", "2", "--no-fit", "--device", "foo"],
     r"^--device: expected cpu, cuda or mps, got 'foo'"),
    (["train", "--config", "smoke", "--steps", "2", "--out", "{tmp}/run", "--device", "nope:0"],
     r"^--device: expected cpu, cuda or mps, got 'nope:0'"),
    (["train", "--config", "smoke", "--out", "{tmp}/run", "--resume", "{tmp}/nothing.pt"],
     r"^--resume: expected a checkpoint file, got .*nothing.pt'?, which does not exist"),
    (["train", "--config", "smoke", "--out", "{tmp}/run", "--resume", "{tmp}/text.pt"],
     r"^--resume: .*'text.pt', refused: not a torch.save file \(text starting 'hello"),
    (["train", "--config", "smoke", "--steps", "2", "--quiet", "--out", "{tmp}/run",
      "--resume", "{shipped}", "--cache-dir", "{tmp}/cache"],
     r"^--resume: expected a training checkpoint \(with optimizer state\)"),
    (["train", "--config", "smoke", "--out", "{tmp}/text.pt"],
     r"^--out: expected a folder, got the file .*text.pt"),
    (["evaluate", "--checkpoint", "{smoke}", "--n", "2", "--cache-dir", "{tmp}/text.pt"],
     r"^--cache-dir: expected a folder, got the file"),
    (["benchmark", "--mode", "smoke", "--out", "{tmp}/text.pt"],
     r"^--out: expected a folder, got the file"),
    (["benchmark", "--mode", "smoke", "--json", "{tmp}/b.json", "--size", "64"],
     r"^--json, --size: expected only with --speed"),
    (["benchmark", "--speed", "--mode", "smoke"], r"^--mode: expected only without --speed"),
    (["render", "--size", "100000", "--out", "{tmp}/deep/a.png"],
     r"^--size: expected at most 4096 px, got 100000"),
    (["render", "--n", "100000", "--size", "16", "--out", "{tmp}/deep/a.png"],
     r"^--n: expected at most 256 samples"),
    (["evaluate", "--checkpoint", "{tmp}/text.pt", "--json", "{tmp}/deep/er/f.json"],
     r"^--checkpoint: .*not a torch.save file"),
], ids=["device-name", "device-train", "resume-missing", "resume-text", "resume-shipped",
        "out-file", "cache-file", "benchmark-out-file", "benchmark-flags", "speed-flags", "size",
        "render-n",
        "json-folder"])
def test_bad_flags_are_one_line_and_leave_nothing(tmp_path, argv, message):
    from e2far_lite.train.shipped import SMOKE_FILE

    (tmp_path / "text.pt").write_text("hello, not a checkpoint")
    before = _folder_after(tmp_path)
    argv = [a.format(tmp=tmp_path, smoke=data_dir() / SMOKE_FILE, shipped=SHIPPED)
            for a in argv]
    with pytest.raises(SystemExit, match=message):
        main(argv)
    assert _folder_after(tmp_path) == before  # no run folder, no output folders, no cache


def test_a_device_this_machine_lacks_is_named(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match=r"^--device: expected a device this machine has "
                                         r"\(cpu.*\), got 'cuda'"):
        main(["train", "--config", "smoke", "--out", str(tmp_path / "run"), "--device", "cuda"])
    assert not (tmp_path / "run").exists()


def test_a_gpu_index_this_machine_lacks_is_named(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(SystemExit, match=r"^--device: expected cuda:0 \.\. cuda:0 \(this machine "
                                         r"has 1\), got 'cuda:1'"):
        main(["evaluate", "--checkpoint", str(SHIPPED), "--device", "cuda:1"])


def test_resume_auto_from_a_damaged_last_checkpoint(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_text("hello")
    with pytest.raises(SystemExit, match=r"^--resume: expected an e2far-lite checkpoint .*, "
                                         r"got 'last.pt', refused: not a torch.save file"):
        main(["train", "--config", "smoke", "--steps", "2", "--quiet", "--out", str(run),
              "--resume", "auto", "--cache-dir", str(tmp_path / "cache")])
    assert sorted(p.name for p in run.iterdir()) == ["last.pt"]  # the run's folder is kept
