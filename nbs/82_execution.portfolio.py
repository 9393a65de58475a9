# %% [markdown]
# # Portfolio and rewards
#
# > One asset's book — cash, positions, realised and unrealised P&L, fees, drawdown — booked with the backtester's exact arithmetic; and the reward points of a closed trade.

# %%
#| default_exp execution.portfolio

# %% [markdown]
# Each asset trades its own paper session (DESIGN §4, seed 003 §9 portfolio_manager), so a `Portfolio`
# is one asset's book. Its accounting is not a copy of the backtester's: every fill is booked by
# `book_fill_nb` (`tradingbot.execution.accounting`), the kernel the backtester's loop and the paper venue
# call — cash, the average entry price, the entry and exit values, fees and funding of the round trip,
# and the realised P&L `dir * (exit_value - entry_value) - fees + funding`. That is what lets a paper
# session replayed over the backtest's fills reproduce its equity curve to 1e-9 (`tests/test_portfolio.py`),
# so "the backtest said X, paper did Y" is never an accounting artefact (DESIGN §6).
#
# The book is the *local* view: for live assets the venue is P&L truth and `execution.reconcile`
# compares the two (seed 002: only the reconciler is P&L truth).

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from tradingbot.execution.accounting import Holding, Wallet, book_fill_nb, book_funding_nb, holding
from tradingbot.execution.model import ASSETS, MODES, Event, Fill, Position, PositionClosed, PositionOpened, utc
from tradingbot.execution.risk import drawdown_pct_nb

# %%
#| hide
import json

from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## The portfolio
# One symbol's open round trip is a `Holding` of the accounting kernels plus what the book adds to it:
# the position id, when it opened, which strategy owns it, paper or live, and its protective levels.
# Equity is cash plus `qty × last price` of every open position, summed in sorted symbol order (the
# backtester's column order). The drawdown is measured from the highest equity `mark` has seen, by the
# one drawdown rule (`risk.drawdown_pct_nb`, which the risk sizing reads); a paper top-up (`deposit`)
# starts a new epoch, so the peak restarts at the topped-up equity instead of reporting the lost bankroll
# as a drawdown forever.
#
# `on_fill` books a fill with `book_fill_nb`, the kernel the backtester's loop calls. A fill that would
# flip a position (sell more than is held) never happens in the backtester — an entry waits until the
# opposite position is closed — but a venue might report one, so it is booked as a close of the held
# quantity and an open of the rest, the fee split pro rata. It returns `[PositionOpened]` when a position
# opens, `[PositionClosed]` when it goes flat, and nothing while it grows or shrinks. `mark` sets a
# symbol's last price and moves the peak; `on_funding` books a funding payment to cash and to the open
# round trip (it is part of that trade's P&L, as in the backtester). `open_positions` is what the
# exposure checks and the dashboard read; `valuation` the seed's `{equity, pnl_u, pnl_r}` plus cash,
# fees, exposure, drawdown and the trade counts (unrealised P&L against the average entry price, before
# exit fees). `to_dict` → JSON → `from_dict` is exact: Python's `json` writes the shortest repr that
# reads back to the same float, so a restored book goes on booking bit for bit.

# %%
#| export
def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _level(name: str, value) -> float | None:
    if value is None:
        return None
    if _finite(name, value) <= 0:
        raise ValueError(f"{name} must be a price > 0 or None, got {value!r}")
    return float(value)


@dataclass
class _Book:
    "The open round trip of one symbol: the kernels' `Holding` and what the book keeps beside it."
    id: str  # position id: symbol and the exec id of the opening fill
    opened_at: str  # ISO-8601 UTC time of the opening fill
    strategy_id: str | None
    mode: str
    h: Holding
    sl: float | None = None
    tp: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "opened_at": self.opened_at, "strategy_id": self.strategy_id, "mode": self.mode,
                "h": self.h._asdict(), "sl": self.sl, "tp": self.tp}

    @classmethod
    def from_dict(cls, d: dict) -> _Book:
        return cls(**{**d, "h": holding(**d["h"])})


