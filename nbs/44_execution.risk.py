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
#   quantity step, and refused (size 0 with a reason) when that is less than one lot or below the
#   venue's minimum notional — never rounded *up*: when the $10 of a small account buys less than one
#   lot, the order is refused, not enlarged.
#
# **One owner.** The arithmetic is written once, as numba kernels (`position_size_nb`, `round_qty_nb`,
# `pretrade_check_nb`): the backtester's loop calls them for `sizing="risk"`, and the Python functions
# below — which the router and the engine call — wrap the same kernels. So the size a backtest trades
# is the size paper and live trade, to the last bit.

# %%
#| export
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import numpy as np
from numba import njit

from tradingbot.config import ASSETS, get_key

# %%
#| hide
from fastcore.test import test_close, test_eq, test_fail


# %% [markdown]
# ## The configuration
# Percentages stay in percent, as in `config.json`. `RiskConfig.params` is the same rules as a
# NamedTuple of floats and arrays — what the kernels read.

# %%
#| export
class RiskParams(NamedTuple):
    "The risk rules as the numba kernels read them (percent units, as in config.json)."
    tier_min: np.ndarray  # float64: each tier's minimum equity, ascending
    tier_pct: np.ndarray  # float64: each tier's risk percent
    small_account_equity: float
    small_account_notional: float
    drawdown_step_pct: float
    drawdown_cut_pct: float
    min_risk_pct: float
    weight_weak: float
    weight_normal: float
    weight_strong: float
    weak_below: float
    strong_above: float
    max_risk_per_trade_pct: float
    max_daily_loss_pct: float
    max_position_pct: float
    max_stop_loss_pct: float


