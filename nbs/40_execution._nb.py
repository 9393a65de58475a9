# %% [markdown]
# # Fill kernels
#
# > The fill model as numba scalar kernels: one order meets one bar — triggers, limits, spread, slippage, fees, partial fills by volume participation, time in force; protective stops checked intrabar; funding.

# %%
#| default_exp execution._nb

# %% [markdown]
# There is one fill model (DESIGN §6). The backtester runs it inside a numba loop over millions of
# bars; the paper broker will run it bar by bar from plain Python. So it is written once, here, as
# small `@njit` kernels that take scalars and `NamedTuple`s and return scalars and `NamedTuple`s: a
# numba loop calls them at native speed, and Python calls the very same compiled code. Whoever feeds
# them the same order and the same bar gets the same fill.
#
# Conventions, used by every kernel:
#
# - **Prices in a bar** are traded (or mid) prices; a bar is known at its close. An order *arrives*
#   at a bar's open (the usual case: decided at an earlier close) or at its close (the vectorbt
#   convention, kept for parity), or it is *resting* from an earlier bar.
# - **Side** is +1 buy, −1 sell. A taker pays half the bid-ask spread plus slippage against its side;
#   a resting limit (maker) gets its limit price and pays no spread.
# - **Fractions** inside kernels (0.001 = 0.1 %); the Python layer (`tradingbot.execution.fills`)
#   speaks percent like the configuration does.
# - **Conservative** where a bar cannot tell the order of events: a stop touched anywhere in the bar
#   triggers, a limit fills only when the bar trades *through* it, and a stop-loss is checked before a
#   take-profit. A bar that *opens* beyond a resting level fills it at the open, the price the market
#   offered: worse than its stop for a stop, better than its limit for a limit.

# %%
#| export
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tradingbot.execution.enums import Arrival, Info, OrderType, Reason, Side, Status, TimeInForce

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail

# %% [markdown]
# ## Codes
# The kernels read the integer codes of the vocabulary (`tradingbot.execution.enums`) through
# NamedTuple namespaces: numba compiles an attribute read of a global NamedTuple instance to a
# constant, so `SIDE.BUY` costs nothing inside a kernel.

# %%
#| export
SIDE, ORDER_TYPE, TIF, REASON = Side.namespace(), OrderType.namespace(), TimeInForce.namespace(), Reason.namespace()
STATUS, INFO, ARRIVAL = Status.namespace(), Info.namespace(), Arrival.namespace()

# %%
test_eq((SIDE.BUY, ORDER_TYPE.STOP_LIMIT, TIF.FOK, STATUS.FILLED, Info.of(INFO.NO_CASH)), (1, 3, 2, 1, Info.NO_CASH))


# %% [markdown]
# ## What a kernel sees
# `FillParams` holds the fill model's settings as fractions, `Bar` one bar as the market saw it, and
# `WorkingOrder` what is left of an order. `volume` caps partial fills; `spread` is the bar's full
# bid-ask spread in price units when the data has one (NaN: use `FillParams.spread`, a fraction of
# price); `vol` is a volatility in price units (an ATR, or σ·price) known *before* the fill, for
# volatility slippage.

# %%
#| export
class FillParams(NamedTuple):
    "The fill model's settings, as fractions (see `tradingbot.execution.fills.FillConfig`)."
    maker_fee: float = 0.0  # fee of a resting limit, fraction of notional
    taker_fee: float = 0.0  # fee of a market, stop or marketable order
    spread: float = 0.0  # full bid-ask spread as a fraction of price, when the bar has none
    slippage: float = 0.0  # fixed adverse slippage of a taker, fraction of price
    vol_k: float = 0.0  # adverse slippage of a taker in units of the bar's `vol`
    participation: float = np.inf  # most of a bar's volume one order may take


class Bar(NamedTuple):
    "One bar as the fill model sees it."
    open: float
    high: float
    low: float
    close: float
    volume: float = np.nan  # NaN: no volume cap
    spread: float = np.nan  # full spread in price units; NaN: FillParams.spread × price
    vol: float = np.nan  # volatility in price units for slippage; NaN: none


class WorkingOrder(NamedTuple):
    "What is left of an order."
    side: int  # SIDE.BUY or SIDE.SELL
    type: int  # OrderType
    qty: float  # units still wanted; inf: as many as `notional` or the cash limit allows
    notional: float = np.inf  # spend at most this much (price × qty); inf: no such limit
    limit: float = np.nan  # limit price (LIMIT, STOP_LIMIT)
    stop: float = np.nan  # trigger price (STOP, STOP_LIMIT)
    tif: int = 0  # TimeInForce
    post_only: bool = False  # a limit that would cross on arrival is rejected
    triggered: bool = False  # a stop order whose stop price has traded


class FillResult(NamedTuple):
    "What one bar did to an order."
    qty: float  # units filled in this bar (0: none)
    price: float  # fill price (NaN: no fill)
    fee: float
    maker: bool
    status: int  # Status after this bar
    info: int  # Info: why cancelled or rejected
    remaining: float  # units still working (when status is OPEN)
    triggered: bool


# %% [markdown]
# ## Prices a taker gets
# A buyer crossing the spread pays the ask, `price + spread/2`, and then slippage: a fixed fraction of
# price and `k × vol`. A seller gets the same amounts less. With no spread and no volatility term this
# is exactly vectorbt's `price * (1 + slippage)`.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def half_spread_nb(price: float, bar_spread: float, spread: float) -> float:
    "Half the bid-ask spread at `price`: the bar's own spread when it has one, else the fraction `spread`."
    if bar_spread == bar_spread:
        return 0.5 * bar_spread
    return 0.5 * spread * price


@njit(cache=True, error_model="numpy", forceinline=True)
def taker_price_nb(side: int, price: float, bar: Bar, params: FillParams) -> float:
    "The price a taker of `side` gets when the market is at `price`: spread and slippage against it."
    vol_slip = params.vol_k * bar.vol if params.vol_k != 0.0 and bar.vol == bar.vol else 0.0
    return price * (1.0 + side * params.slippage) + side * (half_spread_nb(price, bar.spread, params.spread) + vol_slip)


# %%
p = FillParams(spread=0.001, slippage=0.0005, vol_k=0.5)
bar = Bar(100.0, 102.0, 99.0, 101.0, volume=1_000.0, vol=2.0)
test_close(taker_price_nb(SIDE.BUY, 100.0, bar, p), 100 + 0.05 + 0.05 + 1.0)  # half spread, slippage, k·vol
test_close(taker_price_nb(SIDE.SELL, 100.0, bar, p), 100 - 0.05 - 0.05 - 1.0)
test_close(taker_price_nb(SIDE.BUY, 100.0, bar._replace(spread=0.4), p), 100 + 0.2 + 0.05 + 1.0)  # spread from data
test_eq(taker_price_nb(SIDE.BUY, 100.0, bar._replace(vol=np.nan), FillParams(slippage=0.01)), 100 * (1 + 0.01))


# %% [markdown]
# ## Triggers and resting limits
# A stop order triggers when the bar touches its stop price — at the arrival price if that is already
# beyond it (a gap), else at the stop price if the rest of the bar reaches it. A resting limit fills
# when the bar trades *through* it (a touch is not enough: the queue ahead of us may have taken it),
# at the open if the bar opens beyond it.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def trigger_nb(side: int, stop: float, first: float, high: float, low: float, path: bool) -> float:
    "Price at which a stop order of `side` triggers (NaN: not in this bar); `first` is where the order meets the bar."
    if side > 0:
        if first >= stop:
            return first
        if path and high >= stop:
            return stop
    else:
        if first <= stop:
            return first
        if path and low <= stop:
            return stop
    return np.nan


@njit(cache=True, error_model="numpy", forceinline=True)
def through_nb(side: int, limit: float, open: float, high: float, low: float, from_open: bool) -> float:
    "Price at which a limit of `side` resting in this bar fills (NaN: none); `from_open`: it rested before the open."
    if from_open and side * (limit - open) > 0:
        return open
    extreme = low if side > 0 else high
    if side * (limit - extreme) > 0:
        return limit
    return np.nan


# %%
test_eq(trigger_nb(SIDE.BUY, 105.0, 100.0, 106.0, 99.0, True), 105.0)  # touched inside the bar
test_eq(trigger_nb(SIDE.BUY, 105.0, 107.0, 108.0, 106.0, True), 107.0)  # gapped through: the open
test_eq(np.isnan(trigger_nb(SIDE.BUY, 105.0, 100.0, 106.0, 99.0, False)), True)  # arrived at the close: no path left
test_eq(trigger_nb(SIDE.SELL, 95.0, 100.0, 101.0, 95.0, True), 95.0)  # a touch triggers
test_eq(through_nb(SIDE.BUY, 99.0, 100.0, 101.0, 98.5, True), 99.0)
test_eq(np.isnan(through_nb(SIDE.BUY, 99.0, 100.0, 101.0, 99.0, True)), True)  # touched only: no fill
test_eq(through_nb(SIDE.BUY, 99.0, 97.0, 98.0, 96.0, True), 97.0)  # the bar opened below a resting buy


