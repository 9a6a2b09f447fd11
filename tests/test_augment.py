"""core.augment: shapes, ranges, per-sample randomness, seeding, identity at strength 0."""
from __future__ import annotations

import pytest
import torch

from core.augment import color_jitter, cutout, random_affine, strong_augment, weak_augment


def _batch(n: int = 8, c: int = 3, h: int = 16, w: int = 16) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, c, h, w, generator=g)


def _gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("fn", [weak_augment, strong_augment])
@pytest.mark.parametrize("shape", [(8, 3, 16, 16), (5, 1, 8, 8), (4, 3, 20, 12)])
def test_shape_dtype_range_preserved(fn, shape):
    x = torch.rand(*shape, generator=_gen(0))
    y = fn(x, generator=_gen())
    assert y.shape == x.shape and y.dtype == x.dtype and y.device == x.device
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_same_seed_same_result_and_different_seed_differs():
    x = _batch()
    a = strong_augment(x, generator=_gen(3))
    b = strong_augment(x, generator=_gen(3))
    c = strong_augment(x, generator=_gen(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_parameters_differ_per_sample():
    # the same image repeated must come out transformed differently (per-sample, not per-batch)
    x = _batch(1).repeat(16, 1, 1, 1)
    y = random_affine(x, degrees=30, translate=0.2, scale=(0.8, 1.2), hflip=True, generator=_gen())
    flat = y.flatten(1)
    assert torch.unique(flat, dim=0).shape[0] == 16


def test_identity_without_randomness():
    x = _batch()
    y = random_affine(x, degrees=0, translate=0, scale=(1, 1), hflip=False, generator=_gen())
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    # weak shift snaps to whole pixels: every output pixel is an input pixel or the 0 border
    z = weak_augment(x, generator=_gen(), hflip=False)
    assert bool(torch.isin(z, torch.cat([x.flatten(), torch.zeros(1)])).all())


def test_hflip_only_mirrors():
    x = _batch(64)
    y = random_affine(x, degrees=0, translate=0, hflip=True, generator=_gen())
    flipped = torch.isclose(y, x.flip(-1), atol=1e-5).flatten(1).all(1)
    same = torch.isclose(y, x, atol=1e-5).flatten(1).all(1)
    assert bool((flipped | same).all()) and 10 < int(flipped.sum()) < 54


def test_jitter_and_cutout_ranges():
    x = _batch()
    assert 0 <= float(color_jitter(x, brightness=0.9, contrast=0.9, generator=_gen()).min())
    y = cutout(x, size=0.5, generator=_gen())
    assert y.shape == x.shape and float(y.max()) <= 1.0
    assert bool(((y == 0.5).flatten(1).sum(1) > 0).all())


def test_integer_input_rejected():
    with pytest.raises(ValueError, match="float"):
        weak_augment(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), generator=_gen())
