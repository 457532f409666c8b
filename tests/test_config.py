import numpy as np
import pytest
from pydantic import BaseModel

from selfsup.config import AugmentationParams, ParameterError, PretrainingParams, validate
from selfsup.config.names import (
    BACKBONE_NAMES,
    METHOD_NAMES,
    TEXT_BACKBONE_NAMES,
    TEXT_METHOD_NAMES,
    VIT_BACKBONES,
    VIT_METHODS,
)


def test_defaults_validate():
    assert validate(PretrainingParams, "pretraining", {}).method == "simclr"


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"method": "nope"}, "pretraining.method='nope'"),
        ({"batch_size": 1}, "pretraining.batch_size=1"),
        ({"simclr": {"temperature": 0}}, "pretraining.simclr.temperature=0"),
        ({"epochs": "many"}, "pretraining.epochs='many'"),
        ({"learning_rte": 0.1}, "pretraining.learning_rte"),
    ],
)
def test_wrong_values_name_the_parameter_and_value(values, fragment):
    with pytest.raises(ParameterError) as error:
        validate(PretrainingParams, "pretraining", values)
    assert fragment in str(error.value)


def test_range_pairs_are_checked():
    with pytest.raises(ParameterError, match="crop_scale"):
        validate(AugmentationParams, "augmentation", {"crop_scale": [0.9, 0.2]})


def test_the_schema_names_are_the_registries_keys():
    from selfsup.methods import METHODS
    from selfsup.models import BACKBONES
    from selfsup.text.encoder import TEXT_BACKBONES
    from selfsup.text.methods import TEXT_METHODS

    assert set(METHODS) == set(METHOD_NAMES)
    assert set(BACKBONES) == set(BACKBONE_NAMES)
    assert set(TEXT_METHODS) == set(TEXT_METHOD_NAMES)
    assert set(TEXT_BACKBONES) == set(TEXT_BACKBONE_NAMES)


def test_the_vit_names_are_the_methods_that_refuse_a_cnn_and_the_backbones_that_are_vits():
    """The run-start check refuses MAE or BEiT on a CNN from these names; the registries agree."""
    from selfsup.methods import METHODS, build_method
    from selfsup.models import build_encoder
    from selfsup.models.vit import ViT

    def encoder(backbone: str):
        backbone_params = {"patch_size": 4, "depth": 1} if backbone.startswith("vit") else {}
        config = {"backbone": backbone, "in_channels": 1, "image_size": [8, 8], "backbone_params": backbone_params}
        return build_encoder({**config, "mean": [0.5], "std": [0.25]})

    refusing = set()
    for name, method_class in METHODS.items():
        codebook = np.zeros((4, 16), np.float32) if method_class.uses_codebook else None
        try:
            build_method(encoder("small_cnn"), PretrainingParams(method=name), codebook)
        except ParameterError:
            refusing.add(name)
    assert refusing == set(VIT_METHODS)
    assert {name for name in BACKBONE_NAMES if isinstance(encoder(name).backbone, ViT)} == set(VIT_BACKBONES)


def test_each_method_and_backbone_has_its_own_parameters_under_its_name():
    sub_configs = set(PretrainingParams.model_fields) - {"distributed", "checkpoint"}
    nested = {name for name in sub_configs if isinstance(getattr(PretrainingParams(), name), BaseModel)}
    names = set(METHOD_NAMES) | set(BACKBONE_NAMES) | set(TEXT_METHOD_NAMES) | set(TEXT_BACKBONE_NAMES)
    assert nested == names | {"wordpiece"}  # the text tokenizer's, fitted in the text pretraining
