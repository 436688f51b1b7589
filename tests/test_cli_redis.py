"""The ``critsec`` command on a redis server: a server's URL for
``--runtime``, and one pipeline split between two programs (``--role``,
``--name``), as in two terminals -- or on two machines.

The commands run as real subprocesses against a real server: the private
one this test process starts (``critsec.runtime("redis").url``), which they
reach by its URL. Which side starts first is made sure of, not hoped for:
a consumer side counts as waiting once the server itself announces that its
getters registered (a keyspace notification), and a producer side that
must go first runs to its end before the consumer side starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import critsec
from critsec.cli import main
from critsec.runtimes._redis import RedisRuntime

COMMAND = [sys.executable, "-m", "critsec"]
# A safety net for a broken command; a passing run never waits this long.
FOREVER = 50
#: Nothing listens on port 1: a server that cannot be reached.
UNREACHABLE = "redis://:secret@127.0.0.1:1/0"


def critsec_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # A session of its own: as another machine would be, a process group
    # that shares nothing with the test but the server.
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=FOREVER,
        check=False,
        start_new_session=True,
    )


def record(stdout: str) -> dict[str, Any]:
    [line] = stdout.splitlines()
    result: dict[str, Any] = json.loads(line)
    return result


@pytest.fixture(scope="module")
def url() -> str:
    return critsec.runtime("redis").url


@pytest.fixture
def server(url: str) -> Iterator[redis.Redis]:
    """A client of the server, which announces changes to lists
    (``notify-keyspace-events``) while the test runs."""
    client = redis.Redis.from_url(url)
    before = client.config_get("notify-keyspace-events")["notify-keyspace-events"] or ""
    client.config_set("notify-keyspace-events", "Kl")
    try:
        yield client
    finally:
        client.config_set("notify-keyspace-events", before)
        client.close()


@pytest.fixture
def name() -> str:
    # Glob characters, found by pattern on the server, and what rich would
    # take for a markup tag ("[x...]") in a table's title.
    return f"jobs[x{uuid.uuid4().hex[:8]}]*?"


def keys_of(server: redis.Redis, name: str) -> list[bytes]:
    """Every key a pipeline called ``name`` has on the server."""
    return [key for key in server.scan_iter(count=1000) if f":{name}".encode() in key]


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    """Commands started in the background, stopped at the end whatever happened."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.communicate()


def start_waiting_consumer(
    background: list[subprocess.Popen[str]], server: redis.Redis, url: str, name: str
) -> subprocess.Popen[str]:
    """Start the consumer side, two consumers; return once both wait for
    items on the server (each registers with one RPUSH)."""
    events = server.pubsub()
    events.subscribe(f"__keyspace@0__:critsec:{{queue:{name}}}:getters")
    try:
        assert events.get_message(timeout=FOREVER) is not None  # subscribed
        consumer = subprocess.Popen(
            [*COMMAND, "pipeline", "-r", url, "--role", "consumer", "--name", name, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # another "machine", as critsec_cli's
        )
        background.append(consumer)
        waiting = 0
        while waiting < 2:
            event = events.get_message(timeout=FOREVER)
            assert event is not None, "the consumer side never waited for items"
            waiting += event["data"] == b"rpush"
    finally:
        events.close()
    return consumer


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=FOREVER)
    return process.returncode, stdout, stderr


def produce(url: str, name: str, *args: str) -> dict[str, Any]:
    done = critsec_cli("pipeline", "-r", url, "--role", "producer", "--name", name, "--json", *args)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return record(done.stdout)


def check_consumer_side(result: dict[str, Any], name: str, items: int) -> None:
    """The consumer side's record: its two consumers took every item of the
    count the producer side recorded, once; what it cannot see is None."""
    expected = {
        "runtime": "redis",
        "role": "consumer",
        "name": name,
        "producers": 0,
        "consumers": 2,
        "items": items,
        "maxsize": None,
        "produced": items,
        "consumed": items,
        "lost": 0,
        "duplicated": 0,
        "max_qsize": None,
        "ok": True,
    }
    assert {key: result[key] for key in expected} == expected


# -- a server's URL -----------------------------------------------------------------------


def test_a_server_url_is_a_runtime(url: str) -> None:
    counted = critsec_cli("counter", "-r", url, "-n", "200", "--json")
    assert (counted.returncode, counted.stderr) == (0, ""), counted.stderr
    trial = record(counted.stdout)
    assert (trial["runtime"], trial["expected"], trial["observed"]) == ("redis", 9, 9)
    piped = critsec_cli("pipeline", "-r", url, "-n", "200", "-m", "4", "--json")
    assert (piped.returncode, piped.stderr) == (0, ""), piped.stderr
    result = record(piped.stdout)
    assert (result["runtime"], result["role"], result["name"]) == ("redis", "both", None)
    assert result["produced"] == result["consumed"] == 200 and result["ok"]


def test_a_named_pipeline_in_one_command_leaves_nothing_behind(
    server: redis.Redis, url: str, name: str
) -> None:
    done = critsec_cli("pipeline", "-r", url, "--name", name, "-n", "100", "--json")
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    result = record(done.stdout)
    expected = {"role": "both", "name": name, "produced": 100, "consumed": 100, "ok": True}
    assert {key: result[key] for key in expected} == expected
    assert keys_of(server, name) == []


