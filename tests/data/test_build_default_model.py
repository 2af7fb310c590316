"""data/build_default_model.py --ict: the default model rebuilt from an ICT-FaceKit clone's meshes.

The clone is stood in for by .obj files written from the shipped ingredients (the face area
only, at full float32 precision), laid out as ICT-FaceKit lays out ``FaceXModel/``.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers_models import assert_is_the_default_model

from e2far_lite.model.ict import ict_ingredients_path
from e2far_lite.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "data" / "build_default_model.py"


def _write_obj(path, vertices, faces=""):
    np.savetxt(path, vertices, fmt="v %.9g %.9g %.9g")
    if faces:
        with path.open("a") as handle:
            handle.write(faces)


@pytest.mark.slow
def test_rebuild_from_an_ict_facekit_clone(tmp_path):
    with np.load(ict_ingredients_path(), allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    folder = tmp_path / "ICT-FaceKit" / "FaceXModel"
    folder.mkdir(parents=True)
    neutral = arrays["neutral"].astype(np.float64)
    faces = "".join(f"f {a}/{a} {b}/{b} {c}/{c} {d}/{d}\n" for a, b, c, d in arrays["polygons"] + 1)
    _write_obj(folder / "generic_neutral_mesh.obj", neutral, faces)
    for k, mode in enumerate(arrays["identity"]):
        _write_obj(folder / f"identity{k:03d}.obj", neutral + mode)
    names = [str(n) for n in arrays["expression_names"]]
    for name, shape in zip(names, arrays["expression"], strict=True):
        _write_obj(folder / f"{name}.obj", neutral + shape)
    (folder / "vertex_indices.json").write_text(json.dumps({"expressions": names}))

    out = tmp_path / "rebuilt.npz"
    run = subprocess.run([sys.executable, str(SCRIPT), str(out), "--ict",
                          str(tmp_path / "ICT-FaceKit")],
                         check=True, cwd=REPO_ROOT, capture_output=True, text=True)
    assert "largest difference from the shipped ingredients" in run.stdout
    assert_is_the_default_model(out)


def test_ict_flag_says_what_it_expected(tmp_path):
    run = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "m.npz"), "--ict",
                          str(tmp_path)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode != 0
    assert "--ict: expected an ICT-FaceKit clone" in run.stderr


def test_ingredients_ship_with_their_licence():
    path = ict_ingredients_path()
    assert path.is_file() and path.stat().st_size < 8 * 2**20
    assert "MIT License" in (path.parent / "LICENSE").read_text()
