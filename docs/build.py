"""Build the documentation site: every notebook of nbs/ executed into _proc/, rendered by Sphinx into _docs/.

    python docs/build.py [--out _docs] [--proc _proc] [--workers 2]     (make docs)

Step 1 (`process`) runs each notebook through nbdev's own processors (the ones `nbdev-proc-nbs` uses
for Quarto, which cannot be installed here): `add_show_docs` inserts a `show_doc` cell after every
exported function and class, and the notebook is executed cell by cell in execnb's shell — the same
shell and the same skipped cells (`tst_flags`: notest, slow) as `nbdev-test`. Each `show_doc` cell
becomes a markdown section holding what nbdev's show_doc renders (fastcore's `MarkdownRenderer`: the
signature with one docment per parameter, then the docstring) under a heading that is a Sphinx label.
Exported source stays on the page, folded below the symbol's documentation; `#| hide` cells run but
are left out. Backticked names of the library in the prose link to their section.

Step 2 renders `_proc/` with Sphinx + myst-nb (configuration in `docs/conf.py`) without executing
again; any Sphinx warning (a broken cross-reference, a missing image) fails the build.

Pages are named as nbdev names them: `nbs/52_validation.metrics.ipynb` -> `validation.metrics.html`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PROC = ROOT / "_proc"

# Section captions of the sidebar, by the first part of a notebook's `default_exp`.
SECTIONS = {"data": "Data", "indicators": "Indicators", "execution": "Execution", "validation": "Validation",
            "strategies": "Strategies", "runtime": "Runtime", "brokers": "Brokers"}
CORE = "Core"   # modules directly under tradingbot/ (config, paths, labeling, ...)

_re_default_exp = re.compile(r"^\s*#\|\s*default_exp\s+(\S+)", re.M)
_re_show_doc = re.compile(r"show_doc\(([\w.]+)\)")
_re_backticks = re.compile(r"`([A-Za-z_][\w.]*?)(?:\(\))?`")


def page_name(notebook: Path) -> str:
    "nbdev's page name of a notebook: the file name without its numeric prefix (`52_x.y` -> `x.y`)."
    return re.sub(r"^\d+[a-zA-Z0-9]*_", "", notebook.stem.lower())


def notebooks() -> list[Path]:
    "The notebooks that are pages: nbs/*.ipynb (nbs/reports/ holds papermill templates, not pages)."
    return sorted((ROOT / "nbs").glob("*.ipynb"))


# ---------------------------------------------------------------- symbols and links
def _exported_names(notebook: Path) -> tuple[str | None, list[str]]:
    "The notebook's `default_exp` and the public top-level functions and classes of its exported cells."
    from fastcore.nbio import read_nb
    from nbdev.processors import _def_names   # the names `add_show_docs` documents
    nb = read_nb(notebook)
    module, names = None, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if m := _re_default_exp.search(cell.source):
            module = m.group(1)
        if {"export", "exports"} & set(cell.directives):
            names += _def_names(cell, set())
    return module, names


def symbol_labels(nbs: list[Path]) -> dict[str, str]:
    "Sphinx label of each documented symbol, by `name`, `module.name` and `tradingbot.module.name`."
    links, taken = {}, set()
    for nb in nbs:
        module, names = _exported_names(nb)
        for name in names if module else ():
            label, n = f"{module}.{name}", 1
            while label.lower() in taken:   # Sphinx labels ignore case: `ibs` and `IBS` need two
                n += 1
                label = f"{module}.{name}-{n}"
            taken.add(label.lower())
            links.setdefault(name, label)   # a bare name links to the first module defining it, as in nbdev
            links[f"{module}.{name}"] = links[f"tradingbot.{module}.{name}"] = label
    return links


def linkify(md: str, links: dict[str, str]) -> str:
    "Markdown with each backticked library name (`sharpe`, `PurgedKFold.split`) linked to its documentation."
    def link(m):
        name = m.group(1)
        label = links.get(name) or (links.get(name.rsplit(".", 1)[0]) if "." in name else None)
        return f"[{m.group(0)}](#{label})" if label else m.group(0)   # Sphinx resolves (or refuses) the label
    out, fenced = [], False
    for line in md.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        # no links in a fence, an indented code block, a line that has links already, or a heading (a
        # symbol's own heading would link to itself)
        skip = fenced or line.startswith(("    ", "#")) or "](" in line
        out.append(line if skip else _re_backticks.sub(link, line))
    return "\n".join(out)


# ---------------------------------------------------------------- show_doc
def _renderer():
    "fastcore's markdown renderer (signature with its docments, docstring); no heading, no link to a repository."
    import inspect
    from fastcore.docments import MarkdownRenderer

    class DocRenderer(MarkdownRenderer):
        def __init__(self, sym, **kwargs):
            super().__init__(sym, **kwargs)
            if inspect.isclass(sym) and not vars(sym).get("__doc__"):
                self.docs = ""   # inspect.getdoc would show a base class's docstring (pydantic's BaseModel)

        def _repr_markdown_(self):
            body = super()._repr_markdown_()
            return body.replace("```python\ndef ", "```python\nclass ", 1) if inspect.isclass(self.sym) else body
    return DocRenderer


# ---------------------------------------------------------------- step 1: execute + process
def _symbol(module: str | None, name: str, namespace: dict):
    """The exported object `name` from the package, else from the notebook's run (a class defined in the shell has
    no source file, so inspect, and with it the docments, would not find its parameters' comments)."""
    import importlib
    try:
        obj = importlib.import_module(f"tradingbot.{module}")
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError, TypeError):   # not exported under that name: the notebook's object
        return eval(name, namespace)


