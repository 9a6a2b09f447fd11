"""A folder holding every kind of bad file: each is listed with its reason, the good ones are read."""
import os
from pathlib import Path

import pytest

import core.data.folder as folder_mod
import core.data.manifest as manifest_mod
from core.data.folder import open_folder
from core.data.imageio import BadImageError
from core.errors import DataError
from tests.data.conftest import write_image

OUTSIDE = "a link pointing outside the folder (not read); copy what it points to into the folder to use it"


def record_paths(monkeypatch, module, name) -> list[Path]:
    """Every path ``module.name`` (a function taking a path first) is called with."""
    calls: list[Path] = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda p, *a, **k: calls.append(Path(p)) or real(p, *a, **k))
    return calls


def test_every_bad_entry_listed_with_its_reason_and_the_good_ones_kept(hostile, monkeypatch):
    hashed = record_paths(monkeypatch, manifest_mod, "file_hash")
    probed = record_paths(monkeypatch, folder_mod, "probe_image")
    ds = open_folder(hostile.root)
    assert ds.ids == hostile.kept
    assert [(s.id, s.reason) for s in ds.skipped] == sorted(hostile.skipped.items())
    assert ds.duplicates == [["inside_link.png", "plain.png"]]     # the inside link is the same file
    # Refused entries are never read: only kept image names (and the two bad-content files) are opened.
    read = {p.relative_to(hostile.root).as_posix() for p in hashed + probed}
    assert read == set(hostile.kept) | {"zero.png", "truncated.png", "notes.png", "bomb.png"}
    assert all(p.resolve().is_relative_to(hostile.root.resolve()) for p in hashed + probed)


def _latin1(root: Path, outside: Path) -> None:
    with open(os.path.join(os.fsencode(root), b"caf\xe9_latin1.png"), "wb") as f:
        f.write((root / "good.png").read_bytes())


ALONE = {   # each hostile entry on its own beside one good image: what the old code got wrong, one by one
    "outside.png": (lambda root, out: os.symlink(out / "secret.png", root / "outside.png"), OUTSIDE),
    "outside_dir": (lambda root, out: os.symlink(out, root / "outside_dir"), OUTSIDE),
    "loop.png": (lambda root, out: os.symlink("loop.png", root / "loop.png"),
                 "a link that loops back on itself; remove the link"),
    "loop": (lambda root, out: os.symlink("loop", root / "loop"), "a link that loops back on itself; remove the link"),
    "dangling.png": (lambda root, out: os.symlink("gone.png", root / "dangling.png"),
                     "a link to a file that does not exist; fix or remove the link"),
    "up": (lambda root, out: os.symlink(".", root / "up"),
           "a link to a folder inside this one (not followed, so nothing is read twice)"),
    "pipe.png": (lambda root, out: os.mkfifo(root / "pipe.png"), "not a regular file (a pipe, socket or device)"),
    "caf\\xe9_latin1.png": (_latin1, "file name is not valid UTF-8; rename it"),
}


@pytest.mark.parametrize("id_", list(ALONE))
def test_each_hostile_entry_alone_is_listed_and_never_read(tmp_path, id_, monkeypatch):
    root, outside = tmp_path / "root", tmp_path / "outside"
    write_image(root / "good.png")
    write_image(outside / "secret.png", (1, 2, 3))
    make, reason = ALONE[id_]
    make(root, outside)
    hashed = record_paths(monkeypatch, manifest_mod, "file_hash")
    ds = open_folder(root)
    assert ds.ids == ["good.png"]
    assert [(s.id, s.reason) for s in ds.skipped] == [(id_, reason)]
    assert [p.name for p in hashed] == ["good.png"]


def test_a_cached_rescan_gives_the_same_answer(hostile, tmp_path):
    first = open_folder(hostile.root, cache_dir=tmp_path / "manifests")
    again = open_folder(hostile.root, cache_dir=tmp_path / "manifests")
    assert again.ids == first.ids == hostile.kept and again.skipped == first.skipped
    assert again.fingerprint == first.fingerprint


def pixel(ds, id_: str, xy: tuple[int, int]) -> tuple[int, int, int]:
    img = ds.load(ds.ids.index(id_))
    assert img.mode == "RGB"
    return img.getpixel(xy)


