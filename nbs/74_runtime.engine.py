# %% [markdown]
# # Engine
#
# > The loop that runs the bot: each closed bar goes to the asset's client (fills, protective exits), the portfolio, the strategies, and back out through the router; a checkpoint in SQLite makes a crash at any instant resumable from the last bar fully processed.

# %%
#| default_exp runtime.engine

# %% [markdown]
# One bar, in the order the backtester's numba loop uses, so a paper replay and a backtest fill alike:
#
# 1. **the venue moves** — `client.on_bar(bar)`: orders decided at earlier closes meet this bar's open,
#    protective stops are checked along its path;
# 2. **fills are booked** — each into SQLite (unique `exec_id`) and the portfolio; a closed trade pays the
#    paper session, earns reward points, feeds the auto-kill count and the budget;
# 3. **the bar is marked** and the strategies **decide at its close** (`Strategy.latest` on a window of the
#    symbol's bars); their intents go to the router — exits first, then entries, with the backtester's rules
#    (an exit and an entry of one strategy on one bar cancel; no entry on the bar a stop fired);
# 4. **checkpoint** — after any bar that did something, and every `checkpoint_bars` bars or
#    `checkpoint_seconds` otherwise: one SQLite row holds the replay cursor, the paper client, portfolios,
#    sessions, budget and per-symbol books. Logs of the bar are written after the checkpoint commits.
#
# After a crash, the engine restores the last checkpoint and replays from the bar after its cursor. Quiet
# bars re-process to the same state; a bar that was cut short re-decides the same orders under the same
# client order ids, which the router finds in SQLite and — since the restored paper venue never saw them —
# sends again under those ids; its fills come back with the same `exec_id`s, which SQLite stores once. So
# positions and equity at any bar equal those of a run that never crashed (tested with SIGKILL in
# `tests/test_crash_resume.py`).
#
# Several strategies may trade one symbol; the first (in `assets.json` order) whose entry fires while the
# symbol is flat **owns** the position, and only its exit signal and time stop close it.

# %%
#| export
from __future__ import annotations

import asyncio
import fcntl
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from tradingbot.brokers.base import FundingPayment
from tradingbot.config import get_key
from tradingbot.data.feeds import BarEvent, Feed
from tradingbot.execution.budget import Budget
from tradingbot.execution.fills import FillConfig
from tradingbot.execution.model import OrderCancelled, OrderIntent, OrderRejected, PositionClosed, PositionOpened
from tradingbot.execution.portfolio import Portfolio, compute_reward
from tradingbot.execution.reconcile import Reconciler
from tradingbot.execution.enums import Reason
from tradingbot.execution.risk import AssetRules, RiskConfig, position_size
from tradingbot.execution.router import BookContext, Router
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.execution.sltp import SLTPManager
from tradingbot.execution.store import OrderStore
from tradingbot.jsonlog import JsonLines, log_event
from tradingbot.runtime.audit import AuditLog
from tradingbot.runtime.controller import Controller
from tradingbot.runtime.session import PaperSession
from tradingbot.runtime.state import StateError, load_state
from tradingbot.strategies.base import Decision, Strategy, make_strategy

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Per-symbol state
# `Window` keeps the last bars of a symbol as contiguous arrays (what `Strategy.latest` and TA-Lib take),
# amortising the shift: it holds twice the window and moves the newer half down when full. The window is
# long enough (600 bars by default) for the Wilder-smoothed indicators of the rule strategies to equal
# their full-history values; `strategies.rules` tests that.

# %%
#| export
_FIELDS = ("open", "high", "low", "close", "volume")


class Window:
    "The last `size` bars of one symbol as float64 arrays."

    def __init__(self, size: int = 600):
        if size < 2:
            raise ValueError(f"window size must be >= 2 bars, got {size}")
        self.size, self.n = size, 0
        self.data = np.empty((5, 2 * size))

    def push(self, bar: BarEvent) -> None:
        "Append a closed bar."
        if self.n == self.data.shape[1]:
            self.data[:, :self.size] = self.data[:, self.size:]
            self.n = self.size
        self.data[:, self.n] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self.n += 1

    def arrays(self) -> dict[str, np.ndarray]:
        "The window's columns (views, oldest first)."
        lo = max(0, self.n - self.size)
        return {name: self.data[k, lo:self.n] for k, name in enumerate(_FIELDS)}


