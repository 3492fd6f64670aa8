"""One batch of ``preds`` and ``target``, validated once and decoded on demand (private).

Every metric's statistics read a :class:`Batch`: the functions build one per
call, the accumulating classes one per ``update``, and
:func:`simloss.metrics.compute_metrics` one for a whole split, shared by all its
metrics (validation, softmax and each decoder run once).

``preds`` is read as class scores when it is a floating tensor of shape (N, C)
(logits or probabilities) and as predicted class indices when it is an integer
tensor of shape (N,); anything else is an error. Scores are checked for NaN
through their row maxima (see :func:`_argmax_checked`), for every example,
ignored or not; examples whose target equals ``ignore_index`` are then removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from simloss._distributions import check_probabilities, raw_scores_hint
from simloss.metrics._checks import (
    check_tensor,
    first_index,
    float_dtype,
    is_integer_dtype,
)
from simloss.metrics.decoders import CLASS_DECODERS, median_class, min_risk_class

__all__ = ["Batch", "scores_to_probs"]


def _argmax_checked(scores: Tensor) -> Tensor:
    """Row-wise argmax of (N, C) scores, refusing NaN where it can change the result.

    :func:`torch.max` propagates NaN: a row holding a NaN anywhere has NaN as
    its maximum and its first NaN as the argmax. So the N row maxima, from the
    same pass as the argmax, show every row with a NaN (instead of a scan of
    all N x C scores), and the first such row's argmax is the first NaN a full
    scan would name. Their sum is NaN when one is (or when +inf meets -inf, a
    case the exact test below then clears), so the common case costs one sum.
    """
    if scores.shape[0] == 0:
        return scores.argmax(dim=1)
    best, pred = scores.max(dim=1)
    if not math.isnan(float(best.sum())):
        return pred
    nan = torch.isnan(best)
    if bool(nan.any()):
        row = int(nan.nonzero()[0, 0])
        raise ValueError(
            f"Expected `preds` to contain no NaN, but found NaN at ({row}, {int(pred[row])})"
        )
    return pred


def _check_indices(
    x: Tensor,
    name: str,
    num_classes: int | None,
    classes_from: str,
    ignore_index: int | None = None,
) -> None:
    """Indices must lie in [0, num_classes) (or be >= 0 when the class count is unknown)."""
    if x.numel() == 0:
        return
    low, high = (int(v) for v in torch.aminmax(x))  # one pass, one host synchronisation
    if low >= 0 and (num_classes is None or high < num_classes):
        return
    bad = x < 0 if num_classes is None else (x < 0) | (x >= num_classes)
    at = first_index(bad)[0]
    value = int(x[at])
    expected = (
        "values >= 0"
        if num_classes is None
        else f"values in [0, {num_classes}) ({num_classes} classes, from {classes_from})"
    )
    hint = ""
    if name == "target" and ignore_index is None and value < 0:
        hint = f"; pass `ignore_index={value}` to skip such examples"
    elif name == "target" and ignore_index is not None:
        expected += f" or `ignore_index` ({ignore_index})"
    raise ValueError(f"Expected `{name}` {expected}, but found {value} at index {at}{hint}")


def _check_decoded(decoded: Mapping[str, object] | None, target: Tensor) -> dict[str, Tensor]:
    """Classes decided elsewhere, by class decoder: (N,) integer tensors beside ``target``."""
    if decoded is None:
        return {}
    if not isinstance(decoded, Mapping):
        raise TypeError(
            "Expected `decoded` to map decoder names to (N,) class indices, but found "
            f"{type(decoded).__name__}"
        )
    out = {}
    for name, classes in decoded.items():
        if name not in CLASS_DECODERS:
            raise ValueError(
                f"Expected the keys of `decoded` among the decoders that predict a class "
                f"{CLASS_DECODERS}, but found {name!r}"
            )
        x = check_tensor(classes, f"decoded[{name!r}]")
        if not is_integer_dtype(x.dtype) or x.shape != target.shape:
            raise ValueError(
                f"Expected `decoded[{name!r}]` to be class indices of integer dtype and shape "
                f"{tuple(target.shape)} (one per target), but found dtype {x.dtype} and shape "
                f"{tuple(x.shape)}"
            )
        if x.device != target.device:
            raise ValueError(
                f"Expected `decoded[{name!r}]` on the device of `target` ({target.device}), but "
                f"found {x.device}"
            )
        out[str(name)] = x.long()
    return out


def scores_to_probs(scores: Tensor, input_type: str) -> Tensor:
    """Probabilities (N, C) in float64 from logits (softmax) or from probabilities (checked)."""
    if input_type == "logits":
        probs = torch.softmax(scores.to(float_dtype(scores.device)), dim=1)
        undefined = torch.isnan(probs).any(dim=1)
        if bool(undefined.any()):
            row = first_index(undefined)[0]
            raise ValueError(
                "Expected each row of `preds` logits to define a softmax distribution, but row "
                f"{row} holds +inf or only -inf"
            )
        return probs
    check_probabilities(scores, "preds", hint=raw_scores_hint("probs"))
    return scores.to(float_dtype(scores.device))


class Batch:
    """Validated ``preds`` (N, C) scores or (N,) indices and ``target`` (N,), ignored rows removed.

    ``decoded`` maps a class decoder to the (N,) classes it chose, decided elsewhere
    (a model head's own rule, e.g. CORN's median on its logits): :meth:`classes`
    returns them for that decoder instead of decoding the scores.

    Attributes:
        pred: (M,) int64 argmax of the scores (ties: lowest index), or the given indices.
        target: (M,) int64 target class indices.
        num_classes: C when ``preds`` are scores, else ``None``.
    """

    def __init__(
        self,
        preds: object,
        target: object,
        *,
        ignore_index: int | None = None,
        decoded: Mapping[str, object] | None = None,
    ) -> None:
        preds = check_tensor(preds, "preds")
        target = check_tensor(target, "target")
        scores: Tensor | None = None
        if preds.ndim == 2 and preds.is_floating_point():
            if preds.shape[1] == 0:
                raise ValueError(
                    "Expected `preds` scores of shape (N, C) with C >= 1, but found C = 0"
                )
            scores = preds
        elif not (preds.ndim == 1 and is_integer_dtype(preds.dtype)):
            error = TypeError if preds.ndim in (1, 2) else ValueError
            raise error(
                "Expected `preds` to be class scores (logits or probabilities) of floating dtype "
                "and shape (N, C), or class indices of integer dtype and shape (N,), but found "
                f"dtype {preds.dtype} and shape {tuple(preds.shape)}"
            )
        if not is_integer_dtype(target.dtype):
            raise TypeError(
                f"Expected `target` to hold integer class indices, but found dtype {target.dtype}"
            )
        if target.ndim != 1 or target.shape[0] != preds.shape[0]:
            raise ValueError(
                f"Expected `target` of shape ({preds.shape[0]},) to match `preds` of shape "
                f"{tuple(preds.shape)}, but found shape {tuple(target.shape)}"
            )
        if target.device != preds.device:
            raise ValueError(
                "Expected `preds` and `target` on the same device, but found "
                f"{preds.device} and {target.device}"
            )
        self.preds_shape = tuple(preds.shape)
        self.ignore_index = ignore_index
        self._given_indices = preds.long() if scores is None else None
        chosen = _check_decoded(decoded, target)
        pred = _argmax_checked(scores) if scores is not None else preds
        tgt = target.long()
        if ignore_index is not None:
            keep = tgt != ignore_index
            tgt, pred = tgt[keep], pred[keep]
            scores = scores[keep] if scores is not None else None
            chosen = {name: classes[keep] for name, classes in chosen.items()}
        self._decoded = chosen
        self.pred = pred.long()
        self.target = tgt
        self._scores = scores
        self.num_classes: int | None = None if scores is None else int(scores.shape[1])
        self._checked: set[tuple[int | None, str]] = set()
        self._cache: dict[tuple[Any, ...], Tensor] = {}

    @property
    def device(self) -> torch.device:
        """The device of the batch."""
        return self.target.device

    def check_classes(self, num_classes: int | None, source: str = "`num_classes`") -> int | None:
        """Check the scores' columns and every index against ``num_classes``; return C.

        Args:
            num_classes: the class count a metric knows (``None``: unknown).
            source: where ``num_classes`` came from, for messages (e.g.
                "the length of `fine_to_coarse`").

        Returns:
            C (from the scores, else ``num_classes``; ``None`` when neither gives it).
        """
        if (num_classes, source) in self._checked:
            return self.num_classes if self.num_classes is not None else num_classes
        classes_from = source
        if self.num_classes is not None:
            if num_classes is not None and self.num_classes != num_classes:
                raise ValueError(
                    f"Expected `preds` scores to have one column per class ({num_classes} "
                    f"classes, from {source}), but found shape {self.preds_shape}"
                )
            num_classes, classes_from = self.num_classes, "the columns of `preds`"
        elif self._given_indices is not None:
            _check_indices(self._given_indices, "preds", num_classes, source)
        for name, classes in self._decoded.items():
            _check_indices(classes, f"decoded[{name!r}]", num_classes, classes_from)
        _check_indices(self.target, "target", num_classes, classes_from, self.ignore_index)
        self._checked.add((num_classes, source))
        return num_classes

    def scores(self, why: str) -> Tensor:
        """The (M, C) scores; class indices as ``preds`` are an error naming ``why``."""
        if self._scores is None:
            raise ValueError(
                f"Expected `preds` to be class scores of shape (N, C) {why}, but found class "
                f"indices of shape {self.preds_shape}"
            )
        return self._scores

    def probs(self, input_type: str, why: str) -> Tensor:
        """(M, C) float64 probabilities: the softmax of logits, or checked probabilities."""
        key = ("probs", input_type)
        if key not in self._cache:
            self._cache[key] = scores_to_probs(self.scores(why), input_type)
        return self._cache[key]

    def classes(
        self,
        decoder: str,
        *,
        input_type: str = "logits",
        values: Tensor | None = None,
        cost: Tensor | None = None,
    ) -> Tensor:
        """(M,) int64 predicted classes under a class decoder (see :mod:`simloss.metrics.decoders`).

        ``values`` orders the classes for the median (default: index order);
        ``cost`` (C, C) is ``min_risk``'s.
        """
        if decoder in self._decoded:
            return self._decoded[decoder]
        if decoder == "argmax":
            return self.pred
        key = ("classes", decoder, input_type, id(values), id(cost))
        if key not in self._cache:
            probs = self.probs(input_type, f"for decoder={decoder!r}")
            if decoder == "median":
                grid = values if values is not None else torch.arange(probs.shape[1])
                grid = grid.to(device=probs.device, dtype=probs.dtype)
                self._cache[key] = median_class(probs, grid)
            elif decoder == "min_risk":
                if cost is None:  # the metrics' configuration requires it
                    raise ValueError("Expected `cost` for decoder='min_risk', but found None")
                if cost.shape[0] != probs.shape[1]:
                    raise ValueError(
                        f"Expected `cost` of shape ({probs.shape[1]}, {probs.shape[1]}) (one row "
                        f"and column per class), but found shape {tuple(cost.shape)}"
                    )
                self._cache[key] = min_risk_class(probs, cost)
            else:
                raise ValueError(f"Expected a decoder that predicts a class, but found {decoder!r}")
        return self._cache[key]

    def predicted_values(
        self,
        decoder: str,
        values: Tensor | None,
        *,
        input_type: str = "logits",
        cost: Tensor | None = None,
    ) -> Tensor:
        """(M,) float64 predicted values ``v_hat``: the expectation, or the value of a decoded class.

        ``values`` (C,) are the class values (default: the class indices).
        """
        dtype = float_dtype(self.device)
        if decoder == "expectation":
            probs = self.probs(input_type, "for decoder='expectation'")
            grid = (
                torch.arange(probs.shape[1], device=probs.device, dtype=dtype)
                if values is None
                else values.to(device=probs.device, dtype=dtype)
            )
            return probs @ grid
        pred = self.classes(decoder, input_type=input_type, values=values, cost=cost)
        if values is None:
            return pred.to(dtype)
        return values.to(device=pred.device, dtype=dtype).index_select(0, pred)

    def target_values(self, values: Tensor | None) -> Tensor:
        """(M,) float64 values of the targets (the indices without ``values``)."""
        dtype = float_dtype(self.device)
        if values is None:
            return self.target.to(dtype)
        return values.to(device=self.device, dtype=dtype).index_select(0, self.target)
