"""Looking inside a trained network (notebooks 05-07): attribution, probes, feature maps, tap
silencing and learning curves."""

from .attribution import (
    METHODS,
    IntegratedGradients,
    attribution_depth,
    integrated_gradients,
    layer_attribution,
    per_sample_attribution,
    tap_attribution,
)
from .curves import GOALS, LogLinearFit, faces_for_goals, fit_log_linear
from .feature_maps import (
    block_costs,
    fusion_steps,
    gradient_footprint,
    receptive_fields,
    top_channels,
)
from .inputs import evaluating
from .probes import RIDGES, best_layer, linear_probes, pooled_features, probe_r2
from .silencing import SILENCING_MODES, coefficient_errors, silence_taps, vertex_errors
from .stability import layer_answers, probe_batch, same_answers
from .targets import TARGETS, target_function

__all__ = [
    "GOALS",
    "IntegratedGradients",
    "LogLinearFit",
    "METHODS",
    "RIDGES",
    "SILENCING_MODES",
    "TARGETS",
    "attribution_depth",
    "best_layer",
    "block_costs",
    "coefficient_errors",
    "evaluating",
    "faces_for_goals",
    "fit_log_linear",
    "fusion_steps",
    "gradient_footprint",
    "integrated_gradients",
    "layer_answers",
    "layer_attribution",
    "linear_probes",
    "per_sample_attribution",
    "pooled_features",
    "probe_batch",
    "probe_r2",
    "receptive_fields",
    "same_answers",
    "silence_taps",
    "tap_attribution",
    "target_function",
    "top_channels",
    "vertex_errors",
]
