"""Whose code is it? The files the explorer switches inside.

A schedule is small enough to search because only the *user's* code gets
switch points: the standard library, installed packages and critsec
itself run as single steps (a ``queue.Queue.put`` is one step; its
internal locking is not interleaved -- frontrun's and Lincheck's choice
too). Which files are the user's is a predicate, ``user_code(filename) ->
bool``: :func:`default_user_code`, or that plus named modules
(:func:`including`, what ``explore(..., include=...)`` builds). Every
driver asks the same predicate; :func:`generated` marks the code the
standard library makes with ``exec`` (dataclass and namedtuple methods),
which says ``"<string>"`` like the user's own ``exec``; and
:func:`is_sync_api` the libraries whose calls are synchronisation steps
worth a row in a trace.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import site
import sysconfig
import threading
import types
from collections.abc import Callable, Sequence

__all__ = [
    "EXPLORE_DIR",
    "RUNTIMES_DIR",
    "default_user_code",
    "generated",
    "including",
    "is_sync_api",
]

EXPLORE_DIR = os.path.dirname(os.path.abspath(__file__))
_CRITSEC_DIR = os.path.dirname(EXPLORE_DIR)


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    dirs.update(site.getsitepackages())
    dirs.add(os.path.dirname(os.__file__))
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


_LIBRARY_DIRS = _library_dirs()
_CRITSEC_PREFIX = os.path.join(os.path.realpath(_CRITSEC_DIR), "")


def default_user_code(filename: str) -> bool:
    """True for a file whose code the explorer switches inside: anything
    but the standard library, installed packages (site-packages) and
    critsec itself (the lab explores its lesson with ``include=``, like any
    library's code). Of the pseudo-files, ``"<frozen ...>"`` is not the user's; the
    others are (``"<stdin>"``, ``"<doctest ...>"``, and ``"<string>"``, what
    ``exec`` and ``compile`` run by default -- less the methods that
    dataclasses and namedtuple generate there: :func:`generated`). Pure:
    safe to call from any thread."""
    if filename.startswith("<"):
        return not filename.startswith("<frozen")
    path = os.path.realpath(filename)
    return not path.startswith((_CRITSEC_PREFIX, *_LIBRARY_DIRS))


def generated(code: types.CodeType) -> bool:
    """Whether ``code`` is a method the standard library generated with
    ``exec`` under the default filename ``"<string>"``: a dataclass's
    (made in ``__create_fn__``) or a namedtuple's ``__new__``. Not the
    user's code, though the filename says nothing."""
    return code.co_filename == "<string>" and (
        code.co_qualname.startswith("__create_fn__") or "_tuple_new" in code.co_names
    )


def _module_paths(name: str) -> tuple[str, ...]:
    """The real paths of module ``name``'s code: its file, or a package's
    directories (each ending in a separator, so that they are prefixes)."""
    if not isinstance(name, str):
        raise TypeError(f"include takes module names (str), got {type(name).__name__}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"include: no module named {name!r} ({exc})") from None
    if spec is None:
        raise ValueError(f"include: no module named {name!r}")
    if spec.submodule_search_locations:
        dirs = spec.submodule_search_locations
        paths = tuple(os.path.join(os.path.realpath(d), "") for d in dirs)
    elif spec.origin and os.path.isfile(spec.origin):
        paths = (os.path.realpath(spec.origin),)
    elif spec.origin == "frozen":  # its code's filename, e.g. "<frozen _collections_abc>"
        return (f"<frozen {name}>",)
    else:
        raise ValueError(f"include: module {name!r} has no Python source to switch inside")
    explorer = os.path.join(os.path.realpath(EXPLORE_DIR), "")
    if any(p.startswith(explorer) or explorer.startswith(p) for p in paths):
        # Its batons and controlled primitives are what makes one task run
        # at a time: switching inside them would break that.
        raise ValueError(f"include: the explorer cannot switch inside its own code ({name!r})")
    return paths


def including(
    modules: Sequence[str], base: Callable[[str], bool] = default_user_code
) -> Callable[[str], bool]:
    """A ``user_code`` predicate: ``base``, plus the code of ``modules`` --
    module names (``"critsec.runtimes._core"``) or package names, which
    include every submodule (``"critsec.runtimes"``); frozen modules too
    (``"_collections_abc"``, where ``MutableMapping.setdefault`` and the
    other mixin methods of ``collections.UserDict`` live). Names are resolved
    now (``ValueError`` for an unknown one); nothing is imported but the
    parents of a dotted name. Pure: safe to call from any thread."""
    if isinstance(modules, str):
        raise TypeError(f"include takes a sequence of module names, not a str: ({modules!r},)")
    paths = tuple(p for name in modules for p in _module_paths(name))
    if not paths:
        return base

    def user_code(filename: str) -> bool:
        if base(filename):
            return True
        if filename.startswith("<"):
            return filename in paths  # a frozen module's
        path = os.path.realpath(filename)
        return any(path == p or (p.endswith(os.sep) and path.startswith(p)) for p in paths)

    return user_code


def is_sync_api(code: types.CodeType) -> bool:
    """Code of ``threading``, ``queue`` or critsec's runtimes: the user's calls
    into it are synchronisation steps worth a row in the trace."""
    return code.co_filename in _SYNC_FILES or code.co_filename.startswith(RUNTIMES_DIR)


_SYNC_FILES = frozenset({threading.__file__, queue.__file__})
RUNTIMES_DIR = os.path.join(_CRITSEC_DIR, "runtimes", "")
