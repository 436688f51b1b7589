"""The hot path of the coroutines runtime's lock in C; see _ccoroutines.c."""

from collections import deque
from typing import Any

class Held:
    """What ``yield from lock`` returns: a context manager whose exit releases."""

    def __enter__(self) -> None: ...
    def __exit__(self, *exc_info: object) -> None: ...

class ParkBase:
    """A waiting task's park: owner, condition, deadline, woken."""

    owner: Any
    condition: str
    deadline: float | None
    woken: bool

class RunningBase:
    """A task being run: its place, name, generator and park."""

    index: int
    name: str
    generator: Any
    park: Any
    def __init__(self, index: int, name: str, generator: Any, park: Any = None) -> None: ...

class LockBase:
    """The coroutines lock's state, ``release()`` and no-wait acquire."""

    _locked: bool
    @property
    def _held(self) -> Held: ...
    def _bind(self, condition: str, waiters: deque[Any], woken: dict[str, int], /) -> None: ...
    def release(self) -> None: ...
    def _rewait(self, park: Any, /) -> bool: ...
    def __iter__(self) -> Any: ...

TAKE: int
YIELDED: int
RETURNED: int
RAISED: int

def round_robin(live: list[Any], turn: int, dropped: list[str], /) -> tuple[int, int, Any]: ...
