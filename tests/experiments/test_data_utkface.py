"""UTKFace: real files, both naming styles, bad data, the decode cache."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import jpeg_bytes, utkface_names, write_utkface
from PIL import Image

from conftest import shared_path
from simloss.experiments.data._images import default_cache_dir
from simloss.experiments.data.utkface import list_utkface, load_utkface, parse_utkface_age


@pytest.mark.parametrize(
    ("name", "age"),
    [
        ("26_0_1_20170116010114628.jpg.chip.jpg", 26),
        ("1_0_0_20161219140623097.jpg", 1),
        ("61_1_20170109142408075.jpg.chip.jpg", 61),  # real file without the race field
        ("110_0_0_20170112213500903.jpg.chip.jpg", 110),
    ],
)
def test_ages_parse_from_both_naming_styles(name: str, age: int) -> None:
    assert parse_utkface_age(name) == age


@pytest.mark.parametrize(
    "name",
    ["abc_0_1_2017.jpg", "26.jpg", "_0_1_2017.jpg", "26_0_1_2_3_2017.jpg", "26_0_1_2017.png"],
)
def test_names_without_a_parseable_age_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="Expected a UTKFace file name"):
        parse_utkface_age(name)


def test_real_crop_part1_listing() -> None:
    folder = shared_path("utkface", "crop_part1")
    files, ages = list_utkface(folder)
    assert len(files) == 9780
    assert sum(a > 90 for a in ages) == 43
    assert [int(f.name.split("_")[0]) for f in files] == ages


def test_real_subset_loads_with_excluded_ages_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = shared_path("utkface", "crop_part1")
    with caplog.at_level(logging.INFO):
        data = load_utkface(folder, limit=60, cache_dir=tmp_path, split_seed=1)
    assert "excluded 43 of 9780 images with labels outside the classes 1..90" in caplog.text
    assert data.info["excluded_outside_classes"] == 43 and data.info["used"] == 60
    assert (len(data.train), len(data.val), len(data.test)) == (36, 12, 12)
    assert data.train.inputs.shape[1:] == (3, 60, 60) and data.train.inputs.dtype == torch.uint8
    assert data.num_classes == 90 and data.class_values[0] == 1.0 and data.class_values[-1] == 90
    # Independent decode of one image: Pillow RGB + bilinear resize to 60x60.
    files, ages = list_utkface(folder)
    kept = [(f, a) for f, a in zip(files, ages, strict=True) if a <= 90]
    from simloss.experiments.data.splits import subset_indices

    chosen = [kept[i] for i in subset_indices(len(kept), 60, 1)]
    first = np.asarray(Image.open(chosen[0][0]).convert("RGB").resize((60, 60), Image.BILINEAR))
    all_inputs = torch.cat([data.train.inputs, data.val.inputs, data.test.inputs])
    matches = [torch.equal(x.permute(1, 2, 0), torch.tensor(first)) for x in all_inputs]
    assert any(matches)


def test_per_channel_standardisation_on_training_split(tmp_path: Path) -> None:
    folder = write_utkface(tmp_path / "faces", utkface_names([20, 30, 40, 50, 60] * 4))
    data = load_utkface(folder, cache_dir=tmp_path / "cache")
    x = data.standardize(data.train.inputs).double()
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(
        x.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-3
    )


def test_both_styles_in_one_folder_and_ages_out_of_range_excluded(tmp_path: Path) -> None:
    names = utkface_names([5, 6, 7, 8, 9], chip=True) + utkface_names([10, 11, 95, 0, 12], False)
    folder = write_utkface(tmp_path / "faces", names)
    data = load_utkface(folder, cache_dir=tmp_path / "cache")
    assert data.info["excluded_outside_classes"] == 2  # 95 and 0
    targets = torch.cat([data.train.targets, data.val.targets, data.test.targets])
    assert sorted((targets + 1).tolist()) == [5, 6, 7, 8, 9, 10, 11, 12]


def test_cache_is_reused_and_keyed_by_the_file_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_utkface(tmp_path / "faces", utkface_names(range(20, 30)))
    cache = tmp_path / "cache"
    first = load_utkface(folder, cache_dir=cache)
    assert len(list(cache.glob("utkface-*.npz"))) == 1
    with caplog.at_level(logging.INFO):
        second = load_utkface(folder, cache_dir=cache)
    assert "from cache" in caplog.text
    assert torch.equal(first.train.inputs, second.train.inputs)
    write_utkface(folder, utkface_names([33], chip=False))  # a new file: a new key
    load_utkface(folder, cache_dir=cache)
    assert len(list(cache.glob("utkface-*.npz"))) == 2
    assert not list(cache.glob(".*"))  # no temporary files left behind


def test_missing_folder_and_file_instead_of_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_utkface(tmp_path / "absent")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="to be a directory"):
        load_utkface(tmp_path / "file.jpg")


def test_unrecognised_layout_names_the_path(tmp_path: Path) -> None:
    write_utkface(tmp_path / "parent" / "UTKFace", utkface_names([20, 30]))
    with pytest.raises(ValueError, match=r"found no \.jpg files; it has subfolders \['UTKFace'\]"):
        load_utkface(tmp_path / "parent")


def test_name_without_age_names_the_folder(tmp_path: Path) -> None:
    folder = write_utkface(tmp_path / "faces", [*utkface_names([20, 30]), "face.jpg"])
    with pytest.raises(ValueError, match=r"'face\.jpg'.*faces"):
        load_utkface(folder)


@pytest.mark.parametrize("kind", ["truncated", "not_an_image"])
def test_unreadable_image_stops_or_is_skipped_on_request(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    names = utkface_names(range(20, 32))
    folder = write_utkface(tmp_path / "faces", names)
    bad = folder / names[3]
    if kind == "truncated":
        bad.write_bytes(jpeg_bytes(99)[:300])
    else:
        bad.write_text("not a jpeg")
    with pytest.raises(ValueError, match=rf"Could not decode image .*{names[3]}.*skip_unreadable"):
        load_utkface(folder, cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        data = load_utkface(folder, cache_dir=tmp_path / "cache", skip_unreadable=True)
    assert data.info["skipped_unreadable"] == 1 and data.info["used"] == 11
    assert "skipped 1 unreadable image(s)" in caplog.text
    assert len(data.train) + len(data.val) + len(data.test) == 11
    # The cache remembers the bad file; without the flag the error comes back.
    with pytest.raises(ValueError, match="Could not decode image"):
        load_utkface(folder, cache_dir=tmp_path / "cache")


def test_default_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMLOSS_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SIMLOSS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "simloss"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "simloss"


def _bmp_bytes(seed: int) -> bytes:
    """A 64x64 RGB BMP: uncompressed, so every such file has the same byte size."""
    import io

    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "BMP")
    return buffer.getvalue()


def _independent_decode(path: Path) -> np.ndarray:
    """Pillow directly: RGB, bilinear 60x60, as channels-first uint8."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((60, 60), Image.Resampling.BILINEAR)
    return np.asarray(rgb).transpose(2, 0, 1)


