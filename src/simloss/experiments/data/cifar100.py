"""CIFAR-100 from the standard ``cifar-100-python`` folder or its tarball.

The archive holds three pickles: ``train`` and ``test`` (dicts with ``b"data"``
uint8 ``(N, 3072)`` rows of R, G, B planes of 32 x 32, ``b"fine_labels"`` and
``b"coarse_labels"``) and ``meta`` (``b"fine_label_names"``,
``b"coarse_label_names"``). They are read with a restricted unpickler that
only accepts the few globals these files use (NumPy array reconstruction and
``_codecs.encode``), so a tampered archive cannot run code, and that cannot be
made to allocate more than the file holds: before unpickling, every length
field and memo index of the pickle is checked against the bytes that follow
(about 0.1-0.25 s for a full-size ``train`` pickle), NumPy arrays may only have
numeric dtypes and at most as many bytes as the pickle itself, and a tarball
member may not exceed :data:`MAX_MEMBER_BYTES`.

The paper's split: 450 training / 50 validation images per class (validation
drawn per class from the official training set with the split seed) and the
official 100 test images per class.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import pickle
import pickletools
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import torch

from simloss.experiments._files import atomic_path
from simloss.experiments.data._types import PreparedData, Split, channel_stats, images_to_tensor
from simloss.experiments.data.splits import stratified_holdout, subset_indices
from simloss.experiments.task.builtin import CIFAR100_FINE_TO_COARSE

__all__ = [
    "CIFAR100_FINE_TO_COARSE",
    "CIFAR100_MD5",
    "CIFAR100_URL",
    "MAX_MEMBER_BYTES",
    "PAPER_DROPPED_CLASSES",
    "download_cifar100",
    "file_md5",
    "load_cifar100",
    "read_cifar100",
    "verify_md5",
]

logger = logging.getLogger(__name__)

#: The official download and its MD5 checksum (from the CIFAR page).
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
_FOLDER = "cifar-100-python"
_TARBALL = "cifar-100-python.tar.gz"
#: The most bytes a pickle in the tarball may have: 1 GiB, six times the
#: official ``train`` pickle (50,000 x 3,072 pixel bytes, about 155 MB with its
#: labels), so a forged header or a decompression bomb cannot exhaust memory.
MAX_MEMBER_BYTES = 1 << 30

#: Classes the paper drops (no word2vec vector for their names), 96 remain.
PAPER_DROPPED_CLASSES: tuple[str, ...] = (
    "aquarium_fish",
    "sweet_pepper",
    "keyboard",
    "pickup_truck",
)


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
}


# --------------------------------------------------------------- safe unpickling
# Opcode argument kinds (pickletools' ArgumentDescriptor.n): > 0 fixed bytes,
# -1 up to a newline, -2/-3/-4/-5 a length prefix of 1/4 (signed)/4/8 bytes.
_LINE, _TWO_LINES = -1, -10
_OPCODE_ARGS: list[int | None] = [None] * 256
for _op in pickletools.opcodes:
    _OPCODE_ARGS[ord(_op.code)] = (
        0 if _op.arg is None else _TWO_LINES if _op.name in ("GLOBAL", "INST") else _op.arg.n
    )
_LENGTH_PREFIX = {-2: (1, False), -3: (4, True), -4: (4, False), -5: (8, False)}
_BINARY_PUTS = {ord("q"), ord("r")}  # BINPUT, LONG_BINPUT
_PUT, _MEMOIZE, _FRAME, _STOP = ord("p"), 0x94, 0x95, ord(".")
_NUMERIC_KINDS = "biuf"


def _check_pickle_sizes(data: bytes, where: str) -> None:
    """Refuse a pickle whose length fields or memo indices ask for more than it holds.

    The C unpickler allocates a counted string (up to 2**64 bytes) or grows its
    memo to an index before it reads what follows; here every length is checked
    against the bytes that remain and every memo index against the number of
    objects memoised so far (the pickler numbers them 0, 1, 2, ...).
    """
    end, pos, memo = len(data), 0, 0
    kinds, prefixes, from_bytes = _OPCODE_ARGS, _LENGTH_PREFIX, int.from_bytes

    def refuse(what: str) -> ValueError:
        return ValueError(f"Could not read CIFAR-100 pickle {where}: {what}")

    while pos < end:
        code = data[pos]
        kind = kinds[code]
        pos += 1
        if kind == 0:
            if code == _STOP:
                return
            memo += code == _MEMOIZE
            continue
        if kind is None:
            raise refuse(f"unknown pickle opcode {code:#04x} at byte {pos - 1}")
        if kind > 0:
            value = from_bytes(data[pos : pos + kind], "little")
            if code in _BINARY_PUTS:
                if value > memo:
                    raise refuse(f"memo index {value} at byte {pos - 1} after {memo} objects")
                memo += value == memo
            elif code == _FRAME and value > end - pos - kind:
                raise refuse(f"a frame of {value} bytes at byte {pos - 1}, {end - pos} remain")
            pos += kind
            continue
        if kind in (_LINE, _TWO_LINES):
            stop = data.find(b"\n", pos)
            if kind == _TWO_LINES and stop >= 0:
                stop = data.find(b"\n", stop + 1)
            if stop < 0:
                raise refuse(f"an unterminated text argument at byte {pos - 1}")
            if code == _PUT:
                index = int(data[pos:stop])
                if index > memo:
                    raise refuse(f"memo index {index} at byte {pos - 1} after {memo} objects")
                memo += index == memo
            pos = stop + 1
            continue
        size, signed = prefixes[kind]
        length = from_bytes(data[pos : pos + size], "little", signed=signed)
        pos += size
        if length < 0 or length > end - pos:
            raise refuse(f"asks for {length} bytes at byte {pos - size - 1}, {end - pos} remain")
        pos += length
    raise refuse("the pickle ends without its STOP opcode")


def _checked_dtype(dtype: Any) -> np.dtype[Any]:
    checked = np.dtype(dtype)
    if checked.kind not in _NUMERIC_KINDS or checked.itemsize > 8:
        raise pickle.UnpicklingError(f"expected numeric NumPy arrays, but found dtype {checked}")
    return checked


class _BoundedArray(np.ndarray):
    """An array whose pickled state is checked before NumPy allocates it."""

    _simloss_limit: int

    def __setstate__(self, state: Any) -> None:
        limit = self._simloss_limit
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise pickle.UnpicklingError(
                "expected a NumPy array state ([version,] shape, dtype, fortran, bytes), "
                f"but found {type(state).__name__}"
            )
        shape, dtype, _, raw = state[-4:]
        nbytes = _array_bytes(shape, _checked_dtype(dtype))
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != nbytes or nbytes > limit:
            found = f"{len(raw)} bytes" if isinstance(raw, (bytes, bytearray)) else type(raw)
            raise pickle.UnpicklingError(
                f"expected an array of shape {shape!r} to come with its {nbytes} bytes (at most "
                f"the file's {limit}), but found {found}"
            )
        super().__setstate__(state)


def _array_bytes(shape: Any, dtype: np.dtype[Any]) -> int:
    if not isinstance(shape, tuple) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise pickle.UnpicklingError(
            f"expected an array shape of non-negative ints, but found {shape!r}"
        )
    return math.prod(shape) * dtype.itemsize


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._limit = len(data)

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        checked = _checked_dtype(dtype)
        nbytes = _array_bytes(shape, checked)
        if subtype is not np.ndarray or nbytes > self._limit:
            raise pickle.UnpicklingError(
                f"expected a plain NumPy array of at most the file's {self._limit} bytes, but "
                f"found one of shape {shape!r} and dtype {checked} ({nbytes} bytes)"
            )
        array = np.ndarray.__new__(_BoundedArray, shape, checked)
        array._simloss_limit = self._limit
        return array

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"Expected only NumPy arrays in a CIFAR-100 pickle, but found global {module}.{name}"
            )
        found = super().find_class(module, name)
        if name == "_reconstruct":
            return self._reconstruct
        # scalar(dtype, bytes) and _frombuffer(buffer, dtype, shape, order) allocate
        # no more than the bytes they are given; only their dtype is checked.
        if name == "scalar":
            return lambda dtype, *args: found(_checked_dtype(dtype), *args)
        if name == "_frombuffer":
            return lambda buffer, dtype, *args: found(buffer, _checked_dtype(dtype), *args)
        if name == "encode":
            return self._latin1
        return found

    def _latin1(self, text: Any, encoding: Any = "utf-8") -> bytes:
        """``_codecs.encode`` as Python 3's pickler uses it for bytes: str to Latin-1."""
        if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
            raise pickle.UnpicklingError(
                f"expected _codecs.encode(str, 'latin1'), but found encoding {encoding!r} of "
                f"{type(text).__name__}"
            )
        return text.encode("latin-1")


