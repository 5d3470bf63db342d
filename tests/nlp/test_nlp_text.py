"""Tests for text cleaning, triage and the language heuristic."""

from __future__ import annotations

import pytest

from fairdesk.nlp.lang import looks_non_english
from fairdesk.nlp.text import EMPTY_TOKEN, MAX_MODEL_CHARS, URL_TOKEN, clean, prepare, triage_reason

ZALGO = "H\u0338\u0321\u032a\u032f\u0368\u034a\u033d\u0305\u033e\u030eE\u0327\u032c\u0329\u033e\u035b L\u0336\u0327P"


def test_clean_removes_control_chars_and_collapses_space() -> None:
    assert clean("my\x00 order\x07\n\nnever\tcame\u200b") == "my order never came"


def test_clean_strips_zalgo_marks() -> None:
    assert clean(ZALGO) == "HE LP"


def test_clean_clips_long_text() -> None:
    assert len(clean("word " * 20_000)) <= MAX_MODEL_CHARS


def test_prepare_replaces_urls_and_keeps_handles() -> None:
    assert prepare(clean("@Delta see https://t.co/x1 and www.x.com")) == f"@Delta see {URL_TOKEN} and {URL_TOKEN}"


def test_prepare_never_returns_empty() -> None:
    assert prepare(clean(" \x00 ")) == EMPTY_TOKEN


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("@brand", "empty"),
        ("@brand https://t.co/abc ...", "empty"),
        ("😡😡😡", "emoji_only"),
        ("@brand 👎🏽 !!", "emoji_only"),
        ("👨\u200d👩\u200d👧", "emoji_only"),
        ("Mon colis n'est pas arrivé, c'est nul", "not_english"),
        ("Mein Paket ist nicht angekommen", "not_english"),
        ("Hola, mi pedido no ha llegado todavía", "not_english"),
        ("我的订单还没到", "not_english"),
        ("मेरा ऑर्डर नहीं आया", "not_english"),
        ("@brand my order never arrived 😡", None),
        ("<script>alert('x')</script> my parcel is late", None),
        ("@LIVERavenNation Chicago IL", None),
        ("@brand the café lost my booking", None),
    ],
)
def test_triage_reason(text: str, reason: str | None) -> None:
    assert triage_reason(clean(text)) == reason


def test_short_ambiguous_text_counts_as_english() -> None:
    assert not looks_non_english("ok")
    assert not looks_non_english("Chicago IL")