def _all_inputs(data: object) -> torch.Tensor:
    parts = [data.train, data.val, data.test]  # type: ignore[attr-defined]
    return torch.cat([p.inputs for p in parts])


def test_files_replaced_by_others_of_the_same_size_time_and_inode_give_fresh_pixels(
    tmp_path: Path,
) -> None:
    """A stale cache: every image replaced by another of the same byte size is decoded again."""
    folder = tmp_path / "faces"
    folder.mkdir()
    names = utkface_names(range(20, 32))
    for seed, name in enumerate(names):
        (folder / name).write_bytes(_bmp_bytes(seed))
    cache = tmp_path / "cache"
    before = load_utkface(folder, cache_dir=cache)
    stats = {name: (folder / name).stat() for name in names}
    for seed, name in enumerate(names):
        with open(folder / name, "r+b") as handle:  # in place: same inode
            handle.write(_bmp_bytes(100 + seed))
        os.utime(folder / name, ns=(stats[name].st_atime_ns, stats[name].st_mtime_ns))
        now = (folder / name).stat()
        assert (now.st_size, now.st_mtime_ns, now.st_ino) == (
            stats[name].st_size,
            stats[name].st_mtime_ns,
            stats[name].st_ino,
        )
    after = load_utkface(folder, cache_dir=cache)
    assert not torch.equal(_all_inputs(before), _all_inputs(after))
    # Split order is the same; compare with an independent decode of the new files.
    expected = np.stack([_independent_decode(folder / n) for n in names])
    decoded = {tuple(img.flatten()[:64].tolist()) for img in expected}
    assert {tuple(x.flatten()[:64].tolist()) for x in _all_inputs(after).numpy()} == decoded
    assert len(list(cache.glob("utkface-*.npz"))) == 2


CORRUPTIONS = {
    "empty": lambda whole: b"",
    "first_100_bytes": lambda whole: whole[:100],
    "half": lambda whole: whole[: len(whole) // 2],
    "without_last_byte": lambda whole: whole[:-1],
    "text": lambda whole: b"not a cache\n",
    "flipped_bytes_in_the_pixels": lambda whole: whole[:600] + bytes(400) + whole[1000:],
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_truncated_or_corrupt_cache_file_is_rebuilt_with_a_one_line_notice(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = write_utkface(tmp_path / "faces", utkface_names(range(20, 30)))
    cache = tmp_path / "cache"
    first = load_utkface(folder, cache_dir=cache)
    (cache_file,) = cache.glob("utkface-*.npz")
    whole = cache_file.read_bytes()
    cache_file.write_bytes(CORRUPTIONS[kind](whole))
    with caplog.at_level(logging.WARNING):
        again = load_utkface(folder, cache_dir=cache)
    assert torch.equal(_all_inputs(first), _all_inputs(again))
    notices = [r.getMessage() for r in caplog.records if "rebuilding" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0] and str(cache_file) in notices[0]
    assert cache_file.read_bytes() == whole  # rebuilt to the same content


def test_a_cache_file_of_other_data_under_this_name_is_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faces = write_utkface(tmp_path / "faces", utkface_names(range(20, 30)))
    other = write_utkface(tmp_path / "other", utkface_names(range(40, 50), chip=False))
    cache = tmp_path / "cache"
    expected = load_utkface(faces, cache_dir=cache)
    (mine,) = cache.glob("utkface-*.npz")
    load_utkface(other, cache_dir=tmp_path / "other-cache")
    (theirs,) = (tmp_path / "other-cache").glob("utkface-*.npz")
    mine.write_bytes(theirs.read_bytes())  # a copy under the wrong name: same shapes
    with caplog.at_level(logging.WARNING):
        again = load_utkface(faces, cache_dir=cache)
    assert "rebuilding the image cache" in caplog.text and "holds key" in caplog.text
    assert torch.equal(_all_inputs(expected), _all_inputs(again))
