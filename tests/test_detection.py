"""The detection stage: canvases, COCO folders, the encoders' feature maps, FCOS on them, COCO mAP, the pipeline."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from selfsup.config import AugmentationParams, DetectionParams
from selfsup.detection.canvases import OBJECT_THRESHOLD, box_iou, make_canvases
from selfsup.detection.coco import read_coco
from selfsup.detection.detector import build_detector
from selfsup.detection.stage import detection_data, detection_stage
from selfsup.detection.train import Detections, detect, train_detector
from selfsup.encoder_checkpoint import encoder_checkpoint, random_encoder
from selfsup.models import build_encoder
from selfsup.pipelines.evaluation.nodes import record_run
from selfsup.report.detection import boxes_figure, detection_html
from tests.conftest import run_kedro

CPU = torch.device("cpu")
NAMES = ("bar", "block", "column")
CONFIG = {
    "backbone": "small_cnn",
    "in_channels": 1,
    "image_size": [12, 12],
    "backbone_params": {"widths": [8, 16, 16]},
    "mean": [0.2],
    "std": [0.3],
}
# Small enough for seconds: 32-pixel canvases, two steps per detector run.
TINY = {
    "canvas_size": 32,
    "train_canvases": 8,
    "test_canvases": 4,
    "objects_per_canvas": [1, 2],
    "object_size": [8, 14],
    "steps": 2,
    "batch_size": 4,
    "warmup_steps": 0,
    "fpn_channels": 32,
    "seeds": [0],
    "supervised": {"steps": 2, "batch_size": 8},
    "figure_canvases": 2,
}


def blobs(count: int, value: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (count, 1, 12, 12) black images each with one bright rectangle; label: its shape (wide, square, tall)."""
    rng = np.random.default_rng(seed)
    images = np.zeros((count, 1, 12, 12), dtype=np.uint8)
    labels = np.arange(count) % len(NAMES)
    for image, label in zip(images, labels):
        height, width = ((4, 10), (8, 8), (10, 4))[label]
        top, left = rng.integers(0, 13 - height), rng.integers(0, 13 - width)
        image[0, top : top + height, left : left + width] = value
    return images, labels


