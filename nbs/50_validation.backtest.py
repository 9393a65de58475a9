# %% [markdown]
# # Backtester
#
# > Backtest signals or per-bar orders through the fill model that paper and live trading use: orders, fills, trades and the equity curve as DataFrames, an annualised summary, a plot, and parallel parameter sweeps.

# %%
#| default_exp validation.backtest

# %% [markdown]
# `backtest(bars, entries, exits)` runs a strategy's signals bar by bar through the fill model of
# `tradingbot.execution`, inside a numba loop (`tradingbot.validation._backtest_nb`, DESIGN §6): a
# backtest and a paper session over the same bars fill the same way. This module is the loop's pandas
# face: it checks the inputs, turns them into the loop's arrays, and turns the loop's records into frames.
#
# The lesson starts with a first backtest and what it assumed. It then builds `backtest` from its parts
# (frames to arrays, the settings of a run, the kernel, records back to frames, the result) and uses it:
# fill timing and latency, stops, shorts and sizing, several symbols on one account, orders bar by bar,
# funding, trading as paper will (`asset=`), parameter sweeps, and numba's cold start.

# %%
#| export
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache, cached_property

import numba
import numpy as np
import pandas as pd

from tradingbot.config import get_key
from tradingbot.data.timeframes import check_time_index, timeframe_delta
from tradingbot.execution.enums import Info, OrderType, Reason, Side, Sizing, Status, TimeInForce
from tradingbot.execution.fills import FillConfig, check_stop_pct, funding_rates, max_stop_pct, volatility
from tradingbot.execution.risk import AssetRules, RiskConfig
from tradingbot.validation._backtest_nb import (FILL_DT, ORDER_DT, STAT_FIELDS, TRADE_DT, Market, OrderArrays,
                                                SignalRows, SimConfig, Stops, new_state, run_nb)
from tradingbot.validation.metrics import periods_per_year, summary

# %%
#| hide
import talib
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample
from tradingbot.execution.fills import replay_order

spx, btc, es = load_sample("spx_1d"), load_sample("btcusd_1h"), load_sample("es_1m")

# %% [markdown]
# ## A first backtest: RSI-2 on the S&P 500
# Connors' RSI-2 rule on twenty years of daily bars: buy when the 2-day RSI closes below 10 while the
# close is above its 200-day average, sell when the RSI closes above 70. Signals are boolean Series on
# the bars' index; decisions at the close, fills at the next open, 0.05 % taker fees and a 1 bp spread.
# (This cell imports the package's `backtest`; the rest of the lesson builds it.)

# %%
from tradingbot.validation.backtest import backtest as first_backtest  # noqa: E402

close = spx.close.to_numpy()
rsi2, sma200 = talib.RSI(close, 2), talib.SMA(close, 200)
entries = pd.Series((rsi2 < 10) & (close > sma200), index=spx.index)
exits = pd.Series(rsi2 > 70, index=spx.index)
first = first_backtest(spx, entries, exits, fill={"taker_fee_pct": 0.05, "spread_pct": 0.01}, init_cash=10_000)
first.plot(title="RSI-2 on the S&P 500: next-open fills, 0.05 % fees");

# %%
{k: round(v, 3) for k, v in first.summary().items() if k in ("total_return", "sharpe", "max_drawdown", "trades",
                                                              "win_rate", "profit_factor")}


# %% [markdown]
# ## What that backtest assumed
# **Timing.** A decision is taken at a bar's close, from that bar and the bars before it (the RSI-2
# above is computed on closes up to the decision bar's). With `price="next_open"` (the default) its order
# reaches the market at the open of the next bar — `fill.latency_bars` later still — so every fill comes
# after the decision it acts on. `price="close"`
# fills at the decision bar's own close: vectorbt's convention, kept so that the two can be checked
# against each other (`tests/test_backtest_vectorbt_parity.py`); it is not a tradeable assumption.
#
# **Two ways to size.** A research backtest (no `asset`, as above) spends all free cash on each entry,
# with no costs unless `fill=` gives them — the vectorbt habit. With `asset="crypto_spot"` (any asset of
# `config/assets.json`) the backtest trades as paper and live will: the asset's fees, lot step, minimum
# notional, stop band and shorting rule, the paper session's starting equity, and `sizing="risk"` — the
# $10 rule, the risk tiers, the drawdown cut and every cap of `tradingbot.execution.risk`, computed by
# the same kernels the router calls.
#
# **Units.** Percent parameters are named `*_pct` and take percent: `sl_pct=2` is a 2 % stop, and
# `taker_fee_pct=0.05` above is 0.05 %. A value under 0.1 where a stop is expected (`sl_pct=0.02`, the
# vectorbt habit for 2 %) is almost always a fraction by mistake, so it warns. Stop distances
# (`stop_distance`) are in price units, durations (`time_stop_bars`) in bars.

# %% [markdown]
# ## From frames to the loop's arrays
# One symbol is a bar frame; several symbols sharing one cash account are a `{symbol: bars}` mapping
# on one common index. Signals are boolean Series (one symbol) or DataFrames with a column per symbol.
# Every array reaches the loop as a C-ordered row per symbol — for one symbol a view, not a copy.

# %%
#| export
def _symbols(bars: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    "Bars by symbol, after checking the frames and that they share one index."
    frames = dict(bars) if isinstance(bars, Mapping) else {"asset": bars}
    if not frames:
        raise ValueError("no bars given")
    index = None
    for name, frame in frames.items():
        missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame]
        if missing:
            raise ValueError(f"bars of {name!r} lack columns {missing}")
        idx = check_time_index(frame, f"bars of {name!r}")
        if index is not None and not idx.equals(index):
            raise ValueError(f"bars of {name!r} are on another index than the first symbol's; align them first "
                             f"(e.g. reindex on the intersection of the indexes)")
        index = idx
    return frames


def _ro(a: np.ndarray) -> np.ndarray:
    "A read-only view (numba compiles a loop per mix of writable and read-only inputs: make them all alike)."
    view = a.view()
    view.flags.writeable = False
    return view


_UNUSED_F, _UNUSED_B, _UNUSED_I = (_ro(np.full((1, 1), np.nan)), _ro(np.zeros((1, 1), np.bool_)),
                                   _ro(np.zeros((1, 1), np.int64)))  # placeholders of inputs a run does not use
_NO_ORDERS = OrderArrays(_UNUSED_F, _UNUSED_I, _UNUSED_F, _UNUSED_F)


def _rows(frames: dict[str, pd.DataFrame], column: str, dtype=np.float64) -> np.ndarray:
    "One C-ordered row per symbol of a bar column."
    if len(frames) == 1:
        return _ro(np.ascontiguousarray(next(iter(frames.values()))[column].to_numpy(dtype=dtype))[None, :])
    return _ro(np.stack([f[column].to_numpy(dtype=dtype) for f in frames.values()]))


def _per_symbol(x, frames: dict[str, pd.DataFrame], name: str, dtype) -> np.ndarray | None:
    "A per-bar input (Series for one symbol, DataFrame by symbol, or array) as rows (n_symbols, n_bars)."
    if x is None:
        return None
    index, symbols = next(iter(frames.values())).index, list(frames)
    if isinstance(x, (pd.Series, pd.DataFrame)):
        if not x.index.equals(index):
            raise ValueError(f"{name} must be on the bars' index ({len(index)} bars); got {len(x)} rows")
        if isinstance(x, pd.DataFrame):
            missing = [s for s in symbols if s not in x.columns]
            if missing:
                raise ValueError(f"{name} lacks columns for symbols {missing}")
            x = x[symbols]
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 2 and arr.shape[1] == len(symbols) and arr.shape[0] == len(index):
        arr = arr.T
    if arr.shape != (len(symbols), len(index)):
        raise ValueError(f"{name} has shape {np.shape(x)}; expected one value per bar and symbol")
    if dtype is np.bool_ and arr.dtype != np.bool_:
        if pd.isna(arr).any():
            raise ValueError(f"{name} holds NaN; signals must be True/False")
    return _ro(np.ascontiguousarray(arr, dtype=dtype))


def bar_length(bars: pd.DataFrame,  # bars with a time index
               ) -> pd.Timedelta:  # the length of one bar
    "A bar's length: `bars.attrs['timeframe']` when set, else the smallest spacing of the index."
    tf = bars.attrs.get("timeframe")
    if tf:
        return timeframe_delta(tf)
    if len(bars.index) < 2:
        raise ValueError("cannot tell the bar length of fewer than two bars: set bars.attrs['timeframe']")
    return pd.Timedelta(int(np.diff(_nanos(bars.index)).min()), "ns")  # on the integers: 5x faster than on the index


def _nanos(index: pd.DatetimeIndex) -> np.ndarray:
    "The index as int64 nanoseconds since the epoch (UTC)."
    return index.asi8 if index.unit == "ns" else index.as_unit("ns").asi8  # as_unit copies even to its own unit


