"""Trainer overhead on UTKFace: ``run_training`` epochs against a bare training loop.

Baseline ("bare loop"): the same AgeCNN, SimLoss, Adam and batch size, looping
forward/backward/step over the training images already standardised in memory
as one float32 tensor (same memory format). The trainer's epoch includes
slicing uint8 batches, standardising them and the progress bookkeeping; its
full epoch also evaluates the validation split (reported separately, as the
bare loop has no validation).

Also reported: the first run's time to list, decode and cache the images (a
fresh cache folder), and the time to load them from the cache.

Run::

    python benchmarks/bench_train.py --data-dir ../shared/data/utkface/crop_part1
    python benchmarks/bench_train.py --data-dir ... --limit 2000 --epochs 3   # quicker
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


def bare_loop_epochs(config: TrainConfig, epochs: int) -> list[float]:
    """Seconds per epoch of a plain forward/backward/step loop over in-memory tensors."""
    cfg = config.resolve()
    data = load_data(cfg)
    torch.manual_seed(cfg.seed)
    channels_last = cfg.channels_last
    memory = torch.channels_last if channels_last else torch.contiguous_format
    inputs = data.standardize(data.train.inputs).contiguous(memory_format=memory)
    targets = data.train.targets
    model = build_model("age_cnn", data.input_shape, data.num_classes)
    model = model.to(memory_format=memory)  # type: ignore[call-overload]
    criterion = simloss.SimLoss(simloss.class_order(data.num_classes, cfg.r or 0.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batch = cfg.batch_size or 1024
    generator = torch.Generator().manual_seed(cfg.seed)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        for index in torch.randperm(len(targets), generator=generator).split(batch):
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="UTKFace folder")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="use at most this many images")
    parser.add_argument("--num-threads", type=int, default=None)
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = parser.parse_args(argv)
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        base = TrainConfig(
            dataset="utkface",
            data_dir=str(args.data_dir),
            cache_dir=str(cache),
            r=0.3,
            epochs=args.epochs,
            patience=args.epochs + 1,
            limit=args.limit,
            progress=False,
            device="cpu",
            channels_last=args.channels_last,
        )
        start = time.perf_counter()
        load_data(base)
        decode_s = time.perf_counter() - start
        start = time.perf_counter()
        data = load_data(base)
        cached_s = time.perf_counter() - start
        record = run_training(base, Path(scratch) / "run")
        bare = bare_loop_epochs(base, args.epochs)
    n_train = len(data.train)
    history = record["history"]
    train_s = [h["train_time_s"] for h in history]
    epoch_s = [h["time_s"] for h in history]
    # The first epoch of either loop warms up allocators; compare the rest (median).
    steady = slice(1, None) if args.epochs > 1 else slice(None)
    t_train = statistics.median(train_s[steady])
    t_epoch = statistics.median(epoch_s[steady])
    t_bare = statistics.median(bare[steady])
    layout = "channels_last" if args.channels_last else "contiguous"
    print(
        f"UTKFace {args.data_dir}: {data.info['used']} images, train {n_train}, "
        f"val {len(data.val)}, {layout}, batch 1024"
    )
    print(f"{'what':44s} {'seconds':>9s} {'images/s':>9s} {'ratio':>7s}")
    rows = [
        ("list + decode + cache (first run)", decode_s, data.info["used"] / decode_s, None),
        ("load from cache", cached_s, data.info["used"] / cached_s, None),
        ("bare loop epoch (baseline)", t_bare, n_train / t_bare, 1.0),
        ("trainer epoch, training steps", t_train, n_train / t_train, t_train / t_bare),
        ("trainer epoch incl. validation", t_epoch, n_train / t_epoch, t_epoch / t_bare),
        ("trainer first epoch (training steps)", train_s[0], n_train / train_s[0], None),
    ]
    for name, seconds, rate, ratio in rows:
        ratio_text = f"{ratio:7.3f}" if ratio is not None else ""
        print(f"{name:44s} {seconds:9.2f} {rate:9.1f} {ratio_text}")
    print(
        f"per-epoch seconds: trainer {[round(t, 2) for t in train_s]}, bare {[round(t, 2) for t in bare]}"
    )
    overhead = t_train / t_bare - 1
    print(f"pipeline overhead (training steps vs bare loop): {overhead:+.1%} (target <= +10%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