def blob_index(train: int, test: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Training blobs of value 100 and test blobs of value 250, with their index."""
    train_images, train_labels = blobs(train, value=100, seed=0)
    test_images, test_labels = blobs(test, value=250, seed=1)
    index = pd.DataFrame(
        {
            "id": [f"i{i}" for i in range(train + test)],
            "split": ["train"] * train + ["test"] * test,
            "label": pd.array(np.concatenate([train_labels, test_labels]), dtype="Int64"),
            "class_name": [NAMES[label] for label in np.concatenate([train_labels, test_labels])],
        }
    )
    return np.concatenate([train_images, test_images]), index


# ------------------------------------------------------------------------ data


def test_canvases_hold_their_objects_boxed_apart_and_alone():
    images, labels = blobs(60)
    made = make_canvases(images, labels, NAMES, 40, 64, (1, 4), (10, 20), 0.2, seed=0)
    assert made.images.shape == (40, 1, 64, 64) and made.images.dtype == np.uint8
    counts = [len(boxes) for boxes in made.boxes]
    assert min(counts) >= 1 and max(counts) <= 4 and len(set(counts)) > 2
    for canvas, boxes, classes in zip(made.images, made.boxes, made.labels):
        assert len(classes) == len(boxes) and set(classes) <= {0, 1, 2}
        sides = boxes[:, 2:] - boxes[:, :2]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all() and (sides > 0).all() and sides.max() <= 20
        covered = np.zeros((64, 64), dtype=bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
            others = np.delete(boxes, i, axis=0)
            assert not len(others) or box_iou(boxes[i], others).max() <= 0.2
            assert canvas[0, y0:y1, x0:x1].max() > OBJECT_THRESHOLD * 255
            covered[y0:y1, x0:x1] = True
        assert canvas[0][~covered].max(initial=0) <= np.ceil(OBJECT_THRESHOLD * 255)  # black outside the boxes
    again = make_canvases(images, labels, NAMES, 40, 64, (1, 4), (10, 20), 0.2, seed=0)
    assert np.array_equal(again.images, made.images)


def test_training_canvases_use_training_images_and_the_test_set_is_fixed():
    images, index = blob_index(30, 30)
    params = DetectionParams(**TINY)
    train, test = detection_data(images, index, params, channels=1)
    assert len(train) == 8 and len(test) == 4 and test.class_names == NAMES
    assert train.images.max() <= 100 and test.images.max() > 200  # train blobs are 100, test blobs 250
    _, same_test = detection_data(images, index, DetectionParams(**{**TINY, "train_canvases": 20}), channels=1)
    assert np.array_equal(same_test.images, test.images)


def coco_folder(root, boxes: dict[str, list[list[float]]], size=(40, 30)):
    """A COCO annotation file and its folder of ``size`` (width, height) PNG images, one per key of ``boxes``."""
    images_folder = root / "images"
    images_folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    spec = {"images": [], "annotations": [], "categories": [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}]}
    for image_id, (name, image_boxes) in enumerate(boxes.items(), start=1):
        pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images_folder / name)
        spec["images"].append({"id": image_id, "file_name": name, "width": size[0], "height": size[1]})
        for box in image_boxes:
            category = 7 if len(spec["annotations"]) % 2 else 3
            spec["annotations"].append(
                {"id": len(spec["annotations"]) + 1, "image_id": image_id, "category_id": category, "bbox": box}
            )
    annotations = root / "annotations.json"
    annotations.write_text(json.dumps(spec))
    return annotations, images_folder


def test_a_coco_folder_is_read_resized_with_its_boxes_scaled(tmp_path):
    annotations, folder = coco_folder(tmp_path, {"a.png": [[4, 3, 20, 15], [0, 0, 40, 30]], "b.png": []})
    read = read_coco(annotations, folder, 64, channels=1)
    assert read.images.shape == (2, 1, 64, 64) and read.class_names == ("three", "seven")  # categories by id
    np.testing.assert_allclose(read.boxes[0], [[6.4, 6.4, 38.4, 38.4], [0, 0, 64, 64]], rtol=1e-5)
    assert list(read.labels[0]) == [0, 1] and read.boxes[1].shape == (0, 4)


# ------------------------------------------------------------- the detector


@pytest.mark.parametrize(
    ("backbone", "params", "strides"),
    [
        ("small_cnn", {"widths": [8, 16, 16, 16]}, {1, 2, 4}),
        ("resnet18", {"small_image_stem": True}, {1, 2, 4, 8}),
        ("vit_tiny", {"patch_size": 4, "depth": 1}, {4}),
    ],
)
def test_encoders_give_their_feature_maps_by_stride_the_deepest_what_they_pool(backbone, params, strides):
    config = {**CONFIG, "backbone": backbone, "image_size": [32, 32], "backbone_params": params}
    encoder = build_encoder(config).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        maps = encoder.spatial_maps(x)
        features = encoder(x)
    assert set(maps) == strides
    assert all(m.shape[-2:] == (32 // stride, 32 // stride) for stride, m in maps.items())
    torch.testing.assert_close(maps[max(maps)].mean(dim=(2, 3)), features)


def test_a_frozen_encoder_stays_as_it_was_and_a_fine_tuned_one_learns():
    images, labels = blobs(30)
    train = make_canvases(images, labels, NAMES, 8, 32, (1, 2), (8, 14), 0.2, seed=0)
    for frozen in (True, False):
        encoder = random_encoder(CONFIG, seed=0)
        before = {name: value.clone() for name, value in encoder.state_dict().items()}  # batch-norm statistics too
        detector = build_detector(encoder, len(NAMES), 32, frozen, fpn_channels=32, score_threshold=0.05)
        train_detector(detector, train, 2, 4, 1e-3, 1.0, 0.0, 0, seed=0, device=CPU)
        changed = [name for name, value in encoder.state_dict().items() if not torch.equal(value, before[name])]
        assert bool(changed) != frozen, (frozen, changed)
    found = detect(detector, train.images[:3], CPU)
    assert len(found.boxes) == 3
    assert all(b.shape == (len(s), 4) and len(s) == len(c) for b, s, c in zip(found.boxes, found.scores, found.labels))


def test_coco_map_scores_perfect_shifted_mislabelled_and_missing_detections():
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    from selfsup.detection.scoring import coco_map

    images, labels = blobs(30)
    truth = make_canvases(images, labels, NAMES, 10, 64, (1, 3), (12, 20), 0.2, seed=0)
    ones = [np.ones(len(boxes), dtype=np.float32) for boxes in truth.boxes]
    perfect = Detections(truth.boxes, ones, truth.labels)
    assert coco_map(truth, perfect) == pytest.approx({"map": 1.0, "map50": 1.0})
    width = [boxes[:, 2:3] - boxes[:, 0:1] for boxes in truth.boxes]
    shifted = Detections([b + 0.2 * w * np.array([1, 0, 1, 0]) for b, w in zip(truth.boxes, width)], ones, truth.labels)
    scores = coco_map(truth, shifted)  # IoU 2/3: a hit at the thresholds 0.50 … 0.65 only
    assert scores["map50"] == pytest.approx(1.0) and 0.2 < scores["map"] < 0.6
    mislabelled = Detections(truth.boxes, ones, [(classes + 1) % 3 for classes in truth.labels])
    assert coco_map(truth, mislabelled)["map"] == pytest.approx(0.0)
    assert coco_map(truth, mislabelled, class_agnostic=True)["map"] == pytest.approx(1.0)
    nothing = Detections([np.zeros((0, 4), np.float32)] * 10, [np.zeros(0, np.float32)] * 10, [np.zeros(0, int)] * 10)
    assert coco_map(truth, nothing) == {"map": 0.0, "map50": 0.0}


# ------------------------------------------------------------------ the stage


def test_the_stage_compares_every_encoder_frozen_and_fine_tuned_and_reports_it():
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    images, index = blob_index(30, 30)
    encoder = random_encoder(CONFIG, seed=1)
    checkpoint = encoder_checkpoint(encoder, CONFIG, {"method": "simclr", "steps": 3})
    params = DetectionParams(**TINY)
    metrics, test, examples = detection_stage(checkpoint, images, index, params, AugmentationParams(), CPU)
    assert {e: set(modes) for e, modes in metrics["table"].items()} == {
        encoder: {"frozen", "finetune"} for encoder in ("ssl", "random_init", "supervised")
    }
    assert len(metrics["runs"]) == 6 and all(0 <= run["map"] <= 1 for run in metrics["runs"])
    assert metrics["data"] == {
        "source": "canvases",
        "train_images": 8,
        "test_images": 4,
        "test_objects": sum(len(labels) for labels in test.labels),
        "image_size": 32,
        "class_names": list(NAMES),
    }
    assert metrics["supervised_encoder"]["steps"] == 2 and metrics["encoder_training"] == checkpoint["training"]
    assert set(examples) == {(e, m) for e in metrics["table"] for m in ("frozen", "finetune")}
    page = detection_html(metrics, boxes_figure(test, examples, params.figure_canvases))
    assert page.count('<tr class="ssl">') == 2 and "data:image/png;base64," in page and 'src="http' not in page
    json.dumps(metrics)  # what the catalog saves


def test_record_run_joins_the_detection_of_its_own_encoder_only():
    protocol = {"ssl": {"linear": 0.9}}
    detection = {"table": {"ssl": {}}, "runs": [], "encoder_training": {"method": "simclr", "steps": 3}}
    own, _ = record_run(protocol, {}, detection, {"method": "simclr", "steps": 3}, {}, {}, "base")
    assert own["detection"] == {"table": {"ssl": {}}, "runs": []}
    other, _ = record_run(protocol, {}, detection, {"method": "simclr", "steps": 4}, {}, {}, "base")
    assert "detection" not in other
    never, _ = record_run(protocol, {}, {}, {"method": "simclr", "steps": 3}, {}, {}, "base")
    assert "detection" not in never


@pytest.mark.slow  # the shared tiny run, then a kedro run of 6 detector runs: 35 s on the busy 2-core machine
def test_kedro_run_detection_on_a_coco_folder_after_a_run(tiny_run, tmp_path):
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    project = tmp_path / "project"
    shutil.copytree(tiny_run, project)
    boxes = {f"{i}.png": [[2 + i, 3, 12, 10], [20, 12, 15, 16]] for i in range(6)}
    annotations, folder = coco_folder(tmp_path / "coco", boxes)
    values = (
        *("source=coco", f"coco.annotations={annotations}", f"coco.images={folder}", "coco.test_fraction=0.34"),
        *("canvas_size=32", "object_size=[8,14]", "steps=2", "batch_size=4", "fpn_channels=32", "seeds=[0]"),
        *("supervised.steps=2", "figure_canvases=2"),
    )
    params = ",".join(f"detection.{value}" for value in values)
    run_kedro(project, "run", "--pipelines", "detection", "--params", params)
    reporting = project / "data" / "08_reporting"
    metrics = json.loads((reporting / "detection_metrics.json").read_text())
    assert metrics["data"]["source"] == "coco" and metrics["data"]["class_names"] == ["three", "seven"]
    assert (metrics["data"]["train_images"], metrics["data"]["test_images"]) == (4, 2)
    assert len(metrics["runs"]) == 6
    assert metrics["encoder_training"] == json.loads((project / "data/06_models/training_summary.json").read_text())
    recorded = json.loads((reporting / "metrics.json").read_text())
    before = json.loads((tiny_run / "data" / "08_reporting" / "metrics.json").read_text())
    assert recorded["detection"]["runs"] == metrics["runs"] and recorded["ssl"] == before["ssl"]
    assert "detection" not in before
    page = (reporting / "detection_report.html").read_text()
    assert '<table id="detection">' in page and "data:image/png;base64," in page


@pytest.mark.slow  # 200 detector steps on 48-pixel canvases: 131 s on the busy 2-core machine
def test_fcos_on_a_fine_tuned_small_cnn_learns_to_find_and_name_the_objects():
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    from selfsup.detection.scoring import coco_map

    images, labels = blobs(300)
    train = make_canvases(images, labels, NAMES, 400, 48, (1, 3), (12, 22), 0.2, seed=0)
    test = make_canvases(*blobs(60, seed=1), NAMES, 50, 48, (1, 3), (12, 22), 0.2, seed=1)
    config = {**CONFIG, "backbone_params": {"widths": [16, 32, 32]}}
    torch.manual_seed(0)
    detector = build_detector(random_encoder(config, 0), len(NAMES), 48, False, fpn_channels=32, score_threshold=0.05)
    train_detector(detector, train, 200, 16, 2e-3, 1.0, 1e-4, 20, seed=0, device=CPU)
    found = detect(detector, test.images, CPU)
    assert coco_map(test, found, class_agnostic=True)["map50"] > 0.6
    assert coco_map(test, found)["map50"] > 0.4  # three shapes; chance names a third of the boxes right
