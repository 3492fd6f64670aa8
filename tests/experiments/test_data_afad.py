"""AFAD from an ``AFAD-Full/<age>/<gender>/*.jpg`` fixture tree."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from data_fixtures import jpeg_bytes, write_afad

from simloss.experiments.data.afad import list_afad, load_afad


def test_tree_is_read_with_ages_from_folders(tmp_path: Path) -> None:
    full = write_afad(tmp_path, {15: 2, 16: 1, 40: 2, 75: 1, 80: 1})
    for folder in (tmp_path, full):  # the parent or AFAD-Full itself
        root, files, ages = list_afad(folder)
        assert root == full and len(files) == 14
        assert sorted(set(ages)) == [15, 16, 40, 75, 80]
        assert all(f.parent.parent.name == str(a) for f, a in zip(files, ages, strict=True))
    data = load_afad(tmp_path, cache_dir=tmp_path / "cache", val_fraction=0.25, test_fraction=0.25)
    assert data.num_classes == 61 and data.class_values[0] == 15.0 and data.class_values[-1] == 75
    assert data.info["excluded_outside_classes"] == 2  # age 80
    targets = torch.cat([data.train.targets, data.val.targets, data.test.targets])
    assert sorted((targets + 15).tolist()) == [15] * 4 + [16] * 2 + [40] * 4 + [75] * 2


def test_non_integer_age_folder_is_an_unrecognised_layout(tmp_path: Path) -> None:
    full = write_afad(tmp_path, {20: 1})
    (full / "twenty" / "111").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"integer age.*found 'twenty'"):
        list_afad(tmp_path)


def test_images_directly_in_an_age_folder_are_rejected(tmp_path: Path) -> None:
    full = write_afad(tmp_path, {20: 1})
    (full / "20" / "stray.jpg").write_bytes(jpeg_bytes(1))
    with pytest.raises(ValueError, match=r"gender folders .* found the file 'stray\.jpg'"):
        list_afad(tmp_path)


def test_missing_and_empty_trees(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_afad(tmp_path / "absent")
    (tmp_path / "AFAD-Full").mkdir()
    with pytest.raises(ValueError, match="found none"):
        list_afad(tmp_path)


def test_truncated_image_is_named_or_skipped(tmp_path: Path) -> None:
    full = write_afad(tmp_path, {30: 3, 31: 3})
    bad = next((full / "31" / "112").iterdir())
    bad.write_bytes(jpeg_bytes(5)[:200])
    with pytest.raises(ValueError, match=rf"Could not decode image .*{bad.name}"):
        load_afad(tmp_path, cache_dir=tmp_path / "cache")
    data = load_afad(tmp_path, cache_dir=tmp_path / "cache", skip_unreadable=True)
    assert data.info["skipped_unreadable"] == 1 and data.info["used"] == 11
