"""TOTP two-factor codes (RFC 6238) for agents the admin requires them of: pyotp is imported here only."""

from __future__ import annotations

import hmac
import time

import pyotp

ISSUER = "fairdesk"
VALID_WINDOW = 1  # also accept the code of the 30-second step before and after: phone clocks drift


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, agent: str) -> str:
    """The otpauth:// URI an authenticator app reads (paste it, or make a QR code of it)."""
    return pyotp.TOTP(secret).provisioning_uri(name=agent, issuer_name=ISSUER)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The 30-second time step whose code ``code`` is (the current one or one beside it), or None.

    A code may be used once: the caller records the step it matched and refuses that step and older ones afterwards
    (RFC 6238 section 5.2), so a code seen over a shoulder or in a proxy log cannot log in a second time.
    """
    code = code.replace(" ", "").strip()
    if not (code.isascii() and code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    current = totp.timecode(at)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
