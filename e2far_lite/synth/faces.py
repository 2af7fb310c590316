"""Synthetic training data: random faces of the morphable model, rendered, cropped and augmented.

Item ``i`` of a :class:`SyntheticFaces` set with seed ``s`` is a pure function of ``(s, i)``: every
random number for it comes from its own generator. Rendering happens in batches (on the GPU when
the set lives there), so ``faces.batch(range(64))`` is much faster than 64 ``faces[i]`` calls and
gives the same images.

Labels are exact: the rendered shape is ``model(a_id, a_exp)`` for the stored coefficients, and
2D landmarks are the perspective projections of the model's landmark vertices.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import operator
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checks import check_image_size, check_positive_int
from ..io.atomic import atomic_write
from ..io.json_files import write_json
from ..model.expressions import blendshape_uniforms, blendshape_weights_from_draws
from ..model.morphable_model import MorphableModel
from ..render import numba_kernels
from ..render.camera import camera_rotation, perspective_project, to_camera
from ..render.renderer import Renderer, project_landmarks
from ..render.shading import (
    ALBEDO_NORMALS,
    ALBEDO_UNIFORMS,
    LIGHT_UNIFORMS,
    Lights,
    albedo_from_draws,
)
from . import augment, realism
from .backgrounds import UNIFORMS as BACKGROUND_UNIFORMS
from .backgrounds import backgrounds_from_draws

#: Bump when the generator changes what an item looks like: cached splits are then rebuilt.
GENERATOR_VERSION = 2


@dataclass(frozen=True)
class DataConfig:
    """How synthetic faces are drawn. Angles in degrees, distances in mm, sizes in pixels."""

    image_size: int = 128  # network input (square crop), at most checks.MAX_IMAGE_SIZE
    yaw_max: float = 75.0  # head turn, uniform in ±yaw_max
    pitch_max: float = 30.0
    roll_max: float = 20.0
    neutral_share: float = 0.2  # share of faces with no expression
    strong_share: float = 0.25  # share of faces whose expression is one blend shape at 0.7-1
    id_scale: float = 1.0  # identity coefficients ~ N(0, id_scale²) in std units
    exp_scale: float = 1.0  # for models without blend shapes: a_exp ~ N(0, exp_scale²)
    distance: tuple[float, float] = (700.0, 1400.0)  # camera distance range, mm
    focal: float = 1000.0  # focal length of the uncropped camera, px
    box_scale: tuple[float, float] = (1.2, 1.45)  # crop side / landmark box side
    box_shift: float = 0.08  # crop centre jitter, fraction of the crop side
    augment: float = 1.0  # photometric augmentation strength (0 = off)
    backgrounds: bool = True  # False: black background
    # realism levers (synth/realism.py): the share of faces each is applied to, 0 = off
    features: float = 0.0  # painted eyebrows and lips
    head: float = 0.0  # head, neck and hair around the narrow face area
    interior: float = 0.0  # eyeballs and a mouth interior in the mesh's holes
    white_balance: float = 0.0  # a colour cast and a gamma
    occluder: float = 0.0  # an ellipse of flat colour over part of the crop
    low_res: float = 0.0  # taken at 30-100 % of the resolution, resized back
    jpeg: float = 0.0  # JPEG compression at quality 15-90

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_size", check_image_size(self.image_size, "image_size"))
        for name in ("yaw_max", "pitch_max", "roll_max", "id_scale", "exp_scale", "box_shift",
                     "augment"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < math.inf):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        for name in ("neutral_share", "strong_share", *realism.LEVERS):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value <= 1):
                raise ValueError(f"{name}: expected a fraction in [0, 1], got {value!r}")
        if not (isinstance(self.focal, (int, float)) and 0 < self.focal < math.inf):
            raise ValueError(f"focal: expected a finite focal length > 0 px, got {self.focal!r}")
        for name in ("distance", "box_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (tuple, list)) and len(value) == 2
                    and all(isinstance(v, (int, float)) for v in value)
                    and 0 < value[0] <= value[1] < math.inf):
                raise ValueError(f"{name}: expected a range (low, high) with 0 < low <= high, "
                                 f"got {value!r}")


def item_generator(seed: int, index: int) -> torch.Generator:
    """A generator whose state depends only on (seed, index)."""
    mixed = (int(seed) * 0x9E3779B97F4A7C15 + int(index) * 0xBF58476D1CE4E5B9) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def draw_layout(model: MorphableModel, config: DataConfig) -> tuple[dict, dict]:
    """Where each random choice of an item sits in its two draw vectors.

    Returns ``(normal, uniform)``: ``{name: slice}`` into the item's N(0, 1) draws and into its
    U(0, 1) draws. Everything an item looks like is a function of these two vectors.
    """
    normal_sizes = {"a_id": model.num_id,
                    "a_exp": 0 if model.num_blendshapes else model.num_exp,
                    "light": 3, "albedo": ALBEDO_NORMALS}
    uniform_sizes = {"neutral": 1, "strong": 3,
                     "blend": blendshape_uniforms(model.num_blendshapes)
                     if model.num_blendshapes else 0,
                     "angles": 3, "distance": 1, "box": 3, "albedo": ALBEDO_UNIFORMS,
                     "light": LIGHT_UNIFORMS, "background": BACKGROUND_UNIFORMS,
                     "augment": augment.UNIFORMS, "noise": 2,
                     "realism": realism.uniforms_needed(realism_shares(config))}

    def slices(sizes: dict[str, int]) -> dict[str, slice]:
        out, at = {}, 0
        for name, size in sizes.items():
            out[name] = slice(at, at + size)
            at += size
        return out

    return slices(normal_sizes), slices(uniform_sizes)


def realism_shares(config: DataConfig) -> dict[str, float]:
    """``{lever: share}`` of the realism levers (:mod:`~e2far_lite.synth.realism`)."""
    return {name: getattr(config, name) for name in realism.LEVERS}


def draw_items(model: MorphableModel, config: DataConfig, seed: int,
               indices: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Every random choice of items ``indices``: normal (B, Dn) and uniform (B, Du) draws, on the
    CPU. Row ``b`` comes from the generator of ``(seed, indices[b])`` alone: two calls per item,
    all the rest of the work is done for the whole batch at once."""
    normal_at, uniform_at = draw_layout(model, config)
    num_n = max(s.stop for s in normal_at.values())
    num_u = max(s.stop for s in uniform_at.values())
    normal = torch.empty(len(indices), num_n)
    uniform = torch.empty(len(indices), num_u)
    for row, index in enumerate(indices):
        g = item_generator(seed, index)
        normal[row] = torch.randn(num_n, generator=g)
        uniform[row] = torch.rand(num_u, generator=g)
    return normal, uniform


