# %% [markdown]
# # Backtest loop
#
# > The event-driven numba loop of the backtester: bars in, the fill kernels of `tradingbot.execution._nb` applied to every working order and open position, records and an equity curve out.

# %%
#| default_exp validation._backtest_nb

# %% [markdown]
# This module holds only kernels; `tradingbot.validation.backtest` is their pandas face and its
# notebook shows them at work. The loop runs over the bars of a **group** of columns (symbols) that
# share one cash account. Each bar has two phases:
#
# 1. **open → intrabar**: funding settles on the position carried into the bar; each column's working
#    orders meet the bar (`fill_order_nb`) — the exit slot first, then the entry slot; then the
#    protective stops of the open position are checked on the bar's path (`protective_exit_nb`).
# 2. **close**: decisions — time stops, signals or per-bar orders — become working orders that reach
#    the market `latency` bars later (`arrival_bar_nb`); in the close-fill convention they meet the
#    close at once. Then equity is marked at the close.
#
# A column holds at most two working orders: an **exit** slot (reduce-only) and an **entry** slot, so
# a reversal is a close followed by an open. Cash follows vectorbt's accounting with `lock_cash=True`:
# `cash` includes short-sale proceeds, `free_cash` is what may open positions (a short locks its
# value), equity is `cash + Σ position × close`. All state lives in preallocated structured arrays and
# no bar allocates: when the record buffers run low the loop stops, and the caller grows them.

# %%
#| export
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradingbot.execution._nb import (Arrival, Bar, FillParams, Info, OrderType, Reason, Status, WorkingOrder,
                                      arrival_bar_nb, fill_order_nb, funding_flow_nb, protective_exit_nb,
                                      stop_level_nb, stop_within_cap_nb, taker_price_nb, time_stop_due_nb,
                                      trail_peak_nb)

# %%
#| hide
from fastcore.test import test_close, test_eq


# %% [markdown]
# ## Inputs and records
# All 2-D inputs are C-ordered with one **row per column** (symbol or parameter combination) and one
# entry per bar, so a column's bars are contiguous. A market row is shared by every column whose
# `pcols` entry points at it (a sweep runs 210 signal columns over one price row). Optional inputs a
# run does not use (spread, volatility, funding, stop distances, signals or per-bar orders) are passed as
# `(1, 1)` placeholders and switched off in `SimConfig` — numba does not check bounds, so a flag guards
# every read of an optional input.

# %%
#| export
class Market(NamedTuple):
    "Per-bar market rows, shape (n_price_rows, n_bars); spread, vol and funding may be (1, 1) when unused."
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    spread: np.ndarray  # full spread, price units (NaN: configured)
    vol: np.ndarray  # volatility in price units known at each bar's close (slippage)
    funding: np.ndarray  # summed funding rate settling in each bar


class Signals(NamedTuple):
    "Boolean decision rows, shape (n_cols, n_bars)."
    long_entries: np.ndarray
    long_exits: np.ndarray
    short_entries: np.ndarray
    short_exits: np.ndarray


class OrderArrays(NamedTuple):
    "Per-bar orders decided at each bar's close, shape (n_cols, n_bars); size NaN or 0: none."
    size: np.ndarray  # signed units: > 0 buy, < 0 sell
    type: np.ndarray  # OrderType (int64)
    limit: np.ndarray
    stop: np.ndarray


class Stops(NamedTuple):
    "Protective stops per column (fractions; NaN: none) and per-bar stop distances."
    sl: np.ndarray  # (n_cols,) stop-loss distance from the entry
    tp: np.ndarray  # (n_cols,) take-profit distance
    trail: np.ndarray  # (n_cols,) trailing-stop distance from the best price since entry
    time_bars: np.ndarray  # (n_cols,) int64 bars to the time stop (0: none)
    dist: np.ndarray  # (n_cols, n_bars) stop-loss distance in price units decided with each entry (ATR stops)


class SimConfig(NamedTuple):
    "Scalar settings of one run."
    at_close: bool  # orders meet the close of their decision bar (vectorbt convention) instead of a later open
    latency: int
    sizing: int  # Sizing
    size: float  # notional, or fraction of equity
    init_cash: float
    cooldown: int  # bars after a protective exit in which entry signals are ignored
    tif: int
    post_only: bool
    max_stop: float  # SAFETY.MAX_STOP_LOSS_PCT as a fraction
    use_le: bool  # long entries given (signal rows a run lacks are (1, 1) placeholders, never read)
    use_lx: bool  # long exits given
    use_se: bool  # short entries given
    use_sx: bool  # short exits given
    use_orders: bool
    has_spread: bool
    has_vol: bool
    has_funding: bool
    has_dist: bool
    record: bool  # write order, fill and trade records (a sweep keeps statistics only)


class _Sizing(NamedTuple):
    CASH: int = 0  # all free cash (vectorbt size=inf)
    NOTIONAL: int = 1  # a fixed amount of money per entry
    EQUITY: int = 2  # a fraction of equity at the decision


Sizing = _Sizing()

_i8, _f8 = np.int64, np.float64
ORDER_DT = np.dtype([("id", _i8), ("col", _i8), ("bar", _i8), ("side", _i8), ("type", _i8), ("tif", _i8), ("reason", _i8),
                     ("qty", _f8), ("notional", _f8), ("limit", _f8), ("stop", _f8), ("status", _i8), ("info", _i8),
                     ("filled_qty", _f8), ("avg_price", _f8), ("fees", _f8)], align=True)
