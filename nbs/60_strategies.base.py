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

import hashlib
import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tradingbot.config import ConfigError, get_key
from tradingbot.indicators import apply_indicators, warmup_bars

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class Signals:
    "A strategy's decisions over a frame of bars, each known at its bar's close."
    entries: pd.Series  # bool: open a position at the next bar's open (a short one when side=-1)
    exits: pd.Series  # bool: close it at the next bar's open
    stop_distance: pd.Series | None = None  # stop-loss distance in price units at the decision bar
    time_stop_bars: int = 0  # close after this many bars in the trade (0: never)
    side: int = 1  # +1 long only, -1 short only (entries/exits are short), 0 both (short_entries/short_exits too)
    features: pd.DataFrame | None = field(default=None, repr=False)  # the indicator frame, for inspection
    short_entries: pd.Series | None = None  # with side=0: bool, open a short at the next open
    short_exits: pd.Series | None = None  # with side=0: bool, close a short at the next open
    score: pd.Series | None = None  # signal strength in [0, 1] per bar (risk sizing's weight; None: 0.5)

    def __post_init__(self):
        index = self.entries.index
        for name in ("exits", "stop_distance", "short_entries", "short_exits", "score"):
            x = getattr(self, name)
            if x is not None and not x.index.equals(index):
                raise ValueError(f"Signals.{name} must be on the index of entries")
        if self.side not in (1, -1, 0):
            raise ValueError(f"side must be +1 (long), -1 (short) or 0 (both), got {self.side!r}")
        both = self.short_entries is not None or self.short_exits is not None
        if (self.side == 0) != both or (both and (self.short_entries is None or self.short_exits is None)):
            raise ValueError("a long/short strategy gives side=0 with both short_entries and short_exits; a one-sided "
                             "one gives side=+1 or -1 and entries/exits only")

    def directional(self) -> tuple[pd.Series | None, ...]:
        "(long entries, long exits, short entries, short exits) as the backtester takes them (None: not given)."
        if self.side == 1:
            return self.entries, self.exits, None, None
        if self.side == -1:
            return None, None, self.entries, self.exits
        return self.entries, self.exits, self.short_entries, self.short_exits

    def masked(self, cold: np.ndarray,  # bool per bar: indicators still warming up
               ) -> Signals:
        "The same signals with no entry on a `cold` bar."
        short = self.short_entries & ~cold if self.short_entries is not None else None
        return replace(self, entries=self.entries & ~cold, short_entries=short)


# %% [markdown]
# The runtime asks for one bar at a time: `Strategy.latest(bars)` is the decision at the close of the last
# bar, as a `Decision` — the four signals of that bar, its stop and strength. The base implementation is
# `signals()` on the window, read at its last row, so any strategy works unchanged; a strategy may
# override it with an array fast path (the rule strategies do), and the tests compare the two on every
# bar of a sample.

# %%
#| export
@dataclass(frozen=True)
class Decision:
    "A strategy's decision at one bar's close: its four signals (the backtester's rows at that bar)."
    long_entry: bool = False  # open a long at the next open
    long_exit: bool = False  # close a long at the next open
    short_entry: bool = False  # open a short at the next open
    short_exit: bool = False  # close a short at the next open
    stop_distance: float = math.nan  # stop-loss distance in price units (NaN: none)
    time_stop_bars: int = 0  # bars in the trade before the time stop (0: none)
    score: float = 0.5  # signal strength in [0, 1] (0.5: normal weight)
    warm: bool = True  # False while the indicators are still warming up (no entry is taken)

    @classmethod
    def at(cls, sig: Signals,  # a strategy's signals
           t: int,  # the bar (position in the index)
           warm: bool = True,  # the indicators are warm at `t`
           ) -> Decision:
        "The decision of `sig` at bar `t`."
        le, lx, se, sx = (bool(x.iloc[t]) if x is not None else False for x in sig.directional())
        stop = float(sig.stop_distance.iloc[t]) if sig.stop_distance is not None else math.nan
        score = float(sig.score.iloc[t]) if sig.score is not None else 0.5
        return cls(le, lx, se, sx, stop, sig.time_stop_bars, score, warm)

    @property
    def entry(self) -> int:
        "+1 (long), -1 (short) or 0: the entry the backtester's rules take from this bar's signals."
        le, se = self.long_entry and not self.long_exit, self.short_entry and not self.short_exit
        return 0 if le == se else (1 if le else -1)


