# %% [markdown]
# # Exposure caps
#
# > Whether a new position fits the book: concurrency and allocation per cluster of related symbols, total exposure, and a rolling-correlation cap against what is already open.

# %%
#| default_exp execution.exposure

# %% [markdown]
# Risk sizes one trade; exposure looks at the book. BTC, ETH and SOL move together, so three "1 %" trades
# in them are one 3 % bet. `config.json` (`EXPOSURE`) groups such symbols into clusters, each with a
# maximum number of concurrent positions and a maximum share of equity, and sets a cap on total exposure
# and on the rolling correlation of returns between a new position and any open one. The router asks
# `can_open` after risk and budget; the answer is `(ok, reason)` with the rule and the numbers.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

import pandas as pd

from tradingbot.config import get_key

# %%
#| hide
import numpy as np
from fastcore.test import test_close, test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class ClusterCap:
    "A group of related symbols and its caps."
    name: str
    symbols: frozenset[str]
    max_concurrent: int
    max_alloc_pct: float  # percent of equity


@dataclass(frozen=True)
class ExposureConfig:
    "The exposure rules (percent units, as in config.json)."
    clusters: tuple[ClusterCap, ...] = ()
    max_total_exposure_pct: float = 100.0
    max_correlation: float = 0.8
    correlation_window: int = 100

    @classmethod
    def from_config(cls) -> ExposureConfig:
        "The rules of the current configuration (`EXPOSURE`)."
        e = get_key("EXPOSURE")
        clusters = tuple(ClusterCap(name, frozenset(c["symbols"]), c["max_concurrent"], c["max_alloc_pct"])
                         for name, c in e["clusters"].items())
        return cls(clusters, e["max_total_exposure_pct"], e["max_correlation"], e["correlation_window"])

    def cluster_of(self, symbol: str) -> ClusterCap | None:
        "The cluster `symbol` belongs to (None: it stands alone)."
        return next((c for c in self.clusters if symbol in c.symbols), None)


# %%
ecfg = ExposureConfig.from_config()
test_eq(ecfg.cluster_of("ETHUSDT").name, "btc_l1")
test_eq((ecfg.cluster_of("EURUSD").max_concurrent, ecfg.cluster_of("SPY")), (2, None))
test_eq((ecfg.max_total_exposure_pct, ecfg.max_correlation), (100.0, 0.8))


# %% [markdown]
# ## Open positions
# Positions may be mappings (`{'symbol', 'notional'}`) or objects with those attributes (the domain
# `Position`); exposure counts their absolute notional, a short being as much exposure as a long.

# %%
#| export
def _field(position: Any, name: str) -> Any:
    return position[name] if isinstance(position, dict) else getattr(position, name)


def _book(open_positions: Iterable[Any]) -> list[tuple[str, float]]:
    "(symbol, |notional|) of each open position; a ValueError on a malformed one."
    book = []
    for p in open_positions:
        try:
            book.append((str(_field(p, "symbol")), abs(float(_field(p, "notional")))))
        except (KeyError, AttributeError, TypeError, ValueError):
            raise ValueError(f"open position needs a symbol and a numeric notional, got {p!r}") from None
    return book


# %%
test_eq(_book([{"symbol": "BTCUSDT", "notional": -300}]), [("BTCUSDT", 300.0)])
test_fail(lambda: _book([{"symbol": "BTCUSDT"}]), contains="needs a symbol and a numeric notional")


# %% [markdown]
# ## Correlation
# Pearson correlation of the last `correlation_window` returns. A pair with too little common history
# (fewer than half the window) is not refused on this rule: the caps above still bound it. Only
# *positive* correlation is capped, since that is what stacks the same bet.

