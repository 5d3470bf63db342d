"""Cleaning of raw post text for the model, and the triage checks that run before it."""

from __future__ import annotations

import re
import unicodedata

from fairdesk.nlp.lang import looks_non_english

# Tweets are at most ~300 characters; anything far longer is cut for the model only (callers keep the full text).
MAX_MODEL_CHARS = 2_000
# Clip the raw input before any regex or normalisation work so a 100 KB post costs the same as a short one.
_RAW_CLIP = MAX_MODEL_CHARS * 4

URL_TOKEN = "http://url"
# spaCy's n-gram extraction fails on a zero-token doc inside a batch, so the model never sees an empty text.
EMPTY_TOKEN = "<empty>"

_URL_RE = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_.\-]{1,50}")
_SPACE_RE = re.compile(r"\s+")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][^<>]{0,200}>")
_ALNUM_RE = re.compile(r"[^\W_]")
# Joiners, variation selectors and skin-tone modifiers that glue emoji sequences together.
_EMOJI_GLUE = {"\u200d", "\ufe0e", "\ufe0f", "\u20e3"}
_HTML_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&apos;": "'"}
_ENTITY_RE = re.compile("|".join(map(re.escape, _HTML_ENTITIES)))


def clean(text: str) -> str:
    """Return `text` made safe for the tokenizer: clipped, compatibility-normalised, no control chars or zalgo."""
    text = text[:_RAW_CLIP]
    text = _ENTITY_RE.sub(lambda m: _HTML_ENTITIES[m.group(0)], text)
    text = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    marks: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Mn":
            marks.append(ch)
            continue
        # A real accent is one mark on its letter; zalgo stacks many, and those go entirely.
        if len(marks) == 1:
            out.append(marks[0])
        marks = []
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in _EMOJI_GLUE:
            if cat == "Cc":
                out.append(" ")
            continue
        out.append(ch)
    if len(marks) == 1:
        out.append(marks[0])
    text = unicodedata.normalize("NFC", "".join(out))
    text = _SPACE_RE.sub(" ", text).strip()
    return text[:MAX_MODEL_CHARS]


def prepare(cleaned: str) -> str:
    """Return already `clean()`ed text as the model reads it: URLs replaced by one placeholder; never empty."""
    return _URL_RE.sub(URL_TOKEN, cleaned) or EMPTY_TOKEN


def mask_handles(text: str, placeholder: str = "@user") -> str:
    """`text` with every @handle replaced by one placeholder (who is addressed says little about the complaint)."""
    return _HANDLE_RE.sub(placeholder, text)


def _content(text: str) -> str:
    """What is left to judge once handles, URLs and HTML tags are gone."""
    text = _URL_RE.sub(" ", text)
    text = _HANDLE_RE.sub(" ", text)
    text = _HTML_TAG_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip()


def _is_emoji_char(ch: str) -> bool:
    if ch in _EMOJI_GLUE:
        return True
    cp = ord(ch)
    if 0x1F3FB <= cp <= 0x1F3FF or 0x1F1E6 <= cp <= 0x1F1FF:  # skin tones, regional indicator letters
        return True
    return unicodedata.category(ch) == "So"


def triage_reason(cleaned: str) -> str | None:
    """Say why the model cannot judge an already `clean()`ed post: "empty", "emoji_only", "not_english" or None."""
    content = _content(cleaned)
    if not _ALNUM_RE.search(content):
        return "emoji_only" if any(_is_emoji_char(ch) for ch in content) else "empty"
    if looks_non_english(content):
        return "not_english"
    return None
