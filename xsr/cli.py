"""The ``xsr`` command line: ``simulate``, ``train``, ``upscale``, ``verify``, ``evaluate``,
``models``, ``demo``.

Each subcommand parses its arguments and calls one public function; no logic lives here.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xsr._version import __version__


def _open(path: str):
    """Open a NetCDF file, Zarr store, ``.mat`` or ``.y4m`` lazily (:func:`xsr.io.open_dataset`)."""
    from xsr.io import open_dataset

    return open_dataset(path)


_OUTPUT_SUFFIXES = (".zarr", ".nc", ".nc4", ".netcdf")


def _check_output(path: str, *, overwrite: bool) -> None:
    """Refuse an output path before any work: unknown suffix, or existing without overwrite."""
    p = Path(path)
    if p.suffix.lower() not in _OUTPUT_SUFFIXES:
        raise ValueError(
            f"output {path!r} must end in one of {', '.join(_OUTPUT_SUFFIXES)} "
            "(.zarr for a Zarr store, the others for NetCDF)"
        )
    if p.exists() and not overwrite:
        raise FileExistsError(f"output {path!r} exists; pass --overwrite to replace it")


def _write(ds, path: str, *, overwrite: bool = False) -> None:
    _check_output(path, overwrite=overwrite)
    p = Path(path)
    if p.suffix.lower() == ".zarr":
        ds.to_zarr(p, mode="w")
    else:
        ds.to_netcdf(p)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from xsr.data import shallow_water

    _check_output(args.output, overwrite=args.overwrite)
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
        from xsr.degradation import degrade
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
        site=args.site,
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


def _variables(items: Sequence[str] | None) -> list[str] | dict[str, str] | None:
    """``NAME ...`` as a list, ``NAME=MODEL_VARIABLE ...`` (or a mix) as a mapping."""
    if not items:
        return None
    if not any("=" in item for item in items):
        return list(items)
    mapping = {}
    for item in items:
        name, sep, target = item.partition("=")
        if not name or (sep and not target):
            raise ValueError(
                f"--variables item {item!r}: write NAME or NAME=MODEL_VARIABLE (e.g. uwnd=u)"
            )
        mapping[name] = target or name
    return mapping


def _chunks(items: Sequence[str] | None) -> dict[str, int] | None:
    """``DIM=N ...`` as a mapping of dask chunk sizes."""
    if not items:
        return None
    out = {}
    for item in items:
        dim, _, size = item.partition("=")
        try:
            n = int(size)
        except ValueError:
            n = 0
        if not dim or (n < 1 and n != -1):
            raise ValueError(
                f"--chunks item {item!r}: write DIM=N with N a positive integer or -1 "
                "(the whole dimension), e.g. --chunks lat=180 lon=360"
            )
        out[dim] = n
    return out


_PERIODIC = {"auto": None, "none": False, "x": "x", "y": "y", "both": ("y", "x")}


def _cmd_upscale(args: argparse.Namespace) -> int:
    from xsr.archive import upscale_file

    kwargs = {
        "conserve": args.conserve,
        "device": args.device,
        "precision": args.precision,
        "periodic": _PERIODIC[args.periodic],
    }
    if args.dims is not None:
        kwargs["dims"] = tuple(args.dims)
    if args.time_dim is not None:
        kwargs["time_dim"] = args.time_dim
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    upscale_file(
        args.input,
        args.output,
        model=args.model,
        scale=args.scale,
        overwrite=args.overwrite,
        variables=_variables(args.variables),
        region_size=args.region_size,
        chunks=_chunks(args.chunks),
        pack=args.pack,
        verify=args.verify,
        lock_timeout=args.lock_timeout,
        progress=not args.quiet,
        **kwargs,
    )
    print(f"xsr: {args.output} is complete")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from xsr.archive import verify_store

    report = verify_store(args.store, repair=args.repair)
    for line in report["messages"]:
        print(f"xsr verify: bad {line}")
    if report["ok"]:
        print(f"xsr verify: {args.store}: {report['checked']} complete regions, all intact")
        return 0
    n_bad = len(report["bad"])
    if args.repair:
        print(
            f"xsr verify: {n_bad} bad regions marked incomplete; run the same `xsr upscale` "
            "command again to recompute them"
        )
    else:
        print(
            f"xsr verify: {n_bad} of {report['checked']} regions are bad; recompute them with "
            "the same `xsr upscale` command plus --verify, or mark them with "
            "`xsr verify --repair STORE` and rerun that command"
        )
    return 1


def _cmd_models(args: argparse.Namespace) -> int:
    from xsr.models.pretrained import format_pretrained_table

    print(format_pretrained_table())
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from xsr.demo import run_demo

    run_demo(output_dir=args.output, quick=args.quick)
    return 0


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; a default the help does not state is added after it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" not in text
            and default is not None
            and default is not False
            and default is not argparse.SUPPRESS
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _subcommand(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=help_text, description=help_text, epilog=epilog, formatter_class=_Formatter
    )


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

    p = _subcommand(
        sub,
        "simulate",
        "run the built-in shallow-water generator",
        """examples:
  xsr simulate -o swe.zarr
  xsr simulate -o swe.nc --nx 256 --ny 256 --frames 500 --init bumps --seed 3
  xsr simulate -o ens.zarr --members 8 --dt 20 --overwrite""",
    )
    p.add_argument(
        "-o", "--output", required=True, help="output .zarr store or .nc file (e.g. swe.zarr)"
    )
    p.add_argument("--nx", type=int, default=128, help="grid points along x (e.g. --nx 256)")
    p.add_argument("--ny", type=int, default=128, help="grid points along y (e.g. --ny 256)")
    p.add_argument("--frames", type=int, default=100, help="frames written (e.g. --frames 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed (e.g. --seed 3)")
    p.add_argument(
        "--init",
        default="vortices",
        choices=["bumps", "vortices", "dam_break"],
        help="initial state (e.g. --init bumps)",
    )
    p.add_argument(
        "--members",
        type=int,
        default=None,
        help="ensemble size; adds a member dimension (e.g. --members 8; default: no ensemble)",
    )
    p.add_argument(
        "--dt",
        type=float,
        default=None,
        help="time step in s (e.g. --dt 20; default: from the CFL condition)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing output (e.g. --overwrite)"
    )
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

    p = _subcommand(
        sub,
        "train",
        "train a model on a NetCDF/Zarr dataset",
        """examples:
  xsr train swe.zarr --variables h --scale 2 -o models
  xsr train era5.nc --model fsrcnn --variables t2m --scale 4 --epochs 20 \\
      --init-from fsrcnn-natural-x4 --freeze features --keep-start -o models --name t2m-x4
  xsr train swe.zarr --variables h u v --scale 2 --checkpoint ckpt --resume -o models""",
    )
    p.add_argument("data", help="training NetCDF file or Zarr store (e.g. swe.zarr)")
    p.add_argument(
        "--model",
        default="fsrcnn",
        help="architecture or model file to fine-tune (e.g. --model srcnn)",
    )
    p.add_argument(
        "--variables",
        nargs="+",
        default=None,
        help="variables to learn (e.g. --variables h u v; default: every variable with the "
        "time and spatial dims)",
    )
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        help="upscaling factor (e.g. --scale 2); needed when --model is an architecture, "
        "taken from the model when it is a trained one",
    )
    p.add_argument(
        "--degrade",
        default="coarsen",
        choices=["coarsen", "bicubic"],
        help="how low-resolution inputs are made (e.g. --degrade bicubic)",
    )
    p.add_argument("--epochs", type=int, default=50, help="passes (e.g. --epochs 20)")
    p.add_argument("--batch-size", type=int, default=16, help="patches per step (e.g. 32)")
    p.add_argument("--patch-size", type=int, default=32, help="low-resolution patch side (e.g. 48)")
    p.add_argument(
        "--patches-per-epoch",
        type=int,
        default=None,
        help="patches drawn per epoch (e.g. 4000; default: all)",
    )
    p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (e.g. --lr 3e-4)")
    p.add_argument(
        "--loss",
        default="mse",
        choices=["mse", "mae", "psnr"],
        help="training loss; psnr: mean per-patch 10 log10(MSE) (e.g. --loss mae)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="pretrained name or model file to start from (e.g. fsrcnn-natural-x2; "
        "default: random weights)",
    )
    p.add_argument(
        "--freeze",
        nargs="*",
        default=None,
        help="layer names to keep fixed (e.g. --freeze features; default: none)",
    )
    p.add_argument(
        "--keep-start",
        action="store_true",
        help="keep the starting weights unless an epoch beats them on validation",
    )
    p.add_argument(
        "--site",
        action="store_true",
        help="field models: also learn this grid's site detail (its fixed sub-grid pattern); "
        "the model then upscales this grid only",
    )
    p.add_argument(
        "--checkpoint",
        default=None,
        help="folder for resumable checkpoints (e.g. --checkpoint ckpt; default: none)",
    )
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (e.g. --device cpu)")
    p.add_argument("--seed", type=int, default=0, help="random seed (e.g. --seed 1)")
    p.add_argument(
        "--name", default=None, help="model file name (e.g. --name h-x2; default: ARCH-xSCALE)"
    )
    p.add_argument("-o", "--output", required=True, help="output folder (e.g. -o models)")
    p.set_defaults(func=_cmd_train)

    p = _subcommand(
        sub,
        "upscale",
        "super-resolve a NetCDF/Zarr/.mat/.y4m archive into Zarr or NetCDF, resumably",
        """examples:
  xsr upscale era5.nc era5_x2.zarr --scale 2
  xsr upscale uwnd.nc uwnd_x4.nc --model xsrnet-swe-x4 --variables uwnd=u vwnd=v --pack
  xsr upscale run.zarr run_x2.zarr --scale 2 --dims lat lon --time-dim valid_time \\
      --periodic x --region-size 24 --chunks lat=360 lon=720
  xsr upscale run.nc run_x2.zarr --scale 2 --verify     # resume, rechecking finished regions
  xsr verify run_x2.zarr                                # check a finished store

