"""Decode image files once into uint8 arrays and cache them on disk.

The cache file is ``<cache_dir>/<dataset>-<key>.npz``. The key is a SHA-256
digest of the *content* of the list of files (each file's path relative to the
dataset folder and all of its bytes), the target size, the channels, the decoding
(:data:`PREPROCESSING`: Pillow decode, 16-bit images scaled to 8 bits, convert
to RGB or grey, bilinear resize to ``height x width``) and Pillow's version. Any change to a file's bytes, to the
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
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simloss.experiments._files import atomic_path

__all__ = [
    "DECODINGS",
    "PREPROCESSING",
    "cache_key",
    "decode_image",
    "default_cache_dir",
    "image_size",
    "load_images",
]

logger = logging.getLogger(__name__)

#: Version and description of the decoding; part of the cache key and of a run's
#: stored preprocessing. v2 scales 16-bit images to 8 bits (v1 clipped them to
#: white) and refuses 32-bit ones; 8-bit images decode as in v1.
PREPROCESSING = "v2:pillow:8bit:bilinear"
#: The decodings a stored run may name: v1's runs decode new 8-bit images as v2 does.
DECODINGS: tuple[str, ...] = ("v1:pillow:rgb:bilinear", PREPROCESSING)
#: Pillow modes of 16-bit grey images.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
#: Pillow mode of each channel setting.
_MODES = {"rgb": "RGB", "grey": "L"}

Size = int | tuple[int, int]


def image_size(size: Size) -> tuple[int, int]:
    """``(height, width)`` of a size given as one side or a pair.

    Example:
        >>> image_size(60), image_size((32, 48))
        ((60, 60), (32, 48))
    """
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


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


def cache_key(source: Path, files: Sequence[Path], size: Size, channels: str = "rgb") -> str:
    """The content key of decoding ``files`` to ``size``: 32 hex digits.

    SHA-256 over the decoding (:data:`PREPROCESSING`, Pillow's version and
    decompression-bomb limit, ``size``, ``channels``)
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
    from PIL import Image

    digest = hashlib.sha256()
    height, width = image_size(size)
    shape = f"size {height}" if height == width else f"size {height}x{width}"
    detail = f"|{channels}" if channels != "rgb" else ""
    limit = f"|max pixels {Image.MAX_IMAGE_PIXELS}"  # what decodes and what is refused
    _frame(digest, f"{PREPROCESSING}|pillow {PIL.__version__}|{shape}{detail}{limit}".encode())
    for path in files:
        inside = path.is_relative_to(source)
        _frame(digest, os.fsencode(path.relative_to(source) if inside else path.resolve()))
        try:
            _frame(digest, path.read_bytes())
        except OSError as exc:
            _frame(digest, f"unreadable: {type(exc).__name__} {exc.errno}".encode())
    return digest.hexdigest()[:32]


def decode_image(path: Path, size: Size, channels: str = "rgb") -> np.ndarray:
    """Decode one image file to a uint8 ``(height, width, C)`` array (``C`` 3 for RGB, 1 for grey).

    Pillow decodes the file; a 16-bit grey image (modes ``I;16*``) is scaled
    to 8 bits, ``round(v * 255 / 65535)``, so its full range maps to 0..255
    (a plain conversion would clip every value above 255 to white); it is then
    converted to RGB (or grey: ``channels="grey"``; an alpha channel is
    dropped) and resized bilinearly to ``size`` (:data:`PREPROCESSING`).
    Training, the cache and :mod:`simloss.experiments.predict` all decode
    through this function.

    Raises:
        ValueError: the file cannot be read or decoded (truncated, not an
            image, more pixels than Pillow's decompression-bomb limit
            ``PIL.Image.MAX_IMAGE_PIXELS``, where Pillow itself only warns up
            to twice it; a 32-bit integer or float image whose range is
            unknown), naming it.
    """
    from PIL import Image

    height, width = image_size(size)
    mode = _MODES[channels]
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice it: refused here too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(path, height, width, mode)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ValueError(
            f"Could not decode image {path}: expected at most {Image.MAX_IMAGE_PIXELS} pixels "
            f"(Pillow's decompression-bomb limit, PIL.Image.MAX_IMAGE_PIXELS), but it has more "
            f"({' '.join(str(exc).split())})"
        ) from exc


def _decode(path: Path, height: int, width: int, mode: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    if path.is_symlink() and not path.exists():
        raise ValueError(
            f"Could not decode image {path}: expected a readable image file, but it is a broken "
            f"link (to {os.readlink(path)})"
        )
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in _SIXTEEN_BIT:
                wide = np.asarray(image).astype(np.uint32)
                eight = ((wide * 255 + 32767) // 65535).astype(np.uint8)
                converted = Image.fromarray(eight, mode="L").convert(mode)
            elif image.mode in ("I", "F"):
                kind = "integer" if image.mode == "I" else "float"
                raise ValueError(
                    f"Could not decode image {path}: expected an 8- or 16-bit image, but found "
                    f"a 32-bit {kind} image (mode {image.mode}) whose range is unknown; convert "
                    "it to 8 or 16 bits"
                )
            else:
                converted = image.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(
            f"Could not decode image {path}: expected a readable image file, but "
            f"decoding failed ({exc})"
        ) from exc
    if converted.size != (width, height):
        converted = converted.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(converted, dtype=np.uint8)
    return pixels if pixels.ndim == 3 else pixels[:, :, None]


def _read_cache(
    cache_file: Path, key: str, count: int, shape: tuple[int, int, int]
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
        elif images.dtype != np.uint8 or images.shape != (count, *shape):
            reason = (
                f"expected uint8 images of shape {(count, *shape)}, but found "
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
    size: Size,
    dataset: str,
    cache_dir: Path | None,
    skip_unreadable: bool,
    progress: bool = False,
    channels: str = "rgb",
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``files`` (cached) into ``(images, ok)``.

    Args:
        source: the dataset folder (relative paths below it enter the cache key).
        files: image paths under ``source``.
        size: the output's side, or ``(height, width)``.
        dataset: a name for the cache file.
        cache_dir: cache folder; ``None`` for :func:`default_cache_dir`.
        skip_unreadable: when ``False`` the first unreadable file raises; when
            ``True`` unreadable files are marked ``False`` in ``ok`` (their rows
            are zeros and must be dropped by the caller) and counted in a log line.
        progress: show a tqdm bar while decoding.
        channels: ``"rgb"`` or ``"grey"``.

    Returns:
        ``images`` uint8 ``(N, height, width, C)`` and ``ok`` bool ``(N,)``.

    Raises:
        ValueError: an unreadable file and ``skip_unreadable`` is ``False``.
    """
    cache_root = default_cache_dir() if cache_dir is None else Path(cache_dir)
    key = cache_key(source, files, size, channels)
    cache_file = cache_root / f"{dataset}-{key}.npz"
    height, width = image_size(size)
    shape = (height, width, 3 if channels == "rgb" else 1)
    if cache_file.exists():
        cached = _read_cache(cache_file, key, len(files), shape)
        if cached is not None:
            images, ok, bad = cached
            logger.info("loaded %d decoded images from cache %s", len(images), cache_file)
            _report_bad(bad, skip_unreadable)
            return images, ok

    from tqdm.auto import tqdm

    images = np.zeros((len(files), *shape), dtype=np.uint8)
    ok = np.ones(len(files), dtype=bool)
    bad_files: list[str] = []
    iterator = tqdm(files, desc=f"decoding {dataset}", unit="img", disable=not progress)
    for index, path in enumerate(iterator):
        try:
            images[index] = decode_image(path, size, channels)
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
