"""SimLoss in skorch, with ``r`` tuned by scikit-learn's ``GridSearchCV`` and a simloss metric as the scorer.

skorch builds the criterion from ``criterion`` and its ``criterion__*``
parameters, so ``criterion=simloss.SimLoss, criterion__similarity=...`` is all
it takes, and the similarity is a hyper-parameter like any other: scikit-learn
searches it, cross-validated, with the mean absolute error (in rings) of
simloss's metrics as the score. The data: abalone ages (ring counts binned into
17 ordered classes, the UCI data embedded in simloss).

    pip install -e ".[skorch]"       # from a checkout; `pip install 'simloss[skorch]'` from an index
    python examples/skorch_grid_search.py --epochs 20
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from sklearn.metrics import make_scorer
from sklearn.model_selection import GridSearchCV
from skorch import NeuralNetClassifier
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
NUM_CLASSES = len(RING_CLASSES)


class MLP(nn.Module):
    def __init__(self, num_features: int = 10, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(num_features, hidden), nn.ReLU(), nn.Linear(hidden, NUM_CLASSES)
        )

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.net(X)  # logits: SimLoss's default input_type


def mae_in_rings(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """simloss's MAE on predicted class indices, in rings (lower is better)."""
    preds, target = torch.as_tensor(y_pred), torch.as_tensor(y_true)
    return float(metrics.mean_absolute_error(preds, target, class_values=RING_CLASSES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rows", type=int, default=4177, help="Abalone rows used (all: 4177)")
    parser.add_argument("--r", type=float, nargs="+", default=[0.0, 0.3, 0.6, 0.9])
    args = parser.parse_args()

    torch.manual_seed(0)
    features, rings = read_abalone()
    rows = np.random.default_rng(0).permutation(len(rings))[: args.rows]
    X, y = features[rows], rings_to_class(rings[rows]).astype(np.int64)

    net = NeuralNetClassifier(
        MLP,
        criterion=simloss.SimLoss,
        criterion__similarity=simloss.ClassOrder(NUM_CLASSES, r=0.5),
        optimizer=torch.optim.Adam,
        lr=3e-3,
        max_epochs=args.epochs,
        batch_size=64,
        train_split=None,  # GridSearchCV holds out the folds
        predict_nonlinearity=nn.Softmax(dim=-1),  # predict_proba gives probabilities
        verbose=0,
    )
    search = GridSearchCV(
        net,
        # r = 0 is the identity similarity: plain cross-entropy, the baseline.
        {"criterion__similarity": [simloss.ClassOrder(NUM_CLASSES, r=r) for r in args.r]},
        scoring=make_scorer(mae_in_rings, greater_is_better=False),
        cv=3,
        refit=True,
    )
    search.fit(X, y)
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        print(f"r={params['criterion__similarity'].r:g} MAE={-score:.3f} rings")
    best = search.best_params_["criterion__similarity"]
    print(f"best r={best.r:g} MAE={-search.best_score_:.3f} rings (3-fold CV)")


if __name__ == "__main__":
    main()