def _day_fields(frames: dict[str, pd.DataFrame], mkt: Market) -> dict:
    "The `SimConfig` fields of the daily-loss cap's days: the loop divides bar times into days on events only."
    used = mkt.open_ns is not _UNUSED_I
    return {"has_day": used, "bar_ns": bar_length(next(iter(frames.values()))).value if used else 0}


def _market(frames: dict[str, pd.DataFrame], fill: FillConfig, days: bool = False) -> Market:
    "The market rows the loop reads (spread, volatility, funding and close days only when used)."
    index = next(iter(frames.values())).index
    spread = _rows(frames, "spread") if all("spread" in f for f in frames.values()) else _UNUSED_F
    vol = (_ro(np.stack([volatility(f, fill.vol_kind, fill.vol_window) for f in frames.values()]))
           if fill.vol_slippage_k else _UNUSED_F)
    funding = (_ro(np.tile(funding_rates(index, fill.funding_rate, fill.funding_interval_h), (len(frames), 1)))
               if fill.funding_rate is not None else _UNUSED_F)
    return Market(*(_rows(frames, c) for c in ("open", "high", "low", "close", "volume")), spread, vol, funding,
                  _ro(_nanos(index)[None, :]) if days else _UNUSED_I)


# %%
one = _symbols(spx)
test_eq(list(one), ["asset"])
m = _market(one, FillConfig())
test_eq((m.close.shape, m.close.flags.c_contiguous, m.spread.shape), ((1, len(spx)), True, (1, 1)))
test_eq(np.shares_memory(m.close, spx.close.to_numpy()) or m.close.base is not None, True)
test_fail(lambda: _symbols({"a": spx, "b": btc}), contains="bars of 'b' are on another index")
test_fail(lambda: _per_symbol(pd.Series(True, index=spx.index[:10]), one, "entries", np.bool_),
          contains="entries must be on the bars' index")
test_eq(bar_length(btc), pd.Timedelta(hours=1))
m = _market(_symbols(btc.iloc[:30]), FillConfig(), days=True)
test_eq(m.open_ns[0], btc.index[:30].as_unit("ns").asi8)
test_eq(_day_fields(_symbols(btc), m), {"has_day": True, "bar_ns": 3_600_000_000_000})


# %% [markdown]
# ## Orders given bar by bar
# Instead of signals, a strategy can hand over one order per bar: a frame on the bars' index with a
# signed `size` in units (NaN or 0: no order), and optionally `type` (`market`, `limit`, `stop`,
# `stop_limit`), `limit` and `stop` prices. An order replaces the symbol's working orders; one that
# would flip a position is split into the part that closes it and the part that opens the other way.

# %%
#| export
def _order_arrays(orders, frames: dict[str, pd.DataFrame]) -> OrderArrays | None:
    "Per-bar order rows from a frame (one symbol) or {symbol: frame}, after checking prices per type."
    if orders is None:
        return None
    by_symbol = dict(orders) if isinstance(orders, Mapping) else {next(iter(frames)): orders}
    unknown = set(by_symbol) - set(frames)
    if unknown:
        raise ValueError(f"orders for unknown symbols {sorted(unknown)}")
    index, rows = next(iter(frames.values())).index, {"size": [], "type": [], "limit": [], "stop": []}
    for sym in frames:
        frame = by_symbol.get(sym, pd.DataFrame({"size": np.nan}, index=index))
        if "size" not in frame or not frame.index.equals(index):
            raise ValueError(f"orders of {sym!r} need a 'size' column on the bars' index")
        types = frame["type"] if "type" in frame else pd.Series("market", index=index)
        codes = {t: OrderType.parse(t, "order type").code for t in types.unique()}
        code = types.map(codes).to_numpy(dtype=np.int64)
        size = frame["size"].to_numpy(dtype=np.float64)
        limit = frame["limit"].to_numpy(dtype=np.float64) if "limit" in frame else np.full(len(index), np.nan)
        stop = frame["stop"].to_numpy(dtype=np.float64) if "stop" in frame else np.full(len(index), np.nan)
        live = (size == size) & (size != 0)
        for need, price, label in ((OrderType.LIMIT, limit, "limit"), (OrderType.STOP, stop, "stop")):
            uses = live & ((code == need.code) | (code == OrderType.STOP_LIMIT.code))
            bad = uses & ~(np.isfinite(price) & (price > 0))
            if bad.any():
                raise ValueError(f"orders of {sym!r}: the order at {index[bad][0]} needs a positive '{label}' price")
        for key, value in zip(rows, (size, code, limit, stop)):
            rows[key].append(value)
    return OrderArrays(*(_ro(np.ascontiguousarray(np.stack(v))) for v in rows.values()))


# %%
o = pd.DataFrame({"size": [np.nan, 2.0, -1.0], "type": ["market", "limit", "stop"],
                  "limit": [np.nan, 99.0, np.nan], "stop": [np.nan, np.nan, 95.0]}, index=spx.index[:3])
arr = _order_arrays(o, _symbols(spx.iloc[:3]))
test_eq(arr.type.tolist(), [[0, 1, 2]])
test_fail(lambda: _order_arrays(o.assign(limit=np.nan), _symbols(spx.iloc[:3])),
          contains=f"the order at {spx.index[1]} needs a positive 'limit' price")
test_fail(lambda: _order_arrays(o.assign(type="iceberg"), _symbols(spx.iloc[:3])), contains="unknown order type")


# %% [markdown]
# ## Records to frames
# The loop's records carry bar numbers and codes; the frames carry timestamps, symbols and the
# vocabulary's names (`tradingbot.execution.enums`). Trades are round trips from flat to flat (a
# position still open at the end is in the equity curve, not among the trades). Names are categoricals:
# they compare like strings and cost little to build.

# %%
#| export
@cache
def _code_dtype(kind: type) -> tuple[int, np.ndarray, pd.CategoricalDtype]:
    "An enum's smallest code, the category of each code, and the categorical dtype of its names."
    codes = [m.code for m in kind]
    lo = min(codes)
    slot = np.full(max(codes) - lo + 1, -1)
    slot[np.array(codes) - lo] = np.arange(len(codes))
    return lo, slot, pd.CategoricalDtype([m.value for m in kind])


def _names(kind: type, values: np.ndarray) -> pd.Categorical:
    "Code values as a categorical of the enum's names (cheap to build, compares like strings)."
    lo, slot, dtype = _code_dtype(kind)
    return pd.Categorical.from_codes(slot[np.asarray(values) - lo], dtype=dtype, validate=False)


def _symbols_of(cols: np.ndarray, symbols: tuple[str, ...]) -> pd.Categorical:
    "Column numbers as a categorical of symbols."
    return pd.Categorical.from_codes(cols, dtype=pd.CategoricalDtype(list(symbols)), validate=False)


def _orders_frame(orders, index: pd.DatetimeIndex, symbols: tuple[str, ...]) -> pd.DataFrame:
    "Order records as a frame: one row per order, by order id."
    return pd.DataFrame({"symbol": _symbols_of(orders["col"], symbols), "ts": index[orders["bar"]],
                         "side": _names(Side, orders["side"]), "type": _names(OrderType, orders["type"]),
                         "tif": _names(TimeInForce, orders["tif"]), "reason": _names(Reason, orders["reason"]),
                         **{k: orders[k] for k in ("qty", "notional", "limit", "stop")},
                         "status": _names(Status, orders["status"]), "status_info": _names(Info, orders["info"]),
                         **{k: orders[k] for k in ("filled_qty", "avg_price", "fees")}},
                        index=pd.Index(orders["id"], name="order_id"))


def _fills_frame(fills, index: pd.DatetimeIndex, symbols: tuple[str, ...]) -> pd.DataFrame:
    "Fill records as a frame, in the order they happened."
    return pd.DataFrame({"order_id": fills["order_id"], "symbol": _symbols_of(fills["col"], symbols),
                         "ts": index[fills["bar"]], "side": _names(Side, fills["side"]),
                         **{k: fills[k] for k in ("qty", "price", "fee", "maker")},
                         "reason": _names(Reason, fills["reason"])})


def _trades_frame(trades, index: pd.DatetimeIndex, symbols: tuple[str, ...]) -> pd.DataFrame:
    "Closed round trips as a frame."
    direction = pd.Categorical.from_codes((trades["direction"] > 0).astype(np.int8), categories=["short", "long"])
    return pd.DataFrame({"symbol": _symbols_of(trades["col"], symbols), "direction": direction,
                         "entry_ts": index[trades["entry_bar"]], "exit_ts": index[trades["exit_bar"]],
                         **{k: trades[k] for k in ("qty", "entry_price", "exit_price", "fees", "funding", "pnl")},
                         "return": trades["ret"], "exit_reason": _names(Reason, trades["exit_reason"]),
                         "bars": trades["exit_bar"] - trades["entry_bar"]})


