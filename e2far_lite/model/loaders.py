"""Load the face models the field uses into a :class:`MorphableModel`, from files you already have.

Nothing here downloads anything: the Basel Face Model, FLAME and 3DDFA's BFM come under licences
that forbid redistribution, so each loader reads a file you obtained yourself. Every loader returns
the same thing, a :class:`MorphableModel` (mm, 0-based triangles counter-clockwise seen from +z,
orthonormal bases with standard deviations, iBUG-68 landmarks with -1 where undefined), built
through its own input checks.

=====================  ==========================  =====  ============  ======================
loader                 file                        units  indices       bases in the file
=====================  ==========================  =====  ============  ======================
``load_bfm2009``       ``01_MorphableModel.mat``   µm     1-based       orthonormal + std
``load_bfm2017``       ``model2017-1_*.h5``        mm     0-based       orthonormal + variance
``load_3ddfa``         ``BFM.mat`` / ``bfm*.pkl``  µm     1 (.mat)/0    basis (+ optional std)
``load_flame``         ``generic_model.pkl``       m      0-based       scaled (coef ~ N(0, 1))
``load_ict_facekit``   ``FaceXModel/`` folder      cm     1-based obj   full meshes (offsets)
=====================  ==========================  =====  ============  ======================

How bases become (orthonormal basis, std). Each file's model is a Gaussian
``mean + Σ w_k modes[k]`` with ``w ~ N(0, 1)``; the loaders first work out ``modes`` from the file's
convention, then :func:`gaussian_space` turns them into basis and std. When the modes are mutually
orthogonal (a PCA model, as all of these are meant to be) this is just ``std = |mode|``,
``basis = mode / std``, so **our coefficient k is the file's coefficient k** in std units (BFM's
and FLAME's coefficients already are; a 3DDFA ``α_shp`` that multiplies ``w_shp`` directly is
``a_k · σ_k``). Otherwise the modes are orthonormalised by SVD (same distribution of faces,
exactly, but rotated coefficients) and a warning says so.

Frames are kept as in the file: all five put y up and +z out of the face, as MorphableModel does;
only the units change. The ICT loader also centres the template, like
:func:`e2far_lite.model.load_ict_face_area`. Triangles whose winding faces away from
+z on the front of the face are flipped (all of them at once), since the renderer expects
counter-clockwise seen from the front.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..io import safe_pickle
from ..io.mesh_files import read_obj
from .expressions import sample_blendshape_weights
from .ict import (
    CM_TO_MM,
    expression_space,
    ict_ingredients_path,
    orthonormal_basis,
    quads_to_triangles,
)
from .morphable_model import NUM_LANDMARKS, MorphableModel

PathLike = str | os.PathLike
LandmarkSpec = PathLike | Sequence[int] | np.ndarray | Tensor | None

UM_TO_MM = 1e-3  # Basel Face Model 2009 and its 3DDFA variants store micrometres
M_TO_MM = 1e3  # FLAME stores metres

#: ICT-FaceKit regions: number of leading vertices kept (None = all). The face-area polygons are
#: exactly those whose vertices all lie inside: 6560 polygons for "narrow_face", 9230 for "face".
ICT_REGIONS: dict[str, int | None] = {"narrow_face": 6706, "face": 9409, "full": None}

#: Plausible width of a mean face in mm; outside it the units are probably wrong (warning).
_FACE_WIDTH_MM = (50.0, 500.0)


# ---------------------------------------------------------------------------- shared helpers
def _require_file(path: PathLike, name: str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: expected an existing {what}, got missing {str(path)!r}")
    return path


def _unit_norm_warning(name: str) -> None:
    warnings.warn(
        f"{name}: the basis columns have unit norm and the file gives no standard deviations; "
        "each coefficient is taken as N(0, 1) in the file's units, which is almost surely too "
        "small. Use a file with the std (sigma) arrays.", stacklevel=4)


def _modes_from_columns(columns: np.ndarray, std: np.ndarray | None, name: str) -> np.ndarray:
    """Modes (K, 3V) of ``mean + Σ w_k modes[k]``, ``w ~ N(0, 1)``, from basis columns (3V, K).

    With ``std`` given, the columns may be orthonormal (the documented convention: modes =
    columns · std) or already scaled by std (modes = columns); which one is read off the column
    norms. Without std, the columns are taken as the modes.
    """
    columns = np.asarray(columns, dtype=np.float64)
    norms = np.linalg.norm(columns, axis=0)
    if std is None:
        if columns.shape[1] and np.allclose(norms, 1.0, rtol=1e-3):
            _unit_norm_warning(name)
        return columns.T
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if std.shape[0] != columns.shape[1]:
        raise ValueError(f"{name}: expected {columns.shape[1]} standard deviations like the "
                         f"basis columns, got {std.shape[0]}")
    if np.allclose(norms, 1.0, rtol=1e-3):
        return (columns * std).T
    if np.allclose(norms, std, rtol=1e-3):  # already scaled by the std
        return columns.T
    warnings.warn(f"{name}: basis columns are neither unit-norm nor scaled by the std; "
                  "assuming face = mean + basis·(std·w)", stacklevel=3)
    return (columns * std).T


def _sign_convention(basis: Tensor) -> Tensor:
    """Flip each component so its largest displacement is positive (as ``build_ict_model``)."""
    flat = basis.reshape(basis.shape[0], -1)
    sign = torch.sign(flat.gather(1, flat.abs().argmax(1, keepdim=True)))
    return (flat * sign).reshape(basis.shape)


def gaussian_space(modes: Tensor, name: str = "modes") -> tuple[Tensor, Tensor]:
    """Orthonormal basis and std of the Gaussian model ``Σ w_k modes[k]``, ``w ~ N(0, 1)``.

    Orthogonal modes (a PCA model) keep their order and sign: ``std = |modes[k]|``,
    ``basis = modes / std``, so coefficients mean what they meant in the source file. Otherwise
    :func:`~e2far_lite.model.orthonormal_basis` re-orthonormalises them (same distribution,
    different coefficients; a warning says so) and components with no variance are dropped.

    Args:
        modes: (K, V, 3) in mm.

    Returns:
        basis (K', V, 3) orthonormal when flattened, std (K',) in mm, float64.
    """
    modes = modes.double()
    if modes.shape[0] == 0:
        return modes, modes.new_zeros(0)
    flat = modes.reshape(modes.shape[0], -1)
    gram = flat @ flat.T
    norms = gram.diagonal().sqrt()
    if bool((norms > 0).all()):
        cosine = gram / (norms[:, None] * norms[None, :])
        off = (cosine - torch.eye(len(norms), dtype=cosine.dtype)).abs().max()
        if float(off) < 1e-3:
            return modes / norms[:, None, None], norms
    warnings.warn(f"{name}: the modes are not mutually orthogonal; re-orthonormalised by SVD, so "
                  "coefficients differ from the file's (the distribution of faces is the same)",
                  stacklevel=3)
    basis, std, _ = orthonormal_basis(modes, variance=1.0)
    keep = std > std[0] * 1e-9
    return _sign_convention(basis[keep]), std[keep]


def _zero_based(index: np.ndarray, size: int, name: str, one_based: bool) -> np.ndarray:
    """Indices into ``size`` items as 0-based: read the base off the data, else ``one_based``.

    0 appears -> 0-based; ``size`` appears -> 1-based; neither -> the format's convention.
    """
    index = np.asarray(index)
    if index.size == 0:
        return index.astype(np.int64)
    if np.issubdtype(index.dtype, np.floating):
        if not np.all(index == np.round(index)):
            raise ValueError(f"{name}: expected integer indices, got fractional values")
    index = index.astype(np.int64)
    low, high = int(index.min()), int(index.max())
    if low == 0:
        one_based = False
    elif high == size:
        one_based = True
    index = index - 1 if one_based else index
    if int(index.min()) < 0 or int(index.max()) >= size:
        raise ValueError(f"{name}: expected indices into {size} items, got range [{low}, {high}]")
    return index


def _triangles(tri: Any, num_v: int, name: str, one_based: bool) -> np.ndarray:
    """(F, 3) or (3, F) triangle list -> (F, 3) int64, 0-based."""
    tri = np.asarray(tri)
    if tri.ndim != 2 or 3 not in tri.shape:
        raise ValueError(f"{name}: expected a triangle list of shape (F, 3) or (3, F), "
                         f"got {tri.shape}")
    if tri.shape[1] != 3:
        tri = tri.T
    return np.ascontiguousarray(_zero_based(tri, num_v, name, one_based))


def _face_front(triangles: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Flip the winding if the front half of the mesh has normals pointing to -z."""
    if triangles.shape[0] == 0:
        return triangles
    v0, v1, v2 = (mean[triangles[:, i]] for i in range(3))
    normal_z = np.cross(v1 - v0, v2 - v0)[:, 2]
    centre_z = (v0[:, 2] + v1[:, 2] + v2[:, 2]) / 3
    front = centre_z >= np.median(centre_z)
    if normal_z[front].sum() < 0:
        return np.ascontiguousarray(triangles[:, [0, 2, 1]])
    return triangles


