"""Photos sources link to (issue 17, "Photos, safely"): fetched through the outbox, only from
the source's photo hosts, never from an internal address, capped and checked; a photo that
cannot be fetched is recorded on the task as such.

Reports are made as the Open311 server and the form intake make them
(``commands.create.create_task`` with ``NewReport.fetch_photos``); the ``fetch.photo`` rows
are delivered by a dispatcher with the app's own handler (``PhotoFetcher``), or by the
app's running dispatcher. The photo host is a real HTTP server on 127.0.0.1
(``fakes/photos.py``), exempt from the guard as a development origin
(``RESPONDER_DEV_ATTACHMENT_ORIGINS``) at its exact origin only; beside it an "internal"
service on another port counts every connection, so "never fetched" is a count of zero,
not an inference. On a SQLite file and the machine's PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import select, update
from support import AUTH, INTAKE_SECRET, assert_valid_card, card_words, write_council

from fakes.photos import JPEG, PNG, FakePhotoHost, InternalService
from responder.app import build_app
from responder.bot.views import Viewer, render
from responder.commands.create import create_task
from responder.domain.context import Domain
from responder.domain.photos import MAX_TASK_PHOTOS
from responder.domain.records import NewReport
from responder.fetching import photos as fetching
from responder.fetching.guard import HostPolicy, URLRefused
from responder.fetching.photos import PhotoFetcher
from responder.jobs.dispatcher import Dispatcher, Done, Outcome, Retry
from responder.retry_after import retry_after
from responder.settings import Settings
from responder.store.db import Database
from responder.store.schema import outbox, photos, task_events, tasks
from responder.web import clock_key, db_key, domain_key

PUBLIC = "https://responder.sample-borough.gov.uk"
SOURCE = "fixmystreet"
FAILED = "Photo could not be fetched"
# "localhost" is listed so that a name resolving to loopback is refused after DNS.
PHOTO_HOSTS = ["fixmystreet.com", "localhost"]


def _with_sources(data: dict) -> None:
    data["sources"] = {
        SOURCE: {"open311": {"jurisdiction_id": "sample-borough"}, "photo_hosts": PHOTO_HOSTS}
    }


@dataclass
class Service:
    client: Any
    settings: Settings
    clock: Any

    @property
    def db(self) -> Database:
        return self.client.app[db_key]

    @property
    def domain(self) -> Domain:
        return self.client.app[domain_key]

    async def report(self, *links: str, source: str = SOURCE, n: int = 0) -> int:
        """A report as Open311 or a form makes it: its photo links to fetch, not shown."""
        report = NewReport(
            type="fly-tipping",
            description="Mattress by the bus stop",
            # Places 2.5e-3 degrees apart, in the council's wards: never duplicates.
            lat=round(51.8815 + (n // 15) * 0.0025, 6),
            lon=round(0.8815 + (n % 15) * 0.0025, 6),
            address="1 High Street",
            photos=(),
            source=source,
            external_id=None,
            reporter=None,
            actor=f"intake:{source}",
            fetch_photos=links,
        )
        result = await create_task(self.db, self.domain, report, self.clock())
        return result.task.id

    def fetcher(self, **kw: Any) -> PhotoFetcher:
        return PhotoFetcher(self.db, self.domain, self.settings, PUBLIC, self.clock, **kw)

    async def deliver(self, fetcher: PhotoFetcher | None = None) -> list[Outcome]:
        """Deliver every fetch.photo row that is due, as the dispatcher does; the outcomes."""
        own = fetcher is None
        fetcher = fetcher or self.fetcher()
        dispatcher = Dispatcher(self.db, fetcher.handlers(), self.clock)
        outcomes: list[Outcome] = []
        try:
            while claimed := await dispatcher.claim({"fetch": 8}):
                for message in claimed:
                    outcome = await fetcher.handlers()[message.kind](message)
                    await dispatcher.record(message, outcome)
                    outcomes.append(outcome)
        finally:
            if own:
                await fetcher.close()
        return outcomes

    async def rows(self, table, *where) -> list:
        async with self.db.read() as conn:
            return (await conn.execute(select(table).where(*where))).all()

    async def task(self, task_id: int) -> dict:
        resp = await self.client.get(f"/api/tasks/{task_id}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        return await resp.json()

    async def failures(self, task_id: int) -> list[str]:
        """The task's history lines for photos not fetched, as the intake API shows them."""
        body = await self.task(task_id)
        return [e["note"] for e in body["history"] if e["action"] == "photo_failed"]


