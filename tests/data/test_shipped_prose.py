"""The shipped network's figures wherever prose states them: README's caption, docs/training.md's
expression bins and paired differences, docs/real-photos.md's and notebook 10's development-face
tables, the notebooks' training minutes, and the refining default's comment, each against the
committed record it comes from (data/e2far_lite.json, experiments/detector_study.json)."""

import json
import re

import pytest
from doc_text import doc_page as _page
from doc_text import flat as _flat
from doc_text import notebook_prose as _notebook

from e2far_lite import photo
from e2far_lite.analysis import faces_for_goals
from e2far_lite.paths import REPO_ROOT, data_dir, experiments_dir

RECORD = json.loads((data_dir() / "e2far_lite.json").read_text())
#: the network shipped before this one, kept when it was replaced
PREVIOUS = json.loads((experiments_dir() / "previous_network" / "e2far_lite.json").read_text())
PREVIOUS_STUDY = json.loads((experiments_dir() / "previous_network" / "detector_study.json"
                             ).read_text())["landmark_nme"]["rows"]
STUDY = json.loads((experiments_dir() / "detector_study.json").read_text())["landmark_nme"]
ROWS = STUDY["rows"]
#: docs/real-photos.md's and notebook 10's row labels -> the study's one-pass row
BOXES = {"hog": "detected: dlib HOG, HOG_BOX", "cascade": "detected: scikit-image LBP cascade, "
         "CASCADE_BOX", "annotated": "annotated box (the file's)",
         "landmarks": "landmarks' own box"}


def _refined(box: str, passes: int = 1) -> dict:
    return ROWS[f"{BOXES[box]}, refined ({passes} re-crop{'s' if passes > 1 else ''})"]


def test_training_minutes_are_the_records():
    minutes = RECORD["training"]["minutes"]
    readme = _flat((REPO_ROOT / "README.md").read_text())
    assert f"trained for {round(minutes)} min on a 2-core CPU" in readme
    assert f"{round(minutes)} minutes on a 2-core CPU, as recorded in" in _notebook(
        "07_which_layers_drive_expression")
    assert f"the shipped network trained for about {round(minutes, -1):.0f}." in _notebook(
        "09_what_limits_accuracy")


def test_first_stage_in_notebook_09_is_the_records():
    stage = RECORD["training"]["stages"][0]
    text = _notebook("09_what_limits_accuracy")
    assert f"every step, {stage['faces_seen'] / 1e6:.2f} million of them) for about " \
           f"{round(stage['minutes'])} minutes" in text
    assert f"for about {round(RECORD['training']['stages'][1]['minutes'])} minutes more" in text


def test_expression_bins_in_docs_are_the_records():
    bins = RECORD["expression_by_pixels"]
    training = _page("training.md")
    assert f"(median {bins['median_px']:.2f} px)" in training
    for k, faces in enumerate(bins["faces"]):
        low, high = bins["edges_px"][k], bins["edges_px"][k + 1]
        label = f"≥ {low:g} px" if high is None else f"{low:g}–{high:g} px"
        assert (f"| {label} | {faces} | {bins['network'][k]:.2f} mm | "
                f"{bins['mean_shape'][k]:.2f} mm | {bins['fit_true_landmarks'][k]:.2f} mm |"
                ) in training, label


def test_ratios_and_paired_differences_in_docs_are_the_records():
    net, mean = RECORD["network"], RECORD["mean_shape"]
    training = _page("training.md")

    def ratio(key):
        return f"{net[key] / mean[key]:.2f}×"

    assert (f"({ratio('total_sim_mm')} its shape error, {ratio('expression_mm')} its expression "
            f"error, {ratio('nme_pct')} its landmark error)") in training
    paired = RECORD["paired"]["network_vs_fit_true_landmarks"]

    def diff(key):
        mean_diff, half_width = paired[key]
        return f"{abs(mean_diff):.2f} ± {half_width:.2f} mm"

    assert paired["expression_mm"][0] < 0 < paired["total_sim_mm"][0]
    assert f"its expression error is {diff('expression_mm')} lower" in training
    assert f"it is {diff('total_sim_mm')} worse in total shape (similarity)" in training
    assert f"and {diff('neutral_sim_mm')} worse in the neutral shape alone" in training


@pytest.mark.parametrize(("page", "label", "box", "percent"), [
    ("real-photos.md", "the detected box, dlib HOG (`--box detected`) | 18", "hog", " %"),
    ("real-photos.md", "the detected box, LBP cascade | 11", "cascade", " %"),
    ("real-photos.md", "the annotated face box | 18", "annotated", " %"),
    ("real-photos.md", "the landmarks' own box (`--box landmarks`) | 18", "landmarks", " %"),
    ("10", "the HOG detector's box | 18", "hog", "%"),
    ("10", "the annotated box | 18", "annotated", "%"),
    ("10", "the landmarks' own box | 18", "landmarks", "%"),
    ("10", "the LBP cascade's box | 11", "cascade", "%"),
])
def test_development_face_tables_are_the_detector_studys(page, label, box, percent):
    text = _page(page) if page.endswith(".md") else _notebook("10_real_faces_measured")
    one, refined = ROWS[BOXES[box]], _refined(box)
    cells = [f"{one['nme_percent']:.2f}{percent}", f"{refined['nme_percent']:.2f}{percent}",
             f"{one['mean_face_percent']:.2f}{percent}"]
    row = re.search(re.escape(f"| {label} | ") + r"([^|]*)\|([^|]*)\|([^|]*)\|", text)
    assert row, label
    assert [c.strip().strip("*") for c in row.groups()] == cells


