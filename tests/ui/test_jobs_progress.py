"""ui.jobs (issue 26, item 7): a job settles before it works, a newer one replaces a stale one, and
the progress line says a fraction and a rate, or the elapsed time against an estimate from size."""
from __future__ import annotations

import threading

import pytest

from ui import jobs
from ui.cluster_jobs import space_dims
from ui.jobs import Job, estimate_from_message, estimate_seconds, progress_line


def test_a_count_with_its_rate_is_said_in_full():
    bar, text = progress_line("Features (pixels)", "features: 3200/10000 images, 210 img/s, 32 s left",
                              0.32, 15.0, 16.0)
    assert bar == pytest.approx(0.32)
    assert text == ("**Features (pixels)** — features: 3,200 / 10,000 images · 210 img/s · about 32 s left"
                    " · 16 s in all")


def test_a_fraction_gets_a_percentage_and_the_time_left_at_its_rate():
    bar, text = progress_line("Clustering (dac, k=10)", "cluster: epoch 3, loss 0.2", 0.25, 30.0, 31.0)
    assert bar == 0.25
    assert "· 25% · about 1 min 30 s left · 31 s in all" in text   # 25 % in 30 s: 90 s more


def test_no_progress_from_the_engine_shows_elapsed_against_the_estimate():
    bar, text = progress_line("2-D map (UMAP)", "UMAP of 10,000 points", None, 12.0, 13.0, 40.0)
    assert bar == pytest.approx(0.3)
    assert "12 s of about 40 s, estimated from the size · 13 s in all" in text
    bar, text = progress_line("2-D map (UMAP)", "UMAP of 10,000 points", None, 400.0, 401.0, 40.0)
    assert bar == 0.95 and "longer than the 40 s estimated" in text        # never a full bar before the end
    bar, text = progress_line("Scores", "scores: scoring", None, 5.0, 9.0)
    assert bar == 0.0 and text.endswith("5 s so far · 9 s in all") and "no estimate" not in text


def test_estimates_grow_with_size_and_are_read_from_a_map_step():
    assert estimate_seconds("tsne", 70_000) > estimate_seconds("tsne", 10_000) > 20
    assert estimate_seconds("umap", 60_000, dims=10) > estimate_seconds("umap", 60_000, dims=2)
    assert estimate_seconds("kmeans", 70_000, features=784, k=10, restarts=3) == pytest.approx(6.06, abs=0.1)
    assert estimate_seconds("spectral", 10) is None
    assert estimate_from_message("TSNE of 10,000 points (UMAP compiles …)") == estimate_seconds("tsne", 10_000)
    assert estimate_from_message("reducing: UMAP-10 of 60,000 points before clustering") == \
        estimate_seconds("umap", 60_000, dims=10)
    assert estimate_from_message("loading features") is None
    assert space_dims("pca:50", 784) == 50 and space_dims("pca:50", 20) == 20 and space_dims("none", 64) == 64


def test_a_job_replaced_while_it_settles_never_works():
    calls: list[str] = []

    def work(name):  # noqa: ANN001, ANN202
        def run(report, should_stop):  # noqa: ANN001, ANN202
            calls.append(name)
            return name
        return run

    first = Job.start("cluster", "k=5", work("k=5"), settle_s=30)
    first.stop()                                     # a newer setting stops it
    second = Job.start("cluster", "k=12", work("k=12"), settle_s=0.01, after=first)
    assert second.wait(30) and first.wait(30)
    assert first.status == "cancelled" and second.status == "done" and second.result == "k=12"
    assert calls == ["k=12"]


def test_a_replacing_job_starts_only_once_the_stale_one_has_stopped():
    order: list[str] = []
    running = threading.Event()

    def stale(report, should_stop):  # noqa: ANN001, ANN202
        running.set()
        while not should_stop():
            threading.Event().wait(0.01)
        order.append("stale stopped")
        raise jobs.Cancelled("stopped")

    def fresh(report, should_stop):  # noqa: ANN001, ANN202
        order.append("fresh started")
        return 1

    old = Job.start("cluster", "old", stale)
    assert running.wait(30)
    new = Job.start("cluster", "new", fresh, after=old)
    assert not new.wait(0.3) and order == []         # waiting: the stale one has not been stopped
    assert "waiting for the stale job to stop" in new.snapshot()[2]
    old.stop()
    assert new.wait(30)
    assert order == ["stale stopped", "fresh started"] and old.status == "cancelled" and new.status == "done"


def test_a_report_starts_a_new_step_timer_and_keeps_its_estimate():
    seen = {}

    def work(report, should_stop):  # noqa: ANN001, ANN202
        report(None, "reducing: UMAP-10 of 60,000 points", 99.0)
        seen["reduce"] = job.estimate_s
        report(0.0, "cluster: iteration 1, inertia 5", 3.0)
        seen["cluster"] = (job.step, job.estimate_s)
        return 0

    job = Job(kind="t", title="t")
    job._run(work)
    assert seen == {"reduce": 99.0, "cluster": ("cluster", 3.0)}


