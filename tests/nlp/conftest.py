"""Fixtures for the nlp tests: the shipped classifier and a tiny pipeline trained in memory."""

from __future__ import annotations

import pytest

from fairdesk.nlp import Classifier, load_classifier
from fairdesk.nlp.train import Row, build_pipeline

TINY_ROWS = [
    Row("@shop my order never arrived and nobody answers", 1),
    Row("@shop still waiting for my refund, this is ridiculous", 1),
    Row("@shop the app keeps crashing again", 1),
    Row("@shop worst service ever, broken on arrival", 1),
    Row("@shop thank you so much, great service", 0),
    Row("@shop love the new store, lovely staff", 0),
    Row("what a beautiful sunny day at the beach", 0),
    Row("happy birthday to my best friend", 0),
]


@pytest.fixture(scope="session")
def shipped() -> Classifier:
    """The classifier built from the model committed in nlp/model/ (loads once per session).

    Example: ``def test_x(shipped): assert shipped.classify("thanks!").label == "not_complaint"``
    """
    return load_classifier()


@pytest.fixture(scope="session")
def tiny() -> Classifier:
    """A Classifier over a pipeline fitted in memory on eight hand-written posts (well under a second).

    Example: ``def test_x(tiny): tiny.classify_many(["a", "b"])``
    """
    return Classifier(build_pipeline(TINY_ROWS, seed=0))
