import logging
import pickle

import numpy as np

from selfsup.config import AugmentationParams
from selfsup.data.cached_views import CachedViews
from selfsup.data.view_cache import META_FILE, VIEWS_FILE, ensure_cache, open_cache


def store(n=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


def test_second_call_reuses_the_cache(tmp_path, caplog):
    images, positions, params = store(), np.arange(10), AugmentationParams(views_per_image=3)
    first = ensure_cache(tmp_path, images, positions, params)
    modified = (tmp_path / VIEWS_FILE).stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="selfsup"):
        second = ensure_cache(tmp_path, images, positions, params)
    assert "reusing" in caplog.text
    assert (tmp_path / VIEWS_FILE).stat().st_mtime_ns == modified
    assert first.key == second.key
    assert second.views.shape == (10, 3, 1, 8, 8)


def test_changed_parameter_or_images_rebuild(tmp_path):
    images, positions = store(), np.arange(10)
    first = ensure_cache(tmp_path, images, positions, AugmentationParams(views_per_image=3))
    by_param = ensure_cache(tmp_path, images, positions, AugmentationParams(views_per_image=3, brightness=0.1))
    assert by_param.key != first.key
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    by_content = ensure_cache(tmp_path, changed, positions, AugmentationParams(views_per_image=3, brightness=0.1))
    assert by_content.key != by_param.key
    assert open_cache(tmp_path).key == by_content.key


def test_interrupted_build_is_not_trusted(tmp_path):
    images, positions, params = store(), np.arange(10), AugmentationParams(views_per_image=2)
    built = ensure_cache(tmp_path, images, positions, params)
    (tmp_path / META_FILE).unlink()  # what a build killed before its last write leaves
    assert open_cache(tmp_path) is None
    rebuilt = ensure_cache(tmp_path, images, positions, params)
    assert rebuilt.key == built.key
    np.testing.assert_array_equal(rebuilt.views, built.views)


def test_cached_views_reach_worker_processes_as_their_file(tmp_path):
    cache = ensure_cache(tmp_path, store(), np.arange(10), AugmentationParams(views_per_image=3))
    views = cache.bind(store())
    shared = pickle.dumps(views)
    assert len(shared) < views.views.nbytes  # the file's name, not its bytes
    reopened = pickle.loads(shared)
    assert isinstance(reopened.views, np.memmap) and reopened.views.filename == views.views.filename
    assert reopened.data_key == cache.key and len(reopened) == 10 and reopened.views_per_image == 3
    in_memory = CachedViews(np.asarray(views.views))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(in_memory)).views, views.views)