def _check_width(mean_mm: np.ndarray, name: str) -> None:
    width = float(np.ptp(mean_mm[:, 0]))
    low, high = _FACE_WIDTH_MM
    if not low <= width <= high:
        warnings.warn(f"{name}: the mean face is {width:.3g} mm wide after unit conversion; "
                      f"expected {low:g}-{high:g} mm. Are the file's units what this loader "
                      "assumes?", stacklevel=3)


def read_landmarks(landmarks: LandmarkSpec, num_vertices: int) -> Tensor:
    """The 68 iBUG landmark vertex indices (0-based, -1 = undefined) from a file or a sequence.

    Args:
        landmarks: None (all undefined), a (68,) integer array/sequence/tensor, or a path to a
            ``.npy`` (read without pickle) or ``.json`` file holding a list of 68 integers.
        num_vertices: V, for the range check.

    Returns:
        (68,) int64.
    """
    if landmarks is None:
        return torch.full((NUM_LANDMARKS,), -1, dtype=torch.int64)
    if isinstance(landmarks, (str, os.PathLike)):
        path = _require_file(landmarks, "landmarks", ".npy or .json file of 68 vertex indices")
        if path.suffix == ".npy":
            try:
                values = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise ValueError(f"landmarks: expected a plain integer .npy array in "
                                 f"{path.name!r}, got {err}") from err
        elif path.suffix == ".json":
            values = np.asarray(json.loads(path.read_text()))
        else:
            raise ValueError(f"landmarks: expected a .npy or .json file, got {path.name!r}")
    else:
        values = landmarks.numpy() if isinstance(landmarks, Tensor) else np.asarray(landmarks)
    values = np.asarray(values).reshape(-1)
    if values.shape != (NUM_LANDMARKS,) or not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"landmarks: expected {NUM_LANDMARKS} integer vertex indices, got "
                         f"shape {values.shape} of {values.dtype}")
    if int(values.min()) < -1 or int(values.max()) >= num_vertices:
        raise ValueError(f"landmarks: expected 0-based indices in [-1, {num_vertices - 1}], got "
                         f"range [{int(values.min())}, {int(values.max())}]")
    return torch.from_numpy(values.astype(np.int64))


