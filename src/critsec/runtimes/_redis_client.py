"""How a process of the redis runtime talks to its server.

* **Connections**: one client per server per process (made again after a
  ``fork``), which never retries a command behind the caller's back (a
  retried script could run twice) and turns a connection failure into one
  clear :class:`~critsec.ServerUnreachable`; and, per thread, a connection
  of its own for blocking waits on its mailbox (:meth:`_Connection.receive`).
* **Ids**: each thread of each process has an id in Redis (:data:`_me`).
* **The keeper**: one thread that renews the leases of the locks this
  process holds and refreshes the liveness of its at-least-once takers,
  while there is something to keep (:class:`_Keeper`).
* **What may be shown**: :func:`redact` hides a URL's password, wherever
  a URL is printed; :func:`client_name` is what a process's connections
  call themselves in ``CLIENT LIST``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .._errors import ServerUnreachable
from ._redis_scripts import COUNTER, LOCK, QUEUE

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:  # pragma: no cover - checked by RedisRuntime()
    redis = None  # type: ignore[assignment]

__all__ = ["client_name", "redact"]

#: Seconds any single command may take before the server counts as gone.
COMMAND_TIMEOUT = 10.0


#: Where a URL may carry a password: its user part (``user:password@``,
#: or a lone ``password@``), or a ``password=`` in its query.
_PASSWORDS = re.compile(r"(?:(?<=//)|^)[^/@]*(?=@)|(?<=[?&]password=)[^&#]*")


def _hide(found: re.Match[str]) -> str:
    user, colon, _ = found[0].partition(":")
    return f"{user}:***" if colon else "***"


def redact(url: str) -> str:
    """``url`` with its password hidden (``redis://:***@host/0``,
    ``unix:///sock?password=***``); any string, even a broken URL: it is
    what errors and ``repr`` show."""
    return _PASSWORDS.sub(_hide, url)


def client_name(pid: int | None = None) -> str:
    """The name a process's connections give themselves (``CLIENT LIST``)."""
    return f"critsec-{socket.gethostname()}-{os.getpid() if pid is None else pid}"


class _Connection:
    """This process's client for one server, and its scripts."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = redis.Redis.from_url(
            url,
            retry=Retry(NoBackoff(), 0),  # never re-send a script behind the caller's back
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            health_check_interval=0,
            client_name=client_name(),
        )
        # Each thread's connections: for commands, and for waiting.
        self._local = threading.local()
        self.scripts = {
            (kind, name): self.client.register_script(source)
            for kind, sources in (("lock", LOCK), ("queue", QUEUE), ("counter", COUNTER))
            for name, source in sources.items()
        }

    def run(self, kind: str, name: str, base: str, *args: Any) -> Any:
        """Run script ``name`` of primitive ``kind`` on key ``base``."""
        script = self.scripts[kind, name]
        try:  # every operation's hot path: EVALSHA itself, no more
            return self.command("EVALSHA", script.sha, 1, base, *args)
        except redis.exceptions.NoScriptError:  # a server that restarted, or a new one
            self.command("SCRIPT", "LOAD", script.script)
            return self.command("EVALSHA", script.sha, 1, base, *args)

    def command(self, *args: Any) -> Any:
        """Send one command on this thread's connection and return its
        reply (raw: bytes, ints, lists). A connection failure is a
        :class:`~critsec.ServerUnreachable`, the connection dropped."""
        # Not through the client's pool: taking a connection from it and
        # giving it back cost about as much as a round trip's Python does.
        connection: Any = getattr(self._local, "command", None)
        if connection is None:
            connection = self._local.command = self.client.connection_pool.make_connection()
        try:
            connection.send_command(*args)
            return connection.read_response()
        except (redis.ConnectionError, redis.TimeoutError) as error:
            connection.disconnect()  # a reply may still come: never read it as the next one's
            raise self.unreachable(error) from None

    def unreachable(self, error: Exception) -> ServerUnreachable:
        return ServerUnreachable(f"the server at {redact(self.url)} cannot be reached: {error}")

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn redis-py's connection failures into one clear error."""
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as error:
            raise self.unreachable(error) from None

    def receive(self, box: str, got: str, seconds: float, exact: bool) -> bytes | None:
        """Wait at most ``seconds`` for a message in mailbox ``box`` (moved
        to ``got`` as it is taken); None if none came in time. ``exact``:
        ``seconds`` is the caller's deadline, kept by this client to the
        millisecond -- the server's blocking timeouts overshoot (by up to
        100 ms at its default ``hz``); otherwise the server's timeout ends
        the wait (no reconnection after it)."""
        # A connection of this thread's own for waiting, not the pool's: one
        # given up on is dropped, and the cancel that follows must not pay
        # for reconnecting it.
        connection: Any = getattr(self._local, "waiting", None)
        if connection is None:
            connection = self._local.waiting = self.client.connection_pool.make_connection()
        with self.errors():
            block = seconds + (1.0 if exact else 0.0)  # exact: the client ends it first
            connection.send_command("BLMOVE", box, got, "LEFT", "LEFT", f"{block:.3f}")
            if not connection.can_read(timeout=seconds if exact else seconds + 1.0):
                # Given up: the server may still move a message to `got`
                # meanwhile; the caller's cancel finds it there.
                connection.disconnect()
                return None
            reply: bytes | None = connection.read_response()
            return reply


_connections: dict[str, _Connection] = {}
_connections_lock = threading.Lock()


def _connection(url: str) -> _Connection:
    found = _connections.get(url)
    if found is not None:
        return found
    with _connections_lock:
        found = _connections.get(url)
        if found is None:
            found = _connections[url] = _Connection(url)
        return found


class _Me(threading.local):
    """This thread's id in Redis: host, process, and a random part (thread
    idents are reused)."""

    pid = -1
    ident = ""

    def get(self) -> str:
        if self.pid != os.getpid():
            self.pid = os.getpid()
            self.ident = f"{socket.gethostname()}:{self.pid}:{uuid.uuid4().hex[:12]}"
        return self.ident


_me = _Me()


# -- the keeper: leases and liveness, while something is held -----------------------


class _Keeper:
    """One thread per process that renews the leases of the locks it holds
    and refreshes the liveness of its at-least-once takers.

    Started on first need and ended after :data:`IDLE` seconds with nothing
    to keep -- or at once before a ``fork``, if idle then (``fork`` warns
    about a process with threads) -- so a program that takes and releases
    locks in a loop does not start a thread each time, and a process that
    holds nothing has no thread for long."""

    #: Seconds an idle keeper lingers before its thread ends.
    IDLE = 2.0

    def __init__(self) -> None:
        self._jobs: dict[object, tuple[float, Callable[[], bool]]] = {}
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._wakes_at = 0.0  # when the thread's current wait ends

    def keep(self, key: object, period: float, job: Callable[[], bool]) -> None:
        """Call ``job`` every ``period`` seconds until it returns False or
        ``drop(key)``."""
        with self._guard:
            self._jobs[key] = (period, job)
            if self._thread is None:
                self._stopping = False
                self._wakes_at = 0.0
                self._thread = threading.Thread(
                    target=self._run, name="critsec-redis-keeper", daemon=True
                )
                self._thread.start()
                return
            early = self._wakes_at > time.monotonic() + period
        if early:  # the thread sleeps past this job's first turn
            self._wake.set()

    def drop(self, key: object) -> None:
        with self._guard:
            self._jobs.pop(key, None)

    def _run(self) -> None:
        due: dict[object, float] = {}
        idle_since: float | None = None
        while True:
            now = time.monotonic()
            with self._guard:
                jobs = dict(self._jobs)
                if self._stopping or (not jobs and idle_since and now - idle_since >= self.IDLE):
                    self._thread = None
                    return
            idle_since = None if jobs else (idle_since or now)
            for key, (period, job) in jobs.items():
                when = due.setdefault(key, now + period)
                if when <= now:
                    try:
                        again = job()
                    except Exception:  # the server is away: try again next period
                        again = True
                    due[key] = now + period
                    if not again:
                        self.drop(key)
            for key in [key for key in due if key not in jobs]:
                del due[key]
            wake = min((due[key] for key in jobs), default=now + self.IDLE)
            self._wakes_at = wake
            self._wake.wait(max(0.0, wake - time.monotonic()))
            self._wake.clear()

    def stop_if_idle(self) -> None:
        """Before a fork: end the thread if it has nothing to keep."""
        with self._guard:
            thread = self._thread
            if thread is None or self._jobs:
                return
            self._stopping = True
        self._wake.set()
        thread.join()

    def reset(self) -> None:
        """In a forked child: the parent's jobs are not this process's."""
        self._jobs.clear()
        self._thread = None
        self._stopping = False
        self._guard = threading.Lock()
        self._wake = threading.Event()


_keeper = _Keeper()


def _after_fork_in_child() -> None:
    _connections.clear()
    _keeper.reset()


os.register_at_fork(before=_keeper.stop_if_idle, after_in_child=_after_fork_in_child)
