"""A real-world race: CPython's ``importlib.util.LazyLoader`` (gh-114763,
https://github.com/python/cpython/issues/114763, fixed by
https://github.com/python/cpython/pull/114781), transcribed. The first
attribute access on a lazily loaded module turns it into a plain module
(``self.__class__ = types.ModuleType``) *before* running the module's code
and filling its namespace; a second thread touching the module in between
finds it "loaded", skips the load, and gets an ``AttributeError`` for a name
the module does define."""

from __future__ import annotations

from types import SimpleNamespace

BUG = True
DESCRIPTION = "importlib LazyLoader (gh-114763): marked loaded before its namespace is filled"


def setup() -> SimpleNamespace:
    return SimpleNamespace(loaded=False, namespace={}, results=[])


def exec_module(s: SimpleNamespace) -> None:
    # the module's code, defining its names one after another
    s.namespace["HTTPStatus"] = "HTTPStatus"
    s.namespace["ACCEPTED"] = 202


def get_attr(s: SimpleNamespace, name: str) -> object:
    if not s.loaded:  # still a _LazyModule: this access triggers the load
        s.loaded = True  # __class__ reset first ...
        exec_module(s)  # ... the namespace filled after
    if name not in s.namespace:
        raise AttributeError(f"module 'http' has no attribute {name!r}")
    return s.namespace[name]


def user_1(s: SimpleNamespace) -> None:
    s.results.append(get_attr(s, "ACCEPTED"))


def user_2(s: SimpleNamespace) -> None:
    s.results.append(get_attr(s, "ACCEPTED"))


tasks = [user_1, user_2]


def invariant(s: SimpleNamespace) -> bool:
    return bool(s.results == [202, 202])
