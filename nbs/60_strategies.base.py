# %% [markdown]
# # Strategy interface
#
# > What every strategy — rule, ML or RL — gives the backtester and the runtime: indicator needs, signals decided at bar close, and protective stops.

# %%
#| default_exp strategies.base

# %% [markdown]
# A strategy is small on purpose (qlib's lesson): it says which indicators it needs, and turns bars
# into **signals decided at each bar's close**. It never fills orders, sizes positions or checks risk —
# the backtester and, live, the router do that through the one fill model (DESIGN §6).
#
# Timing, once for all strategies: `entries[t]` is computed from bars ≤ t (indicators at t, known at
# t's close), and the order fills at the **next** bar's open. That is seed 004's "indicators shifted one
# bar, fill at the next open", written without the shift: the one-bar delay lives in the backtester's
# `price="next_open"`, so a strategy can never see the bar it trades on.

# %%
#| export
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tradingbot.indicators import apply_indicators, warmup_bars

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class Signals:
    "A strategy's decisions over a frame of bars, each known at its bar's close."
    entries: pd.Series  # bool: open a position at the next bar's open
    exits: pd.Series  # bool: close it at the next bar's open
    stop_distance: pd.Series | None = None  # stop-loss distance in price units at the decision bar
    time_stop_bars: int = 0  # close after this many bars in the trade (0: never)
    side: int = 1  # +1 long, -1 short
    features: pd.DataFrame | None = field(default=None, repr=False)  # the indicator frame, for inspection

    def __post_init__(self):
        if not self.entries.index.equals(self.exits.index):
            raise ValueError("entries and exits must share one index")
        if self.side not in (1, -1):
            raise ValueError(f"side must be +1 or -1, got {self.side!r}")


# %% [markdown]
# The runtime asks for one bar at a time: `Strategy.latest(bars)` is the decision at the close of the last
# bar, as a `Decision`. The base implementation is `signals()` on the window, read at its last row, so any
# strategy works unchanged; a strategy may override it with an array fast path (the rule strategies do),
# and the tests compare the two on every bar of a sample.

# %%
#| export
@dataclass(frozen=True)
class Decision:
    "A strategy's decision at one bar's close."
    entry: bool  # open a position at the next open
    exit: bool  # close it at the next open
    stop_distance: float  # stop-loss distance in price units (NaN: none)
    time_stop_bars: int = 0  # bars in the trade before the time stop (0: none)
    side: int = 1  # +1 long, -1 short
    score: float = 0.5  # signal strength in [0, 1] (0.5: normal weight)
    warm: bool = True  # False while the indicators are still warming up (no entry is taken)


# %% [markdown]
# Parameters are validated against the strategy's declared defaults: an unknown name or a value of the
# wrong type is an error naming the strategy, before any bar is touched.