@pytest.fixture
async def host():
    fake = FakePhotoHost()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def internal():
    fake = InternalService()
    await fake.start()
    yield fake
    await fake.close()


def _settings(database_url: str, tmp_path, host: FakePhotoHost, **kw: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "config_path": write_council(tmp_path, _with_sources),
        "intake_keys": {"forms": INTAKE_SECRET, SOURCE: "test-secret-fms"},
        "background": False,  # the tests deliver the fetch lane themselves
        "scheduler": False,
        "public_url": PUBLIC,
        # The photo host's exact origin only: 127.0.0.1 on any other port is not exempt.
        "dev_attachment_origins": (host.url,),
        **kw,
    }
    return Settings(**values)


@pytest.fixture
async def service(aiohttp_client, database_url, tmp_path, host, clock) -> Service:
    settings = _settings(database_url, tmp_path, host)
    client = await aiohttp_client(build_app(settings, clock=clock))
    return Service(client, settings, clock)


# -- a photo fetched ---------------------------------------------------------------------------


async def test_a_linked_photo_is_fetched_added_to_the_task_and_served(service, host):
    task_id = await service.report(host.link("photo.jpg"), host.link("photo.png"))
    # Taking the report fetched nothing: the links wait in the outbox's fetch lane.
    assert host.requests == []
    rows = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert [(r.lane, r.status) for r in rows] == [("fetch", "pending")] * 2

    assert await service.deliver() == [Done(), Done()]
    assert sorted(host.requests) == ["photo.jpg", "photo.png"]

    body = await service.task(task_id)
    assert len(body["photos"]) == 2
    served = {}
    for url in body["photos"]:
        assert url.startswith(f"{PUBLIC}/api/photos/")
        resp = await service.client.get(url.removeprefix(PUBLIC))
        assert resp.status == 200
        served[resp.content_type] = await resp.read()
    assert served == {"image/jpeg": JPEG, "image/png": PNG}

    stored = await service.rows(photos)
    assert {(r.task_id, r.person_id) for r in stored} == {(task_id, f"intake:{SOURCE}")}
    events = await service.rows(task_events, task_events.c.action == "photo")
    assert [(e.actor, e.data["source"], e.data["count"]) for e in events] == [
        (f"intake:{SOURCE}", SOURCE, 1)
    ] * 2
    [task] = await service.rows(tasks, tasks.c.id == task_id)
    assert task.version == 3
    # Every copy of the card already sent is owed a refresh to each new version.
    refreshes = await service.rows(outbox, outbox.c.kind == "teams.refresh")
    assert sorted(r.payload["version"] for r in refreshes) == [2, 3]
    done = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert [r.status for r in done] == ["done", "done"]


async def test_a_photo_is_added_once_however_often_its_row_is_delivered(service, host):
    """At least once, shown once: a row delivered again (a crash before the dispatcher
    noted it done) finds its photo on the task and adds nothing."""
    task_id = await service.report(host.link("photo.jpg"))
    fetcher = service.fetcher()
    dispatcher = Dispatcher(service.db, fetcher.handlers(), service.clock)
    [message] = await dispatcher.claim({"fetch": 8})
    assert await fetcher.fetch(message) == Done()
    assert await fetcher.fetch(message) == Done()
    await fetcher.close()
    assert len(await service.rows(photos)) == 1
    assert len((await service.task(task_id))["photos"]) == 1
    assert len(await service.rows(task_events, task_events.c.action == "photo")) == 1


async def test_a_residents_photo_is_kept_on_a_task_already_closed(service, host):
    task_id = await service.report(host.link("photo.jpg"))
    async with service.db.write() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == task_id).values(status="completed"))
    assert await service.deliver() == [Done()]
    body = await service.task(task_id)
    assert (body["status"], len(body["photos"])) == ("completed", 1)