@dataclass(frozen=True)
class RiskConfig:
    "The risk rules in one frozen value (percent units, as in config.json)."
    tiers: tuple[tuple[float, float], ...] = ((1000.0, 2.0), (10_000.0, 1.5), (50_000.0, 1.0), (250_000.0, 0.5))
    small_account_equity: float = 1000.0  # below this equity a trade is a flat `small_account_notional`
    small_account_notional: float = 10.0  # USD per trade of a small account
    drawdown_step_pct: float = 5.0  # every full step of drawdown ...
    drawdown_cut_pct: float = 0.25  # ... cuts the risk by this many percentage points
    min_risk_pct: float = 0.25  # the floor of those cuts
    weights: tuple[float, float, float] = (0.5, 1.0, 1.5)  # weak, normal, strong
    weak_below: float = 0.33  # a signal score below this is weak
    strong_above: float = 0.66  # a signal score above this is strong
    max_risk_per_trade_pct: float = 2.0
    max_daily_loss_pct: float = 5.0
    max_position_pct: float = 25.0  # of equity
    max_stop_loss_pct: float = 15.0  # SAFETY.MAX_STOP_LOSS_PCT
    max_leverage: tuple[tuple[str, float], ...] = ()  # (asset, cap); an asset not listed may not borrow
    sl_bands: tuple[tuple[str, float, float], ...] = ()  # (asset, sl_pct_min, sl_pct_max): the stops it may use

    def __post_init__(self):
        mins = [m for m, _ in self.tiers]
        if not mins or mins != sorted(mins) or len(set(mins)) != len(mins):
            raise ValueError(f"RiskConfig.tiers must be non-empty with strictly increasing min_equity, got {mins}")
        if self.min_risk_pct <= 0 or self.drawdown_step_pct <= 0:
            raise ValueError("RiskConfig.min_risk_pct and drawdown_step_pct must be > 0")
        w = self.weights
        object.__setattr__(self, "_params", RiskParams(
            np.array(mins, dtype=np.float64), np.array([p for _, p in self.tiers], dtype=np.float64),
            *(float(x) for x in (self.small_account_equity, self.small_account_notional, self.drawdown_step_pct,
                                 self.drawdown_cut_pct, self.min_risk_pct, w[0], w[1], w[2], self.weak_below,
                                 self.strong_above, self.max_risk_per_trade_pct, self.max_daily_loss_pct,
                                 self.max_position_pct, self.max_stop_loss_pct))))

    @property
    def params(self) -> RiskParams:
        "The rules as the kernels read them."
        return self._params

    @classmethod
    def from_config(cls) -> RiskConfig:
        "The rules of the current configuration (RISK, SAFETY.MAX_STOP_LOSS_PCT, assets.<asset>: leverage, stop band)."
        r, w = get_key("RISK"), get_key("RISK.signal_weights")
        assets = get_key("assets")  # one read (each get_key is a checked deep copy): a backtest builds this
        lev = tuple((a, float(assets[a]["max_leverage"]))
                    for a in ASSETS if a in assets and assets[a].get("max_leverage") is not None)
        bands = tuple((a, float(assets[a]["sl_pct_min"]), float(assets[a]["sl_pct_max"])) for a in ASSETS if a in assets)
        return cls(tiers=tuple((t["min_equity"], t["risk_pct"]) for t in r["tiers"]),
                   small_account_equity=r["small_account_equity"], small_account_notional=r["small_account_notional"],
                   drawdown_step_pct=r["drawdown_step_pct"], drawdown_cut_pct=r["drawdown_cut_pct"],
                   min_risk_pct=r["min_risk_pct"], weights=(w["weak"], w["normal"], w["strong"]),
                   weak_below=w["weak_below"], strong_above=w["strong_above"],
                   max_risk_per_trade_pct=r["max_risk_per_trade_pct"], max_daily_loss_pct=r["max_daily_loss_pct"],
                   max_position_pct=r["max_position_pct"], max_stop_loss_pct=get_key("SAFETY.MAX_STOP_LOSS_PCT"),
                   max_leverage=lev, sl_bands=bands)

    def leverage_cap(self, asset: str | None,  # an asset class (None: no borrowing)
                     ) -> float:
        "The largest leverage `asset` may use (1.0 where the config sets none)."
        return dict(self.max_leverage).get(asset, 1.0)

    def sl_band(self, asset: str | None,  # an asset class (None: only the cap)
                ) -> tuple[float, float]:
        "The stop distances (percent) `asset` may use: (sl_pct_min, sl_pct_max); (0, cap) where none is set."
        for a, lo, hi in self.sl_bands:
            if a == asset:
                return lo, min(hi, self.max_stop_loss_pct)
        return 0.0, self.max_stop_loss_pct


# %%
cfg = RiskConfig.from_config()
test_eq(cfg.tiers[0], (1000.0, 2.0))
test_eq((cfg.max_stop_loss_pct, cfg.weights), (15.0, (0.5, 1.0, 1.5)))
test_eq((cfg.leverage_cap("crypto_futures"), cfg.leverage_cap("forex"), cfg.leverage_cap("crypto_spot")), (3.0, 10.0, 1.0))
test_eq((cfg.sl_band("forex"), cfg.sl_band(None)), ((get_key("assets.forex.sl_pct_min"), 2.0), (0.0, 15.0)))
test_eq(cfg.params.tier_pct.tolist(), [2.0, 1.5, 1.0, 0.5])
test_fail(lambda: RiskConfig(tiers=((5000.0, 1.0), (1000.0, 2.0))), contains="strictly increasing min_equity")

# %% [markdown]
# ## An asset's order rules
# What the venue and the configuration impose on every order of an asset: the lot step and minimum
# notional (`assets.json`), the stop band (`sl_pct_min` .. `sl_pct_max`), whether the venue lets the
# account sell what it does not hold (spot does not), and the leverage orders use. The engine, the router
# and the backtester's `asset=` option read this one value.

# %%
#| export
SHORTABLE_ASSETS = ("crypto_futures", "forex")  # venues where an account may sell what it does not hold


