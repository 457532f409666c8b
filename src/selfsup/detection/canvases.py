"""Box-annotated canvases made from a labelled image set (Fashion-MNIST's garments, digits, ...).

Each canvas is black, ``size``×``size``, with a number of images drawn uniformly from
``objects_per_canvas``, each resized so that its longer side is drawn uniformly from
``object_size`` pixels and pasted at a uniform position where its box has at most
``max_iou`` IoU with every box already on the canvas (an image that finds no such place
in ``PLACEMENT_TRIES`` draws is left out). Images are composited with the pixel-wise
maximum, so a garment on black keeps its own pixels. An object's box is the tight box of
its resized pixels above ``OBJECT_THRESHOLD`` (of 1), its label the image's label.
"""

from __future__ import annotations

import numpy as np

from selfsup.detection.boxed_images import BoxedImages, resized

OBJECT_THRESHOLD = 0.05
PLACEMENT_TRIES = 50


def box_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one (4,) x0, y0, x1, y1 box with each row of (n, 4) ``others``."""
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    intersection = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return intersection / (area + other_areas - intersection)


def _object(image: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The image resized to ``side`` on its longer side, and its pixels' tight box within it (None: blank)."""
    height, width = image.shape[-2:]
    scale = side / max(height, width)
    pixels = resized(image, (max(1, round(height * scale)), max(1, round(width * scale))))
    rows, cols = np.nonzero(pixels.max(axis=0) > OBJECT_THRESHOLD)
    if not len(rows):
        return None
    return pixels, np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=np.float32)


def _canvas(
    images: np.ndarray,
    labels: np.ndarray,
    size: int,
    objects_per_canvas: tuple[int, int],
    object_size: tuple[int, int],
    max_iou: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    canvas = np.zeros((images.shape[1], size, size), dtype=np.float32)
    boxes, classes = np.zeros((0, 4), dtype=np.float32), []
    for _ in range(rng.integers(objects_per_canvas[0], objects_per_canvas[1] + 1)):
        pick = rng.integers(len(images))
        drawn = _object(images[pick], int(rng.integers(object_size[0], object_size[1] + 1)))
        if drawn is None:
            continue
        pixels, tight = drawn
        height, width = pixels.shape[-2:]
        for _ in range(PLACEMENT_TRIES):
            top, left = rng.integers(size - height + 1), rng.integers(size - width + 1)
            box = tight + np.array([left, top, left, top], dtype=np.float32)
            if not len(boxes) or box_iou(box, boxes).max() <= max_iou:
                region = canvas[:, top : top + height, left : left + width]
                np.maximum(region, pixels, out=region)
                boxes = np.vstack([boxes, box])
                classes.append(int(labels[pick]))
                break
    return np.rint(canvas * 255).astype(np.uint8), boxes, np.array(classes, dtype=np.int64)


def make_canvases(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...],
    count: int,
    size: int,
    objects_per_canvas: tuple[int, int],
    object_size: tuple[int, int],
    max_iou: float,
    seed: int | tuple[int, ...],
) -> BoxedImages:
    """``count`` canvases of uint8 (N, C, H, W) ``images`` labelled by ``labels`` (in ``range(len(class_names))``)."""
    rng = np.random.default_rng(seed)
    made = [_canvas(images, labels, size, objects_per_canvas, object_size, max_iou, rng) for _ in range(count)]
    canvases, boxes, classes = zip(*made)
    return BoxedImages(np.stack(canvases), list(boxes), list(classes), tuple(class_names))
