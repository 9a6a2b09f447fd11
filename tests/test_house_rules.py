"""DESIGN.md's rules that a machine can check."""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit_in_source():
    offenders = [p.relative_to(ROOT).as_posix() for p in (ROOT / "core").rglob("*.py")
                 if "import streamlit" in p.read_text() or "from streamlit" in p.read_text()]
    assert offenders == []


def test_importing_the_engine_does_not_load_streamlit():
    code = ("import sys, core.pipeline, core.cli, core.store, core.metrics, core.projection; "
            "import core.cluster.kmeans, core.data, core.features.extract; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