def _truncate(count: int | None, available: int, name: str) -> int:
    if count is None:
        return available
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"{name}: expected a non-negative integer or None, got {count!r}")
    if count > available:
        raise ValueError(f"{name}: expected at most {available} (what the file has), got {count}")
    return count


def _assemble(
    mean: np.ndarray,
    id_modes: np.ndarray,
    exp_modes: np.ndarray,
    triangles: np.ndarray,
    landmarks: Tensor,
    num_id: int | None,
    num_exp: int | None,
    source: str,
) -> MorphableModel:
    """mean (V, 3), modes (K, V, 3) and (E, V, 3) in mm, ``w ~ N(0, 1)`` -> MorphableModel."""
    _check_width(mean, source)
    id_basis, id_std = gaussian_space(torch.from_numpy(id_modes), f"{source} identity")
    exp_basis, exp_std = gaussian_space(torch.from_numpy(exp_modes), f"{source} expression")
    k = _truncate(num_id, id_basis.shape[0], "num_id")
    e = _truncate(num_exp, exp_basis.shape[0], "num_exp")
    return MorphableModel(
        mean=torch.from_numpy(mean), id_basis=id_basis[:k], id_std=id_std[:k],
        exp_basis=exp_basis[:e], exp_std=exp_std[:e],
        triangles=torch.from_numpy(_face_front(triangles, mean)), landmarks=landmarks)


def _as_vertices(flat: Any, name: str) -> np.ndarray:
    """A flattened (3V,) or (3V, 1) interleaved x, y, z array -> (V, 3) float64."""
    flat = np.asarray(flat, dtype=np.float64).reshape(-1)
    if flat.size == 0 or flat.size % 3:
        raise ValueError(f"{name}: expected 3V values (x, y, z per vertex), got {flat.size}")
    return flat.reshape(-1, 3)


def _columns(basis: Any, num_v: int, name: str) -> np.ndarray:
    """A basis stored as (3V, K) columns (or (K, 3V) rows) -> (3V, K) float64."""
    basis = np.asarray(basis, dtype=np.float64)
    if basis.ndim == 1 and basis.size == 3 * num_v:
        basis = basis[:, None]
    if basis.ndim != 2 or 3 * num_v not in basis.shape:
        raise ValueError(f"{name}: expected a basis of shape ({3 * num_v}, K), got {basis.shape}")
    return basis if basis.shape[0] == 3 * num_v else basis.T


