# %% [markdown]
# # Canonical rule strategies
#
# > RSI-2, IBS and both combined (seed 004): mean-reversion entries above the 200-bar trend, ATR(14)×2 stop, 5-bar time stop.

# %%
#| default_exp strategies.rules

# %% [markdown]
# Two classic short-horizon mean-reversion rules, long only, each filtered by a long trend:
#
# - **RSI-2** (Connors): enter when Wilder RSI(2) ≤ 10 and close > SMA(200); exit when RSI(2) ≥ 70.
# - **IBS**, internal bar strength (C − L) / (H − L): enter when IBS < 0.2 and close > SMA(200).
# - **RSI-2 AND IBS**: both entry conditions on the same bar; RSI-2's exit.
#
# All three protect every trade with a stop ATR(14) × 2 below the entry and a 5-bar time stop. Decisions
# are taken on the bar's close and filled at the next open (see `strategies.base`).

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from tradingbot.config import get_key
from tradingbot.indicators import indicator_arrays, parse_spec
from tradingbot.strategies.base import Decision, Signals, Strategy, make_strategy, register_strategy  # noqa: F401

# %%
#| hide
from fastcore.test import test_eq, test_fail

from tradingbot.data.samples import load_sample

spx = load_sample("spx_1d")


# %%
#| export
def ibs(bars: pd.DataFrame,  # bars with high, low and close columns
        ) -> pd.Series:  # IBS per bar, named 'ibs'
    "Internal bar strength (C − L) / (H − L) in [0, 1]; NaN on a bar with no range."
    rng = (bars.high - bars.low).where(bars.high > bars.low)
    return ((bars.close - bars.low) / rng).rename("ibs")


# %%
test_eq(ibs(pd.DataFrame({"high": [10.0, 5], "low": [8.0, 5], "close": [8.5, 5]})).tolist()[0], 0.25)
assert np.isnan(ibs(pd.DataFrame({"high": [5.0], "low": [5.0], "close": [5.0]})).iloc[0])


# %% [markdown]
# The rules are written once, on arrays: `_rules(f)` reads bar and indicator columns from any mapping
# (a features frame's columns, or the engine's arrays) with numpy comparisons, where NaN compares False —
# what `fillna(False)` did. `decide` wraps them for a frame; `latest` evaluates them on the last bar of a
# window with `indicator_arrays`, ~20 times faster than building frames, so the paper engine can decide
# every bar of many symbols. A test below checks both paths agree on every bar.

