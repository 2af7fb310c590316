"""Command line: ``python -m e2far_lite COMMAND`` (or ``e2far-lite COMMAND``).

Commands:
    render      write a grid of synthetic training samples as a PNG
    benchmark   the ablation table (``--mode quick|full|smoke``) or speed figures (``--speed``)
    train       train E2FARNet from a preset (``--config cpu-quick``), writing into ``--out``
    evaluate    a checkpoint, the mean shape and perfect-landmark fitting on the same test
                faces (``--checkpoint data/e2far_lite.pt --json figures.json``)
    reconstruct the face in a photo, as .obj/.ply (``photo.jpg -o face.obj --overlay o.png``)
    landmarks-nme  landmark NME on annotated real photos (``faces.xml``, dlib or iBUG .pts)

Each command checks its flags, then hands each file to the library once; the library checks
what it reads. A :class:`~e2far_lite.errors.BadInput` it raises names the library's argument
(``path``, ``init``, ``photo``, ...), which the command looks up in its table of flags
(:func:`_flags`) to end with one line: ``--checkpoint: expected X, got Y``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .errors import BadInput, MissingFile, NoFaceFound

#: Most samples ``render`` draws into one picture.
MAX_RENDER = 256
#: Most refining passes of ``reconstruct`` and ``landmarks-nme`` (each one more network run).
MAX_REFINE = 10


def _render(args: argparse.Namespace) -> None:
    from .devices import default_device
    from .io.atomic import write_figure
    from .model.morphable_model import MorphableModel
    from .synth.faces import DataConfig, SyntheticFaces
    from .ui.plots import image_grid

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise SystemExit(f"--out: expected a .png file name, got {out.name!r}")
    if args.n > MAX_RENDER:
        raise SystemExit(f"--n: expected at most {MAX_RENDER} samples for one picture, got "
                         f"{args.n}")
    _check_writable(out, "--out")
    device = default_device()
    model = MorphableModel.default().to(device)
    faces = SyntheticFaces(model, args.n, seed=args.seed,
                           config=DataConfig(image_size=args.size), device=device)
    batch = faces.batch(range(args.n))
    fig = image_grid(batch["image"].cpu(), batch["landmarks"].cpu(), batch["visible"].cpu(),
                     ncols=min(8, args.n))
    write_figure(fig, out, dpi=100)
    print(f"wrote {out}: {args.n} samples, seed {args.seed}, {args.size} px, on {device}")
    print("  green dots: the 68 landmarks where visible; red crosses: hidden behind the face")


#: Folders this command created for its outputs; removed again, if still empty, when it fails.
_CREATED: list[Path] = []


def _will_create(folder: Path) -> None:
    """Note the folders of ``folder``'s path that do not exist yet, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    _CREATED.extend(reversed(missing))


def _remove_created() -> None:
    for folder in reversed(_CREATED):
        try:
            folder.rmdir()  # only if empty
        except OSError:
            pass
    _CREATED.clear()


@contextmanager
def _flags(flags: Mapping[str, str]) -> Iterator[None]:
    """Within: a :class:`~e2far_lite.errors.BadInput` the library raises for one of the
    arguments in ``flags`` (the library's argument name -> the flag or positional that gave
    the value) ends the command with one line, ``FLAG: expected X, got Y``. Any other refusal
    is the command's own slip, not the user's: it goes on up as it is."""
    try:
        yield
    except BadInput as err:
        flag = flags.get(err.argument)
        if flag is None:
            raise
        raise SystemExit(f"{flag}: expected {err.expected}, got {err.received}") from None


