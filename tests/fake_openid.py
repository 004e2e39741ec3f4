"""Bot Framework's token signing, faked on 127.0.0.1: OpenID metadata, a JWKS, and tokens.

It runs in its own thread because the SDK fetches the keys with blocking ``requests``
from inside the event loop: a server on that same loop could never answer.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://api.botframework.com"


class FakeOpenId:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update(kid=self.kid, use="sig", endorsements=["msteams"])
        keys = {"keys": [jwk]}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.endswith("openidconfiguration"):
                    body = {"issuer": ISSUER, "jwks_uri": f"{outer.url}/keys"}
                else:
                    body = keys
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.metadata_url = f"{self.url}/v1/.well-known/openidconfiguration"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def token(
        self,
        app_id: str,
        service_url: str | None,
        *,
        key=None,
        kid=None,
        expired=False,
        issuer: str = ISSUER,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": app_id,
            "nbf": now - 60,
            "exp": now - 600 if expired else now + 3600,
        }
        if service_url is not None:
            claims["serviceurl"] = service_url
        return jwt.encode(
            claims, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
