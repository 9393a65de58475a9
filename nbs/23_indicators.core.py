# %% [markdown]
# # Applying indicators
#
# > `apply_indicators(df, spec)`: add indicator columns named by a documented rule from a JSON-able spec, per timeframe on multi-timeframe frames; `default_spec()` and `warmup_bars(spec)`.

# %%
#| default_exp indicators.core

# %% [markdown]
# A **spec** is a list of entries, the format `config/strategies.json` uses under `"indicators"`:
#
# ```json
# [{"name": "rsi", "period": 14}, {"name": "macd", "fast": 12, "slow": 26, "signal": 9},
#  {"name": "ema", "period": 50, "source": "hlc3"}, {"name": "rsi", "period": 14, "timeframe": "context"}]
# ```
#
# `name` picks an indicator of the registry (`INDICATORS`); the other keys are its parameters
# (omitted ones take their defaults), plus `source` (which series a one-series indicator reads:
# `open high low close volume hl2 hlc3 ohlc4`, default `close`) and `timeframe` (which role of a
# multi-timeframe frame to compute on, below). Anything else is an error that names the entry. An
# entry that repeats an earlier one, also once defaults are filled in, is computed once (below).
#
# **Units.** Indicator parameters count bars (`period`, `fast`, `kijun`, …) or multiply a spread
# (`mult` in ATRs, `nbdev` in standard deviations); none is a percentage. Across the package,
# percent parameters are named `*_pct` and take percent: 2 means 2 % (where a fraction such as 0.02
# is a likely slip, it warns). Returns and volatilities that are not named `*_pct` (`target`, `min_ret`
# in `tradingbot.labeling`, `vol` in `tradingbot.data.synthetic`) are fractions: 0.02 means 2 %.
#
# **Column names.** `{name}_{output}_{parameter values joined by _}` — the output part left out for the
# main output (the one named like the indicator), parameter values in the registry's order, floats
# without a trailing `.0`, then `_{source}` when the source is not the close, and the role first
# (`{role}_`) when computed on another timeframe: `rsi_14`, `macd_12_26_9`, `macd_signal_12_26_9`,
# `bb_upper_20_2`, `stoch_k_14_3_3`, `ema_50_hlc3`, `context_rsi_14`, `obv`.

# %%
#| export
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradingbot.data.timeframes import split_timeframes, timeframe_delta
from tradingbot.indicators import composite  # noqa: F401  (registers the composite indicators)
from tradingbot.indicators.registry import INDICATORS, Indicator

# %%
#| hide
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import talib
from fastcore.test import test_eq, test_fail
from numpy.testing import assert_array_equal  # equal, NaN where NaN

from tradingbot.data.samples import load_sample
from tradingbot.data.timeframes import join_timeframes, resample
from tradingbot.indicators.registry import register

btc, spx = load_sample("btcusd_1h"), load_sample("spx_1d")

# %% [markdown]
# ## Reading a spec
# `parse_spec` checks every entry before anything is computed and turns it into an `Entry` with all
# parameters filled in. Integer parameters must be JSON integers (a period of `14.0` or `true` is
# refused, not rounded); float parameters take any finite number.

# %%
#| export
DERIVED_SOURCES = {"hl2": ("high", "low"), "hlc3": ("high", "low", "close"), "ohlc4": ("open", "high", "low", "close")}
SOURCES = ("open", "high", "low", "close", "volume", *DERIVED_SOURCES)


@dataclass(frozen=True)
class Entry:
    "One checked spec entry, parameters filled in."
    index: int            # position in the spec
    text: str             # the entry as written, as JSON (for messages)
    indicator: Indicator  # the registered indicator its "name" picks
    params: dict          # every parameter, in the registry's order
    source: str           # one of SOURCES
    timeframe: str | None # a role or timeframe of a multi-timeframe frame; None: the frame's own bars

    def fail(self,
             problem: str,  # what is wrong, and what to do about it
            ) -> None:
        "Raise a ValueError that names this entry (its position and text) and the `problem`."
        _fail(self.index, self.text, problem)


def _fail(index: int, text: str, problem: str) -> None:
    raise ValueError(f"spec entry {index} {text}: {problem}")


def _as_json(entry) -> str:
    try:
        return json.dumps(entry)
    except (TypeError, ValueError):
        return repr(entry)