Run the same command again after an interruption: only the missing regions are computed.
A finished output of the same job is left as it is (exit 0, nothing to do).""",
    )
    p.add_argument(
        "input", help="low-resolution NetCDF file, Zarr store, .mat or .y4m (e.g. era5.nc)"
    )
    p.add_argument(
        "output",
        help="output .zarr store (resumable) or .nc file (via a resumable temporary store)",
    )
    p.add_argument(
        "--model",
        default=None,
        help="shipped model name, model file, or 'bicubic' (e.g. --model xsrnet-swe-x2; "
        "default: the best shipped model for --scale; see `xsr models`)",
    )
    p.add_argument(
        "--scale",
        type=int,
        default=None,
        help="upscaling factor; picks the best shipped model without --model (e.g. --scale 2)",
    )
    p.add_argument(
        "--variables",
        nargs="+",
        default=None,
        metavar="NAME[=MODEL_VARIABLE]",
        help="data variables to upscale, optionally mapped to the model's variable names "
        "(e.g. --variables uwnd=u vwnd=v; default: all the model can serve)",
    )
    p.add_argument(
        "--dims",
        nargs=2,
        default=None,
        metavar=("Y", "X"),
        help="the two spatial dimensions (e.g. --dims lat lon; default: found by name or CF axis)",
    )
    p.add_argument(
        "--time-dim",
        default=None,
        help="time dimension; regions are cut along it (e.g. --time-dim valid_time; default: "
        "'time' or the dimension with CF axis T)",
    )
    p.add_argument(
        "--periodic",
        default="auto",
        choices=sorted(_PERIODIC),
        help="wrap around the x and/or y axis (e.g. --periodic x for a global longitude); auto "
        "reads a coordinate's 'period' attribute or a global longitude",
    )
    p.add_argument(
        "--region-size",
        type=int,
        default=None,
        help="time steps per region (= output chunk along time; e.g. --region-size 24; "
        "default: the input's time chunk, capped at about 64 MiB of output)",
    )
    p.add_argument(
        "--chunks",
        nargs="+",
        default=None,
        metavar="DIM=N",
        help="dask chunks for reading the input, -1 for a whole dimension (e.g. --chunks "
        "lat=360 lon=-1; default: the file's own chunks)",
    )
    p.add_argument(
        "--conserve",
        action="store_true",
        help="enforce coarsen(output) == input to float precision (e.g. --conserve)",
    )
    p.add_argument(
        "--pack",
        action="store_true",
        help="store int16 with scale_factor/add_offset (about half the size; lossy, steps of "
        "1/43690 of the data range; e.g. --pack)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="when resuming, check finished regions against their checksums and recompute bad "
        "ones (e.g. --verify)",
    )
    p.add_argument(
        "--device",
        default="auto",
        help="cpu, cuda or auto (a GPU where one exists; e.g. --device cpu)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="frames per forward pass (e.g. --batch-size 8; default: chosen from memory)",
    )
    p.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "bfloat16"],
        help="bfloat16: can be faster, errors about 1e-3 of the data range (previews; "
        "e.g. --precision bfloat16)",
    )
    p.add_argument(
        "--lock-timeout",
        type=float,
        default=10.0,
        help="seconds to wait when another process writes the same output (e.g. --lock-timeout 60)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars (e.g. --quiet)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing output of another job, or recompute a finished one "
        "(e.g. --overwrite)",
    )
    p.set_defaults(func=_cmd_upscale)

    p = _subcommand(
        sub,
        "verify",
        "check a store written by `xsr upscale` against its region checksums",
        """examples:
  xsr verify run_x2.zarr             # exit 0: intact; exit 1: bad regions named
  xsr verify run_x2.zarr --repair    # mark bad regions; rerun the upscale command""",
    )
    p.add_argument("store", help="a .zarr store written by xsr upscale (e.g. run_x2.zarr)")
    p.add_argument(
        "--repair",
        action="store_true",
        help="mark bad regions incomplete so that rerunning the same `xsr upscale` command "
        "recomputes exactly them (e.g. --repair)",
    )
    p.set_defaults(func=_cmd_verify)

    p = _subcommand(sub, "models", "list the shipped pretrained models", "examples:\n  xsr models")
    p.set_defaults(func=_cmd_models)

    p = _subcommand(
        sub,
        "demo",
        "the main job on built-in data",
        "examples:\n  xsr demo\n  xsr demo -o demo-out --quick",
    )
    p.add_argument(
        "-o", "--output", default="xsr-demo-output", help="output folder (e.g. -o demo-out)"
    )
    p.add_argument("--quick", action="store_true", help="smaller sizes for smoke tests (--quick)")
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
    previous = signal.getsignal(signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    # The archive's progress lines (new store, resuming, nothing to do) for the person waiting.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"xsr {args.command}: %(message)s"))
    archive_log = logging.getLogger("xsr.archive")
    archive_log.addHandler(handler)
    level = archive_log.level
    archive_log.setLevel(logging.INFO)
    try:
        return int(args.func(args))
    except _Terminated:
        print(f"xsr {args.command}: {_STOPPED}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"xsr {args.command}: {_STOPPED}", file=sys.stderr)
        return 128 + signal.SIGINT
    except (ValueError, OSError, KeyError) as err:
        print(f"xsr {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        archive_log.removeHandler(handler)
        archive_log.setLevel(level)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that locks are released and files closed."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated


_STOPPED = (
    "interrupted; nothing finished was lost: run the same command again to resume "
    "(finished regions are kept)"
)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
