"""Every bad input gets one clear error (or a counted skip) and leaves the outputs as they were."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections import namedtuple

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.runner import SequentialRunner
from PIL import Image

from selfsup.config import AugmentationParams
from selfsup.data.images import ImageDecodeError
from selfsup.data.view_cache import VIEWS_FILE, ensure_cache, open_cache
from selfsup.encoder_checkpoint import CHECKPOINT_FORMAT, encoder_checkpoint, random_encoder
from selfsup.errors import DataError, MissingInputError, ParameterError
from selfsup.pipelines import ingestion
from selfsup.preflight import validate_run
from selfsup.resources import ResourceError
from tests.conftest import base_parameters
from tests.pipelines.test_stages import catalog_for
from tests.test_detection import CONFIG as DETECTION_CONFIG
from tests.test_detection import coco_folder
from tests.test_readers import corrupt_png, save_image, truncated_jpeg, write_idx

ALL_STAGES = {"ingestion", "augmentation", "pretraining", "feature_extraction", "finetune", "evaluation", "reporting"}


def with_changes(changes: dict) -> dict:
    """The base parameters with ``{"section.key.subkey": value}`` changes applied."""
    values = base_parameters()
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        target = values
        for part in path:
            target = target.setdefault(part, {})
        target[last] = value
    return values


# ------------------------------------------------------------------ parameters

BadParameter = namedtuple("BadParameter", "changes message")

BAD_PARAMETERS = {
    "unknown method": BadParameter(
        {"pretraining.method": "simclear"}, r"pretraining\.method='simclear'.*allowed: barlow_twins, beit"
    ),
    "unknown backbone": BadParameter(
        {"pretraining.backbone": "resnet19"}, r"pretraining\.backbone='resnet19'.*resnet18, resnet50"
    ),
    "unknown dataset kind": BadParameter(
        {"ingestion.dataset": "tiff"},
        r"ingestion\.dataset='tiff'.*'digits', 'idx', 'folder', 'array', 'cifar10', 'cifar100', 'text_folder'",
    ),
    "wrong type": BadParameter({"pretraining.batch_size": "big"}, r"pretraining\.batch_size='big'.*integer"),
    "temperature zero": BadParameter(
        {"pretraining.simclr.temperature": 0}, r"pretraining\.simclr\.temperature=0.*greater than 0"
    ),
    "batch of one": BadParameter(
        {"pretraining.batch_size": 1}, r"pretraining\.batch_size=1.*greater than or equal to 2"
    ),
    "batch larger than the training set": BadParameter(
        {"pretraining.batch_size": 2000}, r"pretraining\.batch_size=2000 is larger than the 1437 training images"
    ),
    "mask ratio of one": BadParameter(
        {"pretraining.mae.mask_ratio": 1.0}, r"pretraining\.mae\.mask_ratio=1\.0.*less than 1"
    ),
    "mask ratio of zero": BadParameter(
        {"pretraining.beit.mask_ratio": 0}, r"pretraining\.beit\.mask_ratio=0.*greater than 0"
    ),
    "kNN k above the training set": BadParameter(
        {"evaluation.knn_k": [20, 5000]}, r"evaluation\.knn_k=\[5000\] exceeds the 1437 labelled training images"
    ),
    "label fraction leaving a class empty": BadParameter(
        {"evaluation.label_fractions": [0.1, 0.002]}, r"evaluation\.label_fractions=0\.002 of 1437 training labels"
    ),
    "image smaller than a ViT patch": BadParameter(
        {"pretraining.backbone": "vit_tiny", "pretraining.vit_tiny.patch_size": 16},
        r"pretraining\.vit_tiny\.patch_size=16 is larger than the 8×8 views",
    ),
    "masked image modelling on a CNN": BadParameter(
        {"pretraining.method": "mae"}, r"pretraining\.method='mae' needs a ViT backbone.*backbone='small_cnn'"
    ),
    "ViT patch that does not divide the views": BadParameter(
        {"pretraining.backbone": "vit_tiny", "pretraining.vit_tiny.patch_size": 3},
        r"pretraining\.vit_tiny\.patch_size=3 does not divide the 8×8 views.*\[1, 2, 4, 8\]",
    ),
    "local crops larger than the global views": BadParameter(
        {"pretraining.method": "dino", "pretraining.dino.local_crops": 2, "pretraining.dino.local_crop_size": [8, 10]},
        r"pretraining\.dino\.local_crop_size=\[8, 10\] is larger than the 8×8 global views",
    ),
    "local crops of a ViT that are not whole patches": BadParameter(
        {
            "pretraining.method": "swav",
            "pretraining.backbone": "vit_tiny",
            "pretraining.vit_tiny.patch_size": 4,
            "pretraining.swav.local_crops": 2,
            "pretraining.swav.local_crop_size": [6, 6],
        },
        r"pretraining\.swav\.local_crop_size=\[6, 6\] is not a multiple of pretraining\.vit_tiny\.patch_size=4",
    ),
    "inverted local crop scale": BadParameter(
        {"pretraining.dino.local_crop_scale": [0.4, 0.05]},
        r"pretraining\.dino\.local_crop_scale=\[0\.4, 0\.05\].*must satisfy 0\.0 < min <= max <= 1\.0",
    ),
    "local crop scale of zero": BadParameter(
        {"pretraining.swav.local_crop_scale": [0.0, 0.14]},
        r"pretraining\.swav\.local_crop_scale=\[0\.0, 0\.14\].*must satisfy 0\.0 < min",
    ),
    "local crop scale above one": BadParameter(
        {"pretraining.dino.local_crop_scale": [0.5, 1.5]}, r"pretraining\.dino\.local_crop_scale=\[0\.5, 1\.5\]"
    ),
    "negative number of local crops": BadParameter(
        {"pretraining.dino.local_crops": -1}, r"pretraining\.dino\.local_crops=-1.*greater than or equal to 0"
    ),
    "batch that does not split over the processes": BadParameter(
        {"pretraining.batch_size": 33, "pretraining.distributed.nproc_per_node": 2},
        r"^pretraining: Value error, batch_size=33 is the global batch.*over the 2 processes",
    ),
    "MoCo v2 shuffle-BN groups that do not split over the processes": BadParameter(
        {
            "pretraining.method": "moco_v2",
            "pretraining.moco_v2.shuffle_bn_groups": 3,
            "pretraining.distributed.nproc_per_node": 2,
        },
        r"^pretraining: Value error, moco_v2\.shuffle_bn_groups=3 must be a multiple of the 2 processes",
    ),
    "MoCo v2 shuffle-BN groups of fewer than 2 images": BadParameter(
        {"pretraining.method": "moco_v2", "pretraining.moco_v2.shuffle_bn_groups": 8, "pretraining.batch_size": 12},
        r"moco_v2\.shuffle_bn_groups=8 needs batch_size of at least 16 \(got 12\)",
    ),
    "negative budget": BadParameter(
        {"pretraining.time_budget_s": -5}, r"pretraining\.time_budget_s=-5.*greater than 0"
    ),
    "misspelt parameter": BadParameter(
        {"pretraining.lerning_rate": 0.1}, r"pretraining\.lerning_rate=0\.1.*Extra inputs are not permitted"
    ),
    "fine-tuning without steps": BadParameter({"finetune.steps": 0}, r"finetune\.steps=0.*greater than or equal to 1"),
    "encoder learning faster than its head": BadParameter(
        {"finetune.pretrained_lr_scale": 2}, r"finetune\.pretrained_lr_scale=2.*less than or equal to 1"
    ),
    "fine-tuning batch of one": BadParameter(
        {"finetune.batch_size": 1}, r"finetune\.batch_size=1.*greater than or equal to 2"
    ),
    "zero fine-tuning budget": BadParameter(
        {"finetune.time_budget_s": 0}, r"finetune\.time_budget_s=0.*greater than 0"
    ),
    "text method on images": BadParameter(
        {"pretraining.method": "mlm"}, r"pretraining\.method='mlm' does not train on images.*use one of simclr"
    ),
    "image method on texts": BadParameter(
        {
            "ingestion.dataset": "text_csv",
            "ingestion.path": "unread.csv",
            "pretraining.backbone": "text_transformer",
        },
        r"pretraining\.method='simclr' does not train on texts \(ingestion\.dataset='text_csv'\).*mlm, simcse",
    ),
    "image backbone on texts": BadParameter(
        {"ingestion.dataset": "text_csv", "ingestion.path": "unread.csv", "pretraining.method": "simcse"},
        r"pretraining\.backbone='small_cnn' does not train on texts.*text_transformer",
    ),
    "MLM masking fractions above one": BadParameter(
        {"pretraining.mlm.random_token_p": 0.3}, r"mask_token_p \+ random_token_p = 1\.1 exceeds 1"
    ),
    "Transformer width not a multiple of the heads": BadParameter(
        {"pretraining.text_transformer.dim": 100, "pretraining.text_transformer.heads": 8},
        r"dim=100 must be a multiple of heads=8",
    ),
    "inverted crop scale": BadParameter(
        {"augmentation.crop_scale": [0.9, 0.2]}, r"augmentation\.crop_scale must satisfy.*\[0\.9, 0\.2\]"
    ),
}


@pytest.mark.parametrize("case", BAD_PARAMETERS.values(), ids=BAD_PARAMETERS.keys())
def test_bad_parameter_is_refused_before_any_work(case):
    with pytest.raises(ParameterError, match=case.message):
        validate_run(with_changes(case.changes), ALL_STAGES)


def test_the_defaults_pass():
    params = validate_run(base_parameters(), ALL_STAGES)
    assert params["pretraining"].method == "simclr"


# ------------------------------------------------------------------------ data


def snapshot(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


@pytest.fixture
def ingest_into(tmp_path):
    """Run the ingestion pipeline into an output folder that already holds a previous run's files."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for name in ("images.npy", "image_index.parquet", "data_summary.json"):
        (outputs / name).write_bytes(b"a previous run's " + name.encode())

    def run(**ingestion_values):
        values = base_parameters()
        values["ingestion"].update(ingestion_values)
        catalog = catalog_for(outputs, values)
        before = snapshot(outputs)
        try:
            SequentialRunner().run(ingestion.create_pipeline(), catalog)
        except Exception:
            assert snapshot(outputs) == before, "a failed ingestion changed its outputs"
            raise
        return json.loads((outputs / "data_summary.json").read_text()), np.load(outputs / "images.npy")

    return run


