# %% [markdown]
# # Files and JSON
#
# > Atomic writes that a crash never tears, and the one encoder that turns any nested result into plain JSON (NaN as null, infinities as strings, floats bit-exact).

# %%
#| default_exp fileio

# %% [markdown]
# Two things every module that persists something needs, written once:
#
# - **atomic writes**: a config file, `runtime.json`, a parquet cache or a report record is either the old
#   file or the new one after a crash, never half of each;
# - **plain JSON**: results carry NaN (no trade yet), infinities (a profit factor without losses), numpy
#   scalars, timestamps and paths. `to_jsonable` turns them into values `json.dumps(..., allow_nan=False)`
#   accepts, and `json_float` reads a float field back, bit for bit.

# %%
#| export
from __future__ import annotations

import datetime as dt
import json
import math
import os
import tempfile
from enum import Enum
from pathlib import Path, PurePath
from typing import Any, Callable

import numpy as np

# %%
#| hide
from fastcore.test import test_eq, test_fail
from hypothesis import given, settings
from hypothesis import strategies as st


# %% [markdown]
# ## Atomic writes
# The content goes to a temp file in the target's directory (a rename across file systems is not
# atomic), is flushed and fsynced, then `os.replace`s the target. Only the fsync of the directory makes
# the rename itself survive a power cut. A temp file left by a kill mid-write starts with a dot and is
# never read.

# %%
#| export
def fsync_dir(directory: str | Path,  # the directory whose entries (a rename inside it) must reach the disk
              ) -> None:
    "Persist a directory's entries (a rename inside it) to disk."
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path,  # the file to replace (its directory is created)
                 write: Callable[[Any], Any],  # called with the open temp file; writes the whole content
                 binary: bool = False,  # open the temp file in binary mode (parquet, pickles)
                 ) -> None:
    "Call `write(file)` on a temp file beside `path`, fsync, then replace `path`: readers see old or new, never torn."
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path,  # the file to replace
                      text: str,  # its whole new content (UTF-8)
                      ) -> None:
    "Write `text` to `path` atomically (see `atomic_write`)."
    atomic_write(path, lambda fh: fh.write(text))


# %% [markdown]
# A write that fails half-way leaves the old content and no temp file:

# %%
with tempfile.TemporaryDirectory() as d:
    p = Path(d) / "sub" / "doc.json"
    atomic_write_text(p, '{"v": 1}\n')
    test_eq(p.read_text(), '{"v": 1}\n')

    def torn(fh):
        fh.write('{"v": 2')
        raise OSError("disk full")

    test_fail(lambda: atomic_write(p, torn), contains="disk full")
    test_eq(p.read_text(), '{"v": 1}\n')
    test_eq([f.name for f in p.parent.iterdir()], ["doc.json"])
    atomic_write(p, lambda fh: fh.write(b"\x00\x01"), binary=True)
    test_eq(p.read_bytes(), b"\x00\x01")


# %% [markdown]
# ## Plain JSON
# The standard library writes NaN and infinities as `NaN` / `Infinity`, which is not JSON (and
# `allow_nan=False` refuses them). `to_jsonable` maps NaN to `null` and ±inf to the strings `"inf"` /
# `"-inf"`, so a reader can tell "no value" from "unbounded". Finite floats are left as they are:
# `json.dumps` writes their shortest `repr`, which reads back as the same bits. numpy scalars and
# arrays become Python numbers and lists, timestamps ISO-8601 strings (NaT `null`), paths strings,
# sets sorted lists, enums their value; dict keys become strings as JSON would write them.

# %%
#| export
def to_jsonable(obj: Any,  # a nested structure: dicts, lists, numbers, numpy, timestamps, paths, sets, enums
                fallback: Callable[[Any], Any] | None = None,  # encodes a type not listed; None raises TypeError
                ) -> Any:  # plain JSON: dict, list, str, int, finite float, bool or None
    "`obj` as plain JSON: NaN -> None, ±inf -> 'inf'/'-inf', numpy -> Python, timestamps -> ISO-8601, Path -> str."
    if isinstance(obj, Enum):
        return to_jsonable(obj.value, fallback)
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return _float(obj)
    if isinstance(obj, dict):
        return {_key(k, fallback): to_jsonable(v, fallback) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, fallback) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return _sorted([to_jsonable(v, fallback) for v in obj])
    if isinstance(obj, np.ndarray):
        numeric = obj.dtype.kind in "biuf"
        return to_jsonable(obj.tolist() if numeric else [v for v in obj], fallback)
    if isinstance(obj, np.datetime64):
        return None if np.isnat(obj) else str(np.datetime_as_string(obj))
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item(), fallback)
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (dt.date, dt.time)) or hasattr(obj, "isoformat"):
        return None if obj != obj else obj.isoformat()  # NaT is the one timestamp unequal to itself
    if fallback is not None:
        return to_jsonable(fallback(obj))
    raise TypeError(f"to_jsonable: no JSON form for {type(obj).__name__} ({obj!r:.80}); pass fallback=str to keep its text")