def _unpickle(data: bytes, where: str) -> dict[bytes, Any]:
    _check_pickle_sizes(data, where)
    try:
        obj = _RestrictedUnpickler(data).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, MemoryError) as exc:
        raise ValueError(f"Could not read CIFAR-100 pickle {where}: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(
            f"Expected a dict in CIFAR-100 pickle {where}, but found {type(obj).__name__}"
        )
    return {
        key: value.view(np.ndarray) if isinstance(value, np.ndarray) else value
        for key, value in obj.items()
    }


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 digest of a file, read in chunks.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
        >>> file_md5(p)
        '900150983cd24fb0d6963f7d28e17f72'
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_md5(path: str | Path, expected: str) -> None:
    """Raise ``ValueError`` unless ``path``'s MD5 equals ``expected``."""
    found = file_md5(path)
    if found != expected.lower():
        raise ValueError(
            f"Checksum mismatch for {path}: expected MD5 {expected}, but found {found}"
        )


def download_cifar100(
    dest_dir: str | Path,
    *,
    url: str = CIFAR100_URL,
    md5: str = CIFAR100_MD5,
    progress: bool = True,
) -> Path:
    """Download the CIFAR-100 tarball into ``dest_dir`` and verify its MD5.

    The file is fetched to a temporary name and moved into place only after its
    checksum matched; an existing tarball with the right checksum is reused.

    Returns:
        The path of ``cifar-100-python.tar.gz``.

    Raises:
        ValueError: the checksum does not match (the download is discarded).
    """
    target = Path(dest_dir) / _TARBALL
    if target.exists():
        verify_md5(target, md5)
        return target
    logger.info("downloading %s to %s", url, target)
    from tqdm.auto import tqdm

    with atomic_path(target, suffix=".part") as tmp:
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as handle:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, disable=not progress) as bar:
                while block := response.read(1 << 20):
                    handle.write(block)
                    bar.update(len(block))
        verify_md5(tmp, md5)
    return target