# %%
_w = Window(3)
for _k in range(8):
    _w.push(BarEvent("X", "1h", pd.Timestamp(0), pd.Timestamp(0), _k, _k + 1, _k - 1, _k + 0.5, 1.0, _k))
test_eq(_w.arrays()["open"].tolist(), [5.0, 6.0, 7.0])
assert _w.arrays()["close"].flags["C_CONTIGUOUS"]


# %%
#| export
@dataclass
class SymbolBook:
    "What the engine remembers about one symbol between bars."
    asset: str
    symbol: str
    index: int = -1  # bars of this symbol processed (the last one's position)
    owner: str | None = None  # strategy whose entry opened the position (or is working)
    entry_bar: int = -1  # bar index of the fill that opened the position
    cooldown_end: int = -1  # no entry decided on bars <= this (the bar a protective exit fired)
    pending_entry: str | None = None  # client order id of a working entry
    pending_side: int = 0  # its direction: +1 long, -1 short
    pending_exit: str | None = None  # client order id of a working exit
    time_stop: int = 0  # the owner's time stop in bars (0: none)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class AssetSetup:
    "One asset as the engine runs it."
    asset: str
    symbols: list[str]
    strategies: list[Strategy]
    fill: FillConfig
    rules: AssetRules  # lot step, minimum notional, stop band, shorting, leverage


def asset_setup(asset: str,  # an asset class of assets.json
                strategies: list[str] | None = None,  # strategy ids (default: the asset's configured ones)
                ) -> AssetSetup:
    "An asset's symbols, strategies, fill model and order rules from the configuration."
    spec = get_key(f"assets.{asset}")
    if spec is None:
        raise ValueError(f"unknown asset {asset!r}; see config/assets.json")
    ids = spec["strategies"] if strategies is None else strategies
    return AssetSetup(asset, list(spec["symbols"]), [make_strategy(s) for s in ids], FillConfig.for_asset(asset),
                      AssetRules.for_asset(asset))


# %% [markdown]
# ## The engine

# %%
#| export
class StateInUse(StateError):
    "Another process runs an engine on this state directory."


def lock_state_dir(state_dir: Path) -> IO:
    """Lock `state_dir` for this process (a POSIX record lock: the OS drops it when the process ends, `kill -9`
    included); two runners on one directory would each send the other's orders again."""
    state_dir.mkdir(parents=True, exist_ok=True)
    f = open(state_dir / "engine.lock", "a+")
    try:
        fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "?"
        f.close()
        raise StateInUse(f"{state_dir} is in use by another runner (pid {holder}): stop it first, "
                         "or use another state directory") from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


class Engine:
    "Feed → client → portfolio → strategies → router, with checkpoints; one per state directory."

    def __init__(self, setups: list[AssetSetup],
                 state_dir: str | Path,  # holds tradingbot.sqlite and runtime.json
                 logs_dir: str | Path,  # trades/, decisions/, errors/ go under it
                 window: int = 600, checkpoint_bars: int = 1000, checkpoint_seconds: float = 1.0,
                 audit: AuditLog | None = None):
        self.setups, self.audit = {s.asset: s for s in setups}, audit
        self.asset_of = {sym: s.asset for s in setups for sym in s.symbols}
        self.state_dir, self.window = Path(state_dir), window
        self.checkpoint_bars, self.checkpoint_seconds = checkpoint_bars, checkpoint_seconds
        self._lock, self.store, self.cursor = lock_state_dir(self.state_dir), None, -1
        try:  # a damaged or foreign state dir raises here; nothing stays open or locked after it
            self.store = OrderStore(self.state_dir / "tradingbot.sqlite")
            self.controller = Controller(load_state(self.state_dir / "runtime.json"), self.state_dir / "runtime.json",
                                         audit=audit)
            self._restore()
        except Exception:
            if self.store is not None:
                self.store.close()
            self._lock.close()
            raise
        self.risk = RiskConfig.from_config()
        self._logs = {"errors": JsonLines(Path(logs_dir) / "errors", "errors")}
        for a in self.setups:
            self._logs[a, "trades"] = JsonLines(Path(logs_dir) / "trades", f"{a}_trades")
            self._logs[a, "decisions"] = JsonLines(Path(logs_dir) / "decisions", f"{a}_decisions")
        self._pending_logs: list[tuple] = []
        self.windows = {sym: Window(window) for sym in self.asset_of}
        self.latencies, self.stopping = None, False
        self._since_checkpoint, self._last_checkpoint, self._last_state_save = 0, time.monotonic(), 0.0
        self.router = Router(self.store, self.clients, controller=self.controller, risk=self.risk,
                             budget=self.budget, audit=audit)
        self.sltp = {a: SLTPManager(c) for a, c in self.clients.items()}
        self.reconciler = Reconciler(self.controller.state, on_change=lambda state: self.controller.save())


