"""Each method's own hyperparameters, under its name in ``pretraining`` (``pretraining.simclr``, ...).

The defaults follow the papers, scaled for small images and CPU budgets; the
``pretraining`` parameters file says where and why they differ from the paper.
"""

from __future__ import annotations

from math import factorial
from typing import Literal

from pydantic import Field, PositiveInt, field_validator, model_validator

from selfsup.config.base import StrictParams, check_range


class SimCLRParams(StrictParams):
    temperature: float = Field(0.5, gt=0)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)
    rotation_weight: float = Field(0.0, ge=0)  # E-SSL's four-fold rotation prediction; 0: plain SimCLR
    rotation_scale: float = Field(0.5, gt=0, le=1)  # the rotated images: the first view resized by this


class MoCoV2Params(StrictParams):
    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.99, ge=0, lt=1)
    queue_size: int = Field(4096, ge=1)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)
    # Shuffling BN: the key encoder normalises each view's shuffled global batch in this many groups
    # (a multiple of the processes; 1 on one process: no shuffle). See selfsup.methods.moco_v2.
    shuffle_bn_groups: int = Field(4, ge=1)


class MoCoV3Params(StrictParams):
    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.99, ge=0, lt=1)  # raised to 1 by a cosine schedule over training
    projection_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(1024, ge=1)


class BYOLParams(StrictParams):
    momentum: float = Field(0.99, ge=0, lt=1)  # raised to 1 by a cosine schedule over training
    projection_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(1024, ge=1)


class SimSiamParams(StrictParams):
    projection_dim: int = Field(512, ge=1)
    predictor_hidden_dim: int = Field(128, ge=1)


class BarlowTwinsParams(StrictParams):
    projection_dim: int = Field(2048, ge=1)
    hidden_dim: int = Field(2048, ge=1)
    off_diagonal_weight: float | None = Field(None, gt=0)  # None: 1 / projection_dim


class VICRegParams(StrictParams):
    invariance_weight: float = Field(25.0, ge=0)
    variance_weight: float = Field(25.0, ge=0)
    covariance_weight: float = Field(1.0, ge=0)
    gamma: float = Field(1.0, gt=0)
    eps: float = Field(1e-4, gt=0)
    projection_dim: int = Field(512, ge=1)
    hidden_dim: int = Field(512, ge=1)


class MultiCropParams(StrictParams):
    """Multi-crop (Caron et al., 2020), for DINO and SwAV: ``local_crops`` small views of each image
    besides its two global views, cut from the image with the augmentation's operations, at their own
    size and crop scale."""

    local_crops: int = Field(0, ge=0)  # 0: the two global views only
    local_crop_size: tuple[PositiveInt, PositiveInt] = (8, 8)  # (h, w); at most the global views' size
    local_crop_scale: tuple[float, float] = (0.05, 0.4)  # the fraction of the image's area a local crop covers

    @field_validator("local_crop_scale")
    @classmethod
    def _scale_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        check_range("local_crop_scale", scale, 0.0, 1.0)
        return scale


class DINOParams(MultiCropParams):
    out_dim: int = Field(1024, ge=1)
    hidden_dim: int = Field(512, ge=1)
    bottleneck_dim: int = Field(256, ge=1)
    batch_norm_in_head: bool = True
    momentum: float = Field(0.996, ge=0, lt=1)  # raised to 1 by a cosine schedule over training
    student_temperature: float = Field(0.1, gt=0)
    teacher_temperature_start: float = Field(0.04, gt=0)
    teacher_temperature: float = Field(0.07, gt=0)
    teacher_warmup_fraction: float = Field(0.3, ge=0, le=1)
    center_momentum: float = Field(0.9, ge=0, lt=1)
    freeze_last_layer_epochs: int = Field(1, ge=0)  # the head's last layer gets no update in these first epochs


class SwAVParams(MultiCropParams):
    temperature: float = Field(0.1, gt=0)
    n_prototypes: int = Field(100, ge=2)
    sinkhorn_epsilon: float = Field(0.05, gt=0)
    sinkhorn_iterations: int = Field(3, ge=1)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)
    freeze_prototypes_epochs: int = Field(1, ge=0)  # the prototypes get no update in these first epochs
    local_crop_scale: tuple[float, float] = (0.05, 0.14)  # the paper's, beside global crops of (0.14, 1)


class MAEParams(StrictParams):
    mask_ratio: float = Field(0.75, gt=0, lt=1)
    decoder_dim: int = Field(128, ge=1)
    decoder_depth: int = Field(2, ge=1)
    decoder_heads: int = Field(4, ge=1)
    norm_pix_loss: bool = False  # targets standardised per patch: the paper's choice for 16×16 patches

    @model_validator(mode="after")
    def _decoder_width(self) -> MAEParams:
        if self.decoder_dim % self.decoder_heads or self.decoder_dim % 4:
            raise ValueError(
                f"decoder_dim={self.decoder_dim} must be divisible by decoder_heads={self.decoder_heads} "
                "and by 4 (sine-cosine position embeddings)"
            )
        return self


class BEiTParams(StrictParams):
    mask_ratio: float = Field(0.4, gt=0, lt=1)
    masking: Literal["block", "random"] = "block"
    codebook_size: int = Field(256, ge=2)  # k-means visual tokens, fitted by the fit_tokenizer node
    tokenizer_patches: int = Field(50_000, ge=2)  # patches sampled from the view cache to fit the codebook
    tokenizer_iterations: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _enough_patches(self) -> BEiTParams:
        if self.tokenizer_patches < self.codebook_size:
            raise ValueError(
                f"tokenizer_patches={self.tokenizer_patches} must be at least codebook_size={self.codebook_size}"
            )
        return self


class DenoisingAEParams(StrictParams):
    noise_std: float = Field(0.2, ge=0)  # gaussian noise added to the [0, 1] view
    mask_ratio: float = Field(0.25, ge=0, lt=1)  # fraction of pixels set to 0 (Vincent et al.'s masking noise)
    hidden_dim: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _corrupts(self) -> DenoisingAEParams:
        if self.noise_std == 0 and self.mask_ratio == 0:
            raise ValueError("noise_std and mask_ratio are both 0: the input would not be corrupted")
        return self


class RotNetParams(StrictParams):
    hidden_dim: int = Field(512, ge=1)


class JigsawParams(StrictParams):
    grid: int = Field(3, ge=2, le=4)  # grid × grid tiles
    num_permutations: int = Field(100, ge=2)
    hidden_dim: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _permutations_exist(self) -> JigsawParams:
        available = factorial(self.grid**2)
        if self.num_permutations > available:
            raise ValueError(
                f"num_permutations={self.num_permutations} exceeds the {available} orders"
                f" of {self.grid}×{self.grid} tiles"
            )
        return self
