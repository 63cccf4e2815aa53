"""What Slack would refuse in Block Kit: the limits a real workspace enforces."""

from __future__ import annotations

from typing import Any

BLOCK_TYPES = {"section", "divider", "header", "context", "actions", "image", "input", "rich_text", "file", "video"}
PING_MARKERS = ("<!channel>", "<!here>", "<!everyone>", "<!subteam")


def validate_blocks(blocks: Any, limit: int) -> list[str]:
    """What Slack would refuse about a list of blocks (empty when it would accept them)."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    problems = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    for i, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            problems.append(f"unknown block type {kind!r} {where}")
            continue
        if kind == "section":
            text = block.get("text")
            if text is None and not block.get("fields"):
                problems.append(f"section needs text or fields {where}")
            if text is not None and not _text_ok(text, 3000):
                problems.append(f"must be less than 3001 characters {where}/text")
            for field_ in block.get("fields") or []:
                if not _text_ok(field_, 2000):
                    problems.append(f"must be less than 2001 characters {where}/fields")
            if "accessory" in block and not _element_ok(block["accessory"]):
                problems.append(f"invalid accessory {where}")
        elif kind == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text" or not _text_ok(text, 150):
                problems.append(f"header text must be plain_text under 151 characters {where}")
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > 10 or not all(_text_ok(e, 3000) for e in elements):
                problems.append(f"invalid context elements {where}")
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > 25 or not all(_element_ok(e) for e in elements):
                problems.append(f"invalid actions elements {where}")
    return problems


def _text_ok(obj: Any, limit: int) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("type") in ("mrkdwn", "plain_text")
        and isinstance(obj.get("text"), str)
        and 0 < len(obj["text"]) <= limit
    )


def _element_ok(element: Any) -> bool:
    if not isinstance(element, dict) or element.get("type") != "button":
        return isinstance(element, dict) and "type" in element
    text = element.get("text") or {}
    return (
        text.get("type") == "plain_text"
        and _text_ok(text, 75)
        and len(str(element.get("value", ""))) <= 2000
        and len(str(element.get("action_id", ""))) <= 255
    )
