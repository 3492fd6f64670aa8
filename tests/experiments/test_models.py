"""Models: shapes, errors, and the paper authors' AgeCNN checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from conftest import shared_path
from simloss.experiments.data.utkface import list_utkface
from simloss.experiments.models import MLP, AgeCNN, LeNet, build_model, load_checkpoint

CHECKPOINTS = ["model_0.0_01.p", "model_0.3_05.p", "model_0.8_08.p", "model_0.9_08.p"]


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The original model's forward, written out with torch.nn.functional: softmax included."""
    out = F.max_pool2d(F.relu(F.conv2d(x, state["conv1.weight"], state["conv1.bias"])), 2)
    out = F.max_pool2d(F.relu(F.conv2d(out, state["conv2.weight"], state["conv2.bias"])), 2)
    out = F.relu(F.conv2d(out, state["conv3.weight"], state["conv3.bias"]))
    out = out.reshape(out.shape[0], 80)
    out = F.relu(out @ state["dense1.weight"].T + state["dense1.bias"])
    out = out @ state["dense2.weight"].T + state["dense2.bias"]
    return torch.exp(out - torch.logsumexp(out, dim=1, keepdim=True))


def real_faces(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """UTKFace images as the paper's code feeds them: RGB, 60x60, ToTensor() in [0, 1]."""
    files, ages = list_utkface(shared_path("utkface", "crop_part1"))
    picks = [i for i in range(0, len(files), len(files) // count) if ages[i] <= 90][:count]
    arrays = [
        np.asarray(Image.open(files[i]).convert("RGB").resize((60, 60), Image.BILINEAR))
        for i in picks
    ]
    x = torch.tensor(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.tensor([ages[i] for i in picks])


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_author_checkpoint_loads_and_matches_the_original_forward(name: str) -> None:
    state = load_checkpoint(shared_path("simloss_checkpoints", name))
    model = AgeCNN(90)
    model.load_state_dict(state)  # strict: same names and shapes
    model.eval()
    x, _ = real_faces(16)
    noise = torch.rand(4, 3, 60, 60, generator=torch.Generator().manual_seed(0))
    for inputs in (x, noise):
        with torch.no_grad():
            ours = torch.softmax(model(inputs), dim=1)
            ours_cl = torch.softmax(
                model.to(memory_format=torch.channels_last)(
                    inputs.contiguous(memory_format=torch.channels_last)
                ),
                dim=1,
            )
        expected = reference_forward(state, inputs)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours_cl, expected, rtol=1e-4, atol=1e-5)


def test_author_checkpoint_estimates_real_ages() -> None:
    """A sanity check that inputs are prepared as the authors did: MAE far below chance."""
    model = AgeCNN(90)
    model.load_state_dict(load_checkpoint(shared_path("simloss_checkpoints", "model_0.8_08.p")))
    model.eval()
    x, ages = real_faces(64)
    with torch.no_grad():
        predicted = model(x).argmax(dim=1) + 1
    mae = (predicted - ages).abs().float().mean().item()
    chance = (ages.float() - ages.float().median()).abs().mean().item()
    assert mae < 0.75 * chance, (mae, chance)


@pytest.mark.parametrize(
    ("model", "shape", "classes"),
    [(AgeCNN(61), (5, 3, 60, 60), 61), (LeNet(96), (5, 3, 32, 32), 96), (MLP(10, 17), (5, 10), 17)],
    ids=["age_cnn", "lenet", "mlp"],
)
def test_models_return_logits_of_the_right_shape(
    model: torch.nn.Module, shape: tuple[int, ...], classes: int
) -> None:
    out = model(torch.randn(shape))
    assert out.shape == (5, classes)
    assert not torch.allclose(out.exp().sum(1), torch.ones(5))  # logits, not probabilities


def test_lenet_parameters_follow_the_papers_code() -> None:
    shapes = {k: tuple(v.shape) for k, v in LeNet(96).state_dict().items()}
    assert shapes["conv1.weight"] == (6, 3, 5, 5) and shapes["conv2.weight"] == (16, 6, 5, 5)
    assert shapes["fc1.weight"] == (120, 400) and shapes["fc3.weight"] == (96, 84)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: AgeCNN(90)(torch.zeros(1, 3, 32, 32)), r"Expected `x` of shape \(N, 3, 60, 60\)"),
        (lambda: LeNet(10)(torch.zeros(1, 1, 32, 32)), r"Expected `x` of shape \(N, 3, 32, 32\)"),
        (lambda: MLP(10, 3)(torch.zeros(2, 9)), r"Expected `x` of shape \(N, 10\)"),
        (lambda: AgeCNN(0), r"Expected `num_classes` to be a positive int"),
        (lambda: build_model("resnet", (3, 32, 32), 10), r"Expected a model in"),
        (lambda: build_model("lenet", (3, 60, 60), 10), r"Expected inputs \(3, 32, 32\)"),
    ],
)
def test_bad_inputs_raise_value_error(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


def test_load_checkpoint_rejects_non_state_dicts(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(ValueError, match="Expected a state dict"):
        load_checkpoint(path)


# ------------------------------------------------ one checked loader for every checkpoint
def _authors_checkpoint(folder: Path) -> tuple[Path, torch.nn.Module]:
    source = shared_path("simloss_checkpoints", "model_0.3_05.p")
    path = folder / "model_0.3_05.p"
    path.write_bytes(source.read_bytes())
    return path, AgeCNN(90)


def _our_checkpoint(folder: Path) -> tuple[Path, torch.nn.Module]:
    """A model.pt as run_training writes it: a state dict saved through a handle."""
    path = folder / "model.pt"
    with open(path, "wb") as handle:
        torch.save(MLP(10, 17).state_dict(), handle)
    return path, MLP(10, 17)


def _with_nan(path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    name = sorted(k for k in state if k.endswith("weight"))[-1]
    state[name][0, 0] = float("nan")
    torch.save(state, path)


def _with_inf(path: Path) -> None:
    state = torch.load(path, map_location="cpu", weights_only=True)
    name = sorted(k for k in state if k.endswith("bias"))[0]
    state[name][-1] = float("-inf")
    torch.save(state, path)


BREAKAGES = {
    "zero_bytes": (lambda p: p.write_bytes(b""), "the file is empty"),
    "text": (lambda p: p.write_text("hello, I am not a checkpoint\n"), "loading failed"),
    "one_byte_e": (lambda p: p.write_bytes(b"e"), "loading failed"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "failed"),
    "nan_weight": (_with_nan, "NaN or infinite value"),
    "inf_bias": (_with_inf, "NaN or infinite value"),
    "list_of_tensors": (lambda p: torch.save([torch.zeros(1)], p), "found list"),
    "empty_dict": (lambda p: torch.save({}, p), "found an empty dict"),
    "nested_dict": (lambda p: torch.save({"model": {"w": torch.zeros(1)}}, p), "holds dict"),
}


@pytest.mark.parametrize("source", ["authors", "ours"])
@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_a_broken_checkpoint_is_one_line_naming_the_file(
    tmp_path: Path, source: str, breakage: str
) -> None:
    path, model = (_authors_checkpoint if source == "authors" else _our_checkpoint)(tmp_path)
    assert load_checkpoint(path, model)  # intact, it loads
    before = {k: v.clone() for k, v in model.state_dict().items()}
    damage, message = BREAKAGES[breakage]
    damage(path)
    with pytest.raises(ValueError) as info:
        load_checkpoint(path, model)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text
    # The model is untouched by a refused checkpoint.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_checkpoint_of_another_shape_or_model_names_the_parameter(tmp_path: Path) -> None:
    path, _ = _authors_checkpoint(tmp_path)
    with pytest.raises(
        ValueError, match=r"`dense2.weight` of shape \(61, 120\) for AgeCNN .*\(90, 120\)"
    ):
        load_checkpoint(path, AgeCNN(61))
    with pytest.raises(ValueError, match=r"parameters of LeNet in checkpoint .*model_0.3_05.p"):
        load_checkpoint(path, LeNet(90))
    with pytest.raises(FileNotFoundError, match="absent.pt does not exist"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="to be a file"):
        load_checkpoint(tmp_path)


def test_figure2_reports_a_broken_published_checkpoint_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from data_fixtures import utkface_names, write_utkface

    from simloss.cli import main

    images = write_utkface(tmp_path / "faces", utkface_names([20, 25, 30, 35, 40, 45, 50]))
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save(AgeCNN(90).state_dict(), checkpoints / "model_0.0_01.p")
    (checkpoints / "model_0.3_01.p").write_text("not a checkpoint")  # text: KeyError 101 before
    argv = ["figure2", "--checkpoints", str(checkpoints), "--data-dir", str(images),
            "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("simloss figure2: error: Could not read checkpoint ")
    assert "model_0.3_01.p" in err and "\n" not in err
