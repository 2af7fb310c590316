"""Training: the smoke run learns, resume is exact, NaN stops with the checkpoint intact, CLI."""

from __future__ import annotations

import csv
import json

import pytest
import torch

import e2far_lite.train.loop as train_module
from e2far_lite.cli import main
from e2far_lite.train.checkpoint import read_checkpoint
from e2far_lite.train.configs import get_config
from e2far_lite.train.loop import lr_at, train
from e2far_lite.train.losses import MultiTaskLoss


def _tiny(**overrides):
    """The smoke preset cut to a few steps on few faces: seconds per run."""
    settings = dict(steps=8, batch_size=4, val_size=8, log_every=2, val_every=4, ckpt_every=4,
                    warmup_steps=2)
    return get_config("smoke", **{**settings, **overrides})


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    rows = []
    result = train("smoke", out / "run", device="cpu", progress=False, cache_dir=out / "cache",
                   callback=lambda step, row: rows.append((step, dict(row))))
    return result, rows


@pytest.mark.slow
def test_smoke_training_lowers_the_validation_error(smoke_run):
    result, rows = smoke_run
    first, last = result.history[0], result.history[-1]
    assert first["step"] == 0 and last["step"] == result.config.steps
    # same split at step 0 and at the end. In 60 tiny steps the landmark error falls clearly
    # (about 15% -> 9%); the 3D error barely moves yet (it takes the cpu-quick preset), so it
    # is only required not to get worse.
    assert last["val_nme_pct"] < 0.8 * first["val_nme_pct"]
    assert last["val_total_mm"] < 1.01 * first["val_total_mm"]
    assert result.final["total_mm"] == last["val_total_mm"]
    assert set(result.baseline) == {"total_mm", "neutral_mm", "total_sim_mm", "neutral_sim_mm",
                                    "expression_mm"}
    # the callback saw the step-0 validation and every logged step
    assert [s for s, _ in rows] == [r["step"] for r in result.history]
    assert not result.net.training


