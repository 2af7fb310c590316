"""Crash-safe training and reproducibility.

A real ``python -m e2far_lite train`` process is killed with SIGKILL while it writes checkpoints
(once right after ``last.pt`` first appears, once the moment a later checkpoint's temp file shows
up); the previous ``last.pt`` stays loadable, ``--resume auto`` finishes the run, and the final
weights equal, bit for bit, those of an uninterrupted run with the same seed and steps.

Reproducibility: the same seed gives the same data, the same trained weights and the same
metrics (smoke preset, CPU, one thread).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from e2far_lite.model.morphable_model import MorphableModel
from e2far_lite.synth.faces import SyntheticFaces
from e2far_lite.train.checkpoint import load_checkpoint, read_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import train, validation_split

STEPS = 10
CKPT_EVERY = 2
#: a log row's timings: what another run on the same data differs in
TIMINGS = ("steps_per_s", "load_average")
SMOKE = dict(ckpt_every=CKPT_EVERY, val_every=100, log_every=2, batch_size=4, val_size=8)
# the CLI has no --ckpt-every: a driver patches the smoke preset, then runs the real CLI
DRIVER = f"""
    import sys

    from e2far_lite.train import configs

    configs.PRESETS["smoke"] = configs.get_config("smoke", **{SMOKE!r})

    from e2far_lite.cli import main

    main(sys.argv[1:])
"""


def start(driver: Path, out: Path, cache: Path, resume: bool) -> subprocess.Popen:
    args = [sys.executable, str(driver), "train", "--config", "smoke", "--steps", str(STEPS),
            "--out", str(out), "--device", "cpu", "--quiet", "--cache-dir", str(cache)]
    if resume:
        args += ["--resume", "auto"]
    # one thread: the same float arithmetic in every process, whatever the machine
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> str:
    """SIGKILL ``proc`` as soon as ``ready()`` returns a reason (polled every millisecond)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reason = ready()
        if reason:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return reason
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed:\n{proc.stdout.read()}")
        time.sleep(0.001)
    proc.kill()
    pytest.fail("timed out waiting for a checkpoint")


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.glob("last.pt*.tmp")] if out.exists() else []


def assert_loadable(path: Path) -> int:
    """``last.pt`` loads both ways; returns its step."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    net, _, config = load_checkpoint(path, device="cpu")
    assert config.steps == STEPS
    assert all(torch.equal(net.state_dict()[k], v.float() if v.is_floating_point() else v)
               for k, v in raw["net"].items())
    return raw["step"]


@pytest.mark.slow
def test_sigkill_while_checkpointing_then_resume_matches_an_uninterrupted_run(tmp_path):
    started = time.perf_counter()
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(DRIVER))
    cache = tmp_path / "cache"
    # the validation split is rendered once, here, before two runs would race to cache it
    validation_split(MorphableModel.default(), get_config("smoke", **SMOKE), cache)
    straight = start(driver, tmp_path / "straight", cache, resume=False)  # runs alongside

    out = tmp_path / "killed"
    last = out / "last.pt"
    # 1) killed right after the first last.pt appears
    proc = start(driver, out, cache, resume=False)
    kill_when(proc, lambda: "last.pt appeared" if last.exists() else "")
    first_step = assert_loadable(last)
    assert first_step % CKPT_EVERY == 0 and 0 < first_step < STEPS

    # 2) resumed, then killed the moment a later checkpoint's temp file exists (mid-write)
    proc = start(driver, out, cache, resume=True)
    stale = set(temp_files(out))

    def writing_a_later_checkpoint() -> str:
        fresh = set(temp_files(out)) - stale
        if fresh:
            return f"mid-write ({fresh.pop().name})"
        if last.exists() and read_step(last) >= first_step + 2 * CKPT_EVERY:
            return "after a later checkpoint (the temp file was too brief to see)"
        return ""

    def read_step(path: Path) -> int:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)["step"]
        except Exception:  # being replaced right now: os.replace is atomic, so retry
            return -1

    how = kill_when(proc, writing_a_later_checkpoint)
    print(f"second kill: {how}")
    second_step = assert_loadable(last)
    assert first_step <= second_step < STEPS
    history_at_kill = torch.load(last, weights_only=True)["history"]

    # 3) resumed to the end, past any temp file the kill left behind
    proc = start(driver, out, cache, resume=True)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output

    output, _ = straight.communicate(timeout=300)
    assert straight.returncode == 0, output
    a = read_checkpoint(tmp_path / "straight" / "last.pt")
    b = read_checkpoint(last)
    assert a["step"] == b["step"] == STEPS
    # it did resume: the log rows written before the kill (with their own timings) were kept
    assert b["history"][:len(history_at_kill)] == history_at_kill
    assert b["history"][:len(history_at_kill)] != a["history"][:len(history_at_kill)]
    assert a["net"].keys() == b["net"].keys()
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    for key, value in a["train_state"]["optimizer"]["state"].items():
        for name, tensor in value.items():
            assert torch.equal(tensor, b["train_state"]["optimizer"]["state"][key][name])
    def last_validation(history: list[dict]) -> dict:
        row = [r for r in history if "val_total_mm" in r][-1]
        return {k: v for k, v in row.items() if k not in TIMINGS}

    assert last_validation(a["history"]) == last_validation(b["history"])
    print(f"kill/resume test: {time.perf_counter() - started:.1f} s")


# ----------------------------------------------------------------------- reproducibility
def test_the_same_seed_gives_the_same_data(default_model: MorphableModel):
    a = SyntheticFaces(default_model, 8, seed=5, config=get_config("smoke").data)
    b = SyntheticFaces(default_model, 8, seed=5, config=get_config("smoke").data)
    first, second = a.batch(range(4)), b.batch(range(4))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    # an item does not depend on the batch it is rendered in
    assert torch.equal(a[2]["image"], first["image"][2])
    other = SyntheticFaces(default_model, 8, seed=6, config=get_config("smoke").data)
    assert not torch.equal(other.batch(range(4))["image"], first["image"])


@pytest.mark.slow
def test_the_same_seed_gives_the_same_weights_and_metrics(tmp_path):
    config = get_config("smoke", steps=4, batch_size=4, val_size=8, log_every=2, val_every=4,
                        ckpt_every=4, warmup_steps=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same reductions in both runs
    try:
        runs = [train(config, tmp_path / f"run{i}", device="cpu", progress=False,
                      cache_dir=tmp_path / "cache") for i in range(2)]
        other = train(dataclasses.replace(config, seed=1), tmp_path / "seed1", device="cpu",
                      progress=False, cache_dir=tmp_path / "cache")
    finally:
        torch.set_num_threads(threads)
    a, b = (r.net.state_dict() for r in runs)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert runs[0].final == runs[1].final
    strip = [{k: v for k, v in row.items() if k not in TIMINGS} for row in runs[0].history]
    assert strip == [{k: v for k, v in row.items() if k not in TIMINGS}
                     for row in runs[1].history]
    # and another seed really is another network
    assert not torch.equal(other.net.state_dict()["id_head.1.weight"], a["id_head.1.weight"])