def image_folder(root, count=6, size=(12, 10), classes=("a", "b")):
    rng = np.random.default_rng(0)
    for name in classes:
        for i in range(count):
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            save_image(root / name / f"{i}.png", Image.fromarray(pixels))
    return root


def folder_params(root, **extra):
    return {"dataset": "folder", "path": str(root), "image_size": [8, 8], "workers": 1, **extra}


def test_corrupt_image_fails_with_its_path(ingest_into, tmp_path):
    root = image_folder(tmp_path / "images")
    corrupt_png(root / "a" / "broken.png")
    with pytest.raises(ImageDecodeError, match=r"a/broken\.png"):
        ingest_into(**folder_params(root))


def test_truncated_image_is_skipped_and_counted(ingest_into, tmp_path, caplog):
    root = image_folder(tmp_path / "images")
    truncated_jpeg(root / "b" / "cut.jpg")
    with caplog.at_level(logging.WARNING):
        summary, images = ingest_into(**folder_params(root, on_error="skip"))
    assert summary["skipped"] == 1 and "cut.jpg" in summary["skipped_files"][0]
    assert "cut.jpg" in caplog.text
    assert len(images) == 12


def test_file_that_is_not_an_image_fails(ingest_into, tmp_path):
    root = image_folder(tmp_path / "images")
    (root / "a" / "notes.png").write_text("these are my notes, not a picture")
    with pytest.raises(ImageDecodeError, match=r"notes\.png"):
        ingest_into(**folder_params(root))


