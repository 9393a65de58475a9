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
#    orders meet the bar (`work_order_nb`) — the exit slot first, then the entry slot; then the
#    protective stops of the open position are checked on the bar's path (`protective_fill_nb`).
# 2. **close**: decisions — time stops, signals or per-bar orders — become working orders that reach
#    the market `latency` bars later (`arrival_bar_nb`); in the close-fill convention they meet the
#    close at once. Then equity is marked at the close.
#
# A column holds at most two working orders: an **exit** slot (reduce-only) and an **entry** slot, so
# a reversal is a close followed by an open. Every fill is booked by `book_fill_nb` and every order
# worked by `work_order_nb` (`tradingbot.execution.accounting`), the kernels the paper venue and the
# portfolio call too; entries sized by the risk rules (`sizing="risk"`) get their size and pre-trade
# checks from `tradingbot.execution.risk`'s kernels, the ones the router uses. All state lives in
# preallocated structured arrays and no bar allocates: when the record buffers run low the loop
# stops, and the caller grows them.

# %%
#| export
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradingbot.execution._nb import (ARRIVAL, INFO, ORDER_TYPE, REASON, STATUS, Bar, FillParams, WorkingOrder,
                                      arrival_bar_nb, funding_flow_nb, stop_distance_nb, stop_level_nb,
                                      signal_rules_nb, stop_price_nb, target_price_nb, time_stop_due_nb,
                                      trail_peak_nb)
from tradingbot.execution.accounting import (WORKED, Holding, Wallet, book_fill_nb, book_funding_nb,
                                             levels_touched_nb, protective_fill_nb, work_order_nb)
from tradingbot.execution.enums import Sizing
from tradingbot.execution.risk import (CAP_DAILY_LOSS, CAP_OK, STOP_BAND, STOP_OK, RiskConfig, RiskParams,
                                       drawdown_pct_nb, order_qty_nb, position_size_nb, pretrade_check_nb,
                                       stop_check_nb)

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
    open: np.ndarray  # opening price of each bar, price units
    high: np.ndarray  # highest price, price units
    low: np.ndarray  # lowest price, price units
    close: np.ndarray  # closing price, price units
    volume: np.ndarray  # traded volume, units (the participation cap's base)
    spread: np.ndarray  # full bid-ask spread, price units (NaN: the fill model's spread fraction)
    vol: np.ndarray  # volatility in price units known at each bar's close (volatility slippage)
    funding: np.ndarray  # summed funding rate settling in each bar, fraction of the position's value (1e-4 = 0.01 %)
    open_ns: np.ndarray  # (1, n_bars) int64: each bar's open time, ns since the epoch (the daily-loss cap's days)


class SignalRows(NamedTuple):
    "Decision rows, shape (n_cols, n_bars): four boolean rows, and the signal strength of each entry."
    long_entries: np.ndarray  # bool: open a long (decided at the bar's close)
    long_exits: np.ndarray  # bool: close a long
    short_entries: np.ndarray  # bool: open a short
    short_exits: np.ndarray  # bool: close a short
    score: np.ndarray  # float64 signal strength in [0, 1] (risk sizing's signal weight; (1, 1) when unused: 0.5)


class OrderArrays(NamedTuple):
    "Per-bar orders decided at each bar's close, shape (n_cols, n_bars); size NaN or 0: none."
    size: np.ndarray  # signed units: > 0 buy, < 0 sell
    type: np.ndarray  # OrderType code (int64)
    limit: np.ndarray  # limit price of limit and stop-limit orders, price units
    stop: np.ndarray  # trigger price of stop and stop-limit orders, price units


class Stops(NamedTuple):
    "Protective stops per column (fractions; NaN: none) and per-bar stop distances."
    sl: np.ndarray  # (n_cols,) stop-loss distance from the entry, fraction of the entry price (0.02 = 2 %)
    tp: np.ndarray  # (n_cols,) take-profit distance from the entry, fraction of the entry price
    trail: np.ndarray  # (n_cols,) trailing-stop distance from the best price since entry, fraction of that price
    time_bars: np.ndarray  # (n_cols,) int64: bars in the trade before the time stop (0: none)
    dist: np.ndarray  # (n_dist_rows, n_bars) stop-loss distance in price units decided with each entry (ATR stops)
    dist_row: np.ndarray  # (n_cols,) int64: the row of `dist` each column reads (columns may share one)


