# %% [markdown]
# # Order router
#
# > The only order placer, and one gate for every order on every path — new decisions, exits, orders restored after a crash, unknown outcomes, protective levels and direct calls: mode and kill switches → risk → budget → exposure → the book's venue, each refusal with its reason in the audit log; every order recorded in SQLite under a deterministic id before the venue is called.

# %%
#| default_exp execution.router

# %% [markdown]
# Seed 002's call flow, in code. Every order passes `check` — whichever path it came by: a strategy's
# entry or exit, an order re-decided after a restart, an order restored from the store whose outcome a
# crash left unknown, or a direct call. An **opening** order (one that opens or grows a position) passes,
# in this order:
#
# 1. **mode** — the book may open: for the *live* book no global or asset kill, the master switch on, not
#    close-only, no `broker_desync`, no stop; the *paper* book answers only to a stop (training continues
#    while live is killed — `Controller.can_open`);
# 2. **risk** — a stop-loss is required, and the *effective* stop — where the one stop rule puts it, of the
#    intent's `sl_pct` and `sl_distance` the tighter — is within `SAFETY.MAX_STOP_LOSS_PCT` and the asset's
#    band; a short needs a venue that allows shorts; the size is rounded down to the venue's lot and
#    refused below one lot or the minimum notional (never rounded up); `valid_order` checks the per-trade,
#    position, per-asset and daily-loss caps;
# 3. **budget** — the asset's bucket covers the margin besides its open positions and reservations; the
#    margin is then reserved under the order's id;
# 4. **exposure** — clusters, concurrency and total exposure across every asset of the book's mode, and the
#    correlation of returns with every open position;
# 5. **record, then send** — the order goes to SQLite, then to the book's venue.
#
# An order that only **reduces** a position (exits, time stops, close-all) skips 1–4 — a kill switch must
# never stop a position from being closed — but the router checks it against the book: a reduce-only
# order that would open, grow or flip a position is refused, whatever the venue supports. Protective
# levels (`protect`) always pass, their stop held within the 15 % cap.
#
# The id is `client_order_id(strategy, symbol, decision bar, sequence, mode)`. If the store already holds
# it, the router asks the venue about that id first: a venue that knows it is left alone; one that never
# saw it gets the order again *under the same id* — after the checks, which may now refuse it (a kill
# switch turned on meanwhile): then it is settled as rejected, never sent. An order is never sent twice
# under two ids.

# %%
#| export
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

import pandas as pd

from tradingbot.brokers.base import ExecutionClient
from tradingbot.execution._nb import stop_distance_nb
from tradingbot.execution.budget import Budget
from tradingbot.execution.exposure import ExposureConfig, can_open
from tradingbot.execution.model import MODES, Order, OrderIntent, client_order_id
from tradingbot.execution.risk import RiskConfig, round_qty_nb, round_size, valid_order
from tradingbot.execution.store import OrderStore
from tradingbot.jsonlog import log_event

# %%
#| hide
import tempfile
from pathlib import Path

from fastcore.test import test_eq, test_fail


# %% [markdown]
# ## What the checks see
# `BookContext` is the book at the decision: its equity (the asset's allocation and its P&L), the
# reference price, the position in the order's symbol, every open position of the same mode across the
# assets (for the portfolio-wide caps), today's realised loss, the venue's lot and minimum, whether it
# allows shorts, and recent returns by symbol for the correlation cap.

# %%
#| export
@dataclass(frozen=True)
class RouteResult:
    "What became of an order: sent (ok) or refused at `stage` with `reason`."
    ok: bool
    stage: str = ""  # mode, risk, budget, exposure, client, venue (already there)
    reason: str = ""
    order: Order | None = None


