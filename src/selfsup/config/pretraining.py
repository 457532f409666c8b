"""``pretraining``: the method, the backbone, the optimisation, and where and how the training runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from selfsup.config.backbone_params import ResNetParams, SmallCNNParams, ViTParams
from selfsup.config.base import StrictParams, check_known
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
    RotNetParams,
    SimCLRParams,
    SimSiamParams,
    SwAVParams,
    VICRegParams,
)
from selfsup.config.names import BACKBONE_NAMES, METHOD_NAMES, TEXT_BACKBONE_NAMES, TEXT_METHOD_NAMES
from selfsup.config.text_params import MLMParams, SimCSEParams, TextBagParams, TextTransformerParams, WordPieceParams


class DistributedParams(StrictParams):
    """Data-parallel training over processes, launched by the pretraining node (see selfsup.distributed)."""

    nproc_per_node: int = Field(1, ge=1)  # processes on this machine: one per GPU, or a few on CPU (gloo)
    nnodes: int = Field(1, ge=1)  # machines; each runs the same command with its own node_rank
    node_rank: int = Field(0, ge=0)
    rdzv_endpoint: str | None = None  # host:port of the node_rank 0 machine; needed when nnodes > 1
    sync_batchnorm: bool = True  # batch-norm statistics over the global batch, as in one process

    @model_validator(mode="after")
    def _nodes(self) -> DistributedParams:
        if self.node_rank >= self.nnodes:
            raise ValueError(f"node_rank={self.node_rank} must be below nnodes={self.nnodes}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise ValueError(f"nnodes={self.nnodes} needs rdzv_endpoint (host:port of the node_rank 0 machine)")
        return self

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


class CheckpointParams(StrictParams):
    # None: no checkpoints, no resume. The library writes no files unless asked;
    # the project's conf/base sets data/06_models/checkpoints.
    directory: str | None = None
    every_steps: int = Field(500, ge=1)  # also at the end of every epoch


class PretrainingParams(StrictParams):
    method: str = "simclr"  # a name in selfsup.config.names.METHOD_NAMES (or TEXT_METHOD_NAMES for texts)
    backbone: str = "small_cnn"  # a name in selfsup.config.names.BACKBONE_NAMES (or TEXT_BACKBONE_NAMES)
    epochs: int = Field(100, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    batch_size: int = Field(256, ge=2)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_epochs: float = Field(2.0, ge=0)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    channels_last: bool = True
    mixed_precision: bool = True  # bf16 autocast on CUDA
    # bf16 autocast on a CPU with bf16 units (AMX, AVX-512 BF16) too: ~1.7-2.7x faster steps there, numerics
    # differ from float32; ignored (float32, with a warning) on CPUs without them, where bf16 is slower
    mixed_precision_cpu: bool = False
    compile: bool = False  # torch.compile the training step
    distributed: DistributedParams = DistributedParams()
    checkpoint: CheckpointParams = CheckpointParams()
    # Each method's and backbone's own hyperparameters, under its name.
    simclr: SimCLRParams = SimCLRParams()
    moco_v2: MoCoV2Params = MoCoV2Params()
    moco_v3: MoCoV3Params = MoCoV3Params()
    byol: BYOLParams = BYOLParams()
    simsiam: SimSiamParams = SimSiamParams()
    barlow_twins: BarlowTwinsParams = BarlowTwinsParams()
    vicreg: VICRegParams = VICRegParams()
    dino: DINOParams = DINOParams()
    swav: SwAVParams = SwAVParams()
    mae: MAEParams = MAEParams()
    beit: BEiTParams = BEiTParams()
    denoising_ae: DenoisingAEParams = DenoisingAEParams()
    rotnet: RotNetParams = RotNetParams()
    jigsaw: JigsawParams = JigsawParams()
    small_cnn: SmallCNNParams = SmallCNNParams()
    resnet18: ResNetParams = ResNetParams()
    resnet50: ResNetParams = ResNetParams()
    vit_tiny: ViTParams = ViTParams()
    vit_small: ViTParams = ViTParams()
    # Texts: the methods, the encoders, and the WordPiece tokenizer fitted on the training texts.
    mlm: MLMParams = MLMParams()
    simcse: SimCSEParams = SimCSEParams()
    text_transformer: TextTransformerParams = TextTransformerParams()
    text_bag: TextBagParams = TextBagParams()
    wordpiece: WordPieceParams = WordPieceParams()

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        return check_known(name, METHOD_NAMES + TEXT_METHOD_NAMES)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        return check_known(name, BACKBONE_NAMES + TEXT_BACKBONE_NAMES)

    @model_validator(mode="after")
    def _text_bag_serves_the_method(self) -> PretrainingParams:
        if self.backbone != "text_bag":
            return self
        if self.method == "mlm" or (self.method == "simcse" and self.simcse.mlm_weight):
            raise ValueError(
                "masked language modelling (method mlm, or simcse.mlm_weight > 0) predicts a token from its "
                "context, which the text_bag encoder does not see: use backbone text_transformer"
            )
        if self.method == "simcse" and not self.simcse.token_cutoff:
            raise ValueError(
                "simcse on the text_bag encoder needs simcse.token_cutoff > 0: the bag has no dropout, so "
                "without a cutoff both views of a text would be the same"
            )
        return self

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> PretrainingParams:
        world = self.distributed.world_size
        if self.batch_size % world or self.batch_size // world < 2:
            raise ValueError(
                f"batch_size={self.batch_size} is the global batch and must split into equal parts of at least 2 "
                f"over the {world} processes (distributed.nproc_per_node × distributed.nnodes)"
            )
        return self

    @model_validator(mode="after")
    def _shuffle_bn_groups_split_over_processes(self) -> PretrainingParams:
        if self.method != "moco_v2":
            return self
        groups, world = self.moco_v2.shuffle_bn_groups, self.distributed.world_size
        if groups % world:
            raise ValueError(
                f"moco_v2.shuffle_bn_groups={groups} must be a multiple of the {world} processes "
                "(distributed.nproc_per_node × distributed.nnodes): each process normalises whole groups"
            )
        if self.batch_size < 2 * groups:
            raise ValueError(
                f"moco_v2.shuffle_bn_groups={groups} needs batch_size of at least {2 * groups} "
                f"(got {self.batch_size}): batch norm needs 2 images in every group"
            )
        return self
