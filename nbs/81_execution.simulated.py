# %% [markdown]
# # Paper execution client
#
# > `SimulatedClient`: the paper venue. Bars in, orders worked bar by bar through the backtester's own fill and accounting kernels, in the same order as its numba loop, so a paper session's fills equal a backtest's fills bit for bit; its whole state is a JSON snapshot.

# %%
#| default_exp execution.simulated

# %% [markdown]
# The paper venue is the backtester run one bar at a time (DESIGN §6). Each symbol is one backtester
# column: bar `i` of a symbol is the number of its bars seen before, and `on_bar` is the loop's *open
# phase* of that bar: funding, then the working orders that have reached the market (reduce-only
# first, then entries, each in submission order), then the protective stop-loss and take-profit of the
# open position. Orders sent after `on_bar` are decisions at that bar's close: they reach the market at
# the open of bar `i + 1 + latency`.
#
# There is no arithmetic of its own here: every order meets a bar through `work_order_nb`, every fill
# is booked by `book_fill_nb` and every protective exit priced by `protective_fill_nb`
# (`tradingbot.execution.accounting`) — the compiled kernels the backtester's loop calls — so the floats
# come out identical, not merely close. `tests/test_simulated_parity.py` pins that against
# `backtest(..., orders=...)` on real samples.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from tradingbot.brokers.base import Ack, Capabilities, Execution, ExecutionClient, FundingPayment, protection_of
from tradingbot.data.feeds import BarEvent
from tradingbot.execution._nb import ARRIVAL, STATUS, Bar, WorkingOrder, arrival_bar_nb, funding_flow_nb
from tradingbot.execution.accounting import (NOTHING_TO_CLOSE, WAITING, Holding, Wallet, book_fill_nb,
                                             book_funding_nb, holding, levels_touched_nb, protective_fill_nb,
                                             work_order_nb)
from tradingbot.execution.enums import Info, OrderType, Reason, Side
from tradingbot.execution.fills import FillConfig, funding_rates, volatility
from tradingbot.execution.model import (Fill, Order, OrderCancelled, OrderRejected, client_order_id,
                                        event_from_dict)
from tradingbot.fileio import json_float, to_jsonable

# %%
#| hide
import json

from fastcore.test import test_close, test_eq, test_fail

from tradingbot.brokers.base import Protection
from tradingbot.execution.model import OrderIntent

# %% [markdown]
# ## JSON for floats
# A snapshot must pass `json.dumps(allow_nan=False)`: the project's one JSON helper
# (`tradingbot.fileio.to_jsonable`) writes NaN (no level, no price) as `None` and an infinite amount (an
# order with no notional cap) as `"inf"`; `json_float` reads a float field back. Finite floats go through
# JSON unchanged (`repr` round-trips exactly), which is what lets a restored client continue bit for bit.

# %% [markdown]
# ## Working orders and symbol books
# `_Working` is the backtester's order slot: what is left of an order (units, and a notional cap that
# disappears after its first fill), whether a stop has triggered, whether the order has met the
# market yet (`seen`: it then rests, otherwise it arrives at the open), and the bar it reaches the
# market. `_Book` is one symbol's column: its bar count and last bar, the position (`Holding`, as the
# accounting kernels book it), its protective levels, and `fresh`: 1 when the position was opened by a
# market order at this bar's open, 2 when it was opened elsewhere in the bar (the protective check then
# starts at the fill price and ignores the take-profit, as the loop does).

# %%
#| export
_FLOATS = ("qty", "notional", "limit", "stop")