def test_refining_figures_in_prose_are_the_detector_studys():
    photos = _page("real-photos.md")

    def pct(row):
        return f"{row['nme_percent']:.2f}"

    for box, words in (("hog", "from detected boxes "), ("annotated", "from the annotated boxes "),
                       ("landmarks", "from the landmarks' own box it changes little (")):
        assert f"{words}{pct(ROWS[BOXES[box]])} → {pct(_refined(box))} %" in photos, box
    assert f"(`--refine 2`) gives {pct(_refined('hog', 2))} % from detected boxes" in photos
    hog, cascade = _refined("hog"), _refined("cascade")
    assert (f"the cascade's crops score better than HOG's "
            f"({ROWS[BOXES['cascade']]['nme_percent_on_common_faces']:.2f} % against "
            f"{ROWS[BOXES['hog']]['nme_percent_on_common_faces']:.2f} %); refined, "
            f"{cascade['nme_percent_on_common_faces']:.2f} % against "
            f"{hog['nme_percent_on_common_faces']:.2f} %") in photos
    parts = hog["nme_percent_by_part"]
    rest = [parts[k] for k in ("nose", "eyes", "mouth")]
    assert (f"largest on the jaw line ({parts['jaw']:.2f} %) and the eyebrows "
            f"({parts['eyebrows']:.2f} %), against {min(rest):.1f}–{max(rest):.1f} %") in photos
    notebook = _notebook("10_real_faces_measured")
    assert f"The oracle reaches {STUDY['oracle_percent']:.2f}%." in notebook


def test_the_refining_default_states_the_detector_studys_figures():
    source = _flat((REPO_ROOT / "e2far_lite" / "photo" / "reconstruction.py").read_text())
    one, refined, twice = ROWS[BOXES["hog"]], _refined("hog"), _refined("hog", 2)
    assert photo.REFINE == 1
    assert (f"({one['nme_percent']:.2f} -> {refined['nme_percent']:.2f} %), a third pass to "
            f"{twice['nme_percent']:.2f} %") in source


def test_how_much_longer_than_the_recipe_study_is_the_records():
    settings = json.loads((experiments_dir() / "recipe_study.json").read_text())["settings"]
    base_faces = settings["steps"] * settings["batch_size"]  # the study's base run
    times = RECORD["training"]["stages"][0]["faces_seen"] / base_faces
    word = {10: "ten", 20: "twenty", 30: "thirty", 40: "forty", 50: "fifty", 60: "sixty",
            70: "seventy", 80: "eighty"}[round(times, -1)]
    results = _page("results.md")
    assert results.count(f"about {word} times longer") == 2
    assert f"its {round(RECORD['training']['minutes'])} minutes would buy" in results
    assert f"taken about {word} times further" in _notebook("09_what_limits_accuracy")


def test_the_previous_network_in_docs_is_its_kept_record():
    net, training = PREVIOUS["network"], _page("training.md")
    # replaced only because the shipped one scored better on both sets
    assert RECORD["network"]["total_sim_mm"] < net["total_sim_mm"]
    refined = PREVIOUS_STUDY[f"{BOXES['hog']}, refined ({photo.REFINE} re-crop)"]["nme_percent"]
    assert _refined("hog")["nme_percent"] < refined
    faces, minutes = PREVIOUS["training"]["faces_seen"], round(PREVIOUS["training"]["minutes"])
    assert (f"| the previous shipped network (bf16, {faces:,} faces, {minutes} min; "
            f"`experiments/previous_network/`) | {net['total_sim_mm']:.2f} mm | "
            f"{net['total_mm']:.2f} mm | {net['neutral_sim_mm']:.2f} mm | "
            f"{net['neutral_mm']:.2f} mm | {net['expression_mm']:.2f} mm | "
            f"{net['nme_pct']:.2f} % |") in training
    assert (f"| the previous shipped network (two stages, bf16, {minutes} min) | "
            f"{net['total_sim_mm']:.2f} mm | {net['expression_mm']:.2f} mm | "
            f"{net['nme_pct']:.2f} % | {refined:.2f} % |") in training
    assert f"(the previous shipped network: {refined:.2f} %;" in _page("real-photos.md")
    first = PREVIOUS["first_stage"]["development_faces"]["nme_pct"]
    assert f"scored {refined:.2f} % there (its first stage alone {first:.2f} %)" in _page(
        "real-photos.md")


def test_the_curve_fitted_to_the_shipped_run_is_compared_with_the_prediction():
    lines = json.loads((experiments_dir() / "curve_prediction.json").read_text())[
        "prediction"]["lines"]
    fits = faces_for_goals(RECORD)
    for key in ("expression_mm", "nme_pct"):
        # flatter than the prediction, so the goals moved away
        assert fits[key]["per_doubling"] > lines[key]["per_doubling"], key
    for key in fits:
        assert fits[key]["faces"] > lines[key]["faces"], key
    assert (f"fall more slowly per doubling (−{-fits['expression_mm']['per_doubling']:.3f} mm and "
            f"−{-fits['nme_pct']['per_doubling']:.3f} % against "
            f"−{-lines['expression_mm']['per_doubling']:.3f} mm and "
            f"−{-lines['nme_pct']['per_doubling']:.3f} %), and every goal lies further away"
            ) in _page("training.md")


def test_the_hours_the_goals_would_take_at_the_idle_pace_are_the_records():
    stage = PREVIOUS["training"]["stages"][0]  # the previous first stage, trained alone
    pace = stage["faces_seen"] / stage["minutes"] / 60
    fits = faces_for_goals(RECORD)
    hours = [fits[key]["faces"] / pace / 3600 for key in ("expression_mm", "nme_pct")]
    low, high = int(min(hours)), int(max(hours))
    assert (f"at the {pace:.0f} faces/s the previous first stage made alone, {low}–{high} hours"
            ) in _flat(_page("training.md"))
