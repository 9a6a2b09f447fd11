"""App speed: k slider on 10,000 cached samples, a 60-thumbnail gallery page, a 100,000-point map.

    python bench/bench_app.py [--skip-browser] [--only-review | --only-explore] [--repeat 3]

Prints a table; nothing here is asserted (DESIGN.md: figures go to the issue and bench/RESULTS.md).
1. k slider: AppTest drives the real Cluster page on the Fashion-MNIST test split (10,000 images,
   `pixels` features already cached); each row is one slider move -> new recorded run -> page drawn.
2. Gallery: building one page of 60 thumbnails, cold (decode + resize + PNG) and warm (st.cache_data),
   and a whole Explore page rerun after turning the gallery page.
3. Map: a 100,000-point Scattergl (ui.figures.scatter) in a real chromium: time to draw, time from
   releasing a lasso to the app listing the selection, and the longest main-thread task (freezing).
4. Review clicks (issue 26): the real app served as in the browser tests, a digits run and a
   Fashion-MNIST test-split run (pixels, k-means k=10, PCA-50); per action the time from the click
   or key to what it shows being visible: a tile's outline, the "N image(s) selected" count, a move
   by its number key ("Moved … Saved."), undo by z ("Undone. Saved."), and the enlarged view (⤢ →
   the big image and its 8 neighbours drawn).
5. Explore clicks (issue 26): the same served app, a digits and a Fashion-MNIST test-split run with a
   PCA map; a filter change (the confidence range's upper end one key press lower) → its caption, the
   map's point count and the gallery's tiles as the filter keeps them; a "Colour by" click → the
   map's trace names and legend entries (or its colour bar) in the new colouring.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS: list[tuple[str, str, str]] = []


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what}: {value} {note}", flush=True)


def _until(at, done, timeout: float = 300.0):  # noqa: ANN001, ANN202
    end = time.monotonic() + timeout
    while not done(at):
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        if time.monotonic() > end:
            raise TimeoutError
        time.sleep(0.05)
        at.run()
    return at


def bench_slider_and_gallery(repeat: int) -> None:
    from streamlit.testing.v1 import AppTest

    from tests.app.helpers import texts

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.selectbox(key="w_demo").select("fashion-mnist")
    at.button(key="w_use_demo").click().run()
    at.switch_page("pages/features.py").run()
    at.selectbox(key="w_backbone").select("pixels").run()
    at.button(key="w_extract").click().run()
    _until(at, lambda a: any("Features ready" in s.value for s in a.success))
    at.switch_page("pages/cluster.py").run()
    at.button(key="w_run").click().run()   # warm-up: first k-means pays torch's start-up
    _until(at, lambda a: "— kmeans, k=10" in texts(a))
    times = []
    for i, k in enumerate([8, 12, 9, 11, 7, 13][: max(2, repeat * 2)]):
        t = time.perf_counter()
        at.slider(key="w_k").set_value(k).run()
        _until(at, lambda a, k=k: f"— kmeans, k={k}," in texts(a))
        times.append(time.perf_counter() - t)
        print(f"    k={k}: {times[-1]:.2f} s", flush=True)
        del i
    row("k slider -> new run drawn (10,000 × 784 pixels, reduce pca:50)",
        f"median {statistics.median(times):.2f} s, max {max(times):.2f} s", f"{len(times)} moves, AppTest")

    # Gallery: 60 thumbnails cold and warm, through the same cached function the grid uses.
    from ui import engine
    from ui.state import get_state

    state = at.session_state["clusterlens"] if "clusterlens" in at.session_state else get_state()
    ds = engine.dataset(state.data.source, str(Path(os.environ["CLUSTERLENS_HOME"])), state.data.limit)
    rows = list(range(5000, 5060))
    t = time.perf_counter()
    for r in rows:
        engine.thumb_uri(ds.fingerprint, r, 64, ds)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(max(3, repeat)):
        t = time.perf_counter()
        for r in rows:
            engine.thumb_uri(ds.fingerprint, r, 64, ds)
        warm.append(time.perf_counter() - t)
    row("gallery page, 60 thumbnails (28×28 → 64 px PNG)", f"cold {cold:.3f} s, warm {min(warm):.3f} s")

    at.switch_page("pages/explore.py").run()
    _until(at, lambda a: "Cluster gallery" in texts(a))
    key = next(w.key for w in at.number_input if w.key and w.key.startswith("w_gallery_page"))
    pages = []
    for p in [2, 3, 2, 4][: max(2, repeat + 1)]:
        t = time.perf_counter()
        at.number_input(key=key).set_value(p).run()
        pages.append(time.perf_counter() - t)
    row("Explore page rerun after turning the gallery page (10k map + 60 tiles + prototypes)",
        f"median {statistics.median(pages):.2f} s", "first visit of each page includes cold thumbnails")


SCATTER_APP = """
import numpy as np, streamlit as st
from ui import figures, gallery
rng = np.random.default_rng(0)
n, k = 100_000, 10
centres = rng.normal(0, 6, (k, 2))
labels = rng.integers(0, k, n)
xy = (centres[labels] + rng.normal(0, 1, (n, 2))).astype(np.float32)
ids = [f"all/{i}" for i in range(n)]
fig = figures.scatter(xy, ids, labels, [f"cluster {c}" for c in range(k)])
ev = st.plotly_chart(fig, key="m", on_select="rerun", selection_mode=("points", "box", "lasso"))
sel = gallery.selected_ids(ev)
st.markdown(f"Selected: {len(sel)}" if sel else "Nothing selected")
"""


def bench_browser() -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, _free_port

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "scatter_app.py"
        script.write_text(SCATTER_APP)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
                                 "--server.address", "127.0.0.1", "--server.headless", "true",
                                 "--browser.gatherUsageStats", "false"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            import urllib.request

            for _ in range(180):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = b.new_page(viewport={"width": 1400, "height": 1000})
                page.add_init_script("""window.__long = 0; new PerformanceObserver(l => { for (const e of
                    l.getEntries()) window.__long = Math.max(window.__long, e.duration); })
                    .observe({type: 'longtask', buffered: true});""")
                t = time.perf_counter()
                page.goto(f"http://127.0.0.1:{port}")
                page.get_by_text("Nothing selected").wait_for(timeout=120_000)
                page.locator(".js-plotly-plot .gl-container canvas").first.wait_for(timeout=120_000)
                page.wait_for_function("() => document.querySelector('.js-plotly-plot')?._fullLayout != null")
                drawn = time.perf_counter() - t
                draw_long = page.evaluate("window.__long")
                page.evaluate("window.__long = 0")
                box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
                cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                w, h = box["width"] / 5, box["height"] / 5
                pts = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + h), (cx - w, cy + h), (cx - w, cy - h)]
                page.mouse.move(*pts[0])
                page.mouse.down()
                for x, y in pts[1:]:
                    page.mouse.move(x, y, steps=10)
                t = time.perf_counter()
                page.mouse.up()
                page.get_by_text("Selected:").wait_for(timeout=120_000)
                selected = time.perf_counter() - t
                n = page.get_by_text("Selected:").inner_text()
                sel_long = page.evaluate("window.__long")
                ping = page.evaluate("""() => new Promise(r => { const t = performance.now();
                    setTimeout(() => r(performance.now() - t), 0); })""")
                b.close()
        finally:
            proc.terminate()
            proc.wait(10)
    row("100,000-point Scattergl: page load -> map drawn", f"{drawn:.1f} s",
        f"longest main-thread task {draw_long:.0f} ms")
    row("lasso release -> app lists the selection", f"{selected:.1f} s",
        f"{n}; longest main-thread task {sel_long:.0f} ms; event-loop ping after {ping:.0f} ms")


def _review_clicks(page, url: str, run: int, label: str, repeat: int) -> None:  # noqa: ANN001
    import re

    from tests.e2e.test_review_browser import TILES, settled, tile_ids

    page.goto(f"{url}/review?run={run}")
    page.locator('[data-testid="stSidebar"]').get_by_text(f"Run: #{run}", exact=True).wait_for(timeout=300_000)
    page.get_by_text(re.compile(rf"^Run #{run} ")).first.wait_for(timeout=300_000)
    page.locator(TILES).first.wait_for(timeout=300_000)
    settled(page)
    took: dict[str, list[float]] = {k: [] for k in ("outline", "count", "move", "undo", "enlarge")}
    for i in range(repeat):
        sid = tile_ids(page)[i]
        t = time.perf_counter()
        page.locator(f'{TILES}[data-id="{sid}"]').click()
        page.wait_for_selector(f'.cl-pick[data-id="{sid}"][aria-pressed="true"]', state="attached")
        took["outline"].append(time.perf_counter() - t)
        page.get_by_text("1 image(s) selected").first.wait_for()
        took["count"].append(time.perf_counter() - t)
        settled(page)
        target = next(c for c in range(10) if f"cluster_{c} ·" not in
                      page.locator(f'{TILES}[data-id="{sid}"] span.cap').inner_text())
        t = time.perf_counter()
        page.keyboard.press(str(target))
        page.get_by_text(f"Moved 1 image(s) to cluster_{target}. Saved.").first.wait_for()
        took["move"].append(time.perf_counter() - t)
        settled(page)
        t = time.perf_counter()
        page.keyboard.press("z")
        page.get_by_text("Undone. Saved.").first.wait_for()
        took["undo"].append(time.perf_counter() - t)
        settled(page)
        other = tile_ids(page)[i + 1]
        t = time.perf_counter()
        page.locator(f'.cl-open[data-open="{other}"]').click()
        dialog = page.get_by_role("dialog")
        dialog.locator(f'img.cl-big[data-sample-id="{other}"]').wait_for()
        page.wait_for_function("() => document.querySelectorAll('#enlarged-neighbours [data-sample-id]').length == 8")
        took["enlarge"].append(time.perf_counter() - t)
        page.keyboard.press("Escape")
        dialog.wait_for(state="detached")
        settled(page)
    what = {"outline": "tile click → its outline", "count": "tile click → 'N image(s) selected'",
            "move": "number key → 'Moved … Saved.'", "undo": "z → 'Undone. Saved.'",
            "enlarge": "⤢ → enlarged view with 8 neighbours"}
    for k, v in took.items():
        row(f"{label}: {what[k]}", f"median {statistics.median(v):.2f} s, max {max(v):.2f} s", f"{len(v)} tries")


def bench_review_clicks(repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, served_app

    home = Path(os.environ["CLUSTERLENS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, source in (("digits", "digits"), ("Fashion-MNIST test", "fashion-mnist")):
        runs[label] = run_pipeline(RunConfig(data=DataConfig(source=source), features=FeatureConfig(backbone="pixels"),
                                             cluster=ClusterConfig(algo="kmeans", k=10, reduce="pca:50"),
                                             map=MapConfig(method="none"), workspace=str(home))).run_id
    with served_app(home) as url, sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label, run in runs.items():
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            _review_clicks(page, url, run, label, repeat)
            page.close()
        b.close()


# The Explore map's trace names, legend entries and point count, as plotly drew them.
MAP_NOW = """() => {
  const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  if (!gd || !gd._fullData) return null;
  return {names: gd._fullData.map(t => t.name), points: gd._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0),
          legend: Array.from(gd.querySelectorAll('.legend .traces .legendtext')).map(e => e.textContent),
          colorbar: gd.querySelector('.colorbar') !== null};
}"""
MAP_POINTS = """(n) => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  return !!gd && !!gd._fullData && gd._fullData.reduce((s, t) => s + (t.x ? t.x.length : 0), 0) === n; }"""
GALLERY_IS = """(want) => { const got = Array.from(document.querySelectorAll('#cluster-grid [data-sample-id]'))
  .map(e => e.getAttribute('data-sample-id'));
  return got.length === want.length && got.every((v, i) => v === want[i]); }"""
MAP_COLOURED = """([names, conf]) => { const gd = document.querySelector('.st-key-map_chart .js-plotly-plot');
  if (!gd || !gd._fullData) return false;
  const got = gd._fullData.map(t => t.name).sort();
  if (conf) return got.length === 1 && got[0] === 'confidence' && gd.querySelector('.colorbar') !== null;
  const legend = Array.from(gd.querySelectorAll('.legend .traces .legendtext')).map(e => e.textContent).sort();
  const want = [...names].sort();
  return JSON.stringify(got) === JSON.stringify(want) && JSON.stringify(legend) === JSON.stringify(want); }"""


def _explore_clicks(page, url: str, run: int, label: str, repeat: int, home: Path, source: str) -> None:  # noqa: ANN001
    """Filter change and map colour change on the Explore page; what counts as visible is computed
    here from the run's own labels and confidences (ui.review.load_view, what the page reads)."""
    import numpy as np

    from core.config import DataConfig
    from core.pipeline import load_dataset
    from tests.e2e.test_explore_browser import PLOT, open_explore
    from tests.e2e.test_review_browser import settled
    from ui import gallery, review

    view = review.load_view(home, run)
    ds = load_dataset(DataConfig(source=source), str(home))
    ids = np.asarray(view.ids, dtype=object)
    truth = np.asarray(ds.labels)
    class_names = ds.class_names or [str(i) for i in range(int(truth.max()) + 1)]
    cluster = review.browse_choices(view)[0]            # the gallery's first cluster (its default)
    open_explore(page, url, run)
    page.locator('[data-testid="stExpander"]', has_text="Filter the images").locator("summary").first.click()
    slider = page.locator('[data-testid="stSlider"]', has_text="Confidence").first
    slider.get_by_role("slider").nth(1).wait_for()

    def expected(hi: float) -> tuple[int, list[str]]:   # the kept count and the gallery's 60 tiles
        keep = (view.confidence >= -1e-9) & (view.confidence <= hi + 1e-9)
        rows = gallery.cluster_rows(np.where(keep, view.labels, -2), view.confidence, cluster, gallery.ORDERS[0])
        return int(keep.sum()), [str(s) for s in ids[rows[:60]]]

    # Start the range's upper end just above the gallery cluster's most confident image (untimed), so
    # that each timed key press leaves out its most typical images: the count and the tiles change.
    top = int(np.ceil(float(view.confidence[view.labels == cluster].max()) / 0.05 - 1e-9))
    thumb = slider.get_by_role("slider").nth(1)
    thumb.focus()
    for _ in range(20 - top):
        thumb.press("ArrowLeft")
    page.get_by_text(f"confidence 0.00–{top * 0.05:.2f}) keeps {expected(top * 0.05)[0]:,} of").first.wait_for()
    settled(page)
    took: dict[str, list[float]] = {"caption": [], "map": [], "gallery": []}
    changed = 0
    before = page.evaluate(MAP_NOW)["points"], page.locator("#cluster-grid [data-sample-id]").evaluate_all(
        "els => els.map(e => e.getAttribute('data-sample-id'))")
    for i in range(repeat):                             # the upper end 0.05 lower per try (one key press)
        hi = round(0.05 * (top - i - 1), 2)
        n, want = expected(hi)
        changed += (n != before[0]) and (want != before[1])
        thumb = slider.get_by_role("slider").nth(1)
        thumb.focus()
        t = time.perf_counter()
        thumb.press("ArrowLeft")
        page.get_by_text(f"confidence 0.00–{hi:.2f}) keeps {n:,} of {len(ids):,} images").first.wait_for()
        took["caption"].append(time.perf_counter() - t)
        page.wait_for_function(MAP_POINTS, arg=n)
        took["map"].append(time.perf_counter() - t)
        page.wait_for_function(GALLERY_IS, arg=want)
        took["gallery"].append(time.perf_counter() - t)
        before = n, want
        settled(page)
    page.get_by_role("button", name="Clear the filter").click()
    page.wait_for_function(MAP_POINTS, arg=len(ids))
    settled(page)
    page.locator(PLOT).first.wait_for()
    colour_by = page.locator('[data-testid="stRadio"]', has_text="Colour by")
    names = {"cluster": sorted({"outliers" if c < 0 else view.name(int(c)) for c in np.unique(view.labels)}),
             "true label": sorted({class_names[int(c)] for c in np.unique(truth)}), "confidence": []}
    took["colour"] = []
    order = ["true label", "confidence", "cluster"]
    for i in range(repeat * len(order)):
        to = order[i % len(order)]
        t = time.perf_counter()
        colour_by.get_by_text(to, exact=True).click()
        page.wait_for_function(MAP_COLOURED, arg=[names[to], to == "confidence"])
        took["colour"].append(time.perf_counter() - t)
        settled(page)
    what = {"caption": "filter (upper confidence −0.05, one key) → its caption 'keeps N of M'",
            "map": "filter → map redrawn with the N kept points",
            "gallery": "filter → map and gallery redrawn (gallery's 60 tiles = the kept ones)",
            "colour": "'Colour by' click → map's traces and legend in the new colouring"}
    notes = {"caption": f"{repeat} tries", "map": f"{repeat} tries; {changed} changed both the count and the tiles",
             "gallery": f"{repeat} tries",
             "colour": f"{len(took['colour'])} clicks, cycling true label → confidence → cluster"}
    for k, v in took.items():
        row(f"{label}: {what[k]}", f"median {statistics.median(v):.2f} s, max {max(v):.2f} s", notes[k])


