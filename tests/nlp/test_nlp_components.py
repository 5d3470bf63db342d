"""Tests for the fairdesk_complaint spaCy component: chatter gate, severity, aux features, serialisation."""

from __future__ import annotations

import spacy

from fairdesk.nlp import Classifier
from fairdesk.nlp.components import FACTORY
from fairdesk.nlp.train import Row, build_pipeline

COMPANY = [
    Row("@shop my order never arrived and nobody answers", 1, 3, "retail", "anger", "negative"),
    Row("@shop still waiting for my refund, this is ridiculous", 1, 4, "retail", "anger", "negative"),
    Row("@shop the app keeps crashing again", 1, 2, "software", "sadness", "negative"),
    Row("@shop parcel arrived damaged, can you help", 1, 1, "retail", "sadness", "neutral"),
    Row("@shop thank you so much, great service", 0, 0, "retail", "joy", "positive"),
    Row("@shop love the new store, lovely staff", 0, 0, "retail", "joy", "positive"),
    Row("@shop what time do you open on sunday", 0, 0, "retail", "other", "neutral"),
    Row("@shop do you ship to canada", 0, 0, "retail", "other", "neutral"),
]
CHATTER = [
    Row("ugh my sister stole my fries again", 0, 0, "random_tweet", "anger", "negative"),
    Row("this weather is the worst, still raining", 0, 0, "random_tweet", "sadness", "negative"),
    Row("@bestie omg you look amazing", 0, 0, "random_reply", "joy", "positive"),
    Row("cannot believe the game last night", 0, 0, "random_tweet", "other", "neutral"),
]


def test_factory_is_registered() -> None:
    nlp = spacy.blank("en")
    assert nlp.add_pipe(FACTORY).name == FACTORY


def test_component_models_present_only_when_data_allows() -> None:
    with_all = build_pipeline((COMPANY + CHATTER) * 8).get_pipe("complaint")
    assert with_all.random is not None and with_all.severity is not None and with_all.emotion is not None
    bare = build_pipeline([Row(r.text, r.label) for r in COMPANY]).get_pipe("complaint")
    assert bare.random is None and bare.severity is None and bare.emotion is None


def test_chatter_gate_lowers_off_topic_scores() -> None:
    gated = Classifier(build_pipeline((COMPANY + CHATTER) * 8))
    ungated = Classifier(build_pipeline(COMPANY * 8))
    text = "ugh the weather is the worst again"
    assert gated.classify(text).score < ungated.classify(text).score


def test_severity_is_given_for_complaints() -> None:
    clf = Classifier(build_pipeline((COMPANY + CHATTER) * 8))
    result = clf.classify("@shop my order never arrived and nobody answers")
    assert result.label == "complaint"
    assert result.severity in {1, 2, 3, 4}
    assert clf.classify("@shop thank you so much, great service").severity is None


def test_round_trip_keeps_scores() -> None:
    nlp = build_pipeline((COMPANY + CHATTER) * 8)
    clone = spacy.blank("en")
    clone.add_pipe(FACTORY, name="complaint")
    clone.from_bytes(nlp.to_bytes())
    texts = ["my refund is late", "thanks a lot", "@shop do you ship to canada"]
    assert [d.cats for d in nlp.pipe(texts)] == [d.cats for d in clone.pipe(texts)]
