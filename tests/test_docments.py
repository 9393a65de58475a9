"""Every public parameter of the research modules has a docment (a `# comment` beside it in the signature).

`show_doc` and the docs site render these comments as the API reference; a parameter without one is a
parameter nobody can look up. For each module below, every name in `__all__` that is defined in that
module is checked: a function (numba dispatchers through `.py_func`), a class (its `__init__`, or its
fields for a dataclass) and each public method defined on the class. `self`/`cls`, `*args` and
`**kwargs` are exempt. A failure lists every undocumented `module.function(param)`.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect

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
)

_EXEMPT_KINDS = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _plain(obj):
    "The Python function behind a numba dispatcher, staticmethod or classmethod; else `obj`."
    obj = getattr(obj, "__func__", obj)
    return getattr(obj, "py_func", obj)


def _undocumented(func, where: str) -> list[str]:
    "`where(param)` for every parameter of `func` that has no docment."
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin: nothing to document here
        return []
    docs = docments(func, full=True)
    return [f"{where}({name})" for name, p in params.items()
            if name not in ("self", "cls") and p.kind not in _EXEMPT_KINDS
            and not (docs.get(name) and (docs[name].docment or "").strip())]


def _class_members(cls) -> list[tuple[str, object]]:
    "(qualified name, function) for the class's constructor and the public methods it defines itself."
    out = [(cls.__name__, cls)] if dataclasses.is_dataclass(cls) else []
    for name, member in vars(cls).items():
        if name == "__init__" and not dataclasses.is_dataclass(cls) or not name.startswith("_"):
            func = _plain(member)
            if inspect.isfunction(func):
                out.append((f"{cls.__name__}.{name}", func))
    return out


def _members(module) -> list[tuple[str, object]]:
    "(qualified name, function) for every public callable the module defines and exports."
    out = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        plain = _plain(obj)
        if getattr(plain, "__module__", None) != module.__name__:
            continue  # constants, and names another module defines (checked there)
        if inspect.isclass(plain):
            out += _class_members(plain)
        elif inspect.isfunction(plain):
            out.append((name, plain))
    return out


@pytest.mark.parametrize("module_name", RESEARCH_MODULES)
def test_every_public_parameter_has_a_docment(module_name):
    module = importlib.import_module(module_name)
    members = _members(module)
    assert members, f"{module_name} exports no functions or classes: is the list of modules stale?"
    missing = [m for name, func in members for m in _undocumented(func, f"{module_name}.{name}")]
    assert not missing, (f"{len(missing)} public parameter(s) without a docment (put each parameter on its own "
                         f"line with a trailing '# what it is, units'):\n  " + "\n  ".join(missing))


def test_the_check_sees_a_missing_docment():
    "The checker itself: a shared line documents only its last parameter, a bare one none."
    def shared(a: int, b: int,  # both?
               c: int):
        "Example."
    assert _undocumented(shared, "m.shared") == ["m.shared(a)", "m.shared(c)"]


@pytest.mark.parametrize("module_name", RESEARCH_MODULES)
def test_every_public_callable_has_a_one_line_docstring(module_name):
    module = importlib.import_module(module_name)
    missing = []
    for name, obj in _members(module):
        if name.endswith(".__init__"):
            continue  # the class's docstring says what it is
        doc = obj.__doc__ or ""
        if dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}("):
            doc = ""  # the signature dataclass writes when the class has no docstring
        if not doc.strip() or "\n" in doc.strip():
            missing.append(f"{module_name}.{name}")
    assert not missing, "public callables without a one-line docstring:\n  " + "\n  ".join(missing)
