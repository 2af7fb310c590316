"""Does the learning curve's extrapolation hold? A line fitted on one run, checked on a longer one.

    python experiments/curve_prediction.py --predict
    python experiments/curve_prediction.py --measured ~/runs/night/cpu-night

``--predict`` fits :func:`~e2far_lite.analysis.faces_for_goals`'s lines to the first stage of
the shipped network's validation curve and writes them, with the goals and the faces each line
needs for them, to ``experiments/curve_prediction.json``. It ran while that first stage was
``cpu-full`` (1,152,000 faces, fitted from 288,000), before the overnight network replaced it:
the file keeps the prediction as it was made.

``--measured RUN`` reads the validation curve of a longer first stage trained on the same
validation faces (``RUN/history.json`` as :func:`~e2far_lite.train` writes it, e.g. the
``cpu-night`` stage of ``data/make_checkpoint.py --first cpu-night``) and adds it to the file:
at every validation point from 288,000 faces on, the measured figure beside the line's, and,
per figure, where the measured curve first reached its goal against where the line said it
would. It refuses a run validated on other faces (another baseline). Seconds.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from e2far_lite.analysis.curves import faces_for_goals
from e2far_lite.errors import BadInput
from e2far_lite.io.json_files import write_json
from e2far_lite.paths import data_dir

OUT = Path(__file__).resolve().parent / "curve_prediction.json"
#: The first face count fitted, and so the first one compared.
START = 288_000


def prediction(record: dict[str, Any]) -> dict[str, Any]:
    """The lines of :func:`faces_for_goals` on ``record``'s first stage, JSON-ready.

    Args:
        record: ``data/e2far_lite.json`` while its first stage is ``cpu-full``.

    Returns:
        ``fitted_on`` (the stage, its faces, the first face count fitted, its command),
        ``mean_shape`` (the validation faces' mean-shape figures, mm) and ``lines``
        (``{figure: faces_for_goals' fields}``).
    """
    training = record["training"]
    stage = training["stages"][0]
    if stage["preset"] != "cpu-full":
        raise BadInput("record", "the shipped record while its first stage is cpu-full "
                       "(the prediction is made once, from that run)", stage["preset"])
    return {"fitted_on": {"preset": stage["preset"], "faces_seen": stage["faces_seen"],
                          "from_faces": START, "command": stage["command"]},
            "mean_shape": training["curve_mean_shape"],
            "lines": faces_for_goals(record, start=START)}


def line_at(line: dict[str, float], faces: float) -> float:
    """A fitted line's figure after ``faces`` faces."""
    return line["intercept"] + line["per_doubling"] * math.log2(faces)


def compare(predicted: dict[str, Any], history: dict[str, Any], run: str) -> dict[str, Any]:
    """The measured curve of a run against the predicted lines, from :data:`START` faces on.

    Args:
        predicted: :func:`prediction`'s dict.
        history: the run's ``history.json`` (``config.batch_size``, ``baseline``: the mean
            shape's figures on its validation faces, ``rows`` with ``step`` and ``val_*``).
        run: the run's name, for the record.

    Returns:
        ``run``, ``steps_done``, ``steps_planned``, ``faces_seen`` (at the last validation),
        ``points`` (per validation: ``faces`` and ``{figure: {"measured", "predicted"}}``) and
        ``goals`` (per figure: the goal, the faces the line needed for it, the first measured
        point at or below it or None, and the figure at the end, measured and predicted).

    Raises:
        BadInput: a run validated on other faces (another mean-shape baseline), a validation
            figure that is not a number (a diverged run), or no validation from START on.
    """
    mean_shape = predicted["mean_shape"]
    for key, value in mean_shape.items():
        got = history["baseline"].get(key)
        if got is None or abs(got - value) > 1e-4 * abs(value):
            raise BadInput("history", f"a run validated on the predicted curve's faces "
                           f"(mean shape {key} {value:.4f})", f"{key} {got}")
    batch = history["config"]["batch_size"]
    lines = predicted["lines"]
    rows = [r for r in history["rows"]
            if any(f"val_{key}" in r for key in lines) and r["step"] * batch >= START]
    for r in rows:
        bad = [key for key in lines if not isinstance(r.get(f"val_{key}"), (int, float))]
        if bad:
            raise BadInput("history", "a number for every figure at every validation",
                           f"{bad[0]} {r.get(f'val_{bad[0]}')} at step {r['step']}")
    points = [{"faces": r["step"] * batch,
               **{key: {"measured": r[f"val_{key}"], "predicted": line_at(line, r["step"] * batch)}
                  for key, line in lines.items()}} for r in rows]
    if not points:
        raise BadInput("history", f"validation points from {START:,} faces on", "none")
    reached = {}
    for key, line in lines.items():
        first = next((p["faces"] for p in points if p[key]["measured"] <= line["goal"]), None)
        reached[key] = {"goal": line["goal"], "predicted_faces": line["faces"],
                        "measured_faces": first,
                        "at_end": points[-1][key]["measured"],
                        "predicted_at_end": points[-1][key]["predicted"]}
    return {"run": run,
            "steps_done": history["steps_done"], "steps_planned": history["steps_planned"],
            "faces_seen": points[-1]["faces"], "points": points, "goals": reached}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--predict", action="store_true",
                      help="fit the lines to data/e2far_lite.json's first stage")
    mode.add_argument("--measured", type=Path, metavar="RUN",
                      help="a run folder with history.json: add its curve")
    parser.add_argument("--json", type=Path, default=OUT, help="the file to write")
    args = parser.parse_args()
    try:
        if args.predict:
            if args.json.exists():
                raise BadInput("json", "a file that does not exist yet (the prediction is "
                               "made once, before a longer run replaces its record)",
                               str(args.json))
            record = json.loads((data_dir() / "e2far_lite.json").read_text())
            out = {"prediction": prediction(record),
                   "command": "python experiments/curve_prediction.py --predict"}
        else:
            out = json.loads(args.json.read_text())
            history = json.loads((args.measured / "history.json").read_text())
            out["measured"] = compare(out["prediction"], history, args.measured.name)
            out["measured"]["command"] = ("python experiments/curve_prediction.py --measured "
                                          f"RUNS/{args.measured.name}")
    except BadInput as error:
        flag = {"history": "--measured", "json": "--json", "record": "--predict"}
        raise SystemExit(str(error.renamed(flag.get(error.argument, error.argument)))) from None
    write_json(args.json, out)
    for key, line in out["prediction"]["lines"].items():
        print(f"{key:<14} line {line['intercept']:.3f} {line['per_doubling']:+.4f}/doubling: "
              f"goal {line['goal']:.3f} at {line['faces'] / 1e6:.2f} M faces")
    if "measured" in out:
        m = out["measured"]
        print(f"{m['run']}: {m['faces_seen']:,} faces ({m['steps_done']} of "
              f"{m['steps_planned']} steps)")
        for key, g in m["goals"].items():
            met = (f"reached at {g['measured_faces'] / 1e6:.2f} M" if g["measured_faces"]
                   else "not reached")
            print(f"{key:<14} at the end {g['at_end']:.3f} (line {g['predicted_at_end']:.3f}); "
                  f"goal {met}, line {g['predicted_faces'] / 1e6:.2f} M")


if __name__ == "__main__":
    main()
