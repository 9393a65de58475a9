# %% [markdown]
# # Bar store
#
# > Validate bars against the data contract, report gaps, and keep a local parquet cache that is written atomically.

# %%
#| default_exp data.store

# %% [markdown]
# Bad bars must never pass silently: a duplicate timestamp double-counts a bar, a high below the low
# breaks every stop-loss simulation, a NaN close poisons every indicator after it. `validate_bars`
# checks the contract of DESIGN §5 and lets the caller choose what happens to offending rows: raise,
# drop (and log what was dropped), or flag them in a `bad` column.

# %%
#| export
from __future__ import annotations

import os
import re
import tempfile
from bisect import bisect_left
from pathlib import Path

import numpy as np
import pandas as pd

from tradingbot.data.timeframes import BAR_COLUMNS, check_time_index, is_utc, timeframe_delta
from tradingbot.fileio import atomic_write
from tradingbot.jsonlog import log_event
from tradingbot.paths import workspace_path

# %%
#| hide
from fastcore.test import test_eq, test_fail

from tradingbot.jsonlog import configure, read_jsonl

log_root = Path(tempfile.mkdtemp())
configure(log_root)  # keep this notebook's events out of the repository's logs/


# %% [markdown]
# ## The shape of a bar frame
# Before any row is judged the frame itself must be a bar frame: a tz-aware UTC `DatetimeIndex`
# named `ts` and numeric `open high low close volume` columns (coerced to float64). Breaking that
# always raises, whatever the policy, because no row can be trusted.

# %%
#| export
class BarValidationError(ValueError):
    "Bars that break the data contract; `issues` holds one row per offending bar and rule."

    def __init__(self,
                 message: str,                        # what is wrong and what to do
                 issues: pd.DataFrame | None = None,  # one row per (bar, broken rule), as `bar_issues` returns
                ):
        super().__init__(message)
        self.issues = issues


def coerce_bars(bars: pd.DataFrame,  # bars indexed by open time `ts`, any numeric OHLCV dtypes
               ) -> pd.DataFrame:  # a copy, OHLCV columns as float64, other columns kept
    "A copy of `bars` with float64 OHLCV columns, after checking the index and columns (raises BarValidationError)."
    if not isinstance(bars, pd.DataFrame):
        raise BarValidationError(f"bars must be a pandas DataFrame, got {type(bars).__name__}")
    idx = bars.index
    if not isinstance(idx, pd.DatetimeIndex) or not is_utc(idx):
        tz = getattr(idx, "tz", None)
        raise BarValidationError(f"bars need a tz-aware UTC DatetimeIndex of bar open times, got {type(idx).__name__} "
                                 f"(tz={tz}); use pd.to_datetime(..., utc=True) or tz_convert('UTC')")
    if idx.name != "ts":
        raise BarValidationError(f"the bar index must be named 'ts', got {idx.name!r}; use bars.rename_axis('ts')")
    if idx.hasnans:
        raise BarValidationError(f"the bar index holds {int(idx.isna().sum())} missing timestamps (NaT)")
    missing = [c for c in BAR_COLUMNS if c not in bars.columns]
    if missing:
        raise BarValidationError(f"bars lack columns {missing}; need {list(BAR_COLUMNS)}")
    out = bars.copy()
    for col in BAR_COLUMNS:
        try:
            out[col] = pd.to_numeric(out[col], errors="raise").astype("float64")
        except (ValueError, TypeError) as e:
            raise BarValidationError(f"column {col!r} is not numeric ({e}); fix or drop those values") from None
    return out


