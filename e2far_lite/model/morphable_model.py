"""The 3D morphable model: ``S = mean + U_id·(σ_id·a_id) + U_exp·(σ_exp·a_exp)``.

Shapes use fixed letters: B batch, V vertices, F triangles, K identity coefficients, E expression
coefficients, N named blend shapes. Vertices are in millimetres, model frame: x to the subject's
left, y up, z toward the camera. Coefficients are in standard-deviation units, so ``a ~ N(0, 1)``
draws a plausible face.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..checks import check_coefficients, check_path, check_shape, check_tensor
from ..io.atomic import atomic_write
from ..paths import data_dir

NUM_LANDMARKS = 68
REQUIRED_KEYS = ("mean", "id_basis", "id_std", "exp_basis", "exp_std", "triangles", "landmarks")
DEFAULT_MODEL_FILE = "ict_face_model_lite.npz"
#: Most bytes of arrays a model file may hold; :meth:`MorphableModel.load` refuses more before
#: reading anything (the Basel Face Model 2009 with both bases is about 0.3 GB).
MAX_MODEL_BYTES = 2 * 1024**3


def _tensor(value: object, name: str) -> Tensor:
    """``torch.as_tensor`` of a real array; the error names the argument when it is not one."""
    try:
        tensor = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name}: expected a tensor or array of numbers, got "
                        f"{type(value).__name__} ({err})") from None
    if tensor.is_complex():
        raise ValueError(f"{name}: expected a real dtype, got {tensor.dtype}")
    return tensor


class MorphableModel(nn.Module):
    """A linear face model whose arrays are buffers, so ``.to(device)`` moves everything.

    Args:
        mean: (V, 3) neutral template in mm.
        id_basis: (K, V, 3) identity directions, orthonormal when flattened to (K, 3V).
        id_std: (K,) identity standard deviations in mm.
        exp_basis: (E, V, 3) expression directions, orthonormal when flattened.
        exp_std: (E,) expression standard deviations in mm.
        triangles: (F, 3) 0-based vertex indices, counter-clockwise seen from the front (+z).
        landmarks: (68,) vertex indices in iBUG-68 order, -1 where the model has no such point.
        blendshapes: optional (N, V, 3) named expression offsets in mm (weight 1 = full expression).
        blendshape_names: optional N names, e.g. ``jawOpen``, ``mouthSmile_L``.

    Examples:
        >>> model = MorphableModel.default()
        >>> model(torch.zeros(1, model.num_id), torch.zeros(1, model.num_exp)).shape
        torch.Size([1, 6706, 3])
    """

    mean: Tensor
    id_basis: Tensor
    id_std: Tensor
    exp_basis: Tensor
    exp_std: Tensor
    triangles: Tensor
    landmarks: Tensor
    blendshapes: Tensor

    def __init__(
        self,
        mean: Tensor,
        id_basis: Tensor,
        id_std: Tensor,
        exp_basis: Tensor,
        exp_std: Tensor,
        triangles: Tensor,
        landmarks: Tensor,
        blendshapes: Tensor | None = None,
        blendshape_names: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        mean = _tensor(mean, "mean")
        check_shape(mean, "mean", (None, 3))
        num_v = mean.shape[0]
        if num_v < 3:
            raise ValueError(f"mean: expected at least 3 vertices, got {num_v}")
        id_basis, exp_basis = _tensor(id_basis, "id_basis"), _tensor(exp_basis, "exp_basis")
        check_shape(id_basis, "id_basis", (None, num_v, 3))
        check_shape(exp_basis, "exp_basis", (None, num_v, 3))
        id_std, exp_std = _tensor(id_std, "id_std"), _tensor(exp_std, "exp_std")
        check_shape(id_std, "id_std", (id_basis.shape[0],))
        check_shape(exp_std, "exp_std", (exp_basis.shape[0],))
        triangles = _tensor(triangles, "triangles")
        check_shape(triangles, "triangles", (None, 3))
        if triangles.is_floating_point() or triangles.dtype == torch.bool:
            raise ValueError(f"triangles: expected an integer dtype, got {triangles.dtype}")
        if triangles.numel() and (int(triangles.min()) < 0 or int(triangles.max()) >= num_v):
            raise ValueError(
                f"triangles: expected indices in [0, {num_v - 1}], "
                f"got range [{int(triangles.min())}, {int(triangles.max())}]"
            )
        landmarks = _tensor(landmarks, "landmarks")
        check_shape(landmarks, "landmarks", (NUM_LANDMARKS,))
        if landmarks.is_floating_point() or landmarks.dtype == torch.bool:
            raise ValueError(f"landmarks: expected an integer dtype, got {landmarks.dtype}")
        if int(landmarks.min()) < -1 or int(landmarks.max()) >= num_v:
            raise ValueError(
                f"landmarks: expected indices in [-1, {num_v - 1}] (-1 = undefined), "
                f"got range [{int(landmarks.min())}, {int(landmarks.max())}]"
            )
        if blendshapes is None:
            blendshapes = torch.zeros(0, num_v, 3)
            blendshape_names = ()
        blendshapes = _tensor(blendshapes, "blendshapes")
        check_shape(blendshapes, "blendshapes", (None, num_v, 3))
        names = tuple(str(n) for n in (blendshape_names or ()))
        if len(names) != blendshapes.shape[0]:
            raise ValueError(
                f"blendshape_names: expected {blendshapes.shape[0]} names, got {len(names)}"
            )
        for name, value in (("mean", mean), ("id_basis", id_basis), ("id_std", id_std),
                            ("exp_basis", exp_basis), ("exp_std", exp_std),
                            ("blendshapes", blendshapes)):
            if value.dtype == torch.bool:
                raise ValueError(f"{name}: expected numbers in mm, got dtype torch.bool")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name}: expected finite values, got NaN/inf")
        for name, value in (("id_std", id_std), ("exp_std", exp_std)):
            if value.numel() and float(value.min()) < 0:
                raise ValueError(f"{name}: expected standard deviations >= 0 mm, "
                                 f"got minimum {float(value.min())}")
        f32 = torch.float32
        self.register_buffer("mean", mean.to(f32).contiguous())
        self.register_buffer("id_basis", id_basis.to(f32).contiguous())
        self.register_buffer("id_std", id_std.to(f32).contiguous())
        self.register_buffer("exp_basis", exp_basis.to(f32).contiguous())
        self.register_buffer("exp_std", exp_std.to(f32).contiguous())
        self.register_buffer("triangles", triangles.to(torch.int64).contiguous())
        self.register_buffer("landmarks", landmarks.to(torch.int64).contiguous())
        self.register_buffer("blendshapes", blendshapes.to(f32).contiguous())
        # (N, E): each blend shape's own expression coefficients (least squares), so that
        # blendshapes_to_exp is one small matrix product; derived, not saved
        projection = (self.blendshapes.flatten(1).double() @ self.exp_basis.flatten(1).double().T
                      / self.exp_std.double())
        self.register_buffer("blend_to_exp", projection.to(f32), persistent=False)
        self.blendshape_names: tuple[str, ...] = names

    # ----------------------------------------------------------------- sizes
    @property
    def num_vertices(self) -> int:
        return self.mean.shape[0]

    @property
    def num_id(self) -> int:
        return self.id_basis.shape[0]

    @property
    def num_exp(self) -> int:
        return self.exp_basis.shape[0]

    @property
    def num_blendshapes(self) -> int:
        return self.blendshapes.shape[0]

    @property
    def landmark_mask(self) -> Tensor:
        """(68,) bool, True where the model defines the landmark."""
        return self.landmarks >= 0

    def extra_repr(self) -> str:
        return (f"V={self.num_vertices}, F={self.triangles.shape[0]}, K={self.num_id}, "
                f"E={self.num_exp}, N={self.num_blendshapes}, "
                f"landmarks={int(self.landmark_mask.sum())}/68")

    # ----------------------------------------------------------------- shape
    def _coefficients(self, x: Tensor, name: str, size: int) -> Tensor:
        """``check_coefficients``, plus: on the model's device, no wider dtype than its own."""
        check_tensor(x, name)
        if x.device != self.mean.device:
            raise ValueError(f"{name}: expected a tensor on {self.mean.device} like the model, "
                             f"got {x.device}")
        check_coefficients(x, name, size)
        if torch.promote_types(x.dtype, self.mean.dtype) != self.mean.dtype:
            raise ValueError(f"{name}: expected dtype {self.mean.dtype} like the model (or "
                             f"convert the model, e.g. model.double()), got {x.dtype}")
        return x

    def neutral(self, a_id: Tensor) -> Tensor:
        """Identity (neutral) shape: (B, K) coefficients -> (B, V, 3) vertices in mm."""
        self._coefficients(a_id, "a_id", self.num_id)
        offset = torch.einsum("bk,kvc->bvc", a_id * self.id_std, self.id_basis)
        return self.mean + offset

    def expression_offset(self, a_exp: Tensor) -> Tensor:
        """Expression displacement: (B, E) coefficients -> (B, V, 3) offsets in mm."""
        self._coefficients(a_exp, "a_exp", self.num_exp)
        return torch.einsum("be,evc->bvc", a_exp * self.exp_std, self.exp_basis)

    def forward(self, a_id: Tensor, a_exp: Tensor) -> Tensor:
        """Full shape ``neutral(a_id) + expression_offset(a_exp)``: (B, V, 3) in mm."""
        self._coefficients(a_id, "a_id", self.num_id)
        self._coefficients(a_exp, "a_exp", self.num_exp)
        if a_id.shape[0] != a_exp.shape[0]:
            raise ValueError(f"a_exp: expected batch size {a_id.shape[0]} like a_id, "
                             f"got {a_exp.shape[0]}")
        # the same sums as neutral() + expression_offset(), as one matrix product: (3V, K + E)
        # times (K + E, B) is the layout a CPU's matrix kernels run fastest (3x the einsums)
        coefficients = torch.cat([a_id * self.id_std, a_exp * self.exp_std], 1)
        basis = torch.cat([self.id_basis, self.exp_basis]).flatten(1)
        offsets = (basis.T @ coefficients.T).T.reshape(-1, self.num_vertices, 3)
        return self.mean + offsets

    def landmark_points(self, a_id: Tensor, a_exp: Tensor) -> Tensor:
        """The 68 landmarks only, without building all V vertices: (B, 68, 3) in mm.

        Undefined landmarks (index -1) come back as NaN.
        """
        self._coefficients(a_id, "a_id", self.num_id)
        self._coefficients(a_exp, "a_exp", self.num_exp)
        if a_id.shape[0] != a_exp.shape[0]:
            raise ValueError(f"a_exp: expected batch size {a_id.shape[0]} like a_id, "
                             f"got {a_exp.shape[0]}")
        idx = self.landmarks.clamp(min=0)
        pts = (self.mean[idx]
               + torch.einsum("bk,kvc->bvc", a_id * self.id_std, self.id_basis[:, idx])
               + torch.einsum("be,evc->bvc", a_exp * self.exp_std, self.exp_basis[:, idx]))
        nan = torch.full_like(pts, float("nan"))
        return torch.where(self.landmark_mask[None, :, None], pts, nan)

    def vertex_normals(self, vertices: Tensor) -> Tensor:
        """Unit normals per vertex, area-weighted: (B, V, 3) -> (B, V, 3)."""
        check_shape(vertices, "vertices", (None, self.num_vertices, 3))
        return vertex_normals(vertices, self.triangles)

    # ----------------------------------------------------- blend shape space
    def blendshapes_to_exp(self, weights: Tensor) -> Tensor:
        """Project blend-shape weights (B, N) onto the expression space: (B, E) coefficients.

        Exact when the blend-shape offsets lie in the span of ``exp_basis``; otherwise the
        least-squares (orthogonal) projection.
        """
        if self.num_blendshapes == 0:
            raise ValueError("weights: this model has no named blend shapes")
        self._coefficients(weights, "weights", self.num_blendshapes)
        return weights @ self.blend_to_exp

    def exp_to_blendshapes(self, a_exp: Tensor) -> Tensor:
        """Least-squares blend-shape weights (B, N) that reproduce an expression (B, E).

        Unconstrained (weights may fall outside [0, 1]); meant for reading an expression in
        FACS terms, e.g. how much ``jawOpen`` a prediction holds.
        """
        if self.num_blendshapes == 0:
            raise ValueError("a_exp: this model has no named blend shapes to project onto")
        offsets = self.expression_offset(a_exp).flatten(1)  # (B, 3V)
        basis = self.blendshapes.flatten(1)  # (N, 3V)
        gram = basis @ basis.T + 1e-3 * torch.eye(basis.shape[0], device=basis.device)
        return torch.linalg.solve(gram, basis @ offsets.T).T

    # ------------------------------------------------------------------ files
    def state_arrays(self) -> dict[str, np.ndarray]:
        """The npz arrays of this model (float32, int64, names as unicode)."""
        arrays = {
            "mean": self.mean, "id_basis": self.id_basis, "id_std": self.id_std,
            "exp_basis": self.exp_basis, "exp_std": self.exp_std,
            "triangles": self.triangles, "landmarks": self.landmarks,
        }
        out = {k: v.detach().cpu().numpy() for k, v in arrays.items()}
        if self.num_blendshapes:
            out["blendshapes"] = self.blendshapes.detach().cpu().numpy()
            out["blendshape_names"] = np.array(self.blendshape_names, dtype=np.str_)
        return out

    def save(self, path: str | os.PathLike, float16: bool = False) -> Path:
        """Write the model as a compressed ``.npz`` (atomically: temp file, then rename).

        ``float16=True`` stores the bases in half precision (about half the size); ``load``
        returns float32 either way, and the loaded model is the one labels refer to.
        """
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"path: expected a file name ending in .npz, got {path.name!r}")
        arrays = self.state_arrays()
        if float16:
            for key in ("id_basis", "exp_basis", "blendshapes"):
                if key in arrays:
                    arrays[key] = arrays[key].astype(np.float16)
        with atomic_write(path) as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> MorphableModel:
        """Read a model saved by :meth:`save` (or any npz with the documented keys).

        No pickle: object arrays are refused. Every array header is read first, so a file whose
        headers claim more data than it holds, or more than :data:`MAX_MODEL_BYTES` in all, is
        refused before anything is allocated.
        """
        path = check_path(path, "path")
        if not path.is_file():
            raise FileNotFoundError(
                f"path: expected an existing .npz model file, got {str(path)!r}")
        with open(path, "rb") as handle:
            magic = handle.read(4)
        unreadable = f"path: expected a .npz (zip) model file, got an unreadable file {path.name!r}"
        if magic != b"PK\x03\x04":
            raise ValueError(f"{unreadable} starting with {magic!r}")
        broken = (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError,
                  RuntimeError)  # RuntimeError: an encrypted member
        try:
            headers = _npz_headers(path)
        except (*broken, ValueError) as err:
            raise ValueError(f"{unreadable} ({err})") from err
        _check_npz_headers(headers, path.name)
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except broken as err:
            raise ValueError(f"{unreadable} ({err})") from err
        except ValueError as err:  # e.g. an array shorter than its header says
            raise ValueError(f"path: expected plain numeric arrays in {path.name!r}, "
                             f"got {err}") from err
        missing = [k for k in REQUIRED_KEYS if k not in arrays]
        if missing:
            raise ValueError(f"path: expected keys {list(REQUIRED_KEYS)} in {path.name!r}, "
                             f"missing {missing}")
        for key in (*REQUIRED_KEYS, "blendshapes"):
            kinds = "iu" if key in ("triangles", "landmarks") else "iuf"
            if key in arrays and arrays[key].dtype.kind not in kinds:
                raise ValueError(f"{key}: expected {'integer' if kinds == 'iu' else 'numeric'} "
                                 f"values in {path.name!r}, got dtype {arrays[key].dtype}")
        names = arrays.get("blendshape_names")
        tensors = {k: torch.from_numpy(np.ascontiguousarray(v).astype(
            np.int64 if k in ("triangles", "landmarks") else np.float32))
            for k, v in arrays.items() if k in REQUIRED_KEYS or k == "blendshapes"}
        return cls(**tensors, blendshape_names=None if names is None else [str(n) for n in names])

    @classmethod
    def default(cls) -> MorphableModel:
        """The shipped ICT Face Model Light (narrow face, 6706 vertices, mm). No download."""
        path = data_dir() / DEFAULT_MODEL_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"The default model file {str(path)!r} is missing; run "
                "`python data/build_default_model.py` from the repository root")
        return cls.load(path)