# %% [markdown]
# ## Quantity: cash, volume participation, time in force
# An order fills at most `participation × bar volume` per bar and at most what the cash limit pays for
# (with the fee on top: vectorbt's `size = cash / (1 + fee) / price`). The cash-limited part is dropped;
# the volume-capped remainder follows the time in force: **IOC** cancels it, **GTC** keeps it working
# into the next bar, **FOK** fills nothing unless everything fits.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def participation_cap_nb(volume: float, participation: float) -> float:
    "Most units one order may take from a bar of `volume` (inf: no cap)."
    if not participation < np.inf or volume != volume:
        return np.inf
    return participation * volume


@njit(cache=True, error_model="numpy", forceinline=True)
def affordable_qty_nb(cash: float, price: float, fee: float) -> float:
    "Units `cash` pays for at `price` with a proportional `fee` on top."
    return cash / (1.0 + fee) / price


@njit(cache=True, error_model="numpy", forceinline=True)
def _size_fill_nb(order: WorkingOrder, price: float, maker: bool, triggered: bool, bar: Bar, cash_limit: float,
                  params: FillParams) -> FillResult:
    "Fill an order that can execute at `price` in this bar, as far as cash, volume and its time in force allow."
    fee_rate = params.maker_fee if maker else params.taker_fee
    want = min(order.qty, order.notional / price)
    afford = affordable_qty_nb(cash_limit, price, fee_rate)
    cash_capped = afford < want
    if cash_capped:
        want = afford
    if not (want > 0.0 and want < np.inf):
        return FillResult(0.0, np.nan, 0.0, False, STATUS.REJECTED, INFO.NO_CASH, 0.0, triggered)
    qty = min(want, participation_cap_nb(bar.volume, params.participation))
    if want - qty <= 1e-9 * want:  # leave no dust of rounding working
        qty = want
    if qty < want and order.tif == TIF.FOK:
        return FillResult(0.0, np.nan, 0.0, False, STATUS.CANCELLED, INFO.FOK_UNFILLED, 0.0, triggered)
    remaining = want - qty
    status, info = STATUS.FILLED, INFO.NONE
    if remaining > 0.0:
        gtc = order.tif == TIF.GTC
        status, info = (STATUS.OPEN, INFO.NONE) if gtc else (STATUS.CANCELLED, INFO.IOC_REMAINDER)
    if not qty > 0.0:
        return FillResult(0.0, np.nan, 0.0, False, status, info, remaining, triggered)
    notional = qty * price
    # spend the cash limit exactly, as vectorbt does, so a cash-sized order leaves no crumbs of cash
    fee = cash_limit - notional if cash_capped and remaining == 0.0 and fee_rate != 0.0 else notional * fee_rate
    return FillResult(qty, price, fee, maker, status, info, remaining if status == STATUS.OPEN else 0.0, triggered)


# %%
test_eq(participation_cap_nb(1_000.0, 0.1), 100.0)
test_eq(participation_cap_nb(1_000.0, np.inf), np.inf)
test_close(affordable_qty_nb(1_000.0, 100.0, 0.001) * 100.0 * 1.001, 1_000.0)


# %% [markdown]
# ## Limit orders and post-only
# A limit is *marketable* on arrival when the touch (the ask for a buy) is within its limit: it fills
# at once as a **taker**, spread and slippage included but never beyond its limit. Otherwise it rests
# and fills later as a **maker** at its limit — in the arrival bar too, when it arrived at the open and
# the bar then trades through it. A **post-only** limit that would cross is rejected. An IOC or FOK
# limit that cannot fill on arrival is cancelled.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def _limit_fill_nb(order: WorkingOrder, at: float, path: bool, arriving: bool, bar: Bar,
                   params: FillParams) -> tuple[float, bool, int]:
    "(price, maker, info) of a live limit in this bar; price NaN when it does not fill here."
    side, limit = order.side, order.limit
    if arriving:
        touch = at + side * half_spread_nb(at, bar.spread, params.spread)
        if side * (limit - touch) >= 0:
            if order.post_only:
                return np.nan, False, INFO.POST_ONLY
            price = taker_price_nb(side, at, bar, params)
            return (limit if side * (price - limit) > 0 else price), False, INFO.NONE
        if order.tif != TIF.GTC:
            return np.nan, False, INFO.NOT_MARKETABLE
        if not path:
            return np.nan, False, INFO.NONE
        return through_nb(side, limit, bar.open, bar.high, bar.low, False), True, INFO.NONE
    return through_nb(side, limit, bar.open, bar.high, bar.low, True), True, INFO.NONE


