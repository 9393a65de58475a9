"""CI's sync check catches a notebook pair edited without `make sync` (and passes when nothing was edited)."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
pytestmark = pytest.mark.skipif(not (VENV / "bin" / "jupytext").exists(), reason="needs the project venv (make setup)")


def work_tree_copy(tmp_path: Path) -> Path:
    "The work tree (tracked and untracked, not ignored files) copied into a fresh git repository."
    listing = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    files = subprocess.run(listing, cwd=ROOT, capture_output=True, check=True).stdout
    dest = tmp_path / "repo"
    for name in filter(None, files.decode().split("\0")):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, target)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(dest)]
    subprocess.run(["git", "init", "-q", str(dest)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "copy"], check=True)
    return dest


def check_sync(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "check-sync", f"VENV={VENV}"], cwd=repo, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "MAKEFLAGS": ""})


def test_sync_check(tmp_path):
    repo = work_tree_copy(tmp_path)
    clean = check_sync(repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    pair = repo / "nbs" / "01_jsonlog.py"
    pair.write_text(pair.read_text().replace('MASK = "***"', 'MASK = "###"'))
    edited = check_sync(repo)
    assert edited.returncode != 0
    assert "edited without syncing" in edited.stderr


def test_parameters_tag_survives_clean_and_pairing(tmp_path):
    "papermill finds its `parameters` cell only if nbdev-clean and the jupytext pair keep the tag."
    pair = tmp_path / "report.py"
    pair.write_text('# %% tags=["parameters"]\nstrategy = "rsi2"\n\n# %%\nprint(strategy)\n')
    run = dict(cwd=ROOT, check=True, capture_output=True)
    subprocess.run([VENV / "bin" / "jupytext", "--to", "ipynb", str(pair)], **run)
    subprocess.run([VENV / "bin" / "nbdev-clean", "--fname", str(tmp_path / "report.ipynb")], **run)
    import nbformat
    nb = nbformat.read(tmp_path / "report.ipynb", as_version=4)
    assert nb.cells[0].metadata.get("tags") == ["parameters"]
    pair.unlink()
    subprocess.run([VENV / "bin" / "jupytext", "--to", "py:percent", str(tmp_path / "report.ipynb")], **run)
    assert pair.read_text().count('tags=["parameters"]') == 1


def test_setup_stays_up_to_date_after_sync():
    "`make sync` must not touch what `make setup` depends on, or every `make test` would reinstall."
    proc = subprocess.run(["make", "-s", "sync"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run(["make", "-q", "setup"], cwd=ROOT).returncode == 0, "make setup would run again"
