# %% [markdown]
# # Promotion gate
#
# > The rules a strategy must pass before any asset may trade it live, and a verdict that names every rule it failed.

# %%
#| default_exp validation.gate

# %% [markdown]
# Seeds 002–004 set the bar: at least 500 trades, Sharpe ≥ 2.0, max drawdown ≤ 15 %, profit factor
# ≥ 1.5 and a bounded CVaR. Luck from a wide search is discounted by one more rule: the deflated Sharpe
# ratio — the probability that the Sharpe ratio beats the best one the search's trials would show by
# chance — must reach `min_deflated_sharpe`. The thresholds live in `config.json` (`VALIDATION.gates`),
# a strategy may tighten or relax them in `strategies.json`, and the verdict keeps one line per rule.
#
# A metric that was not measured (NaN: no trades, too few returns) fails its rule: the gate never passes
# on missing evidence.

# %%
#| export
from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass

from tradingbot.config import get_key

# %%
#| hide
from fastcore.test import test_eq, test_fail


# %%
#| export
@dataclass(frozen=True)
class RuleResult:
    "One gate rule applied to one measured value."
    rule: str  # the rule's name, e.g. 'sharpe'
    value: float  # what was measured (NaN: not measured)
    op: str  # ">=" or "<="
    threshold: float  # the configured bound
    passed: bool  # the value meets the bound

    @property
    def reason(self) -> str:
        "Why the rule failed ('' when it passed)."
        if self.passed:
            return ""
        shown = "not measured" if not math.isfinite(self.value) else f"{self.value:.4g}"
        return f"{self.rule}: {shown}, needs {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class Verdict:
    "The gate's decision with every rule's outcome."
    passed: bool  # every rule passed
    rules: tuple[RuleResult, ...]  # each rule's outcome, in the gate's order

    @property
    def reasons(self) -> list[str]:
        "One line per failed rule."
        return [r.reason for r in self.rules if not r.passed]

    def to_dict(self) -> dict:
        "JSON-able form (NaN values become None)."
        rules = [{**asdict(r), "value": r.value if math.isfinite(r.value) else None} for r in self.rules]
        return {"passed": self.passed, "reasons": self.reasons, "rules": rules}

    def plot(self, title: str | None = None,  # the figure's title
             ):
        "Each rule's measured value as a share of its threshold (1 = on the line), green passed, red failed."
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(self.rules) + 1.2))
        for k, r in enumerate(self.rules):
            share = r.value / r.threshold if math.isfinite(r.value) and r.threshold else 0.0
            ax.barh(k, share, color="tab:green" if r.passed else "tab:red", alpha=0.8)
            shown = "not measured" if not math.isfinite(r.value) else f"{r.value:.3g}"
            ax.text(max(share, 0) + 0.02, k, f"{shown} ({r.op} {r.threshold:g})", va="center", fontsize="small")
        ax.axvline(1.0, color="k", lw=1)
        ax.set_yticks(range(len(self.rules)), [r.rule for r in self.rules])
        ax.invert_yaxis()
        ax.set_xlabel("measured / threshold  (>= rules pass right of 1, <= rules left of it)")
        ax.set_title(title or ("PASSED" if self.passed else "FAILED"))
        fig.tight_layout()
        return fig


# %% [markdown]
# Drawdown and CVaR come from `metrics.summary` as negative fractions (quantstats' sign); the gates are
# written as positive percentages, so they are compared as losses in percent. Profit factor is taken over
# trades when trades were recorded (the per-bar one otherwise).

# %%
#| export
def _rule(rule: str, value, op: str, threshold: float) -> RuleResult:
    value = float("nan") if value is None else float(value)
    ok = math.isfinite(value) and (value >= threshold if op == ">=" else value <= threshold)
    return RuleResult(rule, value, op, float(threshold), bool(ok))


def default_gates() -> dict:
    "The gates of the current configuration (`VALIDATION.gates`)."
    return get_key("VALIDATION.gates")


