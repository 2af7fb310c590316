"""Synthetic training data: random faces of the morphable model, rendered, cropped and augmented.

Item ``i`` of a :class:`SyntheticFaces` set with seed ``s`` is a pure function of ``(s, i)``: every
random number for it comes from its own generator. Rendering happens in batches (on the GPU when
the set lives there), so ``faces.batch(range(64))`` is much faster than 64 ``faces[i]`` calls and
gives the same images.

Labels are exact: the rendered shape is ``model(a_id, a_exp)`` for the stored coefficients, and
2D landmarks are the perspective projections of the model's landmark vertices.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from . import augment
from .backgrounds import random_background
from .camera import perspective_project, to_camera
from .checks import check_image_size, check_positive_int
from .expressions import sample_blendshape_weights
from .morphable_model import MorphableModel
from .renderer import Renderer, project_landmarks
from .shading import Lights, skin_albedo

#: Bump when the generator changes what an item looks like: cached splits are then rebuilt.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class DataConfig:
    """How synthetic faces are drawn. Angles in degrees, distances in mm, sizes in pixels."""

    image_size: int = 128  # network input (square crop), at most checks.MAX_IMAGE_SIZE
    yaw_max: float = 75.0  # head turn, uniform in ±yaw_max
    pitch_max: float = 30.0
    roll_max: float = 20.0
    neutral_share: float = 0.2  # share of faces with no expression
    id_scale: float = 1.0  # identity coefficients ~ N(0, id_scale²) in std units
    exp_scale: float = 1.0  # for models without blend shapes: a_exp ~ N(0, exp_scale²)
    distance: tuple[float, float] = (700.0, 1400.0)  # camera distance range, mm
    focal: float = 1000.0  # focal length of the uncropped camera, px
    box_scale: tuple[float, float] = (1.2, 1.45)  # crop side / landmark box side
    box_shift: float = 0.08  # crop centre jitter, fraction of the crop side
    augment: float = 1.0  # photometric augmentation strength (0 = off)
    backgrounds: bool = True  # False: black background

    def __post_init__(self) -> None:
        check_image_size(self.image_size, "image_size")
        for name in ("yaw_max", "pitch_max", "roll_max", "id_scale", "exp_scale", "box_shift",
                     "augment"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < math.inf):
                raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
        if not (isinstance(self.neutral_share, (int, float)) and 0 <= self.neutral_share <= 1):
            raise ValueError(f"neutral_share: expected a fraction in [0, 1], "
                             f"got {self.neutral_share!r}")
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


def _draw_item(model: MorphableModel, config: DataConfig, seed: int, index: int) -> dict:
    """All random choices for one item, on the CPU."""
    g = item_generator(seed, index)
    deg = math.pi / 180
    neutral = bool(torch.rand(1, generator=g) < config.neutral_share)
    item: dict = {"a_id": torch.randn(model.num_id, generator=g) * config.id_scale}
    if model.num_blendshapes:
        w = sample_blendshape_weights(model.blendshape_names, 1, g)[0]
        item["blend_weights"] = w * (not neutral)
    else:
        a_exp = torch.randn(model.num_exp, generator=g) * config.exp_scale
        item["a_exp"] = a_exp * (not neutral)
    limits = torch.tensor([config.yaw_max, config.pitch_max, config.roll_max]) * deg
    item["angles"] = (2 * torch.rand(3, generator=g) - 1) * limits
    lo, hi = config.distance
    item["distance"] = lo + (hi - lo) * torch.rand(1, generator=g)
    item["box"] = torch.rand(3, generator=g)  # scale, shift x, shift y
    item["albedo"] = skin_albedo(model.mean.cpu().float(), 1, g)[0]
    lights = Lights.random(1, g)
    item["lights"] = torch.cat([lights.direction, lights.ambient, lights.diffuse,
                                lights.specular[:, None]], 1)[0]
    size = config.image_size
    item["background"] = (random_background(size, g) if config.backgrounds
                          else torch.zeros(3, size, size))
    item["augment"] = augment.draw_params(g, config.augment)
    item["noise"] = torch.randn(3, size, size, generator=g)
    return item


class SyntheticFaces(Dataset):
    """A reproducible set of rendered faces with exact labels.

    Args:
        model: the morphable model faces are drawn from (any size; blend shapes optional).
        num_samples: length of the set.
        seed: item ``i`` is a function of ``(seed, i)`` alone.
        config: :class:`DataConfig`.
        device: where batches are rendered (``"cuda"`` renders on the GPU).

    Each item (and each batch, with a leading B) is a dict:
        ``image`` (3, H, W) float in [0, 1]; ``a_id`` (K,); ``a_exp`` (E,) std units;
        ``pose`` (6,) yaw, pitch, roll (rad), tx, ty (px), scale (px/mm) of the weak-perspective
        camera the network predicts; ``landmarks`` (68, 2) px, exact perspective projections;
        ``visible`` (68,) bool; ``focal`` () px, ``centre`` (2,) px, ``translation`` (3,) mm:
        the exact camera (``camera.to_camera`` + ``perspective_project`` reproduce the image);
        ``blend_weights`` (N,) the blend-shape mixture the expression came from (N may be 0).
    """

    def __init__(
        self,
        model: MorphableModel,
        num_samples: int,
        seed: int = 0,
        config: DataConfig | None = None,
        device: torch.device | str | None = None,
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
        self.renderer = Renderer(self.config.image_size)

    def __len__(self) -> int:
        return self.num_samples

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        batch = self.batch([index])
        return {k: v[0] for k, v in batch.items()}

    def batch(self, indices: Sequence[int] | Tensor) -> dict[str, Tensor]:
        """Render items ``indices`` together: a dict of batched tensors on ``self.device``.

        An empty ``indices`` is refused (``ValueError``): there is nothing to render.
        """
        try:
            indices = [operator.index(i) for i in indices]
        except TypeError:
            raise TypeError(f"indices: expected integers, got {indices!r}") from None
        if not indices:
            raise ValueError("indices: expected at least one item index, got none")
        for i in indices:
            if not 0 <= i < self.num_samples:
                raise IndexError(f"index: expected 0 <= index < {self.num_samples}, got {i}")
        items = [_draw_item(self.model, self.config, self.seed, i) for i in indices]
        return render_items(self.model, self.config, items, self.renderer, self.device)


def _per_item(fn, *args: Tensor) -> Tensor:
    """Apply ``fn`` one item at a time: a matrix product's rounding can depend on the batch
    size, and an item must not depend on the batch it is rendered in."""
    return torch.cat([fn(*(a[i:i + 1] for a in args)) for i in range(len(args[0]))])


def _stack(items: list[dict], key: str, device: torch.device) -> Tensor:
    return torch.stack([it[key] for it in items]).to(device)


def render_items(model: MorphableModel, config: DataConfig, items: list[dict],
                 renderer: Renderer, device: torch.device) -> dict[str, Tensor]:
    """Turn drawn parameters into images and labels, all items at once."""
    model = model.to(device)
    a_id = _stack(items, "a_id", device)
    if model.num_blendshapes:
        weights = _stack(items, "blend_weights", device)
        a_exp = _per_item(model.blendshapes_to_exp, weights)
    else:
        weights = torch.zeros(len(items), 0, device=device)
        a_exp = _stack(items, "a_exp", device)
    angles = _stack(items, "angles", device)
    distance = _stack(items, "distance", device)[:, 0]
    translation = torch.stack([torch.zeros_like(distance), torch.zeros_like(distance), distance], 1)
    points = to_camera(_per_item(model, a_id, a_exp), angles, translation)  # (B, V, 3) mm

    # crop box around the landmarks (or all vertices when the model has few landmarks)
    focal0 = torch.full_like(distance, config.focal)
    zero = torch.zeros(len(items), 2, device=device)
    anchors = points[:, model.landmarks[model.landmark_mask]]
    if anchors.shape[1] < 10:
        anchors = points
    uv = perspective_project(anchors, focal0, zero)
    lo, hi = uv.amin(1), uv.amax(1)
    box = _stack(items, "box", device)
    smin, smax = config.box_scale
    side = (hi - lo).amax(1) * (smin + (smax - smin) * box[:, 0])
    middle = (lo + hi) / 2 + config.box_shift * side[:, None] * (2 * box[:, 1:] - 1)
    size = config.image_size
    zoom = size / side
    focal = focal0 * zoom
    centre = zoom[:, None] * (side[:, None] / 2 - middle)

    albedo = _stack(items, "albedo", device)
    lv = _stack(items, "lights", device)
    lights = Lights(lv[:, 0:3], lv[:, 3:6], lv[:, 6:9], lv[:, 9])
    out = renderer.render(points, model.triangles, focal, centre, albedo, lights)
    background = _stack(items, "background", device)
    image = out.image * out.mask + background * (1 - out.mask)
    image = augment.apply(image, _stack(items, "augment", device), _stack(items, "noise", device))

    lm_points = points[:, model.landmarks.clamp(min=0)]
    lm_points = torch.where(model.landmark_mask[None, :, None], lm_points,
                            torch.full_like(lm_points, float("nan")))
    landmarks, visible = project_landmarks(lm_points, focal, centre, out.depth)
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
    h.update(json.dumps({"version": GENERATOR_VERSION, "config": asdict(faces.config),
                         "seed": faces.seed}, sort_keys=True).encode())
    for name in ("mean", "id_basis", "id_std", "exp_basis", "exp_std", "triangles", "landmarks",
                 "blendshapes"):
        h.update(getattr(faces.model, name).detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_split(faces: SyntheticFaces, cache_dir: str | os.PathLike, shard_size: int = 256,
                 batch_size: int = 64, progress: bool = False) -> dict[str, Tensor]:
    """All items of ``faces`` as one dict of tensors (CPU), cached on disk as shards.

    Images are kept as uint8 (the generator quantises to 8 bits, so nothing is lost). A cache
    written by another generator version, config, seed or model is not reused: it is rebuilt,
    with a warning. Shards are written atomically (temp file, then rename).
    """
    folder = Path(cache_dir) / f"split-{_fingerprint(faces)}-n{len(faces)}"
    meta_path = folder / "meta.json"
    stale = sorted(Path(cache_dir).glob("split-*")) if Path(cache_dir).exists() else []
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        shards = [torch.load(folder / name, weights_only=True) for name in meta["shards"]]
        return {k: torch.cat([s[k] for s in shards]) if k != "image" else
                torch.cat([s[k] for s in shards]).float() / 255 for k in shards[0]}
    if any(p != folder and p.name.endswith(f"-n{len(faces)}") for p in stale):
        warnings.warn(f"cache in {cache_dir} was made by another generator or config; "
                      "rebuilding it", stacklevel=2)
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
        tmp = folder / (name + ".tmp")
        torch.save(shard, tmp)
        os.replace(tmp, folder / name)
        names.append(name)
        parts.append(shard)
    bar.close()
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps({"shards": names, "num_samples": len(faces),
                               "generator_version": GENERATOR_VERSION}))
    os.replace(tmp, meta_path)
    out = {k: torch.cat([s[k] for s in parts]) for k in parts[0]}
    out["image"] = out["image"].float() / 255
    return out
