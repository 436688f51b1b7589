"""CPython's ``importlib.util.LazyLoader`` race (gh-114763, see
``lazy_module_attr``) fixed as https://github.com/python/cpython/pull/114781
fixes it, in essence: the load runs under a lock, re-checked inside, and
the module is marked loaded only after its namespace is filled."""

from __future__ import annotations

import threading
from types import SimpleNamespace

BUG = False
DESCRIPTION = "importlib LazyLoader fixed (gh-114781): load under a lock, mark loaded after"


def setup() -> SimpleNamespace:
    return SimpleNamespace(loaded=False, namespace={}, results=[], lock=threading.Lock())


def exec_module(s: SimpleNamespace) -> None:
    s.namespace["HTTPStatus"] = "HTTPStatus"
    s.namespace["ACCEPTED"] = 202


def get_attr(s: SimpleNamespace, name: str) -> object:
    if not s.loaded:
        with s.lock:
            if not s.loaded:
                exec_module(s)
                s.loaded = True
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
