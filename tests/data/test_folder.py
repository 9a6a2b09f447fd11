import os
from pathlib import Path

import numpy as np
import pytest

import core.data.folder as folder_mod
import core.data.manifest as manifest_mod
from core.data.base import SkippedFile
from core.data.folder import open_folder
from core.errors import DataError
from tests.data.conftest import noise_png, write_image


def test_empty_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".DS_Store").write_bytes(b"x")             # hidden: not even a skipped file
    with pytest.raises(DataError, match=r"no images found in .*accepted extensions: \.jpg, \.jpeg, \.png"):
        open_folder(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_folder(tmp_path / "nope")


def test_only_non_images(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    (tmp_path / "c.png").write_bytes(b"")
    with pytest.raises(DataError) as e:
        open_folder(tmp_path)
    assert "3 file(s) skipped (2 not an image (unsupported file type), 1 zero-byte file)" in str(e.value)
    assert "accepted extensions" in str(e.value)


def test_bad_files_skipped_good_kept(tmp_path):
    write_image(tmp_path / "b.png")
    write_image(tmp_path / "A.JPG", fmt="JPEG")           # upper-case extension counts
    write_image(tmp_path / "deep" / "er" / "c.webp")
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "garbage.png").write_bytes(b"\x00\x01 not an image at all")
    trunc = noise_png(tmp_path / "trunc.png")
    trunc.write_bytes(trunc.read_bytes()[:-300])
    (tmp_path / "readme.md").write_text("hi")
    write_image(tmp_path / ".hidden" / "x.png")            # hidden folder, file and mac forks ignored
    write_image(tmp_path / "__MACOSX" / "y.png")
    write_image(tmp_path / ".z.png")
    ds = open_folder(tmp_path)
    assert ds.ids == ["A.JPG", "b.png", "deep/er/c.webp"]
    assert ds.skipped == [
        SkippedFile("garbage.png", "not an image (unrecognised format)"),
        SkippedFile("readme.md", "not an image (unsupported file type)"),
        SkippedFile("trunc.png", "truncated image data"),
        SkippedFile("zero.jpg", "zero-byte file"),
    ]
    assert ds.labels is None and ds.class_names is None
    assert ds.path(2) == str(tmp_path.resolve() / "deep" / "er" / "c.webp")
    assert os.path.isabs(ds.path(0))
    img = ds.load(1)
    assert img.mode == "RGB" and img.size == (6, 4) and img.getpixel((0, 0)) == (200, 30, 30)
    assert ds.name == tmp_path.name and ds.native_array() is None


def test_duplicates_kept_and_reported(tmp_path):
    write_image(tmp_path / "one.png", (1, 2, 3))
    (tmp_path / "copy.png").write_bytes((tmp_path / "one.png").read_bytes())
    write_image(tmp_path / "other.png", (9, 9, 9))
    ds = open_folder(tmp_path)
    assert ds.ids == ["copy.png", "one.png", "other.png"]
    assert ds.duplicates == [["copy.png", "one.png"]]


def test_class_subfolders_become_labels(tmp_path):
    for cls, n in (("dog", 2), ("cat", 3)):
        for i in range(n):
            write_image(tmp_path / cls / f"{i}.png", (i, 0, 0))
    ds = open_folder(tmp_path)
    assert ds.class_names == ["cat", "dog"]
    assert ds.ids[:3] == ["cat/0.png", "cat/1.png", "cat/2.png"]
    np.testing.assert_array_equal(ds.labels, [0, 0, 0, 1, 1])
    assert ds.labels.dtype == np.int64 and ds.has_labels
    write_image(tmp_path / "stray.png")                   # one image outside the classes: no labels
    assert open_folder(tmp_path).labels is None


def test_single_subfolder_is_not_classes(tmp_path):
    write_image(tmp_path / "only" / "a.png")
    write_image(tmp_path / "only" / "b.png", (0, 0, 0))
    assert open_folder(tmp_path).labels is None


def test_changed_folder_changes_fingerprint(tmp_path):
    write_image(tmp_path / "a.png", (1, 1, 1))
    write_image(tmp_path / "b.png", (2, 2, 2))
    fp = open_folder(tmp_path).fingerprint
    assert open_folder(tmp_path).fingerprint == fp          # stable
    write_image(tmp_path / "c.png", (3, 3, 3))
    added = open_folder(tmp_path).fingerprint
    (tmp_path / "c.png").unlink()
    assert open_folder(tmp_path).fingerprint == fp
    write_image(tmp_path / "b.png", (7, 7, 7))
    assert len({fp, added, open_folder(tmp_path).fingerprint}) == 3
    (tmp_path / "a.png").rename(tmp_path / "z.png")         # same content, new id
    assert open_folder(tmp_path).fingerprint not in {fp, added}


def count_calls(monkeypatch, module, name) -> list[Path]:
    calls: list[Path] = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda p, *a, **k: calls.append(Path(p)) or real(p, *a, **k))
    return calls


def test_manifest_cache_skips_probe_and_hash_for_unchanged_files(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "manifests"
    for i in range(4):
        write_image(data / f"{i}.png", (i, i, i))
    (data / "bad.png").write_bytes(b"junk")
    first = open_folder(data, cache_dir=cache)
    probes = count_calls(monkeypatch, folder_mod, "probe_image")
    hashes = count_calls(monkeypatch, manifest_mod, "file_hash")
    again = open_folder(data, cache_dir=cache)
    assert probes == [] and hashes == []
    assert again.ids == first.ids and again.skipped == first.skipped and again.fingerprint == first.fingerprint
    write_image(data / "2.png", (50, 50, 50))
    os.utime(data / "2.png", ns=(10**9, 10**9))             # a certainly different mtime
    open_folder(data, cache_dir=cache)
    assert [p.name for p in probes] == ["2.png"] and [p.name for p in hashes] == ["2.png"]
    monkeypatch.setenv("CLUSTERLENS_MAX_PIXELS", "1000000")  # another limit: earlier verdicts are stale
    probes.clear()
    seen = []
    open_folder(data, cache_dir=cache, progress=lambda done, total: seen.append((done, total)))
    assert len(probes) == 5 and seen[-1] == (5, 5)