# %% [markdown]
# ### Restore and checkpoint

# %%
#| export
class StateMismatch(StateError):
    "The state directory holds the books of other assets or symbols than the engine is given."


def _check_same_books(self: Engine, snap: dict) -> None:
    "Refuse to resume books of a different set of assets or symbols: their positions would silently vanish."
    held = {sym: d["asset"] for sym, d in snap["books"].items()}
    if set(snap["clients"]) == set(self.setups) and held == self.asset_of:
        return
    describe = lambda m: "; ".join(f"{a}: {' '.join(sorted(s for s, x in m.items() if x == a))}"  # noqa: E731
                                   for a in sorted(set(m.values())))
    raise StateMismatch(f"{self.state_dir} holds the books of {describe(held)}, but the engine is given "
                        f"{describe(self.asset_of)}. Resuming would drop open positions and the replay position: "
                        "use another state directory, or the configuration that wrote this one")


def _restore(self: Engine) -> None:
    "Rebuild the books from the last checkpoint, or start every asset's paper session afresh."
    snap = self.store.load_snapshot("engine")
    if snap is None:
        self.sessions = {a: PaperSession.start(a) for a in self.setups}
        self.clients = {a: SimulatedClient(a, s.fill, cash=self.sessions[a].equity, shorting=s.rules.shorting)
                        for a, s in self.setups.items()}
        self.portfolios = {a: Portfolio(a, self.sessions[a].equity) for a in self.setups}
        self.budget = Budget.from_config()
        self.books = {sym: SymbolBook(a, sym) for sym, a in self.asset_of.items()}
        self.daily_loss: dict[str, list] = {a: ["", 0.0] for a in self.setups}
        return
    self._check_same_books(snap)
    self.cursor = snap["cursor"]
    self.sessions = {a: PaperSession.from_dict(d) for a, d in snap["sessions"].items()}
    self.clients = {a: SimulatedClient.restore(d, self.setups[a].fill) for a, d in snap["clients"].items()}
    self.portfolios = {a: Portfolio.from_dict(d) for a, d in snap["portfolios"].items()}
    self.budget = Budget.from_dict(snap["budget"])
    self.books = {sym: SymbolBook(**d) for sym, d in snap["books"].items()}
    self.daily_loss = snap["daily_loss"]
    log_event("engine_restored", cursor=self.cursor, assets=list(self.setups))


def checkpoint(self: Engine, force_state: bool = False) -> None:
    "Commit the engine's state in one SQLite row, then write the logs it covers, then (throttled) runtime.json."
    doc = {"cursor": self.cursor, "sessions": {a: s.to_dict() for a, s in self.sessions.items()},
           "clients": {a: c.snapshot() for a, c in self.clients.items()},
           "portfolios": {a: p.to_dict() for a, p in self.portfolios.items()},
           "budget": self.budget.to_dict(), "books": {s: b.to_dict() for s, b in self.books.items()},
           "daily_loss": self.daily_loss}
    self.store.save_snapshot("engine", doc)
    for log, event, fields in self._pending_logs:
        log.write(event, **fields)
    self._pending_logs.clear()
    self._since_checkpoint, self._last_checkpoint = 0, time.monotonic()
    if force_state or self._last_checkpoint - self._last_state_save >= 2.0:
        state = self.controller.state
        state.replay_cursor = {"replay": self.cursor}
        state.sessions = {a: s.to_dict() for a, s in self.sessions.items()}
        self.controller.save()
        self._last_state_save = self._last_checkpoint


