# %% [markdown]
# # Protective orders
#
# > `SLTPManager`: attach a position's stop-loss and take-profit at the venue, re-attach them after a restart, and trail them in the position's favour only.

# %%
#| default_exp execution.sltp

# %% [markdown]
# Every live position has a stop (DESIGN §7), and the stop must be *at the venue*: a stop that lives
# only in our process dies with it. So protection is attached right after the entry fills (`attach`),
# checked against the venue after every restart (`sync`), and moved only through the venue (`trail`).
# The manager asks the venue what it holds before writing, so a repeated call sends nothing — an
# attach retried after a timeout is harmless. Levels come from `Protection.levels`, the backtester's
# arithmetic, so paper, live and backtest stops sit at the same price. Trailing goes through
# `risk.apply_trailing_tp` (only the risk module does risk math) and never loosens a stop.

# %%
#| export
from __future__ import annotations

from datetime import datetime

from collections.abc import Callable

from tradingbot.brokers.base import ExecutionClient, Protection
from tradingbot.execution.model import StopMoved, utc_now
from tradingbot.execution.risk import apply_trailing_tp
from tradingbot.jsonlog import log_event

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot.brokers.base import Capabilities
from tradingbot.jsonlog import configure, read_jsonl

log = configure(tempfile.mkdtemp())  # keep this notebook's events out of the repository's logs/


# %% [markdown]
# The tests use a small in-memory venue that records every `set_protection` call.

# %%
class FakeClient(ExecutionClient):
    "Positions and protective levels in dicts; counts writes."
    capabilities = Capabilities("paper", live=False, attached_protection=True, shorting=True)
    asset = "crypto_futures"

    def __init__(self, positions=None, levels=None):
        self.pos, self.levels, self.writes = dict(positions or {}), dict(levels or {}), []

    def submit(self, order): raise NotImplementedError
    def cancel(self, client_order_id): return False
    def lookup(self, client_order_id): return None
    def poll(self): return []
    def positions(self): return dict(self.pos)
    def protection(self, symbol): return self.levels.get(symbol, (None, None))

    def set_protection(self, symbol, sl, tp):
        self.writes.append((symbol, sl, tp))
        self.levels[symbol] = (sl, tp)


# %%
#| export
def _has_levels(levels) -> bool:
    return levels is not None and any(x is not None for x in levels)


class SLTPManager:
    "Keeps each position's stop-loss and take-profit at the venue."

    def __init__(self, client: ExecutionClient,  # the venue holding the positions
                 ):
        self.client = client
        self.unprotected: list[str] = []  # open positions found with no stop anywhere at the last sync

    def attach(self, symbol: str,  # the position's symbol
               direction: int,  # +1 long, -1 short
               entry: float,  # its average entry price
               protection: Protection,  # where the levels sit
               ) -> tuple[float | None, float | None]:  # the levels attached
        "Attach the levels `protection` puts around `entry`; write only if the venue holds others."
        levels = protection.levels(direction, entry)
        if self.client.protection(symbol) != levels:
            self.client.set_protection(symbol, *levels)
        return levels

    def sync(self, expected: dict[str, tuple[float | None, float | None]],  # symbol -> (sl, tp) we expect
             protect: Callable[[str, tuple], None] | None = None,  # sets levels through the router's gate
             ) -> list[str]:  # the symbols re-attached or unprotected
        "Re-attach the expected levels of every open venue position; the symbols re-attached or unprotected."
        touched, self.unprotected = [], []
        for symbol, qty in sorted(self.client.positions().items()):
            if qty == 0:
                continue
            held, want = self.client.protection(symbol), expected.get(symbol)
            if _has_levels(want):
                if tuple(want) != held:
                    protect(symbol, tuple(want)) if protect is not None else self.client.set_protection(symbol, *want)
                    touched.append(symbol)
            elif not _has_levels(held):
                log_event("unprotected_position", symbol=symbol, qty=qty, venue=self.client.capabilities.venue)
                self.unprotected.append(symbol)
                touched.append(symbol)
        return touched

    def trail(self, symbol: str,  # the position's symbol
              side: str,  # 'buy' (long) or 'sell' (short)
              price: float,  # the last price
              *, atr: float | None = None,  # trail distance in price units ...
              pct: float | None = None,  # ... or in percent of the price
              position_id: str = "",  # for the event
              ts: datetime | str | None = None,  # the event's time (default now)
              ) -> StopMoved | None:  # the move, if the stop moved
        "Trail the stop (and a reached take-profit) of `symbol` in the position's favour; the move, if any."
        if not self.client.positions().get(symbol):
            return None
        old_sl, old_tp = self.client.protection(symbol)
        if old_sl is None:
            return None
        new_sl, new_tp = apply_trailing_tp({"side": side, "price": price, "stop": old_sl, "tp": old_tp}, atr=atr,
                                           pct=pct)
        if (new_sl, new_tp) == (old_sl, old_tp):
            return None
        self.client.set_protection(symbol, new_sl, new_tp)
        if new_sl == old_sl:
            return None
        return StopMoved(ts or utc_now(), position_id=position_id or symbol, symbol=symbol, old_sl=old_sl,
                         new_sl=new_sl)


