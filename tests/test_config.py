import pytest

from selfsup.config import AugmentationParams, ParameterError, PretrainingParams, validate


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
