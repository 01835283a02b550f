"""JWT-shaped access tokens, as ``POST /auth/system-login`` hands out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import orjson


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token(key: bytes, issued_at: float, expires_at: float) -> str:
    """
    Return a new HS256 JWT (``header.payload.signature``, base64url).

    Clients may decode the payload to read ``exp`` and refresh ahead of it, so it
    holds ``exp`` as whole seconds, rounded down: a client that trusts it never
    holds a token past the moment the emulator stops accepting it.

    :param key: the signing key.
    :param issued_at: the ``iat`` claim, seconds since the epoch.
    :param expires_at: when the emulator stops accepting the token.
    """
    header = _b64url(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    payload = _b64url(
        orjson.dumps(
            {
                "iss": "enso-emulator",
                "sub": "system",
                "iat": int(issued_at),
                "exp": int(expires_at),
                "jti": secrets.token_hex(8),
            }
        )
    )
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = _b64url(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"
