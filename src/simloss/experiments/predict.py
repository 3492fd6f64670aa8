"""Apply a finished training run to new inputs: image files or folders, table rows, feature arrays.

A run folder (:func:`simloss.experiments.train.run_training`) holds ``model.pt``
and ``record.json``; the record stores the model's name, the value and name of
every class and the input preprocessing (``record["preprocessing"]``,
:class:`simloss.experiments.data.Preprocessing`), so a new input goes through
exactly the steps the training inputs went through:

- **image runs** (UTKFace, AFAD, CIFAR-100, a user's image folder): an image
  file of any size, mode and format Pillow reads (16-bit images scaled to 8
  bits) is decoded, converted to RGB (or grey) and resized bilinearly to the
  run's input size by the same
  :func:`~simloss.experiments.data._images.decode_image` as training, scaled
  by 1/255 and standardised with the training split's mean and standard
  deviation stored in the record; a folder stands for every image file below it;
- **table runs** (Abalone, a user's table): rows of a file with the training
  table's columns (a header row where the training table had one; Abalone's
  rows in the format of the UCI file ``abalone.data``), encoded by the stored
  :class:`~simloss.experiments.data.tables.TableEncoding` (numbers checked,
  categories one-hot with the training levels; an unseen category is refused
  by name unless the task said ``unseen = "zeros"``), then standardised; a
  label column, if present, is not used;
- **feature runs** (a user's arrays or factory): ``X`` of a ``.npy`` file or
  an ``.npz`` file's ``X``; from Python, any raw inputs through :func:`predict_inputs`.

The prediction of an input is a class decoded from the predicted distribution
(:mod:`simloss.metrics.decoders`): by default the class of highest probability;
``decoder="median"`` the median class; ``decoder="min_risk"`` the class of least
expected cost ``argmin_k sum_c p_c cost[k, c]``, with ``cost`` a (C, C) matrix or
by default ``1 - S`` of the run's own similarity (:func:`run_cost`; the identity,
i.e. the argmax, for a run without one). With it come its value (the age in
years, the ring count with the edge classes ``<=4`` and ``>=20`` standing for 4
and 20, the class value), its name and its probability.

Example:
    >>> import tempfile
    >>> from simloss.experiments.config import TrainConfig
    >>> from simloss.experiments.train import run_training
    >>> folder = Path(tempfile.mkdtemp()) / "run"
    >>> _ = run_training(TrainConfig(r=0.5, epochs=2, limit=200, progress=False), folder)
    >>> rows = Path(tempfile.mkdtemp()) / "rows.csv"
    >>> _ = rows.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\\n")
    >>> (p,) = predict_rows(load_run(folder), rows)
    >>> p.input.endswith("rows.csv:1"), 4 <= p.value <= 20, 0 < p.probability <= 1
    (True, True, True)
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from simloss.experiments._files import atomic_write_text, read_json_object
from simloss.experiments._runtime import resolve_device
from simloss.experiments.data import Preprocessing
from simloss.experiments.data.abalone import ABALONE_ENCODING, ABALONE_FEATURES
from simloss.experiments.data.arrays import read_feature_file
from simloss.experiments.data.images import image_files, image_inputs
from simloss.experiments.data.tables import TableEncoding, read_table
from simloss.experiments.loss_catalog import stored_loss
from simloss.experiments.losses import ClassScores
from simloss.experiments.models import build_model, load_checkpoint
from simloss.experiments.specs import LOSSES, loss_spec
from simloss.metrics.decoders import CLASS_DECODERS, check_decoding, median_class, min_risk_class

__all__ = [
    "PREDICT_DECODERS",
    "Prediction",
    "TrainedRun",
    "expand_inputs",
    "load_run",
    "predict_features",
    "predict_images",
    "predict_inputs",
    "predict_rows",
    "predictions_csv",
    "run_cost",
    "write_predictions",
]

#: The decoders a prediction can use: each predicts a class.
PREDICT_DECODERS = CLASS_DECODERS

_COLUMNS = ("input", "class", "value", "name", "probability")


@dataclass(frozen=True)
class Prediction:
    """The prediction for one input.

    Attributes:
        input: the image path, ``"<file>:<line>"`` of a table row, or ``"<file> row <i>"``
            of a feature array.
        class_index: the decoded class (the argmax by default).
        value: the value that class stands for (age in years, ring count; the
            class index for unordered classes).
        name: the class's name, or ``None`` when classes have no names.
        probability: the softmax probability of that class, in [0, 1].
    """

    input: str
    class_index: int
    value: float
    name: str | None
    probability: float


@dataclass(frozen=True, eq=False)
class TrainedRun:
    """A finished run ready to predict (see :func:`load_run`).

    Attributes:
        folder: the run folder.
        dataset: the dataset it was trained on.
        model: the trained model in evaluation mode on ``device``, returning class
            scores (:class:`~simloss.experiments.losses.ClassScores`: a CORN model's
            conditional logits are turned into class log-probabilities).
        preprocessing: how a raw input becomes a model input.
        class_values: the value each class stands for.
        class_names: the class names, or ``None``.
        device: where the model runs.
        config: the run's configuration (``record["config"]``), for :func:`run_cost`.
        source_class_indices: for every class its index in the source's label order
            (the rows of a class-vector file), or ``None`` when identical or not recorded.
    """

    folder: Path
    dataset: str
    model: nn.Module
    preprocessing: Preprocessing
    class_values: tuple[float, ...]
    class_names: tuple[str, ...] | None
    device: torch.device
    config: dict[str, Any] | None = None
    source_class_indices: tuple[int, ...] | None = None

    @torch.no_grad()
    def probabilities(self, raw: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
        """Softmax probabilities ``(N, C)`` (float32, CPU) of raw inputs ``(N, *input_shape)``.

        Raw inputs are uint8 images ``(N, 3, H, W)`` or float features ``(N, F)``,
        before standardisation (:meth:`Preprocessing.standardize` is applied here).
        """
        scores, _ = self.outputs(raw, batch_size=batch_size)
        return torch.softmax(scores, dim=1)

    @torch.no_grad()
    def outputs(
        self, raw: torch.Tensor, *, batch_size: int = 256
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Class scores ``(N, C)`` (float32, CPU) of raw inputs, and the classes ``(N,)`` the
        model's head decides itself, by decoder (CORN's median:
        :meth:`simloss.experiments.heads.Head.decisions`; none for class logits)."""
        if batch_size < 1:
            raise ValueError(f"Expected `batch_size` >= 1, but found {batch_size}")
        scores: list[torch.Tensor] = []
        decided: dict[str, list[torch.Tensor]] = {}
        model = self.model
        for start in range(0, raw.shape[0], batch_size):
            inputs = self.preprocessing.standardize(raw[start : start + batch_size])
            inputs = inputs.to(self.device)
            if isinstance(model, ClassScores):
                out = model.model(inputs)
                scores.append(model.head.class_log_probs(out).float().cpu())
                for decoder, classes in model.head.decisions(out).items():
                    decided.setdefault(decoder, []).append(classes.cpu())
            else:
                scores.append(model(inputs).float().cpu())
        if not scores:
            return torch.zeros(0, len(self.class_values)), {}
        return torch.cat(scores), {k: torch.cat(v) for k, v in decided.items()}