async def test_a_task_with_as_many_photos_as_it_can_hold_records_the_one_more(service, host):
    task_id = await service.report(host.link("photo.jpg"))
    full = [f"https://forms.example/{i}.jpg" for i in range(MAX_TASK_PHOTOS)]
    async with service.db.write() as conn:
        await conn.execute(update(tasks).where(tasks.c.id == task_id).values(photos=full))
    assert await service.deliver() == [
        Done("not added: the task has as many photos as it can hold")
    ]
    assert await service.rows(photos) == []  # not kept where nobody could find it
    assert await service.failures(task_id) == [
        f"the task already has {MAX_TASK_PHOTOS} photos, the most it can hold"
    ]


# -- never fetched: SSRF -----------------------------------------------------------------------


async def test_internal_addresses_and_other_schemes_are_never_fetched(
    service, host, internal, caplog
):
    port = internal.port
    cases = [
        # 127.0.0.1 on another port than the exempt photo host's, over http and https.
        (f"http://127.0.0.1:{port}/x.jpg", fetching.NOT_HTTPS[0]),
        (f"https://127.0.0.1:{port}/x.jpg", fetching.INTERNAL[0]),
        (f"https://[::ffff:127.0.0.1]:{port}/x.jpg", fetching.INTERNAL[0]),
        (f"https://[::1]:{port}/x.jpg", fetching.INTERNAL[0]),
        # The cloud metadata service: refused as an address, never connected to.
        (
            "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
            fetching.INTERNAL[0],
        ),
        ("http://169.254.169.254/latest/meta-data/", fetching.NOT_HTTPS[0]),
        ("https://10.0.0.1/x.jpg", fetching.INTERNAL[0]),
        # A photo host by name that resolves to loopback: refused after DNS.
        (f"https://localhost:{port}/x.jpg", fetching.INTERNAL[0]),
        # Not a web address at all.
        ("file:///etc/passwd", fetching.NOT_WEB[0]),
        ("ftp://fixmystreet.com/x.jpg", fetching.NOT_WEB[0]),
        # Not the source's hosts (refused before any DNS lookup).
        (
            "https://evil.example/x.jpg",
            f"the link is on evil.example, not a host {SOURCE} may send photos from",
        ),
        (
            "https://evilfixmystreet.com/x.jpg",
            f"the link is on evilfixmystreet.com, not a host {SOURCE} may send photos from",
        ),
        ("https://bob:pw@fixmystreet.com/x.jpg", fetching.CREDENTIALS[0]),
        ("http://fixmystreet.com/photo.jpg", fetching.NOT_HTTPS[0]),
        # The exempt origin is exact: the same host and port over https is not it.
        (host.url.replace("http://", "https://") + "/files/photo.jpg", fetching.INTERNAL[0]),
    ]
    ids = [await service.report(url, n=i) for i, (url, _) in enumerate(cases)]
    with caplog.at_level(logging.INFO, logger="responder.fetching"):
        outcomes = await service.deliver()
    assert len(outcomes) == len(cases)
    assert all(
        isinstance(o, Done) and o.note and o.note.startswith("not fetched") for o in outcomes
    )
    for task_id, (url, words) in zip(ids, cases, strict=True):
        assert await service.failures(task_id) == [words], url
        assert (await service.task(task_id))["photos"] == [], url

    assert (internal.connections, internal.requests) == (0, [])
    assert (host.connections, host.requests) == (0, [])
    assert await service.rows(photos) == []
    # Never retried: each row is done, after one try.
    rows = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert {(r.status, r.attempts) for r in rows} == {("done", 1)}
    # The logs say which source and why, never the link.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "photo from fixmystreet not fetched: resolved to loopback address" in logged
    assert "169.254" not in logged and "/x.jpg" not in logged and "passwd" not in logged


