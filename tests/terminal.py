"""Run a command on a real pseudo-terminal and keep everything it drew:
how the tests see the progress lines that a pipe never gets."""

from __future__ import annotations

import errno
import os
import pty
import subprocess
from collections.abc import Sequence


def run_on_terminal(command: Sequence[str], timeout: float) -> str:
    """Run ``command`` with a terminal of 100 columns as its stdin, stdout
    and stderr; what it wrote, once it exited 0 (else AssertionError)."""
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "40"}
    with subprocess.Popen(
        list(command), stdin=terminal, stdout=terminal, stderr=terminal, env=env
    ) as child:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError as error:  # the terminal closed: the child is done
                assert error.errno == errno.EIO
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(controller)
        assert child.wait(timeout=timeout) == 0
    return b"".join(chunks).decode(errors="replace")
