"""One training run: data, model, SimLoss, Adam, early stopping, a JSON record.

:func:`run_training` follows the paper's setup (Section 4): Adam with learning
rate 1e-3, batch size 1024 (Abalone: 256), early stopping with patience on a
validation metric (age: MAE, patience 10; CIFAR-100: accuracy, patience 20),
the weights of the best validation epoch kept, and validation and test metrics
reported at that epoch. The record's layout is fixed in ``docs/architecture.md``.

Runs are deterministic on the CPU for a given config: the split uses
``split_seed``, weights and batch order use ``seed`` (through
:func:`simloss.experiments._runtime.seed_everything`).

A run is built in a hidden sibling folder and moved onto ``out_dir`` only when
it has finished (:mod:`simloss.experiments._run_folder`): a folder never holds
files of two runs, and a failed, diverged or killed run leaves nothing that
looks like a run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import simloss
from simloss.experiments._files import atomic_path, atomic_write_json
from simloss.experiments._run_folder import staged_run_folder
from simloss.experiments._runtime import check_threads, resolve_device, seed_everything
from simloss.experiments.config import METRIC_GOALS, TrainConfig
from simloss.experiments.data import PreparedData, Split, load_data
from simloss.experiments.losses import Criterion, build_criterion, build_similarity
from simloss.experiments.models import build_model
from simloss.experiments.task.declaration import ORDINAL_DECODERS
from simloss.metrics import ClassHierarchy, compute_metrics, mean_predicted_distribution

__all__ = [
    "SCHEMA_VERSION",
    "STOP_REASONS",
    "EpochCallback",
    "Evaluation",
    "build_similarity",
    "evaluate",
    "run_training",
]

logger = logging.getLogger(__name__)

#: Version of the record layout (``docs/architecture.md``).
SCHEMA_VERSION = 1
#: Why a run's training loop ended (the record's ``stop_reason``): the epoch cap, early
#: stopping, or a reason returned by an ``on_epoch`` callback (e.g. ``"pruned"``).
STOP_REASONS = ("epochs", "patience")

#: ``on_epoch(history, best_epoch)``: called after every epoch with the history so far
#: (the record's entries) and the best epoch so far (0: none yet); a returned string
#: stops the run and becomes the record's ``stop_reason``, ``None`` lets it go on.
EpochCallback = Callable[[Sequence[dict[str, Any]], int], str | None]


@dataclass
class Evaluation:
    """The result of :func:`evaluate` on one split.

    Attributes:
        logits: float32 class scores ``(N, C)`` on the CPU
            (:meth:`~simloss.experiments.losses.Criterion.class_logits` of the outputs).
        targets: int64 ``(N,)`` on the CPU.
        loss: the mean training loss over the split.
        metrics: :func:`simloss.metrics.compute_metrics` of the logits.
    """

    logits: torch.Tensor
    targets: torch.Tensor
    loss: float
    metrics: dict[str, float]


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    yield from order.split(batch_size)


def _prepare_batch(
    data: PreparedData, split: Split, index: torch.Tensor, device: torch.device, channels_last: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    idx = index.to(split.inputs.device)
    inputs = data.standardize(split.inputs[idx].to(device, non_blocking=True))
    if channels_last and inputs.dim() == 4:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    return inputs, split.targets[idx].to(device, non_blocking=True)


def _metric_kwargs(data: PreparedData) -> dict[str, Any]:
    if data.ordinal:
        return {"class_values": data.class_values, "decoders": ORDINAL_DECODERS}
    if data.fine_to_coarse is not None:  # the superclasses and their two-level hierarchy
        hierarchy = ClassHierarchy.from_superclasses(data.fine_to_coarse)
        return {"fine_to_coarse": data.fine_to_coarse, "hierarchy": hierarchy}
    return {}


@torch.no_grad()
def evaluate(
    model: nn.Module,
    criterion: nn.Module,
    data: PreparedData,
    split: Split,
    *,
    batch_size: int,
    device: torch.device,
    channels_last: bool = False,
) -> Evaluation:
    """Class scores (CPU, float32), mean loss and the paper's metrics on one split.

    MAE and MSE of ordered classes are recorded under every decoder of the
    dataset's spec (argmax, expectation, median). A :class:`Criterion`'s class
    scores are what the metrics read (CORN's outputs are converted), and the
    classes its head decides itself are what its decoders read (CORN's median is
    coral-pytorch's rule on its logits); another module's outputs are the scores.
    """
    model.eval()
    outputs: list[torch.Tensor] = []
    decided: dict[str, list[torch.Tensor]] = {}
    loss_sum = 0.0
    for index in _batches(len(split), batch_size, None):
        inputs, targets = _prepare_batch(data, split, index, device, channels_last)
        raw = model(inputs)
        loss_sum += float(criterion(raw, targets)) * len(index)
        logits = criterion.class_logits(raw) if isinstance(criterion, Criterion) else raw
        outputs.append(logits.float().cpu())
        if isinstance(criterion, Criterion):
            for decoder, classes in criterion.head.decisions(raw).items():
                decided.setdefault(decoder, []).append(classes.cpu())
    logits = torch.cat(outputs)
    bad = int((~torch.isfinite(logits)).sum())
    if bad:
        raise _NonFiniteOutputs(
            f"expected finite model outputs, but {bad} of {logits.numel()} are NaN or infinite"
        )
    targets = split.targets.cpu()
    kwargs = _metric_kwargs(data)
    decoders = kwargs.get("decoders", ("argmax",))
    decoded = {name: torch.cat(parts) for name, parts in decided.items() if name in decoders}
    metrics = compute_metrics(logits, targets, decoded=decoded or None, **kwargs)
    return Evaluation(logits, targets, loss_sum / len(split), metrics)


def _improved(value: float, best: float | None, goal: str) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if goal == "min" else value > best


def _jsonable(value: Any) -> Any:
    """Plain JSON types; NaN and infinities become ``null``."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def _distributions(evaluation: Evaluation) -> dict[str, Any]:
    dist = mean_predicted_distribution(evaluation.logits, evaluation.targets)
    if dist.per_class is None or dist.class_counts is None:
        raise RuntimeError("mean_predicted_distribution returned no per-class result")
    counts = dist.class_counts
    per_class = [
        row.tolist() if int(count) > 0 else None
        for row, count in zip(dist.per_class, counts, strict=True)
    ]
    return {
        "test_mean": dist.mean.tolist(),
        "test_per_class": per_class,
        "test_label": (counts.double() / counts.sum()).tolist(),
    }


def run_training(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    on_epoch: EpochCallback | None = None,
) -> dict[str, Any]:
    """Train one model and write ``config.json``, ``model.pt`` and ``record.json`` into ``out_dir``.

    Steps: check ``out_dir``, resolve the config (dataset defaults), write
    ``config.json``, load and split the data (``split_seed``), seed everything
    (``seed``), build the model, the SimLoss and Adam, train for at most
    ``epochs`` epochs with early stopping on the validation ``monitor`` metric
    (stop after ``patience`` epochs without a strict improvement), restore the
    best epoch's weights, evaluate validation and test, and write the weights
    and the record. The files are written into a hidden sibling folder that is
    renamed onto ``out_dir`` only when the run has finished, so ``out_dir``
    holds the three files of one finished run or nothing.

    The run stops with a ``RuntimeError`` saying it diverged when, after an
    epoch, the training loss or a weight is NaN or infinite, or the model's
    outputs are (e.g. ``lr=1e30``).

    Args:
        config: the run's settings.
        out_dir: the run folder; it must not exist or be empty (created with
            its parents).
        overwrite: replace a finished run in ``out_dir``; the old run stays
            untouched until the new one has finished (if the new one fails,
            the old one is kept). A folder holding other files than a run's is
            never replaced.
        on_epoch: called after each epoch (after early stopping's bookkeeping)
            as ``on_epoch(history, best_epoch)``; a returned non-empty string
            stops training as early stopping would (best weights restored,
            validation and test evaluated, record written) and is recorded as
            ``stop_reason``. :mod:`simloss.experiments.tune` uses it to report
            each epoch to Optuna and to prune.

    Returns:
        The record (the content of ``record.json``, see ``docs/architecture.md``),
        with ``stop_reason`` (``"epochs"``: the cap, ``"patience"``: early
        stopping, or the string ``on_epoch`` returned) and the added key ``preprocessing`` (how a raw input becomes a model
        input, :meth:`simloss.experiments.data.Preprocessing.to_dict`).
        Metric values that are undefined (e.g. ``fsa`` without a mistake) are
        ``None`` (JSON ``null``).

    Raises:
        FileExistsError: ``out_dir`` is not empty and ``overwrite`` is ``False``
            (before any work).
        RuntimeError: the run diverged.

    Example:
        >>> import tempfile
        >>> cfg = TrainConfig(dataset="abalone", r=0.5, epochs=2, limit=200, progress=False)
        >>> record = run_training(cfg, tempfile.mkdtemp())
        >>> record["loss"], record["param"], record["param_value"], len(record["history"])
        ('simloss', 'r', 0.5, 2)
        >>> keys = list(record["metrics"]["test"])  # the task's metrics (simloss.metrics)
        >>> keys[:3], keys[-4:]  # MAE and MSE under the argmax, expectation, median
        (['acc', 'mae', 'mse'], ['mae_expectation', 'mse_expectation', 'mae_median', 'mse_median'])
        >>> tuple(keys) == cfg.task_spec.record_metrics
        True
    """
    if not isinstance(config, TrainConfig):
        raise TypeError(f"Expected `config` to be a TrainConfig, but found {type(config).__name__}")
    if config.loss == "simloss" and config.similarity is None and config.param is None:
        # Resolving would make it the identity: cross-entropy recorded as SimLoss. (Sweeps
        # and tunes set the parameter of each point; only a run asked for directly lacks it.)
        raise ValueError(
            f"Expected `{config.task_spec.param or 'r'}` (or similarity 'identity' for "
            "plain cross-entropy) for loss 'simloss', but found None"
        )
    started = time.perf_counter()
    cfg = config.resolve()
    check_threads(cfg.num_threads)
    with staged_run_folder(out_dir, overwrite=overwrite) as out:
        atomic_write_json(out / "config.json", cfg.to_dict())
        previous_threads = torch.get_num_threads()
        if cfg.num_threads is not None:
            torch.set_num_threads(cfg.num_threads)
        try:
            record = _train(cfg, out, started, on_epoch)
        finally:
            torch.set_num_threads(previous_threads)
    return record


def _resolved_int(value: int | None, name: str) -> int:
    if value is None:
        raise ValueError(f"Expected `{name}` to be set by TrainConfig.resolve(), but found None")
    return value


def _train(
    cfg: TrainConfig, out: Path, started: float, on_epoch: EpochCallback | None
) -> dict[str, Any]:
    device = resolve_device(cfg.device)
    epochs = _resolved_int(cfg.epochs, "epochs")
    patience = _resolved_int(cfg.patience, "patience")
    batch_size = _resolved_int(cfg.batch_size, "batch_size")
    monitor = cfg.monitor or "loss"
    goal = METRIC_GOALS[monitor]
    data = load_data(cfg)
    if device.type == "cuda":
        data = _to_device(data, device)
    generator = seed_everything(cfg.seed)
    criterion = build_criterion(cfg, data).to(device)
    outputs = criterion.head.outputs(data.num_classes)
    model_name = cfg.model or data.model or ("cnn" if data.is_image else "mlp")
    if model_name != cfg.model:  # the factory's model, or the default by input kind
        cfg = replace(cfg, model=model_name)
        atomic_write_json(out / "config.json", cfg.to_dict())
    backbone = build_model(model_name, data.input_shape, outputs, search=_task_folder(cfg))
    model = criterion.head.wrap(backbone, data.num_classes).to(device)
    channels_last = cfg.channels_last and data.is_image
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    from tqdm.auto import tqdm

    history: list[dict[str, Any]] = []
    best_value: float | None = None
    best_epoch = 0
    best_state: dict[str, torch.Tensor] | None = None
    stop_reason = STOP_REASONS[0]
    bar = tqdm(range(1, epochs + 1), desc=f"{cfg.dataset}", unit="epoch", disable=not cfg.progress)
    last_line = time.monotonic()
    for epoch in bar:
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        steps = tqdm(
            list(_batches(len(data.train), batch_size, generator)),
            desc=f"epoch {epoch}",
            unit="batch",
            leave=False,
            disable=not cfg.progress,
        )
        for index in steps:
            inputs, targets = _prepare_batch(data, data.train, index, device, channels_last)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs), targets)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)  # on the device: no sync per step
        train_time = time.perf_counter() - epoch_start
        _check_not_diverged(epoch, float(loss_sum) / len(data.train), model, cfg.lr)
        try:
            val = evaluate(
                model, criterion, data, data.val,
                batch_size=batch_size, device=device, channels_last=channels_last,
            )  # fmt: skip
        except _NonFiniteOutputs as exc:
            raise RuntimeError(_diverged(epoch, f"{exc} on the validation split", cfg.lr)) from exc
        value = val.loss if monitor == "loss" else val.metrics[monitor]
        history.append(
            {
                "epoch": epoch,
                "train_loss": float(loss_sum) / len(data.train),
                "val_loss": val.loss,
                "val": val.metrics,
                "time_s": time.perf_counter() - epoch_start,
                "train_time_s": train_time,  # the training steps alone (an added key)
            }
        )
        if _improved(value, best_value, goal):
            best_value, best_epoch = value, epoch
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        bar.set_postfix(train_loss=f"{history[-1]['train_loss']:.4f}", **{monitor: f"{value:.4f}"})
        logger.debug("epoch %d: %s", epoch, history[-1])
        if not cfg.progress and time.monotonic() - last_line >= _STATUS_S:
            last_line = time.monotonic()  # a line at most every 10 s where no bar is shown
            logger.info(
                "%s epoch %d/%d: train loss %.4f, validation %s %.4f (best epoch %d)",
                cfg.dataset, epoch, epochs, history[-1]["train_loss"], monitor, value,
                best_epoch,
            )  # fmt: skip
        reason = on_epoch(history, best_epoch) if on_epoch is not None else None
        if reason:
            stop_reason = str(reason)
            break
        if epoch - best_epoch >= patience:
            stop_reason = STOP_REASONS[1]
            break
    bar.close()
    if best_state is None:
        raise RuntimeError(
            f"Validation {monitor} was NaN at every epoch; the run diverged (see the history)"
        )
    model.load_state_dict(best_state)
    final_val = evaluate(
        model, criterion, data, data.val,
        batch_size=batch_size, device=device, channels_last=channels_last,
    )  # fmt: skip
    final_test = evaluate(
        model, criterion, data, data.test,
        batch_size=batch_size, device=device, channels_last=channels_last,
    )  # fmt: skip
    with atomic_path(out / "model.pt", suffix=".pt") as tmp, open(tmp, "wb") as handle:
        torch.save(best_state, handle)  # a handle, so the bytes do not depend on the temp name
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "dataset": cfg.dataset,
        "loss": cfg.inferred_loss,
        "param": cfg.param,
        "param_value": cfg.param_value,
        "class_values": data.class_values,
        "class_names": data.class_names,
        "history": history,
        "best_epoch": best_epoch,
        "metrics": {"val": final_val.metrics, "test": final_test.metrics},
        "distributions": _distributions(final_test),
        "weights": "model.pt",
        "wall_time_s": time.perf_counter() - started,
        "num_examples": {"train": len(data.train), "val": len(data.val), "test": len(data.test)},
        # Keys beyond the contract (additions only).
        "monitor": monitor,
        "val_loss": final_val.loss,  # the training loss on each split at the kept epoch
        "test_loss": final_test.loss,
        "epochs_run": len(history),
        "stop_reason": stop_reason,
        "fine_to_coarse": data.fine_to_coarse,
        "source_class_indices": data.source_class_indices,  # rows of a class-vector file
        "data_info": data.info,
        "device": str(device),
        "versions": {"simloss": simloss.__version__, "torch": torch.__version__},
        "preprocessing": data.preprocessing.to_dict(),
    }
    record = _jsonable(record)
    atomic_write_json(out / "record.json", record)
    return record