# %%
btc = pd.read_parquet(Path("../data/samples/btcusd_1h.parquet"))  # 20111 hourly Coinbase bars
test_eq(coerce_bars(btc), btc)
test_eq(coerce_bars(btc.assign(volume=btc.volume.astype("int64").astype(str))).volume.dtype, np.dtype("float64"))
test_fail(lambda: coerce_bars(btc.tz_localize(None)), contains="tz-aware UTC")
test_fail(lambda: coerce_bars(btc.rename_axis("time")), contains="must be named 'ts', got 'time'")
test_fail(lambda: coerce_bars(btc.drop(columns="low")), contains="lack columns ['low']")
test_fail(lambda: coerce_bars(btc.assign(close="x")), contains="column 'close' is not numeric")

# %% [markdown]
# ## Row rules
# Each rule names one way a bar can be wrong. Order rules first: a timestamp equal to an earlier one
# is a `duplicate_ts` (the first occurrence is kept); of the rest, the rows outside the *longest*
# strictly increasing run are `out_of_order` — so one bar stamped in 2099 in the middle of a year
# costs that bar, not the year after it. `misaligned` applies only when a timeframe is given: bars
# must open on the epoch-anchored grid (1d at 00:00 UTC) that resampling uses.

# %%
#| export
RULES = {
    "duplicate_ts": "timestamp repeats an earlier bar's",
    "out_of_order": "timestamp out of order",
    "not_finite": "NaN or infinite open/high/low/close/volume",
    "nonpositive_price": "open/high/low/close <= 0",
    "high_below_body": "high < max(open, close)",
    "low_above_body": "low > min(open, close)",
    "high_below_low": "high < low",
    "negative_volume": "volume < 0",
    "misaligned": "open time off the timeframe grid",
}


def _longest_increasing(values: np.ndarray) -> np.ndarray:
    "Mask of one longest strictly increasing subsequence of `values` (patience sorting, O(n log n))."
    tails, tail_pos, prev = [], [], np.full(len(values), -1)
    for i, v in enumerate(values.tolist()):
        k = bisect_left(tails, v)
        tails[k:k + 1], tail_pos[k:k + 1] = [v], [i]
        prev[i] = tail_pos[k - 1] if k else -1
    keep = np.zeros(len(values), dtype=bool)
    i = tail_pos[-1] if tail_pos else -1
    while i >= 0:
        keep[i], i = True, prev[i]
    return keep


