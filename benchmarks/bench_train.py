"""Trainer overhead on UTKFace: ``run_training`` epochs against a bare training loop.

Baseline ("bare loop"): the same AgeCNN, SimLoss, Adam and batch size, looping
forward/backward/step over the training images already standardised in memory
as one float32 tensor (same memory format). The trainer's epoch includes
slicing uint8 batches, standardising them and the progress bookkeeping; its
full epoch also evaluates the validation split (reported separately, as the
bare loop has no validation).

Also reported: the first run's time to list, decode and cache the images (a
fresh cache folder; this line also holds the first run's final validation and
test evaluation), its first epoch, and the time to load the images from the
cache. Trainer and bare epochs alternate, so that load changes on a shared
machine hit both alike.

Run::

    python benchmarks/bench_train.py --data-dir ../shared/data/utkface/crop_part1
    python benchmarks/bench_train.py --data-dir ... --limit 2000 --repeats 3   # quicker
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import simloss
from simloss.experiments.config import TrainConfig
from simloss.experiments.data import load_data
from simloss.experiments.models import build_model
from simloss.experiments.train import run_training


class BareLoop:
    """The baseline: a plain forward/backward/step loop over in-memory float tensors."""

    def __init__(self, config: TrainConfig) -> None:
        self.cfg = config.resolve()
        data = load_data(self.cfg)
        self.memory = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        self.inputs = data.standardize(data.train.inputs).contiguous(memory_format=self.memory)
        self.targets = data.train.targets
        self.shape, self.classes = data.input_shape, data.num_classes
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    def epoch(self) -> float:
        """Seconds for one epoch of a freshly initialised model (as a 1-epoch run has)."""
        torch.manual_seed(self.cfg.seed)
        model = build_model("age_cnn", self.shape, self.classes)
        model = model.to(memory_format=self.memory)  # type: ignore[call-overload]
        criterion = simloss.SimLoss(simloss.class_order(self.classes, self.cfg.r or 0.0))
        optimizer = torch.optim.Adam(model.parameters(), lr=self.cfg.lr)
        batch = self.cfg.batch_size or 1024
        start = time.perf_counter()
        model.train()
        for index in torch.randperm(len(self.targets), generator=self.generator).split(batch):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(self.inputs[index]), self.targets[index])
            loss.backward()
            optimizer.step()
        return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="UTKFace folder")
    parser.add_argument("--repeats", type=int, default=3, help="trainer/bare epoch pairs")
    parser.add_argument("--limit", type=int, default=None, help="use at most this many images")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = parser.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    with tempfile.TemporaryDirectory() as scratch:
        base = TrainConfig(
            dataset="utkface",
            data_dir=str(args.data_dir),
            cache_dir=str(Path(scratch) / "cache"),
            r=0.3,
            epochs=1,
            limit=args.limit,
            progress=False,
            device="cpu",
            channels_last=args.channels_last,
        )
        # First run: list, decode and cache the images, then one epoch.
        first = run_training(base, Path(scratch) / "first")
        start = time.perf_counter()
        data = load_data(base)
        cached_s = time.perf_counter() - start
        bare = BareLoop(base)
        bare.epoch()  # warm-up, not counted
        # Alternate trainer and bare epochs so that load changes on a shared machine
        # hit both alike; the trainer's epoch is the training-step time of a 1-epoch run.
        trainer_s: list[float] = []
        trainer_full_s: list[float] = []
        bare_s: list[float] = []
        for rep in range(args.repeats):
            record = run_training(base, Path(scratch) / f"run{rep}")
            trainer_s.append(record["history"][0]["train_time_s"])
            trainer_full_s.append(record["history"][0]["time_s"])
            bare_s.append(bare.epoch())
    n_train = len(data.train)
    used = data.info["used"]
    first_epoch = first["history"][0]
    decode_s = first["wall_time_s"] - first_epoch["time_s"]
    t_train, t_full, t_bare = (statistics.median(v) for v in (trainer_s, trainer_full_s, bare_s))
    layout = "channels_last" if args.channels_last else "contiguous"
    print(
        f"UTKFace {args.data_dir}: {used} images, train {n_train}, val {len(data.val)}, "
        f"{layout}, batch 1024, median of {args.repeats} alternating epochs"
    )
    print(f"{'what':46s} {'seconds':>9s} {'images/s':>9s} {'ratio':>7s}")
    rows = [
        ("first run: list+decode+cache+final eval", decode_s, used / decode_s, None),
        ("first run: epoch 1 training steps", first_epoch["train_time_s"], None, None),
        ("load from cache", cached_s, used / cached_s, None),
        ("bare loop epoch (baseline)", t_bare, n_train / t_bare, 1.0),
        ("trainer epoch, training steps", t_train, n_train / t_train, t_train / t_bare),
        ("trainer epoch incl. validation", t_full, n_train / t_full, t_full / t_bare),
    ]
    for name, seconds, rate, ratio in rows:
        rate_text = f"{rate:9.1f}" if rate is not None else f"{n_train / seconds:9.1f}"
        ratio_text = f"{ratio:7.3f}" if ratio is not None else ""
        print(f"{name:46s} {seconds:9.2f} {rate_text} {ratio_text}")
    print(
        f"per-epoch seconds: trainer {[round(t, 2) for t in trainer_s]}, "
        f"bare {[round(t, 2) for t in bare_s]}"
    )
    overhead = t_train / t_bare - 1
    print(f"pipeline overhead (training steps vs bare loop): {overhead:+.1%} (target <= +10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
