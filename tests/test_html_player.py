"""The interleaving player (``critsec.explorer._html``): a failing schedule
as one self-contained HTML page, from ``critsec explore --html`` and
``Result._repr_html_``.

The unit tests read the HTML as text: the user's strings are data, never
markup; a huge state is cut; the command writes the page and refuses a bad
path in one line. The browser tests open the page in a real headless
Chromium (Debian's, driven by Playwright): the buttons and keys move the
current step and its source line, and strings made to run script only
show. They skip when Chromium or Playwright is missing, unless
``CRITSEC_REQUIRE_BROWSER=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import dataclasses
import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import critsec
from critsec.explorer import Result
from critsec.explorer._html import render_html, script_json

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Strings that would run script if they reached the page as markup.
XSS_SCRIPT = "<script>window.pwned = 1; alert(1)</script>"
XSS_IMG = '<img src=x onerror="window.pwned = 2; alert(2)">'

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# -- scenarios (generator tasks: each step its own line) ---------------------------


def setup() -> dict[str, Any]:
    return {"x": 0}


def inc(state: dict[str, Any]) -> Iterator[None]:
    value = state["x"]
    yield
    state["x"] = value + 1


def holds(state: dict[str, Any]) -> bool:
    return bool(state["x"] == 2)


def hostile_setup() -> dict[str, Any]:
    return {"x": 0, "note": XSS_SCRIPT + XSS_IMG}


def hostile_raise(state: dict[str, Any]) -> Iterator[None]:
    yield
    raise ValueError('<script>window.pwned = 3</script><img src=x onerror="window.pwned = 4">')


def huge_setup() -> dict[str, Any]:
    return {"x": 0, "items": list(range(100_000))}


def huge_raise(state: dict[str, Any]) -> Iterator[None]:
    yield
    raise ValueError(state["items"])


def lost_update() -> Result:
    result = critsec.explore(setup, [inc, inc], holds, seed=1)
    assert result.failed and result.kind == "invariant"
    return result


def hostile_invariant() -> Result:
    # The state's repr, in the failure message, carries both strings.
    result = critsec.explore(hostile_setup, [inc, inc], holds, seed=1)
    assert result.failed and XSS_IMG in result.message
    return result


def hostile_exception() -> Result:
    # The exception's text, its traceback and the source line of the raise.
    result = critsec.explore(hostile_setup, [inc, hostile_raise], holds, seed=1)
    assert result.failed and result.kind == "exception"
    return result


def data_of(page: str) -> Any:
    found = re.findall(r'<script type="application/json" class="cs-data">(.*?)</script>', page)
    assert len(found) == 1
    return json.loads(found[0])


# -- the HTML as text ------------------------------------------------------------------


def test_script_json_leaves_nothing_that_ends_a_script() -> None:
    data = {"a": "</script><!-- & <SCRIPT>", "b": ["<img>", ">"]}
    text = script_json(data)
    assert not set("<>&") & set(text)
    assert json.loads(text) == data


@pytest.mark.parametrize("found", [hostile_invariant, hostile_exception])
def test_the_programs_strings_are_data_never_markup(found: Callable[[], Result]) -> None:
    result = found()
    for page in (render_html(result, page=True), result._repr_html_()):
        # Our own two scripts, and no tag the program made.
        assert page.count("<script") == 2
        assert "<img" not in page and "<IMG" not in page
        assert "innerHTML" not in page and "insertAdjacentHTML" not in page
        # The data gives them back intact; the text trace, escaped.
        data = data_of(page)
        shown = json.dumps(data)
        assert "window.pwned" in shown
        assert html.escape(result.trace.splitlines()[-1]) in page


def test_the_exception_text_source_and_traceback_are_all_carried() -> None:
    data = data_of(render_html(hostile_exception(), page=True))
    raising = [step for step in data["steps"] if step["kind"] == "raise"]
    assert len(raising) == 1
    assert "<script>window.pwned = 3</script>" in raising[0]["cell"]
    # The traceback, with the raise's source line.
    assert "raise ValueError('<script>" in raising[0]["detail"]
    assert "window.pwned = 4" in raising[0]["detail"]
    assert data["failure"].startswith(
        "failed (exception): task 'hostile_raise' raised ValueError: <s"
    )


def test_a_huge_state_is_cut_and_the_page_stays_small() -> None:
    result = critsec.explore(huge_setup, [inc, inc], holds, seed=1)
    assert result.failed
    page = render_html(result, page=True)
    assert len(page.encode()) < 40_000
    assert data_of(page)["failure"].endswith(" characters in all)")

    # An exception whose text is the 100,000 items: its line and its
    # traceback are cut as well (already in the result, and in the page).
    result = critsec.explore(huge_setup, [inc, huge_raise], holds, seed=1)
    assert result.failed and len(result.message) < 700
    page = render_html(result, page=True)
    assert len(page.encode()) < 40_000
    raising = next(step for step in data_of(page)["steps"] if step["kind"] == "raise")
    assert raising["cell"].endswith(" characters in all)")


def test_the_player_shows_the_conflict_and_the_replay_call() -> None:
    result = lost_update()
    data = data_of(render_html(result, replay_command="critsec explore x.py:s --replay T"))
    assert data["tasks"] == ["inc#1", "inc#2"]
    assert data["title"].startswith("invariant failure after ")
    (conflict,) = data["conflicts"]
    assert conflict["text"].startswith("lost update on dict['x']: ")
    for number in conflict["steps"]:
        assert data["steps"][number - 1]["marks"] == [1]
    assert data["command"] == "critsec explore x.py:s --replay T"
    assert data["python"] == f"critsec.replay(setup, tasks, invariant, {result.schedule!r})"
    # Without a command (a notebook), only the call.
    assert data_of(result._repr_html_())["command"] is None


def test_a_pass_says_so_and_has_no_player() -> None:
    result = critsec.explore(setup, [inc], lambda state: state["x"] == 1, seed=1)
    assert not result.failed
    page = render_html(result, page=True)
    assert "No failing schedule" in page
    assert "<script" not in page
    assert html.escape(str(result)) in page


def test_each_fragment_has_its_own_id() -> None:
    result = lost_update()
    first, second = result._repr_html_(), result._repr_html_()
    ids = [re.findall(r'id="(critsec-[0-9a-f]+)"', part) for part in (first, second)]
    assert len(ids[0]) == len(ids[1]) == 1 and ids[0] != ids[1]
    assert "<html" not in first and ids[0][0] in first.split("<script>")[-1]


def test_a_failure_with_no_steps_still_renders() -> None:
    found = lost_update()
    empty = dataclasses.replace(found, events=(), trace="(no steps recorded)")
    data = data_of(render_html(empty, page=True))
    assert data["steps"] == [] and data["conflicts"] == []
    assert data["failure"].startswith("failed (invariant): ")


# -- the command -----------------------------------------------------------------------

SCENARIO = """
def setup():
    return {"x": 0}

