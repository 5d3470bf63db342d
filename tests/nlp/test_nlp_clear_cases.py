"""Clear cases the shipped classifier must get right, whatever its cross-validated figures: praise, thanks and
questions are never urgent complaints; being charged twice, locked out or cut off for days is never lowest priority."""

from __future__ import annotations

import numpy as np
import pytest

from fairdesk.nlp import Classifier
from fairdesk.nlp.severity import cap_praise

# Written for this test (not in any training file); the first is the demo feed's praise post.
PRAISE_THANKS_QUESTIONS = [
    "Fair play @fairdesk_demo, outage fixed and a £15 credit on the account without me asking. That's how you do it.",
    "@Tesco thank you so much, great service today",
    "@AppleSupport thanks, that fixed it!",
    "Massive thanks to @EE for sorting my bill so quickly, really helpful staff",
    "@Argos cheers for the speedy delivery, kids love the bikes",
    "@British_Airways can I bring a pram on board?",
    "@Virgin what time does the store open on Sunday?",
    "@Amazon do you deliver to Jersey?",
    # The demo feed's other praise: each must be safe to show at the top of the demo's queue, or not filed at all.
    "Huge thanks to @fairdesk_demo engineer Dev who came out on a Sunday, found the corroded cable in ten minutes and "
    "explained everything. Proper service 👏",
    "Moved house on Friday and @fairdesk_demo had the broadband live before the sofa arrived. "
    "Genuinely painless, thank you!",
    "Shoutout to Leah on the @fairdesk_demo chat who sorted my bill in five minutes and even applied a credit I didn't "
    "know I was due.",
    "Credit where it's due: @fairdesk_demo put my dad on the priority list for repairs without me even having to fight "
    "for it. Thank you.",
    "The @fairdesk_demo team came to our tenants' meeting and got the whole block onto fibre at the social tariff. "
    "Really grateful.",
    "@Hermes your delivery driver went above and beyond in the snow today, thank you so much",
]
SERIOUS = [
    "@MyBank you charged me twice for the same order",
    "@Vodafone charged twice this month, please sort it",
    "@Netflix I've been locked out of my account for 3 days",
    "@Barclays locked out of online banking again",
    "@BT no service for days and nobody tells us why",
    "@Sky no service for three days now",
]


@pytest.mark.parametrize("text", PRAISE_THANKS_QUESTIONS)
def test_praise_thanks_and_questions_are_never_severity_3_or_4(shipped: Classifier, text: str) -> None:
    result = shipped.classify(text)
    assert result.label == "not_complaint" or (result.severity or 0) <= 2, result


def test_the_demo_praise_is_not_a_complaint(shipped: Classifier) -> None:
    assert shipped.classify(PRAISE_THANKS_QUESTIONS[0]).label == "not_complaint"


@pytest.mark.parametrize("text", SERIOUS)
def test_charged_twice_locked_out_and_no_service_are_never_severity_1(shipped: Classifier, text: str) -> None:
    result = shipped.classify(text)
    assert result.label == "complaint", result
    assert result.severity is not None and result.severity >= 2, result


def test_praise_caps_severity_only_without_accusation_or_blame_and_when_unsure() -> None:
    sev = np.array([[0.1, 0.1, 0.2, 0.6]] * 5)
    texts = [
        "@user thank you so much, painless from start to finish",  # praise, unsure: capped at 2
        "@user thanks for nothing, worst service ever",  # sarcasm with a blame cue: kept
        "@user brilliant, you charged me twice again",  # an accusation: kept
        "@user my order never arrived",  # no praise: kept
        "@user thank you so much for a box that shreds apart",  # a sure complaint in words of praise: kept
    ]
    got = cap_praise(texts, sev, np.array([0.5, 0.5, 0.5, 0.5, 0.9]))
    assert got[0].tolist() == pytest.approx([0.1, 0.9, 0.0, 0.0])
    assert got[1:].tolist() == sev[1:].tolist()
