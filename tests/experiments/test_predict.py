"""Predicting with a trained run: the stored preprocessing reproduces the run's own predictions."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import shared_path
from simloss.experiments.config import TrainConfig
from simloss.experiments.data.splits import random_split, subset_indices
from simloss.experiments.data.utkface import list_utkface
from simloss.experiments.predict import (
    load_run,
    predict_images,
    predict_inputs,
    predict_rows,
    predictions_csv,
)
from simloss.experiments.train import run_training


def _pil_60(path: Path) -> np.ndarray:
    """Independent decoding: Pillow, RGB, bilinear 60x60, float64 in [0, 1], (3, 60, 60)."""
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((60, 60), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float64).transpose(2, 0, 1) / 255.0


def _age_cnn_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The age CNN written out with torch.nn.functional (not the AgeCNN module)."""
    out = F.max_pool2d(F.relu(F.conv2d(x, state["conv1.weight"], state["conv1.bias"])), 2)
    out = F.max_pool2d(F.relu(F.conv2d(out, state["conv2.weight"], state["conv2.bias"])), 2)
    out = F.relu(F.conv2d(out, state["conv3.weight"], state["conv3.bias"])).flatten(1)
    out = F.relu(out @ state["dense1.weight"].T + state["dense1.bias"])
    return torch.softmax(out @ state["dense2.weight"].T + state["dense2.bias"], dim=1)


def test_a_utkface_run_predicts_real_images_as_it_did_in_its_test(tmp_path: Path) -> None:
    folder = shared_path("utkface", "crop_part1")
    config = TrainConfig(
        dataset="utkface", data_dir=str(folder), cache_dir=str(tmp_path / "cache"), r=0.3,
        epochs=3, limit=300, batch_size=64, progress=False,
    )  # fmt: skip
    record = run_training(config, tmp_path / "run")
    # The run's images, found independently of the loader: ages 1..90, the documented
    # subset (split seed 0) and the 60/20/20 split.
    files, ages = list_utkface(folder)
    kept = [(f, a) for f, a in zip(files, ages, strict=True) if 1 <= a <= 90]
    chosen = [kept[i] for i in subset_indices(len(kept), 300, 0)]
    train, _, test = random_split(300, 0.2, 0.2, 0)
    test_files = [chosen[i][0] for i in test]
    true_age = np.array([chosen[i][1] for i in test])

    run = load_run(tmp_path / "run")
    predictions = predict_images(run, test_files, batch_size=17)
    predicted_age = np.array([p.value for p in predictions])
    # 1. The run's own test-set predictions: the record's metrics come back.
    metrics = record["metrics"]["test"]
    assert metrics["acc"] == pytest.approx(np.mean(predicted_age == true_age), abs=1e-9)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(predicted_age - true_age)))
    assert metrics["mse"] == pytest.approx(np.mean((predicted_age - true_age) ** 2))
    assert [p.class_index + 1 for p in predictions] == predicted_age.tolist()
    # 2. The stored standardisation equals the training images' statistics (float64, numpy).
    train_pixels = np.stack([_pil_60(chosen[i][0]) for i in train])
    stored = record["preprocessing"]
    assert stored["kind"] == "image" and stored["input_shape"] == [3, 60, 60]
    assert stored["channels"] == "RGB" and stored["stats_shape"] == [1, 3, 1, 1]
    np.testing.assert_allclose(stored["mean"], train_pixels.mean(axis=(0, 2, 3)), atol=1e-6)
    np.testing.assert_allclose(stored["std"], train_pixels.std(axis=(0, 2, 3)), atol=1e-6)
    # 3. An independent forward: Pillow decoding, float64 standardisation, functional CNN.
    mean = train_pixels.mean(axis=(0, 2, 3))[None, :, None, None]
    std = train_pixels.std(axis=(0, 2, 3))[None, :, None, None]
    x = (np.stack([_pil_60(f) for f in test_files]) - mean) / std
    state = torch.load(tmp_path / "run" / "model.pt", map_location="cpu", weights_only=True)
    expected = _age_cnn_forward(state, torch.tensor(x, dtype=torch.float32))
    ours = torch.tensor([p.probability for p in predictions])
    torch.testing.assert_close(ours, expected.max(dim=1).values, rtol=1e-4, atol=1e-5)
    top2 = expected.topk(2, dim=1).values
    clear = (top2[:, 0] - top2[:, 1] > 1e-4).numpy()
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(predicted_age[clear], expected.argmax(dim=1).numpy()[clear] + 1)


def _abalone_lines() -> list[str]:
    text = resources.files("simloss").joinpath("data/abalone.data").read_text()
    return [line for line in text.splitlines() if line.strip()]


