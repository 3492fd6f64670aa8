"""A user's image folder as a task: real faces as class folders, any image mode, bad files named."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from task_fixtures import utkface_class_folders, write_task

from conftest import shared_path
from simloss.cli import main
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.data._images import decode_image
from simloss.experiments.predict import load_run, predict_images
from simloss.experiments.report import write_report
from simloss.experiments.sweep import Grid, load_records, run_sweep
from simloss.experiments.train import run_training

AGES = {20: 30, 21: 30, 22: 30, 23: 30, 24: 30}


def _faces_task(tmp_path: Path, extra: str = "", layout: str = "") -> Path:
    root = utkface_class_folders(tmp_path / "faces", AGES)
    return write_task(
        tmp_path / "faces.toml",
        f"""
name = "faces"
model = "age_cnn"
[data]
kind = "images"
path = "{root}"
size = 60
split = "random"
{layout}
{extra}
""",
    )


def test_class_folders_load_as_the_builtin_loader_loads_the_same_faces(tmp_path: Path) -> None:
    task = _faces_task(tmp_path)
    flat = tmp_path / "flat"
    flat.mkdir()
    for image in sorted((tmp_path / "faces").rglob("*.jpg")):
        (flat / image.name).symlink_to(image.resolve())
    settings = {"epochs": 2, "r": 0.5, "batch_size": 64, "progress": False, "num_threads": 1}
    common = {"cache_dir": str(tmp_path / "cache"), "split_seed": 1}
    folders = load_data(TrainConfig(task=str(task), **common))
    builtin = load_data(
        TrainConfig(dataset="utkface", data_dir=str(flat), min_age=20, max_age=24, **common)
    )
    assert folders.num_classes == builtin.num_classes == 5
    assert folders.class_values == builtin.class_values == [20.0, 21.0, 22.0, 23.0, 24.0]
    for a, b in ((folders.train, builtin.train), (folders.test, builtin.test)):
        assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    # The same images, the same training: the same metrics.
    by_folders = run_training(TrainConfig(task=str(task), **common, **settings), tmp_path / "a")
    by_builtin = run_training(
        TrainConfig(dataset="utkface", data_dir=str(flat), min_age=20, max_age=24, model="age_cnn",
                    **common, **settings),
        tmp_path / "b",
    )  # fmt: skip
    assert by_folders["metrics"] == by_builtin["metrics"]
    assert by_folders["class_names"] == ["20", "21", "22", "23", "24"]


def test_an_image_task_trains_sweeps_reports_and_predicts(tmp_path: Path) -> None:
    task = _faces_task(tmp_path, layout='channels = "grey"')
    task.write_text(
        task.read_text()
        .replace('model = "age_cnn"', 'model = "cnn"')
        .replace("size = 60", "size = [32, 40]")
    )
    base = TrainConfig(task=str(task), epochs=2, batch_size=64, progress=False, num_threads=1,
                       cache_dir=str(tmp_path / "cache"))  # fmt: skip
    out = tmp_path / "sweep"
    assert run_sweep(base, Grid("r", (0.0, 0.6), 1), out).ok
    assert run_sweep(base, Grid(None, (), 1, loss="corn"), out).ok
    records = load_records(out)
    assert {r["loss"] for r in records} == {"simloss", "corn"}
    assert records[0]["preprocessing"]["input_shape"] == [1, 32, 40]
    report = write_report(records, tmp_path / "report").read_text()
    assert "# Loss comparison: faces" in report
    run = next(p.parent for p in (out / "trials").rglob("record.json"))
    trained = load_run(run)
    folder = tmp_path / "faces" / "22"
    by_folder = predict_images(trained, [folder])
    files = sorted(folder.iterdir())
    assert [p.input for p in by_folder] == [str(f) for f in files]
    assert [p.probability for p in predict_images(trained, files)] == [
        p.probability for p in by_folder
    ]


def test_predict_expands_a_folder_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    task = _faces_task(tmp_path)
    assert main(["train", "--task", str(task), "--r", "0.3", "--epochs", "1", "--no-progress",
                 "--cache-dir", str(tmp_path / "c"), "--out", str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["predict", "--run", str(tmp_path / "run"), str(tmp_path / "faces" / "20")]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert len(rows) == 1 + AGES[20]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["predict", "--run", str(tmp_path / "run"), str(empty)]) == 1
    assert f"Expected image files in folder {empty}, but found none" in capsys.readouterr().err


def _face(size: int = 200) -> np.ndarray:
    """A real face in 8-bit grey."""
    path = sorted(shared_path("utkface", "crop_part1").iterdir())[0]
    with Image.open(path) as image:
        return np.asarray(image.convert("L").resize((size, size)))


def test_a_16_bit_png_decodes_as_its_8_bit_twin(tmp_path: Path) -> None:
    grey = _face()
    Image.fromarray(grey).save(tmp_path / "face8.png")
    wide = grey.astype(np.uint16) * 257  # the same picture in 16 bits (0..255 -> 0..65535)
    Image.fromarray(wide).save(tmp_path / "face16.png")
    with Image.open(tmp_path / "face16.png") as image:
        assert image.mode == "I;16"
    eight = decode_image(tmp_path / "face8.png", 60)
    sixteen = decode_image(tmp_path / "face16.png", 60)
    assert np.array_equal(eight, sixteen)
    # Not a white square: the mean grey level is the picture's (Pillow's plain conversion
    # clipped every 16-bit value above 255 to white).
    assert abs(float(sixteen.mean()) - float(eight.mean())) < 1e-9 and sixteen.mean() < 200
    clipped = np.asarray(Image.open(tmp_path / "face16.png").convert("RGB"))
    assert clipped.mean() > 250  # the failure this guards against


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"])
def test_every_common_mode_decodes_to_rgb_and_grey(tmp_path: Path, mode: str) -> None:
    grey = _face(64)
    image = Image.fromarray(grey).convert("RGB")
    image = Image.fromarray(grey.astype(np.uint16) * 257) if mode == "I;16" else image.convert(mode)
    path = tmp_path / ("face.tif" if mode == "CMYK" else "face.png")
    image.save(path)
    assert decode_image(path, 32).shape == (32, 32, 3)
    assert decode_image(path, (16, 24), "grey").shape == (16, 24, 1)


def test_32_bit_images_are_refused_not_guessed(tmp_path: Path) -> None:
    Image.fromarray(np.full((8, 8), 70000, dtype=np.int32)).save(tmp_path / "wide.tif")
    with pytest.raises(
        ValueError,
        match=r"Could not decode image .*wide.tif: expected an 8- or 16-bit image, but found a 32-bit integer image",
    ):
        decode_image(tmp_path / "wide.tif", 8)


@pytest.mark.parametrize("side", [300, 400], ids=["pillow-warns", "pillow-refuses"])
def test_a_decompression_bomb_is_an_unreadable_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int
) -> None:
    task = _faces_task(tmp_path)
    # Pillow warns above MAX_IMAGE_PIXELS and refuses above twice it; a smaller limit makes
    # both here (the real cases, 10000 x 10000 and 15000 x 15000 PNGs, take the same paths
    # at the default limit). The faces have 200 x 200 = 40,000 pixels.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    bomb = tmp_path / "faces" / "21" / "bomb.png"
    Image.fromarray(np.zeros((side, side), dtype=np.uint8)).save(bomb)
    assert (side * side > 2 * 50_000) == (side == 400)
    other = {"cache_dir": str(tmp_path / "cache")}
    with pytest.raises(
        ValueError,
        match=r"Could not decode image .*bomb.png: expected at most 50000 pixels \(Pillow's "
        r"decompression-bomb limit, PIL.Image.MAX_IMAGE_PIXELS\), but it has more",
    ):
        load_data(TrainConfig(task=str(task), **other))
    data = load_data(TrainConfig(task=str(task), skip_unreadable=True, **other))
    assert data.info["skipped_unreadable"] == 1 and data.info["used"] == sum(AGES.values())
    run = tmp_path / "run"
    run_training(TrainConfig(task=str(task), skip_unreadable=True, epochs=1, r=0.5,
                             progress=False, **other), run)  # fmt: skip
    with pytest.raises(ValueError, match=r"Could not decode image .*bomb.png: expected at most"):
        predict_images(load_run(run), [bomb])


def test_a_manifest_with_a_split_column_and_its_bad_rows(tmp_path: Path) -> None:
    root = utkface_class_folders(tmp_path / "faces", AGES)
    files = sorted(root.rglob("*.jpg"))
    manifest = tmp_path / "labels.csv"
    splits = ["train", "train", "train", "val", "test"]
    manifest.write_text("path,label,split\n" + "".join(
        f"{f.relative_to(tmp_path)},{f.parent.name},{splits[i % 5]}\n" for i, f in enumerate(files)
    ))  # fmt: skip
    task = write_task(
        tmp_path / "m.toml",
        f'name = "m"\n[data]\nkind = "images"\npath = "{manifest}"\nsize = 24\nsplit_column = "split"\n',
    )
    data = load_data(TrainConfig(task=str(task), cache_dir=str(tmp_path / "c")))
    assert (len(data.train), len(data.val), len(data.test)) == (90, 30, 30)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([*lines, lines[3]]) + "\n")  # a file listed twice
    with pytest.raises(
        ValueError,
        match=rf"Expected every image once in manifest .*labels.csv, but '.*' is on lines 4 and {len(lines) + 1}",
    ):
        load_data(TrainConfig(task=str(task), cache_dir=str(tmp_path / "c")))


def test_a_class_folder_outside_the_declared_order_is_named(tmp_path: Path) -> None:
    task = _faces_task(tmp_path, extra="[classes]\norder = [20, 21, 22, 23]\n")
    with pytest.raises(
        ValueError,
        match=r"Expected a label among the classes of .*faces \('20', '21', '22', '23'\), but image .* \(folder '24'\) has '24'",
    ):
        load_data(TrainConfig(task=str(task), cache_dir=str(tmp_path / "c")))


def _png_folders(root: Path, folders: dict[str, int]) -> Path:
    """Class folders of small random PNG images (``folders[name]`` images each)."""
    rng = np.random.default_rng(0)
    for name, count in folders.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_two_folder_names_of_one_number_are_refused_naming_both(tmp_path: Path) -> None:
    root = _png_folders(tmp_path / "imgs", {"5": 5, "05": 5, "6": 5})
    task = write_task(
        tmp_path / "t.toml", f'name = "t"\n[data]\nkind = "images"\npath = "{root}"\nsize = 8\n'
    )
    with pytest.raises(
        ValueError,
        match=r"Expected distinct labels to be distinct numbers in .*imgs, but '05' \(image "
        r".*05/0.png \(folder '05'\)\) and '5' \(image .*5/0.png \(folder '5'\)\) are both 5",
    ):
        load_data(TrainConfig(task=str(task), cache_dir=str(tmp_path / "c")))


def test_linked_sub_folders_are_read_and_broken_links_are_unreadable_images(
    tmp_path: Path,
) -> None:
    from simloss.experiments.sweep import data_fingerprint

    root = _png_folders(tmp_path / "imgs", {"5": 6, "6": 6, "7": 6})
    elsewhere = _png_folders(tmp_path / "more", {"batch": 4})
    (root / "6" / "batch").symlink_to(elsewhere / "batch")  # a linked sub-folder: 4 images
    task = write_task(
        tmp_path / "t.toml",
        f'name = "t"\n[data]\nkind = "images"\npath = "{root}"\nsize = 8\nsplit = "random"\n',
    )
    cache = {"cache_dir": str(tmp_path / "c")}
    data = load_data(TrainConfig(task=str(task), **cache))
    assert data.info["found"] == 6 + 6 + 4 + 6
    assert data_fingerprint(TrainConfig(task=str(task)))["files"] == 22
    (root / "7" / "gone.png").symlink_to(tmp_path / "deleted.png")
    with pytest.raises(
        ValueError,
        match=r"Could not decode image .*7/gone.png: expected a readable image file, but it is "
        r"a broken link \(to .*deleted.png\)",
    ):
        load_data(TrainConfig(task=str(task), **cache))
    data = load_data(TrainConfig(task=str(task), skip_unreadable=True, **cache))
    assert data.info["skipped_unreadable"] == 1 and data.info["used"] == 22
    (root / "7" / "gone.png").unlink()
    (root / "5" / "loop").symlink_to(root)
    with pytest.raises(
        ValueError,
        match=rf"Expected a folder tree without loops below .*, but .*5/loop links back to {root}",
    ):
        load_data(TrainConfig(task=str(task), **cache))


def test_a_manifest_row_naming_a_folder_and_a_tiny_split_are_named(tmp_path: Path) -> None:
    _png_folders(tmp_path / "imgs", {"5": 2, "6": 2})
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nimgs/5/0.png,5\nimgs/6,6\n")
    task = write_task(
        tmp_path / "m.toml", f'name = "m"\n[data]\nkind = "images"\npath = "{manifest}"\nsize = 8\n'
    )
    cache = {"cache_dir": str(tmp_path / "c")}
    with pytest.raises(
        IsADirectoryError,
        match=r"Expected image file .*imgs/6 \(manifest .*m.csv line 3\) to be a file, but it is a folder",
    ):
        load_data(TrainConfig(task=str(task), **cache))
    manifest.write_text("path,label\nimgs/5/0.png,5\nimgs/6/0.png,6\nimgs/6/1.png,6\n")
    with pytest.raises(
        ValueError, match=rf"Expected non-empty validation and test splits of {manifest}, but 3"
    ):
        load_data(TrainConfig(task=str(task), **cache))
