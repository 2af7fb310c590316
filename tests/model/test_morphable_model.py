import numpy as np
import pytest
import torch

from e2far_lite import MorphableModel
from e2far_lite.io.mesh_files import save_mesh


def test_default_model_sizes(default_model):
    m = default_model
    assert (m.num_vertices, m.num_exp, m.num_blendshapes) == (6706, 29, 53)
    assert 55 <= m.num_id <= 70  # ~99.5 % of identity variance
    assert m.triangles.shape == (13120, 3)
    assert bool(m.landmark_mask.all())
    assert "jawOpen" in m.blendshape_names and "mouthSmile_L" in m.blendshape_names
    # about 150 mm wide: the model is in millimetres
    width = float(m.mean[:, 0].max() - m.mean[:, 0].min())
    assert 130 < width < 170


def test_bases_are_orthonormal(default_model):
    for basis in (default_model.id_basis, default_model.exp_basis):
        flat = basis.flatten(1).double()
        eye = torch.eye(flat.shape[0], dtype=torch.float64)
        assert torch.allclose(flat @ flat.T, eye, atol=1e-3)  # float16 storage


def test_linear_in_coefficients(default_model):
    m = default_model
    g = torch.Generator().manual_seed(0)
    a1, a2 = torch.randn(2, m.num_id, generator=g), torch.randn(2, m.num_id, generator=g)
    e1, e2 = torch.randn(2, m.num_exp, generator=g), torch.randn(2, m.num_exp, generator=g)
    lhs = m(a1 + 2 * a2, e1 + 2 * e2) - m.mean
    rhs = (m(a1, e1) - m.mean) + 2 * (m(a2, e2) - m.mean)
    assert torch.allclose(lhs, rhs, atol=1e-3)
    zero = m(torch.zeros(1, m.num_id), torch.zeros(1, m.num_exp))
    assert torch.equal(zero[0], m.mean)
    full = m(a1, e1)
    assert torch.allclose(full, m.neutral(a1) + m.expression_offset(e1),
                          atol=1e-4)  # one matrix product vs two einsums: rounding


def test_std_units(default_model):
    # one unit of coefficient k moves the shape by id_std[k] (orthonormal basis)
    m = default_model
    a = torch.zeros(1, m.num_id)
    a[0, 3] = 1.0
    moved = (m.neutral(a) - m.mean).flatten().norm()
    assert moved == pytest.approx(float(m.id_std[3]), rel=1e-3)


def test_landmark_points_match_vertices(default_model):
    m = default_model
    a, e = torch.randn(3, m.num_id), torch.randn(3, m.num_exp)
    assert torch.allclose(m.landmark_points(a, e), m(a, e)[:, m.landmarks], atol=1e-3)


def test_blendshape_projection_roundtrip(default_model):
    m = default_model
    w = torch.zeros(2, m.num_blendshapes)
    w[0, m.blendshape_names.index("jawOpen")] = 1.0
    w[1, m.blendshape_names.index("mouthSmile_L")] = 0.7
    a_exp = m.blendshapes_to_exp(w)
    offset = m.expression_offset(a_exp)
    target = torch.einsum("bn,nvc->bvc", w, m.blendshapes)
    # 29 components keep most of each blend shape (relative residual)
    rel = (offset - target).flatten(1).norm(dim=1) / target.flatten(1).norm(dim=1)
    assert float(rel.max()) < 0.25
    back = m.exp_to_blendshapes(a_exp)
    assert int(back[0].argmax()) == m.blendshape_names.index("jawOpen")


def test_npz_roundtrip(tmp_path, default_model, small_model):
    for model in (default_model, small_model):
        path = model.save(tmp_path / "m.npz")
        loaded = MorphableModel.load(path)
        for key, value in model.state_arrays().items():
            assert np.array_equal(loaded.state_arrays()[key], value), key
        assert loaded.blendshape_names == model.blendshape_names


def test_move_to_device_and_dtype(small_model):
    moved = small_model.to("cpu")
    assert moved.mean.device.type == "cpu" and moved.triangles.dtype == torch.int64


@pytest.mark.parametrize(
    ("a_id", "message"),
    [
        (torch.zeros(2, 3), "a_id: expected shape (B, 6), got (2, 3)"),
        (torch.zeros(2, 6, dtype=torch.long), "a_id: expected a floating-point dtype"),
        (torch.full((1, 6), float("nan")), "a_id: expected finite values"),
    ],
)
def test_bad_coefficients(small_model, a_id, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        small_model.neutral(a_id)


def test_bad_npz_files(tmp_path, small_model):
    arrays = small_model.state_arrays()
    missing = dict(arrays)
    del missing["exp_std"]
    np.savez(tmp_path / "missing.npz", **missing)
    with pytest.raises(ValueError, match=r"missing \['exp_std'\]"):
        MorphableModel.load(tmp_path / "missing.npz")
    wrong = dict(arrays, id_std=np.ones(3, np.float32))
    np.savez(tmp_path / "wrong.npz", **wrong)
    with pytest.raises(ValueError, match=r"id_std: expected shape \(6,\), got \(3,\)"):
        MorphableModel.load(tmp_path / "wrong.npz")
    bad_lm = dict(arrays, landmarks=np.full(68, 10_000, np.int64))
    np.savez(tmp_path / "lm.npz", **bad_lm)
    with pytest.raises(ValueError, match=r"landmarks: expected indices in \[-1, 319\]"):
        MorphableModel.load(tmp_path / "lm.npz")
    obj = dict(arrays, blendshape_names=np.array([object()], dtype=object))
    np.savez(tmp_path / "obj.npz", **obj)
    with pytest.raises(ValueError, match="plain numeric arrays"):
        MorphableModel.load(tmp_path / "obj.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="unreadable"):
        MorphableModel.load(tmp_path / "text.npz")
    with pytest.raises(FileNotFoundError):
        MorphableModel.load(tmp_path / "absent.npz")
    with pytest.raises(ValueError, match="ending in .npz"):
        small_model.save(tmp_path / "model.txt")


def test_export_obj_ply_open_in_trimesh(tmp_path, default_model):
    trimesh = pytest.importorskip("trimesh")
    verts = default_model.mean
    for suffix in (".obj", ".ply"):
        path = save_mesh(tmp_path / f"face{suffix}", verts, default_model.triangles)
        mesh = trimesh.load(path, process=False)
        assert mesh.vertices.shape == (6706, 3)
        assert mesh.faces.shape == (13120, 3)
        assert np.allclose(mesh.vertices, verts.numpy(), atol=1e-4)