def _read_record(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise FileNotFoundError(f"Run folder {folder} does not exist")
    path = folder / "record.json"
    if not path.exists():  # a folder in its place: read_json_object says so
        raise FileNotFoundError(
            f"Expected a finished run in {folder} (its record.json), but record.json is missing"
        )
    record = read_json_object(path, "run record")
    if "preprocessing" not in record:
        raise ValueError(
            f"Expected the input preprocessing in {path}, but the record has none (runs "
            "written before simloss stored it cannot be applied to new inputs; train it again)"
        )
    return record


def load_run(folder: str | Path, *, device: str = "cpu") -> TrainedRun:
    """Load a finished run: its model (weights checked), preprocessing and classes.

    Args:
        folder: a run folder written by ``simloss train`` / ``run_training``.
        device: ``"cpu"`` (default), ``"cuda[:N]"`` or ``"auto"``.

    Raises:
        FileNotFoundError: the folder, its ``record.json`` or its weights are missing.
        ValueError: a record without preprocessing (written by an older
            simloss), unreadable JSON, or weights that do not fit (one line
            naming the file).
    """
    root = Path(folder)
    record = _read_record(root)
    where = str(root / "record.json")
    preprocessing = Preprocessing.from_dict(record["preprocessing"], where)
    values = record.get("class_values")
    if not isinstance(values, list) or not values:
        raise ValueError(f"Expected a list of class values in {where}, but found {values!r}")
    class_values = tuple(float(v) for v in values)
    names = record.get("class_names")
    if names is not None and (not isinstance(names, list) or len(names) != len(values)):
        raise ValueError(
            f"Expected {len(values)} class names or null in {where}, but found {names!r}"
        )
    kept = record.get("source_class_indices")
    if kept is not None and (
        not isinstance(kept, list)
        or len(kept) != len(values)
        or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in kept)
    ):
        raise ValueError(
            f"Expected {len(values)} source class indices (integers >= 0) or null in {where}, "
            f"but found {kept!r}"
        )
    config = record.get("config")
    model_name = config.get("model") if isinstance(config, dict) else None
    weights = record.get("weights")
    if (
        not isinstance(model_name, str)
        or not isinstance(weights, str)
        or Path(weights).name != weights
    ):
        raise ValueError(
            f"Expected config.model and a weights file name in {where}, but found "
            f"{model_name!r} and {weights!r}"
        )
    resolved = resolve_device(device)
    # The loss fixes the head (CORN: C - 1 conditional logits, turned into class scores).
    loss = stored_loss(record.get("loss"))
    if loss not in LOSSES:
        raise ValueError(f"Expected a loss among {list(LOSSES)} in {where}, but found {loss!r}")
    spec = LOSSES[loss]
    task_file = config.get("task") if isinstance(config, dict) else None
    search = Path(task_file).parent if isinstance(task_file, str) else None
    backbone = build_model(
        model_name,
        preprocessing.input_shape,
        spec.num_outputs(len(class_values)),
        search=search,
    )
    model = spec.head.wrap(backbone, len(class_values))
    load_checkpoint(root / weights, model)
    return TrainedRun(
        folder=root,
        dataset=str(record.get("dataset")),
        model=ClassScores(model, spec.head).to(resolved).eval(),
        preprocessing=preprocessing,
        class_values=class_values,
        class_names=None if names is None else tuple(str(n) for n in names),
        device=resolved,
        config=dict(config) if isinstance(config, dict) else None,
        source_class_indices=None if kept is None else tuple(kept),
    )


