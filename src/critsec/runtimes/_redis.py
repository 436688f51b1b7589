"""The redis runtime: the same lock, counter and queue across machines.

``critsec.runtime("redis://host:6379/0")`` (or ``rediss://`` for TLS, or
just ``"redis"`` for a private local server: :mod:`._redis_server`) gives
primitives that live in a Redis (or Valkey) server, 6.2 or later. Tasks run
as local processes, exactly as on the processes runtime; what makes this
runtime "many machines" is that programs on other machines that name the
same primitive -- ``rt.lock("orders")`` -- share it.

Design
------
*All state changes are Lua scripts* (:mod:`._redis_scripts`), so a client
that dies or loses its connection leaves an operation done or not begun.
*Waiting is a blocking pop on the waiter's own mailbox list*, after the
script that found it must wait registered it; whoever makes progress
possible hands over in the same script -- FIFO, no lost wake-ups, no
polling. A waiter's pop ends every :data:`HEARTBEAT` seconds so that it can
refresh its registration (a waiter that stops refreshing is dead and is
skipped), and at its own deadline, enforced by the client (Redis's blocking
timeouts overshoot by up to 100 ms at its default ``hz``).

Failures, per primitive:

* **Lock.** The owner holds a *lease* (``lease`` seconds, default 10),
  renewed every third of it by a thread of the owner's process while it
  holds the lock. If the process dies (or stops: SIGSTOP, a long pause),
  the lease runs out and the first live waiter gets the lock -- told so by
  ``lock.owner_died``, as on the processes runtime. Every grant carries a
  **fencing token**, strictly increasing per lock (``lock.token``): a
  holder that was paused past its lease finds its renewal refused, the lock
  marked ``lost``, ``release()`` (and so ``with lock:``) raising
  :class:`~critsec.LeaseExpired`, and its writes carrying the old token
  rejected by a fenced counter (``counter.set(v, token=...)``). What no
  Redis lock can promise: Redis replicates asynchronously, so a failover
  may hand the lock out twice -- fencing is what protects the data then.
* **Counter.** ``add`` is one ``INCRBY``: atomic, nothing to leave half
  done. ``value`` is a read and a write, two round trips (the lesson's race,
  now across machines).
* **Queue.** Every operation is one script; a taker that dies holding
  items (at-least-once) gives them back after its ``visibility`` window
  (default 5 s): they are delivered again, first, with a delivery count.
  At-most-once (the default) loses only an item its taker had already
  received. Items are JSON by default; ``serializer="pickle"`` on request
  (only between programs that trust each other).
* **The server goes away.** Commands are never retried behind the caller's
  back (a retried script could run twice); the operation raises
  :class:`~critsec.ServerUnreachable` in one line, and what the server had
  acknowledged is kept as far as the server keeps it (the embedded one
  keeps nothing on disk).
"""

from __future__ import annotations

import json
import pickle
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from .._errors import Empty, Full, LeaseExpired, ShutDown, StaleToken
from ._core import check_counter_value, check_lock_args, check_maxsize, check_timeout, clock
from ._processes import ProcessesRuntime
from ._redis_client import _Connection, _connection, _keeper, _me, redact
from ._shared_memory import AT_LEAST_ONCE, AT_MOST_ONCE, DELIVERIES, Delivery

try:
    import redis
except ImportError:  # pragma: no cover - checked by RedisRuntime()
    redis = None  # type: ignore[assignment]

__all__ = ["RedisCounter", "RedisLock", "RedisQueue", "RedisRuntime"]

T = TypeVar("T")

#: Seconds between two refreshes of a waiter's registration.
HEARTBEAT = 1.0
#: A waiter not heard of for this long is taken for dead.
WINDOW = 3 * HEARTBEAT
_WINDOW_MS = round(WINDOW * 1000)
#: Default seconds a lock owner holds its lease (renewed while it lives).
LEASE = 10.0
#: Default seconds an at-least-once taker may go unheard before its items
#: are delivered again.
VISIBILITY = 5.0
SERIALIZERS = ("json", "pickle")
#: Items a script moves at most in one round trip (put_many, get_many).
_BATCH = 1000

_MISSING = "the redis runtime needs redis-py: pip install 'critsec[redis]'"


# -- the primitives -------------------------------------------------------------------