FILL_DT = np.dtype([("order_id", _i8), ("col", _i8), ("bar", _i8), ("side", _i8), ("qty", _f8), ("price", _f8),
                    ("fee", _f8), ("maker", np.bool_), ("reason", _i8)], align=True)
TRADE_DT = np.dtype([("col", _i8), ("direction", _i8), ("entry_bar", _i8), ("exit_bar", _i8), ("qty", _f8),
                     ("entry_price", _f8), ("exit_price", _f8), ("fees", _f8), ("funding", _f8), ("pnl", _f8),
                     ("ret", _f8), ("exit_reason", _i8)], align=True)
STAT_FIELDS = ("final_equity", "max_drawdown", "n_trades", "n_wins", "fees", "n_orders", "n_fills")

# %% [markdown]
# The loop's own state: a position record per column and two working-order slots per column.

# %%
#| export
_POS_DT = np.dtype([("pos", _f8), ("debt", _f8), ("avg", _f8), ("dir", _i8), ("sl", _f8), ("tp", _f8), ("peak", _f8),
                    ("entry_bar", _i8), ("entry_qty", _f8), ("entry_value", _f8), ("exit_qty", _f8), ("exit_value", _f8),
                    ("fees", _f8), ("funding", _f8), ("cooldown_end", _i8), ("fresh", _i8), ("fresh_price", _f8)],
                   align=True)
_SLOT_DT = np.dtype([("active", np.bool_), ("side", _i8), ("type", _i8), ("qty", _f8), ("notional", _f8), ("limit", _f8),
                     ("stop", _f8), ("tif", _i8), ("post_only", np.bool_), ("triggered", np.bool_), ("seen", np.bool_),
                     ("arrive_bar", _i8), ("arrive_close", np.bool_), ("reason", _i8), ("order_id", _i8),
                     ("sl_dist", _f8), ("reduce_only", np.bool_)], align=True)
_EXIT, _ENTRY = 0, 1
_CASH, _FREE, _FEES, _PEAK, _MAX_DD, _EQUITY, _FLOOR = range(7)  # account cells: money, then running statistics
_N_ORDERS, _N_FILLS, _N_TRADES, _N_WINS = 0, 1, 2, 3  # counters


# %%
#| export
@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _write_order_nb(orders, cnt, record, col, bar, side, otype, tif, reason, qty, notional, limit, stop, status, info):
    "Append an order record (when recording); its id."
    oid = cnt[_N_ORDERS]
    cnt[_N_ORDERS] += 1
    if record:
        o = orders[oid]
        o.id, o.col, o.bar, o.side, o.type, o.tif, o.reason = oid, col, bar, side, otype, tif, reason
        o.qty, o.notional, o.limit, o.stop, o.status, o.info = qty, notional, limit, stop, status, info
        o.filled_qty, o.avg_price, o.fees = 0.0, np.nan, 0.0
    return oid


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _close_order_nb(orders, record, oid, status, info):
    "Set the final status of an order record."
    if record:
        orders[oid].status = status
        orders[oid].info = info


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _queue_nb(slot, orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, reduce_only, sl_dist, cfg):
    "Put a new working order into `slot`, cancelling the one it replaces."
    if slot.active:
        _close_order_nb(orders, cfg.record, slot.order_id, Status.CANCELLED, Info.REPLACED)
    slot.active, slot.side, slot.type, slot.qty, slot.notional = True, side, otype, qty, notional
    slot.limit, slot.stop, slot.tif, slot.post_only = limit, stop, cfg.tif, cfg.post_only
    slot.triggered, slot.seen, slot.reason, slot.reduce_only, slot.sl_dist = False, False, reason, reduce_only, sl_dist
    slot.arrive_bar, slot.arrive_close = arrival_bar_nb(i, cfg.latency, cfg.at_close), cfg.at_close
    slot.order_id = _write_order_nb(orders, cnt, cfg.record, col, i, side, otype, cfg.tif, reason, qty, notional,
                                    limit, stop, Status.OPEN, Info.NONE)


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _cancel_nb(slot, orders, record, info):
    "Cancel the working order in `slot`, if any."
    if slot.active:
        slot.active = False
        _close_order_nb(orders, record, slot.order_id, Status.CANCELLED, info)


# %% [markdown]
# ## Applying a fill
# A fill moves cash and position with vectorbt's accounting, keeps the round trip's sums (a trade is
# flat → flat), sets the protective levels when a position opens or grows (from the entry price, then
# from the average price), and writes the trade record when the position is flat again.