@dataclass(frozen=True)
class AssetRules:
    "The order rules of one asset: lot step, minimum notional, stop band, shorting, leverage."
    asset: str
    qty_step: float  # the venue's lot step
    min_notional: float  # the venue's minimum order value, USD
    sl_pct_min: float  # the tightest stop the asset may use, percent
    sl_pct_max: float  # the widest, percent (never beyond SAFETY.MAX_STOP_LOSS_PCT)
    shorting: bool  # short positions allowed
    leverage: float = 1.0  # the leverage orders use (within assets.<asset>.max_leverage)

    @classmethod
    def for_asset(cls, asset: str,  # an asset class of assets.json
                  ) -> AssetRules:
        "The rules of `asset` in the current configuration."
        spec = get_key(f"assets.{asset}")
        if spec is None:
            raise ValueError(f"unknown asset {asset!r}; see config/assets.json ({', '.join(ASSETS)})")
        cap = float(get_key("SAFETY.MAX_STOP_LOSS_PCT"))
        return cls(asset, float(spec["qty_step"]), float(spec["min_notional"]), float(spec["sl_pct_min"]),
                   min(float(spec["sl_pct_max"]), cap), asset in SHORTABLE_ASSETS)


# %%
spot = AssetRules.for_asset("crypto_spot")
test_eq((spot.qty_step, spot.min_notional, spot.shorting, spot.sl_pct_max), (1e-6, 5.0, False, 10.0))
test_eq(AssetRules.for_asset("crypto_futures").shorting, True)
test_fail(lambda: AssetRules.for_asset("stocks"), contains="unknown asset 'stocks'")


# %% [markdown]
# ## Risk percent and signal weight
# The tier is the last one whose `min_equity` the equity reaches. The drawdown cut counts *full*
# steps: 4.9 % of drawdown cuts nothing, 5 % cuts 0.25 points, 10 % cuts 0.5. The drawdown itself is
# measured one way everywhere (`drawdown_pct_nb`): how far equity is below the highest equity seen, in
# percent.

# %%
#| export
def _check_number(name: str, value: float, low: float = 0.0, strict: bool = False) -> float:
    "`value` as a finite float above `low`, or a ValueError naming it."
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}")
    return value


@njit(cache=True, error_model="numpy", forceinline=True)
def drawdown_pct_nb(equity: float,  # equity now
                    peak: float,  # the highest equity seen before (equity counts too: a new high is no drawdown)
                   ) -> float:  # percent below the peak (0 at a new high)
    "How far `equity` is below its peak, in percent."
    top = max(peak, equity)
    return (1.0 - equity / top) * 100.0 if top > 0 else 0.0


@njit(cache=True, error_model="numpy", forceinline=True)
def tier_risk_pct_nb(equity: float,  # equity in USD
                     rp: RiskParams,  # the rules
                    ) -> float:  # the tier's risk percent
    "The tier's risk % for `equity` (the first tier's below its minimum)."
    pct = rp.tier_pct[0]
    for k in range(len(rp.tier_min)):
        if equity >= rp.tier_min[k]:
            pct = rp.tier_pct[k]
    return pct


@njit(cache=True, error_model="numpy", forceinline=True)
def risk_pct_nb(equity: float,  # equity in USD
                drawdown_pct: float,  # drawdown from the peak, percent
                rp: RiskParams,  # the rules
               ) -> float:  # percent of equity to risk before the signal weight
    "Tier risk % minus the drawdown cut, floored at `min_risk_pct`."
    steps = math.floor(drawdown_pct / rp.drawdown_step_pct + 1e-9)
    return max(rp.min_risk_pct, tier_risk_pct_nb(equity, rp) - steps * rp.drawdown_cut_pct)


@njit(cache=True, error_model="numpy", forceinline=True)
def signal_weight_nb(score: float,  # signal strength in [0, 1]
                     rp: RiskParams,  # the rules
                    ) -> float:  # 0.5, 1.0 or 1.5 with the default weights
    "The weak weight below `weak_below`, the strong one above `strong_above`, the normal one between."
    return rp.weight_weak if score < rp.weak_below else rp.weight_strong if score > rp.strong_above \
        else rp.weight_normal