def warm_up(self: Engine, history: list[BarEvent]) -> None:
    "Refill the strategy windows with the bars before the cursor (a restart's replay, or a live feed's history)."
    for bar in history:
        if bar.symbol in self.windows:
            self.windows[bar.symbol].push(bar)


Engine._check_same_books = _check_same_books
Engine._restore, Engine.checkpoint, Engine.warm_up = _restore, checkpoint, warm_up


# %% [markdown]
# ### Start: the restart rules
# Seed 003's startup sequence after the configuration and runtime.json: reconcile the venue's positions with
# ours (a mismatch flags `broker_desync` and halts entries for that asset), make sure every open position
# is protected, and settle orders whose outcome a crash left unknown.

# %%
#| export
def start(self: Engine) -> None:
    "Controller start, reconciliation, protection re-sync and unknown orders settled."
    self.controller.start()
    for asset, client in self.clients.items():
        pf = self.portfolios[asset]
        local = {p["symbol"]: p["qty"] for p in pf.open_positions()}
        self.reconciler.check(asset, local, client)
        expected = {p["symbol"]: (p["sl"], p["tp"]) for p in pf.open_positions()}
        self.sltp[asset].sync(expected)
        self.router.resolve(asset)


Engine.start = start


# %% [markdown]
# ### One bar

# %%
#| export
def _mode(self: Engine, asset: str) -> str:
    return "live" if self.controller.is_live(asset) else "paper"


def _log(self: Engine, asset: str | None, kind: str, event: str, /, **fields) -> None:
    "Queue a log record; it is written once the checkpoint covering it commits (no duplicates after a crash)."
    self._pending_logs.append((self._logs[kind] if asset is None else self._logs[asset, kind], event, fields))


def process(self: Engine, bar: BarEvent) -> None:
    "Everything one closed bar causes; the unit a checkpoint covers."
    asset = self.asset_of.get(bar.symbol)
    if asset is None:
        return
    started = time.perf_counter()
    book, client = self.books[bar.symbol], self.clients[asset]
    book.index += 1
    self.windows[bar.symbol].push(bar)
    client.on_bar(bar)
    events = client.poll()
    for event in events:
        self._on_venue_event(asset, book, event, bar)
    self.portfolios[asset].mark(bar.symbol, bar.close)
    routed = self._decide(asset, book, bar)
    self.cursor = bar.seq
    self._since_checkpoint += 1
    if self.latencies is not None:
        self.latencies.append(time.perf_counter() - started)
    if (events or routed or self._since_checkpoint >= self.checkpoint_bars
            or time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds):
        self.checkpoint()
    if self.controller.recap_due():
        self.controller.recap({a: p.valuation() for a, p in self.portfolios.items()})


Engine._mode, Engine._log, Engine.process = _mode, _log, process


# %% [markdown]
# ### What the venue reported

# %%
#| export
def _on_venue_event(self: Engine, asset: str, book: SymbolBook, event, bar: BarEvent) -> None:
    "Book a fill or a funding payment, or settle a cancelled or rejected order."
    if isinstance(event, FundingPayment):  # the venue moved wallet money; the trade's P&L carries it at the close
        self.portfolios[asset].on_funding(event.symbol, event.amount)
        return
    if isinstance(event, (OrderCancelled, OrderRejected)):
        self._settle(asset, book, event.client_order_id, "cancelled" if isinstance(event, OrderCancelled) else "rejected")
        if isinstance(event, OrderRejected):
            self._log(None, "errors", "order_rejected", asset=asset, symbol=book.symbol, txid=event.client_order_id,
                      reason=event.reason, bar_ts=bar.close_time.isoformat())
        return
    fill, pf = event.fill, self.portfolios[asset]
    self.store.add_fill(fill)  # a fill re-reported after a restart is stored once
    for change in pf.on_fill(fill, reason=event.reason, strategy_id=book.owner, mode=self._mode(asset)):
        if isinstance(change, PositionOpened):
            self._opened(asset, book, change, bar)
        elif isinstance(change, PositionClosed):
            self._closed(asset, book, change, event.reason, bar)
    status = self.clients[asset].lookup(fill.client_order_id)
    if status in ("filled", "cancelled", "rejected"):
        self._settle(asset, book, fill.client_order_id, status)