def _check_folder(path: str | Path | None, flag: str) -> None:
    """Refuse a folder option that names an existing file."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise SystemExit(f"{flag}: expected a folder, got the file {path}")


def _device(text: str | None, flag: str = "--device", default: str | None = None):
    """The torch device named by ``--device`` (default: ``default``, else the best available),
    refused by name when this torch build or machine lacks it."""
    import torch

    from .devices import default_device

    text = text or default
    if text is None:
        return default_device()
    try:
        device = torch.device(text.strip().lower())
    except RuntimeError:
        device = None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": torch.backends.mps.is_available()}
    if device is None or device.type not in available:
        raise SystemExit(f"{flag}: expected cpu, cuda or mps, got {text!r}")
    if not available[device.type]:
        usable = ", ".join(k for k, v in available.items() if v)
        raise SystemExit(f"{flag}: expected a device this machine has ({usable}), got {text!r}")
    count = torch.cuda.device_count() if device.type == "cuda" else 1
    if device.index is not None and device.index >= count:
        raise SystemExit(f"{flag}: expected {device.type}:0 .. {device.type}:{count - 1} (this "
                         f"machine has {count}), got {text!r}")
    return device


def _check_writable(path: str | Path, flag: str) -> Path:
    """Refuse, before any work, an output path whose folder cannot take a new file."""
    import tempfile

    path = Path(path)
    if path.is_dir():
        raise SystemExit(f"{flag}: expected a file name, got the folder {path}")
    try:
        _will_create(path.parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".e2far-write-test-"):
            pass
    except (FileExistsError, NotADirectoryError):
        raise SystemExit(f"{flag}: cannot write {path}: a file stands where its folder should "
                         "be") from None
    except OSError as err:
        raise SystemExit(f"{flag}: cannot write {path}: {err.strerror or err}") from None
    return path


def _benchmark(args: argparse.Namespace) -> None:
    from .devices import describe

    device = _device(args.device)
    speed_only = [f"--{name}" for name in ("json", "size", "batch", "repeats")
                  if getattr(args, name) is not None]
    table_only = [f"--{name}" for name in ("mode", "out") if getattr(args, name) is not None]
    if args.speed and table_only:
        raise SystemExit(f"{', '.join(table_only)}: expected only without --speed (the speed "
                         "figures take --device, --size, --batch, --repeats and --json)")
    if not args.speed and speed_only:
        raise SystemExit(f"{', '.join(speed_only)}: expected only with --speed (the ablation "
                         "table takes --mode, --out and --device)")
    args.mode, args.out = args.mode or "quick", args.out or "runs/benchmark"
    if not args.speed:
        _check_folder(args.out, "--out")
    if args.json:
        _check_writable(args.json, "--json")
    if not args.speed:
        from .studies.ablation import run_ablation

        print(f"ablation benchmark, {args.mode} mode, on {describe(device)}")
        run_ablation(args.mode, args.out, device=device)
        print((Path(args.out) / "results.md").read_text())
        print(f"wrote {Path(args.out) / 'results.md'} and results.json")
        return
    from .evaluate.speed import format_report, speed_report

    report = speed_report(device, batch=args.batch, image_size=args.size, repeats=args.repeats,
                          echo=lambda line: print("  " + line, flush=True))
    print(format_report(report))
    if args.json:
        from .io.json_files import write_json

        print(f"wrote {write_json(args.json, report)}")


def _train(args: argparse.Namespace) -> None:
    import time

    from .devices import describe
    from .train.configs import PRESETS, get_config
    from .train.distributed import from_env
    from .train.loop import format_figures, train

    if args.steps is not None and args.steps <= 0:
        raise SystemExit(f"--steps: expected a positive integer, got {args.steps}")
    if args.config not in PRESETS:
        raise SystemExit(f"--config: expected one of {sorted(PRESETS)}, got {args.config!r}")
    overrides = {} if args.steps is None else {"steps": args.steps}
    if args.init is not None:
        overrides["init"] = args.init
    try:
        config = get_config(args.config, **overrides)
    except ValueError as err:
        raise SystemExit(f"--config: {err}") from None
    _check_folder(args.out, "--out")
    _check_folder(args.cache_dir, "--cache-dir")
    device = _device(args.device)
    # under torchrun rank 0 reports; the other processes train silently
    say = print if from_env().is_main else lambda *_args: None
    say(f"device: {describe(device)}")
    say(f"config {args.config!r}: {config.image_size} px, batch {config.batch_size}, "
          f"{config.steps} steps, widths {config.net.backbone.widths}; writing to {args.out}")
    start = time.perf_counter()
    _will_create(Path(args.out))
    with _flags({"init": "--init", "resume": "--resume"}):  # train reads both files, once
        result = train(config, args.out, device=device, resume=args.resume,
                       progress=not args.quiet, cache_dir=args.cache_dir)
    minutes = (time.perf_counter() - start) / 60
    say(f"done in {minutes:.1f} min; validation ({config.val_size} faces, seed "
          f"{config.val_seed}), step {result.history[-1]['step']}:")
    say("  " + format_figures(result.final, result.baseline))
    if from_env().is_main:
        from .ui.plots import plot_history

        curves = Path(args.out) / "loss_curves.png"
        plot_history(result.history, result.baseline, curves)
        say(f"  checkpoint {result.paths['last']}, log {result.paths['csv']}, curves {curves}")


def _evaluate(args: argparse.Namespace) -> None:
    import dataclasses
    import shlex

    from .devices import describe
    from .evaluate.scores import TEST_SEED, evaluate_net, format_result
    from .io.json_files import write_json
    from .paths import cache_dir
    from .synth.faces import DataConfig
    from .train.checkpoint import from_payload, read_checkpoint

    device = _device(args.device, default="cpu")
    _check_folder(args.cache_dir, "--cache-dir")
    if args.json:
        _check_writable(args.json, "--json")
    with _flags({"path": "--checkpoint"}):  # read once: the network and its step
        payload = read_checkpoint(args.checkpoint)
        net, model, config = from_payload(payload, device=device,
                                          name=Path(args.checkpoint).name)
    step = payload["step"]
    seed = TEST_SEED if args.seed is None else args.seed
    data = (DataConfig(image_size=config.image_size) if args.data == "full"
            else dataclasses.replace(config.data))
    print(f"device: {describe(device)}")
    print(f"checkpoint {args.checkpoint} (step {step}, {config.image_size} px); {args.n} "
          f"faces of seed {seed}, {args.data} distribution")
    result = evaluate_net(net, model, data, n=args.n, seed=seed, fit=not args.no_fit,
                          cache_dir=args.cache_dir or cache_dir())
    print(format_result(result))
    if args.json:
        result = {"checkpoint": str(args.checkpoint), "step": step, "data": args.data,
                  "command": "python -m e2far_lite evaluate " + shlex.join(args.argv), **result}
        try:
            write_json(args.json, result)
        except OSError as err:
            raise SystemExit(f"--json: cannot write {args.json}: {err.strerror or err}") from None
        print(f"wrote {args.json}")


def _load_for_photos(checkpoint: str | None):
    """(net, model, config) on the CPU from --checkpoint, default the shipped file."""
    from .paths import data_dir
    from .train.checkpoint import load_checkpoint
    from .train.shipped import SHIPPED_FILE

    path = Path(checkpoint) if checkpoint else data_dir() / SHIPPED_FILE
    with _flags({"path": "--checkpoint"}):
        try:
            return load_checkpoint(path, device="cpu")
        except MissingFile:
            if checkpoint is not None:
                raise
            raise SystemExit(f"--checkpoint: the shipped checkpoint {path} is missing; pass "
                             "--checkpoint PATH (e.g. runs/cpu-quick/last.pt from "
                             "`python -m e2far_lite train`)") from None


def _reconstruct(args: argparse.Namespace) -> None:
    import math

    from . import photo
    from .io.atomic import write_figure
    from .ui.photo_view import overlay_figure

    out = Path(args.out)
    if out.suffix.lower() not in (".obj", ".ply"):
        raise SystemExit(f"-o/--out: expected a file name ending in .obj or .ply, got {out.name!r}")
    if args.overlay and Path(args.overlay).suffix.lower() != ".png":
        raise SystemExit(f"--overlay: expected a .png file name, got {Path(args.overlay).name!r}")
    _check_writable(out, "-o/--out")
    if args.overlay:
        _check_writable(args.overlay, "--overlay")
    # the file is decoded once: the detector, the network, the colours and the overlay share it
    with _flags({"photo": "photo"}):
        image = photo.load_image(args.photo, argument="photo")
    name = Path(args.photo).name
    net, model, config = _load_for_photos(args.checkpoint)
    detector = args.detector  # resolved here, to name the one that found no face
    if args.box is None and detector == "auto":
        detector = photo.default_detector()
    try:
        with _flags({"boxes[0]": "--box", "detector": "--detector", "refine": "--refine"}):
            found = photo.reconstruct_faces(image, net, model, config,
                                            None if args.box is None else [tuple(args.box)],
                                            name=name, refine=args.refine, detector=detector)
    except NoFaceFound:
        raise SystemExit(f"no face found in {name} ({detector} detector); pass --box X Y W H "
                         "(pixels)") from None
    except ImportError as err:
        raise SystemExit(f"--detector: {detector!r} needs dlib ({err}); pip install "
                         "dlib-bin, or pass --detector cascade") from None
    if args.face is not None and not 0 <= args.face < len(found):
        raise SystemExit(f"--face: expected 0 .. {len(found) - 1} ({len(found)} faces found in "
                         f"{name}), got {args.face}")
    chosen = list(range(len(found))) if args.all else [args.face or 0]
    if len(found) > 1:
        listing = "; ".join(f"{i}: box ({x:.0f}, {y:.0f}, {w:.0f}, {h:.0f})"
                            for i, (x, y, w, h) in enumerate(face.box for face in found))
        print(f"found {len(found)} faces in {name}, largest first: {listing}")
        if not args.all:
            print(f"  reconstructing face {chosen[0]}; pass --face N for another, --all for all")
    faces = [found[i] for i in chosen]
    for i, face in zip(chosen, faces, strict=True):
        path = out.with_name(f"{out.stem}_{i}{out.suffix}") if args.all else out
        colors, shown = photo.vertex_colors(image, face, model) if args.colors else (None, None)
        photo.export_mesh(path, face, model, colors)
        yaw, pitch, roll = (math.degrees(float(a)) for a in face.pose[:3])
        coloured = ("" if shown is None else f"; colours from the photo on "
                    f"{100 * float(shown.float().mean()):.0f}% of vertices (the rest grey)")
        print(f"wrote {path}: face {i}, {model.num_vertices} vertices posed in photo pixels "
              f"(x right, y up = -row, z toward you); yaw {yaw:+.0f}°, pitch {pitch:+.0f}°, "
              f"roll {roll:+.0f}°{coloured}")
    if args.overlay:
        fig = overlay_figure(image, faces, model, title=name)
        write_figure(fig, args.overlay, dpi=120)
        print(f"wrote {args.overlay}: the shaded mesh over the photo; green dots: the 68 "
              "landmarks; yellow box: the detected face; dashed white box: the network's crop")


def _landmarks_nme(args: argparse.Namespace) -> None:
    from .photo.scores import format_nme_table, real_landmark_nme

    net, model, config = _load_for_photos(args.checkpoint)
    try:
        result = real_landmark_nme(args.annotations, net, model, config, use_box=args.box,
                                   oracle=not args.no_oracle, detector=args.detector,
                                   refine=args.refine)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(str(err)) from None
    except ImportError as err:
        raise SystemExit(f"--detector: {args.detector!r} needs dlib ({err}); pip install "
                         "dlib-bin, or pass --detector cascade") from None
    boxes = {"annotated": "annotated boxes", "landmarks": "landmarks' own boxes",
             "detected": f"boxes of the {args.detector} detector"}[args.box]
    refined = (f", then {args.refine} re-crop{'s' if args.refine > 1 else ''} around the "
               "predicted landmarks" if args.refine else ", one pass")
    print(f"checkpoint {args.checkpoint or 'data/e2far_lite.pt'}; crops from the {boxes}"
          f"{refined}")
    print(format_nme_table(result))


def _refine_option(parser: argparse.ArgumentParser) -> None:
    from .photo.reconstruction import REFINE

    def passes(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if not 0 <= value <= MAX_REFINE:
            raise argparse.ArgumentTypeError(f"expected a whole number of passes from 0 to "
                                             f"{MAX_REFINE}, got {text!r}")
        return value

    parser.add_argument("--refine", type=passes, default=REFINE,
                        help="passes after the first, each re-cropping the face around the "
                             "previous pass's landmarks, as training crops were framed; 0: one "
                             "pass from the face box")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` after every option whose help does not already say its default
    (options defaulting to None or False say what that means in their own words)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or any(action.default is v for v in (None, False,
                                                                   argparse.SUPPRESS)):
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    from .photo.detect import DETECTORS

    parser = argparse.ArgumentParser(
        prog="e2far_lite", formatter_class=_HelpFormatter,
        description="UH-E2FAR lite: 3D face reconstruction from one image (a tutorial "
                    "reproduction). Run `python -m e2far_lite COMMAND --help` for a command's "
                    "options.")
    sub = parser.add_subparsers(dest="command", required=True, title="commands",
                                metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)

    p = command("render", "write a grid of synthetic training samples as a PNG")
    p.add_argument("--n", type=int, default=16, help="number of samples")
    p.add_argument("--out", default="samples.png", help="output PNG")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the sampled faces, expressions, poses, lights and backgrounds "
                        "(the same seed gives the same samples)")
    p.add_argument("--size", type=int, default=128, help="image size in pixels")
    p.set_defaults(func=_render)

    p = command("benchmark", "the ablation table (--mode), or speed figures (--speed)")
    p.add_argument("--mode", choices=("smoke", "quick", "full"), default=None,
                   help="ablation size: quick fits a 2-core CPU in 30 min, full is for a GPU "
                        "(default: quick)")
    p.add_argument("--out", default=None,
                   help="folder for results.md/.json (default: runs/benchmark)")
    p.add_argument("--speed", action="store_true",
                   help="speed figures instead of the ablation table")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or mps (default: the best available: cuda, then mps, then "
                        "cpu)")
    p.add_argument("--batch", type=int, default=None,
                   help="--speed: rendering batch (default 64)")
    p.add_argument("--size", type=int, default=None,
                   help="--speed: rendering size in px (default 128)")
    p.add_argument("--repeats", type=int, default=None,
                   help="--speed: timed repeats per figure (default 10 on a GPU, 3 on a CPU)")
    p.add_argument("--json", default=None,
                   help="--speed: also write the figures to this file (default: none)")
    p.set_defaults(func=_benchmark)

    p = command("train", "train E2FARNet from a preset, writing checkpoints and logs to --out")
    p.add_argument("--config", default="cpu-quick",
                   help="preset: smoke, cpu-quick, cpu-full, cpu-real, cpu-night, cpu-2h, "
                        "default, gpu (default: cpu-quick)")
    p.add_argument("--out", default=None, help="output folder (default: runs/CONFIG)")
    p.add_argument("--steps", type=int, default=None,
                   help="override the preset's number of steps (default: the preset's)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or mps (default: the best available: cuda, then mps, then "
                        "cpu)")
    p.add_argument("--resume", default=None,
                   help="'auto' (OUT/last.pt if present) or a checkpoint path (default: start "
                        "afresh)")
    p.add_argument("--init", default=None,
                   help="start from this checkpoint's weights (its network must match the "
                        "preset's), e.g. data/e2far_lite.pt with --config cpu-real; the "
                        "optimizer and schedule start afresh (default: the preset's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--cache-dir", default=None,
                   help="where rendered splits are cached (default: data/cache)")
    p.set_defaults(func=_train)

    p = command("evaluate", "a checkpoint, the mean shape and perfect-landmark fitting, scored "
                            "on the same test faces")
    p.add_argument("--checkpoint", required=True, help="a .pt file from train (required)")
    p.add_argument("--n", type=int, default=256, help="test faces (default: 256)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the faces (default: the test split's, never trained on)")
    p.add_argument("--data", choices=("full", "train"), default="full",
                   help="full: the full distribution at the checkpoint's input size "
                        "(default); train: the distribution the checkpoint was trained on")
    p.add_argument("--json", default=None,
                   help="also write the figures to this JSON file (default: none)")
    p.add_argument("--no-fit", action="store_true",
                   help="skip the fitting baseline (about 40 ms per face)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or mps (default: cpu, where the recorded figures were "
                        "measured)")
    p.add_argument("--cache-dir", default=None,
                   help="where rendered splits are cached (default: data/cache)")
    p.set_defaults(func=_evaluate)

    p = command("reconstruct", "reconstruct the faces in a photo: .obj/.ply meshes, an overlay")
    p.add_argument("photo", help="a photo (JPEG, PNG, ...)")
    p.add_argument("-o", "--out", default="face.obj",
                   help="output mesh, .obj or .ply; vertices in photo pixels (x right, y up = "
                        "-row, z toward you), as its header says")
    p.add_argument("--checkpoint", default=None, help="default: data/e2far_lite.pt")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true",
                       help="every face found: OUT_0.obj, OUT_1.obj, ... (largest first)")
    which.add_argument("--face", type=int, default=None,
                       help="the N-th largest face found (default 0, the largest)")
    which.add_argument("--box", type=float, nargs=4, metavar=("X", "Y", "W", "H"), default=None,
                       help="the face box in pixels, tight around the face, instead of detecting")
    p.add_argument("--detector", choices=("auto", *DETECTORS), default="auto",
                   help="hog: dlib's HOG detector; cascade: scikit-image's LBP cascade; auto: "
                        "hog when dlib is installed (default: auto)")
    p.add_argument("--colors", action="store_true",
                   help="vertex colours sampled from the photo where it shows the vertex "
                        "(z-buffer test), grey elsewhere; .ply or .obj (v x y z r g b)")
    p.add_argument("--overlay", default=None,
                   help="also draw the shaded mesh (alpha blended) and the 68 landmarks over "
                        "the photo, as this PNG (default: none)")
    _refine_option(p)
    p.set_defaults(func=_reconstruct)

    p = command("landmarks-nme", "landmark NME on annotated real photos (dlib XML, iBUG .pts)")
    p.add_argument("annotations", help="a dlib XML file, a .pts file, or a folder of them")
    p.add_argument("--checkpoint", default=None, help="default: data/e2far_lite.pt")
    p.add_argument("--box", choices=("annotated", "landmarks", "detected"), default="annotated",
                   help="crop from the annotated box (default), the landmarks' own box, or the "
                        "box --detector finds for the face (faces it misses are left out)")
    p.add_argument("--detector", choices=("auto", *DETECTORS), default="auto",
                   help="--box detected: hog, cascade, or auto (hog when dlib is installed; "
                        "default: auto)")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the oracle row (the model fitted to the answers)")
    _refine_option(p)
    p.set_defaults(func=_landmarks_nme)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    _CREATED.clear()
    args = build_parser().parse_args(argv)
    args.argv = argv[1:] if argv else []
    if getattr(args, "command", None) == "train" and args.out is None:
        args.out = f"runs/{args.config}"
    for name in ("n", "size", "batch", "repeats"):
        value = getattr(args, name, None)
        if value is not None and value <= 0:
            raise SystemExit(f"--{name}: expected a positive integer, got {value}")
    from .checks import MAX_IMAGE_SIZE

    if getattr(args, "size", None) is not None and args.size > MAX_IMAGE_SIZE:
        raise SystemExit(f"--size: expected at most {MAX_IMAGE_SIZE} px, got {args.size}")
    try:
        args.func(args)
    except BaseException:
        _remove_created()  # nothing half-made is left: folders made for outputs go again
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
