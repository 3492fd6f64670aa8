"""Decode image files once into uint8 arrays and cache them on disk.

The cache file is ``<cache_dir>/<dataset>-<key>.npz``. The key is a SHA-256
digest of the *content* of the list of files (each file's path relative to the
dataset folder and all of its bytes), the target size, the decoding
(:data:`PREPROCESSING`: Pillow decode, convert to RGB, bilinear resize to
``size x size``) and Pillow's version. Any change to a file's bytes, to the
list, the size, the decoding or Pillow gives a new key, so stale pixels are
never served, even when a file is replaced by another of the same size and
time stamp (a key of paths, sizes and modification times, as build tools use,
misses that case). Hashing reads every file once per load: for UTKFace's
``crop_part1`` (9,780 files, 47 MB) it costs about 0.2 s against 0.08 s for
the old key of paths and sizes (``benchmarks/bench_cache_key.py``), a small
part of the 1.5 s a cache load takes and of the 12 s a decode takes.

The cache file also holds its key; a file that cannot be read, is truncated,
holds another key or arrays of the wrong shape is rebuilt after a one-line
warning. Writes are atomic, so an interrupted run leaves no partial cache file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simloss.experiments._files import atomic_path

__all__ = ["PREPROCESSING", "cache_key", "decode_image", "default_cache_dir", "load_images"]

logger = logging.getLogger(__name__)

#: Version and description of the decoding; part of the cache key and of a run's
#: stored preprocessing.
PREPROCESSING = "v1:pillow:rgb:bilinear"

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$SIMLOSS_CACHE_DIR``, else ``$XDG_CACHE_HOME/simloss``, else ``~/.cache/simloss``.

    Example:
        >>> isinstance(default_cache_dir(), Path)
        True
    """
    explicit = os.environ.get("SIMLOSS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "simloss"


def _frame(digest: hashlib._Hash, chunk: bytes) -> None:
    """Feed ``chunk`` with its length first, so that no two inputs share a stream."""
    digest.update(len(chunk).to_bytes(8, "little"))
    digest.update(chunk)


def cache_key(source: Path, files: Sequence[Path], size: int) -> str:
    """The content key of decoding ``files`` to ``size x size``: 32 hex digits.

    SHA-256 over the decoding (:data:`PREPROCESSING`, Pillow's version, ``size``)
    and, for every file in order, its path relative to ``source`` and its bytes
    (each part preceded by its length). A file that cannot be read contributes
    its error instead (decoding then reports or skips it).

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "a.jpg").write_bytes(b"one")
        >>> first = cache_key(folder, [folder / "a.jpg"], 60)
        >>> _ = (folder / "a.jpg").write_bytes(b"two")  # same size, other bytes
        >>> first == cache_key(folder, [folder / "a.jpg"], 60)
        False
    """
    import PIL

    digest = hashlib.sha256()
    _frame(digest, f"{PREPROCESSING}|pillow {PIL.__version__}|size {size}".encode())
    for path in files:
        _frame(digest, os.fsencode(path.relative_to(source)))
        try:
            _frame(digest, path.read_bytes())
        except OSError as exc:
            _frame(digest, f"unreadable: {type(exc).__name__} {exc.errno}".encode())
    return digest.hexdigest()[:32]


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decode one image file to a uint8 ``(size, size, 3)`` RGB array.

    Pillow decodes the file, converts it to RGB and resizes it bilinearly to
    ``size x size`` (:data:`PREPROCESSING`); training, the cache and
    :mod:`simloss.experiments.predict` all decode through this function.

    Raises:
        ValueError: the file cannot be read or decoded (truncated, not an image).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(
            f"Could not decode image {path}: expected a readable image file, but "
            f"decoding failed ({exc})"
        ) from exc
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def _read_cache(
    cache_file: Path, key: str, count: int, size: int
) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """The cached ``(images, ok, bad)``, or ``None`` (with a warning) when unusable."""
    try:
        with np.load(cache_file, allow_pickle=False) as cached:
            stored_key = str(cached["key"]) if "key" in cached.files else None
            images, ok, bad = cached["images"], cached["ok"], cached["bad"]
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        reason = f"it cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())})"
    else:
        if stored_key != key:
            reason = f"it holds key {stored_key!r}, not {key!r}"
        elif images.dtype != np.uint8 or images.shape != (count, size, size, 3):
            reason = (
                f"expected uint8 images of shape {(count, size, size, 3)}, but found "
                f"{images.dtype} {images.shape}"
            )
        elif ok.dtype != np.bool_ or ok.shape != (count,) or bad.ndim != 1:
            reason = (
                f"expected {count} flags and a list of errors, but found {ok.shape}, {bad.shape}"
            )
        else:
            return images, ok, [str(b) for b in bad.tolist()]
    logger.warning("rebuilding the image cache %s: %s", cache_file, reason)
    return None


def load_images(
    source: Path,
    files: Sequence[Path],
    *,
    size: int,
    dataset: str,
    cache_dir: Path | None,
    skip_unreadable: bool,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``files`` (cached) into ``(images, ok)``.

    Args:
        source: the dataset folder (relative paths below it enter the cache key).
        files: image paths under ``source``.
        size: side of the square output.
        dataset: a name for the cache file.
        cache_dir: cache folder; ``None`` for :func:`default_cache_dir`.
        skip_unreadable: when ``False`` the first unreadable file raises; when
            ``True`` unreadable files are marked ``False`` in ``ok`` (their rows
            are zeros and must be dropped by the caller) and counted in a log line.
        progress: show a tqdm bar while decoding.

    Returns:
        ``images`` uint8 ``(N, size, size, 3)`` and ``ok`` bool ``(N,)``.

    Raises:
        ValueError: an unreadable file and ``skip_unreadable`` is ``False``.
    """
    cache_root = default_cache_dir() if cache_dir is None else Path(cache_dir)
    key = cache_key(source, files, size)
    cache_file = cache_root / f"{dataset}-{key}.npz"
    if cache_file.exists():
        cached = _read_cache(cache_file, key, len(files), size)
        if cached is not None:
            images, ok, bad = cached
            logger.info("loaded %d decoded images from cache %s", len(images), cache_file)
            _report_bad(bad, skip_unreadable)
            return images, ok

    from tqdm.auto import tqdm

    images = np.zeros((len(files), size, size, 3), dtype=np.uint8)
    ok = np.ones(len(files), dtype=bool)
    bad_files: list[str] = []
    iterator = tqdm(files, desc=f"decoding {dataset}", unit="img", disable=not progress)
    for index, path in enumerate(iterator):
        try:
            images[index] = decode_image(path, size)
        except ValueError as exc:
            if not skip_unreadable:
                raise ValueError(
                    f"{exc}; pass skip_unreadable (--skip-unreadable) to skip such files"
                ) from exc
            ok[index] = False
            bad_files.append(str(exc))
    with atomic_path(cache_file, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=images, ok=ok, bad=np.array(bad_files, dtype=str), key=key)
    logger.info("decoded %d images into cache %s", len(files), cache_file)
    _report_bad(bad_files, skip_unreadable)
    return images, ok


def _report_bad(bad: list[str], skip_unreadable: bool) -> None:
    if not bad:
        return
    if not skip_unreadable:
        raise ValueError(f"{bad[0]}; pass skip_unreadable (--skip-unreadable) to skip such files")
    logger.warning("skipped %d unreadable image(s); first: %s", len(bad), bad[0])
