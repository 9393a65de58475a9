"""runners/live.py against bad configuration directories: one line naming file, key and rule; exit non-zero."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    return target


def run_live(config_dir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "runners" / "live.py"), "--config", str(config_dir), "--bars", "50"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


def edit(config_dir: Path, file: str, change) -> None:
    path = config_dir / file
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc, indent=2))


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_malformed_json(tmp_path):
    cfg = config_copy(tmp_path)
    text = (cfg / "config.json").read_text()
    (cfg / "config.json").write_text(text.replace('"SAFETY": {', '"SAFETY": {,', 1))
    assert_one_line_error(run_live(cfg), "config.json", "line 2", "malformed JSON")


def test_unknown_key(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "config.json", lambda d: d["SAFETY"].update(MAX_STOPLOSS_PCT=5))
    assert_one_line_error(run_live(cfg), "config.json: SAFETY.MAX_STOPLOSS_PCT: unknown key")


def test_wrong_type(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "assets.json", lambda d: d["forex"].update(allocation_usd="lots"))
    assert_one_line_error(run_live(cfg), "assets.json: forex.allocation_usd: input should be a valid number",
                          '"lots"')


def test_stop_loss_cap(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "config.json", lambda d: d["SAFETY"].update(MAX_STOP_LOSS_PCT=20))
    assert_one_line_error(run_live(cfg), "config.json: SAFETY.MAX_STOP_LOSS_PCT:",
                          "less than or equal to 15", "(got 20)")


def test_stop_loss_cap_from_environment(tmp_path):
    proc = run_live(config_copy(tmp_path), {"TRADINGBOT__SAFETY__MAX_STOP_LOSS_PCT": "20"})
    assert_one_line_error(proc, "SAFETY.MAX_STOP_LOSS_PCT", "less than or equal to 15")


def test_secret_in_file_refused(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "config.json", lambda d: d["TELEGRAM"].update(BOT_TOKEN="123:abc"))
    proc = run_live(cfg)
    assert_one_line_error(proc, "config.json: TELEGRAM.BOT_TOKEN:", "TELEGRAM_BOT_TOKEN")
    assert "123:abc" not in proc.stderr + proc.stdout


def test_unknown_strategy_reference(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "assets.json", lambda d: d["forex"]["strategies"].append("moonshot"))
    assert_one_line_error(run_live(cfg), "assets.json: forex.strategies[3]: unknown strategy 'moonshot'")


def test_missing_file(tmp_path):
    cfg = config_copy(tmp_path)
    (cfg / "strategies.json").unlink()
    assert_one_line_error(run_live(cfg), "strategies.json: file not found")


def test_live_in_file_still_boots_paper(tmp_path):
    cfg = config_copy(tmp_path)
    edit(cfg, "config.json", lambda d: d["SAFETY"].update(LIVE_TRADING_ENABLED=True, START_MODE="live",
                                                         ORDER_ROUTING="broker"))
    edit(cfg, "assets.json", lambda d: [a.update(live_enabled=True) for a in d.values()])
    proc = run_live(cfg)
    assert proc.returncode == 0, proc.stderr
    modes = next(line for line in proc.stdout.splitlines() if line.startswith("modes:"))
    assert "live" not in modes.removeprefix("modes:")
    assert modes.count("=paper") == 3  # options is disabled in the bundled config


def test_boot_prints_hash_and_samples_and_logs_no_secret(tmp_path):
    token = "987654:SECRET-telegram-token"
    log_dir = tmp_path / "logs"
    proc = run_live(ROOT / "config", {"TELEGRAM_BOT_TOKEN": token, "BYBIT_API_SECRET": "bybit-secret-xyz",
                                      "TRADINGBOT_LOG_DIR": str(log_dir)})
    assert proc.returncode == 0, proc.stderr
    digest = next(line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("config hash:"))
    assert len(digest) == 64
    for name, rows in [("btcusd_1h", 20111), ("eurusd_1h", 6225)]:
        assert any(line.startswith("replay:") and f" {name} {rows} bars" in line
                   for line in proc.stdout.splitlines()), name
    events = "".join(p.read_text() for p in log_dir.rglob("*.jsonl"))
    loaded = [json.loads(line) for line in events.splitlines() if '"config_loaded"' in line]
    assert loaded[-1]["config_hash"] == digest
    for secret in (token, "bybit-secret-xyz"):
        assert secret not in events and secret not in proc.stdout + proc.stderr


def test_config_hash_ignores_secrets_and_tracks_values(tmp_path):
    from tradingbot.config import config_hash, read_config_dir
    base, _, _ = read_config_dir(ROOT / "config", env={})
    with_secret, _, _ = read_config_dir(ROOT / "config", env={"TELEGRAM_BOT_TOKEN": "1:x", "BYBIT_API_KEY": "k"})
    changed, _, _ = read_config_dir(ROOT / "config", env={"TRADINGBOT__PAPER__PAPER_EQUITY_START": "2000"})
    assert config_hash(base) == config_hash(with_secret)
    assert config_hash(base) != config_hash(changed)
    assert changed["config"]["PAPER"]["PAPER_EQUITY_START"] == 2000.0


def test_ib_insync_not_installed_beside_ib_async():
    from importlib.metadata import PackageNotFoundError, version
    assert version("ib_async").startswith("2.1")
    with pytest.raises(PackageNotFoundError):
        version("ib_insync")
