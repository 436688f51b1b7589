"""The lesson's second program: the same global counter, each update under a lock."""

from __future__ import annotations

import threading

BUG = False
DESCRIPTION = "the lesson's global counter with each += 1 / -= 1 under one lock"

counter = 10
lock = threading.Lock()


def setup() -> None:
    # A fresh lock per run, made while the tool runs the program, so that a
    # tool which replaces threading.Lock with its own version controls it.
    global counter, lock
    counter = 10
    lock = threading.Lock()


def task_1(state: None) -> None:
    global counter
    for _ in range(2):
        with lock:
            counter += 1


def task_2(state: None) -> None:
    global counter
    for _ in range(3):
        with lock:
            counter -= 1


tasks = [task_1, task_2]


def invariant(state: None) -> bool:
    return counter == 9