# %% [markdown]
# ## One order, one bar
# `fill_order_nb` is the whole model for one working order in one bar. `arrival` says where the
# order meets the bar; `cash_limit` is the cash the account lets it spend (`inf` for an order that
# only reduces a position). A stop-limit that triggers inside the bar becomes a limit at its trigger
# price: it fills at once if marketable there, and otherwise rests from the next bar (what the bar did
# after the trigger is unknown). Time in force applies once an order is executable: an untriggered
# stop keeps working whatever its TIF.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def fill_order_nb(order: WorkingOrder,  # what is left of the order
                  bar: Bar,  # the bar it meets
                  arrival: int,  # Arrival: RESTING, OPEN or CLOSE
                  cash_limit: float,  # cash it may spend, fee included (inf: reduces a position only)
                  params: FillParams,  # the fill model's settings
                 ) -> FillResult:  # fill of this bar and the order's status after it
    "Run one working order through one bar: trigger, price, fee, partial fill and time in force."
    at_close = arrival == ARRIVAL.CLOSE
    first = bar.close if at_close else bar.open
    path = not at_close
    side, triggered = order.side, order.triggered
    arriving = arrival != ARRIVAL.RESTING
    working = FillResult(0.0, np.nan, 0.0, False, STATUS.OPEN, INFO.NONE, order.qty, triggered)
    if order.type == ORDER_TYPE.STOP or order.type == ORDER_TYPE.STOP_LIMIT:
        if not triggered:
            trig = trigger_nb(side, order.stop, first, bar.high, bar.low, path)
            if trig != trig:
                return working
            triggered, arriving = True, True
            if trig != first:  # triggered inside the bar: the rest of the bar's path is unknown
                first, path = trig, False
            working = FillResult(0.0, np.nan, 0.0, False, STATUS.OPEN, INFO.NONE, order.qty, True)
        if order.type == ORDER_TYPE.STOP:
            return _size_fill_nb(order, taker_price_nb(side, first, bar, params), False, triggered, bar, cash_limit,
                                 params)
    if order.type == ORDER_TYPE.MARKET:
        return _size_fill_nb(order, taker_price_nb(side, first, bar, params), False, triggered, bar, cash_limit,
                             params)
    price, maker, info = _limit_fill_nb(order, first, path, arriving, bar, params)
    if info == INFO.POST_ONLY:
        return FillResult(0.0, np.nan, 0.0, False, STATUS.REJECTED, info, 0.0, triggered)
    if info == INFO.NOT_MARKETABLE:
        return FillResult(0.0, np.nan, 0.0, False, STATUS.CANCELLED, info, 0.0, triggered)
    if price != price:
        return working
    return _size_fill_nb(order, price, maker, triggered, bar, cash_limit, params)


# %% [markdown]
# A market buy arriving at the open pays the ask plus slippage and the taker fee. Its **latency** is
# the loop's business (next section): the kernel only needs to know that the order arrived.

# %%
fees = FillParams(maker_fee=0.0002, taker_fee=0.00055, spread=0.0002)
bar = Bar(open=100.0, high=103.0, low=98.0, close=102.0, volume=50.0)
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, 2.0), bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((r.qty, r.status, r.maker), (2.0, STATUS.FILLED, False))
test_close(r.price, 100.01)
test_close(r.fee, 2 * 100.01 * 0.00055)
r = fill_order_nb(WorkingOrder(SIDE.SELL, ORDER_TYPE.MARKET, 2.0), bar, ARRIVAL.CLOSE, np.inf, fees)
test_close(r.price, 102 * (1 - 0.0001))  # at the close, less half the spread

# %% [markdown]
# **Fees, maker vs taker**: a limit that rests and is then traded through is a maker; a limit that is
# marketable when it arrives is a taker (and never fills beyond its limit).

# %%
rest = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=99.0), bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((rest.price, rest.maker, rest.status), (99.0, True, STATUS.FILLED))  # rested from the open, low 98 < 99
test_close(rest.fee, 99.0 * 0.0002)
cross = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=100.5), bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((cross.maker, cross.status), (False, STATUS.FILLED))
test_close(cross.price, 100.01)  # the ask, not the limit
test_close(cross.fee, 100.01 * 0.00055)
tight = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=100.015), bar, ARRIVAL.OPEN, np.inf,
                      fees._replace(slippage=0.001))
test_eq(tight.price, 100.015)  # marketable at the ask, slippage capped by the limit
old = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=99.0), bar, ARRIVAL.RESTING, np.inf, fees)
test_eq((old.price, old.maker), (99.0, True))
untouched = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=98.0), bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((untouched.qty, untouched.status, untouched.remaining), (0.0, STATUS.OPEN, 1.0))  # low 98 only touched it

# %% [markdown]
# **Post-only** rejects a limit that would cross on arrival, and leaves a passive one alone.