def _settle(self: Engine, asset: str, book: SymbolBook, cid: str, status: str) -> None:
    "An order is done: its status in SQLite, its budget reservation freed, the book's pending slot cleared."
    order = self.store.get_order(cid)
    if order is not None:
        self.router._release(self.store.update_order_status(cid, status))
    if book.pending_entry == cid:
        book.pending_entry, book.pending_side = None, 0
        if status != "filled" and self.portfolios[asset].position(book.symbol) is None:
            book.owner = None
    if book.pending_exit == cid:
        book.pending_exit = None


def _opened(self: Engine, asset: str, book: SymbolBook, event: PositionOpened, bar: BarEvent) -> None:
    "A position opened: its protection confirmed at the venue, the trade logged."
    pos = event.position
    book.entry_bar = book.index
    sl, tp = self.clients[asset].protection(book.symbol)
    self.portfolios[asset].set_levels(book.symbol, sl, tp)
    self.store.append_event(event)
    self._log(asset, "trades", "position_opened", bar_ts=bar.close_time.isoformat(), asset=asset,
              symbol=book.symbol, side="buy" if pos.qty > 0 else "sell", notional=abs(pos.qty) * pos.entry,
              price=pos.entry, sl=sl, tp=tp, fees=None, pnl_u=0.0, pnl_r=0.0, points=0.0, mode=pos.mode,
              txid=pos.id, strategy=book.owner)


def _closed(self: Engine, asset: str, book: SymbolBook, event: PositionClosed, reason: str, bar: BarEvent) -> None:
    "A trade closed: session, reward points, auto-kill count, budget, cooldown, log."
    pf, session, trade = self.portfolios[asset], self.sessions[asset], self.portfolios[asset].last_trade
    pnl, before = event.pnl_realized, session.topped_up_usd
    if session.apply_pnl(pnl):  # a top-up: the venue and the book receive the same money
        added = session.topped_up_usd - before
        self.clients[asset].deposit(added)
        pf.deposit(added)
        self.budget.apply_pnl(asset, added)
    reward = compute_reward({"pnl": pnl, "notional": trade["qty"] * trade["entry_price"], "fees": trade["fees"],
                             "exit_reason": reason, "drawdown_pct": pf.drawdown_pct})
    session.add_reward(reward["points"])
    self.controller.record_trade_result(asset, self._mode(asset) == "live", pnl)
    self.budget.apply_pnl(asset, pnl)
    day = bar.close_time.strftime("%Y-%m-%d")
    if self.daily_loss[asset][0] != day:
        self.daily_loss[asset] = [day, 0.0]
    self.daily_loss[asset][1] -= pnl
    if Reason.parse(reason).protective:  # no new entry decided on this bar (the backtester's cooldown)
        book.cooldown_end = book.index
    self.store.append_event(event)
    self._log(asset, "trades", "position_closed", bar_ts=bar.close_time.isoformat(), asset=asset,
              symbol=book.symbol, side="sell" if trade["direction"] == "long" else "buy",
              notional=trade["qty"] * trade["exit_price"], price=event.exit_price, sl=None, tp=None,
              fees=trade["fees"], pnl_u=0.0, pnl_r=pnl, points=reward["points"], mode=self._mode(asset),
              txid=event.position_id, exit_reason=reason, strategy=trade.get("strategy_id"))
    if book.pending_entry is None:  # an entry decided with this exit (a time stop's re-entry) keeps its settings
        book.owner, book.time_stop = None, 0


Engine._on_venue_event, Engine._settle, Engine._opened, Engine._closed = _on_venue_event, _settle, _opened, _closed


