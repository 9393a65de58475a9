# %% [markdown]
# # Engine
#
# > The loop that runs the bot: each closed bar goes to every book of its asset — the paper book always, the live book beside it when the asset is live — then the strategies decide once and each book routes its own orders through the one gate; a checkpoint in SQLite makes a crash at any instant resumable from the last bar fully processed.

# %%
#| default_exp runtime.engine

# %% [markdown]
# One bar, in the order the backtester's numba loop uses, so a paper replay and a backtest fill alike:
#
# 1. **the venues move** — `client.on_bar(bar)` of each book: orders decided at earlier closes meet this
#    bar's open, protective stops are checked along its path (a real venue moves on its own);
# 2. **fills are booked** — each into SQLite (unique `exec_id`) and the book's portfolio; a closed trade pays
#    the paper session, earns reward points, feeds the live auto-kill count and the budget;
# 3. **the bar is marked**, the strategies **decide once at its close** (`Strategy.latest` on a window of the
#    symbol's bars), and **each book** turns the decisions into orders through the router — exits first,
#    then entries, with the backtester's rules, sized on that book's own equity. The paper book answers to
#    no kill switch; the live book is close-only whenever a switch says so;
# 4. **checkpoint** — after any bar that did something, and every `checkpoint_bars` bars or
#    `checkpoint_seconds` otherwise: one SQLite row holds the replay cursor, every book (paper venue,
#    portfolio, session, symbols), and the budgets. Logs of the bar are written after the checkpoint commits.
#
# After a crash, the engine restores the last checkpoint and replays from the bar after its cursor. Quiet
# bars re-process to the same state; a bar that was cut short re-decides the same orders under the same
# client order ids, which the router finds in SQLite and — the restored paper venue never saw them — sends
# again under those ids, after the same checks; their fills come back with the same `exec_id`s, which
# SQLite stores once (tested with SIGKILL in `tests/test_crash_resume.py`).
#
# Several strategies may trade one symbol; the first (in `assets.json` order) whose entry fires while the
# book is flat **owns** that book's position, and only its signals and time stop close it.

# %%
#| export
from __future__ import annotations

import asyncio
import fcntl
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import pandas as pd

from tradingbot.brokers.base import ExecutionClient, FundingPayment
from tradingbot.config import get_key
from tradingbot.data.feeds import BarEvent, Feed
from tradingbot.execution._nb import signal_rules_nb
from tradingbot.execution.budget import Budget
from tradingbot.execution.enums import Reason
from tradingbot.execution.model import OrderCancelled, OrderIntent, OrderRejected, PositionClosed, PositionOpened
from tradingbot.execution.portfolio import compute_reward
from tradingbot.execution.reconcile import Reconciler
from tradingbot.execution.risk import RiskConfig, position_size
from tradingbot.execution.router import BookContext, Router
from tradingbot.execution.simulated import SimulatedClient
from tradingbot.execution.store import OrderStore
from tradingbot.jsonlog import JsonLines, log_event
from tradingbot.runtime.audit import AuditLog
from tradingbot.runtime.books import AssetSetup, Book, Window, asset_setup, new_book  # noqa: F401 - asset_setup
from tradingbot.runtime.controller import Controller
from tradingbot.runtime.state import StateError, load_state
from tradingbot.strategies.base import Decision, Strategy

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## The engine
# One per state directory (a POSIX lock the OS frees on `kill -9`). `live_clients` maps an asset to a
# factory of its live venue client: without one the asset cannot go live (the controller refuses), and a
# checkpoint holding a live book of an asset without one is refused rather than left unmanaged.

# %%
#| export
class StateInUse(StateError):
    "Another process runs an engine on this state directory."


class StateMismatch(StateError):
    "The state directory holds the books of other assets or symbols than the engine is given."


def lock_state_dir(state_dir: Path,  # the state directory
                   ) -> IO:  # the open lock file (closing it releases the lock)
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


_VERSION = 2  # the checkpoint's layout: books by 'asset/mode'