class Portfolio:
    "One asset's book: cash, open positions, realised P&L, fees, peak equity and drawdown."

    def __init__(self, asset: str,  # the asset class of the book
                 cash: float,  # starting cash
                 ):
        if asset not in ASSETS:
            raise ValueError(f"asset {asset!r} is not one of {', '.join(ASSETS)}")
        self.asset, self.cash = asset, _finite("cash", cash)
        self.fees = self.pnl_r = 0.0
        self.trades = self.wins = 0
        self.books: dict[str, _Book] = {}
        self.prices: dict[str, float] = {}  # last price per symbol (a fill's price until the next mark)
        self.peak = self.cash
        self.last_trade: dict | None = None

    @property
    def equity(self) -> float:
        "Cash plus the open positions at their last prices (the backtester's sum, in sorted symbol order)."
        equity = self.cash
        for sym in sorted(self.books):
            pos = self.books[sym].h.pos
            if pos != 0.0:
                equity += pos * self.prices[sym]
        return equity

    @property
    def drawdown_pct(self) -> float:
        "How far equity is below its peak, in percent (a fill may lift equity above the peak before a mark)."
        return float(drawdown_pct_nb(self.equity, self.peak))

    # -- fills ----------------------------------------------------------------------------------------
    def on_fill(self, fill: Fill,  # the venue's fill
                *, reason: str = "order",  # why it happened (an order, or a protective exit)
                strategy_id: str | None = None,  # the strategy that owns a position it opens
                mode: str = "paper",  # paper or live
                ) -> list[Event]:  # PositionOpened / PositionClosed, or nothing
        "Book `fill`; the position events it caused (opened, closed, or none)."
        if mode not in MODES:
            raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
        self.prices[fill.symbol] = fill.price
        book = self.books.get(fill.symbol)
        held = abs(book.h.pos) if book is not None and (book.h.pos > 0) != (fill.side == "buy") else 0.0
        if held == 0.0 or fill.qty <= held:
            return self._book(fill, fill.qty, fill.fee, reason, strategy_id, mode)
        close_fee = fill.fee * (held / fill.qty)  # a flip: close what is held, open the rest (fees pro rata)
        events = self._book(fill, held, close_fee, reason, strategy_id, mode)
        return events + self._book(fill, fill.qty - held, fill.fee - close_fee, reason, strategy_id, mode)

    def _book(self, fill: Fill, qty: float, fee: float, reason: str, strategy_id, mode) -> list[Event]:
        "One fill that does not cross zero, booked by `book_fill_nb`."
        side = 1 if fill.side == "buy" else -1
        book = self.books.get(fill.symbol)
        if book is None:
            book = _Book(f"{fill.symbol}-{fill.exec_id}", utc(fill.ts).isoformat(), strategy_id, mode, holding())
        b = book_fill_nb(book.h, Wallet(self.cash, 0.0), side, float(qty), float(fill.price), float(fee))
        book.h, self.cash = b.holding, b.wallet.cash
        self.fees += fee
        if b.closed:
            return [self._close(fill.symbol, book, b.pnl, fill.ts, reason)]
        self.books[fill.symbol] = book
        return [PositionOpened(fill.ts, position=self.position(fill.symbol))] if b.opened else []

    def _close(self, symbol: str, b: _Book, pnl: float, ts: datetime, reason: str) -> PositionClosed:
        "Realise the round trip of `symbol` (the backtester's trade record) and drop its book."
        self.books.pop(symbol, None)
        h = b.h
        exit_price = h.exit_value / h.exit_qty
        self.pnl_r += pnl
        self.trades += 1
        self.wins += 1 if pnl > 0 else 0
        self.last_trade = {"symbol": symbol, "direction": "long" if h.dir > 0 else "short",
                           "entry_ts": b.opened_at, "exit_ts": utc(ts).isoformat(), "qty": h.entry_qty,
                           "entry_price": h.entry_value / h.entry_qty, "exit_price": exit_price,
                           "notional": h.entry_value, "fees": h.fees, "funding": h.funding, "pnl": pnl,
                           "ret": pnl / h.entry_value, "exit_reason": str(reason), "strategy_id": b.strategy_id,
                           "position_id": b.id}
        return PositionClosed(ts, position_id=b.id, symbol=symbol, exit_price=exit_price, pnl_realized=pnl)

    # -- positions ------------------------------------------------------------------------------------
    def position(self, symbol: str,  # a symbol of the book
                 ) -> Position | None:
        "The open position in `symbol`, or None when flat."
        b = self.books.get(symbol)
        if b is None:
            return None
        return Position(b.id, self.asset, symbol, b.h.pos, b.h.avg, b.sl, b.tp, b.mode, b.opened_at)

    def set_levels(self, symbol: str,  # a symbol with an open position
                   sl: float | None,  # stop-loss price (None: none)
                   tp: float | None,  # take-profit price (None: none)
                   ) -> None:
        "Record the protective levels of the open position in `symbol`."
        if symbol not in self.books:
            raise ValueError(f"no open position in {symbol!r}; open: {', '.join(sorted(self.books)) or 'none'}")
        self.books[symbol].sl, self.books[symbol].tp = _level("sl", sl), _level("tp", tp)

    # -- marks, funding, top-ups ----------------------------------------------------------------------
    def mark(self, symbol: str,  # the symbol
             price: float,  # its last price (> 0)
             ) -> None:
        "Set the last price of `symbol`; update the peak equity."
        if _finite("price", price) <= 0:
            raise ValueError(f"price must be > 0, got {price!r}")
        self.prices[symbol] = float(price)
        self.peak = max(self.peak, self.equity)

    def on_funding(self, symbol: str,  # the perpetual's symbol
                   flow: float,  # received (+) or paid (-)
                   ) -> None:
        "Book a funding flow: received (+) or paid (-)."
        flow = _finite("flow", flow)
        if symbol in self.books:
            b = self.books[symbol]
            b.h, wallet = book_funding_nb(b.h, Wallet(self.cash, 0.0), flow)
            self.cash = wallet.cash
        else:
            self.cash += flow

    def deposit(self, amount: float,  # paper money to add (> 0)
                ) -> None:
        "Add paper money (a bankroll top-up); the drawdown restarts from the new equity."
        if _finite("amount", amount) <= 0:
            raise ValueError(f"deposit amount must be > 0, got {amount!r}")
        self.cash += amount
        self.peak = self.equity

    # -- views ----------------------------------------------------------------------------------------
    def open_positions(self) -> list[dict]:
        "The open positions, by symbol."
        out = []
        for sym in sorted(self.books):
            b = self.books[sym]
            out.append({"symbol": sym, "qty": b.h.pos, "notional": abs(b.h.pos) * self.prices[sym], "entry": b.h.avg,
                        "sl": b.sl, "tp": b.tp,
                        "sl_pct": abs(b.h.avg - b.sl) / b.h.avg * 100 if b.sl is not None else None,
                        "strategy_id": b.strategy_id, "entry_ts": b.opened_at})
        return out

    def valuation(self) -> dict:
        "Equity, cash, unrealised and realised P&L, fees, gross exposure, drawdown and trade counts."
        pnl_u = sum(b.h.pos * (self.prices[s] - b.h.avg) for s, b in sorted(self.books.items()))
        exposure = sum(abs(b.h.pos) * self.prices[s] for s, b in sorted(self.books.items()))
        return {"equity": self.equity, "cash": self.cash, "pnl_u": pnl_u, "pnl_r": self.pnl_r, "fees": self.fees,
                "exposure": exposure, "drawdown_pct": self.drawdown_pct, "trades": self.trades, "wins": self.wins}

    # -- persistence ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        "JSON-able state."
        return {"asset": self.asset, "cash": self.cash, "fees": self.fees, "pnl_r": self.pnl_r, "trades": self.trades,
                "wins": self.wins, "peak": self.peak, "prices": dict(self.prices),
                "books": {s: b.to_dict() for s, b in self.books.items()},
                "last_trade": dict(self.last_trade) if self.last_trade is not None else None}

    @classmethod
    def from_dict(cls, d: dict,  # `to_dict` output
                  ) -> Portfolio:
        "Rebuild from `to_dict` output."
        p = cls(d["asset"], d["cash"])
        p.fees, p.pnl_r, p.trades, p.wins, p.peak = d["fees"], d["pnl_r"], d["trades"], d["wins"], d["peak"]
        p.prices = {s: float(x) for s, x in d["prices"].items()}
        p.books = {s: _Book.from_dict(b) for s, b in d["books"].items()}
        p.last_trade = dict(d["last_trade"]) if d["last_trade"] is not None else None
        return p


