import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.data.zipdata as zipdata
from core.data.base import SkippedFile
from core.data.zipdata import ZipLimits, extract_zip, open_zip
from core.errors import DataError


def png(color=(10, 20, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (5, 5), color).save(buf, "PNG")
    return buf.getvalue()


def make_zip(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED,
             infos: list[zipfile.ZipInfo] = ()) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for info in infos:
            zf.writestr(info, b"target")
    return path


def tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_zip_opens_as_folder_with_classes_and_is_reused(tmp_path, workspace, monkeypatch):
    archive = make_zip(tmp_path / "pets.zip", {
        "pets/cat/1.png": png((1, 1, 1)), "pets/cat/2.png": png((2, 2, 2)), "pets/dog/1.png": png((3, 3, 3)),
        "pets/notes.txt": b"hi", "__MACOSX/pets/._1.png": b"fork", "pets/.DS_Store": b"x",
    })
    ds = open_zip(archive, workspace=workspace)
    assert ds.name == "pets"
    assert ds.ids == ["cat/1.png", "cat/2.png", "dog/1.png"]
    assert ds.class_names == ["cat", "dog"] and ds.labels.tolist() == [0, 0, 1]
    assert [s.id for s in ds.skipped] == ["notes.txt"]
    [extracted] = (workspace / "datasets").iterdir()
    assert extracted.name.startswith("zip-") and Path(ds.root).is_relative_to(extracted)
    assert "__MACOSX" not in tree(extracted) and ds.load(2).getpixel((0, 0)) == (3, 3, 3)

    calls = []
    real = zipdata._extract
    monkeypatch.setattr(zipdata, "_extract", lambda *a: calls.append(1) or real(*a))
    again = open_zip(archive, workspace=workspace)
    assert calls == [] and again.fingerprint == ds.fingerprint   # same content hash: same folder


def assert_rejected(archive: Path, workspace: Path, match: str, limits: ZipLimits | None = None) -> None:
    before = tree(archive.parent)
    with pytest.raises(DataError, match=match):
        open_zip(archive, workspace=workspace, limits=limits or ZipLimits())
    assert tree(archive.parent) == before                     # nothing written anywhere, even inside


def test_parent_dir_member_rejected(tmp_path, workspace):
    archive = make_zip(tmp_path / "evil.zip", {"ok.png": png(), "../escape.png": png(), "a/../../b.png": png()})
    assert_rejected(archive, workspace, r"unsafe: member '\.\./escape\.png' points outside")
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "b.png").exists()


@pytest.mark.parametrize("name", ["/tmp/abs.png", "C:/win.png", "\\\\server\\x.png"])
def test_absolute_member_rejected(tmp_path, workspace, name):
    archive = make_zip(tmp_path / "abs.zip", {"ok.png": png(), name: png()})
    assert_rejected(archive, workspace, "absolute path")


def test_symlink_member_rejected(tmp_path, workspace):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = make_zip(tmp_path / "link.zip", {"ok.png": png()}, infos=[link])
    assert_rejected(archive, workspace, "symbolic link")


def test_too_many_members(tmp_path, workspace):
    archive = make_zip(tmp_path / "many.zip", {f"{i}.png": png() for i in range(5)})
    assert_rejected(archive, workspace, "5 members, over the limit of 4", ZipLimits(max_members=4))


def test_zip_bomb_ratio_and_total_size(tmp_path, workspace):
    archive = make_zip(tmp_path / "bomb.zip", {"ok.png": png(), "zeros.bmp": bytes(4 << 20)})
    assert_rejected(archive, workspace, r"looks like a zip bomb: 'zeros\.bmp' expands \d+x \(limit 100x\)",
                    ZipLimits(max_ratio=100, ratio_min_bytes=1 << 20))
    noise = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    big = make_zip(tmp_path / "big.zip", {"noise.tif": noise})
    assert_rejected(big, workspace, r"expands to 3\.1 MB, over the 2\.1 MB limit",
                    ZipLimits(max_total_bytes=2 << 20))


