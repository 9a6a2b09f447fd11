"""Small image factories for the data tests (tiny files, written fast)."""
from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_image(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (6, 4),
                fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, fmt)
    return path


def noise_png(path: Path, seed: int = 0, size: int = 32) -> Path:
    """A PNG too random to compress: truncating it really cuts pixel data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def big_png_bytes(width: int, height: int, truncated: bool = False) -> bytes:
    """A valid 1-bit PNG of width×height, all black, built by hand so it costs ~kilobytes.

    ``truncated`` cuts the file half-way through its pixel data (the header stays true).
    """
    row = b"\x00" + b"\x00" * ((width + 7) // 8)          # filter byte + packed bits
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")
    return data[: len(data) // 2] if truncated else data


def png_header_bytes(width: int, height: int) -> bytes:
    """A PNG that only declares width×height RGB (no pixel data): a decompression bomb's header."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IEND", b"")


@dataclass
class HostileFolder:
    root: Path                  # the folder to open
    outside: Path               # a folder next to it that links point into
    kept: list[str]             # ids open_folder must keep, in order
    skipped: dict[str, str]     # id -> reason for every entry it must list
    secret: bytes               # the bytes of the outside file a link points at: never to be read


LATIN1_NAME = b"caf\xe9_latin1.png"      # not UTF-8: a file name from an old Windows / latin-1 system


def make_hostile_folder(base: Path) -> HostileFolder:
    """Every kind of file a real folder of images can hold, good and bad, under ``base/hostile``.

    Good: an RGB PNG, RGBA PNG, palette GIF, EXIF-rotated JPEG (stored 24×12, upright 12×24),
    CMYK JPEG, 16-bit PNG, an image in a sub-folder and a link to a file inside the folder.
    Bad: zero bytes, truncated, text named .png, a 30000×30000 header, a non-UTF-8 file and folder
    name, a link to itself, dangling and outside links (file and folder), a folder link cycle, a
    pipe, a text file. Hidden: a dot-file and a dot-folder (neither kept nor listed).
    """
    root, outside = base / "hostile", base / "outside"
    outside.mkdir(parents=True)
    write_image(outside / "secret.png", (1, 2, 3))            # an image: the old code happily showed it
    (outside / "more.png").write_bytes((outside / "secret.png").read_bytes())

    write_image(root / "plain.png", (200, 30, 30), (16, 16))
    rgba = Image.new("RGBA", (16, 16), (0, 0, 255, 255))
    rgba.paste((255, 0, 0, 0), (0, 0, 8, 16))                 # left half fully transparent
    rgba.save(root / "rgba.png")
    pal = Image.new("P", (16, 16))
    pal.putpalette([0, 200, 0, 250, 250, 0] + [0] * 762)
    pal.paste(1, (0, 0, 16, 8))
    pal.save(root / "palette.gif")
    exif = Image.Exif()
    exif[0x0112] = 6                                         # "rotate 90° clockwise to display"
    Image.new("RGB", (24, 12), (90, 90, 90)).save(root / "exif_rotated.jpg", "JPEG", exif=exif)
    Image.new("CMYK", (16, 16), (0, 0, 0, 0)).save(root / "cmyk.jpg", "JPEG", quality=95)
    Image.fromarray(np.full((16, 16), 257 * 100, dtype=np.uint16)).save(root / "sixteen_bit.png")
    write_image(root / "sub" / "nested.png", (10, 10, 200), (16, 16))
    os.symlink("plain.png", root / "inside_link.png")         # stays inside: fine

    (root / "zero.png").write_bytes(b"")
    trunc = noise_png(root / "truncated.png")
    trunc.write_bytes(trunc.read_bytes()[:-300])
    (root / "notes.png").write_text("hello, not a picture")
    (root / "bomb.png").write_bytes(png_header_bytes(30_000, 30_000))
    (root / "readme.txt").write_text("a text file")
    with open(os.path.join(os.fsencode(root), LATIN1_NAME), "wb") as f:
        f.write((root / "plain.png").read_bytes())           # a good image: only its name is bad
    latin1_dir = os.path.join(os.fsencode(root), b"d\xe9j\xe0")
    os.mkdir(latin1_dir)
    write_image(Path(os.fsdecode(latin1_dir)) / "in_latin1_folder.png")
    os.symlink("loop.png", root / "loop.png")                  # a link to itself
    os.symlink("nowhere.png", root / "dangling.png")
    os.symlink(outside / "secret.png", root / "outside.png")   # absolute link out
    os.symlink("../outside", root / "outside_dir")              # relative folder link out
    os.symlink("..", root / "sub" / "up")                       # folder cycle: sub/up/sub/up/...
    os.mkfifo(root / "pipe.png")                                # hashing it would block forever
    write_image(root / ".hidden.png")
    write_image(root / ".cache" / "x.png")

    outside_reason = "a link pointing outside the folder (not read); copy what it points to into the folder to use it"
    return HostileFolder(
        root=root, outside=outside,
        kept=["cmyk.jpg", "exif_rotated.jpg", "inside_link.png", "palette.gif", "plain.png", "rgba.png",
              "sixteen_bit.png", "sub/nested.png"],
        skipped={
            "bomb.png": "image is 900.0 MP, over the 64 MP limit; raise CLUSTERLENS_MAX_PIXELS to allow it",
            "caf\\xe9_latin1.png": "file name is not valid UTF-8; rename it",
            "d\\xe9j\\xe0": "folder name is not valid UTF-8 (its files were not read); rename it",
            "dangling.png": "a link to a file that does not exist; fix or remove the link",
            "loop.png": "a link that loops back on itself; remove the link",
            "notes.png": "not an image (unrecognised format)",
            "outside.png": outside_reason,
            "outside_dir": outside_reason,
            "pipe.png": "not a regular file (a pipe, socket or device)",
            "readme.txt": "not an image (unsupported file type)",
            "sub/up": "a link to a folder inside this one (not followed, so nothing is read twice)",
            "truncated.png": "truncated image data",
            "zero.png": "zero-byte file",
        },
        secret=(outside / "secret.png").read_bytes(),
    )


@pytest.fixture
def hostile(tmp_path: Path) -> HostileFolder:
    return make_hostile_folder(tmp_path)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws
