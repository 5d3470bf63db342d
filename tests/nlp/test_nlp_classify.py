"""Tests for the Classifier and the model shipped in nlp/model/."""

from __future__ import annotations

import dataclasses

import pytest

from fairdesk import nlp
from fairdesk.nlp import Classification, Classifier

HOSTILE = {
    "huge": ("my order never arrived. " * 5_000, None),  # ~120 KB
    "control": ("my\x00order\x1b[31m never\x07 came\r\n", None),
    "zalgo": ("m\u0338\u0321\u032ay o\u0368\u034arder is b\u0305\u033er\u030eoken", None),
    "script": ("<script>alert(document.cookie)</script>", None),
    "empty": ("", "empty"),
    "handles_only": ("@a @b https://t.co/x", "empty"),
    "emoji_only": ("🔥🔥👍🏽", "emoji_only"),
    "not_english": ("Mi pedido no ha llegado y nadie me responde", "not_english"),
    "lone_surrogate": ("bad \ud800 data", None),
}


def test_exports_are_explicit() -> None:
    assert sorted(nlp.__all__) == ["Classification", "Classifier", "load_classifier", "load_pipeline"]
    for name in nlp.__all__:
        assert getattr(nlp, name) is not None


def test_shipped_model_tells_complaint_from_praise(shipped: Classifier) -> None:
    bad = shipped.classify("@Delta my flight was cancelled again and nobody will help me. worst airline ever")
    good = shipped.classify("@Delta thank you so much for the lovely flight, great crew!")
    assert bad.label == "complaint"
    assert good.label == "not_complaint"
    assert bad.score > good.score


def test_shipped_model_version_names_the_files(shipped: Classifier) -> None:
    assert shipped.version.startswith("fairdesk_complaints-")
    assert "+" in shipped.version and not shipped.version.endswith("+untrained")
    assert shipped.classify("hi").model_version == shipped.version


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_never_raises(shipped: Classifier, case: str) -> None:
    text, reason = HOSTILE[case]
    result = shipped.classify(text)
    assert 0.0 <= result.score <= 1.0
    assert result.triage_reason == reason
    if reason is not None:
        # The model's best guess stays the label; the post is filed anyway, for a person to judge.
        assert result.files_ticket
        assert result.severity is None


def test_classify_many_matches_classify_and_keeps_order(shipped: Classifier) -> None:
    texts = [t for t, _ in HOSTILE.values()] + ["thanks a lot!", "still broken, again"]
    many = shipped.classify_many(texts, batch_size=3)
    single = [shipped.classify(t) for t in texts]
    # Batching may change the last bits of a float (BLAS), never anything else.
    assert [(r.label, r.severity, r.triage_reason) for r in many] == [
        (r.label, r.severity, r.triage_reason) for r in single
    ]
    assert [r.score for r in many] == pytest.approx([r.score for r in single], abs=1e-9)


def test_threshold_decides_label(tiny: Classifier) -> None:
    text = "the app keeps crashing"
    score = tiny.classify(text).score
    strict = Classifier(tiny.nlp, threshold=min(1.0, score + 0.01))
    lenient = Classifier(tiny.nlp, threshold=max(0.0, score - 0.01))
    assert strict.classify(text).label == "not_complaint"
    assert lenient.classify(text).label == "complaint"


def test_threshold_out_of_range_is_rejected(tiny: Classifier) -> None:
    with pytest.raises(ValueError, match="threshold"):
        Classifier(tiny.nlp, threshold=1.5)


def test_classification_is_frozen_and_spacy_free(tiny: Classifier) -> None:
    result = tiny.classify("my order never arrived")
    assert isinstance(result, Classification)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.label = "x"  # type: ignore[misc]
    for value in dataclasses.astuple(result):
        assert type(value).__module__ == "builtins"


def test_load_pipeline_missing_dir_says_where(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        nlp.load_pipeline(tmp_path)
