"""selfsup: self-supervised feature learning from unlabeled images.

The library (everything outside ``selfsup.pipelines`` and ``selfsup.datasets``)
works without Kedro::

    from selfsup import embed_images
    features = embed_images("photos/", "data/06_models/encoder.pt")  # DataFrame: id, f000…

    from selfsup import load_encoder, embed
    encoder = load_encoder("data/06_models/encoder.pt")
    features = embed(encoder, images_uint8_nchw)

The names below are imported on first use (PEP 562), so that ``import selfsup``,
which every ``kedro`` command does through ``selfsup.cli``, loads no torch.
"""

from importlib import import_module

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "embed_images": "selfsup.embedding",
    "load_encoder": "selfsup.embedding",
    "embed": "selfsup.features",
    "METHODS": "selfsup.methods",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
