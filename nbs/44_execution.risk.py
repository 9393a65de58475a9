# %% [markdown]
# # Risk sizing and pre-trade checks
#
# > How big a trade may be (tiered risk, drawdown cuts, signal weight, caps, rounding) and whether an order may go out at all (stop-loss, per-trade, daily-loss, position, asset and leverage caps).

# %%
#| default_exp execution.risk

# %% [markdown]
# This module is the only place that does risk math (seed 002). Everything here is a pure function of
# its inputs and a small frozen `RiskConfig`, built from `config.json` (`RISK`, `SAFETY`) and
# `assets.json` (`max_leverage`) by `RiskConfig.from_config()`; tests pass their own tiers.
#
# The sizing rule (seeds 002/003, DESIGN §7):
#
# - equity below `small_account_equity` ($1,000): a flat `small_account_notional` ($10) per trade;
# - from $1,000: the tier's risk % for that equity, cut `drawdown_cut_pct` (0.25) points for every full
#   `drawdown_step_pct` (5 %) of drawdown, never below `min_risk_pct` (0.25 %), times the signal weight
#   (0.5× weak, 1.0× normal, 1.5× strong), capped at `max_risk_per_trade_pct`;
# - risk-per-trade sizing: the loss at the stop equals the risk budget, so
#   `notional = equity × risk% / sl_fraction` with `sl_fraction = sl_distance / price`;
# - capped by `max_position_pct` of equity and by equity × leverage; then rounded *down* to the
#   quantity step, and refused (size 0 with a reason) below the venue's minimum notional.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Mapping

from tradingbot.config import ASSETS, get_key

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## The configuration
# Percentages stay in percent, as in `config.json`.

# %%
#| export
@dataclass(frozen=True)
class RiskConfig:
    "The risk rules in one frozen value (percent units, as in config.json)."
    tiers: tuple[tuple[float, float], ...] = ((1000.0, 2.0), (10_000.0, 1.5), (50_000.0, 1.0), (250_000.0, 0.5))
    small_account_equity: float = 1000.0
    small_account_notional: float = 10.0
    drawdown_step_pct: float = 5.0
    drawdown_cut_pct: float = 0.25
    min_risk_pct: float = 0.25
    weights: tuple[float, float, float] = (0.5, 1.0, 1.5)  # weak, normal, strong
    weak_below: float = 0.33
    strong_above: float = 0.66
    max_risk_per_trade_pct: float = 2.0
    max_daily_loss_pct: float = 5.0
    max_position_pct: float = 25.0
    max_stop_loss_pct: float = 15.0
    max_leverage: tuple[tuple[str, float], ...] = ()  # (asset, cap); an asset not listed may not borrow

    def __post_init__(self):
        mins = [m for m, _ in self.tiers]
        if not mins or mins != sorted(mins) or len(set(mins)) != len(mins):
            raise ValueError(f"RiskConfig.tiers must be non-empty with strictly increasing min_equity, got {mins}")
        if self.min_risk_pct <= 0 or self.drawdown_step_pct <= 0:
            raise ValueError("RiskConfig.min_risk_pct and drawdown_step_pct must be > 0")

    @classmethod
    def from_config(cls) -> RiskConfig:
        "The rules of the current configuration (RISK, SAFETY.MAX_STOP_LOSS_PCT, assets.<asset>.max_leverage)."
        r, w = get_key("RISK"), get_key("RISK.signal_weights")
        lev = tuple((a, float(get_key(f"assets.{a}.max_leverage")))
                    for a in ASSETS if get_key(f"assets.{a}.max_leverage") is not None)
        return cls(tiers=tuple((t["min_equity"], t["risk_pct"]) for t in r["tiers"]),
                   small_account_equity=r["small_account_equity"], small_account_notional=r["small_account_notional"],
                   drawdown_step_pct=r["drawdown_step_pct"], drawdown_cut_pct=r["drawdown_cut_pct"],
                   min_risk_pct=r["min_risk_pct"], weights=(w["weak"], w["normal"], w["strong"]),
                   weak_below=w["weak_below"], strong_above=w["strong_above"],
                   max_risk_per_trade_pct=r["max_risk_per_trade_pct"], max_daily_loss_pct=r["max_daily_loss_pct"],
                   max_position_pct=r["max_position_pct"], max_stop_loss_pct=get_key("SAFETY.MAX_STOP_LOSS_PCT"),
                   max_leverage=lev)

    def leverage_cap(self, asset: str | None) -> float:
        "The largest leverage `asset` may use (1.0 where the config sets none)."
        return dict(self.max_leverage).get(asset, 1.0)


