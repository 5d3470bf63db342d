"""The one public reply's text: rendering the template, and the longest text it can make (platforms check it)."""

from __future__ import annotations

LONGEST_REF = "FD-" + "9" * 10  # a ticket reference for ids up to ten digits
MAX_TOKEN_LENGTH = 64  # the longest link token a reply may carry (today's are 22 characters)


def render_reply(template: str, *, ref: str, link: str) -> str:
    return template.format(ref=ref, link=link)


def longest_reply(template: str, public_url: str) -> str:
    """The longest text ``template`` can produce: the longest ticket ref and link. Platforms check it at start."""
    link = f"{public_url.rstrip('/')}/t/{'x' * MAX_TOKEN_LENGTH}"
    try:
        return render_reply(template, ref=LONGEST_REF, link=link)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"reply template has an unknown placeholder {exc}; only {{ref}} and {{link}} exist") from exc
