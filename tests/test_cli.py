"""`python -m core …` as a user runs it: real subprocesses, real workspace."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=None if env is None else {**os.environ, **env})


def test_run_json_summary_is_last_line_and_cache_is_reported(tmp_path):
    args = ["run", "--data", "digits", "--backbone", "pixels", "--reduce", "none", "--k", "10", "--map", "pca",
            "--workspace", str(tmp_path), "--json"]
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["n_samples"] == 1797 and summary["n_skipped"] == 0
    assert {"acc", "nmi", "ari", "silhouette", "davies_bouldin", "calinski_harabasz"} <= set(summary["scores"])
    assert summary["scores"]["acc"] > 0.7
    assert (tmp_path / summary["artifacts"]["labels_csv"]).exists()
    second = cli(*args)
    assert json.loads(second.stdout.strip().splitlines()[-1])["features_from_cache"] is True
    assert "reused from the cache" in second.stderr


def test_folder_with_bad_files_skips_and_reports_them(tmp_path):
    data = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    ramp = np.tile(np.linspace(0, 255, 12), (12, 1))
    for cls, pattern in (("dark", ramp), ("light", ramp.T)):   # two clearly different shapes
        (data / cls).mkdir(parents=True)
        for i in range(6):
            px = np.clip(pattern + rng.normal(0, 10, (12, 12)), 0, 255).astype(np.uint8)
            Image.fromarray(px).convert("RGB").save(data / cls / f"{i}.png")
    (data / "dark" / "empty.png").write_bytes(b"")
    (data / "light" / "notes.txt").write_text("not an image")
    r = cli("run", "--data", str(data), "--backbone", "pixels", "--k", "2", "--map", "pca",
            "--workspace", str(tmp_path / "ws"), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["n_samples"] == 12 and s["n_skipped"] == 2
    assert sorted(x["id"] for x in s["skipped"]) == ["dark/empty.png", "light/notes.txt"]
    assert "dark/empty.png" in r.stderr
    assert s["scores"]["acc"] == 1.0      # dark vs light: horizontal vs vertical ramps: perfectly separable


def test_errors_are_one_clear_line_with_exit_code_2(tmp_path):
    r = cli("run", "--data", "no-such-demo", "--workspace", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "digits" in r.stderr          # lists what exists
    r = cli("run", "--data", "digits", "--backbone", "nope", "--workspace", str(tmp_path))
    assert r.returncode == 2 and "efficientnet_lite0" in r.stderr
    r = cli("run", "--data", "digits", "--k", "1", "--workspace", str(tmp_path))
    assert r.returncode == 2 and "k must be at least 2" in r.stderr


def test_a_refused_parameter_is_one_line_and_the_runs_listing_says_why(tmp_path):
    ws = str(tmp_path / "ws")
    base = ("run", "--data", "digits", "--limit", "200", "--backbone", "pixels", "--algo", "ruc", "--map", "none",
            "--workspace", ws)
    r = cli(*base, "--param", "strategy=confidence", "--param", "tau=0.9999")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (err,) = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert "tau=0.9999 selects no clean sample" in err and "use a lower tau" in err
    r = cli(*base, "--param", "epochs=2")                # fewer epochs than the default warm-up (5)
    assert r.returncode == 2 and "warmup must be between 0 and epochs (2), got 5: lower warmup" in r.stderr
    r = cli(*base, "--param", "epochs=2", "--param", "warmup=1", "--json")
    assert r.returncode == 0, r.stderr
    good = json.loads(r.stdout.strip().splitlines()[-1])["run_id"]
    rows = cli("runs", "--workspace", ws).stdout.splitlines()
    assert rows[0].startswith("run    1  ruc     k=10  failed    ParameterError: tau=0.9999 selects no clean")
    assert rows[1].startswith("run    2  ruc     k=10  failed    ParameterError: warmup must be between 0 and")
    assert rows[2].startswith(f"run    {good}  ruc     k=10  done      acc=") and good == 3


def test_listings(tmp_path):
    r = cli("datasets", "--json")
    rows = {d["name"]: d for d in json.loads(r.stdout)}
    assert rows["digits"]["available"] is True
    r = cli("backbones", "--json", "--workspace", str(tmp_path), env={"TORCH_HOME": str(tmp_path / "th")})
    rows = {d["name"]: d for d in json.loads(r.stdout)}
    assert rows["efficientnet_lite0"]["available"] is True
    assert rows["pixels"]["available"] is True
    # nothing cached in an empty TORCH_HOME: says so, and names the offline alternative
    assert rows["resnet18"]["available"] is False
    assert "not cached" in rows["resnet18"]["why"] and "efficientnet_lite0" in rows["resnet18"]["why"]
    # the text listings: one line per name with its state, the datasets' with a closing hint
    text = cli("datasets").stdout.splitlines()
    assert any(line.startswith("digits ") and line.endswith("[ok]") for line in text)
    assert text[-1].startswith("Also: any folder of images")
    text = cli("backbones", "--workspace", str(tmp_path), env={"TORCH_HOME": str(tmp_path / "th")}).stdout
    line = next(x for x in text.splitlines() if x.startswith("resnet18 "))
    assert "[not available: " in line and "not cached" in line


def test_train_backbone_then_cluster_with_it_by_name(tmp_path):
    ws = str(tmp_path / "ws")
    r = cli("train-backbone", "--data", "digits", "--limit", "300", "--method", "rotation", "--epochs", "1",
            "--batch-size", "64", "--workspace", ws, "--json")
    assert r.returncode == 0, r.stderr
    trained = json.loads(r.stdout.strip().splitlines()[-1])
    assert trained["name"].startswith("rotation-") and trained["epochs"] == 1
    listed = {b["name"]: b for b in json.loads(cli("backbones", "--json", "--workspace", ws).stdout)}
    assert trained["name"] in listed
    r = cli("run", "--data", "digits", "--limit", "300", "--backbone", trained["name"], "--k", "10",
            "--map", "none", "--workspace", ws, "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["n_samples"] == 300 and s["scores"]["n_clusters"] == 10
    r = cli("run", "--data", "digits", "--backbone", "rotation-nope", "--workspace", ws)
    assert r.returncode == 2 and "efficientnet_lite0" in r.stderr


def test_retrain_with_corrections_held_prints_the_new_run(tmp_path, capsys):
    from core.cli import main
    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from core.review import ReviewSession
    from core.store import Store

    ws = tmp_path / "ws"
    parent = run_pipeline(RunConfig(
        data=DataConfig("digits", limit=200), features=FeatureConfig(backbone="pixels"),
        cluster=ClusterConfig(algo="ruc", k=10, reduce="pca:20", params={"epochs": 2, "warmup": 1}),
        map=MapConfig(method="pca"), workspace=str(ws))).run_id
    with Store(ws) as store:
        s = ReviewSession(store, parent)
        labels = s.current_labels()
        moved = np.flatnonzero(labels != labels[0])[:4]
        s.move(moved, int(labels[0]))
        fixed = s.fixed_labels()

    # as a user runs it: a real subprocess, JSON on the last line
    r = cli("retrain", "--workspace", str(ws), "--run", str(parent), "--epochs", "8", "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["parent_run"] == parent and summary["run_id"] == parent + 1
    assert summary["n_samples"] == 200 and summary["features_from_cache"] is True
    assert {"acc", "nmi", "silhouette"} <= set(summary["scores"])
    assert "4 corrected sample(s) held fixed" in r.stderr
    assert f"RUC refines what run {parent}'s RUC started from" in r.stderr     # --refine start, the default
    epochs = [ln for ln in r.stderr.splitlines() if ln.startswith("  epoch ")]
    assert [ln.split(":")[0] for ln in epochs] == [f"  epoch {e}" for e in range(1, 9)]
    assert re.fullmatch(r"  epoch 8: loss \d+\.\d{4}, clean \d+\.\d % \(precision [01]\.\d{3}\), "
                        r"ACC [01]\.\d{3}", epochs[-1]), epochs[-1]
    with Store(ws) as store:
        new = store.assignments(summary["run_id"])[0]
        assert (new[fixed >= 0] == labels[0]).all()
        assert store.run(summary["run_id"])["config"]["parent_run"] == parent
        assert store.run(summary["run_id"])["config"]["cluster"]["params"]["epochs"] == 8

    # text output, another algorithm, and the errors (in-process: the same main())
    capsys.readouterr()
    assert main(["retrain", "--workspace", str(ws), "--run", str(parent), "--algo", "dac", "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"run {parent + 2} (retrained from run {parent}): 200 images")
    assert "acc" in out and "labels:" in out
    assert main(["retrain", "--workspace", str(ws), "--run", str(parent), "--refine", "current", "--epochs", "2"]) == 0
    with Store(ws) as store:
        assert store.run(parent + 3)["config"]["retrain"]["refined"] == "current"
    capsys.readouterr()
    assert main(["retrain", "--workspace", str(ws), "--run", "99"]) == 2
    assert capsys.readouterr().err.startswith("error: there is no run 99")
    with pytest.raises(SystemExit) as e:
        main(["retrain", "--workspace", str(ws), "--run", str(parent), "--algo", "kmeans"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "ruc" in err and "dac" in err
    with pytest.raises(SystemExit) as e:
        main(["retrain", "--workspace", str(ws), "--run", str(parent), "--refine", "output"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "'start', 'current'" in err


def test_train_backbone_cli_offers_every_engine_method_and_the_engine_defaults():
    """The CLI's choices and defaults come from the engine, so a user gets what was measured."""
    import inspect

    from core.cli import build_parser
    from core.ssl.train import METHODS, train_backbone

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train-backbone"]
    opts = {a.dest: a for a in sub._actions}
    assert sorted(opts["method"].choices) == sorted(METHODS.names())
    engine = inspect.signature(train_backbone).parameters
    for name in ("epochs", "batch_size", "temperature", "augment"):
        assert opts[name].default == engine[name].default, name


