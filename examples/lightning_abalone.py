"""SimLoss in a PyTorch Lightning module, with simloss metrics logged by ``self.log``.

Trains a small MLP for the age of abalone (ring counts binned into 17 ordered
classes, the UCI data embedded in simloss) for one epoch:

    pip install -e ".[lightning]"        # from a checkout; `pip install 'simloss[lightning]'` from an index
    python examples/lightning_abalone.py --epochs 1

What changes from cross-entropy: the criterion, one line. The metrics are
modules: Lightning moves them with the model, and they accumulate over the
validation batches (``update``) until the epoch's value is logged (``compute``).
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, random_split

import simloss
from simloss import metrics
from simloss.experiments.data.abalone import (
    ABALONE_MAX_RINGS,
    ABALONE_MIN_RINGS,
    read_abalone,
    rings_to_class,
)

RING_CLASSES = list(range(ABALONE_MIN_RINGS, ABALONE_MAX_RINGS + 1))  # <=4, 5, ..., 19, >=20


class AbaloneAge(L.LightningModule):
    def __init__(self, num_features: int, r: float = 0.7, lr: float = 3e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        num_classes = len(RING_CLASSES)
        self.net = nn.Sequential(nn.Linear(num_features, 64), nn.ReLU(), nn.Linear(64, num_classes))
        # criterion = nn.CrossEntropyLoss()
        self.criterion = simloss.SimLoss(simloss.ClassOrder(num_classes, r=r))
        self.val_acc = metrics.Accuracy()
        self.val_mae = metrics.MeanAbsoluteError(class_values=RING_CLASSES)  # in rings

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        loss = self.criterion(self(x), y)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", self.criterion(logits, y), prog_bar=True)
        self.val_acc.update(logits, y)
        self.val_mae.update(logits, y)

    def on_validation_epoch_end(self) -> None:
        self.log("val_acc", self.val_acc.compute(), prog_bar=True)
        self.log("val_mae", self.val_mae.compute(), prog_bar=True)
        self.val_acc.reset()
        self.val_mae.reset()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--r", type=float, default=0.7, help="class-order reduction factor")
    args = parser.parse_args()

    L.seed_everything(0)
    features, rings = read_abalone()
    data = TensorDataset(torch.from_numpy(features), torch.from_numpy(rings_to_class(rings)))
    train, val = random_split(data, [0.8, 0.2], generator=torch.Generator().manual_seed(0))
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = AbaloneAge(features.shape[1], r=args.r)
    trainer.fit(
        model,
        DataLoader(train, batch_size=64, shuffle=True),
        DataLoader(val, batch_size=256),
    )
    logged = {name: float(value) for name, value in trainer.callback_metrics.items()}
    print(" ".join(f"{name}={value:.4f}" for name, value in sorted(logged.items())))


if __name__ == "__main__":
    main()