def inc(state):
    value = state["x"]
    yield
    state["x"] = value + 1

def inc_atomically(state):
    yield
    state["x"] += 1

def holds(state):
    return state["x"] == 2

lost_update = (setup, [inc, inc], holds)
correct = (setup, [inc_atomically, inc_atomically], holds)
"""


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.py"
    path.write_text(textwrap.dedent(SCENARIO))
    return path


def critsec_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "critsec.cli", *args],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_explore_html_writes_the_page_and_prints_as_before(scenario: Path) -> None:
    out = scenario.parent / "report.html"
    plain = critsec_cli("explore", f"{scenario}:lost_update", "--seed", "1")
    done = critsec_cli("explore", f"{scenario}:lost_update", "--seed", "1", "--html", str(out))
    assert done.returncode == plain.returncode == 1, done.stderr
    assert done.stderr == ""
    strip = re.compile(r", \d+\.\d\d s\)")  # the time taken differs
    assert strip.sub("", done.stdout) == strip.sub("", plain.stdout)
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in page
    replay_line = done.stdout.splitlines()[-1]
    assert data_of(page)["command"] == replay_line.removeprefix("replay: ")

    done = critsec_cli("explore", f"{scenario}:correct", "--html", str(out), "-n", "5")
    assert done.returncode == 0, done.stderr
    assert "No failing schedule" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["no/such/dir/report.html", "."])
def test_explore_html_to_a_bad_path_is_one_line_and_exit_2(scenario: Path, where: str) -> None:
    path = scenario.parent / where
    done = critsec_cli("explore", f"{scenario}:lost_update", "--html", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"critsec: error: --html: cannot write {path}: ")


# -- in a real browser -----------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    required = os.environ.get("CRITSEC_REQUIRE_BROWSER") == "1"
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing = "playwright is not installed (pip install -e '.[test]')"
    if missing is not None:
        if required:
            pytest.fail(f"{missing}, and CRITSEC_REQUIRE_BROWSER=1 requires it")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watched:
    """A page, and everything it said or did that a player must not."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.page: Page = browser.new_page(viewport={"width": 1000, "height": 800})
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(url)
        self.url = url

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert self.errors == []
        assert self.dialogs == []
        assert self.page.evaluate("typeof window.pwned") == "undefined"
        assert self.requests == [self.url]  # nothing fetched: self-contained

    def current(self, root: str = ".critsec-player") -> tuple[str, str]:
        """(the current step's number, the source line shown)."""
        player = self.page.locator(root)
        rows = player.locator("tr.cs-current")
        assert rows.count() == 1
        assert rows.get_attribute("aria-current") == "step"
        assert rows.locator("td.cs-n").inner_text().startswith("▶")
        return rows.get_attribute("data-step") or "", player.locator(".cs-now-source").inner_text()