def test_algorithms_lists_each_param_with_its_default_choices_and_doc():
    r = cli("algorithms", "ruc")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("ruc: Refine the labels of an existing clustering by robust co-training.")
    assert '  --param strategy="hybrid"  one of: confidence, metric, hybrid\n' in out
    assert "  --param tau=0.5\n      confidence threshold of the initial split" in out
    assert "  --param guard=true\n      when the networks train on the space the start clustered in" in out
    assert "regroup" not in out and "overcluster" not in out           # pruned: hurt Fashion-MNIST
    assert "--param n_clusters" not in out and "--param device" not in out   # run's --k / --device
    rows = json.loads(cli("algorithms", "--json").stdout)
    assert [r["name"] for r in rows] == ["kmeans", "dac", "ruc", "temi"]
    init = next(p for p in rows[0]["params"] if p["name"] == "init")
    assert init["default"] == "k-means++" and init["choices"] == ["k-means++", "random"]
    bad = cli("algorithms", "nope")
    assert bad.returncode == 2 and "unknown algorithm 'nope'; choose one of: kmeans, dac, ruc, temi" in bad.stderr


def test_training_epochs_print_as_short_lines():
    from core.cli import _epoch_line

    ruc = {"epoch": 6, "loss": 1.2174964, "clean_size": 945, "clean_fraction": 0.52532,
           "clean_precision": 0.94612, "acc": 0.87813, "seconds": 3.2}
    assert _epoch_line(ruc) == "  epoch 6: loss 1.2175, clean 52.5 % (precision 0.946), ACC 0.878"
    dac = {"epoch": 3, "upper": 0.9, "lower": 0.5, "selected_fraction": 0.4131, "loss": 0.2246,
           "mean_confidence": 0.7, "init": 2}
    assert _epoch_line(dac) == "  epoch 3 (restart 2): loss 0.2246, selected 41.3 %"
    assert _epoch_line({"iteration": 4, "inertia": 12.0, "moved": 0.01, "restart": 0}) is None