def _load_mat(path: Path, name: str, expected: str) -> dict[str, Any]:
    import scipy.io  # scipy comes with scikit-image

    try:
        data = scipy.io.loadmat(str(path))
    except NotImplementedError as err:  # v7.3 files are HDF5
        raise ValueError(f"{name}: expected a MATLAB v5/v7 .mat file ({expected}), got a v7.3 "
                         f"(HDF5) file {path.name!r}; re-save it in MATLAB with "
                         "save(..., '-v7')") from err
    except Exception as err:  # scipy raises many kinds for non-MATLAB input
        raise ValueError(f"{name}: expected a MATLAB .mat file ({expected}), got an unreadable "
                         f"file {path.name!r} ({type(err).__name__}: {err})") from err
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _missing(arrays: Mapping[str, Any], keys: Sequence[str], name: str, path: Path) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{name}: expected keys {list(keys)} in {path.name!r}, missing "
                         f"{missing}; found {sorted(arrays)[:12]}")


# ----------------------------------------------------------------------------- BFM 2009
def load_bfm2009(
    path: PathLike, landmarks: LandmarkSpec = None, num_id: int | None = None
) -> MorphableModel:
    """The Basel Face Model 2009 (``01_MorphableModel.mat``, MATLAB v5).

    Reads ``shapeMU`` (3V, 1) µm, ``shapePC`` (3V, 199) orthonormal columns, ``shapeEV`` (199, 1)
    standard deviations in µm (the BFM formula is ``shapeMU + shapePC·(α ∘ shapeEV)``) and ``tl``
    (F, 3) 1-based triangles. Converted to mm and 0-based. BFM 2009 has no expressions: the model
    has E = 0 (``a_exp`` is a (B, 0) tensor); for expressions use :func:`load_3ddfa`. It has no
    landmark list either: pass ``landmarks`` (68 0-based vertex indices) or get all -1.

    Args:
        path: the .mat file.
        landmarks: see :func:`read_landmarks`.
        num_id: keep the first K identity components (default all 199).
    """
    path = _require_file(path, "path", "BFM 2009 file (01_MorphableModel.mat)")
    arrays = _load_mat(path, "path", "BFM 2009 01_MorphableModel.mat")
    _missing(arrays, ("shapeMU", "shapePC", "shapeEV", "tl"), "path", path)
    mean = _as_vertices(arrays["shapeMU"], "shapeMU") * UM_TO_MM
    num_v = mean.shape[0]
    columns = _columns(arrays["shapePC"], num_v, "shapePC")
    modes = _modes_from_columns(columns, arrays["shapeEV"], "shapeEV") * UM_TO_MM
    triangles = _triangles(arrays["tl"], num_v, "tl", one_based=True)
    return _assemble(mean, modes.reshape(-1, num_v, 3), np.zeros((0, num_v, 3)), triangles,
                     read_landmarks(landmarks, num_v), num_id, None, "BFM 2009")


# ----------------------------------------------------------------------------- BFM 2017
def _h5py() -> Any:
    try:
        import h5py
    except ImportError as err:
        raise ImportError("load_bfm2017 reads HDF5 files and needs h5py: pip install h5py") from err
    return h5py