def bench_explore_clicks(repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    from core.config import ClusterConfig, DataConfig, FeatureConfig, MapConfig, RunConfig
    from core.pipeline import run_pipeline
    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, served_app

    home = Path(os.environ["CLUSTERLENS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    runs = {}
    for label, source in (("digits", "digits"), ("Fashion-MNIST test", "fashion-mnist")):
        runs[label] = source, run_pipeline(RunConfig(
            data=DataConfig(source=source), features=FeatureConfig(backbone="pixels"),
            cluster=ClusterConfig(algo="kmeans", k=10, reduce="pca:50"), map=MapConfig(method="pca"),
            workspace=str(home))).run_id
    with served_app(home) as url, sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for label, (source, run) in runs.items():
            page = b.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            _explore_clicks(page, url, run, label, repeat, home, source)
            page.close()
        b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-browser", action="store_true")
    ap.add_argument("--only-review", action="store_true", help="only the review click timings (4.)")
    ap.add_argument("--only-explore", action="store_true", help="only the Explore click timings (5.)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("CLUSTERLENS_HOME", str(Path(tempfile.gettempdir()) / "clusterlens-bench-app"))
    os.environ.setdefault("CLUSTERLENS_JOB_WAIT_S", "10")   # a move finishes within the same script run
    print(f"workspace {os.environ['CLUSTERLENS_HOME']}, {os.cpu_count()} CPU(s)", flush=True)
    only = args.only_review or args.only_explore
    if not only:
        bench_slider_and_gallery(args.repeat)
    if not args.skip_browser:
        if not only:
            bench_browser()
        if not args.only_explore:
            bench_review_clicks(max(args.repeat, 3))
        if not args.only_review:
            bench_explore_clicks(max(args.repeat, 3))
    w = max(len(r[0]) for r in ROWS)
    print("\n| what | time | note |\n|---|---|---|")
    for what, value, note in ROWS:
        print(f"| {what:<{w}} | {value} | {note} |")


if __name__ == "__main__":
    main()