#: Seconds between the status lines of a run without a progress bar (logged at INFO).
_STATUS_S = 10.0


class _NonFiniteOutputs(RuntimeError):
    """A model's outputs hold NaN or infinite values: it diverged."""


def _diverged(epoch: int, what: str, lr: float) -> str:
    return (
        f"Training diverged in epoch {epoch}: {what} (try a smaller learning rate than lr={lr:g})"
    )


def _check_not_diverged(epoch: int, train_loss: float, model: nn.Module, lr: float) -> None:
    """Raise when the training loss or a weight is NaN or infinite (one sync per epoch)."""
    finite = torch.stack([torch.isfinite(p).all() for p in model.parameters()])
    bad_weights = int((~finite).sum())
    if math.isfinite(train_loss) and not bad_weights:
        return
    raise RuntimeError(
        _diverged(
            epoch,
            f"expected a finite training loss and weights, but found loss {train_loss} and "
            f"{bad_weights} parameter tensor(s) with NaN or infinite values",
            lr,
        )
    )


def _task_folder(cfg: TrainConfig) -> Path | None:
    """Where a task file's own modules (model and data factories) are imported from."""
    task = cfg.task_spec
    return None if task.file is None else task.file.parent


def _to_device(data: PreparedData, device: torch.device) -> PreparedData:
    def move(split: Split) -> Split:
        return Split(split.inputs.to(device), split.targets.to(device))

    return replace(data, train=move(data.train), val=move(data.val), test=move(data.test))