def test_failure_mid_extraction_leaves_nothing(tmp_path, workspace):
    archive = make_zip(tmp_path / "crc.zip", {"a.png": png(), "b.png": png((9, 9, 9))}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    second = data.rfind(png((9, 9, 9))[40:60])                # inside b.png's stored bytes
    data[second] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged or unsupported zip archive"):
        open_zip(archive, workspace=workspace)
    assert list((workspace / "datasets").iterdir()) == []   # no zip-*, no .tmp-zip-*


def test_not_a_zip(tmp_path, workspace):
    fake = tmp_path / "photos.zip"
    fake.write_bytes(png())
    with pytest.raises(DataError, match="photos.zip is not a zip archive"):
        extract_zip(fake, workspace / "datasets")
    assert not (workspace / "datasets").exists()


def test_zip_without_images_names_the_archive(tmp_path, workspace):
    archive = make_zip(tmp_path / "docs.zip", {"docs/a.txt": b"a", "docs/b.txt": b"b"})
    with pytest.raises(DataError, match=r"no usable images in docs\.zip: 2 file\(s\) skipped"):
        open_zip(archive, workspace=workspace)


# -- issue 25: bombs made of many small members, lying sizes, non-images never written -------

def written_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def test_many_members_each_under_16_mb_with_a_huge_ratio_are_refused_before_writing(tmp_path, workspace):
    # the shape (70 x 15 MB of zeros in 1 MB), scaled down: 40 x 2 MB of zeros in ~80 kB
    zeros = bytes(2 << 20)
    archive = make_zip(tmp_path / "bomb.zip", {"ok.png": png(), **{f"img{i:02d}.png": zeros for i in range(40)}})
    assert archive.stat().st_size < 200_000
    with pytest.raises(DataError, match=r"bomb\.zip looks like a zip bomb: 'img00\.png' expands \d{3,}x "
                                        r"\(limit 200x\) to 2\.1 MB; nothing was extracted"):
        open_zip(archive, workspace=workspace)
    assert written_bytes(workspace) < 1 << 20
    assert not (workspace / "datasets").exists()          # refused before the first write


def test_archive_whose_total_ratio_is_a_bomb_is_refused(tmp_path, workspace):
    # each member is under the 1 MB a single member needs before its ratio counts; together they are not
    archive = make_zip(tmp_path / "many.zip", {f"m{i:02d}.bmp": bytes(512 << 10) for i in range(64)})
    with pytest.raises(DataError, match=r"many\.zip looks like a zip bomb: the whole archive \(\d+ kB\) expands "
                                        r"\d{3,}x \(limit 200x\) to 33\.6 MB"):
        open_zip(archive, workspace=workspace)
    assert written_bytes(workspace) == 0


def lie_about_size(path: Path, member: str, declared: int) -> None:
    """Make ``member`` declare ``declared`` bytes (both headers), with the CRC of its first ``declared``
    bytes: zipfile then reads just that much and finds nothing wrong."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        crc = zlib.crc32(zf.read(member)[:declared])
    data = bytearray(path.read_bytes())
    local = info.header_offset
    struct.pack_into("<I", data, local + 14, crc)
    struct.pack_into("<I", data, local + 22, declared)
    central = data.find(b"PK\x01\x02" + data[local + 4:local + 6])   # first central entry ...
    while data[central + 46:central + 46 + len(member)] != member.encode():
        central = data.find(b"PK\x01\x02", central + 4)              # ... until ours
    struct.pack_into("<I", data, central + 16, crc)
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))


def test_member_holding_more_than_it_declares_is_refused_and_nothing_kept(tmp_path, workspace):
    archive = make_zip(tmp_path / "liar.zip", {"ok.png": png(), "big.png": png() + bytes(4 << 20)})
    lie_about_size(archive, "big.png", 1000)
    with zipfile.ZipFile(archive) as zf:
        assert zf.getinfo("big.png").file_size == 1000 and len(zf.read("big.png")) == 1000   # zipfile is fooled
    with pytest.raises(DataError, match=r"liar\.zip is damaged or crafted: member 'big\.png' holds more than "
                                        r"the 1,000 bytes it declares; nothing was kept"):
        open_zip(archive, workspace=workspace)
    assert list((workspace / "datasets").iterdir()) == []   # no zip-*, no .tmp-zip-*


def test_non_image_members_are_listed_as_skipped_but_never_written(tmp_path, workspace, monkeypatch):
    archive = make_zip(tmp_path / "shots.zip", {
        "shots/cats/1.png": png((1, 1, 1)), "shots/cats/2.png": png((2, 2, 2)), "shots/dogs/1.png": png((3, 3, 3)),
        "shots/README.txt": b"about these photos" * 1000, "shots/.DS_Store": b"\0" * 100,
    })
    ds = open_zip(archive, workspace=workspace)
    assert ds.ids == ["cats/1.png", "cats/2.png", "dogs/1.png"] and ds.class_names == ["cats", "dogs"]
    assert ds.skipped == [SkippedFile("README.txt", "not an image (unsupported file type)")]
    [extracted] = (workspace / "datasets").iterdir()
    assert tree(extracted) == {"shots", "shots/cats", "shots/cats/1.png", "shots/cats/2.png", "shots/dogs",
                               "shots/dogs/1.png", ".clusterlens-zip.json"}   # no README.txt, no .DS_Store
    assert ds.load(2).getpixel((0, 0)) == (3, 3, 3)

    calls = []
    real = zipdata._extract
    monkeypatch.setattr(zipdata, "_extract", lambda *a: calls.append(1) or real(*a))
    again = open_zip(archive, workspace=workspace)   # re-used: the skipped list comes from the record
    assert calls == [] and again.skipped == ds.skipped and again.ids == ds.ids


def test_a_non_image_beside_the_top_folder_keeps_it_as_before(tmp_path, workspace):
    # README.txt is not written, yet the top folder is not unwrapped: ids are as they always were
    archive = make_zip(tmp_path / "pets.zip", {"pets/cat/1.png": png((1, 1, 1)), "pets/dog/1.png": png((2, 2, 2)),
                                               "README.txt": b"hi"})
    ds = open_zip(archive, workspace=workspace)
    assert ds.ids == ["pets/cat/1.png", "pets/dog/1.png"]
    assert [(s.id, s.reason) for s in ds.skipped] == [("README.txt", "not an image (unsupported file type)")]
    assert not list((workspace / "datasets").rglob("README.txt"))


def test_real_image_archives_pass_the_default_limits(tmp_path, workspace):
    # photos (PNG ~1x), a flat-ish scan as BMP (tens of x) and a small flat TIFF (under 1 MB: never judged)
    rng = np.random.default_rng(0)
    photo = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(photo, "PNG")
    scan = np.full((1200, 900), 235, np.uint8)                 # 1.1 MB as BMP: over the size judged alone
    scan[::40, 100:800] = 20                                   # lines of "text"
    specks = rng.random(scan.shape) < 0.002                    # dust: ~95x deflated, near the flat end
    scan[specks] = rng.integers(0, 256, specks.sum())
    bmp, tif = io.BytesIO(), io.BytesIO()
    Image.fromarray(scan).save(bmp, "BMP")
    Image.new("RGB", (400, 400), (250, 250, 250)).save(tif, "TIFF")
    archive = make_zip(tmp_path / "real.zip", {"a/photo.png": photo.getvalue(), "a/scan.bmp": bmp.getvalue(),
                                               "b/flat.tif": tif.getvalue()})
    with zipfile.ZipFile(archive) as zf:
        scan_info = zf.getinfo("a/scan.bmp")
    assert scan_info.file_size > 1 << 20 and 50 < scan_info.file_size / scan_info.compress_size < 200
    ds = open_zip(archive, workspace=workspace)
    assert ds.ids == ["a/photo.png", "a/scan.bmp", "b/flat.tif"] and ds.skipped == []
