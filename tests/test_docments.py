"""Every public parameter of the research modules has a docment (a `# comment` beside it in the signature).

`show_doc` and the docs site render these comments as the API reference; a parameter without one is a
parameter nobody can look up. For each module below, every name in `__all__` that is defined in that
module is checked: a function (numba dispatchers through `.py_func`, decorated functions through
`__wrapped__`), a class (its docstring; its fields for a dataclass or a NamedTuple, else its `__init__`)
and each public method, property or cached property the class exposes that the class itself or a private
base of the same module defines (what `RSI2` inherits from `_MeanReversion` is `RSI2`'s public API; what
it inherits from `Strategy` is checked at `Strategy`). `self`/`cls`, `*args` and `**kwargs` are exempt.
A failure lists every undocumented `module.function(param)`.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import io
import textwrap
import tokenize
from typing import NamedTuple

import pytest
from fastcore.docments import docments

# The research modules whose public parameters must all be documented (issue 9).
RESEARCH_MODULES = (
    "tradingbot.data.timeframes",
    "tradingbot.data.store",
    "tradingbot.data.samples",
    "tradingbot.data.feeds",
    "tradingbot.data.synthetic",
    "tradingbot.indicators._nb",
    "tradingbot.indicators.registry",
    "tradingbot.indicators.composite",
    "tradingbot.indicators.core",
    "tradingbot.labeling",
    "tradingbot.sample_weights",
    "tradingbot.validation.backtest",
    "tradingbot.validation._backtest_nb",
    "tradingbot.validation.report",
    "tradingbot.validation.metrics",
    "tradingbot.validation.splits",
    "tradingbot.validation.overfit",
    "tradingbot.validation.stress",
    "tradingbot.validation.gate",
    "tradingbot.validation.pipeline",
    "tradingbot.strategies.base",
    "tradingbot.strategies.rules",
)

_EXEMPT_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _plain(obj):
    "The Python function behind a property, cached property, staticmethod, classmethod, numba dispatcher or wrapper."
    if isinstance(obj, property):
        obj = obj.fget
    elif isinstance(obj, functools.cached_property):
        obj = obj.func
    obj = getattr(obj, "__func__", obj)
    obj = getattr(obj, "py_func", obj)
    return inspect.unwrap(obj) if callable(obj) and not inspect.isclass(obj) else obj


def _is_namedtuple(obj) -> bool:
    return inspect.isclass(obj) and issubclass(obj, tuple) and hasattr(obj, "_fields")


def _field_docments(cls) -> dict[str, str | None]:
    "The docment of each field of a NamedTuple: the comment on its line, or the comment lines right above it."
    source = textwrap.dedent(inspect.getsource(cls))
    comments = {tok.start[0]: tok.string[1:].strip() for tok in
                tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    lines, found = source.splitlines(), {}
    for node in ast.parse(source).body[0].body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line, doc = node.lineno, comments.get(node.lineno)
            while not doc and line - 1 in comments and lines[line - 2].lstrip().startswith("#"):
                line -= 1
                doc = comments[line]
            found[node.target.id] = doc or None
    return {name: found.get(name) for name in cls._fields}


def _undocumented(obj, where: str) -> list[str]:
    "`where(param)` for every parameter of a function, or field of a dataclass or NamedTuple, without a docment."
    if _is_namedtuple(obj):
        docs = _field_docments(obj)
    elif inspect.isclass(obj) and not dataclasses.is_dataclass(obj):
        return []  # its parameters are its `__init__`'s, checked as a member of their own
    else:
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):  # a builtin: nothing to document here
            return []
        full = docments(obj, full=True)
        docs = {name: full[name].docment if name in full else None for name, p in params.items()
                if name not in ("self", "cls") and p.kind not in _EXEMPT_KINDS}
    return [f"{where}({name})" for name, doc in docs.items() if not (doc or "").strip()]


def _class_members(cls, module_name: str) -> list[tuple[str, object]]:
    "(qualified name, object): the class, then the constructor and public members that `module_name` defines for it."
    out = [(cls.__name__, cls)]
    for name in dir(cls):
        if name.startswith("_") and name != "__init__":
            continue
        owner = next(k for k in cls.__mro__ if name in vars(k))
        private_base = owner.__module__ == module_name and owner.__name__.startswith("_")
        if owner is not cls and not private_base:
            continue  # inherited from a public class: checked there
        if name == "__init__" and (dataclasses.is_dataclass(cls) or _is_namedtuple(cls)):
            continue  # generated from the fields, which are checked with the class
        func = _plain(vars(owner)[name])
        if inspect.isfunction(func):
            out.append((f"{owner.__name__}.{name}", func))
    return out


def _members(module) -> list[tuple[str, object]]:
    "(qualified name, object) for every public function and class the module defines and exports, and their members."
    out = {}
    for name in getattr(module, "__all__", ()):
        plain = _plain(getattr(module, name))
        if getattr(plain, "__module__", None) != module.__name__:
            continue  # constants, and names another module defines (checked there)
        if inspect.isclass(plain):
            out.update(_class_members(plain, module.__name__))  # a private base's method is listed once
        elif inspect.isfunction(plain):
            out[name] = plain
    return list(out.items())


@pytest.mark.parametrize("module_name", RESEARCH_MODULES)
def test_every_public_parameter_has_a_docment(module_name):
    module = importlib.import_module(module_name)
    members = _members(module)
    assert members, f"{module_name} exports no functions or classes: is the list of modules stale?"
    missing = [m for name, obj in members for m in _undocumented(obj, f"{module_name}.{name}")]
    assert not missing, (f"{len(missing)} public parameter(s) without a docment (put each parameter on its own "
                         f"line with a trailing '# what it is, units'):\n  " + "\n  ".join(missing))


def _auto_doc(obj) -> bool:
    "True for the docstring a dataclass or NamedTuple writes itself when the class has none: its signature."
    return (dataclasses.is_dataclass(obj) or _is_namedtuple(obj)) and (obj.__doc__ or "").startswith(f"{obj.__name__}(")


@pytest.mark.parametrize("module_name", RESEARCH_MODULES)
def test_every_public_callable_has_a_one_line_docstring(module_name):
    module = importlib.import_module(module_name)
    missing = []
    for name, obj in _members(module):
        if name.endswith(".__init__"):
            continue  # the class's docstring says what it is
        doc = "" if _auto_doc(obj) else (obj.__doc__ or "")
        if not doc.strip() or "\n" in doc.strip():
            missing.append(f"{module_name}.{name}")
    assert not missing, "public callables without a one-line docstring:\n  " + "\n  ".join(missing)


# The checker itself, on examples of each kind it walks.

def test_the_check_sees_a_missing_docment():
    "A shared line documents only its last parameter, a bare one none."
    def shared(a: int, b: int,  # both?
               c: int):
        "Example."
    assert _undocumented(shared, "m.shared") == ["m.shared(a)", "m.shared(c)"]
    assert _undocumented(functools.cache(shared), "m.cached") == ["m.cached(a)", "m.cached(c)"]


class _Row(NamedTuple):
    "A NamedTuple: its fields are its parameters."
    a: int  # documented
    b: int
    # documented above
    c: float = 0.0
    d: str = "x#y"  # a '#' inside a default is not a comment; this is


class _Shared:
    "A private base whose public methods its public subclasses expose."

    def shared(self, x: int):
        "Example."

    @property
    def size(self) -> int:
        return 1


class Public(_Shared):
    "Example."

    def __init__(self, y: int):
        pass

    @functools.cached_property
    def rows(self) -> int:
        "Example."
        return 1

    @classmethod
    def make(cls, z: int,  # documented
             w: int):
        "Example."


class Child(Public):
    "Inherits from a public class, which is checked on its own."


def test_the_check_walks_namedtuples_classes_and_their_members():
    assert _undocumented(_Row, "m._Row") == ["m._Row(b)"]
    assert _field_docments(_Row)["d"] == "a '#' inside a default is not a comment; this is"
    members = dict(_class_members(Public, __name__))
    assert set(members) == {"Public", "Public.__init__", "Public.rows", "Public.make", "_Shared.shared",
                            "_Shared.size"}
    assert [m for name, obj in members.items() for m in _undocumented(obj, name)] == [
        "Public.__init__(y)", "Public.make(w)", "_Shared.shared(x)"]
    assert [name for name, obj in members.items() if not obj.__doc__] == ["Public.__init__", "_Shared.size"]
    # what Child inherits from Public is checked at Public; a private base's members under the base's name, which
    # `_members` lists once however many classes expose them
    assert [name for name, _ in _class_members(Child, __name__)] == ["Child", "_Shared.shared", "_Shared.size"]
    assert _auto_doc(NamedTuple("Bare", [("a", int)])) and not _auto_doc(_Row)
