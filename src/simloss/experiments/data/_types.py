"""The in-memory form of a prepared dataset: three splits plus what the run needs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from simloss.experiments.data._images import DECODINGS, PREPROCESSING

if TYPE_CHECKING:
    from simloss.experiments.data.classes import Classes
    from simloss.experiments.data.tables import TableEncoding
    from simloss.experiments.task import Task

__all__ = ["PreparedData", "Preprocessing", "Split", "channel_stats", "prepared_data"]

#: The kinds of raw input a model can take: decoded images, feature vectors, and
#: table rows (feature vectors with the table's encoding, so new rows can be read).
INPUT_KINDS: tuple[str, ...] = ("image", "features", "table")


def _standardize(
    inputs: torch.Tensor, scale: float, mean: torch.Tensor, std: torch.Tensor
) -> torch.Tensor:
    """``(x * scale - mean) / std`` as one in-place affine map on a float32 copy."""
    factor = (scale / std).to(inputs.device)
    shift = (-mean / std).to(inputs.device)
    return inputs.to(torch.float32, copy=True).mul_(factor).add_(shift)


@dataclass(frozen=True, eq=False)
class Preprocessing:
    """How one raw input becomes a model input: stored with a run, applied by ``predict``.

    .. math::

        x' = (x \\cdot \\text{scale} - \\text{mean}) / \\text{std}

    - ``kind="image"``: the file is decoded by Pillow (16-bit images scaled to
      8 bits), converted to RGB (or grey) and resized bilinearly to ``H x W``
      (:func:`~simloss.experiments.data._images.decode_image`); the uint8
      pixels in layout ``(C, H, W)`` are scaled by ``scale`` (1/255) and
      standardised with ``mean``/``std`` of shape ``(1, C, 1, 1)`` (per
      channel) or ``(1, 1, 1, 1)`` (one value for all).
    - ``kind="features"``: a float vector in the order of ``feature_names``,
      standardised with ``mean``/``std`` of shape ``(1, F)``.
    - ``kind="table"``: a table row, encoded by ``table``
      (:class:`~simloss.experiments.data.tables.TableEncoding`: numbers, one-hot
      categories) into such a vector, then standardised.

    Attributes:
        kind: ``"image"``, ``"features"`` or ``"table"``.
        input_shape: one model input without the batch, ``(C, H, W)`` or ``(F,)``.
        scale: factor applied to the raw values first.
        mean, std: float32 tensors (shapes above); ``std > 0``.
        decode: the image decoding version (images) or ``None``.
        feature_names: the name of every feature (features, tables) or ``None``.
        channels: ``"RGB"`` or ``"L"`` (grey) for images, else ``None``.
        table: the table encoding (tables) or ``None``.

    Example:
        >>> p = Preprocessing("features", (2,), 1.0, torch.tensor([[1.0, 2.0]]),
        ...                   torch.tensor([[2.0, 4.0]]), feature_names=("a", "b"))
        >>> p.standardize(torch.tensor([[3.0, 2.0]])).tolist()
        [[1.0, 0.0]]
        >>> Preprocessing.from_dict(p.to_dict(), "example").to_dict() == p.to_dict()
        True
    """

    kind: str
    input_shape: tuple[int, ...]
    scale: float
    mean: torch.Tensor
    std: torch.Tensor
    decode: str | None = None
    feature_names: tuple[str, ...] | None = None
    channels: str | None = None
    table: TableEncoding | None = None

    def standardize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Raw inputs ``(N, *input_shape)`` to a new standardised float32 tensor."""
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(
                f"Expected raw inputs of shape (N, {', '.join(map(str, self.input_shape))}), "
                f"but found {tuple(inputs.shape)}"
            )
        return _standardize(inputs, self.scale, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (``mean``/``std`` flattened, with ``stats_shape``)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "input_shape": list(self.input_shape),
            "decode": self.decode,
            "channels": self.channels,
            "feature_names": None if self.feature_names is None else list(self.feature_names),
            "scale": self.scale,
            "stats_shape": list(self.mean.shape),
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
        }
        if self.table is not None:
            out["table"] = self.table.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Preprocessing:
        """Rebuild from :meth:`to_dict`'s form; errors name ``where`` (e.g. the record file).

        Raises:
            ValueError: a missing key, an unknown kind, a decoding this version
                cannot reproduce, or statistics that do not fit the input shape.
        """
        if not isinstance(data, dict):
            raise ValueError(
                f"Expected a preprocessing object in {where}, but found {type(data).__name__}"
            )
        keys = ("kind", "input_shape", "scale", "stats_shape", "mean", "std")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(
                f"Expected preprocessing keys {missing} in {where}, but they are missing"
            )
        kind = data["kind"]
        if kind not in INPUT_KINDS:
            raise ValueError(
                f"Expected preprocessing kind in {list(INPUT_KINDS)} in {where}, but found {kind!r}"
            )
        if kind == "image" and data.get("decode") not in DECODINGS:
            raise ValueError(
                f"Expected an image decoding among {list(DECODINGS)} in {where}, but found "
                f"{data.get('decode')!r} (written by another simloss version)"
            )
        channels = data.get("channels")
        if kind == "image" and channels not in ("RGB", "L"):
            raise ValueError(
                f"Expected image channels 'RGB' or 'L' in {where}, but found {channels!r}"
            )
        try:
            shape = tuple(int(v) for v in data["input_shape"])
            stats_shape = tuple(int(v) for v in data["stats_shape"])
            mean = torch.tensor(data["mean"], dtype=torch.float32).reshape(stats_shape)
            std = torch.tensor(data["std"], dtype=torch.float32).reshape(stats_shape)
            scale = float(data["scale"])
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"Could not read the preprocessing in {where}: {exc}") from exc
        planes = 3 if channels == "RGB" else 1
        image_stats = ((1, planes, 1, 1), (1, 1, 1, 1))
        fits = (
            kind == "image"
            and len(shape) == 3
            and shape[0] == planes
            and stats_shape in image_stats
        ) or (kind in ("features", "table") and len(shape) == 1 and stats_shape == (1, shape[0]))
        values = torch.cat([mean.flatten(), std.flatten()])
        if not fits or not bool(torch.isfinite(values).all()) or not bool((std > 0).all()):
            raise ValueError(
                f"Expected finite statistics with std > 0 that fit inputs {shape} in {where}, "
                f"but found stats of shape {stats_shape}"
            )
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"Expected a positive finite scale in {where}, but found {scale}")
        names = data.get("feature_names")
        table = None
        if kind == "table":
            from simloss.experiments.data.tables import TableEncoding

            if "table" not in data:
                raise ValueError(f"Expected the table encoding in {where}, but it is missing")
            table = TableEncoding.from_dict(data["table"], where)
            if table.feature_names != tuple(str(n) for n in names or ()):
                raise ValueError(
                    f"Expected the table encoding in {where} to give the features "
                    f"{names}, but it gives {list(table.feature_names)}"
                )
        return cls(
            kind=kind,
            input_shape=shape,
            scale=scale,
            mean=mean,
            std=std,
            decode=data.get("decode"),
            feature_names=None if names is None else tuple(str(n) for n in names),
            channels=channels if kind == "image" else None,
            table=table,
        )


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
        feature_names: the name of every feature (tabular data) or ``None``.
        table: the table encoding of a table task (stored with a run), or ``None``.
        channels: ``"RGB"`` or ``"L"`` for images.
        decode: the image decoding (:data:`~simloss.experiments.data._images.PREPROCESSING`).
        model: a model factory ``"module:function"`` the data's factory returned, or ``None``.
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
    feature_names: Sequence[str] | None = None
    table: TableEncoding | None = None
    channels: str = "RGB"
    decode: str = PREPROCESSING
    model: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input example."""
        return tuple(self.train.inputs.shape[1:])

    @property
    def is_image(self) -> bool:
        """Whether inputs are images ``(C, H, W)``."""
        return self.train.inputs.dim() == 4

    def standardize(self, inputs: torch.Tensor) -> torch.Tensor:
        """Standardise a batch of raw inputs to a new float32 tensor on ``inputs``' device.

        Computed as one in-place affine map ``x * (scale / std) + (-mean / std)`` on
        the float copy, which keeps the input's memory format (channels-last
        stays channels-last) and makes two passes over the batch instead of four.
        """
        return _standardize(inputs, self.scale, self.mean, self.std)

    @property
    def preprocessing(self) -> Preprocessing:
        """What a new raw input needs to become a model input (stored with a run)."""
        image = self.is_image
        kind = "image" if image else "table" if self.table is not None else "features"
        return Preprocessing(
            kind=kind,
            input_shape=self.input_shape,
            scale=float(self.scale),
            mean=self.mean.detach().to("cpu", torch.float32),
            std=self.std.detach().to("cpu", torch.float32),
            decode=self.decode if image else None,
            feature_names=None if self.feature_names is None else tuple(self.feature_names),
            channels=self.channels if image else None,
            table=self.table,
        )


def channel_stats(
    images: np.ndarray, *, per_channel: bool, chunk: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of uint8 images ``(N, H, W, C)`` scaled to [0, 1].

    Per channel (shape ``(1, C, 1, 1)``) or over all values (``(1, 1, 1, 1)``),
    computed in float64 in chunks so no float copy of the whole set is needed;
    ``C`` is 3 (RGB) or 1 (grey).

    Example:
        >>> imgs = np.zeros((2, 1, 1, 3), dtype=np.uint8); imgs[1] = 255
        >>> mean, std = channel_stats(imgs, per_channel=True)
        >>> mean.flatten().tolist(), std.flatten().tolist()
        ([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    """
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) == 0:
        raise ValueError(
            f"Expected non-empty images of shape (N, H, W, 3) or (N, H, W, 1), but found "
            f"{images.shape}"
        )
    planes = images.shape[-1]
    total = np.zeros(planes)
    total_sq = np.zeros(planes)
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].astype(np.float64) / 255.0
        total += block.sum(axis=(0, 1, 2))
        total_sq += np.square(block).sum(axis=(0, 1, 2))
    count = images.shape[0] * images.shape[1] * images.shape[2]
    if per_channel:
        mean = total / count
        var = total_sq / count - mean**2
        shape: tuple[int, ...] = (1, planes, 1, 1)
    else:
        mean = np.array(total.sum() / (planes * count))
        var = np.array(total_sq.sum() / (planes * count) - mean**2)
        shape = (1, 1, 1, 1)
    std = np.sqrt(np.maximum(var, 0.0))
    std = np.where(std > 0, std, 1.0)
    return (
        torch.tensor(mean, dtype=torch.float32).reshape(shape),
        torch.tensor(std, dtype=torch.float32).reshape(shape),
    )


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, H, W, C)`` array -> uint8 ``(N, C, H, W)`` tensor (channels-last memory)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)


