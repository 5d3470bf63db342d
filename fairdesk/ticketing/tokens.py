"""Ticket link tokens: 128 random bits, shown once in the reply, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import re
import secrets

from fairdesk.listener.reply_text import MAX_TOKEN_LENGTH

TOKEN_BYTES = 16  # 128 bits
_TOKEN_SHAPE = re.compile(rf"^[A-Za-z0-9_-]{{22,{MAX_TOKEN_LENGTH}}}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh (token, hash) pair."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, hash_token(token)


def well_formed(token: str) -> bool:
    return bool(_TOKEN_SHAPE.match(token))