def _npz_headers(path: Path) -> list[tuple[str, tuple[int, ...], np.dtype, int]]:
    """(member name, shape, dtype, bytes held) of every member, from the .npy headers only."""
    out = []
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                out.append((info.filename, (), np.dtype("V0"), info.file_size))
                continue
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version in ((2, 0), (3, 0)):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise ValueError(f"unknown .npy format version {version}")
            out.append((info.filename, tuple(shape), dtype, info.file_size))
    return out


def _check_npz_headers(headers: list[tuple[str, tuple[int, ...], np.dtype, int]],
                       name: str) -> None:
    """Refuse non-array members, object arrays, and shapes bigger than the bytes behind them."""
    total = 0
    for member, shape, dtype, held in headers:
        if not member.endswith(".npy"):
            raise ValueError(f"path: expected only .npy arrays in {name!r}, got member "
                             f"{member!r}")
        key = member[:-len(".npy")]
        if dtype.hasobject:
            raise ValueError(f"path: expected plain numeric arrays in {name!r}, got object "
                             f"array {key!r} (it needs pickle, which is refused)")
        # a real array needs at least its bytes, and a byte per element (zero-size dtypes too)
        claimed = math.prod(shape) * max(dtype.itemsize, 1)
        if claimed > held:
            raise ValueError(f"path: expected array {key!r} in {name!r} to hold its shape "
                             f"{shape} ({claimed} bytes), got {held} bytes: a corrupt file")
        total += held
        if total > MAX_MODEL_BYTES:
            raise ValueError(f"path: expected at most {MAX_MODEL_BYTES} bytes of arrays in "
                             f"{name!r}, got more (at {key!r})")


def vertex_normals(vertices: Tensor, triangles: Tensor) -> Tensor:
    """Area-weighted unit vertex normals: vertices (B, V, 3), triangles (F, 3) -> (B, V, 3)."""
    v0, v1, v2 = (vertices[:, triangles[:, i]] for i in range(3))
    face_n = torch.cross(v1 - v0, v2 - v0, dim=-1)  # (B, F, 3), length = 2 * area
    normals = torch.zeros_like(vertices)
    for i in range(3):
        normals.index_add_(1, triangles[:, i], face_n)
    return torch.nn.functional.normalize(normals, dim=-1, eps=1e-12)