def _rebuild(cls: type[T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    """A primitive as another process receives it: the same one, attached
    (by name: nothing is created); of its own class (a subclass too)."""
    return cls(*args, **kwargs)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Primitive:
    """What every Redis primitive has: its server, name and keys."""

    kind: ClassVar[str]

    def __init__(self, url: str, name: str) -> None:
        self._url = url
        self.name = name
        self._base = f"critsec:{{{self.kind}:{name}}}"

    @property
    def _redis(self) -> _Connection:
        return _connection(self._url)

    def _run(self, script: str, *args: Any) -> Any:
        return self._redis.run(self.kind, script, self._base, *args)

    def _wait(
        self,
        operation: Callable[[], list[Any]],
        cancel: Callable[[], list[Any]],
        deadline: float | None,
        patience: Callable[[list[Any]], float] = lambda reply: HEARTBEAT,
        first: list[Any] | None = None,
    ) -> list[Any]:
        """Run ``operation`` (a script) until it does not say ``wait``;
        between two runs, wait on this thread's mailbox. ``first``: the reply
        of a run already made. Returns the last reply, a ``['msg',
        message]`` handed over, or, once ``deadline`` passed, what ``cancel``
        says."""
        me = _me.get()
        box, got = f"{self._base}:wake:{me}", f"{self._base}:got:{me}"
        while True:
            reply = first if first is not None else operation()
            first = None
            if _text(reply[0]) != "wait":
                return reply
            seconds = patience(reply)
            exact = False
            if deadline is not None:
                left = deadline - clock.now()
                if left <= 0:
                    return cancel()
                exact = left <= seconds
                seconds = min(seconds, left)
            message = self._redis.receive(box, got, seconds, exact)
            if message is not None:
                return ["msg", message]
            if deadline is not None and clock.now() >= deadline:
                return cancel()


class RedisLock(_Primitive):
    """A lock in a Redis server, shared by every process -- on any machine
    -- that names it, with ``threading.Lock``'s interface.

    FIFO: waiters get the lock in the order they asked, handed over by the
    releaser (no polling). The owner holds a lease, renewed by its process
    while it lives; ``token`` is the fencing token of the current hold
    (strictly increasing per lock); ``owner_died`` says that the previous
    owner's lease ran out without a release (its process died or stopped):
    repair what it protects. ``lost`` is True once this process's hold ran
    out (a pause past the lease): ``release()`` then raises
    :class:`~critsec.LeaseExpired`. Only the thread that holds the lock may
    release it (``RuntimeError`` otherwise, and for a lock not held).
    """

    kind = "lock"

    def __init__(self, url: str, name: str, lease: float = LEASE) -> None:
        super().__init__(url, name)
        if not lease > 0:
            raise ValueError(f"lease must be > 0 seconds, got {lease}")
        self.lease = lease
        self._lease_ms = _ms(lease)
        self.token: int | None = None
        self.owner_died = False
        self.lost = False
        self._holder: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), (self._url, self.name, self.lease), {})

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        """Take the lock, waiting (at most ``timeout`` seconds unless -1)
        while it is held. Returns False if ``blocking`` is false or the
        time ran out."""
        deadline = check_lock_args(blocking, timeout)
        me = _me.get()
        reply = self._run("acquire", me, self._lease_ms, _WINDOW_MS, int(blocking), 0)
        if type(reply) is int:  # token * 2 + died, or 0: busy
            return reply > 0 and self._granted(me, reply >> 1, reply & 1)
        return self._wait_for_it(me, reply, deadline)

    def _wait_for_it(self, me: str, first: list[Any], deadline: float | None) -> bool:
        """Registered as a waiter (``first`` said so): wait for the lock to
        be handed over, or for its owner's lease to end."""
        seen = [int(first[2])]  # the fencing token when this thread last registered

        def operation() -> list[Any]:
            reply = self._run("acquire", me, self._lease_ms, _WINDOW_MS, 1, 1)
            if type(reply) is int:
                return ["granted", reply >> 1, reply & 1]
            if reply[0] == b"wait":
                seen[0] = int(reply[2])
            return list(reply)

        def until_the_lease_ends(reply: list[Any]) -> float:
            left = int(reply[1]) / 1000  # the owner's lease, -2: no owner
            return min(HEARTBEAT, left + 0.001) if left > 0 else HEARTBEAT

        reply = self._wait(
            operation,
            lambda: self._run("cancel", me, seen[0]),
            deadline,
            until_the_lease_ends,
            first=list(first),
        )
        word = _text(reply[0])
        if word == "msg":
            _, token, died = _text(reply[1]).split()
            return self._granted(me, token, died)
        if word == "granted":
            return self._granted(me, reply[1], reply[2])
        return False  # none: the time ran out

    def _granted(self, me: str, token: Any, died: Any) -> bool:
        self.token, self.owner_died, self.lost = int(token), int(died) == 1, False
        self._holder = me
        _keeper.keep(self, self.lease / 3, self._renew)
        return True

    def _renew(self) -> bool:
        holder = self._holder
        if holder is None:
            return False
        if not self._run("renew", holder, self._lease_ms):
            self.lost = True
            return False
        return True

    def release(self) -> None:
        """Release the lock, handing it to the first live waiter. Raises
        ``RuntimeError`` if this thread does not hold it, and
        :class:`~critsec.LeaseExpired` if its lease ran out meanwhile (the
        lock may already be someone else's)."""
        me = _me.get()
        if self._holder is None:
            raise RuntimeError("release unlocked lock")
        if self._holder != me:
            raise RuntimeError("only the thread that holds a redis lock may release it")
        _keeper.drop(self)
        self._holder = None
        if not self._run("release", me) or self.lost:
            self.lost = True
            raise LeaseExpired(
                f"lock {self.name!r}: its lease ran out before release (held past "
                f"{self.lease} s without renewal); token {self.token} is stale"
            )

    def locked(self) -> bool:
        """Whether some thread, of any process, holds the lock now."""
        return bool(self._run("state", "")[0])

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<RedisLock {self.name!r} on {redact(self._url)}>"