def load_bfm2017(
    path: PathLike,
    landmarks: LandmarkSpec = None,
    num_id: int | None = None,
    num_exp: int | None = None,
) -> MorphableModel:
    """The Basel Face Model 2017/2019 (``model2017-1_bfm_nomouth.h5`` and kin, statismo HDF5).

    Reads ``shape/model/{mean, pcaBasis, pcaVariance}``, ``expression/model/{...}`` (optional:
    E = 0 without it) and ``shape/representer/cells`` (3, F) 0-based. Units are mm. Following
    statismo, ``pcaBasis`` (3V, K) is taken to have orthonormal columns and ``pcaVariance`` to be
    variances (std = sqrt); if instead the columns' norms equal sqrt(variance) they are read as
    already scaled, so either convention gives the same model. The mean face is
    ``shape mean + expression mean``. No iBUG-68 list in the file: pass ``landmarks`` or get -1.

    Needs ``h5py`` (``pip install h5py``).
    """
    path = _require_file(path, "path", "BFM 2017 HDF5 file (.h5)")
    h5py = _h5py()
    keys = ("shape/model/mean", "shape/model/pcaBasis", "shape/model/pcaVariance",
            "shape/representer/cells")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"path: expected a BFM 2017 HDF5 file, got an unreadable file "
                         f"{path.name!r} ({err})") from err
    with handle:
        missing = [k for k in keys if k not in handle]
        if missing:
            raise ValueError(f"path: expected HDF5 datasets {list(keys)} in {path.name!r}, "
                             f"missing {missing}; top-level groups {sorted(handle)}")
        read = {k: np.asarray(handle[k]) for k in keys}
        exp_keys = [f"expression/model/{k}" for k in ("mean", "pcaBasis", "pcaVariance")]
        has_exp = all(k in handle for k in exp_keys)
        exp = {k.rsplit("/", 1)[1]: np.asarray(handle[k]) for k in exp_keys} if has_exp else {}
    mean = _as_vertices(read["shape/model/mean"], "shape/model/mean")
    num_v = mean.shape[0]
    id_std = np.sqrt(read["shape/model/pcaVariance"].reshape(-1).astype(np.float64).clip(min=0))
    columns = _columns(read["shape/model/pcaBasis"], num_v, "shape/model/pcaBasis")
    id_modes = _modes_from_columns(columns, id_std, "shape/model/pcaBasis")
    if has_exp:
        mean = mean + _as_vertices(exp["mean"], "expression/model/mean")
        exp_std = np.sqrt(exp["pcaVariance"].reshape(-1).astype(np.float64).clip(min=0))
        exp_columns = _columns(exp["pcaBasis"], num_v, "expression/model/pcaBasis")
        exp_modes = _modes_from_columns(exp_columns, exp_std, "expression/model/pcaBasis")
    else:
        exp_modes = np.zeros((0, 3 * num_v))
    triangles = _triangles(read["shape/representer/cells"], num_v, "shape/representer/cells",
                           one_based=False)
    return _assemble(mean, id_modes.reshape(-1, num_v, 3), exp_modes.reshape(-1, num_v, 3),
                     triangles, read_landmarks(landmarks, num_v), num_id, num_exp, "BFM 2017")


# ------------------------------------------------------------------------- 3DDFA-style BFM
_3DDFA_NAMES = {
    "mean": ("u",),  # full mean, expression mean included (3DDFA-V2)
    "shape_mean": ("u_shp", "mu_shape", "shapeMU"),
    "exp_mean": ("u_exp", "mu_exp", "expMU"),
    "id_basis": ("w_shp", "w", "shapePC"),
    "id_std": ("sigma_shp", "sigma", "shapeEV"),
    "exp_basis": ("w_exp", "expPC"),
    "exp_std": ("sigma_exp", "expEV"),
    "triangles": ("tri", "tl"),
}


def _pick(arrays: Mapping[str, Any], role: str) -> Any:
    for key in _3DDFA_NAMES[role]:
        if key in arrays:
            return arrays[key]
    return None