# %%
#| export
@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _set_levels_nb(ps, ref, sl, tp, dist):
    "Protective levels of a position around `ref`: the tighter of the % stop and the distance stop, the TP."
    d = ps.dir
    level = stop_level_nb(d, ref, sl) if sl == sl else np.nan
    if dist == dist:
        by_dist = ref - d * dist
        if level != level or d * (by_dist - level) > 0:
            level = by_dist
    ps.sl = level
    ps.tp = stop_level_nb(-d, ref, tp) if tp == tp else np.nan


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _apply_fill_nb(ps, acct, cnt, fills, trades, record, col, i, oid, side, qty, price, fee, maker, reason, sl, tp,
                   sl_dist):
    "Book one fill on position `ps` and the account; close the trade when the position is flat."
    pos = ps.pos
    cost = qty * price
    if side > 0:
        acct[_CASH] -= cost + fee
        if pos < 0:
            debt_diff = min(qty, -pos) * ps.debt / -pos
            ps.debt -= debt_diff
            acct[_FREE] += 2.0 * debt_diff - cost - fee
        else:
            acct[_FREE] -= cost + fee
    else:
        acct[_CASH] += cost - fee
        if pos <= 0:
            ps.debt += cost
            acct[_FREE] += cost - fee - 2.0 * cost
        else:
            acct[_FREE] += cost - fee
    acct[_FEES] += fee
    if record:
        f = fills[cnt[_N_FILLS]]
        f.order_id, f.col, f.bar, f.side, f.qty, f.price, f.fee, f.maker, f.reason = (oid, col, i, side, qty, price,
                                                                                      fee, maker, reason)
    cnt[_N_FILLS] += 1
    if pos == 0.0 or (pos > 0) == (side > 0):  # opens or grows
        if pos == 0.0:
            ps.dir, ps.entry_bar, ps.avg, ps.peak = side, i, price, price
            ps.entry_qty = ps.entry_value = ps.exit_qty = ps.exit_value = ps.fees = ps.funding = 0.0
        else:
            ps.avg = (ps.avg * abs(pos) + price * qty) / (abs(pos) + qty)
        ps.entry_qty += qty
        ps.entry_value += cost
        _set_levels_nb(ps, ps.avg, sl, tp, sl_dist)
    else:
        ps.exit_qty += qty
        ps.exit_value += cost
    ps.fees += fee
    ps.pos = pos + side * qty
    if ps.pos == 0.0:
        ps.debt = 0.0
        pnl = ps.dir * (ps.exit_value - ps.entry_value) - ps.fees + ps.funding
        if record:
            t = trades[cnt[_N_TRADES]]
            t.col, t.direction, t.entry_bar, t.exit_bar, t.qty = col, ps.dir, ps.entry_bar, i, ps.entry_qty
            t.entry_price, t.exit_price = ps.entry_value / ps.entry_qty, ps.exit_value / ps.exit_qty
            t.fees, t.funding, t.pnl, t.ret, t.exit_reason = ps.fees, ps.funding, pnl, pnl / ps.entry_value, reason
        cnt[_N_TRADES] += 1
        cnt[_N_WINS] += 1 if pnl > 0 else 0
        ps.sl = ps.tp = np.nan


# %% [markdown]
# ## A working order meets a bar
# The exit slot needs no cash and is cut to what is left of the position; the entry slot spends free
# cash and waits while an opposite position is still being closed. After a fill the order's size is a
# number of units (its notional has been converted at the first fill).

# %%
#| export
@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _bar_nb(mkt, cfg, pc, i, at_close):
    "Bar `i` of price row `pc` as the kernels see it (volatility from before the fill)."
    spread = mkt.spread[pc, i] if cfg.has_spread else np.nan
    j = i if at_close else i - 1
    vol = mkt.vol[pc, j] if cfg.has_vol and j >= 0 else np.nan
    return Bar(mkt.open[pc, i], mkt.high[pc, i], mkt.low[pc, i], mkt.close[pc, i], mkt.volume[pc, i], spread, vol)


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i, bar, arrival, sl, tp, cfg, params):
    "Run the order in `slot` through `bar`, met as `arrival` says (resting, at the open, at the close)."
    pos, at_close = ps.pos, arrival == Arrival.CLOSE
    if slot.reduce_only:
        left = abs(pos) if pos * slot.side < 0 else 0.0
        if left == 0.0:
            _cancel_nb(slot, orders, cfg.record, Info.NOTHING_TO_CLOSE)
            return
        qty, cash_limit = min(slot.qty, left), np.inf
    else:
        if pos * slot.side < 0:
            return  # an entry waits until the opposite position is closed
        qty, cash_limit = slot.qty, max(min(acct[_FREE], acct[_CASH]), 0.0)
    order = WorkingOrder(slot.side, slot.type, qty, slot.notional, slot.limit, slot.stop, slot.tif, slot.post_only,
                         slot.triggered)
    r = fill_order_nb(order, bar, arrival, cash_limit, params)
    slot.seen, slot.triggered = True, r.triggered
    oid = slot.order_id
    if r.qty > 0.0:
        if pos == 0.0:  # where the new position's path starts: the open for a market order arriving there
            ps.fresh = 1 if slot.type == OrderType.MARKET and not at_close else 2
            ps.fresh_price = r.price
        _apply_fill_nb(ps, acct, cnt, fills, trades, cfg.record, col, i, oid, slot.side, r.qty, r.price, r.fee,
                       r.maker, slot.reason, sl, tp, slot.sl_dist)
        slot.notional = np.inf
        slot.qty = r.remaining
        if cfg.record:
            o = orders[oid]
            o.avg_price = (r.price * r.qty + (o.avg_price * o.filled_qty if o.filled_qty > 0 else 0.0)) / (
                o.filled_qty + r.qty)
            o.filled_qty += r.qty
            o.fees += r.fee
    if r.status != Status.OPEN:
        slot.active = False
        _close_order_nb(orders, cfg.record, oid, r.status, r.info)