def _param_problem(key: str, value, default, minimum) -> str | None:
    "What is wrong with `value` for a parameter whose default is `default`, or None."
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    number = integer or isinstance(value, (float, np.floating))
    if isinstance(default, int) and not integer:
        return f"{key} must be an integer, got {value!r}"
    if not (number and math.isfinite(value)):
        return f"{key} must be a finite number, got {value!r}"
    if value < minimum:
        return f"{key} must be >= {minimum}, got {value!r}"
    return None


# %%
#| export
def parse_entry(index: int,      # position of the entry in the spec
                entry: Mapping,  # {"name": ..., parameters..., optional "source", "timeframe"}
               ) -> Entry:
    "Check one spec entry and fill in its defaults; a ValueError names the entry and what is wrong."
    text = _as_json(entry)
    if not isinstance(entry, Mapping):
        _fail(index, text, 'an entry must be an object such as {"name": "rsi", "period": 14}')
    name = entry.get("name")
    if not isinstance(name, str) or name not in INDICATORS:
        _fail(index, text, f"unknown indicator {name!r}; known: {', '.join(INDICATORS)}")
    ind = INDICATORS[name]
    allowed = ["name", *ind.params, *(["source"] if ind.uses_source else []), "timeframe"]
    unknown = [k for k in entry if k not in allowed]
    if unknown:
        _fail(index, text, f"unknown key(s) {unknown}; {name} takes {allowed[1:]}")
    params = {}
    for key, default in ind.params.items():
        value = entry.get(key, default)
        if problem := _param_problem(key, value, default, ind.minimum.get(key, -math.inf)):
            _fail(index, text, problem)
        params[key] = int(value) if isinstance(default, int) else float(value)
    if ind.check and (problem := ind.check(**params)):
        _fail(index, text, problem)
    source, timeframe = entry.get("source", "close"), entry.get("timeframe")
    if source not in SOURCES:
        _fail(index, text, f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    if timeframe is not None and not isinstance(timeframe, str):
        _fail(index, text, f"timeframe must be a role or timeframe name, got {timeframe!r}")
    return Entry(index, text, ind, params, source, timeframe)


def parse_spec(spec: Sequence[Mapping],  # list of entries: {"name": ..., parameters, "source", "timeframe"}
              ) -> list[Entry]:         # one checked Entry per spec entry, in spec order
    "Check every entry of `spec` (a list of entries) before anything is computed."
    if isinstance(spec, (Mapping, str, bytes)) or not isinstance(spec, Sequence):
        raise ValueError(f'spec must be a list of entries such as [{{"name": "rsi", "period": 14}}], '
                         f'got {type(spec).__name__}')
    return [parse_entry(i, entry) for i, entry in enumerate(spec)]


# %%
e = parse_entry(0, {"name": "macd", "signal": 5})
test_eq((e.params, e.source, e.timeframe), ({"fast": 12, "slow": 26, "signal": 5}, "close", None))
test_eq(parse_entry(0, {"name": "bb", "nbdev": 2}).params, {"period": 20, "nbdev": 2.0})
errors = {
    '{"name": "rsx"}': "unknown indicator 'rsx'; known: sma, ema",
    '{"name": "rsi", "periods": 14}': "unknown key(s) ['periods']; rsi takes ['period', 'source', 'timeframe']",
    '{"name": "rsi", "period": 14.0}': "period must be an integer, got 14.0",
    '{"name": "rsi", "period": true}': "period must be an integer, got True",
    '{"name": "rsi", "period": "14"}': "period must be an integer, got '14'",
    '{"name": "rsi", "period": 1}': "period must be >= 2, got 1",
    '{"name": "sma", "period": 0}': "period must be >= 1, got 0",
    '{"name": "bb", "nbdev": -1}': "nbdev must be >= 0.0, got -1",
    '{"name": "macd", "fast": 26, "slow": 12}': "fast must be shorter than slow",
    '{"name": "atr", "source": "open"}': "unknown key(s) ['source']; atr takes ['period', 'timeframe']",
    '{"name": "ema", "source": "typical"}': "source must be one of open, high, low, close, volume, hl2, hlc3, ohlc4",
    '{"name": "ema", "timeframe": 60}': "timeframe must be a role or timeframe name, got 60",
}
for text, message in errors.items():
    test_fail(lambda: parse_spec([{"name": "sma"}, json.loads(text)]), contains=f"spec entry 1 {text}: {message}")
test_fail(lambda: parse_entry(3, {"name": "bb", "nbdev": float("nan")}),
          contains='spec entry 3 {"name": "bb", "nbdev": NaN}: nbdev must be a finite number')
test_fail(lambda: parse_spec([["rsi", 14]]), contains='spec entry 0 ["rsi", 14]: an entry must be an object')
test_fail(lambda: parse_spec({"name": "rsi"}), contains="spec must be a list of entries")


# %% [markdown]
# ## Column names

# %%
#| export
def _format(value: int | float) -> str:
    "A parameter value in a column name: ints as is, floats by repr (exact) without a trailing '.0'."
    text = repr(value)
    return text[:-2] if isinstance(value, float) and text.endswith(".0") else text


def entry_columns(entry: Entry,      # a checked entry (`parse_entry`)
                  prefix: str = "",  # put before every name: a role and "_", e.g. "context_"
                 ) -> list[str]:     # one column name per output of the entry's indicator
    "The columns `entry` adds, one per output of its indicator, `prefix` (a role and '_') first."
    ind = entry.indicator
    params = "".join(f"_{_format(v)}" for v in entry.params.values())
    source = "" if entry.source == "close" else f"_{entry.source}"
    return [f"{prefix}{ind.name}{'' if out == ind.name else '_' + out}{params}{source}" for out in ind.outputs]


# %%
cols = lambda entry: entry_columns(parse_entry(0, entry))
test_eq(cols({"name": "macd"}), ["macd_12_26_9", "macd_signal_12_26_9", "macd_hist_12_26_9"])
test_eq(cols({"name": "bb"}), ["bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2"])
test_eq(cols({"name": "bb", "nbdev": 2.5, "source": "hlc3"})[0], "bb_upper_20_2.5_hlc3")
test_eq(cols({"name": "stoch"}), ["stoch_k_14_3_3", "stoch_d_14_3_3"])
test_eq(cols({"name": "obv"}), ["obv"])
test_eq(cols({"name": "supertrend"}), ["supertrend_10_3", "supertrend_dir_10_3"])
test_eq(_format(1234567.0), "1234567")   # not '1.23457e+06': two parameter values never share a name


# %% [markdown]
# ## Bar arrays
# Each frame's columns are read once as contiguous float64 arrays (what TA-Lib and the kernels take),
# and only the columns some entry needs, so a frame without volume still gets its RSI. They must be
# finite: TA-Lib would carry a NaN forward through every recursive value after it.

# %%
#| export
class Bars:
    "The float64 bar columns of a frame, read once and checked finite; hl2, hlc3, ohlc4 derived on demand."

    def __init__(self,
                 frame: pd.DataFrame | Mapping[str, np.ndarray],  # bars, or bar arrays of equal length by column
                ):
        self.frame, self._arrays = frame, {}
        self._n = len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values()), ()))

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            self._arrays[name] = self._derive(name) if name in DERIVED_SOURCES else self._read(name)
        return self._arrays[name]

    def _derive(self, name: str) -> np.ndarray:
        parts = DERIVED_SOURCES[name]
        total = self[parts[0]] + self[parts[1]]
        for part in parts[2:]:
            total += self[part]
        total /= len(parts)
        return total

    def _read(self, name: str) -> np.ndarray:
        columns = self.frame.columns if isinstance(self.frame, pd.DataFrame) else self.frame.keys()
        if name not in columns:
            raise ValueError(f"needs column {name!r}, which the bars lack")
        x = np.ascontiguousarray(self.frame[name], dtype=np.float64)
        # a sum is NaN/inf when any value is, and ten times cheaper than isfinite(x).all()
        if not np.isfinite(x.sum()) and not np.isfinite(x).all():
            raise ValueError(f"column {name!r} holds NaN or infinite values; clean the bars first "
                             f"(tradingbot.data.store.validate_bars)")
        return x


