import io
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core.data.zipdata as zipdata
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