class SimConfig(NamedTuple):
    "Scalar settings of one run (the defaults: a research run with no costs, all-in, fills at the next open)."
    at_close: bool = False  # orders meet the close of their decision bar (vectorbt convention) instead of a later open
    latency: int = 0  # bars between a decision's close and the open its order reaches
    sizing: int = 0  # Sizing code (`SIZING.CASH`, `.NOTIONAL`, `.EQUITY`, `.RISK`)
    size: float = np.inf  # money per entry (notional sizing) or fraction of equity (equity sizing); else unused
    init_cash: float = 1000.0  # starting cash, account currency
    cooldown: int = 1  # bars after a protective exit in which entry signals are ignored
    tif: int = 0  # TimeInForce code of every order
    post_only: bool = False  # limit orders only rest: one that would cross on arrival is rejected
    max_stop_pct: float = 15.0  # the widest stop allowed, percent (SAFETY.MAX_STOP_LOSS_PCT)
    sl_min_pct: float = 0.0  # the asset's band: an entry's stop at least this far (percent; 0: no floor) ...
    sl_max_pct: float = 15.0  # ... and at most this far (percent; the cap when no asset is given)
    use_le: bool = False  # long entries given (signal rows a run lacks are (1, 1) placeholders, never read)
    use_lx: bool = False  # long exits given
    use_se: bool = False  # short entries given
    use_sx: bool = False  # short exits given
    use_orders: bool = False  # per-bar orders given (`OrderArrays`) instead of signals
    has_spread: bool = False  # `Market.spread` holds a spread per bar
    has_vol: bool = False  # `Market.vol` holds volatility per bar (volatility slippage)
    has_funding: bool = False  # `Market.funding` holds funding rates per bar
    has_dist: bool = False  # `Stops.dist` holds stop distances per bar
    record: bool = True  # write order, fill and trade records (a sweep keeps statistics only)
    has_score: bool = False  # `SignalRows.score` holds a strength per bar (else every entry weighs 0.5)
    has_day: bool = False  # `Market.open_ns` holds each bar's open time (risk sizing's daily-loss cap)
    bar_ns: int = 0  # one bar's length, ns: a bar's close is its open plus this
    shorting: bool = True  # short entries allowed (the venue's capability; spot has none)
    qty_step: float = 0.0  # risk sizing: the venue's lot step, units (0: none)
    min_notional: float = 0.0  # risk sizing: the venue's minimum order value, account currency (0: none)
    leverage: float = 1.0  # risk sizing: the leverage orders use
    risk: RiskParams = RiskConfig().params  # risk sizing: the rules of `tradingbot.execution.risk`


SIZING = Sizing.namespace()

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
_DAY_NS = 86_400_000_000_000  # a UTC day, ns
# account cells: money, running statistics, the group's open notional at the close, today's realised loss
_CASH, _FREE, _FEES, _PEAK, _MAX_DD, _EQUITY, _FLOOR, _OPEN, _DAY, _DAY_LOSS = range(10)
_N_ORDERS, _N_FILLS, _N_TRADES, _N_WINS = 0, 1, 2, 3  # counters


# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _close_order_nb(orders, record, oid, status, info):
    "Set the final status of an order record."
    if record:
        orders[oid].status = status
        orders[oid].info = info


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _queue_nb(slot, orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, reduce_only, sl_dist, cfg):
    "Put a new working order into `slot`, cancelling the one it replaces."
    if slot.active:
        _close_order_nb(orders, cfg.record, slot.order_id, STATUS.CANCELLED, INFO.REPLACED)
    slot.active, slot.side, slot.type, slot.qty, slot.notional = True, side, otype, qty, notional
    slot.limit, slot.stop, slot.tif, slot.post_only = limit, stop, cfg.tif, cfg.post_only
    slot.triggered, slot.seen, slot.reason, slot.reduce_only, slot.sl_dist = False, False, reason, reduce_only, sl_dist
    slot.arrive_bar, slot.arrive_close = arrival_bar_nb(i, cfg.latency, cfg.at_close), cfg.at_close
    slot.order_id = _write_order_nb(orders, cnt, cfg.record, col, i, side, otype, cfg.tif, reason, qty, notional,
                                    limit, stop, STATUS.OPEN, INFO.NONE)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _cancel_nb(slot, orders, record, info):
    "Cancel the working order in `slot`, if any."
    if slot.active:
        slot.active = False
        _close_order_nb(orders, record, slot.order_id, STATUS.CANCELLED, info)


# %% [markdown]
# ## Applying a fill
# `book_fill_nb` moves cash, free cash and the position; around it the loop keeps its own records: the
# account's fees, the protective levels set when a position opens or grows (by the stop rule, around
# the average price), the trade record when the position is flat again, and today's realised loss for
# the daily-loss cap.

# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _set_levels_nb(ps, ref, sl, tp, dist):
    "Protective levels of a position around `ref`, by the one stop rule (`stop_price_nb`, `target_price_nb`)."
    ps.sl = stop_price_nb(ps.dir, ref, sl, dist)
    ps.tp = target_price_nb(ps.dir, ref, tp, np.nan)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _closed_at_nb(mkt, cfg, i):
    "When bar `i` closes, ns (0 without a daily-loss cap); read only where a day is used: a load on every event bar misses the cache."
    return mkt.open_ns[0, i] + cfg.bar_ns if cfg.has_day else 0


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _apply_fill_nb(ps, acct, cnt, fills, trades, mkt, cfg, col, i, oid, side, qty, price, fee, maker, reason, sl, tp,
                   sl_dist):
    "Book one fill on position `ps` and the account; close the trade when the position is flat."
    record = cfg.record
    b = book_fill_nb(Holding(ps.pos, ps.dir, ps.avg, ps.debt, ps.entry_qty, ps.entry_value, ps.exit_qty,
                             ps.exit_value, ps.fees, ps.funding), Wallet(acct[_CASH], acct[_FREE]),
                     side, qty, price, fee)
    h = b.holding
    ps.pos, ps.dir, ps.avg, ps.debt = h.pos, h.dir, h.avg, h.debt
    ps.entry_qty, ps.entry_value, ps.exit_qty, ps.exit_value, ps.fees, ps.funding = (
        h.entry_qty, h.entry_value, h.exit_qty, h.exit_value, h.fees, h.funding)
    acct[_CASH], acct[_FREE] = b.wallet.cash, b.wallet.free
    acct[_FEES] += fee
    if record:
        f = fills[cnt[_N_FILLS]]
        f.order_id, f.col, f.bar, f.side, f.qty, f.price, f.fee, f.maker, f.reason = (oid, col, i, side, qty, price,
                                                                                      fee, maker, reason)
    cnt[_N_FILLS] += 1
    if b.opened:
        ps.entry_bar, ps.peak = i, price
    if b.grew:
        _set_levels_nb(ps, ps.avg, sl, tp, sl_dist)
    if b.closed:
        if record:
            t = trades[cnt[_N_TRADES]]
            t.col, t.direction, t.entry_bar, t.exit_bar, t.qty = col, ps.dir, ps.entry_bar, i, ps.entry_qty
            t.entry_price, t.exit_price = ps.entry_value / ps.entry_qty, ps.exit_value / ps.exit_qty
            t.fees, t.funding, t.pnl, t.ret, t.exit_reason = ps.fees, ps.funding, b.pnl, b.pnl / ps.entry_value, reason
        cnt[_N_TRADES] += 1
        cnt[_N_WINS] += 1 if b.pnl > 0 else 0
        ps.sl = ps.tp = np.nan
        day = _closed_at_nb(mkt, cfg, i) // _DAY_NS  # today's realised loss (wins reduce it), as the router has it
        if acct[_DAY] != day:
            acct[_DAY], acct[_DAY_LOSS] = day, 0.0
        acct[_DAY_LOSS] -= b.pnl


# %% [markdown]
# ## A working order meets a bar
# `work_order_nb` decides how much the order may trade (an exit is cut to the position, an entry
# spends free cash and waits while an opposite position is being closed) and runs the fill model.
# After a fill the order's size is a number of units (its notional has been converted at the first fill).

# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _bar_nb(mkt, cfg, pc, i, at_close):
    "Bar `i` of price row `pc` as the kernels see it (volatility from before the fill)."
    spread = mkt.spread[pc, i] if cfg.has_spread else np.nan
    j = i if at_close else i - 1
    vol = mkt.vol[pc, j] if cfg.has_vol and j >= 0 else np.nan
    return Bar(mkt.open[pc, i], mkt.high[pc, i], mkt.low[pc, i], mkt.close[pc, i], mkt.volume[pc, i], spread, vol)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i, bar, arrival, sl, tp, mkt, cfg, params):
    "Run the order in `slot` through `bar`, met as `arrival` says (resting, at the open, at the close)."
    order = WorkingOrder(slot.side, slot.type, slot.qty, slot.notional, slot.limit, slot.stop, slot.tif,
                         slot.post_only, slot.triggered)
    w = work_order_nb(order, slot.reduce_only, ps.pos, acct[_CASH], acct[_FREE], bar, arrival, params)
    oid, r = slot.order_id, w.fill
    if w.action != WORKED:
        if r.status != STATUS.OPEN:
            _cancel_nb(slot, orders, cfg.record, r.info)
        return
    slot.seen, slot.triggered = True, r.triggered
    if r.qty > 0.0:
        if w.fresh:  # where the new position's path starts: the open for a market order arriving there
            ps.fresh, ps.fresh_price = w.fresh, r.price
        _apply_fill_nb(ps, acct, cnt, fills, trades, mkt, cfg, col, i, oid, slot.side, r.qty, r.price, r.fee,
                       r.maker, slot.reason, sl, tp, slot.sl_dist)
        slot.notional = np.inf
        slot.qty = r.remaining
        if cfg.record:
            o = orders[oid]
            o.avg_price = (r.price * r.qty + (o.avg_price * o.filled_qty if o.filled_qty > 0 else 0.0)) / (
                o.filled_qty + r.qty)
            o.filled_qty += r.qty
            o.fees += r.fee
    if r.status != STATUS.OPEN:
        slot.active = False
        _close_order_nb(orders, cfg.record, oid, r.status, r.info)