def test_empty_folder_fails(ingest_into, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files found"):
        ingest_into(**folder_params(tmp_path / "empty"))


def test_folder_of_only_corrupt_images_fails_even_when_skipping(ingest_into, tmp_path):
    for i in range(3):
        corrupt_png(tmp_path / "bad" / f"{i}.png")
    with pytest.raises(DataError, match="none of the 3 image files could be decoded"):
        ingest_into(**folder_params(tmp_path / "bad", on_error="skip"))


def test_mixed_sizes_and_modes_including_16_bit_and_palette_are_read(ingest_into, tmp_path):
    root = tmp_path / "mixed"
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P", "I;16", "1"]
    for i, mode in enumerate(modes * 2):
        size = (int(rng.integers(3, 30)), int(rng.integers(3, 30)))  # some smaller than the 8×8 target
        base = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
        image = base.convert("L").convert(mode) if mode in ("I;16", "1") else base.convert(mode)
        save_image(root / f"{i:02d}.png", image)
    summary, images = ingest_into(**folder_params(root, channels=3))
    assert summary["skipped"] == 0
    assert images.shape == (12, 3, 8, 8) and images.dtype == np.uint8


def test_image_smaller_than_the_crop_is_upsampled(ingest_into, tmp_path):
    root = image_folder(tmp_path / "tiny", size=(3, 2))
    _, images = ingest_into(**folder_params(root))
    assert images.shape[2:] == (8, 8)
    assert images.std() > 0


def test_two_files_with_the_same_stem_keep_distinct_ids(ingest_into, tmp_path):
    root = image_folder(tmp_path / "images", classes=("a",))
    save_image(root / "a" / "0.jpg", Image.new("RGB", (9, 9), (200, 10, 10)))
    ingest_into(**folder_params(root))
    ids = pd.read_parquet(tmp_path / "outputs" / "image_index.parquet")["id"]
    assert ids.is_unique and {"a/0.png", "a/0.jpg"} <= set(ids)


def test_a_single_image_fails(ingest_into, tmp_path):
    save_image(tmp_path / "one" / "only.png", Image.new("RGB", (9, 9)))
    with pytest.raises(DataError, match="1 image; at least 2 are needed"):
        ingest_into(**folder_params(tmp_path / "one"))


def test_a_class_with_a_single_image_fails(ingest_into, tmp_path):
    root = image_folder(tmp_path / "images")
    save_image(root / "lonely" / "0.png", Image.new("RGB", (9, 9)))
    with pytest.raises(DataError, match="class 2 has a single image"):
        ingest_into(**folder_params(root))


def test_missing_path_fails(ingest_into, tmp_path):
    with pytest.raises(MissingInputError, match="does-not-exist"):
        ingest_into(**folder_params(tmp_path / "does-not-exist"))


def idx_folder(root, train=(20, 20), labels=20, cut_payload=0, magic_ok=True):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "train-images", rng.integers(0, 256, (train[0], 6, 6), dtype=np.uint8), cut_payload=cut_payload)
    write_idx(root / "train-labels", rng.integers(0, 3, labels, dtype=np.uint8))
    write_idx(root / "test-images", rng.integers(0, 256, (9, 6, 6), dtype=np.uint8))
    write_idx(root / "test-labels", rng.integers(0, 3, 9, dtype=np.uint8))
    if not magic_ok:
        data = bytearray((root / "train-images").read_bytes())
        data[2] = 0x07
        (root / "train-images").write_bytes(bytes(data))
    files = {
        "train_images": "train-images",
        "train_labels": "train-labels",
        "test_images": "test-images",
        "test_labels": "test-labels",
    }
    return {"dataset": "idx", "path": str(root), "idx_files": files}


