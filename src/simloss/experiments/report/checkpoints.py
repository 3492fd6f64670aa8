"""Figure 2 of the paper from the authors' published UTKFace checkpoints.

The paper's Figure 2 shows, for the best UTKFace models trained with r = 0.0,
0.3, 0.8 and 0.9, (a) the mean predicted distribution over all examples beside
the real age distribution and (b) the mean predicted distribution over the
examples of age 30. :func:`evaluate_checkpoints` runs the published state dicts
(``model_<r>_<run>.p``) through :class:`simloss.experiments.models.AgeCNN` on a
UTKFace folder loaded by :func:`simloss.experiments.data.utkface.load_utkface`,
and :func:`write_figure2` draws the figure and writes Acc/MAE/MSE per model.

Inputs follow the authors' code: RGB resized to 60 x 60 and scaled to [0, 1]
without standardisation (their "normalisation" uses mean 0 and std 1).

References:
    Kobs et al., "SimLoss: Class Similarities in Cross Entropy", ISMIS 2020,
    https://arxiv.org/abs/2003.03182 (Figure 2, Table 1).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure

from simloss.experiments._files import atomic_write_text
from simloss.experiments.points import format_value, value_key
from simloss.experiments.report.paper import paper_cells_for
from simloss.experiments.specs import MetricSpec, metric_spec
from simloss.experiments.task import builtin_task

__all__ = [
    "DEFAULT_TARGET",
    "CheckpointResult",
    "check_figure2_arguments",
    "checkpoint_figure2",
    "curve_label",
    "evaluate_checkpoints",
    "find_checkpoints",
    "write_figure2",
]

#: The age of panel (b) in the paper's Figure 2.
DEFAULT_TARGET = 30.0
_CHECKPOINT_NAME = re.compile(r"^model_(?P<r>\d+(?:\.\d+)?)_(?P<run>[0-9A-Za-z]+)\.p$")
SPLIT_CHOICES = ("all", "train", "val", "test")


@dataclass(frozen=True)
class CheckpointResult:
    """What one published model predicts on the evaluated images.

    Attributes:
        path: the checkpoint file.
        r: the reduction factor it was trained with (from the file name).
        run: the run label of the file name (``"05"`` in ``model_0.3_05.p``).
        metrics: ``acc`` (fraction), ``mae`` and ``mse`` (years).
        mean: mean predicted distribution over all examples, shape (C,).
        per_class: mean predicted distribution per true class, shape (C, C);
            rows of classes with no example are NaN.
        class_counts: examples per true class, shape (C,).
    """

    path: Path
    r: float
    run: str
    metrics: dict[str, float]
    mean: np.ndarray
    per_class: np.ndarray
    class_counts: np.ndarray


def find_checkpoints(folder: str | Path) -> list[tuple[float, str, Path]]:
    """The published checkpoints of a folder, sorted by r.

    Args:
        folder: a folder holding ``model_<r>_<run>.p`` files.

    Returns:
        ``(r, run, path)`` per file.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        ValueError: no file matches ``model_<r>_<run>.p``.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"Expected `checkpoints` to be a folder, but {root} is not one")
    found = []
    for path in sorted(root.iterdir()):
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((float(match["r"]), match["run"], path))
    if not found:
        names = sorted(p.name for p in root.iterdir())[:5]
        raise ValueError(
            f"Expected checkpoint files named model_<r>_<run>.p in {root}, but found {names}"
        )
    return sorted(found, key=lambda item: (item[0], item[1]))


def check_figure2_arguments(
    checkpoints: str | Path,
    data_dir: str | Path,
    *,
    split: str = "all",
    limit: int | None = None,
    batch_size: int = 512,
    device: str = "cpu",
    target: float = DEFAULT_TARGET,
) -> list[tuple[float, str, Path]]:
    """Check every argument of Figure 2 before anything is loaded or written.

    Returns:
        The checkpoints found (as :func:`find_checkpoints`).

    Raises:
        FileNotFoundError: no checkpoint or data folder.
        ValueError: a bad split, limit, batch size or target age (UTKFace's
            classes are the ages 1..90).
        RuntimeError: the device does not exist on this machine (as ``simloss train``).
    """
    from simloss.experiments._runtime import resolve_device

    if split not in SPLIT_CHOICES:
        raise ValueError(f"Expected `split` in {SPLIT_CHOICES}, but found {split!r}")
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise ValueError(f"Expected `limit` >= 1, but found {limit}")
    if isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"Expected `batch_size` >= 1, but found {batch_size}")
    ages = builtin_task("utkface").defaults
    low, high = int(ages["min_age"]), int(ages["max_age"])
    if not (math.isfinite(target) and float(target).is_integer() and low <= target <= high):
        raise ValueError(
            f"Expected `target` (the age of panel b) to be a whole age in {low}..{high}, the "
            f"classes of the published models, but found {target:g}"
        )
    resolve_device(device)
    found = find_checkpoints(checkpoints)
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"Expected `data_dir` to be a UTKFace folder, but {data_dir} is not one"
        )
    return found


