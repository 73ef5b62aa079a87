"""Run notes as Markdown, safely: CommonMark with raw HTML off, links limited to
http, https, mailto and relative URLs, and no images (they would fetch from the
network). GFM tables and strikethrough render; a note's headings rank below the page's
own (`#` becomes <h3>: the page has <h1> and the notes' <h2>). The rendered HTML is
the only run-supplied text marked safe."""

from __future__ import annotations

import functools
import re
from typing import Any

from markupsafe import Markup

SAFE_SCHEMES = frozenset({"http", "https", "mailto"})
_PATH_START = re.compile(r"[/?#]")
HEADING_SHIFT = 2  # `#` in notes -> <h3>


def safe_link(url: str) -> bool:
    """True for URLs notes may link to: relative ones (no `:` before the path) or
    those with a safe scheme. Anything else, `javascript:` and look-alikes with
    encoded or control characters included, is refused."""
    head = _PATH_START.split(url, maxsplit=1)[0]
    if ":" not in head:
        return True
    return head.split(":", 1)[0].lower() in SAFE_SCHEMES


@functools.lru_cache(maxsize=1)
def _parser() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.disable("image")
    # markdown-it-py's documented hook; a link that fails stays plain (escaped) text
    md.validateLink = safe_link  # type: ignore[method-assign]

    def link_open(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    def heading(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]  # each token is rendered once: shift its level
        token.tag = f"h{min(6, int(token.tag[1]) + HEADING_SHIFT)}"
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    md.add_render_rule("heading_open", heading)
    md.add_render_rule("heading_close", heading)
    return md


def render_notes(notes: Any) -> Markup:
    """Notes as HTML; empty Markup for no notes."""
    if not isinstance(notes, str) or not notes.strip():
        return Markup("")
    return Markup(_parser().render(notes))
