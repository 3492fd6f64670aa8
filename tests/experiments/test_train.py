"""run_training: the record, best-epoch weights, determinism, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from data_fixtures import CIFAR_SAMPLE, cifar_fixture_from_sample

import simloss.experiments.train as train_module
from conftest import shared_path
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.models import build_model, load_checkpoint
from simloss.experiments.task import builtin_task as dataset_spec
from simloss.experiments.train import build_similarity, run_training
from simloss.similarity.embeddings import from_embeddings

CONTRACT_KEYS = {
    "schema_version", "config", "seed", "dataset", "param", "param_value", "class_values",
    "class_names", "history", "best_epoch", "metrics", "distributions", "weights",
    "wall_time_s", "num_examples",
}  # fmt: skip


def abalone(**kwargs: Any) -> TrainConfig:
    settings: dict[str, Any] = {"dataset": "abalone", "progress": False, "limit": 600}
    settings.update(kwargs)
    return TrainConfig(**settings)


def without_times(record: dict[str, Any]) -> dict[str, Any]:
    clean = json.loads(json.dumps(record))
    clean.pop("wall_time_s")
    for entry in clean["history"]:
        entry.pop("time_s")
        entry.pop("train_time_s")
    return clean


def test_utkface_two_epoch_run_writes_a_complete_record(tmp_path: Path) -> None:
    config = TrainConfig(
        dataset="utkface",
        data_dir=str(shared_path("utkface", "crop_part1")),
        cache_dir=str(tmp_path / "cache"),
        r=0.3,
        epochs=2,
        limit=200,
        progress=False,
    )
    out = tmp_path / "run"
    record = run_training(config, out)
    assert json.loads((out / "record.json").read_text()) == record
    assert set(record) >= CONTRACT_KEYS
    assert record["schema_version"] == 1 and record["dataset"] == "utkface"
    assert record["config"] == config.resolve().to_dict()
    assert json.loads((out / "config.json").read_text()) == record["config"]
    assert (record["param"], record["param_value"], record["seed"]) == ("r", 0.3, 0)
    assert record["class_values"] == [float(a) for a in range(1, 91)]
    assert record["num_examples"] == {"train": 120, "val": 40, "test": 40}
    assert [h["epoch"] for h in record["history"]] == [1, 2]
    for entry in record["history"]:
        assert set(entry) == {"epoch", "train_loss", "val_loss", "val", "time_s", "train_time_s"}
        assert 0 < entry["train_time_s"] < entry["time_s"]
        decoded = {f"{m}_{d}" for m in ("mae", "mse") for d in ("expectation", "median")}
        assert set(entry["val"]) >= {"acc", "mae", "mse", "qwk", "amae", "rps", *decoded}
        assert tuple(entry["val"]) == dataset_spec("utkface").record_metrics
    assert record["best_epoch"] in (1, 2)
    assert set(record["metrics"]) == {"val", "test"}
    dist = record["distributions"]
    assert len(dist["test_mean"]) == 90 and abs(sum(dist["test_mean"]) - 1) < 1e-5
    assert len(dist["test_per_class"]) == 90 and abs(sum(dist["test_label"]) - 1) < 1e-9

    # Independent check: the saved weights reproduce the test metrics and distributions.
    data = load_data(config)
    model = build_model("age_cnn", data.input_shape, 90)
    model.load_state_dict(load_checkpoint(out / record["weights"]))
    model.eval()
    with torch.no_grad():
        probs = torch.softmax(model(data.standardize(data.test.inputs)), 1).double().numpy()
    pred_age = probs.argmax(1) + 1
    true_age = data.test.targets.numpy() + 1
    test = record["metrics"]["test"]
    assert test["acc"] == pytest.approx(np.mean(pred_age == true_age))
    assert test["mae"] == pytest.approx(np.mean(np.abs(pred_age - true_age)))
    assert test["mse"] == pytest.approx(np.mean((pred_age - true_age) ** 2))
    # The other decoders: the expected age and the median age of the predicted distribution.
    ages = np.arange(1, 91)
    expected_age = probs @ ages
    median_age = ages[np.argmax(np.cumsum(probs, 1) >= 0.5, axis=1)]
    assert test["mae_expectation"] == pytest.approx(np.mean(np.abs(expected_age - true_age)))
    assert test["mse_median"] == pytest.approx(np.mean((median_age - true_age) ** 2))
    np.testing.assert_allclose(dist["test_mean"], probs.mean(0), atol=1e-5)
    labels = np.bincount(true_age - 1, minlength=90) / len(true_age)
    np.testing.assert_allclose(dist["test_label"], labels)
    for cls, row in enumerate(dist["test_per_class"]):
        members = true_age - 1 == cls
        if members.any():
            np.testing.assert_allclose(row, probs[members].mean(0), atol=1e-5)
        else:
            assert row is None


def test_same_seed_same_record_and_seeds_matter(tmp_path: Path) -> None:
    first = run_training(abalone(r=0.5, epochs=6), tmp_path / "a")
    again = run_training(abalone(r=0.5, epochs=6), tmp_path / "b")
    assert without_times(first) == without_times(again)
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    other_seed = run_training(abalone(r=0.5, epochs=6, seed=1), tmp_path / "c")
    assert other_seed["history"][0]["train_loss"] != first["history"][0]["train_loss"]
    assert other_seed["num_examples"] == first["num_examples"]
    other_split = run_training(abalone(r=0.5, epochs=6, split_seed=1), tmp_path / "d")
    assert other_split["distributions"]["test_label"] != first["distributions"]["test_label"]


def test_image_model_runs_are_deterministic_too(tmp_path: Path) -> None:
    config = TrainConfig(
        dataset="utkface",
        data_dir=str(shared_path("utkface", "crop_part1")),
        cache_dir=str(tmp_path / "cache"),
        r=0.8,
        epochs=1,
        limit=80,
        batch_size=32,
        progress=False,
    )
    first = run_training(config, tmp_path / "a")
    again = run_training(config, tmp_path / "b")
    assert without_times(first) == without_times(again)
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()


def test_early_stopping_keeps_the_best_epoch(tmp_path: Path) -> None:
    record = run_training(abalone(r=0.3, patience=3, epochs=400, lr=0.05), tmp_path)
    history, best = record["history"], record["best_epoch"]
    maes = [h["val"]["mae"] for h in history]
    assert len(history) == best + 3 < 400
    assert maes[best - 1] == min(maes) and maes.index(min(maes)) == best - 1
    # The restored weights give the best epoch's validation metrics.
    assert record["metrics"]["val"] == pytest.approx(history[best - 1]["val"])


def test_identity_equals_class_order_with_r_zero(tmp_path: Path) -> None:
    identity = run_training(abalone(epochs=3), tmp_path / "i")
    order = run_training(abalone(r=0.0, epochs=3), tmp_path / "o")
    assert identity["param"] is None and order["param"] == "r"
    for a, b in zip(identity["history"], order["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val"] == pytest.approx(b["val"], rel=1e-6)


def test_interrupted_run_leaves_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    run_training(abalone(r=0.5, epochs=2), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real = train_module.evaluate

    def interrupt(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_training(abalone(r=0.9, epochs=5), out, overwrite=True)
    # The old run is whole: its config.json still says r = 0.5, beside its own files.
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads((out / "config.json").read_text())["r"] == 0.5

    fresh = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        run_training(abalone(r=0.9, epochs=5), fresh)
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no hidden leftovers


def test_cifar_run_with_class_name_vectors(tmp_path: Path) -> None:
    sample = shared_path(*CIFAR_SAMPLE)
    vectors = shared_path("cifar100", "glove100d_class_embeddings.npy")
    cifar_fixture_from_sample(sample, sample.parent, tmp_path / "data")
    config = TrainConfig(
        dataset="cifar100",
        data_dir=str(tmp_path / "data"),
        l=0.5,
        vectors=str(vectors),
        val_fraction=0.34,
        cifar_classes="paper96",
        epochs=2,
        progress=False,
    )
    record = run_training(config, tmp_path / "run")
    assert (record["param"], record["param_value"]) == ("l", 0.5)
    assert tuple(record["metrics"]["test"]) == dataset_spec("cifar100").record_metrics
    assert set(record["metrics"]["test"]) >= {"acc", "sa", "fsa", "mistake_severity", "hf"}
    assert len(record["class_names"]) == 96 and len(record["fine_to_coarse"]) == 96
    assert len(record["distributions"]["test_mean"]) == 96
    # The similarity is the thin call: vectors of the kept classes, lower bound l.
    data = load_data(config)
    kept = data.source_class_indices
    assert kept is not None
    expected = from_embeddings(np.load(vectors)[kept], lower_bound=0.5)
    torch.testing.assert_close(build_similarity(config.resolve(), data), expected)


def test_vector_file_with_wrong_rows_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    np.save(path, np.ones((5, 3)))
    data = load_data(abalone())
    config = TrainConfig(similarity="embeddings", l=0.1, vectors=str(path))
    with pytest.raises(ValueError, match=r"Expected 17 rows \(one per class\)"):
        build_similarity(config, data)


def test_run_training_rejects_non_configs(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="Expected `config` to be a TrainConfig"):
        run_training({"dataset": "abalone"}, tmp_path)  # type: ignore[arg-type]