@pytest.mark.slow
def test_outputs_are_written(smoke_run):
    result, _ = smoke_run
    for key in ("last", "best", "csv", "json"):
        assert result.paths[key].is_file(), key
    with open(result.paths["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.history)
    assert {"step", "lr", "loss_total", "val_total_mm"} <= set(rows[0])
    assert read_checkpoint(result.paths["last"])["step"] == result.config.steps


def test_lr_schedule_warms_up_then_decays():
    config = get_config("smoke", steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    lrs = [lr_at(s, config) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert lrs[-1] == pytest.approx(0.1)


def test_amp_on_a_cpu_is_bf16_only_where_the_cpu_multiplies_bf16(monkeypatch):
    cpu = torch.device("cpu")
    assert train_module.amp_dtype(get_config("smoke"), cpu) is None  # amp off: float32
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: True)
    assert train_module.amp_dtype(get_config("smoke", amp=True), cpu) == torch.bfloat16
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: False)
    assert train_module.amp_dtype(get_config("smoke", amp=True), cpu) is None


def test_bf16_autocast_on_a_cpu_trains_like_float32(tmp_path, monkeypatch):
    # forced on, whatever this CPU has: bf16 is emulated where it is not native (slow, but right)
    monkeypatch.setattr(train_module, "cpu_has_fast_bf16", lambda: True)
    runs = {amp: train(_tiny(amp=amp, steps=12), tmp_path / str(amp), device="cpu",
                       progress=False, cache_dir=tmp_path / "cache")
            for amp in (False, True)}
    float32, bf16 = runs[False].history, runs[True].history
    assert [r["step"] for r in bf16] == [r["step"] for r in float32]
    # the same faces, weights and steps: bf16's rounding moves the loss by a little, not more
    assert sum("loss_total" in r for r in bf16) >= 5
    for a, b in zip(float32, bf16, strict=True):
        if "loss_total" in a:
            assert b["loss_total"] == pytest.approx(a["loss_total"], rel=0.05)
    assert bf16[-1]["val_total_mm"] == pytest.approx(float32[-1]["val_total_mm"], rel=0.02)
    # the saved weights are float32 (autocast keeps float32 master weights)
    weights = read_checkpoint(runs[True].paths["last"])["net"]
    assert {t.dtype for t in weights.values() if t.is_floating_point()} == {torch.float32}


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    config = _tiny()
    straight = train(config, tmp_path / "straight", device="cpu", progress=False,
                     cache_dir=tmp_path / "cache")

    class Interrupt(Exception):
        pass

    def stop_after_first_checkpoint(step, row):
        if step == config.ckpt_every:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(config, tmp_path / "halves", device="cpu", progress=False,
              cache_dir=tmp_path / "cache", callback=stop_after_first_checkpoint)
    assert read_checkpoint(tmp_path / "halves" / "last.pt")["step"] == config.ckpt_every
    resumed = train(config, tmp_path / "halves", device="cpu", progress=False,
                    cache_dir=tmp_path / "cache", resume="auto")
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [r["step"] for r in resumed.history] == [r["step"] for r in straight.history]
    assert resumed.final == straight.final


@pytest.mark.slow  # a few seconds: CI runs it, the fast lane does not
def test_a_time_budget_stops_early_validates_saves_and_resumes(tmp_path):
    config = _tiny(steps=40)
    result = train(config, tmp_path / "run", device="cpu", progress=False,
                   cache_dir=tmp_path / "cache", time_budget_s=1e-3)
    # used up before the first step ended: one step, then validated and saved as at the end
    assert result.steps_done == 1 and result.steps_planned == 40 and result.stopped_early
    last = result.history[-1]
    assert last["step"] == 1 and "val_total_mm" in last and result.final["total_mm"] == \
        last["val_total_mm"]
    assert last["lr"] == pytest.approx(lr_at(0, config))  # the 40-step schedule, not shortened
    assert read_checkpoint(result.paths["last"])["step"] == 1
    logged = json.loads(result.paths["json"].read_text())
    assert (logged["steps_done"], logged["steps_planned"]) == (1, 40)
    # the same folder, resumed without a budget, finishes the run
    rest = train(config, tmp_path / "run", device="cpu", progress=False,
                 cache_dir=tmp_path / "cache", resume="auto")
    assert rest.steps_done == 40 and not rest.stopped_early
    assert [r["step"] for r in rest.history][:2] == [0, 1]
    with pytest.raises(ValueError, match="time_budget_s"):
        train(config, tmp_path / "bad", device="cpu", progress=False,
              cache_dir=tmp_path / "cache", time_budget_s=0)


def test_a_time_budget_never_reached_changes_nothing(tmp_path):
    config = _tiny()
    runs = [train(config, tmp_path / str(budget), device="cpu", progress=False,
                  cache_dir=tmp_path / "cache", time_budget_s=budget) for budget in (None, 1e6)]
    plain, budgeted = runs
    assert budgeted.steps_done == plain.steps_done == config.steps
    assert not budgeted.stopped_early
    assert [r["step"] for r in budgeted.history] == [r["step"] for r in plain.history]
    a, b = plain.net.state_dict(), budgeted.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert budgeted.final == plain.final


def test_resume_refuses_another_config(tmp_path):
    train(_tiny(steps=4), tmp_path / "run", device="cpu", progress=False,
          cache_dir=tmp_path / "cache")
    with pytest.raises(ValueError, match="lr: 0.002 vs 0.001"):
        train(_tiny(steps=4, lr=1e-3), tmp_path / "run", device="cpu", progress=False,
              cache_dir=tmp_path / "cache", resume="auto")


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    calls = {"n": 0}

    class PoisonedLoss(MultiTaskLoss):
        def forward(self, pred, target):
            terms = super().forward(pred, target)
            calls["n"] += 1
            if calls["n"] == 7:  # the loss of step 7
                terms["total"] = terms["total"] * float("nan")
            return terms

    monkeypatch.setattr(train_module, "MultiTaskLoss", PoisonedLoss)
    config = _tiny(steps=12, log_every=4, ckpt_every=3, val_every=100)
    with pytest.raises(RuntimeError, match="non-finite loss at step 7"):
        train(config, tmp_path / "run", device="cpu", progress=False,
              cache_dir=tmp_path / "cache")
    payload = read_checkpoint(tmp_path / "run" / "last.pt")
    assert payload["step"] == 6
    assert all(torch.isfinite(v).all() for v in payload["net"].values()
               if v.is_floating_point())


@pytest.mark.slow
def test_cli_train_and_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--config", "smoke", "--out", str(out), "--steps", "4", "--device", "cpu",
          "--quiet", "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert "mean shape" in printed and "vertex RMSE" in printed
    for name in ("last.pt", "best.pt", "history.csv", "history.json", "loss_curves.png"):
        assert (out / name).is_file(), name
    main(["evaluate", "--checkpoint", str(out / "last.pt"), "--n", "8", "--device", "cpu",
          "--cache-dir", str(tmp_path / "cache")])
    printed = capsys.readouterr().out
    assert "step 4" in printed and "mean_shape" in printed and "fit_true_landmarks" in printed
    with pytest.raises(SystemExit, match="--config"):
        main(["train", "--config", "nope", "--out", str(out)])


def test_any_model_trains_and_reloads(tmp_path, small_model):
    """A model of another size, without blend shapes, goes through training and checkpoints."""
    from e2far_lite.train.checkpoint import load_checkpoint

    config = get_config("smoke", steps=4, val_size=8, val_every=4, ckpt_every=4)
    result = train(config, tmp_path / "run", device="cpu", progress=False,
                   cache_dir=tmp_path / "cache", model=small_model)
    net, model, _ = load_checkpoint(result.paths["last"], model=small_model)
    assert model.num_vertices == small_model.num_vertices
    out = net(torch.rand(2, 3, config.image_size, config.image_size))
    assert out["a_id"].shape == (2, small_model.num_id)
    with pytest.raises(ValueError):
        load_checkpoint(result.paths["last"])  # the default model does not match


def test_init_starts_from_a_checkpoints_weights(tmp_path):
    first = train(_tiny(steps=4), tmp_path / "first", device="cpu", progress=False,
                  cache_dir=tmp_path / "cache")
    seen = {}

    def at_start(step, row):
        if step == 0:
            seen.update(row)

    second = train(_tiny(steps=4, init=str(first.paths["best"]), lr=1e-3),
                   tmp_path / "second", device="cpu", progress=False,
                   cache_dir=tmp_path / "cache", callback=at_start)
    # step 0 validates the init's weights: the figures the first run's best step had
    best = min((r for r in first.history if "val_total_mm" in r), key=lambda r: r["val_total_mm"])
    assert seen["val_total_mm"] == pytest.approx(best["val_total_mm"], rel=1e-6)
    assert read_checkpoint(second.paths["last"])["config"]["init"] == str(first.paths["best"])


def test_init_refuses_another_network_or_a_missing_file(tmp_path):
    first = train(_tiny(steps=2, val_every=2, ckpt_every=2), tmp_path / "first", device="cpu",
                  progress=False, cache_dir=tmp_path / "cache")
    other = get_config("smoke", steps=2, batch_size=4, val_size=8, log_every=2, val_every=2,
                       ckpt_every=2, warmup_steps=1, init=str(first.paths["best"]),
                       image_size=96)
    with pytest.raises(ValueError, match="net.image_size: 64 vs 96"):
        train(other, tmp_path / "other", device="cpu", progress=False,
              cache_dir=tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="init: expected a checkpoint file"):
        train(_tiny(init=str(tmp_path / "nothing.pt")), tmp_path / "none", device="cpu",
              progress=False, cache_dir=tmp_path / "cache")