class Engine:
    "Feed → venues → portfolios → strategies → router, per book, with checkpoints; one per state directory."

    def __init__(self, setups: list[AssetSetup],  # the assets to run
                 state_dir: str | Path,  # holds tradingbot.sqlite and runtime.json
                 logs_dir: str | Path,  # trades/, decisions/, errors/ go under it
                 window: int = 600,  # bars each strategy decides on
                 checkpoint_bars: int = 1000,  # checkpoint at least every this many bars ...
                 checkpoint_seconds: float = 1.0,  # ... or this many seconds
                 audit: AuditLog | None = None,  # the hash-chained audit log
                 live_clients: Mapping[str, Callable[[], ExecutionClient]] | None = None,  # asset -> live venue client
                 ):
        self.setups, self.audit = {s.asset: s for s in setups}, audit
        self.live_clients = dict(live_clients or {})
        self.asset_of = {sym: s.asset for s in setups for sym in s.symbols}
        self.state_dir, self.window = Path(state_dir), window
        self.checkpoint_bars, self.checkpoint_seconds = checkpoint_bars, checkpoint_seconds
        self._lock, self.store, self.cursor = lock_state_dir(self.state_dir), None, -1
        try:  # a damaged or foreign state dir raises here; nothing stays open or locked after it
            self.store = OrderStore(self.state_dir / "tradingbot.sqlite")
            self.controller = Controller(load_state(self.state_dir / "runtime.json"), self.state_dir / "runtime.json",
                                         audit=audit, live_venue=lambda asset: asset in self.live_clients)
            self.risk = RiskConfig.from_config()
            self.router = Router(self.store, {}, controller=self.controller, risk=self.risk, audit=audit)
            self._restore()
        except Exception:
            if self.store is not None:
                self.store.close()
            self._lock.close()
            raise
        self._logs = {"errors": JsonLines(Path(logs_dir) / "errors", "errors")}
        for a in self.setups:
            self._logs[a, "trades"] = JsonLines(Path(logs_dir) / "trades", f"{a}_trades")
            self._logs[a, "decisions"] = JsonLines(Path(logs_dir) / "decisions", f"{a}_decisions")
        self._pending_logs: list[tuple] = []
        self.windows = {sym: Window(window) for sym in self.asset_of}
        self.latencies, self.stopping = None, False
        self._since_checkpoint, self._last_checkpoint, self._last_state_save = 0, time.monotonic(), 0.0
        self.reconciler = Reconciler(self.controller.state, on_change=lambda state: self.controller.save())

    # -- books ----------------------------------------------------------------------------------------
    def book(self, asset: str,  # the asset
             mode: str = "paper",  # its book
             ) -> Book | None:
        "The asset's book in `mode` (None: it has none)."
        return self.books.get((asset, mode))

    @property
    def portfolios(self) -> dict:
        "The paper books' portfolios, by asset."
        return {a: b.portfolio for (a, m), b in self.books.items() if m == "paper"}

    @property
    def clients(self) -> dict:
        "The paper venues, by asset."
        return {a: b.client for (a, m), b in self.books.items() if m == "paper"}

    @property
    def sessions(self) -> dict:
        "The paper sessions, by asset."
        return {a: b.session for (a, m), b in self.books.items() if m == "paper"}

    def _add(self, book: Book) -> Book:
        "Put a book in service: the router reaches its venue."
        self.books[book.asset, book.mode] = book
        self.router.clients[book.asset, book.mode] = book.client
        return book

    def _sync_live_book(self, asset: str) -> None:
        "Open the live book of an asset switched live; close it once the asset left live and the book is flat."
        have = self.books.get((asset, "live"))
        if self.controller.is_live(asset) and have is None and asset in self.live_clients:
            self._add(new_book(self.setups[asset], "live", self.live_clients[asset]()))
            self._record("live_book_opened", asset=asset)
        elif have is not None and not self.controller.is_live(asset) and not have.busy():
            del self.books[asset, "live"]
            self._record("live_book_closed", asset=asset)

    def _record(self, event: str, **fields) -> None:
        log_event(event, **fields)
        if self.audit is not None:
            self.audit.append(event, **fields)

    # -- restore and checkpoint -----------------------------------------------------------------------
    def _restore(self) -> None:
        "Rebuild the books from the last checkpoint, or open every asset's paper book afresh."
        snap = self.store.load_snapshot("engine")
        self.books: dict[tuple[str, str], Book] = {}
        if snap is None:
            for setup in self.setups.values():
                self._add(new_book(setup, "paper"))
            self.budgets = {mode: Budget.from_config() for mode in ("paper", "live")}
            self.router.budgets = self.budgets
            self._open_live_books()
            return
        if snap.get("version") != _VERSION:
            raise StateError(f"{self.state_dir}: the checkpoint was written by an older engine (layout "
                             f"{snap.get('version', 1)}, this one reads {_VERSION}); use a fresh state directory")
        self._check_same_books(snap)
        self.cursor = snap["cursor"]
        for doc in snap["books"].values():
            self._add(Book.from_dict(doc, self._client_of(doc)))
        self.budgets = {m: Budget.from_dict(d) for m, d in snap["budgets"].items()}
        self.router.budgets = self.budgets
        self._open_live_books()
        log_event("engine_restored", cursor=self.cursor, books=sorted(snap["books"]))

    def _open_live_books(self) -> None:
        "A live book for every asset runtime.json says is live, also when the checkpoint predates its confirmation."
        for asset in self.setups:
            self._sync_live_book(asset)  # so that start() settles the live orders recorded before a crash

    def _client_of(self, doc: dict) -> ExecutionClient:
        "The venue of a checkpointed book: the paper venue from its snapshot, or the asset's live client."
        asset, mode = doc["asset"], doc["mode"]
        if mode == "live" and asset not in self.live_clients:
            raise StateMismatch(f"{self.state_dir} holds a live book of {asset}, but no live venue client is "
                                f"configured for it: its positions are at the venue; configure the venue")
        if doc["client"] is not None:  # the paper venue (or a paper venue standing in for a live one)
            return SimulatedClient.restore(doc["client"], self.setups[asset].fill)
        return self.live_clients[asset]()

    def _check_same_books(self, snap: dict) -> None:
        "Refuse to resume books of a different set of assets or symbols: their positions would silently vanish."
        held = {sym: d["asset"] for d in snap["books"].values() if d["mode"] == "paper" for sym in d["symbols"]}
        if held == self.asset_of:
            return
        describe = lambda m: "; ".join(f"{a}: {' '.join(sorted(s for s, x in m.items() if x == a))}"  # noqa: E731
                                       for a in sorted(set(m.values())))
        raise StateMismatch(f"{self.state_dir} holds the books of {describe(held)}, but the engine is given "
                            f"{describe(self.asset_of)}. Resuming would drop open positions and the replay position: "
                            "use another state directory, or the configuration that wrote this one")

    def checkpoint(self, force_state: bool = False,  # write runtime.json now too
                   ) -> None:
        "Commit the engine's state in one SQLite row, then write the logs it covers, then (throttled) runtime.json."
        doc = {"version": _VERSION, "cursor": self.cursor, "books": {b.key: b.to_dict() for b in self.books.values()},
               "budgets": {m: b.to_dict() for m, b in self.budgets.items()}}
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

    def warm_up(self, history: list[BarEvent],  # the bars before the cursor
                ) -> None:
        "Refill the strategy windows with the bars before the cursor (a restart's replay, or a live feed's history)."
        for bar in history:
            if bar.symbol in self.windows:
                self.windows[bar.symbol].push(bar)

    # -- start: the restart rules -------------------------------------------------------------------------
    def start(self) -> None:
        "Boot rule, reconciliation of live books, protection re-synced through the gate, unknown orders settled."
        self.controller.start()
        for book in list(self.books.values()):
            pf = book.portfolio
            if book.mode == "live":  # the paper venue is restored with the books: only a live venue can disagree
                self.reconciler.check(book.asset, {p["symbol"]: p["qty"] for p in pf.open_positions()}, book.client)
            expected = {p["symbol"]: (p["sl"], p["tp"]) for p in pf.open_positions()}
            entries = {p["symbol"]: (1 if p["qty"] > 0 else -1, p["entry"]) for p in pf.open_positions()}
            book.sltp.sync(expected, protect=lambda sym, levels, b=book: self.router.protect(
                b.asset, b.mode, sym, *entries[sym], *levels))
            # a paper book's unsent orders are re-decided by the replay; a live one's are looked up now
            statuses = ("unknown",) if book.mode == "paper" else ("unknown", "new")
            self.router.resolve(book.asset, book.mode, lambda o, b=book: self._context(b, o.intent.symbol),
                                statuses)

    # -- one bar ----------------------------------------------------------------------------------------
    def process(self, bar: BarEvent,  # a closed bar
                ) -> None:
        "Everything one closed bar causes; the unit a checkpoint covers."
        asset = self.asset_of.get(bar.symbol)
        if asset is None:
            return
        started = time.perf_counter()
        self.controller.enforce_master_switch()
        self._sync_live_book(asset)
        self.windows[bar.symbol].push(bar)
        books = [b for b in (self.books.get((asset, "paper")), self.books.get((asset, "live"))) if b is not None]
        events = False
        for book in books:
            sym = book.symbols[bar.symbol]
            sym.index += 1
            book.client.on_bar(bar)
            for event in book.client.poll():
                events = True
                self._on_venue_event(book, sym, event, bar)
            book.portfolio.mark(bar.symbol, bar.close)
        arrays = self.windows[bar.symbol].arrays()
        decisions = [(s, s.latest(arrays)) for s in self.setups[asset].strategies]
        routed = False
        for book in books:
            routed |= self._decide(book, book.symbols[bar.symbol], bar, decisions)
        self.cursor = bar.seq
        self._since_checkpoint += 1
        if self.latencies is not None:
            self.latencies.append(time.perf_counter() - started)
        if (events or routed or self._since_checkpoint >= self.checkpoint_bars
                or time.monotonic() - self._last_checkpoint >= self.checkpoint_seconds):
            self.checkpoint()
        if self.controller.recap_due():
            self.controller.recap({a: p.valuation() for a, p in self.portfolios.items()})

    def _log(self, asset: str | None, kind: str, event: str, /, **fields) -> None:
        "Queue a log record; it is written once the checkpoint covering it commits (no duplicates after a crash)."
        self._pending_logs.append((self._logs[kind] if asset is None else self._logs[asset, kind], event, fields))

    # -- what a venue reported ----------------------------------------------------------------------------
    def _on_venue_event(self, book: Book, sym, event, bar: BarEvent) -> None:
        "Book a fill or a funding payment, or settle a cancelled or rejected order."
        if isinstance(event, FundingPayment):  # the venue moved wallet money; the trade's P&L carries it at the close
            book.portfolio.on_funding(event.symbol, event.amount)
            return
        if isinstance(event, (OrderCancelled, OrderRejected)):
            rejected = isinstance(event, OrderRejected)
            self._settle(book, sym, event.client_order_id, "rejected" if rejected else "cancelled")
            if rejected:
                self._log(None, "errors", "order_rejected", asset=book.asset, mode=book.mode, symbol=sym.symbol,
                          txid=event.client_order_id, reason=event.reason, bar_ts=bar.close_time.isoformat())
            return
        fill = event.fill
        self.store.add_fill(fill)  # a fill re-reported after a restart is stored once
        for change in book.portfolio.on_fill(fill, reason=event.reason, strategy_id=sym.owner, mode=book.mode):
            if isinstance(change, PositionOpened):
                self._opened(book, sym, change, bar)
            elif isinstance(change, PositionClosed):
                self._closed(book, sym, change, event.reason, bar)
        status = book.client.lookup(fill.client_order_id)
        if status in ("filled", "cancelled", "rejected"):
            self._settle(book, sym, fill.client_order_id, status)

    def _settle(self, book: Book, sym, cid: str, status: str) -> None:
        "An order is done: its status in SQLite, its budget reservation freed, the symbol's pending slot cleared."
        if self.store.get_order(cid) is not None:
            self.router._release(self.store.update_order_status(cid, status))
        if sym.pending_entry == cid:
            sym.pending_entry, sym.pending_side = None, 0
            if status != "filled" and book.portfolio.position(sym.symbol) is None:
                sym.owner = None
        if sym.pending_exit == cid:
            sym.pending_exit = None

    def _opened(self, book: Book, sym, event: PositionOpened, bar: BarEvent) -> None:
        "A position opened: its protection confirmed at the venue, the trade logged."
        pos = event.position
        sym.entry_bar = sym.index
        sl, tp = book.client.protection(sym.symbol)
        book.portfolio.set_levels(sym.symbol, sl, tp)
        self.store.append_event(event)
        self._log(book.asset, "trades", "position_opened", bar_ts=bar.close_time.isoformat(), asset=book.asset,
                  symbol=sym.symbol, side="buy" if pos.qty > 0 else "sell", notional=abs(pos.qty) * pos.entry,
                  price=pos.entry, sl=sl, tp=tp, fees=None, pnl_u=0.0, pnl_r=0.0, points=0.0, mode=book.mode,
                  txid=pos.id, strategy=sym.owner)

    def _closed(self, book: Book, sym, event: PositionClosed, reason: str, bar: BarEvent) -> None:
        "A trade closed: reward points (in the epoch it belongs to), the session, auto-kill count, budget, cooldown, log."
        pf, trade, pnl = book.portfolio, book.portfolio.last_trade, event.pnl_realized
        reward = compute_reward({"pnl": pnl, "notional": trade["qty"] * trade["entry_price"], "fees": trade["fees"],
                                 "exit_reason": reason, "drawdown_pct": pf.drawdown_pct})
        budget = self.budgets[book.mode]
        if book.session is not None:
            book.session.add_reward(reward["points"])  # before a top-up: the emptying trade's points are the old epoch's
            before = book.session.topped_up_usd
            if book.session.apply_pnl(pnl):  # a top-up: the venue and the book receive the same money
                added = book.session.topped_up_usd - before
                book.client.deposit(added)
                pf.deposit(added)
                budget.apply_pnl(book.asset, added)
        else:
            self.controller.record_trade_result(book.asset, True, pnl)
        budget.apply_pnl(book.asset, pnl)
        book.book_loss(bar.close_time.strftime("%Y-%m-%d"), pnl)
        if Reason.parse(reason).protective:  # no new entry decided on this bar (the backtester's cooldown)
            sym.cooldown_end = sym.index
        self.store.append_event(event)
        self._log(book.asset, "trades", "position_closed", bar_ts=bar.close_time.isoformat(), asset=book.asset,
                  symbol=sym.symbol, side="sell" if trade["direction"] == "long" else "buy",
                  notional=trade["qty"] * trade["exit_price"], price=event.exit_price, sl=None, tp=None,
                  fees=trade["fees"], pnl_u=0.0, pnl_r=pnl, points=reward["points"], mode=book.mode,
                  txid=event.position_id, exit_reason=str(reason), strategy=trade.get("strategy_id"))
        if sym.pending_entry is None:  # an entry decided with this exit (a time stop's re-entry) keeps its settings
            sym.owner, sym.time_stop = None, 0

    # -- deciding at the close ----------------------------------------------------------------------------
    def _decide(self, book: Book, sym, bar: BarEvent, decisions: list[tuple[Strategy, Decision]]) -> bool:
        "The strategies' decisions at `bar`'s close, routed for one book; True if an order was placed or cancelled."
        pos = book.portfolio.position(sym.symbol)
        qty = pos.qty if pos is not None else 0.0
        acted, cooling = False, sym.index <= sym.cooldown_end
        if qty != 0.0 and sym.time_stop > 0 and sym.index - sym.entry_bar >= sym.time_stop and not sym.pending_exit:
            acted |= self._exit(book, sym, bar, qty, Reason.TIME_STOP)
        target = sym.pending_side if sym.pending_entry else 0 if sym.pending_exit else (1 if qty > 0 else -1 if qty < 0 else 0)
        owned = [(s, d) for s, d in decisions if s.strategy_id == sym.owner]
        if owned and target != 0:
            le, lx, se, sx = _signals(owned[0][1], cooling)
            if (target > 0 and (lx or se)) or (target < 0 and (sx or le)):
                if sym.pending_entry:
                    acted |= self.router.cancel(book.asset, sym.pending_entry, "replaced", book.mode)
                    self._settle(book, sym, sym.pending_entry, "cancelled")
                if qty != 0.0 and not sym.pending_exit:
                    acted |= self._exit(book, sym, bar, qty, Reason.SIGNAL)
                target = 0
        if target == 0:
            for strategy, d in owned + [(s, d) for s, d in decisions if s.strategy_id != sym.owner]:
                le, _, se, _ = _signals(d, cooling)
                if le or se:
                    acted |= self._enter(book, sym, bar, strategy, d, 1 if le else -1)
                    break
        return acted

    def _exit(self, book: Book, sym, bar: BarEvent, qty: float, reason: Reason) -> bool:
        "Route a reduce-only market order closing the position (an exit carries no stop)."
        intent = OrderIntent(book.asset, sym.symbol, "sell" if qty > 0 else "buy", sl_pct=None,
                             strategy_id=sym.owner or "exit", qty=abs(qty), meta={"reason": reason.value})
        result = self.router.place(intent, decision_ts=bar.close_time, ctx=self._context(book, sym.symbol, bar),
                                   sequence=0, reduce_only=True, mode=book.mode)
        self._log_decision(book, sym, bar, intent, result, reason.value)
        if result.ok:
            sym.pending_exit = result.order.client_order_id
        return result.order is not None

    def _enter(self, book: Book, sym, bar: BarEvent, strategy: Strategy, d: Decision, side: int) -> bool:
        "Size an entry by the risk rules on the book's equity and route it; a refusal is logged with its reason."
        pf, price, dist = book.portfolio, bar.close, d.stop_distance
        if not (math.isfinite(dist) and dist > 0):
            self._log(book.asset, "decisions", "intent_refused", bar_ts=bar.close_time.isoformat(), asset=book.asset,
                      mode=book.mode, symbol=sym.symbol, strategy=strategy.strategy_id,
                      reason=f"no stop distance ({dist!r})")
            return False
        rules = self.setups[book.asset].rules
        notional = position_size(pf.equity, pf.drawdown_pct, d.score, dist, price, self.risk, rules.leverage)
        intent = OrderIntent(book.asset, sym.symbol, "buy" if side > 0 else "sell", sl_pct=None,
                             strategy_id=strategy.strategy_id, notional=max(notional, 1e-9), score=d.score,
                             sl_distance=dist)
        result = self.router.place(intent, decision_ts=bar.close_time, ctx=self._context(book, sym.symbol, bar),
                                   sequence=1, mode=book.mode)
        self._log_decision(book, sym, bar, intent, result, "signal")
        if result.ok:
            sym.pending_entry, sym.pending_side, sym.owner = result.order.client_order_id, side, strategy.strategy_id
            sym.time_stop = d.time_stop_bars
        return result.order is not None

    def _context(self, book: Book, symbol: str, bar: BarEvent | None = None) -> BookContext:
        "The book as the router's checks see it: its own money, and the whole mode's positions for the caps."
        mode_books = [b for b in self.books.values() if b.mode == book.mode]
        positions = [{**p, "asset": b.asset} for b in mode_books for p in b.portfolio.open_positions()]
        pos = book.portfolio.position(symbol)
        price = bar.close if bar is not None else book.portfolio.prices.get(symbol, math.nan)
        day = (bar.close_time if bar is not None else pd.Timestamp.now(tz="UTC")).strftime("%Y-%m-%d")
        rules = self.setups[book.asset].rules
        return BookContext(equity=book.portfolio.equity, price=price, position=pos.qty if pos is not None else 0.0,
                           open_positions=positions, portfolio_equity=sum(b.portfolio.equity for b in mode_books),
                           daily_realised_loss=book.loss_on(day), qty_step=rules.qty_step,
                           min_notional=rules.min_notional, leverage=rules.leverage, shorting=rules.shorting,
                           returns=self._returns(symbol, positions))

    def _returns(self, symbol: str, positions: list[dict]) -> pd.DataFrame | None:
        "Recent returns of `symbol` and of every open position's symbol, for the correlation cap (None: nothing open)."
        others = [p["symbol"] for p in positions if p["symbol"] != symbol and p["symbol"] in self.windows]
        if not others:
            return None
        n = int(get_key("EXPOSURE.correlation_window"))
        series = {s: self.windows[s].returns(n) for s in dict.fromkeys([symbol, *others])}
        length = min(len(r) for r in series.values())
        return pd.DataFrame({s: r[len(r) - length:] for s, r in series.items()})

    def _log_decision(self, book: Book, sym, bar, intent, result, why) -> None:
        self._log(book.asset, "decisions", "intent_routed" if result.ok else "intent_refused",
                  bar_ts=bar.close_time.isoformat(), asset=book.asset, symbol=sym.symbol, side=intent.side,
                  notional=intent.notional, qty=result.order.intent.qty if result.order else intent.qty,
                  price=bar.close, sl_distance=intent.sl_distance, score=intent.score, strategy=intent.strategy_id,
                  why=why, ok=result.ok, stage=result.stage, reason=result.reason, mode=book.mode,
                  txid=result.order.client_order_id if result.order else None)

    # -- running, stopping, the summary -------------------------------------------------------------------
    async def run(self, feed: Feed,  # the bars
                  ) -> dict:
        "Process the feed's bars; the summary when it ends or a stop is requested."
        self._feed = feed
        async for bar in feed.bars():
            self.process(bar)
            if self.stopping:
                break
        return self.finish()

    def request_stop(self, mode: str = "keep_open",  # 'keep_open' or 'close_all'
                     ) -> None:
        "Stop taking decisions after the bar in hand (safe from a signal handler)."
        self.controller.stop(mode)
        self.stopping = True
        if getattr(self, "_feed", None) is not None:
            self._feed.stop()

    def close_all(self) -> None:
        "Close every live position now (the stop mode 'close_all'): reduce-only market orders; paper keeps its own."
        for book in [b for b in self.books.values() if b.mode == "live"]:
            for p in book.portfolio.open_positions():
                sym = book.symbols[p["symbol"]]
                intent = OrderIntent(book.asset, p["symbol"], "sell" if p["qty"] > 0 else "buy", sl_pct=None,
                                     strategy_id="stop", qty=abs(p["qty"]),
                                     meta={"immediate": True, "reason": Reason.CLOSE_ALL.value})
                last = self._last_bar(p["symbol"])
                self.router.place(intent, decision_ts=last.close_time, ctx=self._context(book, p["symbol"], last),
                                  reduce_only=True, mode="live")
                for event in book.client.poll():
                    self._on_venue_event(book, sym, event, last)

    def _last_bar(self, symbol: str) -> BarEvent:
        a = self.windows[symbol].arrays()
        now = pd.Timestamp.now(tz="UTC")
        return BarEvent(symbol, "", now, now, *(float(a[k][-1]) for k in ("open", "high", "low", "close", "volume")),
                        self.cursor)

    def finish(self) -> dict:
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

    def summary(self) -> dict:
        "Per asset: the paper book's trades, fees, P&L, equity, points and epoch; the live book's beside it."
        out = {}
        for asset in self.setups:
            paper, live = self.books[asset, "paper"], self.books.get((asset, "live"))
            out[asset] = {**_figures(paper), "points": paper.session.reward_points, "epoch": paper.session.epoch,
                          "live": _figures(live) if live is not None else None}
        return {"cursor": self.cursor, "assets": out}