@dataclass
class BookContext:
    "What the checks need to know about the book at the decision."
    equity: float  # the book's equity in USD: the asset's allocation and its P&L
    price: float  # reference price: the decision bar's close
    position: float = 0.0  # the book's signed position in the order's symbol
    open_positions: list = field(default_factory=list)  # [{'asset', 'symbol', 'notional'}] of every book of this mode
    portfolio_equity: float | None = None  # equity of every book of this mode (exposure caps; None: `equity`)
    daily_realised_loss: float = 0.0  # today's realised loss (positive = lost)
    qty_step: float = 1e-8  # the venue's quantity step
    min_notional: float = 0.0  # the venue's minimum order value
    leverage: float = 1.0
    shorting: bool = True  # the venue allows short positions
    returns: pd.DataFrame | None = None  # recent per-bar returns by symbol (None: no correlation rule)

    def asset_open(self, asset: str,  # an asset
                   ) -> float:  # the notional its open positions hold
        "What `asset`'s open positions hold, in USD."
        return sum(abs(float(p["notional"])) for p in self.open_positions if p.get("asset", asset) == asset)


def effective_sl_pct(intent: OrderIntent,  # the intent
                     price: float,  # the reference price (the decision's close)
                     ) -> float:  # percent of `price` (NaN: the intent carries no stop)
    "The stop distance the order really carries by the one stop rule, in percent of `price`."
    frac = intent.sl_pct / 100 if intent.sl_pct is not None else math.nan
    dist = intent.sl_distance if intent.sl_distance is not None else math.nan
    return 100 * float(stop_distance_nb(float(price), frac, dist)) / price


class _AlwaysOpen:
    "Mode gate used when no controller is given (notebooks, tests)."

    def can_open(self, asset: str, mode: str = "live") -> tuple[bool, str]:
        return True, ""


# %%
_i = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=2.0, strategy_id="rsi2", notional=100.0, sl_distance=3000.0)
test_eq(effective_sl_pct(_i, 10_000.0), 2.0)  # the tighter of 2 % and 30 %: the venue holds 2 %
test_eq(effective_sl_pct(replace(_i, sl_pct=None), 10_000.0), 30.0)
test_eq(math.isnan(effective_sl_pct(replace(_i, sl_pct=None, sl_distance=None), 10_000.0)), True)


# %% [markdown]
# ## The router
# `check` is the one gate; `submit` records and sends what passes it; `place` builds the order of a
# decision and submits it; `resolve` settles, after a restart, orders whose outcome is unknown; `protect`
# sets protective levels; `cancel` withdraws a working order.

