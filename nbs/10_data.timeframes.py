# %% [markdown]
# # Timeframes
#
# > Resample OHLCV bars to coarser timeframes and join several timeframes on bar *close* times, so no row ever sees a bar that had not closed yet.

# %%
#| default_exp data.timeframes

# %% [markdown]
# Bars follow the data contract (DESIGN §5): index `ts` is the bar's *open* time (UTC), and a bar is
# known only at its *close*, `ts + timeframe`. Everything here keeps to that: resampled bins are
# labelled by their open time and emitted only once they are complete, and a multi-timeframe join
# lets a higher-timeframe bar reach a row only when that row's bar closes at or after it.

# %%
#| export
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# %%
#| hide
from pathlib import Path

from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Timeframe names

# %%
#| export
BAR_COLUMNS = ("open", "high", "low", "close", "volume")

TIMEFRAMES: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "1h": pd.Timedelta(hours=1),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
}


def timeframe_delta(timeframe: str,  # a timeframe name, one of `TIMEFRAMES`: 1m 5m 15m 1h 4h 1d
                   ) -> pd.Timedelta:  # the length of one bar
    "The duration of one bar of `timeframe` (one of `TIMEFRAMES`)."
    try:
        return TIMEFRAMES[timeframe]
    except (KeyError, TypeError):
        raise ValueError(f"unknown timeframe {timeframe!r}; valid timeframes: {', '.join(TIMEFRAMES)}") from None


# %%
test_eq(list(TIMEFRAMES), ["1m", "5m", "15m", "1h", "4h", "1d"])
test_eq(timeframe_delta("4h"), pd.Timedelta(hours=4))
test_fail(lambda: timeframe_delta("2h"), contains="unknown timeframe '2h'; valid timeframes: 1m, 5m, 15m, 1h, 4h, 1d")

# %% [markdown]
# ## Checking an index
# Resampling and joining need a UTC `DatetimeIndex` that strictly increases; anything else gets an
# error that says what to fix (`tradingbot.data.store.validate_bars` does the full bar checks).
# `infer_timeframe` reads the timeframe off the smallest spacing between bars, which survives gaps.

# %%
#| export
_UTC_NAMES = {"UTC", "Etc/UTC", "UTC+00:00", "tzutc()"}


def is_utc(index: pd.Index,  # any index
          ) -> bool:
    "True when `index` is a tz-aware DatetimeIndex in UTC."
    return isinstance(index, pd.DatetimeIndex) and index.tz is not None and str(index.tz) in _UTC_NAMES


def check_time_index(frame: pd.DataFrame | pd.Series,  # bars (or any frame or Series) indexed by bar open time
                     what: str = "bars",   # what the frame is, to start the error message with
                    ) -> pd.DatetimeIndex: # `frame.index`, unchanged
    "The index of `frame`, after checking it is a UTC DatetimeIndex that strictly increases."
    idx = frame.index
    if not isinstance(idx, pd.DatetimeIndex):
        raise ValueError(f"{what}: index must be a DatetimeIndex of bar open times, got {type(idx).__name__}")
    if not is_utc(idx):
        raise ValueError(f"{what}: index must be tz-aware UTC, got tz={idx.tz}; use tz_localize/tz_convert('UTC')")
    if not (idx.is_monotonic_increasing and idx.is_unique):
        raise ValueError(f"{what}: index must strictly increase (no duplicates); clean it with validate_bars(policy='drop')")
    return idx


def infer_timeframe(index: pd.DatetimeIndex,  # bar open times, at least 2
                   ) -> str:                  # the name of a timeframe in `TIMEFRAMES`
    "The timeframe whose duration equals the smallest spacing between consecutive bars."
    if len(index) < 2:
        raise ValueError("cannot infer the timeframe of fewer than 2 bars; pass the timeframe explicitly")
    spacing = (index[1:] - index[:-1]).min()
    for name, delta in TIMEFRAMES.items():
        if spacing == delta:
            return name
    raise ValueError(f"smallest bar spacing {spacing} is not a timeframe ({', '.join(TIMEFRAMES)}); pass it explicitly")


# %%
def make_bars(ts, close):
    "Tiny bars for tests: open = previous close, high/low 1 above/below."
    close = np.asarray(close, dtype="float64")
    open_ = np.r_[close[0], close[:-1]]
    idx = pd.DatetimeIndex(pd.to_datetime(ts, utc=True), name="ts")
    return pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + 1, "low": np.minimum(open_, close) - 1,
                         "close": close, "volume": np.ones(len(close))}, index=idx)


