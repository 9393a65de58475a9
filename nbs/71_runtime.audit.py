# %% [markdown]
# # Audit log
#
# > An append-only, hash-chained JSON-lines audit log: any edited, deleted or reordered record breaks the chain, and `python -m tradingbot.runtime.audit verify PATH` says where.

# %%
#| default_exp runtime.audit

# %% [markdown]
# Seed 004's hash chain: every record carries `prev_hash` (the previous record's `hash`, or 64 zeros for
# the first) and `hash`, the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the record
# without its `hash` — so the previous hash is inside what is hashed. A record also carries `seq`
# (1, 2, …), `ts` and `event`. Fields are scrubbed of secrets (`jsonlog.scrub`) and made plain JSON
# *before* hashing, so the stored line is exactly what was hashed.
#
# The log lives at `<logs>/audit/audit.jsonl` with the other logs; it is one file, never rolled over, so
# the chain never crosses files.
#
# **What a chain cannot show**: deleting the *last* records leaves a valid, shorter chain. Anchor the
# latest `hash` elsewhere (a Telegram message, a report) when that matters.

# %%
#| export
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from tradingbot.jsonlog import _iso, log_event, to_json_line, utc_now
from tradingbot.paths import workspace_path

# %%
#| hide
import tempfile

from fastcore.test import test_eq, test_fail

from tradingbot import jsonlog

jsonlog.configure(tempfile.mkdtemp())  # the examples' events stay out of the repository's logs/

# %%
#| export
GENESIS = "0" * 64


def canonical_json(record: dict) -> str:
    "The one serialisation that is hashed: sorted keys, no whitespace, UTF-8 kept."
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def record_hash(record: dict) -> str:
    "SHA-256 of the canonical JSON of `record` without its `hash` (so `prev_hash` is covered)."
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def audit_path() -> Path:
    "Default audit log: <logs>/audit/audit.jsonl ($TRADINGBOT_LOG_DIR honoured)."
    return workspace_path("logs") / "audit" / "audit.jsonl"


# %%
r = {"seq": 1, "event": "x", "prev_hash": GENESIS}
test_eq(record_hash(r), record_hash({**r, "hash": "anything"}))
test_eq(record_hash(r) == record_hash({**r, "prev_hash": "1" * 64}), False)
test_eq(canonical_json({"b": 1, "a": "é"}), '{"a":"é","b":1}')


# %% [markdown]
# ## Verifying
# `verify_chain` reads the file line by line and stops at the first line that is not JSON, lacks the chain
# fields, has the wrong `seq`, points at the wrong previous hash, or whose `hash` does not match its body.
# Lines are numbered from 1, as an editor shows them.

# %%
#| export
def _check(line: str, prev_hash: str, seq: int) -> tuple[dict | None, str | None]:
    "The record on `line` and None, or None and why it breaks the chain."
    if not line.endswith("\n"):
        return None, "torn last line (no newline): a write was interrupted"
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg})"
    if not isinstance(rec, dict) or not {"seq", "prev_hash", "hash"} <= rec.keys():
        return None, "not an audit record (needs seq, prev_hash, hash)"
    if rec["seq"] != seq:
        return None, f"seq is {rec['seq']!r}, expected {seq} (a record was deleted, inserted or moved)"
    if rec["prev_hash"] != prev_hash:
        return None, "prev_hash does not match the previous record's hash (a record was deleted or moved)"
    if record_hash(rec) != rec["hash"]:
        return None, "hash does not match the record (the record was edited)"
    return rec, None


