"""A failing schedule as one self-contained HTML file: an interleaving player.

One lane per task, one row per step, as the text trace has them; buttons and
keys (Left/Right, Space, Home/End) move a highlighted current step and show
its source line; the conflict that explains the failure is marked and said
in words; the replay command is there to copy. No network: the style and
script are inline, and a whole page forbids anything else by its
Content-Security-Policy.

Everything the user's program put into the trace (values, names, exception
text, source lines, the state's repr) is data, never markup: it travels as
JSON inside ``<script type="application/json">`` with ``<``, ``>`` and ``&``
written as ``\\u003c`` and so on (so no ``</script>`` can end it), and the
script puts it into the page with ``textContent`` only. Each string is cut
as the failure message cuts a state's repr, so a state of 100,000 items
makes a page of kilobytes, not megabytes.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
from typing import TYPE_CHECKING, Any

from ._driver import _shortened as _cut  # each string: as a failure message cuts a state
from ._trace import _cell, _conflicts_for, _ending, _where, summary

if TYPE_CHECKING:
    from ._explore import Result

__all__ = ["render_html", "script_json"]

#: Lines of a traceback kept (the last ones: the exception is at the end).
MAX_DETAIL_LINES = 60


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element: no
    ``<``, ``>`` or ``&`` is left to end the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _cut_lines(text: str) -> str:
    """A multi-line text (a traceback, the text trace) with every line cut,
    and only the last ``MAX_DETAIL_LINES`` lines if there are more."""
    lines = text.splitlines()
    if len(lines) > MAX_DETAIL_LINES:
        left_out = f"... ({len(lines) - MAX_DETAIL_LINES:,} lines left out)"
        lines = [left_out, *lines[-MAX_DETAIL_LINES:]]
    return "\n".join(_cut(line) for line in lines)


def _data(result: Result, replay_command: str | None) -> dict[str, Any]:
    """What the player shows, every user-made string already cut."""
    names, events, outcome = result.task_names, result.events, result.outcome
    conflicts = _conflicts_for(names, events, outcome)
    marks: dict[int, list[int]] = {}
    for number, conflict in enumerate(conflicts, 1):
        for step in conflict.steps:
            marks.setdefault(step, []).append(number)
    steps = []
    for i, event in enumerate(events):
        steps.append(
            {
                "task": event.task,
                "kind": event.kind,
                "cell": _cut(_cell(event)),
                "where": _cut(event.where),
                "file": _cut(_where(event)),
                "source": _cut(event.source),
                "detail": _cut_lines(event.detail),
                "switch": i > 0 and events[i - 1].task != event.task,
                "marks": marks.get(i + 1, []),
            }
        )
    ending = _ending(names, events, [], outcome)
    token = result.schedule
    return {
        "title": _cut(summary(result, "").splitlines()[0]),
        "tasks": [_cut(name) for name in names],
        "steps": steps,
        "conflicts": [
            {"pattern": c.pattern, "steps": list(c.steps), "text": _cut(c.text)} for c in conflicts
        ],
        "failure": _cut(ending[0]) if ending else "",
        "detail": _cut_lines("\n".join(ending[1:])),
        "command": None if token is None or replay_command is None else _cut(replay_command),
        "python": None if token is None else f"critsec.replay(setup, tasks, invariant, {token!r})",
    }


# -- the page ---------------------------------------------------------------------

_CSS = """
.critsec-player{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;
 background:#fff;max-width:100%;padding:.2em}
.critsec-player:focus{outline:none}
.critsec-player :focus-visible{outline:3px solid #1a4fd0;outline-offset:2px}
.critsec-player h2{font-size:1.15em;margin:.2em 0 .5em}
.critsec-player h3{font-size:1em;margin:1em 0 .3em}
.critsec-player code,.critsec-player pre,.critsec-player table{
 font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:13px}
.critsec-player pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:.3em 0}
.critsec-player button{font:inherit;padding:.2em .7em;border:1px solid #444;
 border-radius:4px;background:#f2f2f2;color:#111;cursor:pointer}
.critsec-player button[aria-pressed=true]{background:#111;color:#fff}
.critsec-player .cs-controls{display:flex;flex-wrap:wrap;gap:.4em;align-items:center;
 margin:.3em 0 .6em}
.critsec-player .cs-keys{color:#444;font-size:.9em}
.critsec-player .cs-now{border:2px solid #111;border-radius:6px;padding:.4em .7em;
 margin-bottom:.6em}
.critsec-player .cs-now p{margin:.15em 0}
.critsec-player .cs-now .cs-warn{font-weight:bold;white-space:pre-line}
.critsec-player .cs-lanes{max-height:60vh;overflow:auto;border:1px solid #888}
.critsec-player table{border-collapse:collapse;width:100%}
.critsec-player th,.critsec-player td{padding:.1em .5em;text-align:left;vertical-align:top;
 border-right:1px solid #ccc;white-space:pre-wrap;overflow-wrap:anywhere}
.critsec-player thead th{position:sticky;top:0;background:#e8e8e8;border-bottom:2px solid #444;
 white-space:nowrap}
.critsec-player td.cs-n{text-align:right;white-space:nowrap;color:#333}
.critsec-player tr.cs-step{cursor:pointer}
.critsec-player tr.cs-switch td{font-size:11px;color:#555;border-top:1px dashed #666}
.critsec-player td.cs-conflict{background:#fde0dc;font-weight:bold}
.critsec-player tr.cs-current{outline:3px solid #111;outline-offset:-3px;background:#fff2a8}
.critsec-player tr.cs-current td.cs-lane-on{font-weight:bold}
.critsec-player tr.cs-related{outline:2px dashed #111;outline-offset:-2px}
.critsec-player .cs-src{color:#333}
.critsec-player .cs-copyrow{display:flex;gap:.5em;align-items:baseline;flex-wrap:wrap;
 margin:.2em 0}
.critsec-player .cs-copyrow code{background:#f2f2f2;padding:.1em .3em;overflow-wrap:anywhere}
@media print{
 .critsec-player .cs-controls,.critsec-player .cs-now,.critsec-player button,
 .critsec-player .cs-copied{display:none !important}
 .critsec-player .cs-lanes{max-height:none;overflow:visible;border:0}
 .critsec-player thead th{position:static}
 .critsec-player tr{break-inside:avoid}
 .critsec-player tr.cs-current,.critsec-player tr.cs-related{outline:none;background:none}
 .critsec-player .cs-marker{visibility:hidden}
}
"""

# The player. It reads its data (parsed JSON) and writes only with
# textContent: see the module note. __ROOT__ is the id of its element.
_JS = """
(function () {
  "use strict";
  var root = document.getElementById(__ROOT__);
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.cs-data").textContent);
  var steps = data.steps, n = steps.length, current = 0, timer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function button(label, title, act) {
    var b = el("button", "", label);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", function () { act(); });
    return b;
  }
  function name(task) {
    return task >= 0 && task < data.tasks.length ? data.tasks[task] : "task " + task;
  }
  function mark(numbers) {
    return numbers.length ? " \\u26a0" + numbers.join(",") : "";
  }

  var fallback = root.querySelector(".cs-fallback");
  if (fallback) fallback.parentNode.removeChild(fallback);
  var app = root.querySelector(".cs-app");

  // The controls.
  var controls = el("div", "cs-controls");
  controls.setAttribute("role", "toolbar");
  controls.setAttribute("aria-label", "step through the schedule");
  var play = button("\\u25b6 play", "play / pause (Space)", toggle);
  play.className = "cs-play";
  play.setAttribute("aria-pressed", "false");
  var buttons = [
    button("|\\u25c0 first", "first step (Home)", function () { go(0); }),
    button("\\u25c0 previous", "previous step (Left arrow)", function () { go(current - 1); }),
    play,
    button("next \\u25b6", "next step (Right arrow)", function () { go(current + 1); }),
    button("last \\u25b6|", "last step (End)", function () { go(n - 1); })
  ];
  buttons[0].className = "cs-first";
  buttons[1].className = "cs-prev";
  buttons[3].className = "cs-next";
  buttons[4].className = "cs-last";
  buttons.forEach(function (b) { controls.appendChild(b); });
  var counter = el("span", "cs-counter");
  controls.appendChild(counter);
  controls.appendChild(el("span", "cs-keys",
    "keys: \\u2190 \\u2192 step, Space play/pause, Home/End first/last"));
  app.appendChild(controls);

  // The current step, in words.
  var now = el("div", "cs-now");
  now.setAttribute("aria-live", "polite");
  var nowStep = el("p", "cs-now-step"), nowSource = el("code", "cs-now-source");
  var nowConflict = el("p", "cs-now-conflict cs-warn"), nowDetail = el("pre", "cs-now-detail");
  var sourceLine = el("p", "", "source: ");
  sourceLine.appendChild(nowSource);
  [nowStep, sourceLine, nowConflict, nowDetail].forEach(function (p) { now.appendChild(p); });
  app.appendChild(now);

  // The swimlanes: one column per task, one row per step.
  var lanes = el("div", "cs-lanes");
  var table = el("table"), head = el("thead"), hrow = el("tr"), body = el("tbody");
  hrow.appendChild(el("th", "", "#"));
  data.tasks.forEach(function (t) { hrow.appendChild(el("th", "", t)); });
  hrow.appendChild(el("th", "", "line"));
  head.appendChild(hrow);
  table.appendChild(head);
  table.appendChild(body);
  lanes.appendChild(table);
  app.appendChild(lanes);

  var rows = [], lastSide = null;
  steps.forEach(function (s, i) {
    if (s.switch) {
      var sw = el("tr", "cs-switch");
      sw.appendChild(el("td"));
      var away = steps[i - 1].task;
      for (var t = 0; t < data.tasks.length; t++) {
        sw.appendChild(el("td", "", t === away ? "\\u21c4 switch" : ""));
      }
      sw.appendChild(el("td"));
      body.appendChild(sw);
    }
    var row = el("tr", "cs-step");
    row.setAttribute("data-step", String(i + 1));
    var number = el("td", "cs-n");
    number.appendChild(el("span", "cs-marker", ""));
    number.appendChild(document.createTextNode(String(i + 1)));
    row.appendChild(number);
    for (var t = 0; t < data.tasks.length; t++) {
      var mine = t === s.task;
      var cell = el("td", mine ? "cs-lane-on" : "", mine ? s.cell + mark(s.marks) : "");
      if (mine && s.marks.length) cell.classList.add("cs-conflict");
      row.appendChild(cell);
    }
    var side = s.task + "|" + s.where;
    var where = el("td", "cs-src", s.where && side !== lastSide
      ? s.file + (s.source && s.source !== s.cell ? "  " + s.source : "") : "");
    lastSide = side;
    row.appendChild(where);
    row.addEventListener("click", function () { stop(); go(i); });
    body.appendChild(row);
    rows.push(row);
  });

  // What failed, and why.
  if (data.conflicts.length) {
    app.appendChild(el("h3", "", "\\u26a0 The conflict that explains it"));
    var list = el("ul", "cs-conflicts");
    data.conflicts.forEach(function (c, k) {
      var item = el("li", "", "\\u26a0" + (k + 1) + " " + c.text + " ");
      c.steps.forEach(function (step) {
        item.appendChild(button("step " + step, "go to step " + step,
          function () { stop(); go(step - 1); }));
        item.appendChild(document.createTextNode(" "));
      });
      list.appendChild(item);
    });
    app.appendChild(list);
  }
  if (data.failure) app.appendChild(el("p", "cs-failure", data.failure));
  if (data.detail) app.appendChild(el("pre", "cs-detail", data.detail));

  // Replay it.
  if (data.command || data.python) {
    app.appendChild(el("h3", "", "Replay this schedule"));
    [["from the shell:", data.command], ["from Python:", data.python]].forEach(function (pair) {
      var text = pair[1];
      if (!text) return;
      var line = el("div", "cs-copyrow"), code = el("code", "", text);
      line.appendChild(el("span", "", pair[0]));
      var said = el("span", "cs-copied");
      said.setAttribute("aria-live", "polite");
      line.appendChild(code);
      line.appendChild(button("copy", "copy this command", function () {
        var range = document.createRange();
        range.selectNodeContents(code);
        var selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        function selected() { said.textContent = "selected: press Ctrl+C to copy"; }
        if (navigator.clipboard && navigator.clipboard.writeText) {
          navigator.clipboard.writeText(text).then(function () {
            said.textContent = "copied";
          }, selected);
        } else {
          selected();
        }
      }));
      line.appendChild(said);
      app.appendChild(line);
    });
  }

  var lit = [];  // the rows marked now: only they change (a trace may have 20,000)
  function show() {
    if (!n) {
      counter.textContent = "(no steps recorded)";
      now.hidden = true;
      return;
    }
    lit.forEach(function (row) {
      row.classList.remove("cs-current", "cs-related");
      row.removeAttribute("aria-current");
      row.firstChild.firstChild.textContent = "";
    });
    lit = [rows[current]];
    rows[current].classList.add("cs-current");
    rows[current].setAttribute("aria-current", "step");
    rows[current].firstChild.firstChild.textContent = "\\u25b6 ";
    steps[current].marks.forEach(function (k) {
      data.conflicts[k - 1].steps.forEach(function (step) {
        if (step - 1 === current) return;
        rows[step - 1].classList.add("cs-related");
        lit.push(rows[step - 1]);
      });
    });
    var s = steps[current];
    counter.textContent = "step " + (current + 1) + " of " + n;
    nowStep.textContent = "\\u25b6 current: step " + (current + 1) + " of " + n + ", " +
      name(s.task) + ": " + s.cell;
    var where = s.where, source = s.source, note = "";
    for (var back = current - 1; !where && back >= 0; back--) {
      if (steps[back].task === s.task && steps[back].where) {
        where = steps[back].where;
        source = steps[back].source;
        note = " (the last line " + name(s.task) + " ran)";
      }
    }
    nowSource.textContent = where ? where + "  " + source + note : "no source line for this step";
    var said = s.marks.map(function (k) {
      var c = data.conflicts[k - 1];
      return "\\u26a0 conflict " + k + " (access " + (c.steps.indexOf(current + 1) + 1) +
        " of 3): " + c.text;
    });
    nowConflict.textContent = said.join("\\n");
    nowConflict.hidden = !said.length;
    nowDetail.textContent = s.detail;
    nowDetail.hidden = !s.detail;
    var box = lanes.getBoundingClientRect(), at = rows[current].getBoundingClientRect();
    if (at.top < box.top + 30 || at.bottom > box.bottom) {
      lanes.scrollTop += at.top - box.top - box.height / 3;
    }
  }
  function go(i) {
    current = Math.max(0, Math.min(n - 1, i));
    show();
  }
  function stop() {
    if (timer !== null) clearInterval(timer);
    timer = null;
    play.textContent = "\\u25b6 play";
    play.setAttribute("aria-pressed", "false");
  }
  function toggle() {
    if (timer !== null) { stop(); return; }
    if (current >= n - 1) go(0);
    play.textContent = "\\u275a\\u275a pause";
    play.setAttribute("aria-pressed", "true");
    timer = setInterval(function () {
      if (current >= n - 1) { stop(); return; }
      go(current + 1);
    }, 700);
  }
  var keys = {
    ArrowLeft: function () { stop(); go(current - 1); },
    ArrowRight: function () { stop(); go(current + 1); },
    Home: function () { stop(); go(0); },
    End: function () { stop(); go(n - 1); },
    " ": toggle
  };
  // A whole page takes its keys everywhere; a player among others (a
  // notebook) only when it has the focus, so as not to steal the page's.
  var target = root.getAttribute("data-page") ? document : root;
  target.addEventListener("keydown", function (event) {
    var act = keys[event.key];
    if (!act || event.altKey || event.ctrlKey || event.metaKey) return;
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
    event.preventDefault();  // no scrolling, and Space does not press a focused button
    act();
  });
  app.hidden = false;
  show();
})();
"""


def _passed(result: Result) -> str:
    return (
        '<h2 class="cs-title">No failing schedule</h2>\n'
        f'<p class="cs-summary">{html.escape(summary(result, ""))}</p>\n'
    )


def _player(result: Result, root: str, replay_command: str | None) -> tuple[str, str]:
    """(markup, script) of the player of a failed result. The markup holds
    the data and the text trace for where scripts do not run (an untrusted
    notebook); the script builds the player from the data."""
    data = _data(result, replay_command)
    markup = (
        f'<h2 class="cs-title">{html.escape(data["title"])}</h2>\n'
        f'<script type="application/json" class="cs-data">{script_json(data)}</script>\n'
        f'<pre class="cs-fallback">{html.escape(_cut_lines(result.trace))}</pre>\n'
        '<div class="cs-app" hidden></div>\n'
    )
    return markup, _JS.replace("__ROOT__", json.dumps(root))


def render_html(result: Result, *, replay_command: str | None = None, page: bool = False) -> str:
    """The player of ``result`` as HTML: a fragment (``page=False``: for a
    notebook; its ids are fresh on every call, so that several can share a
    page) or a whole page. ``replay_command``: the shell command that
    replays the schedule, shown to copy with the ``critsec.replay`` call.
    A passing result says so, with no player. Pure but for the fresh id;
    any caller."""
    root = f"critsec-{secrets.token_hex(6)}"
    attributes = f'class="critsec-player" id="{root}" tabindex="-1"'
    if page:
        attributes += ' data-page="1"'
    script = ""
    if result.failed:
        markup, script = _player(result, root, replay_command)
    else:
        markup = _passed(result)
    fragment = (
        f"<div {attributes}>\n<style>{_CSS}</style>\n{markup}"
        + (f"<script>{script}</script>\n" if script else "")
        + "</div>\n"
    )
    if not page:
        return fragment
    # Nothing but this page's own style and script may run or load.
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{digest}'"
    title = html.escape(_cut(summary(result, "").splitlines()[0]))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>critsec: {title}</title>\n</head>\n<body>\n{fragment}</body>\n</html>\n"
    )