def _keypoints(arrays: Mapping[str, Any], num_v: int, one_based: bool) -> Tensor | None:
    """Landmark vertices from face3d's ``kpt_ind`` (vertex indices) or 3DDFA's ``keypoints``.

    ``keypoints`` with 204 entries are (x, y, z) index triples into the flattened 3V array. With
    68 entries they are x indices into the 3V array when every (0-based) index is a multiple of 3
    (3DDFA's convention; a vertex list does that by chance with probability 3^-68), else vertex
    indices.
    """
    if "kpt_ind" in arrays:
        return torch.from_numpy(_zero_based(np.asarray(arrays["kpt_ind"]).reshape(-1), num_v,
                                            "kpt_ind", one_based))
    if "keypoints" not in arrays:
        return None
    flat = _zero_based(np.asarray(arrays["keypoints"]).reshape(-1), 3 * num_v, "keypoints",
                       one_based)
    if flat.size == 3 * NUM_LANDMARKS:  # x, y, z index of each point (3DDFA-V2)
        triples = flat.reshape(NUM_LANDMARKS, 3)
        if not (np.all(triples[:, 1] == triples[:, 0] + 1)
                and np.all(triples[:, 2] == triples[:, 0] + 2)):
            raise ValueError("keypoints: expected 68 (x, y, z) index triples into the 3V array, "
                             "got indices that are not consecutive triples")
        return torch.from_numpy(triples[:, 0] // 3)
    if flat.size != NUM_LANDMARKS:
        raise ValueError(f"keypoints: expected 68 or 204 indices into the 3V array, got "
                         f"{flat.size}")
    if np.all(flat % 3 == 0):
        return torch.from_numpy(flat // 3)
    if int(flat.max()) >= num_v:
        raise ValueError(f"keypoints: expected x indices into the 3V array (multiples of 3, "
                         f"0-based) or vertex indices below {num_v}, got neither")
    return torch.from_numpy(flat)


def load_3ddfa(
    path: PathLike,
    landmarks: LandmarkSpec = None,
    num_id: int | None = None,
    num_exp: int | None = None,
) -> MorphableModel:
    """BFM as used by 3DDFA / face3d: BFM 2009 identity with a FaceWarehouse expression space.

    Reads a ``.mat`` (``BFM.mat``; face3d's struct ``model`` is unwrapped) or a ``.pkl``
    (3DDFA-V2 ``bfm_noneck_v3.pkl``, through :mod:`~e2far_lite.io.safe_pickle`). Key variants:

    - mean: ``u`` (expression mean included), or ``u_shp``/``mu_shape``/``shapeMU`` plus
      ``u_exp``/``mu_exp``/``expMU`` (added);
    - bases (3V, K): ``w_shp``/``w``/``shapePC`` (199, or 40 in 3DDFA-V2) and ``w_exp``/``expPC``
      (29, or 10), with optional std ``sigma_shp``/``sigma``/``shapeEV`` and
      ``sigma_exp``/``expEV``. Without std, the columns are taken as scaled modes
      (coefficient ~ N(0, 1)); unit-norm columns without std give a warning;
    - ``tri``/``tl``: (3, F) or (F, 3);
    - ``keypoints``: 68 x indices into the flattened 3V array (vertex = index // 3; told apart
      from 68 vertex indices by all being multiples of 3 when 0-based) or 204 (x, y, z) triples;
      face3d's ``kpt_ind``: 68 vertex indices.

    Units are µm (BFM's), converted to mm. Indices are 1-based in ``.mat`` and 0-based in
    ``.pkl`` unless the data show otherwise (a 0 present, or the maximum reaching the count).
    """
    path = _require_file(path, "path", "3DDFA BFM file (.mat or .pkl)")
    if path.suffix == ".pkl":
        arrays = _load_pickle_dict(path, "3DDFA-V2 BFM pickle")
        one_based = False
    else:
        arrays = _load_mat(path, "path", "3DDFA BFM.mat")
        struct = arrays.get("model")
        if isinstance(struct, np.ndarray) and struct.dtype.names:  # face3d: one MATLAB struct
            struct = struct[0, 0]
            arrays = {k: struct[k] for k in struct.dtype.names}
        one_based = True
    found = {role: _pick(arrays, role) for role in _3DDFA_NAMES}
    no_mean = found["mean"] is None and found["shape_mean"] is None
    if no_mean or found["id_basis"] is None or found["triangles"] is None:
        raise ValueError(
            f"path: expected a mean (u, or u_shp/mu_shape/shapeMU), an identity basis "
            f"(w_shp/w/shapePC) and triangles (tri/tl) in {path.name!r}, got keys "
            f"{sorted(arrays)[:16]}")
    if found["mean"] is not None:
        mean = _as_vertices(found["mean"], "u")
    else:
        mean = _as_vertices(found["shape_mean"], "u_shp")
        if found["exp_mean"] is not None:
            mean = mean + _as_vertices(found["exp_mean"], "u_exp")
    num_v = mean.shape[0]
    id_modes = _modes_from_columns(_columns(found["id_basis"], num_v, "w_shp"),
                                   found["id_std"], "w_shp")
    if found["exp_basis"] is not None:
        exp_modes = _modes_from_columns(_columns(found["exp_basis"], num_v, "w_exp"),
                                        found["exp_std"], "w_exp")
    else:
        exp_modes = np.zeros((0, 3 * num_v))
    triangles = _triangles(found["triangles"], num_v, "tri", one_based)
    if landmarks is None:  # the file's own keypoints, if any
        landmarks = _keypoints(arrays, num_v, one_based)
    return _assemble(mean * UM_TO_MM, (id_modes * UM_TO_MM).reshape(-1, num_v, 3),
                     (exp_modes * UM_TO_MM).reshape(-1, num_v, 3), triangles,
                     read_landmarks(landmarks, num_v), num_id, num_exp, "3DDFA BFM")


def _load_pickle_dict(path: Path, what: str) -> dict[str, Any]:
    """A pickled dict via the restricted unpickler; refusals propagate, the rest -> ValueError."""
    try:
        data = safe_pickle.load(path)
    except safe_pickle.RefusedGlobal:
        raise
    except Exception as err:  # truncated, not a pickle, ...
        raise ValueError(f"path: expected a {what}, got an unreadable pickle {path.name!r} "
                         f"({type(err).__name__}: {err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"path: expected a {what} holding a dict, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


# ---------------------------------------------------------------------------------- FLAME
def load_flame(
    path: PathLike,
    landmarks: LandmarkSpec = None,
    num_shape: int = 300,
    num_id: int | None = None,
    num_exp: int | None = None,
) -> MorphableModel:
    """FLAME (``generic_model.pkl``, a Python 2 pickle with chumpy arrays), without chumpy.

    Reads ``v_template`` (5023, 3) m, ``shapedirs`` (5023, 3, 400) m and ``f`` (9976, 3) 0-based
    through :mod:`~e2far_lite.io.safe_pickle` (joints, skinning weights and pose correctives are
    read but not used: the model is the linear part only, neutral pose). The first ``num_shape``
    shapedirs are identity, the rest expression (FLAME 2020: 300 + 100). FLAME's shapedirs are
    scaled PCA components (``β ~ N(0, 1)``), so our ``a_id`` equals FLAME's ``β`` when the
    directions are orthogonal. Metres -> mm.

    FLAME's landmark embedding is barycentric (not a vertex list): pass ``landmarks`` as 68
    0-based vertex indices (e.g. the vertex nearest each embedded point) or get all -1.
    """
    path = _require_file(path, "path", "FLAME model file (generic_model.pkl)")
    arrays = _load_pickle_dict(path, "FLAME generic_model.pkl")
    _missing(arrays, ("v_template", "shapedirs", "f"), "path", path)
    try:
        template = np.asarray(arrays["v_template"], dtype=np.float64)
        shapedirs = np.asarray(arrays["shapedirs"], dtype=np.float64)
        faces = np.asarray(arrays["f"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"path: expected numeric v_template, shapedirs and f in "
                         f"{path.name!r}, got {err}") from err
    if template.ndim != 2 or template.shape[1] != 3:
        raise ValueError(f"v_template: expected shape (V, 3), got {template.shape}")
    num_v = template.shape[0]
    if shapedirs.ndim != 3 or shapedirs.shape[:2] != (num_v, 3):
        raise ValueError(f"shapedirs: expected shape ({num_v}, 3, K), got {shapedirs.shape}")
    if not 0 < num_shape <= shapedirs.shape[2]:
        raise ValueError(f"num_shape: expected 1..{shapedirs.shape[2]} (shapedirs has "
                         f"{shapedirs.shape[2]}), got {num_shape}")
    modes = shapedirs.transpose(2, 0, 1) * M_TO_MM  # (K, V, 3)
    triangles = _triangles(faces, num_v, "f", one_based=False)
    return _assemble(template * M_TO_MM, modes[:num_shape], modes[num_shape:], triangles,
                     read_landmarks(landmarks, num_v), num_id, num_exp, "FLAME")


# ----------------------------------------------------------------------------- ICT-FaceKit
def _polygons_to_triangles(polygons: list[list[int]]) -> np.ndarray:
    """Quads and triangles as ``quads_to_triangles`` splits them; larger polygons as fans."""
    if not polygons:
        return np.zeros((0, 3), dtype=np.int64)
    if max(len(p) for p in polygons) <= 4:
        quads = torch.tensor([p + [-1] * (4 - len(p)) for p in polygons], dtype=torch.int64)
        return quads_to_triangles(quads).numpy()
    fans = [[p[0], p[i], p[i + 1]] for p in polygons for i in range(1, len(p) - 1)]
    return np.array(fans, dtype=np.int64)


def _ict_landmarks(neutral_cm: np.ndarray, num_v: int) -> Tensor:
    """The ICT 68 landmarks when the folder's mesh is the ICT topology, else all -1."""
    path = ict_ingredients_path()
    if not path.is_file():
        return read_landmarks(None, num_v)
    with np.load(path, allow_pickle=False) as npz:
        reference, marks = npz["neutral"], npz["landmarks_68"].astype(np.int64)
    n = reference.shape[0]
    if neutral_cm.shape[0] < n or not np.allclose(neutral_cm[:n], reference, atol=1e-3):
        return read_landmarks(None, num_v)
    return torch.from_numpy(np.where(marks < num_v, marks, -1))


def load_ict_facekit(
    folder: PathLike,
    region: str | int = "narrow_face",
    landmarks: LandmarkSpec = None,
    id_variance: float = 0.995,
    num_exp: int = 29,
    seed: int = 0,
) -> MorphableModel:
    """The ICT Face Model from an ICT-FaceKit ``FaceXModel/`` folder (MIT licence).

    Reads ``generic_neutral_mesh.obj``, ``identity000.obj``... and the expression meshes named in
    ``vertex_indices.json`` (``"expressions"``; without the json, every other .obj). Each is a full
    mesh in cm; modes are its offset from the neutral mesh, as ICT-FaceKit computes them. Keeps
    the leading vertices of ``region`` (:data:`ICT_REGIONS`, or a vertex count) and the polygons
    lying wholly inside, converts to mm and centres the template on its centroid. Identity and
    expression spaces are built as :func:`~e2far_lite.model.build_ict_model` builds the default
    model (identity to ``id_variance``; ``num_exp`` components of sampled blend-shape mixtures,
    named blend shapes kept). Landmarks: ``landmarks`` if given, else the ICT 68 indices
    when the mesh is the ICT topology (checked against the shipped ingredients npz), else all -1.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: expected an ICT-FaceKit FaceXModel folder, got missing "
                                f"{str(folder)!r}")
    neutral_cm, polygons = read_obj(folder / "generic_neutral_mesh.obj")
    total = neutral_cm.shape[0]
    if isinstance(region, str):
        if region not in ICT_REGIONS:
            raise ValueError(f"region: expected one of {list(ICT_REGIONS)} or a vertex count, "
                             f"got {region!r}")
        num_v = ICT_REGIONS[region] or total
    elif isinstance(region, int) and not isinstance(region, bool) and region >= 3:
        num_v = region
    else:
        raise ValueError(f"region: expected one of {list(ICT_REGIONS)} or a vertex count >= 3, "
                         f"got {region!r}")
    if num_v > total:
        raise ValueError(f"region: expected at most {total} vertices (the neutral mesh), got "
                         f"{num_v} for {region!r}")
    polygons = [p for p in polygons if max(p) < num_v]
    triangles = _polygons_to_triangles(polygons)

    def offsets(names: list[str]) -> np.ndarray:
        out = np.zeros((len(names), num_v, 3))
        for i, name in enumerate(names):
            points, _ = read_obj(folder / f"{name}.obj")
            if points.shape[0] != total:
                raise ValueError(f"{name}.obj: expected {total} vertices like the neutral mesh, "
                                 f"got {points.shape[0]}")
            out[i] = (points[:num_v] - neutral_cm[:num_v]) * CM_TO_MM
        return out

    id_names = sorted((p.stem for p in folder.glob("identity*.obj")
                       if re.fullmatch(r"identity\d+", p.stem)), key=lambda s: int(s[8:]))
    if not id_names:
        raise ValueError(f"folder: expected identity000.obj ... in {str(folder)!r}, got none")
    config = folder / "vertex_indices.json"
    if config.is_file():
        exp_names = [str(n) for n in json.loads(config.read_text()).get("expressions", [])]
    else:
        exp_names = sorted(p.stem for p in folder.glob("*.obj")
                           if p.stem != "generic_neutral_mesh" and p.stem not in id_names)

    mean = neutral_cm[:num_v] * CM_TO_MM
    mean = mean - mean.mean(0)
    _check_width(mean, "ICT-FaceKit")
    id_basis, id_std, _ = orthonormal_basis(torch.from_numpy(offsets(id_names)), id_variance)
    id_basis = _sign_convention(id_basis)
    blendshapes = torch.from_numpy(offsets(exp_names))
    if exp_names:
        if isinstance(num_exp, bool) or not isinstance(num_exp, int) \
                or not 0 < num_exp <= len(exp_names):
            raise ValueError(f"num_exp: expected 1..{len(exp_names)} (the blend shapes "
                             f"found), got {num_exp!r}")
        gen = torch.Generator().manual_seed(seed)
        weights = sample_blendshape_weights(exp_names, 20000, gen).double()
        exp_basis, exp_std, _ = expression_space(blendshapes, weights, num_exp)
    else:
        exp_basis, exp_std = blendshapes, torch.zeros(0, dtype=torch.float64)
    marks = (read_landmarks(landmarks, num_v) if landmarks is not None
             else _ict_landmarks(neutral_cm, num_v))
    return MorphableModel(
        mean=torch.from_numpy(mean), id_basis=id_basis, id_std=id_std, exp_basis=exp_basis,
        exp_std=exp_std, triangles=torch.from_numpy(_face_front(triangles, mean)),
        landmarks=marks, blendshapes=blendshapes if exp_names else None,
        blendshape_names=exp_names if exp_names else None)


__all__ = [
    "ICT_REGIONS", "gaussian_space", "load_3ddfa", "load_bfm2009", "load_bfm2017", "load_flame",
    "load_ict_facekit", "read_landmarks",
]
