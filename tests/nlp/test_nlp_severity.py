"""Tests for the word-list cues of the severity model (nlp/severity.py)."""

from __future__ import annotations

import numpy as np

from fairdesk.nlp.severity import CUES, N_SEV_CUES, severity_cues

ACCUSATION, BLAME, DISAPPROVAL, REQUEST = range(len(CUES))


def _flags(text: str) -> list[bool]:
    row = severity_cues([text])[0]
    return [bool(row[2 * k]) for k in range(len(CUES))]


def test_each_level_has_its_cue() -> None:
    assert _flags("@user you lied to me and stole my money")[ACCUSATION]
    assert _flags("@user this is all your fault, worst company ever")[BLAME]
    assert _flags("@user really disappointed with the delivery")[DISAPPROVAL]
    assert _flags("@user hi, could you tell me when the store opens?")[REQUEST]
    assert _flags("@user the weather is nice") == [False] * len(CUES)


def test_words_match_whole_words_only() -> None:
    # "believe" contains "lie", "hatch" contains "hat"; neither is an accusation or blame.
    assert not _flags("@user I believe the hatchback is lovely")[ACCUSATION]


def test_shape_range_and_hostile_text() -> None:
    texts = ["", "!!!", "you never replied!! #fail", "x" * 100_000, "\x00\u202e" + "a\u0301" * 500]
    cues = severity_cues(texts)
    assert cues.shape == (len(texts), N_SEV_CUES)
    assert np.all((cues >= 0.0) & (cues <= 1.0))
    assert cues[0].sum() == 0.0
    assert cues[2, -4] == 1.0 and cues[2, -2] == 1.0 and cues[2, -1] == 1.0  # "you never", "#fail", "!!"