# %%
po = WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=100.5, post_only=True)
r = fill_order_nb(po, bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((r.status, r.info, r.qty), (STATUS.REJECTED, INFO.POST_ONLY, 0.0))
r = fill_order_nb(po._replace(limit=99.0), bar, ARRIVAL.OPEN, np.inf, fees)
test_eq((r.status, r.maker, r.price), (STATUS.FILLED, True, 99.0))

# %% [markdown]
# **Partial fills and their remainder.** With 10 % participation a bar of volume 50 gives at most 5
# units. GTC keeps the other 5 working — and the next bar fills them, now resting; IOC cancels them;
# FOK fills nothing at all. An IOC or FOK limit that cannot fill on arrival is cancelled.

# %%
capped = fees._replace(participation=0.1)
gtc = WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, 10.0, tif=TIF.GTC)
r1 = fill_order_nb(gtc, bar, ARRIVAL.OPEN, np.inf, capped)
test_eq((r1.qty, r1.status, r1.remaining), (5.0, STATUS.OPEN, 5.0))
r2 = fill_order_nb(gtc._replace(qty=r1.remaining), Bar(102.0, 104.0, 101.0, 103.0, 80.0), ARRIVAL.RESTING, np.inf,
                   capped)
test_eq((r2.qty, r2.status, r2.remaining), (5.0, STATUS.FILLED, 0.0))
test_close(r2.price, 102.0 * 1.0001)  # the carried remainder meets the next bar's open
r = fill_order_nb(gtc._replace(tif=TIF.IOC), bar, ARRIVAL.OPEN, np.inf, capped)
test_eq((r.qty, r.status, r.info, r.remaining), (5.0, STATUS.CANCELLED, INFO.IOC_REMAINDER, 0.0))
r = fill_order_nb(gtc._replace(tif=TIF.FOK), bar, ARRIVAL.OPEN, np.inf, capped)
test_eq((r.qty, r.status, r.info), (0.0, STATUS.CANCELLED, INFO.FOK_UNFILLED))
r = fill_order_nb(gtc._replace(tif=TIF.FOK, qty=5.0), bar, ARRIVAL.OPEN, np.inf, capped)
test_eq((r.qty, r.status), (5.0, STATUS.FILLED))  # everything fits: FOK fills
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 1.0, limit=99.0, tif=TIF.IOC), bar, ARRIVAL.OPEN,
                  np.inf, fees)
test_eq((r.qty, r.status, r.info), (0.0, STATUS.CANCELLED, INFO.NOT_MARKETABLE))

# %% [markdown]
# **Cash.** An order sized by cash (`qty=inf`) buys what the cash limit pays for, fee included, and
# spends it exactly; a larger order is cut to what the cash pays for; no cash is a rejection.

# %%
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, np.inf), bar, ARRIVAL.OPEN, 1_000.0, fees)
test_close(r.qty, 1_000.0 / 1.00055 / 100.01)
test_close(r.qty * r.price + r.fee, 1_000.0, eps=1e-12)
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, np.inf, notional=500.0), bar, ARRIVAL.OPEN, 1_000.0, fees)
test_close(r.qty * r.price, 500.0)
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, 0.5), bar, ARRIVAL.OPEN, 10.0, fees)
test_close(r.qty * r.price + r.fee, 10.0)
test_eq(r.status, STATUS.FILLED)
r = fill_order_nb(WorkingOrder(SIDE.BUY, ORDER_TYPE.MARKET, 1.0), bar, ARRIVAL.OPEN, 0.0, fees)
test_eq((r.status, r.info), (STATUS.REJECTED, INFO.NO_CASH))

# %% [markdown]
# **Stop and stop-limit orders.** A buy stop at 101 triggers inside the bar and fills as a taker at
# 101 plus costs; a gap above it fills at the open. A stop-limit triggered inside the bar fills only if
# its limit is marketable at the trigger; otherwise it rests, and fills as a maker in a later bar.

# %%
stop = WorkingOrder(SIDE.BUY, ORDER_TYPE.STOP, 1.0, stop=101.0)
r = fill_order_nb(stop, bar, ARRIVAL.RESTING, np.inf, fees)
test_eq((r.triggered, r.maker), (True, False))
test_close(r.price, 101 * 1.0001)
r = fill_order_nb(stop, Bar(104.0, 105.0, 103.0, 104.5), ARRIVAL.RESTING, np.inf, fees)
test_close(r.price, 104 * 1.0001)  # gap: the open
r = fill_order_nb(stop._replace(stop=110.0), bar, ARRIVAL.RESTING, np.inf, fees)
test_eq((r.status, r.triggered, r.qty), (STATUS.OPEN, False, 0.0))
sl = WorkingOrder(SIDE.BUY, ORDER_TYPE.STOP_LIMIT, 1.0, stop=101.0, limit=100.5)
r = fill_order_nb(sl, bar, ARRIVAL.RESTING, np.inf, fees)
test_eq((r.status, r.triggered, r.qty), (STATUS.OPEN, True, 0.0))  # ask at the trigger is above the limit
r = fill_order_nb(sl._replace(triggered=True), Bar(101.5, 101.8, 100.0, 101.0), ARRIVAL.RESTING, np.inf, fees)
test_eq((r.price, r.maker), (100.5, True))
r = fill_order_nb(sl._replace(limit=101.5), bar, ARRIVAL.RESTING, np.inf, fees)
test_close(r.price, 101 * 1.0001)
test_eq(r.maker, False)


