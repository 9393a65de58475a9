import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _isolated_logs(tmp_path_factory, monkeypatch):
    "Tests never write into the repository's logs/ or state/."
    monkeypatch.setenv("TRADINGBOT_LOG_DIR", str(tmp_path_factory.mktemp("logs")))
    monkeypatch.setenv("TRADINGBOT_STATE_DIR", str(tmp_path_factory.mktemp("state")))


def python() -> str:
    "The interpreter running the tests (the project's venv under make test)."
    return sys.executable