# %%
_t = pd.Series([True, False], index=pd.RangeIndex(2))
test_eq(Decision.at(Signals(_t, ~_t, side=-1), 0), Decision(short_entry=True))
test_eq([Decision(long_entry=True).entry, Decision(True, True).entry, Decision(True, short_entry=True).entry,
         Decision(short_entry=True).entry], [1, 0, 0, -1])  # an entry cancels with its exit, or with the other side
test_fail(lambda: Signals(_t, ~_t, side=0), contains="a long/short strategy gives side=0")
test_eq(Signals(_t, ~_t, side=0, short_entries=~_t, short_exits=_t).directional()[2].tolist(), [False, True])


# %% [markdown]
# Parameters are validated against the strategy's declared defaults: an unknown name or a value of the
# wrong type is an error naming the strategy, before any bar is touched. They may be given as a dict
# or as keywords (`Breakout(period=55)`); the id defaults to the id the class is registered under.
#
# A strategy researches itself in the lines a quant expects: `backtest(bars, **options)` runs its
# signals — long, short or both, with its stop and time stop — through `validation.backtest.backtest`
# (every option of that function passes through: `asset=`, `fill=`, `sizing=`…); `sweep(bars, grid)`
# runs a grid of its parameters on the parallel sweep kernel, each set with its own stop distances and
# time stop, and returns a frame of statistics per set.