@functools.lru_cache(maxsize=4)
def _noise_bank(size: int) -> Tensor:
    """A fixed field of N(0, 1) sensor noise (3, 2 size, 2 size); items crop it at random."""
    return torch.randn(3, 2 * size, 2 * size, generator=torch.Generator().manual_seed(5489))


def _sensor_noise(bank: Tensor, offsets: Tensor) -> Tensor:
    """(B, 3, size, size) N(0, 1) noise: windows of the bank at ``offsets`` (B, 2) rows, cols."""
    size = bank.shape[-1] // 2
    bank = bank.to(offsets.device)
    return torch.stack([bank[:, y:y + size, x:x + size] for y, x in offsets.tolist()])


class SyntheticFaces(Dataset):
    """A reproducible set of rendered faces with exact labels.

    Args:
        model: the morphable model faces are drawn from (any size; blend shapes optional).
        num_samples: length of the set.
        seed: item ``i`` is a function of ``(seed, i)`` alone.
        config: :class:`DataConfig`.
        device: where batches are rendered (``"cuda"`` renders on the GPU).
        backend: the renderer's backend (:class:`~e2far_lite.render.Renderer`): on a CPU
            ``"auto"`` uses the compiled kernel when numba is installed.

    Each item (and each batch, with a leading B) is a dict:
        ``image`` (3, H, W) float in [0, 1]; ``a_id`` (K,); ``a_exp`` (E,) std units;
        ``pose`` (6,) yaw, pitch, roll (rad), tx, ty (px), scale (px/mm) of the weak-perspective
        camera the network predicts; ``landmarks`` (68, 2) px, exact perspective projections;
        ``visible`` (68,) bool; ``focal`` () px, ``centre`` (2,) px, ``translation`` (3,) mm:
        the exact camera (``camera.to_camera`` + ``perspective_project`` reproduce the image);
        ``blend_weights`` (N,) the blend-shape mixture the expression came from (N may be 0).

    An item's random choices come from its own generator; a batch renders them together, so an
    item rendered in a batch differs from the same item rendered alone only by float rounding
    (labels to about 1e-5 mm, pixels by at most one 8-bit step).
    """

    def __init__(
        self,
        model: MorphableModel,
        num_samples: int,
        seed: int = 0,
        config: DataConfig | None = None,
        device: torch.device | str | None = None,
        backend: str = "auto",
    ) -> None:
        if not isinstance(model, MorphableModel):
            raise TypeError(f"model: expected a MorphableModel, got {type(model).__name__}")
        self.model = model
        self.num_samples = check_positive_int(num_samples, "num_samples")
        try:
            self.seed = operator.index(seed)
        except TypeError:
            raise TypeError(f"seed: expected an integer, got {seed!r}") from None
        if config is not None and not isinstance(config, DataConfig):
            raise TypeError(f"config: expected a DataConfig, got {type(config).__name__}")
        self.config = config or DataConfig()
        self.device = torch.device(device) if device is not None else model.mean.device
        self.renderer = Renderer(self.config.image_size, backend)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        batch = self.batch([index])
        return {k: v[0] for k, v in batch.items()}

    def batch(self, indices: Sequence[int] | Tensor) -> dict[str, Tensor]:
        """Render items ``indices`` together: a dict of batched tensors on ``self.device``.

        An empty ``indices`` is refused (``ValueError``): there is nothing to render.
        """
        if (isinstance(indices, (Tensor, np.ndarray)) and indices.dtype in (torch.bool, bool)) \
                or any(isinstance(i, (bool, np.bool_)) for i in indices):
            raise TypeError("indices: expected integer item indices, got a boolean mask; "
                            "pass mask.nonzero().flatten()")
        try:
            indices = [operator.index(i) for i in indices]
        except TypeError:
            raise TypeError(f"indices: expected integers, got {indices!r}") from None
        if not indices:
            raise ValueError("indices: expected at least one item index, got none")
        for i in indices:
            if not 0 <= i < self.num_samples:
                raise IndexError(f"index: expected 0 <= index < {self.num_samples}, got {i}")
        normal, uniform = draw_items(self.model, self.config, self.seed, indices)
        return render_draws(self.model, self.config, normal, uniform, self.renderer,
                            self.device)