# %%
p = Portfolio("crypto_spot", 1000.0)
test_eq((p.equity, p.drawdown_pct, p.trades), (1000.0, 0.0, 0))
test_fail(lambda: Portfolio("stocks", 1000.0), contains="asset 'stocks' is not one of")
test_fail(lambda: Portfolio("forex", float("nan")), contains="cash must be a finite number")


# %% [markdown]
# ## Booking a fill
# `on_fill` is `_apply_fill_nb` line by line. A fill that would flip a position (sell more than is held)
# never happens in the backtester — an entry waits until the opposite position is closed — but a venue
# might report one, so it is booked as a close of the held quantity and an open of the rest, the fee
# split pro rata. It returns `[PositionOpened]` when a position opens, `[PositionClosed]` when it goes
# flat, and nothing while it grows or shrinks.

# %% [markdown]
# `position` is the seed's Position record of an open book; `set_levels` records where its stop-loss
# and take-profit sit (the SL/TP manager attaches them at the venue).

# %%
def _fill(i, side, qty, price, fee=0.0, sym="BTCUSDT", ts="2024-01-01T00:00:00+00:00"):
    return Fill(f"e{i}", f"c{i}", sym, side, qty, price, fee, ts)

p = Portfolio("crypto_spot", 1000.0)
ev = p.on_fill(_fill(1, "buy", 2.0, 100.0, 0.2), strategy_id="rsi2")
test_eq([e.name for e in ev], ["PositionOpened"])
test_eq((ev[0].position.id, ev[0].position.qty, ev[0].position.entry), ("BTCUSDT-e1", 2.0, 100.0))
test_eq(p.cash, 1000.0 - (200.0 + 0.2))
test_eq(p.on_fill(_fill(2, "buy", 2.0, 110.0, 0.2)), [])  # grows: average price moves, no event
test_eq(p.position("BTCUSDT").entry, 105.0)
test_eq(p.on_fill(_fill(3, "sell", 1.0, 120.0, 0.1)), [])  # partial exit
ev = p.on_fill(_fill(4, "sell", 3.0, 120.0, 0.3, ts="2024-01-02T00:00:00+00:00"), reason="take_profit")
test_eq([e.name for e in ev], ["PositionClosed"])
# pnl = (exit value 480 - entry value 420) - fees 0.8
test_close(ev[0].pnl_realized, 59.2, eps=1e-12)
test_eq(p.position("BTCUSDT"), None)
test_close(p.equity, 1059.2, eps=1e-9)
test_eq((p.trades, p.wins, p.last_trade["exit_reason"], p.last_trade["strategy_id"]), (1, 1, "take_profit", "rsi2"))
test_close(p.last_trade["ret"], 59.2 / 420.0, eps=1e-12)
test_eq(p.last_trade["entry_ts"], "2024-01-01T00:00:00+00:00")
test_fail(lambda: p.set_levels("BTCUSDT", 90.0, None), contains="no open position in 'BTCUSDT'")
test_fail(lambda: p.on_fill(_fill(5, "buy", 1.0, 1.0), mode="demo"), contains="mode 'demo' is not one of")