# %%
#| export
class Strategy(ABC):
    "Base of every strategy: parameters, indicator spec, signals; backtest and sweep."
    defaults: ClassVar[dict[str, Any]] = {}
    kind: ClassVar[str] = "rule"
    # the values a parameter search tries (validation counts them as trials for the deflated Sharpe and PBO)
    search_space: ClassVar[dict[str, list]] = {}
    registered_id: ClassVar[str | None] = None  # set by `register_strategy`

    def __init__(self, strategy_id: str | None = None,  # its id (default: the id it is registered under)
                 params: dict | None = None,  # parameter overrides of `defaults`
                 **kwargs,  # parameter overrides as keywords
                 ):
        self.strategy_id = strategy_id or self.registered_id or type(self).__name__.lower()
        self.params = self._checked({**self.defaults, **(params or {}), **kwargs})

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
    def decide(self, features: pd.DataFrame,  # bars with this strategy's indicator columns
               ) -> Signals:
        "Signals from bars that already carry this strategy's indicator columns."

    def warmup(self) -> int:
        "Bars of history the indicators need before signals are trustworthy."
        return warmup_bars(self.indicator_spec())

    def signals(self, bars: pd.DataFrame,  # one symbol's bars
                ) -> Signals:
        "Compute indicators on `bars` and decide; no entry during the indicators' warm-up (`warmup()` bars, as live)."
        features = apply_indicators(bars, self.indicator_spec())
        sig = self.decide(features)
        # the engine decides on a window only once it holds more than `warmup()` bars: so does the research path
        cold = np.arange(len(bars)) < max(_lookback(features, self.indicator_spec()), self.warmup())
        return replace(sig.masked(cold), features=features)

    def latest(self, bars: Mapping[str, np.ndarray],  # the bars up to and including the decision bar
               ) -> Decision:
        "The decision at the close of the last bar of `bars` (the engine's per-bar call)."
        frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64) for k, v in bars.items()})
        if len(frame) <= self.warmup():
            return Decision(warm=False)
        sig = self.signals(frame)
        return Decision.at(sig, len(frame) - 1, warm=_lookback(sig.features, self.indicator_spec()) < len(frame))

    def grid(self) -> list[dict]:
        "Every parameter set of `search_space` (other parameters as configured); the current set first."
        return [self.params] + [p for p in _product(self.params, self.search_space) if p != self.params]

    def with_params(self, params: dict,  # parameter overrides
                    ) -> Strategy:
        "The same strategy with other parameters."
        return type(self)(self.strategy_id, {**self.params, **params})

    def backtest(self, bars: pd.DataFrame | Mapping[str, pd.DataFrame],  # one symbol's bars, or {symbol: bars}
                 **options,  # options of `validation.backtest.backtest` (asset=, fill=, sizing=, init_cash=, ...)
                 ):
        "Backtest this strategy's signals, stop and time stop on `bars`."
        from tradingbot.validation.backtest import backtest
        return backtest(bars, **{**self.backtest_inputs(bars), **options})

    def backtest_inputs(self, bars: pd.DataFrame | Mapping[str, pd.DataFrame],  # one symbol's bars, or {symbol: bars}
                        ) -> dict:
        "The backtester's inputs for this strategy on `bars`: the four signal rows, stop distance, time stop, score."
        if isinstance(bars, pd.DataFrame):
            sig = self.signals(bars)
            rows = dict(zip(("entries", "exits", "short_entries", "short_exits"), sig.directional()))
            return {**rows, "stop_distance": sig.stop_distance, "score": sig.score,
                    "time_stop_bars": sig.time_stop_bars}
        per = {sym: self.backtest_inputs(frame) for sym, frame in bars.items()}
        out = {}
        for key in ("entries", "exits", "short_entries", "short_exits", "stop_distance", "score"):
            given = {sym: d[key] for sym, d in per.items() if d[key] is not None}
            out[key] = pd.DataFrame(given) if len(given) == len(per) else None
        times = {d["time_stop_bars"] for d in per.values()}
        out["time_stop_bars"] = times.pop() if len(times) == 1 else 0
        return out

    def sweep(self, bars: pd.DataFrame,  # one symbol's bars
              grid: list[dict] | dict[str, list] | None = None,  # parameter sets, or values to combine (default: grid())
              **options,  # options of `validation.backtest.sweep` (asset=, fill=, sizing=, ...)
              ) -> pd.DataFrame:  # one row of statistics per parameter set, indexed by the parameters that vary
        "Backtest every parameter set of `grid` in parallel; statistics per set (equal to a loop of backtests)."
        from tradingbot.validation.backtest import sweep
        sets = _product(self.params, grid) if isinstance(grid, dict) else (grid or self.grid())
        strategies = [self.with_params(p) for p in sets]
        inputs = [s.backtest_inputs(bars) for s in strategies]
        varying = [k for k in strategies[0].params if len({repr(s.params[k]) for s in strategies}) > 1]
        keys = [tuple(s.params[k] for k in varying) for s in strategies]
        index = (pd.Index([k[0] for k in keys], name=varying[0]) if len(varying) == 1 else
                 pd.MultiIndex.from_tuples(keys, names=varying) if varying else pd.RangeIndex(len(strategies)))
        frame = lambda key: (None if inputs[0][key] is None else  # noqa: E731
                             pd.DataFrame({k: d[key].to_numpy() for k, d in enumerate(inputs)}, index=bars.index))
        rows = {key: frame(key) for key in ("entries", "exits", "short_entries", "short_exits")}
        stats = sweep(bars, **{k: v for k, v in rows.items()}, stop_distance=_shared(inputs, "stop_distance"),
                      score=_shared(inputs, "score"), time_stop_bars=[d["time_stop_bars"] for d in inputs],
                      **options)
        return stats.set_axis(index)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.strategy_id!r}, {self.params})"


def _product(params: dict, space: dict[str, list]) -> list[dict]:
    "Every combination of the values of `space`, the other parameters as in `params`."
    import itertools
    names = list(space)
    return [{**params, **dict(zip(names, values))} for values in itertools.product(*space.values())]


