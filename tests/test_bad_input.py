"""Bad input gets a clear error at the public entry point: never a bare IndexError or
RuntimeError from deep inside, never a hang, never a silent wrong answer.

Property tests (hypothesis) draw inputs near the valid ones: a dimension too many or too few, a
size off by one, integer / bool / half / double dtypes, NaN and inf, out-of-range indices. An
oracle written here decides whether each input is valid; valid inputs must give the right
answer (checked against a float64 reference where there is one), invalid ones a ``ValueError``
or ``TypeError`` whose message starts with the argument's name ("name: expected X, got Y").

Policy for non-finite values, tested below:
- entry points that build or measure something (model coefficients and arrays, the renderer,
  data configs, aligned metrics) refuse NaN/inf with a clear error;
- the per-step training path (``E2FARNet.forward``, ``MultiTaskLoss``, the camera projections)
  does not check (it would cost a device sync per step): NaN/inf come out as non-finite values,
  never as finite garbage, and ``train`` stops with an error naming the step.

Empty batches: ``MorphableModel``, ``E2FARNet`` and the metrics accept B = 0 and return empty
outputs; ``MultiTaskLoss`` (a mean over no faces) and ``SyntheticFaces.batch([])`` refuse it.
Sizes: image sides above ``checks.MAX_IMAGE_SIZE`` (4096 px) are refused before allocating.
"""

from __future__ import annotations

import math
import time
from functools import cache

import pytest
import torch
from helpers_models import tiny_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e2far_lite.checks import MAX_IMAGE_SIZE
from e2far_lite.model.metrics import landmark_nme, rigid_align, vertex_rmse
from e2far_lite.model.morphable_model import NUM_LANDMARKS, MorphableModel
from e2far_lite.nets.backbone import BackboneConfig
from e2far_lite.nets.fusion import FusionConfig
from e2far_lite.nets.network import E2FARNet, NetConfig
from e2far_lite.paths import data_dir
from e2far_lite.render.camera import rotation_matrix, weak_perspective_project
from e2far_lite.render.rasterizer import rasterize
from e2far_lite.render.renderer import Renderer
from e2far_lite.synth.faces import DataConfig, SyntheticFaces
from e2far_lite.train.configs import get_config
from e2far_lite.train.losses import LossConfig, MultiTaskLoss

PROPERTY = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

FLOATS = (torch.float32, torch.float64, torch.float16)
DTYPES = (*FLOATS, torch.int64, torch.int32, torch.uint8, torch.bool)
SPECIAL = (None, None, None, math.nan, math.inf, -math.inf)  # mostly ordinary values


@cache
def model() -> MorphableModel:
    return tiny_model()  # V = 50, K = 5, E = 4, landmarks with some -1


@cache
def net() -> E2FARNet:
    torch.manual_seed(0)
    config = NetConfig(backbone=BackboneConfig(widths=(4, 4, 8, 8, 8)),
                       fusion=FusionConfig(width=8, hidden=8), id_hidden=8, exp_hidden=8,
                       pose_hidden=8, image_size=32)
    return E2FARNet(5, 4, config).eval()


def assert_clear(info: pytest.ExceptionInfo, *names: str) -> None:
    """The error is 'name: expected ...' for one of ``names``."""
    message = str(info.value)
    assert any(message.startswith(f"{name}:") for name in names), message
    assert "expected" in message, message


def finite(x: torch.Tensor) -> bool:
    return bool(torch.isfinite(x).all())


# ------------------------------------------------------------------------------ strategies
@st.composite
def near_shape(draw, target: tuple[int | None, ...]) -> tuple[int, ...]:
    """A shape equal to ``target`` (None = a batch size 0..3) or one edit away from it."""
    shape = [draw(st.integers(0, 3)) if s is None else s for s in target]
    how = draw(st.sampled_from(("exact", "exact", "resize", "drop", "add")))
    if how == "resize" and shape:
        i = draw(st.integers(0, len(shape) - 1))
        shape[i] = draw(st.integers(0, 8).filter(lambda n, old=shape[i]: n != old))
    elif how == "drop" and shape:
        del shape[draw(st.integers(0, len(shape) - 1))]
    elif how == "add":
        shape.insert(draw(st.integers(0, len(shape))), draw(st.integers(1, 3)))
    return tuple(shape)


