"""Loaders for the field's face models, on tiny fixture files written here in each exact format.

No real (licensed) model file is used or needed: each test writes a 30-vertex "face" in the
format's own layout, units and index base, then checks that the loaded MorphableModel has the
same mean (mm), the same distribution of faces, 0-based counter-clockwise triangles and the
landmarks the file defines.
"""

from __future__ import annotations

import builtins
import io
import json
import os
import pickle
import sys
import types
import warnings

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from e2far_lite.io import safe_pickle
from e2far_lite.model import loaders
from e2far_lite.model.ict import ict_ingredients_path, load_ict_face_area, quads_to_triangles
from e2far_lite.model.morphable_model import MorphableModel

K, E = 4, 2
ID_STD = np.array([6.0, 4.0, 2.5, 1.5])  # mm
EXP_STD = np.array([5.0, 2.0])  # mm


# ------------------------------------------------------------------------------- fixtures
class Face:
    """A 6 x 5 grid face, 150 mm wide, bulging toward +z, with orthonormal random modes."""

    def __init__(self, seed: int = 0) -> None:
        nx, ny = 6, 5
        x, y = np.meshgrid(np.linspace(-75, 75, nx), np.linspace(-100, 100, ny))
        z = 60 - 0.004 * x**2 - 0.002 * y**2
        self.mean = np.stack([x, y, z], -1).reshape(-1, 3)  # (V, 3) mm
        self.num_v = nx * ny
        tris = []
        for i in range(ny - 1):
            for j in range(nx - 1):
                a, b, c, d = i * nx + j, i * nx + j + 1, (i + 1) * nx + j + 1, (i + 1) * nx + j
                tris += [[a, b, c], [a, c, d]]  # counter-clockwise seen from +z
        self.triangles = np.array(tris)
        rng = np.random.default_rng(seed)
        q, _ = np.linalg.qr(rng.normal(size=(3 * self.num_v, K + E)))
        self.id_columns, self.exp_columns = q[:, :K], q[:, K:]  # (3V, K), (3V, E) orthonormal
        self.exp_mean = rng.normal(scale=0.5, size=(self.num_v, 3))  # mm
        self.landmarks = rng.integers(0, self.num_v, size=68)

    def covariance(self, columns: np.ndarray, std: np.ndarray) -> np.ndarray:
        return (columns * std**2) @ columns.T