def _shared(inputs: list[dict], key: str) -> list[pd.Series] | None:
    "One Series per parameter set, the same object where the values are equal (the sweep then stores it once)."
    if inputs[0][key] is None:
        return None
    seen, out = {}, []
    for d in inputs:
        series = d[key]
        digest = hashlib.blake2b(np.ascontiguousarray(series.to_numpy(dtype=np.float64)).tobytes(),
                                 digest_size=16).digest()
        out.append(seen.setdefault(digest, series))
    return out


def _lookback(features: pd.DataFrame, spec: list[dict]) -> int:
    "Bars before every indicator column has a value."
    added = [c for c in features.columns if c not in ("open", "high", "low", "close", "volume")]
    valid = features[added].notna().all(axis=1).to_numpy() if added else np.ones(len(features), bool)
    return int(np.argmax(valid)) if valid.any() else len(features)


# %% [markdown]
# ## Registering a strategy
# `@register_strategy("id")` makes a class known by its id to `validate_strategy`, `runners/report.py`,
# the engine and `config/strategies.json`; `make_strategy(id)` builds it with the parameters that file
# gives it. A `strategies.json` entry of `"kind": "python"` names its class as
# `"class_path": "package.module:Class"`, so a strategy written in a user's own package validates, reports
# and trades without touching this one.

# %%
#| export
STRATEGIES: dict[str, type[Strategy]] = {}  # registered id -> class


def register_strategy(strategy_id: str,  # the id validation, reports, the engine and strategies.json use
                      ) -> Callable[[type], type]:
    "Class decorator: register a `Strategy` subclass under `strategy_id`."
    def register(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"register_strategy({strategy_id!r}) needs a Strategy subclass, got {cls!r}")
        held = STRATEGIES.get(strategy_id)
        if held is not None and held.__qualname__ != cls.__qualname__:
            raise ValueError(f"strategy id {strategy_id!r} is already registered to {held.__module__}."
                             f"{held.__qualname__}; choose another id")
        STRATEGIES[strategy_id] = cls
        cls.registered_id = strategy_id
        return cls
    return register


