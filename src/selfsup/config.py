"""Typed, validated parameters for every stage.

Each pipeline validates its ``params:<stage>`` dictionary here before any work
starts, so a wrong value fails in one line that names the parameter, the value
and what is allowed.
"""

from __future__ import annotations

from math import factorial
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from selfsup.errors import ParameterError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestionParams(_Strict):
    dataset: Literal["digits", "idx", "folder", "array", "cifar10", "cifar100"] = "digits"
    path: str | None = None
    download: bool = False  # cifar10 / cifar100: fetch the official archive into path when it is not there
    test_fraction: float = Field(0.2, gt=0, lt=1)
    seed: int = 0
    channels: Literal[1, 3] = 3
    image_size: tuple[int, int] = (32, 32)
    workers: int = Field(2, ge=1)
    on_error: Literal["skip", "fail"] = "fail"
    scratch_dir: str | None = None  # decode folders and arrays into a memory-mapped file here (bounded memory)
    idx_files: dict[str, str] = {
        "train_images": "train-images-idx3-ubyte.gz",
        "train_labels": "train-labels-idx1-ubyte.gz",
        "test_images": "t10k-images-idx3-ubyte.gz",
        "test_labels": "t10k-labels-idx1-ubyte.gz",
    }

    @model_validator(mode="after")
    def _sizes(self) -> IngestionParams:
        if min(self.image_size) < 1:
            raise ValueError(f"image_size must be positive, got {list(self.image_size)}")
        missing = {"train_images", "train_labels", "test_images", "test_labels"} - set(self.idx_files)
        if missing:
            raise ValueError(f"idx_files lacks {sorted(missing)}")
        return self


class AugmentationParams(_Strict):
    """Per-sample random view generation; see ``selfsup.augment``.

    ``mode`` chooses where training views come from: ``cache`` stores K views per
    image once (``selfsup.data.view_cache``) and training draws from them;
    ``on_the_fly`` generates fresh views for every batch from the image store on
    the training device (``selfsup.data.on_the_fly``); nothing is stored, and
    ``views_per_image`` and ``batch_size`` are not used.
    """

    mode: Literal["cache", "on_the_fly"] = "cache"
    views_per_image: int = Field(8, ge=2)
    output_size: tuple[int, int] | None = None  # (H, W) of the views; None keeps the image size
    seed: int = 0
    batch_size: int = Field(512, ge=1)
    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (0.75, 1.3333)
    max_translate: float = Field(0.1, ge=0, le=0.5)
    hflip_p: float = Field(0.0, ge=0, le=1)
    brightness: float = Field(0.4, ge=0, le=1)
    contrast: float = Field(0.4, ge=0, le=1)
    saturation: float = Field(0.0, ge=0, le=1)
    color_jitter_p: float = Field(0.8, ge=0, le=1)
    grayscale_p: float = Field(0.0, ge=0, le=1)
    blur_p: float = Field(0.3, ge=0, le=1)
    blur_sigma: tuple[float, float] = (0.1, 1.0)
    noise_std: float = Field(0.03, ge=0, le=1)
    solarize_p: float = Field(0.0, ge=0, le=1)

    @model_validator(mode="after")
    def _ranges(self) -> AugmentationParams:
        _check_range("augmentation.crop_scale", self.crop_scale, 0.0, 1.0)
        _check_range("augmentation.crop_ratio", self.crop_ratio, 0.0, float("inf"))
        _check_range("augmentation.blur_sigma", self.blur_sigma, 0.0, float("inf"))
        return self


class SimCLRParams(_Strict):
    temperature: float = Field(0.5, gt=0)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)


class MoCoV2Params(_Strict):
    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.99, ge=0, lt=1)
    queue_size: int = Field(4096, ge=1)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)


class MoCoV3Params(_Strict):
    temperature: float = Field(0.2, gt=0)
    momentum: float = Field(0.99, ge=0, lt=1)  # raised to 1 by a cosine schedule over training
    projection_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(1024, ge=1)


class BYOLParams(_Strict):
    momentum: float = Field(0.99, ge=0, lt=1)  # raised to 1 by a cosine schedule over training
    projection_dim: int = Field(256, ge=1)
    hidden_dim: int = Field(1024, ge=1)


class SimSiamParams(_Strict):
    projection_dim: int = Field(512, ge=1)
    predictor_hidden_dim: int = Field(128, ge=1)


class BarlowTwinsParams(_Strict):
    projection_dim: int = Field(2048, ge=1)
    hidden_dim: int = Field(2048, ge=1)
    off_diagonal_weight: float | None = Field(None, gt=0)  # None: 1 / projection_dim


class VICRegParams(_Strict):
    invariance_weight: float = Field(25.0, ge=0)
    variance_weight: float = Field(25.0, ge=0)
    covariance_weight: float = Field(1.0, ge=0)
    gamma: float = Field(1.0, gt=0)
    eps: float = Field(1e-4, gt=0)
    projection_dim: int = Field(512, ge=1)
    hidden_dim: int = Field(512, ge=1)


class DINOParams(_Strict):
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


class SwAVParams(_Strict):
    temperature: float = Field(0.1, gt=0)
    n_prototypes: int = Field(100, ge=2)
    sinkhorn_epsilon: float = Field(0.05, gt=0)
    sinkhorn_iterations: int = Field(3, ge=1)
    projection_dim: int = Field(128, ge=1)
    hidden_dim: int = Field(512, ge=1)


