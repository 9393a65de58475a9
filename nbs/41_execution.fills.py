# %% [markdown]
# # Fill model
#
# > The fill model's settings (`FillConfig`), the per-bar inputs it needs (volatility, spread, funding schedule), the stop-distance cap, and `replay_order`: one order driven bar by bar through the kernels, as the paper broker does.

# %%
#| default_exp execution.fills

# %% [markdown]
# The kernels of `tradingbot.execution._nb` take fractions and scalars. This module is their Python
# face: one frozen `FillConfig` in the units the configuration uses (percent), the arrays the kernels
# read per bar, and the safety cap on stop distances. The backtester (`tradingbot.validation.backtest`)
# and the paper broker both build their inputs here, so they cannot drift apart.

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import pandas as pd
import talib

from tradingbot.config import get_key
from tradingbot.execution._nb import ARRIVAL, STATUS, Bar, FillParams, WorkingOrder, arrival_bar_nb, fill_order_nb
from tradingbot.execution.enums import OrderType, Side, Status, TimeInForce

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail

from tradingbot.data.samples import load_sample

btc, es = load_sample("btcusd_1h"), load_sample("es_1m")


# %% [markdown]
# ## FillConfig
# Percent values are percent, as in `config/assets.json` (`taker_fee_pct=0.055` is 0.055 %).
# `FillConfig.for_asset` takes the fees of an asset class from the configuration, and for perpetuals
# its funding interval.

# %%
#| export
@dataclass(frozen=True)
class FillConfig:
    "How orders meet the market: fees, spread, slippage, volume participation, latency, time in force, funding."
    maker_fee_pct: float = 0.0  # fee of a resting limit (negative: a rebate)
    taker_fee_pct: float = 0.0  # fee of market, stop and marketable orders
    spread_pct: float = 0.0  # full bid-ask spread, used when the bars carry no `spread` column (price units)
    slippage_pct: float = 0.0  # fixed adverse slippage of every taker fill
    vol_slippage_k: float = 0.0  # more adverse slippage: k × volatility (see `vol_kind`)
    vol_kind: Literal["atr", "sigma"] = "atr"  # TA-Lib ATR, or σ of close-to-close returns × close
    vol_window: int = 14  # bars in the volatility estimate
    participation: float = math.inf  # most of a bar's volume one order takes per bar (0.1 = 10 %)
    latency_bars: int = 0  # a decision at bar t reaches the market at bar t + 1 + latency
    tif: TimeInForce | str = "GTC"  # time in force of the orders a backtest places: GTC, IOC or FOK
    post_only: bool = False  # limit orders only ever rest (a crossing one is rejected)
    funding_rate: float | pd.Series | None = None  # perpetuals: rate per settlement (0.0001 = 0.01 %), or a series
    funding_interval_h: int = 8  # hours between funding settlements (on a UTC grid from midnight)

    def __post_init__(self):
        for name in ("taker_fee_pct", "spread_pct", "slippage_pct", "vol_slippage_k"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"FillConfig.{name} must be >= 0, got {getattr(self, name)!r}")
        if not -1 < self.maker_fee_pct < 100 or not self.taker_fee_pct < 100:
            raise ValueError(f"FillConfig fees are percent of notional; got maker {self.maker_fee_pct!r}, "
                             f"taker {self.taker_fee_pct!r}")
        if not self.participation > 0:
            raise ValueError(f"FillConfig.participation must be > 0 (a share of bar volume), "
                             f"got {self.participation!r}")
        if not (isinstance(self.latency_bars, int) and self.latency_bars >= 0):
            raise ValueError(f"FillConfig.latency_bars must be an int >= 0, got {self.latency_bars!r}")
        if self.vol_kind not in ("atr", "sigma") or not self.vol_window >= 2:
            raise ValueError(f"FillConfig.vol_kind must be 'atr' or 'sigma' and vol_window >= 2, "
                             f"got {self.vol_kind!r}, {self.vol_window!r}")
        object.__setattr__(self, "tif", TimeInForce.parse(self.tif, "time in force"))
        if not (isinstance(self.funding_interval_h, int) and 24 % self.funding_interval_h == 0):
            raise ValueError(f"FillConfig.funding_interval_h must divide 24, got {self.funding_interval_h!r}")

    def params(self) -> FillParams:
        "The settings as the kernels read them (fractions)."
        return FillParams(maker_fee=self.maker_fee_pct / 100, taker_fee=self.taker_fee_pct / 100,
                          spread=self.spread_pct / 100, slippage=self.slippage_pct / 100,
                          vol_k=float(self.vol_slippage_k), participation=float(self.participation))

    @classmethod
    def for_asset(cls, asset: str, **overrides) -> FillConfig:
        "The fill model of an asset class from the configuration (fees; funding interval of perpetuals)."
        spec = get_key(f"assets.{asset}")
        if spec is None:
            raise ValueError(f"unknown asset {asset!r}; see config/assets.json")
        base = {"maker_fee_pct": spec["fees"]["maker_pct"], "taker_fee_pct": spec["fees"]["taker_pct"]}
        if "funding_interval_h" in spec:
            base["funding_interval_h"] = spec["funding_interval_h"]
        return cls(**(base | overrides))

    @classmethod
    def of(cls, fill: FillConfig | Mapping[str, Any] | None,  # a FillConfig, a dict of its fields, or None
           ) -> FillConfig:
        "A FillConfig from what a user passes as `fill=`: the config itself, a dict of its fields, or None (no costs)."
        if fill is None:
            return cls()
        if isinstance(fill, cls):
            return fill
        if isinstance(fill, Mapping):
            names = {f.name for f in fields(cls)}
            unknown = sorted(set(fill) - names)
            if unknown:
                raise ValueError(f"fill has unknown field(s) {unknown}; FillConfig fields: {', '.join(sorted(names))}")
            return cls(**fill)
        raise TypeError(f"fill must be a FillConfig or a dict of its fields, got {type(fill).__name__}")