def test_good_images_load_upright_as_rgb(hostile):
    ds = open_folder(hostile.root)
    sizes = {i: ds.load(n).size for n, i in enumerate(ds.ids)}
    assert sizes["exif_rotated.jpg"] == (12, 24)                  # stored 24×12 with "rotate 90°"
    assert {s for i, s in sizes.items() if i != "exif_rotated.jpg"} == {(16, 16)}
    assert pixel(ds, "sixteen_bit.png", (3, 3)) == (100, 100, 100)   # 257*100 of 65535
    assert pixel(ds, "rgba.png", (2, 2)) == (255, 255, 255)       # transparent half on white
    assert pixel(ds, "rgba.png", (12, 2)) == (0, 0, 255)
    assert pixel(ds, "palette.gif", (2, 2)) == (250, 250, 0) and pixel(ds, "palette.gif", (2, 12)) == (0, 200, 0)
    assert all(c >= 250 for c in pixel(ds, "cmyk.jpg", (8, 8)))   # CMYK (0,0,0,0) is white paper
    assert pixel(ds, "inside_link.png", (0, 0)) == pixel(ds, "plain.png", (0, 0)) == (200, 30, 30)


def test_a_file_swapped_for_an_outside_link_after_the_scan_is_refused_at_load(hostile):
    ds = open_folder(hostile.root)
    i = ds.ids.index("plain.png")
    (hostile.root / "plain.png").unlink()
    os.symlink(hostile.outside / "secret.png", hostile.root / "plain.png")
    with pytest.raises(BadImageError, match=r"^a link pointing outside the folder \(not read\)") as e:
        ds.load(i)
    assert isinstance(e.value, DataError)
    # A folder on the way swapped for a link out is refused the same way.
    j = ds.ids.index("sub/nested.png")
    os.rename(hostile.root / "sub", hostile.root / "sub.old")
    write_image(hostile.outside / "nested.png")
    os.symlink(hostile.outside, hostile.root / "sub")
    with pytest.raises(BadImageError) as e:
        ds.load(j)
    assert str(e.value) == OUTSIDE


def test_a_file_swapped_for_a_link_inside_the_folder_still_loads(hostile):
    ds = open_folder(hostile.root)
    i = ds.ids.index("rgba.png")
    (hostile.root / "rgba.png").unlink()
    os.symlink("sub/nested.png", hostile.root / "rgba.png")
    assert ds.load(i).getpixel((0, 0)) == (10, 10, 200)


def test_a_file_that_cannot_be_read_is_listed_and_the_scan_goes_on(tmp_path, monkeypatch):
    for n in range(3):
        write_image(tmp_path / f"{n}.png", (n, n, n))
    real = manifest_mod.file_hash

    def hash_or_refuse(p, *a, **k):
        if Path(p).name == "1.png":
            raise PermissionError(13, "Permission denied", str(p))
        return real(p, *a, **k)

    monkeypatch.setattr(manifest_mod, "file_hash", hash_or_refuse)   # tests run as root: chmod won't do
    ds = open_folder(tmp_path)
    assert ds.ids == ["0.png", "2.png"]
    assert [(s.id, s.reason) for s in ds.skipped] == [("1.png", "cannot read file (permission denied)")]


def test_a_sub_folder_that_cannot_be_listed_is_reported(tmp_path, monkeypatch):
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "locked" / "b.png")
    real = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(folder_mod.os, "scandir", scandir)
    ds = open_folder(tmp_path)
    assert ds.ids == ["a.png"]
    assert [(s.id, s.reason) for s in ds.skipped] == [
        ("locked", "cannot read folder (Permission denied); its files were not read")]


def test_only_bad_names_says_how_many_were_skipped(tmp_path):
    with open(os.path.join(os.fsencode(tmp_path), b"\xff.png"), "wb") as f:
        f.write(b"whatever")
    with pytest.raises(DataError) as e:
        open_folder(tmp_path)
    assert f"no usable images in {tmp_path.resolve()}: 1 file(s) skipped (1 file name is not valid UTF-8; " \
           "rename it)" in str(e.value)


def test_a_folder_path_that_is_not_utf8_is_refused_with_a_clear_message(tmp_path):
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(odd)
    write_image(Path(os.fsdecode(odd)) / "a.png")
    with pytest.raises(DataError) as e:
        open_folder(os.fsdecode(odd))
    assert str(e.value) == (f"the folder path {tmp_path.resolve()}/caf\\xe9 is not valid UTF-8; rename it or "
                            "move the images to a folder with a plain name")
