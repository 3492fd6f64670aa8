"""Seeds and devices: the one place where randomness and hardware are chosen."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["check_threads", "resolve_device", "seed_everything", "usable_cores"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global state and torch (CPU and CUDA).

    Also asks cuDNN for deterministic kernels. Returns a fresh CPU
    ``torch.Generator`` seeded with ``seed`` for the caller's own draws
    (e.g. the shuffling of training batches), so those do not depend on how
    many numbers other code took from the global generator.

    Args:
        seed: an integer in ``[0, 2**64 - 1]`` (the range ``torch.manual_seed`` takes).

    Returns:
        A ``torch.Generator`` seeded with ``seed``.

    Example:
        >>> g = seed_everything(3)
        >>> a = torch.rand(2, generator=g)
        >>> torch.equal(a, torch.rand(2, generator=seed_everything(3)))
        True
    """
    from simloss.experiments.config import MAX_SEED

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(
            f"Expected `seed` to be a non-negative int <= {MAX_SEED}, but found {seed!r}"
        )
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


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return cores or os.cpu_count() or 1


def check_threads(threads: int | None, *, cores: int | None = None) -> None:
    """Refuse more torch threads than this machine has cores (``None`` passes).

    More intra-op threads than cores only slow torch down, and thousands of
    them crash the process (``torch.set_num_threads(4096)`` then a matrix
    product: a segmentation fault), so the setting is checked against the
    cores before any work. A setting of where a run happens: checked on the
    machine that runs it, not when a config is built.

    Args:
        threads: the torch threads of one process (``num_threads``, ``--threads``).
        cores: the cores to check against; ``None``: :func:`usable_cores`.

    Raises:
        ValueError: ``threads`` is not an int in ``[1, cores]``.

    Example:
        >>> check_threads(1)
        >>> check_threads(usable_cores() + 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected `num_threads` <= ... (the CPU cores of this machine), but found ...
    """
    if threads is None:
        return
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"Expected `num_threads` to be an int >= 1, but found {threads!r}")
    cores = usable_cores() if cores is None else cores
    if threads > cores:
        raise ValueError(
            f"Expected `num_threads` <= {cores} (the CPU cores of this machine), but found "
            f"{threads}"
        )