def _expressions(model: MorphableModel, config: DataConfig, normal: Tensor, uniform: Tensor,
                 at_n: dict, at_u: dict) -> tuple[Tensor, Tensor]:
    """a_exp (B, E) and the blend-shape weights (B, N) behind them."""
    batch, device = len(normal), normal.device
    neutral = uniform[:, at_u["neutral"]] < config.neutral_share  # (B, 1)
    if not model.num_blendshapes:
        a_exp = normal[:, at_n["a_exp"]] * config.exp_scale * ~neutral
        return a_exp, torch.zeros(batch, 0, device=device)
    weights = blendshape_weights_from_draws(model.blendshape_names, uniform[:, at_u["blend"]])
    # a share of strong single blend shapes (jawOpen at 0.7-1.0, ...): expressions that show
    strong_u = uniform[:, at_u["strong"]]
    strong = strong_u[:, 0] < config.strong_share
    if bool(strong.any()):
        n = model.num_blendshapes
        which = (strong_u[:, 1] * n).long().clamp(max=n - 1)
        single = torch.zeros_like(weights)
        single[torch.arange(batch, device=device), which] = 0.7 + 0.3 * strong_u[:, 2]
        weights = torch.where(strong[:, None], single, weights)
    weights = weights * ~neutral
    return model.blendshapes_to_exp(weights), weights