@pytest.mark.parametrize(
    "layout, error",
    [
        ({"magic_ok": False}, r"train-images: wrong magic number"),
        ({"cut_payload": 7}, r"train-images: payload is .* bytes but the header's shape"),
        ({"labels": 19}, r"train-images, .*train-labels: 20 images but 19 labels"),
    ],
    ids=["wrong magic number", "count not matching the payload", "label and image counts differ"],
)
def test_bad_idx_files_fail(ingest_into, tmp_path, layout, error):
    with pytest.raises(DataError, match=error):
        ingest_into(**idx_folder(tmp_path / "idx", **layout))


def test_array_with_too_few_labels_fails(ingest_into, tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, images=np.zeros((10, 4, 4), np.uint8), labels=np.zeros(9, np.int64))
    with pytest.raises(DataError, match=r"data\.npz: labels must be 1-D with 10 entries"):
        ingest_into(dataset="array", path=str(path))


def test_the_outline_refuses_what_ingestion_would(tmp_path):
    """The run-start check reads headers only, and gives the same error as a full read."""
    values = with_changes(
        {"ingestion.dataset": "idx", **{f"ingestion.{k}": v for k, v in idx_folder(tmp_path, magic_ok=False).items()}}
    )
    with pytest.raises(DataError, match="wrong magic number"):
        validate_run(values, ALL_STAGES)


