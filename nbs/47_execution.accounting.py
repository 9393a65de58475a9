# %% [markdown]
# # Accounting kernels
#
# > How a fill moves a position and a wallet, how a working order meets a bar, and how a protective level exits a position — numba kernels that the backtester's loop, the paper venue and the portfolio all call, so the three cannot disagree.

# %%
#| default_exp execution.accounting

# %% [markdown]
# The backtester runs these kernels millions of times inside its numba loop
# (`tradingbot.validation._backtest_nb`); the paper venue (`SimulatedClient`) and the portfolio call the
# very same compiled functions from Python, one fill at a time. There is no second copy of the
# arithmetic to keep in step: a paper session and a backtest over the same bars agree bit for bit
# because they execute the same instructions (`tests/test_simulated_parity.py`).
#
# The accounting is vectorbt's with `lock_cash=True`: `cash` includes the proceeds of short sales,
# `free` cash is what may open positions (a short locks its value as `debt`), and equity is
# `cash + Σ position × price`. A round trip runs from flat to flat; its realised P&L is
# `direction × (exit value − entry value) − fees + funding`.

# %%
#| export
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradingbot.execution._nb import (ARRIVAL, INFO, ORDER_TYPE, REASON, STATUS, Bar, FillParams, FillResult,
                                      WorkingOrder, fill_order_nb, protective_exit_nb, taker_price_nb)

# %%
#| hide
from fastcore.test import test_close, test_eq


# %% [markdown]
# ## A position and a wallet
# `Holding` is one symbol's position with the sums of its open round trip; `Wallet` is the account's
# money. Both are NamedTuples of floats, so a kernel takes and returns them by value and Python sees
# ordinary tuples. `holding()` builds one with every number a float: numba compiles a kernel per
# argument type, and an integer `pos` would be another kernel with other arithmetic.

# %%
#| export
class Holding(NamedTuple):
    "One symbol's position and the sums of its open round trip."
    pos: float = 0.0  # signed units (short < 0)
    dir: int = 0  # +1 long, -1 short: the direction of the open (or the last) round trip
    avg: float = np.nan  # average entry price
    debt: float = 0.0  # proceeds of the open short, which free cash may not spend
    entry_qty: float = 0.0  # units bought (long) or sold (short) to open and grow the position
    entry_value: float = 0.0  # their value at the fill prices
    exit_qty: float = 0.0  # units traded back so far
    exit_value: float = 0.0
    fees: float = 0.0  # fees of the round trip so far
    funding: float = 0.0  # funding of the round trip so far (received > 0)


class Wallet(NamedTuple):
    "The account's money."
    cash: float  # cash, short-sale proceeds included
    free: float  # what may open positions (short proceeds locked)


class Booking(NamedTuple):
    "What one fill did."
    holding: Holding  # the position after the fill
    wallet: Wallet  # the money after the fill
    opened: bool  # it opened a position from flat
    grew: bool  # it opened or grew the position: protective levels go around the new average price
    closed: bool  # it left the position flat: the round trip is over
    pnl: float  # the round trip's realised P&L when `closed` (NaN otherwise)


def holding(pos: float = 0.0,  # signed units
            dir: int = 0,  # +1 long, -1 short
            avg: float = np.nan,  # average entry price
            debt: float = 0.0,  # short proceeds locked
            entry_qty: float = 0.0, entry_value: float = 0.0,  # opening units and their value
            exit_qty: float = 0.0, exit_value: float = 0.0,  # closing units and their value
            fees: float = 0.0,  # fees of the round trip
            funding: float = 0.0,  # funding of the round trip
           ) -> Holding:
    "A `Holding` with float fields (and an int direction), as the kernels are compiled for."
    return Holding(float(pos), int(dir), float(avg), float(debt), float(entry_qty), float(entry_value),
                   float(exit_qty), float(exit_value), float(fees), float(funding))