# %%
cfg = FillConfig(maker_fee_pct=0.02, taker_fee_pct=0.055, spread_pct=0.01, participation=0.1)
test_eq(cfg.params(), FillParams(0.0002, 0.00055, 0.0001, 0.0, 0.0, 0.1))
perp = FillConfig.for_asset("crypto_futures", funding_rate=0.0001)
test_eq((perp.maker_fee_pct, perp.taker_fee_pct, perp.funding_interval_h), (0.02, 0.055, 8))
test_fail(lambda: FillConfig(participation=0), contains="participation must be > 0")
test_fail(lambda: FillConfig(tif="DAY"), contains="unknown time in force 'DAY'; valid: GTC, IOC, FOK")
test_eq((FillConfig(tif="IOC").tif, FillConfig(tif="IOC").tif.code), (TimeInForce.IOC, 1))
test_fail(lambda: FillConfig(latency_bars=-1), contains="latency_bars must be an int >= 0")
test_fail(lambda: FillConfig.for_asset("stocks"), contains="unknown asset 'stocks'")
test_eq(FillConfig.of({"taker_fee_pct": 0.1}), FillConfig(taker_fee_pct=0.1))
test_eq(FillConfig.of(None), FillConfig())
test_fail(lambda: FillConfig.of({"fee_pct": 0.1}), contains="fill has unknown field(s) ['fee_pct']; FillConfig fields:")


# %% [markdown]
# ## Volatility for slippage
# Volatility slippage is `k × ATR` (TA-Lib, Wilder) or `k × σ × close`, σ the rolling standard
# deviation of close-to-close returns. The value at bar `t` uses bars up to `t`, so a fill inside bar
# `t` reads the value of `t − 1`, and a fill at `t`'s close the value of `t` (`bar_at` below). The
# warm-up is NaN, and a NaN volatility adds no slippage.