@pytest.mark.parametrize(
    "args",
    [
        ["counter", "-r", UNREACHABLE],
        ["pipeline", "-r", UNREACHABLE],
        ["pipeline", "-r", UNREACHABLE, "--role", "producer", "--name", "jobs"],
        ["pipeline", "-r", UNREACHABLE, "--role", "consumer", "--name", "jobs"],
        # A password may be given in the query too.
        ["pipeline", "-r", "unix:///nonexistent/critsec.sock?password=secret&db=0"],
    ],
)
def test_an_unreachable_server_is_one_line_exit_1_without_its_password(args: list[str]) -> None:
    done = critsec_cli(*args)
    assert (done.returncode, done.stdout) == (1, "")
    [line] = done.stderr.splitlines()
    assert line.startswith("critsec: error: the server at ")
    assert "cannot be reached" in line
    assert "secret" not in line and "***" in line


# -- one pipeline, two programs ----------------------------------------------------------


def test_two_terminals_one_pipeline_and_again(
    background: list[subprocess.Popen[str]], server: redis.Redis, url: str, name: str
) -> None:
    for _ in range(2):  # the same name again: a new run
        consumer = start_waiting_consumer(background, server, url, name)
        produced = produce(url, name, "--producers", "3", "--items", "300", "--maxsize", "4")
        status, stdout, stderr = finish(consumer)
        assert (status, stderr) == (0, ""), stderr
        check_consumer_side(record(stdout), name, items=300)
        assert produced["role"] == "producer" and produced["name"] == name
        assert (produced["producers"], produced["produced"], produced["consumed"]) == (3, 300, None)
        assert produced["max_qsize"] <= produced["maxsize"] == 4 and produced["ok"]
        assert keys_of(server, name) == []  # the consumer side cleared the finished run


def test_a_producer_side_may_finish_before_the_consumer_side_starts(
    server: redis.Redis, url: str, name: str
) -> None:
    produced = produce(url, name, "--items", "40", "--maxsize", "0")  # unbounded: never waits
    assert produced["max_qsize"] == 40
    consumed = critsec_cli("pipeline", "-r", url, "--role", "consumer", "--name", name)
    assert (consumed.returncode, consumed.stderr) == (0, ""), consumed.stderr
    table = consumed.stdout
    assert f"pipeline: redis, '{name}'" in table and "consumer side" in table
    assert "items consumed" in table and "max qsize" not in table and "PASS" in table
    assert keys_of(server, name) == []


@pytest.mark.parametrize("first", ["consumer", "producer"])
def test_a_previous_run_left_shut_down_does_not_break_the_next(
    background: list[subprocess.Popen[str]], server: redis.Redis, url: str, name: str, first: str
) -> None:
    # What an interrupted run leaves: its counters, its queue shut down --
    # drained (its consumer side killed at its very end) or, producer first,
    # with an item left (killed mid-way), which the next run must not deliver.
    rt = critsec.runtime(url)
    assert isinstance(rt, RedisRuntime)
    q = rt.queue(name, 2)
    if first == "producer":
        q.put(7)
    q.shutdown()
    rt.counter(f"{name}.items", 99)
    rt.counter(f"{name}.producers", 0)
    if first == "consumer":
        consumer = start_waiting_consumer(background, server, url, name)
        produce(url, name, "--items", "30")
        status, stdout, stderr = finish(consumer)
    else:
        produce(url, name, "--items", "30", "--maxsize", "0")
        done = critsec_cli("pipeline", "-r", url, "--role", "consumer", "--name", name, "--json")
        status, stdout, stderr = done.returncode, done.stdout, done.stderr
    assert (status, stderr) == (0, ""), stderr
    check_consumer_side(record(stdout), name, items=30)
    assert keys_of(server, name) == []


# -- usage errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["pipeline", "-r", "threads", "--role", "producer", "--name", "jobs"],
            "--role producer works with a redis runtime only (redis, or a server URL), not threads",
        ),
        (["pipeline", "-r", "processes", "--name", "jobs"], "--name works with a redis runtime"),
        (["pipeline", "-r", UNREACHABLE, "--role", "consumer"], "--role consumer needs --name"),
        (
            ["pipeline", "-r", "redis", "--role", "producer", "--name", "jobs"],
            "-r redis is a private server, gone when this command ends",
        ),
        (["pipeline", "-r", UNREACHABLE, "--role", "seller"], "'seller' is not one of 'both'"),
        (["pipeline", "-r", UNREACHABLE, "--name", " "], "--name must name the pipeline"),
        (["counter", "-r", "rediss//:secret@host"], "--runtime must be one of threads,"),
        (
            ["counter", "-r", "redis://:secret@127.0.0.1:port/0"],
            "--runtime is not a server URL redis-py can use (Port could not be cast",
        ),
        (
            ["pipeline", "-r", "redis://:secret@127.0.0.1:1/0?colour=blue"],
            "unexpected keyword argument 'colour'), got 'redis://:***@127.0.0.1:1/0?colour=blue'",
        ),
        (
            ["pipeline", "-r", "unix:///tmp/s.sock?password=secret", "--kill", "1"],
            "not unix:///tmp/s.sock?password=***: only a process can die alone",
        ),
    ],
)
def test_usage_error_is_one_line_exit_2_without_a_password(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status = main(args)
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    [line] = err.splitlines()
    assert line.startswith("critsec: error: ")
    assert message in line
    assert "secret" not in line


def test_the_server_command_serves_other_terminals_until_stopped() -> None:
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [*COMMAND, "server", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url, _, _ = server.stdout.readline().partition(" ")  # once it answers
        assert url == f"redis://127.0.0.1:{port}/0"
        done = critsec_cli("counter", "-r", url, "-n", "50", "--json")
        assert done.returncode == 0 and record(done.stdout)["observed"] == 9
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=FOREVER)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 143 and stderr.strip() == "critsec: terminated"
    with pytest.raises(redis.ConnectionError):  # and the server is gone with it
        redis.Redis(port=port, socket_connect_timeout=5).ping()