def _stats(raw: np.ndarray, init_cash: float) -> dict:
    "Named statistics of a run from the loop's raw numbers (drawdown negative, win rate per trade, as `summary`)."
    s = dict(zip(STAT_FIELDS, raw.tolist()))
    n = int(s["n_trades"])
    return {"final_equity": s["final_equity"], "total_return": s["final_equity"] / init_cash - 1.0,
            "max_drawdown": -s["max_drawdown"], "n_trades": n, "win_rate": s["n_wins"] / n if n else np.nan,
            "fees": s["fees"], "n_orders": int(s["n_orders"]), "n_fills": int(s["n_fills"])}


# %%
test_eq(list(_names(Status, np.array([1, 3, 0]))), ["filled", "rejected", "open"])
test_eq(list(_names(OrderType, np.array([1, 3]))), ["limit", "stop_limit"])  # the same numbers, other names
test_eq(list(_names(Side, np.array([-1, 1]))), ["sell", "buy"])
test_eq(_names(Info, np.array([6])) == "stop_too_wide", np.array([True]))

# %% [markdown]
# ## Settings shared by backtests and sweeps
# `_setup` resolves what a run trades under: with an `asset`, its fill model, order rules, the paper
# session's starting equity and risk sizing, each overridable; without one, a research run (all-in, no
# costs, 1,000 of cash). A `size` the sizing ignores is an error rather than silently dropped, and so is a
# sizing that needs a size and gets none.

# %%
#| export
PRICES = ("next_open", "close")


@dataclass(frozen=True)
class _Setup:
    "What a run trades under."
    sizing: Sizing
    size: float
    init_cash: float
    fill: FillConfig
    rules: AssetRules | None
    risk: RiskConfig


def _setup(asset: str | None, sizing, size, init_cash, fill) -> _Setup:
    "The sizing, starting equity, fill model and order rules of a run, after checking the user's choices."
    rules = AssetRules.for_asset(asset) if asset is not None else None
    sizing = Sizing.parse(sizing if sizing is not None else ("risk" if asset else "cash"), "sizing")
    if sizing in (Sizing.CASH, Sizing.RISK) and size is not None:
        raise ValueError(f"size={size!r} is ignored by sizing={sizing.value!r} (all-in spends free cash, risk sizing "
                         "sizes by the stop); pass sizing='notional' for money per entry or 'equity' for a fraction")
    if sizing in (Sizing.NOTIONAL, Sizing.EQUITY) and not (size is not None and math.isfinite(size) and size > 0):
        raise ValueError(f"sizing={sizing.value!r} needs a finite size > 0 (an amount of money, or a fraction of "
                         f"equity), got {size!r}")
    if init_cash is None:
        init_cash = float(get_key("PAPER.PAPER_EQUITY_START")) if asset else 1_000.0
    if not (math.isfinite(init_cash) and init_cash > 0):
        raise ValueError(f"init_cash must be finite and > 0, got {init_cash!r}")
    if asset is not None and not isinstance(fill, FillConfig):
        fill = FillConfig.for_asset(asset, **(fill or {}))
    return _Setup(sizing, math.inf if size is None else float(size), float(init_cash), FillConfig.of(fill), rules,
                  RiskConfig.from_config())


def _sim_config(price: str, setup: _Setup, cooldown: int, record: bool, **used) -> SimConfig:
    "The loop's scalar settings."
    if price not in PRICES:
        raise ValueError(f"price must be one of {PRICES}, got {price!r}")
    if not (isinstance(cooldown, (int, np.integer)) and cooldown >= 0):
        raise ValueError(f"stop_cooldown_bars must be an int >= 0, got {cooldown!r}")
    cap, rules = max_stop_pct(), setup.rules
    return SimConfig(at_close=price == "close", latency=int(setup.fill.latency_bars), sizing=setup.sizing.code,
                     size=setup.size, init_cash=setup.init_cash, cooldown=int(cooldown), tif=setup.fill.tif.code,
                     post_only=bool(setup.fill.post_only), max_stop_pct=cap,
                     sl_min_pct=rules.sl_pct_min if rules else 0.0, sl_max_pct=rules.sl_pct_max if rules else cap,
                     record=bool(record), shorting=rules.shorting if rules else True,
                     qty_step=rules.qty_step if rules else 1e-8, min_notional=rules.min_notional if rules else 0.0,
                     leverage=rules.leverage if rules else 1.0, risk=setup.risk.params,
                     **{k: bool(v) for k, v in used.items()})


def _pct(name: str, value):
    "A percent parameter as floats, warning when it looks like a fraction passed by mistake."
    arr = np.asarray(value, dtype=np.float64)
    small = arr[(arr > 0) & (arr < 0.1)]
    if small.size:
        warnings.warn(f"{name}={small[0]:g} is {small[0]:g} % (percent units: 2 means 2 %); for a "
                      f"{100 * small[0]:g} % stop pass {name}={100 * small[0]:g}", stacklevel=4)
    return value


def _stops(n_cols: int, sl_pct, tp_pct, trail_pct, time_stop_bars, dist: np.ndarray | None,
           dist_row: np.ndarray | None = None) -> Stops:
    "Per-column protective stops as fractions, after the safety cap (SAFETY.MAX_STOP_LOSS_PCT)."
    check_stop_pct("sl_pct", sl_pct)
    check_stop_pct("trail_pct", trail_pct)
    frac = [np.ascontiguousarray(np.broadcast_to(np.asarray(_pct(n, p), dtype=np.float64), (n_cols,))) / 100
            for n, p in (("sl_pct", sl_pct), ("tp_pct", tp_pct), ("trail_pct", trail_pct))]
    if (frac[1] <= 0).any():
        raise ValueError("tp_pct must be > 0 percent (NaN for none)")
    bars = np.ascontiguousarray(np.broadcast_to(np.asarray(time_stop_bars), (n_cols,)))
    if not (np.issubdtype(bars.dtype, np.integer) and (bars >= 0).all()):
        raise ValueError(f"time_stop_bars must be whole numbers of bars >= 0, got {time_stop_bars!r}")
    if dist is not None and dist_row is None:
        dist_row = np.arange(n_cols, dtype=np.int64)
    return Stops(*(_ro(f) for f in frac), _ro(bars.astype(np.int64)), _UNUSED_F if dist is None else dist,
                 _ro(np.zeros(n_cols, np.int64) if dist_row is None else dist_row))


def _check_risk_stop(setup: _Setup, sl_pct, stop_distance) -> None:
    "Risk sizing sizes every entry by its stop: refuse a run that gives none."
    if setup.sizing == Sizing.RISK and stop_distance is None and bool(np.all(np.isnan(np.asarray(sl_pct, float)))):
        raise ValueError("sizing='risk' sizes each entry by its stop-loss: pass sl_pct= (percent) or stop_distance= "
                         "(price units, e.g. 2 × ATR), or choose sizing='cash' for an all-in research run")


# %%
test_fail(lambda: _setup(None, "cash", 500.0, None, None), contains="size=500.0 is ignored by sizing='cash'")
test_fail(lambda: _setup(None, "notional", None, None, None), contains="needs a finite size > 0")
test_fail(lambda: _setup(None, "kelly", None, None, None), contains="unknown sizing 'kelly'; valid: cash, notional")
st = _setup("crypto_spot", None, None, None, {"slippage_pct": 0.01})
test_eq((st.sizing, st.init_cash, st.fill.taker_fee_pct, st.fill.slippage_pct, st.rules.qty_step),
        (Sizing.RISK, get_key("PAPER.PAPER_EQUITY_START"), get_key("assets.crypto_spot.fees.taker_pct"), 0.01, 1e-6))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _stops(1, 0.02, np.nan, np.nan, 0, None)
test_eq(str(caught[0].message), "sl_pct=0.02 is 0.02 % (percent units: 2 means 2 %); for a 2 % stop pass sl_pct=2")

# %% [markdown]
# ## Driving the kernel
# `_simulate` runs one cash-sharing group, growing the record buffers whenever the kernel stops for
# room; `_sweep_columns` runs many columns alone, split over threads (the kernel releases the GIL), each
# thread taking every k-th column so that slow and fast combinations share out evenly.

# %%
#| export
_NO_COLUMNS = _ro(np.empty(0, np.int64))


def _grown(records: np.ndarray, used: int) -> np.ndarray:
    "A copy of `records` twice as large, with the first `used` entries kept."
    out = np.empty(2 * len(records) + 64, dtype=records.dtype)
    out[:used] = records[:used]
    return out