# %% [markdown]
# ## Protective exits
# Stops rest at the venue, so they act within the bar. A position opened at this bar's open by a market
# order sees the whole bar; one opened inside the bar (a limit or stop entry) is checked against its
# stop only, from its fill on (the conservative reading: the bar's low may have come after the fill,
# its high before). A stop-loss or trailing stop fills as a taker (spread and slippage), a take-profit
# as a maker at its price. The exit is not capped by volume: a stop that could not get out would leave
# risk the model cannot price. The loop calls this only for a bar that reaches a level.

# %%
#| export
@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _protect_nb(ps, acct, cnt, orders, fills, trades, col, i, bar, trail_level, cfg, params):
    "Exit the open position `ps` if `bar` hits one of its protective levels; True when it did."
    d = ps.dir
    start, tp = (bar.open, ps.tp) if ps.fresh != 2 else (ps.fresh_price, np.nan)
    level, reason = protective_exit_nb(d, ps.sl, trail_level, tp, start, bar.high, bar.low)
    if level != level:
        return False
    side, qty = -d, abs(ps.pos)
    if reason == Reason.TAKE_PROFIT:
        price, fee_rate, maker = level, params.maker_fee, True
        otype = OrderType.LIMIT
    else:
        price, fee_rate, maker = taker_price_nb(side, level, bar, params), params.taker_fee, False
        otype = OrderType.STOP
    fee = qty * price * fee_rate
    oid = _write_order_nb(orders, cnt, cfg.record, col, i, side, otype, 0, reason, qty, np.inf,
                          level if maker else np.nan, np.nan if maker else level, Status.FILLED, Info.NONE)
    if cfg.record:
        orders[oid].filled_qty, orders[oid].avg_price, orders[oid].fees = qty, price, fee
    _apply_fill_nb(ps, acct, cnt, fills, trades, cfg.record, col, i, oid, side, qty, price, fee, maker, reason, np.nan,
                   np.nan, np.nan)
    ps.cooldown_end = i + cfg.cooldown - 1
    return True


# %% [markdown]
# ## Decisions at the close
# Signals follow vectorbt's `from_signals` defaults: an entry and an exit of one direction on the same
# bar cancel, as do a long and a short entry; an entry while the column is (or is about to be) in that
# direction is ignored; an opposite entry reverses. The "target" direction counts working orders, so
# with latency a signal the pending orders already carry out is not placed twice. Entries are refused
# during the cooldown after a protective exit, and when their per-bar stop distance breaks the cap.

# %%
#| export
@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _target_nb(exit_slot, entry_slot, pos):
    "Direction a column is heading to once its working orders fill."
    if entry_slot.active:
        return entry_slot.side
    if exit_slot.active:
        return 0
    return 1 if pos > 0 else (-1 if pos < 0 else 0)


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _entry_nb(entry_slot, orders, cnt, col, i, side, otype, qty, limit, stop, reason, equity, dist, ref, cfg):
    "Queue an entry of `side` (sized by `qty`, or by the sizing rule when qty is inf), after the stop-distance check."
    notional = np.inf
    if qty == np.inf and cfg.sizing != Sizing.CASH:
        notional = cfg.size if cfg.sizing == Sizing.NOTIONAL else cfg.size * equity
        if not notional > 0.0:
            return
    if dist == dist and not (dist > 0.0 and stop_within_cap_nb(ref, ref - side * dist, cfg.max_stop)):
        _write_order_nb(orders, cnt, cfg.record, col, i, side, otype, cfg.tif, reason, qty, notional, limit, stop,
                        Status.REJECTED, Info.STOP_TOO_WIDE)
        return
    _queue_nb(entry_slot, orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, False, dist, cfg)


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _decide_nb(exit_slot, entry_slot, ps, orders, cnt, col, i, le, lx, se, sx, size, otype, limit, stop, dist, ref,
               time_up, equity, cfg):
    "Turn a column's time stop, signals and per-bar order at bar `i` into working orders."
    pos = ps.pos
    if time_up and not exit_slot.active:
        _queue_nb(exit_slot, orders, cnt, col, i, -ps.dir, OrderType.MARKET, np.inf, np.inf, np.nan, np.nan,
                  Reason.TIME_STOP, True, np.nan, cfg)
    if le and lx:
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:
        le = se = False
    if i <= ps.cooldown_end:
        le = se = False
    target = _target_nb(exit_slot, entry_slot, pos)
    if (target > 0 and (lx or se)) or (target < 0 and (sx or le)):
        _cancel_nb(entry_slot, orders, cfg.record, Info.REPLACED)
        if pos != 0.0 and not exit_slot.active:
            _queue_nb(exit_slot, orders, cnt, col, i, -1 if pos > 0 else 1, OrderType.MARKET, np.inf, np.inf, np.nan,
                      np.nan, Reason.SIGNAL, True, np.nan, cfg)
        target = 0
    if target == 0 and (le or se):
        _entry_nb(entry_slot, orders, cnt, col, i, 1 if le else -1, OrderType.MARKET, np.inf, np.nan, np.nan,
                  Reason.SIGNAL, equity, dist, ref, cfg)
    if size == size and size != 0.0:
        side, qty = (1 if size > 0 else -1), abs(size)
        _cancel_nb(exit_slot, orders, cfg.record, Info.REPLACED)
        _cancel_nb(entry_slot, orders, cfg.record, Info.REPLACED)
        if pos * side < 0:  # the part that closes the position, then the part that opens the other way
            close_qty = min(qty, abs(pos))
            _queue_nb(exit_slot, orders, cnt, col, i, side, otype, close_qty, np.inf, limit, stop, Reason.ORDER, True,
                      np.nan, cfg)
            qty -= close_qty
        if qty > 0.0:
            _entry_nb(entry_slot, orders, cnt, col, i, side, otype, qty, limit, stop, Reason.ORDER, equity, dist, ref,
                      cfg)