def _processors(nb, notebook: Path, module: str | None, links: dict[str, str]):
    "nbdev's documentation processors, with its Quarto-only steps replaced by what myst-nb reads."
    from execnb.shell import CaptureShell
    from fastcore.nbio import mk_cell
    from nbdev.config import get_config
    from nbdev.process import Processor
    from nbdev.processors import (add_show_docs, clean_magics, filter_stream_, hide_line, populate_language,
                                  rm_header_dash, strip_ansi)
    from nbdev.test import _skip_cell

    cfg = get_config()
    renderer = _renderer()
    flags = cfg.tst_flags.split() if isinstance(cfg.tst_flags, str) else list(cfg.tst_flags)

    class execute(Processor):
        "Run every cell `nbdev-test` runs, in its shell, keeping the outputs; render the show_doc cells."
        def begin(self):
            self.skip = _skip_cell(self.nb, flags)
            self.shell = CaptureShell(notebook, profile=bool(cfg.exec_profile))

        def cell(self, cell):
            if getattr(cell, "has_sd", False):
                # rendered here rather than run in the shell: a run would advance the execution count and
                # rebind IPython's `_i<N>` input variables, which the notebook's own names may shadow
                name = _re_show_doc.match(cell.source).group(1)
                md = renderer(_symbol(module, name, self.shell.user_ns))._repr_markdown_()
                cell.outputs = [{"output_type": "display_data", "metadata": {}, "data": {"text/markdown": md}}]
                return
            if cell.cell_type != "code":
                return
            if self.skip(cell):
                cell.outputs, cell.execution_count = [], None
                return
            self.shell.cell(cell, timeout=cfg.cell_timeout or None)
            if self.shell.exc:
                raise RuntimeError(f"{notebook.name}: a cell failed while building the docs\n{cell.source}\n\n"
                                   f"{self.shell.prettytb(fname=notebook)}")
            for out in cell.outputs:   # execnb keeps text as lists of lines; nbdev's output processors want str
                if isinstance(out.get("text"), list):
                    out["text"] = "".join(out["text"])
                for mime, value in out.get("data", {}).items():
                    if isinstance(value, list):
                        out["data"][mime] = "".join(value)

        def end(self):
            self.shell.close()

    class to_myst(Processor):
        "show_doc output -> markdown cell before its exported source, which is folded; hidden cells dropped."
        def begin(self):
            cells, source_at = [], None   # source_at: position of the exported cell the docs go before
            for cell in self.nb.cells:
                d = cell.directives_ if cell.cell_type == "code" else {}
                if getattr(cell, "has_sd", False):
                    md = "".join(o["data"]["text/markdown"] for o in cell.outputs
                                 if "text/markdown" in o.get("data", {}))
                    doc = mk_cell(md, "markdown")
                    doc.metadata["symbol"] = _re_show_doc.match(cell.source).group(1)
                    # add_show_docs inserts a cell's docs in reverse; inserting each at one place restores the order
                    cells.insert(len(cells) if source_at is None else source_at, doc)
                    continue
                if {"hide", "default_exp"} & d.keys():
                    continue
                source_at = None
                if {"export", "exporti"} & d.keys():
                    cell.metadata.setdefault("tags", []).append("hide-input")
                    source_at = len(cells)
                cells.append(cell)
            self.nb.cells = _symbol_headings(cells, module, links)

        def cell(self, cell):
            if cell.cell_type == "code":
                cell.remove_directives()
                for key in ("language", "execution"):   # execnb's timings are not valid notebook metadata
                    cell.metadata.pop(key, None)
            elif cell.cell_type == "markdown":
                cell.source = linkify(cell.source, links)

    return [populate_language, add_show_docs, hide_line, rm_header_dash, clean_magics,
            execute, strip_ansi, filter_stream_, to_myst]


def _symbol_headings(cells: list, module: str | None, links: dict[str, str]) -> list:
    "Head each symbol's docs with its label and name, one level below the section it sits in."
    level = 1
    for cell in cells:
        if cell.cell_type != "markdown":
            continue
        if name := cell.metadata.pop("symbol", None):
            # `(label)=` is the target of the links `linkify` writes; `{.api}` is the class docs/_static styles
            label = links.get(f"{module}.{name}", f"{module}.{name}")
            cell.source = f"({label})=\n{{.api}}\n{'#' * (level + 1)} `{name}`\n\n{cell.source}"
            continue
        fenced = False
        for line in cell.source.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            elif not fenced and (m := re.match(r"(#{1,6}) ", line)):
                level = len(m.group(1))
    return cells


