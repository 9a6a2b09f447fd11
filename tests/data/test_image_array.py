import numpy as np
import pytest

from core.data.arrays import make_array_dataset
from core.data.folder import open_folder
from core.data.image_array import images_as_array
from core.errors import ParameterError
from tests.data.conftest import write_image


def test_native_size_returned_as_is_and_resized_otherwise():
    grey = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    ds = make_array_dataset("g", grey, None, None, [("all", 2)])
    same = images_as_array(ds, 4)                      # (N, C, S, S); grey stays one channel
    assert same.shape == (2, 1, 4, 4) and np.array_equal(same[:, 0], grey)
    small = images_as_array(ds, 2)
    assert small.shape == (2, 1, 2, 2) and small.dtype == np.uint8
    colour = np.broadcast_to(np.array([9, 50, 200], np.uint8), (1, 4, 4, 3)).copy()
    flat = make_array_dataset("f", colour, None, None, [("all", 1)])
    out = images_as_array(flat, 8)                     # colour → 3 channels, channels first
    assert out.shape == (1, 3, 8, 8) and out[0, :, 3, 3].tolist() == [9, 50, 200]
    with pytest.raises(ParameterError):
        images_as_array(ds, 0)


def test_folder_images_loaded_and_resized(tmp_path):
    write_image(tmp_path / "a.png", (10, 20, 30), size=(6, 4))
    write_image(tmp_path / "b.png", (200, 200, 200), size=(3, 9))
    arr = images_as_array(open_folder(tmp_path), 5)
    assert arr.shape == (2, 3, 5, 5) and arr[0, :, 2, 2].tolist() == [10, 20, 30]
    assert arr[1].min() == arr[1].max() == 200
