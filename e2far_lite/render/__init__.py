"""Rendering a face (notebook 02): camera, rasterizer, shading, the renderer."""

from .camera import (
    camera_rotation,
    perspective_project,
    rotation_matrix,
    to_camera,
    weak_perspective_project,
)
from .rasterizer import Fragments, check_triangles, interpolate, rasterize
from .renderer import BACKENDS, Renderer, RenderOutput, project_landmarks, render_preview
from .shading import (
    ALBEDO_PATTERNS,
    LIGHT_UNIFORMS,
    Lights,
    albedo_from_draws,
    albedo_patterns,
    shade,
    skin_albedo,
)

__all__ = [
    "ALBEDO_PATTERNS",
    "BACKENDS",
    "Fragments",
    "LIGHT_UNIFORMS",
    "Lights",
    "RenderOutput",
    "Renderer",
    "albedo_from_draws",
    "albedo_patterns",
    "camera_rotation",
    "check_triangles",
    "interpolate",
    "perspective_project",
    "project_landmarks",
    "rasterize",
    "render_preview",
    "rotation_matrix",
    "shade",
    "skin_albedo",
    "to_camera",
    "weak_perspective_project",
]
