"""TOTP two-factor codes (RFC 6238) for agents the admin requires them of: pyotp is imported here only."""

from __future__ import annotations

import pyotp

ISSUER = "fairdesk"
VALID_WINDOW = 1  # also accept the code of the 30-second step before and after: phone clocks drift


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, agent: str) -> str:
    """The otpauth:// URI an authenticator app reads (paste it, or make a QR code of it)."""
    return pyotp.TOTP(secret).provisioning_uri(name=agent, issuer_name=ISSUER)


def code_ok(secret: str, code: str) -> bool:
    code = code.replace(" ", "").strip()
    return (
        code.isascii()
        and code.isdigit()
        and len(code) == 6
        and pyotp.TOTP(secret).verify(code, valid_window=VALID_WINDOW)
    )
