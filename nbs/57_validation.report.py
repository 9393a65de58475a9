# %% [markdown]
# # Validation reports
#
# > Run the parameterised validation notebook with papermill, render it to HTML without code, and keep a JSON record of every verdict.

# %%
#| default_exp validation.report

# %% [markdown]
# A validation report is a notebook, `nbs/reports/validation.ipynb`, whose first cell is tagged
# `parameters`. papermill injects the run's parameters after it, executes it top to bottom, and
# writes the executed copy to `reports/validation/<strategy>/<UTC timestamp>/report.ipynb`; nbconvert
# turns that into `report.html` with the code cells hidden. The notebook itself writes the machine-readable
# result (metrics, gate verdict, data hash, commit, seed) to `logs/validation/<strategy>/<timestamp>.json`,
# which `latest_report(strategy)` reads back — it is what the runtime checks before an asset may go live.
#
# Everything that decides the numbers is recorded: parameters, seed, a hash of the bars and the code commit.

# %%
#| export
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tradingbot.config import ConfigError, load_config
from tradingbot.fileio import atomic_write_text, to_jsonable
from tradingbot.jsonlog import log_event
from tradingbot.paths import repo_root, workspace_path

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## What produced a number
# The data hash covers the index and every value of the bars, so two reports agree on their inputs
# exactly when the hashes agree; the commit carries `-dirty` when the work tree has uncommitted changes.

# %%
#| export
def data_hash(bars: pd.DataFrame,  # the frame to fingerprint (any columns)
             ) -> str:  # 64 hex digits
    "sha256 of a frame's index and values (row order matters)."
    rows = pd.util.hash_pandas_object(bars, index=True).to_numpy()
    header = json.dumps([list(map(str, bars.columns)), [str(t) for t in bars.dtypes]]).encode()
    return hashlib.sha256(header + rows.tobytes()).hexdigest()


def code_commit(root: Path | None = None,  # a directory inside the git work tree (default: the repository root)
               ) -> str:  # the commit hash, maybe with '-dirty'; 'unknown' outside git
    "The git commit of the workspace, with `-dirty` for uncommitted changes to tracked files; 'unknown' without git."
    root = root or repo_root()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty else "")


# %%
from tradingbot.data.samples import load_sample

spx = load_sample("spx_1d")
test_eq(data_hash(spx), data_hash(spx.copy()))
spx2 = spx.copy()
spx2.iloc[100, 3] += 1e-9
assert data_hash(spx2) != data_hash(spx)
assert len(code_commit()) >= 7


# %% [markdown]
# ## Parameters
# A report's parameters start from the strategy's entry in `config/strategies.json`; `--param k=v`
# overrides are typed like the value they replace, and an unknown name is an error that lists the
# known ones. Gates start from `VALIDATION.gates` in `config.json`, then the strategy's own `gates`.

# %%
#| export
def parse_param(text: str,  # one `name=value` override, as given to `--param`
                current: dict,  # the strategy's parameters: the known names and their types
               ) -> tuple[str, Any]:  # (name, typed value)
    "Parse one `name=value` override, typed like the strategy's current value of `name`."
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ConfigError("--param", text, "expected name=value")
    if name not in current:
        raise ConfigError("--param", name, f"unknown parameter (known: {', '.join(sorted(current))})")
    kind = type(current[name])
    try:
        if kind is bool:
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError(raw)
            return name, raw.lower() in ("true", "1")
        return name, kind(float(raw)) if kind is int and float(raw).is_integer() else kind(raw)
    except ValueError:
        raise ConfigError("--param", name, f"{raw!r} is not a valid {kind.__name__}") from None


def report_parameters(strategy: str,  # a strategy id of config/strategies.json
                      data: str,  # a bundled sample name, or venue:symbol:timeframe of the local cache
                      overrides: list[str] | None = None,  # `name=value` strings
                      seed: int | None = None,  # default VALIDATION.seed
                      config_dir: str | Path | None = None,  # the configuration directory (default config/)
                      asset: str | None = None,  # validate under this asset's rules (default: the data's asset)
                      sizing: str | None = None,  # 'cash' for a research validation of data no asset trades
                      ) -> dict:
    "The papermill parameters of one validation report."
    cfg = load_config(config_dir=config_dir)
    strategies = cfg["strategies"]["strategies"]
    if strategy not in strategies:
        raise ConfigError("strategies.json", strategy, f"unknown strategy (known: {', '.join(strategies)})")
    spec = strategies[strategy]
    params = dict(spec["params"])
    params.update(parse_param(o, spec["params"]) for o in overrides or [])
    gates = {**cfg["config"]["VALIDATION"]["gates"], **(spec.get("gates") or {})}
    if asset is not None and asset not in cfg["assets"]:
        raise ConfigError("--asset", asset, f"unknown asset (known: {', '.join(cfg['assets'])})")
    if sizing not in (None, "cash", "risk"):
        raise ConfigError("--sizing", sizing, "expected 'risk' (the asset's rules) or 'cash' (research)")
    if sizing != "cash" and asset is None:  # say now, not from inside papermill, that the bars need an asset
        from tradingbot.validation.pipeline import load_dataset, resolve_asset
        from tradingbot.strategies.base import make_strategy
        try:
            resolve_asset(make_strategy(strategy, params), load_dataset(data), None, sizing)
        except ValueError as exc:
            raise ConfigError("--data", data, str(exc).removeprefix(f"{data}: ")) from None
    return {"strategy": strategy, "data": data, "params": params, "gates": gates, "asset": asset, "sizing": sizing,
            "seed": cfg["config"]["VALIDATION"]["seed"] if seed is None else int(seed)}