def _select(data: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    if split not in SPLIT_CHOICES:
        raise ValueError(f"Expected `split` in {SPLIT_CHOICES}, but found {split!r}")
    parts = [data.train, data.val, data.test] if split == "all" else [getattr(data, split)]
    inputs = torch.cat([p.inputs for p in parts])
    targets = torch.cat([p.targets for p in parts])
    return inputs, targets


def evaluate_checkpoints(
    checkpoints: str | Path,
    data_dir: str | Path,
    *,
    split: str = "all",
    limit: int | None = None,
    split_seed: int = 0,
    cache_dir: str | Path | None = None,
    batch_size: int = 512,
    device: str = "cpu",
) -> tuple[list[CheckpointResult], list[float], dict[str, Any]]:
    """Run every published checkpoint over UTKFace images.

    Args:
        checkpoints: folder of ``model_<r>_<run>.p`` state dicts.
        data_dir: a UTKFace image folder (e.g. ``crop_part1``); ages 1..90 are used.
        split: ``"all"`` (the paper's Figure 2: all examples) or one of our
            60/20/20 splits ``"train"``, ``"val"``, ``"test"``.
        limit: use a random subset of at most this many images (seeded by ``split_seed``).
        split_seed: seed of the split and of ``limit``'s subset.
        cache_dir: cache of decoded images (default: the data loader's).
        batch_size: images per forward pass.
        device: torch device for the forward passes.

    Returns:
        The results per checkpoint (sorted by r), the class values (ages) and
        facts about the data (images used, split, loader counts).
    """
    from simloss.experiments.data.utkface import load_utkface
    from simloss.experiments.models import AgeCNN, load_checkpoint
    from simloss.metrics import compute_metrics, mean_predicted_distribution

    found = check_figure2_arguments(
        checkpoints, data_dir, split=split, limit=limit, batch_size=batch_size, device=device
    )
    data = load_utkface(data_dir, split_seed=split_seed, limit=limit, cache_dir=cache_dir)
    inputs, targets = _select(data, split)
    if len(targets) == 0:
        raise ValueError(f"Expected images in split {split!r}, but it is empty")
    results = []
    for r, run, path in found:
        model = AgeCNN(data.num_classes)
        load_checkpoint(path, model)  # checked: one-line errors that name the file
        model.to(device).eval()
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(targets), batch_size):
                batch = inputs[start : start + batch_size].to(device, torch.float32) * data.scale
                chunks.append(model(batch).double().cpu())
        logits = torch.cat(chunks)
        metrics = compute_metrics(logits, targets, class_values=data.class_values)
        dist = mean_predicted_distribution(logits, targets, num_classes=data.num_classes)
        if dist.per_class is None or dist.class_counts is None:
            raise RuntimeError("mean_predicted_distribution returned no per-class result")
        results.append(
            CheckpointResult(
                path=path,
                r=r,
                run=run,
                metrics={k: float(v) for k, v in metrics.items()},
                mean=dist.mean.numpy(),
                per_class=dist.per_class.numpy(),
                class_counts=dist.class_counts.numpy(),
            )
        )
    info = {"images": len(targets), "split": split, "split_seed": split_seed, **data.info}
    return results, list(data.class_values), info


def _which_images(info: dict[str, Any]) -> str:
    """Which images a Figure 2 used, in words: the split, and a random subset where limited.

    Example:
        >>> _which_images({"split": "all", "limit_dropped": 9237})
        'all: a random subset, --limit; 9237 left out'
        >>> _which_images({"split": "test"})
        'test'
    """
    split = str(info.get("split", "all"))
    if info.get("limit_dropped"):
        return f"{split}: a random subset, --limit; {info['limit_dropped']} left out"
    return split


_FIGURE2_METRICS = ("acc", "mae", "mse")


def _spec(metric: str) -> MetricSpec:
    spec = metric_spec(metric)
    if spec is None:  # pragma: no cover (the three are simloss's own metrics)
        raise ValueError(f"Expected a known metric, but found {metric!r}")
    return spec


def _metrics_table(results: Sequence[CheckpointResult]) -> tuple[str, str]:
    """The Markdown table (percent for accuracy) and the CSV (every column in record units).

    The CSV holds accuracy as a fraction for our models and the paper's alike
    (the paper prints percent), MAE in years and MSE in squared years.
    """
    paper = paper_cells_for("utkface", "r")
    labels = [_spec(m).header() for m in _FIGURE2_METRICS]
    header = ["r", "checkpoint", *labels, *(f"paper {label}" for label in labels)]
    md = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["r", "checkpoint", *_FIGURE2_METRICS, *(f"paper_{m}" for m in _FIGURE2_METRICS)]
    )
    for res in results:
        ours = [f"{res.metrics[m] * _spec(m).scale():.2f}" for m in _FIGURE2_METRICS]
        cells = [paper.get((value_key(res.r), "test", m)) for m in _FIGURE2_METRICS]
        theirs = ["-" if c is None else c.text for c in cells]
        row = [format_value(res.r), res.path.name, *ours, *theirs]
        md.append("| " + " | ".join(row) + " |")
        writer.writerow(
            [
                format_value(res.r),
                res.path.name,
                *(repr(res.metrics[m]) for m in _FIGURE2_METRICS),
                *(
                    "" if c is None else repr(c.mean / _spec(m).scale())
                    for c, m in zip(cells, _FIGURE2_METRICS, strict=True)
                ),
            ]
        )
    return "\n".join(md), out.getvalue()