def evaluate_gates(metrics: dict,  # from `metrics.summary` (trades, sharpe, max_drawdown, cvar, profit factors)
                   gates: dict | None = None,  # thresholds; missing keys come from the configuration
                   deflated_sharpe: float | None = None,  # from `overfit.deflated_sharpe_ratio`
                   ) -> Verdict:
    "Apply every gate rule and return the verdict."
    g = {**default_gates(), **(gates or {})}
    pf = metrics.get("profit_factor")  # per trade (metrics.summary): no trades, no profit factor, no pass
    loss = lambda x: float("nan") if x is None else -100.0 * float(x)  # noqa: E731 - negative fraction -> loss %
    rules = (
        _rule("trades", metrics.get("trades"), ">=", g["min_trades"]),
        _rule("sharpe", metrics.get("sharpe"), ">=", g["min_sharpe"]),
        _rule("max_drawdown_pct", loss(metrics.get("max_drawdown")), "<=", g["max_drawdown_pct"]),
        _rule("profit_factor", pf, ">=", g["min_profit_factor"]),
        _rule("cvar_pct", loss(metrics.get("cvar")), "<=", g["max_cvar_pct"]),
        _rule("deflated_sharpe", deflated_sharpe, ">=", g["min_deflated_sharpe"]),
    )
    return Verdict(all(r.passed for r in rules), rules)


# %%
good = {"trades": 812, "sharpe": 2.4, "max_drawdown": -0.11, "cvar": -0.021, "profit_factor": 1.8}
v = evaluate_gates(good, deflated_sharpe=0.97)
test_eq((v.passed, v.reasons), (True, []))

bad = {**good, "trades": 120, "max_drawdown": -0.22, "profit_factor": 1.2}
v = evaluate_gates(bad, deflated_sharpe=None)
test_eq(v.passed, False)
test_eq(v.reasons, ["trades: 120, needs >= 500", "max_drawdown_pct: 22, needs <= 15",
                    "profit_factor: 1.2, needs >= 1.5", "deflated_sharpe: not measured, needs >= 0.95"])
test_eq(evaluate_gates(good, {"min_trades": 1000}, 0.97).reasons, ["trades: 812, needs >= 1000"])
test_eq(v.to_dict()["rules"][-1]["value"], None)

# %% [markdown]
# The picture of a verdict: RSI-2 on hourly BTC, traded as `crypto_spot` trades it, against the live gate —
# each bar is the measured value as a share of its threshold.

# %%
from tradingbot.data.samples import load_sample  # noqa: E402
from tradingbot.strategies.base import make_strategy  # noqa: E402

btc_run = make_strategy("rsi2").backtest(load_sample("btcusd_1h"), asset="crypto_spot")
btc_verdict = evaluate_gates(btc_run.summary(), deflated_sharpe=None)
test_eq(btc_verdict.passed, False)
btc_verdict.plot("RSI-2 on BTC-USD 1h as crypto_spot trades it, against the live gate");


# %% [markdown]
# ## Eligible for live
# Before an asset may switch to live, the runtime asks `live_eligibility(strategy, asset)` of every
# strategy it trades. The answer comes from the newest validation record (written by the report, see
# `validation.report`), judged **with today's rules** — a record never loosens them:
#
# - its metrics are re-evaluated against the gates of the *current* configuration (`VALIDATION.gates`,
#   then the strategy's own in `strategies.json`); the thresholds stored in the record are not read, so a
#   stricter configuration revokes an old pass without waiting for the next scheduled report;
# - it must describe what would trade: the same strategy id, the same **parameters** (by hash, against
#   the configured ones), made for **this asset** with its risk sizing (a research run with all-in sizing
#   never qualifies), on bars of the asset's **timeframe**;
# - it must be recent: both the validation and the end of its data no older than
#   `VALIDATION.max_record_age_days`.
#
# No record, no live. The reason names the first rule the record breaks.

# %%
#| export
def _age_days(when: str | None, now: dt.datetime) -> float:
    "Days from the ISO-8601 time `when` to `now` (inf when unknown)."
    if not when:
        return math.inf
    try:
        t = dt.datetime.fromisoformat(when)
    except ValueError:
        return math.inf
    return (now - (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc))).total_seconds() / 86_400


def _record_problem(record: dict, strategy_id: str, asset: str, now: dt.datetime) -> str:
    "Why the record does not describe what would trade today ('' when it does)."
    from tradingbot.strategies.base import make_strategy
    from tradingbot.validation.pipeline import params_hash
    if record.get("strategy") != strategy_id:
        return f"the record is of strategy {record.get('strategy')!r}"
    if record.get("asset") != asset or record.get("sizing") != "risk":
        made = record.get("asset") or "no asset (a research run)"
        return f"validated for {made} with sizing {record.get('sizing')!r}, not for {asset} as it trades"
    if record.get("params_hash") != params_hash(make_strategy(strategy_id).params):
        return "validated with other parameters than the configured ones (strategies.json)"
    timeframe = get_key(f"assets.{asset}.timeframe")
    if record.get("timeframe") != timeframe:
        return f"validated on {record.get('timeframe')!r} bars, {asset} trades {timeframe!r}"
    limit = float(get_key("VALIDATION.max_record_age_days"))
    for what, key in (("the validation", "validated_at"), ("its data", "data_end")):
        age = _age_days(record.get(key), now)
        if not age <= limit:
            shown = "of unknown age" if math.isinf(age) else f"{age:.0f} days old"
            return f"{what} is {shown}, older than VALIDATION.max_record_age_days {limit:g}"
    return ""


