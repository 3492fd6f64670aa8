"""The embedded Abalone data: vendored file, parsing, binning, standardisation."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_path
from simloss.experiments.data.abalone import load_abalone, read_abalone, rings_to_class


def test_vendored_file_is_the_uci_file_and_has_its_attribution() -> None:
    vendored = resources.files("simloss").joinpath("data/abalone.data").read_bytes()
    assert vendored == shared_path("abalone", "abalone.data").read_bytes()
    notice = resources.files("simloss").joinpath("data/ABALONE_LICENSE.txt").read_text()
    assert "CC BY 4.0" in notice and "Nash" in notice and "UCI" in notice


def test_rows_parse_like_an_independent_reader() -> None:
    features, rings = read_abalone()
    text = resources.files("simloss").joinpath("data/abalone.data").read_text()
    rows = [line.split(",") for line in text.split()]
    assert len(rows) == len(rings) == 4177
    sexes = np.array([r[0] for r in rows])
    assert np.array_equal(features[:, 0] == 1, sexes == "M")
    assert np.array_equal(features[:, 1] == 1, sexes == "F")
    assert np.array_equal(features[:, 2] == 1, sexes == "I")
    expected = np.array([[float(v) for v in r[1:8]] for r in rows], dtype=np.float32)
    assert np.array_equal(features[:, 3:], expected)
    assert rings.tolist() == [int(r[8]) for r in rows]


def test_binning_merges_rare_ring_counts_into_edge_classes() -> None:
    data = load_abalone()
    _, rings = read_abalone()
    assert data.num_classes == 17 and data.class_values == [float(v) for v in range(4, 21)]
    expected = np.where(rings <= 4, 0, np.where(rings >= 20, 16, rings - 4))
    assert np.array_equal(rings_to_class(rings), expected)
    assert data.class_names is not None and data.class_names[0] == "<=4"
    assert data.class_names[-1] == ">=20"
    all_targets = torch.cat([data.train.targets, data.val.targets, data.test.targets])
    assert np.array_equal(np.sort(all_targets.numpy()), np.sort(expected))


def test_standardisation_uses_training_statistics_only() -> None:
    data = load_abalone(split_seed=3)
    x = data.standardize(data.train.inputs)
    assert torch.allclose(x[:, 3:].mean(0), torch.zeros(7), atol=1e-5)
    assert torch.allclose(x[:, 3:].std(0, unbiased=False), torch.ones(7), atol=1e-4)
    assert torch.equal(x[:, :3], data.train.inputs[:, :3])  # one-hot left as 0/1


def test_split_seed_changes_the_split_and_limit_subsets() -> None:
    a, b = load_abalone(split_seed=0), load_abalone(split_seed=1)
    assert not torch.equal(a.test.targets, b.test.targets)
    small = load_abalone(limit=50)
    assert (len(small.train), len(small.val), len(small.test)) == (30, 10, 10)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("M,0.4,0.3,0.1,0.5,0.2,0.1,0.15", "Expected 9 cells"),
        ("X,0.4,0.3,0.1,0.5,0.2,0.1,0.15,9", "Expected a category of column 'sex'"),
        ("M,0.4,abc,0.1,0.5,0.2,0.1,0.15,9", "Expected a number in .*column 'diameter'"),
        ("M,0.4,0.3,0.1,0.5,0.2,0.1,0.15,9.5", "Expected an integer ring count"),
        ("M,0.4,nan,0.1,0.5,0.2,0.1,0.15,9", "Expected a number in .*column 'diameter'"),
        # Python's float() would read these as 10 and 4: refused, not read as something else.
        ("M,1_0,0.3,0.1,0.5,0.2,0.1,0.15,9", "Expected a number in .*column 'length'"),
        ("M,\uff14,0.3,0.1,0.5,0.2,0.1,0.15,9", "Expected a number in .*column 'length'"),
        ("M,0.4,0.3,-0.1,0.5,0.2,0.1,0.15,9", "Expected a value >= 0 in .*column 'height'"),
        # Finite in float64, infinite in float32 (the model's dtype).
        ("M,0.4,0.3,1e300,0.5,0.2,0.1,0.15,9", "float32 range .*column 'height'"),
    ],
)
def test_malformed_rows_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "abalone.data"
    path.write_text("F,0.5,0.4,0.1,0.6,0.2,0.1,0.2,10\n" + line + "\n")
    with pytest.raises(ValueError, match=message) as info:
        read_abalone(path)
    assert f"{path} line 2" in str(info.value)
    with pytest.raises(ValueError, match="line 2"):
        read_abalone(tmp_path)


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_abalone(tmp_path / "nope.data")
