"""Real predictions for the metrics' reference tests, computed once per test session.

* the paper authors' four UTKFace checkpoints (r = 0.0, 0.3, 0.8, 0.9) on a seeded
  subset of UTKFace crop_part1 (ages 1..90): logits (N, 90) float64 and targets;
* a softmax regression trained with cross-entropy on the embedded Abalone data
  (17 ordered ring classes): test-split logits and targets;
* a cross-entropy model of CIFAR-100's 100-image sample (a linear classifier on the
  pixels), with the WordNet tree over the 100 fine classes.

Each skips (through ``conftest.shared_path``) when its real data is absent.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from conftest import shared_path

UTKFACE_IMAGES = 300


@functools.cache
def _utkface(checkpoints: Path, images: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from simloss.experiments.data.utkface import load_utkface
    from simloss.experiments.models import AgeCNN, load_checkpoint

    data = load_utkface(images, split_seed=0, limit=UTKFACE_IMAGES, cache_dir=None)
    inputs = torch.cat([data.train.inputs, data.val.inputs, data.test.inputs])
    targets = torch.cat([data.train.targets, data.val.targets, data.test.targets])
    result = {}
    for path in sorted(checkpoints.glob("model_*.p")):
        model = AgeCNN(data.num_classes)
        load_checkpoint(path, model)
        model.eval()
        with torch.inference_mode():
            logits = model(inputs.to(torch.float32) * data.scale).double()
        result[path.stem] = (logits, targets.clone())
    return result


def utkface_predictions() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"model_0.3_05": (logits (N, 90) float64, targets (N,))}`` of the authors' models."""
    return _utkface(shared_path("simloss_checkpoints"), shared_path("utkface", "crop_part1"))


@functools.cache
def abalone_predictions() -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Test-split logits (N, 17) float64, targets and class values of a CE-trained model."""
    from simloss.experiments.data import load_abalone

    data = load_abalone(split_seed=0)
    torch.manual_seed(0)
    model = torch.nn.Linear(data.train.inputs.shape[1], data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x = data.standardize(data.train.inputs)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), data.train.targets).backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(data.standardize(data.test.inputs)).double()
    return logits, data.test.targets.clone(), list(data.class_values)


@functools.cache
def _cifar(folder: Path) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    sample = np.load(folder / "train_sample_100.npz")
    images = torch.from_numpy(sample["images"]).float().flatten(1) / 255.0
    labels = torch.from_numpy(sample["fine_labels"].astype(np.int64))
    edges = [
        (int(a), int(b))
        for a, b in (
            line.split()
            for line in (folder / "wordnet_parent_child.txt").read_text().split("\n")
            if line.strip()
        )
    ]
    torch.manual_seed(0)
    model = torch.nn.Linear(images.shape[1], 100)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = slice(0, 70)  # the other 30 images are unseen
    x = (images - images[train].mean(0)) / (images[train].std(0) + 1e-6)
    for _ in range(60):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x[train]), labels[train]).backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(x).double()
    return logits, labels, edges


def cifar_predictions() -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int]]]:
    """Logits (100, 100) of a CE model of CIFAR-100's sample (trained on its first 70
    images), the fine labels, and the WordNet tree's ``(parent, child)`` id pairs (leaves
    0..99 are the fine classes)."""
    return _cifar(shared_path("cifar100"))