# %% [markdown]
# ### Deciding at the close
# The backtester's `_decide_nb`, per symbol, on each strategy's four signals: a time stop due queues an
# exit; an entry and an exit of one direction on one bar cancel, as do a long and a short entry; no entry
# on a bar a stop fired. While the symbol holds (or is about to hold) a position, its owner's signals
# rule it: an exit of that side, or an entry of the other, closes it (and cancels a working entry). When
# the symbol is heading flat, the owner's entry — a reversal — and then the other strategies', in
# configuration order, may open the next position.

# %%
#| export
def _signals(d: Decision, cooling: bool) -> tuple[bool, bool, bool, bool]:
    "A decision's (long entry, long exit, short entry, short exit) after the backtester's cancellation rules."
    le, lx, se, sx = d.long_entry, d.long_exit, d.short_entry, d.short_exit
    if le and lx:
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:
        le = se = False
    if cooling or not d.warm:
        le = se = False
    return le, lx, se, sx


def _decide(self: Engine, asset: str, book: SymbolBook, bar: BarEvent) -> bool:
    "The strategies' decisions at `bar`'s close, routed; True if an order was placed or cancelled."
    pos = self.portfolios[asset].position(book.symbol)
    qty = pos.qty if pos is not None else 0.0
    arrays = self.windows[book.symbol].arrays()
    decisions = [(s, s.latest(arrays)) for s in self.setups[asset].strategies]
    acted, cooling = False, book.index <= book.cooldown_end
    if qty != 0.0 and book.time_stop > 0 and book.index - book.entry_bar >= book.time_stop and not book.pending_exit:
        acted |= self._exit(asset, book, bar, qty, Reason.TIME_STOP)
    target = book.pending_side if book.pending_entry else 0 if book.pending_exit else (1 if qty > 0 else -1 if qty < 0 else 0)
    owned = [(s, d) for s, d in decisions if s.strategy_id == book.owner]
    if owned and target != 0:
        le, lx, se, sx = _signals(owned[0][1], cooling)
        if (target > 0 and (lx or se)) or (target < 0 and (sx or le)):
            if book.pending_entry:
                acted |= self.router.cancel(asset, book.pending_entry)
                self._settle(asset, book, book.pending_entry, "cancelled")
            if qty != 0.0 and not book.pending_exit:
                acted |= self._exit(asset, book, bar, qty, Reason.SIGNAL)
            target = 0
    if target == 0:
        for strategy, d in owned + [(s, d) for s, d in decisions if s.strategy_id != book.owner]:
            le, _, se, _ = _signals(d, cooling)
            if le or se:
                acted |= self._enter(asset, book, bar, strategy, d, 1 if le else -1)
                break
    return acted


def _exit(self: Engine, asset: str, book: SymbolBook, bar: BarEvent, qty: float, reason: Reason) -> bool:
    "Route a reduce-only market order closing the position (an exit carries no stop)."
    intent = OrderIntent(asset, book.symbol, "sell" if qty > 0 else "buy", sl_pct=None,
                         strategy_id=book.owner or "exit", qty=abs(qty), meta={"reason": reason.value})
    result = self.router.place(intent, decision_ts=bar.close_time, ctx=self._context(asset, bar), sequence=0,
                               reduce_only=True)
    self._log_decision(asset, book, bar, intent, result, reason.value)
    if result.ok:
        book.pending_exit = result.order.client_order_id
    return result.order is not None


def _enter(self: Engine, asset: str, book: SymbolBook, bar: BarEvent, strategy: Strategy, d: Decision,
           side: int) -> bool:
    "Size an entry by the risk rules and route it; a refusal is logged with its reason."
    pf, price, dist = self.portfolios[asset], bar.close, d.stop_distance
    if not (math.isfinite(dist) and dist > 0):
        self._log(asset, "decisions", "intent_refused", bar_ts=bar.close_time.isoformat(), asset=asset,
                  symbol=book.symbol, strategy=strategy.strategy_id, reason=f"no stop distance ({dist!r})")
        return False
    rules = self.setups[asset].rules
    notional = position_size(pf.equity, pf.drawdown_pct, d.score, dist, price, self.risk, rules.leverage)
    intent = OrderIntent(asset, book.symbol, "buy" if side > 0 else "sell", sl_pct=None,
                         strategy_id=strategy.strategy_id, notional=max(notional, 1e-9), score=d.score,
                         sl_distance=dist)
    result = self.router.place(intent, decision_ts=bar.close_time, ctx=self._context(asset, bar), sequence=1)
    self._log_decision(asset, book, bar, intent, result, "signal")
    if result.ok:
        book.pending_entry, book.pending_side, book.owner = result.order.client_order_id, side, strategy.strategy_id
        book.time_stop = d.time_stop_bars
    return result.order is not None


