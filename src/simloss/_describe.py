"""How an error message names a value it did not expect (private; one helper for every check).

A message of the form "Expected `weight` to be a floating tensor of shape (5,),
but found <description>" should let the reader see what was passed without a
debugger: the kind of value, and for arrays their shape and dtype (and the
layout of a sparse tensor), for numbers and strings the value itself.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor

__all__ = ["describe"]


def describe(value: object) -> str:
    """A short description of ``value`` for the end of an error message.

    Example:
        >>> describe(torch.zeros(2, 3))
        'a tensor of shape (2, 3) and dtype torch.float32'
        >>> describe(torch.eye(2).to_sparse())
        'a torch.sparse_coo tensor of shape (2, 2) and dtype torch.float32'
        >>> describe(np.zeros(3, dtype=np.int64))
        'an array of shape (3,) and dtype int64'
        >>> describe(0.5), describe("logits"), describe(None)
        ('float 0.5', "str 'logits'", 'NoneType')
    """
    if isinstance(value, Tensor):
        layout = "" if value.layout == torch.strided else f"{value.layout} "
        return f"a {layout}tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (numbers.Number, str)):
        return f"{type(value).__name__} {value!r}"
    return type(value).__name__
