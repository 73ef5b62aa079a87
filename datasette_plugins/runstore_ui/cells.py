"""HTML for cells of the run tables. Every run-supplied value goes through
markupsafe's escaping (`Markup.format`); nothing from a run is marked safe."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape

from .format import STATES, duration_text, flatten, loads, relative_time, value_text

RUN_TABLES = frozenset({"runs", "run_list", "run_records"})
# A project's view of runs (`runs/<project>`, the workspace's runs table) is a run table too.
PROJECT_VIEW_PREFIX = "runs/"
# Views whose state is the one every reader shows (schema 008): running there is live.
SHOWN_STATE_VIEWS = frozenset({"runs", "run_list"})
# Views and tables whose rows carry a run_key worth linking to the run page.
LINKED_TABLES = frozenset(
    {"run_list", "run_tags", "config_values", "summary_values", "metrics", "history", "steps"}
)
MAX_PAIRS = 4


def is_run_table(table: str | None) -> bool:
    """The runs tables and views, including each project's view."""
    return table is not None and (table in RUN_TABLES or table.startswith(PROJECT_VIEW_PREFIX))


def shows_state(table: str) -> bool:
    """Tables whose state is the one every reader shows (running there is live)."""
    return table in SHOWN_STATE_VIEWS or table.startswith(PROJECT_VIEW_PREFIX)


def is_key_column(table: str, column: str) -> bool:
    """A config or summary key's column of a project view."""
    return table.startswith(PROJECT_VIEW_PREFIX) and column.startswith(("config.", "summary."))


def renders(table: str, column: str, value: Any) -> bool:
    """False for the cells `render` leaves to Datasette in a project view: the config
    and summary keys that are not floats (a page has a column per key, and each call
    through the hook costs)."""
    if not table.startswith(PROJECT_VIEW_PREFIX):
        return True
    return not column.startswith(("config.", "summary.")) or isinstance(value, float)


def run_url(database_url: str, run_key: Any) -> str:
    """The run page of run `run_key` under a database URL."""
    return f"{database_url}/-/runstore/run/{int(run_key)}"


def run_link(database_url: str, run_key: Any, text: Any) -> Markup:
    """A link to a run page; `text` is escaped."""
    return Markup('<a class="runstore-run-link" href="{}">{}</a>').format(
        run_url(database_url, run_key), text
    )


def state_badge(state: Any) -> Markup:
    """A run state as a coloured badge (unknown states get a neutral one)."""
    css = state if state in STATES else "other"
    return Markup('<span class="runstore-state runstore-state-{}">{}</span>').format(css, state)


def live_badge(state: Any, live: bool) -> Markup:
    """The state badge; for a live run (running, its writer still beating) wrapped
    with a pulsing dot (runstore.css). The run page's script updates it by its
    `data-runstore-state` wrapper, building the same markup (stateBadge in
    static/runstore_charts.js: keep the two alike)."""
    badge = state_badge(state)
    if not live:
        return badge
    return Markup(
        '<span class="runstore-live" title="Live: its process is still logging">'
        '<span class="runstore-live-dot" aria-hidden="true"></span>{}</span>'
    ).format(badge)


def tag_chips(tags: list[Any], table_url: str | None = None) -> Markup:
    """Tags as chips; with a table URL each chip filters the table by its tag."""
    chips = []
    for tag in tags:
        text = tag if isinstance(tag, str) else value_text(tag)
        if table_url is None:
            chips.append(Markup('<span class="runstore-tag">{}</span>').format(text))
        else:
            href = f"{table_url}?{urlencode({'tags__arraycontains': text})}"
            chips.append(Markup('<a class="runstore-tag" href="{}">{}</a>').format(href, text))
    return Markup(" ").join(chips)


