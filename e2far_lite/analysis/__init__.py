"""Looking inside (notebooks 05-07): attribution, probes, feature maps, the recipe study and
learning curves."""

from .ablation import ABLATION_MODES, coefficient_errors, tap_ablation, vertex_errors
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
from .stability import layer_answers, probe_batch, same_answers
from .study import (
    LEVERS,
    PLANS,
    Lever,
    StudyPlan,
    claims,
    lever_config,
    merge_studies,
    run_study,
    summary,
    verdict,
)
from .targets import TARGETS, target_function

__all__ = [
    "ABLATION_MODES",
    "GOALS",
    "IntegratedGradients",
    "LEVERS",
    "Lever",
    "LogLinearFit",
    "METHODS",
    "PLANS",
    "RIDGES",
    "StudyPlan",
    "TARGETS",
    "attribution_depth",
    "best_layer",
    "block_costs",
    "claims",
    "coefficient_errors",
    "evaluating",
    "faces_for_goals",
    "fit_log_linear",
    "fusion_steps",
    "gradient_footprint",
    "integrated_gradients",
    "layer_answers",
    "layer_attribution",
    "lever_config",
    "linear_probes",
    "per_sample_attribution",
    "pooled_features",
    "probe_batch",
    "probe_r2",
    "receptive_fields",
    "merge_studies",
    "run_study",
    "same_answers",
    "summary",
    "tap_ablation",
    "tap_attribution",
    "target_function",
    "top_channels",
    "verdict",
    "vertex_errors",
]
