"""The browser map at scale: plotly's WebGL scatter (today's map) against the datashader big map
(ui/bigmap.py), at 100k and 1M synthetic points, in headless Debian chromium via Playwright.

For each renderer and size: a fresh `streamlit run bench/_map_scale_app.py` (the map drawn as
the Explore page draws it, the selection's ids below it as gallery tiles), then per repeat a
fresh browser tab with a PerformanceObserver for 'longtask' entries installed before the page
loads, and three timings:

- load: navigation to the map drawn (plotly: its WebGL canvas painted; big map: the server's
  image on the canvas);
- lasso: mouse up of a lasso drawn around the middle of the map to the selection's tiles shown;
- zoom: one wheel step to the map drawn at the new range (big map: the server's re-rendering).

and the longest main-thread task in each phase (the target: none over 1 s). Wall times are
noisy on a shared machine; run with nothing else heavy if you can.

    python3 bench/bench_map_scale.py                    # 100k and 1M, both renderers, twice
    python3 bench/bench_map_scale.py --sizes 20000 --repeats 1 --modes bigmap
"""
from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

LONGTASKS = """
window.__lt = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__lt.push([e.startTime, e.duration]); })
  .observe({ type: 'longtask', buffered: true });
"""

PLOTLY_DRAWN = """() => { const gd = document.querySelector('.js-plotly-plot');
  return !!(gd && gd._fullLayout && gd._fullData && gd._fullData.length
            && gd.querySelector('canvas.gl-canvas-context'));
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(n: int, mode: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "MAPBENCH_N": str(n), "MAPBENCH_MODE": mode, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "bench" / "_map_scale_app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--server.maxMessageSize", "2000"],
                            cwd=ROOT, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start: {log.read_text()[-2000:]}")
        time.sleep(0.5)


def longest(page, since: float) -> float:  # noqa: ANN001
    """Longest main-thread task (s) that started after ``since`` (ms, performance.now())."""
    tasks = page.evaluate("(t) => window.__lt.filter(e => e[0] + e[1] >= t).map(e => e[1])", since)
    return max(tasks, default=0.0) / 1000


def now(page) -> float:  # noqa: ANN001
    return page.evaluate("() => performance.now()")


def map_box(page, mode: str) -> dict:  # noqa: ANN001
    if mode == "plotly":
        return page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    return page.locator(".st-key-bigmap canvas").first.bounding_box()


def wait_drawn(page, mode: str, timeout_ms: float) -> None:  # noqa: ANN001
    if mode == "plotly":
        page.wait_for_function(PLOTLY_DRAWN, timeout=timeout_ms)
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    else:
        page.locator('.st-key-bigmap canvas[data-rendered="1"]').wait_for(timeout=timeout_ms)


def one(browser, url: str, mode: str, timeout_s: float) -> dict:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.add_init_script(LONGTASKS)
    page = ctx.new_page()
    out: dict = {}
    try:
        t0 = time.perf_counter()
        page.goto(url, timeout=timeout_s * 1000)
        try:
            wait_drawn(page, mode, timeout_s * 1000)
        except Exception:  # noqa: BLE001 - a timeout is the measurement
            out["load"] = None
            out["load_task"] = longest(page, 0)
            return out
        out["load"] = time.perf_counter() - t0
        page.wait_for_timeout(1500)   # trailing tasks of the first draw count to the load
        out["load_task"] = longest(page, 0)

        # lasso a square-ish polygon around the middle of the map (an octagon, points on the way)
        box = map_box(page, mode)
        cx, cy = box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.5
        rx, ry = box["width"] * 0.1, box["height"] * 0.1
        import math
        poly = [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in [i * math.pi / 4 for i in range(9)]]
        page.mouse.move(*poly[0])
        since = now(page)
        page.mouse.down()
        for x, y in poly[1:]:
            page.mouse.move(x, y, steps=4)
        t1 = time.perf_counter()
        page.mouse.up()
        header = page.get_by_text(re.compile(r"Selection: [\d,]+ image"))
        try:
            header.first.wait_for(timeout=timeout_s * 1000)
            page.locator("#selection-grid [data-sample-id]").first.wait_for(timeout=timeout_s * 1000)
            out["lasso"] = time.perf_counter() - t1
            out["selected"] = int(re.search(r"([\d,]+)", header.first.inner_text()).group(1).replace(",", ""))
        except Exception:  # noqa: BLE001
            out["lasso"] = None
        page.wait_for_timeout(1000)
        out["lasso_task"] = longest(page, since)

        # one wheel step (zoom in) at the middle, to the map drawn again
        if mode == "plotly":
            page.evaluate("() => { const gd = document.querySelector('.js-plotly-plot');"
                          " gd.__zoomed = false; gd.on('plotly_relayout', () => { gd.__zoomed = true; }); }")
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
        page.wait_for_timeout(300)
        since = now(page)
        t2 = time.perf_counter()
        page.mouse.wheel(0, -240)
        try:
            if mode == "plotly":
                page.wait_for_function("() => document.querySelector('.js-plotly-plot').__zoomed",
                                       timeout=timeout_s * 1000)
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            else:
                page.locator('.st-key-bigmap canvas[data-rendered="0"]').wait_for(timeout=5_000)
                page.locator('.st-key-bigmap canvas[data-rendered="1"]').wait_for(timeout=timeout_s * 1000)
            out["zoom"] = time.perf_counter() - t2
        except Exception:  # noqa: BLE001
            out["zoom"] = None
        page.wait_for_timeout(1000)
        out["zoom_task"] = longest(page, since)
        return out
    finally:
        ctx.close()


def fmt(v: float | None, unit: str = " s") -> str:
    return "—" if v is None else f"{v:.2f}{unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--modes", nargs="+", default=["plotly", "bigmap"], choices=["plotly", "bigmap"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=240, help="seconds one step may take before it counts as failed")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    rows = []
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        for mode in args.modes:
            for n in args.sizes:
                proc, url = serve(n, mode, Path(tmp) / f"{mode}-{n}.log")
                try:
                    for rep in range(args.repeats):
                        r = one(browser, url, mode, args.timeout)
                        rows.append((mode, n, rep + 1, r))
                        print(f"# {mode} {n:,} repeat {rep + 1}: {r}", file=sys.stderr, flush=True)
                finally:
                    proc.terminate()
                    proc.wait(20)
        browser.close()
    names = {"plotly": "plotly scattergl (today)", "bigmap": "datashader image (ui/bigmap.py)"}
    print("| renderer | points | run | load | longest task, load | lasso → gallery | longest task, lasso "
          "| zoom → redrawn | longest task, zoom | selected |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for mode, n, rep, r in rows:
        print(f"| {names[mode]} | {n:,} | {rep} | {fmt(r.get('load'))} | {fmt(r.get('load_task'))} | "
              f"{fmt(r.get('lasso'))} | {fmt(r.get('lasso_task'))} | {fmt(r.get('zoom'))} | "
              f"{fmt(r.get('zoom_task'))} | {r.get('selected', '—'):,} |" if isinstance(r.get("selected"), int) else
              f"| {names[mode]} | {n:,} | {rep} | {fmt(r.get('load'))} | {fmt(r.get('load_task'))} | "
              f"{fmt(r.get('lasso'))} | {fmt(r.get('lasso_task'))} | {fmt(r.get('zoom'))} | "
              f"{fmt(r.get('zoom_task'))} | — |")


if __name__ == "__main__":
    main()