def model_covariance(basis: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    flat = basis.double().flatten(1).T.numpy()
    return (flat * std.double().numpy() ** 2) @ flat.T


def assert_model(model: MorphableModel, face: Face, mean_mm: np.ndarray, num_exp: int) -> None:
    """Common checks: sizes, orthonormal bases, triangles, template at zero coefficients."""
    assert isinstance(model, MorphableModel)
    assert (model.num_vertices, model.num_id, model.num_exp) == (face.num_v, K, num_exp)
    for basis in (model.id_basis, model.exp_basis):
        flat = basis.double().flatten(1)
        torch.testing.assert_close(flat @ flat.T, torch.eye(basis.shape[0], dtype=torch.float64),
                                   atol=1e-5, rtol=0)
    assert torch.equal(model.triangles, torch.from_numpy(face.triangles))
    np.testing.assert_allclose(model.mean.numpy(), mean_mm, atol=1e-3)
    shape = model(torch.zeros(2, model.num_id), torch.zeros(2, model.num_exp))
    np.testing.assert_allclose(shape[1].numpy(), mean_mm, atol=1e-3)
    np.testing.assert_allclose(model_covariance(model.id_basis, model.id_std),
                               face.covariance(face.id_columns, ID_STD), atol=1e-3)


@pytest.fixture
def face() -> Face:
    return Face()


# ------------------------------------------------------------------------------- BFM 2009
@pytest.mark.parametrize("clockwise", [False, True])
def test_bfm2009(tmp_path, face, clockwise):
    tl = face.triangles[:, [0, 2, 1]] if clockwise else face.triangles
    path = tmp_path / "01_MorphableModel.mat"
    scipy.io.savemat(path, {
        "shapeMU": (face.mean * 1e3).reshape(-1, 1),  # µm
        "shapePC": face.id_columns,
        "shapeEV": (ID_STD * 1e3)[:, None],  # std in µm
        "tl": (tl + 1).astype(np.float64),  # 1-based, MATLAB doubles
        "texMU": np.zeros((3 * face.num_v, 1)),
    })
    model = loaders.load_bfm2009(path)
    assert_model(model, face, face.mean, num_exp=0)
    np.testing.assert_allclose(model.id_std.numpy(), ID_STD, rtol=1e-5)
    # orthonormal PCA in the file: coefficient k is the file's coefficient k, same sign
    np.testing.assert_allclose(model.id_basis.reshape(K, -1).T.numpy(), face.id_columns,
                               atol=1e-6)
    assert (model.landmarks == -1).all()
    # E = 0 survives the npz round trip
    again = MorphableModel.load(model.save(tmp_path / "bfm.npz"))
    assert again.num_exp == 0 and again.expression_offset(torch.zeros(1, 0)).shape == (1, 30, 3)


def test_bfm2009_landmarks_and_truncation(tmp_path, face):
    path = tmp_path / "bfm.mat"
    scipy.io.savemat(path, {"shapeMU": face.mean.reshape(-1, 1) * 1e3, "shapePC": face.id_columns,
                            "shapeEV": ID_STD[:, None] * 1e3, "tl": face.triangles + 1})
    marks = tmp_path / "bfm_68.json"
    marks.write_text(json.dumps([int(i) for i in face.landmarks]))
    model = loaders.load_bfm2009(path, landmarks=marks, num_id=2)
    assert model.num_id == 2 and torch.equal(model.landmarks, torch.from_numpy(face.landmarks))
    with pytest.raises(ValueError, match="num_id: expected at most 4"):
        loaders.load_bfm2009(path, num_id=9)
    np.save(tmp_path / "short.npy", np.arange(10))
    with pytest.raises(ValueError, match="landmarks: expected 68"):
        loaders.load_bfm2009(path, landmarks=tmp_path / "short.npy")


# ------------------------------------------------------------------------------- BFM 2017
@pytest.mark.parametrize("scaled", [False, True], ids=["orthonormal", "prescaled"])
def test_bfm2017(tmp_path, face, scaled):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "model2017-1_face12_nomouth.h5"
    id_cols = face.id_columns * ID_STD if scaled else face.id_columns
    exp_cols = face.exp_columns * EXP_STD if scaled else face.exp_columns
    with h5py.File(path, "w") as h5:
        h5["shape/model/mean"] = face.mean.reshape(-1).astype(np.float32)  # mm
        h5["shape/model/pcaBasis"] = id_cols.astype(np.float32)
        h5["shape/model/pcaVariance"] = (ID_STD**2).astype(np.float32)
        h5["shape/model/noiseVariance"] = np.float32(0)
        h5["shape/representer/points"] = face.mean.T.astype(np.float32)  # (3, V)
        h5["shape/representer/cells"] = face.triangles.T.astype(np.int32)  # (3, F), 0-based
        h5["expression/model/mean"] = face.exp_mean.reshape(-1).astype(np.float32)
        h5["expression/model/pcaBasis"] = exp_cols.astype(np.float32)
        h5["expression/model/pcaVariance"] = (EXP_STD**2).astype(np.float32)
    model = loaders.load_bfm2017(path)
    assert_model(model, face, face.mean + face.exp_mean, num_exp=E)
    np.testing.assert_allclose(model.exp_std.numpy(), EXP_STD, rtol=1e-5)
    np.testing.assert_allclose(model_covariance(model.exp_basis, model.exp_std),
                               face.covariance(face.exp_columns, EXP_STD), atol=1e-3)


def test_bfm2017_without_groups(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["data"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"path: expected HDF5 datasets .* missing"):
        loaders.load_bfm2017(path)


# ------------------------------------------------------------------------- 3DDFA-style BFM
def _3ddfa_arrays(face: Face, variant: str) -> dict:
    um = 1e3
    if variant == "split_mean_sigma":  # 3DDFA: separate means, orthonormal bases + sigma
        return {"u_shp": face.mean.reshape(-1, 1) * um,
                "u_exp": face.exp_mean.reshape(-1, 1) * um,
                "w_shp": face.id_columns, "sigma_shp": ID_STD[:, None] * um,
                "w_exp": face.exp_columns, "sigma_exp": EXP_STD[:, None] * um,
                "tri": (face.triangles.T + 1).astype(np.float64),  # (3, F), 1-based
                "keypoints": (3 * face.landmarks + 1)[None, :].astype(np.float64)}  # (1, 68)
    if variant == "vertex_keypoints":  # keypoints given as 1-based vertex indices
        arrays = _3ddfa_arrays(face, "split_mean_sigma")
        return {**arrays, "keypoints": face.landmarks[None, :] + 1}
    if variant == "scaled_no_sigma":  # one mean; bases already scaled by the std
        flat = 3 * face.landmarks[:, None] + np.arange(3) + 1  # 204 (x, y, z), 1-based
        return {"u": (face.mean + face.exp_mean).reshape(-1, 1) * um,
                "w_shp": face.id_columns * ID_STD * um, "w_exp": face.exp_columns * EXP_STD * um,
                "tri": face.triangles + 1, "keypoints": flat.reshape(1, -1)}
    # face3d: one MATLAB struct "model", vertex keypoints kpt_ind
    return {"model": {"shapeMU": face.mean.reshape(-1, 1) * um,
                      "expMU": face.exp_mean.reshape(-1, 1) * um,
                      "shapePC": face.id_columns, "shapeEV": ID_STD[:, None] * um,
                      "expPC": face.exp_columns, "expEV": EXP_STD[:, None] * um,
                      "tri": (face.triangles.T + 1).astype(np.float64),
                      "kpt_ind": (face.landmarks + 1)[None, :].astype(np.float64)}}


@pytest.mark.parametrize("variant", ["split_mean_sigma", "vertex_keypoints", "scaled_no_sigma",
                                     "face3d_struct"])
def test_3ddfa_mat(tmp_path, face, variant):
    path = tmp_path / "BFM.mat"
    scipy.io.savemat(path, _3ddfa_arrays(face, variant))
    model = loaders.load_3ddfa(path)
    assert_model(model, face, face.mean + face.exp_mean, num_exp=E)
    np.testing.assert_allclose(model_covariance(model.exp_basis, model.exp_std),
                               face.covariance(face.exp_columns, EXP_STD), atol=1e-3)
    assert torch.equal(model.landmarks, torch.from_numpy(face.landmarks))


def test_3ddfa_v2_pickle(tmp_path, face):
    path = tmp_path / "bfm_noneck_v3.pkl"
    flat = (3 * face.landmarks[:, None] + np.arange(3)).reshape(-1)  # 204, 0-based
    bfm = {"u": ((face.mean + face.exp_mean) * 1e3).reshape(-1, 1).astype(np.float32),
           "w_shp": (face.id_columns * ID_STD * 1e3).astype(np.float32),
           "w_exp": (face.exp_columns * EXP_STD * 1e3).astype(np.float32),
           "tri": face.triangles.T.astype(np.int32), "keypoints": flat}
    path.write_bytes(pickle.dumps(bfm, protocol=2))
    model = loaders.load_3ddfa(path, num_exp=1)
    assert model.num_exp == 1
    np.testing.assert_allclose(model.mean.numpy(), face.mean + face.exp_mean, atol=1e-3)
    assert torch.equal(model.landmarks, torch.from_numpy(face.landmarks))
    assert torch.equal(model.triangles, torch.from_numpy(face.triangles))


def test_3ddfa_unit_columns_without_sigma_warn(tmp_path, face):
    path = tmp_path / "BFM.mat"
    scipy.io.savemat(path, {"u": face.mean.reshape(-1, 1) * 1e3, "w_shp": face.id_columns,
                            "tri": face.triangles + 1})
    with pytest.warns(UserWarning, match="unit norm"):
        loaders.load_3ddfa(path)


# ---------------------------------------------------------------------------------- FLAME
class Ch:
    """What pickle sees of chumpy.ch.Ch: an object whose __dict__ holds the array ``x``."""

    def __init__(self, x):
        # chumpy's __getstate__ is its __dict__ without _parents and _cache
        self.x = x
        self._dirty_vars = {"x"}
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = self._make_sparse = False


Ch.__module__ = "chumpy.ch"


@pytest.fixture
def fake_chumpy(monkeypatch):
    """Register a throw-away ``chumpy.ch`` module so the fixture can be pickled like FLAME's."""
    package, module = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    module.Ch = Ch
    package.ch = module
    monkeypatch.setitem(sys.modules, "chumpy", package)
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)


def _flame_pickle(face: Face, protocol: int) -> bytes:
    """generic_model.pkl layout: metres, (V, 3, K+E) shapedirs scaled by the std."""
    modes = np.concatenate([face.id_columns * ID_STD, face.exp_columns * EXP_STD], 1)
    shapedirs = modes.reshape(face.num_v, 3, K + E) / 1e3
    flame = {
        "v_template": Ch(face.mean / 1e3), "shapedirs": Ch(shapedirs),
        "f": face.triangles.astype(np.uint32),
        "J_regressor": scipy.sparse.csc_matrix(np.eye(5, face.num_v)),
        "weights": np.full((face.num_v, 5), 0.2), "kintree_table": np.zeros((2, 5), np.int64),
        "posedirs": Ch(np.zeros((face.num_v, 3, 36))), "J": np.zeros((5, 3)),
        "bs_style": "lbs", "bs_type": "lrotmin", "scale": np.float64(1.0),
    }
    return pickle.dumps(flame, protocol=protocol)


@pytest.mark.parametrize("protocol", [0, 2])
def test_flame(tmp_path, face, fake_chumpy, protocol):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(_flame_pickle(face, protocol))
    np.save(tmp_path / "flame_68.npy", face.landmarks)
    sys.modules.pop("chumpy.ch")  # loading must not need chumpy
    model = loaders.load_flame(path, num_shape=K, landmarks=tmp_path / "flame_68.npy")
    assert_model(model, face, face.mean, num_exp=E)
    np.testing.assert_allclose(model.id_std.numpy(), ID_STD, rtol=1e-5)
    np.testing.assert_allclose(model.exp_std.numpy(), EXP_STD, rtol=1e-5)
    assert torch.equal(model.landmarks, torch.from_numpy(face.landmarks))


def test_safe_pickle_keeps_arrays(face, fake_chumpy):
    data = safe_pickle.load(io.BytesIO(_flame_pickle(face, 2)))
    assert isinstance(data["shapedirs"], safe_pickle.ChumpyArray)
    np.testing.assert_array_equal(np.asarray(data["v_template"]), face.mean / 1e3)
    assert (data["J_regressor"].toarray() == np.eye(5, face.num_v)).all()
    assert data["scale"] == 1.0 and data["bs_style"] == "lbs"


def test_safe_pickle_reads_python2_arrays():
    """A Python 2 pickle stores array bytes as a str (SHORT_BINSTRING), decoded as latin-1."""

    def short_string(raw: bytes) -> bytes:
        return b"U" + bytes([len(raw)]) + raw

    data = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85"
            + short_string(b"b") + b"\x87R(K\x01K\x03\x85cnumpy\ndtype\n" + short_string(b"f8")
            + b"K\x00K\x01\x87R(K\x03" + short_string(b"<")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + short_string(np.arange(3.0).tobytes()) + b"tb.")
    np.testing.assert_array_equal(safe_pickle.load(io.BytesIO(data)), np.arange(3.0))