def test_a_finished_umap_map_drops_the_compile_time_from_later_estimates(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(jobs, "_umap_compiled", False)
    before = estimate_seconds("umap", 10_000)

    def work(report, should_stop):  # noqa: ANN001, ANN202
        report(None, "UMAP of 10,000 points (UMAP compiles for ~30 s the first time)")
        return "map.npy"

    job = Job(kind="map", title="2-D map (UMAP)")
    job._run(work)
    assert job.status == "done"
    assert before - estimate_seconds("umap", 10_000) == pytest.approx(jobs.UMAP_COMPILE_S)


def test_the_cluster_job_names_the_silent_reduction_and_estimates_both_steps(tmp_path, monkeypatch):
    """run_pipeline says "cluster: kmeans, k=10", then reduces (no word for minutes), then iterates:
    the wrapper says "reducing: UMAP-10 of N points" with an estimate, then k-means with its own."""
    from core.config import ClusterConfig, DataConfig, FeatureConfig
    from ui import cluster_jobs, engine

    said = [("data: opening digits", 0.0), ("features: features reused from the cache", 1.0),
            ("cluster: kmeans, k=12", 0.0), ("cluster: iteration 1, inertia 9.1, moved 0.3", 0.0),
            ("scores: scoring", 0.0)]

    def fake_cluster_work(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        def work(report, should_stop):  # noqa: ANN001, ANN202
            for msg, frac in said:
                report(frac, msg)
            return 7
        return work

    monkeypatch.setattr(engine, "cluster_work", fake_cluster_work)
    monkeypatch.setattr(jobs, "_umap_compiled", True)

    class DS:
        def __len__(self) -> int:
            return 60_000

    got: list[tuple] = []
    c = ClusterConfig(algo="kmeans", k=12, reduce="umap:10")
    work = cluster_jobs.cluster_work(DataConfig("digits"), FeatureConfig(backbone="pixels"), c, tmp_path,
                                     ds=DS(), feature_key="abc", feature_dim=1280)
    assert work(lambda *a: got.append(a), lambda: False) == 7
    reducing = next(g for g in got if g[1].startswith("reducing:"))
    assert reducing == (None, "reducing: UMAP-10 of 60,000 points before clustering",
                        estimate_seconds("umap", 60_000, dims=10, features=50))
    it = next(g for g in got if "iteration 1" in g[1])
    assert it[2] == estimate_seconds("kmeans", 60_000, features=10, k=12, restarts=10)
    assert not any(g[1] == "cluster: kmeans, k=12" for g in got)   # replaced by the reduction's own step

    (tmp_path / "reduced").mkdir()                                   # cached: no reduction step
    from core.pipeline import reduced_path

    reduced_path(tmp_path / "reduced", "abc", c).write_bytes(b"")
    got.clear()
    cluster_jobs.cluster_work(DataConfig("digits"), FeatureConfig(backbone="pixels"), c, tmp_path, ds=DS(),
                              feature_key="abc", feature_dim=1280)(lambda *a: got.append(a), lambda: False)
    assert not any(g[1].startswith("reducing:") for g in got)


def test_a_big_map_says_rows_placed_and_its_sample_fit_gets_an_estimate():
    bar, text = progress_line("2-D map (UMAP)", "placed 200,000 of 1,000,000 points, 52,000 points/s",
                              0.2, 4.0, 40.0)
    assert bar == pytest.approx(0.2)
    assert "200,000 / 1,000,000 points · 52,000 points/s · about 15 s left" in text
    assert estimate_from_message("UMAP on a sample of 50,000 of 1,000,000 points (UMAP compiles …)") == \
        estimate_seconds("umap", 50_000)


def test_the_map_job_reports_core_projections_progress_and_stops_on_request(tmp_path):
    """ui.engine.map_work passes a progress callback to core.projection.project: its steps reach
    the job, and a stop raises Cancelled at the next step (nothing saved)."""
    import numpy as np

    from core.config import FeatureConfig, MapConfig
    from core.data import open_dataset
    from ui import engine

    ds = open_dataset("digits", workspace=tmp_path, limit=200)
    seen: list[tuple] = []
    work = engine.map_work(ds, FeatureConfig(backbone="pixels"), "k", MapConfig(method="pca"), tmp_path)
    path = work(lambda *a: seen.append(a), lambda: False)
    assert np.load(path).shape == (200, 2)
    assert (None, "PCA of 200 points") in seen and any(m.startswith("PCA of 200 points took") for _, m in seen)
    asked = {"stop": False}   # Stop pressed once the map itself has begun (the features are loaded)

    def report(fraction, message):  # noqa: ANN001, ANN202
        asked["stop"] = asked["stop"] or message.startswith("PCA of")

    with pytest.raises(jobs.Cancelled, match="the map was stopped"):
        engine.map_work(ds, FeatureConfig(backbone="pixels"), "k2", MapConfig(method="pca"), tmp_path)(
            report, lambda: asked["stop"])
    assert not engine.map_path(tmp_path, "k2", MapConfig(method="pca")).exists()