# %%
bars = Bars(btc)
assert_array_equal(bars["hlc3"], (btc.high + btc.low + btc.close).to_numpy() / 3)
test_eq(bars["close"] is bars["close"], True)
test_fail(lambda: Bars(btc.drop(columns="volume"))["volume"], contains="needs column 'volume', which the bars lack")
test_fail(lambda: Bars(btc.assign(close=np.r_[np.nan, btc.close[1:]]))["close"], contains="column 'close' holds NaN")


# %% [markdown]
# ## Timeframes
# On a multi-timeframe frame (from `join_timeframes`, which records its roles in
# `df.attrs["timeframes"]`) an entry's `timeframe` names a role (`"context"`) or a role's timeframe
# (`"1h"`). The entry is computed on that role's bars (`split_timeframes`) and each value is spread
# over the entry rows that see that bar, so it appears only from the bar's close on, never earlier.
# The first role is the frame's own rows: no prefix. A plain frame whose `attrs["timeframe"]` is set
# (as `load_sample` does) accepts its own timeframe.

# %%
#| export
def _frame_timeframes(df: pd.DataFrame) -> dict[str, str]:
    "Role -> timeframe of a joined frame; a plain frame's own timeframe as its only role; else empty."
    if df.attrs.get("timeframes"):
        return dict(df.attrs["timeframes"])
    return {"bars": df.attrs["timeframe"]} if df.attrs.get("timeframe") else {}