# %%
c = FakeClient({"BTCUSDT": 0.5})
m = SLTPManager(c)
test_eq(m.attach("BTCUSDT", 1, 100.0, Protection(sl_pct=2.0, tp_pct=4.0)), (98.0, 104.0))
test_eq(c.writes, [("BTCUSDT", 98.0, 104.0)])
m.attach("BTCUSDT", 1, 100.0, Protection(sl_pct=2.0, tp_pct=4.0))  # a retry
test_eq(len(c.writes), 1)  # ... sends nothing
test_eq(m.attach("BTCUSDT", -1, 100.0, Protection(sl_distance=3.0)), (103.0, None))
test_eq(c.levels["BTCUSDT"], (103.0, None))
test_fail(lambda: m.attach("BTCUSDT", 0, 100.0, Protection(sl_pct=1.0)), contains="direction must be +1 or -1")

# %% [markdown]
# ## After a restart
# `sync` walks the venue's open positions. Where we expect levels and the venue holds other (or none),
# the expected ones are re-attached. A position with no expected levels keeps whatever the venue holds —
# we have nothing better — but if the venue holds nothing either, the position is *unprotected*: that is
# logged as `unprotected_position` and reported, so the engine can put the asset in close-only and
# alert. The returned list names every symbol that needed attention (re-attached or unprotected);
# `unprotected` keeps the latter.

# %%
c = FakeClient({"BTCUSDT": 0.5, "ETHUSDT": -2.0, "SOLUSDT": 1.0, "XRPUSDT": 3.0, "ADAUSDT": 0.0},
               {"BTCUSDT": (98.0, 104.0), "ETHUSDT": (None, None), "XRPUSDT": (0.5, None)})
m = SLTPManager(c)
got = m.sync({"BTCUSDT": (98.0, 104.0), "ETHUSDT": (2100.0, 1900.0), "ADAUSDT": (0.3, None)})
test_eq(got, ["ETHUSDT", "SOLUSDT"])  # BTC already right, XRP has its own stop, ADA is flat
test_eq(c.writes, [("ETHUSDT", 2100.0, 1900.0)])
test_eq(m.unprotected, ["SOLUSDT"])
last = read_jsonl(log.path_for(utc_now()))[-1]
test_eq((last["event"], last["symbol"], last["qty"]), ("unprotected_position", "SOLUSDT", 1.0))
test_eq(m.sync({"BTCUSDT": (98.0, 104.0), "ETHUSDT": (2100.0, 1900.0), "SOLUSDT": (0.9, None)}), ["SOLUSDT"])
test_eq((m.unprotected, m.sync({"BTCUSDT": (98.0, 104.0)})), ([], []))  # now everything is protected

# %% [markdown]
# ## Trailing
# `trail` asks `apply_trailing_tp` for the new levels at `price` and writes them only when they changed;
# it returns a `StopMoved` when the stop moved. Without an open position or without a stop at the venue
# there is nothing to trail (a missing stop is `sync`'s business, not a trailing decision).

# %%
c = FakeClient({"BTCUSDT": 0.5, "ETHUSDT": -1.0}, {"BTCUSDT": (98.0, 110.0), "ETHUSDT": (105.0, None)})
m = SLTPManager(c)
mv = m.trail("BTCUSDT", "buy", 104.0, atr=3.0, position_id="BTCUSDT-e1", ts="2024-01-01T00:00:00+00:00")
test_eq((mv.position_id, mv.old_sl, mv.new_sl), ("BTCUSDT-e1", 98.0, 101.0))
test_eq(c.levels["BTCUSDT"], (101.0, 110.0))
test_eq(m.trail("BTCUSDT", "buy", 102.0, atr=3.0), None)  # a pullback never loosens the stop
test_eq(len(c.writes), 1)
mv = m.trail("ETHUSDT", "sell", 90.0, pct=10.0)  # short: the stop comes down
test_eq((mv.old_sl, mv.new_sl), (105.0, 99.0))
test_eq(m.trail("SOLUSDT", "buy", 10.0, atr=1.0), None)  # no position
c.levels["BTCUSDT"] = (None, 110.0)
test_eq(m.trail("BTCUSDT", "buy", 120.0, atr=1.0), None)  # no stop to trail
test_fail(lambda: SLTPManager(FakeClient({"X": 1.0}, {"X": (1.0, None)})).trail("X", "buy", 2.0),
          contains="exactly one of atr")