# %%
#| export
class Router:
    "The one place orders are placed: checks, record-before-send, then the book's venue."

    def __init__(self, store: OrderStore,  # the SQLite order store
                 clients: Mapping,  # (asset, mode) -> venue client; a plain asset key is that asset's paper venue
                 controller=None,  # anything with can_open(asset, mode) -> (ok, reason); None: always open
                 risk: RiskConfig | None = None,  # the risk rules (default: the configuration's)
                 budgets: Mapping[str, Budget] | Budget | None = None,  # mode -> Budget (a Budget alone: paper's)
                 exposure: ExposureConfig | None = None,  # exposure caps (default: the configuration's)
                 audit=None,  # an AuditLog: every submission and refusal is chained into it
                 ):
        self.store, self.controller = store, controller or _AlwaysOpen()
        self.clients = {(k if isinstance(k, tuple) else (k, "paper")): c for k, c in clients.items()}
        self.risk = risk or RiskConfig.from_config()
        self.budgets = {"paper": budgets} if isinstance(budgets, Budget) else dict(budgets or {})
        self.exposure, self.audit = exposure or ExposureConfig.from_config(), audit

    def client(self, asset: str,  # the asset
               mode: str = "paper",  # its book
               ) -> ExecutionClient:
        "The venue client of a book."
        if (asset, mode) not in self.clients:
            known = ", ".join(f"{a}/{m}" for a, m in self.clients)
            raise ValueError(f"no {mode} execution client for asset {asset!r}; configured: {known}")
        return self.clients[asset, mode]

    # -- the gate -------------------------------------------------------------------------------------
    def check(self, order: Order,  # the order, as decided or as recorded
              ctx: BookContext,  # the book now
              ) -> tuple[Order | None, str, str]:  # (the order sized to the venue's lot, or None; stage; reason)
        "Every check an order must pass before it may be sent, in order; the first refusal is the answer."
        if order.reduce_only:
            reason = _reduce_only_problem(order.intent, ctx.position)
            return (None, "risk", reason) if reason else (order, "", "")
        ok, reason = self.controller.can_open(order.intent.asset, order.mode)
        if not ok:
            return None, "mode", reason
        sized, reason = self._check_risk(order.intent, ctx)
        if sized is None:
            return None, "risk", reason
        order = replace(order, intent=sized)
        stage, reason = self._check_book(order, ctx)
        return (None, stage, reason) if stage else (order, "", "")

    def _check_risk(self, intent: OrderIntent, ctx: BookContext) -> tuple[OrderIntent | None, str]:
        "Stop required, within the cap and the asset's band; shorts allowed; size on the venue's lot; the caps."
        if not (math.isfinite(ctx.price) and ctx.price > 0):
            return None, f"no valid reference price ({ctx.price!r})"
        sl = effective_sl_pct(intent, ctx.price)
        if sl > self.risk.max_stop_loss_pct:
            return None, (f"stop-loss {sl:.4g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {self.risk.max_stop_loss_pct:g} %; "
                          "every order needs a stop within the cap")
        if intent.side == "sell" and ctx.position <= 0 and not ctx.shorting:
            return None, f"shorting: {intent.asset} allows no short positions; a sell must close a long"
        if intent.qty is not None:  # a recorded order keeps its quantity: only checked against the lot
            qty = float(round_qty_nb(float(intent.qty), float(ctx.qty_step)))
            if qty == 0.0:
                return None, f"below one lot: {intent.qty:g} units is less than one lot of {ctx.qty_step:g}"
            if qty != intent.qty:
                return None, f"lot: {intent.qty:g} units is not a whole number of lots of {ctx.qty_step:g}"
            if qty * ctx.price < ctx.min_notional:
                return None, (f"min notional: {qty * ctx.price:.2f} USD is below the minimum {ctx.min_notional:g} "
                              "USD")
            notional = qty * ctx.price
        else:
            sized = round_size(intent.notional, ctx.price, ctx.qty_step, ctx.min_notional)
            if sized.qty == 0:  # below one lot or the venue's minimum: refused, never rounded up
                return None, sized.reason
            qty, notional = sized.qty, sized.notional
        ok, reason = valid_order(ctx.equity, notional, sl, intent.asset, ctx.leverage, ctx.daily_realised_loss,
                                 ctx.asset_open(intent.asset), self.risk)
        return (replace(intent, qty=qty, notional=None), "") if ok else (None, reason)

    def _check_book(self, order: Order, ctx: BookContext) -> tuple[str, str]:
        "Budget then exposure; ('', '') when both pass."
        intent = order.intent
        notional = intent.qty * ctx.price
        budget = self.budgets.get(order.mode)
        if budget is not None and intent.asset in budget.buckets:
            ok, reason = budget.can_afford(intent.asset, notional, ctx.leverage, ctx.asset_open(intent.asset))
            if not ok and order.client_order_id not in budget.bucket(intent.asset).reserved:
                return "budget", reason
        equity = ctx.portfolio_equity if ctx.portfolio_equity is not None else ctx.equity
        ok, reason = can_open(intent.symbol, notional, ctx.open_positions, equity, ctx.returns, self.exposure)
        return ("", "") if ok else ("exposure", reason)

    # -- sending --------------------------------------------------------------------------------------
    def place(self, intent: OrderIntent,  # what the strategy (or the engine) wants
              *, decision_ts: datetime,  # close time of the bar the decision was made on
              ctx: BookContext,  # the book at the decision
              sequence: int = 0,  # n-th order of this decision
              reduce_only: bool = False,  # an exit: may only reduce the position
              order_type: str = "market",  # market, limit, stop or stop_limit
              limit_price: float | None = None,  # limit and stop-limit orders
              stop_price: float | None = None,  # stop and stop-limit orders
              mode: str = "paper",  # the book: paper or live
              ) -> RouteResult:
        "Build the order of a decision and submit it; the result says what happened and why."
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        cid = client_order_id(intent.strategy_id, intent.symbol, decision_ts, sequence, mode)
        if reduce_only and intent.qty is None:
            return self._refuse("risk", "a reduce-only order needs a quantity", intent, cid, mode)
        order = Order(cid, intent, order_type=order_type, limit_price=limit_price, stop_price=stop_price,
                      reduce_only=reduce_only, created_at=decision_ts, mode=mode)
        return self.submit(order, ctx)

    def submit(self, order: Order,  # a new order, a re-decided one, or one restored from the store
               ctx: BookContext,  # the book now
               ) -> RouteResult:
        "The one path to a venue: the venue asked first about a known id, then the checks, the record, the send."
        cid, client = order.client_order_id, self.client(order.intent.asset, order.mode)
        recorded = self.store.get_order(cid)
        if recorded is not None:  # even a 'new' record may have reached the venue: a crash can fall before the update
            venue = client.lookup(cid)
            if venue is not None:
                self.store.update_order_status(cid, venue)
                return RouteResult(True, "venue", f"already at the venue ({venue})", self.store.get_order(cid))
            order = recorded  # the recorded order, never a re-sized one
        checked, stage, reason = self.check(order, ctx)
        if checked is None:
            if recorded is not None:  # settled as refused: it never reaches the venue
                self._release(self.store.update_order_status(cid, "rejected"))
            return self._refuse(stage, reason, order.intent, cid, order.mode)
        self._reserve(checked, ctx)
        stored = self.store.record_order(checked)
        self._audit("order_submitted", stored, qty=stored.intent.qty, reduce_only=stored.reduce_only)
        return self._send(client, stored)

    def _send(self, client: ExecutionClient, order: Order) -> RouteResult:
        "Hand a recorded order to the venue; an exception leaves it 'unknown', to be resolved by its id."
        cid = order.client_order_id
        try:
            ack = client.submit(order)
        except Exception as exc:  # the outcome is unknown: keep the id, resolve by lookup
            self.store.update_order_status(cid, "unknown")
            log_event("order_outcome_unknown", client_order_id=cid, error=f"{type(exc).__name__}: {exc}")
            return RouteResult(False, "client", f"{type(exc).__name__}: {exc}", self.store.get_order(cid))
        order = self.store.update_order_status(cid, ack.status, ack.broker_order_id)
        if ack.status == "rejected":
            self._release(order)
            return RouteResult(False, "client", ack.reason, order)
        return RouteResult(True, "", "", order)

    def resolve(self, asset: str,  # the asset
                mode: str,  # its book
                context: Callable[[Order], BookContext],  # the book as the checks see it for an order
                statuses: tuple[str, ...] = ("unknown",),  # which recorded orders to settle
                ) -> list[str]:  # the ids settled
        "Settle recorded orders of unknown outcome by their ids, through the same checks as any order."
        settled, client = [], self.client(asset, mode)
        for order in self.store.open_orders():
            if order.intent.asset != asset or order.mode != mode or order.status not in statuses:
                continue
            venue = client.lookup(order.client_order_id)
            if venue is None:
                self.submit(order, context(order))  # checked again: sent under the same id, or settled as refused
            elif venue in ("submitted", "partially_filled") and self.check(order, context(order))[0] is None:
                self.cancel(asset, order.client_order_id, "refused after restart", mode)  # cancelled if working
            else:
                self.store.update_order_status(order.client_order_id, venue)
            settled.append(order.client_order_id)
        return settled

    def protect(self, asset: str,  # the asset
                mode: str,  # its book
                symbol: str,  # the position's symbol
                direction: int,  # +1 long, -1 short
                entry: float,  # the position's average entry price
                sl: float | None,  # the stop-loss level wanted
                tp: float | None,  # the take-profit level wanted
                ) -> RouteResult:
        "Set a position's protective levels through the gate: a stop beyond the 15 % cap is set at the cap."
        cap, reason = self.risk.max_stop_loss_pct, ""
        if sl is not None and abs(entry - sl) / entry * 100 > cap:
            capped = entry * (1 - direction * cap / 100)
            reason = f"stop {sl:g} is {abs(entry - sl) / entry * 100:.4g} % from the entry: set at the cap, {capped:g}"
            self._audit_refusal("risk", reason, asset, symbol, mode, event="protection_capped")
            sl = capped
        client = self.client(asset, mode)
        if client.protection(symbol) != (sl, tp):
            client.set_protection(symbol, sl, tp)
        return RouteResult(True, "risk" if reason else "", reason)

    def cancel(self, asset: str,  # the asset
               cid: str,  # the order's id
               reason: str = "replaced",  # why, for the record
               mode: str = "paper",  # its book
               ) -> bool:  # False if nothing was working
        "Cancel a working order at the venue and in the store."
        client = self.client(asset, mode)
        done = client.cancel(cid)
        if self.store.get_order(cid) is not None:
            status = "cancelled" if done else client.lookup(cid) or "cancelled"
            self._release(self.store.update_order_status(cid, status))
        return done

    # -- budget and audit -----------------------------------------------------------------------------
    def _reserve(self, order: Order, ctx: BookContext) -> None:
        "Reserve an opening order's margin under its id (a re-sent order keeps the one it holds)."
        budget = self.budgets.get(order.mode)
        if order.reduce_only or budget is None or order.intent.asset not in budget.buckets:
            return
        notional = order.intent.qty * ctx.price
        budget.reserve(order.intent.asset, notional, order.client_order_id, ctx.leverage,
                       ctx.asset_open(order.intent.asset))

    def _release(self, order: Order) -> None:
        "Free the budget an order reserved (it filled, was cancelled or rejected)."
        budget = self.budgets.get(order.mode)
        if budget is not None and order.intent.asset in budget.buckets:
            budget.release(order.intent.asset, order.client_order_id)

    def _audit(self, event: str, order: Order, **fields) -> None:
        if self.audit is not None:
            i = order.intent
            self.audit.append(event, client_order_id=order.client_order_id, asset=i.asset, symbol=i.symbol,
                              side=i.side, mode=order.mode, strategy=i.strategy_id, **fields)

    def _audit_refusal(self, stage: str, reason: str, asset: str, symbol: str, mode: str, event: str = "order_refused",
                       **fields) -> None:
        if self.audit is not None:
            self.audit.append(event, stage=stage, reason=reason, asset=asset, symbol=symbol, mode=mode, **fields)

    def _refuse(self, stage: str, reason: str, intent: OrderIntent, cid: str, mode: str) -> RouteResult:
        self._audit_refusal(stage, reason, intent.asset, intent.symbol, mode, client_order_id=cid, side=intent.side,
                            strategy=intent.strategy_id)
        return RouteResult(False, stage, reason)