def prepared_data(
    task: Task,
    classes: Classes,
    inputs: torch.Tensor,
    targets: np.ndarray,
    splits: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    scale: float,
    mean: torch.Tensor,
    std: torch.Tensor,
    info: dict[str, Any],
    named: bool = True,
    **extra: Any,
) -> PreparedData:
    """A task's :class:`PreparedData`: its examples split by index, its classes, its standardisation.

    Args:
        task: the task (name, superclasses).
        classes: its classes (values, names, order).
        inputs: every example's raw input, ``(N, ...)``.
        targets: every example's class index ``(N,)``.
        splits: train, validation and test indices into ``inputs``.
        scale, mean, std: the standardisation.
        info: counts about the loading, for the record.
        named: record the class names (the age datasets' classes are their values only).
        extra: further :class:`PreparedData` fields (``feature_names``, ``table``, ...).
    """
    target_tensor = torch.from_numpy(np.asarray(targets, dtype=np.int64))

    def split(index: np.ndarray) -> Split:
        idx = torch.from_numpy(index)
        return Split(inputs[idx], target_tensor[idx])

    train, val, test = splits
    superclasses = task.classes.superclasses
    return PreparedData(
        name=task.name,
        train=split(train),
        val=split(val),
        test=split(test),
        num_classes=len(classes),
        class_values=list(classes.values),
        class_names=list(classes.names) if named else None,
        ordinal=classes.ordered,
        scale=scale,
        mean=mean,
        std=std,
        fine_to_coarse=None if superclasses is None else list(superclasses),
        info=info,
        **extra,
    )