def process(notebook: Path, links: dict[str, str], proc: Path = PROC) -> Path:
    "Execute and process one notebook into `proc`/<page>.ipynb."
    from fastcore.nbio import read_nb, write_nb
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    os.environ["IN_TEST"] = "1"                          # as under nbdev-test: notebooks may skip interactive bits
    nb = read_nb(notebook)
    module, _ = _exported_names(notebook)
    with working_directory(notebook.parent):             # notebooks read ../data, ../config as under nbdev-test
        NBProcessor(nb=nb, procs=_processors(nb, notebook, module, links), rm_directives=False, process=True)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    dest = proc / f"{page_name(notebook)}.ipynb"
    write_nb(nb, dest)
    return dest


def _process_one(notebook: Path, links: dict[str, str], proc: Path) -> tuple[str, float]:
    start = time.perf_counter()
    if str(ROOT) not in sys.path:   # this checkout's package, as nbdev-test's basepath: not another editable install
        sys.path.insert(0, str(ROOT))
    process(notebook, links, proc)
    return notebook.name, time.perf_counter() - start


# ---------------------------------------------------------------- the home page's table of contents
def add_toctree(nbs: list[Path], proc: Path = PROC) -> None:
    "Append the site's navigation (one toctree per package, in notebook order) to the home page."
    from fastcore.nbio import mk_cell, read_nb, write_nb
    index = proc / "index.ipynb"
    if not index.exists():
        raise SystemExit("nbs/index.ipynb is missing: the site needs a home page (an H1 title and a > summary)")
    groups: dict[str, list[str]] = {}
    for nb in nbs:
        module, _ = _exported_names(nb)
        if module is None:
            continue
        section = SECTIONS.get(module.split(".")[0], CORE) if "." in module else CORE
        groups.setdefault(section, []).append(page_name(nb))
    order = [CORE, *SECTIONS.values()]
    trees = "\n\n".join(f"```{{toctree}}\n:caption: {section}\n:hidden:\n\n" + "\n".join(groups[section]) + "\n```"
                        for section in order if section in groups)
    nb = read_nb(index)
    nb.cells.append(mk_cell(trees, "markdown"))
    write_nb(nb, index)


# ---------------------------------------------------------------- main
def build(out: Path = ROOT / "_docs",  # the site (emptied first)
          workers: int = 2,            # notebooks executed in parallel
          proc: Path = PROC,           # the executed notebooks (emptied first)
         ) -> None:
    "Execute and process every notebook, then render the site into `out`."
    from fastcore.parallel import parallel

    nbs = notebooks()
    shutil.rmtree(proc, ignore_errors=True)   # every build starts from nbs/ alone: no stale page survives
    proc.mkdir(parents=True)
    links = symbol_labels(nbs)
    start = time.perf_counter()
    # as under nbdev-test: each worker runs its notebooks one after another, each in a fresh shell
    times = parallel(_process_one, nbs, links=links, proc=proc, n_workers=workers, pause=0.01)
    print(f"docs: executed {len(nbs)} notebooks in {time.perf_counter() - start:.0f} s "
          f"(slowest: {', '.join(f'{n} {t:.0f} s' for n, t in sorted(times, key=lambda o: -o[1])[:3])})")
    add_toctree(nbs, proc)
    # Sphinx writes into _proc/_build and the site is moved to `out`: myst-nb puts its image folder
    # beside the output directory, which would litter the repository root for out=_docs
    build_dir, start = proc / "_build", time.perf_counter()
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(DOCS), "-W", "--keep-going", "-q",
           "-j", str(workers), "-d", str(build_dir / "doctrees"), str(proc), str(build_dir / "html")]
    subprocess.run(cmd, check=True, cwd=ROOT)
    shutil.rmtree(out, ignore_errors=True)
    shutil.move(build_dir / "html", out)
    print(f"docs: rendered {len(nbs)} pages into {out} in {time.perf_counter() - start:.0f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_docs", help="output directory (emptied first)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks executed in parallel")
    parser.add_argument("--proc", type=Path, default=PROC, help="where the executed notebooks go (emptied first)")
    args = parser.parse_args()
    try:
        build(args.out.resolve(), args.workers, args.proc.resolve())
    except subprocess.CalledProcessError as exc:
        sys.exit(f"docs: sphinx failed (exit {exc.returncode}); its warnings above say where")


if __name__ == "__main__":
    # Run through the importable module: a worker unpickles `_process_one` by module name, and IPython's
    # shell replaces `sys.modules["__main__"]` in the worker once it has executed a notebook.
    sys.path.insert(0, str(DOCS))
    import build as _build
    _build.main()