def _reduce_only_problem(intent: OrderIntent, position: float) -> str:
    "Why a reduce-only order may not go out against `position` ('' when it only reduces)."
    side = 1 if intent.side == "buy" else -1
    if position == 0.0 or position * side > 0:
        held = "no position" if position == 0.0 else f"a position of {position:g}"
        return f"reduce-only {intent.side} of {intent.qty:g} against {held}: it would open or grow a position"
    if intent.qty > abs(position) * (1 + 1e-9):
        return (f"reduce-only {intent.side} of {intent.qty:g} exceeds the {abs(position):g} held: it would flip "
                "the position")
    return ""


# %% [markdown]
# ### Examples
# A minimal venue records what reaches it, so we can see what the router lets through.

# %%
from tradingbot.brokers.base import Ack, Capabilities
from tradingbot.execution.budget import Bucket


class _Venue(ExecutionClient):
    capabilities = Capabilities("test", live=False, attached_protection=True)

    def __init__(self, fail=False):
        self.orders, self.fail, self.levels = {}, fail, {}

    def submit(self, order):
        if self.fail:
            raise ConnectionError("timed out")
        self.orders[order.client_order_id] = order
        return Ack(order.client_order_id, "submitted", broker_order_id="b-" + order.client_order_id[-4:])

    def cancel(self, cid):
        return self.orders.pop(cid, None) is not None

    def lookup(self, cid):
        return "submitted" if cid in self.orders else None

    def positions(self): return {}
    def protection(self, symbol): return self.levels.get(symbol, (None, None))
    def set_protection(self, symbol, sl, tp): self.levels[symbol] = (sl, tp)
    def poll(self): return []


