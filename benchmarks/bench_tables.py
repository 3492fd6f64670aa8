"""Reading a 100,000-row table task against one MLP epoch on it, and against pandas' C parser.

A user's table is read once per run: parsed (strict numbers, no Python-only
number syntax), its labels mapped to classes, split, one-hot encoded and
standardised (:func:`simloss.experiments.data.tables.load_table_task`). That
must not dominate training. The table: the embedded Abalone rows repeated to
``--rows`` rows, as a CSV file with a header (real values, 9 columns, one of
them categorical). Printed, best of ``--repeats``:

- "read the task": ``load_data`` of the task (parse, classes, split, encoding);
- "parse only (pandas.read_csv)": pandas' C parser reading the same file into
  a DataFrame, a named baseline for the parsing part (no checks, no encoding);
- "one MLP epoch": one epoch of the run's training loop on the training split
  (MLP 64-64, Adam, batch 256: the task's defaults), on this machine's CPU.

Run::

    python benchmarks/bench_tables.py --rows 100000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from importlib import resources
from pathlib import Path

import torch

from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.losses import build_criterion, num_outputs
from simloss.experiments.models import build_model

HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"


def _write(folder: Path, rows: int) -> Path:
    lines = resources.files("simloss").joinpath("data/abalone.data").read_text().split()
    body = (lines * (rows // len(lines) + 1))[:rows]
    table = folder / "big.csv"
    table.write_text(HEADER + "\n" + "\n".join(body) + "\n")
    task = folder / "big.toml"
    task.write_text(
        'name = "big"\n[data]\nkind = "table"\npath = "big.csv"\nlabel = "rings"\n'
        '[classes]\nrange = [4, 20]\noutside = "clip"\n'
    )
    return task


def _best(function: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        task = _write(Path(tmp), args.rows)
        config = TrainConfig(task=str(task), r=0.5).resolve()
        read = _best(lambda: load_data(config), args.repeats)
        try:
            import pandas

            parse: float | None = _best(
                lambda: pandas.read_csv(task.parent / "big.csv"), args.repeats
            )
        except ImportError:
            parse = None
        data = load_data(config)
        model = build_model("mlp", data.input_shape, num_outputs("simloss", data.num_classes))
        criterion = build_criterion(config, data)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(0)

        def epoch() -> None:
            order = torch.randperm(len(data.train), generator=generator)
            for index in order.split(256):
                inputs = data.standardize(data.train.inputs[index])
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(model(inputs), data.train.targets[index])
                loss.backward()
                optimizer.step()

        train = _best(epoch, args.repeats)
    print(
        f"table: {args.rows:,} rows x 9 columns (Abalone repeated), {os.cpu_count()} cores, "
        f"torch threads {args.threads}, best of {args.repeats}"
    )
    print("| step | seconds | ratio to one MLP epoch |")
    print("|---|---|---|")
    print(f"| read the task (parse, classes, split, encode) | {read:.3f} | {read / train:.2f}x |")
    if parse is not None:
        print(f"| parse only (pandas.read_csv, baseline) | {parse:.3f} | {parse / train:.2f}x |")
    print(f"| one MLP epoch ({len(data.train):,} rows, batch 256) | {train:.3f} | 1.00x |")
    if parse is not None:
        print(f"reading the task takes {read / parse:.1f}x pandas' bare parse")


if __name__ == "__main__":
    main()