# ------------------------------------------------------------------- resources


def test_view_cache_larger_than_the_free_disk_is_refused_before_writing(tmp_path, monkeypatch):
    free = namedtuple("usage", "total used free")(10**9, 10**9 - 1000, 1000)
    monkeypatch.setattr("shutil.disk_usage", lambda path: free)
    images = np.zeros((50, 1, 8, 8), np.uint8)
    with pytest.raises(ResourceError, match=r"view cache .* needs .* GiB but .* free; .*augmentation\.views_per_image"):
        ensure_cache(tmp_path, images, np.arange(50), AugmentationParams(views_per_image=4))
    assert not any(tmp_path.iterdir())


CACHE_BUILDER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import selfsup.data.view_cache as view_cache
    from selfsup.config import AugmentationParams

    chunks = view_cache.iter_view_chunks
    def slow_chunks(*args):
        for chunk in chunks(*args):
            yield chunk
            print("chunk written", flush=True)
            time.sleep(0.5)
    view_cache.iter_view_chunks = slow_chunks
    images = np.random.default_rng(0).integers(0, 256, (64, 1, 8, 8), dtype=np.uint8)
    view_cache.ensure_cache(sys.argv[1], images, np.arange(64), AugmentationParams(views_per_image=2, batch_size=8))
    """
)


def test_a_cache_build_killed_midway_is_rebuilt_by_the_next_run(tmp_path, caplog):
    builder = subprocess.Popen(
        [sys.executable, "-c", CACHE_BUILDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert builder.stdout.readline().strip() == "chunk written"
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    assert any(tmp_path.glob(f".{VIEWS_FILE}.tmp-*")), "the killed build should have left its temporary file"
    assert open_cache(tmp_path) is None

    images = np.random.default_rng(0).integers(0, 256, (64, 1, 8, 8), dtype=np.uint8)
    with caplog.at_level(logging.INFO, logger="selfsup"):
        rebuilt = ensure_cache(tmp_path, images, np.arange(64), AugmentationParams(views_per_image=2, batch_size=8))
    assert "no complete cache" in caplog.text
    assert rebuilt.views.shape == (64, 2, 1, 8, 8)
    assert not any(tmp_path.glob(f".{VIEWS_FILE}.tmp-*"))


# ------------------------------------------------------------ what a user sees


def kedro_run(root, *args):
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *args], cwd=root, capture_output=True, text=True, timeout=300
    )


def data_files(root):
    return sorted(path.relative_to(root).as_posix() for path in (root / "data").rglob("*") if path.is_file())


def test_kedro_run_with_a_bad_parameter_prints_one_line_and_writes_nothing(project_copy):
    result = kedro_run(project_copy, "--params", "pretraining.method=simclear")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "pretraining.method='simclear'" in errors[0] and "allowed:" in errors[0]
    assert data_files(project_copy) == []


@pytest.mark.slow  # ~12 s: a kedro process; the check is tested in-process above, the one-line answer just above
def test_kedro_run_of_mae_on_the_default_cnn_stops_before_the_first_node(project_copy):
    result = kedro_run(project_copy, "--params", "pretraining.method=mae")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "pretraining.method='mae' needs a ViT backbone" in errors[0]
    assert "Running node" not in result.stderr + result.stdout
    assert data_files(project_copy) == []


@pytest.mark.slow  # ~11 s: as above
def test_kedro_run_with_local_crops_larger_than_the_views_stops_before_the_first_node(project_copy):
    params = "pretraining.method=dino,pretraining.dino.local_crops=2,pretraining.dino.local_crop_size=[12,12]"
    result = kedro_run(project_copy, "--params", params)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "pretraining.dino.local_crop_size=[12, 12] is larger than the 8×8" in errors[0]
    assert "Running node" not in result.stderr + result.stdout
    assert data_files(project_copy) == []


def test_kedro_run_on_a_corrupt_folder_fails_with_the_file_and_keeps_earlier_outputs(project_copy, tmp_path):
    root = image_folder(tmp_path / "images", count=20)
    corrupt_png(root / "b" / "broken.png")
    earlier = project_copy / "data" / "02_intermediate" / "images.npy"
    earlier.write_bytes(b"an earlier run's store")
    result = kedro_run(
        project_copy,
        "--env",
        "folder",
        "--params",
        f"ingestion.path={root},ingestion.on_error=fail,pretraining.batch_size=8",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "b/broken.png" in errors[0]
    assert earlier.read_bytes() == b"an earlier run's store"
    assert data_files(project_copy) == ["data/02_intermediate/images.npy"]


# ------------------------------------------------------------------- detection


def encoder_file(path, backbone="small_cnn"):
    """An encoder checkpoint at ``path``: a tiny image encoder, or (``text_transformer``) a text encoder's outline."""
    if backbone == "text_transformer":
        checkpoint = {"format": CHECKPOINT_FORMAT, "config": {"backbone": backbone}, "state_dict": {}, "training": {}}
    else:
        checkpoint = encoder_checkpoint(random_encoder(DETECTION_CONFIG, 0), DETECTION_CONFIG, {})
    torch.save(checkpoint, path)
    return path


