"""extract_features: shapes, norms, pixel values, PCA, preprocessing, progress and cancelling."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import ClusterLensError, DataError, ParameterError
from core.features import Cancelled, extract_features
from core.features.preprocess import to_model_input
from tests.features.conftest import ArrayDataset, PILDataset


def _unit(f: np.ndarray) -> None:
    assert f.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)


def test_pixels_values_native_size(gray_arrays: np.ndarray) -> None:
    f = extract_features(ArrayDataset(gray_arrays), "pixels", device="cpu")
    flat = gray_arrays.reshape(10, -1) / 255.0
    assert f.shape == (10, 256)   # grayscale arrays stay single-channel, native 16×16
    np.testing.assert_allclose(f, flat / np.linalg.norm(flat, axis=1, keepdims=True), atol=1e-6)
    _unit(f)


def test_pixels_same_on_array_and_pil_paths(gray_arrays: np.ndarray) -> None:
    arr = extract_features(ArrayDataset(gray_arrays), "pixels", device="cpu")
    pil = extract_features(PILDataset([Image.fromarray(a) for a in gray_arrays]), "pixels", image_size=16)
    assert pil.shape == (10, 3 * 256)   # RGB path: 3 identical channels → the same geometry
    np.testing.assert_allclose(arr @ arr.T, pil @ pil.T, atol=1e-5)
    # downscaling: torch's antialiased bilinear (array path) ≈ PIL's bilinear (file path)
    big = np.random.default_rng(1).integers(0, 256, (4, 40, 30), dtype=np.uint8)
    a = extract_features(ArrayDataset(big), "pixels", image_size=16)
    p = extract_features(PILDataset([Image.fromarray(b) for b in big]), "pixels", image_size=16)
    np.testing.assert_allclose(a @ a.T, p @ p.T, atol=2e-3)


def test_pixels_default_size_for_files_is_32() -> None:
    f = extract_features(PILDataset([Image.new("RGB", (50, 40), (10, 20, 30))] * 2), "pixels")
    assert f.shape == (2, 3 * 32 * 32)


def test_shorter_side_resize_then_centre_crop() -> None:
    img = np.zeros((1, 8, 16, 1), np.uint8)
    img[:, :, 4:12] = 255      # the centre 8×8 is white, the sides black
    x = to_model_input(torch.from_numpy(img), 8, (0.0,), (1.0,), keep_gray=True)
    assert x.shape == (1, 1, 8, 8) and bool((x == 1).all())
    f = extract_features(PILDataset([Image.fromarray(img[0, :, :, 0])]), "pixels", image_size=8)
    np.testing.assert_allclose(f, np.full((1, 192), 1 / np.sqrt(192)), atol=1e-6)
    img[:, :, 2:14] = 255      # downscaled to 4×8 (blurring edges by one pixel), the crop stays white
    x = to_model_input(torch.from_numpy(np.repeat(img, 3, axis=-1)), 4, (0.5,) * 3, (0.5,) * 3)
    assert x.shape == (1, 3, 4, 4) and torch.allclose(x, torch.ones_like(x))


def test_pca_reduces_and_is_seeded(gray_arrays: np.ndarray) -> None:
    ds = ArrayDataset(gray_arrays)
    f = extract_features(ds, "pixels", pca_dim=5, seed=3)
    assert f.shape == (10, 5)
    _unit(f)
    np.testing.assert_array_equal(f, extract_features(ds, "pixels", pca_dim=5, seed=3))
    with pytest.raises(ParameterError, match="pca_dim <= 10"):
        extract_features(ds, "pixels", pca_dim=11)
    with pytest.raises(ParameterError, match="pixels"):
        extract_features(ds, "efficientnet_lite0", pca_dim=5)


def test_lite0_shapes_on_array_dataset(gray_arrays: np.ndarray) -> None:
    f = extract_features(ArrayDataset(gray_arrays), "efficientnet_lite0", image_size=32, batch_size=4)
    assert f.shape == (10, 1280)
    _unit(f)


def test_progress_counts_sum_to_n(gray_arrays: np.ndarray) -> None:
    calls: list[tuple[int, int, float]] = []
    extract_features(ArrayDataset(gray_arrays), "pixels", batch_size=3, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == [3, 6, 9, 10] and all(c[1] == 10 and c[2] > 0 for c in calls)
    assert int(np.diff([0] + [c[0] for c in calls]).sum()) == 10


def test_should_stop_cancels(gray_arrays: np.ndarray) -> None:
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Cancelled, match="after 6 of 10") as e:
        extract_features(ArrayDataset(gray_arrays), "pixels", batch_size=3, should_stop=stop)
    assert isinstance(e.value, ClusterLensError)


def test_bad_inputs_say_what_to_do() -> None:
    with pytest.raises(DataError, match="no images"):
        extract_features(PILDataset([]), "pixels")

    class Broken(PILDataset):
        def load(self, i: int) -> Image.Image:
            raise OSError("truncated PNG")

    with pytest.raises(DataError, match="img0.png.*truncated PNG"):
        extract_features(Broken([Image.new("RGB", (8, 8))]), "pixels")
    with pytest.raises(ParameterError, match="between 8 and 1024"):
        extract_features(PILDataset([Image.new("RGB", (8, 8))]), "pixels", image_size=4)



def test_cancel_on_the_file_path_stops_the_decoder_thread() -> None:
    import threading

    seen: list[tuple[int, int, float]] = []
    ds = PILDataset([Image.new("RGB", (12, 12), (i, i, i)) for i in range(20)])
    with pytest.raises(Cancelled, match="after 4 of 20"):
        extract_features(ds, "pixels", image_size=8, batch_size=2, should_stop=lambda: len(seen) >= 2,
                         progress=lambda *a: seen.append(a))
    assert not [t for t in threading.enumerate() if t.name == "clusterlens-prefetch"]


def test_pad_rows_repeats_the_last_row_and_keeps_the_memory_format() -> None:
    from core.features.extract import pad_rows

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    p = pad_rows(x, 5)
    assert p.shape == (5, 3, 4, 4)
    assert torch.equal(p[:2], x) and all(torch.equal(p[i], x[1]) for i in range(2, 5))
    assert p.is_contiguous(memory_format=torch.channels_last)
    flat = torch.ones(3, 7)
    assert pad_rows(flat, 4).shape == (4, 7) and pad_rows(flat, 4).is_contiguous()
    assert pad_rows(flat, 2) is flat   # a full (or larger) batch is left alone


def test_forward_on_the_cpu_is_the_plain_fp32_model() -> None:
    from core.features.extract import forward

    model = torch.nn.Linear(4, 2)
    x = torch.randn(3, 4)
    f = forward(model, x)
    assert f.dtype == torch.float32 and torch.equal(f, model(x))
