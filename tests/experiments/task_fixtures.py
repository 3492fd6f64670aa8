"""Real data written as a user's own task would hold it: skordinal's ordinal benchmark tables
as CSV files with a header, Abalone as CSV and .npz, UTKFace faces as a class-per-folder tree."""

from __future__ import annotations

import importlib.util
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path


def skordinal_table(name: str) -> tuple[list[str], list[list[str]], list[str]]:
    """``(feature names, rows of feature cells, labels)`` of a table shipped in skordinal's wheel.

    The wheel's CSV files (scikit-learn's bundled layout) start with ``n_samples,
    n_features, target names...``; each row holds the features, then the index of
    its target name. Skips when skordinal is not installed.
    """
    spec = importlib.util.find_spec("skordinal")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("skordinal is not installed (pip install -e '.[test]')")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / f"{name}.csv"
    lines = path.read_text().split()
    head = lines[0].split(",")
    count, features, targets = int(head[0]), int(head[1]), head[2:]
    rows = [line.split(",") for line in lines[1 : count + 1]]
    names = [f"in{i + 1}" for i in range(features)]
    return names, [r[:features] for r in rows], [targets[int(r[features])] for r in rows]


def write_skordinal_csv(folder: Path, name: str, *, delimiter: str = ",") -> Path:
    """skordinal's ``name`` table as a user's CSV (or TSV) file with a header row."""
    names, rows, labels = skordinal_table(name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.{'tsv' if delimiter == chr(9) else 'csv'}"
    lines = [delimiter.join([*names, "label"])]
    lines += [delimiter.join([*row, label]) for row, label in zip(rows, labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_task(path: Path, text: str) -> Path:
    """A task file (TOML) with the given text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


ABALONE_HEADER = (
    "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"
)


def write_abalone_csv(folder: Path) -> Path:
    """The embedded Abalone file as a CSV with a header row."""
    text = resources.files("simloss").joinpath("data/abalone.data").read_text()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "abalone.csv"
    path.write_text(ABALONE_HEADER + "\n" + text)
    return path


def write_abalone_npz(folder: Path) -> Path:
    """The embedded Abalone data as arrays: X = sex one-hot (M, F, I) + 7 measurements, y = rings."""
    from simloss.experiments.data.abalone import read_abalone

    features, rings = read_abalone()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "abalone.npz"
    np.savez(path, X=features, y=rings)
    return path


def utkface_class_folders(root: Path, ages: dict[int, int]) -> Path:
    """Real UTKFace faces laid out as ``root/<age>/<file>`` (symlinks), ``ages[age]`` images each.

    The first images of each age in name order from ``crop_part1``; skips without it.
    """
    source = shared_path("utkface", "crop_part1")
    by_age: dict[int, list[Path]] = {}
    for file in sorted(source.iterdir()):
        age = int(file.name.split("_")[0])
        if age in ages and len(by_age.setdefault(age, [])) < ages[age]:
            by_age[age].append(file)
    for age, files in by_age.items():
        folder = root / str(age)
        folder.mkdir(parents=True, exist_ok=True)
        for file in files:
            (folder / file.name).symlink_to(file)
    return root