def test_flame_missing_keys(tmp_path):
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": np.zeros((3, 3))}, protocol=2))
    with pytest.raises(ValueError, match=r"path: expected keys .*missing \['shapedirs', 'f'\]"):
        loaders.load_flame(path)


# ------------------------------------------------------------------ hostile pickles refused
class Hostile:
    def __init__(self, call, arg):
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("kind", ["os.system", "builtins.eval"])
def test_hostile_pickle_is_refused(tmp_path, kind):
    marker = tmp_path / "pwned"
    if kind == "os.system":
        payload = Hostile(os.system, f"touch {marker}")
    else:
        payload = Hostile(builtins.eval, f"open({str(marker)!r}, 'w').close()")
    path = tmp_path / "generic_model.pkl"
    path.write_bytes(pickle.dumps({"v_template": payload, "f": np.zeros(3)}, protocol=2))
    name = "system" if kind == "os.system" else "eval"  # posix.system, __builtin__.eval
    for load in (loaders.load_flame, loaders.load_3ddfa, safe_pickle.load):
        with pytest.raises(pickle.UnpicklingError, match=rf"refused global '\w+\.{name}'"):
            load(path)
    assert not marker.exists()


def test_codecs_other_than_latin1_refused():
    # protocol 2 writes bytes as _codecs.encode(text, 'latin1'); any other codec is refused
    data = b"\x80\x02c_codecs\nencode\nq\x00X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R."
    with pytest.raises(pickle.UnpicklingError, match="rot13"):
        safe_pickle.load(io.BytesIO(data))