async def test_a_redirect_to_an_internal_address_is_refused_on_that_hop(service, host, internal):
    port = internal.port
    cases = [
        (f"https://127.0.0.1:{port}/x.jpg", fetching.INTERNAL[1]),
        (f"http://127.0.0.1:{port}/x.jpg", fetching.NOT_HTTPS[1]),
        ("https://169.254.169.254/latest/meta-data/", fetching.INTERNAL[1]),
        ("http://169.254.169.254/latest/meta-data/", fetching.NOT_HTTPS[1]),
        ("https://192.168.1.1/admin", fetching.INTERNAL[1]),
        (f"https://localhost:{port}/x.jpg", fetching.INTERNAL[1]),  # after DNS
        ("file:///etc/passwd", fetching.NOT_WEB[1]),
        (
            "https://elsewhere.example/x.jpg",
            f"the link redirects to elsewhere.example, not a host {SOURCE} may send photos from",
        ),
    ]
    ids = []
    for i, (target, _) in enumerate(cases):
        host.redirects[f"r{i}.jpg"] = target
        ids.append(await service.report(host.link(f"r{i}.jpg"), n=i))
    outcomes = await service.deliver()
    assert all(isinstance(o, Done) for o in outcomes)
    for task_id, (target, words) in zip(ids, cases, strict=True):
        assert await service.failures(task_id) == [words], target
    # The allowed host was asked once each; where it pointed, never.
    assert sorted(host.requests) == sorted(f"r{i}.jpg" for i in range(len(cases)))
    assert (internal.connections, internal.requests) == (0, [])
    assert await service.rows(photos) == []


async def test_redirects_are_followed_and_checked_at_most_three_times(service, host):
    host.redirects |= {"a.jpg": host.link("b.jpg"), "b.jpg": "/files/photo.jpg"}
    followed = await service.report(host.link("a.jpg"))
    host.redirects["loop.jpg"] = host.link("loop.jpg")
    looped = await service.report(host.link("loop.jpg"), n=1)
    await service.deliver()
    assert len((await service.task(followed))["photos"]) == 1
    assert await service.failures(looped) == [fetching.REDIRECTS]
    assert host.requests.count("loop.jpg") == 4  # the link and three redirects


# -- never kept: too big, not a picture, not there ---------------------------------------------


async def test_a_file_over_ten_megabytes_is_not_kept(service, host):
    streamed = await service.report(host.link("huge.jpg"))
    declared = await service.report(host.link("huge-declared.jpg"), n=1)
    await service.deliver()
    for task_id in (streamed, declared):
        assert await service.failures(task_id) == [fetching.TOO_BIG]
    assert await service.rows(photos) == []


async def test_a_page_that_says_it_is_a_photo_is_not_kept(service, host):
    task_id = await service.report(host.link("page.html"))
    assert await service.deliver() == [Done("not fetched: not a picture")]
    assert await service.failures(task_id) == [fetching.NOT_IMAGE]
    assert await service.rows(photos) == []


async def test_a_photo_not_there_is_recorded_at_once_and_not_retried(service, host):
    missing = await service.report(host.link("missing.jpg"))
    gone = await service.report(host.link("gone.jpg"), n=1)
    await service.deliver()
    assert await service.failures(missing) == [
        "the photo is no longer there (the host answered 404)"
    ]
    assert await service.failures(gone) == ["the photo is no longer there (the host answered 410)"]
    rows = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert {(r.status, r.attempts) for r in rows} == {("done", 1)}
    assert sorted(host.requests) == ["gone.jpg", "missing.jpg"]


async def test_a_source_no_longer_in_the_council_file_gets_no_fetch(service, host):
    # "forms" is an intake key, but not (or no longer) a source in the council file.
    task_id = await service.report(host.link("photo.jpg"), source="forms")
    await service.deliver()
    assert await service.failures(task_id) == ["forms is no longer a source in the council file"]
    assert host.requests == []


# -- tried again: busy and broken hosts --------------------------------------------------------


async def test_a_busy_host_is_tried_again_then_the_photo_is_added(service, host):
    host.scripted["flaky.jpg"] = deque([503, 429])
    host.files["flaky.jpg"] = ("image/jpeg", JPEG)
    task_id = await service.report(host.link("flaky.jpg"))

    assert await service.deliver() == [Retry("answered 503", 1.0)]  # its Retry-After
    assert await service.deliver() == []  # not due yet
    service.clock.now += timedelta(seconds=2)
    assert await service.deliver() == [Retry("answered 429", 1.0)]
    service.clock.now += timedelta(seconds=2)
    assert await service.deliver() == [Done()]

    assert len((await service.task(task_id))["photos"]) == 1
    assert await service.failures(task_id) == []
    assert host.requests == ["flaky.jpg"] * 3


