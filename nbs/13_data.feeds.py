# %% [markdown]
# # Feeds
#
# > The `Feed` interface (async iteration of closed bars) and `ReplayFeed`, which replays stored bars in close-time order.

# %%
#| default_exp data.feeds

# %% [markdown]
# The engine (DESIGN §4, `runtime/engine.py`) consumes bars from a `Feed` and never asks where they come
# from. Offline the feed is a `ReplayFeed` over stored frames, as fast as possible or paced at a multiple
# of real time; live, the broker packages (`brokers/bybit`, `brokers/ibkr`) provide feeds behind this same
# interface, so a paper session on replayed bars runs the very code a live session runs.
#
# A bar is known at its **close** (`ts + timeframe`, DESIGN §5): a feed emits each bar as one `BarEvent`
# once it has closed, in order of close time, and numbers them with `seq` so that a restarted run can resume
# from the bar after the last one it fully processed.

# %%
#| export
from __future__ import annotations

import asyncio
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tradingbot.data.timeframes import timeframe_delta
from tradingbot.jsonlog import log_event

# %%
#| hide
import tempfile
import time

from fastcore.test import test_eq, test_fail

from tradingbot.jsonlog import configure

configure(tempfile.mkdtemp());  # keep this notebook's log events out of the repository's logs/


# %% [markdown]
# ## `BarEvent` and the `Feed` interface
# `BarEvent` is immutable: once a bar has closed it never changes. `Feed.bars()` is an async iterator, so the
# engine can await bars beside its other tasks (UI, notifier, kill switch); `stop()` ends it promptly, from
# any thread. `iter_bars()` is the synchronous view for notebooks and tests: it drives `bars()` on a private
# event loop in a helper thread, so it also works inside Jupyter, whose own loop is already running.

# %%
#| export
@dataclass(frozen=True, slots=True)
class BarEvent:
    "One closed bar of one symbol, as a feed emits it."
    symbol: str               # the instrument, as keyed in the feed's frames
    timeframe: str            # bar size, one of `TIMEFRAMES`
    ts: pd.Timestamp          # bar open time (the frame's index)
    close_time: pd.Timestamp  # ts + timeframe: when the bar became known
    open: float               # first price of the bar, price units
    high: float               # highest price of the bar, price units
    low: float                # lowest price of the bar, price units
    close: float              # last price of the bar, price units
    volume: float             # traded in the bar, in the venue's volume unit
    seq: int                  # 0-based position in the feed's sequence; resume from seq + 1


class Feed(ABC):
    "A source of closed bars in close-time order: replayed from storage, or live from a broker."

    @abstractmethod
    def bars(self) -> AsyncIterator[BarEvent]:
        "Closed bars, in order of close time, until the feed ends or `stop()` is called."

    @abstractmethod
    def stop(self) -> None:
        "End iteration promptly (no further bar is emitted); safe to call from any thread."

    def iter_bars(self) -> Iterator[BarEvent]:
        "Synchronous iteration of `bars()` (notebooks, tests), on a private event loop in a helper thread."
        loop = asyncio.new_event_loop()
        runner = threading.Thread(target=loop.run_forever, name="feed-iter-bars", daemon=True)
        runner.start()
        agen = self.bars()

        async def step():
            return await anext(agen)

        async def close():
            if hasattr(agen, "aclose"):
                await agen.aclose()

        try:
            while True:
                try:
                    yield asyncio.run_coroutine_threadsafe(step(), loop).result()
                except StopAsyncIteration:
                    return
        finally:
            asyncio.run_coroutine_threadsafe(close(), loop).result()
            loop.call_soon_threadsafe(loop.stop)
            runner.join()
            loop.close()


# %% [markdown]
# A minimal feed shows the contract and exercises the generic `iter_bars`:

# %%
class _ListFeed(Feed):
    def __init__(self, events): self.events, self.stopped = events, False
    async def bars(self):
        for e in self.events:
            if self.stopped: return
            await asyncio.sleep(0)
            yield e
    def stop(self): self.stopped = True

t0 = pd.Timestamp("2024-01-01", tz="UTC")
evs = [BarEvent("X", "1h", t0 + pd.Timedelta(hours=i), t0 + pd.Timedelta(hours=i + 1), 1.0, 1.0, 1.0, 1.0, 0.0, i)
       for i in range(3)]
test_eq(list(_ListFeed(evs).iter_bars()), evs)
test_fail(lambda: setattr(evs[0], "close", 2.0))         # frozen
feed, seen = _ListFeed(evs), []
for e in feed.iter_bars():
    seen.append(e.seq)
    feed.stop()