def _simulate(n_cols: int, mkt: Market, sig: SignalRows, ords: OrderArrays, stops: Stops, cfg: SimConfig,
              params, equity: np.ndarray, capacity: int | None = None) -> tuple:
    "Run columns 0 … n_cols-1 as one group over all bars: (orders, fills, trades, stats)."
    n = mkt.close.shape[1]
    state = new_state(n_cols, cfg.init_cash)
    # generous: np.empty only reserves address space, a page costs something once a record is written to it
    capacity = capacity or 64 + 4 * n_cols + n // 8
    records = [np.empty(capacity, dtype=dt) for dt in (ORDER_DT, FILL_DT, TRADE_DT)]
    stats, pcols, i = np.empty((1, len(STAT_FIELDS))), _ro(np.arange(n_cols, dtype=np.int64)), 0
    while True:
        i = run_nb(i, 0, n_cols, _NO_COLUMNS, pcols, mkt, sig, ords, stops, cfg, params, equity, *state, *records,
                   stats)
        if i >= n:
            break
        records = [_grown(r, used) for r, used in zip(records, state[3])]
    return (*(r[:used] for r, used in zip(records, state[3])), stats[0])


def _sweep_columns(n_cols: int, mkt: Market, sig: SignalRows, ords: OrderArrays, stops: Stops, cfg: SimConfig,
                   params) -> np.ndarray:
    "Statistics (n_cols, len(STAT_FIELDS)) of each column run alone on the one market row, over threads."
    out, pcols = np.empty((n_cols, len(STAT_FIELDS))), _ro(np.zeros(n_cols, dtype=np.int64))
    threads = max(1, min(numba.get_num_threads(), n_cols))

    def work(first: int) -> None:
        scratch = [np.empty(1, dtype=dt) for dt in (ORDER_DT, FILL_DT, TRADE_DT)]  # unused: no records in a sweep
        run_nb(0, 0, 0, _ro(np.arange(first, n_cols, threads, dtype=np.int64)), pcols, mkt, sig, ords, stops, cfg,
               params, np.empty(0), *new_state(1, cfg.init_cash), *scratch, out)

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, range(threads)))
    return out


# %% [markdown]
# ## What a backtest gives back
# `BacktestResult` holds the equity curve, the loop's statistics and its records, which become the
# `orders`, `fills` and `trades` frames on first use. `returns` are the equity curve's bar-to-bar
# changes (the first bar against the starting cash). `summary()` is `metrics.summary` annualised from
# the bars' timeframe (`bars.attrs["timeframe"]`) and the market's calendar — never a silent 252: a run
# that knows neither is an error that says what to pass. `plot()` draws equity against buy-and-hold
# with the fills marked, and the drawdown.

# %%
#| export
ASSET_CALENDARS = {"crypto_spot": "crypto", "crypto_futures": "crypto", "forex": "forex", "options": "stocks",
                   "index": "stocks", "futures": "futures"}  # asset class -> trading calendar (metrics.CALENDARS)


def calendar_of(bars: pd.DataFrame,  # bars, whose attrs may name a calendar, a sample or an asset
                asset: str | None = None,  # the asset traded, when known
                ) -> str | None:  # a key of `metrics.CALENDARS`, or None when nothing tells
    "The trading calendar of `bars`: the asset's, `attrs['calendar']`, or the bundled sample's asset's."
    from tradingbot.data.samples import SAMPLES
    if asset is not None:
        return ASSET_CALENDARS.get(asset)
    if bars.attrs.get("calendar"):
        return bars.attrs["calendar"]
    sample = SAMPLES.get(bars.attrs.get("name", ""))
    return ASSET_CALENDARS.get(sample.asset) if sample is not None else None


@dataclass(frozen=True)
class BacktestResult:
    "What a backtest produced; the orders, fills and trades frames are built from the records on first use."
    equity: pd.Series  # account equity at each bar's close
    stats: dict  # final_equity, total_return, max_drawdown (≤ 0), n_trades, win_rate (per trade), fees, n_orders, n_fills
    records: tuple  # the loop's (orders, fills, trades) structured arrays
    symbols: tuple[str, ...]  # the symbols in column order (the records' `col` numbers index it)
    closes: pd.DataFrame | None = None  # close prices by symbol (buy-and-hold in `plot`)
    timeframe: str | None = None  # the bars' timeframe, for annualising
    calendar: str | None = None  # the market's calendar, for annualising
    init_cash: float = 1_000.0  # starting equity, account currency

    @cached_property
    def orders(self) -> pd.DataFrame:
        "Every order, by order id: symbol, decision time, side, type, prices, status and why, what filled."
        return _orders_frame(self.records[0], self.equity.index, self.symbols)

    @cached_property
    def fills(self) -> pd.DataFrame:
        "Every fill in the order it happened: order id, symbol, time, side, quantity, price, fee, maker or taker."
        return _fills_frame(self.records[1], self.equity.index, self.symbols)

    @cached_property
    def trades(self) -> pd.DataFrame:
        "Closed round trips from flat to flat: entry and exit times and prices, fees, funding, P&L, return, reason."
        return _trades_frame(self.records[2], self.equity.index, self.symbols)

    @cached_property
    def returns(self) -> pd.Series:
        "Per-bar returns of the equity curve; the first bar's against the starting cash."
        prev = self.equity.shift(1).fillna(self.init_cash)
        return (self.equity / prev - 1.0).rename("returns")

    def periods(self, periods: float | None = None,  # bars per year, if known
                calendar: str | None = None,  # a key of metrics.CALENDARS (default: the run's)
                ) -> float:  # bars per year
        "Bars per year for annualising: `periods`, or the bars' timeframe on the market's calendar."
        if periods is not None:
            return float(periods)
        calendar = calendar or self.calendar
        if not self.timeframe or not calendar:
            missing = " and ".join(x for x, have in (("timeframe", self.timeframe), ("calendar", calendar))
                                   if not have)
            raise ValueError(f"cannot annualise: the run does not know its {missing}. Set bars.attrs['timeframe'] "
                             "(e.g. '1h') and pass calendar= ('crypto', 'stocks', 'forex' or 'futures'), or an "
                             "asset=, or pass periods= (bars per year) to summary()")
        return periods_per_year(self.timeframe, calendar)

    def summary(self, periods: float | None = None,  # bars per year (default: from the timeframe and calendar)
                calendar: str | None = None,  # override the run's calendar
                rf: float = 0.0,  # annual risk-free rate
                confidence: float = 0.95,  # CVaR confidence
                ) -> dict:  # `metrics.summary` of the returns and trades
        "Sharpe, Sortino, drawdown, CVaR, trade statistics… annualised on the run's calendar."
        return summary(self.returns, self.trades, periods=self.periods(periods, calendar), rf=rf,
                       confidence=confidence)

    def plot(self, title: str | None = None,  # the figure's title
             figsize: tuple[float, float] = (9.0, 4.5),  # inches
             ):
        "Equity against buy-and-hold with the fills marked, and the drawdown below; returns the figure."
        import matplotlib.pyplot as plt
        fig, (top, low) = plt.subplots(2, 1, figsize=figsize, sharex=True, height_ratios=(3, 1))
        # matplotlib's own date axis (pandas' .plot would switch a regular index to periods scatter cannot share)
        top.plot(self.equity.index, self.equity.to_numpy(), lw=0.9, label="strategy")
        if self.closes is not None:
            hold = self.closes.div(self.closes.iloc[0]).mean(axis=1) * self.init_cash
            top.plot(hold.index, hold.to_numpy(), lw=0.7, color="grey", alpha=0.8, label="buy and hold")
        fills = self.fills
        for side, marker, color in (("buy", "^", "tab:green"), ("sell", "v", "tab:red")):
            at = fills.ts[fills.side == side]
            top.scatter(at, self.equity.reindex(at), marker=marker, s=14, color=color, label=side, zorder=3)
        top.set_ylabel("equity")
        top.legend(loc="upper left", fontsize="small")
        dd = self.equity / self.equity.cummax() - 1.0
        low.fill_between(dd.index, dd.to_numpy(), 0.0, color="tab:red", alpha=0.4, lw=0)
        low.set_ylabel("drawdown")
        if title:
            top.set_title(title)
        fig.tight_layout()
        return fig


# %% [markdown]
# ## backtest
# Stops are in percent of the entry price (`sl_pct=2` is 2 %): stop-loss, take-profit, trailing stop;
# `time_stop_bars` closes a position after that many bars; `stop_distance` gives a stop-loss distance in
# price units per bar (e.g. 2 × ATR), taken with each entry. `sl_pct` and `stop_distance` may both be
# given: the tighter one is the stop (`stop_price_nb`, the one stop rule). A stop farther than SAFETY.MAX_STOP_LOSS_PCT is refused: a
# configured one raises, a per-bar one rejects that entry (as does one outside the asset's band).
# `stop_cooldown_bars` (default 1: the bar of a protective exit itself, which is vectorbt's rule)
# ignores entry signals for a while after a stop. `score` is each entry's signal strength in [0, 1] for
# risk sizing's weight (0.5, normal, when not given).

