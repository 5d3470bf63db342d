"""Keyword categories for tickets, from the customer's words only (billing, outage, delivery, account, app, staff)."""

from __future__ import annotations

import re

OTHER = "other"
# Checked in this order; the first category with the most hits wins ties. Words, not reach or profile data.
CATEGORY_WORDS: dict[str, tuple[str, ...]] = {
    "billing": (
        "bill",
        "billed",
        "billing",
        "charge",
        "charged",
        "charges",
        "invoice",
        "refund",
        "refunds",
        "payment",
        "paid",
        "pay",
        "price",
        "fee",
        "fees",
        "overcharged",
        "subscription",
        "direct debit",
        "money back",
    ),
    "outage": (
        "outage",
        "down",
        "offline",
        "no signal",
        "signal",
        "internet",
        "wifi",
        "wi-fi",
        "router",
        "connection",
        "connectivity",
        "disconnect",
        "disconnects",
        "dropping",
        "drops",
        "broadband",
        "network",
        "no service",
        "slow speed",
        "speeds",
        "coverage",
        "blackout",
        "power cut",
    ),
    "delivery": (
        "delivery",
        "delivered",
        "deliver",
        "parcel",
        "package",
        "shipping",
        "shipped",
        "courier",
        "tracking",
        "arrived",
        "never arrived",
        "not arrived",
        "late",
        "lost",
        "damaged",
        "smashed",
        "order",
        "dispatch",
    ),
    "account": (
        "account",
        "login",
        "log in",
        "password",
        "locked out",
        "sign in",
        "signin",
        "2fa",
        "verification code",
        "hacked",
        "username",
        "email address",
        "profile",
        "cancel my account",
        "close my account",
    ),
    "app": (
        "app",
        "website",
        "site",
        "webpage",
        "web page",
        "checkout",
        "crash",
        "crashes",
        "crashed",
        "bug",
        "error",
        "update",
        "page",
        "button",
        "loading",
        "won't load",
        "doesn't load",
        "android",
        "iphone",
        "ios",
    ),
    "staff": (
        "staff",
        "rude",
        "agent",
        "employee",
        "manager",
        "driver",
        "engineer",
        "technician",
        "customer service",
        "support team",
        "no show",
        "no-show",
        "hung up",
        "on hold",
        "nobody called",
        "unhelpful",
    ),
}
CATEGORIES: tuple[str, ...] = (*CATEGORY_WORDS, OTHER)
_PATTERNS = {
    name: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)
    for name, words in CATEGORY_WORDS.items()
}


def category_for(text: str) -> str:
    """The category whose keywords the text uses most; 'other' when none match."""
    best, best_hits = OTHER, 0
    for name, pattern in _PATTERNS.items():
        hits = len(pattern.findall(text))
        if hits > best_hits:
            best, best_hits = name, hits
    return best
