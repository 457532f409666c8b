"""Image sets: readers that produce the canonical uint8 (N, C, H, W) store and its index."""

from selfsup.data.sources import ImageSet, load_image_set
from selfsup.data.store import content_hash

__all__ = ["ImageSet", "content_hash", "load_image_set"]