# %%
#| export
def max_correlation_with(symbol: str,  # the symbol to open
                         others: Iterable[str],  # symbols already open
                         returns: pd.DataFrame,  # per-bar returns, one column per symbol
                         window: int,  # how many recent rows to use
                         ) -> tuple[str | None, float]:  # (most correlated open symbol, its correlation)
    "The open symbol most correlated with `symbol` over the recent window."
    missing = [s for s in (symbol, *others) if s not in returns.columns]
    if missing:
        raise ValueError(f"returns frame has no column for {', '.join(missing)} (columns: {', '.join(map(str, returns.columns))})")
    recent = returns.tail(window)
    best, best_corr = None, -math.inf
    for other in dict.fromkeys(o for o in others if o != symbol):
        corr = recent[symbol].corr(recent[other], min_periods=max(2, window // 2))
        if math.isfinite(corr) and corr > best_corr:
            best, best_corr = other, corr
    return best, best_corr


# %%
rng = np.random.default_rng(7)
base = rng.normal(0, 0.01, 200)
rets = pd.DataFrame({"BTCUSDT": base, "ETHUSDT": base + rng.normal(0, 0.003, 200),
                     "EURUSD": rng.normal(0, 0.01, 200)})
sym, corr = max_correlation_with("ETHUSDT", ["BTCUSDT", "EURUSD"], rets, 100)
test_eq(sym, "BTCUSDT")
assert corr > 0.9
test_eq(max_correlation_with("EURUSD", ["EURUSD"], rets, 100), (None, -math.inf))  # a symbol is not its own peer
test_fail(lambda: max_correlation_with("SOLUSDT", [], rets, 100), contains="no column for SOLUSDT")


# %% [markdown]
# ## The check
# In order: cluster concurrency, cluster allocation, total exposure, then correlation (the only rule that
# needs market data).

# %%
#| export
def can_open(symbol: str,  # symbol of the new position
             notional: float,  # its notional in USD
             open_positions: Iterable[Any],  # the open book: mappings or objects with symbol, notional
             equity: float,  # account equity in USD
             returns: pd.DataFrame | None = None,  # per-bar returns by symbol; None skips the correlation rule
             cfg: ExposureConfig | None = None,  # default: ExposureConfig.from_config()
             ) -> tuple[bool, str]:
    "Whether a new position fits the exposure caps, and if not which one it breaks."
    cfg = cfg or ExposureConfig.from_config()
    if not (equity > 0 and notional > 0 and math.isfinite(equity) and math.isfinite(notional)):
        return False, f"equity and notional must be finite and > 0 (got equity {equity!r}, notional {notional!r})"
    book = _book(open_positions)
    ok, reason = _check_cluster(symbol, notional, book, equity, cfg)
    if not ok:
        return ok, reason
    total = sum(n for _, n in book) + notional
    if total > equity * cfg.max_total_exposure_pct / 100 + 1e-9:
        return False, (f"total exposure: {total:.2f} USD would be {100 * total / equity:.1f} % of equity, above "
                       f"EXPOSURE.max_total_exposure_pct {cfg.max_total_exposure_pct:g} %")
    if returns is not None and book:
        other, corr = max_correlation_with(symbol, [s for s, _ in book], returns, cfg.correlation_window)
        if other is not None and corr > cfg.max_correlation:
            return False, (f"correlation: {symbol} vs open {other} is {corr:.2f} over the last "
                           f"{cfg.correlation_window} bars, above EXPOSURE.max_correlation {cfg.max_correlation:g}")
    return True, ""


def _check_cluster(symbol, notional, book, equity, cfg) -> tuple[bool, str]:
    cluster = cfg.cluster_of(symbol)
    if cluster is None:
        return True, ""
    members = [(s, n) for s, n in book if s in cluster.symbols]
    if len(members) >= cluster.max_concurrent:
        return False, (f"cluster {cluster.name}: {len(members)} positions already open "
                       f"({', '.join(s for s, _ in members)}), max_concurrent {cluster.max_concurrent}")
    alloc = sum(n for _, n in members) + notional
    if alloc > equity * cluster.max_alloc_pct / 100 + 1e-9:
        return False, (f"cluster {cluster.name}: {alloc:.2f} USD would be {100 * alloc / equity:.1f} % of equity, "
                       f"above max_alloc_pct {cluster.max_alloc_pct:g} %")
    return True, ""


# %%
book = [{"symbol": "BTCUSDT", "notional": 1000.0}]
test_eq(can_open("EURUSD", 1000, book, 10_000, cfg=ecfg), (True, ""))
test_eq(can_open("ETHUSDT", 1500, book, 10_000, cfg=ecfg), (True, ""))
test_eq(can_open("ETHUSDT", 2500, book, 10_000, cfg=ecfg),
        (False, "cluster btc_l1: 3500.00 USD would be 35.0 % of equity, above max_alloc_pct 30 %"))
two = book + [{"symbol": "SOLUSDT", "notional": 500.0}]
test_eq(can_open("ETHUSDT", 100, two, 10_000, cfg=ecfg),
        (False, "cluster btc_l1: 2 positions already open (BTCUSDT, SOLUSDT), max_concurrent 2"))
full = [{"symbol": "SPY", "notional": 9500.0}]
test_eq(can_open("EURUSD", 1000, full, 10_000, cfg=ecfg)[1][:15], "total exposure:")
test_eq(can_open("EURUSD", 0, [], 10_000, cfg=ecfg)[0], False)

# %% [markdown]
# With returns, ETH is refused next to an open BTC it tracks, while EUR/USD is not; a custom config with
# BTC and ETH in separate clusters shows the correlation rule acts on its own.

# %%
loose = ExposureConfig(max_correlation=0.8, correlation_window=100)
ok, reason = can_open("ETHUSDT", 500, book, 10_000, rets, loose)
test_eq(ok, False)
assert reason.startswith("correlation: ETHUSDT vs open BTCUSDT is 0.9") and "above EXPOSURE.max_correlation 0.8" in reason
test_eq(can_open("EURUSD", 500, book, 10_000, rets, loose), (True, ""))