# %%
#| export
def volatility(bars: pd.DataFrame,  # bars with high, low, close
               kind: str = "atr",  # 'atr' or 'sigma'
               window: int = 14,  # bars in the estimate
              ) -> np.ndarray:  # volatility in price units, known at each bar's close
    "Per-bar volatility in price units: TA-Lib ATR, or rolling σ of returns × close."
    high, low, close = (bars[k].to_numpy(dtype="float64") for k in ("high", "low", "close"))
    if kind == "atr":
        return talib.ATR(high, low, close, timeperiod=window)
    if kind == "sigma":
        returns = pd.Series(close).pct_change()
        return (returns.rolling(window).std() * close).to_numpy()
    raise ValueError(f"unknown volatility kind {kind!r}; valid: atr, sigma")


# %%
atr = volatility(btc, "atr", 14)
test_close(atr[100:110], talib.ATR(btc.high.to_numpy(), btc.low.to_numpy(), btc.close.to_numpy(), 14)[100:110])
sigma = volatility(btc, "sigma", 24)
test_close(sigma[500], btc.close.pct_change().iloc[477:501].std() * btc.close.iloc[500])
test_eq(np.isnan(sigma[:24]).all() and not np.isnan(sigma[24]), True)
test_close(volatility(btc.iloc[:300], "sigma", 24)[-1], sigma[299])  # no lookahead: the prefix agrees
test_fail(lambda: volatility(btc, "garch"), contains="unknown volatility kind 'garch'")


# %% [markdown]
# ## Funding settlements
# A perpetual settles funding every `funding_interval_h` hours on a UTC grid (00:00, 08:00, 16:00 on
# Bybit). Each settlement is charged in the bar that contains it, at that bar's open as the mark
# price — on hourly bars, exactly the bar opening at the settlement time. A rate series (rates by
# settlement time) gives the rate last published at or before each settlement; a constant is every
# settlement's rate.

# %%
#| export
def funding_rates(index: pd.DatetimeIndex,  # bar open times (UTC)
                  rate: float | pd.Series | None,  # constant rate per settlement, or rates by settlement time
                  interval_h: int = 8,  # hours between settlements
                  timeframe: pd.Timedelta | None = None,  # bar length (default: the smallest spacing)
                 ) -> np.ndarray:  # summed rate of the settlements inside each bar (0: none)
    "Funding rate charged in each bar: the rates of the settlements that fall inside it."
    out = np.zeros(len(index))
    if rate is None or len(index) == 0:
        return out
    step = pd.Timedelta(hours=interval_h)
    tf = timeframe if timeframe is not None else (index[1:] - index[:-1]).min() if len(index) > 1 else step
    settle = pd.date_range(index[0].ceil(step), index[-1] + tf - pd.Timedelta(1), freq=step)
    rates = (rate.sort_index().reindex(settle, method="ffill").fillna(0.0).to_numpy() if isinstance(rate, pd.Series)
             else np.full(len(settle), float(rate)))
    bar = index.searchsorted(settle, side="right") - 1
    inside = (bar >= 0) & (settle < index[np.clip(bar, 0, None)] + tf)  # a settlement in a data gap is skipped
    np.add.at(out, bar[inside], rates[inside])
    return out


# %%
h = btc.index[:48]
f = funding_rates(h, 0.0001)
test_eq(list(h[f != 0].hour), [16, 0, 8, 16, 0, 8])  # first bar 11:00; settlements at 16, 0, 8 UTC
test_eq(f[f != 0], np.full(6, 0.0001))
series = pd.Series([0.0001, -0.0003], index=pd.to_datetime(["2017-07-01 00:00", "2017-07-02 08:00"], utc=True))
test_eq(funding_rates(h, series)[f != 0].tolist(), [0.0001, 0.0001, -0.0003, -0.0003, -0.0003, -0.0003])
daily = load_sample("spx_1d").index[:5]
test_close(funding_rates(daily, 0.0001), np.full(5, 0.0003))  # three settlements inside each daily bar
test_eq(funding_rates(h, None).any(), False)


# %% [markdown]
# ## The stop-distance cap
# DESIGN §7: no stop may sit farther than `SAFETY.MAX_STOP_LOSS_PCT` (15 %) from the entry. A
# configured stop beyond it is refused before anything runs, with the reason and the remedy.