# %% [markdown]
# Shorts: a sell from flat opens a short (negative quantity); it profits when the price falls. A fill that
# crosses zero closes the short and opens a long.

# %%
p = Portfolio("crypto_futures", 1000.0)
ev = p.on_fill(_fill(1, "sell", 1.0, 100.0))
test_eq((ev[0].position.qty, p.cash), (-1.0, 1100.0))
p.set_levels("BTCUSDT", 102.0, 95.0)
test_eq((p.position("BTCUSDT").sl, p.position("BTCUSDT").tp), (102.0, 95.0))
test_fail(lambda: p.set_levels("BTCUSDT", -1.0, None), contains="sl must be a price > 0")
ev = p.on_fill(_fill(2, "buy", 3.0, 90.0, 0.3))
test_eq([e.name for e in ev], ["PositionClosed", "PositionOpened"])
test_close(ev[0].pnl_realized, 10.0 - 0.1, eps=1e-12)
test_eq((ev[1].position.qty, ev[1].position.id), (2.0, "BTCUSDT-e2"))
test_eq(p.last_trade["direction"], "short")

# %% [markdown]
# ## Marks, funding, top-ups
# `mark` sets a symbol's last price and moves the peak; `on_funding` books a funding payment to cash and to
# the open round trip (it is part of that trade's P&L, as in the backtester).

