"""Synthetic training faces (notebook 02): the ``SyntheticFaces`` set, backgrounds, augmentation."""

from .augment import apply, gaussian_blur, params_from_draws, quantize
from .backgrounds import KINDS, MAX_CELLS, PHOTO_NAMES, backgrounds_from_draws, bundled_photos
from .faces import (
    GENERATOR_VERSION,
    DataConfig,
    SyntheticFaces,
    cached_split,
    draw_items,
    draw_layout,
    face_split,
    item_generator,
    render_draws,
)

__all__ = [
    "DataConfig",
    "GENERATOR_VERSION",
    "KINDS",
    "MAX_CELLS",
    "PHOTO_NAMES",
    "SyntheticFaces",
    "apply",
    "backgrounds_from_draws",
    "bundled_photos",
    "cached_split",
    "draw_items",
    "draw_layout",
    "face_split",
    "gaussian_blur",
    "item_generator",
    "params_from_draws",
    "quantize",
    "render_draws",
]
