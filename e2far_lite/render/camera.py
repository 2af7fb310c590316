"""Head pose and cameras: Euler angles -> rotation, perspective and weak-perspective projection.

Frames: the model frame has x to the subject's left, y up, z toward the camera (mm). The camera
frame is OpenCV's: x right, y down, z forward (away from the camera), in mm. Pixel coordinates
have x right, y down, origin at the top-left corner of the top-left pixel.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..checks import check_floating, check_shape

# model frame (y up, z toward camera) -> camera frame (y down, z away from camera)
_FLIP = (1.0, -1.0, -1.0)


def rotation_matrix(angles: Tensor) -> Tensor:
    """Rotation matrices from Euler angles.

    ``R = Rz(roll) @ Rx(pitch) @ Ry(yaw)``: yaw turns the head left/right (about y), pitch nods
    (about x), roll tilts (about z). Positive yaw turns the face toward the image's right.

    Args:
        angles: (B, 3) yaw, pitch, roll in radians.

    Returns:
        (B, 3, 3) rotation matrices acting on column vectors in the model frame.
    """
    check_shape(angles, "angles", (None, 3))
    yaw, pitch, roll = angles.unbind(-1)
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    cp, sp = torch.cos(pitch), torch.sin(pitch)
    cr, sr = torch.cos(roll), torch.sin(roll)
    one, zero = torch.ones_like(yaw), torch.zeros_like(yaw)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).view(-1, 3, 3)
    rx = torch.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).view(-1, 3, 3)
    rz = torch.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).view(-1, 3, 3)
    return rz @ rx @ ry


def to_camera(vertices: Tensor, angles: Tensor, translation: Tensor) -> Tensor:
    """Rotate model-frame vertices and place them in the camera frame.

    Args:
        vertices: (B, V, 3) in mm, model frame.
        angles: (B, 3) yaw, pitch, roll in radians.
        translation: (B, 3) mm, camera frame (z > 0 is the distance in front of the camera).

    Returns:
        (B, V, 3) camera-frame points in mm.
    """
    return torch.baddbmm(translation[:, None, :].to(vertices.dtype), vertices,
                         camera_rotation(angles).to(vertices.dtype))


def camera_rotation(angles: Tensor) -> Tensor:
    """(B, 3, 3) matrices taking model-frame row vectors to camera-frame directions:
    ``to_camera(v) = v @ camera_rotation(angles) + translation`` (the rotation, then the frame
    flip y -> -y, z -> -z)."""
    return rotation_matrix(angles).transpose(1, 2) * angles.new_tensor(_FLIP)


def perspective_project(points: Tensor, focal: Tensor, centre: Tensor) -> Tensor:
    """Pinhole projection of camera-frame points.

    Args:
        points: (B, P, 3) in mm, camera frame, z > 0.
        focal: (B,) focal length in pixels.
        centre: (B, 2) principal point in pixels.

    Returns:
        (B, P, 2) pixel coordinates.
    """
    xy = points[..., :2] / points[..., 2:3].clamp(min=1e-6)
    return xy * focal[:, None, None] + centre[:, None, :]


def weak_perspective_project(points: Tensor, pose: Tensor) -> Tensor:
    """Scaled orthographic projection used by the network's pose head.

    Args:
        points: (B, P, 3) in mm, model frame.
        pose: (B, 6) yaw, pitch, roll (radians), tx, ty (pixels), scale (pixels per mm).

    Returns:
        (B, P, 2) pixel coordinates: ``scale * (Rv)_x + tx``, ``-scale * (Rv)_y + ty``.
    """
    check_shape(pose, "pose", (None, 6))
    check_floating(pose, "pose")
    check_shape(points, "points", (None, None, 3))
    if points.shape[0] != pose.shape[0]:
        raise ValueError(f"points: expected batch size {pose.shape[0]} like pose, "
                         f"got {points.shape[0]}")
    if points.dtype != pose.dtype:
        raise ValueError(f"points: expected dtype {pose.dtype} like pose, got {points.dtype}")
    rotated = points @ rotation_matrix(pose[:, :3]).transpose(1, 2)
    xy = rotated[..., :2] * rotated.new_tensor((1.0, -1.0))
    return pose[:, None, 5:6] * xy + pose[:, None, 3:5]