# ---------------------------------------------------------------------------- ICT-FaceKit
def _write_obj(path, vertices_cm, faces_text=""):
    lines = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in vertices_cm]
    path.write_text("# ICT-FaceKit style\n" + "\n".join(lines) + "\n" + faces_text)


def test_ict_facekit_folder(tmp_path):
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    # 3 x 3 grid, 15 cm wide, and two extra vertices (outside a 9-vertex region)
    x, y = np.meshgrid([-7.5, 0, 7.5], [-10, 0, 10])
    grid = np.stack([x, y, 5 - 0.02 * x**2], -1).reshape(-1, 3)
    neutral = np.concatenate([grid, [[0, 12, 1], [3, 12, 1]]])  # (11, 3) cm
    quads = [[0, 1, 4, 3], [1, 2, 5, 4], [3, 4, 7, 6], [4, 5, 8, 7]]  # CCW from +z
    faces = "vt 0 0\nvn 0 0 1\ng face\n" + "".join(
        "f " + " ".join(f"{i + 1}/1/1" for i in q) + "\n" for q in quads) + "f 7 9 10\n"
    _write_obj(folder / "generic_neutral_mesh.obj", neutral, faces)
    rng = np.random.default_rng(1)
    id_off = rng.normal(scale=0.3, size=(3, 11, 3))  # cm
    exp_off = rng.normal(scale=0.5, size=(2, 11, 3))
    for k in range(3):
        _write_obj(folder / f"identity{k:03d}.obj", neutral + id_off[k], faces)
    names = ["browDown_L", "jawOpen"]
    for name, off in zip(names, exp_off, strict=True):
        _write_obj(folder / f"{name}.obj", neutral + off, faces)
    (folder / "vertex_indices.json").write_text(json.dumps({"expressions": names}))

    model = loaders.load_ict_facekit(folder, region=9, id_variance=1.0, num_exp=2)
    assert (model.num_vertices, model.num_id, model.num_exp) == (9, 3, 2)
    expected = torch.from_numpy(quads_to_triangles(torch.tensor(quads)).numpy())
    assert torch.equal(model.triangles, expected)  # the triangle through vertex 9 is dropped
    mean = grid * 10 - (grid * 10).mean(0)  # mm, centred
    np.testing.assert_allclose(model.mean.numpy(), mean, atol=1e-4)
    assert model.blendshape_names == tuple(names)
    np.testing.assert_allclose(model.blendshapes.numpy(), exp_off[:, :9] * 10, atol=1e-4)
    flat = id_off[:, :9].reshape(3, -1) * 10
    np.testing.assert_allclose(model_covariance(model.id_basis, model.id_std), flat.T @ flat,
                               atol=1e-3)
    assert (model.landmarks == -1).all()  # not the ICT topology: no default landmarks
    full = loaders.load_ict_facekit(folder, region="full", num_exp=1,
                                    landmarks=np.arange(68) % 11)
    assert full.num_vertices == 11 and full.triangles.shape[0] == 9
    assert full.landmarks[12] == 1
    with pytest.raises(ValueError, match="region: expected one of"):
        loaders.load_ict_facekit(folder, region="nose")
    with pytest.raises(ValueError, match="region: expected at most 11"):
        loaders.load_ict_facekit(folder, region="narrow_face")


