"""The speed figures of docs/results.md are those of the committed records that hold them."""

from __future__ import annotations

import json

import pytest

from e2far_lite.paths import REPO_ROOT
from e2far_lite.synth.realism import feature_weights

RESULTS = (REPO_ROOT / "docs" / "results.md").read_text()


def _record(name: str) -> dict:
    return json.loads((REPO_ROOT / "experiments" / name).read_text())


def _row(label: str) -> str:
    """The table row of docs/results.md that starts with ``label``."""
    rows = [line for line in RESULTS.splitlines() if line.startswith(f"| {label}")]
    assert len(rows) == 1, f"one row starting {label!r} expected, found {len(rows)}"
    return rows[0]


def test_speed_table_is_speed_cpu_json():
    r = _record("speed_cpu.json")
    assert f"| {r['peak_gflops']['float32']:.0f} GFLOP/s |" in _row("float32 matmul peak")
    assert f"**{r['rendering']['samples_per_s']:,.0f} images/s**" in _row("full training samples")
    render = f"| {r['rendering']['render_per_s']:,.0f} / {r['rendering']['render_torch_per_s']:.0f}"
    assert render in _row("renderer alone")
    for name in ("default", "cpu-quick"):
        t = r["training"][name]
        row = _row(f"training `{name}`")
        assert f"{t['images_per_s']:.0f}" in row or f"{t['images_per_s']:.1f}" in row
        assert f"{t['net_images_per_s']:.0f}" in row or f"{t['net_images_per_s']:.1f}" in row
    default = r["inference"]["E2FARNet default"]
    row = _row("E2FARNet `default` inference, 202 MMACs")
    assert f"{default['ms_per_image_b64']:.2f} ms/image" in row
    assert f"{100 * default['of_peak']:.0f} % of peak" in row
    assert f"**{default['b1_vs_mobilenet']:.2f}x MobileNetV1**" in _row(
        "E2FARNet `default` inference, batch 1")


def test_bf16_table_is_speed_cpu_bf16_json():
    r = _record("speed_cpu_bf16.json")
    bf16, f32 = r["training"]["cpu-2h"], r["training"]["cpu-2h float32"]
    assert (f"| {r['peak_gflops']['bfloat16']:.0f} GFLOP/s | {r['peak_gflops']['float32']:.0f}"
            in _row("matmul peak"))
    whole = _row("training `cpu-2h` (96 px, batch 32): whole steps")
    assert f"{bf16['images_per_s']:.1f} images/s | {f32['images_per_s']:.1f}" in whole
    assert f"**{bf16['images_per_s'] / f32['images_per_s']:.2f}x**" in whole
    assert f"{bf16['net_images_per_s']:.1f} images/s" in _row("the network alone")


@pytest.mark.parametrize(("label", "piece"), [
    ("plain data", "plain data"),
    ("+ eyebrows and lips", "features (0.5 of faces)"),
    ("+ eyeballs and mouth interior", "interior (0.5 of faces)"),
    ("+ head, neck and hair", "head (0.5 of faces)"),
    ("+ occluder", "occluder (0.3 of faces)"),
    ("+ JPEG", "jpeg (0.5 of faces)"),
    ("the batch with all five levers", "all levers"),
    ("network (forward", "network"),
    ("whole step |", "whole step")])
def test_step_breakdown_table_is_its_record(label, piece):
    entries = _record("step_breakdown.json")
    before, after = entries["before (052f49b)"], entries["after"]
    cells = [c.strip() for c in _row(label).split("|")[2:4]]
    assert cells == [f"{before['ms_per_batch'][piece]:.1f}", f"{after['ms_per_batch'][piece]:.1f}"]


def test_step_breakdown_ratio_and_claims():
    entries = _record("step_breakdown.json")
    before, after = entries["before (052f49b)"], entries["after"]
    row = _row("whole steps against the network alone")
    assert f"| {before['whole_vs_network']:.2f}x | {after['whole_vs_network']:.2f}x |" in row
    text = " ".join(RESULTS.split())

    def added(entry):  # what the levers add to a plain batch
        return entry["ms_per_batch"]["all levers"] - entry["ms_per_batch"]["plain data"]

    b, a = before["ms_per_batch"], after["ms_per_batch"]
    assert (f"The levers now add {added(after):.1f} ms to a plain batch instead of "
            f"{added(before):.1f}, and a whole step takes {a['whole step']:.1f} ms instead of "
            f"{b['whole step']:.1f}.") in text
    assert f"varied by {abs(a['network'] - b['network']):.1f} ms" in text
    assert added(after) < added(before) and a["whole step"] < b["whole step"]
    assert all(e["repeats"] == 40 for e in (before, after)) and "median of 40 timings" in text


def test_painted_vertex_count_is_the_models(default_model):
    brows, lips = feature_weights(default_model.mean.float(), default_model.landmarks)
    painted = int(((brows > 0) | (lips > 0)).sum())
    assert f"{painted:,} of {default_model.num_vertices:,} vertices" in RESULTS
