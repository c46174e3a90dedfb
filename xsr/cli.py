"""The ``xsr`` command line: ``simulate``, ``train``, ``upscale``, ``evaluate``, ``models``, ``demo``.

Each subcommand parses its arguments and calls one public function; no logic lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from xsr._version import __version__


def _open(path: str):
    """Open a NetCDF file, Zarr store, ``.mat`` or ``.y4m`` lazily (:func:`xsr.io.open_dataset`)."""
    from xsr.io import open_dataset

    return open_dataset(path)


def _write(ds, path: str, *, overwrite: bool = False) -> None:
    p = Path(path)
    if p.exists() and not overwrite:
        raise SystemExit(f"xsr: output {path!r} exists; pass --overwrite to replace it")
    if p.suffix == ".zarr":
        ds.to_zarr(p, mode="w")
    elif p.suffix in (".nc", ".nc4", ".netcdf"):
        ds.to_netcdf(p)
    else:
        raise SystemExit(f"xsr: output {path!r} must end in .zarr or .nc")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from xsr.data import shallow_water

    kwargs = {"frames": args.frames, "seed": args.seed, "init": args.init, "progress": True}
    if args.dt is not None:
        kwargs["dt"] = args.dt
    if args.members is not None:
        kwargs["members"] = args.members
    ds = shallow_water(args.nx, args.ny, **kwargs)
    _write(ds, args.output, overwrite=args.overwrite)
    print(f"xsr: wrote {args.output} ({', '.join(f'{k}={v}' for k, v in ds.sizes.items())})")
    return 0


def _evaluate_periodic(value: str):
    """The ``--periodic`` choice as :func:`xsr.metrics.score` takes it."""
    return {"auto": None, "none": False, "x": "x", "y": "y", "xy": ("y", "x")}[value]


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from xsr.metrics import format_table, score

    truth = _open(args.truth)
    if args.variables:
        truth = truth[args.variables]
    candidates = {}
    for path in args.predictions:
        pred = _open(path)
        candidates[Path(path).stem] = pred[args.variables] if args.variables else pred
    periodic = _evaluate_periodic(args.periodic)
    if args.baselines is not None or args.linear is not None:
        from xsr.degrade import degrade
        from xsr.evaluation import baselines

        scale = args.baselines
        if scale is None:
            from xsr.models.files import load_model

            scale = load_model(args.linear).scale
        low = degrade(truth, scale=scale, method=args.degrade)
        rows = baselines(low, scale=scale, linear=args.linear, periodic=periodic)
        candidates = {**rows, **candidates}
    table = score(
        candidates,
        truth,
        time_dim=args.time_dim,
        data_range=args.data_range,
        periodic=periodic,
        crop=args.crop,
        exclude_spin_up=not args.include_spin_up,
    )
    print(format_table(table))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from xsr.models.files import save_model
    from xsr.train import fit

    data = _open(args.data)
    model, history = fit(
        args.model,
        data,
        variables=args.variables,
        scale=args.scale,
        degrade=args.degrade,
        epochs=args.epochs,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        patches_per_epoch=args.patches_per_epoch,
        lr=args.lr,
        loss=args.loss,
        init_from=args.init_from,
        freeze=tuple(args.freeze or ()),
        keep_start=args.keep_start,
        checkpoint=args.checkpoint,
        resume=args.resume,
        device=args.device,
        seed=args.seed,
    )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or f"{model.arch}-x{model.scale}"
    path = save_model(model, out / name)
    history.to_netcdf(out / f"{name}-history.nc")
    print(f"xsr: model written to {path} (card {Path(path).with_suffix('.json')})")
    return 0


def _cmd_upscale(args: argparse.Namespace) -> int:
    from xsr.archive import upscale_file

    upscale_file(
        args.input,
        args.output,
        model=args.model,
        scale=args.scale,
        overwrite=args.overwrite,
        conserve=args.conserve,
        device=args.device,
        variables=args.variables,
        precision=args.precision,
    )
    print(f"xsr: wrote {args.output}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from xsr.models.pretrained import format_pretrained_table

    print(format_pretrained_table())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from xsr.demo import run_demo

    run_demo(output_dir=args.output, quick=args.quick)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the ``xsr`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser with one subparser per command.

    Examples
    --------
    >>> parser = build_parser()
    >>> parser.parse_args(["simulate", "-o", "run.zarr"]).nx
    128
    """
    parser = argparse.ArgumentParser(
        prog="xsr", description="Deep-learning super-resolution of scientific movies."
    )
    parser.add_argument("--version", action="version", version=f"xsr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="run the built-in shallow-water generator")
    p.add_argument("-o", "--output", required=True, help="output .zarr or .nc")
    p.add_argument("--nx", type=int, default=128)
    p.add_argument("--ny", type=int, default=128)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="vortices", help="bumps, vortices or dam_break")
    p.add_argument("--members", type=int, default=None, help="ensemble size (adds a member dim)")
    p.add_argument("--dt", type=float, default=None, help="time step in s (default: from CFL)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "evaluate",
        help="score PREDICTION(s) against TRUTH with the evaluation protocol",
        description="Pooled-MSE PSNR (primary), mean per-frame PSNR, SSIM, MAE and the "
        "spectral score per variable; frames before the truth's spin_up_end are left out. "
        "See docs/explanation/metrics.md.",
    )
    p.add_argument("predictions", nargs="+", metavar="PREDICTION")
    p.add_argument("truth", metavar="TRUTH")
    p.add_argument("--variables", nargs="+", default=None)
    p.add_argument(
        "--data-range",
        type=float,
        default=None,
        help="PSNR/SSIM data range (default: the truth's max - min per variable)",
    )
    p.add_argument(
        "--periodic",
        choices=["auto", "none", "x", "y", "xy"],
        default="auto",
        help="periodic dims (default: read from the truth's 'period' attributes)",
    )
    p.add_argument(
        "--crop", type=int, default=0, help="cells left out at each edge of non-periodic dims"
    )
    p.add_argument(
        "--include-spin-up",
        action="store_true",
        help="score the frames before the truth's spin_up_end too",
    )
    p.add_argument("--time-dim", default="time")
    p.add_argument(
        "--baselines",
        type=int,
        default=None,
        metavar="SCALE",
        help="add bicubic and bicubic+conserve rows from the truth degraded by SCALE",
    )
    p.add_argument(
        "--linear",
        default=None,
        metavar="MODEL",
        help="add a 'linear' row from this fitted linear baseline file",
    )
    p.add_argument(
        "--degrade",
        choices=["coarsen", "bicubic"],
        default="coarsen",
        help="degradation making the baselines' input (default: coarsen)",
    )
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("train", help="train a model on a NetCDF/Zarr dataset")
    p.add_argument("data")
    p.add_argument("--model", default="fsrcnn", help="architecture or model file to fine-tune")
    p.add_argument("--variables", nargs="+", required=True)
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--degrade", default="coarsen", choices=["coarsen", "bicubic"])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--patch-size", type=int, default=32)
    p.add_argument(
        "--patches-per-epoch", type=int, default=None, help="patches drawn per epoch (default all)"
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    p.add_argument(
        "--loss",
        default="mse",
        choices=["mse", "mae", "psnr"],
        help="training loss; psnr: mean per-patch 10 log10(MSE)",
    )
    p.add_argument("--init-from", default=None, help="pretrained name or model file")
    p.add_argument("--freeze", nargs="*", default=None, help="layer names to keep fixed")
    p.add_argument(
        "--keep-start",
        action="store_true",
        help="keep the starting weights unless an epoch beats them on validation",
    )
    p.add_argument("--checkpoint", default=None, help="folder for resumable checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default=None, help="model file name (default ARCH-xSCALE)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("upscale", help="super-resolve a NetCDF/Zarr archive, resumably")
    p.add_argument("input")
    p.add_argument("output", help="output .zarr (resumable) or .nc")
    p.add_argument("--model", default=None, help="shipped model name or model file")
    p.add_argument("--scale", type=int, default=None, help="pick the best shipped model")
    p.add_argument("--variables", nargs="+", default=None)
    p.add_argument("--conserve", action="store_true", help="enforce coarsen(output) == input")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16"],
        help="bfloat16: can be faster, errors about 1e-3 of the data range (previews)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_upscale)

    p = sub.add_parser("models", help="list the shipped pretrained models")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser("demo", help="the main job on built-in data")
    p.add_argument("-o", "--output", default="xsr-demo-output")
    p.add_argument("--quick", action="store_true", help="smaller sizes (for smoke tests)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xsr`` console script.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    xsr 0.1.0
    """
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"xsr {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
