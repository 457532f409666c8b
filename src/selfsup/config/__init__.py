"""Typed, validated parameters for every stage.

Each pipeline validates its ``params:<stage>`` dictionary here before any work
starts, so a wrong value fails in one line that names the parameter, the value
and what is allowed. One module per parameter group; every default is the value
in ``conf/base/parameters_<stage>.yml`` (``tests/test_config_defaults.py`` holds
them equal), except the project's data folders, which the library leaves unset.
"""

from selfsup.config.augmentation import AugmentationParams
from selfsup.config.backbone_params import ResNetParams, SmallCNNParams, ViTParams
from selfsup.config.base import StrictParams, validate
from selfsup.config.detection import CocoParams, DetectionParams, SupervisedParams
from selfsup.config.evaluation import EvaluationParams, ReportingParams
from selfsup.config.features import EmbedParams, FeatureExtractionParams
from selfsup.config.finetune import FinetuneParams
from selfsup.config.ingestion import IngestionParams
from selfsup.config.method_params import (
    BarlowTwinsParams,
    BEiTParams,
    BYOLParams,
    DenoisingAEParams,
    DINOParams,
    JigsawParams,
    MAEParams,
    MoCoV2Params,
    MoCoV3Params,
    MultiCropParams,
    RotNetParams,
    SimCLRParams,
    SimSiamParams,
    SwAVParams,
    VICRegParams,
)
from selfsup.config.pretraining import CheckpointParams, DistributedParams, PretrainingParams
from selfsup.errors import ParameterError

SCHEMAS: dict[str, type[StrictParams]] = {
    "ingestion": IngestionParams,
    "augmentation": AugmentationParams,
    "pretraining": PretrainingParams,
    "feature_extraction": FeatureExtractionParams,
    "finetune": FinetuneParams,
    "evaluation": EvaluationParams,
    "reporting": ReportingParams,
    "embed": EmbedParams,
    "detection": DetectionParams,
}

__all__ = [
    "SCHEMAS",
    "AugmentationParams",
    "BarlowTwinsParams",
    "BEiTParams",
    "BYOLParams",
    "CheckpointParams",
    "CocoParams",
    "DenoisingAEParams",
    "DetectionParams",
    "DINOParams",
    "DistributedParams",
    "EmbedParams",
    "EvaluationParams",
    "FeatureExtractionParams",
    "FinetuneParams",
    "IngestionParams",
    "JigsawParams",
    "MAEParams",
    "MoCoV2Params",
    "MoCoV3Params",
    "MultiCropParams",
    "ParameterError",
    "PretrainingParams",
    "ReportingParams",
    "ResNetParams",
    "RotNetParams",
    "SimCLRParams",
    "SimSiamParams",
    "SmallCNNParams",
    "SupervisedParams",
    "SwAVParams",
    "VICRegParams",
    "ViTParams",
    "validate",
]
