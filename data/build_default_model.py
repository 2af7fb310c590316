"""Rebuild ``data/ict_face_model_lite.npz`` from the ICT Face Model Light ingredients.

Run from the repository root. By default it reads the ingredients shipped in
``data/ict_face_model/ict_face_area.npz`` (MIT licence beside it):

    python data/build_default_model.py

or, to rebuild from the original source, a clone of ICT-FaceKit
(``git clone https://github.com/ICT-VGL/ICT-FaceKit``):

    python data/build_default_model.py --ict ../ICT-FaceKit

``--ict`` reads the ``.obj`` meshes of ``FaceXModel/`` (the neutral mesh, ``identity000``...
``identity099`` and the 53 expressions listed in ``vertex_indices.json``), keeps the face area
as the shipped ingredients do (the leading vertices and polygons), and builds the model from
those. The 68-landmark and jaw-line vertex tables are not in the ``.obj`` files: they come from
the shipped ingredients. It prints how far the meshes it read are from the shipped ingredients.

The output is deterministic: running it again writes identical arrays (tests check this).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from e2far_lite.io.mesh_files import read_obj
from e2far_lite.model.ict import (
    build_ict_model,
    ict_ingredients_path,
    load_ict_face_area,
    orthonormal_basis,
)
from e2far_lite.model.morphable_model import DEFAULT_MODEL_FILE

DEFAULT_OUT = Path(__file__).resolve().parent / DEFAULT_MODEL_FILE
#: index tables that the .obj files do not hold, carried over from the shipped ingredients
TABLES = ("landmarks_68", "jawline_right", "jawline_left", "jawline_right_extended",
          "jawline_left_extended")


def ingredients_from_facekit(checkout: Path, reference: Path) -> dict[str, np.ndarray]:
    """The ingredient arrays (cm, face area only) read from an ICT-FaceKit checkout's meshes."""
    folder = checkout / "FaceXModel" if (checkout / "FaceXModel").is_dir() else checkout
    if not (folder / "generic_neutral_mesh.obj").is_file():
        raise FileNotFoundError(f"--ict: expected an ICT-FaceKit clone (with FaceXModel/"
                                f"generic_neutral_mesh.obj), got {str(checkout)!r}")
    with np.load(reference, allow_pickle=False) as ref:
        num_v, num_f = int(ref["narrow_face_vertices"]), int(ref["narrow_face_polygons"])
        keep = int(ref["neutral"].shape[0])  # the face area the shipped file holds
        tables = {key: ref[key] for key in TABLES}
    neutral, polygons = read_obj(folder / "generic_neutral_mesh.obj")
    quads = np.array([p + [-1] * (4 - len(p)) for p in polygons[:num_f]], dtype=np.int32)
    if quads.shape != (num_f, 4) or quads.max() >= keep:
        raise ValueError(f"--ict: expected the ICT topology ({num_f} leading quads inside "
                         f"{keep} vertices), got other polygons in {str(folder)!r}")

    def offsets(names: list[str]) -> np.ndarray:
        out = np.empty((len(names), keep, 3), dtype=np.float32)
        for i, name in enumerate(names):
            points, _ = read_obj(folder / f"{name}.obj")
            out[i] = points[:keep] - neutral[:keep]  # ICT-FaceKit's modes are offsets
        return out

    names = json.loads((folder / "vertex_indices.json").read_text())["expressions"]
    return {
        "neutral": neutral[:keep].astype(np.float32),
        "identity": offsets([f"identity{k:03d}" for k in range(100)]),
        "expression": offsets(names),
        "expression_names": np.array(names),
        "polygons": quads,
        "narrow_face_vertices": np.array(num_v),
        "narrow_face_polygons": np.array(num_f),
        **tables,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT,
                        help=f"model file to write (default: data/{DEFAULT_MODEL_FILE})")
    parser.add_argument("--ict", type=Path, default=None,
                        help="an ICT-FaceKit clone to read the meshes from (default: use the "
                             "shipped data/ict_face_model/ict_face_area.npz)")
    args = parser.parse_args(argv)

    ingredients = ict_ingredients_path()
    with tempfile.TemporaryDirectory() as tmp:
        if args.ict is not None:
            arrays = ingredients_from_facekit(args.ict, ingredients)
            with np.load(ingredients, allow_pickle=False) as ref:
                for key in ("neutral", "identity", "expression"):
                    gap = float(np.abs(arrays[key] - ref[key]).max())
                    print(f"{key}: largest difference from the shipped ingredients {gap:.2e} cm")
            ingredients = Path(tmp) / "ict_face_area.npz"
            np.savez_compressed(ingredients, **arrays)
        model = build_ict_model(ingredients)
        face = load_ict_face_area(ingredients)
    model.save(args.out, float16=True)
    _, _, explained = orthonormal_basis(face.identity_modes)
    k = model.num_id
    print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB): {model}")
    share = 100 * float(explained[k - 1])
    print(f"identity: {k} of 100 components explain {share:.2f}% of variance")


if __name__ == "__main__":
    main(sys.argv[1:])
