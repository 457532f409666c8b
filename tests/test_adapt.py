"""'auto' parameters chosen from the images: what is read from a folder, what is chosen, what is kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from selfsup.adapt import choose_parameters, profile_images, resolve_auto
from selfsup.errors import ParameterError


def write_images(root, classes=("a", "b"), per_class=30, size=(28, 28), colour=False, seed=0):
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            grey = rng.integers(0, 256, (size[0], size[1]), dtype=np.uint8)
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8) if colour else np.stack([grey] * 3, axis=2)
            Image.fromarray(pixels, "RGB").save(root / name / f"{index}.png")
    return root


def folder_values(root, **sections) -> dict[str, dict]:
    values = {
        "ingestion": {"dataset": "folder", "path": str(root), "channels": "auto", "image_size": "auto"},
        "augmentation": {"output_size": "auto", "saturation": "auto", "grayscale_p": "auto", "blur_p": "auto"},
        "pretraining": {"batch_size": "auto"},
        "evaluation": {"knn_k": "auto", "label_fractions": "auto", "n_clusters": "auto"},
    }
    for section, overrides in sections.items():
        values[section] = {**values[section], **overrides}
    return values


def test_grey_images_stored_as_rgb_are_profiled_as_grey(tmp_path):
    profile = profile_images({"dataset": "folder", "path": str(write_images(tmp_path, size=(28, 28)))})
    assert not profile.colour
    assert (profile.height, profile.width) == (28, 28)
    assert profile.images == 60 and profile.train == 48 and profile.classes == 2 and profile.smallest_class == 24


def test_grey_small_folder_gets_one_channel_no_colour_augmentation_and_smaller_views(tmp_path):
    resolved = resolve_auto(folder_values(write_images(tmp_path, size=(28, 28))))
    assert resolved["ingestion"]["channels"] == 1 and resolved["ingestion"]["image_size"] == [28, 28]
    assert resolved["augmentation"] == {"output_size": [21, 21], "saturation": 0.0, "grayscale_p": 0.0, "blur_p": 0.0}
    assert resolved["pretraining"]["batch_size"] == 8  # 48 training images: at least 4 batches per epoch
    assert resolved["evaluation"] == {"knn_k": [20, 48], "label_fractions": [0.1, 0.5], "n_clusters": 2}


def test_large_colour_folder_is_reduced_keeping_its_aspect(tmp_path):
    resolved = resolve_auto(folder_values(write_images(tmp_path, size=(64, 96), colour=True, per_class=10)))
    assert resolved["ingestion"]["channels"] == 3
    assert resolved["ingestion"]["image_size"] == [32, 48]
    assert resolved["augmentation"]["output_size"] == [24, 36]
    assert resolved["augmentation"]["saturation"] == 0.4 and resolved["augmentation"]["grayscale_p"] == 0.2


def test_given_values_are_kept_and_only_auto_ones_chosen(tmp_path):
    values = folder_values(
        write_images(tmp_path), ingestion={"channels": 3}, evaluation={"knn_k": [5]}, pretraining={"batch_size": 4}
    )
    resolved = resolve_auto(values)
    assert resolved["ingestion"]["channels"] == 3
    assert resolved["evaluation"]["knn_k"] == [5] and resolved["pretraining"]["batch_size"] == 4
    assert resolved["ingestion"]["image_size"] == [28, 28]


def test_unlabelled_folder_gets_ten_clusters_and_no_label_choices(tmp_path):
    for index in range(12):
        Image.fromarray(np.full((16, 16), index * 20, dtype=np.uint8)).save(tmp_path / f"{index}.png")
    profile = profile_images({"dataset": "folder", "path": str(tmp_path)})
    assert profile.classes == 0
    assert choose_parameters(profile)["evaluation"] == {"n_clusters": (10, "unlabelled: 10 clusters")}


def test_auto_outside_a_folder_is_one_clear_error():
    with pytest.raises(ParameterError, match="ingestion.dataset: folder, not 'digits'"):
        resolve_auto({"ingestion": {"dataset": "digits"}, "augmentation": {"saturation": "auto"}})


def test_auto_of_other_parameters_keeps_its_own_meaning(tmp_path):
    values = folder_values(write_images(tmp_path), pretraining={"device": "auto", "batch_size": "auto"})
    assert resolve_auto(values)["pretraining"] == {"device": "auto", "batch_size": 8}


def test_label_choices_of_an_unlabelled_folder_fall_back_to_the_defaults(tmp_path):
    for index in range(12):
        Image.fromarray(np.full((16, 16), index * 20, dtype=np.uint8)).save(tmp_path / f"{index}.png")
    resolved = resolve_auto(folder_values(tmp_path))
    assert resolved["evaluation"] == {"n_clusters": 10}


def test_no_auto_means_nothing_is_read(tmp_path):
    values = {"ingestion": {"dataset": "folder", "path": str(tmp_path / "absent")}}
    assert resolve_auto(values) is values
