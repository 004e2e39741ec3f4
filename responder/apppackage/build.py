"""Build the sideloadable Teams app package (manifest.json + color.png + outline.png).

The template is ``appPackage/`` at the repository root, shipped as package data in
``responder/apppackage/template/`` (``appPackage/make_icons.py`` keeps the copy in step and
a test checks it is byte-identical). Its placeholders use the Microsoft 365 Agents Toolkit's
``${{NAME}}`` style, so the same folder also works with the Toolkit:

- ``MICROSOFT_APP_ID``: the bot's Microsoft App ID (``MicrosoftAppId``),
- ``APP_ID``: the Teams app's own id (a GUID; defaults to the bot's id),
- ``PUBLIC_URL`` / ``PUBLIC_HOST``: ``council.public_url`` and its host,
- ``COUNCIL_NAME``: ``council.name``,
- ``WEB_CLIENT_ID``: the Entra app the pages and the Teams tab sign in with
  (``RESPONDER_WEB_CLIENT_ID``; by default the bot's own). ``webApplicationInfo`` names it,
  with the Application ID URI ``api://{PUBLIC_HOST}/{WEB_CLIENT_ID}``, for the tab's SSO.

Then the council file has its say: ``developer.privacyUrl`` and ``termsOfUseUrl`` are
``council.privacy_url`` / ``terms_url`` when the council has its own pages (else Responder's
``/privacy`` and ``/terms``, see responder/pages.py), and ``description.full`` is
``council.app_description`` or one made from the council's name and its task types.
"""

from __future__ import annotations

import copy
import json
import os
import re
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from responder.config import Council
from responder.settings import Settings

ICONS = ("color.png", "outline.png")
PACKAGE_FILES = ("manifest.json", *ICONS)

