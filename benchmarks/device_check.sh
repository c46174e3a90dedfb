#!/usr/bin/env bash
# One short run on a CUDA machine (never needed by CI or the tests): the GPU tests, the upscaling
# benchmark with device="cuda", and training time per epoch on the GPU against this machine's CPU.
#
#   bash benchmarks/device_check.sh [OUTDIR]
#
# Needs xsr importable (pip install -e . or PYTHONPATH=.) and a CUDA build of torch.
set -uo pipefail
out=${1:-.}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi -L
python3 -c "import torch, xarray, dask, zarr; print('torch', torch.__version__, torch.cuda.get_device_name(), 'xarray', xarray.__version__, 'dask', dask.__version__, 'zarr', zarr.__version__)"
echo "== GPU tests"
timeout 150 python3 -m pytest -q -p no:cacheprovider -m gpu -rA tests 2>&1 | tee "$out/gpu_tests.log" | tail -15
echo "== upscaling on cuda (200 frames 256x256 -> 512x512)"
timeout 170 python3 benchmarks/upscale.py --device cuda --frames 200 --chunk 50 --repeat 2 2>&1 | tee "$out/upscale_cuda.log"
echo "== training time per epoch, xsrnet x2 (cuda vs cpu)"
timeout 90 python3 - <<'PY' 2>&1 | tee "$out/fit_cuda.log"
import time

import torch

import xsr
from xsr.train import fit

ds = xsr.data.shallow_water(nx=128, ny=128, frames=40, seed=3).compute()
for device in ("cuda", "cpu"):
    t0 = time.perf_counter()
    _, hist = fit("xsrnet", ds, variables=["h"], scale=2, epochs=3, patches_per_epoch=512,
                  batch_size=32, patch_size=32, device=device, progress=False, patience=None)
    dt = time.perf_counter() - t0
    print(f"{device}: {dt / 3:.2f} s/epoch (512 patches of 32x32, batch 32), "
          f"last val PSNR {float(hist['val_psnr'].isel(epoch=-1).mean()):.2f} dB, torch threads {torch.get_num_threads()}")
PY
echo "== the whole test suite on this machine"
timeout 150 python3 -m pytest -q -p no:cacheprovider -n 8 -m 'not slow' tests 2>&1 | tee "$out/all_tests.log" | tail -25