b = make_bars(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:03"], [1, 2, 3])
test_eq(infer_timeframe(b.index), "1m")
test_eq(check_time_index(b) is b.index, True)
test_fail(lambda: check_time_index(b.tz_convert("Europe/Berlin")), contains="must be tz-aware UTC")
test_fail(lambda: check_time_index(b.iloc[[0, 2, 1]]), contains="must strictly increase")
test_fail(lambda: infer_timeframe(b.index[:1]), contains="fewer than 2 bars")
test_fail(lambda: infer_timeframe(b.index[[0, 2]]), contains="smallest bar spacing 0 days 00:03:00")


# %% [markdown]
# ## Resampling
# Bins are left-closed, labelled by their open time and anchored at the Unix epoch, so 1d bins start
# at 00:00 UTC and 4h bins at 00:00, 04:00, … UTC. Values aggregate as first open, max high, min low,
# last close, summed volume. Input is expected to be valid bars (`validate_bars` in `data.store`).
#
# **Which bins are emitted.** A bin with no source bars is not emitted. The *last* bin is emitted only
# when it is complete — its last source bar closes at the bin's close — so 1h bars made from 1m bars
# that stop at 10:37 end with the 09:00 bar, never a half-built 10:00 one. Every earlier bin is over by
# definition (the data goes on past it), so a source bar missing inside it means no bar was printed
# there, as real feeds do for illiquid minutes (the ES sample lacks dozens): such bins are kept by
# default, built from the bars that exist. `require_full=True` drops any bin that lacks a source bar
# (including a first bin the data starts inside). This rule makes resampling chain exactly:
# 1m → 5m → 1h gives the same bars as 1m → 1h, with or without `require_full`.

# %%
#| export
def _check_resample(index: pd.DatetimeIndex, source: str, target: str) -> None:
    "Refuse finer or non-multiple targets and sources whose bars are off their own grid."
    src_step, step = timeframe_delta(source), timeframe_delta(target)
    if step < src_step or step % src_step:
        raise ValueError(f"cannot resample {source} bars to {target}: the target must be a whole multiple of the "
                         f"source timeframe (resampling only aggregates)")
    spacing = (index[1:] - index[:-1]).min() if len(index) > 1 else src_step
    if spacing < src_step:
        raise ValueError(f"bars are spaced {spacing} apart, finer than source_timeframe {source}")
    off_grid = index != index.floor(src_step)
    if off_grid.any():
        raise ValueError(f"{source} bars must open on the epoch-anchored {source} grid; first off-grid bar at "
                         f"{index[off_grid][0]}")


def resample(bars: pd.DataFrame,               # OHLCV bars indexed by open time `ts`
             timeframe: str,                    # target timeframe, a whole multiple of the source
             source_timeframe: str | None = None,  # timeframe of `bars`; inferred from their spacing if None
             require_full: bool = False,        # drop bins that lack any source bar
            ) -> pd.DataFrame:                  # complete bins as float64 OHLCV, indexed by open time `ts`
    "Aggregate `bars` into `timeframe` bins, emitting only complete bins (see the rules above)."
    idx = check_time_index(bars)
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack columns {missing}; need {list(BAR_COLUMNS)}")
    source = source_timeframe or infer_timeframe(idx)
    _check_resample(idx, source, timeframe)
    src_step, step = timeframe_delta(source), timeframe_delta(timeframe)
    bins = idx.floor(step).rename("ts")
    grouped = bars[list(BAR_COLUMNS)].astype("float64").assign(_last=idx).groupby(bins)
    out = grouped.agg(open=("open", "first"), high=("high", "max"), low=("low", "min"), close=("close", "last"),
                      volume=("volume", "sum"), _last=("_last", "last"), _n=("close", "size"))
    keep = np.ones(len(out), dtype=bool)
    if len(out):
        keep[-1] = out["_last"].iloc[-1] + src_step >= out.index[-1] + step
    if require_full:
        keep &= (out["_n"] == step // src_step).to_numpy()
    return out.loc[keep, list(BAR_COLUMNS)]


# %% [markdown]
# A hand-made check of the aggregation: six 1m bars over two 5m bins and a bit of a third. The third
# bin (10:10) stops at 10:10, so it is incomplete and dropped; the second lacks 10:07 but is kept.

# %%
m1 = make_bars(["2024-01-01 10:00", "2024-01-01 10:01", "2024-01-01 10:04",
                "2024-01-01 10:05", "2024-01-01 10:09", "2024-01-01 10:10"], [10, 12, 9, 11, 13, 14])
m1.loc[m1.index[1], "volume"] = 5.0
m5 = resample(m1, "5m")
test_eq(list(m5.index.strftime("%H:%M")), ["10:00", "10:05"])
test_eq(m5.loc["2024-01-01 10:00"].tolist(), [10.0, 13.0, 8.0, 9.0, 7.0])   # open, max high, min low, last close, sum
test_eq(m5.loc["2024-01-01 10:05"].tolist(), [9.0, 14.0, 8.0, 13.0, 2.0])
test_eq(m5.dtypes.unique().tolist(), [np.dtype("float64")])
test_eq(m5.index.name, "ts")
test_eq(len(resample(m1, "5m", require_full=True)), 0)   # 10:00 lacks 10:02/10:03, 10:05 lacks 10:06-10:08

# %% [markdown]
# The crucial case: 1m bars that stop at 10:37 make no 10:00 hourly bar; one more bar at 10:59 completes it.
# Daily bins are anchored at 00:00 UTC.

# %%
minutes = pd.date_range("2024-01-01 09:00", "2024-01-01 10:37", freq="1min", tz="UTC")
h1 = resample(make_bars(minutes, np.arange(len(minutes))), "1h")
test_eq(list(h1.index.strftime("%H:%M")), ["09:00"])
test_eq(h1.close.iloc[0], 59.0)
done = minutes.append(pd.DatetimeIndex(["2024-01-01 10:59"], tz="UTC"))
test_eq(list(resample(make_bars(done, np.arange(len(done))), "1h").index.strftime("%H:%M")), ["09:00", "10:00"])
hours = pd.date_range("2024-01-01 20:00", "2024-01-02 23:00", freq="1h", tz="UTC")
test_eq(list(resample(make_bars(hours, np.arange(28.0)), "1d").index.strftime("%m-%d %H:%M")), ["01-01 00:00", "01-02 00:00"])
test_eq(list(resample(make_bars(hours[:-1], np.arange(27.0)), "1d").index.strftime("%m-%d %H:%M")), ["01-01 00:00"])

# %% [markdown]
# Resampling only aggregates; it refuses finer targets and source bars off their grid.

# %%
test_fail(lambda: resample(h1, "5m", source_timeframe="1h"), contains="cannot resample 1h bars to 5m")
test_fail(lambda: resample(m1, "1h", source_timeframe="5m"), contains="finer than source_timeframe 5m")
test_fail(lambda: resample(m1.set_axis(m1.index + pd.Timedelta("30s")), "5m", source_timeframe="1m"),
          contains="first off-grid bar at 2024-01-01 10:00:30")
test_fail(lambda: resample(m1.drop(columns="volume"), "5m"), contains="lack columns ['volume']")

# %% [markdown]
# On real data: the E-mini 1m sample (with missing minutes and a session break) gives the same bars
# whether resampled directly or through every timeframe in between.

# %%
es = pd.read_parquet(Path("../data/samples/es_1m.parquet"))
for full in (False, True):
    direct = resample(es, "1h", require_full=full)
    test_eq(resample(resample(es, "5m", require_full=full), "1h", require_full=full), direct)
    chain = es
    for tf in ("5m", "15m", "1h", "4h", "1d"):
        chain = resample(chain, tf, require_full=full)
    test_eq(chain, resample(es, "1d", require_full=full))
test_eq(resample(es, "1h").volume.sum(), es.loc[: "2013-09-03 17:59"].volume.sum())  # last bin (18:00-18:51) dropped
assert len(resample(es, "1h", require_full=True)) < len(resample(es, "1h"))  # hours with missing minutes exist


# %% [markdown]
# ## Joining timeframes
# `join_timeframes(frames, spec)` lines several timeframes up on the rows of the finest one. `spec`
# maps a *role* to a timeframe, e.g. `{"entry": "5m", "regime": "15m", "context": "1h"}`; its **first**
# role is the entry role and must have the finest timeframe. `frames` is either
#
# - a dict keyed by the same roles, holding complete bars — or indicator frames — at those timeframes
#   (indexed by open time `ts`), or
# - one base DataFrame of bars, from which every role is built with `resample` (finer than or equal to
#   the entry timeframe; `base_timeframe` is inferred if not given).
#
# The result is indexed by the entry frame's `ts` and keeps the entry columns unprefixed, so it is
# still a bar frame at the entry timeframe. For every other role it adds `{role}_ts` (the open time
# of the higher bar in view) and `{role}_{column}` for each of that role's columns (`context_close`,
# `context_rsi_14`, …). A higher bar is in view at a row only when the row's bar closes at or after
# the higher bar closes: the 5m bar opened at `t` is known at `t + 5m`, and sees the last 1h bar with
# `open + 1h <= t + 5m`. Rows before any higher bar has closed hold NaN / NaT there.
# `join_timeframes.attrs["timeframes"]` keeps the spec so `split_timeframes` can undo the layout.

# %%
#| export
def _check_spec(spec: Mapping[str, str]) -> tuple[str, dict[str, pd.Timedelta]]:
    "The entry role and each role's duration, after checking names and timeframes."
    if not spec:
        raise ValueError("spec is empty; give at least the entry role, e.g. {'entry': '5m'}")
    steps = {}
    for role, tf in spec.items():
        if not (isinstance(role, str) and role.isidentifier()):
            raise ValueError(f"role {role!r} must be an identifier (it prefixes column names)")
        steps[role] = timeframe_delta(tf)
    entry = next(iter(spec))
    for role, step in steps.items():
        if step < steps[entry] or step % steps[entry]:
            raise ValueError(f"role {role!r} ({spec[role]}) is not a whole multiple of the entry role {entry!r} "
                             f"({spec[entry]}); the first role in spec is the entry and must be the finest")
    return entry, steps


def _role_frames(frames, spec: Mapping[str, str], base_timeframe: str | None) -> dict[str, pd.DataFrame]:
    "One frame per role: taken from the dict, or resampled from a single base frame."
    if isinstance(frames, pd.DataFrame):
        return {role: resample(frames, tf, source_timeframe=base_timeframe) for role, tf in spec.items()}
    missing, extra = set(spec) - set(frames), set(frames) - set(spec)
    if missing or extra:
        raise ValueError(f"frames and spec must have the same roles; missing {sorted(missing)}, unexpected {sorted(extra)}")
    for role in spec:
        check_time_index(frames[role], what=f"frames[{role!r}]")
    return dict(frames)


# %%
#| export
def _close_times(index: pd.DatetimeIndex, step: pd.Timedelta) -> pd.Series:
    "Bar close times as a column merge_asof can match on (one unit on both sides)."
    return pd.Series((index + step).as_unit("ns"), name="_close")


def join_timeframes(frames: Mapping[str, pd.DataFrame] | pd.DataFrame,  # role -> frame, or one base frame of bars
                    spec: Mapping[str, str],                # role -> timeframe; the first role is the entry
                    base_timeframe: str | None = None,     # timeframe of a single base frame; inferred if None
                   ) -> pd.DataFrame:                       # entry rows; other roles as `{role}_ts`, `{role}_{col}`
    "Join each role's frame onto the entry rows, showing a higher bar only from the entry bar that closes with or after it."
    entry, steps = _check_spec(spec)
    role_frames = _role_frames(frames, spec, base_timeframe)
    base = role_frames[entry]
    left = _close_times(base.index, steps[entry]).to_frame()
    parts = [base]
    for role, frame in role_frames.items():
        if role == entry:
            continue
        right = frame.add_prefix(f"{role}_").reset_index(drop=True)
        right.insert(0, f"{role}_ts", frame.index)
        right["_close"] = _close_times(frame.index, steps[role])
        seen = pd.merge_asof(left, right, on="_close", direction="backward", allow_exact_matches=True)
        parts.append(seen.drop(columns="_close").set_axis(base.index))
    joined = pd.concat(parts, axis=1)
    if joined.columns.duplicated().any():
        raise ValueError(f"joined columns collide: {sorted(set(joined.columns[joined.columns.duplicated()]))}; "
                         f"rename the entry columns or the roles")
    joined.attrs["timeframes"] = dict(spec)
    return joined


# %% [markdown]
# The boundary, explicitly: the 5m bar opened at 10:55 closes at 11:00, exactly when the 10:00 1h bar
# closes, so it sees that bar; the 10:50 bar (closes 10:55) still sees the 09:00 one. Likewise the
# 15m bar opened at 10:30 comes into view at the 10:40 row (both close at 10:45), not at 10:35.

# %%
minutes = pd.date_range("2024-01-01 08:00", "2024-01-01 11:29", freq="1min", tz="UTC", name="ts")
base = make_bars(minutes, np.arange(len(minutes), dtype="float64"))
spec = {"entry": "5m", "regime": "15m", "context": "1h"}
joined = join_timeframes(base, spec)
row = joined.loc["2024-01-01 10:55"]
test_eq(row["context_ts"], pd.Timestamp("2024-01-01 10:00", tz="UTC"))
test_eq(row["context_close"], base.close.loc["2024-01-01 10:59"])       # last minute of the 10:00 hour
test_eq(joined.loc["2024-01-01 10:50", "context_ts"], pd.Timestamp("2024-01-01 09:00", tz="UTC"))
test_eq(joined.loc["2024-01-01 10:35", "regime_ts"], pd.Timestamp("2024-01-01 10:15", tz="UTC"))
test_eq(joined.loc["2024-01-01 10:40", "regime_ts"], pd.Timestamp("2024-01-01 10:30", tz="UTC"))
test_eq(row["regime_ts"], pd.Timestamp("2024-01-01 10:45", tz="UTC"))
test_eq(joined.loc[:"2024-01-01 08:50", "context_close"].isna().all(), True)   # no hour closed yet
test_eq(joined.index[-1], pd.Timestamp("2024-01-01 11:25", tz="UTC"))
test_eq(list(joined.columns[:7]), ["open", "high", "low", "close", "volume", "regime_ts", "regime_open"])

# %% [markdown]
# No row ever sees a higher bar before its close, and the dict form gives the same frame as the
# base-frame form; higher frames can carry any columns (an indicator, say).

# %%
row_close = joined.index + timeframe_delta("5m")
for role in ("regime", "context"):
    seen = joined[f"{role}_ts"]
    shown = seen.notna().to_numpy()
    assert (seen[shown] + timeframe_delta(spec[role]) <= row_close[shown]).all()
frames = {role: resample(base, tf) for role, tf in spec.items()}
test_eq(join_timeframes(frames, spec), joined)
frames["context"] = frames["context"].assign(sma_2=frames["context"].close.rolling(2).mean())
test_eq(join_timeframes(frames, spec).loc["2024-01-01 10:55", "context_sma_2"], base.close.loc[["2024-01-01 09:59", "2024-01-01 10:59"]].mean())
test_fail(lambda: join_timeframes(base, {"context": "1h", "entry": "5m"}), contains="must be the finest")
test_fail(lambda: join_timeframes({"entry": base}, spec), contains="missing ['context', 'regime']")
test_fail(lambda: join_timeframes(base, {"entry": "5m", "my-role": "1h"}), contains="must be an identifier")


# %% [markdown]
# ## Splitting a joined frame
# `split_timeframes` turns the layout back into one frame per role: the entry columns as they are,
# and each higher role's distinct bars indexed by their own open time with the prefix removed. That
# is the shape a per-timeframe step (such as `apply_indicators(df, spec)`) works on; join again after.
# It recovers only the higher bars that came into view; for indicators that need warm-up history,
# compute them on the full role frames before joining.

# %%
#| export
def split_timeframes(joined: pd.DataFrame,                  # output of `join_timeframes`
                     spec: Mapping[str, str] | None = None,  # the join's spec; read from `joined.attrs` if None
                    ) -> dict[str, pd.DataFrame]:            # role -> frame at that role's timeframe
    "Undo `join_timeframes`: one frame per role, higher roles de-duplicated and indexed by their own `ts`."
    spec = spec or joined.attrs.get("timeframes")
    if not spec:
        raise ValueError("no spec given and joined.attrs has no 'timeframes'; pass the spec used for the join")
    entry, _ = _check_spec(spec)
    higher = sorted((r for r in spec if r != entry), key=len, reverse=True)  # longest prefix wins
    owner = {c: next((r for r in higher if str(c).startswith(f"{r}_")), entry) for c in joined.columns}
    out = {entry: joined[[c for c in joined.columns if owner[c] == entry]]}
    for role in spec:
        if role == entry:
            continue
        cols = [c for c in joined.columns if owner[c] == role]
        frame = joined[cols].dropna(subset=[f"{role}_ts"]).drop_duplicates(subset=f"{role}_ts")
        frame = frame.set_index(f"{role}_ts").rename_axis("ts")
        out[role] = frame.rename(columns=lambda c: c[len(role) + 1:])
    return out


# %%
parts = split_timeframes(joined)
test_eq(list(parts), ["entry", "regime", "context"])
test_eq(parts["entry"], frames["entry"])
test_eq(parts["context"], frames["context"].drop(columns="sma_2"))
test_eq(join_timeframes(parts, spec), joined)
test_fail(lambda: split_timeframes(pd.DataFrame()), contains="pass the spec used for the join")
