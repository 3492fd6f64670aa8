"""TrainConfig: defaults, validation, JSON round trip."""

from __future__ import annotations

import json

import pytest

from simloss.experiments.config import TrainConfig
from simloss.experiments.task import BUILTIN_TASKS as DATASETS


def test_resolve_fills_paper_defaults_per_dataset() -> None:
    utk = TrainConfig(dataset="utkface", data_dir="d", r=0.3).resolve()
    assert (utk.model, utk.epochs, utk.patience, utk.monitor, utk.batch_size) == (
        "age_cnn",
        200,
        10,
        "mae",
        1024,
    )
    assert (utk.min_age, utk.max_age, utk.val_fraction, utk.test_fraction) == (1, 90, 0.2, 0.2)
    afad = TrainConfig(dataset="afad", data_dir="d").resolve()
    assert (afad.min_age, afad.max_age, afad.similarity) == (15, 75, "identity")
    cifar = TrainConfig(dataset="cifar100", data_dir="d", l=0.9, vectors="v.npy").resolve()
    assert (cifar.model, cifar.patience, cifar.monitor, cifar.val_fraction) == (
        "lenet",
        20,
        "acc",
        0.1,
    )
    assert cifar.test_fraction is None and cifar.similarity == "embeddings"


def test_explicit_values_beat_defaults_and_resolve_is_idempotent() -> None:
    config = TrainConfig(dataset="abalone", patience=3, batch_size=64, r=0.0).resolve()
    assert (config.patience, config.batch_size) == (3, 64)
    assert config.resolve() == config
    assert config.epochs == DATASETS["abalone"].defaults["epochs"]


@pytest.mark.parametrize(
    ("kwargs", "similarity", "param", "value"),
    [
        ({"r": 0.3}, "order", "r", 0.3),
        ({"l": 0.5, "vectors": "v.npy"}, "embeddings", "l", 0.5),
        ({}, "identity", None, None),
    ],
    ids=["order", "embeddings", "identity"],
)
def test_similarity_is_inferred_from_r_or_l(
    kwargs: dict, similarity: str, param: str | None, value: float | None
) -> None:
    config = TrainConfig(**kwargs)
    assert (config.inferred_similarity, config.param, config.param_value) == (
        similarity,
        param,
        value,
    )


def test_dict_round_trip_through_json() -> None:
    config = TrainConfig(dataset="utkface", data_dir="/x", r=0.8, seed=4, limit=10).resolve()
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert set(config.to_dict()) == set(TrainConfig.field_names())


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ValueError, match=r"Unknown TrainConfig keys: \['bogus', 'lrate'\]"):
        TrainConfig.from_dict({"lrate": 1.0, "bogus": 2})


def test_integer_json_values_are_accepted_for_float_fields() -> None:
    config = TrainConfig.from_dict({"r": 0, "lr": 1})
    assert isinstance(config.r, float) and config.r == 0.0 and config.lr == 1.0
    with pytest.raises(ValueError, match=r"`lr` to be a float, but found an integer of 401 digits"):
        TrainConfig.from_dict({"lr": 10**400})  # float(10**400) raises OverflowError


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"r": 1.0}, r"Expected `r` in \[0, 1\), but found 1.0"),
        ({"r": -0.1}, r"Expected `r` in \[0, 1\)"),
        ({"l": 0.5}, r"Expected `vectors`"),
        ({"r": 0.1, "l": 0.2}, r"at most one of `r`"),
        ({"dataset": "mnist"}, r"Expected `dataset` to be one of"),
        ({"dataset": "utkface"}, r"Expected `data_dir` for dataset 'utkface'"),
        ({"epochs": 0}, r"Expected `epochs` >= 1, but found 0"),
        ({"patience": 0}, r"Expected `patience` >= 1"),
        ({"lr": 0.0}, r"Expected `lr` > 0"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, r"val_fraction` \+ `test_fraction` < 1"),
        ({"val_fraction": 1.0}, r"Expected `val_fraction` in \(0, 1\)"),
        ({"device": "tpu"}, r"Expected `device`"),
        ({"monitor": "sa"}, r"Expected a monitor metric that dataset 'abalone' has"),
        ({"dataset": "cifar100", "data_dir": "d", "r": 0.3}, r"Expected ordered classes"),
        (
            {"dataset": "cifar100", "data_dir": "d", "test_fraction": 0.2},
            r"`test_fraction` to be None for dataset 'cifar100' \(it applies to abalone, utkface, afad\)",
        ),
        ({"min_age": 3}, r"Expected `min_age` to be None for dataset 'abalone'"),
        ({"dataset": "utkface", "data_dir": "d", "min_age": 9, "max_age": 3}, r"max_age"),
        ({"similarity": "order"}, r"Expected `r` for similarity 'order'"),
        ({"similarity": "identity", "r": 0.2}, r"Expected `r` only with similarity 'order'"),
        (
            {"download": True},
            r"`download` to be False for dataset 'abalone' \(it applies to cifar100\)",
        ),
        (
            {"cache_dir": "/tmp/c"},
            r"`cache_dir` to be None for dataset 'abalone' \(it applies to utkface, afad\)",
        ),
        ({"cifar_classes": "paper96"}, r"`cifar_classes` to be 'all' for dataset 'abalone'"),
    ],
)
def test_invalid_values_raise_value_error(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 2.5}, r"Expected `epochs` to be int or None, but found float 2.5"),
        ({"seed": True}, r"Expected `seed` to be an int, but found bool"),
        ({"progress": "yes"}, r"Expected `progress` to be bool or None, but found str"),
        ({"r": "0.3"}, r"Expected `r` to be float or None, but found str"),
    ],
)
def test_wrong_types_raise_type_error(kwargs: dict, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        TrainConfig(**kwargs)