def find_cifar100(data_dir: str | Path) -> Path:
    """Locate the ``cifar-100-python`` folder or tarball at or inside ``data_dir``."""
    path = Path(data_dir)
    if not path.exists():
        raise FileNotFoundError(
            f"CIFAR-100 path {path} does not exist (`download` fetches CIFAR-100 into it)"
        )
    if path.is_file():
        return path
    if (path / "meta").is_file() and (path / "train").is_file():
        return path
    for candidate in (path / _FOLDER, path / _TARBALL):
        if candidate.exists():
            return candidate
    raise ValueError(
        f"Expected a {_FOLDER} folder (with meta, train, test), a {_TARBALL} tarball, "
        f"or a folder containing one at {path}, but found neither (`download` fetches it "
        "there, checksum verified)"
    )


def _read_members(source: Path) -> dict[str, bytes]:
    names = ("meta", "train", "test")
    if source.is_dir():
        out = {}
        for name in names:
            member = source / name
            if not member.is_file():
                raise ValueError(
                    f"Expected the CIFAR-100 pickle {member} (meta, train, test), but it is missing"
                )
            out[name] = member.read_bytes()
        return out
    try:
        with tarfile.open(source, "r:*") as archive:
            out = {}
            for name in names:
                try:
                    handle = archive.extractfile(f"{_FOLDER}/{name}")
                except KeyError as exc:
                    raise ValueError(
                        f"Expected {_FOLDER}/{name} in the tarball {source}, but it is missing"
                    ) from exc
                if handle is None:
                    raise ValueError(f"Expected {_FOLDER}/{name} in {source} to be a file")
                size = archive.getmember(f"{_FOLDER}/{name}").size
                if size > MAX_MEMBER_BYTES:
                    raise ValueError(
                        f"Expected {_FOLDER}/{name} in the tarball {source} to hold at most "
                        f"{MAX_MEMBER_BYTES} bytes (the official one has about 155 MB), but its "
                        f"header says {size}"
                    )
                out[name] = handle.read()
            return out
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ValueError(f"Could not read CIFAR-100 tarball {source}: {exc}") from exc