# %% [markdown]
# ## Protective exits
# Stops rest at the venue, so they act within the bar. A position opened at this bar's open by a market
# order sees the whole bar; one opened inside the bar (a limit or stop entry) is checked against its
# stop only, from its fill on (the conservative reading: the bar's low may have come after the fill,
# its high before). A stop-loss or trailing stop fills as a taker (spread and slippage), a take-profit
# as a maker at its price (`protective_fill_nb`). The exit is not capped by volume: a stop that could
# not get out would leave risk the model cannot price. The loop calls this only for a bar that reaches
# a level (`levels_touched_nb`).

# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _protect_nb(ps, acct, cnt, orders, fills, trades, col, i, bar, trail_level, mkt, cfg, params):
    "Exit the open position `ps` if `bar` hits one of its protective levels; True when it did."
    qty = abs(ps.pos)
    x = protective_fill_nb(ps.dir, qty, ps.sl, trail_level, ps.tp, ps.fresh, ps.fresh_price, bar, params)
    if x.level != x.level:
        return False
    side = -ps.dir
    oid = _write_order_nb(orders, cnt, cfg.record, col, i, side, x.order_type, 0, x.reason, qty, np.inf,
                          x.level if x.maker else np.nan, np.nan if x.maker else x.level, STATUS.FILLED, INFO.NONE)
    if cfg.record:
        orders[oid].filled_qty, orders[oid].avg_price, orders[oid].fees = qty, x.price, x.fee
    _apply_fill_nb(ps, acct, cnt, fills, trades, mkt, cfg, col, i, oid, side, qty, x.price, x.fee, x.maker,
                   x.reason, np.nan, np.nan, np.nan)
    ps.cooldown_end = i + cfg.cooldown - 1
    return True


# %% [markdown]
# ## Decisions at the close
# Signals follow vectorbt's `from_signals` defaults: an entry and an exit of one direction on the same
# bar cancel, as do a long and a short entry; an entry while the column is (or is about to be) in that
# direction is ignored; an opposite entry reverses. The "target" direction counts working orders, so
# with latency a signal the pending orders already carry out is not placed twice. Entries are refused
# during the cooldown after a protective exit, when their stop (by the stop rule, at the decision's
# close) is beyond the cap or the asset's band, and a short entry where shorting is off.
#
# **Risk sizing** (`sizing="risk"`) sizes an entry at the decision as the router does for paper and live:
# `position_size_nb` on the group's equity, its drawdown from the peak, the entry's signal strength and
# the stop distance; rounded down to the lot step (`order_qty_nb`, refused below one lot or the minimum
# notional); then the per-trade, position, per-asset and daily-loss caps (`pretrade_check_nb`). The
# order then wants that many units, as the router's order does.

# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _target_nb(exit_slot, entry_slot, pos):
    "Direction a column is heading to once its working orders fill."
    if entry_slot.active:
        return entry_slot.side
    if exit_slot.active:
        return 0
    return 1 if pos > 0 else (-1 if pos < 0 else 0)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _refuse_nb(orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, info, cfg):
    "Record an entry refused at the decision."
    _write_order_nb(orders, cnt, cfg.record, col, i, side, otype, cfg.tif, reason, qty, notional, limit, stop,
                    STATUS.REJECTED, info)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _risk_qty_nb(sdist, ref, score, mkt, i, acct, cfg):
    "Units of an entry sized by the risk rules, or the negated INFO code that refuses it."
    equity = acct[_EQUITY]
    if not equity > 0.0:
        return -float(INFO.NO_CASH)
    notional = position_size_nb(equity, drawdown_pct_nb(equity, acct[_PEAK]), score, sdist, ref, cfg.leverage,
                                cfg.risk)
    qty = order_qty_nb(notional, ref, cfg.qty_step, cfg.min_notional)
    if qty == 0.0:
        return -float(INFO.BELOW_MIN_SIZE)
    daily_loss = acct[_DAY_LOSS] if acct[_DAY] == _closed_at_nb(mkt, cfg, i) // _DAY_NS else 0.0
    code = pretrade_check_nb(equity, qty * ref, 100 * sdist / ref, cfg.leverage, daily_loss, acct[_OPEN], cfg.risk)
    if code != CAP_OK:
        return -float(INFO.DAILY_LOSS if code == CAP_DAILY_LOSS else INFO.RISK_CAP)
    return qty


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _entry_nb(entry_slot, orders, cnt, col, i, side, otype, qty, limit, stop, reason, equity, sl, dist, ref, score,
              mkt, acct, cfg):
    "Queue an entry of `side` (sized by `qty`, or by the sizing rule when qty is inf), after the checks."
    notional = np.inf
    if side < 0 and not cfg.shorting:
        _refuse_nb(orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, INFO.NO_SHORTING, cfg)
        return
    sdist = stop_distance_nb(ref, sl, dist)  # where the stop rule will put the stop, seen from the decision
    if sdist == sdist:  # the router's stop checks: within the cap and the asset's band
        check = stop_check_nb(100 * sdist / ref, cfg.sl_min_pct, cfg.sl_max_pct, cfg.max_stop_pct)
        if check != STOP_OK:
            _refuse_nb(orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason,
                       INFO.STOP_BAND if check == STOP_BAND else INFO.STOP_TOO_WIDE, cfg)
            return
    if qty == np.inf and cfg.sizing == SIZING.RISK:
        if sdist != sdist:
            _refuse_nb(orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, INFO.NO_STOP, cfg)
            return
        qty = _risk_qty_nb(sdist, ref, score, mkt, i, acct, cfg)
        if qty < 0.0:
            _refuse_nb(orders, cnt, col, i, side, otype, np.inf, notional, limit, stop, reason, int(-qty), cfg)
            return
    elif qty == np.inf and cfg.sizing != SIZING.CASH:
        notional = cfg.size if cfg.sizing == SIZING.NOTIONAL else cfg.size * equity
        if not notional > 0.0:
            return
    _queue_nb(entry_slot, orders, cnt, col, i, side, otype, qty, notional, limit, stop, reason, False, dist, cfg)


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _decide_nb(exit_slot, entry_slot, ps, orders, cnt, col, i, le, lx, se, sx, size, otype, limit, stop, sl, dist,
               ref, score, mkt, time_up, acct, cfg):
    "Turn a column's time stop, signals and per-bar order at bar `i` into working orders."
    pos, equity = ps.pos, acct[_EQUITY]
    if time_up and not exit_slot.active:
        _queue_nb(exit_slot, orders, cnt, col, i, -ps.dir, ORDER_TYPE.MARKET, np.inf, np.inf, np.nan, np.nan,
                  REASON.TIME_STOP, True, np.nan, cfg)
    le, lx, se, sx = signal_rules_nb(le, lx, se, sx, i <= ps.cooldown_end)
    target = _target_nb(exit_slot, entry_slot, pos)
    if (target > 0 and (lx or se)) or (target < 0 and (sx or le)):
        _cancel_nb(entry_slot, orders, cfg.record, INFO.REPLACED)
        if pos != 0.0 and not exit_slot.active:
            _queue_nb(exit_slot, orders, cnt, col, i, -1 if pos > 0 else 1, ORDER_TYPE.MARKET, np.inf, np.inf, np.nan,
                      np.nan, REASON.SIGNAL, True, np.nan, cfg)
        target = 0
    if target == 0 and (le or se):
        _entry_nb(entry_slot, orders, cnt, col, i, 1 if le else -1, ORDER_TYPE.MARKET, np.inf, np.nan, np.nan,
                  REASON.SIGNAL, equity, sl, dist, ref, score, mkt, acct, cfg)
    if size == size and size != 0.0:
        side, qty = (1 if size > 0 else -1), abs(size)
        _cancel_nb(exit_slot, orders, cfg.record, INFO.REPLACED)
        _cancel_nb(entry_slot, orders, cfg.record, INFO.REPLACED)
        if pos * side < 0:  # the part that closes the position, then the part that opens the other way
            close_qty = min(qty, abs(pos))
            _queue_nb(exit_slot, orders, cnt, col, i, side, otype, close_qty, np.inf, limit, stop, REASON.ORDER, True,
                      np.nan, cfg)
            qty -= close_qty
        if qty > 0.0:
            _entry_nb(entry_slot, orders, cnt, col, i, side, otype, qty, limit, stop, REASON.ORDER, equity, sl, dist,
                      ref, score, mkt, acct, cfg)