def render_draws(model: MorphableModel, config: DataConfig, normal: Tensor, uniform: Tensor,
                 renderer: Renderer, device: torch.device) -> dict[str, Tensor]:
    """Turn the draws of :func:`draw_items` into images and labels, all items at once."""
    model = model.to(device)
    at_n, at_u = draw_layout(model, config)
    normal, uniform = normal.to(device), uniform.to(device)
    batch = len(normal)
    a_id = normal[:, at_n["a_id"]] * config.id_scale
    a_exp, weights = _expressions(model, config, normal, uniform, at_n, at_u)
    deg = math.pi / 180
    limits = torch.tensor([config.yaw_max, config.pitch_max, config.roll_max],
                          device=device) * deg
    angles = (2 * uniform[:, at_u["angles"]] - 1) * limits
    lo, hi = config.distance
    distance = lo + (hi - lo) * uniform[:, at_u["distance"]][:, 0]
    translation = torch.stack([torch.zeros_like(distance), torch.zeros_like(distance), distance], 1)
    vertices = model(a_id, a_exp)  # (B, V, 3) mm, model frame
    kernel = renderer.uses_kernel(vertices)
    # camera-frame points (B, V, 3): the compiled kernel forms them itself, per image
    anchor_ids = model.landmarks[model.landmark_mask]
    if len(anchor_ids) < 10:  # too few landmarks: the crop box frames all vertices
        anchor_ids = torch.arange(model.num_vertices, device=device)
    points = None if kernel else to_camera(vertices, angles, translation)

    def camera_points(ids: Tensor) -> Tensor:
        return points[:, ids] if points is not None else \
            to_camera(vertices[:, ids], angles, translation)

    # crop box around the landmarks
    focal0 = torch.full_like(distance, config.focal)
    zero = torch.zeros(batch, 2, device=device)
    anchors = camera_points(anchor_ids)
    uv = perspective_project(anchors, focal0, zero)
    lo_uv, hi_uv = uv.amin(1), uv.amax(1)
    box = uniform[:, at_u["box"]]
    smin, smax = config.box_scale
    side = (hi_uv - lo_uv).amax(1) * (smin + (smax - smin) * box[:, 0])
    middle = (lo_uv + hi_uv) / 2 + config.box_shift * side[:, None] * (2 * box[:, 1:] - 1)
    size = config.image_size
    zoom = size / side
    focal = focal0 * zoom
    centre = zoom[:, None] * (side[:, None] / 2 - middle)

    albedo = albedo_from_draws(model.mean.float(), normal[:, at_n["albedo"]],
                               uniform[:, at_u["albedo"]])
    shares = realism_shares(config)
    levers = realism.lever_draws(uniform[:, at_u["realism"]]) if any(shares.values()) else {}
    if config.features > 0:
        albedo = realism.paint_features(albedo, model.mean.float(), model.landmarks,
                                        levers["features"], config.features)
    lights = Lights.from_draws(normal[:, at_n["light"]], uniform[:, at_u["light"]])
    if kernel:
        out = renderer.render_posed(vertices, camera_rotation(angles), translation, focal,
                                    centre, model.triangles, albedo, lights)
    else:
        out = renderer.render(points, model.triangles, focal, centre, albedo, lights)
    lm_points = camera_points(model.landmarks.clamp(min=0))
    lm_points = torch.where(model.landmark_mask[None, :, None], lm_points,
                            torch.full_like(lm_points, float("nan")))
    landmarks, visible = project_landmarks(lm_points, focal, centre, out.depth.to(device))

    rendered, face_mask = out.image, out.mask
    if config.interior > 0:
        rendered, face_mask = realism.fill_interior(rendered, face_mask, landmarks,
                                                    levers["interior"], config.interior)
    if config.head > 0:
        rendered, face_mask = realism.paint_head(rendered, face_mask, landmarks,
                                                 levers["head"], config.head)
    background = (backgrounds_from_draws(uniform[:, at_u["background"]], size)
                  if config.backgrounds else None)
    params = augment.params_from_draws(uniform[:, at_u["augment"]], config.augment)
    offsets = (uniform[:, at_u["noise"]] * (size + 1)).long().clamp(max=size)
    if kernel:  # the compiled twin of the lines below, in one pass
        image = numba_kernels.finish_numba(rendered, face_mask, background, params,
                                         _noise_bank(size), offsets)
    else:
        image, mask = rendered.to(device), face_mask.to(device)
        if background is not None:
            image = image * mask + background * (1 - mask)
        image = augment.apply(image, params, _sensor_noise(_noise_bank(size), offsets))
    if any(shares[name] > 0 for name in realism.DEGRADATIONS):
        image = realism.degrade(image, uniform[:, at_u["realism"]], shares)
    # weak perspective about the model origin, which sits at (0, 0, distance) in the camera
    pose = torch.cat([angles, centre, (focal / distance)[:, None]], 1)
    return {
        "image": image, "a_id": a_id, "a_exp": a_exp, "pose": pose,
        "landmarks": landmarks, "visible": visible, "focal": focal, "centre": centre,
        "translation": translation, "blend_weights": weights,
    }


