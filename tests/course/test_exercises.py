"""The notebooks' exercise checks: each reference solution passes its own check.

A notebook calls ``check(name, None)`` until the student answers, and that returns before the
solution runs; here every solution runs for real (in smoke mode: the smoke-trained network).
"""

from __future__ import annotations

import json
import re

import pytest

from e2far_lite import exercises
from e2far_lite.exercises import SOLUTIONS, check
from e2far_lite.paths import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
SLOW = {"07_most_spatial_layer"}  # linear probes over every layer: about 6 s a run


def notebook_checks() -> dict[str, str]:
    """``{exercise name: notebook}`` for every ``check("...")`` in the notebooks' code."""
    found = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text("utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                for name in re.findall(
                    r"""\bcheck\(\s*["']([^"']+)["']""", "".join(cell["source"])
                ):
                    found[name] = path.name
    return found


def test_every_exercise_is_used_by_a_notebook_and_the_other_way_round():
    used = notebook_checks()
    assert used, f"no check(...) calls found in {NOTEBOOKS}"
    assert sorted(set(SOLUTIONS) - set(used)) == [], "exercises no notebook checks"
    assert sorted(set(used) - set(SOLUTIONS)) == [], "notebooks check unknown exercises"


@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in SOLUTIONS],
)
def test_reference_solution_passes(name, monkeypatch, capsys):
    monkeypatch.setenv("E2FAR_SMOKE", "1")
    solution, hint = SOLUTIONS[name]
    expected = solution()
    assert expected is not None
    answer = expected
    if isinstance(expected, frozenset):  # several equally right answers: each passes
        assert expected and all(check(name, a) for a in expected)
        answer = min(expected)
        capsys.readouterr()
    # check() runs the solution a second time: the answer must not change from run to run
    assert check(name, answer) is True
    assert capsys.readouterr().out.strip() == "Correct!"

    # a wrong answer and no answer fail, with the hint (the solution is not run again)
    monkeypatch.setitem(SOLUTIONS, name, (lambda: expected, hint))
    wrong = answer + "?" if isinstance(answer, str) else answer + 1
    assert check(name, wrong) is False
    assert check(name, None) is False
    out = capsys.readouterr().out
    assert f"Not quite ({wrong!r})" in out and "Not answered yet" in out
    assert out.count(f"Hint: {hint}.") == 2


def test_float_answers_within_the_tolerance_pass(monkeypatch, capsys):
    monkeypatch.setitem(SOLUTIONS, "x", (lambda: 10.0, "h"))
    assert check("x", 10.0 + 1e-6) and check("x", 10) and not check("x", 10.1)
    assert not check("x", "10.0")


def test_unknown_name_is_an_error():
    with pytest.raises(ValueError, match="name: expected one of"):
        check("99_no_such_exercise", 1)


def test_register_adds_an_exercise(monkeypatch):
    monkeypatch.setattr(exercises, "SOLUTIONS", dict(SOLUTIONS))
    exercises.register("99_answer", lambda: 42, "it is 42")
    assert exercises.check("99_answer", 42)


def test_the_answers_the_hints_lead_to_pass(capsys):
    import numpy as np
    import torch

    from e2far_lite import MorphableModel
    from e2far_lite.synth.faces import SyntheticFaces

    model = MorphableModel.default()
    # 05: one std of component 0, squared, averaged over the vertices (float32, another order
    # of sums than the Gram matrix the reference uses)
    assert check("05_unit_identity_error", float(model.id_std[0] ** 2 / model.num_vertices))
    # 02: the mean left as a 0-d tensor, as the hint's code leaves it
    batch = SyntheticFaces(model, 64, seed=0).batch(range(64))
    assert check("02_hidden_share", 1 - batch["visible"].float().mean())
    # 00: numpy and tensor integers are integers; a bool or a string is not a number
    assert check("00_num_vertices", np.int64(model.num_vertices))
    assert check("00_num_vertices", torch.tensor(model.num_vertices))
    assert not check("00_num_vertices", str(model.num_vertices))
    assert not check("00_num_vertices", model.num_vertices + 0.5)
    capsys.readouterr()


def test_numbers_that_are_not_numbers_are_wrong(monkeypatch, capsys):
    import numpy as np
    import torch

    monkeypatch.setitem(SOLUTIONS, "n", (lambda: 1, "h"))
    for wrong in (True, np.True_, torch.tensor(True), b"1", "1", np.array([1, 1]),
                  torch.tensor([1.0, 1.0]), None):
        assert not check("n", wrong), wrong
    for right in (1, 1.0, np.int64(1), np.array([1]), torch.tensor([[1]])):
        assert check("n", right), right
    monkeypatch.setitem(SOLUTIONS, "s", (lambda: "mouth", "h"))
    assert check("s", "mouth")
    assert not check("s", np.array(["mouth", "jaw"])) and not check("s", ["mouth"])
    capsys.readouterr()


def test_mirror_twins_are_both_right(capsys):
    assert check("01_broadest_blendshape", "mouthLeft")
    assert check("01_broadest_blendshape", "mouthRight")
    assert not check("01_broadest_blendshape", "jawOpen")
    capsys.readouterr()