@dataclass(frozen=True)
class _RunClasses:
    """A run's classes as :func:`~simloss.experiments.losses.build_similarity` reads them."""

    name: str
    class_values: list[float]
    class_names: list[str] | None
    ordinal: bool
    source_class_indices: list[int] | None

    @property
    def num_classes(self) -> int:
        return len(self.class_values)


def run_cost(run: TrainedRun) -> torch.Tensor:
    """The default cost of ``decoder="min_risk"``: ``1 - S`` of the run's similarity, (C, C).

    ``S`` is rebuilt from the run's record by the training's own
    :func:`~simloss.experiments.losses.build_similarity`: the class order
    ``r^|i-j|``, the class values ``r^(|v_i - v_j| / scale)``, the hierarchy file's
    LCA depths with the lower bound ``l``, the class vectors (file or class names)
    with ``l``; the identity for a run whose loss has no similarity (its
    minimum-risk decision is the argmax). The files the config names (hierarchy,
    vectors) must still be where training read them.

    Raises:
        ValueError: an unreadable config, or a similarity that cannot be rebuilt
            (a file the config names is gone), naming ``--cost`` as the way out.
    """
    from simloss.experiments.config import TrainConfig
    from simloss.experiments.losses import build_similarity
    from simloss.metrics import similarity_cost

    classes = len(run.class_values)
    where = run.folder / "record.json"
    try:
        config = TrainConfig.from_dict(dict(run.config or {}))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Expected a readable config in {where}: {exc}") from None
    kind = config.inferred_similarity if loss_spec(config.inferred_loss).uses_similarity else None
    if kind is None or kind == "identity":
        return similarity_cost(torch.eye(classes, dtype=torch.float64))
    facts = _RunClasses(
        name=run.dataset,
        class_values=list(run.class_values),
        class_names=None if run.class_names is None else list(run.class_names),
        ordinal=config.ordinal,
        source_class_indices=(
            None if run.source_class_indices is None else list(run.source_class_indices)
        ),
    )
    try:
        similarity = build_similarity(config, facts)
    except (OSError, ValueError, ImportError) as exc:
        raise ValueError(
            f"Expected the similarity ({kind!r}) of {run.folder} to be rebuilt from its record "
            f"for decoder='min_risk', but: {exc}; give a (C, C) cost matrix (--cost FILE.npy)"
        ) from None
    return similarity_cost(similarity)


