"""What a sweep over a user's task compares between two commands: the declaration, the data's
bytes and every file the similarity is built from; a change is refused, naming what changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from task_fixtures import write_skordinal_csv, write_task

from simloss.experiments.config import TrainConfig
from simloss.experiments.sweep import Grid, run_sweep

QUICK = {"epochs": 1, "progress": False, "batch_size": 128, "num_threads": 1}


def _era(tmp_path: Path, extra: str) -> Path:
    write_skordinal_csv(tmp_path / "data", "era")
    return write_task(
        tmp_path / "era.toml",
        f'name = "era"\n[data]\nkind = "table"\npath = "data/era.csv"\nlabel = "label"\n{extra}',
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_changed_vectors_file_of_the_task_is_refused_naming_it(tmp_path: Path) -> None:
    vectors = tmp_path / "v.npy"
    np.save(vectors, np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32))
    task = _era(tmp_path, '[similarity]\nkind = "embeddings"\nvectors = "v.npy"\n')
    base = TrainConfig(task=str(task), **QUICK)
    assert run_sweep(base, Grid("l", (0.5,), 1), tmp_path / "s").ok
    before = _sha256(vectors)
    np.save(vectors, np.random.default_rng(1).normal(size=(9, 4)).astype(np.float32))
    with pytest.raises(ValueError) as info:
        run_sweep(base, Grid("l", (0.5,), 1), tmp_path / "s")
    message = str(info.value)
    assert f"another vectors file: {vectors} changed (sha256 {before}, now {_sha256(vectors)})" in (
        message
    )
    assert "\n" not in message


def test_a_changed_hierarchy_file_of_the_task_is_refused_naming_it(tmp_path: Path) -> None:
    tree = tmp_path / "tree.txt"
    low, high = range(1, 5), range(5, 10)
    tree.write_text(
        "root low\nroot high\n" + "".join(f"low {c}\n" for c in low)
        + "".join(f"high {c}\n" for c in high)
    )  # fmt: skip
    task = _era(tmp_path, '[classes]\nhierarchy = "tree.txt"\n[similarity]\nkind = "hierarchy"\n')
    base = TrainConfig(task=str(task), **QUICK)
    assert run_sweep(base, Grid("l", (0.5,), 1), tmp_path / "s").ok
    tree.write_text(tree.read_text().replace("low 4\n", "").replace("high 5\n", "high 5\nhigh 4\n"))
    with pytest.raises(ValueError, match=rf"another hierarchy file: {tree} changed \(sha256 "):
        run_sweep(base, Grid("l", (0.5,), 1), tmp_path / "s")


def test_changed_data_is_refused_naming_the_tasks_data_path(tmp_path: Path) -> None:
    task = _era(tmp_path, "")
    base = TrainConfig(task=str(task), **QUICK)
    assert run_sweep(base, Grid("r", (0.5,), 1), tmp_path / "s").ok
    data = tmp_path / "data" / "era.csv"
    data.write_text(data.read_text().replace("\n1,", "\n2,", 1))
    with pytest.raises(ValueError, match=r"was made on other data: .*\(now 1 file\(s\), ") as info:
        run_sweep(base, Grid("r", (0.5,), 1), tmp_path / "s")
    assert f"in {data} (`data.path` of task file {task})" in str(info.value)
    assert "embedded" not in str(info.value)


def test_a_task_sweep_continued_on_the_builtin_dataset_says_so() -> None:
    from simloss.experiments.sweep.settings import check_settings

    stored = {"dataset": "rings", "fixed": {"task_sha256": "ab12"}, "data": None}
    wanted = {"dataset": "rings", "fixed": {}, "data": None, "heartbeat_interval": 60}
    with pytest.raises(
        ValueError, match=r"\(task file sha256 ab12, now none: the built-in dataset\)"
    ):
        check_settings(stored, wanted, "s", False)
    with pytest.raises(
        ValueError, match=r"\(task file sha256 none: the built-in dataset, now ab12\)"
    ):
        check_settings(wanted, {**stored, "heartbeat_interval": 60}, "s", False)
