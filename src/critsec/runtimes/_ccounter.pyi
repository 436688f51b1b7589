"""The cooperative runtimes' counter in C; see _ccounter.c."""

class Counter:
    """An int counter for tasks that switch only where they yield."""

    value: int
    def __init__(self, initial: int = 0) -> None: ...
    def add(self, delta: int, /) -> int: ...
