"""Command line: ``python -m e2far_lite COMMAND`` (or ``e2far-lite COMMAND``).

Commands:
    render      write a grid of synthetic training samples as a PNG
    benchmark   measured speed figures (``--speed``)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _render(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .data import DataConfig, SyntheticFaces
    from .devices import default_device
    from .morphable_model import MorphableModel
    from .viz import image_grid

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise SystemExit(f"--out: expected a .png file name, got {out.name!r}")
    device = default_device()
    model = MorphableModel.default().to(device)
    faces = SyntheticFaces(model, args.n, seed=args.seed,
                           config=DataConfig(image_size=args.size), device=device)
    batch = faces.batch(range(args.n))
    fig = image_grid(batch["image"].cpu(), batch["landmarks"].cpu(), batch["visible"].cpu(),
                     ncols=min(8, args.n))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"wrote {out}: {args.n} samples, seed {args.seed}, {args.size} px, on {device}")


def _benchmark(args: argparse.Namespace) -> None:
    import torch

    from .devices import default_device, describe
    from .morphable_model import MorphableModel
    from .speed import render_throughput

    device = torch.device(args.device) if args.device else default_device()
    print(f"device: {describe(device)}")
    model = MorphableModel.default()
    figures = render_throughput(model, device, batch=args.batch, image_size=args.size,
                                repeats=args.repeats)
    print(f"rendering at {args.size} px, batch {args.batch} (median of {args.repeats}):")
    print(f"  renderer alone (rasterize + shade): {figures['render_per_s']:8.1f} images/s")
    print(f"  full samples (draw + render + background + augment): "
          f"{figures['samples_per_s']:8.1f} images/s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e2far_lite", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("render", help="write a grid of synthetic samples")
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--out", default="samples.png", help="output PNG")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="image size in pixels")
    p.set_defaults(func=_render)

    p = sub.add_parser("benchmark", help="measured speed figures")
    p.add_argument("--speed", action="store_true", help="speed figures (default)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    p.set_defaults(func=_benchmark)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    for name in ("n", "size", "batch", "repeats"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise SystemExit(f"--{name}: expected a positive integer, got {value}")
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