class RedisCounter(_Primitive):
    """An integer in a Redis server (a signed 64-bit one, as Redis keeps it).

    ``value`` reads (``GET``) or writes (``SET``) it: ``counter.value += 1``
    is two round trips with room between them for another writer's update
    (the lesson's race, across machines). ``add`` is one ``INCRBY``:
    atomic. ``set(value, token=...)``/``add(delta, token=...)`` are
    *fenced*: refused with :class:`~critsec.StaleToken` when ``token`` (a
    lock's fencing token) is older than the newest token this counter has
    seen -- a writer whose lock lease ran out cannot overwrite what the
    next owner wrote.
    """

    kind = "counter"

    def __init__(self, url: str, name: str, initial: int = 0, *, create: bool = True) -> None:
        super().__init__(url, name)
        _check_int64(check_counter_value(initial))
        if create:
            self._redis.command("SET", self._base, initial, "NX")

    def __reduce__(self) -> tuple[Any, ...]:
        return _rebuild, (type(self), (self._url, self.name), {"create": False})

    @property
    def value(self) -> int:
        return int(self._redis.command("GET", self._base) or 0)

    @value.setter
    def value(self, new: int) -> None:
        _check_int64(check_counter_value(new))
        self._redis.command("SET", self._base, new)

    def add(self, delta: int, *, token: int | None = None) -> int:
        """Add ``delta`` atomically; return the new value."""
        _check_int64(check_counter_value(delta))
        if token is not None:
            return self._fenced("add", delta, token)
        try:
            return int(self._redis.command("INCRBY", self._base, delta))
        except redis.ResponseError as error:
            raise OverflowError(f"counter {self.name!r}: {error}") from None

    def set(self, value: int, *, token: int) -> None:
        """Write ``value`` if ``token`` is not older than the newest seen."""
        self._fenced("set", _check_int64(check_counter_value(value)), token)

    def _fenced(self, how: str, number: int, token: int) -> int:
        check_counter_value(token)
        try:
            reply = self._run("fenced", "", token, how, number)
        except redis.ResponseError as error:
            raise OverflowError(f"counter {self.name!r}: {error}") from None
        if _text(reply[0]) == "stale":
            raise StaleToken(
                f"counter {self.name!r}: fencing token {token} is older than {int(reply[1])}, "
                "the newest it has seen: the lock this token came from was lost and "
                "granted again since"
            )
        return int(reply[1])

    def delete(self) -> None:
        """Remove the counter from the server (a named one outlives its programs)."""
        self._redis.command("DEL", self._base, f"{self._base}:fence")

    def __repr__(self) -> str:
        return f"<RedisCounter {self.name!r} on {redact(self._url)}>"


_INT64 = 2**63


def _check_int64(value: int) -> int:
    if not -_INT64 <= value < _INT64:
        raise OverflowError(f"{value} is outside a redis counter's int64 range")
    return value


