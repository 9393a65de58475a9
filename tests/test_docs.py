"""The documentation site (`make docs`): built from a clean state, one executed page per notebook, the
API reference from the docments, pictures where the lessons need them, and no link that leads nowhere."""
import importlib
import inspect
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))
import build  # noqa: E402  (docs/build.py: page names and symbol labels, as the build computes them)

# Pages that must show at least one picture: the tour and every validation lesson. A page listed in
# PICTURES_PENDING has none yet; its test is expected to fail and errors out once it passes (strict),
# so the entry is removed when the picture lands.
PICTURE_PAGES = ["index"] + sorted(build.page_name(nb) for nb in build.notebooks()
                                   if build.page_name(nb).startswith("validation."))
PICTURES_PENDING: set[str] = set()
# Links to other sites that the theme puts in every footer; any other external link fails the check.
EXTERNAL_OK = {"www.sphinx-doc.org", "pradyunsg.me", "github.com"}
FULLY_DOCUMENTED = ["tradingbot.validation.metrics", "tradingbot.validation.splits",
                    "tradingbot.validation.overfit", "tradingbot.validation.stress"]


class Page(HTMLParser):
    "The ids, links and images of one HTML page, and its visible text."
    def __init__(self, path: Path):
        super().__init__()
        self.ids, self.links, self.images, self.text = set(), [], [], []
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script", "link") and (attrs.get("src") or attrs.get("href")):
            (self.images if tag == "img" else self.links).append(attrs.get("src") or attrs["href"])

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    "The site built from scratch by docs/build.py into a temporary directory (as `make docs` builds _docs/)."
    tmp = tmp_path_factory.mktemp("docs")
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0",
           "TRADINGBOT_LOG_DIR": str(tmp / "logs"), "TRADINGBOT_STATE_DIR": str(tmp / "state")}
    cmd = [sys.executable, str(ROOT / "docs" / "build.py"), "--out", str(tmp / "site"), "--proc", str(tmp / "proc")]
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"docs build failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    return tmp / "site"


@pytest.fixture(scope="module")
def pages(site) -> dict[str, Page]:
    return {p.stem: Page(p) for p in site.glob("*.html")}


def test_a_page_per_notebook(site):
    expected = {build.page_name(nb) for nb in build.notebooks()}
    assert "index" in expected, "nbs/index.py (the home page) is missing"
    missing = sorted(p for p in expected if not (site / f"{p}.html").exists())
    assert not missing, f"no page for {missing}"
    assert not list(site.glob("reports*")), "nbs/reports/ are papermill templates, not pages"


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.xfail(strict=True, reason="picture pending"))
                                  if p in PICTURES_PENDING else p for p in PICTURE_PAGES])
def test_lesson_shows_a_picture(pages, site, page):
    images = [src for src in pages[page].images if src.endswith(".png")]
    assert images, f"{page}.html shows no picture"
    for src in images:
        assert (site / unquote(src)).stat().st_size > 5_000, f"{page}.html: {src} is (nearly) empty"


def test_pages_are_executed(pages):
    text = "".join(pages["validation.metrics"].text)
    assert "S&P 500 1999-2018: Sharpe 0.283, Sortino 0.399" in text   # a print only a run produces
    assert "import quantstats as qs" not in text                      # `#| hide` cells run but stay off the page
    assert "default_exp" not in text and "#| export" not in text      # no nbdev directive shows


def documented_symbols(html: str) -> list[str]:
    "Names heading the API sections (`{.api}` in docs/build.py) of a page."
    return re.findall(r'<section class="api" id="[^"]+">\s*(?:<span id="[^"]*"></span>)?<h\d>'
                      r'<code class="docutils literal notranslate"><span class="pre">([^<]+)</span>', html)


def test_api_reference_from_docments(site, pages):
    "Every exported function and class has a section (signature, a docment per parameter) on its page."
    for nb in build.notebooks():
        _, names = build._exported_names(nb)
        shown = documented_symbols((site / f"{build.page_name(nb)}.html").read_text(encoding="utf-8"))
        assert sorted(shown) == sorted(names), f"{build.page_name(nb)}.html documents {shown}, exports {names}"
    metrics = "".join(pages["validation.metrics"].text)
    assert re.search(r"def sharpe\(\s*returns, # per-bar simple returns \(Series or array\)\s*"
                     r"periods:float=252, # bars per year", metrics), "sharpe's signature lost its docments"
    overfit = "".join(pages["validation.overfit"].text)
    assert "class PBOResult(" in overfit and "pbo:float, # share of logits <= 0" in overfit


def test_no_link_leads_nowhere(site, pages):
    "Every relative link and image resolves to a file of the site, and its #anchor to an id on that page."
    for name, page in pages.items():
        for url in page.links + page.images:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https"):
                assert parts.netloc in EXTERNAL_OK, f"{name}.html links to {url}"
                continue
            assert not parts.scheme and not parts.netloc, f"{name}.html links to {url}"
            target = (site / unquote(parts.path)) if parts.path else site / f"{name}.html"
            assert target.exists(), f"{name}.html links to {url}, which is not in the site"
            if parts.fragment and target.suffix == ".html":
                ids = pages[target.stem].ids if target.parent == site else Page(target).ids
                assert parts.fragment in ids, f"{name}.html links to {url}: no such anchor"


def test_library_links_resolve(pages):
    "Backticked library names in the prose link to the symbol's section (Sphinx resolves them, or the build fails)."
    assert any("validation.metrics.html#validation-metrics-max-drawdown" in link or
               link == "#validation-metrics-max-drawdown" for link in pages["validation.metrics"].links)


def test_module_docstrings_point_at_the_site(site):
    "A `Docs:` line in a module docstring names a page of this site; today nbdev writes none (no Documentation URL)."
    for module in (ROOT / "tradingbot").rglob("*.py"):
        head = module.read_text(encoding="utf-8")[:2000]
        assert "tradingbot.github.io" not in head, module
        for url in re.findall(r"^Docs: (\S+)", head, flags=re.M):
            assert (site / Path(urlsplit(url).path).name.removesuffix(".md")).exists(), f"{module}: dead {url}"


@pytest.mark.parametrize("module", FULLY_DOCUMENTED)
def test_every_public_parameter_has_a_docment(module):
    from fastcore.docments import docments
    mod = importlib.import_module(module)
    undocumented = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        members = [(name, obj)] if inspect.isfunction(obj) or inspect.isclass(obj) else []
        if inspect.isclass(obj):
            members += [(f"{name}.{k}", v) for k, v in vars(obj).items()
                        if not k.startswith("_") and inspect.isfunction(v)]
        for qual, fn in members:
            notes = docments(fn)
            params = [p for p in inspect.signature(fn).parameters.values()
                      if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            undocumented += [f"{qual}({p.name})" for p in params if not notes.get(p.name)]
    assert not undocumented, f"{module}: parameters without a docment: {undocumented}"