# %% [markdown]
# ## Booking a fill
# A buy spends cash and free cash, except that covering a short returns its share of the debt to free
# cash; a sell adds to cash, and a sell that opens or grows a short books its proceeds as debt. A fill
# that opens a position starts a new round trip at its price; one that grows it moves the average
# price. A fill never crosses zero here: the loop and the paper venue make an entry wait until the
# opposite position is closed, and the portfolio splits a venue's crossing fill in two.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def book_fill_nb(h: Holding,  # the position before the fill
                 w: Wallet,  # the money before the fill
                 side: int,  # +1 buy, -1 sell
                 qty: float,  # units filled (> 0, at most the position when it reduces)
                 price: float,  # fill price
                 fee: float,  # fee paid (negative: a rebate)
                ) -> Booking:
    "Book one fill on a position and a wallet."
    pos, cost, cash, free, debt = h.pos, qty * price, w.cash, w.free, h.debt
    if side > 0:
        cash -= cost + fee
        if pos < 0:
            debt_diff = min(qty, -pos) * debt / -pos
            debt -= debt_diff
            free += 2.0 * debt_diff - cost - fee
        else:
            free -= cost + fee
    else:
        cash += cost - fee
        if pos <= 0:
            debt += cost
            free += cost - fee - 2.0 * cost
        else:
            free += cost - fee
    d, avg = h.dir, h.avg
    entry_qty, entry_value, exit_qty, exit_value, fees, funding = (h.entry_qty, h.entry_value, h.exit_qty,
                                                                   h.exit_value, h.fees, h.funding)
    grew = pos == 0.0 or (pos > 0) == (side > 0)
    if grew:
        if pos == 0.0:
            d, avg = side, price
            entry_qty = entry_value = exit_qty = exit_value = fees = funding = 0.0
        else:
            avg = (avg * abs(pos) + price * qty) / (abs(pos) + qty)
        entry_qty += qty
        entry_value += cost
    else:
        exit_qty += qty
        exit_value += cost
    fees += fee
    new_pos = pos + side * qty
    closed = new_pos == 0.0
    pnl = np.nan
    if closed:
        debt = 0.0
        pnl = d * (exit_value - entry_value) - fees + funding
    return Booking(Holding(new_pos, d, avg, debt, entry_qty, entry_value, exit_qty, exit_value, fees, funding),
                   Wallet(cash, free), pos == 0.0, grew, closed, pnl)


@njit(cache=True, error_model="numpy", forceinline=True)
def book_funding_nb(h: Holding,  # the open position
                    w: Wallet,  # the money
                    flow: float,  # funding received (> 0) or paid (< 0), see `funding_flow_nb`
                   ) -> tuple[Holding, Wallet]:  # both after the settlement
    "Book a funding settlement: the wallet's cash and free cash, and the round trip's funding."
    return (Holding(h.pos, h.dir, h.avg, h.debt, h.entry_qty, h.entry_value, h.exit_qty, h.exit_value, h.fees,
                    h.funding + flow), Wallet(w.cash + flow, w.free + flow))


# %% [markdown]
# A long round trip, from Python: buy 2 at 100 with a 0.2 fee, add 2 at 110, sell 1 and then 3 at 120.
# The realised P&L is exit value 480 − entry value 420 − fees 0.8:

# %%
w, h = Wallet(1000.0, 1000.0), holding()
b = book_fill_nb(h, w, 1, 2.0, 100.0, 0.2)
test_eq((b.opened, b.grew, b.closed, b.holding.pos, b.holding.avg, b.wallet.cash), (True, True, False, 2.0, 100.0, 799.8))
b = book_fill_nb(b.holding, b.wallet, 1, 2.0, 110.0, 0.2)
test_eq((b.opened, b.grew, b.holding.avg), (False, True, 105.0))
b = book_fill_nb(b.holding, b.wallet, -1, 1.0, 120.0, 0.1)
b = book_fill_nb(b.holding, b.wallet, -1, 3.0, 120.0, 0.3)
test_eq((b.closed, b.holding.pos, b.holding.debt), (True, 0.0, 0.0))
test_close(b.pnl, 59.2, eps=1e-12)
test_close(b.wallet.cash, 1059.2, eps=1e-9)

# %% [markdown]
# A short locks its proceeds: cash rises, free cash does not; covering it gives the debt back. Funding
# received while short is part of the trade's P&L:

# %%
b = book_fill_nb(holding(), Wallet(1000.0, 1000.0), -1, 2.0, 100.0, 0.2)
test_eq((b.wallet.cash, b.wallet.free, b.holding.debt, b.holding.pos), (1199.8, 799.8, 200.0, -2.0))
h, w = book_funding_nb(b.holding, b.wallet, 0.5)
b = book_fill_nb(h, w, 1, 2.0, 90.0, 0.18)
test_close((b.wallet.cash, b.wallet.free), (1020.12, 1020.12), eps=1e-9)
test_close(b.pnl, 20.0 - 0.38 + 0.5, eps=1e-12)

# %% [markdown]
# ## A working order meets a bar
# An exit (reduce-only) needs no cash and is cut to what is left of the position — or cancelled when
# the position is gone. An entry spends free cash, and waits while an opposite position is still being
# closed. `fresh` says where a position opened by this fill starts its path through the bar: 1 for a
# market order arriving at the open (the whole bar follows it), 2 for a fill elsewhere in the bar (only
# its stop is checked from the fill price on).

# %%
#| export
WORKED, WAITING, NOTHING_TO_CLOSE = 0, 1, 2  # what `work_order_nb` did


class Work(NamedTuple):
    "What one bar did to a working order."
    action: int  # WORKED (see `fill`), WAITING (an entry facing an opposite position) or NOTHING_TO_CLOSE
    fill: FillResult  # the fill model's answer (qty 0 when nothing filled)
    fresh: int  # 0, or where a position opened by this fill starts: 1 at the open, 2 elsewhere in the bar


@njit(cache=True, error_model="numpy", forceinline=True)
def work_order_nb(order: WorkingOrder,  # what is left of the order
                  reduce_only: bool,  # an exit: may only reduce the position
                  pos: float,  # the symbol's position before this bar's fill
                  cash: float,  # the wallet's cash
                  free: float,  # the wallet's free cash
                  bar: Bar,  # the bar (volatility from before the fill)
                  arrival: int,  # ARRIVAL: resting, at the open, at the close
                  params: FillParams,  # the fill model's settings
                 ) -> Work:
    "Run a working order through one bar: the quantity it may trade, then the fill model."
    if reduce_only:
        left = abs(pos) if pos * order.side < 0 else 0.0
        if left == 0.0:
            return Work(NOTHING_TO_CLOSE, FillResult(0.0, np.nan, 0.0, False, STATUS.CANCELLED, INFO.NOTHING_TO_CLOSE,
                                                     0.0, order.triggered), 0)
        qty, cash_limit = min(order.qty, left), np.inf
    else:
        if pos * order.side < 0:
            return Work(WAITING, FillResult(0.0, np.nan, 0.0, False, STATUS.OPEN, INFO.NONE, order.qty,
                                            order.triggered), 0)
        qty, cash_limit = order.qty, max(min(free, cash), 0.0)
    sized = WorkingOrder(order.side, order.type, qty, order.notional, order.limit, order.stop, order.tif,
                         order.post_only, order.triggered)
    r = fill_order_nb(sized, bar, arrival, cash_limit, params)
    fresh = 0
    if r.qty > 0.0 and pos == 0.0:
        fresh = 1 if order.type == ORDER_TYPE.MARKET and arrival != ARRIVAL.CLOSE else 2
    return Work(WORKED, r, fresh)


# %%
bar = Bar(100.0, 101.0, 99.0, 100.5, 1e6)
mkt = WorkingOrder(1, ORDER_TYPE.MARKET, 5.0)
r = work_order_nb(mkt, False, 0.0, 1000.0, 1000.0, bar, ARRIVAL.OPEN, FillParams())
test_eq((r.action, r.fill.qty, r.fill.price, r.fresh), (WORKED, 5.0, 100.0, 1))
r = work_order_nb(mkt._replace(side=-1), True, 2.0, 1000.0, 1000.0, bar, ARRIVAL.OPEN, FillParams())
test_eq((r.action, r.fill.qty, r.fresh), (WORKED, 2.0, 0))  # an exit is cut to the position
test_eq(work_order_nb(mkt, True, 0.0, 1e3, 1e3, bar, ARRIVAL.OPEN, FillParams()).action, NOTHING_TO_CLOSE)
test_eq(work_order_nb(mkt, False, -1.0, 1e3, 1e3, bar, ARRIVAL.OPEN, FillParams()).action, WAITING)
r = work_order_nb(mkt, False, 0.0, 300.0, 200.0, bar, ARRIVAL.OPEN, FillParams())
test_close(r.fill.qty, 2.0)  # free cash buys 2 units