# %%
cfg = RiskConfig.from_config()
test_eq(cfg.tiers[0], (1000.0, 2.0))
test_eq((cfg.max_stop_loss_pct, cfg.weights), (15.0, (0.5, 1.0, 1.5)))
test_eq((cfg.leverage_cap("crypto_futures"), cfg.leverage_cap("forex"), cfg.leverage_cap("crypto_spot")), (3.0, 10.0, 1.0))
test_fail(lambda: RiskConfig(tiers=((5000.0, 1.0), (1000.0, 2.0))), contains="strictly increasing min_equity")


# %% [markdown]
# ## Risk percent and signal weight
# The tier is the last one whose `min_equity` the equity reaches. The drawdown cut counts *full*
# steps: 4.9 % of drawdown cuts nothing, 5 % cuts 0.25 points, 10 % cuts 0.5.

# %%
#| export
def _check_number(name: str, value: float, low: float = 0.0, strict: bool = False) -> float:
    "`value` as a finite float above `low`, or a ValueError naming it."
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return value


def tier_risk_pct(equity: float, cfg: RiskConfig) -> float:
    "The tier's risk % for `equity` (the first tier's below its minimum)."
    pct = cfg.tiers[0][1]
    for min_equity, tier_pct in cfg.tiers:
        if equity >= min_equity:
            pct = tier_pct
    return pct


def risk_pct(equity: float,  # account (or asset bucket) equity in USD
             drawdown_pct: float,  # current drawdown from the peak, in percent (5 means 5 %)
             cfg: RiskConfig,
             ) -> float:  # percent of equity to risk before the signal weight
    "Tier risk % minus the drawdown cut, floored at `min_risk_pct`."
    steps = math.floor(_check_number("drawdown_pct", drawdown_pct) / cfg.drawdown_step_pct + 1e-9)
    return max(cfg.min_risk_pct, tier_risk_pct(equity, cfg) - steps * cfg.drawdown_cut_pct)


def signal_weight(score: float, cfg: RiskConfig) -> float:
    "0.5× below `weak_below`, 1.5× above `strong_above`, 1.0× between."
    weak, normal, strong = cfg.weights
    return weak if score < cfg.weak_below else strong if score > cfg.strong_above else normal


# %%
test_eq([tier_risk_pct(e, cfg) for e in (1000, 9_999, 10_000, 60_000, 1e6)], [2.0, 2.0, 1.5, 1.0, 0.5])
test_eq([risk_pct(20_000, dd, cfg) for dd in (0, 4.9, 5, 10, 100)], [1.5, 1.5, 1.25, 1.0, 0.25])
test_eq([signal_weight(s, cfg) for s in (0.1, 0.5, 0.9)], [0.5, 1.0, 1.5])
test_fail(lambda: risk_pct(20_000, -1, cfg), contains="drawdown_pct must be a finite number >= 0, got -1.0")


# %% [markdown]
# ## Position size
# `position_size` returns the notional in USD before rounding. A small account trades its flat $10,
# limited only by what it can pay for (equity × leverage); the percent caps apply to risk-based sizes.

# %%
#| export
def position_size(equity: float,  # equity in USD
                  drawdown_pct: float,  # drawdown from the peak, percent
                  signal_score: float,  # signal strength in [0, 1]
                  sl_distance: float,  # |entry - stop| in price units
                  price: float,  # entry price
                  cfg: RiskConfig | None = None,  # default: RiskConfig.from_config()
                  leverage: float = 1.0,  # leverage the order will use
                  ) -> float:  # notional in USD, unrounded
    "Notional whose loss at the stop equals the risk budget, within every cap."
    cfg = cfg or RiskConfig.from_config()
    equity = _check_number("equity", equity)
    price = _check_number("price", price, strict=True)
    sl_fraction = _check_number("sl_distance", sl_distance, strict=True) / price
    can_pay = equity * _check_number("leverage", leverage, strict=True)
    if equity < cfg.small_account_equity:
        return min(cfg.small_account_notional, can_pay)
    pct = min(risk_pct(equity, drawdown_pct, cfg) * signal_weight(signal_score, cfg), cfg.max_risk_per_trade_pct)
    notional = equity * pct / 100 / sl_fraction
    return min(notional, equity * cfg.max_position_pct / 100, can_pay)


