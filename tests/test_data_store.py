"""Integration tests of the bar store on the four bundled real samples: validation, gaps and the parquet cache."""
import numpy as np
import pandas as pd
import pytest

from tradingbot import jsonlog
from tradingbot.data.store import (BarValidationError, bar_issues, cache_path, gap_report, load_local, save_local,
                                   validate_bars)
from tradingbot.data.timeframes import timeframe_delta
from tradingbot.paths import workspace_path

SAMPLES = {"btcusd_1h": "1h", "eurusd_1h": "1h", "spx_1d": "1d", "es_1m": "1m"}
DEFECTS = ("duplicate_ts", "out_of_order", "not_finite", "high_below_low", "negative_volume")


@pytest.fixture(autouse=True)
def events(tmp_path):
    "Send the event log to a temporary directory; yield a reader of what was logged."
    jsonlog.configure(tmp_path / "logs")
    yield lambda: [r for f in sorted((tmp_path / "logs" / "events").glob("*.jsonl")) for r in jsonlog.read_jsonl(f)]
    jsonlog._events = None


def load(name: str) -> pd.DataFrame:
    return pd.read_parquet(workspace_path("samples") / f"{name}.parquet")


def inject(bars: pd.DataFrame, defect: str, i: int) -> tuple[pd.DataFrame, pd.Timestamp]:
    "A copy of `bars` with one defect at row `i`, and the timestamp of the row validation must reject."
    out, ts = bars.copy(), bars.index[i]
    if defect == "duplicate_ts":
        out = pd.concat([out.iloc[: i + 1], out.iloc[[i]].assign(close=out.close.iloc[i] * 1.01), out.iloc[i + 1:]])
    elif defect == "out_of_order":
        out, ts = out.iloc[np.r_[:i, i + 1, i, i + 2:len(out)]], bars.index[i + 1]
    elif defect == "not_finite":
        out.loc[ts, "close"] = np.nan
    elif defect == "high_below_low":
        out.loc[ts, "high"] = out.loc[ts, "low"] - 0.5 * (out.loc[ts, "high"] - out.loc[ts, "low"]) - 1e-3
    elif defect == "negative_volume":
        out.loc[ts, "volume"] = -1.0
    return out, ts


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_validate_clean(name):
    bars = load(name)
    pd.testing.assert_frame_equal(validate_bars(bars, SAMPLES[name]), bars)
    assert bar_issues(bars, SAMPLES[name]).empty
    assert (validate_bars(bars, policy="flag").bad == "").all()


@pytest.mark.parametrize("defect", DEFECTS)
@pytest.mark.parametrize("name", SAMPLES)
def test_each_defect_is_caught_dropped_and_flagged(name, defect, events):
    bars = load(name)
    broken, ts = inject(bars, defect, i=len(bars) // 2)
    with pytest.raises(BarValidationError) as err:
        validate_bars(broken, SAMPLES[name])
    assert f"{defect} (" in str(err.value) and str(ts) in str(err.value) and "1 row(s)" in str(err.value)
    assert defect in set(err.value.issues.rule)

    cleaned = validate_bars(broken, SAMPLES[name], policy="drop")
    expected = bars if defect == "duplicate_ts" else bars.drop(ts)
    pd.testing.assert_frame_equal(cleaned, expected)
    (logged,) = [r for r in events() if r["event"] == "bars_dropped"]
    assert logged["rows"] == 1 and defect in logged["counts"]

    flagged = validate_bars(broken, SAMPLES[name], policy="flag")
    marked = flagged.bad[flagged.bad != ""]
    assert len(flagged) == len(broken) and len(marked) == 1 and defect in marked.iloc[0].split(",")


@pytest.mark.parametrize("name", SAMPLES)
def test_three_bar_hole_is_reported(name):
    bars, tf = load(name), SAMPLES[name]
    adjacent = pd.Series(bars.index[1:] - bars.index[:-1] == timeframe_delta(tf))  # bar k+1 follows bar k
    ends = np.flatnonzero(adjacent.rolling(4).sum() == 4)  # bars k-3 .. k+1 are 5 consecutive bars
    i = ends[len(ends) // 2] - 2  # remove the middle three of them: a new hole of 3 between existing bars
    before = gap_report(bars, tf)
    after = gap_report(bars.drop(bars.index[i:i + 3]), tf)
    new = after.merge(before, how="left", indicator=True).query("_merge == 'left_only'")
    assert new[["start", "length"]].to_dict("list") == {"start": [bars.index[i]], "length": [3]}
    assert len(after) == len(before) + 1


def test_weekends_skipped_only_when_asked():
    eurusd = load("eurusd_1h")
    assert len(gap_report(eurusd, "1h")) == 52
    holes = gap_report(eurusd, "1h", skip_weekends=True)
    assert holes.to_dict("list") == {"start": [pd.Timestamp("2017-12-25 08:00", tz="UTC")], "length": [14]}


@pytest.mark.parametrize("name", SAMPLES)
def test_cache_round_trip(name, tmp_path):
    bars, tf = load(name), SAMPLES[name]
    path = save_local(bars, "samples", name, tf, root=tmp_path)
    assert path == cache_path("samples", name, tf, root=tmp_path) == tmp_path / "samples" / name.upper() / f"{tf}.parquet"
    pd.testing.assert_frame_equal(load_local("samples", name, tf, root=tmp_path), bars)
    assert [p.name for p in path.parent.iterdir()] == [f"{tf}.parquet"]


def test_cache_merge_new_rows_win(tmp_path):
    bars = load("btcusd_1h")
    old, new = bars.iloc[:5000], bars.iloc[4000:8000].copy()
    new.loc[new.index[:1000], "volume"] += 1.0
    save_local(old, "coinbase", "BTCUSD", "1h", root=tmp_path)
    save_local(new, "coinbase", "BTCUSD", "1h", root=tmp_path)
    merged = load_local("coinbase", "BTCUSD", "1h", root=tmp_path)
    pd.testing.assert_frame_equal(merged, pd.concat([old.iloc[:4000], new]))
    window = load_local("coinbase", "BTCUSD", "1h", root=tmp_path, start=bars.index[10], end=bars.index[20])
    pd.testing.assert_frame_equal(window, bars.iloc[10:20])


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    bars = load("btcusd_1h")
    path = save_local(bars.iloc[:100], "coinbase", "BTCUSD", "1h", root=tmp_path)

    def crash(self, fh, **kwargs):
        fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        save_local(bars.iloc[100:200], "coinbase", "BTCUSD", "1h", root=tmp_path)
    monkeypatch.undo()
    assert [p.name for p in path.parent.iterdir()] == ["1h.parquet"]
    pd.testing.assert_frame_equal(load_local("coinbase", "BTCUSD", "1h", root=tmp_path), bars.iloc[:100])


def test_bad_bars_never_reach_the_cache(tmp_path):
    broken, _ = inject(load("spx_1d"), "not_finite", i=10)
    with pytest.raises(BarValidationError, match="not_finite"):
        save_local(broken, "ibkr", "SPX", "1d", root=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"venue='ibkr' symbol='SPX' timeframe='1d': .*SPX/1d.parquet"):
        load_local("ibkr", "SPX", "1d", root=tmp_path)


@pytest.mark.parametrize("part", ["../x", "a/b", "..", ""])
def test_unsafe_cache_names_are_refused(part, tmp_path):
    with pytest.raises(ValueError, match="not a safe cache name"):
        cache_path("bybit", part, "1h", root=tmp_path)
    with pytest.raises(ValueError, match="not a safe cache name"):
        cache_path(part, "BTCUSDT", "1h", root=tmp_path)
