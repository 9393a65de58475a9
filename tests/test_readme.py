"""The README's research quickstart runs as written, and is the docs home's tour (nbs/index.py), not a copy of it."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quickstart() -> str:
    "The python code of the README's 'Research quickstart' section."
    text = (ROOT / "README.md").read_text()
    section = text.split("## Research quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "the README's research quickstart has no python block"
    return "\n".join(blocks)


def test_quickstart_lines_come_from_the_tour():
    tour = (ROOT / "nbs" / "index.py").read_text()
    missing = [line for line in quickstart().splitlines() if line.strip() and line.strip() not in tour]
    assert not missing, f"README quickstart lines not in nbs/index.py (edit the tour, then the README): {missing}"


def test_quickstart_runs_as_written(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg", "TRADINGBOT_LOG_DIR": str(tmp_path / "logs")}
    script = quickstart() + "\nprint('verdict:', v.verdict.passed, len(v.verdict.reasons), stats['trades'], len(table))\n"
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    verdict = out.stdout.strip().splitlines()[-1].split()
    assert verdict[:2] == ["verdict:", "False"] and int(verdict[2]) > 0  # reasons named
    assert int(verdict[3]) > 50 and int(verdict[4]) == 9