def _context(self: Engine, asset: str, bar: BarEvent) -> BookContext:
    "The asset's book as the router's checks see it at this close."
    pf, setup = self.portfolios[asset], self.setups[asset]
    day, lost = self.daily_loss[asset]
    return BookContext(equity=pf.equity, price=bar.close, open_positions=pf.open_positions(),
                       daily_realised_loss=lost if day == bar.close_time.strftime("%Y-%m-%d") else 0.0,
                       qty_step=setup.rules.qty_step, min_notional=setup.rules.min_notional,
                       leverage=setup.rules.leverage)


def _log_decision(self: Engine, asset, book, bar, intent, result, why) -> None:
    self._log(asset, "decisions", "intent_routed" if result.ok else "intent_refused",
              bar_ts=bar.close_time.isoformat(), asset=asset, symbol=book.symbol, side=intent.side,
              notional=intent.notional, qty=result.order.intent.qty if result.order else intent.qty,
              price=bar.close, sl_distance=intent.sl_distance, score=intent.score, strategy=intent.strategy_id, why=why,
              ok=result.ok, stage=result.stage, reason=result.reason, mode=self._mode(asset),
              txid=result.order.client_order_id if result.order else None)


Engine._decide, Engine._exit, Engine._enter, Engine._context = _decide, _exit, _enter, _context
Engine._log_decision = _log_decision


# %% [markdown]
# ### Running, stopping, the summary
# `run` drives a feed until it ends or `request_stop()` (the runner's SIGINT/SIGTERM handler) ends it; then
# the stop mode is applied — `keep_open` leaves positions to their stops and to the next run, `close_all`
# closes every position now (reduce-only, at the last close in paper) — and a final checkpoint is written.

# %%
#| export
async def run(self: Engine, feed: Feed) -> dict:
    "Process the feed's bars; the summary when it ends or a stop is requested."
    self._feed = feed
    async for bar in feed.bars():
        self.process(bar)
        if self.stopping:
            break
    return self.finish()


def request_stop(self: Engine, mode: str = "keep_open") -> None:
    "Stop taking decisions after the bar in hand (safe from a signal handler)."
    self.controller.stop(mode)
    self.stopping = True
    if getattr(self, "_feed", None) is not None:
        self._feed.stop()


def close_all(self: Engine) -> None:
    "Close every open position now: reduce-only market orders, filled at the last close in paper."
    for asset, pf in self.portfolios.items():
        for p in pf.open_positions():
            book = self.books[p["symbol"]]
            intent = OrderIntent(asset, p["symbol"], "sell" if p["qty"] > 0 else "buy", sl_pct=None,
                                 strategy_id="stop", qty=abs(p["qty"]), meta={"immediate": True, "reason": "close_all"})
            ts = pd.Timestamp.now(tz="UTC")
            self.router.place(intent, decision_ts=ts, ctx=self._context(asset, _last_bar(self, p["symbol"])),
                              reduce_only=True)
            for event in self.clients[asset].poll():
                self._on_venue_event(asset, book, event, _last_bar(self, p["symbol"]))


def _last_bar(self: Engine, symbol: str) -> BarEvent:
    a = self.windows[symbol].arrays()
    now = pd.Timestamp.now(tz="UTC")
    return BarEvent(symbol, "", now, now, *(float(a[k][-1]) for k in _FIELDS), self.cursor)


def finish(self: Engine) -> dict:
    "Apply the stop mode, write the final checkpoint and runtime.json, close the store; the summary."
    if getattr(self.controller, "stop_mode", "keep_open") == "close_all":
        self.close_all()
    self.checkpoint(force_state=True)
    summary = self.summary()
    log_event("engine_stopped", cursor=self.cursor, summary=summary)
    if self.audit is not None:
        self.audit.append("engine_stopped", cursor=self.cursor, summary=summary)
    self.store.close()
    self._lock.close()  # releases the directory
    return summary


