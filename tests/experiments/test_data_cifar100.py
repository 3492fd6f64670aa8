"""CIFAR-100 from a real-format ``cifar-100-python`` fixture (folder and tarball)."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch
from data_fixtures import CIFAR_SAMPLE, cifar_fixture_from_sample, write_cifar100

from conftest import shared_path
from simloss.experiments.data.cifar100 import (
    CIFAR100_FINE_TO_COARSE,
    CIFAR100_MD5,
    CIFAR100_URL,
    download_cifar100,
    file_md5,
    load_cifar100,
    read_cifar100,
    verify_md5,
)


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    sample = shared_path(*CIFAR_SAMPLE)
    cifar_fixture_from_sample(sample, sample.parent, tmp_path)
    return tmp_path


def test_pickles_decode_to_the_real_images(cifar_root: Path) -> None:
    sample = shared_path(*CIFAR_SAMPLE)
    raw = read_cifar100(cifar_root / "cifar-100-python")
    with np.load(sample) as data:
        assert np.array_equal(raw["test_images"], data["images"])
        assert np.array_equal(raw["test_fine"], data["fine_labels"])
    assert raw["fine_names"][:3] == ["apple", "aquarium_fish", "baby"]
    assert len(raw["coarse_names"]) == 20 and raw["train_images"].shape == (300, 32, 32, 3)


def test_embedded_superclass_map_matches_the_shared_table() -> None:
    rows = shared_path("cifar100", "fine_to_coarse.tsv").read_text().splitlines()[1:]
    assert [int(r.split("\t")[2]) for r in rows] == list(CIFAR100_FINE_TO_COARSE)


def test_folder_and_tarball_give_the_same_data(cifar_root: Path, tmp_path: Path) -> None:
    sample = shared_path(*CIFAR_SAMPLE)
    tar_root = tmp_path / "tar"
    cifar_fixture_from_sample(sample, sample.parent, tar_root, tarball=True)
    a = load_cifar100(cifar_root, val_fraction=0.34)
    b = load_cifar100(tar_root / "cifar-100-python.tar.gz", val_fraction=0.34)
    c = load_cifar100(tar_root, val_fraction=0.34)
    for x in (b, c):
        assert torch.equal(a.train.inputs, x.train.inputs) and torch.equal(
            a.val.targets, x.val.targets
        )


def test_split_and_global_standardisation(cifar_root: Path) -> None:
    data = load_cifar100(cifar_root, val_fraction=0.34, split_seed=0)
    assert len(data.test) == 100 and len(data.train) + len(data.val) == 300
    # every class with 3 training copies gives exactly one validation example
    train_counts = np.bincount(data.train.targets.numpy(), minlength=100)
    val_counts = np.bincount(data.val.targets.numpy(), minlength=100)
    assert np.all(val_counts * 2 == train_counts)
    x = data.standardize(data.train.inputs).double()
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std(unbiased=False)) - 1) < 1e-3
    assert data.mean.shape == (1, 1, 1, 1)
    assert data.fine_to_coarse == list(CIFAR100_FINE_TO_COARSE) and not data.ordinal
    assert data.class_names is not None and data.class_names[99] == "worm"


def test_paper96_drops_four_classes_and_renumbers(cifar_root: Path) -> None:
    data = load_cifar100(cifar_root, classes="paper96", val_fraction=0.34)
    assert data.num_classes == 96 and data.class_names is not None
    dropped = {"aquarium_fish", "sweet_pepper", "keyboard", "pickup_truck"}
    assert not dropped & set(data.class_names)
    assert data.source_class_indices is not None and 1 not in data.source_class_indices
    raw = read_cifar100(cifar_root / "cifar-100-python")
    kept_test = [n for n in raw["test_fine"] if raw["fine_names"][n] not in dropped]
    names = [data.class_names[t] for t in data.test.targets.tolist()]
    assert names == [raw["fine_names"][n] for n in kept_test]


def test_inconsistent_superclass_is_rejected(tmp_path: Path) -> None:
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    fine, coarse = np.array([0, 1, 0, 1]), np.array([4, 1, 4, 2])  # class 1 belongs to 1
    names = [f"c{i}" for i in range(100)]
    write_cifar100(
        tmp_path, images, fine, coarse, names, [f"s{i}" for i in range(20)], test_count=2
    )
    with pytest.raises(ValueError, match="Expected the standard CIFAR-100 superclass 1"):
        read_cifar100(tmp_path / "cifar-100-python")


def test_missing_pieces_are_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cifar100(tmp_path / "absent")
    with pytest.raises(ValueError, match="Expected a cifar-100-python folder"):
        load_cifar100(tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "meta").write_bytes(pickle.dumps({b"fine_label_names": []}))
    with pytest.raises(ValueError, match=r"cifar-100-python/train .* missing"):
        load_cifar100(tmp_path)


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("pwned",))

    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("meta", "train", "test"):
        (folder / name).write_bytes(pickle.dumps({b"x": Evil()}))
    with pytest.raises(ValueError, match="Expected only NumPy arrays.*builtins.print"):
        read_cifar100(folder)


def test_truncated_tarball_is_reported(tmp_path: Path) -> None:
    sample = shared_path(*CIFAR_SAMPLE)
    path = cifar_fixture_from_sample(sample, sample.parent, tmp_path, tarball=True)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ValueError, match="Could not read CIFAR-100 tarball"):
        read_cifar100(path)


def test_md5_against_hashlib_and_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    payload = np.random.default_rng(0).bytes(3 * 2**20 + 17)
    path.write_bytes(payload)
    expected = hashlib.md5(payload).hexdigest()
    assert file_md5(path) == expected
    verify_md5(path, expected.upper())
    with pytest.raises(ValueError, match=f"expected MD5 {CIFAR100_MD5}, but found {expected}"):
        verify_md5(path, CIFAR100_MD5)


def test_download_checks_the_checksum_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = b"pretend tarball"
    seen: list[str] = []

    class Response(io.BytesIO):
        headers: ClassVar[dict[str, str]] = {"Content-Length": str(len(payload))}

    def fake_urlopen(url: str) -> Response:
        seen.append(url)
        return Response(payload)

    monkeypatch.setattr("urllib.request.urlopen", fake_urlopen)
    with pytest.raises(ValueError, match="Checksum mismatch"):
        download_cifar100(tmp_path, progress=False)
    assert seen == [CIFAR100_URL]
    assert list(tmp_path.iterdir()) == []  # the bad download is discarded
    good = hashlib.md5(payload).hexdigest()
    path = download_cifar100(tmp_path, md5=good, progress=False)
    assert path.read_bytes() == payload and path.name == "cifar-100-python.tar.gz"
    assert download_cifar100(tmp_path, md5=good, progress=False) == path  # reused
    assert len(seen) == 2


def test_load_with_download_fetches_only_when_absent(
    cifar_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = shared_path(*CIFAR_SAMPLE)
    calls: list[Path] = []

    def fake_download(dest: Path, *, progress: bool = True) -> Path:
        calls.append(Path(dest))
        return cifar_fixture_from_sample(sample, sample.parent, Path(dest), tarball=True)

    monkeypatch.setattr("simloss.experiments.data.cifar100.download_cifar100", fake_download)
    target = tmp_path / "new"
    data = load_cifar100(target, download=True, val_fraction=0.34)
    assert calls == [target] and len(data.test) == 100
    load_cifar100(target, download=True, val_fraction=0.34)  # present now: no second fetch
    load_cifar100(cifar_root, download=True, val_fraction=0.34)
    assert calls == [target]
