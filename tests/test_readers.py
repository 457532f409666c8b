"""Readers for IDX files, NumPy arrays and image folders, on small files made per test."""

from __future__ import annotations

import gzip
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfsup.data.arrays import read_array_file
from selfsup.data.folders import read_image_folder
from selfsup.data.idx import read_idx, read_idx_pair
from selfsup.data.images import ImageDecodeError, decode_image
from selfsup.data.trees import list_image_files

IDX_TYPE_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D, np.float64: 0x0E}
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
RED_LUMA = 76  # ITU-R 601-2: 0.299 * 255


# ----------------------------------------------------------------- file builders


def write_idx(path: Path, array: np.ndarray, gz: bool = False, cut_payload: int = 0) -> Path:
    """An IDX file for ``array``; ``cut_payload`` drops that many bytes off the end."""
    header = struct.pack(">2xBB", IDX_TYPE_CODES[array.dtype.type], array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    payload = array.astype(array.dtype.newbyteorder(">")).tobytes()
    data = header + payload[: len(payload) - cut_payload]
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def save_image(path: Path, image: Image.Image, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return path


def solid(mode: str, size: tuple[int, int], color) -> Image.Image:
    return Image.new(mode, size, color)


def palette_image(size: tuple[int, int], transparent_index: int | None = None) -> Image.Image:
    """Mode 'P', every pixel index 1, and palette entry 1 is pure red."""
    image = Image.new("P", size, 1)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    if transparent_index is not None:
        image.info["transparency"] = transparent_index
    return image


def sixteen_bit(values: np.ndarray) -> Image.Image:
    image = Image.fromarray(values.astype(np.uint16))
    assert image.mode == "I;16"
    return image


def truncated_jpeg(path: Path) -> Path:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    save_image(path, Image.fromarray(noise), format="JPEG", quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def corrupt_png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    return path


# ------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, gz, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = write_idx(tmp_path / "data.idx", array, gz=gz)
    read = read_idx(path)
    assert read.shape == (2, 3, 4)
    assert read.dtype == np.dtype(dtype) and read.dtype.isnative
    np.testing.assert_array_equal(read, array)


def test_idx_gzip_detected_by_content_not_name(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    gzipped_without_suffix = write_idx(tmp_path / "labels-idx1-ubyte", array, gz=True)
    plain_with_gz_suffix = write_idx(tmp_path / "labels-idx1-ubyte.gz", array, gz=False)
    np.testing.assert_array_equal(read_idx(gzipped_without_suffix), array)
    np.testing.assert_array_equal(read_idx(plain_with_gz_suffix), array)


@pytest.mark.parametrize("first_bytes", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01"])
def test_idx_wrong_magic_number(tmp_path, first_bytes):
    path = tmp_path / "bad.idx"
    path.write_bytes(first_bytes + struct.pack(">I", 3) + bytes(3))
    with pytest.raises(ValueError, match="wrong magic number") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)
    assert f"0x{int.from_bytes(first_bytes, 'big'):08x}" in str(caught.value)


def test_idx_payload_shorter_than_header_says(tmp_path):
    path = write_idx(tmp_path / "short.idx", np.zeros((2, 3, 4), np.int16), cut_payload=5)
    with pytest.raises(ValueError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert str(path) in message and "43" in message and "48" in message


def test_idx_header_cut_short(tmp_path):
    path = tmp_path / "cut.idx"
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">I", 2))
    with pytest.raises(ValueError, match="3 dimensions"):
        read_idx(path)


def test_idx_pair(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    read_images, read_labels = read_idx_pair(
        write_idx(tmp_path / "images.gz", images, gz=True), write_idx(tmp_path / "labels", labels)
    )
    assert read_images.shape == (3, 1, 4, 5) and read_images.dtype == np.uint8
    np.testing.assert_array_equal(read_images[:, 0], images)
    assert read_labels.dtype == np.int64
    np.testing.assert_array_equal(read_labels, [7, 0, 9])


def test_idx_pair_count_mismatch_names_both_files(tmp_path):
    images_path = write_idx(tmp_path / "images", np.zeros((3, 2, 2), np.uint8))
    labels_path = write_idx(tmp_path / "labels", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="3 images but 4 labels") as caught:
        read_idx_pair(images_path, labels_path)
    assert str(images_path) in str(caught.value) and str(labels_path) in str(caught.value)


@pytest.mark.parametrize(
    ("images", "labels", "complaint"),
    [
        (np.zeros((3, 4), np.uint8), np.zeros(3, np.uint8), "3-D uint8"),
        (np.zeros((3, 2, 2), np.int16), np.zeros(3, np.uint8), "3-D uint8"),
        (np.zeros((3, 2, 2), np.uint8), np.zeros((3, 1), np.uint8), "1-D"),
    ],
)
def test_idx_pair_shape_checks(tmp_path, images, labels, complaint):
    images_path = write_idx(tmp_path / "images", images)
    labels_path = write_idx(tmp_path / "labels", labels)
    with pytest.raises(ValueError, match=complaint) as caught:
        read_idx_pair(images_path, labels_path)
    assert str(images_path) in str(caught.value) and str(labels_path) in str(caught.value)


# ---------------------------------------------------------------------- arrays


def test_npz_with_labels(tmp_path):
    images = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    path = tmp_path / "set.npz"
    np.savez(path, images=images, labels=np.array([1, 0, 1, 2], dtype=np.int32))
    read_images, labels = read_array_file(path)
    np.testing.assert_array_equal(read_images, images[:, None])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, [1, 0, 1, 2])


def test_npz_falls_back_to_first_non_label_array(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, labels=np.array([3, 4]), x=np.full((2, 2, 2), 9, np.uint8))
    images, labels = read_array_file(path)
    assert images.shape == (2, 1, 2, 2) and (images == 9).all()
    np.testing.assert_array_equal(labels, [3, 4])


def test_npy_three_dimensional_gains_channel_axis(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.full((5, 6, 7), 3, np.uint8))
    images, labels = read_array_file(path)
    assert images.shape == (5, 1, 6, 7) and images.dtype == np.uint8
    assert (images == 3).all() and labels is None


def test_multispectral_channels_kept(tmp_path):
    path = tmp_path / "bands.npy"
    stack = np.arange(2 * 5 * 3 * 3, dtype=np.uint8).reshape(2, 5, 3, 3)
    np.save(path, stack)
    images, _ = read_array_file(path)
    np.testing.assert_array_equal(images, stack)


def test_float_unit_range_multiplied_by_255(tmp_path):
    path = tmp_path / "unit.npy"
    # Not min-max scaled: 0.2..0.8 keeps its place in 0..255.
    np.save(path, np.array([0.2, 0.4, 0.6, 0.8], np.float32).reshape(1, 1, 2, 2))
    images, _ = read_array_file(path)
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(images.ravel(), [51, 102, 153, 204])


def test_other_ranges_min_max_scaled_over_whole_array(tmp_path):
    path = tmp_path / "wide.npy"
    np.save(path, np.array([[-55, 0], [200, 100]], np.int16).reshape(1, 1, 2, 2))
    images, _ = read_array_file(path)
    np.testing.assert_array_equal(images.ravel(), [0, 55, 255, 155])


def test_bool_becomes_0_and_255(tmp_path):
    path = tmp_path / "mask.npy"
    np.save(path, np.array([True, False]).reshape(1, 1, 1, 2))
    images, _ = read_array_file(path)
    np.testing.assert_array_equal(images.ravel(), [255, 0])


def test_nan_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "nan.npy"
    np.save(path, np.array([0.1, np.nan], np.float64).reshape(1, 1, 1, 2))
    with pytest.raises(ValueError, match="NaN") as caught:
        read_array_file(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("labels", [np.array([0, 1, 2]), np.array([[0], [1]]), np.array([0.5, 1.0])])
def test_bad_labels_rejected(tmp_path, labels):
    path = tmp_path / "set.npz"
    np.savez(path, images=np.zeros((2, 3, 3), np.uint8), labels=labels)
    with pytest.raises(ValueError, match="labels") as caught:
        read_array_file(path)
    assert str(path) in str(caught.value)


def test_array_of_wrong_rank_rejected(tmp_path):
    path = tmp_path / "flat.npy"
    np.save(path, np.zeros((4, 9), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        read_array_file(path)


# -------------------------------------------------------------- single images


@pytest.mark.parametrize("source_size", [(3, 5), (100, 40), (40, 100), (12, 8)])
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_gives_exact_size(tmp_path, source_size, channels):
    path = save_image(tmp_path / "image.png", solid("RGB", source_size, (10, 200, 30)))
    pixels = decode_image(path, channels=channels, size=(8, 12))
    assert pixels.shape == (channels, 8, 12) and pixels.dtype == np.uint8


def test_resize_keeps_aspect_and_crops_the_centre(tmp_path):
    # Three vertical stripes; a square crop of a 3:1 image keeps only the middle one.
    stripes = Image.new("RGB", (300, 100))
    for index, color in enumerate((RED, GREEN, BLUE)):
        stripes.paste(color, (100 * index, 0, 100 * (index + 1), 100))
    pixels = decode_image(save_image(tmp_path / "stripes.png", stripes), channels=3, size=(10, 10))
    assert (pixels[1] > 200).all() and (pixels[0] < 40).all() and (pixels[2] < 40).all()


def test_small_image_is_upsampled(tmp_path):
    checker = Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8))
    pixels = decode_image(save_image(tmp_path / "tiny.png", checker), channels=1, size=(20, 20))
    assert pixels.shape == (1, 20, 20)
    assert pixels[0, 0, 0] < 30 and pixels[0, 0, 19] > 225


def test_channel_conversion_grey_to_rgb_and_back(tmp_path):
    grey = decode_image(save_image(tmp_path / "grey.png", solid("L", (4, 4), 90)), 3, (4, 4))
    assert grey.shape == (3, 4, 4) and (grey == 90).all()
    red = decode_image(save_image(tmp_path / "red.png", solid("RGB", (4, 4), RED)), 1, (4, 4))
    assert red.shape == (1, 4, 4) and (red == RED_LUMA).all()


def test_unsupported_channel_count(tmp_path):
    path = save_image(tmp_path / "grey.png", solid("L", (4, 4), 0))
    with pytest.raises(ValueError, match="channels"):
        decode_image(path, channels=2, size=(4, 4))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_full_scale_becomes_255(tmp_path, suffix):
    path = save_image(tmp_path / f"deep{suffix}", sixteen_bit(np.full((6, 6), 65535)))
    assert (decode_image(path, 1, (6, 6)) == 255).all()


def test_sixteen_bit_divided_by_257(tmp_path):
    path = save_image(tmp_path / "deep.tif", sixteen_bit(np.full((4, 4), 257 * 200)))
    assert (decode_image(path, 1, (4, 4)) == 200).all()


def test_32_bit_integer_scaled_by_its_maximum(tmp_path):
    values = np.array([[0, 1000], [500, 1000]], np.int32)
    path = save_image(tmp_path / "wide.tif", Image.fromarray(values))
    np.testing.assert_array_equal(decode_image(path, 1, (2, 2))[0], [[0, 255], [128, 255]])


def test_float_image_in_unit_range(tmp_path):
    path = save_image(tmp_path / "float.tif", Image.fromarray(np.full((3, 3), 0.5, np.float32)))
    assert (decode_image(path, 1, (3, 3)) == 128).all()


def test_palette_image_converted(tmp_path):
    path = save_image(tmp_path / "palette.png", palette_image((5, 5)))
    assert (decode_image(path, 3, (5, 5)).reshape(3, -1).T == RED).all()
    assert (decode_image(path, 1, (5, 5)) == RED_LUMA).all()


def test_transparency_composited_on_black(tmp_path):
    clear_palette = save_image(tmp_path / "clear.png", palette_image((4, 4), transparent_index=1))
    clear_rgba = save_image(tmp_path / "clear_rgba.png", solid("RGBA", (4, 4), (255, 255, 255, 0)))
    half_la = save_image(tmp_path / "half.png", solid("LA", (4, 4), (200, 128)))
    assert (decode_image(clear_palette, 3, (4, 4)) == 0).all()
    assert (decode_image(clear_rgba, 3, (4, 4)) == 0).all()
    assert (np.abs(decode_image(half_la, 1, (4, 4)).astype(int) - 100) <= 1).all()


def test_bilevel_and_cmyk(tmp_path):
    bilevel = save_image(tmp_path / "bits.png", solid("1", (4, 4), 1))
    white_cmyk = save_image(tmp_path / "paper.tif", solid("CMYK", (4, 4), (0, 0, 0, 0)))
    assert (decode_image(bilevel, 1, (4, 4)) == 255).all()
    assert (decode_image(white_cmyk, 3, (4, 4)) == 255).all()


def test_corrupt_and_truncated_files_raise_value_error_with_path(tmp_path):
    for path in (corrupt_png(tmp_path / "noise.png"), truncated_jpeg(tmp_path / "cut.jpg")):
        with pytest.raises(ValueError) as caught:
            decode_image(path, 1, (8, 8))
        assert isinstance(caught.value, ImageDecodeError)
        assert str(caught.value).startswith(f"{path}: ")


# -------------------------------------------------------------- image folders


def make_labeled_folder(root: Path) -> Path:
    """Two classes, every supported format and several modes and sizes."""
    save_image(root / "cats" / "b.png", solid("RGB", (40, 30), RED))
    save_image(root / "cats" / "a.JPG", solid("RGB", (20, 20), GREEN), quality=95)
    save_image(root / "cats" / "deep" / "c.png", sixteen_bit(np.full((5, 7), 65535)))
    save_image(root / "dogs" / "d.bmp", solid("L", (6, 6), 100))
    save_image(root / "dogs" / "e.tiff", solid("RGBA", (16, 16), (0, 0, 255, 255)))
    save_image(root / "dogs" / "f.webp", solid("RGB", (3, 3), (255, 255, 255)), lossless=True)
    save_image(root / "dogs" / "g.png", palette_image((9, 4)))
    save_image(root / "dogs" / "h.png", solid("1", (8, 8), 1))
    return root


def test_list_image_files_filters_and_sorts(tmp_path):
    for name in ("b/z.PNG", "a.jpeg", "b/a.webp", ".hidden.png", ".cache/x.png", "notes.txt", "c.gif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = [path.relative_to(tmp_path).as_posix() for path in list_image_files(tmp_path)]
    assert found == ["a.jpeg", "b/a.webp", "b/z.PNG"]


def test_folder_labeled_by_subfolders(tmp_path):
    root = make_labeled_folder(tmp_path / "pets")
    read = read_image_folder(root, channels=3, size=(8, 8), workers=3, progress=False)
    assert read.class_names == ["cats", "dogs"]
    assert read.paths == [
        "cats/a.JPG", "cats/b.png", "cats/deep/c.png",
        "dogs/d.bmp", "dogs/e.tiff", "dogs/f.webp", "dogs/g.png", "dogs/h.png",
    ]  # fmt: skip
    np.testing.assert_array_equal(read.labels, [0, 0, 0, 1, 1, 1, 1, 1])
    assert read.images.shape == (8, 3, 8, 8) and read.images.dtype == np.uint8
    assert read.skipped == []
    # Each image lands in its own row, whatever order the threads finish in.
    expected_corner = [GREEN, RED, (255, 255, 255), (100, 100, 100), BLUE, (255, 255, 255), RED, (255, 255, 255)]
    corners = [tuple(int(value) for value in image[:, 4, 4]) for image in read.images]
    for corner, expected in zip(corners, expected_corner):
        assert np.abs(np.subtract(corner, expected)).max() <= 3


def test_folder_order_does_not_depend_on_workers(tmp_path):
    root = make_labeled_folder(tmp_path / "pets")
    one = read_image_folder(root, channels=1, size=(6, 6), workers=1, progress=False)
    four = read_image_folder(root, channels=1, size=(6, 6), workers=4, progress=False)
    assert one.paths == four.paths
    np.testing.assert_array_equal(one.images, four.images)
    np.testing.assert_array_equal(one.labels, four.labels)


def test_flat_folder_is_unlabeled(tmp_path):
    for index in range(3):
        save_image(tmp_path / f"{index}.png", solid("L", (4, 4), 10 * index))
    read = read_image_folder(tmp_path, channels=1, size=(4, 4), progress=False)
    assert read.labels is None and read.class_names == []
    assert read.paths == ["0.png", "1.png", "2.png"]
    assert [int(image.max()) for image in read.images] == [0, 10, 20]


def test_mixed_layout_is_an_error(tmp_path):
    save_image(tmp_path / "loose.png", solid("L", (4, 4), 0))
    save_image(tmp_path / "cats" / "a.png", solid("L", (4, 4), 0))
    with pytest.raises(ValueError, match="subfolders") as caught:
        read_image_folder(tmp_path, channels=1, size=(4, 4), progress=False)
    assert str(tmp_path) in str(caught.value) and "loose.png" in str(caught.value)


@pytest.mark.parametrize("make_bad", [corrupt_png, truncated_jpeg])
def test_undecodable_file_fails_by_default(tmp_path, make_bad):
    save_image(tmp_path / "good.png", solid("L", (4, 4), 0))
    bad = make_bad(tmp_path / ("bad.png" if make_bad is corrupt_png else "bad.jpg"))
    with pytest.raises(ValueError) as caught:
        read_image_folder(tmp_path, channels=1, size=(4, 4), progress=False)
    assert str(bad) in str(caught.value)


@pytest.mark.parametrize("make_bad", [corrupt_png, truncated_jpeg])
def test_undecodable_file_skipped_on_request(tmp_path, make_bad, caplog):
    bad_name = "b_bad.png" if make_bad is corrupt_png else "b_bad.jpg"
    save_image(tmp_path / "a.png", solid("L", (4, 4), 50))
    make_bad(tmp_path / bad_name)
    save_image(tmp_path / "c.png", solid("L", (4, 4), 150))
    with caplog.at_level(logging.WARNING, logger="selfsup.data.folders"):
        read = read_image_folder(tmp_path, channels=1, size=(4, 4), on_error="skip", progress=False)
    assert read.paths == ["a.png", "c.png"]
    assert [int(image.max()) for image in read.images] == [50, 150]
    assert [path for path, _ in read.skipped] == [bad_name]
    assert read.skipped[0][1]  # a reason is given
    assert bad_name in caplog.text


def test_skipped_files_keep_labels_aligned(tmp_path):
    save_image(tmp_path / "a" / "1.png", solid("L", (4, 4), 10))
    corrupt_png(tmp_path / "a" / "2.png")
    save_image(tmp_path / "b" / "1.png", solid("L", (4, 4), 20))
    read = read_image_folder(tmp_path, channels=1, size=(4, 4), on_error="skip", progress=False)
    assert read.paths == ["a/1.png", "b/1.png"]
    np.testing.assert_array_equal(read.labels, [0, 1])
    assert [int(image.max()) for image in read.images] == [10, 20]


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="no image files") as caught:
        read_image_folder(tmp_path, channels=1, size=(4, 4), progress=False)
    assert str(tmp_path) in str(caught.value) and ".png" in str(caught.value)


def test_missing_folder_and_file_instead_of_folder(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image_folder(tmp_path / "absent", channels=1, size=(4, 4), progress=False)
    a_file = save_image(tmp_path / "one.png", solid("L", (4, 4), 0))
    with pytest.raises(NotADirectoryError):
        read_image_folder(a_file, channels=1, size=(4, 4), progress=False)


def test_all_corrupt_folder_is_an_error(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        corrupt_png(tmp_path / name)
    with pytest.raises(ValueError, match="none of the 3") as caught:
        read_image_folder(tmp_path, channels=1, size=(4, 4), on_error="skip", progress=False)
    assert str(tmp_path) in str(caught.value)


def test_bad_on_error_value(tmp_path):
    save_image(tmp_path / "a.png", solid("L", (4, 4), 0))
    with pytest.raises(ValueError, match="on_error"):
        read_image_folder(tmp_path, channels=1, size=(4, 4), on_error="ignore", progress=False)