@st.composite
def tensors(draw, target: tuple[int | None, ...], dtypes=DTYPES, scale: float = 1.0):
    """A random tensor of a shape near ``target``, any dtype, sometimes with a NaN or inf."""
    shape = draw(near_shape(target))
    dtype = draw(st.sampled_from(dtypes))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    x = torch.randn(shape, generator=g, dtype=torch.float64) * scale
    special = draw(st.sampled_from(SPECIAL))
    if special is not None and dtype.is_floating_point and x.numel():
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = special
    return x.to(dtype)


def coefficients_ok(x: torch.Tensor, size: int) -> bool:
    """The oracle for model coefficients: (B, size), float no wider than float32, finite."""
    return (x.dim() == 2 and x.shape[1] == size and x.is_floating_point()
            and torch.promote_types(x.dtype, torch.float32) == torch.float32 and finite(x))


def reference_shape(m: MorphableModel, a_id: torch.Tensor, a_exp: torch.Tensor) -> torch.Tensor:
    """``mean + U_id (σ_id a_id) + U_exp (σ_exp a_exp)`` in float64, by explicit loops."""
    out = m.mean.double().expand(a_id.shape[0], -1, -1).clone()
    for k in range(m.num_id):
        out += (a_id[:, k].double() * m.id_std[k].double())[:, None, None] * m.id_basis[k]
    for e in range(m.num_exp):
        out += (a_exp[:, e].double() * m.exp_std[e].double())[:, None, None] * m.exp_basis[e]
    return out


# ------------------------------------------------------------------------ morphable model
@PROPERTY
@given(a_id=tensors((None, 5)), a_exp=tensors((None, 4)))
def test_model_forward_is_right_or_names_the_argument(a_id, a_exp):
    m = model()
    valid = (coefficients_ok(a_id, m.num_id) and coefficients_ok(a_exp, m.num_exp)
             and a_id.shape[0] == a_exp.shape[0])
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            m(a_id, a_exp)
        assert_clear(info, "a_id", "a_exp")
        return
    out = m(a_id, a_exp)
    assert out.shape == (a_id.shape[0], m.num_vertices, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out.double(), reference_shape(m, a_id, a_exp),
                               rtol=1e-4, atol=1e-3)
    # the parts agree with the whole
    parts = m.neutral(a_id) + m.expression_offset(a_exp)
    torch.testing.assert_close(parts, out)


@PROPERTY
@given(a_id=tensors((None, 5)), a_exp=tensors((None, 4)))
def test_neutral_offset_and_landmarks_check_each_argument(a_id, a_exp):
    m = model()
    for method, arg, name, size in ((m.neutral, a_id, "a_id", m.num_id),
                                    (m.expression_offset, a_exp, "a_exp", m.num_exp)):
        if coefficients_ok(arg, size):
            assert method(arg).shape == (arg.shape[0], m.num_vertices, 3)
        else:
            with pytest.raises((ValueError, TypeError)) as info:
                method(arg)
            assert_clear(info, name)
    valid = (coefficients_ok(a_id, m.num_id) and coefficients_ok(a_exp, m.num_exp)
             and a_id.shape[0] == a_exp.shape[0])
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            m.landmark_points(a_id, a_exp)
        assert_clear(info, "a_id", "a_exp")
        return
    points = m.landmark_points(a_id, a_exp)
    full = reference_shape(m, a_id, a_exp)
    defined = m.landmark_mask
    torch.testing.assert_close(points[:, defined].double(),
                               full[:, m.landmarks[defined]], rtol=1e-4, atol=1e-3)
    assert torch.isnan(points[:, ~defined]).all()  # undefined landmarks are NaN, not vertex 0


