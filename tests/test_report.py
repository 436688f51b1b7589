"""``critsec report``: one self-contained HTML file with the lab's findings.

The report is made once (``--quick``, as a real subprocess, in the default
place: the current directory) and read as text and parsed; then opened in
a real headless Chromium, with the helpers of ``test_html_player``. A bad
``--out`` is refused in one line before any work.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import pytest
from terminal import run_on_terminal
from test_html_player import (  # noqa: F401 -- browser is a fixture
    XSS_IMG,
    XSS_SCRIPT,
    Watched,
    browser,
    save_screenshot,
)

from critsec.lab import _report
from critsec.lab._counter import CounterResult
from critsec.lab._demo import DemoCheck, DemoStep

if TYPE_CHECKING:
    from playwright.sync_api import Browser

COMMAND = [sys.executable, "-m", "critsec.cli", "report"]

#: The sections the report must have, by id.
SECTIONS = [
    "tour",
    *(f"step-{n}" for n in range(1, 7)),
    "lost-updates",
    "lost-threads-lesson",
    "lost-threads-value",
    "lost-processes",
    "lost-coroutines",
    "bench",
    "explorer",
]


class Parsed(HTMLParser):
    """Every start tag with its attributes; unclosed elements are an error."""

    VOID: ClassVar[set[str]] = {"meta", "img", "br", "hr", "input", "link", "source", "wbr"}

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()

    def all(self, tag: str) -> list[dict[str, str]]:
        return [attrs for name, attrs in self.tags if name == tag]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("report")
    done = subprocess.run(
        [*COMMAND, "--quick"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    return done, folder / "critsec-report.html"


def test_report_quick_writes_one_page_with_every_section(
    made: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, path = made
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no progress into a pipe
    assert done.stdout == ("report: critsec-report.html (6 of 6 steps behave as the lesson says)\n")
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    parsed = Parsed(page)
    assert parsed.open == []  # every element closed
    ids = [attrs["id"] for _, attrs in parsed.tags if "id" in attrs]
    for section in SECTIONS:
        assert section in ids, section
    # The tour's verdicts, in words, one per step.
    assert page.count("✔ PASS") == 6 and "✘ FAIL" not in page
    assert "global counter += 1" in page and "Left out with <code>--quick</code>" in page
    # A chart per histogram: inline PNGs.
    images = parsed.all("img")
    assert len(images) == 4
    for image in images:
        src = image["src"]
        assert src.startswith("data:image/png;base64,") and image["alt"]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    # The explorer's player, as a fragment with its data.
    assert len([a for a in parsed.all("div") if a.get("class") == "critsec-player"]) == 1
    assert len(parsed.all("script")) == 3  # its data and its script; the page's own


def test_report_is_self_contained(made: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    page = made[1].read_text(encoding="utf-8")
    parsed = Parsed(page)
    for _, attrs in parsed.tags:
        for name in ("src", "href", "action", "data"):
            value = attrs.get(name, "")
            assert not re.match(r"\s*(https?:|//)", value, flags=re.I), (name, value)
    assert all("src" not in attrs for attrs in parsed.all("script"))
    assert parsed.all("link") == [] and parsed.all("iframe") == []
    assert "@import" not in page and "url(" not in page
    # The policy names each script that runs by its hash, and nothing else.
    (policy,) = [
        a["content"] for a in parsed.all("meta") if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert policy.startswith("default-src 'none';") and "img-src data:" in policy
    for script in re.findall(r"<script>(.*?)</script>", page, flags=re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


def test_experiment_text_enters_the_page_as_text() -> None:
    hostile = XSS_SCRIPT + XSS_IMG
    step = DemoStep(
        1, hostile, hostile, hostile, [DemoCheck(hostile, hostile, hostile, 1.0, None)],
        passed=False, explanation=hostile, trace=hostile,
    )  # fmt: skip
    shown = _report._step(step)
    assert "<script" not in shown and "<img" not in shown
    assert shown.count("&lt;script&gt;window.pwned = 1") == 8  # each of its strings
    assert "✘ FAIL" in shown and "○ shown, not judged" in shown


@pytest.mark.parametrize("where", ["no/such/dir/report.html", "."])
def test_a_bad_out_is_one_line_and_exit_2_before_any_work(tmp_path: Path, where: str) -> None:
    path = tmp_path / where
    done = subprocess.run(
        [*COMMAND, "--quick", "--out", str(path)], capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"critsec: error: --out: cannot write {path}: ")
    assert list(tmp_path.iterdir()) == []


def test_the_report_in_a_browser(
    browser: Browser,  # noqa: F811
    made: tuple[subprocess.CompletedProcess[str], Path],
    tmp_path: Path,
) -> None:
    seen = Watched(browser, made[1].as_uri())
    page = seen.page
    # The keyboard reaches the skip link first, then the contents.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#tour"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#tour"
    assert page.evaluate("document.activeElement.closest('nav') !== null")
    for section in SECTIONS:
        assert page.locator(f"#{section}").count() == 1
    # Every chart loaded (a data: URL) and has a size.
    widths = page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == 4 and all(width > 100 for width in widths)
    # The embedded player: its next button moves the step, and so do keys
    # once it has the focus.
    player = page.locator(".critsec-player")
    current = player.locator("tr.cs-current")
    assert current.get_attribute("data-step") == "1"
    player.locator("button.cs-next").click()
    assert current.get_attribute("data-step") == "2"
    page.keyboard.press("ArrowRight")  # the focus is on the button just pressed
    assert current.get_attribute("data-step") == "3"
    page.keyboard.press("Home")
    assert current.get_attribute("data-step") == "1"
    save_screenshot(page, tmp_path, "critsec-report.png")
    folded = page.locator("#lost-processes details table")
    assert folded.is_hidden()  # on screen, each trial's table is folded away
    # Printed: no navigation and no buttons; every step of the player shows.
    page.emulate_media(media="print")
    assert page.locator("nav").is_hidden()
    assert page.locator("button:visible").count() == 0
    assert player.locator("tr.cs-step:visible").count() == player.locator("tr.cs-step").count()
    # ... and the folded tables of each trial.
    assert folded.is_visible()
    seen.assert_clean()
    page.close()


def test_progress_shows_on_a_terminal_and_is_gone_before_the_last_line(tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    screen = run_on_terminal([*COMMAND, "--quick", "--out", str(out)], timeout=120)
    total = _report.jobs(quick=True)
    for job in ("step 1/6: Threads without a lock", "lost updates, trial 6/6: coroutines"):
        assert job in screen
    # Each job started marks the one before done: the last one started at
    # total - 1 done, and no job beyond it.
    assert f"{total - 1}/{total}" in screen and f"{total}/{total}" not in screen
    assert screen.rindex("the explorer: the lesson") < screen.index("report: ")
    assert out.stat().st_size > 0


def test_without_matplotlib_the_numbers_stay_as_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    plot = _report._charts()
    assert plot is None
    results = [
        CounterResult("threads", False, 2, 100, 10, 9, observed, 201, 0.001, trial=trial)
        for trial, observed in ((1, 9), (2, 40), (3, -60))
    ]
    experiment = _report.Histogram("t", "<b>title</b>", "why", lambda trial: results[trial - 1])
    shown = _report._histogram(experiment, results, plot)
    assert "<img" not in shown and "pip install 'critsec[lab]'" in shown
    assert "&lt;b&gt;title&lt;/b&gt;" in shown
    assert "Lost updates in 2 of 3 trials; median 31, most 69." in shown
    assert shown.count("<tr>") == 4  # the head and one row per trial