def tier_risk_pct(equity: float,  # equity in USD
                  cfg: RiskConfig,  # the rules
                  ) -> float:  # the tier's risk percent
    "The tier's risk % for `equity` (the first tier's below its minimum)."
    return float(tier_risk_pct_nb(float(equity), cfg.params))


def risk_pct(equity: float,  # account (or asset bucket) equity in USD
             drawdown_pct: float,  # current drawdown from the peak, in percent (5 means 5 %)
             cfg: RiskConfig,  # the rules
             ) -> float:  # percent of equity to risk before the signal weight
    "Tier risk % minus the drawdown cut, floored at `min_risk_pct`."
    return float(risk_pct_nb(float(equity), _check_number("drawdown_pct", drawdown_pct), cfg.params))


def signal_weight(score: float,  # signal strength in [0, 1]
                  cfg: RiskConfig,  # the rules
                  ) -> float:  # the weight
    "0.5× below `weak_below`, 1.5× above `strong_above`, 1.0× between."
    return float(signal_weight_nb(float(score), cfg.params))


# %%
test_eq([tier_risk_pct(e, cfg) for e in (1000, 9_999, 10_000, 60_000, 1e6)], [2.0, 2.0, 1.5, 1.0, 0.5])
test_eq([risk_pct(20_000, dd, cfg) for dd in (0, 4.9, 5, 10, 100)], [1.5, 1.5, 1.25, 1.0, 0.25])
test_eq([signal_weight(s, cfg) for s in (0.1, 0.5, 0.9)], [0.5, 1.0, 1.5])
test_close(drawdown_pct_nb(900.0, 1000.0), 10.0, eps=1e-12)
test_eq(drawdown_pct_nb(1100.0, 1000.0), 0.0)  # a new high is no drawdown
test_fail(lambda: risk_pct(20_000, -1, cfg), contains="drawdown_pct must be a finite number >= 0, got -1.0")


# %% [markdown]
# ## Position size
# `position_size` returns the notional in USD before rounding. A small account trades its flat $10,
# limited only by what it can pay for (equity × leverage); the percent caps apply to risk-based sizes.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def position_size_nb(equity: float,  # equity in USD
                     drawdown_pct: float,  # drawdown from the peak, percent
                     score: float,  # signal strength in [0, 1]
                     sl_distance: float,  # |entry - stop| in price units (> 0)
                     price: float,  # entry price (> 0)
                     leverage: float,  # leverage the order will use (> 0)
                     rp: RiskParams,  # the rules
                    ) -> float:  # notional in USD, unrounded
    "Notional whose loss at the stop equals the risk budget, within every cap (inputs already checked)."
    sl_fraction = sl_distance / price
    can_pay = equity * leverage
    if equity < rp.small_account_equity:
        return min(rp.small_account_notional, can_pay)
    pct = min(risk_pct_nb(equity, drawdown_pct, rp) * signal_weight_nb(score, rp), rp.max_risk_per_trade_pct)
    notional = equity * pct / 100 / sl_fraction
    return min(notional, equity * rp.max_position_pct / 100, can_pay)


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
    args = (_check_number("equity", equity), _check_number("drawdown_pct", drawdown_pct), float(signal_score),
            _check_number("sl_distance", sl_distance, strict=True), _check_number("price", price, strict=True),
            _check_number("leverage", leverage, strict=True))
    return float(position_size_nb(*args, cfg.params))


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
# Venues take quantities in multiples of a step. Rounding is *down* (never more risk than sized), and
# exact in decimal terms: a step of 0.1 counts 0.3 as three steps, not 2.999…, and the rounded
# quantity is the float nearest to its decimal (0.3, not 0.30000000000000004) — for a step `1/k`
# (0.001, 1e-6) the quantity is computed as `n / k`, which IEEE division rounds correctly. An order
# that rounds to less than one lot, or whose value then falls below the venue's minimum notional, is
# **refused**: the size is 0 and the reason says which rule and by how much.

