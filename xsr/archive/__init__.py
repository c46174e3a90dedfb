"""Resumable, region-by-region Zarr writes of lazy Datasets, and whole-file upscaling.

A super-resolved archive is usually far larger than memory and takes hours to compute. The
functions here stream a lazy (dask-backed) Dataset to a Zarr store one *region* at a time — a
region is a block of consecutive steps along one dimension (``time`` by default) that matches the
store's chunks along that dimension exactly — so memory stays bounded whatever the archive's
length, and they make the write **resumable**: a run killed at any point and started again with
the same arguments computes only the missing regions and ends with the same store an
uninterrupted run writes.

How the store records progress
------------------------------
Besides the Dataset's own arrays, the store holds a subgroup ``_xsr`` (xarray ignores subgroups
when it opens the store, so the Dataset is unchanged):

* ``_xsr`` attributes, written before anything else: the job ``fingerprint`` (xsr version,
  the identity of the inputs — names, shapes, dtypes, a hash of coordinates and attributes, the
  sha256 of the input files' content —, the model's sha256, the arguments, and the layout of the
  regions), its sha256 ``job_id``, the names of the region variables and the input files' record
  (path, size, modification time, content sample and sha256; updated when a job resumes from a
  copy elsewhere).
* ``_xsr/checksums``: the sha256 of each region's stored values, one chunk per region.
* ``_xsr/completed``: one ``uint8`` per region, **one Zarr chunk per region**, created after the
  Dataset's metadata (its presence means "initialised") and set to 1 for a region only *after*
  every chunk of that region's data has been written and its checksum recorded. Writing one chunk is atomic (the local store
  writes a temporary file and renames it; object stores put whole objects), so a region cut off
  half-way is never taken for complete: it is recomputed on the next run.

When every region is complete (and every chunk file is there) the metadata is consolidated; a
store with every region complete, no chunk missing and consolidated metadata is *finished*. Only Zarr output is resumable: NetCDF output
(:func:`upscale_file` with a ``.nc`` path) is streamed into a resumable temporary Zarr store
beside the output first, then converted chunk by chunk into ``OUT.nc`` through a ``.part`` file
renamed into place at the end, so a killed NetCDF job also resumes its expensive part.

Integrity
---------
A local store is written by one process at a time: :mod:`~xsr.archive.lock` keeps a lock file
``STORE.xsr-lock`` beside it (a lock left by a dead process is taken over). Each region's
checksum is recorded in ``_xsr/checksums`` before its marker (:mod:`~xsr.archive.verify`;
``xsr verify STORE``), and the input files are fingerprinted by content and checked unchanged
before each marker and before the store is finished (:mod:`~xsr.archive.inputs`).

The package's modules say what they do: :mod:`~xsr.archive.record` (the job record: state and
fingerprint), :mod:`~xsr.archive.inputs` (the input fingerprint), :mod:`~xsr.archive.lock`,
:mod:`~xsr.archive.verify` (checksums and verification), :mod:`~xsr.archive.regions` (region
planning), :mod:`~xsr.archive.encoding` (what the output keeps, packing, compression),
:mod:`~xsr.archive.write` (writing Zarr regions and streaming NetCDF) and
:mod:`~xsr.archive.upscaling` (the upscaling jobs).
"""

from xsr.archive.errors import (
    ArchiveError,
    CorruptStoreError,
    InputChangedError,
    JobMismatchError,
    ReadOnlyStoreError,
    StoreExistsError,
    StoreLockedError,
)
from xsr.archive.record import store_status
from xsr.archive.upscaling import upscale_file, upscale_to_zarr
from xsr.archive.verify import verify_store
from xsr.archive.write import write_zarr_resumable

__all__ = [
    "ArchiveError",
    "CorruptStoreError",
    "InputChangedError",
    "JobMismatchError",
    "ReadOnlyStoreError",
    "StoreExistsError",
    "StoreLockedError",
    "store_status",
    "upscale_file",
    "upscale_to_zarr",
    "verify_store",
    "write_zarr_resumable",
]