def curve_label(result: CheckpointResult) -> str:
    """The legend label of one model: its r and its run (two models may share an r)."""
    return f"r = {format_value(result.r)} (run {result.run})"


def _class_index(class_values: Sequence[float], target: float) -> int:
    k = next((i for i, c in enumerate(class_values) if math.isclose(c, target)), None)
    if k is None:
        raise ValueError(
            f"Expected `target` to be one of the class values {class_values[0]:g}.."
            f"{class_values[-1]:g}, but found {target}"
        )
    return k


def checkpoint_figure2(
    results: Sequence[CheckpointResult],
    class_values: Sequence[float],
    *,
    target: float = DEFAULT_TARGET,
) -> Figure:
    """Figure 2 (a) and (b) of evaluated checkpoints: one curve per model, in order.

    Every model is drawn, labelled by its r and run (:func:`curve_label`), so two
    models trained with one r are two curves.

    Args:
        results: as returned by :func:`evaluate_checkpoints`.
        class_values: the value (age) of each class.
        target: the class value of panel (b).

    Returns:
        The figure (not saved).
    """
    from simloss.experiments.report.figures import plot_figure2

    if not results:
        raise ValueError("Expected `results` to hold at least one checkpoint, but found none")
    k = _class_index(class_values, target)
    counts = results[0].class_counts.astype(np.float64)
    overall = [(curve_label(res), res.mean) for res in results]
    n_target = int(results[0].class_counts[k])
    per_class = [(curve_label(res), res.per_class[k]) for res in results] if n_target else []
    n_images = int(counts.sum())
    return plot_figure2(
        class_values,
        overall,
        per_class,
        label_distribution=counts / counts.sum(),
        target=target,
        subtitle=f"published checkpoints, {n_images} UTKFace images, {n_target} of age {target:g}",
        xlabel="age",
    )


def write_figure2(
    results: Sequence[CheckpointResult],
    class_values: Sequence[float],
    out_dir: str | Path,
    *,
    target: float = DEFAULT_TARGET,
    info: dict[str, Any] | None = None,
) -> Path:
    """Draw Figure 2 (a) and (b) from evaluated checkpoints and write their metrics.

    Files written into ``out_dir``: ``figure2.png``/``.pdf``, ``figure2.md`` (the
    Acc/MAE/MSE table beside the paper's Table 1 test means for the same r),
    ``figure2_metrics.csv`` and ``figure2.json`` (every curve drawn, the metrics and
    ``info``, so the figure can be redrawn without the models).

    Args:
        results: as returned by :func:`evaluate_checkpoints`.
        class_values: the value (age) of each class.
        out_dir: the output folder (created).
        target: the class value of panel (b).
        info: facts about the data to record (images used, split, ...).

    Returns:
        The path of ``figure2.md``.
    """
    from simloss.experiments.report.figures import save_figure

    fig = checkpoint_figure2(results, class_values, target=target)
    k = _class_index(class_values, target)
    counts = results[0].class_counts.astype(np.float64)
    label_distribution = counts / counts.sum()
    n_target = int(results[0].class_counts[k])
    n_images = int(counts.sum())
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out, "figure2")
    table, table_csv = _metrics_table(results)
    lines = [
        "# Figure 2 from the published UTKFace checkpoints",
        "",
        f"{n_images} images ({_which_images(info or {})}), {n_target} of age {target:g}. "
        "Ours: one published model per r on these images. The paper's columns are its "
        "Table 1 test means over 10 runs on its own test split, for reference only.",
        "",
        table,
        "",
        "![figure2.png](figure2.png)",
    ]
    if not n_target:
        lines.append(f"\nNo image of age {target:g}: panel (b) is empty.")
    atomic_write_text(out / "figure2_metrics.csv", table_csv)
    payload = {
        "class_values": list(map(float, class_values)),
        "target": target,
        "label_distribution": label_distribution.tolist(),
        "info": info or {},
        "models": [
            {
                "file": res.path.name,
                "r": res.r,
                "run": res.run,
                "metrics": res.metrics,
                "mean": res.mean.tolist(),
                "target_class_mean": None if not n_target else res.per_class[k].tolist(),
            }
            for res in results
        ],
    }
    atomic_write_text(out / "figure2.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")
    md_path = out / "figure2.md"
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return md_path
