"""Answer checks for the notebooks' exercises.

Each exercise has a name; :func:`check` compares a student's answer with the value the package
computes (never a hard-coded number), prints a verdict and returns True or False.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .model.morphable_model import MorphableModel


def _broadest_blendshape() -> frozenset[str]:
    m = MorphableModel.default()
    moved = (m.blendshapes.norm(dim=-1) > 1.0).sum(1)  # vertices each moves by over 1 mm
    # mirror pairs (mouthLeft, mouthRight) move as many vertices: either is right
    return frozenset(name for name, n in zip(m.blendshape_names, moved.tolist(), strict=True)
                     if n == int(moved.max()))


def _num_vertices() -> int:
    return MorphableModel.default().num_vertices


def _hidden_share() -> float:
    from .synth.faces import SyntheticFaces

    batch = SyntheticFaces(MorphableModel.default(), 64, seed=0).batch(range(64))
    return float(1 - batch["visible"].float().mean())


def _unit_identity_error() -> float:
    from .train.losses import MultiTaskLoss

    m = MorphableModel.default()
    return float(MultiTaskLoss(m).gram_id[0, 0] / m.num_vertices)


def _most_improved_region() -> str:
    from .evaluate.scores import held_out_faces, predict
    from .model.metrics import shape_errors
    from .model.regions import REGION_NAMES, vertex_regions
    from .paths import is_smoke
    from .synth.faces import DataConfig
    from .train.shipped import pretrained

    net, model, _, _ = pretrained()
    split = held_out_faces(model, DataConfig(image_size=net.config.image_size),
                           16 if is_smoke() else 256)
    pred = predict(net, split["image"])
    mean = {**pred, "a_id": torch.zeros_like(pred["a_id"]),
            "a_exp": torch.zeros_like(pred["a_exp"])}
    labels = vertex_regions(model)
    errors, baseline = (shape_errors(model, p, split, labels) for p in (pred, mean))
    ratios = [float(errors[f"region/{r}"].nanmean() / baseline[f"region/{r}"].nanmean())
              for r in REGION_NAMES]
    return REGION_NAMES[min(range(len(ratios)), key=ratios.__getitem__)]


SOLUTIONS: dict[str, tuple[Callable[[], object], str]] = {
    "00_num_vertices": (_num_vertices,
                        "the model has a property for it; model.mean holds one row per vertex"),
    "01_broadest_blendshape": (_broadest_blendshape,
                               "count, for each blend shape, the vertices whose displacement "
                               "norm is over 1 mm, and take the blend shape with the most"),
    "05_unit_identity_error": (_unit_identity_error,
                               "one std of component 0 moves the shape by id_std[0] mm in "
                               "total; the loss averages the squared distance over V vertices"),
    "06_most_improved_region": (_most_improved_region,
                                "score the mean shape too (a_id and a_exp all zero) with "
                                "shape_errors, then divide the network's mean "
                                "errors['region/<name>'] by the mean shape's for each name in "
                                "REGION_NAMES and take the smallest ratio"),
    "02_hidden_share": (_hidden_share,
                        "render the 64 samples in one faces.batch(...) call and average "
                        "the 'visible' flags"),
}


def register(name: str, solution: Callable[[], object], hint: str) -> None:
    """Add an exercise (later chapters register theirs)."""
    SOLUTIONS[name] = (solution, hint)


def check(name: str, answer: object, tolerance: float = 1e-4) -> bool:
    """Print whether ``answer`` solves exercise ``name``; ``None`` means not tried yet.

    A number may come as a Python number, a numpy scalar or a one-element tensor. A count must
    be exact; a float answer is right within ``tolerance`` (relative, or absolute below 1):
    float32 sums in another order differ in the sixth digit.
    """
    if name not in SOLUTIONS:
        raise ValueError(f"name: expected one of {sorted(SOLUTIONS)}, got {name!r}")
    solution, hint = SOLUTIONS[name]
    if answer is None:
        print(f"Not answered yet. Hint: {hint}.")
        return False
    expected = solution()
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        value = _number(answer)
        if isinstance(expected, int):  # counts are exact
            ok = value is not None and value == expected
        else:
            ok = value is not None and abs(value - expected) <= tolerance * max(1.0,
                                                                                abs(expected))
    elif isinstance(expected, frozenset):  # several equally right answers
        ok = isinstance(answer, str) and answer in expected
    elif isinstance(expected, str):
        ok = isinstance(answer, str) and answer == expected
    else:
        ok = answer == expected
    print("Correct!" if ok else f"Not quite ({answer!r}). Hint: {hint}.")
    return bool(ok)


def _number(answer: object) -> float | None:
    """``answer`` as a float if it is one number: a Python, numpy or one-element tensor or
    array number; not a bool, a string or bytes."""
    if isinstance(answer, torch.Tensor):
        if answer.numel() != 1 or answer.dtype == torch.bool or answer.is_complex():
            return None
        return float(answer.reshape(()))
    if isinstance(answer, (np.ndarray, np.generic)):
        array = np.asarray(answer)
        if array.size != 1 or array.dtype.kind not in "iuf":
            return None
        return float(array.reshape(()))
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return float(answer)
    return None


def _most_spatial_expression_layer() -> str:
    from .analysis.probes import linear_probes
    from .analysis.stability import probe_batch
    from .train.shipped import pretrained

    net, model, config, _ = pretrained()
    faces = probe_batch(net, model, config.data)
    laid_out, pooled = (linear_probes(net, faces, model, grid=grid) for grid in (2, 1))
    drops = {layer: laid_out[layer]["expression"] - pooled[layer]["expression"]
             for layer in laid_out}
    return max(drops, key=drops.__getitem__)


register("07_most_spatial_layer", _most_spatial_expression_layer,
         "run linear_probes(net, faces, model, grid=1) beside the grid=2 probes of section 5, "
         "subtract each layer's 'expression' R² and take the layer with the largest drop")


def _astronaut_boxes_at_24px() -> int:
    import skimage.data

    from .photo.detect import detect_faces

    return len(detect_faces(skimage.data.astronaut(), min_size=24))


register("08_astronaut_boxes", _astronaut_boxes_at_24px,
         "call detect_faces(skimage.data.astronaut(), min_size=24) and count the boxes")
