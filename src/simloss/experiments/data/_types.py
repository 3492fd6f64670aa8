"""The in-memory form of a prepared dataset: three splits plus what the run needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["PreparedData", "Split", "channel_stats"]


@dataclass(frozen=True)
class Split:
    """One split: ``inputs`` (uint8 images ``(N, 3, H, W)`` or float features ``(N, F)``)
    and ``targets`` (int64 class indices ``(N,)``)."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.inputs.shape[0] != self.targets.shape[0]:
            raise ValueError(
                f"Expected as many inputs as targets, but found {self.inputs.shape[0]} "
                f"and {self.targets.shape[0]}"
            )

    def __len__(self) -> int:
        return int(self.targets.shape[0])


@dataclass(frozen=True)
class PreparedData:
    """A dataset ready for training.

    Inputs are standardised per batch by :meth:`standardize`:
    ``(x * scale - mean) / std`` with ``mean``/``std`` computed on the training
    split (per channel ``(1, 3, 1, 1)``, globally ``(1, 1, 1, 1)`` or per feature
    ``(1, F)``).

    Attributes:
        name: dataset name.
        train, val, test: the splits.
        num_classes: ``C``.
        class_values: the value each class stands for (ages, ring counts; for
            unordered classes the class index).
        class_names: names of the classes or ``None``.
        ordinal: whether the classes are ordered (metrics Acc/MAE/MSE) or not
            (Acc, and SA/FSA where ``fine_to_coarse`` exists).
        fine_to_coarse: superclass index of every class, or ``None``.
        source_class_indices: for every class its index in the source's original
            label order (rows of a class-vector file), or ``None`` when identical.
        scale, mean, std: the standardisation.
        info: counts about the loading (excluded, skipped, ...) for the record.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_values: list[float]
    class_names: list[str] | None
    ordinal: bool
    scale: float
    mean: torch.Tensor
    std: torch.Tensor
    fine_to_coarse: list[int] | None = None
    source_class_indices: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example."""
        return tuple(self.train.inputs.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether inputs are images ``(3, H, W)``."""
        return self.train.inputs.dim() == 4

    def standardize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standardise a batch of raw inputs to a new float32 tensor on ``inputs``' device.

        Computed as one in-place affine map ``x * (scale / std) + (-mean / std)`` on
        the float copy, which keeps the input's memory format (channels-last
        stays channels-last) and makes two passes over the batch instead of four.
        """
        factor = (self.scale / self.std).to(inputs.device)
        shift = (-self.mean / self.std).to(inputs.device)
        return inputs.to(torch.float32, copy=True).mul_(factor).add_(shift)


def channel_stats(
    images: np.ndarray, *, per_channel: bool, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of uint8 images ``(N, H, W, 3)`` scaled to [0, 1].

    Per channel (shape ``(1, 3, 1, 1)``) or over all values (``(1, 1, 1, 1)``),
    computed in float64 in chunks so no float copy of the whole set is needed.

    Example:
        >>> imgs = np.zeros((2, 1, 1, 3), dtype=np.uint8); imgs[1] = 255
        >>> mean, std = channel_stats(imgs, per_channel=True)
        >>> mean.flatten().tolist(), std.flatten().tolist()
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    """
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(
            f"Expected non-empty images of shape (N, H, W, 3), but found {images.shape}"
        )
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 1, 2))
        total_sq += np.square(block).sum(axis=(0, 1, 2))
    count = images.shape[0] * images.shape[1] * images.shape[2]
    if per_channel:
        mean = total / count
        var = total_sq / count - mean**2
        shape: tuple[int, ...] = (1, 3, 1, 1)
    else:
        mean = np.array(total.sum() / (3 * count))
        var = np.array(total_sq.sum() / (3 * count) - mean**2)
        shape = (1, 1, 1, 1)
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std > 0, std, 1.0)
    return (
        torch.tensor(mean, dtype=torch.float32).reshape(shape),
        torch.tensor(std, dtype=torch.float32).reshape(shape),
    )


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` array -> uint8 ``(N, 3, H, W)`` tensor (channels-last memory)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