# %%
#| export
def max_stop_pct() -> float:
    "The configured cap on stop distance, in percent (SAFETY.MAX_STOP_LOSS_PCT)."
    return float(get_key("SAFETY.MAX_STOP_LOSS_PCT", 15.0))


def check_stop_pct(name: str,  # the parameter, for the message
                   pct: float | np.ndarray,  # stop distance(s) in percent; NaN: no stop
                  ) -> None:
    "Refuse a stop distance beyond SAFETY.MAX_STOP_LOSS_PCT or not positive (ValueError)."
    values = np.atleast_1d(np.asarray(pct, dtype="float64"))
    values = values[~np.isnan(values)]
    cap = max_stop_pct()
    if (values <= 0).any():
        raise ValueError(f"{name} must be > 0 percent (NaN for no stop), got {values[values <= 0][0]!r}")
    if (values > cap).any():
        raise ValueError(f"{name}={values[values > cap][0]:g} % refused: stops farther than {cap:g} % from the "
                         f"entry are not allowed (SAFETY.MAX_STOP_LOSS_PCT); use a tighter stop")


# %%
test_eq(max_stop_pct(), 15.0)
check_stop_pct("sl_pct", 2.0)
check_stop_pct("sl_pct", np.array([1.0, np.nan, 15.0]))
test_fail(lambda: check_stop_pct("sl_pct", 16.0),
          contains="sl_pct=16 % refused: stops farther than 15 % from the entry are not allowed "
                   "(SAFETY.MAX_STOP_LOSS_PCT)")
test_fail(lambda: check_stop_pct("trail_pct", np.array([5.0, 20.0])), contains="trail_pct=20 % refused")
test_fail(lambda: check_stop_pct("sl_pct", -1.0), contains="sl_pct must be > 0 percent")


# %% [markdown]
# ## A bar as the kernels see it
# `bar_at` builds the `Bar` of bar `i` from column arrays: volume and spread of that bar (the market
# the order executes in), volatility known before the fill — of bar `i − 1` for a fill inside the bar,
# of bar `i` at its close. The backtester's loop reads its arrays by the same rule.

# %%
#| export
def bar_arrays(bars: pd.DataFrame, config: FillConfig) -> dict[str, np.ndarray]:
    "The per-bar float64 arrays the fill model reads: OHLCV, spread (NaN: configured) and volatility (NaN: none)."
    out = {k: bars[k].to_numpy(dtype="float64") for k in ("open", "high", "low", "close", "volume")}
    n = len(bars)
    out["spread"] = bars["spread"].to_numpy(dtype="float64") if "spread" in bars else np.full(n, np.nan)
    out["vol"] = (volatility(bars, config.vol_kind, config.vol_window) if config.vol_slippage_k
                  else np.full(n, np.nan))
    return out


def bar_at(arrays: dict[str, np.ndarray], i: int, at_close: bool = False) -> Bar:
    "Bar `i` for the kernels; volatility from before the fill (bar i-1, or bar i for a fill at its close)."
    j = i if at_close else i - 1
    vol = arrays["vol"][j] if j >= 0 else np.nan
    return Bar(*(float(arrays[k][i]) for k in ("open", "high", "low", "close", "volume", "spread")), float(vol))


# %%
arr = bar_arrays(btc.iloc[:50], FillConfig(vol_slippage_k=0.1))
b = bar_at(arr, 20)
test_eq((b.open, b.volume), (btc.open.iloc[20], btc.volume.iloc[20]))
test_eq((b.vol, bar_at(arr, 20, at_close=True).vol), (arr["vol"][19], arr["vol"][20]))
test_eq(np.isnan(b.spread), True)  # no spread column: the configured spread applies


# %% [markdown]
# ## One order, bar by bar
# `replay_order` drives a single order through the bars after its decision, one kernel call per bar
# — the paper broker's loop in miniature. It starts at the arrival bar that the latency gives, keeps
# going while the order works, and returns its fills.