# %%
#| export
class Strategy(ABC):
    "Base of every strategy: parameters, indicator spec, signals."
    defaults: ClassVar[dict[str, Any]] = {}
    kind: ClassVar[str] = "rule"
    # the values a parameter search tries (validation counts them as trials for the deflated Sharpe and PBO)
    search_space: ClassVar[dict[str, list]] = {}

    def __init__(self, strategy_id: str, params: dict | None = None):
        self.strategy_id = strategy_id
        self.params = self._checked({**self.defaults, **(params or {})})

    def _checked(self, params: dict) -> dict:
        for name, value in params.items():
            if name not in self.defaults:
                raise ValueError(f"strategy {self.strategy_id!r}: unknown parameter {name!r} "
                                 f"(known: {', '.join(sorted(self.defaults))})")
            want = type(self.defaults[name])
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                params[name] = float(value)
            elif not isinstance(value, want) or isinstance(value, bool) != (want is bool):
                raise ValueError(f"strategy {self.strategy_id!r}: parameter {name!r} must be {want.__name__}, "
                                 f"got {value!r}")
        return params

    @abstractmethod
    def indicator_spec(self) -> list[dict]:
        "The indicator entries this strategy reads (the `apply_indicators` spec format)."

    @abstractmethod
    def decide(self, features: pd.DataFrame) -> Signals:
        "Signals from bars that already carry this strategy's indicator columns."

    def warmup(self) -> int:
        "Bars of history the indicators need before signals are trustworthy."
        return warmup_bars(self.indicator_spec())

    def signals(self, bars: pd.DataFrame) -> Signals:
        "Compute indicators on `bars` and decide; no signal during the indicators' warm-up."
        features = apply_indicators(bars, self.indicator_spec())
        sig = self.decide(features)
        cold = np.arange(len(bars)) < _lookback(features, self.indicator_spec())
        return Signals(sig.entries & ~cold, sig.exits, sig.stop_distance, sig.time_stop_bars, sig.side, features)

    def latest(self, bars: Mapping[str, np.ndarray],  # the bars up to and including the decision bar
               ) -> Decision:
        "The decision at the close of the last bar of `bars` (the engine's per-bar call)."
        frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in bars.items()})
        if len(frame) <= self.warmup():
            return Decision(False, False, math.nan, 0, 1, warm=False)
        sig = self.signals(frame)
        stop = float(sig.stop_distance.iloc[-1]) if sig.stop_distance is not None else math.nan
        warm = _lookback(sig.features, self.indicator_spec()) < len(frame)
        return Decision(bool(sig.entries.iloc[-1]), bool(sig.exits.iloc[-1]), stop, sig.time_stop_bars, sig.side,
                        warm=warm)

    def grid(self) -> list[dict]:
        "Every parameter set of `search_space` (other parameters as configured); the current set first."
        import itertools
        names = list(self.search_space)
        combos = [dict(zip(names, values)) for values in itertools.product(*self.search_space.values())]
        sets = [{**self.params, **c} for c in combos]
        return [self.params] + [p for p in sets if p != self.params]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strategy_id!r}, {self.params})"


def _lookback(features: pd.DataFrame, spec: list[dict]) -> int:
    "Bars before every indicator column has a value."
    added = [c for c in features.columns if c not in ("open", "high", "low", "close", "volume")]
    valid = features[added].notna().all(axis=1).to_numpy() if added else np.ones(len(features), bool)
    return int(np.argmax(valid)) if valid.any() else len(features)


# %% [markdown]
# A toy strategy shows the contract: entries are decided on the bar's own close, and warm-up bars never signal.

# %%
class _Breakout(Strategy):
    defaults = {"period": 20}
    search_space = {"period": [10, 20, 55]}

    def indicator_spec(self):
        return [{"name": "donchian", "period": self.params["period"]}]

    def decide(self, f):
        upper = f[f"donchian_upper_{self.params['period']}"].shift(1)  # the channel of the bars before this one
        return Signals(f.close > upper, f.close < f.close.shift(1), time_stop_bars=3)


from tradingbot.data.samples import load_sample

spx = load_sample("spx_1d")
sig = _Breakout("breakout").signals(spx)
test_eq(sig.entries.iloc[:20].any(), False)  # the shifted channel needs 21 bars
assert sig.entries.sum() > 100
test_eq([p["period"] for p in _Breakout("b", {"period": 20}).grid()], [20, 10, 55])
test_eq([p["period"] for p in _Breakout("b", {"period": 30}).grid()], [30, 10, 20, 55])
test_fail(lambda: _Breakout("b", {"period": "20"}), contains="parameter 'period' must be int")
test_fail(lambda: _Breakout("b", {"lookback": 3}), contains="unknown parameter 'lookback'")
_arrays = {k: spx[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
for _t in (21, 400, 1000, len(spx) - 1):  # past the warm-up, the decision at bar t equals signals() read at t
    _d = _Breakout("breakout").latest({k: v[:_t + 1] for k, v in _arrays.items()})
    test_eq((_d.entry, _d.exit), (bool(sig.entries.iloc[_t]), bool(sig.exits.iloc[_t])))
test_eq(_Breakout("breakout").latest({k: v[:5] for k, v in _arrays.items()}).warm, False)