class RedisQueue(_Primitive, Generic[T]):
    """A FIFO queue in a Redis server with ``queue.Queue``'s semantics and
    Python 3.13's ``shutdown()``, shared by every process, on any machine,
    that names it.

    ``put`` blocks while the queue is full and ``get`` while it is empty,
    woken by the operation that makes room or brings an item (handed over
    in FIFO order, never polled); ``qsize`` is exact. ``delivery``:
    ``"at-most-once"`` (default) or ``"at-least-once"``, where an item a
    taker holds until its ``task_done()`` is delivered again (first, with
    ``deliveries`` counted: :meth:`get_delivery`) if the taker's process
    stops being heard of for ``visibility`` seconds.
    """

    kind = "queue"

    def __init__(
        self,
        url: str,
        name: str,
        maxsize: float = 0,
        *,
        delivery: str = AT_MOST_ONCE,
        visibility: float = VISIBILITY,
        serializer: str = "json",
        create: bool = True,
    ) -> None:
        super().__init__(url, name)
        self.maxsize = check_maxsize(maxsize)
        if delivery not in DELIVERIES:
            raise ValueError(
                f"delivery must be one of {', '.join(map(repr, DELIVERIES))}, got {delivery!r}"
            )
        if serializer not in SERIALIZERS:
            raise ValueError(
                f"serializer must be one of {', '.join(map(repr, SERIALIZERS))}, got {serializer!r}"
            )
        if not visibility > 0:
            raise ValueError(f"visibility must be > 0 seconds, got {visibility}")
        self.delivery, self.visibility, self.serializer = delivery, visibility, serializer
        #: (item id, taker id) of the items this process took, oldest first.
        self._lent: list[tuple[bytes, str]] = []
        self._lent_lock = threading.Lock()
        if create:
            bound = 0 if maxsize <= 0 else -(-maxsize // 1)
            reply = self._run("create", "", int(bound), delivery)
            if _text(reply[0]) == "exists" and (
                float(reply[1]) != bound or _text(reply[2]) != delivery
            ):
                raise ValueError(
                    f"queue {name!r} exists with maxsize={_text(reply[1])} and "
                    f"delivery={_text(reply[2])!r}, not maxsize={maxsize} and "
                    f"delivery={delivery!r}"
                )

    def __reduce__(self) -> tuple[Any, ...]:
        options = {
            "delivery": self.delivery,
            "visibility": self.visibility,
            "serializer": self.serializer,
            "create": False,
        }
        return _rebuild, (type(self), (self._url, self.name, self.maxsize), options)

    # -- items ------------------------------------------------------------------------
    def _dumps(self, item: Any) -> bytes:
        if self.serializer == "pickle":
            return pickle.dumps(item, pickle.HIGHEST_PROTOCOL)
        try:
            return json.dumps(item, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"queue {self.name!r} holds JSON ({error}): put JSON-able items, or make the "
                "queue with serializer='pickle' (only between programs that trust each other)"
            ) from None

    def _loads(self, data: bytes) -> Any:
        if self.serializer == "pickle":
            return pickle.loads(data)
        return json.loads(data)

    # -- operations -------------------------------------------------------------------
    def put(self, item: T, block: bool = True, timeout: float | None = None) -> None:
        """Put ``item`` at the end, waiting (at most ``timeout`` seconds)
        while the queue is full. :class:`~critsec.Full` if ``block`` is
        false or the time ran out; :class:`~critsec.ShutDown` if the queue
        is or gets shut down."""
        self.put_many([item], block, timeout)

    def put_nowait(self, item: T) -> None:
        self.put_many([item], False)

    def put_many(
        self, items: Iterable[T], block: bool = True, timeout: float | None = None
    ) -> None:
        """``put`` each of ``items`` in turn -- one round trip for as many as
        there is room for, so a batch costs about what one item does.
        ``timeout`` bounds the whole call. If it raises (``Full``,
        ``ShutDown``), the items before the one that could not go in did."""
        deadline = check_timeout(block, timeout)
        payloads = [self._dumps(item) for item in items]
        me, window = _me.get(), _WINDOW_MS
        done = 0
        while done < len(payloads):
            rest = payloads[done : done + _BATCH]
            word, went = self._run("put", me, int(block), window, *rest)
            done += int(went)
            if word == b"wait":  # payloads[done] is registered: it goes in when there is room
                done += self._put_waiting(me, payloads[done], window, deadline)
            elif word == b"shutdown":
                raise ShutDown
            elif word == b"full":
                raise Full
            elif word == b"missing":
                raise LookupError(
                    f"queue {self.name!r} is not on the server (deleted, or never made): "
                    "make it with rt.queue(name, maxsize)"
                )

    def _put_waiting(self, me: str, payload: bytes, window: int, deadline: float | None) -> int:
        """Wait until the registered ``payload`` went in (1), or raise."""
        reply = self._wait(
            lambda: self._run("put", me, 1, window, payload),
            lambda: self._run("cancel", me, "putters"),
            deadline,
            first=[b"wait"],
        )
        word = _message(reply)
        if word == "shutdown":
            raise ShutDown
        if word == "none":
            raise Full
        return 1  # 'put': by a getter that made room, or by the script itself

    def get_delivery(self, block: bool = True, timeout: float | None = None) -> Delivery[T]:
        """``get`` that says more: :class:`~critsec.Delivery` ``(item, id,
        deliveries)``; ``deliveries`` is above 1 when the item was delivered
        before (its taker died before ``task_done()``: a possible duplicate,
        recognisable by ``id``)."""
        return self._take(1, block, timeout)[0]

    def get_many(
        self, most: int, block: bool = True, timeout: float | None = None
    ) -> list[Delivery[T]]:
        """Up to ``most`` items at once, oldest first, as
        :class:`~critsec.Delivery` records -- one round trip. Waits (at most
        ``timeout`` seconds) only while the queue is empty, then returns
        what there is; ``Empty``/``ShutDown`` as ``get``. Each item counts
        for ``task_done`` as if taken by ``get``."""
        if isinstance(most, bool) or not isinstance(most, int) or most < 1:
            raise ValueError(f"most must be a positive int, got {most!r}")
        return self._take(most, block, timeout)

    def _take(self, most: int, block: bool, timeout: float | None) -> list[Delivery[T]]:
        deadline = check_timeout(block, timeout)
        me, window = _me.get(), _ms(self._window)
        reply = self._wait(
            lambda: self._run("get", me, int(block), window, min(most, _BATCH)),
            lambda: self._run("cancel", me, "getters"),
            deadline,
        )
        word = _message(reply)
        if word == "shutdown":
            raise ShutDown
        if word in ("empty", "none"):
            raise Empty
        # A message: one item, handed over while this thread waited.
        records = reply[1].split(b" ", 3)[1:] if _text(reply[0]) == "msg" else reply[1:]
        got = [
            Delivery(self._loads(records[i + 2]), int(records[i]), int(records[i + 1]))
            for i in range(0, len(records), 3)
        ]
        if self.delivery == AT_LEAST_ONCE:
            with self._lent_lock:
                first = not self._lent
                self._lent.extend((str(d.id).encode(), me) for d in got)
                if first:
                    _keeper.keep(self, self.visibility / 3, self._keep)
        return got

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """Remove and return the oldest item, waiting (at most ``timeout``
        seconds) while the queue is empty. :class:`~critsec.Empty` if
        ``block`` is false or the time ran out; :class:`~critsec.ShutDown`
        once shut down and drained."""
        item: T = self._take(1, block, timeout)[0].item
        return item

    def get_nowait(self) -> T:
        return self.get(False)

    @property
    def _window(self) -> float:
        return self.visibility if self.delivery == AT_LEAST_ONCE else WINDOW

    def _keep(self) -> bool:
        """The keeper's job: this process's takers still live."""
        with self._lent_lock:
            takers = sorted({taker for _, taker in self._lent})
        if not takers:
            return False
        self._run("keep", "", _ms(self.visibility), *takers)
        return True

    def task_done(self) -> None:
        """Mark one item taken as processed; at-least-once, the oldest item
        this process took (and it will not be delivered again). ``ValueError``
        if called more often than items were put."""
        ident, taker = b"", _me.get()
        if self.delivery == AT_LEAST_ONCE:
            with self._lent_lock:
                if not self._lent:
                    raise ValueError(
                        "task_done() from a process that holds no item: with at-least-once "
                        "delivery, the process that took an item acknowledges it"
                    )
                ident, taker = self._lent.pop(0)
        word = _text(self._run("task_done", taker, ident)[0])
        if word == "too many":
            raise ValueError("task_done() called too many times")
        if word == "reclaimed":
            raise LeaseExpired(
                f"queue {self.name!r}: item {ident.decode()} was delivered again: this process "
                f"went unheard for more than visibility={self.visibility} s"
            )

    def join(self) -> None:
        """Block until every item put was marked done."""
        me, window = _me.get(), _WINDOW_MS
        self._wait(
            lambda: self._run("join", me, window),
            lambda: self._run("cancel", me, "joiners"),
            None,
        )

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down for every process that shares it (see
        :class:`critsec.Queue`); wakes every blocked putter and getter."""
        self._run("shutdown", _me.get(), int(bool(immediate)))

    def reclaim(self) -> int:
        """Deliver again now what dead takers held; return how many."""
        return int(self._run("reclaim", ""))

    def delete(self, *, finished_only: bool = False) -> bool:
        """Remove the queue from the server, items and all (a named queue
        outlives its programs); with ``finished_only``, only if it is shut
        down with nothing left to deliver. True if it was removed. Getters
        still waiting then wait as on a queue not made yet."""
        return bool(self._run("delete", "", int(finished_only)))

    def _state(self) -> list[Any]:
        return list(self._run("state", ""))

    def qsize(self) -> int:
        return int(self._state()[0])

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return 0 < self.maxsize <= self.qsize()

    @property
    def is_shutdown(self) -> bool:
        return _text(self._state()[2]) == "1"

    @property
    def unfinished_tasks(self) -> int:
        return int(self._state()[1])

    def __repr__(self) -> str:
        return (
            f"<RedisQueue {self.name!r} maxsize={self.maxsize} delivery={self.delivery!r} "
            f"on {redact(self._url)}>"
        )


def _message(reply: list[Any]) -> str:
    """The reply's word; for a handed-over message, the message's."""
    word = _text(reply[0])
    if word == "msg":
        return _text(reply[1].split(b" ", 1)[0])
    return word


# -- the runtime -----------------------------------------------------------------------


class RedisRuntime(ProcessesRuntime):
    """Primitives in a Redis server; tasks run as local processes (see the
    module docs). ``url``: ``redis://[:password@]host[:port][/db]``,
    ``rediss://`` for TLS, or None for a private server of this program's.
    """

    name = "redis"

    def __init__(self, url: str | None = None, start_method: str | None = None) -> None:
        if redis is None:
            raise ImportError(_MISSING)
        super().__init__(start_method)
        self._url = url
        self._private = url is None  # a server of this program's, started on first use

    @property
    def url(self) -> str:
        if self._url is None:
            from ._redis_server import shared

            self._url = shared().url
        return self._url

    def _name(self, name: object, kind: str) -> str:
        if name is None:
            return f"anonymous-{uuid.uuid4().hex}"
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {kind} name is a non-empty str, got {name!r}")
        return name

    def lock(self, name: str | None = None, *, lease: float = LEASE) -> RedisLock:  # type: ignore[override]
        return RedisLock(self.url, self._name(name, "lock"), lease)

    def counter(  # type: ignore[override]
        self, name: str | int | None = None, initial: int = 0, *, create: bool = True
    ) -> RedisCounter:
        """The counter called ``name`` (created holding ``initial`` unless
        it exists; with ``create=False``, never: it reads 0 until someone
        writes); ``rt.counter(5)``, as on every runtime, makes a new
        anonymous one."""
        if isinstance(name, int) and not isinstance(name, bool):
            return RedisCounter(self.url, self._name(None, "counter"), name)
        return RedisCounter(self.url, self._name(name, "counter"), initial, create=create)

    def queue(  # type: ignore[override]
        self,
        name: str | float | None = None,
        maxsize: float = 0,
        *,
        delivery: str = AT_MOST_ONCE,
        visibility: float = VISIBILITY,
        serializer: str = "json",
        create: bool = True,
    ) -> RedisQueue[Any]:
        """The queue called ``name`` (created with ``maxsize`` and
        ``delivery`` unless it exists: then they must match; with
        ``create=False``, never: getters wait until a program makes it);
        ``rt.queue(10)``, as on every runtime, makes a new anonymous one."""
        if isinstance(name, int | float) and not isinstance(name, bool):
            maxsize, name = name, None
        return RedisQueue(
            self.url,
            self._name(name, "queue"),
            maxsize,
            delivery=delivery,
            visibility=visibility,
            serializer=serializer,
            create=create,
        )

    def __repr__(self) -> str:
        where = "'redis'" if self._private else repr(redact(self.url))
        return f"critsec.runtime({where})"
