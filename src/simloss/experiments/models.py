"""The paper's models. Each returns logits; the softmax belongs to the loss.

- :class:`AgeCNN`: the CNN of Niu et al. (2016) as the paper's code has it, with
  the same parameter names (``conv1``..``conv3``, ``dense1``, ``dense2``), so the
  authors' published UTKFace checkpoints load with ``load_state_dict``. The
  original ends in a softmax; ``softmax(AgeCNN(x))`` equals its output.
- :class:`LeNet`: LeNet-5 for 32 x 32 RGB as the paper's CIFAR-100 code has it
  (``conv1``, ``conv2``, ``fc1``..``fc3``).
- :class:`MLP`: a small multilayer perceptron for tabular data and feature
  vectors (Abalone, a user's table or embeddings); ``linear`` is the MLP
  without hidden layers (multinomial logistic regression).
- :class:`SmallCNN`: a small CNN for a user's images of any size and channels.
- a user's model: a factory ``"module:function"`` called as
  ``function(input_shape, num_outputs)``.

References:
    Niu, Zhou, Wang, Gao, Hua (2016), "Ordinal Regression with Multiple Output
    CNN for Age Estimation", CVPR. LeCun, Bottou, Bengio, Haffner (1998),
    "Gradient-based learning applied to document recognition".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "AgeCNN", "LeNet", "SmallCNN", "build_model", "load_checkpoint"]


class AgeCNN(nn.Module):
    """Niu et al.'s age CNN for 3 x 60 x 60 inputs.

    .. code-block:: text

        x (N, 3, 60, 60) -> relu(conv1 5x5, 20) -> maxpool 2 -> (N, 20, 28, 28)
          -> relu(conv2 7x7, 40) -> maxpool 2 -> (N, 40, 11, 11)
          -> relu(conv3 11x11, 80) -> (N, 80, 1, 1) -> flatten (N, 80)
          -> relu(dense1, 120) -> dense2 -> logits (N, C)

    Args:
        num_classes: ``C`` (90 for UTKFace 1..90, 61 for AFAD 15..75).

    Example:
        >>> model = AgeCNN(90)
        >>> model(torch.zeros(2, 3, 60, 60)).shape
        torch.Size([2, 90])
    """

    def __init__(self, num_classes: int = 90) -> None:
        super().__init__()
        _check_positive("num_classes", num_classes)
        self.conv1 = nn.Conv2d(3, 20, 5)
        self.conv2 = nn.Conv2d(20, 40, 7)
        self.conv3 = nn.Conv2d(40, 80, 11)
        self.dense1 = nn.Linear(80, 120)
        self.dense2 = nn.Linear(120, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` of images ``(N, 3, 60, 60)``."""
        _check_image(x, 60)
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = F.relu(self.conv3(out))
        out = torch.flatten(out, 1)
        out = F.relu(self.dense1(out))
        return self.dense2(out)


class LeNet(nn.Module):
    """LeNet-5 for 3 x 32 x 32 inputs (the paper's CIFAR-100 model).

    .. code-block:: text

        x (N, 3, 32, 32) -> relu(conv1 5x5, 6) -> maxpool 2 -> relu(conv2 5x5, 16)
          -> maxpool 2 -> flatten (N, 400) -> relu(fc1, 120) -> relu(fc2, 84)
          -> fc3 -> logits (N, C)

    Args:
        num_classes: ``C`` (100, or 96 for the paper's variant).

    Example:
        >>> LeNet(100)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 100])
    """

    def __init__(self, num_classes: int = 100) -> None:
        super().__init__()
        _check_positive("num_classes", num_classes)
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` of images ``(N, 3, 32, 32)``."""
        _check_image(x, 32)
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = torch.flatten(out, 1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


class MLP(nn.Module):
    """A multilayer perceptron: ``Linear -> ReLU`` per hidden layer, then a linear head.

    Args:
        in_features: ``F``.
        num_classes: ``C``.
        hidden: sizes of the hidden layers.

    Example:
        >>> MLP(10, 17)(torch.zeros(4, 10)).shape
        torch.Size([4, 17])
    """

    def __init__(
        self, in_features: int, num_classes: int, hidden: Sequence[int] = (64, 64)
    ) -> None:
        super().__init__()
        _check_positive("in_features", in_features)
        _check_positive("num_classes", num_classes)
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            _check_positive("hidden", size)
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C)`` of features ``(N, F)``."""
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"Expected `x` of shape (N, {self.in_features}), but found {tuple(x.shape)}"
            )
        out: torch.Tensor = self.net(x)
        return out


class SmallCNN(nn.Module):
    """A small CNN for ``C x H x W`` images (``C`` 1 or 3, ``H, W >= 4``): sized by its inputs and classes.

    .. code-block:: text

        x (N, C, H, W) -> relu(conv 3x3, 32) -> maxpool 2 -> relu(conv 3x3, 64)
          -> maxpool 2 -> relu(conv 3x3, 128) -> global average pool (N, 128)
          -> linear -> logits (N, num_classes)

    Args:
        in_channels: ``C``.
        num_classes: the outputs.

    Example:
        >>> SmallCNN(1, 5)(torch.zeros(2, 1, 28, 36)).shape
        torch.Size([2, 5])
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        _check_positive("in_channels", in_channels)
        _check_positive("num_classes", num_classes)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(128, num_classes)
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` of images ``(N, C, H, W)``."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or min(x.shape[2:]) < 4:
            raise ValueError(
                f"Expected `x` of shape (N, {self.in_channels}, H >= 4, W >= 4), but found "
                f"{tuple(x.shape)}"
            )
        out: torch.Tensor = self.head(torch.flatten(self.features(x), 1))
        return out


