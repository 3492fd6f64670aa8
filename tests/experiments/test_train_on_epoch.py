"""run_training's on_epoch hook: what it sees, and a run it stops (as tune's pruner does)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from simloss.experiments.config import TrainConfig
from simloss.experiments.train import run_training

SETTINGS = {"dataset": "abalone", "limit": 600, "progress": False}


def _best_epochs(history: list[dict[str, Any]], metric: str) -> list[int]:
    """The best epoch after each epoch: strict improvement of a lower-is-better metric."""
    best, best_epoch, out = math.inf, 0, []
    for entry in history:
        value = entry["val"][metric]
        if value < best:
            best, best_epoch = value, entry["epoch"]
        out.append(best_epoch)
    return out


def test_on_epoch_sees_the_history_and_the_best_epoch(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    def on_epoch(history: Any, best_epoch: int) -> str | None:
        seen.append((len(history), best_epoch))
        return None

    record = run_training(
        TrainConfig(r=0.5, epochs=12, patience=12, **SETTINGS), tmp_path, on_epoch=on_epoch
    )
    assert [n for n, _ in seen] == list(range(1, 13))
    # The best epoch handed over is early stopping's, recomputed here from the history.
    assert [b for _, b in seen] == _best_epochs(record["history"], "mae")
    assert record["stop_reason"] == "epochs" and record["epochs_run"] == 12


def test_a_reason_returned_stops_the_run_and_is_recorded(tmp_path: Path) -> None:
    def prune_at_five(history: Any, best_epoch: int) -> str | None:
        return "pruned" if len(history) == 5 else None

    record = run_training(
        TrainConfig(r=0.5, epochs=40, patience=40, **SETTINGS), tmp_path, on_epoch=prune_at_five
    )
    assert record["stop_reason"] == "pruned"
    assert record["epochs_run"] == len(record["history"]) == 5
    assert record["best_epoch"] == _best_epochs(record["history"], "mae")[-1]
    # A stopped run is a whole run: best weights, both splits evaluated, files written.
    assert set(record["metrics"]) == {"val", "test"}
    assert (
        record["metrics"]["val"]["mae"] == record["history"][record["best_epoch"] - 1]["val"]["mae"]
    )
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert on_disk["stop_reason"] == "pruned" and (tmp_path / "model.pt").is_file()


def test_early_stopping_says_so(tmp_path: Path) -> None:
    record = run_training(TrainConfig(r=0.3, epochs=400, patience=2, lr=0.05, **SETTINGS), tmp_path)
    assert record["stop_reason"] == "patience"
    assert record["epochs_run"] - record["best_epoch"] == 2