def summary(self: Engine) -> dict:
    "Per asset: trades, fees, realised and unrealised P&L, equity, reward points, epoch."
    out = {}
    for asset, pf in self.portfolios.items():
        v, s = pf.valuation(), self.sessions[asset]
        out[asset] = {"trades": v["trades"], "wins": v["wins"], "fees": v["fees"], "pnl_r": v["pnl_r"],
                      "pnl_u": v["pnl_u"], "equity": v["equity"], "points": s.reward_points, "epoch": s.epoch,
                      "open": [p["symbol"] for p in pf.open_positions()]}
    return {"cursor": self.cursor, "assets": out}


Engine.run, Engine.request_stop, Engine.close_all, Engine.finish, Engine.summary = run, request_stop, close_all, finish, summary

# %% [markdown]
# ## Example: a short replay
# Three months of hourly BTC through RSI-2 in paper; the fills land in SQLite, the trades in the logs.

# %%
from tradingbot.data.feeds import ReplayFeed
from tradingbot.data.samples import load_sample

_tmp = Path(tempfile.mkdtemp())
btc = load_sample("btcusd_1h").iloc[:2500]
engine = Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state", _tmp / "logs")
engine.start()
result = await engine.run(ReplayFeed({"BTCUSDT": btc}, "1h"))
test_eq(result["cursor"], len(btc) - 1)
spot = result["assets"]["crypto_spot"]
assert spot["trades"] > 5, spot
with OrderStore(_tmp / "state" / "tradingbot.sqlite") as _s:
    test_eq(_s.load_snapshot("engine")["cursor"], len(btc) - 1)
    test_eq(_s.integrity_check(), "ok")
spot

# %% [markdown]
# `close_all` (the stop mode "close all now") closes what is open at the last close, reduce-only, and a
# resumed engine comes back flat:

# %%
engine = Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state2", _tmp / "logs")
engine.start()
_bars = list(ReplayFeed({"BTCUSDT": btc}, "1h").iter_bars())
_k = 0
while engine.portfolios["crypto_spot"].position("BTCUSDT") is None:
    engine.process(_bars[_k])
    _k += 1
engine.request_stop("close_all")
_closed = engine.finish()
test_eq(_closed["assets"]["crypto_spot"]["open"], [])
test_eq(Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state2", _tmp / "logs").portfolios["crypto_spot"]
        .open_positions(), [])

# %% [markdown]
# A state directory resumes only the books it holds: given other assets or other symbols (a changed
# configuration), the engine refuses, rather than start afresh and drop the open positions it holds.

# %%
test_fail(lambda: Engine([asset_setup("crypto_spot", ["rsi2"]), asset_setup("forex", ["rsi2"])], _tmp / "state2",
                         _tmp / "logs"), contains="holds the books of crypto_spot: BTCUSDT, but the engine is given "
                                                  "crypto_spot: BTCUSDT; forex: EURUSD")
_two = asset_setup("crypto_spot", ["rsi2"])
_two.symbols = ["BTCUSDT", "ETHUSDT"]
test_fail(lambda: Engine([_two], _tmp / "state2", _tmp / "logs"), contains="given crypto_spot: BTCUSDT ETHUSDT")
test_eq(Engine([asset_setup("crypto_spot", ["ibs"])], _tmp / "state2", _tmp / "logs").cursor >= 0, True)  # strategies may change

# %% [markdown]
# One engine per state directory: a second process is refused while the first runs (the lock goes with the
# process, so a `kill -9` frees it).

# %%
import subprocess, sys
_held = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                          "from tradingbot.runtime.engine import lock_state_dir; "
                          "f = lock_state_dir(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
                          str(_tmp / "state3")], stdout=subprocess.PIPE, text=True)
test_eq(_held.stdout.readline().strip(), "locked")
test_fail(lambda: Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state3", _tmp / "logs"),
          contains=f"is in use by another runner (pid {_held.pid})")
_held.kill()
_held.wait()
test_eq(Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state3", _tmp / "logs").cursor, -1)