# %%
#| export
def backtest(bars: pd.DataFrame | Mapping[str, pd.DataFrame],  # one symbol's bars, or {symbol: bars} sharing cash
             entries=None,  # long entry signals (bool; Series, or DataFrame by symbol)
             exits=None,  # long exit signals
             short_entries=None,  # short entry signals
             short_exits=None,  # short exit signals
             *,
             orders=None,  # per-bar orders instead of signals: frame (or {symbol: frame}) of size/type/limit/stop
             price: str = "next_open",  # 'next_open' (decide at close, fill at a later open) or 'close' (vectorbt)
             asset: str | None = None,  # trade as this asset of assets.json does in paper: its costs, lots, stops, sizing
             sizing: str | None = None,  # 'cash' (all-in), 'notional', 'equity' or 'risk' (default: risk with an asset)
             size: float | None = None,  # money per entry ('notional') or fraction of equity ('equity', 0.5 = half)
             init_cash: float | None = None,  # starting equity (default: the paper session's with an asset, else 1,000)
             sl_pct=np.nan,  # stop-loss, percent of the entry price (2 = 2 %; NaN: none)
             tp_pct=np.nan,  # take-profit, percent of the entry price (NaN: none)
             trail_pct=np.nan,  # trailing stop, percent below the best price since entry (NaN: none)
             time_stop_bars: int = 0,  # close a position after this many bars (0: never)
             stop_distance=None,  # per-bar stop-loss distance in price units (Series, or DataFrame by symbol)
             score=None,  # per-bar signal strength in [0, 1] for risk sizing (Series, or DataFrame by symbol)
             stop_cooldown_bars: int = 1,  # bars after a protective exit in which entry signals are ignored
             fill: FillConfig | Mapping | None = None,  # the fill model, or a dict of its fields (default: asset's, or none)
             calendar: str | None = None,  # the market's calendar for `summary()` (default: from asset or sample)
            ) -> BacktestResult:
    "Run an event-driven backtest of signals or per-bar orders through the fill model."
    frames = _symbols(bars)
    index, symbols = next(iter(frames.values())).index, list(frames)
    setup = _setup(asset, sizing, size, init_cash, fill)
    signals = [_per_symbol(x, frames, name, np.bool_) for x, name in
               ((entries, "entries"), (exits, "exits"), (short_entries, "short_entries"), (short_exits, "short_exits"))]
    ords = _order_arrays(orders, frames)
    if any(s is not None for s in signals) == (ords is not None):
        raise ValueError("give either signals (entries/exits/short_entries/short_exits) or orders, not both or neither")
    _check_risk_stop(setup, sl_pct, stop_distance)
    dist, scores = _per_symbol(stop_distance, frames, "stop_distance", np.float64), _per_symbol(
        score, frames, "score", np.float64)
    mkt = _market(frames, setup.fill, days=setup.sizing == Sizing.RISK)
    cfg = _sim_config(price, setup, stop_cooldown_bars, True,
                      **{k: s is not None for k, s in zip(("use_le", "use_lx", "use_se", "use_sx"), signals)},
                      use_orders=ords is not None, has_spread=mkt.spread is not _UNUSED_F,
                      has_vol=mkt.vol is not _UNUSED_F, has_funding=mkt.funding is not _UNUSED_F,
                      has_dist=dist is not None, has_score=scores is not None, **_day_fields(frames, mkt))
    equity = np.empty(len(index))
    raw = _simulate(len(symbols), mkt, SignalRows(*(s if s is not None else _UNUSED_B for s in signals),
                                               scores if scores is not None else _UNUSED_F),
                    ords if ords is not None else _NO_ORDERS,
                    _stops(len(symbols), sl_pct, tp_pct, trail_pct, time_stop_bars, dist), cfg,
                    setup.fill.params(), equity)
    first = next(iter(frames.values()))
    return BacktestResult(pd.Series(equity, index=index, name="equity", copy=False), _stats(raw[3], setup.init_cash),
                          raw[:3], tuple(symbols), pd.DataFrame({s: f["close"] for s, f in frames.items()}),
                          first.attrs.get("timeframe"), calendar or calendar_of(first, asset), setup.init_cash)


# %% [markdown]
# The first backtest in detail. Each entry fills at the open after its signal, at the ask (open plus
# half the spread), and pays the fee; each exit at the bid. The equity curve is cash plus the position
# at every close, and `summary()` annualises the S&P 500's daily bars on 252 sessions because the
# sample says it is an index.

# %%
costs = FillConfig(taker_fee_pct=0.05, spread_pct=0.01)
res = backtest(spx, entries, exits, fill=costs, init_cash=10_000)
test_eq(res.stats, first.stats)
t0 = res.trades.iloc[0]
signal_bar = spx.index.get_loc(t0.entry_ts) - 1
test_eq((bool(entries.iloc[signal_bar]), t0.entry_ts), (True, spx.index[signal_bar + 1]))
test_close(t0.entry_price, spx.open.loc[t0.entry_ts] * (1 + 0.00005))
test_close(t0.exit_price, spx.open.loc[t0.exit_ts] * (1 - 0.00005))
buys = res.fills[res.fills.side == "buy"]
test_close(buys.fee, buys.qty * buys.price * 0.0005)
test_eq(res.stats["n_trades"], len(res.trades))
# flat at the close of each exit bar: equity is the starting cash plus the trades' P&L so far
test_close(res.equity.loc[res.trades.exit_ts].to_numpy(), 10_000 + res.trades.pnl.cumsum().to_numpy())
s = res.summary()
test_close(s["sharpe"], res.returns.mean() / res.returns.std(ddof=1) * np.sqrt(252), eps=1e-12)
test_close((s["max_drawdown"], s["win_rate"]), (res.stats["max_drawdown"], res.stats["win_rate"]), eps=1e-12)
res.trades.head()

# %% [markdown]
# On hourly BTC the same call annualises on 24 × 365 bars; a frame that says neither its timeframe nor
# its market cannot be annualised, and says what to pass.

# %%
hourly = backtest(btc, pd.Series(talib.RSI(btc.close.to_numpy(), 2) < 10, index=btc.index),
                  pd.Series(talib.RSI(btc.close.to_numpy(), 2) > 70, index=btc.index))
r = hourly.returns
test_close(hourly.summary()["sharpe"], r.mean() / r.std(ddof=1) * np.sqrt(24 * 365), eps=1e-12)
bare = btc.copy()
bare.attrs = {}
test_fail(lambda: backtest(bare, r > 1, r > 1).summary(),
          contains="cannot annualise: the run does not know its timeframe and calendar")
test_eq(backtest(bare, r > 1, r > 1).summary(periods=8760)["periods"], len(btc))

# %% [markdown]
# Costs can come from the data: bars with a `spread` column (price units) trade at the ask and bid it
# gives; volatility slippage adds `k × ATR` of the bar before the fill (known when the order meets the
# open).

# %%
quoted = spx.assign(spread=spx.close * 0.001)  # a 10 bp spread, known per bar
t1 = backtest(quoted, entries, exits, init_cash=10_000).trades.iloc[0]
test_close(t1.entry_price, spx.open.loc[t1.entry_ts] + 0.5 * quoted.spread.loc[t1.entry_ts])
test_close(t1.exit_price, spx.open.loc[t1.exit_ts] - 0.5 * quoted.spread.loc[t1.exit_ts])
t2 = backtest(spx, entries, exits, init_cash=10_000, fill=FillConfig(vol_slippage_k=0.2)).trades.iloc[0]
atr14, j = talib.ATR(spx.high.to_numpy(), spx.low.to_numpy(), close, 14), spx.index.get_loc(t2.entry_ts)
test_close(t2.entry_price, spx.open.iloc[j] + 0.2 * atr14[j - 1])

# %% [markdown]
# Record buffers that fill up are grown between calls of the kernel, with the same result:

# %%
frames = _symbols(spx)
args = (1, _market(frames, costs), SignalRows(_per_symbol(entries, frames, "e", np.bool_),
                                           _per_symbol(exits, frames, "x", np.bool_), _UNUSED_B, _UNUSED_B,
                                           _UNUSED_F),
        _NO_ORDERS, _stops(1, np.nan, np.nan, np.nan, 0, None),
        _sim_config("next_open", _setup(None, "cash", None, 10_000.0, costs), 1, True, use_le=True, use_lx=True),
        costs.params())
roomy, cramped = _simulate(*args, np.empty(len(spx))), _simulate(*args, np.empty(len(spx)), capacity=4)
for a, b in zip(roomy[:3], cramped[:3]):
    pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))  # NaN-aware, unlike tuples of floats
test_eq(roomy[3], cramped[3])
test_close(roomy[3][0], res.stats["final_equity"])

