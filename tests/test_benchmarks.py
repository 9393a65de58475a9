"""The benchmark scripts still speak the library's API (they run outside `make test`, so a rename would break them
unseen): each one imports, and the runner benchmark's synthetic setup builds. No figure is measured here."""
import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPTS = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
SETUP = {"bench_runner": "s, frames = b.synthetic_setup(); assert len(s.symbols) == len(frames) == b.N_SYMBOLS"}


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports(name):
    code = f"import sys; sys.path.insert(0, 'benchmarks'); import {name} as b; {SETUP.get(name, 'pass')}"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