# %%
p = Portfolio("crypto_futures", 1000.0)
p.on_fill(_fill(1, "buy", 1.0, 100.0))
p.mark("BTCUSDT", 150.0)
test_eq((p.equity, p.peak, p.drawdown_pct), (1050.0, 1050.0, 0.0))
p.mark("BTCUSDT", 45.0)
test_close(p.drawdown_pct, 10.0, eps=1e-9)  # 945 is 10 % below 1050
p.on_funding("BTCUSDT", -2.0)
ev = p.on_fill(_fill(2, "sell", 1.0, 45.0))
test_close(ev[0].pnl_realized, -57.0, eps=1e-12)  # price loss and the funding paid
test_eq(p.last_trade["funding"], -2.0)
p.deposit(1000.0)
test_eq((p.equity, p.drawdown_pct), (1943.0, 0.0))
test_fail(lambda: p.deposit(0), contains="deposit amount must be > 0")
test_fail(lambda: p.mark("BTCUSDT", float("inf")), contains="price must be a finite number")

# %% [markdown]
# ## Views for the router, the UI and the notifier
# `open_positions` is what the exposure checks and the dashboard read; `valuation` the seed's
# `{equity, pnl_u, pnl_r}` plus cash, fees, exposure, drawdown and the trade counts. Unrealised P&L is
# against the average entry price, before exit fees (those are not paid yet).

# %%
p = Portfolio("crypto_spot", 1000.0)
p.on_fill(_fill(1, "buy", 2.0, 100.0, 0.5), strategy_id="ibs")
p.set_levels("BTCUSDT", 98.0, None)
p.mark("BTCUSDT", 110.0)
op = p.open_positions()
test_eq(len(op), 1)
test_eq({k: op[0][k] for k in ("symbol", "qty", "notional", "entry", "sl", "tp", "strategy_id")},
        {"symbol": "BTCUSDT", "qty": 2.0, "notional": 220.0, "entry": 100.0, "sl": 98.0, "tp": None,
         "strategy_id": "ibs"})
test_close(op[0]["sl_pct"], 2.0, eps=1e-12)
v = p.valuation()
test_eq((v["equity"], v["cash"], v["pnl_u"], v["pnl_r"], v["fees"], v["exposure"]),
        (1019.5, 799.5, 20.0, 0.0, 0.5, 220.0))

# %% [markdown]
# ## Persistence
# The session state goes into `runtime.json`. Python's `json` writes the shortest repr that reads back to
# the same float, so `to_dict` → JSON → `from_dict` is exact; a restored book goes on booking bit for bit.

# %%
p = Portfolio("crypto_spot", 1000.0)
p.on_fill(_fill(1, "buy", 0.1, 101.3, 0.0101))
p.on_fill(_fill(2, "sell", 0.1, 103.7, 0.0103))
p.on_fill(_fill(3, "buy", 0.3, 99.1, 0.031), strategy_id="x")
p.set_levels("BTCUSDT", 97.0, 105.0)
p.mark("BTCUSDT", 98.7)
q = Portfolio.from_dict(json.loads(json.dumps(p.to_dict())))
test_eq(q.to_dict(), p.to_dict())
test_eq((q.equity, q.position("BTCUSDT"), q.valuation()), (p.equity, p.position("BTCUSDT"), p.valuation()))
q.on_fill(_fill(4, "sell", 0.3, 100.0, 0.03)); p.on_fill(_fill(4, "sell", 0.3, 100.0, 0.03))
test_eq(q.to_dict(), p.to_dict())

# %% [markdown]
# ## Reward points
# Seed 003 §6 (reward_system): the reward of a closed trade is its after-fee return `pnl / notional`
# (with `fee_model='before_fees'` the fees are added back, to study gross edge); points are
# `100 × reward − dd_penalty × drawdown_pct`, plus `tp_bonus` when the take-profit closed the trade — a
# profit taken at the plan's target is worth a little more than one found by luck, and trading deep in a
# drawdown costs points. Bad inputs (NaN P&L, a zero notional) raise instead of producing a NaN reward that
# would poison every average downstream.