def _signals(d: Decision, cooling: bool) -> tuple[bool, bool, bool, bool]:
    "A decision's (long entry, long exit, short entry, short exit) after the backtester's cancellation rules."
    return signal_rules_nb(bool(d.long_entry), bool(d.long_exit), bool(d.short_entry), bool(d.short_exit),
                           bool(cooling or not d.warm))


def _figures(book: Book) -> dict:
    "A book's trades, wins, fees, realised and unrealised P&L, equity and open symbols."
    v = book.portfolio.valuation()
    return {"trades": v["trades"], "wins": v["wins"], "fees": v["fees"], "pnl_r": v["pnl_r"], "pnl_u": v["pnl_u"],
            "equity": v["equity"], "open": [p["symbol"] for p in book.portfolio.open_positions()]}


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
assert spot["trades"] > 5 and spot["live"] is None, spot
with OrderStore(_tmp / "state" / "tradingbot.sqlite") as _s:
    test_eq(_s.load_snapshot("engine")["cursor"], len(btc) - 1)
    test_eq(_s.integrity_check(), "ok")
spot

# %% [markdown]
# ## Paper keeps running beside live
# With a live venue (here the paper venue standing in for one) and the asset confirmed live, a live book
# opens beside the paper book and trades the same decisions on its own money. The kill switch makes the
# live book close-only — it never opens again while the switch is on — and the paper book goes on as if
# nothing happened. `close_all` at the stop closes the live positions only.

