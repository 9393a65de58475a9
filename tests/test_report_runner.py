"""runners/report.py end to end: papermill report, HTML without code, JSON record, reproducible numbers."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ["Parameters and provenance", "Gate verdict", "Metrics", "Equity and drawdown", "Walk-forward",
            "Overfitting: deflated Sharpe ratio and PBO", "Stress", "Tearsheet"]


def report(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRADINGBOT_REPORTS_DIR": str(tmp_path / "reports"),
           "TRADINGBOT_LOG_DIR": str(tmp_path / "logs")}
    return subprocess.run([sys.executable, str(ROOT / "runners" / "report.py"), "validation", "--quiet", *args],
                          capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def all_reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("all")
    return tmp, report(tmp, "--all", "--data", "btcusd_1h")


def test_all_strategies_render(all_reports):
    tmp, proc = all_reports
    assert proc.returncode == 0, proc.stderr[-2000:]
    strategies = json.loads((ROOT / "config" / "strategies.json").read_text())["strategies"]
    for sid in strategies:
        (html,) = (tmp / "reports" / "validation" / sid).glob("*/report.html")
        text = html.read_text()
        for section in SECTIONS:
            assert section in text, f"{sid}: section {section!r} missing"
        assert "validate_strategy(" not in text, "input cells must be hidden"
        (record,) = (tmp / "logs" / "validation" / sid).glob("*.json")
        rec = json.loads(record.read_text())
        assert rec["strategy"] == sid and rec["data"] == "btcusd_1h" and len(rec["data_hash"]) == 64
        assert rec["asset"] == "crypto_spot" and rec["sizing"] == "risk"  # measured as paper and live trade it
        assert rec["verdict"]["passed"] is False and rec["verdict"]["reasons"]  # RSI-2 & co. are far from the gate


def test_same_inputs_same_numbers(all_reports, tmp_path):
    tmp, _ = all_reports
    proc = report(tmp_path, "--strategy", "rsi2", "--data", "btcusd_1h")
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = json.loads(next((tmp / "logs" / "validation" / "rsi2").glob("*.json")).read_text())
    second = json.loads(next((tmp_path / "logs" / "validation" / "rsi2").glob("*.json")).read_text())
    for key in ("metrics", "deflated_sharpe", "pbo", "walk_forward", "verdict", "data_hash", "params", "seed"):
        assert first[key] == second[key], key


def test_latest_report_reads_the_record(all_reports, monkeypatch):
    tmp, _ = all_reports
    from tradingbot.validation.report import latest_report
    rec = latest_report("ibs", logs_root=tmp / "logs")
    assert rec["strategy"] == "ibs" and "metrics" in rec


def test_research_validation_of_an_index(tmp_path):
    proc = report(tmp_path, "--strategy", "rsi2", "--data", "spx_1d")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: --data: spx_1d: no asset of config/assets.json trades these bars")
    proc = report(tmp_path, "--strategy", "rsi2", "--data", "spx_1d", "--sizing", "cash")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rec = json.loads(next((tmp_path / "logs" / "validation" / "rsi2").glob("*.json")).read_text())
    assert rec["asset"] is None and rec["sizing"] == "cash"


def test_bad_parameter_is_one_line(tmp_path):
    proc = report(tmp_path, "--strategy", "rsi2", "--param", "entry_below=low")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == "error: --param: entry_below: 'low' is not a valid int"
    proc = report(tmp_path, "--strategy", "moonshot")
    assert proc.returncode == 2 and "unknown strategy" in proc.stderr
