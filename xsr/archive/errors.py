"""Errors raised by :mod:`xsr.archive`."""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "CorruptStoreError",
    "InputChangedError",
    "JobMismatchError",
    "ReadOnlyStoreError",
    "StoreExistsError",
    "StoreLockedError",
]

#: The way out of an existing store, as said in messages.
OVERWRITE_HINT = "pass overwrite=True (--overwrite on the command line)"


class ArchiveError(ValueError):
    """An output store cannot be written as asked (base class of the errors of this module)."""


class StoreExistsError(ArchiveError, FileExistsError):
    """The output store exists and may not be resumed or replaced without ``overwrite=True``."""


class JobMismatchError(StoreExistsError):
    """The output store holds an unfinished job with a different fingerprint."""


class ReadOnlyStoreError(ArchiveError, PermissionError):
    """The output store (or the folder it would be created in) cannot be written."""


class StoreLockedError(ArchiveError, BlockingIOError):
    """Another live process holds the store's lock (a second writer on the same store)."""


class InputChangedError(ArchiveError):
    """An input file changed (truncated, modified, replaced) while the job ran."""


class CorruptStoreError(ArchiveError):
    """The store's metadata or job record cannot be read, or its data fail verification."""