def _float(x: float) -> float | str | None:
    if math.isnan(x):
        return None
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x)  # a float subclass (numpy float64) as a plain float


def _key(key: Any, fallback: Callable | None) -> str:
    "A dict key as JSON writes it: strings stay, numbers, booleans and null become their JSON text."
    plain = to_jsonable(key, fallback)
    return plain if isinstance(plain, str) else json.dumps(plain, sort_keys=True)


def _sorted(values: list) -> list:
    "A set's members in a stable order: their natural order, else that of their JSON text."
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda v: json.dumps(v, sort_keys=True))


# %% [markdown]
# `json_float` is the inverse for one float field: what `to_jsonable` wrote for a float, read back.

# %%
#| export
def json_float(x: float | int | str | None,  # a value `to_jsonable` wrote for a float
               ) -> float:
    "The float `to_jsonable` encoded: None -> nan, 'inf'/'-inf' -> ±inf, a number -> itself."
    if x is None:
        return math.nan
    if x in ("inf", "-inf"):
        return float(x)
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise ValueError(f"not a JSON float: {x!r} (expected a number, null, 'inf' or '-inf')")
    return float(x)


# %%
import pandas as pd
from enum import IntEnum


class Colour(str, Enum):
    RED = "red"


class Level(IntEnum):
    HIGH = 2


rec = {"pf": math.inf, "loss": -np.inf, "sharpe": np.float64("nan"), "n": np.int64(3), "ok": np.bool_(True),
       "ts": pd.Timestamp("2024-01-02 03:00", tz="UTC"), "nat": pd.NaT, "day": dt.date(2024, 1, 2),
       "path": Path("/tmp/x.json"), "tags": {"b", "a"}, "side": Colour.RED, "lvl": Level.HIGH,
       "w": np.array([[1.5, np.nan], [np.inf, 0.0]]), "when": np.array(["2024-01-02T00:00"], dtype="datetime64[m]"),
       1: "int key", (1, 2): "tuple key", None: "null key"}
out = to_jsonable(rec)
test_eq(out, {"pf": "inf", "loss": "-inf", "sharpe": None, "n": 3, "ok": True, "ts": "2024-01-02T03:00:00+00:00",
              "nat": None, "day": "2024-01-02", "path": "/tmp/x.json", "tags": ["a", "b"], "side": "red", "lvl": 2,
              "w": [[1.5, None], ["inf", 0.0]], "when": ["2024-01-02T00:00"],
              "1": "int key", "[1, 2]": "tuple key", "null": "null key"})
test_eq(type(out["lvl"]), int)  # an IntEnum becomes a plain int
test_eq(json.loads(json.dumps(out, allow_nan=False)), out)  # already plain: a JSON round trip changes nothing
test_fail(lambda: to_jsonable({"x": object()}), contains="no JSON form for object")
test_eq(to_jsonable({"x": dt.timedelta(seconds=3)}, fallback=str), {"x": "0:00:03"})
test_eq([json_float(v) for v in (None, "inf", "-inf", 2, 0.5)][1:], [math.inf, -math.inf, 2.0, 0.5])
assert math.isnan(json_float(None))
test_fail(lambda: json_float("1.5"), contains="not a JSON float")
test_fail(lambda: json_float(True), contains="not a JSON float")


# %% [markdown]
# Every float, finite or not, survives `to_jsonable` → strict JSON text → `json_float` with the same
# bits (NaN as a NaN):

# %%
def _bits(x: float) -> bytes:
    return np.float64(x).tobytes()


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def _float_round_trip(x):
    back = json_float(json.loads(json.dumps(to_jsonable(x), allow_nan=False)))
    assert math.isnan(back) if math.isnan(x) else _bits(back) == _bits(x), (x, back)


_float_round_trip()

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
                     max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(_json)
def _plain_is_json(x):
    out = to_jsonable(x)
    text = json.dumps(out, allow_nan=False)  # never raises: no NaN or inf left anywhere
    assert json.loads(text) == out


_plain_is_json()
