"""Seeds and devices: the one place where randomness and hardware are chosen."""

from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and CUDA).

    Also asks cuDNN for deterministic kernels. Returns a fresh CPU
    ``torch.Generator`` seeded with ``seed`` for the caller's own draws
    (e.g. the shuffling of training batches), so those do not depend on how
    many numbers other code took from the global generator.

    Args:
        seed: a non-negative integer.

    Returns:
        A ``torch.Generator`` seeded with ``seed``.

    Example:
        >>> g = seed_everything(3)
        >>> a = torch.rand(2, generator=g)
        >>> torch.equal(a, torch.rand(2, generator=seed_everything(3)))
        True
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"Expected `seed` to be a non-negative int, but found {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the legacy state)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    """Turn ``"auto"`` into ``cuda`` when available (else ``cpu``); check other names.

    Every command checks its device with this before any work, so a machine
    without the device fails at once with one line.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"Expected `device` to be 'auto', 'cpu' or 'cuda[:N]', but found {device!r}"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"`device` is {device!r} but CUDA is not available on this machine")
    if resolved.type == "cuda" and resolved.index is not None:
        count = torch.cuda.device_count()
        if resolved.index >= count:
            raise RuntimeError(
                f"`device` is {device!r} but this machine has {count} CUDA device(s) "
                f"(cuda:0..cuda:{count - 1})"
            )
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(
            f"Expected `device` to be 'auto', 'cpu' or 'cuda[:N]', but found {device!r}"
        )
    return resolved
