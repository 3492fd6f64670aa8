"""Decode image files once into uint8 arrays and cache them on disk.

The cache file is ``<cache_dir>/<dataset>-<key>.npz`` where ``key`` is a
SHA-256 digest of the source folder's resolved path, the list of files (relative
path and byte size of each), the target size and the preprocessing
(:data:`PREPROCESSING`: Pillow decode, convert to RGB, bilinear resize to
``size x size``). Any change to these gives a new key; stale files are never
read. Writes are atomic, so an interrupted run leaves no partial cache file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simloss.experiments._files import atomic_path

__all__ = ["PREPROCESSING", "default_cache_dir", "load_images"]

logger = logging.getLogger(__name__)

#: Version and description of the decoding; part of the cache key.
PREPROCESSING = "v1:pillow:rgb:bilinear"


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


def _cache_key(source: Path, files: Sequence[Path], size: int) -> str:
    entries = [[str(path.relative_to(source)), path.stat().st_size] for path in files]
    payload = json.dumps(
        {"source": str(source.resolve()), "files": entries, "size": size, "prep": PREPROCESSING},
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def decode_image(path: Path, size: int) -> np.ndarray:
    """Decode one image file to a uint8 ``(size, size, 3)`` RGB array.

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
        source: the dataset folder (part of the cache key).
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
    cache_file = cache_root / f"{dataset}-{_cache_key(source, files, size)}.npz"
    if cache_file.exists():
        with np.load(cache_file, allow_pickle=False) as cached:
            images, ok, cached_bad = cached["images"], cached["ok"], cached["bad"]
        if len(images) == len(files):
            logger.info("loaded %d decoded images from cache %s", len(images), cache_file)
            _report_bad([str(b) for b in cached_bad.tolist()], skip_unreadable)
            return images, ok
        logger.warning("ignoring cache %s: it holds a different number of images", cache_file)

    from tqdm.auto import tqdm

    images = np.zeros((len(files), size, size, 3), dtype=np.uint8)
    ok = np.ones(len(files), dtype=bool)
    bad: list[str] = []
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
            bad.append(str(exc))
    with atomic_path(cache_file, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=images, ok=ok, bad=np.array(bad, dtype=str))
    logger.info("decoded %d images into cache %s", len(files), cache_file)
    _report_bad(bad, skip_unreadable)
    return images, ok


def _report_bad(bad: list[str], skip_unreadable: bool) -> None:
    if not bad:
        return
    if not skip_unreadable:
        raise ValueError(f"{bad[0]}; pass skip_unreadable (--skip-unreadable) to skip such files")
    logger.warning("skipped %d unreadable image(s); first: %s", len(bad), bad[0])
