"""Registry of self-supervised methods by the name used in ``pretraining.method``."""

from __future__ import annotations

import numpy as np

from selfsup.config import PretrainingParams
from selfsup.methods.barlow_twins import BarlowTwins
from selfsup.methods.base import Method
from selfsup.methods.beit import BEiT
from selfsup.methods.byol import BYOL
from selfsup.methods.denoising_ae import DenoisingAE
from selfsup.methods.dino import DINO
from selfsup.methods.jigsaw import Jigsaw
from selfsup.methods.mae import MAE
from selfsup.methods.moco_v2 import MoCoV2
from selfsup.methods.moco_v3 import MoCoV3
from selfsup.methods.rotnet import RotNet
from selfsup.methods.simclr import SimCLR
from selfsup.methods.simsiam import SimSiam
from selfsup.methods.swav import SwAV
from selfsup.methods.vicreg import VICReg
from selfsup.models import Encoder

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "moco_v2": MoCoV2,
    "moco_v3": MoCoV3,
    "byol": BYOL,
    "simsiam": SimSiam,
    "barlow_twins": BarlowTwins,
    "vicreg": VICReg,
    "dino": DINO,
    "swav": SwAV,
    "mae": MAE,
    "beit": BEiT,
    "denoising_ae": DenoisingAE,
    "rotnet": RotNet,
    "jigsaw": Jigsaw,
}


def build_method(encoder: Encoder, params: PretrainingParams, codebook: np.ndarray | None = None) -> Method:
    """The configured method; ``codebook`` is the visual-token codebook of those that use one (BEiT)."""
    method_class = METHODS[params.method]
    method_params = getattr(params, params.method)
    if method_class.uses_codebook:
        if codebook is None:
            raise ValueError(f"{params.method} needs a tokenizer codebook; see selfsup.tokenizer.tokenizer_codebook")
        return method_class(encoder, method_params, codebook)
    return method_class(encoder, method_params)


__all__ = ["METHODS", "Method", "build_method"]
