"""The one device resolver of xsr (inference and training), and CUDA's full-float32 scope.

``device="auto"`` means one thing everywhere: CUDA when torch sees a GPU, else the CPU. Apple's
``"mps"`` is used only when asked for explicitly (and available).

This module imports torch only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["full_float32", "resolve_device"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device`, checking that it exists.

    ``"auto"`` is CUDA when torch sees a GPU, else the CPU. The environment variable
    ``XSR_DEVICE`` (e.g. ``XSR_DEVICE=cpu``), when set, is what ``"auto"`` means instead: a way
    to keep a whole run off a shared GPU without changing code. ``"mps"`` (Apple GPUs) is used
    only when named, never by ``"auto"``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, ...

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If a CUDA or MPS device is asked for where none exists, or the name is not a device.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    """
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto":
        override = os.environ.get("XSR_DEVICE", "").strip()
        if not override or override == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            return resolve_device(override)
        except ValueError as err:
            raise ValueError(
                f"the environment variable XSR_DEVICE={override!r} (what device='auto' means) is "
                f"not usable here: {err} Unset it or set it to 'cpu', 'cuda' or 'auto'."
            ) from err
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'."
            ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} asks for a GPU but torch sees none; use device='cpu' or 'auto'."
        )
    if dev.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={device!r} asks for Apple's MPS but torch has none here; use device='cpu' "
            "or 'auto'."
        )
    return dev


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


@contextlib.contextmanager
def full_float32(dev: torch.device) -> Iterator[None]:
    """On CUDA, convolutions in full float32 inside the block: cuDNN's default TF32 keeps 10
    mantissa bits.

    TF32 errors (about 1e-3 relative) are of the size of the super-resolution error itself, as
    for bfloat16, so the engine never uses them; its results then match the CPU's to float32
    rounding. The previous setting is restored on exit. Elsewhere this does nothing.

    Parameters
    ----------
    dev : torch.device
        The device the block runs on.

    Examples
    --------
    >>> import torch
    >>> with full_float32(torch.device("cpu")):
    ...     pass
    """
    if dev.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # torch >= 2.9
        old = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:  # pragma: no cover - older torch
        old = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old