# %%
#| export
@njit(cache=True, error_model="numpy", forceinline=True)
def _lots_nb(n: float, step: float, k: float) -> float:
    "The quantity of `n` lots (`n / k` when the step is 1/k, exact in decimal; `n * step` otherwise)."
    return n / k if k > 0.0 else n * step


@njit(cache=True, error_model="numpy", forceinline=True)
def round_qty_nb(qty: float,  # units wanted
                 step: float,  # the venue's lot step (> 0)
                ) -> float:  # the largest multiple of `step` not above `qty`
    "Round a quantity down to the venue's lot step."
    k = 0.0
    if step < 1.0:
        inv = 1.0 / step
        r = np.round(inv)
        if abs(inv - r) <= 1e-9 * r:
            k = r
    n = np.floor(qty / step)
    while _lots_nb(n + 1.0, step, k) <= qty:
        n += 1.0
    while n > 0.0 and _lots_nb(n, step, k) > qty:
        n -= 1.0
    return _lots_nb(n, step, k)


@njit(cache=True, error_model="numpy", forceinline=True)
def order_qty_nb(notional: float,  # unrounded notional in USD
                 price: float,  # entry price (> 0)
                 step: float,  # the venue's lot step
                 min_notional: float,  # the venue's minimum order value in USD
                ) -> float:  # units to order; 0: refused (below one lot or below the minimum)
    "The quantity a venue accepts for `notional`, rounded down; 0 when it is less than one lot or the minimum."
    qty = round_qty_nb(notional / price, step)
    if qty == 0.0 or qty * price < min_notional:
        return 0.0
    return qty


@dataclass(frozen=True)
class Sized:
    "A rounded order size; `qty == 0` means no trade, and `reason` says why."
    qty: float  # units (0: refused)
    notional: float  # qty × price
    reason: str = ""  # why it was refused


def round_size(notional: float,  # unrounded notional in USD
               price: float,  # entry price
               qty_step: float,  # the venue's quantity step
               min_notional: float = 0.0,  # the venue's minimum order value in USD
               ) -> Sized:
    "Round the quantity down to `qty_step`; refuse (qty 0) below one lot or below `min_notional`."
    price = _check_number("price", price, strict=True)
    step = _check_number("qty_step", qty_step, strict=True)
    raw_qty = _check_number("notional", notional) / price
    qty = float(round_qty_nb(raw_qty, step))
    if qty == 0.0:
        return Sized(0.0, 0.0, f"below one lot: {notional:.2f} USD buys {raw_qty:.8g} units at {price:g}, less "
                               f"than one lot of {qty_step:g}; the order is refused, not rounded up")
    if qty * price < min_notional:
        return Sized(0.0, 0.0, f"min notional: {qty * price:.2f} USD after rounding {raw_qty:.8g} down to step "
                               f"{qty_step:g} is below the minimum {min_notional:g} USD")
    return Sized(qty, qty * price)


def compute_size(equity: float,  # equity in USD
                 drawdown_pct: float,  # drawdown from the peak, percent
                 signal_score: float,  # signal strength in [0, 1]
                 sl_distance: float,  # |entry - stop| in price units
                 price: float,  # entry price
                 qty_step: float,  # the venue's quantity step
                 min_notional: float = 0.0,  # the venue's minimum order value in USD
                 cfg: RiskConfig | None = None,  # default: RiskConfig.from_config()
                 leverage: float = 1.0,  # leverage the order will use
                 ) -> Sized:
    "`position_size` then `round_size`: the order quantity a venue accepts."
    notional = position_size(equity, drawdown_pct, signal_score, sl_distance, price, cfg, leverage)
    return round_size(notional, price, qty_step, min_notional)