async def test_a_host_that_keeps_failing_is_recorded_after_the_give_up_time(service, host):
    task_id = await service.report(host.link("error.jpg"))
    [first] = await service.deliver()
    assert isinstance(first, Retry) and first.error == "answered 500" and first.after is None
    assert await service.failures(task_id) == []  # not yet: it may come back

    service.clock.now += fetching.GIVE_UP_AFTER
    assert await service.deliver() == [Done("not fetched: answered 500")]
    assert await service.failures(task_id) == ["the host kept answering 500 for 12 hours"]
    [row] = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert row.status == "done"  # recorded by us, never parked unexplained


async def test_a_slow_body_times_out_and_is_tried_again(service, host):
    host.slow_seconds = 1.0
    task_id = await service.report(host.link("slow.jpg"))
    fetcher = service.fetcher(timeout=aiohttp.ClientTimeout(total=5, sock_read=0.2))
    try:
        [outcome] = await service.deliver(fetcher)
        assert isinstance(outcome, Retry) and "Timeout" in outcome.error
        # A host that cannot be reached for the whole give-up time is recorded.
        service.clock.now += fetching.GIVE_UP_AFTER + timedelta(minutes=5)
        assert await service.deliver(fetcher) == [Done(f"not fetched: {outcome.error}")]
    finally:
        await fetcher.close()
    assert await service.failures(task_id) == ["the host could not be reached for 12 hours"]


async def test_a_host_that_refuses_connections_is_tried_again(service):
    import dataclasses
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = dataclasses.replace(service.settings, dev_attachment_origins=(dead,))
    task_id = await service.report(f"{dead}/files/photo.jpg")
    fetcher = PhotoFetcher(service.db, service.domain, settings, PUBLIC, service.clock)
    try:
        [outcome] = await service.deliver(fetcher)
    finally:
        await fetcher.close()
    assert isinstance(outcome, Retry) and outcome.error.startswith("Client")
    assert outcome.after is None  # backoff with jitter
    assert await service.failures(task_id) == []


# -- a slow host never holds up intake ---------------------------------------------------------


async def test_a_slow_photo_host_does_not_hold_up_intake(
    aiohttp_client, database_url, tmp_path, host
):
    """Through the app's own dispatcher and PhotoFetcher: while a photo host takes its
    time, reports are answered and delivered."""
    settings = _settings(database_url, tmp_path, host, background=True)
    client = await aiohttp_client(build_app(settings))
    service = Service(client, settings, client.app[clock_key])
    held = await service.report(host.link("held.jpg"))
    for _ in range(200):  # the fetch lane has it in hand: the host is answering slowly
        if host.requests == ["held.jpg"]:
            break
        await asyncio.sleep(0.02)
    assert host.requests == ["held.jpg"]

    body = {
        "type": "fly-tipping",
        "description": "Bags by the bench",
        "location": {"lat": 51.9001, "lon": 0.8873, "address": "2 High Street"},
    }
    resp = await client.post("/api/tasks", json=body, headers=AUTH)
    assert resp.status == 201, await resp.text()
    other = (await resp.json())["id"]
    # Its card went out in the Teams lane (undelivered: nobody installed the bot) while
    # the photo is still being fetched.
    for _ in range(200):
        owed = await service.rows(outbox, outbox.c.task_id == other, outbox.c.lane == "teams")
        if owed and all(r.status != "pending" for r in owed):
            break
        await asyncio.sleep(0.02)
    assert owed and all(r.status != "pending" for r in owed)
    [fetch] = await service.rows(outbox, outbox.c.kind == "fetch.photo")
    assert fetch.status == "pending"
    assert (await service.task(held))["photos"] == []

    host.release()
    for _ in range(200):
        if (await service.task(held))["photos"]:
            break
        await asyncio.sleep(0.02)
    assert len((await service.task(held))["photos"]) == 1