def test_ict_facekit_on_ict_topology(tmp_path):
    """The real ICT face-area topology (from the shipped npz): region, polygons, landmarks."""
    if not ict_ingredients_path().is_file():
        pytest.skip("data/ict_face_model/ict_face_area.npz is missing (it ships with the repo)")
    with np.load(ict_ingredients_path(), allow_pickle=False) as npz:
        neutral, polygons = npz["neutral"].astype(np.float64), npz["polygons"]
        identity, expression = npz["identity"][:2], npz["expression"][:1]
        landmarks = npz["landmarks_68"]
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    faces = "".join(f"f {a} {b} {c} {d}\n" for a, b, c, d in (polygons + 1))
    _write_obj(folder / "generic_neutral_mesh.obj", neutral, faces)
    for k in range(2):
        _write_obj(folder / f"identity{k:03d}.obj", neutral + identity[k])
    _write_obj(folder / "jawOpen.obj", neutral + expression[0])
    model = loaders.load_ict_facekit(folder, num_exp=1)  # region narrow_face
    assert model.num_vertices == 6706
    assert torch.equal(model.triangles, quads_to_triangles(torch.from_numpy(polygons[:6560])))
    assert torch.equal(model.landmarks, torch.from_numpy(landmarks))
    torch.testing.assert_close(model.mean, load_ict_face_area().neutral.float(), atol=1e-3, rtol=0)