# %% [markdown]
# ## Latency
# A decision taken at bar `t`'s close reaches the market `latency` bars later: at the open of bar
# `t + 1 + latency`, or — in the close-fill convention — at the close of bar `t + latency`.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def arrival_bar_nb(decision_bar: int, latency: int, at_close: bool) -> int:
    "Index of the bar whose open (or close, `at_close`) a decision of `decision_bar` reaches."
    return decision_bar + latency + (0 if at_close else 1)


# %%
test_eq(arrival_bar_nb(10, 0, False), 11)
test_eq(arrival_bar_nb(10, 2, False), 13)
test_eq(arrival_bar_nb(10, 0, True), 10)


# %% [markdown]
# ## Protective exits
# Stop-loss, trailing stop and take-profit are orders resting at the venue from the entry on, so they
# are checked against every bar's path. The **conservative rule**: when a bar touches both the stop
# and the take-profit, the stop fills (the bar cannot tell which came first). A bar that opens beyond
# a level fills at the **open** (a gap through a stop costs more than the stop distance). The stop is
# the tighter of the fixed stop-loss and the trailing stop. Like vectorbt, a stop triggers on a touch;
# the take-profit, a limit, needs the bar to trade through it. The trailing peak moves only *after*
# the bar is checked: a bar's high may well have come after its low.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def protective_exit_nb(direction: int,  # +1 long, -1 short
                       sl: float,  # stop-loss price (NaN: none)
                       trail: float,  # trailing-stop price (NaN: none)
                       tp: float,  # take-profit price (NaN: none)
                       open: float, high: float, low: float,  # the bar's path from where it is checked
                      ) -> tuple[float, int]:  # (price the level trades at, Reason); NaN, -1 when none
    "First protective exit a position meets in a bar, stop before take-profit."
    stop, reason = sl, REASON.STOP_LOSS
    if trail == trail and (sl != sl or direction * (trail - sl) > 0):
        stop, reason = trail, REASON.TRAILING_STOP
    if stop == stop:
        if direction * (open - stop) <= 0:
            return open, reason
        if (low <= stop) if direction > 0 else (high >= stop):
            return stop, reason
    if tp == tp:
        if direction * (open - tp) > 0:
            return open, REASON.TAKE_PROFIT
        if (high > tp) if direction > 0 else (low < tp):
            return tp, REASON.TAKE_PROFIT
    return np.nan, -1


@njit(cache=True, error_model="numpy", forceinline=True)
def trail_peak_nb(direction: int, peak: float, high: float, low: float) -> float:
    "Best price since entry after this bar: the highest high of a long, the lowest low of a short."
    return max(peak, high) if direction > 0 else min(peak, low)


@njit(cache=True, error_model="numpy", forceinline=True)
def stop_level_nb(direction: int, ref: float, frac: float) -> float:
    "Price `frac` away from `ref` against a position of `direction` (a stop-loss or trailing level)."
    return ref * (1.0 - direction * frac)


# %%
long_sl, long_tp = stop_level_nb(1, 100.0, 0.02), stop_level_nb(-1, 100.0, 0.05)
test_eq((long_sl, long_tp), (98.0, 105.0))
test_eq(protective_exit_nb(1, 98.0, np.nan, 105.0, 101.0, 106.0, 97.0), (98.0, REASON.STOP_LOSS))  # both: stop first
test_eq(protective_exit_nb(1, 98.0, np.nan, 105.0, 101.0, 106.0, 99.0), (105.0, REASON.TAKE_PROFIT))
test_eq(protective_exit_nb(1, 98.0, np.nan, 105.0, 95.0, 96.0, 94.0), (95.0, REASON.STOP_LOSS))  # gap: the open
test_eq(protective_exit_nb(1, 98.0, np.nan, 105.0, 107.0, 108.0, 106.0), (107.0, REASON.TAKE_PROFIT))
test_eq(protective_exit_nb(1, 98.0, np.nan, 105.0, 101.0, 105.0, 99.0)[1], -1)  # TP touched, not traded through
test_eq(protective_exit_nb(-1, 102.0, np.nan, 95.0, 99.0, 102.5, 94.0), (102.0, REASON.STOP_LOSS))  # short
test_eq(protective_exit_nb(1, 98.0, 99.0, np.nan, 101.0, 102.0, 98.5), (99.0, REASON.TRAILING_STOP))  # tighter
test_eq(trail_peak_nb(1, 101.0, 103.0, 99.0), 103.0)
test_eq(trail_peak_nb(-1, 101.0, 103.0, 99.0), 99.0)