test_eq(seen, [0])                                      # no bar after stop()
test_fail(lambda: Feed(), contains="abstract")

# %% [markdown]
# ## Checking the input
# A replay is only as good as its frames. Each must follow the bar contract; bars closer together than the
# timeframe mean the wrong timeframe was passed (a 1m frame declared as 1h would emit bars before they closed).

# %%
#| export
_COLUMNS = ["open", "high", "low", "close", "volume"]


def _open_times_ns(df: pd.DataFrame, symbol: str, step: pd.Timedelta) -> np.ndarray:
    "The frame's bar open times as int64 UTC nanoseconds, after checking the bar contract."
    where = f"bars of {symbol!r}"
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}")
    if missing := [c for c in _COLUMNS if c not in df.columns]:
        raise ValueError(f"{where}: missing columns {missing}; bars need {' '.join(_COLUMNS)}")
    if not isinstance(df.index, pd.DatetimeIndex) or df.index.tz is None:
        raise ValueError(f"{where}: the index must be tz-aware UTC bar open times (try df.tz_localize('UTC'))")
    ns = df.index.tz_convert("UTC").as_unit("ns").asi8
    if len(ns) > 1 and (gaps := np.diff(ns)).min() < step.value:
        at = int(np.argmax(gaps < step.value))
        problem = "not strictly increasing" if gaps[at] <= 0 else f"closer than the timeframe {step}"
        raise ValueError(f"{where}: index {problem} at {df.index[at]} -> {df.index[at + 1]}")
    return ns


