import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from core.data.imageio import BadImageError, open_image, probe_image, to_rgb
from core.errors import DataError
from tests.data.conftest import big_png_bytes, noise_png, write_image

BIG_MSG = "image is 100.0 MP, over the 64 MP limit; raise CLUSTERLENS_MAX_PIXELS to allow it"


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def reason(src) -> str:
    with pytest.raises(BadImageError) as e:
        open_image(src)
    assert isinstance(e.value, DataError)
    return str(e.value)


def test_bad_inputs_give_short_reasons(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("hello, not a picture")
    trunc = noise_png(tmp_path / "t.png")
    trunc.write_bytes(trunc.read_bytes()[: trunc.stat().st_size // 2])
    assert reason(empty) == "zero-byte file"
    assert reason(b"") == "zero-byte file"
    assert reason(text) == "not an image (unrecognised format)"
    assert reason(trunc) == "truncated image data"
    assert reason(tmp_path / "missing.png") == "file not found"


def test_corrupt_pixel_data_is_reported(tmp_path):
    data = bytearray(noise_png(tmp_path / "c.png").read_bytes())
    data[100:140] = b"\0" * 40          # inside the IDAT stream
    assert reason(bytes(data)).startswith("corrupt image data")


def test_probe_image_fully_decodes(tmp_path):
    good = noise_png(tmp_path / "good.png")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(good.read_bytes()[:-200])   # header intact: only a full decode notices
    assert probe_image(good) is None
    assert probe_image(trunc) == "truncated image data"


def test_100_megapixel_image_refused_from_header():
    # Half the pixel data missing: refusing with the size (not "truncated") proves no decode happened.
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # PIL's DecompressionBombWarning must not leak out
        assert reason(big_png_bytes(10_000, 10_000, truncated=True)) == BIG_MSG
        assert reason(big_png_bytes(10_000, 10_000)) == BIG_MSG


def test_pixel_limit_env_override(monkeypatch):
    pil_limit = Image.MAX_IMAGE_PIXELS
    monkeypatch.setenv("CLUSTERLENS_MAX_PIXELS", "1000")
    assert reason(encode(Image.new("L", (40, 40)))) == (
        "image is 0.0016 MP, over the 0.001 MP limit; raise CLUSTERLENS_MAX_PIXELS to allow it")
    # Raised above PIL's own 89 MP guard: the header is accepted, so decoding is what fails here.
    monkeypatch.setenv("CLUSTERLENS_MAX_PIXELS", "150000000")
    assert reason(big_png_bytes(10_000, 10_000, truncated=True)) == "truncated image data"
    assert Image.MAX_IMAGE_PIXELS == pil_limit                 # PIL's global guard put back
    monkeypatch.setenv("CLUSTERLENS_MAX_PIXELS", "lots")
    with pytest.raises(DataError, match="CLUSTERLENS_MAX_PIXELS='lots' is not a number"):
        open_image(encode(Image.new("L", (4, 4))))


def test_exif_orientation_applied():
    im = Image.new("RGB", (2, 1))
    im.putpixel((0, 0), (255, 0, 0))
    im.putpixel((1, 0), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6                      # "rotate 90° clockwise to display"
    out = open_image(encode(im, "PNG", exif=exif))
    assert out.size == (1, 2)
    assert out.getpixel((0, 0)) == (255, 0, 0) and out.getpixel((0, 1)) == (0, 0, 255)
    jpeg = open_image(encode(Image.new("RGB", (2, 1), (128, 128, 128)), "JPEG", exif=exif))
    assert jpeg.size == (1, 2)


def pixels(im: Image.Image) -> list[tuple[int, int, int]]:
    assert im.mode == "RGB"
    return [tuple(p) for p in np.asarray(im).reshape(-1, 3).tolist()]


def test_grey_bilevel_and_alpha_modes_to_rgb():
    assert pixels(open_image(encode(Image.new("L", (1, 1), 100)))) == [(100, 100, 100)]
    assert pixels(open_image(encode(Image.new("1", (1, 1), 1)))) == [(255, 255, 255)]
    la = Image.new("LA", (3, 1))
    la.putdata([(100, 0), (100, 255), (100, 128)])
    got = pixels(open_image(encode(la)))
    assert got[:2] == [(255, 255, 255), (100, 100, 100)]          # transparent -> white
    assert all(abs(c - 177) <= 1 for c in got[2])                  # half-way blend on white
    rgba = Image.new("RGBA", (2, 1))
    rgba.putdata([(255, 0, 0, 0), (0, 0, 255, 255)])
    assert pixels(open_image(encode(rgba))) == [(255, 255, 255), (0, 0, 255)]


def test_palette_with_transparency_to_rgb():
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putdata([0, 1])
    assert pixels(open_image(encode(p, "PNG", transparency=0))) == [(255, 255, 255), (0, 255, 0)]
    assert pixels(open_image(encode(p, "GIF", transparency=0))) == [(255, 255, 255), (0, 255, 0)]
    assert pixels(open_image(encode(p))) == [(255, 0, 0), (0, 255, 0)]


def test_cmyk_to_rgb():
    cmyk = Image.new("CMYK", (2, 1))
    cmyk.putdata([(0, 0, 0, 0), (255, 0, 0, 0)])
    assert pixels(open_image(encode(cmyk, "TIFF"))) == [(255, 255, 255), (0, 255, 255)]


def test_16_bit_png_scaled_to_8_bit():
    a = np.array([[0, 257 * 10, 65535]], dtype=np.uint16)
    assert pixels(open_image(encode(Image.fromarray(a)))) == [(0, 0, 0), (10, 10, 10), (255, 255, 255)]


@pytest.mark.parametrize("mode, values, expected", [
    ("I", [0, 200, 255], [0, 200, 255]),                  # 8-bit values stored wide: unchanged
    ("I", [0, 257 * 100, 65535], [0, 100, 255]),          # 16-bit range
    ("I", [-100, 0, 100], [0, 128, 255]),                 # unknown range: stretched
    ("F", [0.0, 0.5, 1.0], [0, 128, 255]),                # unit floats
    ("F", [-1.0, 1.0, 3.0], [0, 128, 255]),               # unknown range: stretched
])
def test_wide_modes_scaled(mode, values, expected):
    dtype = np.int32 if mode == "I" else np.float32
    im = Image.fromarray(np.array([values], dtype=dtype), mode)
    assert [p[0] for p in pixels(to_rgb(im))] == expected
    assert all(p[0] == p[1] == p[2] for p in pixels(to_rgb(im)))


def test_float_tiff_roundtrip():
    im = Image.fromarray(np.array([[0.0, 1.0]], dtype=np.float32), "F")
    assert pixels(open_image(encode(im, "TIFF"))) == [(0, 0, 0), (255, 255, 255)]


def test_with_root_a_link_is_read_only_when_it_ends_inside(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_image(root / "a.png", (5, 6, 7))
    write_image(outside / "secret.png", (1, 2, 3))
    os.symlink("a.png", root / "in.png")
    os.symlink(outside / "secret.png", root / "out.png")
    os.symlink("gone.png", root / "dangling.png")
    os.symlink("loop.png", root / "loop.png")
    assert open_image(root / "in.png", root=root).getpixel((0, 0)) == (5, 6, 7)
    with pytest.raises(BadImageError) as e:
        open_image(root / "out.png", root=root)
    assert str(e.value) == ("a link pointing outside the folder (not read); copy what it points to into the "
                            "folder to use it")
    assert probe_image(root / "out.png", root=root) == str(e.value)
    assert reason_in(root, "dangling.png") == "a link to a file that does not exist; fix or remove the link"
    assert reason_in(root, "loop.png") == "a link that loops back on itself; remove the link"
    assert reason_in(root, "missing.png") == "file not found"
    assert open_image(root / "out.png").getpixel((0, 0)) == (1, 2, 3)     # no root: the caller's choice


def reason_in(root, name) -> str:
    with pytest.raises(BadImageError) as e:
        open_image(root / name, root=root)
    return str(e.value)