# %% [markdown]
# ## Fill timing and latency
# The same signals filled at the decision bar's close (the vectorbt convention) buy at that close;
# with `latency_bars=2` every order reaches the market two bars after the next open — and an exit
# signal that comes while an entry is still on its way cancels that entry instead of queueing behind it.

# %%
at_close = backtest(spx, entries, exits, price="close", init_cash=10_000)
first = at_close.trades.iloc[0]
test_eq((bool(entries.loc[first.entry_ts]), first.entry_price), (True, spx.close.loc[first.entry_ts]))
def bars_to_fill(result):
    "Bars between each fill and the decision of its order."
    decided = result.orders.ts.reindex(result.fills.order_id).to_numpy()
    return set(spx.index.get_indexer(result.fills.ts) - spx.index.get_indexer(decided))


slow = backtest(spx, entries, exits, fill=FillConfig(latency_bars=2), init_cash=10_000)
test_eq((bars_to_fill(backtest(spx, entries, exits, init_cash=10_000)), bars_to_fill(slow)), ({1}, {3}))
test_eq(set(slow.fills.price) <= set(spx.open), True)
test_eq((slow.orders.status_info == "replaced").any(), True)

# %% [markdown]
# ## Stops
# A 1 % stop-loss and a 2 % take-profit on the RSI-2 trades. Stops are checked against each bar's
# path after the entry — the entry bar's too, since the position exists from its open: the stop fills
# at its level, the take-profit at its level (a limit that the bar traded through).

# %%
st = backtest(spx, entries, exits, sl_pct=1, tp_pct=2, init_cash=10_000)
tr = st.trades
test_eq(set(tr.exit_reason), {"signal", "stop_loss", "take_profit"})
sl_hits, tp_hits = tr[tr.exit_reason == "stop_loss"], tr[tr.exit_reason == "take_profit"]
test_close(sl_hits.exit_price.to_numpy(), sl_hits.entry_price.to_numpy() * 0.99)
test_eq(bool((spx.low.reindex(sl_hits.exit_ts).to_numpy() <= sl_hits.exit_price.to_numpy() + 1e-9).all()), True)
test_close(tp_hits.exit_price.to_numpy(), tp_hits.entry_price.to_numpy() * 1.02)
test_eq(bool((spx.high.reindex(tp_hits.exit_ts).to_numpy() > tp_hits.exit_price.to_numpy()).all()), True)
st.trades.exit_reason.value_counts()

# %% [markdown]
# The conservative rule on a bar built to touch both: long from 100 with a 2 % stop and a 4 % target,
# a later bar ranges from 97 to 105 — the stop fills. A bar that opens below the stop (a gap) fills at
# its open, not at the stop: long from 101 with a 1 % stop, the next bar opens at 99. A trailing stop
# follows the best high since entry, moved only after each bar is checked (bought at 102, 3 % under the
# high of 106 is 102.82); a time stop closes after `time_stop_bars`.

# %%
idx = pd.date_range("2024-01-01", periods=6, freq="1D", tz="UTC", name="ts")
toy = pd.DataFrame({"open": [100, 100, 101, 104, 103, 99.0], "high": [100, 100, 105, 106, 104, 100.0],
                    "low": [100, 100, 97, 103, 100, 98.0], "close": [100, 100, 102, 105, 101, 99.0],
                    "volume": 1e6}, index=idx)
buy, never = pd.Series([True, False, False, False, False, False], index=idx), pd.Series(False, index=idx)
both_bar = backtest(toy, buy, never, price="close", sl_pct=2, tp_pct=4)
test_eq(both_bar.trades[["exit_ts", "exit_reason", "exit_price"]].values.tolist(), [[idx[2], "stop_loss", 98.0]])
gap = backtest(toy, buy.shift(4, fill_value=False), never, price="close", sl_pct=1)
test_eq(gap.trades[["exit_ts", "exit_reason", "exit_price"]].values.tolist(), [[idx[5], "stop_loss", 99.0]])
trail = backtest(toy, buy.shift(2, fill_value=False), never, price="close", trail_pct=3)
test_eq(trail.trades[["exit_ts", "exit_reason"]].values.tolist(), [[idx[4], "trailing_stop"]])
test_close(trail.trades.exit_price.iloc[0], 106 * 0.97)
timed = backtest(toy, buy, never, price="close", time_stop_bars=3)
test_eq(timed.trades[["exit_reason", "bars", "exit_price"]].values.tolist(), [["time_stop", 3, toy.close.iloc[3]]])

# %% [markdown]
# **The 15 % cap** (SAFETY.MAX_STOP_LOSS_PCT): a configured stop beyond it is refused before anything
# runs; a per-bar stop distance beyond it rejects that entry, which shows in the orders.

# %%
test_fail(lambda: backtest(spx, entries, exits, sl_pct=20),
          contains="sl_pct=20 % refused: stops farther than 15 % from the entry are not allowed")
test_fail(lambda: backtest(spx, entries, exits, trail_pct=16), contains="trail_pct=16 % refused")
atr = pd.Series(talib.ATR(spx.high.to_numpy(), spx.low.to_numpy(), close, 14), index=spx.index)
wide = atr * np.where(spx.index.year == 2017, 40, 2)  # absurd 40 × ATR stops in 2017
atr_run = backtest(spx, entries, exits, stop_distance=wide, init_cash=10_000)
rejected = atr_run.orders[atr_run.orders.status == "rejected"]
test_eq(set(rejected.status_info), {"stop_too_wide"})
test_eq(set(rejected.ts.dt.year), {2017})
bought = atr_run.orders[(atr_run.orders.side == "buy") & (atr_run.orders.status == "filled")]
test_eq((bought.ts.dt.year == 2017).any(), False)  # no entry decided in 2017 went through
fired = atr_run.trades[atr_run.trades.exit_reason == "stop_loss"]
test_eq(len(fired) > 0, True)

# %% [markdown]
# ## Shorts, reversals and sizing
# With short signals a long position reverses into a short (close, then open with the freed cash).
# `"notional"` spends a fixed amount per entry; `"equity"` a fraction of equity at the decision.

# %%
ls = backtest(btc, pd.Series(talib.RSI(btc.close.to_numpy(), 2) < 10, index=btc.index),
              None, pd.Series(talib.RSI(btc.close.to_numpy(), 2) > 90, index=btc.index), None)
test_eq(set(ls.trades.direction), {"long", "short"})
test_eq((ls.trades.exit_ts.iloc[:-1].to_numpy() == ls.trades.entry_ts.iloc[1:].to_numpy()).all(), True)  # reversals
fixed = backtest(spx, entries, exits, sizing="notional", size=2_500, init_cash=10_000)
test_close((fixed.trades.qty * fixed.trades.entry_price).to_numpy(), np.full(len(fixed.trades), 2_500.0))
part = backtest(spx, entries, exits, sizing="equity", size=0.5, init_cash=10_000)
d = spx.index.get_indexer(part.trades.entry_ts) - 1
eq_at_decision = part.equity.iloc[d].to_numpy()
test_close((part.trades.qty * part.trades.entry_price).to_numpy(), 0.5 * eq_at_decision)
test_fail(lambda: backtest(spx, entries, exits, sizing="notional"), contains="needs a finite size > 0")

# %% [markdown]
# ## Several symbols, one account
# A mapping of symbols shares one cash account: here BTC and EUR/USD on their common hours, each entry
# asking for 600 of a 1,000 account, so when both are in, the second got only what the first left.

# %%
eur = load_sample("eurusd_1h")
common = btc.index.intersection(eur.index)
pair = {"BTC": btc.loc[common], "EUR": eur.loc[common]}
sig = {s: talib.RSI(f.close.to_numpy(), 2) for s, f in pair.items()}
ent = pd.DataFrame({s: r < 10 for s, r in sig.items()}, index=common)
ext = pd.DataFrame({s: r > 70 for s, r in sig.items()}, index=common)
multi = backtest(pair, ent, ext, sizing="notional", size=600)
test_eq(set(multi.trades.symbol), {"BTC", "EUR"})
flows = np.where(multi.fills.side == "buy", -1.0, 1.0) * multi.fills.qty * multi.fills.price
test_eq(bool((1_000 + flows.cumsum() > -1e-9).all()), True)  # never spends more than the account
bought = -flows[multi.fills.side == "buy"]
test_eq(bool((bought < 600 - 1e-6).any() and (bought <= 600 + 1e-9).all()), True)  # some entries got the rest

# %% [markdown]
# ## Orders bar by bar, and the paper broker's path
# Per-bar orders use the whole fill model. A 1,000-contract GTC buy limit half a point under the
# E-mini, one bar of latency, 5 % volume participation: it arrives at a bar that opens on its limit and
# takes 5 % of that bar as a taker, then rests and fills in pieces as a maker, the remainder carried
# from bar to bar. `replay_order` — one order pushed through the kernels bar by bar, as the paper
# broker will — gives exactly the same fills.