class MAEParams(_Strict):
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


class BEiTParams(_Strict):
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


class DenoisingAEParams(_Strict):
    noise_std: float = Field(0.2, ge=0)  # gaussian noise added to the [0, 1] view
    mask_ratio: float = Field(0.25, ge=0, lt=1)  # fraction of pixels set to 0 (Vincent et al.'s masking noise)
    hidden_dim: int = Field(512, ge=1)

    @model_validator(mode="after")
    def _corrupts(self) -> DenoisingAEParams:
        if self.noise_std == 0 and self.mask_ratio == 0:
            raise ValueError("noise_std and mask_ratio are both 0: the input would not be corrupted")
        return self


class RotNetParams(_Strict):
    hidden_dim: int = Field(512, ge=1)


class JigsawParams(_Strict):
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


class SmallCNNParams(_Strict):
    widths: tuple[int, ...] = Field((32, 64, 128, 256), min_length=1)
    output_grid: int = Field(1, ge=1)


class ResNetParams(_Strict):
    small_image_stem: bool = True  # 3×3 stride-1 first conv and no max-pool, for images of ~32 px


class ViTParams(_Strict):
    patch_size: int = Field(4, ge=1)
    depth: int = Field(12, ge=1)
    pool: Literal["mean", "cls"] = "mean"  # features: mean of the patch tokens, or the cls token


class DistributedParams(_Strict):
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


class CheckpointParams(_Strict):
    directory: str | None = None  # null: no checkpoints, no resume
    every_steps: int = Field(500, ge=1)  # also at the end of every epoch


class PretrainingParams(_Strict):
    method: str = "simclr"  # a name in selfsup.methods.METHODS
    backbone: str = "small_cnn"  # a name in selfsup.models.BACKBONES
    epochs: int = Field(30, ge=1)
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

    @field_validator("method")
    @classmethod
    def _known_method(cls, name: str) -> str:
        from selfsup.methods import METHODS  # the registry imports this module

        return _known(name, METHODS)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        from selfsup.models import BACKBONES  # the registry imports this module

        return _known(name, BACKBONES)

    @model_validator(mode="after")
    def _batch_splits_over_processes(self) -> PretrainingParams:
        world = self.distributed.world_size
        if self.batch_size % world or self.batch_size // world < 2:
            raise ValueError(
                f"batch_size={self.batch_size} is the global batch and must split into equal parts of at least 2 "
                f"over the {world} processes (distributed.nproc_per_node × distributed.nnodes)"
            )
        return self


class FeatureExtractionParams(_Strict):
    batch_size: int = Field(512, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    normalize: bool = True  # unit-length feature vectors (SSL and random-init alike; raw pixels stay raw)


class EvaluationParams(_Strict):
    knn_k: tuple[int, ...] = (20, 200)
    label_fractions: tuple[float, ...] = (0.01, 0.1)
    linear_max_iter: int = Field(1000, ge=100)  # L-BFGS iterations of the probe's solver
    device: Literal["auto", "cpu", "cuda"] = "auto"  # where the probe is solved
    n_clusters: int = Field(10, ge=2)  # k-means on unlabelled data only; labelled data uses the class count
    seed: int = 0

    @model_validator(mode="after")
    def _positive(self) -> EvaluationParams:
        if not self.knn_k or any(k < 1 for k in self.knn_k):
            raise ValueError(f"knn_k must be positive integers, got {list(self.knn_k)}")
        if any(not 0 < f < 1 for f in self.label_fractions):
            raise ValueError(f"label_fractions must lie in (0, 1), got {list(self.label_fractions)}")
        return self


class ReportingParams(_Strict):
    embedding_plot_points: int = Field(2000, ge=10)
    seed: int = 0


class EmbedParams(_Strict):
    """`kedro run --pipelines embed --params embed.path=DIR,embed.checkpoint=FILE`."""

    path: str | None = None  # required by the embed pipeline: a folder of images or one image file
    checkpoint: str = "data/06_models/encoder.pt"
    image_size: tuple[int, int] | None = None  # None: the size the encoder was trained on
    batch_size: int = Field(512, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int = Field(2, ge=1)
    on_error: Literal["skip", "fail"] = "fail"


def _known(name: str, registry: dict) -> str:
    if name not in registry:
        raise ValueError(f"unknown name {name!r}; allowed: {', '.join(sorted(registry))}")
    return name


def _check_range(name: str, pair: tuple[float, float], low: float, high: float) -> None:
    lo, hi = pair
    if not (low < lo <= hi <= high):
        raise ValueError(f"{name} must satisfy {low} < min <= max <= {high}, got {list(pair)}")


def validate(model: type[_Strict], section: str, values: dict | None) -> _Strict:
    """Build ``model`` from ``values`` or raise one ``ParameterError`` naming the culprit."""
    try:
        return model.model_validate(values or {})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in (section, *err["loc"]))
            value = err.get("input")
            problems.append(f"{where}={value!r}: {err['msg']}")
        raise ParameterError("; ".join(problems)) from None


SCHEMAS: dict[str, type[_Strict]] = {
    "ingestion": IngestionParams,
    "augmentation": AugmentationParams,
    "pretraining": PretrainingParams,
    "feature_extraction": FeatureExtractionParams,
    "evaluation": EvaluationParams,
    "reporting": ReportingParams,
    "embed": EmbedParams,
}
