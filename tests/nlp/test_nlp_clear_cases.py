"""Clear cases the shipped classifier must get right, whatever its cross-validated figures: praise, thanks and
questions are never urgent complaints; being charged twice, locked out or cut off for days is never lowest priority."""

from __future__ import annotations

import pytest

from fairdesk.nlp import Classifier

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