# ------------------------------------------------------------------- missing and bad files
LOADERS = [loaders.load_bfm2009, loaders.load_bfm2017, loaders.load_3ddfa, loaders.load_flame,
           loaders.load_ict_facekit]


@pytest.mark.parametrize("load", LOADERS, ids=lambda f: f.__name__)
def test_missing_file(tmp_path, load):
    missing = tmp_path / "nowhere" / "model.file"
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load(missing)


def test_wrong_formats(tmp_path, face):
    text = tmp_path / "notes.mat"
    text.write_text("this is not a MATLAB file\n" * 20)
    with pytest.raises(ValueError, match="path: expected a MATLAB .mat file"):
        loaders.load_bfm2009(text)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"shapeMU": face.mean.reshape(-1, 1)})
    with pytest.raises(ValueError, match=r"missing \['shapePC', 'shapeEV', 'tl'\]"):
        loaders.load_bfm2009(other)
    with pytest.raises(ValueError, match="path: expected a mean"):
        loaders.load_3ddfa(other)
    garbage = tmp_path / "generic_model.pkl"
    garbage.write_bytes(b"\x80\x02not a pickle at all")
    with pytest.raises(ValueError, match="unreadable pickle"):
        loaders.load_flame(garbage)
    pytest.importorskip("h5py")
    with pytest.raises(ValueError, match="path: expected a BFM 2017 HDF5 file"):
        loaders.load_bfm2017(text)


def test_gaussian_space_orthonormalises_with_a_warning():
    modes = torch.tensor([[[1.0, 0, 0], [0, 0, 0]], [[1.0, 1, 0], [0, 0, 0]]], dtype=torch.float64)
    with pytest.warns(UserWarning, match="not mutually orthogonal"):
        basis, std = loaders.gaussian_space(modes)
    flat = basis.reshape(basis.shape[0], -1)
    torch.testing.assert_close(flat @ flat.T, torch.eye(2, dtype=torch.float64))
    cov = (flat.T * std**2) @ flat
    torch.testing.assert_close(cov, modes.reshape(2, -1).T @ modes.reshape(2, -1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        basis, std = loaders.gaussian_space(modes[:1] * 3)
    torch.testing.assert_close(std, torch.tensor([3.0], dtype=torch.float64))