def verify_chain(path: str | Path,  # an audit log
                 ) -> tuple[bool, int | None, str]:  # (ok, first bad line number or None, reason)
    "Check every link of the chain in `path`."
    prev_hash, seq = GENESIS, 1
    with open(path, encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            rec, reason = _check(line, prev_hash, seq)
            if reason:
                return False, lineno, reason
            prev_hash, seq = rec["hash"], seq + 1
    return True, None, f"{seq - 1} records, chain intact"


# %% [markdown]
# ## Appending
# `AuditLog(path)` resumes the chain from the file's last line. Each record is written by a single
# `write` on a file opened for appending, then flushed and fsynced, so a crash leaves at most one
# *unterminated* last line. On opening, such a torn tail (it never became a record: the `append` that
# wrote it did not return) is copied to `audit.jsonl.torn-<ts>`, cut off, and `audit_torn_tail_repaired`
# is logged; the chain continues from the last whole record. A last line that is whole but does not check
# is not a crash but damage: `AuditLog` refuses to append after it (`AuditError`) so the evidence stays.

# %%
#| export
class AuditError(RuntimeError):
    "The audit log is damaged in a way a crash cannot explain; appending would hide it."


def _split_tail(data: bytes) -> tuple[bytes, bytes]:
    "(whole lines, unterminated tail) of a file's bytes."
    cut = data.rfind(b"\n") + 1
    return data[:cut], data[cut:]


def _repair_torn_tail(path: Path, whole: bytes, tail: bytes) -> None:
    stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.torn-{stamp}")
    aside.write_bytes(tail)
    with open(path, "r+b") as fh:
        fh.truncate(len(whole))
        os.fsync(fh.fileno())
    log_event("audit_torn_tail_repaired", path=str(path), kept_in=str(aside), bytes=len(tail))


# %%
#| export
class AuditLog:
    "Append-only hash-chained JSON-lines log at `path` (default `audit_path()`)."

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path or audit_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.last_hash, self.seq = self._resume()

    def _resume(self) -> tuple[str, int]:
        "(hash, seq) of the last whole record, after cutting off a torn tail."
        data = self.path.read_bytes() if self.path.exists() else b""
        whole, tail = _split_tail(data)
        if tail:
            _repair_torn_tail(self.path, whole, tail)
        lines = whole.decode("utf-8").splitlines(keepends=True)
        if not lines:
            return GENESIS, 0
        try:
            last = json.loads(lines[-1])
            ok = isinstance(last, dict) and record_hash(last) == last.get("hash") and isinstance(last.get("seq"), int)
        except (json.JSONDecodeError, TypeError, ValueError):
            ok = False
        if not ok or last["seq"] != len(lines):
            raise AuditError(f"{self.path}: line {len(lines)} is damaged; run "
                             f"`python -m tradingbot.runtime.audit verify {self.path}` and keep the file as evidence")
        return last["hash"], last["seq"]

    def append(self, event: str, **fields: Any) -> dict:
        "Chain, write and fsync one record; return it as stored."
        with self._lock:
            plain = json.loads(to_json_line({"ts": _iso(utc_now()), "event": event, **fields}))  # scrubbed first
            record = {**plain, "seq": self.seq + 1, "prev_hash": self.last_hash}
            record["hash"] = record_hash(record)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(canonical_json(record) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self.last_hash, self.seq = record["hash"], record["seq"]
            return record


# %% [markdown]
# A short log verifies; a restart resumes the chain; secrets are masked before they are hashed:

# %%
d = Path(tempfile.mkdtemp())
p = d / "audit.jsonl"
log = AuditLog(p)
os.environ["BYBIT_API_KEY"] = "KEY-12345"
r1 = log.append("order_submitted", client_order_id="rsi2-BTC-1", note="signed with KEY-12345")
del os.environ["BYBIT_API_KEY"]
r2 = log.append("order_filled", qty=0.5, api_key="oops")
test_eq((r1["prev_hash"], r2["prev_hash"], r2["seq"]), (GENESIS, r1["hash"], 2))
test_eq((r1["note"], r2["api_key"]), ("signed with ***", "***"))
assert "KEY-12345" not in p.read_text() and "oops" not in p.read_text()
test_eq(verify_chain(p), (True, None, "2 records, chain intact"))
r3 = AuditLog(p).append("kill_switch_engaged", asset="forex")  # after a restart
test_eq((r3["seq"], r3["prev_hash"]), (3, r2["hash"]))
test_eq(verify_chain(p)[0], True)

# %% [markdown]
# Editing any field, deleting a line or swapping two lines is caught at the right line:

# %%
good = p.read_text().splitlines(keepends=True)


def verify_text(lines):
    p.write_text("".join(lines))
    return verify_chain(p)


edited = json.loads(good[1]); edited["qty"] = 5.0
test_eq(verify_text([good[0], json.dumps(edited) + "\n", good[2]])[:2], (False, 2))
resealed = {**edited, "hash": record_hash(edited)}  # re-hashing the edit breaks the next link instead
test_eq(verify_text([good[0], json.dumps(resealed) + "\n", good[2]])[:2], (False, 3))
test_eq(verify_text([good[0], good[2]])[:2], (False, 2))
test_eq(verify_text([good[1], good[2]])[:2], (False, 1))
test_eq(verify_text([good[0], good[2], good[1]])[:2], (False, 2))
for field in ("ts", "event", "client_order_id", "prev_hash", "seq"):
    rec = json.loads(good[0]); rec[field] = "x"
    test_eq(verify_text([json.dumps(rec) + "\n"] + good[1:])[:2], (False, 1))

# %% [markdown]
# A crash mid-write leaves a torn tail: `verify_chain` reports it, the next `AuditLog` keeps it aside and
# carries on. A damaged whole line stops appending:

# %%
p.write_text("".join(good) + good[2][:40])
test_eq(verify_chain(p), (False, 4, "torn last line (no newline): a write was interrupted"))
r4 = AuditLog(p).append("restarted")
test_eq((r4["seq"], r4["prev_hash"]), (4, json.loads(good[2])["hash"]))
test_eq(verify_chain(p)[0], True)
test_eq(next(d.glob("audit.jsonl.torn-*")).read_text(), good[2][:40])

p.write_text(good[0] + good[1].replace('"qty":0.5', '"qty":9'))
test_fail(lambda: AuditLog(p), contains="line 2 is damaged")


# %% [markdown]
# ## From the command line
# `python -m tradingbot.runtime.audit verify PATH` prints `ok: …` and exits 0, or the first bad line and
# exits 1.

# %%
#| export
def main(argv: list[str] | None = None) -> int:
    "CLI: `verify PATH` -> exit 0 when the chain is intact, 1 otherwise."
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "verify":
        print("usage: python -m tradingbot.runtime.audit verify PATH", file=sys.stderr)
        return 2
    path = Path(argv[1])
    if not path.is_file():
        print(f"{path}: no such audit log", file=sys.stderr)
        return 2
    ok, line, reason = verify_chain(path)
    print(f"ok: {path}: {reason}" if ok else f"BAD: {path}: line {line}: {reason}")
    return 0 if ok else 1


# %%
#| export
#| eval: false
if __name__ == "__main__":
    sys.exit(main())

# %%
import subprocess

ok = subprocess.run([sys.executable, "-m", "tradingbot.runtime.audit", "verify", str(p)], capture_output=True, text=True)
test_eq((ok.returncode, ok.stdout.startswith("BAD:") and "line 2" in ok.stdout), (1, True))
p.write_text("".join(good))
ok = subprocess.run([sys.executable, "-m", "tradingbot.runtime.audit", "verify", str(p)], capture_output=True, text=True)
test_eq((ok.returncode, ok.stdout.strip()), (0, f"ok: {p}: 3 records, chain intact"))
test_eq(main(["verify", str(d / "missing.jsonl")]), 2)
