# %% [markdown]
# # Structured logging
#
# > JSON-lines logs (`ts`, `event`, fields) for every module, with secrets scrubbed before anything is written.

# %%
#| default_exp jsonlog

# %% [markdown]
# Every module logs through `log_event`: one JSON object per line, machine-readable, greppable, and
# appendable without rewriting. A record always has `ts` (UTC ISO-8601, milliseconds) and `event`
# (snake_case, past tense where it reports something that happened); the rest are the caller's fields.
# Files roll over by UTC date: `logs/{category}/{stem}_YYYYMMDD.jsonl`, the layout of seed 003 §21.

# %%
#| export
from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any, TextIO

from tradingbot.fileio import to_jsonable
from tradingbot.paths import workspace_path

# %%
#| hide
import tempfile

import numpy as np
from fastcore.test import test_eq, test_fail

# %% [markdown]
# ## Secrets never reach a log
# The secret environment variables are the only place credentials live (DESIGN §7). The scrubber
# replaces their *values* anywhere in a record, and any field whose *name* looks like a credential,
# so a secret passed by mistake (an exception message that quotes a URL with a key, say) is masked too.

# %%
#| export
SECRET_ENV_VARS = ("BYBIT_API_KEY", "BYBIT_API_SECRET", "TELEGRAM_BOT_TOKEN", "IB_ACCOUNT_PASSWORD")
_SECRET_KEY_PARTS = ("secret", "token", "password", "api_key", "apikey", "passphrase")
MASK = "***"


def _secret_values() -> list[str]:
    "Current values of the secret environment variables (read each time: tests and operators change them)."
    return [v for k in SECRET_ENV_VARS if len(v := os.environ.get(k, "")) >= 4]


def scrub(value: Any,  # a plain JSON value (dicts, lists, strings, numbers)
          secrets: list[str] | None = None,  # the secret values to mask; default those of SECRET_ENV_VARS
          ) -> Any:
    "Return `value` with secret env values masked in strings and credential-named fields replaced."
    secrets = _secret_values() if secrets is None else secrets
    if isinstance(value, dict):
        return {k: MASK if _is_secret_key(k) else scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets) for v in value]
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, MASK)
    return value


def _is_secret_key(key: Any) -> bool:
    k = str(key).lower()
    return any(part in k for part in _SECRET_KEY_PARTS)


# %%
os.environ["BYBIT_API_SECRET"] = "s3cr3t-value"
test_eq(scrub({"msg": "GET /v5?sign=s3cr3t-value", "n": 1}), {"msg": "GET /v5?sign=***", "n": 1})
test_eq(scrub({"bot_token": "abc", "nested": [{"api_key": "x"}]}), {"bot_token": "***", "nested": [{"api_key": "***"}]})
del os.environ["BYBIT_API_SECRET"]


# %% [markdown]
# ## Encoding
# Logs carry pandas timestamps, numpy scalars, paths and enums. `tradingbot.fileio.to_jsonable` turns
# them into plain JSON (NaN `null`, ±inf `"inf"` / `"-inf"`), so every line stays valid JSON (the
# standard library would write `NaN`); a type it does not know is logged as its text rather than lost.

# %%
#| export
def to_json_line(record: dict,  # the fields of one record
                 ) -> str:  # one line of JSON, no newline
    "One record as a single JSON line: plain JSON (see `to_jsonable`), secrets scrubbed."
    plain = to_jsonable(record, fallback=str)
    return json.dumps(scrub(plain), allow_nan=False, separators=(",", ":"), ensure_ascii=False)


# %%
import pandas as pd

line = to_json_line({"ts": pd.Timestamp("2024-01-02", tz="UTC"), "x": np.float64("nan"), "n": np.int64(3),
                     "pf": np.inf, "path": Path("/tmp/a"), "err": ValueError("bad"), "xs": (1.5, np.nan)})
test_eq(json.loads(line), {"ts": "2024-01-02T00:00:00+00:00", "x": None, "n": 3, "pf": "inf", "path": "/tmp/a",
                           "err": "bad", "xs": [1.5, None]})
os.environ["BYBIT_API_KEY"] = "key-in-a-path"
test_eq(json.loads(to_json_line({"p": Path("/x/key-in-a-path"), "bybit_api_key": 1})), {"p": "/x/***", "bybit_api_key": "***"})
del os.environ["BYBIT_API_KEY"]