async def test_fixmystreet_media_urls_through_the_app(
    aiohttp_client, database_url, tmp_path, host, internal
):
    """A report posted as FixMyStreet posts it (form-encoded, ``media_url`` repeated), with
    the app's own dispatcher running: the links to internal addresses are recorded as not
    fetched and never reached, the photo is added, and another report is answered while
    its host holds the fetch."""
    host.redirects["moved.jpg"] = "https://192.168.0.10/x.jpg"
    settings = _settings(database_url, tmp_path, host, background=True)
    client = await aiohttp_client(build_app(settings))
    service = Service(client, settings, client.app[clock_key])

    def form(fms_id: str, *links: str) -> str:
        pairs = [
            ("jurisdiction_id", "sample-borough"),
            ("api_key", "test-secret-fms"),
            ("service_code", "fly-tipping"),
            ("description", "Mattress by the bus stop"),
            ("lat", "51.905100"),
            ("long", "0.887300"),
            ("attribute[fixmystreet_id]", fms_id),
            *(("media_url", link) for link in links),
        ]
        return urlencode(pairs)

    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    links = [
        host.link("held.jpg"),
        f"https://127.0.0.1:{internal.port}/x.jpg",
        f"http://127.0.0.1:{internal.port}/x.jpg",
        "https://169.254.169.254/latest/meta-data/",
        host.link("moved.jpg"),
    ]
    resp = await client.post("/open311/v2/requests.xml", data=form("77", *links), headers=headers)
    assert resp.status == 201, await resp.text()
    reference = ET.fromstring(await resp.text()).findtext("request/service_request_id")
    [task] = await service.rows(tasks)
    assert reference and reference.endswith(str(task.id + 1000))

    for _ in range(250):  # the fetch lane has the held photo in hand
        if "held.jpg" in host.requests:
            break
        await asyncio.sleep(0.02)
    resp = await client.post(
        "/open311/v2/requests.xml",
        data=form("78"),
        headers=headers,
    )
    assert resp.status == 201, await resp.text()  # answered while the host holds a fetch
    assert (await service.task(task.id))["photos"] == []

    host.release()
    for _ in range(250):
        pending = await service.rows(
            outbox, outbox.c.kind == "fetch.photo", outbox.c.status == "pending"
        )
        if not pending:
            break
        await asyncio.sleep(0.02)
    assert pending == []
    assert len((await service.task(task.id))["photos"]) == 1
    assert sorted(await service.failures(task.id)) == sorted(
        [fetching.INTERNAL[0], fetching.NOT_HTTPS[0], fetching.INTERNAL[0], fetching.INTERNAL[1]]
    )
    assert (internal.connections, internal.requests) == (0, [])
    assert sorted(host.requests) == ["held.jpg", "moved.jpg"]


# -- where it shows ----------------------------------------------------------------------------


async def test_managers_card_says_a_photo_could_not_be_fetched_and_why(service, host):
    task_id = await service.report(host.link("page.html"))
    await service.deliver()
    [task] = await service.rows(tasks, tasks.c.id == task_id)
    manager = service.domain.council.team(task.team).managers[0]
    officer = task.assignee

    def cards(conn) -> list[dict]:
        now = service.clock()
        return [
            render(conn, service.domain, task_id, Viewer(p), now)[1] for p in (manager, officer)
        ]

    manager_card, officer_card = await service.db.query(cards)
    for card in (manager_card, officer_card):
        assert_valid_card(card)
    assert f"{FAILED}: {fetching.NOT_IMAGE}." in card_words(manager_card)
    # Officers' cards list what people did; problems like this are for managers.
    assert FAILED not in card_words(officer_card)


# -- the policy and the words, without a database ----------------------------------------------