def _order_masks(idx: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    "Duplicate and out-of-order masks of a bar index."
    duplicate = idx.duplicated(keep="first")
    out_of_order = np.zeros(len(idx), dtype=bool)
    if not idx.is_monotonic_increasing:
        rest = np.flatnonzero(~duplicate)
        out_of_order[rest[~_longest_increasing(idx.asi8[rest])]] = True
    return duplicate, out_of_order


# %%
test_eq(_longest_increasing(np.array([1, 2, 3, 99, 4, 5])).tolist(), [True, True, True, False, True, True])
test_eq(_longest_increasing(np.array([1, 3, 2, 4])).tolist(), [True, False, True, True])
idx = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 02:00", "2024-01-01 01:00", "2024-01-01 02:00"], tz="UTC")
test_eq([m.tolist() for m in _order_masks(idx)], [[False, False, False, True], [False, True, False, False]])


# %%
#| export
def rule_masks(bars: pd.DataFrame,           # coerced bars (see `coerce_bars`)
               timeframe: str | None = None,  # also check the grid of this timeframe
              ) -> pd.DataFrame:              # one boolean column per rule of `RULES`, one row per bar
    "Which rules each bar breaks."
    idx = bars.index
    o, h, l, c, v = (bars[col].to_numpy() for col in BAR_COLUMNS)
    prices = np.column_stack([o, h, l, c])
    duplicate, out_of_order = _order_masks(idx)
    with np.errstate(invalid="ignore"):
        masks = {
            "duplicate_ts": duplicate,
            "out_of_order": out_of_order,
            "not_finite": ~np.isfinite(np.column_stack([prices, v])).all(axis=1),
            "nonpositive_price": (prices <= 0).any(axis=1),
            "high_below_body": h < np.maximum(o, c),
            "low_above_body": l > np.minimum(o, c),
            "high_below_low": h < l,
            "negative_volume": v < 0,
            "misaligned": (idx != idx.floor(timeframe_delta(timeframe))) if timeframe else np.zeros(len(idx), bool),
        }
    return pd.DataFrame(masks, index=pd.RangeIndex(len(idx), name="row"))


def bar_issues(bars: pd.DataFrame,           # bars to check
               timeframe: str | None = None,  # also check the grid of this timeframe
              ) -> pd.DataFrame:              # columns `ts`, `rule`; index `row` (the bar's position)
    "One row per (bar, broken rule): columns `ts` and `rule`, indexed by the bar's position `row`."
    bars = coerce_bars(bars)
    masks = rule_masks(bars, timeframe)
    rows, rules = np.nonzero(masks.to_numpy())
    return pd.DataFrame({"ts": bars.index[rows], "rule": masks.columns[rules]},
                        index=pd.Index(rows, name="row"))


# %%
test_eq(len(bar_issues(btc, "1h")), 0)
bad = btc.copy()
bad.iloc[5, bad.columns.get_loc("high")] = bad.low.iloc[5] - 1
bad.iloc[9, bad.columns.get_loc("volume")] = -3.0
issues = bar_issues(bad)
test_eq(issues.rule.tolist(), ["high_below_body", "high_below_low", "negative_volume"])
test_eq(issues.index.tolist(), [5, 5, 9])
test_eq(issues.ts.iloc[2], btc.index[9])
test_eq(bar_issues(btc.set_axis(btc.index + pd.Timedelta("30min")), "1h").rule.unique().tolist(), ["misaligned"])

# %% [markdown]
# ## Validating with a policy
# `policy="raise"` raises a `BarValidationError` naming each broken rule, how many rows broke it and the
# first offending timestamps; `"drop"` removes every offending row and logs a `bars_dropped` event with
# the count per rule; `"flag"` keeps every row and adds a string column `bad` — `""` for a good bar,
# else the comma-joined rule names. All three return a copy with float64 OHLCV columns (other columns
# are kept).

# %%
#| export
POLICIES = ("raise", "drop", "flag")


def _describe(masks: pd.DataFrame, idx: pd.DatetimeIndex, timeframe: str | None, shown: int = 3) -> str:
    "A message naming each broken rule, its row count and first offending timestamps."
    parts = []
    for rule in masks.columns[masks.any().to_numpy()]:
        hits = idx[masks[rule].to_numpy()]
        first = ", ".join(str(t) for t in hits[:shown]) + (", …" if len(hits) > shown else "")
        parts.append(f"{rule} ({RULES[rule]}): {len(hits)} row(s), first at {first}")
    n_bad = int(masks.any(axis=1).sum())
    where = f" ({timeframe} bars)" if timeframe else ""
    return (f"{n_bad} of {len(idx)} bars{where} failed validation — " + "; ".join(parts)
            + ". Use policy='drop' to remove them or policy='flag' to inspect them.")


def _labels(masks: pd.DataFrame) -> np.ndarray:
    "Comma-joined names of the rules each row breaks ('' for a good row)."
    labels = np.full(len(masks), "", dtype=object)
    for rule in masks.columns:
        labels = np.where(masks[rule].to_numpy(), labels + rule + ",", labels)
    return np.array([s[:-1] for s in labels], dtype=object)


def validate_bars(bars: pd.DataFrame,           # bars to check (any extra columns are kept)
                  timeframe: str | None = None,  # if given, bars must also lie on its grid
                  policy: str = "raise",         # "raise", "drop" or "flag"
                 ) -> pd.DataFrame:              # coerced copy: checked, cleaned, or with a `bad` column
    "Check `bars` against the data contract and raise on, drop or flag the bars that break it."
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; use one of {POLICIES}")
    bars = coerce_bars(bars)
    masks = rule_masks(bars, timeframe)
    bad = masks.any(axis=1).to_numpy()
    if policy == "flag":
        return bars.assign(bad=pd.Series(_labels(masks), index=bars.index, dtype="str"))
    if not bad.any():
        return bars
    if policy == "raise":
        raise BarValidationError(_describe(masks, bars.index, timeframe), issues=bar_issues(bars, timeframe))
    counts = {rule: int(n) for rule, n in masks.sum().items() if n}
    log_event("bars_dropped", rows=int(bad.sum()), of=len(bars), timeframe=timeframe, counts=counts)
    return bars[~bad]


# %% [markdown]
# Each defect injected into a copy of the real BTC sample is caught by `raise`, removed by `drop` and
# marked by `flag`; the clean sample passes untouched.

# %%
def inject(bars: pd.DataFrame, defect: str, i: int = 1000) -> tuple[pd.DataFrame, pd.Timestamp]:
    "A copy of `bars` with one defect at row `i`, and the timestamp of the row that should be rejected."
    out, ts = bars.copy(), bars.index[i]
    if defect == "duplicate_ts":
        out = pd.concat([out.iloc[: i + 1], out.iloc[[i]], out.iloc[i + 1:]])
    elif defect == "out_of_order":
        out = out.iloc[np.r_[: i, i + 1, i, i + 2: len(out)]]
        ts = bars.index[i + 1]
    elif defect == "not_finite":
        out.loc[ts, "close"] = np.nan
    elif defect == "high_below_low":
        out.loc[ts, "high"] = out.loc[ts, "low"] - 1.0
    elif defect == "negative_volume":
        out.loc[ts, "volume"] = -1.0
    return out, ts


test_eq(validate_bars(btc, "1h"), btc)
for defect in ("duplicate_ts", "out_of_order", "not_finite", "high_below_low", "negative_volume"):
    broken, ts = inject(btc, defect)
    test_fail(lambda: validate_bars(broken, "1h"), contains=f"{defect} (")
    try:
        validate_bars(broken, "1h")
    except BarValidationError as e:
        assert str(ts) in str(e) and "1 row(s)" in str(e), str(e)
        test_eq(set(e.issues.ts), {ts})
    cleaned = validate_bars(broken, "1h", policy="drop")
    expected = btc if defect == "duplicate_ts" else btc.drop(ts)
    test_eq(cleaned, expected)
    flagged = validate_bars(broken, "1h", policy="flag")
    test_eq(len(flagged), len(broken))
    assert all(defect in s for s in flagged.bad[flagged.bad != ""]), flagged.bad[flagged.bad != ""]
    test_eq((flagged.bad != "").sum(), 1)
flagged = validate_bars(btc, policy="flag")
test_eq((pd.api.types.is_string_dtype(flagged.bad), flagged.bad.eq("").all()), (True, True))
test_fail(lambda: validate_bars(btc, policy="ignore"), contains="unknown policy 'ignore'")

# %% [markdown]
# Dropping logs what went, per rule:

# %%
broken, _ = inject(btc, "negative_volume")
broken.iloc[7, broken.columns.get_loc("close")] = np.nan
validate_bars(broken, policy="drop")
last = read_jsonl(next((log_root / "events").iterdir()))[-1]
test_eq((last["event"], last["rows"], last["counts"]), ("bars_dropped", 2, {"not_finite": 1, "negative_volume": 1}))

# %% [markdown]
# ## Gaps
# `gap_report` lists the holes in a bar index: one row per run of missing bars, with `start` (the open
# time of the first missing bar) and `length` (how many bars are missing). Bars must lie on one grid.
#
# `skip_weekends=True` is for markets that close at the weekend: missing bars that open between Friday
# 20:00 and Sunday 23:00 UTC are not counted. That window, rather than Saturday–Sunday alone, is the
# weekend of FX and CME futures in both summer and winter time (they close Friday 21:00/22:00 UTC and
# reopen Sunday 21:00–23:00 UTC), and it holds the Saturday and Sunday bars of daily stock data; a
# hole that runs past it is reported with its weekday part only.

# %%
#| export
_WEEKEND = (pd.Timedelta(days=4, hours=20), pd.Timedelta(days=6, hours=23))  # Fri 20:00 .. Sun 23:00 from Monday 00:00


def _in_weekend(times: pd.DatetimeIndex) -> np.ndarray:
    "Which times fall in the weekend window (Friday 20:00 to Sunday 23:00 UTC)."
    since_monday = (times - times.normalize()) + pd.to_timedelta(times.day_of_week, unit="D")
    return np.asarray((since_monday >= _WEEKEND[0]) & (since_monday < _WEEKEND[1]))


def gap_report(bars_or_index: pd.DataFrame | pd.DatetimeIndex,  # bars, or just their index
               timeframe: str,                 # the bars' timeframe
               skip_weekends: bool = False,    # ignore bars missing in the Fri 20:00 - Sun 23:00 UTC window
              ) -> pd.DataFrame:               # one row per hole: `start` (first missing open time), `length` (bars)
    "The holes in a bar index: where bars are missing, and how many."
    idx = bars_or_index.index if isinstance(bars_or_index, pd.DataFrame) else pd.DatetimeIndex(bars_or_index)
    idx = check_time_index(pd.DataFrame(index=idx), what="gap_report")
    step = timeframe_delta(timeframe)
    empty = pd.DataFrame({"start": idx[:0], "length": np.array([], dtype="int64")})
    if len(idx) < 2:
        return empty
    if ((idx - idx[0]) % step != pd.Timedelta(0)).any():
        raise ValueError(f"gap_report: bars are not all on one {timeframe} grid; "
                         f"check them with validate_bars(bars, {timeframe!r})")
    grid = pd.date_range(idx[0], idx[-1], freq=step)
    missing = grid[~grid.isin(idx)]
    if skip_weekends:
        missing = missing[~_in_weekend(missing)]
    if not len(missing):
        return empty
    slot = np.asarray((missing - idx[0]) // step)
    starts = np.r_[True, np.diff(slot) != 1]
    lengths = np.diff(np.r_[np.flatnonzero(starts), len(slot)])
    return pd.DataFrame({"start": missing[starts], "length": lengths.astype("int64")})


# %% [markdown]
# Three consecutive hours removed from the BTC sample make exactly one hole; the EURUSD sample's
# weekends vanish with `skip_weekends`, leaving only the Christmas-day hole; the S&P 500's daily
# holes are its market holidays.

# %%
test_eq(len(gap_report(btc, "1h")), 0)
holed = btc.drop(btc.index[500:503])
test_eq(gap_report(holed, "1h").to_dict("list"), {"start": [btc.index[500]], "length": [3]})
test_eq(gap_report(holed.index[:400], "1h").to_dict("list"), {"start": [], "length": []})
eurusd = pd.read_parquet(Path("../data/samples/eurusd_1h.parquet"))
test_eq(len(gap_report(eurusd, "1h")), 52)   # 51 weekends and Christmas day
test_eq(gap_report(eurusd, "1h", skip_weekends=True).to_dict("list"),
        {"start": [pd.Timestamp("2017-12-25 08:00", tz="UTC")], "length": [14]})
spx = pd.read_parquet(Path("../data/samples/spx_1d.parquet"))
spx_holes = gap_report(spx, "1d", skip_weekends=True)
assert spx_holes.start.dt.day_of_week.lt(5).all() and spx_holes.length.max() <= 4   # holidays, on weekdays
assert (spx_holes.start.dt.strftime("%m-%d") == "12-25").any()
test_fail(lambda: gap_report(btc.index + pd.to_timedelta(np.arange(len(btc)) % 2, unit="min"), "1h"), contains="one 1h grid")

# %% [markdown]
# ## The local parquet cache
# Bars are cached as `<root>/<venue>/<SYMBOL>/<timeframe>.parquet` (zstd). The root is `root` if given,
# else `$TRADINGBOT_CACHE_DIR`, else `data/cache` in the repository (see `tradingbot.paths`). Venue is
# lower-cased, symbol upper-cased, and each part must be a plain name so no argument can point outside
# the cache.

# %%
#| export
_SAFE_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _safe_part(kind: str, value: str) -> str:
    "`value` if it is a safe single path component, else a ValueError saying why not."
    if not isinstance(value, str) or not _SAFE_PART.fullmatch(value) or ".." in value:
        raise ValueError(f"{kind} {value!r} is not a safe cache name: use letters, digits, '.', '_' or '-' "
                         f"(no '/', no '..'), e.g. 'BTCUSDT'")
    return value


def cache_path(venue: str,                     # venue name, e.g. "bybit" (lower-cased in the path)
               symbol: str,                    # symbol, e.g. "BTCUSDT" (upper-cased in the path)
               timeframe: str,                 # one of `TIMEFRAMES`
               root: str | Path | None = None, # cache root; None: $TRADINGBOT_CACHE_DIR, else data/cache
              ) -> Path:                       # <root>/<venue>/<SYMBOL>/<timeframe>.parquet
    "Where the cached bars of `venue`/`symbol`/`timeframe` live."
    timeframe_delta(timeframe)
    root = Path(root) if root is not None else workspace_path("cache")
    return root / _safe_part("venue", venue).lower() / _safe_part("symbol", symbol).upper() / f"{timeframe}.parquet"


# %%
test_eq(cache_path("bybit", "btcusdt", "1h", root="/c"), Path("/c/bybit/BTCUSDT/1h.parquet"))
os.environ["TRADINGBOT_CACHE_DIR"] = "/tmp/tb-cache"
test_eq(cache_path("ibkr", "EURUSD", "1d"), Path("/tmp/tb-cache/ibkr/EURUSD/1d.parquet"))
del os.environ["TRADINGBOT_CACHE_DIR"]
test_eq(cache_path("bybit", "X", "5m"), workspace_path("cache") / "bybit" / "X" / "5m.parquet")
for bad_symbol in ("../etc", "BTC/USDT", "..", "", ".hidden"):
    test_fail(lambda: cache_path("bybit", bad_symbol, "1h"), contains="is not a safe cache name")
test_fail(lambda: cache_path("bybit", "BTCUSDT", "2h"), contains="unknown timeframe '2h'")


# %% [markdown]
# `save_local` validates (policy raise) before anything touches the disk, merges with what is cached
# (new rows win on an equal `ts`), and writes atomically: a temporary file in the same directory,
# flushed and fsynced, then `os.replace` — a crash leaves the old file or the new one, never half of
# one. Only the OHLCV columns are stored. `load_local` returns validated bars, optionally limited to
# `start <= ts < end` (naive times are taken as UTC).

# %%
#| export
def _write_atomic(frame: pd.DataFrame, path: Path) -> None:
    "Write `frame` to `path` as zstd parquet via a fsynced temporary file and os.replace."
    atomic_write(path, lambda fh: frame.to_parquet(fh, compression="zstd"), binary=True)


def _utc(when) -> pd.Timestamp | None:
    "`when` as a UTC Timestamp (naive values are taken as UTC)."
    if when is None:
        return None
    ts = pd.Timestamp(when)
    return ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")


# %%
#| export
def load_local(venue: str,                     # venue name, e.g. "bybit"
               symbol: str,                    # symbol, e.g. "BTCUSDT"
               timeframe: str,                 # one of `TIMEFRAMES`
               root: str | Path | None = None, # cache root (see `cache_path`)
               start: str | pd.Timestamp | None = None, # first bar open time to return (inclusive; naive = UTC)
               end: str | pd.Timestamp | None = None,   # open time to stop before (exclusive; naive = UTC)
              ) -> pd.DataFrame:               # validated bars, `start <= ts < end`
    "Cached bars of `venue`/`symbol`/`timeframe`, validated, optionally limited to `start <= ts < end`."
    path = cache_path(venue, symbol, timeframe, root)
    if not path.exists():
        raise FileNotFoundError(f"no cached bars for venue={venue!r} symbol={symbol!r} timeframe={timeframe!r}: "
                                f"{path} does not exist (save_local writes it)")
    bars = validate_bars(pd.read_parquet(path), timeframe, policy="raise")
    keep = np.ones(len(bars), dtype=bool)
    if start is not None:
        keep &= bars.index >= _utc(start)
    if end is not None:
        keep &= bars.index < _utc(end)
    return bars[keep]


def save_local(bars: pd.DataFrame,             # bars to cache; validated first (a bad bar raises, nothing is written)
               venue: str,                     # venue name, e.g. "bybit"
               symbol: str,                    # symbol, e.g. "BTCUSDT"
               timeframe: str,                 # the bars' timeframe, one of `TIMEFRAMES`
               root: str | Path | None = None, # cache root (see `cache_path`)
               merge: bool = True,             # keep cached rows the new bars do not replace
              ) -> Path:                       # the file written
    "Validate `bars` and write them to the cache, atomically, merged with what is there."
    path = cache_path(venue, symbol, timeframe, root)
    new = validate_bars(bars, timeframe, policy="raise")[list(BAR_COLUMNS)]
    if merge and path.exists():
        old = load_local(venue, symbol, timeframe, root)
        new = pd.concat([old[~old.index.isin(new.index)], new]).sort_index()
    _write_atomic(new, path)
    log_event("bars_saved", venue=venue, symbol=symbol, timeframe=timeframe, rows=len(new), path=str(path))
    return path


# %% [markdown]
# A round trip returns the input exactly; a second save merges, with the new rows winning; the
# directory holds the parquet file and nothing else; bad bars never reach the disk.

# %%
with tempfile.TemporaryDirectory() as root:
    path = save_local(btc, "coinbase", "btcusd", "1h", root=root)
    test_eq(path, Path(root) / "coinbase" / "BTCUSD" / "1h.parquet")
    test_eq(load_local("coinbase", "BTCUSD", "1h", root=root), btc)
    test_eq(load_local("coinbase", "BTCUSD", "1h", root=root, start="2018-01-01", end="2018-01-02").index,
            btc.loc["2018-01-01"].index)
    first, second = btc.iloc[:1000], btc.iloc[900:1500].assign(close=lambda d: d.close.clip(upper=d.high))
    second.loc[second.index[:100], "volume"] = 0.0    # overlap: the new values must win
    save_local(first, "bybit", "BTCUSDT", "1h", root=root, merge=False)
    save_local(second, "bybit", "BTCUSDT", "1h", root=root)
    merged = load_local("bybit", "BTCUSDT", "1h", root=root)
    test_eq(merged, pd.concat([first.iloc[:900], second]))
    save_local(first, "bybit", "BTCUSDT", "1h", root=root, merge=False)
    test_eq(load_local("bybit", "BTCUSDT", "1h", root=root), first)
    test_eq(sorted(p.name for p in (Path(root) / "bybit" / "BTCUSDT").iterdir()), ["1h.parquet"])
    broken, _ = inject(btc, "high_below_low")
    test_fail(lambda: save_local(broken, "bybit", "ETHUSDT", "1h", root=root), contains="high_below_low")
    assert not (Path(root) / "bybit" / "ETHUSDT").exists()
    test_fail(lambda: load_local("bybit", "ETHUSDT", "1h", root=root),
              contains=f"symbol='ETHUSDT' timeframe='1h': {root}/bybit/ETHUSDT/1h.parquet does not exist")
