"""Small datasets written in the real on-disk formats (UTKFace, AFAD, CIFAR-100)."""

from __future__ import annotations

import io
import pickle
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR_SAMPLE = ("cifar100", "train_sample_100.npz")


def jpeg_bytes(seed: int, size: int = 80) -> bytes:
    """A random RGB JPEG (a smooth gradient plus noise, so it compresses like a photo)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 255, size)[None, :, None] * rng.random(3)[None, None, :]
    pixels = np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_utkface(folder: Path, names: Sequence[str]) -> Path:
    """A flat UTKFace folder with one random JPEG per name."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, name in enumerate(names):
        (folder / name).write_bytes(jpeg_bytes(seed))
    return folder


def utkface_names(ages: Sequence[int], chip: bool = True) -> list[str]:
    """UTKFace names ``AGE_GENDER_RACE_DATETIME.jpg[.chip.jpg]`` for the given ages."""
    suffix = ".jpg.chip.jpg" if chip else ".jpg"
    return [
        f"{age}_{i % 2}_{i % 5}_2017010{i % 10}1234567{i:02d}{suffix}" for i, age in enumerate(ages)
    ]


def write_afad(root: Path, ages_per_gender: dict[int, int]) -> Path:
    """``root/AFAD-Full/<age>/<111|112>/*.jpg`` with the given number of images per gender."""
    full = root / "AFAD-Full"
    seed = 0
    for age, count in ages_per_gender.items():
        for gender in ("111", "112"):
            folder = full / str(age) / gender
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                (folder / f"{seed}-{k}.jpg").write_bytes(jpeg_bytes(seed))
                seed += 1
    (full / "AFAD-Full.txt").write_text("list of files\n")
    return full


def _pickle(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=2)


def write_cifar100(
    root: Path,
    images: np.ndarray,
    fine: np.ndarray,
    coarse: np.ndarray,
    fine_names: Sequence[str],
    coarse_names: Sequence[str],
    *,
    test_count: int,
    tarball: bool = False,
) -> Path:
    """A ``cifar-100-python`` folder (or tarball) in the official pickle format.

    ``images`` are uint8 ``(N, 32, 32, 3)``; the first ``N - test_count`` go to
    ``train`` and the rest to ``test``. Data rows are R, G, B planes as in the
    official files.
    """
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    cut = len(images) - test_count
    parts = {
        "train": {
            b"filenames": [f"img_{i}.png".encode() for i in range(cut)],
            b"batch_label": b"training batch 1 of 1",
            b"fine_labels": [int(v) for v in fine[:cut]],
            b"coarse_labels": [int(v) for v in coarse[:cut]],
            b"data": rows[:cut],
        },
        "test": {
            b"filenames": [f"test_{i}.png".encode() for i in range(test_count)],
            b"batch_label": b"testing batch 1 of 1",
            b"fine_labels": [int(v) for v in fine[cut:]],
            b"coarse_labels": [int(v) for v in coarse[cut:]],
            b"data": rows[cut:],
        },
        "meta": {
            b"fine_label_names": [n.encode() for n in fine_names],
            b"coarse_label_names": [n.encode() for n in coarse_names],
        },
    }
    if not tarball:
        folder = root / "cifar-100-python"
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in parts.items():
            (folder / name).write_bytes(_pickle(content))
        return folder
    root.mkdir(parents=True, exist_ok=True)
    path = root / "cifar-100-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, content in parts.items():
            data = _pickle(content)
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def cifar_fixture_from_sample(
    sample: Path, names_dir: Path, root: Path, *, copies: int = 3, tarball: bool = False
) -> Path:
    """CIFAR-100 fixture from the 100 real sample images (with their real labels).

    Each image appears ``copies`` times (original, mirrored, shifted) in ``train``
    so that classes have several examples; ``test`` holds the originals again.
    """
    with np.load(sample) as data:
        images, fine, coarse = data["images"], data["fine_labels"], data["coarse_labels"]
    variants = [images, images[:, :, ::-1], np.roll(images, 2, axis=1)][:copies]
    train = np.concatenate(variants)
    all_images = np.concatenate([train, images])
    all_fine = np.concatenate([np.tile(fine, copies), fine])
    all_coarse = np.concatenate([np.tile(coarse, copies), coarse])
    fine_names = (names_dir / "fine_label_names.txt").read_text().split()
    coarse_names = (names_dir / "coarse_label_names.txt").read_text().split()
    return write_cifar100(
        root, all_images, all_fine, all_coarse, fine_names, coarse_names,
        test_count=len(images), tarball=tarball,
    )  # fmt: skip