def predict_inputs(
    run: TrainedRun,
    raw: torch.Tensor,
    labels: Sequence[str],
    *,
    batch_size: int = 256,
    decoder: str = "argmax",
    cost: Any = None,
) -> list[Prediction]:
    """Predictions for raw inputs ``(N, *input_shape)``, one per label.

    Args:
        run: from :func:`load_run`.
        raw: uint8 images ``(N, 3, H, W)`` in R, G, B order, or features
            ``(N, F)`` in ``run.preprocessing.feature_names`` order, both before
            standardisation.
        labels: a name for every input (e.g. its file).
        batch_size: inputs per forward pass.
        decoder: ``"argmax"`` (default), ``"median"`` (in the order of the class
            values; a CORN or CORAL run's own rule, coral-pytorch's count of
            ``P(y > k) > 1/2``) or ``"min_risk"`` (:mod:`simloss.metrics.decoders`), read
            from the float64 softmax of the class scores.
        cost: (C, C) cost of ``"min_risk"``, rows by decision, columns by true class;
            default :func:`run_cost`.
    """
    if raw.shape[0] != len(labels):
        raise ValueError(
            f"Expected one label per input, but found {raw.shape[0]} inputs and {len(labels)} labels"
        )
    classes = len(run.class_values)
    if decoder == "min_risk" and cost is None:
        cost = run_cost(run)
    decoding = check_decoding(decoder, "probs", cost, allowed=PREDICT_DECODERS, num_classes=classes)
    scores, decided = run.outputs(raw, batch_size=batch_size)
    probs = torch.softmax(scores.double(), dim=1)  # the decoders read float64 probabilities
    if decoding["decoder"] in decided:  # the head's own rule (CORN's median)
        index = decided[decoding["decoder"]]
    elif decoding["decoder"] == "median":
        index = median_class(probs, torch.tensor(run.class_values, dtype=torch.float64))
    elif decoding["decoder"] == "min_risk":
        index = min_risk_class(probs, decoding["cost"])  # type: ignore[arg-type]
    else:
        index = scores.argmax(dim=1)
    best = probs.gather(1, index[:, None])[:, 0] if probs.numel() else probs.new_zeros(0)
    names = run.class_names
    return [
        Prediction(
            input=label,
            class_index=int(k),
            value=run.class_values[int(k)],
            name=None if names is None else names[int(k)],
            probability=float(p),
        )
        for label, k, p in zip(labels, index.tolist(), best.tolist(), strict=True)
    ]


