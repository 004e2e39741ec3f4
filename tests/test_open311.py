"""The Open311 GeoReport v2 server (/open311/v2/) through real HTTP, on SQLite and PostgreSQL.

Two clients we did not write the server for: the PyPI ``georeport`` client (synchronous
``requests``, run in a thread against a listening server) for services and requests in XML
and JSON, and requests shaped exactly as FixMyStreet's ``perllib/Open311.pm`` sends them
(form-encoded, ``jurisdiction_id`` and ``api_key`` in the body, ``attribute[...]``,
``media_url`` repeated), read back the way its XML::Simple settings read them.

Who may see and change what (the Open311 rows of the permission matrix):

=========================  ========  ===============  ========  ===========  ============
caller                     services  requests GET     POST      updates GET  updates POST
=========================  ========  ===============  ========  ===========  ============
anyone (no api_key)        yes       public fields    401       401          401
a wrong api_key            401       401              401       401          401
a key, no ``open311:``     403       403              403       403          403
wrong ``jurisdiction_id``  404       404              404       404          404
the Open311 source         yes       + description    creates   its reports  its reports
=========================  ========  ===============  ========  ===========  ============

Public fields: id, status (open/closed) and its public words, service, times, place. Never
the reporter's name or contact details (not even kept), never officers' notes. Every refusal
is an ``<errors>`` body naming the field, with none of the task's content, and writes nothing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from georeport import GeoReport
from sqlalchemy import func, select
from support import write_council

from responder.app import build_app
from responder.commands.act import ActionRequest, act
from responder.config.load import validate_council_file
from responder.domain.grid import to_grid
from responder.domain.lifecycle import Action
from responder.domain.open311 import parse_w3c
from responder.store.schema import contacts, outbox, reports, task_events, tasks
from responder.web import db_key, domain_key

NORTHGATE = (51.9051, 0.8873)
OUTSIDE = (51.5000, -0.1200)
FMS_KEY = "test-secret-fms"
JURISDICTION = "sample-borough"
XML = "text/xml; charset=utf-8"


def _council(data: dict) -> None:
    data["sources"] = {
        "fixmystreet": {
            "open311": {"jurisdiction_id": JURISDICTION},
            "photo_hosts": ["fixmystreet.com"],
        }
    }
    data["open311"] = {
        "services": {
            "fly-tipping": {
                "description": "Rubbish dumped on a street, verge or alley",
                "group": ["Street cleansing", "Rubbish"],
                "keywords": ["rubbish", "dumping"],
                "attributes": [
                    {
                        "code": "waste_type",
                        "description": "What has been dumped?",
                        "datatype": "singlevaluelist",
                        "values": {"household": "Household bags", "furniture": "Furniture"},
                    }
                ],
            },
            "graffiti": {
                "attributes": [
                    {"code": "offensive", "description": "Is it offensive?", "required": True}
                ]
            },
        },
        "statuses": {"referred": "INTERNAL_REFERRAL"},
    }


@pytest.fixture
def council_path(tmp_path):
    return write_council(tmp_path, _council)


@pytest.fixture
async def server(aiohttp_server, settings, clock):
    return await aiohttp_server(build_app(settings, clock=clock))


@pytest.fixture
async def fms(aiohttp_client, server):
    return await aiohttp_client(server)


def fms_form(fms_id: str = "4242", at=NORTHGATE, **changes) -> list[tuple[str, str]]:
    """A new report as Open311.pm posts it (extended description, multi photos on)."""
    easting, northing = to_grid(*at)
    fields = {
        "jurisdiction_id": JURISDICTION,
        "api_key": FMS_KEY,
        "service_code": "fly-tipping",
        "description": "title: Mattress by the bus stop\n\ndetail: Bags & a mattress <left> "
        "here\n\nurl: https://www.fixmystreet.com/report/4242\n\nSubmitted via FixMyStreet\n",
        "first_name": "Ann",
        "last_name": "Resident",
        "email": "ann@example.com",
        "phone": "07700900123",
        "lat": f"{at[0]:.6f}",
        "long": f"{at[1]:.6f}",
        "attribute[fixmystreet_id]": fms_id,
        "attribute[easting]": str(easting),
        "attribute[northing]": str(northing),
        "attribute[closest_address]": "1 High Street, Northgate",
        "attribute[title]": "Mattress by the bus stop",
        "attribute[last_name]": "Resident",
        "attribute[report_url]": f"https://www.fixmystreet.com/report/{fms_id}",
    }
    for key, value in changes.items():
        key = key.replace("__", "")
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    pairs = list(fields.items())
    pairs += [
        ("media_url", f"https://www.fixmystreet.com/photo/{fms_id}.0.full.jpeg"),
        ("media_url", f"https://www.fixmystreet.com/photo/{fms_id}.1.full.jpeg"),
    ]
    return pairs


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def post_form(client, path: str, pairs) -> tuple[int, ET.Element, str]:
    resp = await client.post(f"/open311/v2/{path}", data=urlencode(pairs), headers=FORM)
    body = await resp.text()
    assert resp.headers["Content-Type"] == XML, body
    return resp.status, ET.fromstring(body), body


async def get_xml(client, path: str, **params) -> tuple[int, ET.Element, str]:
    resp = await client.get(f"/open311/v2/{path}", params=params)
    body = await resp.text()
    return resp.status, ET.fromstring(body), body


def errors(root: ET.Element) -> list[tuple[str, str]]:
    assert root.tag == "errors"
    return [(e.findtext("code") or "", e.findtext("description") or "") for e in root]


async def count(fms, table) -> int:
    async with fms.app[db_key].read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar_one()


async def new_request(fms, fms_id: str = "4242", **changes) -> str:
    status, root, body = await post_form(fms, "requests.xml", fms_form(fms_id, **changes))
    assert status == 201, body
    return root.findtext("request/service_request_id") or ""


def task_id(reference: str) -> int:
    return int(reference.split("-")[1]) - 1000


# -- services --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_services_and_definitions_through_georeport(server, fmt):
    client = GeoReport(str(server.make_url("/open311/v2")), jurisdiction=JURISDICTION,
                       output_format=fmt)  # fmt: skip
    listed = await asyncio.to_thread(client.get_service_list)
    by_code = {s["service_code"]: s for s in listed}
    assert list(by_code)[:3] == ["fly-tipping", "needles", "graffiti"]  # the file's order
    fly = by_code["fly-tipping"]
    assert fly["service_name"] == "Fly-tipping"
    assert fly["description"] == "Rubbish dumped on a street, verge or alley"
    assert fly["keywords"] == "rubbish,dumping"
    assert str(fly["metadata"]).lower() == "true" and fly["type"] == "realtime"
    groups = fly["groups"]["group"] if fmt == "xml" else fly["groups"]
    assert groups == ["Street cleansing", "Rubbish"]
    assert fly["group"] == "Street cleansing"  # GeoReport's one; FixMyStreet reads groups
    # A type the section does not name: its service's name is its group.
    litter = by_code["litter"]
    assert (litter["groups"]["group"] if fmt == "xml" else litter["groups"]) in (
        "Street cleansing",
        ["Street cleansing"],
    )

    definition = await asyncio.to_thread(client.get_service_definition, "fly-tipping")
    attributes = definition["attributes"]["attribute"] if fmt == "xml" else definition[
        "attributes"
    ]  # fmt: skip
    codes = [a["code"] for a in attributes]
    assert codes == [
        "waste_type", "fixmystreet_id", "easting", "northing", "closest_address", "uprn",
    ]  # fmt: skip
    question = attributes[0]
    assert str(question["variable"]).lower() == "true"
    assert question["datatype"] == "singlevaluelist"
    values = question["values"]["value"] if fmt == "xml" else question["values"]
    assert [(v["key"], v["name"]) for v in values] == [
        ("household", "Household bags"),
        ("furniture", "Furniture"),
    ]
    server_set = {a["code"]: a for a in attributes[1:]}
    assert all(a["automated"] == "server_set" for a in server_set.values())
    assert all(str(a["variable"]).lower() == "false" for a in server_set.values())
    orders = [int(a["order"]) for a in attributes]
    assert orders == sorted(orders)


async def test_unknown_service_definition_and_format(fms):
    status, root, _ = await get_xml(fms, "services/no-such.xml")
    assert status == 404 and "service_code" in errors(root)[0][1]
    status, root, _ = await get_xml(fms, "services.html")
    assert status == 404 and errors(root)[0][1].startswith("format:")
    resp = await fms.get("/open311/v2/services/no-such.json")
    assert resp.status == 404
    assert (await resp.json())[0]["description"].startswith("service_code:")


# -- new requests ----------------------------------------------------------------------


async def test_fixmystreet_post_creates_a_task_and_a_resend_answers_the_same_id(fms):
    status, root, body = await post_form(fms, "requests.xml", fms_form())
    assert status == 201, body
    assert root.tag == "service_requests"
    reference = root.findtext("request/service_request_id")
    assert reference and reference.startswith("RSP-")
    assert root.findtext("request/token") == "4242"

    async with fms.app[db_key].read() as conn:
        task = (await conn.execute(select(tasks))).one()
        report = (await conn.execute(select(reports))).one()
        fetches = (
            (await conn.execute(select(outbox.c.payload).where(outbox.c.kind == "fetch.photo")))
            .scalars()
            .all()
        )
    assert (task.type, task.ward, task.source, task.address) == (
        "fly-tipping",
        "Northgate",
        "fixmystreet",
        "1 High Street, Northgate",
    )
    assert "Bags & a mattress <left> here" in task.description
    assert (report.source, report.external_id) == ("fixmystreet", "4242")
    # The source's attributes, never its contact details (last_name comes as one too).
    assert report.attributes["fixmystreet_id"] == "4242"
    assert report.attributes["title"] == "Mattress by the bus stop"
    assert "last_name" not in report.attributes
    assert not any("ann@example.com" in str(v) for v in report.attributes.values())
    assert await count(fms, contacts) == 0  # FixMyStreet tells its own users
    assert sorted(p["url"] for p in fetches) == [
        "https://www.fixmystreet.com/photo/4242.0.full.jpeg",
        "https://www.fixmystreet.com/photo/4242.1.full.jpeg",
    ]

    # FixMyStreet resends (it timed out before reading our answer), even with other text:
    # the same id, one task.
    again = fms_form(description="title: Mattress (edited)")
    status, root, body = await post_form(fms, "requests.xml", again)
    assert status == 200, body
    assert root.findtext("request/service_request_id") == reference
    assert await count(fms, tasks) == 1 and await count(fms, reports) == 1

    # The token resolves to the same request (FixMyStreet's tokens/{token}.xml poll).
    status, root, _ = await get_xml(fms, "tokens/4242.xml", jurisdiction_id=JURISDICTION)
    assert status == 200 and root.findtext("request/service_request_id") == reference
    for token in ("999999", "%00", "%ff"):
        status, root, _ = await get_xml(fms, f"tokens/{token}.xml")
        assert status == 404 and errors(root)[0][1].startswith("token:")


async def test_json_answer_and_multipart_post(fms):
    from aiohttp import FormData

    form = FormData()
    for key, value in fms_form("77"):
        form.add_field(key, value)
    resp = await fms.post("/open311/v2/requests.json", data=form(), headers={})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body[0]["service_request_id"].startswith("RSP-")

    # Not a picture (FixMyStreet's enquiry files): refused naming the field, nothing created.
    form = FormData()
    for key, value in fms_form("78"):
        form.add_field(key, value)
    form.add_field("file_1", b"%PDF-1.4", filename="form.pdf", content_type="image/jpeg")
    resp = await fms.post("/open311/v2/requests.xml", data=form)
    text = await resp.text()
    assert resp.status == 400
    assert errors(ET.fromstring(text))[0][1].startswith("file_1: not a JPEG, PNG, GIF or WebP")
    assert await count(fms, tasks) == 1


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def upload_form(pairs, files) -> object:
    from aiohttp import FormData

    form = FormData()
    for key, value in pairs:
        form.add_field(key, value)
    for i, (data, ctype) in enumerate(files, start=1):
        form.add_field(f"photo{i}", data, filename=f"1.{i}.full.jpeg", content_type=ctype)
    return form


async def test_uploaded_pictures_are_kept_once(fms):
    """FixMyStreet uploads the pictures of a private report (or with 'upload files' on)
    as photo1, photo2... instead of media_url: kept like a fetched photo, once each."""
    pairs = [p for p in fms_form("79") if p[0] != "media_url"]
    resp = await fms.post(
        "/open311/v2/requests.xml",
        data=upload_form(pairs, [(JPEG, "image/jpeg"), (PNG, "image/jpeg")]),
    )
    assert resp.status == 201, await resp.text()
    reference = ET.fromstring(await resp.text()).findtext("request/service_request_id") or ""
    # A resend with the same pictures adds none.
    resp = await fms.post(
        "/open311/v2/requests.xml", data=upload_form(pairs, [(JPEG, "image/jpeg")])
    )
    assert resp.status == 200
    async with fms.app[db_key].read() as conn:
        task = (await conn.execute(select(tasks).where(tasks.c.id == task_id(reference)))).one()
        events = (await conn.execute(select(task_events.c.action, task_events.c.actor))).all()
    assert len(task.photos) == 2
    assert [e for e in events if e.action == "photo"] == [("photo", "intake:fixmystreet")] * 2
    served = await fms.get("/api/photos/" + task.photos[0].rsplit("/", 1)[1])
    assert served.status == 200 and await served.read() == JPEG
    assert served.headers["Content-Type"] == "image/jpeg"

    # With a resident's update too (FixMyStreet's upload_files_for_updates).
    pairs = [p for p in update_form(reference, "905") if p[0] != "media_url"]
    resp = await fms.post(
        "/open311/v2/servicerequestupdates.xml",
        data=upload_form(pairs, [(b"GIF89a" + b"\x00" * 16, "image/gif")]),
    )
    assert resp.status == 201, await resp.text()
    async with fms.app[db_key].read() as conn:
        photos = (await conn.execute(select(tasks.c.photos))).scalar_one()
    assert len(photos) == 3


async def test_easting_and_northing_only(fms):
    easting, northing = to_grid(*NORTHGATE)
    pairs = fms_form("5", lat=None, long=None, address_id="#NOTPINPOINTED#")
    reference = await new_request_from(fms, pairs)
    async with fms.app[db_key].read() as conn:
        task = (await conn.execute(select(tasks).where(tasks.c.id == task_id(reference)))).one()
    assert task.ward == "Northgate"
    assert abs(task.lat - NORTHGATE[0]) < 0.0005 and abs(task.lon - NORTHGATE[1]) < 0.0005
    assert (easting, northing) == to_grid(task.lat, task.lon) or abs(
        to_grid(task.lat, task.lon)[0] - easting
    ) <= 5


async def new_request_from(fms, pairs) -> str:
    status, root, body = await post_form(fms, "requests.xml", pairs)
    assert status == 201, body
    return root.findtext("request/service_request_id") or ""


@pytest.mark.parametrize(
    ("changes", "status", "field"),
    [
        ({"service_code": "potholes"}, 400, "service_code"),
        ({"service_code": None}, 400, "service_code"),
        ({"lat": f"{OUTSIDE[0]}", "long": f"{OUTSIDE[1]}"}, 422, "lat/long"),
        ({"lat": "north", "long": "0.8"}, 400, "lat"),
        ({"lat": "nan", "long": "0.8"}, 400, "lat"),
        ({"lat": "95", "long": "0.8"}, 400, "lat/long"),
        ({"long": None}, 400, "lat/long"),
        (
            {"lat": None, "long": None, "attribute[easting]": None, "attribute[northing]": None},
            400,
            "lat/long",
        ),
        ({"lat": None, "long": None, "attribute[easting]": "9e9"}, 400, "attribute[easting]"),
        ({"attribute[waste_type]": "asbestos"}, 400, "attribute[waste_type]"),
        ({"service_code": "graffiti"}, 400, "attribute[offensive]"),
        ({"description": "x" * 10_001}, 400, "description"),
        ({"attribute[bad name]": "x"}, 400, "attribute[bad name]"),
        ({"api_key": None}, 401, "api_key"),
        ({"api_key": "test-secret-fmx"}, 401, "api_key"),
        ({"api_key": "test-secret-forms"}, 403, "api_key"),
        ({"jurisdiction_id": "other-borough"}, 404, "jurisdiction_id"),
        ({"jurisdiction_id": None}, 400, "jurisdiction_id"),
        ({"description": "nul \x00 byte"}, 400, "description"),
    ],
)
async def test_bad_requests_are_refused_naming_the_field_and_create_nothing(
    fms, changes, status, field
):
    got, root, body = await post_form(fms, "requests.xml", fms_form("9", **changes))
    assert got == status, body
    [(code, description)] = errors(root)
    assert code == str(status)
    assert description.startswith(f"{field}:"), description
    # A refusal carries none of the report (nor any task's) content.
    assert "mattress" not in body.lower() and "RSP-" not in body
    assert await count(fms, tasks) == 0 and await count(fms, reports) == 0


async def test_media_url_must_be_a_web_link(fms):
    pairs = [p for p in fms_form("9") if p[0] != "media_url"] + [
        ("media_url", "file:///etc/passwd")
    ]
    status, root, _ = await post_form(fms, "requests.xml", pairs)
    assert status == 400 and errors(root)[0][1].startswith("media_url:")
    assert await count(fms, tasks) == 0


async def test_hostile_bodies(fms):
    # Past the app's 1 MB: refused before it is read.
    big = urlencode(fms_form("10", description="x" * 1_100_000))
    resp = await fms.post("/open311/v2/requests.xml", data=big, headers=FORM)
    assert resp.status == 413
    assert errors(ET.fromstring(await resp.text()))[0][1].startswith("body:")
    # Broken forms: a precise 400, never a 500.
    for ctype, raw in [
        ("multipart/form-data", b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb'),
        ("multipart/form-data; boundary=x", b"garbage"),
        ("application/x-www-form-urlencoded", b"api_key=%ff%fe&service_code=\xff\xfe"),
        ("application/x-www-form-urlencoded; charset=nonsense", b"api_key=x"),
    ]:
        resp = await fms.post("/open311/v2/requests.xml", data=raw, headers={"Content-Type": ctype})
        assert resp.status == 400, (ctype, await resp.text())
        assert errors(ET.fromstring(await resp.text()))[0][1].startswith("body:")
    # JSON is not what Open311 clients post.
    resp = await fms.post("/open311/v2/requests.xml", json={"service_code": "fly-tipping"})
    assert resp.status == 415
    assert await count(fms, tasks) == 0


async def test_xml_special_characters_round_trip(fms):
    text = "Fish & chips <b>\"wrapped\"</b> 'here' ]]> \x01\x1f done ✓"
    reference = await new_request_from(fms, fms_form("11", description=text))
    status, root, body = await get_xml(
        fms, f"requests/{reference}.xml", api_key=FMS_KEY, jurisdiction_id=JURISDICTION
    )
    assert status == 200, body
    # XML 1.0 cannot carry \x01 or \x1f: dropped; everything else exactly as sent.
    assert root.findtext("request/description") == text.replace("\x01\x1f", "")
    resp = await fms.get(f"/open311/v2/requests/{reference}.json", params={"api_key": FMS_KEY,
                         "jurisdiction_id": JURISDICTION})  # fmt: skip
    assert (await resp.json())[0]["description"] == text


# -- reading requests --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["xml", "json"])
async def test_requests_through_georeport_show_public_fields_only(fms, server, fmt):
    first = await new_request(fms, "21")
    second = await new_request(fms, "22", at=(51.9000, 0.8800))
    client = GeoReport(str(server.make_url("/open311/v2")), output_format=fmt)
    listed = await asyncio.to_thread(client.get_service_requests)
    listed = listed if isinstance(listed, list) else [listed]
    assert [r["service_request_id"] for r in listed] == [second, first]  # newest first
    one = listed[1]
    assert one["status"] == "open" and one["service_code"] == "fly-tipping"
    assert one["agency_responsible"] == "Sample Borough Council"
    assert float(one["lat"]) == pytest.approx(NORTHGATE[0], abs=1e-5)
    assert parse_w3c(one["requested_datetime"]) is not None
    # No api_key: no description, no photo, and never names or contact details.
    assert "description" not in one and "media_url" not in one
    assert not any("Ann" in str(v) or "example.com" in str(v) for v in one.values())

    single = await asyncio.to_thread(client.get_service_request, first)
    assert single["service_request_id"] == first

    chosen = await asyncio.to_thread(client.get_service_requests, service_request_id=first)
    chosen = chosen if isinstance(chosen, list) else [chosen]
    assert [r["service_request_id"] for r in chosen] == [first]

    if fmt == "json":  # (georeport's XML reading cannot take an empty list)
        closed = await asyncio.to_thread(client.get_service_requests, status="closed")
        assert closed == []


async def test_requests_filters_and_limits(fms, clock):
    reference = await new_request(fms, "31")
    status, root, _ = await get_xml(fms, "requests.xml", service_code="graffiti")
    assert status == 200 and len(root) == 0
    status, root, _ = await get_xml(fms, "requests.xml", status="open", service_code="fly-tipping")
    assert [r.findtext("service_request_id") for r in root] == [reference]
    later = (clock.now + timedelta(hours=1)).isoformat()
    status, root, _ = await get_xml(fms, "requests.xml", start_date=later)
    assert status == 200 and len(root) == 0

    ids = ",".join(str(2000 + i) for i in range(1001))
    status, root, body = await get_xml(fms, "requests.xml", service_request_id=ids)
    assert status == 400 and errors(root)[0][1].startswith("service_request_id: at most 1,000")
    for bad in ({"start_date": "yesterday"}, {"end_date": "2026-11-23T09:00:00"}):
        status, root, _ = await get_xml(fms, "requests.xml", **bad)
        assert status == 400 and errors(root)[0][1].startswith(next(iter(bad)))
    status, root, _ = await get_xml(fms, "requests.xml", status="pending")
    assert status == 400 and errors(root)[0][1].startswith("status:")
    status, root, _ = await get_xml(fms, "requests/RSP-99999.xml")
    assert status == 404 and "RSP-" in errors(root)[0][1]
    # A wrong key is refused, not quietly treated as no key.
    status, root, body = await get_xml(fms, "requests.xml", api_key="wrong")
    assert status == 401 and reference not in body


async def json_api_task(fms, at=(51.9000, 0.8800), type_="litter") -> str:
    from support import AUTH

    body = {
        "type": type_,
        "description": "Cans behind the councillor's surgery",
        "location": {"lat": at[0], "lon": at[1]},
    }
    resp = await fms.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["reference"]


async def test_a_source_reads_the_text_of_its_own_reports_only(fms):
    ours = await new_request(fms, "35")
    theirs = await json_api_task(fms)
    keyed = {"api_key": FMS_KEY, "jurisdiction_id": JURISDICTION}
    status, root, body = await get_xml(fms, "requests.xml", **keyed)
    assert status == 200
    described = {r.findtext("service_request_id"): r.findtext("description") for r in root}
    assert described[theirs] is None and "mattress" in (described[ours] or "").lower()
    assert "surgery" not in body
    status, root, body = await get_xml(fms, f"requests/{theirs}.xml", **keyed)
    assert status == 200 and "surgery" not in body


# -- updates ---------------------------------------------------------------------------


def _updates(root: ET.Element) -> list[dict[str, str | list[str]]]:
    assert root.tag == "service_request_updates", ET.tostring(root)
    found = []
    for item in root:
        update: dict[str, str | list[str]] = {}
        for child in item:
            if child.tag == "media_url":
                update.setdefault("media_url", [])
                update["media_url"].append(child.text or "")  # type: ignore[union-attr]
            else:
                update[child.tag] = child.text or ""
        found.append(update)
    return found


async def _act(fms, clock, reference: str, action: Action, person: str, **extra):
    app = fms.app
    request = ActionRequest(task_id(reference), action, person, None, **extra)
    result = await act(app[db_key], app[domain_key], request, clock.now)
    assert result.applied, result.notice


def window(start: datetime, end: datetime) -> dict[str, str]:
    return {
        "api_key": FMS_KEY,
        "jurisdiction_id": JURISDICTION,
        "start_date": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


async def test_updates_window_spanning_status_changes(fms, clock):
    t0 = clock.now
    reference = await new_request(fms, "41")
    other = await new_request(fms, "42", at=(51.9000, 0.8800))
    clock.now = t0 + timedelta(minutes=10)
    await _act(fms, clock, reference, Action.ACCEPT, "bob", note="internal: gate code 1234")
    clock.now = t0 + timedelta(minutes=20)
    await _act(fms, clock, reference, Action.UPDATE, "bob", note="internal: neighbour rude")
    await _act(fms, clock, reference, Action.START, "bob")
    clock.now = t0 + timedelta(minutes=50)
    await _act(
        fms, clock, reference, Action.COMPLETE, "bob", outcome="resolved", note="internal: done"
    )
    await _act(fms, clock, other, Action.CANCEL, "alice", reason="internal: a prank call")

    status, root, body = await get_xml(
        fms, "servicerequestupdates.xml", **window(t0, t0 + timedelta(hours=2))
    )
    assert status == 200, body
    found = _updates(root)
    assert [(u["service_request_id"], u["status"]) for u in found] == [
        (reference, "ACTION_SCHEDULED"),
        (reference, "IN_PROGRESS"),
        (reference, "FIXED"),
        (other, "CLOSED"),
    ]
    assert [u["external_status_code"] for u in found] == [
        "accepted",
        "in_progress",
        "resolved",
        "cancelled",
    ]
    assert {u["fixmystreet_id"] for u in found} == {"41", "42"}
    assert len({u["update_id"] for u in found}) == 4
    for u in found:
        at = parse_w3c(str(u["updated_datetime"]))
        assert at is not None and at.tzinfo is not None
        assert str(u["updated_datetime"]).endswith("+00:00")  # London in November
        assert u["description"]
    assert "internal" not in body and "1234" not in body and "rude" not in body
    assert found[2]["updated_datetime"] == (t0 + timedelta(minutes=50)).isoformat()

    # A window before the changes holds none; one around the completion holds only it.
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", **window(t0 - timedelta(hours=2), t0)
    )
    assert status == 200 and _updates(root) == []
    around = window(t0 + timedelta(minutes=45), t0 + timedelta(minutes=55))
    status, root, _ = await get_xml(fms, "servicerequestupdates.json".replace("json", "xml"),
                                    **around)  # fmt: skip
    assert [u["status"] for u in _updates(root)] == ["FIXED", "CLOSED"]
    resp = await fms.get("/open311/v2/servicerequestupdates.json", params=around)
    assert [u["status"] for u in await resp.json()] == ["FIXED", "CLOSED"]

    # No dates: FixMyStreet's own default, the last two hours.
    clock.now = t0 + timedelta(minutes=70)
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", api_key=FMS_KEY, jurisdiction_id=JURISDICTION
    )
    assert len(_updates(root)) == 4


async def test_completion_carries_the_officers_photos_only(fms, clock):
    from responder.commands.photos import add_photos
    from responder.domain.photos import NewPhoto

    pairs = [p for p in fms_form("55") if p[0] != "media_url"]
    resp = await fms.post("/open311/v2/requests.xml", data=upload_form(pairs, [(PNG, "image/png")]))
    assert resp.status == 201
    reference = ET.fromstring(await resp.text()).findtext("request/service_request_id") or ""
    app = fms.app
    await _act(fms, clock, reference, Action.ACCEPT, "bob")
    done = await add_photos(
        app[db_key], app[domain_key], "bob", task_id(reference), [NewPhoto("image/jpeg", JPEG)],
        "https://responder.example", clock.now,
    )  # fmt: skip
    assert done.added == 1
    await _act(fms, clock, reference, Action.COMPLETE, "bob", outcome="resolved")
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", **window(clock.now - timedelta(hours=1), clock.now)
    )
    fixed = [u for u in _updates(root) if u["status"] == "FIXED"]
    [media] = [u["media_url"] for u in fixed]
    assert isinstance(media, list) and len(media) == 1
    assert media[0].startswith("https://responder.example/api/photos/")


async def test_outcomes_map_through_the_council_file(fms, clock):
    reference = await new_request(fms, "51")
    await _act(fms, clock, reference, Action.ACCEPT, "bob")
    await _act(fms, clock, reference, Action.COMPLETE, "bob", outcome="referred")
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", **window(clock.now - timedelta(hours=1), clock.now)
    )
    assert [u["status"] for u in _updates(root)] == ["ACTION_SCHEDULED", "INTERNAL_REFERRAL"]
    status, root, _ = await get_xml(fms, f"requests/{reference}.xml")
    assert root.findtext("request/status") == "closed"


async def test_a_second_report_of_the_same_thing_hears_duplicate_once(fms, clock):
    t0 = clock.now
    first = await new_request(fms, "61")
    clock.now = t0 + timedelta(minutes=5)
    second = await new_request(fms, "62")  # a few metres away: linked to the same task
    assert second == first
    clock.now = t0 + timedelta(minutes=10)
    await _act(fms, clock, first, Action.ACCEPT, "bob")
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", **window(t0, t0 + timedelta(hours=1))
    )
    found = [(u["fixmystreet_id"], u["status"]) for u in _updates(root)]
    assert found == [("62", "DUPLICATE"), ("61", "ACTION_SCHEDULED")]


async def test_a_report_joining_another_sources_task_follows_it(fms, clock):
    t0 = clock.now
    theirs = await json_api_task(fms, at=NORTHGATE, type_="fly-tipping")
    clock.now = t0 + timedelta(minutes=5)
    ours = await new_request(fms, "63")  # the same spot: linked to the JSON API's task
    assert ours == theirs
    clock.now = t0 + timedelta(minutes=10)
    await _act(fms, clock, ours, Action.ACCEPT, "bob")
    status, root, body = await get_xml(
        fms, "servicerequestupdates.xml", **window(t0, t0 + timedelta(hours=1))
    )
    found = _updates(root)
    assert [(u["fixmystreet_id"], u["status"]) for u in found] == [
        ("63", "OPEN"),
        ("63", "ACTION_SCHEDULED"),
    ]
    assert str(found[0]["description"]).startswith("This problem had already been reported.")
    assert "surgery" not in body and "another report linked" not in body


async def test_the_window_read_stops_at_its_limit(fms, clock):
    from responder.queries.open311 import update_rows

    reference = await new_request(fms, "64")
    await _act(fms, clock, reference, Action.ACCEPT, "bob")
    await _act(fms, clock, reference, Action.START, "bob")
    start, end = clock.now - timedelta(minutes=1), clock.now
    db = fms.app[db_key]
    assert await db.query(lambda conn: update_rows(conn, "fixmystreet", start, end, 1)) is None
    rows = await db.query(lambda conn: update_rows(conn, "fixmystreet", start, end, 2))
    assert [r.action for r in rows] == ["accept", "start"]
    assert await db.query(lambda conn: update_rows(conn, "forms", start, end, 2)) == []


async def test_updates_window_is_checked(fms, clock):
    now = clock.now
    base = {"api_key": FMS_KEY, "jurisdiction_id": JURISDICTION}
    cases = [
        ({"jurisdiction_id": JURISDICTION}, 401, "api_key"),
        ({**base, "api_key": "nope"}, 401, "api_key"),
        ({**base, "start_date": "2026-13-45T00:00:00Z", "end_date": "2026-11-23T00:00:00Z"}, 400,
         "start_date"),
        ({**base, "start_date": now.isoformat()}, 400, "end_date"),
        ({**window(now, now - timedelta(hours=1))}, 400, "start_date"),
        ({**window(now - timedelta(days=8), now)}, 400, "start_date/end_date"),
        ({**window(now - timedelta(hours=1), now), "jurisdiction_id": "x"}, 404,
         "jurisdiction_id"),
        # Moments no datetime holds once in UTC (the year 0, the year 10000).
        ({**base, "start_date": "0001-01-01T00:00:00+01:00",
          "end_date": "0001-01-01T01:00:00+01:00"}, 400, "start_date"),
        ({**base, "start_date": "9999-12-31T22:00:00-01:00",
          "end_date": "9999-12-31T23:00:00-01:00"}, 400, "end_date"),
    ]  # fmt: skip
    for params, status, field in cases:
        got, root, _ = await get_xml(fms, "servicerequestupdates.xml", **params)
        assert got == status, params
        assert errors(root)[0][1].startswith(f"{field}:"), errors(root)


# -- citizen updates -------------------------------------------------------------------


def update_form(reference: str, update_id: str = "901", **changes) -> list[tuple[str, str]]:
    """A FixMyStreet comment as Open311.pm posts it (extended statuses, multi photos)."""
    fields = {
        "jurisdiction_id": JURISDICTION,
        "api_key": FMS_KEY,
        "updated_datetime": "2026-11-23T09:30:00+00:00",
        "service_request_id": reference,
        "status": "OPEN",
        "description": "Still there & now there are <two> mattresses",
        "last_name": "Resident",
        "first_name": "Ann",
        "email": "ann@example.com",
    }
    if update_id is not None:
        fields["update_id"] = update_id
    fields.update({k: v for k, v in changes.items() if v is not None})
    for k in [k for k, v in changes.items() if v is None]:
        fields.pop(k, None)
    return [*fields.items(), ("media_url", "https://www.fixmystreet.com/photo/c/901.0.full.jpeg")]


async def test_citizen_update_reaches_the_history_and_the_card_once(fms, clock):
    t0 = clock.now
    reference = await new_request(fms, "71")
    clock.now = t0 + timedelta(minutes=30)
    status, root, body = await post_form(fms, "servicerequestupdates.xml", update_form(reference))
    assert status == 201, body
    assert root.tag == "service_request_updates"
    update_id = root.findtext("request_update/update_id")
    assert update_id and update_id.isdigit()

    async with fms.app[db_key].read() as conn:
        events = (
            await conn.execute(select(task_events).where(task_events.c.action == "citizen_update"))
        ).all()
        kinds = (
            await conn.execute(select(outbox.c.kind, outbox.c.payload).order_by(outbox.c.id))
        ).all()
    [event] = events
    assert str(event.id) == update_id
    assert event.note == "Still there & now there are <two> mattresses"
    assert event.actor == "intake:fixmystreet"
    assert event.data["update_id"] == "901" and event.data["still_there"] is False
    assert "ann@example.com" not in str(event.data)
    assert ("teams.refresh", {"task_id": task_id(reference), "version": 2}) in [
        (k, p) for k, p in kinds
    ]
    assert any(
        k == "fetch.photo" and p.get("update") == "901" and p["url"].endswith("901.0.full.jpeg")
        for k, p in kinds
    )

    # Sent again (FixMyStreet did not hear us): the same update id, nothing new.
    status, root, _ = await post_form(fms, "servicerequestupdates.xml", update_form(reference))
    assert status == 200 and root.findtext("request_update/update_id") == update_id
    assert await count(fms, task_events) == 2  # created + the one update

    # Its own update is not echoed back to it in the updates window.
    status, root, _ = await get_xml(
        fms, "servicerequestupdates.xml", **window(t0, t0 + timedelta(hours=1))
    )
    assert _updates(root) == []

    # The officer's card lists it.
    from responder.bot.views import _event_line

    line = _event_line(fms.app[domain_key].council, event.action, event.actor, event.note)
    assert line.startswith("Resident's update: Still there")


async def test_citizen_update_on_a_closed_report_is_still_there(fms, clock):
    reference = await new_request(fms, "72")
    await _act(fms, clock, reference, Action.ACCEPT, "bob")
    await _act(fms, clock, reference, Action.COMPLETE, "bob", outcome="resolved")
    # Reopened on FixMyStreet ("not fixed"): still there. A thank-you on the fixed report
    # (its status FIXED) is a comment.
    for update_id, status in (("902", "OPEN"), ("903", "FIXED")):
        pairs = update_form(reference, update_id, status=status)
        got, _, body = await post_form(fms, "servicerequestupdates.xml", pairs)
        assert got == 201, body
    async with fms.app[db_key].read() as conn:
        events = (
            await conn.execute(
                select(task_events)
                .where(task_events.c.action == "citizen_update")
                .order_by(task_events.c.id)
            )
        ).all()
        task = (await conn.execute(select(tasks.c.status))).scalar_one()
    assert [(e.data["still_there"], e.data["status"]) for e in events] == [
        (True, "OPEN"),
        (False, "FIXED"),
    ]
    assert events[0].note == "Still there: Still there & now there are <two> mattresses"
    assert events[1].note == "Still there & now there are <two> mattresses"
    assert task == "completed"  # residents report; officers decide


async def test_citizen_updates_refused(fms):
    reference = await new_request(fms, "73")
    # A task this source did not report (made through the JSON API).
    from support import AUTH

    resp = await fms.post(
        "/api/tasks",
        json={
            "type": "litter",
            "description": "Cans",
            "location": {"lat": 51.9000, "lon": 0.8800},
        },
        headers=AUTH,
    )
    assert resp.status == 201
    theirs = (await resp.json())["reference"]
    cases = [
        (update_form(theirs), 404, "service_request_id"),
        (update_form("RSP-99999"), 404, "service_request_id"),
        (update_form(reference, update_id=None), 400, "update_id"),
        (update_form(reference, status="MAYBE"), 400, "status"),
        (update_form(reference, updated_datetime="soon"), 400, "updated_datetime"),
        (update_form(reference, api_key=None), 401, "api_key"),
        (update_form(reference, api_key="test-secret-forms"), 403, "api_key"),
    ]
    before = await count(fms, task_events)
    for pairs, status, field in cases:
        got, root, body = await post_form(fms, "servicerequestupdates.xml", pairs)
        assert got == status, (field, body)
        assert errors(root)[0][1].startswith(f"{field}:"), body
        assert "mattress" not in body.lower()
    assert await count(fms, task_events) == before


MATRIX_CALLERS = {
    "anyone": {},
    "wrong key": {"api_key": "not-a-key"},
    "no open311": {"api_key": "test-secret-forms"},
    "wrong jurisdiction": {"api_key": FMS_KEY, "jurisdiction_id": "elsewhere"},
    "source": {"api_key": FMS_KEY, "jurisdiction_id": JURISDICTION},
}
MATRIX = {  # (method, path) -> caller -> status
    ("GET", "services.xml"): [200, 401, 403, 404, 200],
    ("GET", "requests.xml"): [200, 401, 403, 404, 200],
    ("GET", "requests/{ref}.xml"): [200, 401, 403, 404, 200],
    ("POST", "requests.xml"): [401, 401, 403, 404, 201],
    ("GET", "servicerequestupdates.xml"): [401, 401, 403, 404, 200],
    ("POST", "servicerequestupdates.xml"): [401, 401, 403, 404, 201],
}


@pytest.mark.parametrize(("method", "path"), list(MATRIX))
async def test_permission_matrix(fms, method, path):
    reference = await new_request(fms, "81")
    for (caller, auth), wanted in zip(MATRIX_CALLERS.items(), MATRIX[method, path], strict=True):
        target = path.format(ref=reference)
        if method == "GET":
            got, root, body = await get_xml(fms, target, **auth)
        else:
            if target.startswith("requests"):
                pairs = fms_form(f"9{len(caller)}", api_key=None, jurisdiction_id=None)
            else:
                pairs = update_form(reference, f"u-{caller}", api_key=None, jurisdiction_id=None)
            got, root, body = await post_form(fms, target, [*pairs, *auth.items()])
        assert got == wanted, (caller, body)
        if got >= 400:  # a refusal says which field, and nothing of any task
            assert root.tag == "errors" and reference not in body and "mattress" not in body
        elif path.startswith("requests") and method == "GET":
            described = root.find("request/description") is not None
            assert described == (caller == "source"), caller
    events = await count(fms, task_events)
    assert events == (2 if method == "POST" and "updates" in path else 1) + (
        1 if path == "requests.xml" and method == "POST" else 0
    )


# -- the pure decisions -----------------------------------------------------------------


def test_status_words_and_datetimes():
    from responder.domain.open311 import extended_status, still_there, w3c

    mapped = {"referred": "INTERNAL_REFERRAL", "cancelled": "CANCELLED"}
    assert extended_status({}, "assigned") == "OPEN"
    assert extended_status({}, "accepted") == "ACTION_SCHEDULED"
    assert extended_status({}, "completed", "private-land") == "NOT_COUNCILS_RESPONSIBILITY"
    assert extended_status({}, "completed", "swept") == "CLOSED"  # unmapped: not "fixed"
    assert extended_status(mapped, "completed", "referred") == "INTERNAL_REFERRAL"
    assert extended_status(mapped, "cancelled") == "CANCELLED"
    assert still_there(False, "REOPEN") and still_there(False, None)
    assert not still_there(False, "FIXED") and not still_there(True, "OPEN")

    assert parse_w3c("2026-11-23T09:00:00Z") == datetime(2026, 11, 23, 9, tzinfo=UTC)
    assert parse_w3c("2026-06-01T10:00:00+01:00") == datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert parse_w3c("2026-06-01T10:00:00.123456789-0130") is not None
    assert parse_w3c("2026-11-23") == datetime(2026, 11, 23, tzinfo=UTC)
    for bad in (
        "2026-11-23T09:00:00",
        "2026-02-30T00:00:00Z",
        "yesterday",
        "",
        "2026-11-23T25:00Z",
    ):
        assert parse_w3c(bad) is None, bad
    from zoneinfo import ZoneInfo

    summer = datetime(2026, 6, 1, 9, 0, 0, 500, tzinfo=UTC)
    assert w3c(summer, ZoneInfo("Europe/London")) == "2026-06-01T10:00:00+01:00"


def test_which_events_become_updates():
    from responder.domain.open311 import UpdateRow, updates_for

    t0 = datetime(2026, 11, 23, 9, tzinfo=UTC)

    def row(event_id, action, minutes, report_id=1, received=0, duplicate=False, **kw):
        return UpdateRow(
            event_id=event_id, task_id=7, at=t0 + timedelta(minutes=minutes), action=action,
            to_status=kw.get("to_status", "accepted"), note=kw.get("note"),
            data=kw.get("data"), actor=kw.get("actor", "bob"), report_id=report_id,
            report_received_at=t0 + timedelta(minutes=received), report_duplicate=duplicate,
            report_attributes={"fixmystreet_id": f"{100 + report_id}"},
        )  # fmt: skip

    rows = [
        row(1, "accept", 1),
        row(2, "update", 2, note="internal"),
        row(3, "citizen_update", 3, actor="intake:fms", note="mine", data={"source": "fms"}),
        row(4, "citizen_update", 4, actor="intake:other", note="Still there: theirs"),
        row(5, "handback", 5, to_status="unassigned", note="too heavy"),
        # a second report of the source, linked at minute 6: rows for both reports
        row(6, "duplicate_linked", 6, report_id=1),
        row(6, "duplicate_linked", 6, report_id=2, received=6, duplicate=True),
        row(7, "start", 7, to_status="in_progress"),
        row(7, "start", 7, report_id=2, received=6, duplicate=True, to_status="in_progress"),
    ]
    found = updates_for(rows, "fms", {}, lambda task_id: f"RSP-{1000 + task_id}")
    assert [(u.update_id, u.fixmystreet_id, u.status, u.description) for u in found] == [
        ("1", "101", "ACTION_SCHEDULED", "The council has scheduled work on this report."),
        ("4", "101", "ACTION_SCHEDULED", "Still there: theirs"),
        ("6", "102", "DUPLICATE", STATUS_WORDS_DUPLICATE),
        ("7", "101", "IN_PROGRESS", "Work on this report has started."),
    ]
    assert {u.service_request_id for u in found} == {"RSP-1007"}


STATUS_WORDS_DUPLICATE = (
    "This problem had already been reported; updates follow on the first report."
)


# -- the council file ------------------------------------------------------------------


def test_council_file_open311_section_is_checked(tmp_path):
    def change(data: dict) -> None:
        _council(data)
        data["open311"]["services"]["fly-tiping"] = {}
        data["open311"]["statuses"] = {"resolvd": "FIXED", "resolved": "MENDED"}
        data["open311"]["services"]["litter"] = {
            "attributes": [
                {"code": "fixmystreet_id", "description": "x"},
                {"code": "kind", "description": "Kind", "datatype": "singlevaluelist"},
                {"code": "kind", "description": "Again", "values": {"a": "A"}},
            ]
        }

    council, problems = validate_council_file(write_council(tmp_path, change))
    assert council is None
    assert problems == [
        "open311.services.fly-tiping: unknown task type 'fly-tiping' (did you mean 'fly-tipping'?)",
        "open311.services.litter.attributes[0].code: 'fixmystreet_id' is filled in by "
        "FixMyStreet itself",
        "open311.services.litter.attributes[1].values: a singlevaluelist needs values "
        "(key: words shown)",
        "open311.services.litter.attributes[2].code: duplicate attribute code 'kind' (also [1])",
        "open311.services.litter.attributes[2].values: only singlevaluelist and "
        "multivaluelist take values",
        "open311.statuses.resolvd: unknown outcome or task status 'resolvd' "
        "(did you mean 'resolved'?)",
        "open311.statuses.resolved: unknown Open311 status 'MENDED' (known: OPEN, "
        "INVESTIGATING, IN_PROGRESS, ACTION_SCHEDULED, FIXED, NO_FURTHER_ACTION, "
        "NOT_COUNCILS_RESPONSIBILITY, DUPLICATE, INTERNAL_REFERRAL, CLOSED, CANCELLED, REOPEN)",
    ]


# -- read as FixMyStreet reads it ------------------------------------------------------

FMS_PARSE = Path(__file__).parent / "data" / "open311" / "fms_parse.pl"


def _xml_simple_missing() -> bool:
    if shutil.which("perl") is None:
        return True
    found = subprocess.run(["perl", "-MXML::Simple", "-e1"], capture_output=True, check=False)
    return found.returncode != 0


def as_fixmystreet_reads(body: str) -> object:
    """The answer through XML::Simple with Open311.pm's own settings (tests/data/open311)."""
    done = subprocess.run(
        ["perl", str(FMS_PARSE)], input=body.encode(), capture_output=True, check=True
    )
    return json.loads(done.stdout)


