"""e2far-lite: single-image 3D face reconstruction (UH-E2FAR, CVPR 2017), step by step."""

from .model.morphable_model import MorphableModel

__all__ = ["MorphableModel"]
__version__ = "0.1.0"