def _role_of(entry: Entry, timeframes: Mapping[str, str]) -> str | None:
    "The role `entry` is computed on, or None for the frame's own (first-role) bars."
    wanted = entry.timeframe
    if wanted is None:
        return None
    if not timeframes:
        entry.fail(f"timeframe {wanted!r} needs a multi-timeframe frame from join_timeframes "
                   f"(df.attrs['timeframes'] is missing)")
    roles = [wanted] if wanted in timeframes else [r for r, tf in timeframes.items() if tf == wanted]
    if len(roles) != 1:
        known = ", ".join(f"{r} ({tf})" for r, tf in timeframes.items())
        what = "ambiguous" if roles else "not a role or timeframe"
        entry.fail(f"timeframe {wanted!r} is {what} of this frame: {known}")
    return None if roles[0] == next(iter(timeframes)) else roles[0]


def _distinct(entries: Sequence[Entry], roles: Sequence[str | None]) -> list[tuple[Entry, str | None, list[str]]]:
    "Each distinct (entry, role) once, with its columns; a repeat is merged, a different entry naming a column refused."
    seen, owner, out = set(), {}, []
    for entry, role in zip(entries, roles):
        key = (entry.indicator.name, tuple(entry.params.items()), entry.source, role)
        if key in seen:  # the same computation as an earlier entry: it already makes these columns
            continue
        seen.add(key)
        names = entry_columns(entry, f"{role}_" if role else "")
        for name in names:
            if name in owner:
                other = owner[name]
                entry.fail(f"column {name!r} is also made by spec entry {other.index} {other.text}, which computes "
                           f"something else; remove one of the two entries or change its parameters")
            owner[name] = entry
        out.append((entry, role, names))
    return out


def spec_columns(spec: Sequence[Mapping],                   # list of entries
                 timeframes: Mapping[str, str] | None = None, # role -> timeframe of the frame (join spec)
                ) -> list[str]:                              # the columns apply_indicators adds, in order
    "Names of the columns `apply_indicators(df, spec)` adds to a frame with these `timeframes`."
    entries = parse_spec(spec)
    roles = [_role_of(entry, timeframes or {}) for entry in entries]
    return [name for _, _, names in _distinct(entries, roles) for name in names]


# %%
test_eq(spec_columns([{"name": "rsi", "timeframe": "1h"}, {"name": "sma", "timeframe": "entry"}],
                     {"entry": "5m", "context": "1h"}), ["context_rsi_14", "sma_20"])
test_fail(lambda: spec_columns([{"name": "rsi", "timeframe": "4h"}], {"entry": "5m", "context": "1h"}),
          contains="timeframe '4h' is not a role or timeframe of this frame: entry (5m), context (1h)")
test_fail(lambda: spec_columns([{"name": "rsi", "timeframe": "1h"}], {"entry": "5m", "a": "1h", "b": "1h"}),
          contains="timeframe '1h' is ambiguous")
test_fail(lambda: spec_columns([{"name": "rsi", "timeframe": "1h"}]), contains="needs a multi-timeframe frame")


