"""The names ``pretraining.method`` and ``pretraining.backbone`` accept, for images and for texts.

Declared here, without torch, so that the parameter schemas can check a name
without importing the registries that build the modules (``selfsup.methods.METHODS``,
``selfsup.models.BACKBONES``, ``selfsup.text.methods.TEXT_METHODS``); a test keeps these names
and the registries' keys equal. A run's method and backbone must be of its data's modality
(``selfsup.preflight``).
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

# Texts (selfsup.text): the methods, the text encoders they train, the datasets they read.
TEXT_METHOD_NAMES = ("mlm", "simcse")
TEXT_BACKBONE_NAMES = ("text_transformer", "text_bag")
TEXT_DATASETS = ("text_folder", "text_csv", "wordnet")
