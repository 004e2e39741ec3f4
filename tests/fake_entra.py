"""Microsoft Entra ID faked on 127.0.0.1: an OpenID provider for the pages' sign-in tests.

A real HTTP server (in a thread of its own, like fake_openid.py, so it answers whatever
client calls it, from whichever loop):

- ``/.well-known/openid-configuration``: the discovery document,
- ``/authorize``: records the request (PKCE challenge included) and answers 302 to the
  redirect URI with a one-time code and the state, or with ``error=`` when told to,
- ``/token``: checks the client id and secret, the code (once only, for that redirect URI)
  and that BASE64URL(SHA256(code_verifier)) is the challenge it recorded; answers an ID
  token signed RS256 with oid/tid/aud/iss/nonce/exp,
- ``/keys``: the JWKS.

``tab_token(...)`` mints what Teams would hand a tab: an access token for the app's
Application ID URI, from Entra's issuer for the tenant; with options for each way one can
be wrong (audience, issuer, expired, another key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

TENANT = "5b1c2d3e-0000-4000-8000-00000000c0de"  # examples/council.yaml's
CLIENT_ID = "6d1e0f3a-1111-4222-8333-444455556666"
CLIENT_SECRET = "web-app-secret-for-tests"


_KEYS: list[rsa.RSAPrivateKey] = []


def _key(n: int) -> rsa.RSAPrivateKey:
    """The n-th RSA key of this test run (2048-bit keys take a while to make: made once)."""
    while len(_KEYS) <= n:
        _KEYS.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _KEYS[n]


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Grant:
    """One /authorize request, as the fake recorded it."""

    params: dict[str, str]
    code: str
    oid: str
    tid: str
    used: bool = False


@dataclass
class FakeEntra:
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    tenant: str = TENANT
    # Who signs in at /authorize next (oid), and from which tenant; an error= to answer.
    user_oid: str = "0a11ce00-0000-4000-8000-000000000001"  # alice
    user_tid: str = TENANT
    authorize_error: str | None = None
    multi_tenant: bool = False  # discovery as for login.microsoftonline.com/organizations
    # What the next ID token says, when a test wants it wrong.
    id_token_overrides: dict = field(default_factory=dict)
    grants: list[Grant] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    key_fetches: int = 0

    def __post_init__(self) -> None:
        self.key = _key(0)
        self.kid = "entra-key-1"
        self.other_key = _key(1)
        self.published: list[tuple[str, rsa.RSAPrivateKey]] = [(self.kid, self.key)]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urlsplit(self.path).path
                if path == "/.well-known/openid-configuration":
                    self._json(200, outer.discovery())
                elif path == "/keys":
                    outer.key_fetches += 1
                    self._json(200, outer.jwks())
                elif path == "/authorize":
                    self._authorize()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:  # noqa: N802
                if urlsplit(self.path).path != "/token":
                    self._json(404, {"error": "not_found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                outer.token_requests.append(form)
                status, body = outer.redeem(form)
                self._json(status, body)

            def _authorize(self) -> None:
                params = {k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()}
                redirect = params.get("redirect_uri", "")
                if outer.authorize_error:
                    answer = {"error": outer.authorize_error, "state": params.get("state", "")}
                else:
                    grant = Grant(params, secrets.token_urlsafe(32), outer.user_oid, outer.user_tid)
                    outer.grants.append(grant)
                    answer = {"code": grant.code, "state": params.get("state", "")}
                self.send_response(302)
                self.send_header("Location", f"{redirect}?{urlencode(answer)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    # --- the provider's documents ---------------------------------------------------

    @property
    def issuer(self) -> str:
        return f"{self.url}/{self.tenant}/v2.0"

    def discovery(self) -> dict:
        # Like Entra's /organizations/v2.0 metadata, a multi-tenant issuer is a template.
        issuer = f"{self.url}/{{tenantid}}/v2.0" if self.multi_tenant else self.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/keys",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.published:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
            jwk.update(kid=kid, use="sig", alg="RS256")
            keys.append(jwk)
        return {"keys": keys}

    def rotate(self) -> str:
        """Publish a new signing key (Entra's roll-over) and sign with it from now on."""
        self.key = _key(1 + len(self.published))
        self.kid = f"entra-key-{len(self.published) + 1}"
        self.published.append((self.kid, self.key))
        return self.kid

    # --- the token endpoint ---------------------------------------------------------

    def redeem(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        grant = next((g for g in self.grants if g.code == form.get("code")), None)
        if grant is None or grant.used:
            return 400, {"error": "invalid_grant", "error_description": "code unknown or used"}
        grant.used = True
        if form.get("redirect_uri") != grant.params.get("redirect_uri"):
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
        if grant.params.get("code_challenge_method") != "S256":
            return 400, {"error": "invalid_request", "error_description": "PKCE S256 expected"}
        verifier = form.get("code_verifier") or ""
        if not verifier or s256(verifier) != grant.params.get("code_challenge"):
            return 400, {"error": "invalid_grant", "error_description": "PKCE mismatch"}
        now = int(time.time())
        claims = {
            "iss": f"{self.url}/{grant.tid}/v2.0",
            "aud": self.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "oid": grant.oid,
            "tid": grant.tid,
            "sub": "pairwise-" + grant.oid[:8],
            "name": "Someone",
            "nonce": grant.params.get("nonce", ""),
        }
        claims.update(self.id_token_overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {
            "token_type": "Bearer",
            "scope": "openid profile email User.Read",
            "expires_in": 3600,
            "access_token": "graph-access-token-not-used",
            "id_token": id_token,
        }

    # --- what Teams hands a tab -----------------------------------------------------

    def tab_token(
        self,
        oid: str = "0a11ce00-0000-4000-8000-000000000001",
        *,
        audience: str | None = None,
        public_host: str = "responder.sample-borough.gov.uk",
        tid: str | None = None,
        issuer: str | None = None,
        version: str = "1.0",
        expired: bool = False,
        other_key: bool = False,
        kid: str | None = None,
    ) -> str:
        tid = tid or self.tenant
        now = int(time.time())
        if issuer is None:
            issuer = (
                f"https://sts.windows.net/{tid}/"
                if version == "1.0"
                else f"https://login.microsoftonline.com/{tid}/v2.0"
            )
        if audience is None:
            audience = (
                f"api://{public_host}/{self.client_id}" if version == "1.0" else self.client_id
            )
        claims = {
            "iss": issuer,
            "aud": audience,
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now - 600 if expired else now + 3600,
            "oid": oid,
            "tid": tid,
            "scp": "access_as_user",
            "ver": version,
            "azp" if version == "2.0" else "appid": "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        }
        key = self.other_key if other_key else self.key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or self.kid})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
