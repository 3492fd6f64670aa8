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

import simloss.experiments.data.cifar100 as cifar100_module
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


# ----------------------------------------------- pickles that ask for too much memory
def _small_cifar(root: Path) -> Path:
    """A 6-image cifar-100-python folder in the official format (no shared data needed)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    fine = np.array([0, 1, 2, 0, 1, 2])
    coarse = np.asarray(CIFAR100_FINE_TO_COARSE)[fine]
    names, coarse_names = [f"c{i}" for i in range(100)], [f"s{i}" for i in range(20)]
    return write_cifar100(root, images, fine, coarse, names, coarse_names, test_count=3)


class _Reconstruct:
    """Pickles as numpy's own ``_reconstruct(ndarray, shape, dtype)`` call plus a state."""

    def __init__(self, shape: tuple[int, ...], state: tuple | None = None) -> None:
        self.shape, self.state = shape, state

    def __reduce__(self) -> tuple:
        from numpy._core.multiarray import _reconstruct

        args = (np.ndarray, self.shape, b"b")
        return (_reconstruct, args) if self.state is None else (_reconstruct, args, self.state)


TIB9 = 10**13  # bytes: numpy calls it "9.09 TiB"
FORGED = {
    "array_of_9_tib": lambda: pickle.dumps({b"data": _Reconstruct((TIB9,))}, protocol=2),
    "state_of_9_tib": lambda: pickle.dumps(
        {b"data": _Reconstruct((0,), (1, (TIB9,), np.dtype("u1"), False, b"abc"))}, protocol=2
    ),
    "object_array_of_9_tib": lambda: pickle.dumps(
        {b"data": _Reconstruct((0,), (1, (TIB9,), np.dtype("O"), False, [1]))}, protocol=2
    ),
    "bytes8_of_10_tib": lambda: b"\x80\x04\x8e" + (10 * 2**40).to_bytes(8, "little") + b"abc.",
    "bytearray8_of_10_tib": lambda: b"\x80\x05\x96" + (10 * 2**40).to_bytes(8, "little") + b".",
    "binbytes_of_4_gib": lambda: b"\x80\x03B" + (2**32 - 1).to_bytes(4, "little") + b"abc.",
    "memo_index_2_pow_32": lambda: b"\x80\x02}r" + (2**32 - 1).to_bytes(4, "little") + b".",
    "text_memo_index": lambda: b"(dp99999999999\n.",
    "frame_of_9_tib": lambda: b"\x80\x04\x95" + TIB9.to_bytes(8, "little") + b"}.",
}


@pytest.mark.parametrize("kind", sorted(FORGED))
def test_a_pickle_asking_for_more_memory_than_it_holds_is_one_line_naming_the_file(
    tmp_path: Path, kind: str
) -> None:
    folder = _small_cifar(tmp_path)
    (folder / "train").write_bytes(FORGED[kind]())
    with pytest.raises(ValueError) as info:
        read_cifar100(folder)
    message = str(info.value)
    assert message.startswith(f"Could not read CIFAR-100 pickle {folder}/train: ")
    assert "\n" not in message


def test_the_9_tib_array_is_refused_before_numpy_allocates_it(tmp_path: Path) -> None:
    folder = _small_cifar(tmp_path)
    (folder / "train").write_bytes(FORGED["array_of_9_tib"]())
    with pytest.raises(ValueError, match=r"shape \(10000000000000,\).*10000000000000 bytes"):
        read_cifar100(folder)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_every_pickle_protocol_of_the_real_format_still_loads(
    tmp_path: Path, protocol: int
) -> None:
    folder = _small_cifar(tmp_path)
    expected = read_cifar100(folder)
    for name in ("meta", "train", "test"):
        content = pickle.loads((folder / name).read_bytes(), encoding="bytes")
        (folder / name).write_bytes(pickle.dumps(content, protocol=protocol))
    again = read_cifar100(folder)
    for key, value in expected.items():
        assert (
            np.array_equal(again[key], value)
            if isinstance(value, np.ndarray)
            else (again[key] == value)
        )


def test_every_truncation_of_a_pickle_is_a_one_line_error(tmp_path: Path) -> None:
    folder = _small_cifar(tmp_path)
    whole = (folder / "test").read_bytes()
    for cut in [*range(0, 400), *range(400, len(whole), 97)]:
        (folder / "test").write_bytes(whole[:cut])
        with pytest.raises(ValueError, match=rf"CIFAR-100 .*{folder}/test"):
            read_cifar100(folder)


def test_a_tarball_member_above_the_bound_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    fine = np.array([0, 1, 0, 1])
    coarse = np.asarray(CIFAR100_FINE_TO_COARSE)[fine]
    names, coarse_names = [f"c{i}" for i in range(100)], [f"s{i}" for i in range(20)]
    path = write_cifar100(
        tmp_path, images, fine, coarse, names, coarse_names, test_count=2, tarball=True
    )
    assert read_cifar100(path)["train_images"].shape == (2, 32, 32, 3)
    monkeypatch.setattr(cifar100_module, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(ValueError, match=r"cifar-100-python/meta in the tarball .* at most 1000 "):
        read_cifar100(path)
