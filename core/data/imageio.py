"""Safe image input: any common file or mode in, an upright RGB PIL image out, or a short reason.

Every image the engine sees goes through :func:`open_image`, so a hostile or broken file fails
here with a :class:`BadImageError` a person can read, never deep inside a model.
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import DataError

DEFAULT_MAX_PIXELS = 64_000_000
MAX_PIXELS_ENV = "CLUSTERLENS_MAX_PIXELS"

_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_PIL_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_PIL_LIMIT_LOCK = threading.Lock()

LINK_OUTSIDE = "a link pointing outside the folder (not read); copy what it points to into the folder to use it"
LINK_DANGLING = "a link to a file that does not exist; fix or remove the link"
LINK_LOOP = "a link that loops back on itself; remove the link"


class BadImageError(DataError):
    """A file cannot be used as an image; the message is a short human reason."""


def max_pixels() -> int:
    """The decompression-bomb limit: $CLUSTERLENS_MAX_PIXELS or 64 megapixels."""
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise DataError(f"{MAX_PIXELS_ENV}={raw!r} is not a number; give a pixel count such as 100000000") from None
    if value < 1:
        raise DataError(f"{MAX_PIXELS_ENV} must be a positive pixel count, got {raw!r}")
    return value


def _too_big(pixels: int | None, limit: int) -> BadImageError:
    mp = (pixels or 0) / 1e6
    size = (f"{mp:.1f} MP" if mp >= 0.1 else f"{mp:.2g} MP") if pixels else "too large"
    return BadImageError(
        f"image is {size}, over the {limit / 1e6:g} MP limit; raise {MAX_PIXELS_ENV} to allow it"
    )


@contextlib.contextmanager
def _pil_limit_at_least(limit: int) -> Iterator[None]:
    """Lift PIL's global bomb guard to ``limit`` for one open, when the user raised ours above it."""
    pil = Image.MAX_IMAGE_PIXELS
    if pil is None or limit <= pil:
        yield
        return
    with _PIL_LIMIT_LOCK:
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = pil


def _open_header(src: str | os.PathLike | io.BytesIO, limit: int) -> Image.Image:
    """Parse the header only (no pixel decoding) and enforce the pixel limit on it.

    PIL's own bomb warning is made an error too; our explicit size check below stands even where
    another thread's ``catch_warnings`` (not thread-safe before Python 3.14) swaps the filters.
    """
    with _pil_limit_at_least(limit), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": noise, not a reason to refuse
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(src)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            m = _PIL_BOMB_PIXELS.search(str(e))
            raise _too_big(int(m.group(1)) if m else None, limit) from None
    width, height = im.size
    if width * height > limit:
        im.close()
        raise _too_big(width * height, limit)
    return im


def inside_root(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    """The real path of ``path``, or :class:`BadImageError` when it cannot be followed or leaves ``root``.

    Checked when a folder is scanned and again at every load, so a file swapped for a link to
    somewhere else after the scan is refused rather than read.
    """
    try:
        real = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise BadImageError(LINK_DANGLING if Path(path).is_symlink() else "file not found") from None
    except RuntimeError:   # how Python < 3.13 reports a symlink loop
        raise BadImageError(LINK_LOOP) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadImageError(LINK_LOOP) from None
        raise BadImageError(f"cannot read file ({e.strerror or e})") from None
    if not real.is_relative_to(Path(root).resolve()):
        raise BadImageError(LINK_OUTSIDE)
    return real


def _reason(e: BaseException) -> str:
    """Map a decoder exception to a short reason a person can act on."""
    if isinstance(e, UnidentifiedImageError):
        return "not an image (unrecognised format)"
    if isinstance(e, MemoryError):
        return "image too large to decode (out of memory)"
    msg = str(e).strip()
    if isinstance(e, EOFError) or "truncated" in msg.lower():
        return "truncated image data"
    return f"corrupt image data ({msg or type(e).__name__})"


def _scale_to_u8(im: Image.Image) -> Image.Image:
    """I;16 / I / F -> L. 16-bit ranges map linearly; unknown ranges are stretched min..max."""
    a = np.nan_to_num(np.asarray(im, dtype=np.float64))
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if im.mode.startswith("I;16"):
        a = a / 257.0
    elif im.mode == "F" and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif lo >= 0 and hi <= 255:
        pass                                  # already 8-bit values stored wide
    elif im.mode == "I" and lo >= 0 and hi <= 65535:
        a = a / 257.0                         # how 16-bit PNG/TIFF often arrive
    else:
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
    return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited on white."""
    has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        out = Image.new("RGBA", im.size, (255, 255, 255, 255))
        out.alpha_composite(rgba)
        return out.convert("RGB")
    if im.mode in ("I", "F") or im.mode.startswith("I;16"):
        return _scale_to_u8(im).convert("RGB")
    if im.mode == "RGB":
        return im
    try:
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise BadImageError(f"unsupported colour mode {im.mode} ({e})") from None


def open_image(src: str | os.PathLike | bytes, *, limit: int | None = None,
               root: str | os.PathLike | None = None) -> Image.Image:
    """Decode ``src`` (a path or the file's bytes) fully into an upright RGB image.

    Raises :class:`BadImageError` for zero-byte, unreadable, non-image, truncated, corrupt or
    over-limit (``limit`` pixels, default :func:`max_pixels`) input, and, with ``root`` given, for
    a path that is (or passes through) a link ending outside ``root``.
    """
    limit = max_pixels() if limit is None else limit
    if isinstance(src, (bytes, bytearray, memoryview)):
        if len(src) == 0:
            raise BadImageError("zero-byte file")
        handle: str | os.PathLike | io.BytesIO = io.BytesIO(bytes(src))
    else:
        if root is not None:
            src = inside_root(src, root)   # read the checked target, not the link again
        handle = src
        try:
            if Path(src).stat().st_size == 0:
                raise BadImageError("zero-byte file")
        except FileNotFoundError:
            raise BadImageError("file not found") from None
        except OSError as e:
            raise BadImageError(f"cannot read file ({e.strerror or e})") from None
    try:
        im = _open_header(handle, limit)
    except BadImageError:
        raise
    except PermissionError:
        raise BadImageError("cannot read file (permission denied)") from None
    except IsADirectoryError:
        raise BadImageError("is a folder, not a file") from None
    except Exception as e:  # any decoder failure is a property of the file
        raise BadImageError(_reason(e)) from None
    with im:
        try:
            im.load()
            try:
                upright = ImageOps.exif_transpose(im)
            except Exception:  # broken EXIF only costs the orientation
                upright = im.copy()
            return to_rgb(upright)
        except BadImageError:
            raise
        except Exception as e:
            raise BadImageError(_reason(e)) from None


def probe_image(path: str | os.PathLike, *, limit: int | None = None,
                root: str | os.PathLike | None = None) -> str | None:
    """Why ``path`` cannot be used as an image (see :func:`open_image`), or None if it decodes fully."""
    try:
        open_image(path, limit=limit, root=root)
    except BadImageError as e:
        return str(e)
    return None