# %%
#| export
def replay_order(bars: pd.DataFrame,  # the market, from before the decision on
                 decision_ts: pd.Timestamp,  # the bar at whose close the order was decided
                 side: str,  # 'buy' or 'sell'
                 qty: float,  # units (inf: as much as `cash` pays for)
                 order_type: str = "market",  # market, limit, stop or stop_limit
                 limit: float = np.nan,
                 stop: float = np.nan,
                 cash: float = np.inf,  # cash it may spend (inf: it only reduces a position)
                 at_close: bool = False,  # arrive at a close (the vectorbt convention) instead of an open
                 config: FillConfig = FillConfig(),
                ) -> tuple[pd.DataFrame, str]:  # fills (ts, qty, price, fee, maker) and the final status
    "Run one order through the bars after its decision with the fill kernels, as the paper broker does."
    arrays, params = bar_arrays(bars, config), config.params()
    order = WorkingOrder(Side.parse(side, "side").code, OrderType.parse(order_type, "order type").code,
                         float(qty), limit=float(limit), stop=float(stop), tif=config.tif.code,
                         post_only=config.post_only)
    first = arrival_bar_nb(int(bars.index.get_loc(decision_ts)), config.latency_bars, at_close)
    fills, status = [], STATUS.OPEN
    for i in range(first, len(bars)):
        arrival = (ARRIVAL.CLOSE if at_close else ARRIVAL.OPEN) if i == first else ARRIVAL.RESTING
        r = fill_order_nb(order, bar_at(arrays, i, arrival == ARRIVAL.CLOSE), arrival, cash, params)
        if r.qty > 0:
            fills.append((bars.index[i], r.qty, r.price, r.fee, r.maker))
            cash -= r.qty * r.price + r.fee
        # once part of it filled, what remains is a number of units
        notional = np.inf if r.qty > 0 else order.notional
        order, status = order._replace(qty=r.remaining, triggered=r.triggered, notional=notional), r.status
        if status != STATUS.OPEN:
            break
    frame = pd.DataFrame(fills, columns=["ts", "qty", "price", "fee", "maker"]).set_index("ts")
    return frame, Status.of(status)


# %% [markdown]
# On the E-mini minute bars, a 300-contract market buy with 10 % participation and GTC takes several
# bars of the quiet evening session, each fill 10 % of its bar's volume; the same order IOC stops after
# the first.

# %%
t0 = es.index[30]
slow = FillConfig(taker_fee_pct=0.01, spread_pct=0.015, participation=0.1)
fills, status = replay_order(es, t0, "buy", 300, config=slow)
test_eq((status, round(fills.qty.sum(), 9), len(fills) > 3), ("filled", 300, True))
test_eq(fills.qty.iloc[:-1].tolist(), (0.1 * es.volume.iloc[31:31 + len(fills) - 1]).tolist())
test_eq(fills.index[0], es.index[31])  # decided at bar 30's close, first fill at bar 31's open
test_close(fills.price.iloc[0], es.open.iloc[31] * (1 + 0.015 / 200))
ioc, status = replay_order(es, t0, "buy", 300, config=FillConfig(participation=0.1, tif="IOC"))
test_eq((len(ioc), status), (1, "cancelled"))
late, _ = replay_order(es, t0, "buy", 10, config=FillConfig(latency_bars=3))
test_eq(late.index[0], es.index[34])  # latency: three bars later
fills

# %% [markdown]
# A buy limit two points below the market rests (a maker) until a bar trades through it.

# %%
lim = es.close.iloc[30] - 2.0
fills, status = replay_order(es, t0, "buy", 5, "limit", limit=lim, config=FillConfig(maker_fee_pct=0.0))
first_through = np.flatnonzero(es.low.to_numpy()[31:] < lim)[0] + 31
test_eq((status, fills.index[0], fills.maker.iloc[0]), ("filled", es.index[first_through], True))
test_eq(fills.price.iloc[0], min(lim, es.open.iloc[first_through]))