# %%
p = report_parameters("rsi2", "btcusd_1h", ["entry_below=5", "time_stop_bars=7"], seed=1)
test_eq((p["params"]["entry_below"], p["params"]["time_stop_bars"], p["seed"]), (5, 7, 1))
test_eq(p["gates"]["min_trades"], 500)
test_fail(lambda: report_parameters("rsi2", "btcusd_1h", ["entry=5"]), contains="--param: entry: unknown parameter")
test_fail(lambda: report_parameters("rsi2", "btcusd_1h", ["entry_below=low"]), contains="'low' is not a valid int")
test_fail(lambda: report_parameters("nope", "spx_1d"), contains="strategies.json: nope: unknown strategy")
test_fail(lambda: report_parameters("rsi2", "spx_1d"), contains="--data: spx_1d: no asset of config/assets.json")
test_eq(report_parameters("rsi2", "spx_1d", sizing="cash")["sizing"], "cash")


# %% [markdown]
# ## Where a run goes
# One directory per run, named by its UTC start time; a second run in the same second gets a suffix
# rather than overwriting the first.

# %%
#| export
@dataclass(frozen=True)
class ReportRun:
    "Paths of one rendered report."
    strategy: str  # the strategy id
    stamp: str  # the run's UTC timestamp (with a `-n` suffix for a second run in the same second)
    notebook: Path  # the executed notebook, reports/<kind>/<strategy>/<stamp>/report.ipynb
    html: Path  # its HTML rendering without code, beside it
    result: Path  # the JSON result record, logs/<kind>/<strategy>/<stamp>.json