@dataclass
class _Working:
    "What is left of an order at the paper venue (the backtester's order slot)."
    order: Order
    side: int  # Side code
    type: int  # OrderType code
    qty: float  # units still wanted
    notional: float  # spend cap until the first fill (inf: none)
    limit: float
    stop: float
    tif: int
    post_only: bool
    arrive_bar: int  # the symbol's bar whose open it reaches
    triggered: bool = False
    seen: bool = False  # has met the market (then it rests)

    def kernel(self) -> WorkingOrder:
        "The order as the fill kernels see it."
        return WorkingOrder(self.side, self.type, self.qty, self.notional, self.limit, self.stop, self.tif,
                            self.post_only, self.triggered)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("side", "type", "tif", "post_only", "arrive_bar", "triggered", "seen")}
        return d | {k: to_jsonable(getattr(self, k)) for k in _FLOATS} | {"order": self.order.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> _Working:
        floats = {k: json_float(d[k]) for k in _FLOATS}
        rest = {k: v for k, v in d.items() if k not in _FLOATS and k != "order"}
        return cls(order=Order.from_dict(d["order"]), **floats, **rest)


def _bar_to_dict(bar: BarEvent) -> dict:
    return {"symbol": bar.symbol, "timeframe": bar.timeframe, "ts": bar.ts.isoformat(),
            "close_time": bar.close_time.isoformat(), "seq": bar.seq,
            **{k: to_jsonable(getattr(bar, k)) for k in ("open", "high", "low", "close", "volume")}}


def _bar_from_dict(d: dict) -> BarEvent:
    return BarEvent(d["symbol"], d["timeframe"], pd.Timestamp(d["ts"]), pd.Timestamp(d["close_time"]),
                    *(json_float(d[k]) for k in ("open", "high", "low", "close", "volume")), d["seq"])


_BOOK_FLOATS = ("sl", "tp", "fresh_price")


@dataclass
class _Book:
    "One symbol at the paper venue (one backtester column): bars seen, position, levels, working orders."
    i: int = -1  # index of the last bar seen (-1: none yet)
    bar: BarEvent | None = None
    h: Holding = field(default_factory=holding)  # the position, as the accounting kernels book it
    sl: float = math.nan
    tp: float = math.nan
    fresh: int = 0  # 0: opened before this bar, 1: by a market order at its open, 2: elsewhere in it
    fresh_price: float = 0.0
    orders: list[_Working] = field(default_factory=list)  # working orders in submission order
    hist: dict[str, list[float]] | None = None  # high/low/close of every bar (only for volatility slippage)
    vol_cache: tuple[int, np.ndarray] | None = None  # volatility over the first n bars (not saved)

    @property
    def pos(self) -> float:
        "Signed units held."
        return self.h.pos

    def to_dict(self) -> dict:
        return {"i": self.i, "fresh": self.fresh, "bar": _bar_to_dict(self.bar) if self.bar is not None else None,
                "h": {k: (v if k == "dir" else to_jsonable(v)) for k, v in self.h._asdict().items()},
                **{k: to_jsonable(getattr(self, k)) for k in _BOOK_FLOATS},
                "orders": [w.to_dict() for w in self.orders],
                "hist": None if self.hist is None else {k: [to_jsonable(x) for x in v] for k, v in self.hist.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> _Book:
        return cls(i=d["i"], fresh=d["fresh"], bar=_bar_from_dict(d["bar"]) if d["bar"] is not None else None,
                   h=holding(**{k: (v if k == "dir" else json_float(v)) for k, v in d["h"].items()}),
                   **{k: json_float(d[k]) for k in _BOOK_FLOATS}, orders=[_Working.from_dict(w) for w in d["orders"]],
                   hist=None if d["hist"] is None else {k: [json_float(x) for x in v] for k, v in d["hist"].items()})


# %%
_t0 = pd.Timestamp("2024-01-01", tz="UTC")
_b = BarEvent("BTCUSDT", "1h", _t0, _t0 + pd.Timedelta(hours=1), 100.0, 101.0, 99.0, 100.5, 3.0, 7)
test_eq(_bar_from_dict(json.loads(json.dumps(_bar_to_dict(_b)))), _b)
_bk = _Book(i=3, bar=_b, h=holding(pos=-0.5, debt=50.0, avg=100.0, dir=-1), sl=102.0)
_back = _Book.from_dict(json.loads(json.dumps(_bk.to_dict(), allow_nan=False)))
test_eq((_back.i, _back.bar, _back.h, _back.sl, _back.tp != _back.tp), (3, _b, _bk.h, 102.0, True))

# %% [markdown]
# ## The client
# `submit` checks what a venue checks (a known symbol with a price, a unique `client_order_id` — Bybit
# refuses a repeated `orderLinkId` — a quantity in units, shorting allowed) and queues the order; it
# reaches the market at `arrival_bar_nb(last bar, latency, False)`. An order with
# `meta["immediate"]` (the engine's 'close everything now' on stop) meets the symbol's last bar at its
# close right away, as the backtester's close-price fills do. Protection rides with the position
# (`attached_protection`): the levels are set from `protection_of(intent)` at every fill that opens or
# grows the position, around its average price, exactly where the backtester puts them when it is given
# `stop_distance=` (or `sl_pct=`) and `tp_pct=`.
#
# `on_bar` is `_open_phase_nb` for one column. A quiet bar — flat, nothing working — only moves the bar
# count (and the volatility history when slippage scales with it): that keeps a replay at thousands of
# bars a second. A protective exit gets a deterministic id (`client_order_id("sl"|"tp", symbol, bar.ts, 0)`),
# so a replay reports the same ids.

# %%
#| export
_ORDER_STATUS = {STATUS.OPEN: "partially_filled", STATUS.FILLED: "filled", STATUS.CANCELLED: "cancelled",
                 STATUS.REJECTED: "rejected"}
_NS_PER_HOUR = 3_600_000_000_000


def _level(x: float) -> float | None:
    return None if x != x else x


class SimulatedClient(ExecutionClient):
    "The paper venue: orders worked bar by bar through the backtester's fill and accounting kernels."

    def __init__(self, asset: str,  # the asset class this client trades
                 fill: FillConfig | None = None,  # the fill model (default: the asset's configured fees)
                 cash: float = 1000.0,  # starting wallet
                 shorting: bool = False,  # may open short positions
                 ):
        self.asset, self.fill = asset, fill if fill is not None else FillConfig.for_asset(asset)
        self.capabilities = Capabilities("paper", live=False, attached_protection=True, reduce_only=True,
                                         shorting=bool(shorting))
        self._params = self.fill.params()
        self._wallet = Wallet(float(cash), float(cash))
        self._books: dict[str, _Book] = {}
        self._status: dict[str, str] = {}  # every client_order_id received -> its status
        self._n_fills: dict[str, int] = {}  # fills per order, for deterministic exec ids
        self._events: list = []

    # -- the account --------------------------------------------------------------------------------
    @property
    def cash(self) -> float:
        "Wallet cash (short proceeds included)."
        return self._wallet.cash

    def deposit(self, amount: float,  # paper money to add (> 0)
                ) -> None:
        "Add paper money to the wallet (a bankroll top-up)."
        if not (isinstance(amount, (int, float)) and math.isfinite(amount) and amount > 0):
            raise ValueError(f"deposit must be a finite amount > 0, got {amount!r}")
        self._wallet = Wallet(self._wallet.cash + amount, self._wallet.free + amount)

    def equity(self) -> float:
        "Cash plus the open positions at their last close."
        equity = self._wallet.cash
        for book in self._books.values():
            if book.pos != 0.0:
                equity += book.pos * book.bar.close
        return equity

    def positions(self) -> dict[str, float]:
        return {s: b.pos for s, b in self._books.items() if b.pos != 0.0}

    def protection(self, symbol: str) -> tuple[float | None, float | None]:
        book = self._books.get(symbol)
        if book is None or book.pos == 0.0:
            return None, None
        return _level(book.sl), _level(book.tp)

    def set_protection(self, symbol: str, sl: float | None, tp: float | None) -> None:
        book = self._books.get(symbol)
        if book is None or book.pos == 0.0:
            raise ValueError(f"no open position in {symbol}: protection rides with a position")
        for name, x in (("sl", sl), ("tp", tp)):
            if x is not None and not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
                raise ValueError(f"{name} must be a finite price > 0 or None, got {x!r}")
        book.sl = math.nan if sl is None else float(sl)
        book.tp = math.nan if tp is None else float(tp)

    def poll(self) -> list:
        events, self._events = self._events, []
        return events

    def lookup(self, client_order_id: str) -> str | None:
        return self._status.get(client_order_id)

    # -- orders -------------------------------------------------------------------------------------
    def cancel(self, client_order_id: str) -> bool:
        for book in self._books.values():
            for w in book.orders:
                if w.order.client_order_id == client_order_id:
                    book.orders.remove(w)
                    self._status[client_order_id] = "cancelled"
                    self._events.append(OrderCancelled(book.bar.close_time, client_order_id, "cancelled by client"))
                    return True
        return False

    def submit(self, order: Order) -> Ack:
        coid = order.client_order_id
        if coid in self._status:  # the first order's state stays as it is
            return Ack(coid, "rejected", "duplicate client_order_id")
        reason = self._refusal(order)
        if reason:
            self._status[coid] = "rejected"
            return Ack(coid, "rejected", reason)
        book = self._books[order.intent.symbol]
        w = _Working(order, Side.parse(order.intent.side).code, OrderType.parse(order.order_type).code,
                     float(order.intent.qty), math.inf, float(order.limit_price or math.nan),
                     float(order.stop_price or math.nan), self.fill.tif.code, bool(self.fill.post_only),
                     arrival_bar_nb(book.i, self.fill.latency_bars, False))
        self._status[coid] = "submitted"
        book.orders.append(w)
        if order.intent.meta.get("immediate"):
            w.arrive_bar = book.i
            self._work(book, w, ARRIVAL.CLOSE)
            if self._status[coid] == "filled":
                return Ack(coid, "filled", broker_order_id=coid)
        return Ack(coid, "submitted", broker_order_id=coid)

    def _refusal(self, order: Order) -> str:
        "Why the venue refuses `order` ('' when it takes it)."
        intent = order.intent
        if intent.asset != self.asset:
            return f"asset {intent.asset} is not traded by this client ({self.asset})"
        if intent.qty is None:
            return "the paper venue needs a quantity in units (intent.qty); size notional intents before sending"
        book = self._books.get(intent.symbol)
        if book is None or book.bar is None:
            return f"no bar of {intent.symbol} seen yet: the paper venue has no price for it"
        if order.reduce_only:
            return ""
        if intent.side == "sell" and not self.capabilities.shorting and book.pos <= 0.0:
            return "shorting is disabled: a sell entry needs a long position (send exits reduce_only)"
        try:
            protection_of(intent)
        except ValueError as exc:
            return str(exc)
        return ""

    # -- one bar --------------------------------------------------------------------------------------
    def on_bar(self, bar: BarEvent) -> None:
        "Advance `bar.symbol`'s market by one closed bar: funding, working orders, protective exits."
        book = self._books.get(bar.symbol)
        if book is None:
            book = self._books[bar.symbol] = _Book(hist={"high": [], "low": [], "close": []}
                                                   if self.fill.vol_slippage_k else None)
        book.i += 1
        book.bar = bar
        book.fresh = 0  # the loop clears it at the previous bar's close
        if book.hist is not None:
            for k in ("high", "low", "close"):
                book.hist[k].append(getattr(bar, k))
        if book.pos == 0.0 and not book.orders:
            return  # a quiet bar
        if self.fill.funding_rate is not None and book.pos != 0.0:
            rate = self._funding_rate(bar)
            if rate != 0.0:
                flow = funding_flow_nb(book.pos, bar.open, rate)
                book.h, self._wallet = book_funding_nb(book.h, self._wallet, flow)
                self._events.append(FundingPayment(bar.symbol, flow, bar.ts.isoformat()))
        arrived = [w for w in book.orders if w.arrive_bar <= book.i]
        for w in [w for w in arrived if w.order.reduce_only] + [w for w in arrived if not w.order.reduce_only]:
            self._work(book, w, ARRIVAL.RESTING if w.seen else ARRIVAL.OPEN)
        if book.pos != 0.0 and levels_touched_nb(book.h.dir, book.sl, math.nan, book.tp, bar.high, bar.low):
            self._protect(book)

    def _work(self, book: _Book, w: _Working, arrival: int) -> None:
        "Run working order `w` through the last bar, met as `arrival` says (`_work_slot_nb`)."
        r = work_order_nb(w.kernel(), w.order.reduce_only, book.pos, self._wallet.cash, self._wallet.free,
                          self._kernel_bar(book, arrival == ARRIVAL.CLOSE), arrival, self._params)
        if r.action == NOTHING_TO_CLOSE:
            self._finish(book, w, STATUS.CANCELLED, INFO_NOTHING_TO_CLOSE)
            return
        if r.action == WAITING:
            return  # an entry waits until the opposite position is closed
        f = r.fill
        w.seen, w.triggered = True, f.triggered
        if f.qty > 0.0:
            if r.fresh:  # where the new position's path starts: the open for a market order arriving there
                book.fresh, book.fresh_price = r.fresh, f.price
            self._book_fill(book, w.side, f.qty, f.price, f.fee, None if w.order.reduce_only else w.order)
            self._record_fill(book, w.order.client_order_id, w.side, f.qty, f.price, f.fee, f.maker, Reason.ORDER)
            w.notional, w.qty = math.inf, f.remaining  # what remains is a number of units
            self._status[w.order.client_order_id] = "partially_filled"
        if f.status != STATUS.OPEN:
            self._finish(book, w, f.status, f.info)

    def _protect(self, book: _Book) -> None:
        "Exit the position if the last bar hits its stop-loss or take-profit (`_protect_nb`)."
        d, qty = book.h.dir, abs(book.pos)
        x = protective_fill_nb(d, qty, book.sl, math.nan, book.tp, book.fresh, book.fresh_price,
                               self._kernel_bar(book, False), self._params)
        if x.level != x.level:
            return
        self._book_fill(book, -d, qty, x.price, x.fee, None)
        reason = Reason.of(x.reason)
        coid = client_order_id("tp" if reason == Reason.TAKE_PROFIT else "sl", book.bar.symbol, book.bar.ts, 0)
        self._status[coid] = "filled"
        self._record_fill(book, coid, -d, qty, x.price, x.fee, x.maker, reason)

    # -- booking --------------------------------------------------------------------------------------
    def _book_fill(self, book: _Book, side: int, qty: float, price: float, fee: float, order: Order | None) -> None:
        "Book one fill (`book_fill_nb`); a fill that opens or grows the position sets `order`'s protection."
        b = book_fill_nb(book.h, self._wallet, side, qty, price, fee)
        book.h, self._wallet = b.holding, b.wallet
        if b.grew:
            sl, tp = protection_of(order.intent).levels(b.holding.dir, b.holding.avg) if order is not None \
                else (None, None)
            book.sl, book.tp = (math.nan if sl is None else sl), (math.nan if tp is None else tp)
        if b.closed:
            book.sl = book.tp = math.nan

    def _record_fill(self, book: _Book, coid: str, side: int, qty: float, price: float, fee: float, maker: bool,
                     reason: Reason) -> None:
        "Queue the `Execution` of one fill; its exec id is the order's id and the fill's number."
        n = self._n_fills.get(coid, 0) + 1
        self._n_fills[coid] = n
        fill = Fill(f"{coid}-{n}", coid, book.bar.symbol, Side.of(side), qty, price, fee, book.bar.ts, bool(maker))
        self._events.append(Execution(fill, reason))

    def _finish(self, book: _Book, w: _Working, status: int, info: int) -> None:
        "Take a finished order off the book and report how it ended."
        book.orders.remove(w)
        coid = w.order.client_order_id
        self._status[coid] = _ORDER_STATUS[status]
        if status == STATUS.CANCELLED:
            self._events.append(OrderCancelled(book.bar.ts, coid, Info.of(info).value))
        elif status == STATUS.REJECTED:
            self._events.append(OrderRejected(book.bar.ts, coid, Info.of(info).value))

    # -- the bar as the kernels see it ----------------------------------------------------------------
    def _vol(self, book: _Book, j: int) -> float:
        "Volatility (price units) known at the close of bar `j` of `book` (NaN: none)."
        if not self.fill.vol_slippage_k or j < 0:
            return math.nan
        n = len(book.hist["close"])
        if book.vol_cache is None or book.vol_cache[0] != n:  # once per bar; the estimate only looks back
            book.vol_cache = (n, volatility(pd.DataFrame(book.hist), self.fill.vol_kind, self.fill.vol_window))
        return float(book.vol_cache[1][j])

    def _kernel_bar(self, book: _Book, at_close: bool) -> Bar:
        "The last bar as the kernels see it; volatility from before the fill (as `_bar_nb`)."
        b = book.bar
        return Bar(b.open, b.high, b.low, b.close, b.volume, math.nan,
                   self._vol(book, book.i if at_close else book.i - 1))

    def _funding_rate(self, bar: BarEvent) -> float:
        "Summed funding rate of the settlements inside `bar` (as `funding_rates` over the backtest's index)."
        step = self.fill.funding_interval_h * _NS_PER_HOUR
        if -(-bar.ts.value // step) * step >= bar.close_time.value:  # no settlement in this bar: skip pandas
            return 0.0
        return float(funding_rates(pd.DatetimeIndex([bar.ts]), self.fill.funding_rate, self.fill.funding_interval_h,
                                   bar.close_time - bar.ts)[0])

    # -- snapshot -------------------------------------------------------------------------------------
    def snapshot(self) -> dict:
        "The venue's whole state as a JSON-able dict (`json.dumps(..., allow_nan=False)` works)."
        self._forget_finished()
        fill = asdict(self.fill)
        series = isinstance(fill["funding_rate"], pd.Series)
        fill = {k: (to_jsonable(v) if isinstance(v, float) else v) for k, v in fill.items()} | (
            {"funding_rate": None} if series else {})
        return {"version": 2, "asset": self.asset, "shorting": self.capabilities.shorting, "fill": fill,
                "funding_series": series, "cash": to_jsonable(self._wallet.cash), "free": to_jsonable(self._wallet.free),
                "status": dict(self._status), "n_fills": dict(self._n_fills),
                "events": [_event_to_dict(e) for e in self._events],
                "books": {s: b.to_dict() for s, b in self._books.items()}}

    @classmethod
    def restore(cls, snap: dict,  # a `snapshot()`, possibly through JSON
                fill: FillConfig | None = None,  # the fill model (default: the one saved)
                ) -> SimulatedClient:
        "A client that continues exactly where the snapshot was taken."
        if snap.get("version") != 2:
            raise ValueError(f"unknown SimulatedClient snapshot version {snap.get('version')!r}")
        if fill is None:
            if snap["funding_series"]:
                raise ValueError("the snapshot's funding rates were a Series: pass fill= to restore")
            saved = snap["fill"]
            fill = FillConfig(**{k: (json_float(v) if k in ("participation",) else v) for k, v in saved.items()})
        client = cls(snap["asset"], fill, shorting=snap["shorting"])
        client._wallet = Wallet(json_float(snap["cash"]), json_float(snap["free"]))
        client._status, client._n_fills = dict(snap["status"]), dict(snap["n_fills"])
        client._events = [_event_from_dict(e) for e in snap["events"]]
        client._books = {s: _Book.from_dict(b) for s, b in snap["books"].items()}
        return client

    def _forget_finished(self) -> None:
        "Drop all but the newest KEEP_FINISHED finished orders, so snapshots and memory stay small on long runs."
        working = {w.order.client_order_id for b in self._books.values() for w in b.orders}
        finished = [k for k in self._status if k not in working]
        for k in finished[:-KEEP_FINISHED]:
            del self._status[k]
            self._n_fills.pop(k, None)


INFO_NOTHING_TO_CLOSE = Info.NOTHING_TO_CLOSE.code
KEEP_FINISHED = 256  # finished order ids remembered: a restart looks up only the orders of its last few bars


def _event_to_dict(e) -> dict:
    if isinstance(e, Execution):
        return {"execution": e.fill.to_dict(), "reason": e.reason.value}
    if isinstance(e, FundingPayment):
        return {"funding": asdict(e)}
    return e.to_dict()


def _event_from_dict(d: dict):
    if "execution" in d:
        return Execution(Fill.from_dict(d["execution"]), d["reason"])
    if "funding" in d:
        return FundingPayment(**d["funding"])
    return event_from_dict(d)


# %%
_c = SimulatedClient("crypto_futures", FillConfig(), cash=1000.0, shorting=True)
_bk = _Book(i=0, bar=_b)
_c._book_fill(_bk, -1, 2.0, 100.0, 0.2, None)  # open a short: proceeds in cash, not in free cash
test_eq((_c.cash, _c._wallet.free, _bk.h.debt, _bk.pos), (1199.8, 799.8, 200.0, -2.0))
_c._book_fill(_bk, 1, 2.0, 90.0, 0.18, None)  # cover it: the debt comes back to free cash
test_close(_c.cash, 1019.62, eps=1e-9)
test_close(_c._wallet.free, 1019.62, eps=1e-9)
test_eq((_bk.pos, _bk.h.debt), (0.0, 0.0))


# %% [markdown]
# ### Examples
# A market buy decided at bar 0's close fills at bar 1's open, plus half the spread and the slippage,
# with the taker fee; the stop-loss sits `sl_distance` under the fill price.

# %%
def bars_of(rows, symbol="BTCUSDT", t0=_t0):
    "BarEvents from (open, high, low, close, volume) rows, hourly."
    return [BarEvent(symbol, "1h", t0 + pd.Timedelta(hours=k), t0 + pd.Timedelta(hours=k + 1),
                     *map(float, r), k) for k, r in enumerate(rows)]


def order_of(side, qty, n=0, symbol="BTCUSDT", reduce_only=False, order_type="market", sl_distance=None,
             tp_pct=None, asset="crypto_spot", **kw):
    "An Order of `qty` units (id from `n`), with optional protection."
    meta = kw.pop("meta", {})
    intent = OrderIntent(asset, symbol, side, None, "t", qty=qty, meta=meta, sl_distance=sl_distance,
                         tp_schema={"type": "pct", "pct": tp_pct} if tp_pct else {})
    return Order(client_order_id("t", symbol, _t0, n), intent, order_type=order_type, reduce_only=reduce_only, **kw)


cfg = FillConfig(taker_fee_pct=0.1, maker_fee_pct=0.02, spread_pct=0.2, slippage_pct=0.05)
bars = bars_of([(100, 101, 99, 100, 1e6), (100, 103, 99.5, 102, 1e6), (102, 104, 101, 103, 1e6),
                (103, 103.5, 95, 96, 1e6)])
c = SimulatedClient("crypto_spot", cfg)
c.on_bar(bars[0])
o = order_of("buy", 2.0, sl_distance=4.0)
test_eq(c.submit(o).status, "submitted")
test_eq((c.lookup(o.client_order_id), c.poll()), ("submitted", []))
c.on_bar(bars[1])
(ex,) = c.poll()
price = 100 * (1 + 0.0005) + 0.5 * 0.002 * 100
test_eq((ex.reason, ex.fill.side, ex.fill.qty, ex.fill.price, ex.fill.ts), ("order", "buy", 2.0, price, bars[1].ts))
test_eq(ex.fill.fee, 2.0 * price * 0.001)
test_eq((ex.fill.exec_id, c.lookup(o.client_order_id)), (o.client_order_id + "-1", "filled"))
test_eq(c.positions(), {"BTCUSDT": 2.0})
test_eq(c.protection("BTCUSDT"), (price - 4.0, None))
test_eq(c.cash, 1000.0 - (2.0 * price + ex.fill.fee))

# %% [markdown]
# The stop is hit two bars later (low 95 under it): the exit is a taker at the stop level, under the
# deterministic `sl` id.

# %%
c.on_bar(bars[2])
test_eq(c.poll(), [])
c.on_bar(bars[3])
(ex,) = c.poll()
test_eq((ex.reason, ex.fill.side, ex.fill.qty), ("stop_loss", "sell", 2.0))
test_eq(ex.fill.client_order_id, client_order_id("sl", "BTCUSDT", bars[3].ts, 0))
test_eq(ex.fill.price, (price - 4.0) * (1 - 0.0005) - 0.5 * 0.002 * (price - 4.0))
test_eq((c.positions(), c.protection("BTCUSDT"), c.lookup(ex.fill.client_order_id)), ({}, (None, None), "filled"))

# %% [markdown]
# A stop hit in the bar of the entry: a market order at the open is checked from the open on.
# A take-profit fills at its level as a maker. A position opened by a limit inside the bar is checked
# from its fill price, without the take-profit (the bar's path before the fill is unknown).

# %%
c = SimulatedClient("crypto_spot", FillConfig(taker_fee_pct=0.1, maker_fee_pct=0.02))
rows = [(100, 100, 100, 100, 1e6), (100, 100.5, 97, 98, 1e6), (98, 98, 98, 98, 1e6), (98, 101, 97.5, 100, 1e6)]
for k, bar in enumerate(bars_of(rows)):
    c.on_bar(bar)
    if k == 0:
        c.submit(order_of("buy", 1.0, sl_distance=2.0))
    if k == 2:
        c.submit(order_of("buy", 1.0, n=1, tp_pct=2.0))
ex = c.poll()
test_eq([(e.reason, e.fill.side, e.fill.price) for e in ex],
        [("order", "buy", 100.0), ("stop_loss", "sell", 98.0), ("order", "buy", 98.0),
         ("take_profit", "sell", 98.0 * (1.0 + 2.0 / 100))])
test_eq((ex[3].fill.maker, ex[3].fill.fee), (True, 98.0 * (1.0 + 2.0 / 100) * 0.0002))

c = SimulatedClient("crypto_spot", FillConfig())
rows = [(100, 100, 100, 100, 1e6), (100, 104, 98, 103, 1e6)]
for k, bar in enumerate(bars_of(rows)):
    c.on_bar(bar)
    if k == 0:
        c.submit(order_of("buy", 1.0, order_type="limit", limit_price=99.0, sl_distance=5.0, tp_pct=1.0))
test_eq([(e.reason, e.fill.price) for e in c.poll()], [("order", 99.0)])  # the TP at 99.99 is not checked
test_eq(c.protection("BTCUSDT"), (94.0, 99.0 * (1.0 + 1.0 / 100)))

# %% [markdown]
# Reduce-only orders: only what is open is closed, and one that finds the position gone is cancelled
# (`nothing_to_close`). An entry facing the opposite position waits for it to be closed.

# %%
c = SimulatedClient("crypto_spot", FillConfig())
bars = bars_of([(100, 100, 100, 100, 1e6)] * 4)
c.on_bar(bars[0])
c.submit(order_of("buy", 1.0))
c.on_bar(bars[1])
c.submit(order_of("sell", 5.0, n=1, reduce_only=True))
c.submit(order_of("sell", 5.0, n=2, reduce_only=True))
c.on_bar(bars[2])
ev = c.poll()
test_eq([type(e).__name__ for e in ev], ["Execution", "Execution", "OrderCancelled"])
test_eq((ev[1].fill.qty, ev[2].reason, c.positions()), (1.0, "nothing_to_close", {}))
test_eq([c.lookup(order_of("sell", 5.0, n=k).client_order_id) for k in (1, 2)], ["filled", "cancelled"])

# %% [markdown]
# What the venue refuses: a repeated id (the first order is untouched), a notional-only intent, a
# symbol with no price yet, a short entry when shorting is off.

# %%
c = SimulatedClient("crypto_spot", FillConfig())
o = order_of("buy", 1.0)
test_eq(c.submit(o).reason, "no bar of BTCUSDT seen yet: the paper venue has no price for it")
c.on_bar(bars[0])
test_eq(c.submit(o), Ack(o.client_order_id, "rejected", "duplicate client_order_id"))
o = order_of("buy", 1.0, n=1)
test_eq(c.submit(o).status, "submitted")
test_eq(c.submit(o), Ack(o.client_order_id, "rejected", "duplicate client_order_id"))
test_eq(c.lookup(o.client_order_id), "submitted")
notional = Order(client_order_id("t", "BTCUSDT", _t0, 9),
                 OrderIntent("crypto_spot", "BTCUSDT", "buy", 5.0, "t", notional=100.0))
test_eq("needs a quantity in units" in c.submit(notional).reason, True)
test_eq("shorting is disabled" in c.submit(order_of("sell", 1.0, n=3)).reason, True)
test_eq(SimulatedClient("crypto_spot", FillConfig(), shorting=True).capabilities.shorting, True)
test_eq((c.lookup("never-sent"), c.cancel("never-sent"), c.cancel(o.client_order_id)), (None, False, True))
test_eq((c.lookup(o.client_order_id), c.poll()[0].reason), ("cancelled", "cancelled by client"))
test_fail(lambda: c.set_protection("BTCUSDT", 90.0, None), contains="no open position")

# %% [markdown]
# An immediate order meets the last bar's close now (the 'close all now' of a stop), and a top-up adds
# to the wallet.

# %%
c = SimulatedClient("crypto_spot", FillConfig(taker_fee_pct=0.1))
c.on_bar(bars_of([(100, 101, 99, 100.5, 1e6)])[0])
ack = c.submit(order_of("buy", 1.0, meta={"immediate": True}))
test_eq((ack.status, c.positions()), ("filled", {"BTCUSDT": 1.0}))
test_eq(c.poll()[0].fill.price, 100.5)
c.set_protection("BTCUSDT", 90.0, 120.0)
test_eq(c.protection("BTCUSDT"), (90.0, 120.0))
cash = c.cash
c.deposit(1000.0)
test_eq(c.cash, cash + 1000.0)
test_fail(lambda: c.deposit(-5.0), contains="finite amount > 0")

# %% [markdown]
# ## Snapshot and restore
# The whole venue in one JSON-able dict: wallet, every order id's status and fill count, undelivered
# events, and per symbol the bar count, last bar, position with its levels, working orders (and the
# high/low/close history when slippage scales with volatility, whose estimate looks back to the first
# bar). The fill model is saved too, unless its funding is a Series: then `restore` needs `fill=`.

# %%
funding = FundingPayment("BTCUSDT", -0.03, "2024-01-01T08:00:00+00:00")  # unpolled events survive a checkpoint
test_eq(_event_from_dict(json.loads(json.dumps(_event_to_dict(funding)))), funding)

# %% [markdown]
# A run cut at every bar by snapshot → JSON → restore gives the same executions as one run through,
# with partial fills (volume participation), volatility slippage and funding in play.

# %%
rng = np.random.default_rng(3)
close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
rows = [(c0, max(c0, c1) * 1.004, min(c0, c1) * 0.996, c1, 50.0) for c0, c1 in zip(np.r_[100, close[:-1]], close)]
cfg = FillConfig(taker_fee_pct=0.055, maker_fee_pct=0.02, spread_pct=0.05, participation=0.1, vol_slippage_k=0.2,
                 vol_window=3, funding_rate=0.0001, funding_interval_h=8)


def run(cut: bool) -> list:
    "Trade a fixed script over `rows`; with `cut`, through a JSON snapshot at every bar."
    c, out = SimulatedClient("crypto_futures", cfg, shorting=True), []
    for k, bar in enumerate(bars_of(rows)):
        if cut:
            text = json.dumps(c.snapshot(), allow_nan=False)
            c = SimulatedClient.restore(json.loads(text))
        c.on_bar(bar)
        if k % 7 == 0:
            side = "buy" if k % 14 == 0 else "sell"
            c.submit(order_of(side, 12.0, n=k, sl_distance=1.5, tp_pct=1.0, asset="crypto_futures"))
        out += [(e.fill.exec_id, e.fill.qty, e.fill.price, e.fill.fee, e.reason) if isinstance(e, Execution)
                else asdict(e) if isinstance(e, FundingPayment) else e.to_dict() for e in c.poll()]
    return out + [c.cash, c.equity()]


straight = run(False)
test_eq(len(straight) > 12, True)
test_eq(any(isinstance(x, dict) and x.get("amount", 0) != 0 for x in straight), True)  # funding reported
test_eq(run(True), straight)
test_eq(SimulatedClient.restore(SimulatedClient("forex", FillConfig()).snapshot()).fill, FillConfig())

# %% [markdown]
# A long run does not grow the snapshot: only the newest `KEEP_FINISHED` finished orders are remembered
# (a restart looks up the orders of its last bars only); working orders are always kept.

# %%
c = SimulatedClient("crypto_spot", FillConfig())
for k, bar in enumerate(bars_of([(100.0, 101.0, 99.0, 100.0, 1e6)] * 700)):
    c.on_bar(bar)
    c.submit(order_of("buy" if k % 2 == 0 else "sell", 1.0, n=k, reduce_only=k % 2 == 1))
    c.poll()
snap = c.snapshot()
test_eq(len(snap["status"]), KEEP_FINISHED + 1)  # the newest finished ones and the one still working
test_eq(c.lookup(order_of("buy", 1.0, n=0).client_order_id), None)  # long forgotten
test_eq(c.lookup(order_of("sell", 1.0, n=699, reduce_only=True).client_order_id), "submitted")
