"""Block Kit messages from the jinja2 templates in templates/slack/, kept inside Slack's limits.

Templates build JSON with `|tojson`; whatever came from a feed or a user goes through
`|mrkdwn` first, which escapes `&`, `<`, `>` so a title containing `<!channel>` pings
nobody. `clamp` then enforces Slack's limits whatever a restyled template produces:
at most 50 blocks, section text at most 3,000 characters, header 150, button 75.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.render import render

MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
SECTION_TEXT = 3000
FIELD_TEXT = 2000
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
CONTEXT_ELEMENTS = 10
FALLBACK_TEXT = 3000
MAX_AUTHORS = 6
MAX_LABEL = 300  # a link label (a title) longer than this is cut before escaping

_PARTIAL_ENTITY = re.compile(r"&[#a-zA-Z0-9]*$")


def escape(text: object) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return str(text or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """`<url|label>` with both parts made safe; just the label when there is no usable URL."""
    label = str(label or "")
    if len(label) > MAX_LABEL:
        label = label[: MAX_LABEL - 1].rstrip() + "…"
    label = escape(label) or "link"
    if not url or not re.match(r"^https?://", url):
        return label
    safe_url = escape(url).replace("|", "%7C").replace(" ", "%20")
    return f"<{safe_url}|{label.replace('|', '¦')}>"


def authors(names: list[str] | None, limit: int = MAX_AUTHORS) -> str:
    names = list(names or [])
    text = ", ".join(names[:limit])
    return text + (" et al." if len(names) > limit else "")


def truncate(text: str, limit: int) -> str:
    """Cut escaped mrkdwn to `limit` characters without splitting an entity or a link."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    cut = _PARTIAL_ENTITY.sub("", cut)
    opened, closed = cut.rfind("<"), cut.rfind(">")
    if opened > closed:
        cut = cut[:opened]
    return cut.rstrip() + "…"


def render_blocks(name: str, *, limit: int = MAX_BLOCKS, **context: Any) -> list[dict]:
    """Render templates/slack/<name>.json.j2 (a JSON list of blocks) and clamp it."""
    text = render(f"slack/{name}.json.j2", **context)
    blocks = json.loads(text)
    if not isinstance(blocks, list):
        raise ValueError(f"templates/slack/{name}.json.j2 must render a JSON list of blocks")
    return clamp(blocks, limit)


def render_text(name: str, **context: Any) -> str:
    """Render templates/slack/<name>.txt.j2: a message's fallback text."""
    return truncate(render(f"slack/{name}.txt.j2", **context), FALLBACK_TEXT)


def message(name: str, **context: Any) -> dict:
    """`{"text": fallback, "blocks": [...]}` for chat.postMessage or respond()."""
    return {"text": render_text(name, **context), "blocks": render_blocks(name, **context)}


def notice(text: str) -> dict:
    """A plain answer in one section (text is ours, with user parts already escaped)."""
    return {"text": truncate(text, FALLBACK_TEXT), "blocks": clamp([_section(text)])}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def clamp(blocks: list[dict], limit: int = MAX_BLOCKS) -> list[dict]:
    """Keep a list of blocks inside Slack's limits (copies; the input is not changed)."""
    out = [_clamp_block(dict(b)) for b in blocks if isinstance(b, dict) and b.get("type")]
    if len(out) > limit:
        dropped = len(out) - limit + 1
        out = out[: limit - 1] + [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {dropped} more blocks not shown"}]}
        ]
    return out


def _clamp_text(obj: dict | None, limit: int) -> dict | None:
    if not isinstance(obj, dict) or "text" not in obj:
        return obj
    obj = dict(obj)
    obj["text"] = truncate(str(obj["text"]), limit) or " "
    return obj


def _clamp_block(block: dict) -> dict:
    kind = block["type"]
    if kind == "section":
        if "text" in block:
            block["text"] = _clamp_text(block["text"], SECTION_TEXT)
        if "fields" in block:
            block["fields"] = [_clamp_text(f, FIELD_TEXT) for f in block["fields"][:10]]
        if "accessory" in block:
            block["accessory"] = _clamp_element(block["accessory"])
    elif kind == "header":
        block["text"] = _clamp_text(block.get("text"), HEADER_TEXT)
    elif kind == "context":
        block["elements"] = [_clamp_text(e, SECTION_TEXT) for e in block.get("elements", [])[:CONTEXT_ELEMENTS]]
    elif kind == "actions":
        block["elements"] = [_clamp_element(e) for e in block.get("elements", [])[:25]]
    return block


def _clamp_element(element: dict) -> dict:
    element = dict(element)
    if element.get("type") == "button":
        element["text"] = _clamp_text(element.get("text"), BUTTON_TEXT)
        if "value" in element:
            element["value"] = str(element["value"])[:BUTTON_VALUE]
    return element


def to_json(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)