def save_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 0
    folder = os.environ.get("CRITSEC_ARTEFACTS")
    if folder:
        os.makedirs(folder, exist_ok=True)
        shutil.copy(shot, os.path.join(folder, name))


def test_the_player_steps_by_buttons_and_keys(browser: Browser, tmp_path: Path) -> None:
    result = lost_update()
    report = tmp_path / "report.html"
    report.write_text(render_html(result, replay_command="critsec explore s.py:x", page=True))
    seen = Watched(browser, report.as_uri())
    page = seen.page
    steps = len(result.events)
    # Step 1: inc#2 reads (line "value = ..."); step 2: it yields (line "yield").
    first = seen.current()
    assert first[0] == "1" and first[1].endswith('value = state["x"]')
    assert page.locator(".cs-counter").inner_text() == f"step 1 of {steps}"

    page.click("button.cs-next")
    second = seen.current()
    assert second[0] == "2" and second[1].endswith("yield") and second != first
    page.click("button.cs-prev")
    assert seen.current() == first
    page.click("button.cs-last")
    assert seen.current()[0] == str(steps)
    page.click("button.cs-first")
    assert seen.current() == first

    page.keyboard.press("ArrowRight")
    assert seen.current() == second
    page.keyboard.press("ArrowLeft")
    assert seen.current() == first
    page.keyboard.press("End")
    assert seen.current()[0] == str(steps)
    page.keyboard.press("Home")
    assert seen.current() == first
    page.keyboard.press("ArrowLeft")  # no step before the first
    assert seen.current() == first

    # The conflict: its steps are marked in words; on one, the sentence shows.
    (conflict,) = result.to_json()["trace"]["conflicts"]
    marked = page.locator("td.cs-conflict")
    assert marked.count() == 3 and all("⚠1" in text for text in marked.all_inner_texts())
    page.click(f"ul.cs-conflicts button:has-text('step {conflict['steps'][1]}')")
    assert seen.current()[0] == str(conflict["steps"][1])
    said = page.locator(".cs-now-conflict").inner_text()
    assert said.startswith("⚠ conflict 1 (access 2 of 3): lost update on dict['x']: ")
    assert page.locator("tr.cs-related").count() == 2

    # Space plays: the step moves on by itself; Space again pauses.
    page.keyboard.press("Home")
    page.keyboard.press(" ")
    assert page.get_attribute("button.cs-play", "aria-pressed") == "true"
    from playwright.sync_api import expect

    # Waits for the step to change (polling, at most 5 s), whatever the speed.
    expect(page.locator("tr.cs-current")).not_to_have_attribute("data-step", "1")
    page.keyboard.press(" ")
    assert page.get_attribute("button.cs-play", "aria-pressed") == "false"

    # The replay command and the call, as text to copy.
    codes = page.locator(".cs-copyrow code").all_inner_texts()
    assert codes == [
        "critsec explore s.py:x",
        f"critsec.replay(setup, tasks, invariant, {result.schedule!r})",
    ]
    save_screenshot(page, tmp_path, "html-player.png")
    # Printed, every step shows and no button does.
    page.emulate_media(media="print")
    assert page.locator("tr.cs-step:visible").count() == steps
    assert page.locator("button:visible").count() == 0
    seen.assert_clean()
    page.close()


