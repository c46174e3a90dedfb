"""Spectra and snapshots of the shallow-water generator's presets, for the docs.

Writes ``docs/img/shallow-water-spectra.png`` (isotropic spectra of kinetic energy, thickness
``h`` and tracer, turbulent preset against the smooth one, with the fitted kinetic-energy slope
between the forcing and dissipation scales) and ``docs/img/shallow-water-fields.png`` (vorticity
and tracer of one frame of each preset), and prints the measured figures quoted in
docs/explanation/shallow-water.md: spectral slopes, steadiness of the energy, rms displacement
per frame.

Usage::

    python scripts/plot_shallow_water_spectra.py --compile  # 256 x 256, a few minutes on 2 cores
    python scripts/plot_shallow_water_spectra.py --n 128 --frames 20 --out /tmp
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import xsr
from xsr.data.swe import isotropic_spectrum

#: Upper end of the kinetic-energy slope fit, as a fraction of the grid's highest wavenumber
#: ``n / 2``: below it hyperviscosity is weak (the same range as the test at 256 x 256).
FIT_TOP = 48 / 128


def spectra(ds) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Isotropic spectra (mean over frames) of kinetic energy, h and the tracer."""
    k, pu = isotropic_spectrum(ds["u"].values)
    _, pv = isotropic_spectrum(ds["v"].values)
    _, ph = isotropic_spectrum(ds["h"].values)
    _, pc = isotropic_spectrum(ds["tracer"].values)
    return {"kinetic energy": (k, 0.5 * (pu + pv)), "h": (k, ph), "tracer": (k, pc)}


def slope(k: np.ndarray, power: np.ndarray, lo: float, hi: float) -> float:
    keep = (k >= lo) & (k <= hi)
    return float(np.polyfit(np.log(k[keep]), np.log(power[keep]), 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="grid size (n x n)")
    parser.add_argument("--frames", type=int, default=40, help="frames per run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", default="docs/img")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    n = args.n

    runs = {}
    for preset in ("turbulent", "smooth"):
        t0 = time.perf_counter()
        runs[preset] = xsr.data.shallow_water(
            n, n, preset=preset, frames=args.frames, seed=args.seed, compile=args.compile
        )
        print(f"{preset}: {time.perf_counter() - t0:.0f} s")

    turb = runs["turbulent"]
    kf = float(turb.attrs["forcing_wavenumber"])
    lo, hi = 2 * kf, FIT_TOP * n / 2
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4), layout="constrained")
    measured = {}
    for preset, ds in runs.items():
        for ax, (name, (k, p)) in zip(axes, spectra(ds).items()):
            ax.loglog(k, p, label=preset, color="C0" if preset == "turbulent" else "C1")
            measured[preset, name] = slope(k, p, lo, hi)
    k = np.arange(1, n // 2 + 1, dtype=float)
    ke_turb = spectra(turb)["kinetic energy"][1]
    keep = (k >= lo) & (k <= hi)
    ref = ke_turb[keep][0] * (k[keep] / k[keep][0]) ** -3.0
    axes[0].loglog(k[keep], ref * 3, "k--", lw=1, label="$k^{-3}$")
    for ax, (name, _) in zip(axes, spectra(turb).items()):
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        ax.axvline(kf, color="0.5", lw=0.8, ls=":")
        ax.set_xlabel("wavenumber (cycles per domain)")
        ax.set_title(
            f"{name}: slope {measured['turbulent', name]:.2f} (turbulent), "
            f"{measured['smooth', name]:.2f} (smooth)",
            fontsize=9,
        )
        ax.legend(fontsize=8)
    axes[0].set_ylabel("power per wavenumber shell")
    fig.suptitle(
        f"xsr.data.shallow_water, {n} x {n}, mean over {args.frames} frames; grey band: fit range "
        f"k = {lo:g} to {hi:g}, dotted: forcing wavenumber",
        fontsize=10,
    )
    fig.savefig(out / "shallow-water-spectra.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(2, 2, figsize=(9, 8.4), layout="constrained")
    for row, (preset, ds) in enumerate(runs.items()):
        frame = ds.isel(time=-1)
        z = frame["vorticity"].values
        lim = float(np.abs(z).max())
        axes[row, 0].imshow(z, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row, 0].set_title(f"{preset}: vorticity", fontsize=10)
        axes[row, 1].imshow(frame["tracer"].values, origin="lower", cmap="viridis")
        axes[row, 1].set_title(f"{preset}: tracer", fontsize=10)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.savefig(out / "shallow-water-fields.png", dpi=80)
    plt.close(fig)

    print(f"fit range k = {lo:g} .. {hi:g} (forcing wavenumber {kf:g})")
    for (preset, name), value in measured.items():
        print(f"slope {preset:>9} {name:>15}: {value:6.2f}")
    for preset, ds in runs.items():
        ke = 0.5 * (ds["u"] ** 2 + ds["v"] ** 2).mean(("y", "x")).values
        half = len(ke) // 2
        drift = (ke[half:].mean() - ke[:half].mean()) / ke[:half].mean()
        disp = np.sqrt(2 * ke.mean()) * float(ds.attrs["interval"]) / float(ds.attrs["dx"])
        print(
            f"{preset:>9}: rms speed {np.sqrt(2 * ke.mean()):.2f} m/s, mean KE second half vs "
            f"first {100 * drift:+.1f} %, rms displacement per frame {disp:.2f} cells "
            f"(interval {float(ds.attrs['interval']):g} s, spin-up {ds.attrs['spin_up']:g} s)"
        )


if __name__ == "__main__":
    main()