NOTE_CHARS = 80
_MD_LINE = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+(?:\[[ xX]\]\s+)?|\d+[.)]\s+)+")
_MD_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__|~~|`+)(.+?)\1|(?<!\w)[*_](?!\s)(.+?)(?<!\s)[*_](?!\w)")
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")


def note_text(notes: str, limit: int = NOTE_CHARS) -> str:
    """Notes as one line of plain text: the first line with words, its Markdown
    (headings, list and quote markers, emphasis, code, links, HTML tags) taken off,
    cut at `limit` characters; an ellipsis when anything is left out."""
    lines = [line for line in notes.splitlines() if line.strip()]
    if not lines:
        return ""
    text = _MD_LINE.sub("", lines[0])
    text = _MD_IMAGE_OR_LINK.sub(r"\1", text)
    for _ in range(3):  # nested emphasis: ***x***, **`x`**
        text = _MD_EMPHASIS.sub(lambda m: m.group(2) or m.group(3) or "", text)
    text = " ".join(_HTML_TAG.sub("", text).split())
    cut = len(text) > limit
    if cut:
        text = text[:limit].rstrip()
    if cut or len(lines) > 1:
        text += "\u2026"
    return text


def note_cell(notes: str) -> Markup:
    """Notes as one escaped line of plain text, all of them in the title."""
    return Markup('<span class="runstore-note" title="{}">{}</span>').format(
        notes, note_text(notes))


def key_values(obj: dict[str, Any], limit: int = MAX_PAIRS) -> Markup:
    """The first few pairs of a config/summary object as `key=value`."""
    pairs = list(flatten(obj))
    shown = [
        Markup('<span class="runstore-kv"><span class="runstore-k">{}</span>={}</span>').format(
            key, value_text(value)
        )
        for key, value in pairs[:limit]
    ]
    more = len(pairs) - limit
    if more > 0:
        shown.append(Markup('<span class="runstore-more">+{} more</span>').format(more))
    return Markup(" ").join(shown)


def render(
    row: Any, value: Any, column: str, table: str, database_url: str, table_url: str
) -> Markup | None:
    """The HTML for one cell of a store table, or None to leave it to Datasette."""
    if column == "run_key" and table in LINKED_TABLES and value is not None:
        return run_link(database_url, value, value)
    if not is_run_table(table):
        return None
    if table.startswith(PROJECT_VIEW_PREFIX):
        html = project_view_cell(value, column)
        if html is not None:
            return html
    if column == "project" and isinstance(value, str) and table in RUN_TABLES:
        href = f"{database_url}/-/runstore/workspace?{urlencode({'project': value})}"
        return Markup('<a class="runstore-workspace-link" href="{}" title="{}">{}</a>').format(
            href, "This project's runs table: its config and summary keys as columns", value)
    if column == "name" and _has(row, "run_key"):
        return run_link(database_url, row["run_key"], "" if value is None else value)
    if column == "state" and value is not None:
        # The runs and run_list views already show a running run whose writer stopped
        # beating as crashed, so running there is live; run_records keeps what was written.
        return live_badge(value, shows_state(table) and value == "running")
    if column == "tags":
        tags = loads(value)
        if not isinstance(tags, list):
            return None
        # wrapped: no tags must not be an empty result, which leaves Datasette showing `[]`
        return Markup('<span class="runstore-cell-tags">{}</span>').format(
            tag_chips(tags, table_url))
    if column == "notes" and isinstance(value, str) and value.strip():
        return note_cell(value)
    if column == "runtime" and isinstance(value, (int, float)):
        return Markup('<span class="runstore-runtime" title="{} s">{}</span>').format(
            value, duration_text(value)
        )
    if column in ("summary", "config"):
        obj = loads(value)
        return key_values(obj) if isinstance(obj, dict) else None
    return None


def _has(row: Any, column: str) -> bool:
    try:
        return column in row.keys()
    except AttributeError:
        return False


def project_view_cell(value: Any, column: str) -> Markup | None:
    """Cells a project's runs table shows more compactly than the run list: the
    creation time relative ("3 h ago", exact in the title), notes as one line of plain
    text (all of them in the title), numbers of config and summary keys shortened (exact in
    the title)."""
    if column == "created_at" and isinstance(value, str) and value:
        return Markup('<time class="runstore-when" datetime="{}" title="{}">{}</time>').format(
            value, value, relative_time(value))
    if column == "notes" and isinstance(value, str) and value.strip():
        return note_cell(value)
    if column == "runtime" and isinstance(value, (int, float)):
        text = duration_text(value)
        if "h " in text:  # 1h 02m: seconds add nothing past an hour
            text = text.rsplit(" ", 1)[0]
        return Markup('<span class="runstore-runtime" title="{} s">{}</span>').format(value, text)
    if column.startswith(("config.", "summary.")) and isinstance(value, float):
        # escape() and an f-string, not Markup.format: a page has a cell like this per key
        # and run
        return Markup(f'<span class="runstore-num" title="{escape(repr(value))}">'
                      f'{escape(value_text(value))}</span>')
    return None