# %%
#| export
def _ibs_values(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (close - low) / np.where(high > low, high - low, np.nan)


class _MeanReversion(Strategy):
    "Shared parts: trend filter, ATR stop, time stop."
    defaults = {"trend_period": 200, "atr_period": 14, "atr_stop_mult": 2.0, "time_stop_bars": 5}
    _parsed = None  # (parsed spec, warm-up bars), on first `latest`

    def _base_spec(self) -> list[dict]:
        return [{"name": "sma", "period": self.params["trend_period"]},
                {"name": "atr", "period": self.params["atr_period"]}]

    def _trend(self, f) -> np.ndarray:
        return np.asarray(f["close"]) > np.asarray(f[f"sma_{self.params['trend_period']}"])

    def _ibs(self, f) -> np.ndarray:
        return _ibs_values(*(np.asarray(f[k], dtype=np.float64) for k in ("high", "low", "close")))

    def _rules(self, f) -> tuple[np.ndarray, np.ndarray]:
        "Entry and exit conditions (bool arrays) from bar and indicator columns."
        raise NotImplementedError

    def _stop(self, f) -> np.ndarray:
        return np.asarray(f[f"atr_{self.params['atr_period']}"], dtype=np.float64) * self.params["atr_stop_mult"]

    def decide(self, f: pd.DataFrame,  # bars with this strategy's indicator columns
               ) -> Signals:
        "Long entries and exits of the rule, its ATR stop distance (price units) and its time stop."
        entries, exits = self._rules(f)
        return Signals(pd.Series(entries, f.index, dtype=bool), pd.Series(exits, f.index, dtype=bool),
                       pd.Series(self._stop(f), f.index), self.params["time_stop_bars"])

    def latest(self, bars: Mapping[str, np.ndarray],  # the bars up to and including the decision bar
               ) -> Decision:
        "The decision at the last bar's close, on arrays (the engine's fast path)."
        if self._parsed is None:  # parsing the spec costs more than computing it on a window
            self._parsed = (parse_spec(self.indicator_spec()), self.warmup())
        entries, warmup = self._parsed
        if len(bars["close"]) <= warmup:
            return Decision(time_stop_bars=self.params["time_stop_bars"], warm=False)
        ind = indicator_arrays(bars, entries)
        last = {k: np.asarray(v[-1:], dtype=np.float64) for k, v in bars.items()}
        last.update({k: v[-1:] for k, v in ind.items()})
        warm = all(math.isfinite(v[0]) for v in last.values() if v is not None)
        entries, exits = self._rules(last)
        return Decision(long_entry=bool(entries[0]) and warm, long_exit=bool(exits[0]),
                        stop_distance=float(self._stop(last)[0]), time_stop_bars=self.params["time_stop_bars"],
                        warm=warm)


@register_strategy("rsi2")
class RSI2(_MeanReversion):
    "Connors RSI-2: buy the dip of an up-trend."
    defaults = {**_MeanReversion.defaults, "rsi_period": 2, "entry_below": 10, "exit_above": 70}
    search_space = {"entry_below": [5, 10, 15], "exit_above": [60, 70, 80], "trend_period": [100, 200]}

    def indicator_spec(self) -> list[dict]:
        "RSI(`rsi_period`), the trend's SMA and the stop's ATR."
        return [{"name": "rsi", "period": self.params["rsi_period"]}, *self._base_spec()]

    def _rules(self, f):
        rsi = np.asarray(f[f"rsi_{self.params['rsi_period']}"])
        return (rsi <= self.params["entry_below"]) & self._trend(f), rsi >= self.params["exit_above"]


@register_strategy("ibs")
class IBS(_MeanReversion):
    "Internal bar strength: buy a close near the low of the bar in an up-trend."
    defaults = {**_MeanReversion.defaults, "entry_below": 0.2}
    search_space = {"entry_below": [0.1, 0.2, 0.3], "trend_period": [100, 200], "atr_stop_mult": [1.5, 2.0, 3.0]}

    def indicator_spec(self) -> list[dict]:
        "The trend's SMA and the stop's ATR (IBS is computed from the bar itself)."
        return self._base_spec()

    def _rules(self, f):
        entries = (self._ibs(f) < self.params["entry_below"]) & self._trend(f)
        return entries, np.zeros(len(entries), dtype=bool)


@register_strategy("rsi2_ibs")
class RSI2IBS(_MeanReversion):
    "RSI-2 and IBS entry conditions on the same bar; RSI-2's exit."
    defaults = {**_MeanReversion.defaults, "rsi_period": 2, "rsi_entry_below": 10, "rsi_exit_above": 70,
                "ibs_entry_below": 0.2}
    search_space = {"rsi_entry_below": [5, 10, 15], "ibs_entry_below": [0.1, 0.2, 0.3], "trend_period": [100, 200]}

    def indicator_spec(self) -> list[dict]:
        "RSI(`rsi_period`), the trend's SMA and the stop's ATR."
        return [{"name": "rsi", "period": self.params["rsi_period"]}, *self._base_spec()]

    def _rules(self, f):
        rsi = np.asarray(f[f"rsi_{self.params['rsi_period']}"])
        entries = (rsi <= self.params["rsi_entry_below"]) & (self._ibs(f) < self.params["ibs_entry_below"]) & self._trend(f)
        return entries, rsi >= self.params["rsi_exit_above"]


# %% [markdown]
# On the S&P 500 daily sample: RSI-2 enters only above the 200-day average, and only on a bar whose RSI(2)
# was at most 10 at its close; no signal appears before the indicators are warm.

# %%
s = RSI2("rsi2").signals(spx)
f = s.features
test_eq(bool(((f.rsi_2 > 10) & s.entries).any()), False)
test_eq(bool(((f.close <= f.sma_200) & s.entries).any()), False)
test_eq(s.entries.iloc[:200].any(), False)
test_eq(s.exits.equals((f.rsi_2 >= 70).fillna(False)), True)
assert (s.stop_distance.dropna() == 2 * f.atr_14.dropna()).all() and s.time_stop_bars == 5
both = RSI2IBS("rsi2_ibs").signals(spx).entries
assert both.sum() < min(s.entries.sum(), IBS("ibs").signals(spx).entries.sum())
assert not (both & ~s.entries).any()  # AND can only remove RSI-2 entries

# %%
# the fast path equals signals() on the whole history at every bar (a window of the last 600 bars is
# enough for these indicators to agree with the full history to the last bit)
_arrays = {k: spx[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
for _cls in (RSI2, IBS, RSI2IBS):
    _st = _cls(_cls.__name__.lower())
    _sig = _st.signals(spx)
    for _t in range(_st.warmup(), len(spx)):
        _d = _st.latest({k: v[max(0, _t - 599):_t + 1] for k, v in _arrays.items()})
        assert (_d.long_entry, _d.long_exit) == (bool(_sig.entries.iloc[_t]), bool(_sig.exits.iloc[_t])), (_cls, _t)
        assert _d.stop_distance == _sig.stop_distance.iloc[_t] or not _d.warm, (_cls, _t)

# %%
import matplotlib.pyplot as plt

ax = f.close.iloc[-400:].plot(figsize=(9, 3), title="S&P 500: RSI-2 entries (decided at the close, filled next open)")
f.close.iloc[-400:][s.entries.iloc[-400:]].plot(ax=ax, style="^", color="g")
f.sma_200.iloc[-400:].plot(ax=ax, lw=0.8);

# %% [markdown]
# ## From the configuration
# The three classes are registered under `rsi2`, `ibs` and `rsi2_ibs`, so `make_strategy(id)`
# (`strategies.base`) builds them with the `params` of `config/strategies.json`, checked against the
# class's defaults.

# %%
r = make_strategy("rsi2", {"entry_below": 5})
test_eq((type(r).__name__, r.params["entry_below"], r.params["exit_above"]), ("RSI2", 5, 70))
for sid in ("rsi2", "ibs", "rsi2_ibs"):  # strategies.json lists the indicators each strategy reads; they must not drift
    test_eq(make_strategy(sid).indicator_spec(), get_key(f"strategies.strategies.{sid}.indicators"))
test_fail(lambda: make_strategy("moon"), contains="no strategy class for 'moon'")
test_fail(lambda: make_strategy("ibs", {"rsi_period": 2}), contains="unknown parameter 'rsi_period'")