# %%
from tradingbot.config import set_key  # noqa: E402
from tradingbot.execution.fills import FillConfig  # noqa: E402

_stand_in = lambda: SimulatedClient("crypto_spot", FillConfig.for_asset("crypto_spot"), cash=1000.0)  # noqa: E731
set_key("SAFETY.LIVE_TRADING_ENABLED", True)
try:
    engine = Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "live", _tmp / "logs",
                    live_clients={"crypto_spot": _stand_in})
    engine.start()
    engine.controller.state.assets["crypto_spot"].live_enabled = True  # as a confirmed enable_live leaves it
    _bars = list(ReplayFeed({"BTCUSDT": btc}, "1h").iter_bars())
    for bar in _bars[:1500]:
        engine.process(bar)
    test_eq(engine.book("crypto_spot", "live") is not None, True)
    _live_trades = engine.book("crypto_spot", "live").portfolio.trades
    engine.controller.set_asset_kill("crypto_spot", True)
    for bar in _bars[1500:]:
        engine.process(bar)
    assert engine.book("crypto_spot", "live").portfolio.trades - _live_trades <= 1  # only what was open closed
    engine.request_stop("close_all")
    _done = engine.finish()
finally:
    set_key("SAFETY.LIVE_TRADING_ENABLED", False)
test_eq((_done["assets"]["crypto_spot"]["live"]["open"], _done["assets"]["crypto_spot"]["trades"] > 5), ([], True))