# %% [markdown]
# ## The stop rule
# One rule places every protective level, in the backtester's loop, at the paper venue, in the SL/TP
# manager and in the router's checks: a stop-loss `sl_dist` price units from the reference (an ATR
# stop), or `sl_frac` of it; when both are given, the **tighter** one. The take-profit likewise: `tp_dist`
# or `tp_frac` away, the nearer when both are given. `stop_distance_nb` is the distance the rule puts
# the stop at in price units — what the 15 % cap, the asset's stop band and the risk sizing must see.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def stop_price_nb(direction: int,  # +1 long, -1 short
                  ref: float,  # reference price: the entry (or average) price
                  sl_frac: float,  # stop distance as a fraction of `ref` (NaN: none)
                  sl_dist: float,  # stop distance in price units (NaN: none)
                 ) -> float:  # the stop-loss price (NaN: no stop)
    "The stop-loss price: `sl_dist` or `sl_frac` away from `ref` against the position, the tighter of the two."
    level = stop_level_nb(direction, ref, sl_frac) if sl_frac == sl_frac else np.nan
    if sl_dist == sl_dist:
        by_dist = ref - direction * sl_dist
        if level != level or direction * (by_dist - level) > 0:
            level = by_dist
    return level


@njit(cache=True, error_model="numpy", forceinline=True)
def target_price_nb(direction: int,  # +1 long, -1 short
                    ref: float,  # reference price: the entry (or average) price
                    tp_frac: float,  # take-profit distance as a fraction of `ref` (NaN: none)
                    tp_dist: float,  # take-profit distance in price units (NaN: none)
                   ) -> float:  # the take-profit price (NaN: no target)
    "The take-profit price: `tp_dist` or `tp_frac` away from `ref` in the position's favour, the nearer of the two."
    level = stop_level_nb(-direction, ref, tp_frac) if tp_frac == tp_frac else np.nan
    if tp_dist == tp_dist:
        by_dist = ref + direction * tp_dist
        if level != level or direction * (by_dist - level) < 0:
            level = by_dist
    return level


@njit(cache=True, error_model="numpy", forceinline=True)
def stop_distance_nb(ref: float,  # reference price
                     sl_frac: float,  # stop distance as a fraction of `ref` (NaN: none)
                     sl_dist: float,  # stop distance in price units (NaN: none)
                    ) -> float:  # the distance the stop rule puts the stop at, in price units (NaN: no stop)
    "How far the stop rule puts the stop from `ref`: `sl_dist` or `ref × sl_frac`, the smaller (tighter) one."
    by_pct = ref * sl_frac if sl_frac == sl_frac else np.nan
    if sl_dist != sl_dist:
        return by_pct
    return sl_dist if by_pct != by_pct or sl_dist < by_pct else by_pct


# %%
test_eq(stop_price_nb(1, 100.0, 0.02, np.nan), 98.0)
test_eq(stop_price_nb(1, 100.0, 0.02, 3.0), 98.0)  # the tighter: 2 % beats 3 points
test_eq(stop_price_nb(-1, 100.0, 0.05, 3.0), 103.0)  # a short's stop above; 3 points beat 5 %
test_eq(np.isnan(stop_price_nb(1, 100.0, np.nan, np.nan)), True)
test_eq((target_price_nb(1, 100.0, 0.04, np.nan), target_price_nb(-1, 100.0, 0.04, 3.0)), (104.0, 97.0))
test_eq((stop_distance_nb(100.0, 0.30, 2.0), stop_distance_nb(100.0, np.nan, 2.0)), (2.0, 2.0))  # what the cap sees
test_close(stop_distance_nb(100.0, 0.01, 2.0), 1.0)
test_eq(stop_price_nb(1, 30123.45, 0.02, np.nan), stop_level_nb(1, 30123.45, 0.02))  # bit for bit the % arithmetic


# %% [markdown]
# ## Time stop
# A position is closed by a market order decided at the close of bar `entry_bar + bars`.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def time_stop_due_nb(entry_bar: int, bar: int, bars: int) -> bool:
    "True when a position entered at `entry_bar` reaches its time stop of `bars` at the close of `bar` (0: none)."
    return bars > 0 and bar - entry_bar >= bars