# ---------------------------------------------------------------------------- caching
def _fingerprint(faces: SyntheticFaces) -> str:
    """A hash of everything an item depends on: generator version, config, seed, model."""
    h = hashlib.sha256()
    config = {k: v for k, v in asdict(faces.config).items()  # levers that are off: as before
              if not (k in realism.LEVERS and v == 0)}
    h.update(json.dumps({"version": GENERATOR_VERSION, "config": config,
                         "seed": faces.seed}, sort_keys=True).encode())
    for name in ("mean", "id_basis", "id_std", "exp_basis", "exp_std", "triangles", "landmarks",
                 "blendshapes"):
        h.update(getattr(faces.model, name).detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _made_by_other_generator(meta_path: Path) -> bool:
    try:
        return json.loads(meta_path.read_text()).get("generator_version") != GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def _read_split(folder: Path, meta_path: Path, num_samples: int) -> dict[str, Tensor]:
    """A cached split read back; raises on anything missing, malformed or of the wrong size."""
    meta = json.loads(meta_path.read_text())
    shards = [torch.load(folder / name, weights_only=True) for name in meta["shards"]]
    out = {k: torch.cat([s[k] for s in shards]) for k in shards[0]}
    lengths = {k: len(v) for k, v in out.items()}
    if meta.get("num_samples") != num_samples or set(lengths.values()) != {num_samples}:
        raise ValueError(f"expected {num_samples} faces in every field, found {lengths}")
    out["image"] = out["image"].float() / 255
    return out


def cached_split(faces: SyntheticFaces, cache_dir: str | os.PathLike, shard_size: int = 256,
                 batch_size: int = 64, progress: bool = False) -> dict[str, Tensor]:
    """All items of ``faces`` as one dict of tensors (CPU), cached on disk as shards.

    Images are kept as uint8 (the generator quantises to 8 bits, so nothing is lost). A cache
    written by another generator version, config, seed or model is not reused: it is rebuilt,
    with a warning; a damaged one (truncated shards, broken JSON) is rendered again, with a
    warning. Shards are written atomically (temp file, then rename).
    """
    folder = Path(cache_dir) / f"split-{_fingerprint(faces)}-n{len(faces)}"
    meta_path = folder / "meta.json"
    stale = sorted(Path(cache_dir).glob("split-*")) if Path(cache_dir).exists() else []
    if meta_path.is_file():
        try:
            return _read_split(folder, meta_path, len(faces))
        except PermissionError:
            raise  # not damage: rendering again could not write it either
        except (OSError, ValueError, KeyError, IndexError, RuntimeError, EOFError,
                pickle.UnpicklingError, struct.error, zipfile.BadZipFile) as err:
            warnings.warn(f"cache {folder} is damaged ({type(err).__name__}: {err}); "
                          "rendering it anew", stacklevel=2)
    if any(_made_by_other_generator(p / "meta.json") for p in stale):
        warnings.warn(f"cache in {cache_dir} holds splits of an older data generator; "
                      f"rendering this one anew (the old ones can be deleted)", stacklevel=2)
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    names, parts = [], []
    bar = tqdm(total=len(faces), desc="rendering split", disable=not progress)
    for start in range(0, len(faces), shard_size):
        idx = range(start, min(start + shard_size, len(faces)))
        chunks = []
        for s in range(idx.start, idx.stop, batch_size):
            b = faces.batch(range(s, min(s + batch_size, idx.stop)))
            chunks.append({k: v.cpu() for k, v in b.items()})
            bar.update(len(chunks[-1]["image"]))
        shard = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
        shard["image"] = (shard["image"] * 255).round().to(torch.uint8)
        name = f"shard-{start // shard_size:04d}.pt"
        with atomic_write(folder / name) as handle:
            torch.save(shard, handle)
        names.append(name)
        parts.append(shard)
    bar.close()
    write_json(meta_path, {"shards": names, "num_samples": len(faces),
                           "generator_version": GENERATOR_VERSION}, indent=None)
    out = {k: torch.cat([s[k] for s in parts]) for k in parts[0]}
    out["image"] = out["image"].float() / 255
    return out

def face_split(model: MorphableModel, data: DataConfig, n: int, seed: int,
               cache_dir: str | os.PathLike | None = None,
               device: torch.device | str | None = "cpu") -> dict[str, Tensor]:
    """A fixed set of faces: items ``0 .. n - 1`` of ``SyntheticFaces(model, n, seed, data)``.

    The one way the package builds a data split: training's validation faces, the test faces
    of ``evaluate`` and the benchmark, and the probe faces of notebook 07 all come from here,
    each with its own seed.

    Args:
        model: the morphable model to draw faces from.
        data: how to draw them (poses, backgrounds, image size, ...).
        n: N, the number of faces.
        seed: the split's seed; another seed gives other faces.
        cache_dir: when given, the split is rendered once and cached there
            (:func:`cached_split`); later calls read it back.
        device: where to render (the result is on the CPU either way).

    Returns:
        the batch dict of :class:`SyntheticFaces` for all N faces, CPU tensors: ``"image"``
        (N, 3, S, S) in [0, 1], ``"a_id"`` (N, K), ``"a_exp"`` (N, E), ``"landmarks"``
        (N, 68, 2) in pixels, ...
    """
    check_positive_int(n, "n")
    faces = SyntheticFaces(model, n, seed=seed, config=data, device=device)
    if cache_dir is not None:
        return cached_split(faces, cache_dir)
    chunks = [faces.batch(range(s, min(s + 64, n))) for s in range(0, n, 64)]
    return {k: torch.cat([c[k].cpu() for c in chunks]) for k in chunks[0]}