# %%
#| export
FEE_MODELS = ("after_fees", "before_fees")


@dataclass(frozen=True)
class RewardParams:
    "Reward settings: points lost per percent of drawdown, bonus for a take-profit exit, fee model."
    dd_penalty: float = 0.1
    tp_bonus: float = 0.5
    fee_model: str = "after_fees"

    def __post_init__(self):
        for name in ("dd_penalty", "tp_bonus"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.fee_model not in FEE_MODELS:
            raise ValueError(f"fee_model must be one of {', '.join(FEE_MODELS)}, got {self.fee_model!r}")


_params = RewardParams()


def set_params(dd_penalty: float, tp_bonus: float, fee_model: str = "after_fees") -> None:
    "Set the reward settings used by `compute_reward`."
    global _params
    _params = RewardParams(dd_penalty, tp_bonus, fee_model)


def get_params() -> RewardParams:
    "The reward settings in force."
    return _params


def compute_reward(trade_ctx: dict,  # pnl (after fees), notional (entry value), fees, exit_reason, drawdown_pct
                   ) -> dict:
    "The reward (return) and reward points of a closed trade."
    pnl, fees, dd = (_finite(k, trade_ctx.get(k)) for k in ("pnl", "fees", "drawdown_pct"))
    notional = _finite("notional", trade_ctx.get("notional"))
    if notional <= 0:
        raise ValueError(f"notional must be > 0 (the trade's entry value), got {notional!r}")
    if dd < 0:
        raise ValueError(f"drawdown_pct must be >= 0, got {dd!r}")
    prm = _params
    reward = (pnl + fees if prm.fee_model == "before_fees" else pnl) / notional
    bonus = prm.tp_bonus if trade_ctx.get("exit_reason") == "take_profit" else 0.0
    return {"reward": reward, "points": 100.0 * reward - prm.dd_penalty * dd + bonus}


# %%
ctx = {"pnl": 3.0, "notional": 100.0, "fees": 0.2, "exit_reason": "take_profit", "drawdown_pct": 5.0}
r = compute_reward(ctx)
test_close(r["reward"], 0.03, eps=1e-15)
test_close(r["points"], 3.0 - 0.5 + 0.5, eps=1e-12)
test_close(compute_reward({**ctx, "exit_reason": "stop_loss"})["points"], 2.5, eps=1e-12)
set_params(0.2, 1.0, fee_model="before_fees")
test_close(compute_reward(ctx)["reward"], 0.032, eps=1e-15)
test_close(compute_reward(ctx)["points"], 3.2 - 1.0 + 1.0, eps=1e-12)
set_params(0.1, 0.5)
test_eq(get_params(), RewardParams())
test_fail(lambda: set_params(-1, 0.5), contains="dd_penalty must be a finite number >= 0")
test_fail(lambda: set_params(0.1, float("nan")), contains="tp_bonus must be a finite number >= 0")
test_fail(lambda: set_params(0.1, 0.5, "gross"), contains="fee_model must be one of after_fees, before_fees")
test_fail(lambda: compute_reward({**ctx, "notional": 0.0}), contains="notional must be > 0")
test_fail(lambda: compute_reward({**ctx, "pnl": float("nan")}), contains="pnl must be a finite number")
test_fail(lambda: compute_reward({**ctx, "notional": float("inf")}), contains="notional must be a finite number")
test_fail(lambda: compute_reward({k: v for k, v in ctx.items() if k != "fees"}),
          contains="fees must be a finite number, got None")

# %% [markdown]
# A closed trade's `last_trade` carries pnl, notional, fees and exit reason; add the book's drawdown and it is
# a reward context:

# %%
p = Portfolio("crypto_spot", 1000.0)
p.on_fill(_fill(1, "buy", 1.0, 100.0, 0.1))
p.on_fill(_fill(2, "sell", 1.0, 102.0, 0.1), reason="take_profit")
r = compute_reward({**p.last_trade, "drawdown_pct": p.drawdown_pct})
test_close(r["reward"], 1.8 / 100.0, eps=1e-15)
test_close(r["points"], 1.8 + 0.5, eps=1e-12)