# %%
test_eq([time_stop_due_nb(5, b, 3) for b in (6, 7, 8, 9)], [False, False, True, True])
test_eq(time_stop_due_nb(5, 100, 0), False)


# %% [markdown]
# ## Conflicting signals
# One bar's four signals, as the backtester's loop and the paper engine both read them: an entry together
# with its own exit means nothing, and so do both entries at once; while entries are blocked (the
# cooldown after a protective exit, a strategy still warming up) only the exits count.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def signal_rules_nb(long_entry: bool, long_exit: bool,  # the bar's long signals
                    short_entry: bool, short_exit: bool,  # its short signals
                    entries_blocked: bool,  # a cooldown or a cold strategy: entries are dropped
                   ) -> tuple[bool, bool, bool, bool]:  # (long entry, long exit, short entry, short exit) that count
    "The signals that count: an entry and its exit cancel, both entries cancel, a block drops the entries."
    le, lx, se, sx = long_entry, long_exit, short_entry, short_exit
    if le and lx:
        le = lx = False
    if se and sx:
        se = sx = False
    if le and se:
        le = se = False
    if entries_blocked:
        le = se = False
    return le, lx, se, sx


# %%
test_eq(signal_rules_nb(True, True, False, True, False), (False, False, False, True))
test_eq(signal_rules_nb(True, False, True, False, False), (False, False, False, False))
test_eq(signal_rules_nb(True, False, False, True, False), (True, False, False, True))
test_eq(signal_rules_nb(True, True, True, False, True), (False, False, False, False))
test_eq(signal_rules_nb(False, True, True, False, True), (False, True, False, False))


# %% [markdown]
# ## The stop-distance cap
# DESIGN §7: no stop farther than `SAFETY.MAX_STOP_LOSS_PCT` (15 %) from the entry, whatever path an
# order came by. The kernel answers for one order; refusing it is the caller's job.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def stop_within_cap_nb(ref: float, stop: float, max_frac: float) -> bool:
    "True when `stop` is at most `max_frac` away from `ref` (a relative tolerance of 1e-12 absorbs rounding)."
    return abs(ref - stop) <= max_frac * ref * (1.0 + 1e-12)


# %%
test_eq(stop_within_cap_nb(100.0, 85.0, 0.15), True)
test_eq(stop_within_cap_nb(100.0, 84.99, 0.15), False)
test_eq(stop_within_cap_nb(100.0, 115.0, 0.15), True)  # a short's stop above
test_eq(stop_within_cap_nb(100.0, 115.5, 0.15), False)


# %% [markdown]
# ## Funding
# A perpetual swap pays funding between longs and shorts every interval (8 h on Bybit):
# `position × mark price × rate`. With a positive rate **longs pay and shorts receive**; the kernel
# returns the cash flow to the account.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def funding_flow_nb(position: float, mark: float, rate: float) -> float:
    "Cash the account receives (negative: pays) for holding `position` units at `mark` when funding `rate` settles."
    return -position * mark * rate


# %%
test_close(funding_flow_nb(2.0, 30_000.0, 0.0001), -6.0)  # a long pays
test_close(funding_flow_nb(-2.0, 30_000.0, 0.0001), 6.0)  # a short receives
test_close(funding_flow_nb(2.0, 30_000.0, -0.0001), 6.0)  # negative rate: longs receive
test_eq(funding_flow_nb(0.0, 30_000.0, 0.0001), 0.0)

# %% [markdown]
# ## Called from Python
# Every kernel is an ordinary callable from Python with scalars — what the paper broker will do bar
# by bar. Driving one GTC limit order through a few bars reproduces the partial fills above.

# %%
order = WorkingOrder(SIDE.BUY, ORDER_TYPE.LIMIT, 12.0, limit=99.5, tif=TIF.GTC)
bars = [Bar(100.0, 100.5, 99.8, 100.2, 40.0), Bar(100.2, 100.3, 99.0, 99.2, 40.0), Bar(99.2, 99.6, 98.9, 99.4, 90.0)]
fills = []
for i, b in enumerate(bars):
    r = fill_order_nb(order, b, ARRIVAL.OPEN if i == 0 else ARRIVAL.RESTING, np.inf, capped)
    fills.append((i, r.qty, r.price, r.maker))
    order = order._replace(qty=r.remaining)
    if r.status != STATUS.OPEN:
        break
test_eq(fills[0][1], 0.0)  # the first bar never traded through 99.5
test_eq(fills[1:], [(1, 4.0, 99.5, True), (2, 8.0, 99.2, True)])  # 10 % of 40, then the rest at the lower open
test_eq(r.status, STATUS.FILLED)
