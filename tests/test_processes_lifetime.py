"""Children never outlive the run: the parent killed by real signals.

A parent (a subprocess) runs tasks that block or compute forever and
prints their pids once they run; the test signals the parent and checks,
with a deadline, that no child is left and nothing was left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import critsec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

#: How long the last child may take to go once its parent is gone.
DEADLINE = 5.0

PARENT = textwrap.dedent(
    """
    import os, signal, sys
    import critsec

    def block(q):
        os.write(1, f"{os.getpid()}\\n".encode())
        q.get()

    def compute(lock, counter):
        os.write(1, f"{os.getpid()}\\n".encode())
        while True:
            with lock:
                counter.value += 1

    if __name__ == "__main__":
        rt = critsec.runtime("processes", start_method=sys.argv[1])
        q, lock, counter = rt.queue(), rt.lock(), rt.counter()
        rt.run(critsec.task(block, q), critsec.task(compute, lock, counter))
    """
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def gone_in_time(pids: list[int]) -> list[int]:
    """The pids still alive at the deadline (none, in a passing run)."""
    deadline = time.monotonic() + DEADLINE
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.01)  # waiting for the kernel, not for our own threads
    return left


def dev_shm() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir()}


def left_in_dev_shm(before: set[str], pids: list[int]) -> set[str]:
    """Files that appeared in /dev/shm and belong to ``pids``: the shared
    memory of multiprocessing's heap is ``pym-<pid>-...``. (Other programs
    on the machine may make files there meanwhile: not ours to judge.)"""
    return {name for name in dev_shm() - before if any(f"-{pid}-" in name for pid in pids)}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_no_child_outlives_its_parent(tmp_path: Path, method: str, sig: int) -> None:
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    before = dev_shm()
    parent = subprocess.Popen(
        [sys.executable, str(script), method],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    try:
        children = [int(parent.stdout.readline()) for _ in range(2)]
        os.kill(parent.pid, sig)
        _, stderr = parent.communicate(timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode == -sig
    assert gone_in_time(children) == [], f"children left running after {sig!r}"
    assert "leaked" not in stderr, stderr
    assert left_in_dev_shm(before, [parent.pid, *children]) == set()


def test_the_command_exits_143_on_sigterm_and_stops_its_children() -> None:
    command = [sys.executable, "-m", "critsec", "counter", "-r", "processes", "-n", "100000000"]
    cli = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while len(kids := children_of(cli.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the command has started both tasks
        assert len(kids) >= 2
        cli.send_signal(signal.SIGTERM)
        _, stderr = cli.communicate(timeout=30)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 143
    assert stderr.strip().splitlines() == ["critsec: terminated"]
    assert gone_in_time(kids) == []


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                found.append(int(entry))
    return found


class _ParentsHandlerRan(Exception):
    pass


def _parents_handler(signum: int, frame: object) -> None:
    raise _ParentsHandlerRan(signum)


def signal_myself(sig: int) -> str:
    os.kill(os.getpid(), sig)
    return "still running"


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_task_ends_on_sigterm_whatever_handler_its_parent_had(method: str) -> None:
    # The `critsec` command raises on SIGTERM; a forked task inherits that
    # handler, and the parent's terminate() would then raise inside the task
    # (or print a traceback from multiprocessing's start-up) instead of
    # ending it.
    previous = signal.signal(signal.SIGTERM, _parents_handler)
    try:
        rt = critsec.runtime("processes", start_method=method)
        with pytest.raises(critsec.TaskError) as failure:
            rt.run(critsec.task(signal_myself, signal.SIGTERM))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "killed by signal SIGTERM" in str(failure.value)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_task_keeps_an_ignored_sighup_and_drops_a_python_handler(method: str) -> None:
    rt = critsec.runtime("processes", start_method=method)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
    try:
        assert rt.run(critsec.task(signal_myself, signal.SIGHUP)) == ["still running"]
        signal.signal(signal.SIGHUP, _parents_handler)
        with pytest.raises(critsec.TaskError) as failure:
            rt.run(critsec.task(signal_myself, signal.SIGHUP))
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert "killed by signal SIGHUP" in str(failure.value)
