"Property tests of the sizing rules and pre-trade checks in tradingbot.execution.risk (DESIGN §7)."
import math
from decimal import Decimal

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tradingbot.execution.risk import RiskConfig, position_size, round_size, valid_order

CFG = RiskConfig()  # the seed defaults, identical to config/config.json
# caps loosened so that only the rule under test shapes the size
LOOSE = RiskConfig(max_risk_per_trade_pct=100.0, max_position_pct=100.0)

equity_small = st.floats(10.0, 999.99)
equity_big = st.floats(1000.0, 1e8)
drawdown = st.floats(0.0, 100.0)
score = st.floats(0.0, 1.0)
price = st.floats(0.01, 1e5)
sl_fraction = st.floats(0.001, 0.15)
leverage = st.floats(0.1, 20.0)


@given(equity_small, drawdown, score, sl_fraction, price)
def test_ten_dollars_below_one_thousand(equity, dd, sc, slf, px):
    assert position_size(equity, dd, sc, slf * px, px, CFG) == 10.0


@given(st.sampled_from(CFG.tiers), st.floats(0.0, 0.999), price)
def test_tier_risk_at_zero_drawdown_and_normal_score(tier, into_tier, px):
    min_equity, tier_pct = tier
    nxt = [m for m, _ in CFG.tiers if m > min_equity]
    equity = min_equity + into_tier * ((nxt[0] if nxt else 10 * min_equity) - min_equity)
    sl = 0.5 * px  # a wide stop keeps every cap out of the way
    got = position_size(equity, 0.0, 0.5, sl, px, LOOSE)
    assert math.isclose(got, equity * tier_pct / 100 / 0.5, rel_tol=1e-9)


@given(equity_big, st.integers(0, 20), st.floats(0.0, 0.99), price)
def test_drawdown_cuts_quarter_point_per_five_pct(equity, steps, frac, px):
    dd = (steps + frac) * 5.0
    base = position_size(equity, 0.0, 0.5, 0.5 * px, px, LOOSE)
    tier_pct = base * 0.5 / equity * 100
    expected_pct = max(0.25, tier_pct - 0.25 * steps)
    got = position_size(equity, dd, 0.5, 0.5 * px, px, LOOSE)
    assert math.isclose(got, equity * expected_pct / 100 / 0.5, rel_tol=1e-9)
    assert got >= equity * 0.25 / 100 / 0.5 * (1 - 1e-12)  # the 0.25 % floor


@given(equity_big, drawdown, price)
def test_signal_weights_in_ratio_when_no_cap_binds(equity, dd, px):
    weak, normal, strong = (position_size(equity, dd, s, 0.5 * px, px, LOOSE) for s in (0.1, 0.5, 0.9))
    assert math.isclose(weak / normal, 0.5, rel_tol=1e-9)
    assert math.isclose(strong / normal, 1.5, rel_tol=1e-9)


@given(st.floats(10.0, 1e8), drawdown, score, sl_fraction, price, leverage)
def test_no_size_exceeds_any_cap(equity, dd, sc, slf, px, lev):
    got = position_size(equity, dd, sc, slf * px, px, CFG, leverage=lev)
    assert got <= equity * lev * (1 + 1e-12)
    if equity >= CFG.small_account_equity:
        assert got <= equity * CFG.max_position_pct / 100 * (1 + 1e-12)
        assert got * slf <= equity * CFG.max_risk_per_trade_pct / 100 * (1 + 1e-9)
    else:
        assert got <= CFG.small_account_notional


@given(st.floats(15.0, 100.0, exclude_min=True), st.floats(10.0, 1e8), st.floats(0.01, 1e6), leverage)
def test_any_stop_beyond_fifteen_pct_is_refused(sl_pct, equity, notional, lev):
    ok, reason = valid_order(equity, notional, sl_pct, "crypto_futures", lev, cfg=CFG)
    assert not ok and "MAX_STOP_LOSS_PCT" in reason


@given(st.floats(0.0, 1e7), price, st.sampled_from([1e-8, 1e-6, 0.001, 0.01, 0.1, 1.0, 5.0, 100.0]))
@settings(max_examples=300)
def test_rounding_never_increases_size_and_respects_step(notional, px, step):
    assume(notional / px / step < 1e15)  # a float holds 15 significant digits; venues stay far inside that
    sized = round_size(notional, px, step)
    assert sized.qty <= notional / px
    assert sized.notional <= notional * (1 + 1e-12)
    assume(sized.qty > 0)
    assert Decimal(repr(sized.qty)) % Decimal(repr(step)) == 0
    assert Decimal(repr(sized.qty)) + Decimal(repr(step)) > Decimal(notional / px)  # down by less than one step


@given(st.floats(0.0, 1e4), price, st.floats(1.0, 100.0))
def test_below_min_notional_is_zero_with_reason(notional, px, min_notional):
    sized = round_size(notional, px, 1e-6, min_notional)
    if sized.qty == 0:
        assert sized.notional == 0 and sized.reason.startswith(("min notional", "below one lot"))
    else:
        assert sized.notional >= min_notional and sized.reason == ""
