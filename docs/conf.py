"""Sphinx configuration of the documentation site (`make docs`; `docs/build.py` says how it is built).

The sources are the executed notebooks in `_proc/`; nothing is executed here."""
import importlib.util
import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

project = _project["name"]
author = _project["authors"][0]["name"]
copyright = "tradingbot developers"
root_doc = "index"

extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# myst-nb: the notebooks arrive executed by docs/build.py (the nbdev-test shell), so never run them again
nb_execution_mode = "off"
nb_merge_streams = True
nb_code_prompt_show = "Show {type}"
nb_code_prompt_hide = "Hide {type}"
myst_enable_extensions = ["dollarmath", "colon_fence", "attrs_block"]

html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_title = f"{project} documentation"
html_show_sourcelink = False   # the "source" of a page is the executed notebook; nbs/ holds the real one
html_copy_source = False

# MathJax from the sphinx-mathjax-offline package instead of a CDN, so formulas render without a
# network; only the pieces tex-chtml loads are copied (the package holds 24 MB).
mathjax_path = "mathjax/tex-chtml.js"
_MATHJAX = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static" / "mathjax"
_MATHJAX_PARTS = ["tex-chtml.js", "output/chtml/fonts/woff-v2", "input/tex/extensions", "ui", "a11y"]


def _copy_mathjax(app, exc):
    if exc is not None:
        return
    for part in _MATHJAX_PARTS:
        src, dest = _MATHJAX / part, Path(app.outdir) / "_static" / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dest, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest)


def setup(app):
    app.connect("build-finished", _copy_mathjax)