# %% [markdown]
# ## A protective exit
# `levels_touched_nb` is the cheap test a bar must pass before the exit is worked out: does its range
# reach the stop, the trailing stop or the take-profit? `protective_fill_nb` then prices the exit:
# the first level met on the bar's path (stop before take-profit), a stop or trailing stop as a taker
# (spread and slippage against it), a take-profit as a maker at its level. A position opened inside
# the bar (`fresh == 2`) is checked from its fill price and only against its stop.

# %%
#| export
class ProtectiveFill(NamedTuple):
    "How a protective level closed a position (level NaN: none was met)."
    level: float  # the level that traded
    reason: int  # REASON.STOP_LOSS, TRAILING_STOP or TAKE_PROFIT (-1: none)
    price: float  # the fill price
    fee: float
    maker: bool
    order_type: int  # ORDER_TYPE.STOP for a stop, LIMIT for a take-profit


@njit(cache=True, error_model="numpy", forceinline=True)
def levels_touched_nb(direction: int,  # +1 long, -1 short
                      sl: float,  # stop-loss price (NaN: none)
                      trail: float,  # trailing-stop price (NaN: none)
                      tp: float,  # take-profit price (NaN: none)
                      high: float,  # the bar's high
                      low: float,  # the bar's low
                     ) -> bool:
    "True when the bar's range reaches one of the position's protective levels."
    worst, best = (low, high) if direction > 0 else (high, low)
    return direction * (worst - sl) <= 0 or direction * (worst - trail) <= 0 or direction * (best - tp) > 0


@njit(cache=True, error_model="numpy", forceinline=True)
def protective_fill_nb(direction: int,  # +1 long, -1 short
                       qty: float,  # units held
                       sl: float,  # stop-loss price (NaN: none)
                       trail: float,  # trailing-stop price (NaN: none)
                       tp: float,  # take-profit price (NaN: none)
                       fresh: int,  # 2 when the position opened inside this bar
                       fresh_price: float,  # its fill price then
                       bar: Bar,  # the bar (volatility from before the fill)
                       params: FillParams,  # the fill model's settings
                      ) -> ProtectiveFill:
    "The exit a protective level forces in this bar, priced; level NaN when none is met."
    start, target = (bar.open, tp) if fresh != 2 else (fresh_price, np.nan)
    level, reason = protective_exit_nb(direction, sl, trail, target, start, bar.high, bar.low)
    if level != level:
        return ProtectiveFill(np.nan, -1, np.nan, 0.0, False, ORDER_TYPE.STOP)
    if reason == REASON.TAKE_PROFIT:
        price, fee_rate, maker, otype = level, params.maker_fee, True, ORDER_TYPE.LIMIT
    else:
        price, fee_rate, maker, otype = taker_price_nb(-direction, level, bar, params), params.taker_fee, False, \
            ORDER_TYPE.STOP
    return ProtectiveFill(level, reason, price, qty * price * fee_rate, maker, otype)


# %%
fees = FillParams(maker_fee=0.0002, taker_fee=0.00055, spread=0.0002)
hit = Bar(100.0, 100.5, 97.0, 98.0, 1e6)
test_eq(levels_touched_nb(1, 98.0, np.nan, 105.0, hit.high, hit.low), True)
test_eq(levels_touched_nb(1, 96.0, np.nan, 105.0, hit.high, hit.low), False)
x = protective_fill_nb(1, 2.0, 98.0, np.nan, 105.0, 0, 0.0, hit, fees)
test_eq((x.level, x.reason, x.maker, x.order_type), (98.0, REASON.STOP_LOSS, False, ORDER_TYPE.STOP))
test_close(x.price, 98.0 * (1 - 0.0001))
test_close(x.fee, 2.0 * x.price * 0.00055)
x = protective_fill_nb(-1, 1.0, 103.0, np.nan, 99.0, 0, 0.0, Bar(100.0, 100.2, 98.5, 99.0), fees)
test_eq((x.price, x.reason, x.maker), (99.0, REASON.TAKE_PROFIT, True))  # a short's target, as a maker
test_eq(np.isnan(protective_fill_nb(1, 1.0, 90.0, np.nan, 120.0, 0, 0.0, hit, fees).level), True)