def test_model_coefficients_on_another_device_or_wider_dtype():
    m = model()
    with pytest.raises(ValueError, match=r"^a_id: expected a tensor on cpu like the model"):
        m.neutral(torch.zeros(1, m.num_id, device="meta"))
    with pytest.raises(ValueError, match=r"^a_exp: expected dtype torch.float32 like the model"):
        m.expression_offset(torch.zeros(1, m.num_exp, dtype=torch.float64))
    # the model converted to float64 takes float64 coefficients
    double = tiny_model().double()
    assert double(torch.zeros(1, 5, dtype=torch.float64),
                  torch.zeros(1, 4, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(TypeError, match=r"^a_id: expected a torch.Tensor, got list"):
        m([[0.0] * 5], torch.zeros(1, 4))


def _model_arrays() -> dict[str, torch.Tensor]:
    m = model()
    return {"mean": m.mean, "id_basis": m.id_basis, "id_std": m.id_std,
            "exp_basis": m.exp_basis, "exp_std": m.exp_std, "triangles": m.triangles,
            "landmarks": m.landmarks}


BREAKAGES = {
    "shape": lambda x: x[..., :-1] if x.dim() > 1 else x[:-1],
    "extra dim": lambda x: x[None],
    "nan": lambda x: x.double().index_fill(0, torch.tensor([0]), math.nan),
    "inf": lambda x: x.double().index_fill(0, torch.tensor([0]), math.inf),
    "float": lambda x: x.double() + 0.5,
    "bool": lambda x: x.bool(),
    "complex": lambda x: x.to(torch.complex64),
    "too large": lambda x: x + 10_000,
    "negative": lambda x: x - 10_000,
    "string": lambda x: "not an array",
}


@PROPERTY
@given(name=st.sampled_from(sorted(_model_arrays())), breakage=st.sampled_from(sorted(BREAKAGES)))
def test_model_construction_names_the_broken_array(name, breakage):
    arrays = dict(_model_arrays())
    arrays[name] = BREAKAGES[breakage](arrays[name])
    # the changes that leave a valid model: arrays in mm may be cast to float64 or shifted
    # (but a standard deviation may not be negative); index arrays take none of them
    in_mm = name not in ("triangles", "landmarks")
    harmless = in_mm and (breakage in ("float", "too large")
                          or (breakage == "negative" and not name.endswith("_std")))
    if harmless:
        built = MorphableModel(**arrays)
        assert built.num_vertices == 50
        return
    # a broken basis or mean may be reported as the array it no longer matches
    related = {"mean": ("mean", "id_basis", "exp_basis"), "id_basis": ("id_basis", "id_std"),
               "exp_basis": ("exp_basis", "exp_std")}.get(name, (name,))
    with pytest.raises((ValueError, TypeError)) as info:
        MorphableModel(**arrays)
    assert_clear(info, *related)


def test_model_refuses_blendshape_names_of_another_count():
    arrays = _model_arrays()
    with pytest.raises(ValueError, match=r"^blendshape_names: expected 2 names, got 1"):
        MorphableModel(**arrays, blendshapes=torch.zeros(2, 50, 3), blendshape_names=["a"])


# --------------------------------------------------------------------------------- camera
@PROPERTY
@given(angles=tensors((None, 3), scale=2.0))
def test_rotation_matrix_is_a_rotation_or_names_angles(angles):
    if angles.dim() != 2 or angles.shape[1] != 3:
        with pytest.raises((ValueError, TypeError)) as info:
            rotation_matrix(angles)
        assert_clear(info, "angles")
        return
    rot = rotation_matrix(angles)
    assert rot.shape == (angles.shape[0], 3, 3)
    good = torch.isfinite(angles.double()).all(1)
    r64 = rot.double()
    eye = torch.eye(3, dtype=torch.float64).expand(int(good.sum()), 3, 3)
    tol = 1e-2 if rot.dtype == torch.float16 else 1e-5
    torch.testing.assert_close(r64[good] @ r64[good].mT, eye, atol=tol, rtol=0)
    # NaN/inf angles propagate: never a finite matrix made up from them
    assert not torch.isfinite(rot[~good]).all((1, 2)).any()


@PROPERTY
@given(points=tensors((None, 7, 3), dtypes=FLOATS + (torch.int64,)),
       pose=tensors((None, 6), dtypes=FLOATS + (torch.int64,)))
def test_weak_perspective_project_checks_points_and_pose(points, pose):
    valid = (pose.dim() == 2 and pose.shape[1] == 6 and pose.is_floating_point()
             and points.dim() == 3 and points.shape[2] == 3
             and points.shape[0] == pose.shape[0] and points.dtype == pose.dtype)
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            weak_perspective_project(points, pose)
        assert_clear(info, "points", "pose")
        return
    out = weak_perspective_project(points, pose)
    assert out.shape == (*points.shape[:2], 2)
    # reference: scale * (R v)_x + tx, -scale * (R v)_y + ty, in float64
    p64, q64 = points.double(), pose.double()
    rotated = p64 @ rotation_matrix(q64[:, :3]).mT
    expected = torch.stack([q64[:, None, 5] * rotated[..., 0] + q64[:, None, 3],
                            -q64[:, None, 5] * rotated[..., 1] + q64[:, None, 4]], -1)
    both = torch.isfinite(expected)
    tol = 5e-2 if out.dtype == torch.float16 else 1e-4
    torch.testing.assert_close(out.double()[both], expected[both], rtol=tol, atol=tol)
    assert not torch.isfinite(out.double()[~both]).any()  # non-finite in, non-finite out


# ----------------------------------------------------------------------------- rasterizer
SIZES = st.one_of(
    st.tuples(st.integers(1, 12), st.integers(1, 12)),  # valid
    st.tuples(st.integers(-2, 0), st.integers(1, 4)),
    st.tuples(st.integers(1, 4), st.sampled_from([MAX_IMAGE_SIZE + 1, 10**6, 10**12])),
    st.tuples(st.floats(1, 9), st.integers(1, 4)),
    st.integers(1, 8), st.just("8x8"), st.just(None),
    st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
)


@PROPERTY
@given(tri=st.lists(st.tuples(*[st.integers(-3, 9)] * 3), max_size=6),
       dtype=st.sampled_from((torch.int64, torch.int32, torch.float32, torch.bool)),
       size=SIZES, special=st.sampled_from(SPECIAL), seed=st.integers(0, 99))
def test_rasterize_checks_triangles_and_size(tri, dtype, size, special, seed):
    g = torch.Generator().manual_seed(seed)
    screen = torch.rand(2, 6, 3, generator=g) * torch.tensor([12.0, 12.0, 10.0]) + 0.5
    if special is not None:
        screen[0, int(torch.randint(6, (1,), generator=g))] = special
    triangles = torch.tensor(tri, dtype=torch.int64).view(-1, 3).to(dtype)
    index_ok = (not triangles.is_floating_point() and dtype != torch.bool
                and (triangles.numel() == 0 or (0 <= int(triangles.min())
                                                and int(triangles.max()) < 6)))
    size_ok = (isinstance(size, tuple) and len(size) == 2
               and all(type(s) is int and 0 < s <= MAX_IMAGE_SIZE for s in size))
    start = time.perf_counter()
    if not (index_ok and size_ok):
        with pytest.raises((ValueError, TypeError)) as info:
            rasterize(screen, triangles, size)
        assert_clear(info, "triangles", "image_size")
        assert time.perf_counter() - start < 2.0  # refused, not allocated
        return
    frags = rasterize(screen, triangles, size, cull_backfaces=False)
    assert frags.face_index.shape == (2, *size)
    assert int(frags.face_index.min()) >= -1 and int(frags.face_index.max()) < len(tri)
    covered = frags.face_index >= 0
    assert torch.isfinite(frags.depth[covered]).all()  # a non-finite vertex is dropped
    torch.testing.assert_close(frags.bary[covered].sum(-1),
                               torch.ones(int(covered.sum())), atol=1e-4, rtol=0)


def test_rasterize_refuses_integer_screen():
    with pytest.raises(ValueError, match=r"^screen: expected a floating-point dtype"):
        rasterize(torch.zeros(1, 3, 3, dtype=torch.long), torch.tensor([[0, 1, 2]]), (4, 4))


# ------------------------------------------------------------------------------- renderer
@PROPERTY
@given(focal=tensors((None,), dtypes=FLOATS + (torch.int64,), scale=3.0),
       centre=tensors((None, 2), dtypes=FLOATS + (torch.int64,), scale=3.0),
       albedo=tensors((None, 3, 3), dtypes=(torch.float32, torch.int64)),
       points_special=st.sampled_from(SPECIAL))
def test_render_checks_every_tensor(focal, centre, albedo, points_special):
    points = torch.tensor([[[-50.0, 50, 100], [50, 50, 100], [0, -50, 100]]])
    if points_special is not None:
        points[0, 1, 2] = points_special
    tri = torch.tensor([[0, 1, 2]])
    renderer = Renderer(8)
    focal, centre = focal.abs() + 8 if focal.is_floating_point() else focal, centre + 4
    valid = (focal.shape == (1,) and centre.shape == (1, 2) and albedo.shape == (1, 3, 3)
             and all(x.is_floating_point() and finite(x) for x in (focal, centre, albedo))
             and points_special is None)
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            renderer.render(points, tri, focal, centre, albedo)
        assert_clear(info, "points", "focal", "centre", "albedo")
        return
    out = renderer.render(points, tri, focal, centre, albedo)
    assert out.image.shape == (1, 3, 8, 8) and finite(out.image)
    assert 0 <= float(out.image.min()) and float(out.image.max()) <= 1


def test_render_refuses_out_of_range_triangles():
    points = torch.tensor([[[-50.0, 50, 100], [50, 50, 100], [0, -50, 100]]])
    with pytest.raises(ValueError, match=r"^triangles: expected indices in \[0, 2\]"):
        Renderer(8).render(points, torch.tensor([[0, 1, 3]]), torch.tensor([8.0]),
                           torch.tensor([[4.0, 4.0]]), torch.ones(1, 3, 3))


# ----------------------------------------------------------------------------------- data
DATA_FIELDS = {
    "image_size": st.sampled_from([16, 0, -8, 16.0, MAX_IMAGE_SIZE + 1, 10**6]),
    "yaw_max": st.sampled_from([30.0, -1.0, math.nan, math.inf]),
    "neutral_share": st.sampled_from([0.5, 1.5, -0.1, math.nan]),
    "id_scale": st.sampled_from([1.0, 0.0, -1.0, math.inf]),
    "distance": st.sampled_from([(700.0, 900.0), (900.0, 700.0), (-10.0, 700.0), (0.0, 5.0),
                                 (700.0,), (700.0, math.inf), "far"]),
    "focal": st.sampled_from([1000.0, 0.0, -5.0, math.nan]),
    "box_scale": st.sampled_from([(1.2, 1.4), (0.0, 1.0), (1.4, 1.2)]),
    "augment": st.sampled_from([0.5, -0.5, math.nan]),
}
VALID_DATA = {"image_size": 16, "yaw_max": 30.0, "neutral_share": 0.5, "id_scale": 1.0,
              "distance": (700.0, 900.0), "focal": 1000.0, "box_scale": (1.2, 1.4),
              "augment": 0.5}


@PROPERTY
@given(name=st.sampled_from(sorted(DATA_FIELDS)), data=st.data())
def test_data_config_names_the_bad_field_and_good_ones_render(name, data):
    value = data.draw(DATA_FIELDS[name])
    fields = {**VALID_DATA, name: value}
    good = VALID_DATA[name]
    valid = (type(value) is type(good) and value == good) or (name == "id_scale" and value == 0)
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            DataConfig(**fields, backgrounds=False)
        assert_clear(info, name)
        return
    faces = SyntheticFaces(model(), 4, seed=data.draw(st.integers(0, 9)),
                           config=DataConfig(**fields, backgrounds=False))
    item = faces[data.draw(st.integers(0, 3))]
    assert item["image"].shape == (3, 16, 16) and finite(item["image"])
    assert 0 <= float(item["image"].min()) and float(item["image"].max()) <= 1


@PROPERTY
@given(indices=st.lists(st.one_of(st.integers(-3, 6), st.floats(0, 3), st.just("1")),
                        max_size=3))
def test_synthetic_faces_indices(indices):
    faces = SyntheticFaces(model(), 4, config=DataConfig(image_size=16, backgrounds=False))
    ints = all(type(i) is int for i in indices)
    if ints and indices and all(0 <= i < 4 for i in indices):
        assert faces.batch(indices)["image"].shape == (len(indices), 3, 16, 16)
        return
    with pytest.raises((ValueError, TypeError, IndexError)) as info:
        faces.batch(indices)
    assert_clear(info, "indices", "index")


def test_synthetic_faces_arguments():
    with pytest.raises(TypeError, match=r"^model: expected a MorphableModel, got NoneType"):
        SyntheticFaces(None, 4)
    with pytest.raises(TypeError, match=r"^seed: expected an integer, got 'a'"):
        SyntheticFaces(model(), 4, seed="a")
    with pytest.raises(TypeError, match=r"^config: expected a DataConfig, got dict"):
        SyntheticFaces(model(), 4, config={"image_size": 16})
    with pytest.raises(ValueError, match=r"^num_samples: expected a positive integer"):
        SyntheticFaces(model(), 0)
    with pytest.raises(ValueError, match=r"^indices: expected at least one item index"):
        SyntheticFaces(model(), 4, config=DataConfig(image_size=16)).batch([])
    # a tensor of indices is fine (0-d integer tensors are integers)
    faces = SyntheticFaces(model(), 4, config=DataConfig(image_size=16, backgrounds=False))
    assert faces.batch(torch.arange(2))["image"].shape == (2, 3, 16, 16)


# -------------------------------------------------------------------------------- network
@PROPERTY
@given(images=tensors((None, 3, 32, 32), dtypes=(torch.float32, torch.float64, torch.int64,
                                                 torch.uint8)))
def test_network_forward_checks_images(images):
    network = net()
    valid = images.dim() == 4 and images.shape[1:] == (3, 32, 32) and images.is_floating_point()
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            network(images)
        assert_clear(info, "images")
        return
    with torch.no_grad():
        out = network(images.float())
    batch = images.shape[0]
    assert out["a_id"].shape == (batch, 5) and out["a_exp"].shape == (batch, 4)
    assert out["pose"].shape == (batch, 6)
    if finite(images):
        assert all(finite(out[k]) for k in ("a_id", "a_exp", "pose"))
    else:  # not checked on the hot path: non-finite in, non-finite out (never finite garbage)
        bad = ~torch.isfinite(images).flatten(1).all(1)
        assert not torch.isfinite(out["a_id"][bad]).all(1).any()


def test_network_bad_images_explicitly():
    network = net()
    cases = {
        "wrong channels": torch.rand(2, 1, 32, 32),
        "not 32 px": torch.rand(2, 3, 48, 48),
        "integer dtype": torch.randint(0, 255, (2, 3, 32, 32)),
        "3-D tensor": torch.rand(3, 32, 32),
    }
    for case, images in cases.items():
        with pytest.raises(ValueError, match=r"^images: expected") as info:
            network(images)
        assert ("floating" in str(info.value)) == (case == "integer dtype"), case
    with pytest.raises(TypeError, match=r"^images: expected a torch.Tensor, got ndarray"):
        network(torch.rand(1, 3, 32, 32).numpy())
    for size in (48, 31, 0, MAX_IMAGE_SIZE + 32, 32 * 10**5):
        start = time.perf_counter()
        with pytest.raises(ValueError, match=r"^config.image_size: expected a multiple of 32"):
            E2FARNet(5, 4, NetConfig(image_size=size))
        assert time.perf_counter() - start < 2.0


def test_network_empty_batch_gives_empty_outputs():
    """Decision: B = 0 works (as in torch) and gives empty outputs, in eval and train mode."""
    network = net()
    with torch.no_grad():
        out = network(torch.rand(0, 3, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "a_id": (0, 5), "a_exp": (0, 4), "pose": (0, 6)}
    network.train()
    try:
        out = network(torch.rand(0, 3, 32, 32))
        sum(v.sum() for v in out.values()).backward()  # a zero gradient, no error
    finally:
        network.eval()
        network.zero_grad(set_to_none=True)


# ---------------------------------------------------------------------------------- loss
@cache
def loss_fn() -> MultiTaskLoss:
    return MultiTaskLoss(model())


KEY_SHAPES = {"a_id": (None, 5), "a_exp": (None, 4), "pose": (None, 6),
              "landmarks": (None, NUM_LANDMARKS, 2)}


@st.composite
def batches(draw, keys: tuple[str, ...]):
    batch = draw(st.integers(0, 3))
    out = {}
    for key in keys:
        if draw(st.integers(0, 9)) == 0:
            continue  # a missing key
        if draw(st.booleans()):  # most keys exact, so that some dicts are valid
            out[key] = torch.randn([batch if s is None else s for s in KEY_SHAPES[key]])
        else:
            out[key] = draw(tensors(KEY_SHAPES[key], dtypes=FLOATS + (torch.int64,)))
    if "landmarks" in keys and draw(st.integers(0, 9)):
        out["visible"] = torch.rand(batch, NUM_LANDMARKS) < 0.8
        if draw(st.integers(0, 5)) == 0:
            out["visible"] = out["visible"].float()
    return out


@PROPERTY
@given(pred=batches(("a_id", "a_exp", "pose")),
       target=batches(("a_id", "a_exp", "pose", "landmarks")))
def test_multitask_loss_names_the_bad_entry(pred, target):
    loss = loss_fn()
    required = {"pred": ("a_id", "a_exp", "pose"),
                "target": ("a_id", "a_exp", "pose", "landmarks", "visible")}
    shapes = dict(KEY_SHAPES, visible=(None, NUM_LANDMARKS))
    batch_sizes = set()
    valid = True
    for arg, given_ in (("pred", pred), ("target", target)):
        for key in required[arg]:
            value = given_.get(key)
            if value is None or value.dim() != len(shapes[key]) or any(
                    s is not None and s != d for s, d in zip(shapes[key], value.shape,
                                                             strict=True)):
                valid = False
                continue
            batch_sizes.add(value.shape[0])
            if key == "visible":
                valid &= value.dtype == torch.bool
            else:
                valid &= value.is_floating_point()
    valid &= len(batch_sizes) == 1 and batch_sizes != {0}
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            loss(pred, target)
        names = [f"{arg}[{key!r}]" for arg in required for key in required[arg]]
        assert_clear(info, "pred", "target", *names)
        return
    terms = loss(pred, target)
    # the values the loss reads: landmarks only where visible and defined by the model
    used_landmarks = target["visible"] & model().landmark_mask[None]
    used = [*pred.values(), target["a_id"], target["a_exp"], target["pose"],
            target["landmarks"][used_landmarks]]
    if all(finite(v) for v in used):
        assert all(finite(v) and float(v) >= 0 for v in terms.values())
    elif any(bool(torch.isnan(v).any()) for v in used):
        # documented: NaN reaches the training loop as a non-finite loss, never hidden
        assert not finite(terms["total"])


def test_loss_nan_is_not_hidden_and_empty_batch_refused():
    loss = loss_fn()
    pred = {"a_id": torch.zeros(2, 5), "a_exp": torch.zeros(2, 4), "pose": torch.zeros(2, 6)}
    pred["pose"][:, 5] = 0.5
    target = {**pred, "landmarks": torch.zeros(2, 68, 2),
              "visible": torch.ones(2, 68, dtype=torch.bool)}
    assert finite(loss(pred, target)["total"])
    poisoned = {**pred, "a_exp": torch.full((2, 4), math.nan)}
    assert not finite(loss(poisoned, target)["total"])
    with pytest.raises(ValueError, match=r"got B = 0"):
        loss({k: v[:0] for k, v in pred.items()}, {k: v[:0] for k, v in target.items()})
    for field, value in (("lambda_exp", math.inf), ("pose_weight", math.nan),
                         ("landmark_weight", -1.0), ("image_size", math.nan)):
        with pytest.raises(ValueError, match=rf"^config.{field}: expected"):
            MultiTaskLoss(model(), LossConfig(**{field: value}))


# ------------------------------------------------------------------------------- metrics
@PROPERTY
@given(pred=tensors((None, 6, 3), dtypes=FLOATS + (torch.int64,)),
       target=tensors((None, 6, 3), dtypes=FLOATS + (torch.int64,)),
       align=st.booleans())
def test_vertex_rmse_is_right_or_names_the_argument(pred, target, align):
    shapes_ok = pred.dim() == 3 and pred.shape[2] == 3 and target.shape == pred.shape
    valid = (shapes_ok and pred.is_floating_point() and target.is_floating_point()
             and (not align or (finite(pred) and finite(target))))
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            vertex_rmse(pred, target, align=align)
        assert_clear(info, "pred", "target")
        return
    rmse = vertex_rmse(pred, target, align=align)
    assert rmse.shape == (pred.shape[0],)
    if not align:
        expected = (pred.double() - target.double()).pow(2).sum(-1).mean(1).sqrt()
        torch.testing.assert_close(rmse.double(), expected, rtol=2e-2, atol=1e-2,
                                   equal_nan=True)
    else:  # aligning can only help, and the error of a shape with itself is zero
        plain = (pred.double() - target.double()).pow(2).sum(-1).mean(1).sqrt()
        assert (rmse.double() <= plain + 1e-2 * (1 + plain)).all()


def test_rigid_align_refuses_nan_instead_of_failing_in_lapack():
    good = torch.randn(1, 6, 3)
    bad = good.clone()
    bad[0, 2, 1] = math.nan
    with pytest.raises(ValueError, match=r"^source: expected finite values"):
        rigid_align(bad, good)
    with pytest.raises(ValueError, match=r"^target: expected finite values"):
        vertex_rmse(good, bad)


@PROPERTY
@given(pred=tensors((None, NUM_LANDMARKS, 2), dtypes=(torch.float32, torch.int64)),
       target=tensors((None, NUM_LANDMARKS, 2), dtypes=(torch.float32,), scale=20.0),
       visible_kind=st.sampled_from(("none", "bool", "float", "wrong shape")))
def test_landmark_nme_is_right_or_names_the_argument(pred, target, visible_kind):
    visible = None
    if visible_kind != "none" and target.dim() >= 2:
        visible = torch.rand(target.shape[:2]) < 0.7
        if visible_kind == "float":
            visible = visible.float()
        elif visible_kind == "wrong shape":
            visible = visible[:, :-1]
    valid = (pred.dim() == 3 and pred.shape[2] == 2 and target.shape == pred.shape
             and pred.is_floating_point()
             and visible_kind in ("none", "bool"))
    if not valid:
        with pytest.raises((ValueError, TypeError)) as info:
            landmark_nme(pred, target, visible)
        assert_clear(info, "pred", "target", "visible")
        return
    nme = landmark_nme(pred, target, visible)
    assert nme.shape == (pred.shape[0],)
    # reference, one face at a time with a Python loop over landmarks
    for b in range(pred.shape[0]):
        keep = [i for i in range(pred.shape[1]) if torch.isfinite(target[b, i]).all()
                and (visible is None or bool(visible[b, i]))]
        if not keep:
            assert math.isnan(float(nme[b]))
            continue
        pts = target[b, keep].double()
        size = math.sqrt(float((pts.amax(0) - pts.amin(0)).prod()))
        dist = sum(float((pred[b, i].double() - target[b, i].double()).norm()) for i in keep)
        if size == 0:
            assert math.isnan(float(nme[b]))
        elif math.isfinite(dist):
            assert float(nme[b]) == pytest.approx(dist / len(keep) / size, rel=1e-3, abs=1e-5)
        else:
            assert not math.isfinite(float(nme[b]))  # a NaN prediction is not hidden


# --------------------------------------------------------------------------- absurd sizes
def test_absurd_image_sizes_are_refused_at_once():
    """10**6 px would be terabytes of buffers: refused in well under a second, nothing built."""
    screen = torch.tensor([[[1.0, 1, 10], [5, 1, 10], [1, 5, 10]]])
    calls = {
        "Renderer": lambda: Renderer(10**6),
        "rasterize": lambda: rasterize(screen, torch.tensor([[0, 1, 2]]), (10**6, 10**6)),
        "DataConfig": lambda: DataConfig(image_size=10**6),
        "get_config": lambda: get_config("smoke", image_size=10**6),
    }
    for name, call in calls.items():
        start = time.perf_counter()
        with pytest.raises(ValueError, match=rf"image_size: expected at most {MAX_IMAGE_SIZE}"):
            call()
        assert time.perf_counter() - start < 1.0, name
    assert Renderer(MAX_IMAGE_SIZE).image_size == MAX_IMAGE_SIZE  # the bound itself is allowed
    # a huge data set is lazy: nothing is rendered or allocated until asked for
    start = time.perf_counter()
    assert len(SyntheticFaces(model(), 10**12, config=DataConfig(image_size=16))) == 10**12
    assert time.perf_counter() - start < 1.0


def test_paths_flags_and_mesh_files_are_refused_by_name(tmp_path):
    from e2far_lite.io.mesh_files import read_obj
    from e2far_lite.render import render_preview
    from e2far_lite.train import export_checkpoint, load_checkpoint, pretrained

    for call in (lambda: MorphableModel.load(None), lambda: load_checkpoint(None)):
        with pytest.raises(TypeError, match=r"^path: expected a file path .*got NoneType"):
            call()
    with pytest.raises(TypeError, match=r"^smoke: expected True, False or None, got str 'no'"):
        pretrained(smoke="no")
    with pytest.raises(ValueError, match=r"^dst: expected a file name .*got the folder"):
        export_checkpoint(data_dir() / "e2far_lite_smoke.pt", tmp_path)
    model = MorphableModel.default()
    with pytest.raises(ValueError, match=r"^extent: expected a positive number of mm, got 0"):
        render_preview(model.mean[None], model.triangles, extent=0)
    cases = {b"\xff\xfe\x00binary": r"expected a text .obj file, got binary data",
             b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n": r"got line 4: 'f 1 2 x'",
             b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n": r"vertices 1 .. 3 .*got vertex 9",
             b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n": r"vertex numbers 1 .. 3"}
    for content, message in cases.items():
        (tmp_path / "m.obj").write_bytes(content)
        with pytest.raises(ValueError, match=f"^path: .*{message}"):
            read_obj(tmp_path / "m.obj")


def test_read_obj_takes_what_exporters_write(tmp_path):
    from e2far_lite.io.mesh_files import read_obj

    files = {
        "tabs.obj": b"v\t0 0 0\nv\t1 0 0\nv\t0 1 0\nf\t1 2 3\n",
        "indented.obj": b"  v 0 0 0\n  v 1 0 0\n  v 0 1 0\n  f 1 2 3  # a triangle\n",
        "full.obj": b"# made by hand\n\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvn 0 0 1\n"
                    b"f 1/1/1 2/1/1 3//1\nf -3 -2 -1\n",
        "bom.obj": "\ufeffv 0 0 0\r\nv 1 0 0\r\nv 0 1 0\r\nf 1 2 3\r\n".encode("utf-8"),
        "latin1.obj": "# export\xe9\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n".encode("latin-1"),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        points, polygons = read_obj(tmp_path / name)
        assert points.shape == (3, 3), name
        assert all(face == [0, 1, 2] for face in polygons), name
