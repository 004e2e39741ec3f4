"""GeoReport v2 on the wire: XML (the default, ``text/xml; charset=utf-8``) and JSON.

Answers are built as plain values, then written by ``xml.etree`` (which escapes ``&``,
``<`` and ``>``) or ``json``. Characters XML 1.0 cannot carry at all (most control
characters) are dropped from XML text, so a hostile description never makes an answer
FixMyStreet's parser refuses.

The shapes follow what FixMyStreet's client reads (``perllib/Open311.pm``, XML::Simple
with the group tags services/service, attributes/attribute, values/value,
service_requests/request, errors/error, service_request_updates/request_update,
groups/group): a ``Group`` is a wrapper element around repeated items (a JSON list); a
plain list of values is the same element repeated (``media_url``).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from aiohttp import web

XML_TYPE = "text/xml"
FORMATS = ("xml", "json")
_NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class Group:
    """``<tag><item>..</item>..</tag>`` in XML; a list in JSON."""

    item: str
    items: list[Any]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, Group):
            wrapper = ET.SubElement(element, key)
            for item in value.items:
                _child(wrapper, value.item, item)
        elif isinstance(value, list | tuple):
            for item in value:
                _child(element, key, item)
        else:
            _child(element, key, value)


def _child(parent: ET.Element, tag: str, value: Any) -> None:
    child = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        _fill(child, value)
    else:
        child.text = _text(value)


def to_xml(root: str, item: str | None, body: list[dict[str, Any]] | dict[str, Any]) -> bytes:
    """``<root><item>..</item>..</root>`` for a list, ``<root>..</root>`` for one value."""
    element = ET.Element(root)
    if isinstance(body, dict):
        _fill(element, body)
    else:
        assert item is not None
        for value in body:
            _child(element, item, value)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(element, encoding="utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, Group):
        return [_plain(v) for v in value.items]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def answer(
    fmt: str,
    root: str,
    item: str | None,
    body: list[dict[str, Any]] | dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    if fmt == "json":
        return web.json_response(_plain(body), status=status, headers=headers)
    return web.Response(
        body=to_xml(root, item, body),
        status=status,
        content_type=XML_TYPE,
        charset="utf-8",
        headers=headers,
    )


class Open311Error(Exception):
    """An answer of ``<errors>``: the HTTP status, and one description per problem, each
    naming its field (``service_code: unknown service 'x'``)."""

    def __init__(self, status: int, *descriptions: str, headers: dict[str, str] | None = None):
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions
        self.headers = headers


def error_answer(fmt: str, error: Open311Error) -> web.Response:
    items = [{"code": error.status, "description": d} for d in error.descriptions]
    return answer(fmt, "errors", "error", items, status=error.status, headers=error.headers)