# %% [markdown]
# A state directory resumes only the books it holds: given other assets or other symbols (a changed
# configuration), the engine refuses, rather than start afresh and drop the open positions it holds.

# %%
test_fail(lambda: Engine([asset_setup("crypto_spot", ["rsi2"]), asset_setup("forex", ["rsi2"])], _tmp / "state",
                         _tmp / "logs"), contains="holds the books of crypto_spot: BTCUSDT, but the engine is given "
                                                  "crypto_spot: BTCUSDT; forex: EURUSD")
_two = asset_setup("crypto_spot", ["rsi2"])
_two.symbols = ["BTCUSDT", "ETHUSDT"]
test_fail(lambda: Engine([_two], _tmp / "state", _tmp / "logs"), contains="given crypto_spot: BTCUSDT ETHUSDT")
test_eq(Engine([asset_setup("crypto_spot", ["ibs"])], _tmp / "state", _tmp / "logs").cursor >= 0, True)  # strategies may change
test_fail(lambda: Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "live", _tmp / "logs"),
          contains="holds a live book of crypto_spot, but no live venue client is configured")

# %% [markdown]
# One engine per state directory: a second process is refused while the first runs (the lock goes with the
# process, so a `kill -9` frees it).

# %%
import subprocess, sys
_held = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                          "from tradingbot.runtime.engine import lock_state_dir; "
                          "f = lock_state_dir(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()",
                          str(_tmp / "state3")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
test_eq(_held.stdout.readline().strip(), "locked")
test_fail(lambda: Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state3", _tmp / "logs"),
          contains=f"is in use by another runner (pid {_held.pid})")
_held.kill()
_held.wait()
test_eq(Engine([asset_setup("crypto_spot", ["rsi2"])], _tmp / "state3", _tmp / "logs").cursor, -1)