BadDetection = namedtuple("BadDetection", "boxes missing backbone error message")

BAD_DETECTION_INPUTS = {
    "annotation whose image is missing": BadDetection(
        {"a.png": [[4, 3, 20, 15]], "b.png": [[1, 1, 5, 5]]},
        "b.png",
        "small_cnn",
        MissingInputError,
        r"annotations\.json: image id 2 'b\.png' is missing: no file .*images/b\.png",
    ),
    "box outside its image": BadDetection(
        {"a.png": [[4, 3, 20, 15], [30, 5, 15, 10]]},
        None,
        "small_cnn",
        DataError,
        r"annotations\.json: annotation id 2 \(image 'a\.png'\): bbox=\[30, 5, 15, 10\] lies outside the 40×30 image",
    ),
    "encoder without spatial maps": BadDetection(
        {"a.png": [[4, 3, 20, 15]]},
        None,
        "text_transformer",
        ParameterError,
        r"detection\.checkpoint=.*encoder\.pt' holds a 'text_transformer' encoder, which has no spatial feature maps",
    ),
}


def detection_case(tmp_path, case: BadDetection) -> dict:
    """The base parameters, detecting on a COCO folder with ``case``'s flaw."""
    annotations, folder = coco_folder(tmp_path / "coco", case.boxes)
    if case.missing:
        (folder / case.missing).unlink()
    checkpoint = encoder_file(tmp_path / "encoder.pt", case.backbone)
    coco = {"annotations": str(annotations), "images": str(folder)}
    return with_changes({"detection.source": "coco", "detection.coco": coco, "detection.checkpoint": str(checkpoint)})


@pytest.mark.parametrize("case", BAD_DETECTION_INPUTS.values(), ids=BAD_DETECTION_INPUTS.keys())
def test_bad_detection_input_is_refused_before_any_work(tmp_path, case):
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    with pytest.raises(case.error, match=case.message):
        validate_run(detection_case(tmp_path, case), {"detection", "augmentation"})


@pytest.mark.slow  # ~11 s: a kedro process; the check is tested in-process in the detection cases above
def test_kedro_run_detection_with_a_box_outside_its_image_stops_before_the_first_node(project_copy, tmp_path):
    pytest.importorskip("pycocotools", reason="needs the detection extra: pip install -e '.[detection]'")
    detection = detection_case(tmp_path, BAD_DETECTION_INPUTS["box outside its image"])["detection"]
    params = ",".join(f"detection.{key}={detection[key]}" for key in ("source", "checkpoint")) + "".join(
        f",detection.coco.{key}={detection['coco'][key]}" for key in ("annotations", "images")
    )
    result = kedro_run(project_copy, "--pipelines", "detection", "--params", params)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "bbox=[30, 5, 15, 10] lies outside the 40×30 image" in errors[0]
    assert "Running node" not in result.stderr + result.stdout
    assert data_files(project_copy) == []