_PLACEHOLDER = re.compile(r"\$\{\{\s*([A-Z_][A-Z0-9_]*)\s*\}\}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Length limits of the 1.24 schema on strings that take a council's name; a long name is
# shortened to fit rather than making the package invalid.
_LIMITS = {
    ("developer", "name"): 32,
    ("name", "short"): 30,
    ("name", "full"): 100,
    ("description", "short"): 80,
    ("description", "full"): 4000,
}
# Fixed timestamp for zip entries, so the same inputs give the same bytes.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class AppPackageError(Exception):
    """The package cannot be built; .problems says what to set, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _template(name: str) -> bytes:
    return resources.files("responder.apppackage").joinpath("template", name).read_bytes()


def _public_url(council: Council) -> str:
    return (council.info.public_url or "").rstrip("/")


def placeholder_values(
    settings: Settings, council: Council, *, app_id: str | None = None
) -> dict[str, str]:
    """What each ``${{NAME}}`` in the template stands for."""
    public_url = _public_url(council)
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return {
        "MICROSOFT_APP_ID": settings.app_id,
        "APP_ID": app_id or settings.app_id,
        "PUBLIC_URL": public_url,
        "PUBLIC_HOST": host,
        "COUNCIL_NAME": council.info.name,
        "WEB_CLIENT_ID": settings.web_client_id or settings.app_id,
    }


def _shorten(text: str, limit: int) -> str:
    """Fit ``text`` in ``limit`` characters: cut at a word boundary, end with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if not text[limit - 1].isspace() and " " in cut[limit // 2 :]:
        cut = cut[: cut.rindex(" ")]  # don't end on part of a word
    return cut.rstrip(" -–,;:") + "…"


def _fill(value: Any, substitute: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return substitute(value)
    if isinstance(value, list):
        return [_fill(v, substitute) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, substitute) for k, v in value.items()}
    return value


# The task types named in the description, at most: a council with 70 gets "and 58 more".
_DESCRIBED_TYPES = 12


def _in_a_sentence(name: str) -> str:
    """ "Fly-tipping" -> "fly-tipping", but "CCTV fault" stays as it is."""
    return name[0].lower() + name[1:] if name[1:2].islower() else name


def describe(council: Council) -> str:
    """The app's full description: the council's name and the kinds of work it handles."""
    name = council.info.name
    types = [_in_a_sentence(t.name) for t in council.file.task_types]
    shown = types[:_DESCRIBED_TYPES]
    rest = len(types) - len(shown)
    if rest:
        kinds = f"{', '.join(shown)} and {rest} more"
    elif len(shown) > 1:
        kinds = f"{', '.join(shown[:-1])} and {shown[-1]}"
    else:
        kinds = shown[0]
    return (
        f"Responder brings {name}'s street-care work into Teams. Officers get each new task "
        f"({kinds}) as a card on Teams mobile, and accept, start, update (with photos), "
        "complete or hand it back from there. Councillors ask for the status of their cases, "
        "look up a case, raise a task for their ward and are told when their cases move. "
        "Managers get a daily digest in their team, escalations when urgent work sits "
        "unaccepted, and can reassign a task from its card. Residents who reported an issue "
        "are kept informed by email or text message."
    )


def build_manifest(
    settings: Settings,
    council: Council,
    *,
    app_id: str | None = None,
    template: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The manifest with every placeholder filled in. Checks nothing: see package_problems.

    Placeholders are replaced inside the parsed JSON strings, so a value needs no escaping;
    one the template does not know is left as it is (and a test looks for leftovers).
    """
    values = placeholder_values(settings, council, app_id=app_id)
    manifest = (
        copy.deepcopy(template) if template is not None else json.loads(_template("manifest.json"))
    )

    def substitute(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    manifest = _fill(manifest, substitute)
    developer = manifest.setdefault("developer", {})
    if council.info.privacy_url:
        developer["privacyUrl"] = council.info.privacy_url
    if council.info.terms_url:
        developer["termsOfUseUrl"] = council.info.terms_url
    description = manifest.setdefault("description", {})
    description["full"] = council.info.app_description or describe(council)
    for (section, key), limit in _LIMITS.items():
        part = manifest.get(section)
        if isinstance(part, dict) and isinstance(part.get(key), str):
            part[key] = _shorten(part[key], limit)
    return manifest


def package_problems(
    settings: Settings, council: Council, *, app_id: str | None = None
) -> list[str]:
    """What must be set before a package can be built; [] when ready."""
    problems: list[str] = []
    if not settings.app_id:
        problems.append(
            "MicrosoftAppId is not set: set MicrosoftAppId or "
            "CONNECTIONS__SERVICE_CONNECTION__SETTINGS__CLIENTID (in the environment or .env) "
            "to the bot's Microsoft App ID (a GUID from its Azure Bot registration)"
        )
    elif not _GUID.match(settings.app_id):
        problems.append(f"MicrosoftAppId should be a GUID, got {settings.app_id!r}")
    if settings.web_client_id and not _GUID.match(settings.web_client_id):
        problems.append(
            f"RESPONDER_WEB_CLIENT_ID should be a GUID (the Entra app's client id), "
            f"got {settings.web_client_id!r}"
        )
    if app_id is not None and not _GUID.match(app_id):
        problems.append(f"the Teams app id should be a GUID, got {app_id!r}")
    where = f" in {council.source}" if council.source else ""
    public_url = council.info.public_url
    if not public_url:
        problems.append(
            f"council.public_url is not set{where}: set it to this deployment's public "
            "https:// address (Teams needs it for the developer links and validDomains)"
        )
    else:
        parts = urlsplit(public_url)
        if parts.scheme != "https" or not parts.hostname:
            problems.append(
                f"council.public_url must be an https:// address for a Teams app package, "
                f"got {public_url!r}{where}"
            )
    for key in ("privacy_url", "terms_url"):
        url = getattr(council.info, key)
        if url and (urlsplit(url).scheme != "https" or not urlsplit(url).hostname):
            problems.append(
                f"council.{key} must be an https:// address for a Teams app package, "
                f"got {url!r}{where}"
            )
    return problems


def build_package(
    settings: Settings, council: Council, out: Path, *, app_id: str | None = None
) -> Path:
    """Write the zip Teams sideloads (manifest.json, color.png, outline.png at its root).

    Raises AppPackageError, listing every missing setting, before writing anything.
    """
    out = Path(out)
    problems = package_problems(settings, council, app_id=app_id)
    if out.is_dir():
        problems.append(f"{out} is a folder: give the zip's file name, e.g. {out / 'app.zip'}")
    if problems:
        raise AppPackageError(problems)
    manifest = build_manifest(settings, council, app_id=app_id)
    contents = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
        **{name: _template(name) for name in ICONS},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in PACKAGE_FILES:
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, contents[name])
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def default_schema_path() -> Path:
    """``../shared/schemas/teams-manifest-1.24.json`` beside the repository (not shipped)."""
    return Path(__file__).resolve().parents[3] / "shared" / "schemas" / "teams-manifest-1.24.json"


def manifest_problems(manifest: dict[str, Any], schema_path: Path | None = None) -> list[str]:
    """Everything wrong with ``manifest`` against the Teams 1.24 schema, one line each.

    Needs ``jsonschema`` (a test dependency) and the schema file, which lives beside the
    repository rather than in the package: for tests and checks, not for the CLI.
    """
    import jsonschema.validators  # a test dependency only

    path = schema_path or default_schema_path()
    if not path.is_file():
        raise FileNotFoundError(f"Teams manifest schema not found at {path}")
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    problems = [
        f"{error.json_path}: {error.message}"
        for error in sorted(validator.iter_errors(manifest), key=lambda e: e.json_path)
    ]
    # draft-04 (the schema's dialect) ignores "const": check the version it pins here.
    if manifest.get("manifestVersion") != "1.24":
        problems.append(
            f"$.manifestVersion: expected '1.24', got {manifest.get('manifestVersion')!r}"
        )
    leftovers = sorted(set(_PLACEHOLDER.findall(json.dumps(manifest))))
    if leftovers:
        problems.append(f"placeholders not filled in: {', '.join(leftovers)}")
    return problems