def expand_inputs(paths: Sequence[str | Path]) -> list[Path]:
    """Image inputs as files: a folder stands for every image file below it (sorted).

    Raises:
        FileNotFoundError: a path does not exist.
        ValueError: a folder without image files.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found, _ = image_files(path)
            if not found:
                raise ValueError(
                    f"Expected image files in folder {path}, but found none (image files are "
                    "those whose extension Pillow reads: .jpg, .png, .tif, ...)"
                )
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"Image file {path} does not exist")
    return files


def predict_images(
    run: TrainedRun,
    paths: Sequence[str | Path],
    *,
    batch_size: int = 256,
    decoder: str = "argmax",
    cost: Any = None,
) -> list[Prediction]:
    """Predictions for image files (and every image file below a given folder), decoded as
    the run's training images were (``decoder`` and ``cost`` as in :func:`predict_inputs`).

    Raises:
        ValueError: the run is not an image run, or a file is not a readable
            image (naming it).
        FileNotFoundError: a file does not exist.
    """
    spec = run.preprocessing
    if spec.kind != "image":
        raise ValueError(
            f"Expected an image run for image files, but {run.folder} was trained on "
            f"{run.dataset} {spec.kind} (give {_INPUTS[spec.kind]} instead)"
        )
    _, height, width = spec.input_shape
    channels = "rgb" if spec.channels == "RGB" else "grey"
    files = expand_inputs(paths)
    out: list[Prediction] = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        raw = torch.from_numpy(image_inputs(chunk, (height, width), channels))
        out += predict_inputs(
            run, raw, [str(f) for f in chunk], batch_size=batch_size, decoder=decoder, cost=cost
        )
    return out


_INPUTS = {
    "image": "image files or folders",
    "table": "files of table rows",
    "features": "feature arrays (.npy or .npz with X)",
}


def _table_encoding(run: TrainedRun) -> TableEncoding:
    spec = run.preprocessing
    if spec.kind == "table" and spec.table is not None:
        return spec.table
    if spec.kind == "features" and spec.feature_names == ABALONE_FEATURES:
        return ABALONE_ENCODING  # an Abalone run whose preprocessing is of kind features
    raise ValueError(
        f"Expected a run trained on table rows, but {run.folder} was trained on "
        f"{run.dataset} {spec.kind} (give {_INPUTS[spec.kind]} instead)"
    )


def predict_rows(
    run: TrainedRun,
    path: str | Path,
    *,
    batch_size: int = 256,
    decoder: str = "argmax",
    cost: Any = None,
) -> list[Prediction]:
    """Predictions for the rows of a table file, encoded as the run's training rows were
    (``decoder`` and ``cost`` as in :func:`predict_inputs`).

    The file has the training table's columns (a header row where the
    training table had one; Abalone rows as in ``abalone.data``, with or
    without the ring count); the label column, if present, is not used: rows
    of a table without a header hold every column, or every column but the
    label (wherever it is).

    Raises:
        ValueError: the run is not a table run, a missing column, a cell that
            is not a number, an unseen category (naming the line and column).
        FileNotFoundError: the file does not exist.
    """
    encoding = _table_encoding(run)
    file = Path(path)
    table = read_table(
        file,
        header=encoding.header,
        columns=encoding.columns,
        delimiter=encoding.delimiter,
        optional=encoding.label,
        what="row file",
    )
    features = encoding.encode(table)
    labels = [f"{file}:{line}" for line in table.lines]
    return predict_inputs(
        run, torch.from_numpy(features), labels, batch_size=batch_size, decoder=decoder, cost=cost
    )


def predict_features(
    run: TrainedRun,
    path: str | Path,
    *,
    batch_size: int = 256,
    decoder: str = "argmax",
    cost: Any = None,
) -> list[Prediction]:
    """Predictions for feature vectors: ``X`` ``(N, F)`` of a ``.npy`` file or an ``.npz`` file
    (``decoder`` and ``cost`` as in :func:`predict_inputs`).

    Raises:
        ValueError: the run is not a feature run, or ``X`` does not fit it.
    """
    spec = run.preprocessing
    if spec.kind != "features":
        raise ValueError(
            f"Expected a run trained on feature arrays, but {run.folder} was trained on "
            f"{run.dataset} {spec.kind} (give {_INPUTS[spec.kind]} instead)"
        )
    x = read_feature_file(path)
    if x.shape[1:] != spec.input_shape:
        raise ValueError(
            f"Expected features of shape (N, {spec.input_shape[0]}) in {path} (the run's "
            f"inputs), but found {x.shape}"
        )
    labels = [f"{path} row {i}" for i in range(len(x))]
    return predict_inputs(
        run, torch.from_numpy(x), labels, batch_size=batch_size, decoder=decoder, cost=cost
    )


def predictions_csv(predictions: Sequence[Prediction]) -> str:
    """CSV text with the header ``input,class,value,name,probability``.

    Example:
        >>> print(predictions_csv([Prediction("a.jpg", 25, 26.0, None, 0.25)]), end="")
        input,class,value,name,probability
        a.jpg,25,26,,0.25
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for p in predictions:
        value = int(p.value) if math.isfinite(p.value) and p.value == int(p.value) else p.value
        name = "" if p.name is None else p.name
        writer.writerow([p.input, p.class_index, value, name, f"{p.probability:.6g}"])
    return buffer.getvalue()


def write_predictions(predictions: Sequence[Prediction], path: str | Path) -> Path:
    """Write :func:`predictions_csv` to ``path`` atomically; returns the path."""
    target = Path(path)
    atomic_write_text(target, predictions_csv(predictions))
    return target
