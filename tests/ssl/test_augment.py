"""SSL batch augmentations keep shape, dtype and range, differ per sample, and are seeded."""
from __future__ import annotations

import pytest
import torch

from core.ssl.augment import (
    color_jitter,
    gaussian_blur,
    gentle_view,
    mild_view,
    random_grayscale,
    random_resized_crop,
    random_rotate,
    rotate_all,
    simclr_view,
)

AUGS = {
    "crop": lambda x, g: random_resized_crop(x, generator=g),
    "jitter": lambda x, g: color_jitter(x, generator=g),
    "gray": lambda x, g: random_grayscale(x, p=0.5, generator=g),
    "blur": lambda x, g: gaussian_blur(x, p=1.0, sigma=(20.0, 40.0), generator=g),
    "simclr": lambda x, g: simclr_view(x, generator=g, blur_p=0.5),
    "simclr_rot_noflip": lambda x, g: simclr_view(x, generator=g, hflip=False, degrees=20.0),
    "rotate": lambda x, g: random_rotate(x, degrees=30.0, generator=g),
    "gentle": lambda x, g: gentle_view(x, generator=g),
    "mild": lambda x, g: mild_view(x, generator=g),
}


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", list(AUGS))
def test_shape_dtype_range_and_seed(name, channels):
    x = torch.rand(6, channels, 16, 16, generator=torch.Generator().manual_seed(1))
    a = AUGS[name](x, torch.Generator().manual_seed(0))
    b = AUGS[name](x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)                       # same seed, same output
    if not (name == "gray" and channels == 1):
        assert not torch.allclose(a, x)


def test_crop_differs_per_sample():
    x = torch.rand(1, 3, 16, 16).repeat(8, 1, 1, 1)
    y = random_resized_crop(x, generator=torch.Generator().manual_seed(0))
    assert len({tuple(v.flatten()[:20].tolist()) for v in y}) == 8


def test_full_crop_without_flip_is_identity():
    x = torch.rand(4, 3, 12, 12)
    y = random_resized_crop(x, scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=False,
                            generator=torch.Generator().manual_seed(0))
    assert torch.allclose(y, x, atol=1e-5)


def test_rotate_all_targets_and_images():
    x = torch.arange(2 * 1 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    xr, t = rotate_all(x)
    assert xr.shape == (8, 1, 3, 3) and t.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert torch.equal(xr[6], torch.rot90(x[0], 3, dims=(1, 2)))
    with pytest.raises(ValueError):
        rotate_all(torch.zeros(1, 1, 3, 4))


def test_rotate_zero_degrees_is_identity():
    x = torch.rand(4, 3, 12, 12)
    assert torch.allclose(random_rotate(x, degrees=0.0, generator=torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_rotate_turns_a_bar():
    x = torch.zeros(1, 1, 17, 17)
    x[..., 8, 2:15] = 1.0   # a horizontal bar through the centre
    y = random_rotate(x.repeat(16, 1, 1, 1), degrees=45.0, generator=torch.Generator().manual_seed(0))
    off_row = y[..., :8, :].sum((1, 2, 3)) + y[..., 9:, :].sum((1, 2, 3))
    assert (off_row > 0.5).float().mean() > 0.5    # most copies left the centre row


def test_gentle_view_never_mirrors():
    """A left-heavy image stays left-heavy (SimCLR's standard view flips about half of them)."""
    x = torch.zeros(64, 1, 16, 16)
    x[..., 2:14, 1:6] = 1.0
    g = gentle_view(x, generator=torch.Generator().manual_seed(0))
    s = simclr_view(x, generator=torch.Generator().manual_seed(0), crop_scale=(0.5, 1.0))

    def left_heavy(v: torch.Tensor) -> torch.Tensor:
        return v[..., :8].sum((1, 2, 3)) > v[..., 8:].sum((1, 2, 3))

    assert bool(left_heavy(g).all())
    assert 0.2 < float(left_heavy(s).float().mean()) < 0.8


def test_mild_view_keeps_the_whole_object_and_mirrors():
    """Crops of 70-100 % of the area never cut a centred 8 px object off a 28 px image (standard
    20 %-area crops do), and about half the views are mirrored."""
    x = torch.zeros(64, 1, 28, 28)
    x[..., 10:18, 10:13] = 1.0          # left-heavy object in the centre
    m = mild_view(x, generator=torch.Generator().manual_seed(0), jitter=0.0)
    s = simclr_view(x, generator=torch.Generator().manual_seed(0), jitter=0.0)

    def border(v: torch.Tensor) -> torch.Tensor:
        return torch.cat([v[..., 0, :], v[..., -1, :], v[..., :, 0], v[..., :, -1]], -1).sum((1, 2))

    assert float(border(m).max()) == 0.0                           # the object stays inside the view
    assert bool((m.sum((1, 2, 3)) >= 0.95 * x[0].sum()).all())     # and whole (a crop only zooms in)
    assert float((border(s) > 0).float().mean()) > 0.1            # standard 20 %-area crops cut some off
    left = m[..., :14].sum((1, 2, 3)) > m[..., 14:].sum((1, 2, 3))
    assert 0.2 < float(left.float().mean()) < 0.8
