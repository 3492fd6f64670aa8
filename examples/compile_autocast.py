"""SimLoss in a plain PyTorch loop, compiled with ``torch.compile`` and run under autocast.

The model's forward and the loss are compiled together into one graph
(``fullgraph=True``: no graph breaks) and run in bfloat16 under
``torch.autocast``; SimLoss computes in float32 there, as cross-entropy does.
Only the core install is needed (torch and numpy): ``pip install -e .``.
``torch.compile`` needs a C++ compiler on the CPU (the first steps compile).

    python examples/compile_autocast.py --epochs 5
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import simloss
from simloss import metrics
from simloss.experiments.data.abalone import (
    ABALONE_MAX_RINGS,
    ABALONE_MIN_RINGS,
    read_abalone,
    rings_to_class,
)

RING_CLASSES = list(range(ABALONE_MIN_RINGS, ABALONE_MAX_RINGS + 1))  # <=4, 5, ..., 19, >=20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    torch.manual_seed(0)
    features, rings = read_abalone()
    x = torch.from_numpy(features).to(args.device)
    y = torch.from_numpy(rings_to_class(rings)).to(args.device)
    order = torch.randperm(len(y), device=args.device)
    train, test = order[: len(y) * 4 // 5], order[len(y) * 4 // 5 :]

    model = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, len(RING_CLASSES)))
    model = model.to(args.device)
    criterion = simloss.SimLoss(simloss.ClassOrder(len(RING_CLASSES), r=0.7)).to(args.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    dtype = torch.bfloat16 if args.device == "cpu" else torch.float16

    @torch.compile(fullgraph=True)
    def forward_loss(inputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(args.device, dtype=dtype):
            return criterion(model(inputs), target)

    # float16 needs loss scaling against underflowing gradients; bfloat16 does not.
    scaler = torch.amp.GradScaler(args.device, enabled=dtype == torch.float16)
    step = 0
    for epoch in range(args.epochs):
        # Full batches only: one input shape, one compiled graph.
        shuffled = train[torch.randperm(len(train), device=args.device)]
        for batch in shuffled[: len(train) // 64 * 64].view(-1, 64):
            optimizer.zero_grad()
            loss = forward_loss(x[batch], y[batch])
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            step += 1
            if step == args.max_steps:
                break
        print(f"epoch {epoch + 1}: train loss {loss.item():.4f} ({loss.dtype})")
        if step == args.max_steps:
            break

    model.eval()
    with torch.no_grad(), torch.autocast(args.device, dtype=dtype):
        logits = model(x[test])
    acc = metrics.accuracy(logits.float(), y[test])
    mae = metrics.mean_absolute_error(logits.float(), y[test], class_values=RING_CLASSES)
    print(f"steps={step} test_acc={float(acc):.4f} test_mae={float(mae):.4f} (rings)")


if __name__ == "__main__":
    main()
