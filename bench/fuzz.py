"""Fuzz the HTTP surface with malformed and hostile requests (issue 7).

``python -m bench.fuzz [--quick] [--requests N] [--seed S] [--concurrency C]``

Starts Responder as a process (``bench/server.py responder``: a fresh SQLite file in a
temporary directory, the intake key ``bench``, no background delivery) and sends it
``--requests`` generated requests (10,000; 2,000 with ``--quick``) on 127.0.0.1:

- ``POST /api/tasks`` with a valid report mutated field by field (wrong JSON types,
  null, strings at and past their limits, unicode edge cases, injection strings,
  numbers out of range / NaN / Infinity / 1e309 / 5000-digit integers, missing and
  unknown fields, several mutations at once), and at the transport level (wrong content
  types, invalid UTF-8, empty and non-object bodies, deep nesting, bodies over 1 MB,
  missing or wrong ``Authorization``);
- ``GET /api/tasks/{id}`` with hostile ids (huge numbers, unicode digits, injection
  strings, encoded slashes and NULs, very long ids) and with ids that exist;
- ``POST /api/messages`` with malformed activities (no Bot Framework auth configured:
  each must still be a 4xx).

Every answer is checked: no 5xx; every 4xx is JSON with a string ``error`` and
``message``; a 422 lists ``problems`` each naming a ``field``, and names the field the
generator broke when it knows which; a 2xx only for a request the generator built as
valid (and a request built as valid must get one). Exit status: 0 all good, 1 a 5xx or a
4xx not naming its field (or another wrong answer), 2 run invalid (server did not
start, too few requests answered).

Why not hypothesis: it is a test runner (``@given``, shrinking, its example database),
and ``strategy.example()`` is documented as for interactive use only. A load generator
needs a fixed number of requests, sent concurrently to a process, each with an
*expectation* (valid or not, which field) that the generator knows by construction, so
a seeded ``random.Random`` over a schema-driven mutation table is simpler, repeatable
(``--seed``) and as hostile; the unit tests keep hypothesis for properties of pure code.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import aiohttp
from yarl import URL

from bench.common import (
    COUNCIL_FILE,
    RESULTS,
    ServerStartError,
    in_parallel,
    machine,
    make_bodies,
    print_rows,
    server_process,
)
from bench.server import BENCH_KEY_SECRET
from responder.config import load_council

AUTH = f"Bearer {BENCH_KEY_SECRET}"
MAX_BODY = 1024 * 1024


@dataclass
class Case:
    kind: str  # what was done, for the table of failures
    method: str
    path: str  # already percent-encoded
    body: bytes | None = None
    content_type: str | None = "application/json"
    auth: str | None = AUTH
    valid: bool | None = False  # True: must be 2xx; False: must be 4xx; None: either
    fields: tuple[str, ...] = ()  # for a 422: one of these must be named
    statuses: tuple[int, ...] = ()  # for a 4xx: one of these (empty: any 4xx)


@dataclass
class Tally:
    requests: int = 0
    ok_2xx: int = 0
    by_status: Counter = field(default_factory=Counter)
    server_errors: int = 0
    unnamed: int = 0  # 4xx not JSON / no error+message / 422 problem without field
    wrong: int = 0  # 2xx for an invalid request, 4xx for a valid one, unexpected status
    transport_errors: int = 0
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < 40:
            self.samples.append(text)


# --- hostile values ---------------------------------------------------------------------


class Raw(str):
    """A value written into the JSON text as is (1e309, NaN, 5000-digit numbers)."""


UNICODE = [
    "\ud800",  # lone high surrogate (sent as the \\ud800 escape)
    "\udfff tail",  # lone low surrogate
    "a\ud83d",  # half an emoji
    "\u202eevil\u202c",  # RTL override
    "zero\u200bwidth\u200c\u200d\ufeff",
    "💩🏴󠁧󠁢󠁳󠁣󠁴󠁿👨‍👩‍👧‍👦",
    "nul\u0000byte",
    "\u0000",
    "control \u0001\u0007\u001b[31m",
    "e\u0301\u0301\u0301\u0301 combining",
    "\uffff\ufffe\ufffd",
    "\U0010ffff",
    "Z̴̡̢̛a̶̢̛l̷̢g̸̢o̵̢",
    "ﷺ" * 50,
    "line\r\nbreak\u2028\u2029",
    "   ",
    "Ünïcödé Ѩ 漢字 العربية",
]
INJECTION = [
    "'; DROP TABLE tasks; --",
    "1 OR 1=1",
    '" OR ""="',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "**bold** _x_ <at>everyone</at>",
    "{{DATE(2020-01-01T00:00:00Z, SHORT)}}",
    "${jndi:ldap://x/a}",
    "{{7*7}} {% raw %}",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "\\x00\\u0000",
    "$(reboot)",
    "`rm -rf /`",
    '=HYPERLINK("http://x")',
    "@everyone",
]
WRONG_TYPES: list[object] = [
    None,
    0,
    -1,
    1.5,
    True,
    False,
    [],
    [1, 2],
    {},
    {"a": 1},
    "",
    Raw("1e309"),
    Raw("NaN"),
    Raw("-Infinity"),
    Raw("9" * 5000),
]
BAD_NUMBERS: list[object] = [
    Raw("NaN"),
    Raw("Infinity"),
    Raw("-Infinity"),
    Raw("1e309"),
    Raw("-1e309"),
    Raw("9" * 5000),
    Raw("1" + "0" * 400),
    1e300,
    -1e300,
    "north",
    "",
    None,
    True,
    [51.9],
    {"v": 1},
]


def text_ok(text: str) -> bool | None:
    """Whether hostile text is acceptable in a free-text field: a NUL never is (PostgreSQL
    cannot store it); a lone surrogate may be refused or kept; anything else is fine."""
    if "\x00" in text:
        return False
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return None
    return True


def nested(depth: int, open_: str = "[", close: str = "]") -> Raw:
    return (
        Raw(open_ * depth + "1" + close * depth)
        if open_ == "["
        else Raw('{"a":' * depth + "1" + "}" * depth)
    )


def encode(value: object) -> bytes:
    """JSON text with Raw values spliced in; lone surrogates as \\u escapes."""
    raws: list[str] = []

    def mark(v: object) -> object:
        if isinstance(v, Raw):
            raws.append(str(v))
            return f"\x00RAW{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        if isinstance(v, list):
            return [mark(x) for x in v]
        return v

    text = json.dumps(mark(value))  # ensure_ascii: surrogates become \ud800 escapes
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00RAW{i}\x00"), raw)
    return text.encode()


# --- the generator ------------------------------------------------------------------------


class Generator:
    def __init__(self, seed: int, run_tag: str) -> None:
        self.rng = random.Random(seed)
        self.run_tag = run_tag
        council = load_council(COUNCIL_FILE)
        self.types = [t.code for t in council.file.task_types]
        self.bases = [json.loads(b) for b in make_bodies(400, seed, run_tag)]
        self.serial = 0
        self.known_ids: list[int] = []

    def base(self) -> dict:
        self.serial += 1
        body = json.loads(json.dumps(self.rng.choice(self.bases)))
        body["external_id"] = f"{self.run_tag}-f{self.serial}"
        r = self.rng.random()
        if r < 0.3:
            body["reporter"] = {"name": "A Resident", "phone": "07700 900123", "updates": ["sms"]}
        elif r < 0.4:
            body.pop("reporter", None)
        if self.rng.random() < 0.3:
            body["photos"] = ["https://forms.example/uploads/a.jpg"]
        if self.rng.random() < 0.2:
            body["source"] = "web-form"
        return body

    def hostile_text(self) -> str:
        rng = self.rng
        pick = rng.random()
        if pick < 0.45:
            return rng.choice(UNICODE)
        if pick < 0.9:
            return rng.choice(INJECTION)
        return "".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(rng.randint(1, 40)))

    def case(self) -> Case:
        r = self.rng.random()
        if r < 0.70:
            return self.body_case()
        if r < 0.82:
            return self.transport_case()
        if r < 0.91:
            return self.get_case()
        return self.messages_case()

    # POST /api/tasks: field mutations ---------------------------------------------------

    def body_case(self) -> Case:
        body = self.base()
        # One mutation per group of fields, so a later one never undoes an earlier one.
        groups = [
            [self.m_type],
            [self.m_description],
            [self.m_location, self.m_lat_lon, self.m_lat_lon, self.m_address],
            [self.m_photos],
            [self.m_reporter],
            [self.m_source],
            [self.m_external_id],
            [self.m_extra],
        ]
        count = 1 if self.rng.random() < 0.8 else self.rng.randint(2, 4)
        chosen = self.rng.sample(groups, count)
        outcomes = [self.rng.choice(group)(body) for group in chosen]
        oks = [ok for _, ok, _ in outcomes]
        valid = False if False in oks else (None if None in oks else True)
        # A 422 must name one of the fields made invalid (or maybe-invalid: a field with a
        # lone surrogate is refused by the schema before the type or the point is checked).
        fields = tuple(where for _, ok, where in outcomes if ok is not True)
        kind = "+".join(name for name, _, _ in outcomes)
        raw = encode(body)
        statuses: tuple[int, ...] = (422,) if valid is False else ()
        if len(raw) > MAX_BODY:
            valid, fields, statuses = False, (), (413,)
        else:
            try:
                json.loads(raw)
            except (ValueError, RecursionError):
                # Too deep, or an integer past 4300 digits: not JSON a parser can read.
                valid, fields, statuses = False, (), (400,)
        return Case(kind, "POST", "/api/tasks", raw, valid=valid, fields=fields, statuses=statuses)

    def m_type(self, b: dict) -> tuple[str, bool | None, str]:
        r = self.rng.random()
        if r < 0.15:
            b.pop("type", None)
            return "type missing", False, "type"
        if r < 0.4:
            b["type"] = self.rng.choice(WRONG_TYPES)
            return "type wrong type", False, "type"
        if r < 0.5:
            b["type"] = "x" * self.rng.choice([65, 1000, 200_000])
            return "type too long", False, "type"
        if r < 0.6:
            b["type"] = f"  {self.rng.choice(self.types).upper()} "
            return "type case/space", True, "type"
        b["type"] = self.hostile_text()
        return "type hostile", False, "type"  # never a council type: 422 unknown type

    def m_text(self, b: dict, key: str, limit: int, container: dict | None = None):
        target = b if container is None else container
        name = key if container is None else f"location.{key}"
        r = self.rng.random()
        if r < 0.25:
            target[key] = self.rng.choice([w for w in WRONG_TYPES if w is not None and w != ""])
            return f"{name} wrong type", False, name
        if r < 0.4:
            target[key] = "é" * (limit + self.rng.choice([1, 10, 100_000]))
            return f"{name} too long", False, name
        if r < 0.5:
            target[key] = "a" * limit
            return f"{name} at limit", True, name
        text = self.hostile_text()
        target[key] = text
        # Lone surrogates and NULs: storing them is fine, refusing them (422) is fine too.
        return f"{name} hostile", text_ok(text), name

    def m_description(self, b: dict):
        if self.rng.random() < 0.1:
            b.pop("description", None)
            return "description missing", True, "description"
        return self.m_text(b, "description", 5000)

    def m_address(self, b: dict):
        if not isinstance(b.get("location"), dict):
            return "address (location already broken)", True, "-"
        return self.m_text(b, "address", 500, b["location"])

    def m_location(self, b: dict):
        r = self.rng.random()
        if r < 0.3:
            b.pop("location", None)
            return "location missing", False, "location"
        if r < 0.7:
            b["location"] = self.rng.choice([w for w in WRONG_TYPES if not isinstance(w, dict)])
            return "location wrong type", False, "location"
        if r < 0.8:
            b["location"] = nested(self.rng.choice([50, 5000, 200_000]), "{")
            return "location deep nesting", False, "location"
        b["location"] = {"lat": 51.5, "lon": -0.12}  # London: outside the wards
        return "location outside wards", False, "location"

    def m_lat_lon(self, b: dict):
        if not isinstance(b.get("location"), dict):
            return "lat/lon (location already broken)", True, "-"
        key = self.rng.choice(["lat", "lon"])
        name = f"location.{key}"
        if self.rng.random() < 0.15:
            b["location"].pop(key)
            return f"{name} missing", False, name
        # Each key gets numbers out of its own range (91 is a fine longitude).
        out = [91, -90.0001] if key == "lat" else [181, -180.5]
        value = self.rng.choice(BAD_NUMBERS + out)
        b["location"][key] = value
        if isinstance(value, bool) or value is True:
            # Lax floats take true as 1.0: then the point lies outside every ward.
            return f"{name} bool", False, "location"
        return f"{name} bad number", False, name

    def m_photos(self, b: dict):
        r = self.rng.random()
        good = "https://forms.example/uploads/a.jpg"
        if r < 0.2:
            b["photos"] = self.rng.choice([w for w in WRONG_TYPES if not isinstance(w, list)])
            if b["photos"] is None:
                return "photos null", False, "photos"
            return "photos wrong type", False, "photos"
        if r < 0.3:
            b["photos"] = [good] * self.rng.choice([21, 1000])
            return "photos too many", False, "photos"
        if r < 0.4:
            b["photos"] = [good] * 20
            return "photos at limit", True, "photos"
        bad = self.rng.choice(
            [
                "http://insecure.example/a.jpg",
                "javascript:alert(1)",
                "https://",
                "https://x.example/a b.jpg",
                "https://x.example/" + "a" * 2100,
                "data:image/png;base64,AAAA",
                "file:///etc/passwd",
                self.hostile_text(),
                7,
                None,
                {"url": good},
                [good],
            ]
        )
        b["photos"] = [good, bad]
        return "photos bad item", False, "photos"

    def m_reporter(self, b: dict):
        rep = b.get("reporter")
        if not isinstance(rep, dict):
            rep = b["reporter"] = {"name": "A Resident"}
        r = self.rng.random()
        if r < 0.12:
            b["reporter"] = self.rng.choice([w for w in WRONG_TYPES if not isinstance(w, dict)])
            return "reporter wrong type", b["reporter"] is None, "reporter"
        if r < 0.35:
            rep["email"] = self.rng.choice(
                [
                    "not-an-email",
                    "a@@example.com",
                    "a@example.com\r\nBcc: x@y.z",
                    "<script>@example.com",
                    "a" * 400 + "@example.com",
                    "'; DROP TABLE contacts;--@example.com",
                    7,
                    [],
                    "\ud800@example.com",
                ]
            )
            rep["updates"] = ["email"]
            return "reporter.email bad", False, "reporter.email"
        if r < 0.55:
            rep["phone"] = self.rng.choice(
                ["12345", "phone", "+" + "9" * 40, "07700 900123 ext 5", 7700900123, "0770090012٣"]
            )
            rep["updates"] = ["sms"]
            return "reporter.phone bad", False, "reporter.phone"
        if r < 0.75:
            rep["updates"] = self.rng.choice(
                [["pigeon"], "email", [None], [1], ["email"] * 3, {"email": True}, [["sms"]]]
            )
            rep["email"] = "a@example.com"
            return "reporter.updates bad", False, "reporter.updates"
        if r < 0.85:
            rep.pop("email", None)
            rep.pop("phone", None)
            rep["updates"] = [self.rng.choice(["email", "sms"])]
            return "reporter channel without details", False, "reporter"
        if r < 0.93:
            rep["name"] = self.rng.choice([7, [], {}, "n" * 201])
            return "reporter.name bad", False, "reporter.name"
        rep["name"] = self.hostile_text()
        return "reporter.name hostile", text_ok(rep["name"]), "reporter.name"

    def m_source(self, b: dict):
        b["source"] = self.rng.choice(
            [self.hostile_text(), "", "-lead", "a" * 65, "bad source!", 7, [], {}, "web.form_2-x"]
        )
        ok = b["source"] == "web.form_2-x"
        return "source", ok, "source"

    def m_external_id(self, b: dict):
        r = self.rng.random()
        if r < 0.5:
            b["external_id"] = self.rng.choice(["", "x" * 201, 7, 1.5, [], {}, True])
            return "external_id bad", False, "external_id"
        text = self.hostile_text()
        b["external_id"] = f"{text}-{self.serial}"
        return (
            "external_id hostile",
            text_ok(text) if len(b["external_id"]) <= 200 else False,
            ("external_id"),
        )

    def m_extra(self, b: dict):
        key = self.rng.choice(["__proto__", "constructor", "id", "status", "assignee", "x" * 300])
        b[key] = self.rng.choice([{"admin": True}, "closed", 1, None, self.hostile_text()])
        # Unknown fields are refused, named (a long name cut to 64 characters and "…"):
        # dropping one silently would accept a report without what was sent.
        return "extra field", False, key if len(key) <= 64 else key[:64] + "…"

    # POST /api/tasks: transport -----------------------------------------------------------

    def transport_case(self) -> Case:
        rng = self.rng
        good = encode(self.base())
        r = rng.random()
        if r < 0.15:
            auth = rng.choice(
                [
                    None,
                    "",
                    "Bearer",
                    "Bearer ",
                    "Basic YmVuY2g6YmVuY2g=",
                    "Bearer wrong-secret",
                    f"Bearer {BENCH_KEY_SECRET}x",
                    f"bearer  {BENCH_KEY_SECRET[:-1]}",
                    "Bearer " + "A" * 4000,
                    "Bearer ' OR 1=1 --",
                    "Bearer bénch-secret-123",
                ]
            )
            return Case("auth bad", "POST", "/api/tasks", good, auth=auth, statuses=(401,))
        if r < 0.3:
            ctype = rng.choice(
                [
                    "text/html",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=x",
                    "application/xml",
                    "image/png",
                    "application/jsonx",
                    "text/plain",
                    None,  # no Content-Type at all
                ]
            )
            return Case("content type", "POST", "/api/tasks", good, ctype, statuses=(415,))
        if r < 0.45:
            bad = rng.choice(
                [
                    b"\xff\xfe\xfd",
                    good[:10] + b"\xc3\x28" + good[10:],
                    b'{"type": "\xc0\xaf"}',  # overlong
                    '{"type": "caf\xe9"}'.encode("latin-1"),
                ]
            )
            return Case("invalid utf-8", "POST", "/api/tasks", bad, statuses=(400,))
        if r < 0.47:
            # json.loads decodes bytes with 'surrogatepass': a UTF-8-encoded surrogate
            # reaches the schema as a lone surrogate, which must be refused, naming it.
            raw = b'{"type": "litter\xed\xa0\x80", "location": {"lat": 51.9, "lon": 0.88}}'
            return Case(
                "utf-8 surrogate", "POST", "/api/tasks", raw, fields=("type",), statuses=(400, 422)
            )
        if r < 0.6:
            bad = rng.choice(
                [
                    b"",
                    b"{",
                    b"{'type': 'litter'}",
                    good[: rng.randint(1, len(good) - 1)],
                    good + b"garbage",
                    b'{"type": "litter",}',
                    b"\x00\x00\x00",
                    b"undefined",
                ]
            )
            return Case("malformed json", "POST", "/api/tasks", bad, statuses=(400,))
        if r < 0.7:
            raw = rng.choice([b"[1, 2]", b'"text"', b"3", b"null", b"true", b"1e309", b"NaN"])
            return Case(
                "not an object", "POST", "/api/tasks", raw, fields=("body",), statuses=(422,)
            )
        if r < 0.8:
            depth = rng.choice([100, 1000, 10_000, 100_000, 400_000])
            raw = encode(nested(depth, rng.choice(["[", "{"])))
            return Case(
                f"deep nesting {depth}",
                "POST",
                "/api/tasks",
                raw,
                fields=("body", "type", "location"),
                statuses=(400, 413, 422),
            )
        if r < 0.85:
            raw = encode(Raw("9" * rng.choice([4301, 10_000, 500_000])))
            return Case(
                "huge integer", "POST", "/api/tasks", raw, fields=("body",), statuses=(400, 422)
            )
        if r < 0.93:
            body = self.base()
            body["description"] = "x" * (MAX_BODY + rng.choice([1, 1000, 500_000]))
            return Case("over 1 MB", "POST", "/api/tasks", encode(body), statuses=(413,))
        body = self.base()
        body["type"] = self.rng.choice(self.types)
        return Case(
            "utf-16 / charset",
            "POST",
            "/api/tasks",
            json.dumps(body).encode("utf-16"),
            "application/json; charset=utf-16",
            valid=None,
            statuses=(400, 422),
        )

    # GET /api/tasks/{id} ---------------------------------------------------------------------

    def get_case(self) -> Case:
        rng = self.rng
        if self.known_ids and rng.random() < 0.15:
            task_id = rng.choice(self.known_ids)
            ident = rng.choice([str(task_id), f"RSP-{task_id + 1000}", f"rsp {task_id + 1000}"])
            return Case(
                "get existing", "GET", f"/api/tasks/{quote(ident, safe='')}", None, None, valid=True
            )
        ident = rng.choice(
            [
                "0",
                "-1",
                "00000000000000000000000000001",
                "9" * 18,
                "9" * 19,
                "9" * 5000,
                "RSP-" + "9" * 30,
                "RSP-" + "9" * 5000,
                "#" + "9" * 40,
                "RSP-1000",
                "RSP--5",
                "1e309",
                "NaN",
                "١٢٣٤",
                "１２３",
                "²",
                "' OR 1=1 --",
                "1; DROP TABLE tasks",
                "../../etc/passwd",
                "%00",
                "\x00",
                "<script>",
                "\ud800",
                "\u202e1001",
                " ",
                "x" * 3000,
                self.hostile_text(),
            ]
        )
        enc = quote(ident.encode("utf-8", "surrogatepass"), safe="")
        auth = AUTH if rng.random() < 0.9 else rng.choice([None, "Bearer nope"])
        return Case(
            "get hostile id",
            "GET",
            f"/api/tasks/{enc}",
            None,
            None,
            auth,
            statuses=(404,) if auth == AUTH else (401,),
        )

    # POST /api/messages ------------------------------------------------------------------------

    def messages_case(self) -> Case:
        rng = self.rng
        activity: dict = {
            "type": "message",
            "id": "1",
            "text": self.hostile_text(),
            "serviceUrl": "http://127.0.0.1:9/",
            "channelId": "msteams",
            "from": {"id": "29:x", "aadObjectId": "00000000-0000-0000-0000-000000000000"},
            "recipient": {"id": "28:bot"},
            "conversation": {"id": "a:1", "tenantId": "t"},
            "channelData": {"tenant": {"id": "t"}},
        }
        # Always break what the endpoint needs (type, serviceUrl, conversation), plus noise.
        broken = rng.choice(["type", "serviceUrl", "conversation"])
        if broken == "type":
            if rng.random() < 0.5:
                activity.pop("type")
            else:
                activity["type"] = rng.choice([None, 1, [], {}, True])
        elif broken == "serviceUrl":
            if rng.random() < 0.3:
                activity.pop("serviceUrl")
            else:
                activity["serviceUrl"] = rng.choice([None, ""])
        else:
            if rng.random() < 0.5:
                activity.pop("conversation")
            else:
                activity["conversation"] = None
        for _ in range(rng.randint(0, 3)):
            key = rng.choice(
                [
                    "from",
                    "recipient",
                    "channelData",
                    "entities",
                    "value",
                    "text",
                    "timestamp",
                    "attachments",
                    "id",
                    "locale",
                ]
            )
            activity[key] = rng.choice(WRONG_TYPES[:11] + [self.hostile_text()])
        r = rng.random()
        if r < 0.7:
            return Case(
                "activity malformed", "POST", "/api/messages", encode(activity), statuses=(400,)
            )
        if r < 0.8:
            raw = rng.choice([b"{", b"", b"\xff\xfe", b"[]", b"null", b'"message"', b"NaN"])
            return Case("activity bad json", "POST", "/api/messages", raw, statuses=(400,))
        if r < 0.9:
            raw = encode(nested(rng.choice([1000, 100_000]), rng.choice(["[", "{"])))
            return Case("activity deep nesting", "POST", "/api/messages", raw, statuses=(400, 413))
        return Case(
            "activity content type",
            "POST",
            "/api/messages",
            encode(activity),
            rng.choice(["text/plain", "text/html", None]),
            statuses=(415,),
        )


# --- checking -----------------------------------------------------------------------------


def named(problem_field: str, wanted: str) -> bool:
    return problem_field == wanted or problem_field.startswith((wanted + ".", wanted + "["))


def check(case: Case, status: int, ctype: str, raw: bytes, tally: Tally, gen: Generator) -> None:
    tally.requests += 1
    tally.by_status[status] += 1
    what = f"{case.kind} {case.method} {case.path[:60]} -> {status}"
    if status >= 500:
        tally.server_errors += 1
        tally.note(f"5xx: {what} {raw[:200]!r}")
        return
    if 200 <= status < 300:
        tally.ok_2xx += 1
        if case.valid is False:
            tally.wrong += 1
            tally.note(f"accepted invalid: {what}")
        elif case.method == "POST" and case.path == "/api/tasks":
            try:
                gen.known_ids.append(int(json.loads(raw)["id"]))
            except (ValueError, KeyError, TypeError):
                tally.wrong += 1
                tally.note(f"2xx without a task id: {what}")
        return
    if not 400 <= status < 500:
        tally.wrong += 1
        tally.note(f"unexpected status: {what}")
        return
    try:
        answer = json.loads(raw) if ctype == "application/json" else None
    except ValueError:
        answer = None
    if not (
        isinstance(answer, dict)
        and isinstance(answer.get("error"), str)
        and isinstance(answer.get("message"), str)
        and answer["message"]
    ):
        tally.unnamed += 1
        tally.note(f"4xx not JSON error+message: {what} {raw[:200]!r}")
        return
    if status == 422:
        problems = answer.get("problems")
        if not (
            isinstance(problems, list)
            and problems
            and all(
                isinstance(p, dict)
                and isinstance(p.get("field"), str)
                and p["field"]
                and isinstance(p.get("problem"), str)
                and p["problem"]
                for p in problems
            )
        ):
            tally.unnamed += 1
            tally.note(f"422 problem without a field: {what} {answer}")
            return
        if case.fields and not any(named(p["field"], f) for p in problems for f in case.fields):
            tally.unnamed += 1
            tally.note(f"422 not naming {case.fields}: {what} {problems}")
            return
    if case.valid is True:
        tally.wrong += 1
        tally.note(f"refused valid: {what} {answer}")
    elif case.statuses and status not in case.statuses:
        tally.wrong += 1
        tally.note(f"expected {case.statuses}: {what} {answer}")


async def send(session: aiohttp.ClientSession, base: str, case: Case) -> tuple[int, str, bytes]:
    headers = {}
    if case.auth is not None:
        headers["Authorization"] = case.auth
    if case.content_type is not None and case.body is not None:
        headers["Content-Type"] = case.content_type
    url = URL(base + case.path, encoded=True)
    async with session.request(
        case.method,
        url,
        data=case.body,
        headers=headers,
        skip_auto_headers=("Content-Type",),
    ) as resp:
        raw = await resp.read()
        return resp.status, resp.content_type, raw


async def drive(base: str, gen: Generator, requests: int, concurrency: int, tally: Tally) -> None:
    async def one(session: aiohttp.ClientSession, case: Case) -> None:
        try:
            status, ctype, raw = await send(session, base, case)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # A body over 1 MB may be refused before it is all sent: the server
            # answers 413 and closes; some clients see only the reset.
            tally.transport_errors += 1
            tally.note(f"transport: {case.kind} {case.path[:60]}: {exc!r}"[:300])
            return
        check(case, status, ctype, raw, tally, gen)

    await in_parallel(requests, concurrency, gen.case, one)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2,000 requests")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument(
        "--postgres-url",
        help="run Responder on this PostgreSQL database instead of SQLite; its public schema "
        "is DROPPED and recreated first",
    )
    p.add_argument("--output", type=Path, default=RESULTS / "fuzz.json")
    return p.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    requests = 2000 if args.quick else args.requests
    gen = Generator(args.seed, f"fuzz-{int(time.time())}")
    tally = Tally()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="responder-fuzz-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'responder.db'}"
        if args.postgres_url:
            from bench.intake import reset_postgres

            if args.postgres_url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] == "test":
                print("RUN INVALID: refusing the database named 'test' (the test suite's)")
                return 2
            url = args.postgres_url
            await reset_postgres(url)
        try:
            async with server_process(
                ["responder", "--database", url, "--config", str(COUNCIL_FILE)]
            ) as server:
                print(f"fuzzing {server.base} with {requests} requests ...", flush=True)
                await drive(server.base, gen, requests, args.concurrency, tally)
        except ServerStartError as exc:
            print(f"RUN INVALID: {exc}")
            return 2
    elapsed = time.monotonic() - started
    answered = tally.requests
    # Resets on >1 MB uploads are tolerated, but most requests must have been answered.
    valid_run = answered >= requests * 0.99 and answered > 0

    rows = [["figure", "value"], ["requests sent", str(requests)], ["answered", str(answered)]]
    rows.append(["2xx (valid requests)", str(tally.ok_2xx)])
    for status in sorted(s for s in tally.by_status if 400 <= s < 500):
        rows.append([f"{status}", str(tally.by_status[status])])
    rows += [
        ["5xx", str(tally.server_errors)],
        ["4xx without a field / error+message", str(tally.unnamed)],
        ["other wrong answers", str(tally.wrong)],
        ["transport errors", str(tally.transport_errors)],
        ["seconds", f"{elapsed:.1f}"],
    ]
    print()
    print_rows(rows)
    if tally.samples:
        print("\nsamples:")
        for s in tally.samples:
            print(f"  {s}")

    report = {
        "benchmark": "fuzz",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {
            "requests": requests,
            "seed": args.seed,
            "concurrency": args.concurrency,
            "database": "postgresql" if args.postgres_url else "sqlite",
        },
        "fuzz_requests": answered,
        "fuzz_2xx": tally.ok_2xx,
        "fuzz_4xx": {str(k): v for k, v in sorted(tally.by_status.items()) if 400 <= k < 500},
        "fuzz_5xx": tally.server_errors,
        "fuzz_4xx_unnamed": tally.unnamed,
        "fuzz_wrong": tally.wrong,
        "transport_errors": tally.transport_errors,
        "valid": valid_run,
        "seconds": round(elapsed, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.output}")
    if not valid_run:
        print("RUN INVALID: too few requests answered")
        return 2
    failed = tally.server_errors or tally.unnamed or tally.wrong
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
