"""Evaluation (notebook 06): held-out scores, landmark fitting, speed."""

from .fitting import FitConfig, estimate_pose, fit_landmarks
from .scores import (
    METHODS,
    PIXEL_BINS,
    TEST_SEED,
    evaluate_net,
    expression_pixels,
    format_result,
    held_out_faces,
    predict,
    ratios,
)
from .speed import (
    format_report,
    inference_latency,
    matmul_peak,
    render_throughput,
    speed_report,
    tf32_matmul_peak,
    time_call,
    train_throughput,
)

__all__ = [
    "FitConfig",
    "METHODS",
    "PIXEL_BINS",
    "TEST_SEED",
    "estimate_pose",
    "evaluate_net",
    "expression_pixels",
    "fit_landmarks",
    "format_report",
    "format_result",
    "held_out_faces",
    "inference_latency",
    "matmul_peak",
    "predict",
    "ratios",
    "render_throughput",
    "speed_report",
    "tf32_matmul_peak",
    "time_call",
    "train_throughput",
]
