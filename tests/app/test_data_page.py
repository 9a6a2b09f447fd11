"""Data page, driven through AppTest: demo, folder (allowed roots), uploads."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.app.helpers import choose_digits, metrics, shown, texts


def png(colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), colour).save(buf, "PNG")
    return buf.getvalue()


def test_digits_demo_shows_counts_classes_and_a_sample(app: AppTest) -> None:
    choose_digits(app)
    m = metrics(app)
    assert m["Images"] == "1,797"
    assert m["Classes (ground truth)"] == "10"
    assert m["Skipped files"] == "0"
    assert "Ground truth: 10 classes" in " ".join(e.label for e in app.expander)
    sample = [h for h in app.html if 'id="sample-grid"' in h.value]
    assert sample and sample[0].value.count("data-sample-id=") == 30


def test_folder_outside_the_allowed_roots_is_refused_the_same_way_whether_or_not_it_exists(
        app: AppTest, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.png").write_bytes(png())
    messages = []
    for path in (outside, tmp_path / "does-not-exist", Path("/etc")):
        app.text_input(key="w_folder").input(str(path))
        app.button(key="w_open_folder").click().run()
        messages.append([e.value for e in app.error])
    assert messages[0] == messages[1] == messages[2]
    assert len(messages[0]) == 1 and "not under the folders this app may read" in messages[0][0]
    assert "exist" not in messages[0][0]
    assert "Images" not in metrics(app)   # nothing was opened


def test_folder_inside_the_root_opens_and_lists_skipped_files(app: AppTest, allowed: Path) -> None:
    folder = allowed / "pics"
    folder.mkdir()
    for i, c in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        (folder / f"img{i}.png").write_bytes(png(c))
    (folder / "notes.txt").write_text("not an image")
    app.text_input(key="w_folder").input(str(folder))
    app.button(key="w_open_folder").click().run()
    assert not app.error, [e.value for e in app.error]
    m = metrics(app)
    assert m["Images"] == "3" and m["Skipped files"] == "1"
    assert "Skipped files (1)" in texts(app)
    skipped = app.dataframe[0].value
    assert list(skipped["file"]) == ["notes.txt"]


def test_symlink_out_of_an_allowed_root_is_refused(app: AppTest, allowed: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "a.png").write_bytes(png())
    (allowed / "link").symlink_to(outside)
    app.text_input(key="w_folder").input(str(allowed / "link"))
    app.button(key="w_open_folder").click().run()
    assert "not under the folders this app may read" in shown(app.error[0].value)


def test_upload_over_the_size_limit_is_refused(app: AppTest, monkeypatch) -> None:
    monkeypatch.setenv("CLUSTERLENS_MAX_UPLOAD_MB", "0.01")   # 10 kB
    app.run()
    app.file_uploader(key="w_upload").set_value([("big.png", b"\0" * 20_000, "image/png")])
    app.run()
    app.button(key="w_use_upload").click().run()
    assert len(app.error) == 1 and "over the 0.01 MB limit" in shown(app.error[0].value)
    assert "Images" not in metrics(app)


def test_non_image_upload_is_reported_as_skipped(app: AppTest) -> None:
    files = [(f"p{i}.png", png((40 * i, 0, 0)), "image/png") for i in range(3)]
    files.append(("readme.txt", b"hello", "text/plain"))
    app.file_uploader(key="w_upload").set_value(files)
    app.run()
    app.button(key="w_use_upload").click().run()
    assert not app.error, [e.value for e in app.error]
    m = metrics(app)
    assert m["Images"] == "3" and m["Skipped files"] == "1"
    assert list(app.dataframe[0].value["file"]) == ["readme.txt"]


def test_zip_with_parent_paths_is_refused_with_the_engines_message(app: AppTest) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ok.png", png())
        zf.writestr("../evil.png", png())
    app.file_uploader(key="w_upload").set_value(("evil.zip", buf.getvalue(), "application/zip"))
    app.run()
    app.button(key="w_use_upload").click().run()
    assert len(app.error) == 1
    error = shown(app.error[0].value)
    assert "points outside the archive" in error and "nothing was extracted" in error


def test_stored_uploads_are_listed_and_a_removed_one_says_how_to_get_it_back(app: AppTest) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            zf.writestr(f"pics/p{i}.png", png((60 * i, 0, 0)))
        zf.writestr("pics/README.txt", "not an image")
    upload = ("pics.zip", buf.getvalue(), "application/zip")
    app.file_uploader(key="w_upload").set_value(upload)
    app.run()
    app.button(key="w_use_upload").click().run()
    assert metrics(app)["Images"] == "3" and metrics(app)["Skipped files"] == "1"

    app.session_state["w_storage"] = True   # open the expander (it lists only when open)
    app.run()
    assert "Stored uploads and extracted archives" in [e.label for e in app.expander]
    [table] = [d.value for d in app.dataframe if "kind" in d.value.columns]
    assert sorted(table["kind"]) == ["extracted zip", "uploaded zip"]
    assert set(table["used by"]) == {"the data open in the app"}   # the page's own data: not "unused"
    [upload_name] = [n for n in table["name"] if n.startswith("upload-")]

    app.button(key=f"w_storage_rm_{upload_name}").click().run()
    assert f"Removed uploaded zip {upload_name}" in " ".join(t.value for t in app.text)
    [table] = [d.value for d in app.dataframe if "kind" in d.value.columns]
    assert list(table["name"]) == [n for n in table["name"] if n.startswith("zip-")]   # the upload is gone
    assert len(app.error) == 1 and "was removed from the workspace" in shown(app.error[0].value)
    assert "upload the same files again" in shown(app.error[0].value)

    app.file_uploader(key="w_upload").set_value(upload)   # the same files: the same name again
    app.run()
    app.button(key="w_use_upload").click().run()
    assert not app.error and metrics(app)["Images"] == "3"
