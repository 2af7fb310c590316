"""Write meshes as Wavefront ``.obj`` or binary ``.ply`` (open in trimesh, MeshLab, Blender)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch import Tensor

from ..checks import check_shape
from .atomic import atomic_write


def save_mesh(path: str | os.PathLike, vertices: Tensor, triangles: Tensor,
              colors: Tensor | None = None, units: str = "mm") -> Path:
    """Save one mesh; the format follows the suffix (``.obj`` or ``.ply``). Written atomically.

    Args:
        path: output file, ``.obj`` or ``.ply``.
        vertices: (V, 3), in ``units``.
        triangles: (F, 3) 0-based vertex indices.
        colors: optional (V, 3) RGB in [0, 1] (stored as vertex colours).
        units: what the coordinates are, written in the file's header comment (one line).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".obj", ".ply"):
        raise ValueError(f"path: expected a file ending in .obj or .ply, got {path.name!r}")
    check_shape(vertices, "vertices", (None, 3))
    check_shape(triangles, "triangles", (None, 3))
    v = vertices.detach().cpu().double().numpy()
    f = triangles.detach().cpu().numpy().astype(np.int64)
    if colors is not None:
        check_shape(colors, "colors", (vertices.shape[0], 3))
    if "\n" in units or "\r" in units:
        raise ValueError(f"units: expected one line, got {units!r}")
    rgb = None if colors is None else colors.detach().cpu().clamp(0, 1).numpy()
    with atomic_write(path) as handle:
        handle.write(_obj_bytes(v, f, rgb, units) if suffix == ".obj"
                     else _ply_bytes(v, f, rgb, units))
    return path


def _obj_bytes(v: np.ndarray, f: np.ndarray, rgb: np.ndarray | None, units: str) -> bytes:
    lines = [f"# e2far-lite mesh, units: {units}"]
    if rgb is None:
        lines += [f"v {x:.5f} {y:.5f} {z:.5f}" for x, y, z in v]
    else:
        lines += [f"v {x:.5f} {y:.5f} {z:.5f} {r:.4f} {g:.4f} {b:.4f}"
                  for (x, y, z), (r, g, b) in zip(v, rgb, strict=True)]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in f]  # obj is 1-based
    return ("\n".join(lines) + "\n").encode()


def _ply_bytes(v: np.ndarray, f: np.ndarray, rgb: np.ndarray | None, units: str) -> bytes:
    header = ["ply", "format binary_little_endian 1.0", f"comment e2far-lite mesh, units: {units}",
              f"element vertex {len(v)}", "property float x", "property float y",
              "property float z"]
    vdtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    if rgb is not None:
        header += ["property uchar red", "property uchar green", "property uchar blue"]
        vdtype += [("r", "u1"), ("g", "u1"), ("b", "u1")]
    header += [f"element face {len(f)}", "property list uchar int vertex_indices", "end_header"]
    verts = np.empty(len(v), dtype=vdtype)
    verts["x"], verts["y"], verts["z"] = v[:, 0], v[:, 1], v[:, 2]
    if rgb is not None:
        c = (rgb * 255).round().astype(np.uint8)
        verts["r"], verts["g"], verts["b"] = c[:, 0], c[:, 1], c[:, 2]
    faces = np.empty(len(f), dtype=[("n", "u1"), ("i", "<i4", (3,))])
    faces["n"], faces["i"] = 3, f
    return ("\n".join(header) + "\n").encode() + verts.tobytes() + faces.tobytes()
