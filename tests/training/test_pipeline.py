import numpy as np
import pytest

from im2latex_encoder.data.pipeline import (
    ArrayBatches,
    MixedBatches,
    SyntheticBatches,
    augmentation_layers,
    make_dataset,
)
from im2latex_encoder.data.synthetic import SyntheticSymbols


def test_array_batches_cover_each_epoch_once_and_reshuffle():
    images = np.arange(12, dtype=np.uint8)[:, None, None].repeat(4, 1).repeat(4, 2)
    source = ArrayBatches(images, np.arange(12), batch_size=4, seed=1)
    epoch0 = np.concatenate([source.batch(step)[1] for step in range(3)])
    epoch1 = np.concatenate([source.batch(step)[1] for step in range(3, 6)])
    assert sorted(epoch0) == list(range(12)) == sorted(epoch1)
    assert not np.array_equal(epoch0, epoch1)
    images0, labels0 = source.batch(0)
    np.testing.assert_allclose(
        images0[:, 0, 0] * 255, labels0, atol=1e-4
    )  # image and label stay paired


def test_batches_are_a_pure_function_of_the_step():
    source = SyntheticBatches(SyntheticSymbols(image_size=24), batch_size=3, seed=5)
    a, b = source.batch(7), source.batch(7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(source.batch(8)[0], a[0])


def test_dataset_matches_the_source_batch_for_batch_from_any_start():
    source = SyntheticBatches(SyntheticSymbols(image_size=24), batch_size=4, seed=2)
    for step, (images, labels) in enumerate(make_dataset(source, 5, 3, (24, 24)), start=5):
        expected_images, expected_labels = source.batch(step)
        np.testing.assert_array_equal(labels.numpy(), expected_labels)
        np.testing.assert_array_equal(images.numpy()[..., 0], expected_images)
    one_hot = next(iter(make_dataset(source, 0, 1, (24, 24), one_hot=101)))[1]
    assert one_hot.shape == (4, 101)


def test_mixed_batches_take_fixed_shares():
    a = ArrayBatches(np.zeros((6, 4, 4), np.uint8), np.zeros(6), batch_size=2)
    b = ArrayBatches(np.full((6, 4, 4), 255, np.uint8), np.ones(6), batch_size=1)
    images, labels = MixedBatches([a, b]).batch(0)
    assert labels.tolist() == [0, 0, 1] and images[2].min() == 1.0


def test_bad_sources_are_refused():
    with pytest.raises(ValueError, match="Received: 3 images, 2 labels"):
        ArrayBatches(np.zeros((3, 4, 4), np.uint8), np.zeros(2), batch_size=1)
    with pytest.raises(
        ValueError, match="at least one full batch. Received: 3 images for batch_size=8"
    ):
        ArrayBatches(np.zeros((3, 4, 4), np.uint8), np.zeros(3), batch_size=8)


def test_augmentation_changes_training_images_only():
    augment = augmentation_layers(rotation=0.05, zoom=0.1, translation=0.05, seed=0)
    images = np.zeros((2, 32, 32, 1), np.float32)
    images[:, 8:24, 15:17] = 1.0
    assert np.array_equal(np.asarray(augment(images, training=False)), images)
    changed = np.asarray(augment(images, training=True))
    assert not np.allclose(changed, images) and changed.min() >= -1e-6
    assert len(augmentation_layers().layers) == 0


class _ConcurrencyProbe:
    """A batch source that records how many of its batches are being built at once."""

    batch_size = 2

    def __init__(self, parallel_batches=None):
        import threading

        if parallel_batches is not None:
            self.parallel_batches = parallel_batches
        self._lock = threading.Lock()
        self.running = self.most = 0

    def batch(self, step):
        import time

        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)  # releases the GIL, as cv2 and numpy do
        with self._lock:
            self.running -= 1
        return np.full((2, 4, 4), step, np.float32), np.zeros(2, np.int32)


@pytest.mark.parametrize("hint, argument, expected", [(1, None, 1), (1, 2, 2), (None, 2, 2)])
def test_make_dataset_builds_as_many_batches_at_once_as_asked_or_hinted(hint, argument, expected):
    probe = _ConcurrencyProbe(hint)
    steps = [
        int(images[0, 0, 0, 0])
        for images, _ in make_dataset(probe, 0, 12, (4, 4), parallel_batches=argument)
    ]
    assert steps == list(range(12))  # in order, whatever the parallelism
    assert probe.most == expected


def test_synthetic_batches_are_built_one_at_a_time_and_mixing_keeps_the_hint():
    synthetic = SyntheticBatches(SyntheticSymbols(image_size=16), batch_size=2)
    arrays = ArrayBatches(np.zeros((8, 16, 16), np.uint8), np.zeros(8), batch_size=2)
    assert synthetic.parallel_batches == 1
    assert MixedBatches([arrays, synthetic]).parallel_batches == 1
    assert MixedBatches([arrays]).parallel_batches is None