def test_an_abalone_run_predicts_rows_and_feature_vectors_as_in_its_test(tmp_path: Path) -> None:
    record = run_training(
        TrainConfig(r=0.5, epochs=15, limit=800, progress=False), tmp_path / "run"
    )
    lines = _abalone_lines()
    chosen = [lines[i] for i in subset_indices(len(lines), 800, 0)]
    train, _, test = random_split(800, 0.2, 0.2, 0)
    rows = tmp_path / "rows.csv"
    rows.write_text("".join(chosen[i] + "\n" for i in test))
    run = load_run(tmp_path / "run")
    predictions = predict_rows(run, rows)
    assert [p.input for p in predictions] == [f"{rows}:{n}" for n in range(1, len(test) + 1)]
    rings = np.array([int(chosen[i].split(",")[8]) for i in test])
    true_value = np.clip(rings, 4, 20)
    value = np.array([p.value for p in predictions])
    metrics = record["metrics"]["test"]
    assert metrics["acc"] == pytest.approx(np.mean(value == true_value), abs=1e-9)
    assert metrics["mae"] == pytest.approx(np.mean(np.abs(value - true_value)))
    assert metrics["mse"] == pytest.approx(np.mean((value - true_value) ** 2))
    names = {4: "<=4", 20: ">=20"}
    assert all(p.name == names.get(int(p.value), str(int(p.value))) for p in predictions)

    # An independent forward: hand-made features, numpy standardisation, the MLP written out.
    def features(line: str) -> list[float]:
        sex, *numbers = line.split(",")[:8]
        return [float(sex == s) for s in "MFI"] + [float(v) for v in numbers]

    x_train = np.array([features(chosen[i]) for i in train])
    mean, std = np.zeros(10), np.ones(10)
    mean[3:], std[3:] = x_train[:, 3:].mean(0), x_train[:, 3:].std(0)
    np.testing.assert_allclose(record["preprocessing"]["mean"], mean, atol=1e-6)
    np.testing.assert_allclose(record["preprocessing"]["std"], std, atol=1e-6)
    raw = np.array([features(chosen[i]) for i in test])
    h = torch.tensor((raw - mean) / std, dtype=torch.float32)
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    for layer in ("net.0", "net.2"):
        h = torch.relu(h @ state[f"{layer}.weight"].T + state[f"{layer}.bias"])
    probs = torch.softmax(h @ state["net.4.weight"].T + state["net.4.bias"], dim=1)
    np.testing.assert_array_equal([p.class_index for p in predictions], probs.argmax(1).numpy())
    torch.testing.assert_close(
        torch.tensor([p.probability for p in predictions]), probs.max(1).values, atol=1e-5, rtol=0
    )
    # The feature vector itself (Python), and rows without the ring count, agree.
    labels = [p.input for p in predictions]
    assert predict_inputs(run, torch.tensor(raw, dtype=torch.float32), labels) == predictions
    rows.write_text("".join(",".join(chosen[i].split(",")[:8]) + "\n" for i in test))
    assert predict_rows(run, rows) == predictions


def test_the_csv_lists_class_value_name_and_probability(tmp_path: Path) -> None:
    run_training(TrainConfig(r=0.5, epochs=2, limit=200, progress=False), tmp_path / "run")
    rows = tmp_path / "rows.csv"
    rows.write_text(_abalone_lines()[0] + "\n\n" + _abalone_lines()[1] + "\n")
    predictions = predict_rows(load_run(tmp_path / "run"), rows)
    text = predictions_csv(predictions).splitlines()
    assert text[0] == "input,class,value,name,probability" and len(text) == 3
    assert text[2].startswith(f"{rows}:3,")  # the blank line 2 is skipped, lines keep numbers
    cells = text[1].split(",")
    assert int(cells[1]) == predictions[0].class_index and int(cells[2]) == predictions[0].value


def test_runs_and_inputs_that_do_not_fit_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="Run folder .* does not exist"):
        load_run(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="record.json is missing"):
        load_run(tmp_path / "empty")
    (tmp_path / "empty" / "record.json").mkdir()
    with pytest.raises(IsADirectoryError, match="run record .*record.json to be a file, but it is"):
        load_run(tmp_path / "empty")
    out = tmp_path / "run"
    run_training(TrainConfig(r=0.5, epochs=2, limit=200, progress=False), out)
    run = load_run(out)
    with pytest.raises(ValueError, match="Expected an image run for image files"):
        predict_images(run, [out / "model.pt"])
    bad_rows = tmp_path / "bad.csv"
    bad_rows.write_text("M,0.4,0.3\n")
    with pytest.raises(ValueError, match=r"Expected 9 cells in .*bad.csv line 1"):
        predict_rows(run, bad_rows)
    # A record from before the preprocessing was stored.
    record = json.loads((out / "record.json").read_text())
    del record["preprocessing"]
    (out / "record.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"Expected the input preprocessing in .*record.json"):
        load_run(out)
    # Broken weights are named (the one checkpoint loader).
    record["preprocessing"] = run.preprocessing.to_dict()
    (out / "record.json").write_text(json.dumps(record))
    (out / "model.pt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"Could not read checkpoint .*model.pt.*empty"):
        load_run(out)


def test_an_image_run_refuses_rows_and_unreadable_images(tmp_path: Path) -> None:
    from data_fixtures import utkface_names, write_utkface

    faces = write_utkface(tmp_path / "faces", utkface_names(range(20, 40)))
    config = TrainConfig(dataset="utkface", data_dir=str(faces), cache_dir=str(tmp_path / "c"),
                         r=0.3, epochs=1, progress=False)  # fmt: skip
    run_training(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    with pytest.raises(ValueError, match="Expected a run trained on table rows"):
        predict_rows(run, tmp_path / "rows.csv")
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ValueError, match=r"Could not decode image .*notes.jpg"):
        predict_images(run, [tmp_path / "notes.jpg"])
    with pytest.raises(FileNotFoundError, match="absent.jpg does not exist"):
        predict_images(run, [tmp_path / "absent.jpg"])
    # Images of another size are resized as in training: the 80x80 JPEG and its 60x60
    # PNG resize predict alike.
    first = sorted(faces.iterdir())[0]
    small = tmp_path / "small.png"
    Image.open(first).convert("RGB").resize((60, 60), Image.Resampling.BILINEAR).save(small)
    a, b = predict_images(run, [first, small])
    assert a.class_index == b.class_index and a.probability == pytest.approx(b.probability)