# %%
cfg = FillConfig(maker_fee_pct=0.001, taker_fee_pct=0.01, participation=0.05, latency_bars=1)
limit_px = es.close.iloc[100] - 0.5
plan = pd.DataFrame({"size": np.nan, "type": "limit", "limit": limit_px}, index=es.index)
plan.iloc[100, 0] = 1_000.0
bt = backtest(es, orders=plan, fill=cfg, init_cash=1e7)
paper, status = replay_order(es, es.index[100], "buy", 1_000, "limit", limit=limit_px, cash=1e7, config=cfg)
test_eq((len(bt.fills) > 5, status, bt.fills.maker.tolist()[:2]), (True, "filled", [False, True]))
test_close(bt.fills.qty.iloc[:2].to_numpy(), 0.05 * es.volume.reindex(bt.fills.ts.iloc[:2]).to_numpy())
test_eq(bt.fills.ts.tolist(), paper.index.tolist())
test_eq(bt.fills[["qty", "price", "fee", "maker"]].to_numpy().tolist(), paper.to_numpy().tolist())
test_eq(bt.orders.status.iloc[0], "filled")
test_close(bt.orders.filled_qty.iloc[0], 1_000.0)
bt.fills.head()

# %% [markdown]
# A sell that exceeds the position is split: the close of the long, then a short for the rest.

# %%
flip = pd.DataFrame({"size": [np.nan, 5.0, np.nan, -8.0, np.nan, np.nan]}, index=idx)
fl = backtest(toy, orders=flip, init_cash=10_000)
test_eq(fl.fills[["side", "qty"]].values.tolist(), [["buy", 5.0], ["sell", 5.0], ["sell", 3.0]])
test_eq(fl.trades.direction.tolist(), ["long"])

# %% [markdown]
# ## Funding
# A perpetual long pays funding when the rate is positive, a short receives it: every 8 hours,
# `position × open × rate`, booked in the trade and the account.

# %%
perp = FillConfig(funding_rate=0.0001)
rsi = talib.RSI(btc.close.to_numpy(), 2)
longs = backtest(btc, pd.Series(rsi < 5, index=btc.index), pd.Series(rsi > 95, index=btc.index), fill=perp)
shorts = backtest(btc, None, None, pd.Series(rsi > 95, index=btc.index), pd.Series(rsi < 5, index=btc.index),
                  fill=perp)
test_eq(bool((longs.trades.funding <= 0).all() and (longs.trades.funding < 0).any()), True)
test_eq(bool((shorts.trades.funding >= 0).all() and (shorts.trades.funding > 0).any()), True)
tr0 = longs.trades[longs.trades.funding < 0].iloc[0]
held = btc.loc[tr0.entry_ts:tr0.exit_ts].iloc[1:]  # settlements after the entry bar's open, up to the exit bar
settled = held[held.index.hour % 8 == 0]
test_close(tr0.funding, -(tr0.qty * settled.open * 0.0001).sum())
test_close(tr0.pnl, tr0.qty * (tr0.exit_price - tr0.entry_price) - tr0.fees + tr0.funding)

# %% [markdown]
# ## Deterministic
# The same inputs give the same frames, bit for bit.

# %%
a = backtest(btc, pd.Series(rsi < 10, index=btc.index), pd.Series(rsi > 70, index=btc.index), sl_pct=3,
             fill=FillConfig(taker_fee_pct=0.1, spread_pct=0.02, vol_slippage_k=0.1, participation=0.2))
b = backtest(btc, pd.Series(rsi < 10, index=btc.index), pd.Series(rsi > 70, index=btc.index), sl_pct=3,
             fill=FillConfig(taker_fee_pct=0.1, spread_pct=0.02, vol_slippage_k=0.1, participation=0.2))
pd.testing.assert_series_equal(a.equity, b.equity)
for x, y in ((a.orders, b.orders), (a.fills, b.fills), (a.trades, b.trades)):
    pd.testing.assert_frame_equal(x, y)
test_eq(a.stats, b.stats)

# %% [markdown]
# ## Trading as paper and live will: `asset=`
# With `asset="crypto_spot"` the same signals trade as the paper engine trades them: the asset's fees,
# its lot step and minimum notional, no shorts on spot, the paper session's $1,000, and every entry sized
# by `execution.risk` — here RSI-2 on BTC with a 2 × ATR stop. An equity under $1,000 trades the flat
# $10; above it, 2 % of equity at risk, capped at a quarter of equity. Each entry's quantity is
# `compute_size` of the equity and drawdown at its decision, to the last bit.

# %%
from tradingbot.execution.risk import compute_size  # noqa: E402