def _import_class(path: str, strategy_id: str) -> type[Strategy]:
    "The class a `package.module:Class` path names; a ConfigError saying what is wrong otherwise."
    key = f"strategies.{strategy_id}.class_path"
    module, _, name = path.partition(":")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError("strategies.json", key, f"{path!r} cannot be imported: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError("strategies.json", key, f"{path!r} is not a Strategy subclass")
    return cls


def strategy_class(strategy_id: str,  # a registered id or an id of strategies.json
                   ) -> type[Strategy]:
    "The class of `strategy_id`: registered, or named by its strategies.json entry."
    import tradingbot.strategies.rules  # noqa: F401 - registers the canonical rule strategies
    spec = get_key(f"strategies.strategies.{strategy_id}") or {}
    if spec.get("kind") == "python":
        cls = _import_class(str(spec.get("class_path", "")), strategy_id)
        return register_strategy(strategy_id)(cls) if STRATEGIES.get(strategy_id) is None else STRATEGIES[strategy_id]
    if strategy_id in STRATEGIES:
        return STRATEGIES[strategy_id]
    raise ValueError(f"no strategy class for {strategy_id!r}: register one with @register_strategy({strategy_id!r}) "
                     f"or give it a 'kind': 'python' entry in strategies.json (registered: {', '.join(STRATEGIES)})")


def make_strategy(strategy_id: str,  # a registered id or an id of strategies.json
                  params: dict | None = None,  # overrides of the configured parameters
                  ) -> Strategy:
    "The strategy `strategy_id` with its strategies.json params, updated by `params`."
    spec = get_key(f"strategies.strategies.{strategy_id}") or {}
    return strategy_class(strategy_id)(strategy_id, {**(spec.get("params") or {}), **(params or {})})


# %% [markdown]
# A strategy in ten lines shows the contract: entries are decided on the bar's own close, warm-up bars
# never signal, and the same object backtests, sweeps and is known by its id.

# %%
@register_strategy("breakout")
class Breakout(Strategy):
    "Buy a close above the previous 20-bar high; sell a down close; out after 3 bars at the latest."
    defaults = {"period": 20}
    search_space = {"period": [10, 20, 55]}

    def indicator_spec(self):
        return [{"name": "donchian", "period": self.params["period"]}]

    def decide(self, f):
        upper = f[f"donchian_upper_{self.params['period']}"].shift(1)  # the channel of the bars before this one
        return Signals(f.close > upper, f.close < f.close.shift(1), time_stop_bars=3)


from tradingbot.data.samples import load_sample

spx = load_sample("spx_1d")
sig = Breakout().signals(spx)
test_eq(sig.entries.iloc[:20].any(), False)  # the shifted channel needs 21 bars
assert sig.entries.sum() > 100
test_eq((Breakout().strategy_id, make_strategy("breakout", {"period": 55}).params), ("breakout", {"period": 55}))
test_eq([p["period"] for p in Breakout(period=20).grid()], [20, 10, 55])
test_eq([p["period"] for p in Breakout("b", {"period": 30}).grid()], [30, 10, 20, 55])
test_fail(lambda: Breakout("b", {"period": "20"}), contains="parameter 'period' must be int")
test_fail(lambda: Breakout(lookback=3), contains="unknown parameter 'lookback'")
test_fail(lambda: make_strategy("moon"), contains="no strategy class for 'moon': register one")
_arrays = {k: spx[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}
for _t in (21, 400, 1000, len(spx) - 1):  # past the warm-up, the decision at bar t equals signals() read at t
    _d = Breakout().latest({k: v[:_t + 1] for k, v in _arrays.items()})
    test_eq((_d.long_entry, _d.long_exit), (bool(sig.entries.iloc[_t]), bool(sig.exits.iloc[_t])))
test_eq(Breakout().latest({k: v[:5] for k, v in _arrays.items()}).warm, False)

# %% [markdown]
# Backtest and sweep: `Breakout().backtest(spx)` is `backtest()` of its signals with its time stop; the
# sweep over the three channel periods equals a loop of three backtests.

# %%
from tradingbot.validation.backtest import backtest  # noqa: E402

res = Breakout().backtest(spx, fill={"taker_fee_pct": 0.05})
test_eq(res.stats, backtest(spx, sig.entries, sig.exits, time_stop_bars=3, fill={"taker_fee_pct": 0.05}).stats)
test_eq(set(res.trades.exit_reason) <= {"signal", "time_stop"}, True)
table = Breakout().sweep(spx, fill={"taker_fee_pct": 0.05})
test_eq(list(table.index), [20, 10, 55])
for period in (10, 20, 55):
    test_close(table.loc[period].to_numpy(dtype=float),
               pd.Series(Breakout(period=period).backtest(spx, fill={"taker_fee_pct": 0.05}).stats).to_numpy(float),
               eps=1e-12)
table[["n_trades", "total_return", "max_drawdown", "win_rate"]]


# %% [markdown]
# A short-only strategy says `side=-1` and every research path trades it short; a long/short one gives
# `side=0` with both pairs of signals.

# %%
class Breakdown(Breakout):
    "Sell a close below the previous 20-bar low; cover on an up close."

    def decide(self, f):
        lower = f[f"donchian_lower_{self.params['period']}"].shift(1)
        return Signals(f.close < lower, f.close > f.close.shift(1), time_stop_bars=3, side=-1)


class BothWays(Breakout):
    "Breakout long, breakdown short."

    def decide(self, f):
        p = self.params["period"]
        up, down = f[f"donchian_upper_{p}"].shift(1), f[f"donchian_lower_{p}"].shift(1)
        return Signals(f.close > up, f.close < down, time_stop_bars=3, side=0, short_entries=f.close < down,
                       short_exits=f.close > up)


test_eq(set(Breakdown().backtest(spx).trades.direction), {"short"})
test_eq(set(BothWays().backtest(spx).trades.direction), {"long", "short"})
