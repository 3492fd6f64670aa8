"""The loss catalog is the one place a loss is declared: help texts and docs/losses.md follow it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from simloss.experiments.config import setting_help
from simloss.experiments.heads import HEADS
from simloss.experiments.loss_catalog import LOSS_TASKS, LOSSES, LossContext

DOCS = Path(__file__).resolve().parents[2] / "docs" / "losses.md"


def _doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOCS.read_text().splitlines():
        match = re.match(r"\| `([a-z][a-z-]*)` \|", line)
        if match:
            rows[match[1]] = line
    return rows


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_is_documented_as_declared(name: str) -> None:
    spec = LOSSES[name]
    row = _doc_rows().get(name)
    assert row is not None, f"docs/losses.md has no row for `{name}`"
    if spec.param is not None:
        assert f"`{spec.param.name}` ({spec.param.default:g}" in row
    assert spec.task in LOSS_TASKS and spec.head in HEADS.values()
    assert name in setting_help("loss")


def test_the_docs_list_no_loss_the_catalog_lacks() -> None:
    assert set(_doc_rows()) <= set(LOSSES)


@pytest.mark.parametrize("name", [n for n, s in LOSSES.items() if s.task != "semantic"])
def test_every_builder_gives_a_loss_on_its_heads_outputs(name: str) -> None:
    spec = LOSSES[name]
    classes = 5
    context = LossContext(
        num_classes=classes,
        value=None if spec.param is None else spec.param.default,
        similarity=lambda: torch.eye(classes),
        hierarchy_edges=lambda: [],
        class_names=None,
        train_targets=torch.arange(classes).repeat(4),
    )
    loss = spec.build(context)
    model = spec.head.wrap(torch.nn.Linear(3, spec.num_outputs(classes)), classes)
    outputs = model(torch.randn(8, 3))
    value = loss(outputs, torch.arange(8) % classes)
    value.backward()
    assert value.dim() == 0 and torch.isfinite(value)
    assert all(p.grad is not None for p in model.parameters())
    assert spec.head.class_log_probs(outputs.detach()).shape == (8, classes)