def _names(meta: dict[bytes, Any], key: bytes, where: str) -> list[str]:
    if key not in meta:
        raise ValueError(f"Expected key {key!r} in CIFAR-100 {where}, but found {sorted(meta)}")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[key]]


def _images_and_labels(
    part: dict[bytes, Any], where: str, num_fine: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for key in (b"data", b"fine_labels", b"coarse_labels"):
        if key not in part:
            raise ValueError(
                f"Expected key {key!r} in CIFAR-100 pickle {where}, but found {sorted(part)}"
            )
    data = np.asarray(part[b"data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"Expected uint8 data of shape (N, 3072) in CIFAR-100 {where}, but found "
            f"{data.dtype} {data.shape}"
        )
    fine = np.asarray(part[b"fine_labels"], dtype=np.int64)
    coarse = np.asarray(part[b"coarse_labels"], dtype=np.int64)
    if fine.shape != (len(data),) or coarse.shape != (len(data),):
        raise ValueError(
            f"Expected {len(data)} fine and coarse labels in CIFAR-100 {where}, but found "
            f"{fine.shape} and {coarse.shape}"
        )
    if len(fine) and (fine.min() < 0 or fine.max() >= num_fine):
        raise ValueError(
            f"Expected fine labels in [0, {num_fine}) in CIFAR-100 {where}, but found "
            f"range [{fine.min()}, {fine.max()}]"
        )
    standard = np.asarray(CIFAR100_FINE_TO_COARSE)[fine]
    wrong = np.flatnonzero(standard != coarse)
    if len(wrong):
        i = int(wrong[0])
        raise ValueError(
            f"Expected the standard CIFAR-100 superclass {standard[i]} for fine label "
            f"{fine[i]} in {where}, but found coarse label {coarse[i]} (example {i})"
        )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), fine, coarse


def read_cifar100(source: str | Path) -> dict[str, Any]:
    """Read CIFAR-100 from a ``cifar-100-python`` folder or tarball.

    Returns:
        A dict with ``train_images``/``test_images`` uint8 ``(N, 32, 32, 3)``,
        ``train_fine``/``test_fine`` int64 ``(N,)``, ``fine_names`` (100 names)
        and ``coarse_names`` (20 names).
    """
    path = Path(source)
    members = _read_members(path)
    meta = _unpickle(members["meta"], f"{path}/meta")
    fine_names = _names(meta, b"fine_label_names", f"{path}/meta")
    coarse_names = _names(meta, b"coarse_label_names", f"{path}/meta")
    if len(fine_names) != 100 or len(coarse_names) != 20:
        raise ValueError(
            f"Expected 100 fine and 20 coarse label names in {path}/meta, but found "
            f"{len(fine_names)} and {len(coarse_names)}"
        )
    out: dict[str, Any] = {"fine_names": fine_names, "coarse_names": coarse_names}
    for part in ("train", "test"):
        where = f"{path}/{part}"
        images, fine, _ = _images_and_labels(_unpickle(members[part], where), where, 100)
        out[f"{part}_images"], out[f"{part}_fine"] = images, fine
    return out


def load_cifar100(
    data_dir: str | Path,
    *,
    classes: str = "all",
    val_fraction: float = 0.1,
    split_seed: int = 0,
    limit: int | None = None,
    download: bool = False,
    progress: bool = False,
) -> PreparedData:
    """Load CIFAR-100 with the paper's split, standardised globally.

    Args:
        data_dir: the ``cifar-100-python`` folder, its tarball, or a folder
            containing either (the download target when ``download``).
        classes: ``"all"`` (100) or ``"paper96"`` (without
            :data:`PAPER_DROPPED_CLASSES`; labels renumbered in the original order).
        val_fraction: fraction of each class's training images held out for
            validation (0.1: the paper's 450/50).
        split_seed: seed of the validation draw and of ``limit``'s subsets.
        limit: use random subsets of at most this many images of the official
            training and of the official test set.
        download: download the tarball (MD5-checked) into ``data_dir`` if absent.
        progress: tqdm bar while downloading.

    Returns:
        A :class:`PreparedData` with ``fine_to_coarse`` and class names.
    """
    if classes not in ("all", "paper96"):
        raise ValueError(f"Expected `classes` to be 'all' or 'paper96', but found {classes!r}")
    root = Path(data_dir)
    if download and not (root / _FOLDER).exists() and not (root / _TARBALL).exists():
        root.mkdir(parents=True, exist_ok=True)
        download_cifar100(root, progress=progress)
    source = find_cifar100(root)
    raw = read_cifar100(source)
    fine_names: list[str] = raw["fine_names"]
    if classes == "paper96":
        missing = [n for n in PAPER_DROPPED_CLASSES if n not in fine_names]
        if missing:
            raise ValueError(
                f"Expected the classes {list(PAPER_DROPPED_CLASSES)} in the CIFAR-100 meta of "
                f"{source} for classes='paper96', but found no {missing}"
            )
        kept_classes = [i for i, n in enumerate(fine_names) if n not in PAPER_DROPPED_CLASSES]
    else:
        kept_classes = list(range(100))
    remap = np.full(100, -1, dtype=np.int64)
    remap[kept_classes] = np.arange(len(kept_classes))
    info: dict[str, int] = {}

    def select(part: str) -> tuple[np.ndarray, np.ndarray]:
        images, fine = raw[f"{part}_images"], raw[f"{part}_fine"]
        keep = remap[fine] >= 0
        info[f"{part}_dropped_classes"] = int((~keep).sum())
        images, labels = images[keep], remap[fine[keep]]
        chosen = subset_indices(len(labels), limit, split_seed)
        return images[chosen], labels[chosen]

    train_images, train_labels = select("train")
    test_images, test_labels = select("test")
    if len(train_labels) == 0 or len(test_labels) == 0:
        raise ValueError(f"Expected CIFAR-100 training and test images in {source}, but found none")
    kept, held = stratified_holdout(train_labels, val_fraction, split_seed)
    if len(held) == 0:
        raise ValueError(
            f"Expected a non-empty validation set, but val_fraction={val_fraction} of each "
            f"class of {len(train_labels)} training images rounds to none"
        )
    mean, std = channel_stats(train_images[kept], per_channel=False)
    train_tensor = images_to_tensor(train_images)
    train_targets = torch.from_numpy(train_labels)

    def part(index: np.ndarray) -> Split:
        idx = torch.from_numpy(index)
        return Split(train_tensor[idx], train_targets[idx])

    return PreparedData(
        name="cifar100",
        train=part(kept),
        val=part(held),
        test=Split(images_to_tensor(test_images), torch.from_numpy(test_labels)),
        num_classes=len(kept_classes),
        class_values=[float(i) for i in range(len(kept_classes))],
        class_names=[fine_names[i] for i in kept_classes],
        ordinal=False,
        scale=1.0 / 255.0,
        mean=mean,
        std=std,
        fine_to_coarse=[CIFAR100_FINE_TO_COARSE[i] for i in kept_classes],
        source_class_indices=kept_classes,
        info={**info, "source": str(source)},
    )
