"""Mesh files: read a Wavefront ``.obj``; write ``.obj`` or binary ``.ply`` (open in trimesh,
MeshLab, Blender)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch import Tensor

from ..checks import check_path, check_shape
from .atomic import atomic_write


def read_obj(path: str | os.PathLike) -> tuple[np.ndarray, list[list[int]]]:
    """Vertices (V, 3) and 0-based polygons of a Wavefront .obj (``f a/b/c ...``, any size)."""
    path = check_path(path, "path")
    if not path.is_file():
        raise FileNotFoundError(f"path: expected an existing .obj mesh, got missing {str(path)!r}")
    vertices: list[list[str]] = []
    polygons: list[list[int]] = []
    data = path.read_bytes()
    if b"\x00" in data:
        raise ValueError(f"path: expected a text .obj file, got binary data in {path.name!r}")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first line
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # comments in an older encoding
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()  # comments end a line; tabs separate too
        if not fields:
            continue
        if fields[0] == "v":
            vertices.append(fields[1:4])
        elif fields[0] == "f":
            try:
                refs = [int(token.split("/")[0]) for token in fields[1:]]
            except ValueError:
                raise ValueError(f"path: expected 'f i j k ...' with vertex numbers in "
                                 f"{path.name!r}, got line {number}: {line.strip()!r}") from None
            # OBJ indices are 1-based; negative ones count back from the last vertex so far
            face = [r - 1 if r > 0 else len(vertices) + r for r in refs]
            if any(i < 0 for i in face) or 0 in refs:
                raise ValueError(f"path: expected vertex numbers 1 .. {len(vertices)} (or "
                                 f"negative, counting back) in {path.name!r}, got line "
                                 f"{number}: {line.strip()!r}")
            polygons.append(face)
    try:
        points = np.array(vertices, dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"path: expected 'v x y z' lines in {path.name!r}, got {err}") from err
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        raise ValueError(f"path: expected vertices 'v x y z' in {path.name!r}, got "
                         f"{points.shape[0] if points.ndim else 0} usable lines")
    largest = max((max(face) for face in polygons if face), default=-1)
    if largest >= len(points):
        raise ValueError(f"path: expected faces that use vertices 1 .. {len(points)} in "
                         f"{path.name!r}, got vertex {largest + 1}")
    return points, polygons



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


__all__ = ["read_obj", "save_mesh"]