# %%
test_eq(round_size(30.0, 100.0, 0.1), Sized(0.3, 30.0))  # decimal: exactly three steps
test_eq(round_size(1234.5, 100.0, 1.0).qty, 12.0)
test_eq(float(round_qty_nb(0.000105263, 1e-6)), 0.000105)
r = round_size(4.0, 100.0, 0.01, min_notional=5.0)
test_eq((r.qty, r.notional), (0.0, 0.0))
test_eq(r.reason, "min notional: 4.00 USD after rounding 0.04 down to step 0.01 is below the minimum 5 USD")
# the $10 rule when one lot costs more: $10 of BTC at 95,000 is 0.000105 BTC, under a 0.001 lot ($95) -> refused
small = compute_size(400, 0, 0.5, 1900, 95_000, 0.001, 5.0, cfg)
test_eq((small.qty, small.reason[:13]), (0.0, "below one lot"))
assert "not rounded up" in small.reason
test_eq(compute_size(20_000, 0, 0.5, 6000, 60_000, 0.001, 5.0, cfg), Sized(0.05, 3000.0))

# %% [markdown]
# ## Pre-trade check
# `valid_order` is asked by the router before every order, whatever path it came by. It answers
# `(ok, reason)`; the reason names the rule and the numbers. Checks run from the most basic (a stop
# exists, within the 15 % cap and the asset's band) to the account-wide ones (today's loss). The caps
# themselves are one kernel, `pretrade_check_nb`, which the backtester's loop asks too.

# %%
#| export
STOP_OK, STOP_NONE, STOP_CAP, STOP_BAND = range(4)  # answers of `stop_check_nb`
CAP_OK, CAP_TRADE_RISK, CAP_POSITION, CAP_ASSET, CAP_DAILY_LOSS = range(5)  # answers of `pretrade_check_nb`


@njit(cache=True, error_model="numpy", forceinline=True)
def stop_check_nb(sl_pct: float,  # the order's stop distance, percent of the price (NaN: none)
                  lo_pct: float,  # the asset's band: the tightest stop allowed, percent (0: none)
                  hi_pct: float,  # the widest, percent
                  cap_pct: float,  # SAFETY.MAX_STOP_LOSS_PCT
                 ) -> int:  # STOP_OK, STOP_NONE, STOP_CAP or STOP_BAND
    "Whether a stop distance may be used: it exists, is within the 15 % cap and within the asset's band."
    if not sl_pct > 0.0:
        return STOP_NONE
    if sl_pct > cap_pct:
        return STOP_CAP
    if sl_pct < lo_pct or sl_pct > hi_pct:
        return STOP_BAND
    return STOP_OK


@njit(cache=True, error_model="numpy", forceinline=True)
def pretrade_check_nb(equity: float,  # equity in USD (> 0)
                      notional: float,  # the order's notional in USD (> 0)
                      sl_pct: float,  # its stop distance, percent of the price
                      leverage: float,  # leverage it uses
                      daily_loss: float,  # today's realised loss in USD (positive = lost)
                      asset_open: float,  # notional already open in the asset
                      rp: RiskParams,  # the rules
                     ) -> int:  # CAP_OK or the first cap broken
    "Per-trade risk, position, per-asset and daily-loss caps of one order."
    at_risk = notional * sl_pct / 100
    small = equity < rp.small_account_equity
    # the flat $10 of a small account is the seed's rule, not a percentage of equity
    if not small and 100 * at_risk / equity > rp.max_risk_per_trade_pct + 1e-9:
        return CAP_TRADE_RISK
    if not small and notional > equity * rp.max_position_pct / 100 + 1e-9:
        return CAP_POSITION
    if asset_open + notional > equity * leverage + 1e-9:
        return CAP_ASSET
    if 100 * (max(daily_loss, 0.0) + at_risk) / equity > rp.max_daily_loss_pct + 1e-9:
        return CAP_DAILY_LOSS
    return CAP_OK