# %% [markdown]
# ## The loop
# Most bars are **quiet**: no order working, no signal or order decided, no protective level within the
# bar's range, no time stop or funding due. `_quiet_nb` tells them apart with a few loads and compares,
# and a quiet bar only marks equity (and moves a trailing peak). Every other bar goes through the full
# treatment above. The helpers run only on events: numba passes their arguments by value, so calling
# them on every bar would cost more than the bar. Even on events the copies dominate — `SimConfig`
# carries the risk rules with their tier arrays — so every helper, and every kernel of the execution
# package it calls, is inlined into the loop (`forceinline`). Divisions follow numpy's error model
# (`error_model="numpy"`): no zero test and exception path behind each one, since every divisor here is
# checked before or nonzero by construction. Measured on 1M one-minute bars of RSI-2 (31k trades,
# `benchmarks/bench_backtest.py`), the loop went from 27 ms to 10 ms; the price is about a second more of
# compilation, paid once by `make setup` (numba's cache keeps it).
#
# The kernels of this loop allocate nothing, so they are compiled without numba's reference counting
# (`_nrt=False`): otherwise every call would increment and decrement, atomically, the counts of the
# two dozen arrays it is handed, which costs more than the work of an event. When the record buffers
# might overflow within the next bar, `_run_bars_nb` returns that bar's index; the caller grows them
# (in numpy) and calls again.