def _bound_ns(ts: str | pd.Timestamp | None, default: int) -> int:
    if ts is None:
        return default
    ts = pd.Timestamp(ts)
    return (ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")).as_unit("ns").value


# %%
hours = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC", name="ts")
ok = pd.DataFrame({c: [1.0, 2.0, 3.0, 4.0] for c in _COLUMNS}, index=hours)
test_eq(_open_times_ns(ok, "X", pd.Timedelta(hours=1)), hours.as_unit("ns").asi8)  # pandas 3 defaults to us
test_fail(lambda: _open_times_ns(ok, "X", pd.Timedelta(hours=4)), contains="closer than the timeframe")
test_fail(lambda: _open_times_ns(ok.iloc[[0, 2, 1]], "X", pd.Timedelta(hours=1)), contains="not strictly increasing")
test_fail(lambda: _open_times_ns(ok.tz_localize(None), "X", pd.Timedelta(hours=1)), contains="tz-aware UTC")
test_fail(lambda: _open_times_ns(ok.drop(columns="volume"), "X", pd.Timedelta(hours=1)), contains="['volume']")
test_eq(_bound_ns("2024-01-01 01:00", 0), hours[1].as_unit("ns").value)


# %% [markdown]
# ## `ReplayFeed`
# The frames are merged once, at construction, into arrays ordered by close time, ties broken by symbol
# name, so the sequence, and every `seq`, is the same on every run. `start`/`stop` bound the replay by bar
# open time, half-open like a Python slice (`start <= ts < stop`), so consecutive windows never share a
# bar. Bars whose close lies in the future of the wall clock are still forming and are dropped: a replay
# never emits a bar before it has closed.
#
# `start_seq` and `max_bars` both count in the whole bounded replay: `start_seq=k` resumes at bar `k`, and
# `max_bars=N` ends after bar `N - 1` however the run was resumed, so a stopped-and-resumed replay emits
# exactly the bars one uninterrupted run would have.
#
# With `speed=None` bars come as fast as the consumer takes them (control returns to the event loop every
# few hundred bars so other tasks still run). With `speed=X` the replay waits `(close_i - close_{i-1}) / X`
# between bars, at most `max_sleep` seconds, so a weekend gap does not stall a fast replay.
#
# Async iteration waits on an `asyncio.Event` that `stop()` sets; the synchronous `iter_bars` (overriding the
# generic one: a replay needs no event loop) waits on a `threading.Event`. Both check for a stop before
# every bar, so no bar follows a `stop()`.

# %%
#| export
class ReplayFeed(Feed):
    "Replay stored bars of one or more symbols as closed `BarEvent`s, in close-time order."

    _YIELD_EVERY = 256  # bars between hand-backs to the event loop when not pacing

    def __init__(self,
                 frames: pd.DataFrame | Mapping[str, pd.DataFrame], # bars per symbol, or one frame (give `symbol`)
                 timeframe: str,                         # bar size of every frame: 1m 5m 15m 1h 4h 1d
                 symbol: str | None = None,              # the symbol of a single frame
                 speed: float | None = None,             # None: as fast as possible; X: X times real time
                 start: str | pd.Timestamp | None = None, # first bar open time included (naive = UTC)
                 stop: str | pd.Timestamp | None = None,  # bar open time excluded, and all after it
                 start_seq: int = 0,                     # resume at this position in the replay
                 max_bars: int | None = None,            # end after bar seq max_bars - 1 of the whole replay
                 max_sleep: float = 10.0,                # cap on one wait when pacing, seconds
                ):
        self.timeframe, self.speed, self.max_sleep = timeframe, speed, max_sleep
        self._check_args(frames, symbol, speed, start_seq, max_bars, max_sleep)
        frames = {symbol: frames} if isinstance(frames, pd.DataFrame) else dict(frames)
        self._merge(frames, timeframe_delta(timeframe), _bound_ns(start, np.iinfo(np.int64).min),
                    _bound_ns(stop, np.iinfo(np.int64).max))
        self.total = len(self._close_ns)  # bars in the bounded replay
        self.start_seq = start_seq
        self.end_seq = self.total if max_bars is None else min(self.total, max_bars)
        self._stopped, self._wake = threading.Event(), None

    @staticmethod
    def _check_args(frames, symbol, speed, start_seq, max_bars, max_sleep):
        if isinstance(frames, pd.DataFrame) and not isinstance(symbol, str):
            raise ValueError("a single frame needs its symbol: ReplayFeed(df, timeframe, symbol='BTCUSDT')")
        if not isinstance(frames, (pd.DataFrame, Mapping)) or len(frames) == 0:
            raise ValueError("frames must be a DataFrame or a non-empty {symbol: DataFrame} mapping")
        if not isinstance(frames, pd.DataFrame) and not all(isinstance(k, str) for k in frames):
            raise ValueError(f"symbols must be strings, got {list(frames)}")
        if speed is not None and not (np.isfinite(speed) and speed > 0):
            raise ValueError(f"speed must be None (as fast as possible) or a positive factor, got {speed!r}")
        if start_seq < 0 or (max_bars is not None and max_bars < 0) or max_sleep < 0:
            raise ValueError(f"start_seq, max_bars and max_sleep must be >= 0, got {start_seq}, {max_bars}, {max_sleep}")

    def _merge(self, frames: dict, step: pd.Timedelta, start_ns: int, stop_ns: int):
        "Order every symbol's bars by (close time, symbol name); keep those in bounds that have closed."
        if start_ns >= stop_ns:
            raise ValueError(f"start must be before stop, got {pd.Timestamp(start_ns, tz='UTC')} and "
                             f"{pd.Timestamp(stop_ns, tz='UTC')}")
        self.symbols = sorted(frames)
        now_ns = pd.Timestamp.now(tz="UTC").value
        closes, codes, values = [], [], []
        for code, name in enumerate(self.symbols):
            df = frames[name]
            open_ns = _open_times_ns(df, name, step)
            keep = (open_ns >= start_ns) & (open_ns < stop_ns)
            unclosed = int((keep & (open_ns + step.value > now_ns)).sum())
            if unclosed:
                log_event("replay_unclosed_bars_dropped", symbol=name, bars=unclosed)
            keep &= open_ns + step.value <= now_ns
            closes.append(open_ns[keep] + step.value)
            codes.append(np.full(int(keep.sum()), code))
            values.append(df[_COLUMNS].to_numpy(dtype="float64")[keep])
        close_ns, code = np.concatenate(closes), np.concatenate(codes)
        order = np.lexsort((code, close_ns))
        self._close_ns, self._code = close_ns[order], code[order]
        self._values, self._step_ns = np.concatenate(values)[order], step.value

    def __len__(self) -> int:
        "How many bars an iteration emits (unless stopped)."
        return max(0, self.end_seq - self.start_seq)

    def bar_at(self,
               seq: int,  # 0-based position in the bounded replay, < `total`
              ) -> BarEvent:
        "The bar at position `seq` of the replay."
        close_ns = int(self._close_ns[seq])
        o, h, l, c, v = self._values[seq].tolist()
        return BarEvent(self.symbols[self._code[seq]], self.timeframe, pd.Timestamp(close_ns - self._step_ns, tz="UTC"),
                        pd.Timestamp(close_ns, tz="UTC"), o, h, l, c, v, seq)

    def _timeline(self) -> Iterator[tuple[BarEvent, float]]:
        "Each bar to emit with the seconds to wait before emitting it."
        log_event("replay_started", symbols=self.symbols, timeframe=self.timeframe, start_seq=self.start_seq,
                  end_seq=self.end_seq, speed=self.speed)
        previous = None
        for seq in range(self.start_seq, self.end_seq):
            close_ns = self._close_ns[seq]
            wait = 0.0 if self.speed is None or previous is None else (close_ns - previous) / 1e9 / self.speed
            previous = close_ns
            yield self.bar_at(seq), min(wait, self.max_sleep)

    async def bars(self) -> AsyncIterator[BarEvent]:
        "Closed bars in close-time order, paced by `speed`, until the end, `max_bars` or `stop()`."
        wake = asyncio.Event()
        self._wake = (asyncio.get_running_loop(), wake)
        last = None
        try:
            for i, (event, wait) in enumerate(self._timeline()):
                if wait > 0:
                    try:
                        await asyncio.wait_for(wake.wait(), timeout=wait)
                    except TimeoutError:
                        pass
                elif i % self._YIELD_EVERY == self._YIELD_EVERY - 1:
                    await asyncio.sleep(0)
                if self._stopped.is_set():
                    return
                last = event.seq
                yield event
        finally:
            self._wake = None
            log_event("replay_ended", last_seq=last, stopped=self._stopped.is_set())

    def iter_bars(self) -> Iterator[BarEvent]:
        "Synchronous replay: the same bars and pacing as `bars()`, without an event loop."
        last = None
        try:
            for event, wait in self._timeline():
                if wait > 0:
                    self._stopped.wait(wait)
                if self._stopped.is_set():
                    return
                last = event.seq
                yield event
        finally:
            log_event("replay_ended", last_seq=last, stopped=self._stopped.is_set())

    def stop(self) -> None:
        "End iteration promptly, even mid-wait; safe from any thread. A stopped feed stays stopped."
        self._stopped.set()
        if (waiting := self._wake) is not None:  # read once: bars() clears it when it ends
            loop, wake = waiting
            try:
                loop.call_soon_threadsafe(wake.set)
            except RuntimeError:  # that loop has closed: nothing is waiting on it
                pass


# %% [markdown]
# ### Order, count and contents
# Real hourly bitcoin bars: every bar once, in order, each stamped with its close and carrying the frame's values.

# %%
btc = pd.read_parquet("../data/samples/btcusd_1h.parquet")
feed = ReplayFeed(btc, "1h", symbol="BTCUSD")
got = list(feed.iter_bars())
test_eq((len(got), len(feed), feed.total), (len(btc),) * 3)
test_eq([e.seq for e in got], list(range(len(btc))))
test_eq(pd.DatetimeIndex([e.ts for e in got]).equals(btc.index), True)
test_eq({e.close_time - e.ts for e in got}, {pd.Timedelta(hours=1)})
test_eq([got[5].open, got[5].high, got[5].low, got[5].close, got[5].volume], btc.iloc[5].tolist())


# %% [markdown]
# The async iterator yields the same sequence. (Notebook cells run on an event loop, Jupyter's or nbdev's,
# so they `await` directly; a script would use `asyncio.run`.)

# %%
async def collect(feed: Feed, limit: int | None = None) -> list[BarEvent]:
    out = []
    async for e in feed.bars():
        out.append(e)
        if limit is not None and len(out) >= limit:
            break
    return out

test_eq(await collect(ReplayFeed(btc, "1h", symbol="BTCUSD")), got)

# %% [markdown]
# ### Bounds, resume and `max_bars`
# `start <= ts < stop`. Resuming at `start_seq=k` gives the tail of the same sequence, and `max_bars` ends
# where an uninterrupted run would.

# %%
jan = ReplayFeed(btc, "1h", symbol="BTCUSD", start="2018-01-01", stop="2018-02-01")
jan_bars = list(jan.iter_bars())
test_eq((jan_bars[0].ts, jan_bars[-1].ts), (pd.Timestamp("2018-01-01", tz="UTC"), pd.Timestamp("2018-01-31 23:00", tz="UTC")))
test_eq(len(jan_bars), len(btc.loc["2018-01-01":"2018-01-31 23:00"]))
test_fail(lambda: ReplayFeed(btc, "1h", symbol="BTCUSD", start="2019", stop="2018"), contains="start must be before stop")

# %%
whole = list(ReplayFeed(btc, "1h", symbol="BTCUSD", max_bars=100).iter_bars())
tail = list(ReplayFeed(btc, "1h", symbol="BTCUSD", start_seq=60, max_bars=100).iter_bars())
test_eq(len(whole), 100)
test_eq(tail, whole[60:])
test_eq(list(ReplayFeed(btc, "1h", symbol="BTCUSD", start_seq=len(btc)).iter_bars()), [])  # resumed after the end
test_eq(len(ReplayFeed(btc, "1h", symbol="BTCUSD", start_seq=150, max_bars=100)), 0)

# %% [markdown]
# ### Several symbols
# Hourly EURUSD (weekend gaps) merged with bitcoin: order by close time, ties by symbol name, `seq` counts the merge.

# %%
eur = pd.read_parquet("../data/samples/eurusd_1h.parquet")
window = dict(start="2017-10-01", stop="2017-10-15")
pair = list(ReplayFeed({"EURUSD": eur, "BTCUSD": btc}, "1h", **window).iter_bars())
keys = [(e.close_time, e.symbol) for e in pair]
test_eq(keys, sorted(keys))
test_eq(len(pair), len(btc.loc["2017-10-01":"2017-10-14 23:00"]) + len(eur.loc["2017-10-01":"2017-10-14 23:00"]))
test_eq([e.seq for e in pair], list(range(len(pair))))
tie = next(i for i in range(len(keys) - 1) if keys[i][0] == keys[i + 1][0])
test_eq((keys[tie][1], keys[tie + 1][1]), ("BTCUSD", "EURUSD"))  # same close: by name, not by argument order

# %% [markdown]
# ### Bad input, and bars that have not closed
# A frame of the wrong timeframe is refused; a bar still forming (its close is later than now) is not emitted.

# %%
es = pd.read_parquet("../data/samples/es_1m.parquet")
test_fail(lambda: ReplayFeed(es, "1h", symbol="ES"), contains="closer than the timeframe")
test_fail(lambda: ReplayFeed(es, "1h"), contains="needs its symbol")
test_fail(lambda: ReplayFeed({}, "1h"), contains="non-empty")
test_fail(lambda: ReplayFeed(es, "1m", symbol="ES", speed=0), contains="speed must be")
test_fail(lambda: ReplayFeed(es, "1m", symbol="ES", start_seq=-1), contains=">= 0")

now_hour = pd.Timestamp.now(tz="UTC").floor("1h")
forming = pd.DataFrame({c: [1.0, 1.0, 1.0] for c in _COLUMNS},
                       index=pd.DatetimeIndex([now_hour - pd.Timedelta(hours=2), now_hour - pd.Timedelta(hours=1), now_hour], name="ts"))
test_eq([e.ts for e in ReplayFeed(forming, "1h", symbol="X").iter_bars()], list(forming.index[:2]))

# %% [markdown]
# ### Pacing and stopping
# Three one-minute bars at 600× real time wait two gaps of 0.1 s. (Never an upper bound on wall time: a busy
# machine may be slower; it must not be faster.)

# %%
three = es.iloc[:3]
test_eq(set(np.diff(three.index)), {np.timedelta64(1, "m")})
t = time.perf_counter()
test_eq(len(list(ReplayFeed(three, "1m", symbol="ES", speed=600).iter_bars())), 3)
assert time.perf_counter() - t >= 0.2 * 0.8

t = time.perf_counter()
test_eq(len(await collect(ReplayFeed(three, "1m", symbol="ES", speed=600))), 3)
assert time.perf_counter() - t >= 0.2 * 0.8


# %% [markdown]
# At real time an hourly replay would wait an hour between bars. `stop()` wakes the wait: from another task
# in the async case, from another thread in the synchronous one. The generous timeouts only turn a hang into
# a failure.

# %%
async def stop_while_waiting() -> list[BarEvent]:
    slow = ReplayFeed(btc, "1h", symbol="BTCUSD", speed=1.0, max_sleep=3600)
    asyncio.get_running_loop().call_later(0.2, slow.stop)
    return await asyncio.wait_for(collect(slow), timeout=60)

test_eq([e.seq for e in await stop_while_waiting()], [0])

slow = ReplayFeed(btc, "1h", symbol="BTCUSD", speed=1.0, max_sleep=3600)
threading.Timer(0.2, slow.stop).start()
test_eq([e.seq for e in slow.iter_bars()], [0])
test_eq(list(slow.iter_bars()), [])  # a stopped feed stays stopped


# %% [markdown]
# Unpaced, a consumer's `stop()` lands before the next bar, and a task beside the replay still gets turns.

# %%
async def stop_mid_replay() -> tuple[list[int], int]:
    fast, ticks, out = ReplayFeed(btc, "1h", symbol="BTCUSD"), 0, []
    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)
    task = asyncio.create_task(ticker())
    async for e in fast.bars():
        out.append(e.seq)
        if e.seq == 1000:
            fast.stop()
    task.cancel()
    return out, ticks

seqs, ticks = await stop_mid_replay()
test_eq(seqs, list(range(1001)))
assert ticks > 0, ticks