# %% [markdown]
# ## `apply_indicators`
# All entries are checked first; each role's bars are read once; outputs are collected in a dict and
# the new frame is built in one `pd.concat` (TA-Lib's arrays become its columns without a copy), so
# on a million bars the cost is the indicators' own.
#
# **Repeated entries are merged.** An entry that computes the same thing as an earlier one — the same
# indicator with the same parameters once the defaults are filled in, the same source, the same role
# (`{"name": "rsi"}` and `{"name": "rsi", "period": 14}`, or `"timeframe": "1h"` and `"context"` when
# `context` is the 1h role) — is computed once, and its columns appear once, at the first entry's place.
# Two *different* entries that would name the same column are an error naming both (with the registered
# indicators this needs a user-registered one whose names clash); so is a column the frame already has,
# and a frame too short for a first value.

# %%
#| export
def _compute(entry: Entry, bars: Bars, role: str | None) -> tuple:
    "The entry's outputs on `bars`, after checking there are enough bars for a first value."
    lookback = entry.indicator.lookback(**entry.params)
    if len(bars) <= lookback:
        where = f" of role {role!r}" if role else ""
        entry.fail(f"needs more than {lookback} bars{where} for a first value, got {len(bars)}")
    try:
        return entry.indicator.compute(bars, bars[entry.source], **entry.params)
    except ValueError as e:  # bad bars: name the entry that needed them
        problem = str(e)
    entry.fail(problem)