def test_a_source_policy_allows_its_hosts_over_https_only():
    policy = HostPolicy(("fixmystreet.com", "*.forms.example.gov.uk"))
    assert policy.hosts == ("fixmystreet.com", "forms.example.gov.uk")
    for url in (
        "https://www.fixmystreet.com/photo/123.0.full.jpeg",
        "https://fixmystreet.com/p.jpg",
        "https://uploads.forms.example.gov.uk/a/b.png",
        "https://FIXMYSTREET.COM./p.jpg",
    ):
        hop = policy.check(url)
        assert hop.guarded, url
    refusals = {
        "https://evilfixmystreet.com/p.jpg": "host not allowed",
        "https://fixmystreet.com.evil.example/p.jpg": "host not allowed",
        "https://forms.example.gov.uk.evil/p.jpg": "host not allowed",
        "https://8.8.8.8/p.jpg": "host not allowed",  # an IP literal is never a photo host
        "https://127.0.0.1/p.jpg": "loopback address",
        "https://169.254.169.254/": "link-local address",
        "http://fixmystreet.com/p.jpg": "not https",
        "file:///etc/passwd": "not an http(s) URL",
        "https://u:p@fixmystreet.com/p.jpg": "credentials in URL",
        "": "no URL",
    }
    for url, reason in refusals.items():
        with pytest.raises(URLRefused) as caught:
            policy.check(url)
        assert caught.value.reason == reason, url
    # No hosts: nothing at all.
    with pytest.raises(URLRefused):
        HostPolicy(()).check("https://fixmystreet.com/p.jpg")


def test_dev_origins_are_exempt_exactly():
    policy = HostPolicy((), ("http://127.0.0.1:8080",))
    assert not policy.check("http://127.0.0.1:8080/files/a.jpg").guarded
    for url, reason in {
        "http://127.0.0.1:8081/a.jpg": "not https",
        "https://127.0.0.1:8080/a.jpg": "loopback address",
        "http://localhost:8080/a.jpg": "not https",
    }.items():
        with pytest.raises(URLRefused) as caught:
            policy.check(url)
        assert caught.value.reason == reason, url


def test_dev_origins_are_refused_in_production(tmp_path):
    from responder.app import StartupError

    settings = Settings(
        config_path=write_council(tmp_path, _with_sources),
        environment="production",
        dev_attachment_origins=("http://127.0.0.1:8080",),
        app_id="00000000-0000-4000-8000-00000000b07d",
        app_password="x",
    )
    with pytest.raises(StartupError, match="RESPONDER_DEV_ATTACHMENT_ORIGINS"):
        build_app(settings)


def test_retry_after_reads_seconds_and_dates():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    assert retry_after("5") == 5.0
    assert retry_after("999999") == 3600.0  # capped
    assert retry_after("Mon, 23 Nov 2026 09:00:30 GMT", now) == 30.0
    assert retry_after("Mon, 23 Nov 2026 08:00:00 GMT", now) == 0.0
    for unreadable in (None, "", "soon", "-1"):
        assert retry_after(unreadable) is None


def test_the_words_never_carry_the_link():
    pattern = re.compile(r"https?://|/files/|\?")
    words = [
        fetching.NOT_IMAGE,
        fetching.TOO_BIG,
        fetching.REDIRECTS,
        *fetching.INTERNAL,
        *fetching.NOT_HTTPS,
        *fetching.NOT_WEB,
        *fetching.CREDENTIALS,
        *fetching.MALFORMED,
    ]
    assert not [w for w in words if pattern.search(w)]


def test_refusals_in_words():
    from responder.fetching.fetch import Refused

    def words(reason: str, redirected: bool = False, host: str | None = None) -> str:
        return fetching.refusal_words(Refused(reason, host, redirected), SOURCE)

    assert words("loopback address") == fetching.INTERNAL[0]
    assert words("resolved to private address", redirected=True) == fetching.INTERNAL[1]
    assert words("non-public address") == fetching.INTERNAL[0]
    # Not internal, just not an address at all.
    assert words("malformed IP address") == fetching.MALFORMED[0]
    assert words("resolved to no address") == fetching.MALFORMED[0]
    assert words("malformed redirect", redirected=True) == fetching.MALFORMED[1]
    assert words("host not allowed", host="xn--e1afmkfd.example") == (
        f"the link is on xn--e1afmkfd.example, not a host {SOURCE} may send photos from"
    )