def test_hostile_strings_show_as_text_and_run_nothing(browser: Browser, tmp_path: Path) -> None:
    invariant, exception = hostile_invariant(), hostile_exception()
    state_shown = [XSS_SCRIPT, XSS_IMG]  # in the failure message's state
    raised = ["ValueError: <script>window.pwned = 3</script>", 'onerror="window.pwned = 4"']
    pages: list[tuple[Path, list[str]]] = []
    for name, result, texts in (
        ("invariant", invariant, state_shown),
        ("exception", exception, raised),
    ):
        report = tmp_path / f"{name}.html"
        report.write_text(render_html(result, page=True))
        pages.append((report, texts))
    # Two fragments in one page with no Content-Security-Policy, as a
    # notebook shows them: only the escaping stands between them and script.
    notebook = tmp_path / "notebook.html"
    notebook.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        + invariant._repr_html_()
        + exception._repr_html_()
        + "</body></html>"
    )
    pages.append((notebook, state_shown + raised))
    for report, texts in pages:
        seen = Watched(browser, report.as_uri())
        page = seen.page
        text = page.locator("body").inner_text()
        for expected in texts:
            assert expected in text
        assert page.locator("img").count() == 0
        seen.assert_clean()
        page.close()

    # In the notebook, each player on its own: the second's buttons move
    # only it, and its last step shows the traceback, as text.
    seen = Watched(browser, notebook.as_uri())
    players = seen.page.locator(".critsec-player")
    assert players.count() == 2
    first, second = players.nth(0), players.nth(1)
    second.locator("button.cs-next").click()
    assert first.locator("tr.cs-current").get_attribute("data-step") == "1"
    assert second.locator("tr.cs-current").get_attribute("data-step") == "2"
    second.locator("button.cs-last").click()
    detail = second.locator(".cs-now-detail").inner_text()
    assert "Traceback" in detail and "window.pwned = 4" in detail
    save_screenshot(seen.page, tmp_path, "html-player-hostile.png")
    seen.assert_clean()
    seen.page.close()


def test_a_page_without_steps_or_failure_runs_clean(browser: Browser, tmp_path: Path) -> None:
    found = lost_update()
    empty = dataclasses.replace(found, events=(), trace="(no steps recorded)")
    passed = critsec.explore(setup, [inc], lambda state: state["x"] == 1, seed=1)
    for name, result in (("empty", empty), ("passed", passed)):
        report = tmp_path / f"{name}.html"
        report.write_text(render_html(result, page=True))
        seen = Watched(browser, report.as_uri())
        seen.page.keyboard.press("ArrowRight")
        if result.failed:
            assert seen.page.locator(".cs-counter").inner_text() == "(no steps recorded)"
        else:
            assert seen.page.locator("h2").inner_text() == "No failing schedule"
        seen.assert_clean()
        seen.page.close()
