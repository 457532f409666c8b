"""COCO mAP (IoU 0.50:0.95) and mAP50 of detections, by pycocotools' own evaluation.

Class-agnostic scores put every true and every detected box in one category, so
that they measure localisation alone.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np

from selfsup.detection.boxed_images import BoxedImages
from selfsup.detection.train import Detections


def coco_tools():
    """pycocotools' COCO and COCOeval classes (the detection extra)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "scoring detections needs pycocotools, the detection extra: pip install -e '.[detection]'"
        ) from None
    return COCO, COCOeval


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    return [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes]


def _ground_truth(truth: BoxedImages, class_agnostic: bool) -> dict:
    size = truth.images.shape[-1]
    annotations = []
    for image_id, (boxes, labels) in enumerate(zip(truth.boxes, truth.labels)):
        for box, label in zip(_xywh(boxes), labels):
            category = 1 if class_agnostic else int(label) + 1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    n_categories = 1 if class_agnostic else len(truth.class_names)
    return {
        "images": [{"id": i, "width": size, "height": size} for i in range(len(truth))],
        "annotations": annotations,
        "categories": [{"id": c + 1} for c in range(n_categories)],
    }


def _results(found: Detections, class_agnostic: bool) -> list[dict]:
    return [
        {"image_id": image_id, "category_id": 1 if class_agnostic else int(label) + 1, "bbox": box, "score": float(s)}
        for image_id, (boxes, scores, labels) in enumerate(zip(found.boxes, found.scores, found.labels))
        for box, s, label in zip(_xywh(boxes), scores, labels)
    ]


def coco_map(truth: BoxedImages, found: Detections, class_agnostic: bool = False) -> dict[str, float]:
    """``{"map", "map50"}`` of ``found`` on ``truth`` (0 for both when nothing was detected)."""
    COCO, COCOeval = coco_tools()
    results = _results(found, class_agnostic)
    if not results:
        return {"map": 0.0, "map50": 0.0}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt = COCO()
        gt.dataset = _ground_truth(truth, class_agnostic)
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    # stats[0] and stats[1] are -1 where no category has a true box: nothing to find scores 0.
    return {"map": max(0.0, float(evaluation.stats[0])), "map50": max(0.0, float(evaluation.stats[1]))}