# %% [markdown]
# ## Writers
# `JsonLines` appends records to a dated file; a lock keeps lines whole when threads share a writer.
# Each line is flushed as it is written so a crash loses at most the record being written.

# %%
#| export
def utc_now() -> dt.datetime:
    "The current time, UTC, tz-aware."
    return dt.datetime.now(dt.timezone.utc)


def _iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLines:
    "Append JSON records to `directory/{stem}_YYYYMMDD.jsonl` (UTC date of each record)."

    def __init__(self, directory: str | Path,  # where the dated files go (created on first write)
                 stem: str,  # file name before the date: '{stem}_YYYYMMDD.jsonl'
                 echo: TextIO | None = None,  # also print each line here (a runner's stdout)
                 ):
        self.directory, self.stem, self.echo = Path(directory), stem, echo
        self._lock = threading.Lock()

    def path_for(self, when: dt.datetime,  # a record's time stamp
                 ) -> Path:
        "The file that holds records stamped `when`."
        return self.directory / f"{self.stem}_{when.astimezone(dt.timezone.utc):%Y%m%d}.jsonl"

    def write(self, event: str,  # snake_case event name
              when: dt.datetime | None = None,  # the record's time stamp; default now (UTC)
              **fields: Any,  # the record's other fields
              ) -> dict:
        "Append one record; return it as written (after scrubbing)."
        when = when or utc_now()
        line = to_json_line({"ts": _iso(when), "event": event, **fields})
        path = self.path_for(when)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            if self.echo is not None:
                print(line, file=self.echo, flush=True)
        return json.loads(line)


def read_jsonl(path: str | Path,  # a JSON-lines file
               ) -> list[dict]:
    "All records of a JSON-lines file."
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# %%
with tempfile.TemporaryDirectory() as d:
    w = JsonLines(d, "trades")
    when = dt.datetime(2024, 3, 1, 12, 30, tzinfo=dt.timezone.utc)
    rec = w.write("order_filled", when=when, symbol="BTCUSDT", qty=0.5)
    test_eq(rec, {"ts": "2024-03-01T12:30:00.000Z", "event": "order_filled", "symbol": "BTCUSDT", "qty": 0.5})
    w.write("order_filled", when=when, symbol="ETHUSDT", qty=1.0)
    test_eq([r["symbol"] for r in read_jsonl(Path(d) / "trades_20240301.jsonl")], ["BTCUSDT", "ETHUSDT"])

# %% [markdown]
# ## The event log
# `log_event` is what modules call. It writes to `logs/events/events_YYYYMMDD.jsonl` under the log
# directory: `TRADINGBOT_LOG_DIR` if set, else `logs/` in the repository. `configure` points it
# elsewhere (a runner's `--state`, a test's temporary directory) and can echo lines to a stream.

# %%
#| export
_events: JsonLines | None = None


def log_dir() -> Path:
    "Where logs go: $TRADINGBOT_LOG_DIR, else <repo>/logs."
    return workspace_path("logs")


def configure(directory: str | Path | None = None,  # the log directory; default log_dir()
              echo: TextIO | None = None,  # also print each line here
              ) -> JsonLines:
    "Point the event log at `directory` (default `log_dir()`), optionally echoing each line to `echo`."
    global _events
    _events = JsonLines(Path(directory or log_dir()) / "events", "events", echo=echo)
    return _events


def log_event(event: str,  # snake_case event name, past tense for what happened
              **fields: Any,  # the record's fields (any JSON-able values; see `to_jsonable`)
              ) -> dict:
    "Write one structured event (`ts`, `event`, fields) to the event log and return the record."
    return (_events or configure()).write(event, **fields)


# %%
with tempfile.TemporaryDirectory() as d:
    configure(d)
    os.environ["TELEGRAM_BOT_TOKEN"] = "123456:ABCDEF"
    rec = log_event("notifier_failed", error="POST https://api.telegram.org/bot123456:ABCDEF/sendMessage")
    del os.environ["TELEGRAM_BOT_TOKEN"]
    (f,) = (Path(d) / "events").iterdir()
    text = f.read_text()
    assert "123456:ABCDEF" not in text
    test_eq(read_jsonl(f)[0]["error"], "POST https://api.telegram.org/bot***/sendMessage")
    test_eq(rec["event"], "notifier_failed")
    _events = None
configure(tempfile.mkdtemp());
