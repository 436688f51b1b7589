"""Robust mutexes, futexes and an atomic add on shared memory (Linux); see _robust.c."""

from collections.abc import Callable
from typing import Any

MUTEX_SIZE: int
MUTEX_ALIGNMENT: int
QUEUE_STATE: tuple[str, ...]

class Mutex:
    """A robust, process-shared mutex living in ``memory``."""

    owner_died: bool
    _memory: Any
    def __init__(self, memory: Any, *, create: bool = False) -> None: ...
    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool: ...
    def release(self) -> None: ...
    def locked(self) -> bool: ...
    def __enter__(self) -> bool: ...
    def __exit__(self, *exc_info: object) -> None: ...

def futex_wait(address: int, expected: int, timeout: float | None, /) -> bool: ...
def futex_wake(address: int, n: int, /) -> int: ...
def add(address: int, delta: int, /) -> int: ...
def set_step_hook(hook: Callable[[], object] | None, /) -> None: ...

class FastPath:
    """A processes queue's put and get when nobody must wait, in C."""

    def __init__(
        self,
        mutex: Mutex,
        keep: object,
        *,
        state: int,
        words: int,
        ring: int,
        ring_size: int,
        active: int,
        sequence: int,
        waiters: int,
        maxsize: float,
        wakes: int,
    ) -> None: ...
    def put(self, data: bytes, /) -> bool: ...
    def get(self) -> tuple[bytes, tuple[int, int]] | None: ...
