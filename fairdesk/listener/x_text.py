"""How long a post is on X: twitter-text v3 weighted length, and the start-up check of the reply template."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from fairdesk.listener.reply_text import longest_reply

# twitter-text v3 weighting (maxWeightedTweetLength 280, scale 100, defaultWeight 200, URLs 23).
MAX_WEIGHTED_LENGTH = 280
URL_WEIGHT = 23
_LIGHT_RANGES = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
_COMMON_TLDS = (
    "com|net|org|info|biz|edu|gov|mil|int|app|dev|xyz|online|site|shop|store|tech|cloud|blog|news|support|help|"
    "services|company|email|link|live|page|today|world|zone|team|network|digital|media|solutions|systems|software|"
    "social|chat|works|agency|group|global|club|design|studio|io|ai|co|me|tv|ly|gl|gg|fm"
)
_URL = re.compile(
    r"(?<![\w@#$./-])(?P<url>(?P<scheme>https?://)?"
    r"(?P<host>(?:[^\W_](?:[\w-]*[^\W_])?\.)+(?P<tld>[^\W\d_]{2,63}))"
    r"(?::\d{1,5})?(?P<path>/[^\s]*)?)",
    re.IGNORECASE,
)
_COMMON_TLD = re.compile(rf"(?:{_COMMON_TLDS})", re.IGNORECASE)
_URL_TRAILING = ".,;:!?'\")]}"


def _is_pictographic(cp: int) -> bool:
    return (
        0x1F000 <= cp <= 0x1FAFF
        or 0x2600 <= cp <= 0x27BF
        or 0x2300 <= cp <= 0x23FF
        or 0x2B00 <= cp <= 0x2BFF
        or 0x2190 <= cp <= 0x21FF
        or 0x25A0 <= cp <= 0x25FF
        or cp in (0x203C, 0x2049, 0x2122, 0x2139, 0x24C2, 0x2934, 0x2935, 0x3030, 0x303D, 0x3297, 0x3299)
    )


def _emoji_end(text: str, i: int) -> int:
    """Index just past the emoji sequence starting at ``i``, or ``i`` if none starts there."""
    n = len(text)
    cp = ord(text[i])
    if 0x1F1E6 <= cp <= 0x1F1FF:  # regional indicators pair up into a flag
        return i + 2 if i + 1 < n and 0x1F1E6 <= ord(text[i + 1]) <= 0x1F1FF else i + 1
    if text[i] in "0123456789#*":  # keycap: digit, optional VS16, U+20E3
        j = i + 1 + (i + 1 < n and text[i + 1] == "\ufe0f")
        return j + 1 if j < n and text[j] == "\u20e3" else i
    if cp in (0xA9, 0xAE):  # (c) and (r) are emoji only in emoji presentation
        return i + 2 if i + 1 < n and text[i + 1] == "\ufe0f" else i
    if not _is_pictographic(cp):
        return i
    j = i + 1
    while True:
        while j < n and (
            text[j] in "\ufe0f\ufe0e" or 0x1F3FB <= ord(text[j]) <= 0x1F3FF or 0xE0020 <= ord(text[j]) <= 0xE007F
        ):
            j += 1
        if j + 1 < n and text[j] == "\u200d" and _is_pictographic(ord(text[j + 1])):
            j += 2
            continue
        return j


def _urls(text: str) -> Iterable[tuple[int, int]]:
    for match in _URL.finditer(text):
        url, start = match.group("url"), match.start("url")
        while url and url[-1] in _URL_TRAILING:
            url = url[:-1]
        tld, scheme, path = match.group("tld"), match.group("scheme"), match.group("path")
        if not scheme:
            # Bare domains count as links only with a known TLD; a bare ccTLD domain also needs a path.
            if not _COMMON_TLD.fullmatch(tld) and not (len(tld) == 2 and path):
                continue
        yield start, start + len(url)


def weighted_length(text: str) -> int:
    """X's weighted length of ``text`` (twitter-text v3): the limit is 280.

    Characters in the Latin-and-friends ranges count 1, every other character (CJK, most symbols) 2, an emoji
    sequence (flags, skin tones, ZWJ families, keycaps) 2, and every URL 23 whatever its real length. The text is
    NFC-normalised first, as X does.
    """
    text = unicodedata.normalize("NFC", text)
    spans = dict(_urls(text))
    weight = 0
    i = 0
    while i < len(text):
        if i in spans:
            weight += URL_WEIGHT
            i = spans[i]
            continue
        end = _emoji_end(text, i)
        if end > i:
            weight += 2
            i = end
            continue
        cp = ord(text[i])
        weight += 1 if any(lo <= cp <= hi for lo, hi in _LIGHT_RANGES) else 2
        i += 1
    return weight


def check_template(template: str, public_url: str) -> None:
    """Raise ValueError if the reply, filled with the longest ticket ref and link, can exceed X's 280."""
    length = weighted_length(longest_reply(template, public_url))
    if length > MAX_WEIGHTED_LENGTH:
        raise ValueError(
            f"reply template is {length} weighted characters on X with the longest ticket ref and link; X allows "
            f"{MAX_WEIGHTED_LENGTH} (each link counts {URL_WEIGHT}, CJK characters and emoji count 2): shorten it"
        )
