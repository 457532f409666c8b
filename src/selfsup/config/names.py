"""The names ``pretraining.method`` and ``pretraining.backbone`` accept.

Declared here, without torch, so that the parameter schemas can check a name
without importing the registries that build the modules (``selfsup.methods.METHODS``,
``selfsup.models.BACKBONES``); a test keeps these names and the registries' keys equal.
"""

METHOD_NAMES = (
    "simclr",
    "moco_v2",
    "moco_v3",
    "byol",
    "simsiam",
    "barlow_twins",
    "vicreg",
    "dino",
    "swav",
    "mae",
    "beit",
    "denoising_ae",
    "rotnet",
    "jigsaw",
)

BACKBONE_NAMES = ("small_cnn", "resnet18", "resnet50", "vit_tiny", "vit_small")

# The methods that train a ViT's patch tokens, and the backbones that have them.
VIT_METHODS = ("mae", "beit")
VIT_BACKBONES = ("vit_tiny", "vit_small")