# %%
test_eq(position_size(500, 30, 0.9, 40, 100, cfg), 10.0)  # small account: flat $10
test_eq(position_size(5, 0, 0.5, 1, 100, cfg), 5.0)  # ... but never more than it can pay
test_close(position_size(20_000, 0, 0.5, 10, 100, cfg), 20_000 * 0.015 / 0.10)  # 1.5 % risk, 10 % stop -> $3,000
test_close(position_size(20_000, 0, 0.1, 10, 100, cfg), 1500.0)  # weak signal halves it
test_close(position_size(20_000, 0, 0.9, 10, 100, cfg), 20_000 * 0.02 / 0.10)  # strong 2.25 % capped at 2 %
test_close(position_size(20_000, 10, 0.5, 10, 100, cfg), 20_000 * 0.01 / 0.10)  # 10 % drawdown: 1.5 -> 1.0 %
test_close(position_size(20_000, 0, 0.5, 0.5, 100, cfg), 5000.0)  # tight stop: max_position_pct 25 % binds
test_fail(lambda: position_size(20_000, 0, 0.5, 0, 100, cfg), contains="sl_distance must be a finite number > 0")


# %% [markdown]
# ## Precision and minimum notional
# Venues take quantities in multiples of a step. Rounding is *down* (never more risk than sized),
# in decimal arithmetic so that 0.3 / 0.1 counts three steps, not 2.999….

# %%
#| export
@dataclass(frozen=True)
class Sized:
    "A rounded order size; `qty == 0` means no trade, and `reason` says why."
    qty: float
    notional: float
    reason: str = ""