def valid_order(equity: float,  # equity in USD
                notional: float,  # the order's notional in USD
                sl_pct: float | None,  # stop distance in percent of the entry price (None: no stop)
                asset: str | None = None,  # asset class, for its leverage cap and stop band
                leverage: float = 1.0,  # leverage the order uses
                daily_realised_loss: float = 0.0,  # today's realised loss in USD (positive = lost)
                asset_open_notional: float = 0.0,  # notional already open in this asset
                cfg: RiskConfig | None = None,  # default: RiskConfig.from_config()
                ) -> tuple[bool, str]:  # (ok, the rule it breaks)
    "Whether an order may be sent, and if not the rule it breaks."
    cfg = cfg or RiskConfig.from_config()
    lo, hi = cfg.sl_band(asset)
    stop = stop_check_nb(float("nan") if sl_pct is None else float(sl_pct), lo, hi, cfg.max_stop_loss_pct)
    if stop == STOP_NONE:
        return False, f"stop-loss required: every order needs a stop distance > 0 % (got {sl_pct})"
    if stop == STOP_CAP:
        return False, f"stop-loss {sl_pct:g} % exceeds SAFETY.MAX_STOP_LOSS_PCT {cfg.max_stop_loss_pct:g} %"
    if stop == STOP_BAND:
        return False, (f"stop band: a {sl_pct:.4g} % stop is outside {asset}'s band {lo:g}-{hi:g} % "
                       f"(assets.{asset}.sl_pct_min / sl_pct_max)")
    if equity <= 0 or notional <= 0:
        return False, f"equity and notional must be > 0 (got equity {equity:g}, notional {notional:g})"
    lev_cap = cfg.leverage_cap(asset)
    if leverage > lev_cap:
        return False, f"leverage cap: {leverage:g}x exceeds {lev_cap:g}x allowed for {asset}"
    code = pretrade_check_nb(float(equity), float(notional), float(sl_pct), float(leverage),
                             float(daily_realised_loss), float(asset_open_notional), cfg.params)
    return code == CAP_OK, _cap_reason(code, equity, notional, sl_pct, leverage, daily_realised_loss,
                                       asset_open_notional, asset, cfg)


def _cap_reason(code, equity, notional, sl_pct, leverage, daily_loss, asset_open, asset, cfg) -> str:
    "The message of a broken cap, with its numbers ('' when none is broken)."
    at_risk = notional * sl_pct / 100
    if code == CAP_TRADE_RISK:
        return (f"per-trade risk {100 * at_risk / equity:.2f} % of equity ({at_risk:.2f} USD at the stop) exceeds "
                f"RISK.max_risk_per_trade_pct {cfg.max_risk_per_trade_pct:g} %")
    if code == CAP_POSITION:
        return (f"position cap: {notional:.2f} USD is {100 * notional / equity:.1f} % of equity, above "
                f"RISK.max_position_pct {cfg.max_position_pct:g} %")
    if code == CAP_ASSET:
        return (f"per-asset cap: {asset_open + notional:.2f} USD open in {asset} would exceed equity "
                f"{equity:.2f} x leverage {leverage:g}")
    if code == CAP_DAILY_LOSS:
        day_pct = 100 * (max(daily_loss, 0.0) + at_risk) / equity
        return (f"daily-loss cap: today's loss {daily_loss:.2f} USD plus {at_risk:.2f} USD at risk is "
                f"{day_pct:.2f} % of equity, above RISK.max_daily_loss_pct {cfg.max_daily_loss_pct:g} %")
    return ""


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
test_eq(valid_order(20_000, 500, 12.0, "crypto_spot", cfg=cfg)[1][:11], "stop band: ")  # spot allows up to 10 %
test_eq(valid_order(20_000, 500, 8.0, "forex", cfg=cfg)[1],
        f"stop band: a 8 % stop is outside forex's band {cfg.sl_band('forex')[0]:g}-2 % "
        "(assets.forex.sl_pct_min / sl_pct_max)")


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