# %% [markdown]
# ## The loop
# Most bars are **quiet**: no order working, no signal or order decided, no protective level within the
# bar's range, no time stop or funding due. `_quiet_nb` tells them apart with a few loads and compares,
# and a quiet bar only marks equity (and moves a trailing peak). Every other bar goes through the full
# treatment above. The helpers run only on events: numba passes their arguments by value, so calling
# them on every bar would cost more than the bar.
#
# The kernels of this loop allocate nothing, so they are compiled without numba's reference counting
# (`_nrt=False`): otherwise every call would increment and decrement, atomically, the counts of the
# two dozen arrays it is handed, which costs more than the work of an event. When the record buffers
# might overflow within the next bar, `_run_bars_nb` returns that bar's index; the caller grows them
# (in numpy) and calls again.

# %%
#| export
@njit(cache=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _quiet_nb(i, c0, c1, pcols, mkt, sig, ords, stops, cfg, ps_all, slots):
    "True when nothing can happen to the group's columns in bar `i`."
    for k in range(c1 - c0):
        col = c0 + k
        if slots[k, _EXIT].active or slots[k, _ENTRY].active:
            return False
        if ((cfg.use_le and sig.long_entries[col, i]) or (cfg.use_lx and sig.long_exits[col, i])
                or (cfg.use_se and sig.short_entries[col, i]) or (cfg.use_sx and sig.short_exits[col, i])):
            return False
        if cfg.use_orders and ords.size[col, i] == ords.size[col, i] and ords.size[col, i] != 0.0:
            return False
        ps = ps_all[k]
        if ps.pos != 0.0:
            pc = pcols[col]
            if (cfg.has_funding and mkt.funding[pc, i] != 0.0) or time_stop_due_nb(ps.entry_bar, i,
                                                                                   stops.time_bars[col]):
                return False
            d, trail = ps.dir, stops.trail[col]
            trail_level = stop_level_nb(d, ps.peak, trail) if trail == trail else np.nan
            worst, best = (mkt.low[pc, i], mkt.high[pc, i]) if d > 0 else (mkt.high[pc, i], mkt.low[pc, i])
            if d * (worst - ps.sl) <= 0 or d * (worst - trail_level) <= 0 or d * (best - ps.tp) > 0:
                return False
    return True


@njit(cache=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _useful_nb(pos, exit_slot, entry_slot, le, lx, se, sx, size, time_up):
    "False when a bar's decisions cannot change anything (e.g. a long entry signal while long)."
    return (exit_slot.active or entry_slot.active or time_up or (size == size and size != 0.0)
            or (le and pos <= 0) or (se and pos >= 0) or (lx and pos > 0) or (sx and pos < 0))


@njit(cache=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _open_phase_nb(i, c0, c1, pcols, mkt, stops, cfg, params, ps_all, slots, acct, cnt, orders, fills, trades):
    "Funding, working orders and protective stops of every column of the group in bar `i`."
    for k in range(c1 - c0):
        col, ps = c0 + k, ps_all[k]
        pc = pcols[col]
        if cfg.has_funding and ps.pos != 0.0 and mkt.funding[pc, i] != 0.0:
            flow = funding_flow_nb(ps.pos, mkt.open[pc, i], mkt.funding[pc, i])
            acct[_CASH] += flow
            acct[_FREE] += flow
            ps.funding += flow
        for s in range(2):
            slot = slots[k, s]
            if slot.active and (slot.arrive_bar < i or (slot.arrive_bar == i and not slot.arrive_close)):
                # codes passed as int64, not literals: numba would compile a copy of the callee per literal
                arrival = np.int64(Arrival.RESTING if slot.seen else Arrival.OPEN)
                _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i,
                              _bar_nb(mkt, cfg, pc, i, arrival == Arrival.CLOSE), arrival, stops.sl[col],
                              stops.tp[col], cfg, params)
        if ps.pos != 0.0:
            d, trail = ps.dir, stops.trail[col]
            trail_level = stop_level_nb(d, ps.peak, trail) if trail == trail else np.nan
            worst, best = (mkt.low[pc, i], mkt.high[pc, i]) if d > 0 else (mkt.high[pc, i], mkt.low[pc, i])
            if d * (worst - ps.sl) <= 0 or d * (worst - trail_level) <= 0 or d * (best - ps.tp) > 0:
                if _protect_nb(ps, acct, cnt, orders, fills, trades, col, i, _bar_nb(mkt, cfg, pc, i, False),
                               trail_level, cfg, params):
                    continue
            if trail == trail and ps.fresh != 2:
                ps.peak = trail_peak_nb(d, ps.peak, mkt.high[pc, i], mkt.low[pc, i])


@njit(cache=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _close_phase_nb(i, c0, c1, pcols, mkt, sig, ords, stops, cfg, params, ps_all, slots, acct, cnt, orders, fills,
                    trades):
    "Decisions of every column of the group at bar `i`'s close, and the fills at the close."
    if cfg.sizing == Sizing.EQUITY:
        acct[_EQUITY] = acct[_CASH]
        for k in range(c1 - c0):
            acct[_EQUITY] += ps_all[k].pos * mkt.close[pcols[c0 + k], i]
    for k in range(c1 - c0):
        col, ps = c0 + k, ps_all[k]
        pc = pcols[col]
        le, lx = cfg.use_le and sig.long_entries[col, i], cfg.use_lx and sig.long_exits[col, i]
        se, sx = cfg.use_se and sig.short_entries[col, i], cfg.use_sx and sig.short_exits[col, i]
        size = ords.size[col, i] if cfg.use_orders else np.nan
        time_up = ps.pos != 0.0 and time_stop_due_nb(ps.entry_bar, i, stops.time_bars[col])
        if _useful_nb(ps.pos, slots[k, _EXIT], slots[k, _ENTRY], le, lx, se, sx, size, time_up):
            otype, limit, stop = ((ords.type[col, i], ords.limit[col, i], ords.stop[col, i]) if cfg.use_orders
                                  else (OrderType.MARKET, np.nan, np.nan))
            dist = stops.dist[col, i] if cfg.has_dist else np.nan
            _decide_nb(slots[k, _EXIT], slots[k, _ENTRY], ps, orders, cnt, col, i, le, lx, se, sx, size, otype,
                       limit, stop, dist, mkt.close[pc, i], time_up, acct[_EQUITY], cfg)
        if cfg.at_close:
            for s in range(2):
                slot = slots[k, s]
                if slot.active and slot.arrive_bar == i and slot.arrive_close and not slot.seen:
                    arrival = np.int64(Arrival.CLOSE)
                    _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i,
                                  _bar_nb(mkt, cfg, pc, i, arrival == Arrival.CLOSE), arrival, stops.sl[col],
                                  stops.tp[col], cfg, params)
        ps.fresh = 0  # the next bar starts with no position opened inside it


@njit(cache=True, _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _mark_nb(i, equity, equity_out, acct):
    "Record equity at bar `i`'s close and update the running peak and maximum drawdown."
    if equity_out.shape[0] > 0:
        equity_out[i] = equity
    if equity > acct[_PEAK]:
        acct[_PEAK] = equity
        acct[_FLOOR] = equity * (1.0 - acct[_MAX_DD])
    elif equity < acct[_FLOOR]:  # a deeper drawdown: compare first, divide only then
        acct[_MAX_DD] = 1.0 - equity / acct[_PEAK]
        acct[_FLOOR] = equity
    acct[_EQUITY] = equity


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _scan_one_nb(start, n, ps, high, low, close, funding, le, lx, se, sx, size, trail, time_bars, cfg, equity_out,
                 acct):
    "Run the quiet bars of a one-column group from `start` on; the first bar that needs the full treatment."
    pos, d, sl, tp, peak = ps.pos, ps.dir, ps.sl, ps.tp, ps.peak
    cash, has_trail, keep = acct[_CASH], trail == trail, equity_out.shape[0] > 0
    top, floor, max_dd, equity = acct[_PEAK], acct[_FLOOR], acct[_MAX_DD], acct[_EQUITY]
    # only two signal rows can change anything: the entries while flat; the exit and the opposite entry while in
    if pos == 0.0:
        watch1, use1, watch2, use2 = le, cfg.use_le, se, cfg.use_se
    elif pos > 0.0:
        watch1, use1, watch2, use2 = lx, cfg.use_lx, se, cfg.use_se
    else:
        watch1, use1, watch2, use2 = sx, cfg.use_sx, le, cfg.use_le
    stop = n
    if pos == 0.0:  # flat: equity is the cash, so only the first bar can move the statistics
        if cash > top:
            top, floor = cash, cash * (1.0 - max_dd)
        elif cash < floor:
            max_dd, floor = 1.0 - cash / top, cash
        equity = cash
        for i in range(start, n):
            if (use1 and watch1[i]) or (use2 and watch2[i]) or (cfg.use_orders and size[i] == size[i]
                                                                 and size[i] != 0.0):
                stop = i
                break
            if keep:
                equity_out[i] = cash
    else:
        end = min(n, ps.entry_bar + time_bars) if time_bars > 0 else n  # the time stop's bar needs a decision
        stop = end
        for i in range(start, end):
            worst, best = (low[i], high[i]) if d > 0 else (high[i], low[i])
            trail_level = stop_level_nb(d, peak, trail) if has_trail else np.nan
            if ((use1 and watch1[i]) or (use2 and watch2[i]) or d * (worst - sl) <= 0 or d * (worst - trail_level) <= 0
                    or d * (best - tp) > 0 or (cfg.has_funding and funding[i] != 0.0)
                    or (cfg.use_orders and size[i] == size[i] and size[i] != 0.0)):
                stop = i
                break
            if has_trail:
                peak = trail_peak_nb(d, peak, high[i], low[i])
            equity = cash + pos * close[i]
            if keep:
                equity_out[i] = equity
            if equity > top:
                top, floor = equity, equity * (1.0 - max_dd)
            elif equity < floor:  # a deeper drawdown: compare first, divide only then
                max_dd, floor = 1.0 - equity / top, equity
    ps.peak = peak
    acct[_PEAK], acct[_FLOOR], acct[_MAX_DD], acct[_EQUITY] = top, floor, max_dd, equity
    return stop


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _run_bars_nb(start, c0, c1, pcols, mkt, sig, ords, stops, cfg, params, equity_out, ps_all, slots, acct, cnt,
                 orders, fills, trades):
    "Simulate bars from `start` on; the index of the bar where the record buffers ran low (n when done)."
    n, width = mkt.close.shape[1], c1 - c0
    pc0 = pcols[c0]
    i = start
    while i < n:
        if width == 1 and not (slots[0, _EXIT].active or slots[0, _ENTRY].active):
            # the common case, one column with no working order: a lean loop over quiet bars
            fr = pc0 if cfg.has_funding else 0  # rows of the inputs a run uses; placeholders have one
            r_le, r_lx = (c0 if cfg.use_le else 0), (c0 if cfg.use_lx else 0)
            r_se, r_sx = (c0 if cfg.use_se else 0), (c0 if cfg.use_sx else 0)
            orow = c0 if cfg.use_orders else 0
            i = _scan_one_nb(i, n, ps_all[0], mkt.high[pc0], mkt.low[pc0], mkt.close[pc0], mkt.funding[fr],
                             sig.long_entries[r_le], sig.long_exits[r_lx], sig.short_entries[r_se],
                             sig.short_exits[r_sx], ords.size[orow], stops.trail[c0], stops.time_bars[c0], cfg,
                             equity_out, acct)
            if i >= n:
                break
        elif _quiet_nb(i, c0, c1, pcols, mkt, sig, ords, stops, cfg, ps_all, slots):
            equity = acct[_CASH]
            for k in range(width):
                ps = ps_all[k]
                if ps.pos != 0.0:
                    pc, trail = pcols[c0 + k], stops.trail[c0 + k]
                    if trail == trail:
                        ps.peak = trail_peak_nb(ps.dir, ps.peak, mkt.high[pc, i], mkt.low[pc, i])
                    equity += ps.pos * mkt.close[pc, i]
            _mark_nb(i, equity, equity_out, acct)
            i += 1
            continue
        if cfg.record and (cnt[_N_ORDERS] + 4 * width > len(orders) or cnt[_N_FILLS] + 3 * width > len(fills)
                           or cnt[_N_TRADES] + 2 * width > len(trades)):
            return i
        _open_phase_nb(i, c0, c1, pcols, mkt, stops, cfg, params, ps_all, slots, acct, cnt, orders, fills, trades)
        _close_phase_nb(i, c0, c1, pcols, mkt, sig, ords, stops, cfg, params, ps_all, slots, acct, cnt, orders,
                        fills, trades)
        equity = acct[_CASH]
        for k in range(width):
            if ps_all[k].pos != 0.0:
                equity += ps_all[k].pos * mkt.close[pcols[c0 + k], i]
        _mark_nb(i, equity, equity_out, acct)
        i += 1
    return n


@njit(cache=True, _nrt=False)
def _reset_nb(ps_all, slots, acct, cnt, init_cash):
    "A fresh account with `init_cash`, flat positions and no working orders."
    for k in range(ps_all.shape[0]):
        ps = ps_all[k]
        ps.pos = ps.debt = ps.peak = ps.entry_qty = ps.entry_value = ps.exit_qty = ps.exit_value = 0.0
        ps.fees = ps.funding = ps.fresh_price = 0.0
        ps.sl = ps.tp = ps.avg = np.nan
        ps.dir = ps.entry_bar = ps.fresh = 0
        ps.cooldown_end = -1
        for s in range(2):
            slots[k, s].active = False
    acct[:] = init_cash
    acct[_FEES] = acct[_MAX_DD] = 0.0
    cnt[:] = 0


@njit(cache=True, _nrt=False, no_cpython_wrapper=True)
def _stats_nb(acct, cnt, out):
    "The run's statistics (`STAT_FIELDS`) into `out`."
    out[0], out[1], out[2], out[3] = acct[_EQUITY], acct[_MAX_DD], cnt[_N_TRADES], cnt[_N_WINS]
    out[4], out[5], out[6] = acct[_FEES], cnt[_N_ORDERS], cnt[_N_FILLS]


# %% [markdown]
# ## The entry point
# `run_nb` is the one kernel Python calls. Given an empty `alone`, it runs columns `c0 … c1−1` as one
# cash-sharing group from bar `start` and returns where it stopped (the number of bars when done, or a
# bar where the record buffers ran low: grow them and call again with that bar); the statistics land in
# `stats_out[0]`. Given column indices in `alone`, it runs each of them as a group of its own with fresh
# state and no records — a sweep — writing each column's statistics into its row of `stats_out`. It
# holds no GIL (`nogil`), so a sweep splits its columns over threads. One compiled function serves
# both uses: numba re-optimises every callee into each top-level kernel, and that compile is the slow
# part of a first run.

# %%
#| export
def new_state(width: int, init_cash: float) -> tuple[np.ndarray, ...]:
    "Fresh loop state for a group of `width` columns: positions, working-order slots, account cells, counters."
    ps_all, slots = np.zeros(width, dtype=_POS_DT), np.zeros((width, 2), dtype=_SLOT_DT)
    acct, cnt = np.zeros(7), np.zeros(4, dtype=np.int64)
    _reset_nb(ps_all, slots, acct, cnt, float(init_cash))
    return ps_all, slots, acct, cnt


@njit(cache=True, nogil=True, _nrt=False)
def run_nb(start: int,  # first bar to simulate
           c0: int, c1: int,  # the group's columns (ignored when `alone` is given)
           alone: np.ndarray,  # int64 columns to simulate one by one (a sweep), or empty
           pcols: np.ndarray,  # market row of each column
           mkt: Market, sig: Signals, ords: OrderArrays, stops: Stops,
           cfg: SimConfig, params: FillParams,
           equity_out: np.ndarray,  # (n_bars,) equity at each close, or (0,) to skip
           ps_all: np.ndarray, slots: np.ndarray, acct: np.ndarray, cnt: np.ndarray,  # state (see `new_state`)
           orders: np.ndarray, fills: np.ndarray, trades: np.ndarray,  # record buffers
           stats_out: np.ndarray,  # (rows, len(STAT_FIELDS)) statistics out
          ) -> int:  # where the group run stopped (n_bars when done)
    "Simulate a cash-sharing group of columns from bar `start`, or each column of `alone` on its own."
    if alone.shape[0] == 0:
        stop = _run_bars_nb(start, c0, c1, pcols, mkt, sig, ords, stops, cfg, params, equity_out, ps_all, slots,
                            acct, cnt, orders, fills, trades)
        _stats_nb(acct, cnt, stats_out[0])
        return stop
    for j in range(alone.shape[0]):
        col = alone[j]
        _reset_nb(ps_all, slots, acct, cnt, cfg.init_cash)
        _run_bars_nb(start, col, col + 1, pcols, mkt, sig, ords, stops, cfg, params, equity_out, ps_all, slots,
                     acct, cnt, orders, fills, trades)
        _stats_nb(acct, cnt, stats_out[col])
    return mkt.close.shape[1]


# %% [markdown]
# ## A first run
# Ten bars, one buy signal and one sell signal, fills at the next open: the loop buys at bar 3's
# open with all the cash and sells at bar 7's open. (The pandas face and the real tests are in
# `tradingbot.validation.backtest`.)

# %%
# the package's copies of the kernels and their input types: numba caches those on disk, while the copies
# this notebook's cells define would be compiled afresh (a dozen seconds) on every run
from tradingbot.validation._backtest_nb import (FILL_DT, ORDER_DT, STAT_FIELDS, TRADE_DT, Market,  # noqa: E402
                                                OrderArrays, Signals, SimConfig, Sizing, Stops, new_state, run_nb)

n = 10
px = np.linspace(100.0, 109.0, n)[None, :]
unused = np.full((1, 1), np.nan)
mkt = Market(px, px + 0.5, px - 0.5, px + 0.2, np.full((1, n), 1e6), unused, unused, unused)
entries, exits = np.zeros((1, n), bool), np.zeros((1, n), bool)
entries[0, 2], exits[0, 6] = True, True
sig = Signals(entries, exits, np.zeros((1, 1), bool), np.zeros((1, 1), bool))
ords = OrderArrays(unused, np.zeros((1, 1), np.int64), unused, unused)
stops = Stops(np.full(1, np.nan), np.full(1, np.nan), np.full(1, np.nan), np.zeros(1, np.int64), unused)
cfg = SimConfig(at_close=False, latency=0, sizing=Sizing.CASH, size=np.inf, init_cash=1_000.0, cooldown=1, tif=0,
                post_only=False, max_stop=0.15, use_le=True, use_lx=True, use_se=False, use_sx=False,
                use_orders=False, has_spread=False, has_vol=False, has_funding=False, has_dist=False, record=True)
equity, stats = np.empty(n), np.empty((1, len(STAT_FIELDS)))
state = new_state(1, 1_000.0)
orders, fills, trades = np.empty(16, ORDER_DT), np.empty(16, FILL_DT), np.empty(16, TRADE_DT)
stop = run_nb(0, 0, 1, np.empty(0, np.int64), np.zeros(1, np.int64), mkt, sig, ords, stops, cfg, FillParams(), equity,
              *state, orders, fills, trades, stats)
o, f, t = (r[:c] for r, c in zip((orders, fills, trades), state[3]))
test_eq(stop, n)
test_eq(f["bar"].tolist(), [3, 7])
test_eq(f["price"].tolist(), [px[0, 3], px[0, 7]])
test_close(t["pnl"][0], 1_000.0 / px[0, 3] * (px[0, 7] - px[0, 3]))
test_close(equity[-1], stats[0, 0])
test_eq(o["status"].tolist(), [Status.FILLED] * 2)

# %% [markdown]
# Buffers too small for the records a bar might write stop the run at that bar, to be grown and resumed;
# a sweep runs columns alone, each with the statistics the group run of that column gets.

# %%
state = new_state(1, 1_000.0)
tiny = np.empty(2, ORDER_DT), np.empty(2, FILL_DT), np.empty(2, TRADE_DT)
test_eq(run_nb(0, 0, 1, np.empty(0, np.int64), np.zeros(1, np.int64), mkt, sig, ords, stops, cfg, FillParams(),
               np.empty(n), *state, *tiny, np.empty((1, len(STAT_FIELDS)))), 2)  # bars 0-1 are quiet; 2 is not
per_col = np.empty((2, len(STAT_FIELDS)))
two = Signals(np.repeat(entries, 2, 0), np.repeat(exits, 2, 0), np.zeros((1, 1), bool), np.zeros((1, 1), bool))
run_nb(0, 0, 0, np.arange(2), np.zeros(2, np.int64), mkt, two, ords, Stops(*(np.full(2, np.nan),) * 3,
       np.zeros(2, np.int64), unused), cfg._replace(record=False), FillParams(), np.empty(0), *new_state(1, 1_000.0),
       *tiny, per_col)
test_close(per_col[0], stats[0])
test_close(per_col[1], stats[0])
