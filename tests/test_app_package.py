"""The Teams app package: manifest valid against the 1.24 schema, icons Teams accepts, CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from support import EXAMPLES, ROOT, SCHEMAS, write_council

from responder.apppackage import (
    AppPackageError,
    build_manifest,
    build_package,
    manifest_problems,
    package_problems,
)
from responder.apppackage.build import describe
from responder.config import ConfigError, load_council
from responder.settings import Settings

RESPONDER = Path(sys.executable).with_name("responder")
SCHEMA = SCHEMAS / "teams-manifest-1.24.json"
APP_PACKAGE = ROOT / "appPackage"
PACKAGED = ROOT / "responder" / "apppackage" / "template"
BOT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
TEAMS_APP_ID = "9b2d6c1e-7a41-4c0e-8f5a-52a1b3c4d5e6"
PUBLIC_HOST = "responder.sample-borough.gov.uk"


@pytest.fixture(scope="module")
def council():
    return load_council(EXAMPLES / "council.yaml")


@pytest.fixture
def settings() -> Settings:
    return Settings(app_id=BOT_ID)


def _bot(manifest: dict) -> dict:
    [bot] = manifest["bots"]
    return bot


def _commands(manifest: dict, scope: str) -> list[str]:
    [commands] = [c["commands"] for c in _bot(manifest)["commandLists"] if scope in c["scopes"]]
    return [c["title"] for c in commands]


# --- PNG reading (IHDR with struct, pixels with zlib and the standard un-filter) ------


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body), f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def png_size(data: bytes) -> tuple[int, int]:
    kind, body = _chunks(data)[0]
    assert kind == b"IHDR"
    width, height = struct.unpack(">II", body[:8])
    return width, height


def png_rgba(data: bytes) -> list[list[tuple[int, ...]]]:
    """Pixels of an 8-bit RGBA, non-interlaced PNG, as rows of (r, g, b, a)."""
    chunks = _chunks(data)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 6, 0), "expected 8-bit RGBA, not interlaced"
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    bpp, stride = 4, width * 4
    rows, prev, pos = [], bytearray(stride), 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
            else:
                assert kind == 0, f"unknown PNG filter type {kind}"
        rows.append([tuple(line[i : i + 4]) for i in range(0, stride, 4)])
        prev = line
    return rows


# --- the manifest ---------------------------------------------------------------------


def test_built_manifest_is_valid_against_the_1_24_schema(settings, council):
    manifest = build_manifest(settings, council)
    assert manifest_problems(manifest, SCHEMA) == []
    assert manifest["manifestVersion"] == "1.24"
    assert manifest["$schema"] == (
        "https://developer.microsoft.com/json-schemas/teams/v1.24/MicrosoftTeams.schema.json"
    )


def test_the_schema_check_catches_problems(settings, council):
    manifest = build_manifest(settings, council)
    manifest["bots"][0]["botId"] = "not-a-guid"
    manifest["name"]["short"] = "x" * 31
    manifest["accentColor"] = "${{ACCENT}}"
    problems = manifest_problems(manifest, SCHEMA)
    assert any(p.startswith("$.bots[0].botId:") for p in problems), problems
    assert any(p.startswith("$.name.short:") for p in problems), problems
    assert "placeholders not filled in: ACCENT" in problems


def test_every_placeholder_is_filled(settings, council):
    manifest = build_manifest(settings, council)
    assert "${{" not in json.dumps(manifest)
    template = (APP_PACKAGE / "manifest.json").read_text()
    for name in (
        "MICROSOFT_APP_ID",
        "APP_ID",
        "PUBLIC_HOST",
        "PUBLIC_URL",
        "COUNCIL_NAME",
        "WEB_CLIENT_ID",
    ):
        assert "${{" + name + "}}" in template


def test_bot_and_app_ids(settings, council):
    manifest = build_manifest(settings, council)
    assert _bot(manifest)["botId"] == BOT_ID
    assert manifest["id"] == BOT_ID  # the Teams app id defaults to the bot's
    other = build_manifest(settings, council, app_id=TEAMS_APP_ID)
    assert other["id"] == TEAMS_APP_ID
    assert _bot(other)["botId"] == BOT_ID


def test_the_tabs_and_their_single_sign_on(settings, council, tmp_path):
    manifest = build_manifest(settings, council)
    assert manifest["staticTabs"] == [
        {
            "entityId": "responder-tasks",
            "name": "Tasks",
            "contentUrl": f"https://{PUBLIC_HOST}/tab?next=/tasks",
            "websiteUrl": f"https://{PUBLIC_HOST}/tasks",
            "scopes": ["personal"],
        }
    ]
    assert manifest["configurableTabs"] == [
        {
            "configurationUrl": f"https://{PUBLIC_HOST}/tab/config",
            "canUpdateConfiguration": True,
            "scopes": ["team"],
        }
    ]
    # The Entra app the tab's SSO token is issued for: by default the bot's own.
    assert manifest["webApplicationInfo"] == {
        "id": BOT_ID,
        "resource": f"api://{PUBLIC_HOST}/{BOT_ID}",
    }
    assert manifest_problems(manifest, SCHEMA) == []

    web_id = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    own = build_manifest(Settings(app_id=BOT_ID, web_client_id=web_id), council)
    assert own["webApplicationInfo"] == {"id": web_id, "resource": f"api://{PUBLIC_HOST}/{web_id}"}
    assert _bot(own)["botId"] == BOT_ID
    assert manifest_problems(own, SCHEMA) == []
    not_guid = Settings(app_id=BOT_ID, web_client_id="my-web-app")
    assert package_problems(not_guid, council) == [
        "RESPONDER_WEB_CLIENT_ID should be a GUID (the Entra app's client id), got 'my-web-app'"
    ]
    with pytest.raises(AppPackageError):
        build_package(not_guid, council, tmp_path / "x.zip")


def test_bot_scopes_and_files(settings, council):
    bot = _bot(build_manifest(settings, council))
    assert bot["scopes"] == ["personal", "team"]
    assert bot["supportsFiles"] is True  # officers send photos in personal chat
    assert bot["isNotificationOnly"] is False


def test_command_lists_per_scope_within_limits(settings, council):
    manifest = build_manifest(settings, council)
    lists = _bot(manifest)["commandLists"]
    assert len(lists) <= 3
    assert [c["scopes"] for c in lists] == [["personal"], ["team"]]
    assert _commands(manifest, "personal") == [
        "my tasks",
        "on duty",
        "off duty",
        "status of my cases",
        "raise a task",
        "help",
    ]
    assert _commands(manifest, "team") == ["link team", "help"]
    for command_list in lists:
        assert len(command_list["commands"]) <= 10  # what Teams shows in the bot menu
        for command in command_list["commands"]:
            # Stricter than the schema (128/4000): the limits Teams' own docs give.
            assert 0 < len(command["title"]) <= 32
            assert 0 < len(command["description"]) <= 128


def test_domains_developer_and_names_come_from_the_council(settings, council):
    manifest = build_manifest(settings, council)
    assert manifest["validDomains"] == [PUBLIC_HOST]
    assert manifest["developer"] == {
        "name": "Sample Borough Council",
        "websiteUrl": f"https://{PUBLIC_HOST}/",
        "privacyUrl": f"https://{PUBLIC_HOST}/privacy",
        "termsOfUseUrl": f"https://{PUBLIC_HOST}/terms",
    }
    assert manifest["name"] == {"short": "Responder", "full": "Responder – Sample Borough Council"}
    assert "Sample Borough Council" in manifest["description"]["full"]
    for role in ("Officers", "Councillors", "Managers"):
        assert role in manifest["description"]["full"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_description_names_the_councils_own_task_types(settings, council):
    full = build_manifest(settings, council)["description"]["full"]
    assert full.startswith("Responder brings Sample Borough Council's street-care work into Teams.")
    # The example's first twelve task types, in file order, then a count of the rest.
    assert (
        "(fly-tipping, discarded needles or syringes, graffiti, litter, dog fouling, broken "
        "glass, dead animal, overflowing litter bin, grass needs cutting, overgrown hedge or "
        "vegetation, damaged play equipment, damaged bench and 2 more)"
    ) in full
    # Nothing another council might not do: the template's own examples are gone.
    for word in ("arborists", "verges", "wardens"):
        assert word not in full
    assert len(full) <= 4000


def test_description_of_a_council_with_few_or_many_task_types(settings, tmp_path):
    def only(types):
        def change(d):
            d["task_types"] = [
                {"code": f"t{i}", "name": name, "service": "trees", "priority": "normal"}
                for i, name in enumerate(types)
            ]
            d["rules"] = []
            d["digest"].pop("escalate_unaccepted_after_minutes", None)

        return change

    one = load_council(write_council(tmp_path, only(["Fallen tree"])))
    assert "Officers get each new task (fallen tree) as a card" in describe(one)

    two = load_council(write_council(tmp_path, only(["CCTV fault", "Pothole"])))
    assert "(CCTV fault and pothole)" in describe(two)

    many = load_council(write_council(tmp_path, only([f"Kind {i}" for i in range(71)])))
    manifest = build_manifest(settings, many)
    assert "kind 11 and 59 more)" in manifest["description"]["full"]
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []


def test_the_councils_own_description(settings, tmp_path):
    text = ("Report & track street problems for Testshire <b>Council</b>. " * 70)[:4000]
    path = write_council(tmp_path, lambda d: d["council"].__setitem__("app_description", text))
    manifest = build_manifest(settings, load_council(path))
    assert manifest["description"]["full"] == text  # as given: JSON needs no escaping
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []

    too_long = write_council(
        tmp_path, lambda d: d["council"].__setitem__("app_description", text + "x")
    )
    with pytest.raises(ConfigError) as refused:
        load_council(too_long)
    assert any(
        p.startswith("council.app_description: should have at most 4000 characters")
        for p in refused.value.problems
    ), refused.value.problems


def test_the_councils_own_privacy_and_terms_pages(settings, tmp_path):
    privacy = "https://www.sample-borough.gov.uk/privacy/responder"
    terms = "https://www.sample-borough.gov.uk/terms-of-use"

    def change(d):
        d["council"]["privacy_url"] = privacy
        d["council"]["terms_url"] = terms

    council = load_council(write_council(tmp_path, change))
    manifest = build_manifest(settings, council)
    assert manifest["developer"]["privacyUrl"] == privacy
    assert manifest["developer"]["termsOfUseUrl"] == terms
    assert manifest["developer"]["websiteUrl"] == f"https://{PUBLIC_HOST}/"
    assert manifest["validDomains"] == [PUBLIC_HOST]
    assert package_problems(settings, council) == []
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []

    only_terms = load_council(
        write_council(tmp_path, lambda d: d["council"].__setitem__("terms_url", terms))
    )
    developer = build_manifest(settings, only_terms)["developer"]
    assert developer["privacyUrl"] == f"https://{PUBLIC_HOST}/privacy"
    assert developer["termsOfUseUrl"] == terms


@pytest.mark.parametrize(
    "url", ["http://www.sample-borough.gov.uk/privacy", "www.sample-borough.gov.uk", "https://"]
)
def test_a_council_page_that_is_not_https_is_refused(settings, tmp_path, url):
    path = write_council(tmp_path, lambda d: d["council"].__setitem__("privacy_url", url))
    council = load_council(path)
    [problem] = package_problems(settings, council)
    assert problem.startswith(
        f"council.privacy_url must be an https:// address for a Teams app package, got {url!r}"
    )
    with pytest.raises(AppPackageError):
        build_package(settings, council, tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


def test_the_linked_pages_are_served(settings, council):
    """What the manifest links to by default is what responder/pages.py serves."""
    from responder.pages import routes

    manifest = build_manifest(settings, council)
    served = {route.path for route in routes(council)}
    for key in ("privacyUrl", "termsOfUseUrl"):
        url = manifest["developer"][key]
        assert url.startswith(f"https://{PUBLIC_HOST}/")
        assert url.removeprefix(f"https://{PUBLIC_HOST}") in served


def test_a_trailing_slash_and_a_port_in_public_url(settings, tmp_path):
    path = write_council(
        tmp_path,
        lambda d: d["council"].__setitem__("public_url", "https://tasks.example.gov.uk:8443/"),
    )
    manifest = build_manifest(settings, load_council(path))
    assert manifest["validDomains"] == ["tasks.example.gov.uk:8443"]
    assert manifest["developer"]["privacyUrl"] == "https://tasks.example.gov.uk:8443/privacy"


def test_a_long_council_name_is_shortened_to_fit(settings, tmp_path):
    name = "The Royal Borough of Kensington and Chelsea and " + "Greater Somewhere " * 6
    path = write_council(tmp_path, lambda d: d["council"].__setitem__("name", name.strip()))
    manifest = build_manifest(settings, load_council(path))
    assert len(manifest["developer"]["name"]) <= 32
    assert len(manifest["name"]["full"]) <= 100
    assert manifest["name"]["full"].startswith("Responder – The Royal Borough of Kensington")
    assert manifest["name"]["full"].endswith("…")
    assert manifest["developer"]["name"] == "The Royal Borough of Kensington…"
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []


# --- the package ----------------------------------------------------------------------


def test_package_holds_exactly_the_three_files(settings, council, tmp_path):
    out = build_package(settings, council, tmp_path / "build" / "responder.zip")
    assert out == tmp_path / "build" / "responder.zip"
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert zf.testzip() is None
        manifest = json.loads(zf.read("manifest.json"))
        color, outline = zf.read("color.png"), zf.read("outline.png")
    assert manifest == build_manifest(settings, council)
    assert color == (APP_PACKAGE / "color.png").read_bytes()
    assert outline == (APP_PACKAGE / "outline.png").read_bytes()
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []


def test_the_same_inputs_give_the_same_zip(settings, council, tmp_path):
    first = build_package(settings, council, tmp_path / "a.zip").read_bytes()
    second = build_package(settings, council, tmp_path / "b.zip").read_bytes()
    assert first == second


def test_package_refuses_without_the_bot_id_or_https_public_url(council, tmp_path):
    with pytest.raises(AppPackageError) as missing:
        build_package(Settings(app_id=""), council, tmp_path / "x.zip")
    assert any(
        p.startswith("MicrosoftAppId is not set: set MicrosoftAppId")
        for p in missing.value.problems
    )
    with pytest.raises(AppPackageError) as not_guid:
        build_package(Settings(app_id="my-bot"), council, tmp_path / "x.zip")
    assert not_guid.value.problems == ["MicrosoftAppId should be a GUID, got 'my-bot'"]

    no_url = write_council(tmp_path, lambda d: d["council"].pop("public_url"))
    with pytest.raises(AppPackageError) as unset:
        build_package(Settings(app_id=BOT_ID), load_council(no_url), tmp_path / "x.zip")
    assert unset.value.problems[0].startswith("council.public_url is not set in ")

    local = write_council(
        tmp_path, lambda d: d["council"].__setitem__("public_url", "http://localhost:3978")
    )
    with pytest.raises(AppPackageError) as plain_http:
        build_package(Settings(app_id=BOT_ID), load_council(local), tmp_path / "x.zip")
    assert "council.public_url must be an https:// address" in plain_http.value.problems[0]
    assert not (tmp_path / "x.zip").exists()


# --- the icons ------------------------------------------------------------------------


def test_icon_sizes():
    assert png_size((APP_PACKAGE / "color.png").read_bytes()) == (192, 192)
    assert png_size((APP_PACKAGE / "outline.png").read_bytes()) == (32, 32)


def test_outline_icon_is_white_on_transparent():
    pixels = [p for row in png_rgba((APP_PACKAGE / "outline.png").read_bytes()) for p in row]
    assert len(pixels) == 32 * 32
    assert {p[:3] for p in pixels if p[3]} == {(255, 255, 255)}
    alphas = {p[3] for p in pixels}
    assert 0 in alphas and 255 in alphas  # a transparent background and a solid mark


def test_color_icon_is_the_accent_colour_with_a_white_mark(settings, council):
    rows = png_rgba((APP_PACKAGE / "color.png").read_bytes())
    accent = build_manifest(settings, council)["accentColor"]
    rgb = tuple(int(accent[i : i + 2], 16) for i in (1, 3, 5))
    assert rows[20][96] == (*rgb, 255)  # the tile, above the letter
    assert rows[96][70] == (255, 255, 255, 255)  # the stem of the R
    assert rows[0][0][3] == 0  # rounded corner


def _make_icons():
    spec = importlib.util.spec_from_file_location("make_icons", APP_PACKAGE / "make_icons.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_icons_are_what_make_icons_draws():
    # Pixels, not bytes: another zlib may compress the same rows differently.
    make_icons = _make_icons()
    drawn = {"color.png": make_icons.render_color(), "outline.png": make_icons.render_outline()}
    for name, rows in drawn.items():
        committed = png_rgba((APP_PACKAGE / name).read_bytes())
        expected = [[tuple(r[i : i + 4]) for i in range(0, len(r), 4)] for r in rows]
        assert committed == expected, f"{name}: run python appPackage/make_icons.py"


def test_packaged_template_is_the_app_package_folder():
    for name in ("manifest.json", "color.png", "outline.png"):
        assert (PACKAGED / name).read_bytes() == (APP_PACKAGE / name).read_bytes(), (
            f"responder/apppackage/template/{name} differs from appPackage/{name}: "
            "run python appPackage/make_icons.py"
        )


# --- the command ----------------------------------------------------------------------


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("Microsoft", "RESPONDER_"))}
    env.update(extra)
    return env


def test_command_writes_the_package(tmp_path):
    out = tmp_path / "dist" / "responder-teams.zip"
    run = subprocess.run(
        [
            str(RESPONDER),
            "app-package",
            "--out",
            str(out),
            "--config",
            str(EXAMPLES / "council.yaml"),
        ],
        env=_env(tmp_path, MicrosoftAppId=BOT_ID, RESPONDER_CONFIG=str(tmp_path / "missing.yaml")),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert str(out) in run.stdout
    with zipfile.ZipFile(out) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(zf.read("manifest.json"))
    assert _bot(manifest)["botId"] == BOT_ID
    assert manifest["validDomains"] == [PUBLIC_HOST]
    if SCHEMA.is_file():
        assert manifest_problems(manifest, SCHEMA) == []


def test_command_uses_responder_config_without_config_option(tmp_path):
    path = write_council(
        tmp_path,
        lambda d: d["council"].__setitem__("public_url", "https://streets.other.gov.uk"),
    )
    out = tmp_path / "app.zip"
    run = subprocess.run(
        [str(RESPONDER), "app-package", "--out", str(out), "--app-id", TEAMS_APP_ID],
        env=_env(tmp_path, MicrosoftAppId=BOT_ID, RESPONDER_CONFIG=str(path)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["validDomains"] == ["streets.other.gov.uk"]
    assert manifest["id"] == TEAMS_APP_ID


def test_command_without_microsoft_app_id_exits_2(tmp_path):
    out = tmp_path / "app.zip"
    run = subprocess.run(
        [
            str(RESPONDER),
            "app-package",
            "--out",
            str(out),
            "--config",
            str(EXAMPLES / "council.yaml"),
        ],
        env=_env(tmp_path, MicrosoftAppId=""),  # empty also beats any .env file
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "MicrosoftAppId is not set: set MicrosoftAppId" in run.stderr
    assert not out.exists()


def test_command_with_an_invalid_council_file_exits_2(tmp_path):
    bad = write_council(
        tmp_path, lambda d: d["council"].__setitem__("timezone", "Europe/Colchester")
    )
    run = subprocess.run(
        [str(RESPONDER), "app-package", "--out", str(tmp_path / "app.zip"), "--config", str(bad)],
        env=_env(tmp_path, MicrosoftAppId=BOT_ID),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "council.timezone: unknown time zone 'Europe/Colchester'" in run.stderr
