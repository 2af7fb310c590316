"""Real photos (notebook 08): decode, detect, reconstruct, place the mesh, score against
annotations. The pictures of them are drawn by :mod:`e2far_lite.ui.photo_view`."""

from .detect import (
    CASCADE_BOX,
    CASCADE_BOX_SYNTHETIC,
    DETECT_MAX_SIDE,
    DETECTORS,
    HOG_BOX,
    HOG_THRESHOLD,
    LANDMARK_BOX,
    Box,
    BoxConvention,
    box_convention,
    default_detector,
    detect_faces,
    fit_box_convention,
    match_faces,
)
from .images import MIN_SIDE, load_image
from .mesh import EXPORT_UNITS, HIDDEN_GREY, export_mesh, render_overlay, vertex_colors
from .reconstruction import (
    REFINE,
    CropBox,
    Reconstruction,
    crop_box,
    cut_crop,
    reconstruct,
    reconstruct_faces,
)
from .scores import (
    LANDMARK_PARTS,
    LandmarkNME,
    format_nme_table,
    mean_shape_landmarks,
    real_landmark_nme,
)

__all__ = [
    "LANDMARK_PARTS",
    "REFINE",
    "Box",
    "BoxConvention",
    "CASCADE_BOX",
    "CASCADE_BOX_SYNTHETIC",
    "CropBox",
    "DETECTORS",
    "DETECT_MAX_SIDE",
    "EXPORT_UNITS",
    "HIDDEN_GREY",
    "HOG_BOX",
    "HOG_THRESHOLD",
    "LANDMARK_BOX",
    "LandmarkNME",
    "MIN_SIDE",
    "Reconstruction",
    "box_convention",
    "crop_box",
    "cut_crop",
    "default_detector",
    "detect_faces",
    "export_mesh",
    "fit_box_convention",
    "format_nme_table",
    "load_image",
    "match_faces",
    "mean_shape_landmarks",
    "real_landmark_nme",
    "reconstruct",
    "reconstruct_faces",
    "render_overlay",
    "vertex_colors",
]