def build_model(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    *,
    search: Path | None = None,
) -> nn.Module:
    """Build a model by name for inputs of ``input_shape`` (one example, no batch).

    Args:
        name: ``mlp``, ``linear``, ``cnn``, ``age_cnn``, ``lenet``, or a factory
            ``"module:function"`` (imported from ``search`` first, then
            ``sys.path``) called as ``function(input_shape, num_classes)``.
        input_shape: one input, e.g. ``(10,)`` or ``(3, 60, 60)``.
        num_classes: the model's outputs.
        search: the folder of a task file, for a factory's module.

    Raises:
        ValueError: an unknown name, inputs the model does not take, or a
            factory that returns something other than a ``torch.nn.Module``.

    Example:
        >>> type(build_model("mlp", (10,), 17)).__name__, type(build_model("cnn", (1, 8, 8), 3)).__name__
        ('MLP', 'SmallCNN')
    """
    shape = tuple(input_shape)
    if name == "age_cnn":
        if shape != (3, 60, 60):
            raise ValueError(f"Expected inputs (3, 60, 60) for age_cnn, but found {shape}")
        return AgeCNN(num_classes)
    if name == "lenet":
        if shape != (3, 32, 32):
            raise ValueError(f"Expected inputs (3, 32, 32) for lenet, but found {shape}")
        return LeNet(num_classes)
    if name in ("mlp", "linear"):
        if len(shape) != 1:
            raise ValueError(f"Expected feature vectors (F,) for {name}, but found {shape}")
        return MLP(shape[0], num_classes, hidden=(64, 64) if name == "mlp" else ())
    if name == "cnn":
        if len(shape) != 3:
            raise ValueError(f"Expected images (C, H, W) for cnn, but found {shape}")
        return SmallCNN(shape[0], num_classes)
    if ":" in name:
        from simloss.experiments.data.factory import import_factory, user_code

        function = import_factory(name, "model", search)
        with user_code(f"Model factory {name}"):
            model = function(shape, num_classes)
        if not isinstance(model, nn.Module):
            raise ValueError(
                f"Expected model factory {name!r} to return a torch.nn.Module, but found "
                f"{type(model).__name__}"
            )
        return model
    raise ValueError(
        "Expected a model in ['age_cnn', 'lenet', 'mlp', 'linear', 'cnn'] or a factory "
        f"'module:function', but found {name!r}"
    )


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """Load and check a state dict saved with ``torch.save``; optionally load it into ``model``.

    The one loader of weights: the paper authors' UTKFace checkpoints (saved on
    a GPU; mapped to the CPU) and the ``model.pt`` of our runs. The file is read
    with ``torch.load(weights_only=True)`` (no code runs); it must hold a
    non-empty dict of named tensors whose floating values are all finite. With
    ``model``, the names and shapes must be exactly those of
    ``model.state_dict()``, and the weights are loaded into it (strict).

    Args:
        path: the checkpoint file.
        model: a model to load the weights into, or ``None``.

    Returns:
        The state dict (tensors on the CPU).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: one line naming the file: a folder, an empty file, a file
            ``torch.load`` cannot read (text, truncated, another format),
            something other than a dict of tensors, non-finite weights, or
            names and shapes that do not fit ``model``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "mlp.pt"
        >>> torch.save(MLP(10, 17).state_dict(), path)
        >>> sorted(load_checkpoint(path, MLP(10, 17)))[:2]
        ['net.0.bias', 'net.0.weight']
        >>> load_checkpoint(path, MLP(10, 5))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected `net.4.weight` of shape (5, 64) for MLP in checkpoint ..., but found (17, 64)
    """
    file = Path(path)
    if not file.exists():
        raise FileNotFoundError(f"Checkpoint file {file} does not exist")
    if not file.is_file():
        raise ValueError(f"Expected checkpoint {file} to be a file, but it is not one")
    if file.stat().st_size == 0:
        raise ValueError(
            f"Could not read checkpoint {file}: expected a state dict saved with torch.save, "
            "but the file is empty (0 bytes)"
        )
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds (EOFError, KeyError, ...)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise ValueError(
            f"Could not read checkpoint {file}: expected a state dict saved with torch.save, "
            f"but loading failed ({type(exc).__name__}: {first})"
        ) from exc
    if not isinstance(state, dict) or not state:
        found = "an empty dict" if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"Expected a state dict of named tensors in {file}, but found {found}")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"Expected a state dict of named tensors in {file}, but key {name!r} holds "
                f"{type(value).__name__}"
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad = int((~torch.isfinite(value)).sum())
            raise ValueError(
                f"Expected finite weights in checkpoint {file}, but `{name}` has {bad} NaN or "
                f"infinite value(s) of {value.numel()}"
            )
    if model is not None:
        _check_fits(state, model, file)
        model.load_state_dict(state, strict=True)
    return state


def _check_fits(state: dict[str, torch.Tensor], model: nn.Module, file: Path) -> None:
    expected = model.state_dict()
    kind = type(model).__name__
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"Expected the parameters of {kind} in checkpoint {file}, but it lacks "
            f"{missing[:5]} and has unexpected {unexpected[:5]}"
        )
    for name, value in expected.items():
        if state[name].shape != value.shape:
            raise ValueError(
                f"Expected `{name}` of shape {tuple(value.shape)} for {kind} in checkpoint "
                f"{file}, but found {tuple(state[name].shape)}"
            )


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected `{name}` to be a positive int, but found {value!r}")


def _check_image(x: torch.Tensor, size: int) -> None:
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
        raise ValueError(
            f"Expected `x` of shape (N, 3, {size}, {size}), but found {tuple(x.shape)}"
        )