def round_size(notional: float,  # unrounded notional in USD
               price: float,  # entry price
               qty_step: float,  # the venue's quantity step
               min_notional: float = 0.0,  # the venue's minimum order value in USD
               ) -> Sized:
    "Round the quantity down to `qty_step`; refuse (qty 0) below `min_notional`."
    price = _check_number("price", price, strict=True)
    step = Decimal(repr(_check_number("qty_step", qty_step, strict=True)))
    raw_qty = _check_number("notional", notional) / price
    qty = float((Decimal(repr(raw_qty)) // step) * step)
    if qty * price < min_notional or qty == 0:
        return Sized(0.0, 0.0, f"min notional: {qty * price:.2f} USD after rounding {raw_qty:.8g} down to step "
                               f"{qty_step:g} is below the minimum {min_notional:g} USD")
    return Sized(qty, qty * price)


def compute_size(equity: float, drawdown_pct: float, signal_score: float, sl_distance: float, price: float,
                 qty_step: float,  # the venue's quantity step
                 min_notional: float = 0.0,  # the venue's minimum order value in USD
                 cfg: RiskConfig | None = None, leverage: float = 1.0) -> Sized:
    "`position_size` then `round_size`: the order quantity a venue accepts."
    notional = position_size(equity, drawdown_pct, signal_score, sl_distance, price, cfg, leverage)
    return round_size(notional, price, qty_step, min_notional)


# %%
test_eq(round_size(30.0, 100.0, 0.1), Sized(0.3, 30.0))  # decimal: exactly three steps
test_eq(round_size(1234.5, 100.0, 1.0).qty, 12.0)
r = round_size(4.0, 100.0, 0.01, min_notional=5.0)
test_eq((r.qty, r.notional), (0.0, 0.0))
test_eq(r.reason, "min notional: 4.00 USD after rounding 0.04 down to step 0.01 is below the minimum 5 USD")
test_eq(compute_size(500, 0, 0.5, 2, 60_000, 0.001, 5.0, cfg).reason[:13], "min notional:")  # $10 < one 0.001 BTC step
test_eq(compute_size(20_000, 0, 0.5, 6000, 60_000, 0.001, 5.0, cfg), Sized(0.05, 3000.0))


# %% [markdown]
# ## Pre-trade check
# `valid_order` is asked by the router before every order, whatever path it came by. It answers
# `(ok, reason)`; the reason names the rule and the numbers. Checks run from the most basic (a stop
# exists) to the account-wide ones (today's loss).

# %%
#| export
def valid_order(equity: float,  # equity in USD
                notional: float,  # the order's notional in USD
                sl_pct: float | None,  # stop distance in percent of the entry price (None: no stop)
                asset: str | None = None,  # asset class, for its leverage cap
                leverage: float = 1.0,  # leverage the order uses
                daily_realised_loss: float = 0.0,  # today's realised loss in USD (positive = lost)
                asset_open_notional: float = 0.0,  # notional already open in this asset
                cfg: RiskConfig | None = None,
                ) -> tuple[bool, str]:
    "Whether an order may be sent, and if not the rule it breaks."
    cfg = cfg or RiskConfig.from_config()
    if sl_pct is None or not math.isfinite(sl_pct) or sl_pct <= 0:
        return False, f"stop-loss required: every order needs a stop distance > 0 % (got {sl_pct})"
    if sl_pct > cfg.max_stop_loss_pct:
        return False, f"stop-loss {sl_pct:g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {cfg.max_stop_loss_pct:g} %"
    if equity <= 0 or notional <= 0:
        return False, f"equity and notional must be > 0 (got equity {equity:g}, notional {notional:g})"
    lev_cap = cfg.leverage_cap(asset)
    if leverage > lev_cap:
        return False, f"leverage cap: {leverage:g}x exceeds {lev_cap:g}x allowed for {asset}"
    return _check_caps(equity, notional, sl_pct, leverage, daily_realised_loss, asset_open_notional, asset, cfg)


def _check_caps(equity, notional, sl_pct, leverage, daily_loss, asset_open, asset, cfg) -> tuple[bool, str]:
    at_risk = notional * sl_pct / 100
    trade_pct, small = 100 * at_risk / equity, equity < cfg.small_account_equity
    # the flat $10 of a small account is the seed's rule, not a percentage of equity
    if not small and trade_pct > cfg.max_risk_per_trade_pct + 1e-9:
        return False, (f"per-trade risk {trade_pct:.2f} % of equity ({at_risk:.2f} USD at the stop) exceeds "
                       f"RISK.max_risk_per_trade_pct {cfg.max_risk_per_trade_pct:g} %")
    if not small and notional > equity * cfg.max_position_pct / 100 + 1e-9:
        return False, (f"position cap: {notional:.2f} USD is {100 * notional / equity:.1f} % of equity, above "
                       f"RISK.max_position_pct {cfg.max_position_pct:g} %")
    if asset_open + notional > equity * leverage + 1e-9:
        return False, (f"per-asset cap: {asset_open + notional:.2f} USD open in {asset} would exceed equity "
                       f"{equity:.2f} x leverage {leverage:g}")
    day_pct = 100 * (max(daily_loss, 0.0) + at_risk) / equity
    if day_pct > cfg.max_daily_loss_pct + 1e-9:
        return False, (f"daily-loss cap: today's loss {daily_loss:.2f} USD plus {at_risk:.2f} USD at risk is "
                       f"{day_pct:.2f} % of equity, above RISK.max_daily_loss_pct {cfg.max_daily_loss_pct:g} %")
    return True, ""


# %%
test_eq(valid_order(20_000, 5000, 2.0, cfg=cfg), (True, ""))
test_eq(valid_order(20_000, 5000, None, cfg=cfg)[1], "stop-loss required: every order needs a stop distance > 0 % (got None)")
test_eq(valid_order(20_000, 1000, 16.0, cfg=cfg), (False, "stop-loss 16 % exceeds SAFETY.MAX_STOP_LOSS_PCT 15 %"))
test_eq(valid_order(20_000, 5000, 10.0, cfg=cfg)[1][:31], "per-trade risk 2.50 % of equity")
test_eq(valid_order(20_000, 6000, 1.0, cfg=cfg)[1][:13], "position cap:")
test_eq(valid_order(20_000, 4000, 2.0, "crypto_futures", 5, cfg=cfg),
        (False, "leverage cap: 5x exceeds 3x allowed for crypto_futures"))
test_eq(valid_order(20_000, 4000, 2.0, "crypto_spot", 1, asset_open_notional=17_000, cfg=cfg)[1][:14], "per-asset cap:")
test_eq(valid_order(20_000, 4000, 2.0, daily_realised_loss=950, cfg=cfg)[1][:15], "daily-loss cap:")
test_eq(valid_order(500, 10, 15.0, cfg=cfg), (True, ""))  # $10 on a small account passes with a legal stop


# %% [markdown]
# ## Breaches of a running book
# `risk_breach_check` looks at the whole state (equity, today's realised loss, open positions) and lists
# every rule it breaks; the runtime logs them and may switch the asset to close-only.

# %%
#| export
def risk_breach_check(state: Mapping[str, Any],  # {'equity', 'daily_realised_loss', 'positions': [{'symbol', 'notional', 'sl_pct'}]}
                      cfg: RiskConfig | None = None,
                      ) -> list[str]:  # one line per breach; empty when the book is within the rules
    "Every risk rule the current book breaks."
    cfg = cfg or RiskConfig.from_config()
    equity = float(state["equity"])
    if equity <= 0:
        return [f"equity {equity:g} USD: nothing left to risk"]
    out = []
    loss_pct = 100 * max(float(state.get("daily_realised_loss", 0.0)), 0.0) / equity
    if loss_pct >= cfg.max_daily_loss_pct:
        out.append(f"daily-loss cap: {loss_pct:.2f} % lost today, limit RISK.max_daily_loss_pct {cfg.max_daily_loss_pct:g} %")
    for p in state.get("positions", []):
        sl = p.get("sl_pct")
        if sl is None or sl <= 0:
            out.append(f"{p['symbol']}: open without a stop-loss")
        elif sl > cfg.max_stop_loss_pct:
            out.append(f"{p['symbol']}: stop-loss {sl:g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {cfg.max_stop_loss_pct:g} %")
    return out


# %%
book = {"equity": 10_000, "daily_realised_loss": 120,
        "positions": [{"symbol": "BTCUSDT", "notional": 2000, "sl_pct": 3.0}]}
test_eq(risk_breach_check(book, cfg), [])
bad = {**book, "daily_realised_loss": 600, "positions": [{"symbol": "ETHUSDT", "notional": 900, "sl_pct": None},
                                                          {"symbol": "SOLUSDT", "notional": 500, "sl_pct": 20}]}
test_eq(risk_breach_check(bad, cfg), ["daily-loss cap: 6.00 % lost today, limit RISK.max_daily_loss_pct 5 %",
                                      "ETHUSDT: open without a stop-loss",
                                      "SOLUSDT: stop-loss 20 % exceeds SAFETY.MAX_STOP_LOSS_PCT 15 %"])


# %% [markdown]
# ## Trailing stop and take-profit
# The stop follows the price at a fixed distance (an ATR in price units, or a percent of the price) and
# only ever tightens. Once the price reaches the take-profit, the target moves out by the same distance
# so a winner keeps running behind its trailing stop. Neither level ever moves against the position.

# %%
#| export
def apply_trailing_tp(position: Mapping[str, Any],  # {'side': 'buy'|'sell', 'price': last price, 'stop', 'tp' (None: no target)}
                      atr: float | None = None,  # trail distance in price units
                      pct: float | None = None,  # ... or in percent of the price
                      ) -> tuple[float, float | None]:  # (new stop, new take-profit)
    "Trail the stop (and a reached take-profit) in the position's favour only."
    if (atr is None) == (pct is None):
        raise ValueError("apply_trailing_tp needs exactly one of atr (price units) or pct (percent of price)")
    side, price, stop, tp = position["side"], float(position["price"]), float(position["stop"]), position.get("tp")
    if side not in ("buy", "sell"):
        raise ValueError(f"position side must be 'buy' or 'sell', got {side!r}")
    dist = _check_number("atr", atr, strict=True) if atr is not None else price * _check_number("pct", pct, strict=True) / 100
    sign = 1 if side == "buy" else -1
    better = max if side == "buy" else min
    new_stop = better(stop, price - sign * dist)
    reached = tp is not None and sign * (price - tp) >= 0
    new_tp = better(tp, price + sign * dist) if reached else tp
    return new_stop, new_tp


# %%
long = {"side": "buy", "price": 110.0, "stop": 95.0, "tp": 120.0}
test_eq(apply_trailing_tp(long, atr=5.0), (105.0, 120.0))  # stop tightens, target not reached
test_eq(apply_trailing_tp({**long, "price": 98.0}, atr=5.0), (95.0, 120.0))  # price fell: nothing loosens
test_eq(apply_trailing_tp({**long, "price": 125.0}, pct=4.0), (120.0, 130.0))  # target reached: it moves out
short = {"side": "sell", "price": 90.0, "stop": 105.0, "tp": 80.0}
test_eq(apply_trailing_tp(short, atr=5.0), (95.0, 80.0))
test_eq(apply_trailing_tp({**short, "price": 104.0}, atr=5.0), (105.0, 80.0))
test_fail(lambda: apply_trailing_tp(long), contains="exactly one of atr")
