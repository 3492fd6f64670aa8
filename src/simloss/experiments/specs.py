"""The facts of the paper's experiments, declared once: datasets and metrics.

Every other part of :mod:`simloss.experiments` (the config, training, sweeps,
reports, figures and the command line) reads these tables; none keeps its own
copy. Adding a dataset means one :class:`DatasetSpec` here and its loader in
:mod:`simloss.experiments.data`; a metric's facts (label, direction, percent) live on its class in
:mod:`simloss.metrics` and are read through :func:`metric_spec`.

Example:
    >>> spec = dataset_spec("utkface")
    >>> spec.ordinal, spec.param, spec.cce_value, spec.defaults["model"]
    (True, 'r', 0.0, 'age_cnn')
    >>> metric_spec("mae").higher_is_better, metric_spec("acc").percent, METRIC_ORDER
    (False, True, ('acc', 'mae', 'mse', 'sa', 'fsa'))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "CIFAR_CLASS_SETS",
    "DATASETS",
    "DATA_OPTIONS",
    "DEFAULT_RUNS",
    "LOSS",
    "METRIC_ORDER",
    "MODELS",
    "MONITORS",
    "PARAMS",
    "DatasetSpec",
    "MetricSpec",
    "ParamSpec",
    "dataset_spec",
    "metric_spec",
]


@dataclass(frozen=True)
class MetricSpec:
    """What a report needs to know about a metric, read from the metric's class.

    The facts live on the metric classes of :mod:`simloss.metrics`
    (``higher_is_better``, ``is_percent``, ``label``, as torchmetrics keeps
    them); :func:`metric_spec` reads them through
    :func:`simloss.metrics.metric_facts`. The one metric that is not a metric
    class is ``loss``, the validation loss early stopping can watch.

    Attributes:
        name: the key in run records (``metrics.val.<name>``).
        label: the column label in tables and figures.
        higher_is_better: the direction in which the metric improves (``None``:
            no direction, never bold or marked).
        percent: a fraction in [0, 1] that tables and figures show in percent
            (records and CSV files keep the fraction).
    """

    name: str
    label: str
    higher_is_better: bool | None
    percent: bool

    def scale(self) -> float:
        """The factor from the recorded value to the shown one (100 for percent)."""
        return 100.0 if self.percent else 1.0

    def header(self) -> str:
        """The column header: ``"Acc (%)"`` or ``"MAE"``."""
        return f"{self.label} (%)" if self.percent else self.label


#: The validation loss: early stopping can watch it; records do not hold it.
LOSS = "loss"


@functools.cache
def metric_spec(name: str) -> MetricSpec | None:
    """The facts of a record metric (or ``loss``), or ``None`` for a metric simloss does not know.

    Example:
        >>> metric_spec("fsa").label, metric_spec("mae").higher_is_better, metric_spec("f1")
        ('FSA', False, None)
        >>> metric_spec("mae_expectation").header()
        'MAE (expectation)'
    """
    if name == LOSS:
        return MetricSpec(LOSS, "Loss", False, False)
    from simloss.metrics import metric_facts

    try:
        facts = metric_facts(name)
    except KeyError:
        return None
    return MetricSpec(name, facts.label, facts.higher_is_better, facts.is_percent)


@dataclass(frozen=True)
class ParamSpec:
    """A similarity hyper-parameter that sweeps vary.

    Attributes:
        name: ``"r"`` or ``"l"`` (a :class:`~simloss.experiments.config.TrainConfig` field).
        similarity: the similarity source it belongs to.
        cce_value: the value at which the paper takes its CCE row (``r = 0.0`` is
            exactly cross-entropy; ``l = 0.99`` keeps only the diagonal, Table 2).
        meaning: what it is, for people.
    """

    name: str
    similarity: str
    cce_value: float
    meaning: str


#: The swept hyper-parameters (Kobs et al. 2020, Eq. 2 and Eq. 3).
PARAMS: Mapping[str, ParamSpec] = MappingProxyType(
    {
        "r": ParamSpec("r", "order", 0.0, "class-order reduction factor, S_ij = r^|i-j|"),
        "l": ParamSpec("l", "embeddings", 0.99, "lower bound of class-name similarity"),
    }
)

#: Models by name (see :mod:`simloss.experiments.models`).
MODELS: tuple[str, ...] = ("mlp", "age_cnn", "lenet")
#: CIFAR-100 class sets: all 100, or the paper's 96 (four names had no word2vec vector).
CIFAR_CLASS_SETS: tuple[str, ...] = ("all", "paper96")
#: The paper's number of runs per grid value (Section 4).
DEFAULT_RUNS = 10
#: Settings that only some datasets' loaders take; a dataset whose loader does not
#: take one requires it at its default (nothing is silently ignored).
DATA_OPTIONS: tuple[str, ...] = (
    "cache_dir",
    "test_fraction",
    "min_age",
    "max_age",
    "cifar_classes",
    "skip_unreadable",
    "download",
)

_TENTHS = tuple(round(0.1 * i, 1) for i in range(10))


@dataclass(frozen=True)
class DatasetSpec:
    """Everything simloss knows about one dataset of the experiments.

    Attributes:
        name: the name used in configs, records and on the command line.
        title: the name as printed in the paper.
        ordinal: whether the classes are ordered (ages, ring counts).
        param: the similarity hyper-parameter the paper sweeps on it (``r`` or ``l``).
        grid: the paper's grid of ``param``.
        metrics: the record metrics of a run, in the paper's column order.
        defaults: the :class:`~simloss.experiments.config.TrainConfig` settings a
            run takes when they are left out (``num_threads``: torch threads per
            run and per sweep worker; absent: the cores shared among workers).
        paper: the settings of the paper's own experiment (Section 4 and the
            authors' code), against which a report states what differs; ``None``
            where the paper has no such experiment.
        paper_table: the paper's table of results (1 or 2), if any.
        paper_data: the data of the paper's experiment, in words.
        needs_data_dir: whether ``data_dir`` must be given (not for embedded data).
        embedded: the packaged data file (in ``simloss/data``) used without
            ``data_dir``, if any.
        loader: ``"module:function"`` of the loader in :mod:`simloss.experiments.data`.
        loader_args: the loader's keyword for each config setting it takes.
    """

    name: str
    title: str
    ordinal: bool
    param: str
    grid: tuple[float, ...]
    metrics: tuple[str, ...]
    defaults: Mapping[str, Any]
    paper: Mapping[str, Any] | None
    paper_table: int | None
    paper_data: str | None
    needs_data_dir: bool
    embedded: str | None
    loader: str
    loader_args: Mapping[str, str] = field(default_factory=dict)

    @property
    def cce_value(self) -> float:
        """The value of :attr:`param` at which the paper's CCE row is taken."""
        return PARAMS[self.param].cce_value

    @property
    def similarity(self) -> str:
        """The similarity source of :attr:`param`."""
        return PARAMS[self.param].similarity

    @property
    def monitors(self) -> tuple[str, ...]:
        """The validation metrics early stopping can watch: the record metrics and ``loss``."""
        return (*self.metrics, LOSS)

    def takes(self, setting: str) -> bool:
        """Whether the loader reads a config setting."""
        return setting in self.loader_args


