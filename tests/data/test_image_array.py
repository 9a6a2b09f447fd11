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
    assert images_as_array(ds, 4) is grey
    small = images_as_array(ds, 2)
    assert small.shape == (2, 2, 2) and small.dtype == np.uint8
    flat = make_array_dataset("f", np.full((1, 4, 4, 3), 9, np.uint8), None, None, [("all", 1)])
    assert images_as_array(flat, 8).tolist() == np.full((1, 8, 8, 3), 9).tolist()
    with pytest.raises(ParameterError):
        images_as_array(ds, 0)


def test_folder_images_loaded_and_resized(tmp_path):
    write_image(tmp_path / "a.png", (10, 20, 30), size=(6, 4))
    write_image(tmp_path / "b.png", (200, 200, 200), size=(3, 9))
    arr = images_as_array(open_folder(tmp_path), 5)
    assert arr.shape == (2, 5, 5, 3) and arr[0, 2, 2].tolist() == [10, 20, 30]
    assert arr[1].min() == arr[1].max() == 200