# %%
#| export
@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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
            if levels_touched_nb(d, ps.sl, trail_level, ps.tp, mkt.high[pc, i], mkt.low[pc, i]):
                return False
    return True


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _useful_nb(pos, exit_slot, entry_slot, le, lx, se, sx, size, time_up):
    "False when a bar's decisions cannot change anything (e.g. a long entry signal while long)."
    return (exit_slot.active or entry_slot.active or time_up or (size == size and size != 0.0)
            or (le and pos <= 0) or (se and pos >= 0) or (lx and pos > 0) or (sx and pos < 0))


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _open_phase_nb(i, c0, c1, pcols, mkt, stops, cfg, params, ps_all, slots, acct, cnt, orders, fills, trades):
    "Funding, working orders and protective stops of every column of the group in bar `i`."
    for k in range(c1 - c0):
        col, ps = c0 + k, ps_all[k]
        pc = pcols[col]
        if cfg.has_funding and ps.pos != 0.0 and mkt.funding[pc, i] != 0.0:
            h, w = book_funding_nb(Holding(ps.pos, ps.dir, ps.avg, ps.debt, ps.entry_qty, ps.entry_value, ps.exit_qty,
                                           ps.exit_value, ps.fees, ps.funding), Wallet(acct[_CASH], acct[_FREE]),
                                   funding_flow_nb(ps.pos, mkt.open[pc, i], mkt.funding[pc, i]))
            acct[_CASH], acct[_FREE], ps.funding = w.cash, w.free, h.funding
        for s in range(2):
            slot = slots[k, s]
            if slot.active and (slot.arrive_bar < i or (slot.arrive_bar == i and not slot.arrive_close)):
                # codes passed as int64, not literals: numba would compile a copy of the callee per literal
                arrival = np.int64(ARRIVAL.RESTING if slot.seen else ARRIVAL.OPEN)
                _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i,
                              _bar_nb(mkt, cfg, pc, i, arrival == ARRIVAL.CLOSE), arrival, stops.sl[col],
                              stops.tp[col], mkt, cfg, params)
        if ps.pos != 0.0:
            d, trail = ps.dir, stops.trail[col]
            trail_level = stop_level_nb(d, ps.peak, trail) if trail == trail else np.nan
            if levels_touched_nb(d, ps.sl, trail_level, ps.tp, mkt.high[pc, i], mkt.low[pc, i]):
                if _protect_nb(ps, acct, cnt, orders, fills, trades, col, i, _bar_nb(mkt, cfg, pc, i, False),
                               trail_level, mkt, cfg, params):
                    continue
            if trail == trail and ps.fresh != 2:
                ps.peak = trail_peak_nb(d, ps.peak, mkt.high[pc, i], mkt.low[pc, i])


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
def _close_phase_nb(i, c0, c1, pcols, mkt, sig, ords, stops, cfg, params, ps_all, slots, acct, cnt, orders, fills,
                    trades):
    "Decisions of every column of the group at bar `i`'s close, and the fills at the close."
    if cfg.sizing == SIZING.EQUITY or cfg.sizing == SIZING.RISK:  # the group's equity and exposure at this close
        acct[_EQUITY], acct[_OPEN] = acct[_CASH], 0.0
        for k in range(c1 - c0):
            value = ps_all[k].pos * mkt.close[pcols[c0 + k], i]
            acct[_EQUITY] += value
            acct[_OPEN] += abs(value)
    for k in range(c1 - c0):
        col, ps = c0 + k, ps_all[k]
        pc = pcols[col]
        le, lx = cfg.use_le and sig.long_entries[col, i], cfg.use_lx and sig.long_exits[col, i]
        se, sx = cfg.use_se and sig.short_entries[col, i], cfg.use_sx and sig.short_exits[col, i]
        size = ords.size[col, i] if cfg.use_orders else np.nan
        time_up = ps.pos != 0.0 and time_stop_due_nb(ps.entry_bar, i, stops.time_bars[col])
        if _useful_nb(ps.pos, slots[k, _EXIT], slots[k, _ENTRY], le, lx, se, sx, size, time_up):
            otype, limit, stop = ((ords.type[col, i], ords.limit[col, i], ords.stop[col, i]) if cfg.use_orders
                                  else (np.int64(ORDER_TYPE.MARKET), np.nan, np.nan))
            dist = stops.dist[stops.dist_row[col], i] if cfg.has_dist else np.nan
            score = sig.score[col, i] if cfg.has_score else 0.5
            _decide_nb(slots[k, _EXIT], slots[k, _ENTRY], ps, orders, cnt, col, i, le, lx, se, sx, size, otype,
                       limit, stop, stops.sl[col], dist, mkt.close[pc, i], score, mkt, time_up, acct, cfg)
        if cfg.at_close:
            for s in range(2):
                slot = slots[k, s]
                if slot.active and slot.arrive_bar == i and slot.arrive_close and not slot.seen:
                    arrival = np.int64(ARRIVAL.CLOSE)
                    _work_slot_nb(slot, ps, acct, cnt, orders, fills, trades, col, i,
                                  _bar_nb(mkt, cfg, pc, i, arrival == ARRIVAL.CLOSE), arrival, stops.sl[col],
                                  stops.tp[col], mkt, cfg, params)
        ps.fresh = 0  # the next bar starts with no position opened inside it


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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
            trail_level = stop_level_nb(d, peak, trail) if has_trail else np.nan
            if ((use1 and watch1[i]) or (use2 and watch2[i]) or levels_touched_nb(d, sl, trail_level, tp, high[i], low[i])
                    or (cfg.has_funding and funding[i] != 0.0)
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


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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


@njit(cache=True, error_model="numpy", _nrt=False)
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
    acct[_FEES] = acct[_MAX_DD] = acct[_OPEN] = acct[_DAY_LOSS] = 0.0
    acct[_DAY] = -1.0  # no day yet
    cnt[:] = 0


@njit(cache=True, error_model="numpy", _nrt=False, forceinline=True, no_cpython_wrapper=True)
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
def new_state(width: int,  # columns in the group
              init_cash: float,  # starting cash of the group's account, account currency
             ) -> tuple[np.ndarray, ...]:  # (ps_all, slots, acct, cnt), as `run_nb` takes them
    "Fresh loop state for a group of `width` columns: positions, working-order slots, account cells, counters."
    ps_all, slots = np.zeros(width, dtype=_POS_DT), np.zeros((width, 2), dtype=_SLOT_DT)
    acct, cnt = np.zeros(10), np.zeros(4, dtype=np.int64)
    _reset_nb(ps_all, slots, acct, cnt, float(init_cash))
    return ps_all, slots, acct, cnt


@njit(cache=True, error_model="numpy", nogil=True, _nrt=False)
def run_nb(start: int,  # first bar to simulate
           c0: int,  # the group's first column (ignored when `alone` is given)
           c1: int,  # one past the group's last column (ignored when `alone` is given)
           alone: np.ndarray,  # int64 columns to simulate one by one (a sweep), or empty
           pcols: np.ndarray,  # int64 market row of each column
           mkt: Market,  # price rows, spread, volatility, funding, close days
           sig: SignalRows,  # signal rows (when `cfg.use_*`)
           ords: OrderArrays,  # per-bar orders (when `cfg.use_orders`)
           stops: Stops,  # protective stops per column and stop distances per bar
           cfg: SimConfig,  # the run's scalar settings
           params: FillParams,  # the fill model: fees, spread, slippage, participation (fractions)
           equity_out: np.ndarray,  # (n_bars,) equity at each close, or (0,) to skip
           ps_all: np.ndarray,  # state: a position record per column (from `new_state`)
           slots: np.ndarray,  # state: (n_cols, 2) working-order slots, exit then entry
           acct: np.ndarray,  # state: the account cells (cash, free cash, fees, peak equity, drawdown, ...)
           cnt: np.ndarray,  # state: record counters (orders, fills, trades, wins)
           orders: np.ndarray,  # ORDER_DT record buffer
           fills: np.ndarray,  # FILL_DT record buffer
           trades: np.ndarray,  # TRADE_DT record buffer
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
from tradingbot.validation._backtest_nb import (FILL_DT, ORDER_DT, SIZING, STAT_FIELDS, TRADE_DT,  # noqa: E402
                                                Market, OrderArrays, SignalRows, SimConfig, Stops, new_state, run_nb)

n = 10
px = np.linspace(100.0, 109.0, n)[None, :]
unused, unused_i, unused_b = np.full((1, 1), np.nan), np.zeros((1, 1), np.int64), np.zeros((1, 1), bool)
mkt = Market(px, px + 0.5, px - 0.5, px + 0.2, np.full((1, n), 1e6), unused, unused, unused, unused_i)
entries, exits = np.zeros((1, n), bool), np.zeros((1, n), bool)
entries[0, 2], exits[0, 6] = True, True
sig = SignalRows(entries, exits, unused_b, unused_b, unused)
ords = OrderArrays(unused, unused_i, unused, unused)
stops = Stops(np.full(1, np.nan), np.full(1, np.nan), np.full(1, np.nan), np.zeros(1, np.int64), unused,
              np.zeros(1, np.int64))
cfg = SimConfig(use_le=True, use_lx=True)  # all-in, next-open fills, no costs
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
test_eq(o["status"].tolist(), [STATUS.FILLED] * 2)

# %%
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(7, 2.8))
ax.plot(px[0] + 0.2, "k.-", lw=0.8, label="close")
for k, (rec, row) in enumerate(((f[0], 2), (f[1], 6))):
    ax.annotate("decided", (row, px[0, row] + 0.2), xytext=(row, px[0, row] + 1.8), ha="center",
                arrowprops={"arrowstyle": "->"})
    ax.scatter(rec["bar"], rec["price"], marker="^" if rec["side"] > 0 else "v", s=80, zorder=3,
               color="tab:green" if rec["side"] > 0 else "tab:red", label="buy" if rec["side"] > 0 else "sell")
ax.set(xlabel="bar", ylabel="price", title="A decision at a close fills at the next bar's open")
ax.legend(loc="lower right");

# %% [markdown]
# Buffers too small for the records a bar might write stop the run at that bar, to be grown and resumed;
# a sweep runs columns alone, each with the statistics the group run of that column gets.

# %%
state = new_state(1, 1_000.0)
tiny = np.empty(2, ORDER_DT), np.empty(2, FILL_DT), np.empty(2, TRADE_DT)
test_eq(run_nb(0, 0, 1, np.empty(0, np.int64), np.zeros(1, np.int64), mkt, sig, ords, stops, cfg, FillParams(),
               np.empty(n), *state, *tiny, np.empty((1, len(STAT_FIELDS)))), 2)  # bars 0-1 are quiet; 2 is not
per_col = np.empty((2, len(STAT_FIELDS)))
two = SignalRows(np.repeat(entries, 2, 0), np.repeat(exits, 2, 0), unused_b, unused_b, unused)
run_nb(0, 0, 0, np.arange(2), np.zeros(2, np.int64), mkt, two, ords, Stops(*(np.full(2, np.nan),) * 3,
       np.zeros(2, np.int64), unused, np.zeros(2, np.int64)), cfg._replace(record=False), FillParams(), np.empty(0),
       *new_state(1, 1_000.0), *tiny, per_col)
test_close(per_col[0], stats[0])
test_close(per_col[1], stats[0])

# %% [markdown]
# **Risk sizing** sizes the same entry by the paper rules: a $500 account is a small account, so the
# entry is the flat $10 — here with a 2-point stop and a lot step of 0.01 — and the position the loop
# opens is exactly what `execution.risk` says paper and live would order at that close; a $20,000
# account risks 1.5 % of its equity at the stop, capped at 25 % of equity in the position.

# %%
from tradingbot.execution.risk import compute_size  # noqa: E402

dist = np.full((1, n), 2.0)
st = Stops(np.full(1, np.nan), np.full(1, np.nan), np.full(1, np.nan), np.zeros(1, np.int64), dist,
           np.zeros(1, np.int64))
for cash, lots in ((500.0, 0.09), (20_000.0, 48.92)):  # $10 at 102.2 is 0.09 lots; 25 % of 20,000 is 48.92 lots
    risky = cfg._replace(sizing=SIZING.RISK, qty_step=0.01, min_notional=5.0, has_dist=True, init_cash=cash)
    state = new_state(1, cash)
    orders, fills, trades = np.empty(16, ORDER_DT), np.empty(16, FILL_DT), np.empty(16, TRADE_DT)
    run_nb(0, 0, 1, np.empty(0, np.int64), np.zeros(1, np.int64), mkt, sig, ords, st, risky, FillParams(),
           np.empty(n), *state, orders, fills, trades, np.empty((1, len(STAT_FIELDS))))
    want = compute_size(cash, 0.0, 0.5, 2.0, px[0, 2] + 0.2, 0.01, 5.0)
    test_eq((fills[0]["qty"], fills[0]["bar"]), (want.qty, 3))
    test_close(want.qty, lots)