_SPLITS_60_20_20 = {"val_fraction": 0.2, "test_fraction": 0.2}
_AGE_LOADER_ARGS = {
    "data_dir": "folder",
    "min_age": "min_age",
    "max_age": "max_age",
    "val_fraction": "val_fraction",
    "test_fraction": "test_fraction",
    "split_seed": "split_seed",
    "limit": "limit",
    "cache_dir": "cache_dir",
    "skip_unreadable": "skip_unreadable",
    "progress": "progress",
}
# The paper (Section 4): Adam with lr 1e-3, batch size 1024, early stopping with
# patience 10 on validation MAE (ages) or 20 on accuracy (CIFAR-100), 10 runs per
# value; the epoch caps are those of the authors' code.
_PAPER_AGE = {
    "model": "age_cnn",
    "epochs": 200,
    "patience": 10,
    "monitor": "mae",
    "lr": 1e-3,
    "batch_size": 1024,
    "limit": None,
    **_SPLITS_60_20_20,
}


def _age_dataset(name: str, title: str, *, ages: tuple[int, int], data: str) -> DatasetSpec:
    """An age-estimation dataset of the paper (UTKFace, AFAD): they differ in their ages."""
    low, high = ages
    return DatasetSpec(
        name=name,
        title=title,
        ordinal=True,
        param="r",
        grid=_TENTHS,
        metrics=("acc", "mae", "mse"),
        defaults=MappingProxyType(
            {
                "model": "age_cnn",
                "epochs": 200,
                "patience": 10,
                "monitor": "mae",
                "batch_size": 1024,
                "min_age": low,
                "max_age": high,
                **_SPLITS_60_20_20,
            }
        ),
        paper=MappingProxyType({**_PAPER_AGE, "min_age": low, "max_age": high}),
        paper_table=1,
        paper_data=f"{data}, 60/20/20",
        needs_data_dir=True,
        embedded=None,
        loader=f"simloss.experiments.data.{name}:load_{name}",
        loader_args=MappingProxyType(_AGE_LOADER_ARGS),
    )


