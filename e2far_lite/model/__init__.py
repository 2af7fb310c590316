"""The 3D morphable model (notebook 01): shape = mean + identity + expression.

The ICT default model, expressions as blend shapes, face regions, shape metrics, and the
readers of other models' files (Basel, 3DDFA, FLAME, ICT-FaceKit).
"""

from .expressions import (
    blendshape_uniforms,
    blendshape_weights_from_draws,
    sample_blendshape_weights,
    symmetric_partner,
)
from .ict import (
    CM_TO_MM,
    ICTFaceArea,
    build_ict_model,
    expression_space,
    ict_ingredients_path,
    load_ict_face_area,
    orthonormal_basis,
    quads_to_triangles,
)
from .loaders import (
    ICT_REGIONS,
    gaussian_space,
    load_3ddfa,
    load_bfm2009,
    load_bfm2017,
    load_flame,
    load_ict_facekit,
    read_landmarks,
)
from .metrics import (
    SHAPE_FIGURES,
    landmark_nme,
    per_vertex_error,
    rigid_align,
    shape_errors,
    vertex_rmse,
)
from .morphable_model import (
    DEFAULT_MODEL_FILE,
    MAX_MODEL_BYTES,
    NUM_LANDMARKS,
    REQUIRED_KEYS,
    MorphableModel,
    vertex_normals,
)
from .regions import REGION_NAMES, region_masks, vertex_regions

__all__ = [
    "CM_TO_MM",
    "DEFAULT_MODEL_FILE",
    "ICTFaceArea",
    "ICT_REGIONS",
    "MAX_MODEL_BYTES",
    "MorphableModel",
    "NUM_LANDMARKS",
    "REGION_NAMES",
    "REQUIRED_KEYS",
    "SHAPE_FIGURES",
    "blendshape_uniforms",
    "blendshape_weights_from_draws",
    "build_ict_model",
    "expression_space",
    "gaussian_space",
    "ict_ingredients_path",
    "landmark_nme",
    "load_3ddfa",
    "load_bfm2009",
    "load_bfm2017",
    "load_flame",
    "load_ict_face_area",
    "load_ict_facekit",
    "orthonormal_basis",
    "per_vertex_error",
    "quads_to_triangles",
    "read_landmarks",
    "region_masks",
    "rigid_align",
    "sample_blendshape_weights",
    "shape_errors",
    "symmetric_partner",
    "vertex_normals",
    "vertex_regions",
    "vertex_rmse",
]