@pytest.mark.skipif(_xml_simple_missing(), reason="perl's XML::Simple (libxml-simple-perl)")
async def test_answers_read_by_fixmystreets_xml_settings(fms, clock):
    # PopulateServiceList: $list->{service}, each service's {groups}, then the definition's
    # {attributes} as an ARRAY with {values}.
    _, _, body = await get_xml(fms, "services.xml", jurisdiction_id=JURISDICTION)
    listed = as_fixmystreet_reads(body)
    fly = listed["service"][0]
    assert (fly["service_code"], fly["metadata"], fly["groups"]) == (
        "fly-tipping",
        "true",
        ["Street cleansing", "Rubbish"],
    )
    _, _, body = await get_xml(fms, "services/fly-tipping.xml")
    meta = as_fixmystreet_reads(body)
    assert isinstance(meta["attributes"], list)
    assert meta["attributes"][0]["values"] == [
        {"key": "household", "name": "Household bags"},
        {"key": "furniture", "name": "Furniture"},
    ]
    assert meta["attributes"][1]["automated"] == "server_set"

    # send_service_request: $obj->{request}->[0]->{service_request_id}, not a reference.
    _, _, body = await post_form(fms, "requests.xml", fms_form("91"))
    answer = as_fixmystreet_reads(body)
    reference = answer["request"][0]["service_request_id"]
    assert isinstance(reference, str) and reference.startswith("RSP-")

    # GetServiceRequestUpdates: ->{request_update}, each with update_id, fixmystreet_id
    # (digits), status, updated_datetime, description, media_url.
    await _act(fms, clock, reference, Action.ACCEPT, "bob")
    _, _, body = await get_xml(
        fms, "servicerequestupdates.xml", **window(clock.now - timedelta(hours=1), clock.now)
    )
    [update] = as_fixmystreet_reads(body)["request_update"]
    assert update["status"] == "ACTION_SCHEDULED" and update["fixmystreet_id"] == "91"
    assert update["update_id"].isdigit() and update["service_request_id"] == reference

    # post_service_request_update: ->{request_update}->[0]->{update_id}.
    _, _, body = await post_form(fms, "servicerequestupdates.xml", update_form(reference, "95"))
    assert as_fixmystreet_reads(body)["request_update"][0]["update_id"].isdigit()

    # _process_error: ->{error}, each with code and description.
    _, _, body = await post_form(fms, "requests.xml", fms_form("92", service_code="potholes"))
    [error] = as_fixmystreet_reads(body)["error"]
    assert error["code"] == "400" and error["description"].startswith("service_code:")