#: The datasets of the experiments, by name.
DATASETS: Mapping[str, DatasetSpec] = MappingProxyType(
    {
        "abalone": DatasetSpec(
            name="abalone",
            title="Abalone",
            ordinal=True,
            param="r",
            grid=_TENTHS,
            metrics=("acc", "mae", "mse"),
            # batch 256 so that an epoch has several steps; one CPU thread, faster
            # than several for so small a model.
            defaults=MappingProxyType(
                {
                    "model": "mlp",
                    "epochs": 500,
                    "patience": 20,
                    "monitor": "mae",
                    "batch_size": 256,
                    "num_threads": 1,
                    **_SPLITS_60_20_20,
                }
            ),
            paper=None,
            paper_table=None,
            paper_data=None,
            needs_data_dir=False,
            embedded="abalone.data",
            loader="simloss.experiments.data.abalone:load_abalone",
            loader_args=MappingProxyType(
                {
                    "data_dir": "path",
                    "val_fraction": "val_fraction",
                    "test_fraction": "test_fraction",
                    "split_seed": "split_seed",
                    "limit": "limit",
                }
            ),
        ),
        "utkface": _age_dataset(
            "utkface", "UTKFace", ages=(1, 90), data="all UTKFace images of ages 1..90"
        ),
        "afad": _age_dataset("afad", "AFAD", ages=(15, 75), data="all AFAD-Full images (61 ages)"),
        "cifar100": DatasetSpec(
            name="cifar100",
            title="CIFAR-100",
            ordinal=False,
            param="l",
            grid=(*_TENTHS, 0.99),
            metrics=("acc", "sa", "fsa"),
            # 10 % of each class's training images for validation, as in the paper.
            defaults=MappingProxyType(
                {
                    "model": "lenet",
                    "epochs": 1000,
                    "patience": 20,
                    "monitor": "acc",
                    "batch_size": 1024,
                    "val_fraction": 0.1,
                }
            ),
            paper=MappingProxyType(
                {
                    "model": "lenet",
                    "epochs": 1000,
                    "patience": 20,
                    "monitor": "acc",
                    "lr": 1e-3,
                    "batch_size": 1024,
                    "limit": None,
                    "val_fraction": 0.1,
                    "cifar_classes": "paper96",
                }
            ),
            paper_table=2,
            paper_data="43200/4800/9600 (96 classes x 450/50/100)",
            needs_data_dir=True,
            embedded=None,
            loader="simloss.experiments.data.cifar100:load_cifar100",
            loader_args=MappingProxyType(
                {
                    "data_dir": "data_dir",
                    "cifar_classes": "classes",
                    "val_fraction": "val_fraction",
                    "split_seed": "split_seed",
                    "limit": "limit",
                    "download": "download",
                    "progress": "progress",
                }
            ),
        ),
    }
)


def dataset_spec(name: str) -> DatasetSpec:
    """The spec of a dataset, with an error that lists the known ones.

    Example:
        >>> dataset_spec("cifar100").grid[-1]
        0.99
        >>> dataset_spec("mnist")
        Traceback (most recent call last):
        ...
        ValueError: Expected `dataset` to be one of ['abalone', 'utkface', 'afad', 'cifar100'], but found 'mnist'
    """
    spec = DATASETS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"Expected `dataset` to be one of {list(DATASETS)}, but found {name!r}")
    return spec


#: The record metrics of the datasets, in the paper's column order.
METRIC_ORDER: tuple[str, ...] = tuple(
    dict.fromkeys(metric for spec in DATASETS.values() for metric in spec.metrics)
)
#: What early stopping can watch: a record metric or the validation loss.
MONITORS: tuple[str, ...] = (*METRIC_ORDER, LOSS)
