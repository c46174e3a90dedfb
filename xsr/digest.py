"""The one digest helper: sha256 of files, bytes, text, arrays and JSON-able values.

Every hash xsr records (model files and cards, archive inputs, regions and job records) is
computed here, so that two parts of the library never disagree on what a digest covers. The module
imports only the standard library and numpy, so every layer may use it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["canonical_json", "sha256_array", "sha256_bytes", "sha256_file", "sha256_json"]

_BLOCK = 1 << 20


def sha256_bytes(data: bytes | str) -> str:
    """sha256 hex digest of bytes (text is encoded as UTF-8).

    Parameters
    ----------
    data : bytes or str
        What to hash.

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> sha256_bytes(b"")[:12]
    'e3b0c44298fc'
    >>> sha256_bytes("") == sha256_bytes(b"")
    True
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 hex digest of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : str or path-like
        File to hash.

    Returns
    -------
    str
        64 lower-case hex digits.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = f.write_bytes(b"")
    >>> sha256_file(f) == sha256_bytes(b"")
    True
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_array(values: Any) -> str:
    """sha256 hex digest of an array's dtype, shape and values.

    Arrays of text or objects are hashed through ``str`` of each element.

    Parameters
    ----------
    values : array_like
        Array to hash.

    Returns
    -------
    str
        64 lower-case hex digits; equal arrays of equal dtype and shape hash equal.

    Examples
    --------
    >>> sha256_array(np.arange(3)) == sha256_array(np.arange(3))
    True
    >>> sha256_array(np.arange(3)) == sha256_array(np.arange(3.0))
    False
    """
    arr = np.asarray(values)
    digest = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    if arr.dtype.kind in "OUS":
        digest.update("\x1f".join(map(str, arr.ravel().tolist())).encode("utf-8"))
    else:
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON types, deterministically (mapping keys sorted, non-finite floats as text)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def canonical_json(value: Any) -> str:
    """JSON text with sorted keys and no spaces: one spelling per value.

    numpy scalars and arrays become numbers and lists, paths text, non-finite floats their
    ``repr``, other objects their ``repr``.

    Parameters
    ----------
    value : Any
        A JSON-able structure.

    Returns
    -------
    str
        The canonical text.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [np.float32(0.5)]})
    '{"a":[0.5],"b":1}'
    """
    return json.dumps(_jsonable(value), sort_keys=True, separators=(",", ":"))


def sha256_json(value: Any) -> str:
    """sha256 hex digest of :func:`canonical_json` of ``value``.

    Parameters
    ----------
    value : Any
        A JSON-able structure (a model card, a job record).

    Returns
    -------
    str
        64 lower-case hex digits, independent of key order.

    Examples
    --------
    >>> sha256_json({"a": 1, "b": 2}) == sha256_json({"b": 2, "a": 1})
    True
    """
    return sha256_bytes(canonical_json(value))
