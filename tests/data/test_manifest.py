import os

import pytest

import core.data.manifest as mf
from core.data.manifest import CachedScan, ManifestCache, build_manifest


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"same")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.bin").write_bytes(b"same")
    (tmp_path / "c.bin").write_bytes(b"other")
    return tmp_path


def count_hashes(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = mf.file_hash
    monkeypatch.setattr(mf, "file_hash", lambda p: calls.append(str(p)) or real(p))
    return calls


def test_entries_duplicates_and_fingerprint(files):
    m = build_manifest(files, ["sub/b.bin", "c.bin", "a.bin"])
    assert [e.id for e in m.entries] == ["a.bin", "c.bin", "sub/b.bin"]
    assert [e.size for e in m.entries] == [4, 5, 4]
    assert m.entries[0].hash == m.entries[2].hash != m.entries[1].hash
    assert m.duplicates() == [["a.bin", "sub/b.bin"]]
    assert len(m.fingerprint) == 32
    assert build_manifest(files, ["a.bin", "c.bin"]).fingerprint != m.fingerprint


def test_hashes_reused_when_size_and_mtime_match(files, monkeypatch):
    first = build_manifest(files, ["a.bin", "c.bin"])
    calls = count_hashes(monkeypatch)
    again = build_manifest(files, ["a.bin", "c.bin"], previous=first)
    assert calls == [] and again.fingerprint == first.fingerprint
    (files / "c.bin").write_bytes(b"edit!")                # same size ...
    os.utime(files / "c.bin", ns=(1, 1))                   # ... new mtime
    edited = build_manifest(files, ["a.bin", "c.bin"], previous=first)
    assert [os.path.basename(c) for c in calls] == ["c.bin"]
    assert edited.fingerprint != first.fingerprint


def test_cache_roundtrip_and_damage(files, tmp_path):
    cache = ManifestCache(tmp_path / "manifests")
    assert cache.load(files) is None
    m = build_manifest(files, ["a.bin"])
    cache.save(files, CachedScan(m, {m.entries[0].hash: "truncated image data"}, 123))
    back = cache.load(files)
    assert back.manifest.entries == m.entries and back.max_pixels == 123
    assert back.problems == {m.entries[0].hash: "truncated image data"}
    [path] = (tmp_path / "manifests").glob("*.json")       # no temp files left behind
    path.write_text("{not json")
    assert cache.load(files) is None


def test_unreadable_files_raise_or_are_reported_to_on_error(files):
    with pytest.raises(FileNotFoundError):
        build_manifest(files, ["a.bin", "gone.bin"])
    errors = []
    m = build_manifest(files, ["gone.bin", "a.bin", "c.bin"], on_error=lambda id_, e: errors.append((id_, type(e))))
    assert [e.id for e in m.entries] == ["a.bin", "c.bin"]
    assert errors == [("gone.bin", FileNotFoundError)]
