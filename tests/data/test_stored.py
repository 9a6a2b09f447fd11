"""Stored uploads and extracted archives: listed with their size and users, removed safely (issue 25)."""
import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
from core.data import open_dataset
from core.data.stored import list_stored, remove_stored, remove_unused
from core.errors import DataError
from core.pipeline import run_pipeline
from core.store import Store
from ui.uploads import Upload, save_uploads


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():   # a fixed date: the same files make the same bytes
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buf.getvalue()


def on_disk(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_on(ws: Path, source: str) -> int:
    cfg = RunConfig(data=DataConfig(source), features=FeatureConfig(backbone="pixels", device="cpu"),
                    cluster=ClusterConfig(algo="kmeans", k=2), map=MapConfig(method="pca"), workspace=str(ws))
    return run_pipeline(cfg).run_id


def age(path: Path, hours: float = 2) -> None:
    t = time.time() - hours * 3600
    os.utime(path, (t, t), follow_symlinks=False)


@pytest.fixture
def stored(tmp_path):
    """A workspace with a run on an uploaded zip (so: an upload and its extraction, both used) and an
    uploaded set of images nobody has used yet."""
    ws = tmp_path / "ws"
    used_zip = save_uploads([Upload("pics.zip", zip_bytes({f"pics/{i}.png": png(i) for i in range(6)}))], ws, 50)
    run_id = run_on(ws, str(used_zip))
    loose = save_uploads([Upload("a.png", png(10)), Upload("b.png", png(11))], ws, 50)
    [extracted] = (ws / "datasets").glob("zip-*")
    return ws, used_zip, extracted, loose, run_id


def test_listing_shows_each_entry_with_its_size_and_the_dataset_and_run_using_it(stored):
    ws, used_zip, extracted, loose, run_id = stored
    items = {i.name: i for i in list_stored(ws)}
    assert set(items) == {used_zip.name, extracted.name, loose.name}
    assert [items[n].kind for n in (used_zip.name, extracted.name, loose.name)] == \
        ["uploaded zip", "extracted zip", "uploaded images"]
    for name, path in ((used_zip.name, used_zip), (extracted.name, extracted), (loose.name, loose)):
        assert items[name].size == on_disk(path) > 0
        assert abs(items[name].created - time.time()) < 600
    with Store(ws) as store:
        [ds] = store.query("SELECT id, name FROM datasets")
    for name in (used_zip.name, extracted.name):   # the run opened the upload, which opened its extraction
        [use] = items[name].used_by
        assert (use.dataset_id, use.dataset, use.runs) == (ds["id"], ds["name"], (run_id,))
        assert items[name].row()["used_by"] == [f"dataset {ds['id']} '{used_zip.stem}' (run {run_id})"]
    assert items[loose.name].used_by == ()


def test_remove_unused_leaves_the_used_ones_and_keeps_fresh_ones_for_an_hour(stored):
    ws, used_zip, extracted, loose, _ = stored
    leftover = ws / "datasets" / ".tmp-zip-abc123"   # an extraction interrupted long ago
    leftover.mkdir()
    (leftover / "x.png").write_bytes(png(3))
    fresh = remove_unused(ws)
    assert fresh.removed == [] and {i.name for i in fresh.recent} == {loose.name, leftover.name}
    assert loose.is_dir() and leftover.is_dir()

    age(loose)
    age(leftover)
    done = remove_unused(ws)
    assert {i.name for i in done.removed} == {loose.name, leftover.name}
    assert done.freed == sum(i.size for i in done.removed) > 0
    assert not loose.exists() and not leftover.exists()
    assert used_zip.is_file() and extracted.is_dir()
    assert {i.name for i in list_stored(ws)} == {used_zip.name, extracted.name}


def test_a_source_open_in_the_app_counts_as_a_use(stored):
    ws, _, _, loose, _ = stored
    age(loose)
    [item] = [i for i in list_stored(ws, extra_sources=[str(loose)]) if i.name == loose.name]
    assert [str(u) for u in item.used_by] == ["the data open in the app"]
    assert remove_unused(ws, extra_sources=[str(loose)]).removed == [] and loose.is_dir()


def test_removing_a_used_upload_then_opening_the_runs_data_says_it_was_removed(stored):
    ws, used_zip, extracted, _, run_id = stored
    item = remove_stored(ws, used_zip.name)
    assert item.used and not used_zip.exists() and extracted.is_dir()
    with Store(ws) as store:
        source = store.run(run_id)["config"]["data"]["source"]
    with pytest.raises(DataError, match=rf"the uploaded data {used_zip.name} was removed from the workspace's "
                                        r"stored uploads; to get it back, upload the same files again"):
        open_dataset(source, workspace=ws)
    # the same files again: the same name, so the run's data opens again
    again = save_uploads([Upload("pics.zip", zip_bytes({f"pics/{i}.png": png(i) for i in range(6)}))], ws, 50)
    assert again == used_zip and len(open_dataset(source, workspace=ws)) == 6


def test_removing_an_extraction_re_extracts_it_from_its_archive_on_the_next_open(stored):
    ws, used_zip, extracted, _, _ = stored
    remove_stored(ws, extracted.name)
    assert not extracted.exists() and not list((ws / "datasets").iterdir())   # no half-removed leftover
    ds = open_dataset(str(used_zip), workspace=ws)
    assert len(ds) == 6 and extracted.is_dir()


def test_only_our_names_are_touched_and_links_are_never_followed(stored, tmp_path):
    ws, *_ = stored
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.png").write_bytes(png(7))
    link = ws / "datasets" / ("zip-" + "0" * 32)
    link.symlink_to(precious)
    (ws / "datasets" / "my-notes").mkdir()
    assert link.name not in {i.name for i in list_stored(ws)}
    with pytest.raises(DataError, match="is a symbolic link, not something ClusterLens stored; nothing was removed"):
        remove_stored(ws, link.name)
    for name in ("my-notes", "../ws", "", "uploads"):
        with pytest.raises(DataError, match=r"nothing stored is named .* \(`python -m core storage` lists them\)"):
            remove_stored(ws, name)
    age(link)
    remove_unused(ws)
    assert (precious / "keep.png").is_file() and link.is_symlink() and (ws / "datasets" / "my-notes").is_dir()


def test_an_upload_that_cannot_be_written_leaves_nothing_behind(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    real = Path.write_bytes
    calls = []

    def fail_second(self, data):
        calls.append(self)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_second)
    with pytest.raises(DataError, match=r"could not save the upload in .*uploads \(No space left on device\)"):
        save_uploads([Upload("a.png", png(1)), Upload("b.png", png(2))], ws, 50)
    assert list((ws / "uploads").iterdir()) == []


def test_one_extraction_shared_by_two_copies_of_an_archive_lists_both_without_rehashing(stored, tmp_path,
                                                                                         monkeypatch):
    import core.data.stored as stored_mod

    ws, used_zip, extracted, _, run_id = stored
    copy = tmp_path / "copy.zip"
    copy.write_bytes(used_zip.read_bytes())
    ds = open_dataset(str(copy), workspace=ws)          # same content: the same extraction, re-used
    with Store(ws) as store:
        copy_id = store.upsert_dataset(ds, str(copy))
    assert list((ws / "datasets").iterdir()) == [extracted]
    monkeypatch.setattr(stored_mod, "file_hash", lambda p: pytest.fail(f"re-read {p}"))   # the record knows
    [item] = [i for i in list_stored(ws) if i.name == extracted.name]
    assert sorted((u.dataset_id, u.runs) for u in item.used_by) == [(1, (run_id,)), (copy_id, ())]
