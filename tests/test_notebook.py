"""The lesson as a notebook (examples/lesson.ipynb), run in a real kernel.

The notebook is committed without outputs and written by
examples/make_lesson.py: the first test checks that the two agree. The
second runs it top to bottom with nbclient in an IPython kernel of this
very Python (a kernel spec of our own in a temporary directory, pointing
at ``sys.executable``: no global Jupyter install is used), with a timeout
per cell, and checks that no cell failed or wrote to stderr and that the
outputs that carry the lesson say what the text claims: the locked
counters are exact on every runtime, the coroutines without a lock lose
exactly what round-robin predicts, the queue delivers every item once and
never holds more than its bound, and the explorer finds the lost update
and shows it as the HTML player.

Both skip when nbformat, nbclient or ipykernel is missing, unless
``CRITSEC_REQUIRE_NOTEBOOK=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "lesson.ipynb"
GENERATOR = EXAMPLES / "make_lesson.py"

#: Seconds each cell may take (the whole notebook takes a few).
CELL_TIMEOUT = 60

#: The name of the test's own kernel spec.
KERNEL = "critsec-test"

#: What marks the explorer's interleaving player in a cell's HTML output
#: (critsec.explorer._html.render_html).
PLAYER = 'class="critsec-player"'

#: The notebook runs in the first test that asks for it; the run takes seconds.
pytestmark = pytest.mark.timeout(240)


def require(*modules: str) -> None:
    """Skip (or fail, under CRITSEC_REQUIRE_NOTEBOOK=1) unless every module imports."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if not missing:
        return
    why = f"{', '.join(missing)} not installed (pip install -e '.[test]')"
    if os.environ.get("CRITSEC_REQUIRE_NOTEBOOK") == "1":
        pytest.fail(f"{why}, and CRITSEC_REQUIRE_NOTEBOOK=1 requires it")
    pytest.skip(why)


def test_committed_notebook_is_what_the_generator_writes() -> None:
    require("nbformat")
    import nbformat

    spec = importlib.util.spec_from_file_location("make_lesson", GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    built = generator.build()
    nbformat.validate(built)
    committed = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    assert committed == built, "examples/lesson.ipynb is stale: run python examples/make_lesson.py"
    assert all(not cell.get("outputs") for cell in committed.cells), "commit it without outputs"


def text_of(cell: Any, name: str = "stdout") -> str:
    """Everything a cell printed on stream ``name``."""
    return "".join(
        output["text"]
        for output in cell.get("outputs", [])
        if output["output_type"] == "stream" and output["name"] == name
    )


def html_of(cell: Any) -> str:
    """The text/html of a cell's displayed results."""
    return "".join(
        output["data"].get("text/html", "")
        for output in cell.get("outputs", [])
        if output["output_type"] in ("execute_result", "display_data")
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The notebook after a run top to bottom: its cells by id."""
    require("nbformat", "nbclient", "ipykernel")
    home = tmp_path_factory.mktemp("jupyter")
    # A kernel spec of our own, found first through JUPYTER_PATH: the kernel
    # is this Python, with this venv's critsec.
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "critsec test kernel",
        "language": "python",
    }
    (home / "kernels" / KERNEL).mkdir(parents=True)
    (home / "kernels" / KERNEL / "kernel.json").write_text(json.dumps(spec))
    patch = pytest.MonkeyPatch()
    patch.setenv("JUPYTER_PATH", str(home))
    # Nothing of the user's Jupyter or IPython set-up, and no files outside home.
    patch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    patch.setenv("JUPYTER_RUNTIME_DIR", str(home / "runtime"))
    patch.setenv("JUPYTER_CONFIG_DIR", str(home / "config"))
    patch.setenv("IPYTHONDIR", str(home / "ipython"))
    try:
        import nbformat
        from nbclient import NotebookClient

        notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL,  # nbclient starts the kernel, and shuts it down
            timeout=CELL_TIMEOUT,
            startup_timeout=60,
            resources={"metadata": {"path": str(home)}},  # the kernel's working directory
        )
        client.execute()  # raises CellExecutionError naming the cell that failed
    finally:
        patch.undo()
    return {cell["id"]: cell for cell in notebook.cells}


def test_runs_in_this_python_without_stderr(executed: dict[str, Any]) -> None:
    assert text_of(executed["setup"]) == f"Python {sys.version}\n"
    for cell_id, cell in executed.items():
        assert text_of(cell, "stderr") == "", f"cell {cell_id} wrote to stderr"


@pytest.mark.parametrize(
    "cell_id",
    [
        "threads-lock",
        "processes-lock",
        "coroutines-lesson",
        "coroutines-lock",
        "asyncio-lock",
    ],
)
def test_locked_counters_are_exact(executed: dict[str, Any], cell_id: str) -> None:
    assert text_of(executed[cell_id]) == "counter = 9\n"


def test_cooperative_updates_across_a_switch_lose_what_round_robin_predicts(
    executed: dict[str, Any],
) -> None:
    # Each task reads, yields, writes: the task that writes last (-1, one
    # iteration longer) overwrites every other update.
    assert text_of(executed["coroutines-inside-nolock"]) == "counter = -99991 (expected 9)\n"
    assert text_of(executed["asyncio-nolock"]) == "counter = -9991 (expected 9)\n"


@pytest.mark.parametrize("cell_id", ["queue-threads", "queue-processes"])
def test_the_bounded_queue_delivers_each_item_once(executed: dict[str, Any], cell_id: str) -> None:
    text = text_of(executed[cell_id])
    assert "consumed 12 of 12 items, each exactly once: True\n" in text
    longest = re.search(r"longest queue seen: (\d+) \(maxsize 3\)", text)
    assert longest is not None and int(longest[1]) <= 3  # never more than its bound
    assert len(re.findall(r"^P[12] put P[12]-\d$", text, re.MULTILINE)) == 12
    assert len(re.findall(r"^    C[12] got P[12]-\d$", text, re.MULTILINE)) == 12


def test_the_explorer_finds_shows_and_replays_the_lost_update(executed: dict[str, Any]) -> None:
    found = text_of(executed["threads-explore-run"])
    assert "lost update on global counter" in found
    assert "failed (invariant)" in found
    assert "failed: False, exhausted: True" in text_of(executed["threads-lock-proof-run"])
    player = html_of(executed["explorer-player"])
    assert PLAYER in player
    assert 'class="cs-data"' in player  # a failing schedule's steps, for the player
    assert "the same schedule again: counter = 12, failed: True" in text_of(
        executed["explorer-replay"]
    )
    proof = html_of(executed["explorer-proof"])
    assert PLAYER in proof and "No failing schedule" in proof