tmp = Path(tempfile.mkdtemp())
venue, store = _Venue(), OrderStore(tmp / "orders.sqlite")
budget = Budget({"crypto_spot": Bucket(1000.0, 1000.0)})
router = Router(store, {"crypto_spot": venue}, budgets=budget)
ctx = BookContext(equity=5000.0, price=50_000.0, qty_step=1e-6, min_notional=5.0, shorting=False)
when = datetime.fromisoformat("2024-03-01T10:00:00+00:00")
buy = OrderIntent("crypto_spot", "BTCUSDT", "buy", sl_pct=None, strategy_id="rsi2", notional=500.0,
                  sl_distance=1000.0)
r = router.place(buy, decision_ts=when, ctx=ctx)
test_eq((r.ok, r.order.status, r.order.intent.qty, r.order.mode), (True, "submitted", 0.01, "paper"))
test_eq(store.get_order(r.order.client_order_id).broker_order_id, "b-" + r.order.client_order_id[-4:])
test_eq(budget.bucket("crypto_spot").available, 500.0)  # reserved until filled or cancelled

# %% [markdown]
# The same decision again (a restart re-deciding the bar) finds the id at the venue and sends nothing; a
# crash between the venue call and the status update leaves the record `new` while the venue has the
# order — the router still asks the venue first:

# %%
again = router.place(buy, decision_ts=when, ctx=ctx)
test_eq((again.ok, again.stage, len(venue.orders)), (True, "venue", 1))
test_eq(budget.bucket("crypto_spot").available, 500.0)  # not reserved twice
_crashed = Order(client_order_id("rsi2", "BTCUSDT", when, 7), replace(buy, qty=0.001, notional=None))
store.record_order(_crashed)
venue.orders[_crashed.client_order_id] = _crashed  # it reached the venue before the crash
_n = len(venue.orders)
test_eq((router.submit(_crashed, ctx).stage, len(venue.orders)), ("venue", _n))
test_eq(store.get_order(_crashed.client_order_id).status, "submitted")
del venue.orders[_crashed.client_order_id]

# %% [markdown]
# Every check fails fast with its reason:

# %%
wide = replace(buy, sl_distance=10_000.0)  # 20 % below the price
test_eq(router.place(wide, decision_ts=when, ctx=ctx, sequence=1).stage, "risk")
assert "exceeds SAFETY.MAX_STOP_LOSS_PCT" in router.place(wide, decision_ts=when, ctx=ctx, sequence=1).reason
_small = router.place(replace(buy, notional=20.0), decision_ts=when, sequence=2, ctx=replace(ctx, min_notional=50.0))
test_eq(_small.stage, "risk")
assert "below the minimum 50 USD" in _small.reason
# the $10 rule on a venue whose lot is worth more is refused, not rounded up: $10 of EUR/USD at 1.08 is 9 units,
# $9.72, under the $10 minimum
_fx = BookContext(equity=900.0, price=1.08, qty_step=1.0, min_notional=10.0)
_eur = OrderIntent("forex", "EURUSD", "buy", sl_pct=1.0, strategy_id="rsi2", notional=10.0)
test_eq(router._check_risk(_eur, _fx), (None, "min notional: 9.72 USD after rounding 9.2592593 down to step 1 is "
                                               "below the minimum 10 USD"))