def utc_stamp(now: dt.datetime | None = None,  # the moment (default: now); a naive one is taken as local time
             ) -> str:
    "A sortable UTC timestamp for directory and file names: 20240131T235959Z."
    return (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def plan_run(kind: str,  # the report kind, e.g. 'validation' (a notebook of nbs/reports/)
             strategy: str,  # the strategy id
             reports_root: Path | None = None,  # where rendered reports go (default: the workspace's reports/)
             logs_root: Path | None = None,  # where result records go (default: the workspace's logs/)
             now: dt.datetime | None = None,  # the run's start (default: now)
            ) -> ReportRun:
    "Choose fresh output paths for a report run."
    reports_root = Path(reports_root or workspace_path("reports")) / kind / strategy
    logs_root = Path(logs_root or workspace_path("logs")) / kind / strategy
    stamp, n = utc_stamp(now), 1
    while (reports_root / stamp).exists() or (logs_root / f"{stamp}.json").exists():
        n += 1
        stamp = f"{utc_stamp(now)}-{n}"
    out = reports_root / stamp
    return ReportRun(strategy, stamp, out / "report.ipynb", out / "report.html", logs_root / f"{stamp}.json")


# %%
with tempfile.TemporaryDirectory() as d:
    when = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    r1 = plan_run("validation", "rsi2", Path(d) / "reports", Path(d) / "logs", now=when)
    test_eq(r1.html, Path(d) / "reports/validation/rsi2/20240501T120000Z/report.html")
    r1.notebook.parent.mkdir(parents=True)
    r2 = plan_run("validation", "rsi2", Path(d) / "reports", Path(d) / "logs", now=when)
    test_eq(r2.stamp, "20240501T120000Z-2")


# %% [markdown]
# ## The result record
# The report notebook calls `save_result` at its end; `latest_report` returns the newest record of a
# strategy (names sort by time), or `None` when it was never validated.

# %%
#| export
def save_result(result: dict,  # the record: metrics, verdict, data hash, commit, seed (NaN becomes null)
                path: str | Path,  # the JSON file to write (its directories are created)
               ) -> Path:  # `path`
    "Write a report's result record atomically as JSON."
    path = Path(path)
    text = json.dumps(to_jsonable(result, fallback=str), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n")
    return path


def latest_report(strategy: str,  # the strategy id
                  kind: str = "validation",  # the report kind
                  logs_root: str | Path | None = None,  # where result records are (default: the workspace's logs/)
                 ) -> dict | None:
    "The newest result record of `strategy`, or None if it has none."
    folder = Path(logs_root or workspace_path("logs")) / kind / strategy
    runs = sorted(folder.glob("*.json"), key=lambda p: _stamp_key(p.stem))
    return json.loads(runs[-1].read_text()) if runs else None


def _stamp_key(stem: str) -> tuple[str, int]:
    base, _, n = stem.partition("-")
    return base, int(n or 1)


# %%
with tempfile.TemporaryDirectory() as d:
    test_eq(latest_report("rsi2", logs_root=d), None)
    for stem, n in [("20240501T120000Z", 1), ("20240501T120000Z-2", 2), ("20240430T000000Z", 0)]:
        save_result({"n": n}, Path(d) / "validation/rsi2" / f"{stem}.json")
    test_eq(latest_report("rsi2", logs_root=d), {"n": 2})

# %% [markdown]
# What a record holds, seen: a validation of RSI-2 on hourly BTC, saved and read back as the runtime reads
# it, its verdict re-drawn from the stored metrics (`Verdict.plot`).

# %%
from tradingbot.validation.gate import evaluate_gates  # noqa: E402
from tradingbot.validation.pipeline import validate_strategy  # noqa: E402

with tempfile.TemporaryDirectory() as d:
    rec = validate_strategy("rsi2", load_sample("btcusd_1h").iloc[:6000], n_sims=50).record()
    save_result(rec, Path(d) / "validation/rsi2/20240501T120000Z.json")
    back = latest_report("rsi2", logs_root=d)
test_eq((back["asset"], back["params_hash"], back["verdict"]), (rec["asset"], rec["params_hash"], rec["verdict"]))
evaluate_gates(back["metrics"], deflated_sharpe=back["deflated_sharpe"]).plot("a record's verdict, read back");


# %% [markdown]
# ## Running and rendering
# papermill executes the notebook in the `tradingbot` kernel that `make setup` registers (falling back
# to `python3`); nbconvert renders the executed notebook without input cells or prompts.

# %%
#| export
def report_notebook(kind: str,  # the report kind, e.g. 'validation'
                   ) -> Path:
    "The source notebook of a report kind."
    path = repo_root() / "nbs" / "reports" / f"{kind}.ipynb"
    if not path.exists():
        raise FileNotFoundError(f"no report notebook for {kind!r} at {path}")
    return path


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager
    return "tradingbot" if "tradingbot" in KernelSpecManager().find_kernel_specs() else "python3"


def render_html(notebook: Path,  # an executed notebook
                html: Path,  # the HTML file to write
               ) -> Path:  # `html`
    "Render an executed notebook to HTML without code cells or prompts."
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(notebook))
    html.write_text(body, encoding="utf-8")
    return html


def run_report(kind: str,  # the report kind: the notebook nbs/reports/<kind>.ipynb
               parameters: dict,  # the papermill parameters (see `report_parameters`; needs 'strategy')
               reports_root: Path | None = None,  # where rendered reports go (default: the workspace's reports/)
               logs_root: Path | None = None,  # where result records go (default: the workspace's logs/)
               progress: bool = True,  # show papermill's progress bar
              ) -> ReportRun:
    "Execute report notebook `kind` with `parameters`, render HTML, and return where everything went."
    import papermill as pm
    run = plan_run(kind, parameters["strategy"], reports_root, logs_root)
    run.notebook.parent.mkdir(parents=True, exist_ok=True)
    params = {**parameters, "result_path": str(run.result), "report_stamp": run.stamp}
    log_event("report_started", kind=kind, strategy=run.strategy, stamp=run.stamp, parameters=parameters)
    pm.execute_notebook(str(report_notebook(kind)), str(run.notebook), parameters=params,
                        kernel_name=_kernel_name(), language="python", progress_bar=progress,
                        cwd=str(run.notebook.parent))
    render_html(run.notebook, run.html)
    log_event("report_finished", kind=kind, strategy=run.strategy, stamp=run.stamp, html=str(run.html))
    return run


# %% [markdown]
# ## No network
# quantstats and yfinance fetch a benchmark when given a ticker. Reports pass benchmarks as Series, and
# run their tearsheet inside `no_network()`, which refuses any connection that is not to this machine —
# a report never depends on, or leaks anything to, the outside.

# %%
#| export
class NetworkBlocked(RuntimeError):
    "A connection to a non-loopback address was attempted inside `no_network()`."


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost: would need DNS, which is the network


@contextlib.contextmanager
def no_network():
    "Refuse socket connections to anything but loopback while the block runs."
    original = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def guard(address):
        if not _is_loopback(address):
            raise NetworkBlocked(f"network access to {address!r} refused inside a report")

    def connect(self, address):
        guard(address)
        return original[0](self, address)

    def connect_ex(self, address):
        guard(address)
        return original[1](self, address)

    def getaddrinfo(host, *args, **kwargs):
        guard((host,))
        return original[2](host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = original


# %%
with no_network():
    test_fail(lambda: socket.create_connection(("93.184.216.34", 80), timeout=1), contains="refused inside a report")
    test_fail(lambda: socket.getaddrinfo("example.com", 443), contains="refused inside a report")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    socket.create_connection(srv.getsockname(), timeout=1).close()  # loopback stays allowed
    srv.close()
assert socket.socket.connect.__name__ == "connect" and socket.getaddrinfo.__module__ == "socket"
