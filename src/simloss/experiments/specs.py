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
import math
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
    "LOSSES",
    "LOSS_TASKS",
    "METRIC_ORDER",
    "MODELS",
    "MONITORS",
    "PARAMS",
    "DatasetSpec",
    "LossParam",
    "LossSpec",
    "MetricSpec",
    "ParamSpec",
    "SweptParam",
    "dataset_spec",
    "loss_spec",
    "metric_spec",
    "swept_param",
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


@dataclass(frozen=True)
class LossParam:
    """The one hyper-parameter of a peer loss that sweeps and tuning vary.

    Attributes:
        name: its name in grids (``--grid alpha=1,2``) and records (``param``).
        default: the value a run takes when ``loss_param`` is left out.
        low, high: the valid range; ``low_open``/``high_open`` exclude an end.
        grid: the values a sweep takes without ``--grid``.
        log: whether a tuner should search it on a log scale.
        meaning: what it does, for people.
        source: where the default comes from (paper, section; or the library).
    """

    name: str
    default: float
    low: float
    high: float
    grid: tuple[float, ...]
    meaning: str
    source: str
    low_open: bool = False
    high_open: bool = False
    log: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies in the valid range.

        Example:
            >>> LOSSES["label-smoothing"].param.contains(1.0)
            False
        """
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below and math.isfinite(value)

    def range_text(self) -> str:
        """The valid range as an interval, e.g. ``"[0, 1)"``."""
        return (
            f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
            f"{')' if self.high_open else ']'}"
        )


#: The kinds of task a loss applies to: any classes, ordered classes only, or
#: classes related by a similarity or hierarchy (not ordered).
LOSS_TASKS: tuple[str, ...] = ("any", "ordinal", "semantic")


@dataclass(frozen=True)
class LossSpec:
    """A training loss simloss can compare: where it comes from and what it needs.

    Attributes:
        name: the ``loss`` setting (``--loss``) and the name in records.
        title: its name in tables and figures.
        task: ``"any"``, ``"ordinal"`` (ordered classes only) or ``"semantic"``
            (unordered classes with a similarity or a hierarchy).
        param: its own hyper-parameter (held in ``loss_param``), or ``None``.
        uses_similarity: the loss is built from the dataset's similarity, so
            its parameter is the dataset's ``r`` or ``l`` (SimLoss, soft labels).
        needs: config settings it cannot run without (e.g. ``hierarchy``).
        outputs: ``"classes"`` (C scores) or ``"thresholds"`` (C - 1 conditional
            logits, CORN: the model's head has C - 1 outputs).
        library: where the implementation comes from (``torch``, ``simloss``,
            ``dlordinal``, ``coral_pytorch``).
        max_classes: the most classes it is defined for (``None``: any).
        source: the paper.
    """

    name: str
    title: str
    task: str
    param: LossParam | None
    uses_similarity: bool
    needs: tuple[str, ...]
    outputs: str
    library: str
    source: str
    max_classes: int | None = None

    def applies_to(self, dataset: str) -> bool:
        """Whether the loss is defined for a dataset (ordinal losses need ordered classes)."""
        ordinal = dataset_spec(dataset).ordinal
        return self.task == "any" or (self.task == "ordinal") == ordinal

    def num_outputs(self, num_classes: int) -> int:
        """The model's output size for ``num_classes`` classes (C, or C - 1 for CORN)."""
        return num_classes - 1 if self.outputs == "thresholds" else num_classes


_UNIMODAL_ETA = LossParam(
    "eta",
    1.0,
    0.0,
    1.0,
    (0.25, 0.5, 0.75, 1.0),
    "weight of the soft labels against the one-hot target, (1 - eta) onehot + eta q[y]",
    "dlordinal's default eta = 1 (the targets are the soft labels alone)",
)

#: The losses of ``--loss`` (Kobs et al. 2020 compared SimLoss with CE only).
LOSSES: Mapping[str, LossSpec] = MappingProxyType(
    {
        "ce": LossSpec(
            "ce", "CE", "any", None, False, (), "classes", "torch", "cross-entropy (the CCE row)"
        ),
        "simloss": LossSpec(
            "simloss", "SimLoss", "any", None, True, (), "classes", "simloss",
            "Kobs et al., ISMIS 2020, Eq. 1",
        ),
        "label-smoothing": LossSpec(
            "label-smoothing", "Label smoothing", "any",
            LossParam(
                "epsilon", 0.1, 0.0, 1.0, (0.05, 0.1, 0.2, 0.3),
                "probability mass spread uniformly over all classes",
                "Szegedy et al., CVPR 2016, Sec. 7: epsilon = 0.1",
                high_open=True,
            ),
            False, (), "classes", "torch", "Szegedy et al., CVPR 2016",
        ),
        "soft-labels": LossSpec(
            "soft-labels", "Soft labels", "any", None, True, (), "classes", "simloss",
            "Bertinetto et al., CVPR 2020 (CE against S[y] / sum S[y])",
        ),
        "hxe": LossSpec(
            "hxe", "HXE", "semantic",
            LossParam(
                "alpha", 0.1, 0.0, 10.0, (0.1, 0.2, 0.3, 0.5),
                "weight exp(-alpha h(C)) of a hierarchy level of height h",
                "Bertinetto et al., CVPR 2020, Sec. 5: alpha = 0.1, the smallest of their grid",
            ),
            False, ("hierarchy",), "classes", "simloss", "Bertinetto et al., CVPR 2020, Eq. 5",
        ),
        "sord": LossSpec(
            "sord", "SORD", "ordinal",
            LossParam(
                "alpha", 1.0, 0.0, 100.0, (0.5, 1.0, 2.0, 4.0),
                "soft label q_i proportional to exp(-alpha |i - y|)",
                "Diaz & Marathe, CVPR 2019, Eq. 1 with the plain distance phi = |i - y| (alpha = 1)",
                low_open=True, log=True,
            ),
            False, (), "classes", "dlordinal", "Diaz & Marathe, CVPR 2019",
        ),
        "triangular": LossSpec(
            "triangular", "Triangular", "ordinal",
            LossParam(
                "alpha2", 0.05, 0.0, 0.5, (0.01, 0.05, 0.1, 0.2),
                "probability given to each adjacent class",
                "Vargas et al., Information Fusion 2023 (dlordinal's default alpha2 = 0.05)",
                low_open=True, high_open=True,
            ),
            False, (), "classes", "dlordinal", "Vargas et al., Information Fusion 2023",
        ),
        "beta": LossSpec(
            "beta", "Beta", "ordinal", _UNIMODAL_ETA, False, (), "classes", "dlordinal",
            "Vargas et al., Pattern Recognition 2022", max_classes=14,
        ),
        "binomial": LossSpec(
            "binomial", "Binomial", "ordinal", _UNIMODAL_ETA, False, (), "classes",
            "dlordinal", "Liu et al., Neurocomputing 2020",
        ),
        "poisson": LossSpec(
            "poisson", "Poisson", "ordinal", _UNIMODAL_ETA, False, (), "classes",
            "dlordinal", "Liu et al., Neurocomputing 2020",
        ),
        "exponential": LossSpec(
            "exponential", "Exponential", "ordinal",
            LossParam(
                "p", 1.0, 0.0, 10.0, (0.5, 1.0, 1.5, 2.0),
                "exponent of the distance, q_i proportional to exp(-|i - y|^p)",
                "Vargas et al., Applied Soft Computing 2023 (dlordinal's default p = 1, tau = 1)",
                low_open=True,
            ),
            False, (), "classes", "dlordinal", "Vargas et al., Applied Soft Computing 2023",
        ),
        "cdw-ce": LossSpec(
            "cdw-ce", "CDW-CE", "ordinal",
            LossParam(
                "alpha", 5.0, 0.0, 20.0, (1.0, 2.0, 3.0, 5.0),
                "power of the class distance, -sum_i |i - y|^alpha log(1 - p_i)",
                "Polat et al., arXiv 2412.01246 (2024): alpha 5 to 7 worked best",
                low_open=True,
            ),
            False, (), "classes", "dlordinal", "Polat et al., arXiv 2202.05167 (2022)",
        ),
        "emd": LossSpec(
            "emd", "EMD", "ordinal", None, False, (), "classes", "dlordinal",
            "Hou et al., arXiv 1611.05916 (2016): squared EMD",
        ),
        "corn": LossSpec(
            "corn", "CORN", "ordinal", None, False, (), "thresholds", "coral_pytorch",
            "Shi, Cao & Raschka, Pattern Analysis and Applications 2023",
        ),
    }
)  # fmt: skip


def loss_spec(name: str) -> LossSpec:
    """The spec of a loss, with an error that lists the known ones.

    Example:
        >>> loss_spec("corn").num_outputs(17), loss_spec("sord").param.default
        (16, 1.0)
        >>> loss_spec("focal")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected `loss` to be one of ['ce', 'simloss', ...], but found 'focal'
    """
    spec = LOSSES.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"Expected `loss` to be one of {list(LOSSES)}, but found {name!r}")
    return spec