def live_eligibility(strategy_id: str,  # a strategy id of strategies.json
                     asset: str,  # the asset that would trade it live
                     gates: dict | None = None,  # stricter thresholds on top of today's configuration
                     logs_root=None,  # where validation records live (default logs/)
                     now: dt.datetime | None = None,  # default: the current time
                     ) -> tuple[bool, str]:  # (eligible, why not)
    "Whether the strategy's latest validation record lets `asset` trade it live today, and if not why."
    from tradingbot.validation.report import latest_report
    record = latest_report(strategy_id, logs_root=logs_root)
    if not record or "metrics" not in record:
        return False, "no validation record"
    problem = _record_problem(record, strategy_id, asset, now or dt.datetime.now(dt.timezone.utc))
    if problem:
        return False, problem
    today = {**default_gates(), **(get_key(f"strategies.strategies.{strategy_id}.gates") or {}), **(gates or {})}
    verdict = evaluate_gates(record["metrics"], today, record.get("deflated_sharpe"))
    return (True, "") if verdict.passed else (False, "; ".join(verdict.reasons))


def eligible_for_live(strategy_id: str,  # a strategy id of strategies.json
                      asset: str,  # the asset that would trade it live
                      gates: dict | None = None,  # stricter thresholds on top of today's configuration
                      logs_root=None,  # where validation records live (default logs/)
                      ) -> bool:
    "True only if the strategy's latest validation record lets `asset` trade it live today."
    return live_eligibility(strategy_id, asset, gates, logs_root)[0]


# %% [markdown]
# A record that passes today, and each way it stops passing:

# %%
import tempfile
from pathlib import Path

from tradingbot.strategies.base import make_strategy
from tradingbot.validation.pipeline import params_hash
from tradingbot.validation.report import save_result

now = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)
record = {"strategy": "rsi2", "asset": "crypto_spot", "sizing": "risk", "timeframe": "1h",
          "params_hash": params_hash(make_strategy("rsi2").params), "validated_at": "2024-05-30T02:15:00+00:00",
          "data_end": "2024-05-29T23:00:00+00:00", "metrics": good, "deflated_sharpe": 0.97,
          "gates": {"min_trades": 10, "min_sharpe": 0.1}, "verdict": {"passed": True}}
with tempfile.TemporaryDirectory() as d:
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now), (False, "no validation record"))
    save_result(record, Path(d) / "validation/rsi2/20240530T021500Z.json")
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now), (True, ""))
    test_eq(live_eligibility("rsi2", "crypto_spot", {"min_sharpe": 3.0}, logs_root=d, now=now),
            (False, "sharpe: 2.4, needs >= 3"))  # a stricter rule now revokes it
    test_eq(live_eligibility("rsi2", "forex", logs_root=d, now=now)[1],
            "validated for crypto_spot with sizing 'risk', not for forex as it trades")
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now + dt.timedelta(days=60))[1],
            "the validation is 62 days old, older than VALIDATION.max_record_age_days 30")
    # the record's own loose gates (10 trades, Sharpe 0.1) never apply: today's 500 trades / Sharpe 2 do
    save_result({**record, "metrics": {**good, "trades": 40, "sharpe": 0.6}},
                Path(d) / "validation/rsi2/20240531T000000Z.json")
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now),
            (False, "trades: 40, needs >= 500; sharpe: 0.6, needs >= 2"))
    save_result({**record, "params_hash": params_hash({**make_strategy("rsi2").params, "entry_below": 5})},
                Path(d) / "validation/rsi2/20240531T010000Z.json")
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now)[1],
            "validated with other parameters than the configured ones (strategies.json)")
    save_result({**record, "asset": None, "sizing": "cash"}, Path(d) / "validation/rsi2/20240531T020000Z.json")
    test_eq(live_eligibility("rsi2", "crypto_spot", logs_root=d, now=now)[1],
            "validated for no asset (a research run) with sizing 'cash', not for crypto_spot as it trades")
    test_eq(eligible_for_live("rsi2", "crypto_spot", logs_root=d), False)
