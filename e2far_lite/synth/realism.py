"""Realism: what real photos have and plain renders lack (notebook 10 measures each lever).

Each lever is a :class:`~e2far_lite.synth.DataConfig` field in [0, 1]: the share of faces it is
applied to. At 0, the default, a lever is off and nothing is drawn for it, so faces drawn with
every lever off are exactly those of a config without levers.

=================  ==============================================================================
``features``       painted eyebrows (dark brown to blond) and reddish lips on the skin albedo
``head``           what lies around the narrow face area: skin where the head and ears go on, a
                   neck below the chin, hair above a hairline (85 % of faces)
``interior``       the mesh's holes (eye sockets, the mouth) filled with eyeballs (sclera, iris,
                   pupil) and a dark mouth interior, where a plain render shows the background
``white_balance``  a colour cast (red and blue gains of 0.75-1.25 against green) and a gamma of
                   0.7-1.4
``occluder``       an ellipse of flat colour (a hand, a microphone, a strand of hair) of 8-28 %
                   of the crop's side, anywhere over the middle of the crop
``low_res``        the crop taken at 30-100 % of its resolution (log-uniform), then enlarged
                   back (bilinear, as ``photo.cut_crop`` enlarges a small face): real faces are
                   often 40-90 px across
``jpeg``           JPEG compression at quality 15-90 (Pillow, 4:2:0 chroma subsampling), at
                   the low resolution when both levers apply, as a photo was compressed
=================  ==============================================================================

:func:`paint_features` works on the albedo before rendering; :func:`fill_interior` and
:func:`paint_head` on the render before it is composited over the background; :func:`degrade` on
the finished, augmented image. They run on the CPU, item by item (holes and JPEG are per
image); what is the same for every face (the eyebrow and lip weights of the template) is
computed once per model, not per batch.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage
from skimage.draw import ellipse, polygon
from skimage.measure import points_in_poly
from torch import Tensor

from .augment import quantize

#: Uniform draws per face of each lever, in the order the levers are applied.
UNIFORMS: dict[str, int] = {"features": 4, "interior": 5, "head": 7, "white_balance": 4,
                            "occluder": 8, "low_res": 2, "jpeg": 2}
#: The levers' names, the :class:`~e2far_lite.synth.DataConfig` fields that hold their shares.
LEVERS: tuple[str, ...] = tuple(UNIFORMS)
#: The levers :func:`degrade` applies to the finished image.
DEGRADATIONS: tuple[str, ...] = ("white_balance", "occluder", "low_res", "jpeg")

#: The low-resolution lever's smallest scale: the side shrinks by LOW_RES_MIN ** U(0, 1),
#: log-uniform between 30 % and 100 % (the median, 55 %, is a 53 px crop at 96 px).
LOW_RES_MIN = 0.3

# iBUG 68-point indices: the two eyes and the inner lips
_EYES = (slice(36, 42), slice(42, 48))
_MOUTH = slice(60, 68)


def uniforms_needed(shares: dict[str, float]) -> int:
    """How many uniform draws per face the levers need: all of them if any share is > 0,
    else 0 (then nothing is drawn and the faces are those of a config without levers)."""
    return sum(UNIFORMS.values()) if any(v > 0 for v in shares.values()) else 0


def lever_draws(u: Tensor) -> dict[str, Tensor]:
    """Split (B, 21) realism draws into ``{lever: (B, n)}``."""
    out, at = {}, 0
    for name, n in UNIFORMS.items():
        out[name] = u[:, at:at + n]
        at += n
    return out


# feature_weights' results by the template's and landmarks' bytes: one entry per model in use
_FEATURE_WEIGHTS: dict[bytes, tuple[Tensor, Tensor] | None] = {}


def feature_weights(mean: Tensor, landmarks: Tensor) -> tuple[Tensor, Tensor] | None:
    """Where the eyebrows and the lips are on a template: weights (V,) in [0, 1] each.

    Eyebrows: within 3 mm of the polylines through landmarks 17-21 and 22-26 (in 3D), fading
    to 0 at 6 mm. Lips: inside the outer lip contour (landmarks 48-59) seen from the front,
    on the front of the face. ``None`` for a model without these landmarks. Computed once per
    template (remembered by its float32 bytes) and handed out as copies: a batch reuses them.

    Args:
        mean: (V, 3) template in mm (x to the subject's left, y up, z to the camera), taken
            as float32.
        landmarks: (68,) vertex indices, -1 where undefined.
    """
    verts, ids = mean.detach().cpu().float().contiguous(), landmarks.detach().cpu().long()
    key = hashlib.blake2b(repr((tuple(verts.shape), tuple(ids.shape))).encode()
                          + verts.numpy().tobytes() + ids.numpy().tobytes()).digest()
    weights = _FEATURE_WEIGHTS.get(key)
    if weights is None and key not in _FEATURE_WEIGHTS:
        weights = _feature_weights(verts, ids)
        if len(_FEATURE_WEIGHTS) >= 8:
            _FEATURE_WEIGHTS.clear()
        _FEATURE_WEIGHTS[key] = weights
    return None if weights is None else (weights[0].clone(), weights[1].clone())


def _feature_weights(mean: Tensor, ids: Tensor) -> tuple[Tensor, Tensor] | None:
    """:func:`feature_weights`, computed: mean (V, 3) float32 and ids (68,) on the CPU."""
    if bool((ids[17:27] < 0).any() or (ids[48:60] < 0).any()):
        return None
    verts = mean.double()
    points = verts[ids.clamp(min=0)]
    distance = torch.full((len(verts),), float("inf"), dtype=torch.float64)
    for first, last in ((17, 21), (22, 26)):
        for a, b in zip(points[first:last], points[first + 1:last + 1], strict=True):
            t = ((verts - a) @ (b - a) / (b - a).dot(b - a)).clamp(0, 1)
            distance = torch.minimum(distance, (verts - (a + t[:, None] * (b - a))).norm(dim=1))
    brows = ((6 - distance) / 3).clamp(0, 1)
    lip = points[48:60]
    inside = points_in_poly(verts[:, :2].numpy(), lip[:, :2].numpy())
    front = verts[:, 2] > float(lip[:, 2].min()) - 5
    lips = torch.from_numpy(inside).double() * front
    return brows.float(), lips.float()


def filled(face: np.ndarray) -> np.ndarray:
    """``face`` (H, W) bool with its holes filled: background not 4-connected to the border.

    The same mask as ``scipy.ndimage.binary_fill_holes(face)``, by one labelling of the
    background instead of repeated dilations (half the time at 96 px).
    """
    face = np.asarray(face, dtype=bool)
    if face.size == 0:
        return face.copy()
    labels, count = ndimage.label(~face)
    outside = np.zeros(count + 1, dtype=bool)
    outside[labels[0]] = outside[labels[-1]] = outside[labels[:, 0]] = True
    outside[labels[:, -1]] = True
    outside[0] = False  # label 0: the face itself
    return ~outside[labels]


def paint_features(albedo: Tensor, mean: Tensor, landmarks: Tensor, u: Tensor,
                   share: float) -> Tensor:
    """Darken the eyebrows and redden the lips of per-vertex albedo.

    Args:
        albedo: (B, V, 3) RGB in [0, 1]; mean: (V, 3) template in mm; landmarks: (68,) ids.
        u: (B, 4) uniform draws: apply, brow colour (dark brown to blond), brow strength,
            lip strength.
        share: the share of faces painted (``u[:, 0] < share``).

    Returns:
        (B, V, 3) albedo, a copy.
    """
    weights = feature_weights(mean, landmarks)
    if weights is None:
        return albedo.clone()
    brows, lips = (w.to(albedo) for w in weights)
    where = torch.nonzero((brows > 0) | (lips > 0)).flatten()  # the few vertices painted
    brows, lips, part = brows[where], lips[where], albedo[:, where]
    u = u.to(albedo)
    on = (u[:, 0] < share).to(albedo)[:, None, None]
    dark, blond = albedo.new_tensor([0.10, 0.07, 0.05]), albedo.new_tensor([0.50, 0.38, 0.25])
    brow_colour = (dark + u[:, 1:2] * (blond - dark))[:, None, :]  # (B, 1, 3)
    k = (0.5 + 0.45 * u[:, 2])[:, None, None] * brows[None, :, None] * on
    painted = part * (1 - k) + brow_colour * k
    lip_colour = part * albedo.new_tensor([1.0, 0.68, 0.70])
    s = (0.3 + 0.5 * u[:, 3])[:, None, None] * lips[None, :, None] * on
    out = albedo.clamp(0, 1)
    out[:, where] = (painted * (1 - s) + lip_colour * s).clamp(0, 1)
    return out


def paint_head(image: Tensor, mask: Tensor, landmarks: Tensor, u: Tensor,
               share: float) -> tuple[Tensor, Tensor]:
    """Paint what surrounds the narrow face area behind it: head, neck and hair.

    In the face's own frame (``up`` from the chin, landmark 8, to the nose bridge, 27, of
    length H): the head is an ellipse about the nose bridge, 1.05-1.3 H tall and as wide as
    the jaw line allows, pushed away from the nose tip as the head turns (the back of the
    head); the neck runs down from jaw points 4 and 12; hair covers the head above a hairline
    0.1-0.5 H over the eyebrows. Only background pixels are painted; skin takes the face's
    median colour, a little darker.

    Args:
        image: (B, 3, H, W) renders in [0, 1]; mask: (B, 1, H, W) 1 on the face.
        landmarks: (B, 68, 2) projected landmarks in pixels (iBUG order).
        u: (B, 7) uniform draws: apply, hair colour, hairline, head size, neck width, skin
            shade, hair present.
        share: the share of faces painted (``u[:, 0] < share``).

    Returns:
        ``(image, mask)``: copies with the painted pixels counted as face.
    """
    image, mask = image.detach().cpu().float().clone(), mask.detach().cpu().float().clone()
    pixels, face_mask = image.numpy(), mask.numpy()
    pts = landmarks.detach().cpu().double().numpy()
    draws = u.detach().cpu().double().numpy()
    size_y, size_x = pixels.shape[2:]
    rows, cols = np.mgrid[0:size_y, 0:size_x]
    hair_colours = np.array([[0.05, 0.04, 0.035], [0.22, 0.14, 0.08], [0.45, 0.30, 0.15],
                             [0.75, 0.62, 0.40], [0.62, 0.60, 0.58]])
    for b in np.flatnonzero(draws[:, 0] < share):
        p, d = pts[b], draws[b]
        face = face_mask[b, 0] > 0.5
        if not np.isfinite(p[[0, 4, 8, 12, 16, 27, 30]]).all() or not face.any():
            continue
        up = p[27] - p[8]
        height = float(np.hypot(*up))
        if height < 1:
            continue
        up = up / height
        across = np.array([-up[1], up[0]])
        skin = np.median(pixels[b][:, face], 1) * (0.8 + 0.2 * d[5])
        free = ~filled(face)  # the eyes and mouth are the interior's
        # the neck: from jaw points 4 and 12 down, past the image's edge
        neck_half = 0.5 * (0.75 + 0.3 * d[4]) * float(np.hypot(*(p[12] - p[4])))
        mid = (p[4] + p[12]) / 2
        corners = np.stack([mid - across * neck_half, mid + across * neck_half,
                            mid + across * neck_half - up * 3 * height,
                            mid - across * neck_half - up * 3 * height])
        rr, cc = polygon(corners[:, 1], corners[:, 0], shape=(size_y, size_x))
        neck = np.zeros_like(face)
        neck[rr, cc] = True
        # the head: an ellipse about the nose bridge, moved away from the nose tip
        scale = 1.05 + 0.25 * d[3]
        centre = p[27] + up * 0.15 * height + 0.6 * ((p[0] + p[16]) / 2 - p[30])
        semi_up = 0.95 * scale * height
        semi_across = scale * max(0.62 * float(np.hypot(*(p[16] - p[0]))), 0.8 * height)
        angle = float(np.arctan2(up[0], -up[1]))  # rotation of the "up" axis from image rows
        rr, cc = ellipse(centre[1], centre[0], semi_up, semi_across, shape=(size_y, size_x),
                         rotation=angle)
        head = np.zeros_like(face)
        head[rr, cc] = True
        paint = (head | neck) & free
        pixels[b][:, paint] = np.clip(skin, 0, 1)[:, None] * np.where(neck[paint], 0.8, 1.0)
        if d[6] < 0.85:  # hair above the hairline
            brow_line = (p[17:27] - p[8]) @ up
            hairline = float(brow_line.mean()) + (0.1 + 0.4 * d[2]) * height
            level = (cols + 0.5 - p[8][0]) * up[0] + (rows + 0.5 - p[8][1]) * up[1]
            hair = head & free & (level > hairline)
            colour = hair_colours[min(int(d[1] * len(hair_colours)), len(hair_colours) - 1)]
            pixels[b][:, hair] = colour[:, None] * (0.8 + 0.4 * (level[hair] / height % 0.2))
        face_mask[b, 0][paint] = 1
    return image, mask


def fill_interior(image: Tensor, mask: Tensor, landmarks: Tensor, u: Tensor,
                  share: float) -> tuple[Tensor, Tensor]:
    """Fill the holes of the face's silhouette with eyeballs and a mouth interior.

    A hole is a background pixel enclosed by the face (``scipy.ndimage.binary_fill_holes``);
    each connected hole belongs to the nearest of the two eye centres and the inner-lip
    centre. Eyes get a sclera with an iris and a pupil at the eye's centre, the mouth a dark
    red-brown; both are dimmed like the face around them.

    Args:
        image: (B, 3, H, W) renders in [0, 1]; mask: (B, 1, H, W) 1 on the face.
        landmarks: (B, 68, 2) projected landmarks in pixels (iBUG order).
        u: (B, 5) uniform draws: apply, sclera brightness, iris hue, iris size, mouth darkness.
        share: the share of faces filled (``u[:, 0] < share``).

    Returns:
        ``(image, mask)``: copies with the holes filled and counted as face.
    """
    image, mask = image.detach().cpu().float().clone(), mask.detach().cpu().float().clone()
    pixels, face_mask = image.numpy(), mask.numpy()  # views: edited in place
    pts = landmarks.detach().cpu().double().numpy()
    draws = u.detach().cpu().double().numpy()
    for b in np.flatnonzero(draws[:, 0] < share):
        face = face_mask[b, 0] > 0.5
        holes = filled(face) & ~face
        labels, count = ndimage.label(holes)
        if not count or not np.isfinite(pts[b, 36:68]).all():  # a model without these points
            continue
        centres = np.stack([pts[b, s].mean(0) for s in (*_EYES, _MOUTH)])  # (3, 2) x, y
        # each hole goes to the nearest of the eyes and the mouth (by its centre of mass)
        y, x = np.nonzero(holes)
        part_of = labels[y, x]
        sizes = np.bincount(part_of, minlength=count + 1)[1:]
        middles = np.stack([np.bincount(part_of, y, count + 1)[1:],
                            np.bincount(part_of, x, count + 1)[1:]], 1) / sizes[:, None]
        gaps = np.hypot(middles[:, None, 1] - centres[None, :, 0],
                        middles[:, None, 0] - centres[None, :, 1])
        part = gaps.argmin(1)[part_of - 1]  # (P,) each hole pixel's eye or mouth
        sclera = (0.55 + 0.4 * draws[b, 1]) * np.array([0.92, 0.87, 0.82])
        iris = (1 - draws[b, 2]) * np.array([0.33, 0.2, 0.1]) + draws[b, 2] * np.array(
            [0.28, 0.4, 0.5])
        mouth = (0.15 + 0.45 * draws[b, 4]) * np.array([0.55, 0.2, 0.18])
        eye_width = np.linalg.norm(pts[b, 39] - pts[b, 36])
        r_iris = (0.18 + 0.08 * draws[b, 3]) * eye_width
        centre = centres[np.minimum(part, 1)]  # (P, 2): the pixel's eye (unused for the mouth)
        r = np.hypot(x + 0.5 - centre[:, 0], y + 0.5 - centre[:, 1])[:, None]
        colour = np.where(r < r_iris, iris, sclera)
        colour = np.where(r < 0.45 * r_iris, 0.03, colour)
        colour = np.where((part == 2)[:, None], mouth, colour)  # (P, 3)
        skin = np.median(pixels[b][:, face], 1)
        light = float(np.clip(skin.mean() / 0.55, 0.25, 1.3))  # dim like the face
        pixels[b][:, y, x] = np.clip(colour * light, 0, 1).T
        face_mask[b, 0, y, x] = 1
    return image, mask


def jpeg(image: Tensor, quality: int) -> Tensor:
    """One image (3, H, W) in [0, 1] through JPEG at ``quality`` (Pillow), back to [0, 1]."""
    pixels = (image.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return torch.from_numpy(decoded.copy()).permute(2, 0, 1).float() / 255


def degrade(image: Tensor, u: Tensor, shares: dict[str, float]) -> Tensor:
    """Apply the white-balance, occluder, low-resolution and JPEG levers, then quantise.

    Args:
        image: (B, 3, H, W) finished images in [0, 1] (on any device).
        u: (B, 21) realism draws (:func:`lever_draws` splits them).
        shares: ``{lever: share}`` for the levers of :data:`LEVERS`.

    Returns:
        (B, 3, H, W) images in [0, 1], 8-bit steps, on ``image``'s device.
    """
    device = image.device
    out = image.detach().cpu().float().clone()
    d = lever_draws(u.detach().cpu().float())
    size = out.shape[-1]
    on = {name: d[name][:, 0] < shares.get(name, 0.0) for name in LEVERS}
    wb = on["white_balance"]
    if wb.any():
        w = d["white_balance"][wb]
        gains = torch.stack([1 + 0.25 * (2 * w[:, 1] - 1), torch.ones(len(w)),
                             1 + 0.25 * (2 * w[:, 2] - 1)], 1)[:, :, None, None]
        gamma = (2 ** (0.5 * (2 * w[:, 3] - 1)))[:, None, None, None]
        out[wb] = (out[wb].clamp(0, 1) ** gamma * gains).clamp(0, 1)
    rows = torch.arange(size, dtype=torch.float32)[:, None] + 0.5
    cols = torch.arange(size, dtype=torch.float32)[None, :] + 0.5
    for b in torch.nonzero(on["occluder"]).flatten().tolist():
        o = d["occluder"][b]
        cy, cx = size * (0.2 + 0.6 * o[1]), size * (0.2 + 0.6 * o[2])
        ry, rx = size * (0.08 + 0.2 * o[3]), size * (0.08 + 0.2 * o[4])
        inside = ((rows - cy) / ry) ** 2 + ((cols - cx) / rx) ** 2 <= 1
        out[b][:, inside] = o[5:8, None]
    # a camera of lower resolution: shrink, compress there (as the photo was), enlarge
    small_side = torch.where(on["low_res"], (size * LOW_RES_MIN ** d["low_res"][:, 1]).round(),
                             torch.full((len(out),), float(size))).long().clamp(min=8)
    out = quantize(out)
    for b in torch.nonzero(on["low_res"] | on["jpeg"]).flatten().tolist():
        side = int(small_side[b])
        item = out[b:b + 1]
        if side < size:
            item = F.interpolate(item, size=(side, side), mode="bilinear", antialias=True,
                                 align_corners=False)
            item = quantize(item)
        if on["jpeg"][b]:
            item = jpeg(item[0], int(15 + 75 * float(d["jpeg"][b, 1])))[None]
        if side < size:
            item = F.interpolate(item, size=(size, size), mode="bilinear", align_corners=False)
        out[b] = item[0]
    out = quantize(out)
    return out.to(device)