rsi = talib.RSI(btc.close.to_numpy(), 2)
atr2 = pd.Series(2 * talib.ATR(btc.high.to_numpy(), btc.low.to_numpy(), btc.close.to_numpy(), 14), index=btc.index)
le, lx = pd.Series(rsi < 10, index=btc.index), pd.Series(rsi > 70, index=btc.index)
paperlike = backtest(btc, le, lx, asset="crypto_spot", stop_distance=atr2, time_stop_bars=5)
test_eq((paperlike.init_cash, paperlike.calendar), (1000.0, "crypto"))
ent = paperlike.orders[(paperlike.orders.side == "buy") & (paperlike.orders.status == "filled")]
decided = btc.index.get_indexer(ent.ts)
eq, peak = paperlike.equity.to_numpy(), np.maximum.accumulate(np.r_[1000.0, paperlike.equity.to_numpy()])[1:]
for k in range(0, len(ent), max(1, len(ent) // 25)):  # a sample of the entries
    i = decided[k]
    dd = (1 - eq[i] / max(peak[i - 1], eq[i])) * 100
    want = compute_size(eq[i], dd, 0.5, atr2.iloc[i], btc.close.iloc[i], 1e-6, 5.0)
    test_eq(ent.qty.iloc[k], want.qty)
refused = paperlike.orders[paperlike.orders.status == "rejected"].status_info.value_counts()
assert "stop_band" in refused.index  # stops under spot's band floor are refused, as the router refuses them
test_eq(len(paperlike.trades) > 300, True)
no_stop = lambda: backtest(btc, le, lx, asset="crypto_spot")  # noqa: E731
test_fail(no_stop, contains="sizing='risk' sizes each entry by its stop-loss: pass sl_pct=")

# %% [markdown]
# Spot has no shorts: a short entry is refused (`no_shorting`), as the paper venue refuses it; on the
# perpetuals the same short signals trade.

# %%
se, sx = pd.Series(rsi > 90, index=btc.index), pd.Series(rsi < 30, index=btc.index)
spot_short = backtest(btc, None, None, se, sx, asset="crypto_spot", stop_distance=atr2)
test_eq((len(spot_short.fills), set(spot_short.orders.status_info)), (0, {"no_shorting"}))
perp_short = backtest(btc, None, None, se, sx, asset="crypto_futures", stop_distance=atr2)
test_eq((set(perp_short.trades.direction), len(perp_short.trades) > 100), ({"short"}, True))


# %% [markdown]
# ## Parameter sweeps
# `sweep` runs one symbol's bars against many signal columns — a grid of rule parameters — each column
# alone with its own cash, in parallel over the machine's cores, keeping only the statistics. Stop
# parameters may differ per column: percent stops and time stops as one value per column, stop
# distances as a Series shared by all columns or one Series per column (columns that share one — the
# same ATR period and multiple — share its memory).

# %%
#| export
def _columns_of(x, index: pd.Index, columns: pd.Index, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    "Per-column float rows of `x` (a Series for all, or one Series per column) without repeats, and each column's row."
    if x is None:
        return None
    if isinstance(x, pd.Series):
        series = [x] * len(columns)
    elif isinstance(x, pd.DataFrame):
        if not x.columns.equals(columns):
            raise ValueError(f"{name} must have the columns of entries")
        series = [x[c] for c in columns]
    elif isinstance(x, Sequence) and len(x) == len(columns):
        series = list(x)
    else:
        raise ValueError(f"{name} must be a Series, a DataFrame with the columns of entries, or one Series per column")
    rows, row_of, seen = [], np.empty(len(columns), np.int64), {}
    for k, ser in enumerate(series):
        if not (isinstance(ser, pd.Series) and ser.index.equals(index)):
            raise ValueError(f"{name} of column {columns[k]!r} must be a Series on the bars' index")
        if id(ser) not in seen:
            seen[id(ser)] = len(rows)
            rows.append(ser.to_numpy(dtype=np.float64))
        row_of[k] = seen[id(ser)]
    return _ro(np.ascontiguousarray(np.stack(rows))), _ro(row_of)


def sweep(bars: pd.DataFrame,  # one symbol's bars
          entries: pd.DataFrame,  # one column of long-entry signals per combination
          exits: pd.DataFrame | None = None,  # long exits, same columns
          short_entries: pd.DataFrame | None = None,  # short entries, same columns
          short_exits: pd.DataFrame | None = None,  # short exits, same columns
          *,
          price: str = "next_open",  # 'next_open' or 'close'
          asset: str | None = None,  # trade as this asset does in paper (costs, lots, stops, risk sizing)
          sizing: str | None = None,  # 'cash' (all-in), 'notional', 'equity' or 'risk' (default: risk with an asset)
          size: float | None = None,  # money per entry ('notional') or fraction of equity ('equity', 0.5 = half)
          init_cash: float | None = None,  # each column's starting equity (default: paper's with an asset, else 1,000)
          sl_pct=np.nan,  # stop-loss, percent of the entry price (2 = 2 %): a scalar, or one value per column
          tp_pct=np.nan,  # take-profit, percent of the entry price: a scalar, or one value per column
          trail_pct=np.nan,  # trailing stop, percent below the best price: a scalar, or one value per column
          time_stop_bars=0,  # bars to the time stop: a scalar, or one value per column
          stop_distance=None,  # price units: a Series for all columns, or one per column (DataFrame or list)
          score=None,  # signal strength in [0, 1]: a Series for all columns, or one per column
          stop_cooldown_bars: int = 1,  # bars after a protective exit in which entries are ignored
          fill: FillConfig | Mapping | None = None,  # the fill model, or a dict of its fields
         ) -> pd.DataFrame:  # one row of statistics per column of `entries`
    "Backtest many signal columns over one symbol in parallel; statistics per column."
    frames = _symbols(bars)
    index, columns = next(iter(frames.values())).index, entries.columns
    if len(columns) == 0:
        raise ValueError("entries has no columns: a sweep needs at least one combination")
    setup = _setup(asset, sizing, size, init_cash, fill)
    rows = []
    for x, name in ((entries, "entries"), (exits, "exits"), (short_entries, "short_entries"),
                    (short_exits, "short_exits")):
        if x is None:
            rows.append(None)
            continue
        if not (x.index.equals(index) and x.columns.equals(columns)):
            raise ValueError(f"{name} must be on the bars' index with the columns of entries")
        rows.append(_ro(np.ascontiguousarray(x.to_numpy(dtype=np.bool_).T)))
    _check_risk_stop(setup, sl_pct, stop_distance)
    dist, scores = _columns_of(stop_distance, index, columns, "stop_distance"), _columns_of(score, index, columns,
                                                                                           "score")
    if scores is not None:  # score rows are read per column
        scores = (_ro(np.ascontiguousarray(scores[0][scores[1]])), None)
    mkt = _market(frames, setup.fill, days=setup.sizing == Sizing.RISK)
    cfg = _sim_config(price, setup, stop_cooldown_bars, False,
                      **{k: r is not None for k, r in zip(("use_le", "use_lx", "use_se", "use_sx"), rows)},
                      use_orders=False, has_spread=mkt.spread is not _UNUSED_F, has_vol=mkt.vol is not _UNUSED_F,
                      has_funding=mkt.funding is not _UNUSED_F, has_dist=dist is not None,
                      has_score=scores is not None, **_day_fields(frames, mkt))
    raw = _sweep_columns(len(columns), mkt, SignalRows(*(r if r is not None else _UNUSED_B for r in rows),
                                                    scores[0] if scores is not None else _UNUSED_F), _NO_ORDERS,
                         _stops(len(columns), sl_pct, tp_pct, trail_pct, time_stop_bars,
                                *(dist if dist is not None else (None, None))), cfg, setup.fill.params())
    return pd.DataFrame([_stats(r, setup.init_cash) for r in raw], index=columns)


# %% [markdown]
# RSI-2 on BTC hourly over a grid of entry thresholds and stop-losses; every row equals the backtest of
# that column alone.

# %%
grid = [(lo, sl) for lo in (5, 10, 15, 20) for sl in (1.0, 2.0, 3.0)]
ents = pd.DataFrame({g: rsi < g[0] for g in grid}, index=btc.index)
exs = pd.DataFrame({g: rsi > 70 for g in grid}, index=btc.index)
sw = sweep(btc, ents, exs, sl_pct=[g[1] for g in grid], fill=costs)
for g in grid:
    one_run = backtest(btc, ents[g], exs[g], sl_pct=g[1], fill=costs)
    test_close(sw.loc[[g]].iloc[0].to_numpy(dtype=float), pd.Series(one_run.stats).to_numpy(dtype=float), eps=1e-9)
test_eq(len(sw), 12)
sw.sort_values("total_return", ascending=False).head()

# %% [markdown]
# ATR stops and time stops per column, with the paper rules: two ATR multiples (each column's stop
# Series is shared, not copied, by the columns that use it) and two time stops; again every row is the
# backtest of its column.

# %%
atr = pd.Series(talib.ATR(btc.high.to_numpy(), btc.low.to_numpy(), btc.close.to_numpy(), 14), index=btc.index)
stops_by_mult = {m: atr * m for m in (1.5, 3.0)}
grid = [(lo, m, t) for lo in (5, 15) for m in (1.5, 3.0) for t in (0, 5)]
ents = pd.DataFrame({g: rsi < g[0] for g in grid}, index=btc.index)
exs = pd.DataFrame({g: rsi > 70 for g in grid}, index=btc.index)
sw = sweep(btc, ents, exs, asset="crypto_futures", stop_distance=[stops_by_mult[g[1]] for g in grid],
           time_stop_bars=[g[2] for g in grid])
test_eq(_columns_of([stops_by_mult[g[1]] for g in grid], btc.index, ents.columns, "d")[0].shape[0], 2)
for g in grid:
    one_run = backtest(btc, ents[g], exs[g], asset="crypto_futures", stop_distance=stops_by_mult[g[1]],
                       time_stop_bars=g[2])
    test_close(sw.loc[[g]].iloc[0].to_numpy(dtype=float), pd.Series(one_run.stats).to_numpy(dtype=float), eps=1e-9)
sw[["n_trades", "total_return", "max_drawdown", "win_rate"]]


# %% [markdown]
# ## Cold start
# numba compiles a kernel the first time it is called and keeps the machine code in its cache
# (`NUMBA_CACHE_DIR`, `.numba_cache/` in the repository). `warm_up` calls every kernel a first backtest,
# a sweep and the paper engine reach, on a few hundred synthetic bars, so that `make setup` fills the
# cache and a researcher's first backtest in a fresh process loads compiled code instead of compiling
# it (`benchmarks/bench_backtest.py` prints that first backtest's time).

# %%
#| export
def warm_up() -> None:
    "Compile (or load from numba's cache) every kernel of a backtest, a sweep and the paper venue."
    from tradingbot.data.synthetic import synthetic_bars
    from tradingbot.execution._nb import Bar, FillParams, WorkingOrder
    from tradingbot.execution.accounting import (Wallet, book_fill_nb, book_funding_nb, holding, levels_touched_nb,
                                                 protective_fill_nb, work_order_nb)
    from tradingbot.execution.risk import compute_size, valid_order
    bars = synthetic_bars(400, "1h", seed=0)
    up = bars.close > bars.close.shift(1)
    stop = (bars.high - bars.low).rolling(14).mean().bfill() * 2
    backtest(bars, up, ~up, sl_pct=2.0, fill={"taker_fee_pct": 0.1})
    backtest(bars, up, ~up, ~up, up, asset="crypto_futures", stop_distance=stop, time_stop_bars=5)
    backtest(bars, orders=pd.DataFrame({"size": np.where(up, 1.0, -1.0)}, index=bars.index))
    grid = pd.DataFrame({k: up for k in range(3)})
    sweep(bars, grid, ~grid, asset="crypto_spot", stop_distance=stop)
    sweep(bars, grid, ~grid, sl_pct=2.0)
    bar, wallet = Bar(100.0, 101.0, 99.0, 100.5, 1e6), Wallet(1e3, 1e3)
    booked = book_fill_nb(holding(), wallet, 1, 1.0, 100.0, 0.1)
    book_funding_nb(booked.holding, booked.wallet, 0.1)
    work_order_nb(WorkingOrder(1, 0, 1.0), False, 0.0, 1e3, 1e3, bar, 1, FillParams())
    levels_touched_nb(1, 99.0, np.nan, 102.0, bar.high, bar.low)
    protective_fill_nb(1, 1.0, 99.0, np.nan, 102.0, 0, 0.0, bar, FillParams())
    compute_size(2_000.0, 1.0, 0.5, 2.0, 100.0, 0.01, 5.0)
    valid_order(2_000.0, 100.0, 2.0, "crypto_spot")


# %%
warm_up()  # a second call only loads what the first compiled