big = router.place(replace(buy, notional=900.0), decision_ts=when, ctx=ctx, sequence=3)
test_eq(big.stage, "budget")  # 500 of the 1,000 are reserved
held = router.place(replace(buy, notional=400.0), decision_ts=when, sequence=4,
                    ctx=replace(ctx, open_positions=[{"asset": "crypto_spot", "symbol": "ETHUSDT", "notional": 300.0}]))
test_eq((held.stage, "open positions 300.00" in held.reason), ("budget", True))  # what is open counts too
short = router.place(replace(buy, side="sell"), decision_ts=when, ctx=ctx, sequence=5)
test_eq(short.reason, "shorting: crypto_spot allows no short positions; a sell must close a long")


class _Killed:
    def can_open(self, asset, mode="live"):
        return False, "global kill switch is on"


closing = Router(store, {"crypto_spot": venue}, controller=_Killed(), budgets=budget)
test_eq(closing.place(buy, decision_ts=when, ctx=ctx, sequence=6).reason, "global kill switch is on")
sell = OrderIntent("crypto_spot", "BTCUSDT", "sell", sl_pct=None, strategy_id="rsi2", qty=0.01)
test_eq(closing.place(sell, decision_ts=when, ctx=replace(ctx, position=0.01), sequence=12, reduce_only=True).ok,
        True)  # exits pass
test_eq(store.get_order(client_order_id("rsi2", "BTCUSDT", when, 6)), None)  # a refusal records nothing

# %% [markdown]
# A reduce-only order is checked against the book, not trusted: one that would flip the position, or
# open one where there is none, is refused whatever the venue supports.

# %%
flip = closing.place(replace(sell, qty=50.0), decision_ts=when, ctx=replace(ctx, position=0.01), sequence=13,
                     reduce_only=True)
test_eq((flip.stage, flip.reason), ("risk", "reduce-only sell of 50 exceeds the 0.01 held: it would flip the position"))
test_eq(closing.place(sell, decision_ts=when, ctx=ctx, sequence=14, reduce_only=True).reason,
        "reduce-only sell of 0.01 against no position: it would open or grow a position")

# %% [markdown]
# A venue that times out leaves the order `unknown`; `resolve` sends it again under the same id once the
# venue answers and does not know it — after the checks, which refuse an opening order once a kill switch is
# on: that one is settled as rejected and never sent.

# %%
flaky = _Venue(fail=True)
r2 = Router(store, {"crypto_spot": flaky}).place(sell, decision_ts=when, ctx=replace(ctx, position=0.01),
                                                 sequence=15, reduce_only=True)
test_eq((r2.ok, r2.stage, r2.order.status), (False, "client", "unknown"))
flaky.fail = False
test_eq(Router(store, {"crypto_spot": flaky}).resolve("crypto_spot", "paper", lambda o: replace(ctx, position=0.01)),
        [r2.order.client_order_id])
test_eq((list(flaky.orders), store.get_order(r2.order.client_order_id).status), ([r2.order.client_order_id],
                                                                                  "submitted"))
_opening = Order(client_order_id("rsi2", "BTCUSDT", when, 16), replace(buy, qty=0.001, notional=None),
                 status="unknown")
store.record_order(_opening)
test_eq(Router(store, {"crypto_spot": flaky}, controller=_Killed()).resolve("crypto_spot", "paper", lambda o: ctx),
        [_opening.client_order_id])
test_eq((store.get_order(_opening.client_order_id).status, _opening.client_order_id in flaky.orders),
        ("rejected", False))

# %% [markdown]
# Protective levels pass whatever the switches say; a stop beyond the cap is set at the cap.

# %%
test_eq(closing.protect("crypto_spot", "paper", "BTCUSDT", 1, 50_000.0, 30_000.0, None).reason,
        "stop 30000 is 40 % from the entry: set at the cap, 42500")
test_eq(venue.levels["BTCUSDT"], (42_500.0, None))

# %%
test_eq(router.cancel("crypto_spot", r.order.client_order_id), True)
test_eq(store.get_order(r.order.client_order_id).status, "cancelled")
test_eq(budget.bucket("crypto_spot").available, 1000.0)
store.close()
