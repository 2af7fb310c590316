"""Rebuild ``data/ict_face_model_lite.npz`` from the shared ICT Face Model Light ingredients.

Run from the repository root (reads ``../shared/data/ict_face_model/ict_face_area.npz``):

    python data/build_default_model.py

The output is deterministic: running it again writes identical arrays (tests check this).
"""

import sys
from pathlib import Path

from e2far_lite.ict import build_ict_model, load_ict_face_area, orthonormal_basis
from e2far_lite.morphable_model import DEFAULT_MODEL_FILE

DEFAULT_OUT = Path(__file__).resolve().parent / DEFAULT_MODEL_FILE


def main(out: Path = DEFAULT_OUT) -> None:
    model = build_ict_model()
    model.save(out, float16=True)
    face = load_ict_face_area()
    _, _, explained = orthonormal_basis(face.identity_modes)
    k = model.num_id
    print(f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB): {model}")
    share = 100 * float(explained[k - 1])
    print(f"identity: {k} of 100 components explain {share:.2f}% of variance")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:2]))