@dataclass(frozen=True)
class SweptParam:
    """The parameter a sweep or a tuner varies for one loss on one dataset.

    Attributes:
        name: as in grids and records (``"r"``, ``"l"``, ``"alpha"``, ...).
        field: the :class:`~simloss.experiments.config.TrainConfig` setting
            that holds it (``"r"``, ``"l"`` or ``"loss_param"``).
        grid: the values a sweep takes by default.
        spec: the loss's own :class:`LossParam` (``None`` for ``r``/``l``,
            whose facts are in :data:`PARAMS`).
    """

    name: str
    field: str
    grid: tuple[float, ...]
    spec: LossParam | None


def swept_param(dataset: str, loss: str) -> SweptParam | None:
    """What a sweep varies for ``loss`` on ``dataset`` (``None``: the loss has no parameter).

    SimLoss and soft labels take the dataset's similarity parameter (``r`` for
    ordered classes, ``l`` for class-name vectors, with the paper's grid); the
    other losses their own (:attr:`LossSpec.param`, in ``loss_param``).

    Example:
        >>> swept_param("abalone", "simloss").name, swept_param("abalone", "sord").field
        ('r', 'loss_param')
        >>> swept_param("abalone", "corn") is None
        True
    """
    spec = loss_spec(loss)
    if spec.uses_similarity:
        data = dataset_spec(dataset)
        return SweptParam(data.param, data.param, data.grid, None)
    if spec.param is None:
        return None
    return SweptParam(spec.param.name, "loss_param", spec.param.grid, spec.param)


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
#: Ordered classes record MAE and MSE under every decoder (the issue of decoders:
#: the expected value or the median of the predicted distribution can lower MAE).
_ORDINAL_DECODERS = ("argmax", "expectation", "median")


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
        decoders: the decoders under which runs record MAE and MSE (ordered
            classes: argmax, expectation and median; see
            :func:`simloss.metrics.compute_metrics`).
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
    decoders: tuple[str, ...] = ("argmax",)

    @property
    def cce_value(self) -> float:
        """The value of :attr:`param` at which the paper's CCE row is taken."""
        return PARAMS[self.param].cce_value

    @property
    def similarity(self) -> str:
        """The similarity source of :attr:`param`."""
        return PARAMS[self.param].similarity

    @property
    def record_metrics(self) -> tuple[str, ...]:
        """Every metric key a run records: the metrics of :mod:`simloss.metrics` its task
        allows (:func:`simloss.metrics.metric_keys`: ordered classes, or superclasses with
        their two-level hierarchy), MAE/MSE under every decoder.

        Example:
            >>> dataset_spec("abalone").record_metrics[:8]
            ('acc', 'mae', 'mse', 'qwk', 'amae', 'mmae', 'rps', 'ms')
            >>> dataset_spec("abalone").record_metrics[-4:]
            ('mae_expectation', 'mse_expectation', 'mae_median', 'mse_median')
            >>> dataset_spec("cifar100").record_metrics[:6]
            ('acc', 'sa', 'fsa', 'mistake_severity', 'hdist_top5', 'hf')
        """
        from simloss.metrics import metric_keys

        superclasses = "sa" in self.metrics
        return metric_keys(
            ordered=self.ordinal,
            superclasses=superclasses,
            hierarchy=superclasses,
            decoders=self.decoders,
        )

    @property
    def monitors(self) -> tuple[str, ...]:
        """The validation metrics early stopping can watch: the record metrics and ``loss``."""
        return (*self.record_metrics, LOSS)

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
        decoders=_ORDINAL_DECODERS,
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
            decoders=_ORDINAL_DECODERS,
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
#: What early stopping can watch: a record metric (any decoder) or the validation loss.
MONITORS: tuple[str, ...] = (
    *dict.fromkeys(m for spec in DATASETS.values() for m in spec.record_metrics),
    LOSS,
)