def _spread(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    "Per entry row, the value of the role bar it sees (`rows`: position of that bar, -1 for none yet)."
    out = values[rows]
    out[rows < 0] = np.nan
    return out


# %%
#| export
def apply_indicators(df: pd.DataFrame,          # bars, or a multi-timeframe frame from join_timeframes
                     spec: Sequence[Mapping],   # list of entries: {"name": ..., parameters, "source", "timeframe"}
                    ) -> pd.DataFrame:          # df with one float64 column per indicator output added
    "Add the indicator columns of `spec` to `df`; the value at a row uses bars up to the row's close only."
    entries, timeframes = parse_spec(spec), _frame_timeframes(df)
    roles = [_role_of(entry, timeframes) for entry in entries]
    parts = split_timeframes(df) if any(roles) else {}
    bars, rows, columns = {None: Bars(df)}, {}, {}
    for entry, role, names in _distinct(entries, roles):
        if role not in bars:
            bars[role] = Bars(parts[role])
            rows[role] = parts[role].index.get_indexer(df[f"{role}_ts"])
        if existing := [name for name in names if name in df.columns]:
            entry.fail(f"column {existing[0]!r} already exists in df")
        outputs = _compute(entry, bars[role], role)
        for name, values in zip(names, outputs):
            columns[name] = values if role is None else _spread(values, rows[role])
    out = pd.concat([df, pd.DataFrame(columns, index=df.index, copy=False)], axis=1)
    out.attrs = dict(df.attrs)
    return out


# %% [markdown]
# ## Arrays in, arrays out
# The paper engine decides on every closed bar, so it cannot pay for a DataFrame per bar (~0.3 ms of
# pandas overhead, more than the indicators themselves). `indicator_arrays` is `apply_indicators` on a
# mapping of bar arrays, returning the same columns as arrays: the same `Bars` reading and the same
# compute functions, so the values are the ones the frame path produces (tested). Multi-timeframe
# entries need a joined frame and stay with `apply_indicators`.

# %%
#| export
def indicator_arrays(bars: Mapping[str, np.ndarray],  # open/high/low/close/volume arrays (what the spec needs)
                     spec: Sequence[Mapping] | Sequence[Entry],  # single-timeframe entries (parsed ones save ~50 µs)
                    ) -> dict[str, np.ndarray]:  # column name -> float64 values, as apply_indicators names them
    "The indicator columns of `spec` on bar arrays, without building a frame."
    data, out = Bars(bars), {}
    entries = spec if spec and all(isinstance(e, Entry) for e in spec) else parse_spec(spec)
    for entry in entries:
        if entry.timeframe is not None:
            entry.fail("indicator_arrays takes one timeframe; use apply_indicators on a joined frame")
    for entry, _, names in _distinct(entries, [None] * len(entries)):
        if existing := [name for name in names if name in bars]:
            entry.fail(f"column {existing[0]!r} already exists in bars")
        out.update(zip(names, _compute(entry, data, None)))
    return out


# %%
_spec = [{"name": "rsi", "period": 2}, {"name": "sma", "period": 200}, {"name": "atr", "period": 14},
         {"name": "macd"}]
_frame = apply_indicators(btc, _spec)
_arrays = indicator_arrays({k: btc[k].to_numpy() for k in ("open", "high", "low", "close", "volume")}, _spec)
test_eq(list(_arrays), spec_columns(_spec))
test_eq(list(indicator_arrays({k: btc[k].to_numpy() for k in ("high", "low", "close")}, parse_spec(_spec[:3]))),
        spec_columns(_spec[:3]))
for _name, _values in _arrays.items():
    assert_array_equal(_values, _frame[_name].to_numpy())
test_fail(lambda: indicator_arrays({"close": btc.close.to_numpy()}, [{"name": "atr"}]), contains="needs column 'high'")

# %% [markdown]
# The strategies' own specs, straight from `config/strategies.json`:

# %%
strategies = json.loads(Path("../config/strategies.json").read_text())["strategies"]
rsi2 = apply_indicators(btc, strategies["rsi2"]["indicators"])
test_eq(list(rsi2.columns), ["open", "high", "low", "close", "volume", "rsi_2", "sma_200", "atr_14"])
c = btc.close.to_numpy()
assert_array_equal(rsi2.rsi_2, talib.RSI(c, 2))
assert_array_equal(rsi2.atr_14, talib.ATR(btc.high.to_numpy(), btc.low.to_numpy(), c, 14))
test_eq(rsi2.attrs["timeframe"], "1h")
assert_array_equal(apply_indicators(btc, [{"name": "sma", "timeframe": "1h"}]).sma_20, talib.SMA(c, 20))
test_eq(apply_indicators(btc, []).equals(btc), True)

# %% [markdown]
# A repeated entry is computed once, whether written the same way or equal only once its defaults (and
# its default source) are filled in; every path agrees on the columns:

# %%
twice = apply_indicators(btc, [{"name": "sma", "period": 20}, {"name": "sma", "period": 20}])
test_eq(list(twice.columns), [*btc.columns, "sma_20"])
assert_array_equal(twice.sma_20, talib.SMA(c, 20))
_repeats = [{"name": "rsi"}, {"name": "sma", "period": 200}, {"name": "rsi", "period": 14},
            {"name": "rsi", "source": "close"}, {"name": "bb", "nbdev": 2}, {"name": "bb", "nbdev": 2.0}]
_merged = apply_indicators(btc, _repeats)
test_eq(list(_merged.columns[5:]), ["rsi_14", "sma_200", "bb_upper_20_2", "bb_middle_20_2", "bb_lower_20_2"])
test_eq(_merged, apply_indicators(btc, [_repeats[i] for i in (0, 1, 4)]))    # the same values, computed once
test_eq(spec_columns(_repeats), list(_merged.columns[5:]))
test_eq(list(indicator_arrays({k: btc[k].to_numpy() for k in btc.columns}, _repeats)), list(_merged.columns[5:]))
test_eq(list(apply_indicators(btc, [{"name": "rsi", "period": 2}, {"name": "rsi", "period": 3}]).columns[5:]),
        ["rsi_2", "rsi_3"])                                       # different parameters: two entries

# %% [markdown]
# Two different entries that claim one column are refused, naming both. With the registered indicators
# every (indicator, parameters, source, role) has its own names, so the clash needs a user's indicator:
# here one named `macd_signal`, whose main column is the name of MACD's signal column.

# %%
register("macd_signal", {"fast": 12, "slow": 26, "signal": 9}, ("macd_signal",),
         lookback=lambda fast, slow, signal: slow + signal - 2)(
    lambda b, src, fast, slow, signal: talib.MACD(src, fast, slow, signal)[1:2])
try:
    test_fail(lambda: apply_indicators(btc, [{"name": "macd"}, {"name": "macd_signal"}]),
              contains='spec entry 1 {"name": "macd_signal"}: column \'macd_signal_12_26_9\' is also made by spec '
                       'entry 0 {"name": "macd"}, which computes something else; remove one of the two entries')
    test_fail(lambda: spec_columns([{"name": "macd"}, {"name": "macd_signal"}]), contains="also made by spec entry 0")
finally:
    del INDICATORS["macd_signal"]

# %%
test_fail(lambda: apply_indicators(rsi2, [{"name": "rsi", "period": 2}]),
          contains="column 'rsi_2' already exists in df")
test_fail(lambda: apply_indicators(btc[:199], [{"name": "sma", "period": 200}]),
          contains='spec entry 0 {"name": "sma", "period": 200}: needs more than 199 bars for a first value, got 199')
test_fail(lambda: apply_indicators(btc.drop(columns="volume"), [{"name": "rsi"}, {"name": "mfi"}]),
          contains='spec entry 1 {"name": "mfi"}: needs column \'volume\', which the bars lack')


# %% [markdown]
# ## `default_spec`
# One entry per registered indicator with its customary parameters. On the S&P 500 it adds 45
# columns, all float64, without a pandas warning (`tests/test_indicators_parity.py` checks every
# column against TA-Lib, a formula over TA-Lib pieces or a plain-Python reference, on every sample).

# %%
#| export
def default_spec() -> list[dict]:
    "One entry per registered indicator, with its default (customary) parameters; JSON-able."
    return [{"name": name, **ind.params} for name, ind in INDICATORS.items()]


# %% [markdown]
# What the registry holds, with each indicator's defaults, outputs, first-value index and warm-up:

# %%
#| export
def list_indicators() -> pd.DataFrame:
    "The registered indicators: defaults, outputs, lookback and warmup at the defaults, and what each computes."
    rows = [dict(name=name, params=dict(ind.params), outputs=", ".join(ind.outputs), source=ind.uses_source,
                 lookback=ind.lookback(**ind.params), warmup=ind.warmup(ind.params), doc=ind.doc)
            for name, ind in INDICATORS.items()]
    return pd.DataFrame(rows).set_index("name")


# %%
catalogue = list_indicators()
test_eq(catalogue.loc["rsi", "warmup"], 14 + 373 + 1)
test_eq(catalogue.loc["ichimoku", "lookback"], 77)
catalogue[["params", "outputs", "lookback", "warmup"]]

# %%
spec = default_spec()
test_eq(json.loads(json.dumps(spec)), spec)
test_eq([e["name"] for e in spec], ["sma", "ema", "macd", "rsi", "stoch", "willr", "mfi", "roc", "atr", "natr", "bb",
                                    "obv", "kama", "adx", "hma", "donchian", "keltner", "pctb", "ichimoku",
                                    "supertrend", "vwap", "fib"])
with warnings.catch_warnings():
    warnings.simplefilter("error")
    full = apply_indicators(spx, spec)
test_eq(list(full.columns[5:]), spec_columns(spec))
test_eq(len(full.columns), 5 + 45)
test_eq(set(full.dtypes), {np.dtype("float64")})
test_eq(full.index.equals(spx.index), True)

# %% [markdown]
# ## No lookahead
# The freqtrade "lookahead analysis" in small: computing on the bars up to `t` must give, at `t`,
# exactly what computing on all bars gives. (`tests/test_indicators_lookahead.py` runs it at 30 random
# bars plus the edges, on every sample, for every output and for a multi-timeframe frame.)

# %%
for t in (200, 1000, 3333, len(spx) - 1):
    part = apply_indicators(spx[: t + 1], spec)
    assert_array_equal(part.iloc[-1], full.iloc[t])

# %% [markdown]
# ## Multi-timeframe
# Hourly RSI on one-minute E-mini bars: each one-minute row carries the RSI of the last hour that had
# closed by the row's own close, computed on the hourly bars alone.

# %%
es = load_sample("es_1m")
joined = join_timeframes(es, {"entry": "1m", "context": "1h"})
mtf = apply_indicators(joined, [{"name": "rsi", "period": 14}, {"name": "rsi", "period": 14, "timeframe": "context"}])
hourly = resample(es, "1h")
hourly_rsi = pd.Series(talib.RSI(hourly.close.to_numpy(), 14), index=hourly.index)
seen = mtf.context_ts.notna()
assert_array_equal(mtf.context_rsi_14[seen], hourly_rsi.loc[mtf.context_ts[seen]])
assert (mtf.context_ts[seen] + pd.Timedelta("1h") <= mtf.index[seen] + pd.Timedelta("1min")).all()  # closed bars only
test_eq(mtf.context_rsi_14[~seen].isna().all(), True)
assert_array_equal(mtf.rsi_14, talib.RSI(es.close.to_numpy(), 14))
test_eq(split_timeframes(mtf)["context"].columns[-1], "rsi_14")   # the layout still splits per role
_roles = [{"name": "rsi", "timeframe": "context"}, {"name": "rsi", "timeframe": "1h"},   # one role, two names
          {"name": "rsi", "timeframe": "entry"}, {"name": "rsi"}]                     # the frame's own rows, twice
test_eq(list(apply_indicators(joined, _roles).columns[len(joined.columns):]), ["context_rsi_14", "rsi_14"])
test_eq(spec_columns(_roles, joined.attrs["timeframes"]), ["context_rsi_14", "rsi_14"])
test_fail(lambda: apply_indicators(joined, [{"name": "sma", "period": 50, "timeframe": "1h"}]),
          contains="needs more than 49 bars of role 'context' for a first value, got 38")

# %%
sl = slice(-600, None)
fig, ax = plt.subplots(figsize=(9, 2.5))
ax.plot(mtf.index[sl], mtf.rsi_14[sl], lw=0.6, label="RSI 14 of 1m bars")
ax.step(mtf.index[sl], mtf.context_rsi_14[sl], where="post", label="RSI 14 of 1h bars, from each hour's close")
ax.legend(loc="lower left", fontsize=8); ax.set_title("E-mini S&P 500: one RSI, two timeframes");


# %% [markdown]
# ## `warmup_bars`
# Live code computes on a window of recent bars and must get the value the backtest got on all of
# history. `warmup_bars(spec)` is the window length that guarantees it, to $10^{-9}$ (relative, or
# absolute near 0): the largest, over the entries, of lookback + memory + 1 — a finite window's own
# length for finite windows, plus the seed-decay span $\lceil\log 10^{-12}/\log(1-\alpha)\rceil$ of each
# recursive stage for EMA, MACD, RSI, ATR, NATR, ADX, KAMA and Keltner (see the registry), and for
# SuperTrend its ATR's span plus a measured margin for its band state (see the composite notebook). A
# role's entry counts in the role's bars times the role-to-entry bar ratio, so the `timeframes` of a
# multi-timeframe frame must be given (this assumes no missing bars in the window).
#
# One exception, by nature: OBV is a running total from the first bar given, so no window reproduces
# its level; `warmup_bars` covers its *changes* (two bars). Compare OBV across windows by difference,
# or carry it forward from a stored value.

# %%
#| export
def warmup_bars(spec: Sequence[Mapping],                    # list of entries
                timeframes: Mapping[str, str] | None = None, # role -> timeframe, when entries name a timeframe
               ) -> int:                                     # bars of history (of the first role) to compute on
    "Bars of history after which every value of `spec` at the last bar equals its full-history value (to 1e-9)."
    timeframes, need = dict(timeframes or {}), 1
    for entry in parse_spec(spec):
        bars = entry.indicator.warmup(entry.params)
        role = _role_of(entry, timeframes)
        if role is not None:
            bars *= timeframe_delta(timeframes[role]) // timeframe_delta(next(iter(timeframes.values())))
        need = max(need, bars)
    return need


# %%
test_eq(warmup_bars([{"name": "sma", "period": 200}]), 200)
test_eq(warmup_bars([{"name": "rsi", "period": 14}]), 14 + 373 + 1)
test_eq(warmup_bars([{"name": "rsi", "timeframe": "context"}], {"entry": "5m", "context": "1h"}), 12 * 388)
test_eq(warmup_bars(default_spec()), 10 + 6625 + 1)   # KAMA's worst case: the slow factor (2/31)^2
test_fail(lambda: warmup_bars([{"name": "rsi", "timeframe": "context"}]), contains="needs a multi-timeframe frame")


# %% [markdown]
# On real data: every entry of the default spec, computed on only its `warmup_bars` last hourly BTC-USD
# bars, ends on the full-history value (OBV by its changes).

# %%
def agree(a, b, scale):
    "Equal to 1e-9 relative, or absolute on values near 0 (relative to the column's typical size)."
    both = np.isnan(a) & np.isnan(b)
    return bool((both | (np.abs(a - b) <= 1e-9 * np.maximum(np.abs(b), scale))).all())


whole = apply_indicators(btc, spec)
for entry in spec:
    window = warmup_bars([entry])
    tail = apply_indicators(btc[-window:], [entry])
    for col in spec_columns([entry]):
        a, b = tail[col].to_numpy()[-2:], whole[col].to_numpy()[-2:]
        a, b = (np.diff(a), np.diff(b)) if INDICATORS[entry["name"]].cumulative else (a[-1:], b[-1:])
        assert agree(a, b, np.nanmedian(np.abs(whole[col]))), (col, window, a, b)