def test_a_hostile_folder_runs_to_the_end_and_exports(tmp_path, capsys):
    """Zero-byte, truncated, bomb, non-UTF-8 names, link loops and outside links: listed, never fatal."""
    import csv

    from core.cli import main
    from core.store import Store
    from tests.data.conftest import make_hostile_folder

    h = make_hostile_folder(tmp_path)
    ws = str(tmp_path / "ws")
    assert main(["run", "--data", str(h.root), "--backbone", "pixels", "--reduce", "none", "--k", "2", "--map", "pca",
                 "--workspace", ws, "--json"]) == 0
    out, err = capsys.readouterr()
    s = json.loads(out.strip().splitlines()[-1])
    assert {x["id"]: x["reason"] for x in s["skipped"]} == h.skipped and s["n_skipped"] == len(h.skipped)
    assert s["n_samples"] == len(h.kept) and s["scores"]["n_clusters"] == 2
    assert "  caf\\xe9_latin1.png: file name is not valid UTF-8; rename it" in err.splitlines()
    with Store(ws) as store:
        run = store.run(s["run_id"])
        assert store.dataset_ids(run["dataset_id"]) == h.kept
        assert {r["sample_id"]: r["reason"] for r in store.skipped(run["dataset_id"])} == h.skipped
        labels, _ = store.assignments(s["run_id"])
        assert len(labels) == len(h.kept) and set(labels.tolist()) == {0, 1}
    with open(Path(ws) / s["artifacts"]["labels_csv"], newline="", encoding="utf-8") as f:
        assert [r["sample_id"] for r in csv.DictReader(f)] == h.kept

    out_csv = tmp_path / "labels.csv"
    assert main(["export", "--workspace", ws, "--run", str(s["run_id"]), "--format", "csv",
                 "--out", str(out_csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n_samples"] == len(h.kept)
    with open(out_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["sample_id"] for r in rows] == h.kept
    assert all(Path(r["path"]).is_relative_to(h.root.resolve()) for r in rows)
    folders = tmp_path / "by_cluster"
    assert main(["export", "--workspace", ws, "--run", str(s["run_id"]), "--format", "imagefolder",
                 "--out", str(folders)]) == 0
    exported = [p for p in folders.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(exported) == len(h.kept) and h.secret not in {p.read_bytes() for p in exported}


# -- export (issue 25): nothing the person had is replaced; a full disk is one line -------------
def _export_here(cwd, *args):
    """`python -m core export` run from ``cwd`` with the default workspace (./workspace)."""
    env = {k: v for k, v in os.environ.items() if k != "CLUSTERLENS_HOME"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "core", "export", "--run", "1", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def test_export_overwrite_never_replaces_the_workspace_or_a_foreign_file(tmp_path):
    from core.review import ReviewSession
    from core.store import Store
    from tests.review_helpers import make_run

    run, ids, _ = make_run(tmp_path / "workspace", n=6, k=2)
    with Store(tmp_path / "workspace") as s:
        ReviewSession(s, run).move([ids[0]], 1)
    r = _export_here(tmp_path, "--format", "csv", "--out", "workspace/clusterlens.db", "--overwrite")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'workspace' / 'clusterlens.db'} is inside the workspace {tmp_path / 'workspace'}, "
        "where an export could overwrite its database; choose a path outside it"]
    with Store(tmp_path / "workspace") as s:                   # the database is whole, corrections included
        assert [x["id"] for x in s.runs()] == [run] and ReviewSession(s, run).corrected_mask()[0]
    (tmp_path / "precious.txt").write_text("mine")
    r = _export_here(tmp_path, "--format", "json", "--out", "precious.txt", "--overwrite")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "was not written by a ClusterLens export, so it will not be replaced; choose another file name" in r.stderr
    assert (tmp_path / "precious.txt").read_text() == "mine"
    assert _export_here(tmp_path, "--format", "csv", "--out", "labels.csv").returncode == 0
    r = _export_here(tmp_path, "--format", "csv", "--out", "labels.csv")
    assert r.returncode == 2 and "an earlier ClusterLens export); pass overwrite (--overwrite)" in r.stderr
    r = _export_here(tmp_path, "--format", "csv", "--out", "labels.csv", "--overwrite", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["n_corrected"] == 1


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to tell the files apart")
def test_export_on_a_full_disk_is_one_line_and_the_old_file_stays(tmp_path, monkeypatch, capsys):
    import errno

    from core.cli import main
    from tests.review_helpers import make_run

    make_run(tmp_path / "ws", n=6, k=2)
    out = tmp_path / "labels.json"
    base = ["export", "--workspace", str(tmp_path / "ws"), "--run", "1", "--format", "json", "--out", str(out)]
    assert main(base) == 0
    old = out.read_bytes()
    real = os.write

    def full(fd, data):
        if out.name in os.readlink(f"/proc/self/fd/{fd}"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", full)
    capsys.readouterr()
    assert main([*base, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: could not write the export to {out}: the disk is full; nothing was lost (the old file, "
                   "if any, is unchanged); free space and retry\n")
    assert out.read_bytes() == old and sorted(p.name for p in tmp_path.iterdir()) == ["labels.json", "ws"]


def test_storage_lists_what_a_run_uses_and_removes_on_request(tmp_path):
    import zipfile

    archive = tmp_path / "pics.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(6):
            path = tmp_path / f"{i}.png"
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
            zf.write(path, f"pics/{'ab'[i % 2]}/{i}.png")
        zf.writestr("pics/README.txt", "about")
    ws = tmp_path / "ws"
    r = cli("run", "--data", str(archive), "--backbone", "pixels", "--k", "2", "--map", "pca",
            "--workspace", str(ws), "--json")
    assert r.returncode == 0, r.stderr
    run_id = json.loads(r.stdout.strip().splitlines()[-1])["run_id"]
    [extracted] = (ws / "datasets").glob("zip-*")
    assert not list(extracted.rglob("README.txt"))           # listed as skipped, never unpacked

    listing = cli("storage", "--workspace", str(ws))
    assert listing.returncode == 0, listing.stderr
    [line] = [ln for ln in listing.stdout.splitlines() if extracted.name in ln]
    assert line.startswith("extracted zip") and f"dataset 1 'pics' (run {run_id})" in line
    assert "1 entry" in listing.stdout and "0 unused" in listing.stdout
    [row] = json.loads(cli("storage", "--workspace", str(ws), "--json").stdout)
    size = sum(p.stat().st_size for p in extracted.rglob("*") if p.is_file())
    assert (row["name"], row["size"], row["runs"]) == (extracted.name, size, [run_id])

    unused = cli("storage", "--workspace", str(ws), "--remove-unused")
    assert unused.returncode == 0 and "removed 0 unused entries" in unused.stdout and extracted.is_dir()
    removed = cli("storage", "--workspace", str(ws), "--remove", extracted.name)
    assert removed.returncode == 0, removed.stderr
    assert f"removed extracted zip {extracted.name}" in removed.stdout
    assert f"it was used by dataset 1 'pics' (run {run_id})" in removed.stdout and not extracted.exists()

    bad = cli("storage", "--workspace", str(ws), "--remove", "zip-nope")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"error: nothing stored is named 'zip-nope' in {ws}; stored: none " \
                                 "(`python -m core storage` lists them)"


def test_suggest_k_prints_the_criterion_per_k_and_its_best_k(tmp_path):
    args = ["suggest-k", "--data", "digits", "--backbone", "pixels", "--k-max", "12", "--workspace", str(tmp_path)]
    r = cli(*args, "--json", env={"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert (s["dataset"], s["n_images"], s["backbone"], s["reduce"]) == ("digits", 1797, "pixels", "none")
    assert s["ks"] == list(range(2, 13)) and len(s["scores"]) == 11
    assert s["criterion"]["name"] == "silhouette" and s["criterion"]["higher_is_better"] is True
    assert s["k"] in s["ks"] and s["scores"][s["ks"].index(s["k"])] == max(s["scores"])
    assert 8 <= s["k"] <= 11          # digits: ten classes (seed 0 says 9; bench/bench_suggest_k.py)
    assert s["n_samples"] == 1797 and s["seconds"] > 0
    text = cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith(f"suggested k = {s['k']}: the silhouette is highest there")
    assert re.search(rf"^→\s+{s['k']}\s+{s['scores'][s['ks'].index(s['k'])]:.4f}\s+█+  suggested$",
                     text.stdout, re.M)
    refused = cli("suggest-k", "--data", "lfw", "--backbone", "pixels", "--k-max", "200",
                  "--workspace", str(tmp_path))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "k_max=200 needs more points than the 200 samples: choose k_max <= 199" in refused.stderr
