"""Secrets and their hashes: passwords (scrypt), bearer tokens and session ids (SHA-256 of
a random value), signed session cookies and CSRF tokens (HMAC with `[api] secret`).

A token is shown once, when made; the store keeps only its hash, so a copy of the
database lets nobody in. Tokens are long random strings, so one SHA-256 is enough for
them; passwords are guessable and get scrypt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

TOKEN_PREFIX = "eb_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    """`scrypt$N$r$p$salt$hash`, all that checking it needs later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + f"{_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=_unb64(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


def new_token() -> str:
    """A bearer token: `eb_` and 32 random bytes, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    return token[:10]


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, value: str) -> str:
    """`value.signature`: a cookie the client cannot forge without the secret."""
    mac = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    return f"{value}.{_b64(mac)}"


def unsign(secret: str, signed: str) -> str | None:
    value, _, mac = signed.rpartition(".")
    if not value or not hmac.compare_digest(sign(secret, value), signed):
        return None
    return value


def csrf_token(secret: str, session_id: str) -> str:
    """The CSRF token of a session: derived, so nothing more is stored."""
    mac = hmac.new(secret.encode(), f"csrf:{session_id}".encode(), hashlib.sha256).digest()
    return _b64(mac)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
