"""Tests for the sentence encoder (int8 all-MiniLM-L6-v2 run by ONNX Runtime) shipped in nlp/encoder/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fairdesk.nlp.encoder import DIM, ENCODER_DIR, MAX_TOKENS, EncoderUnavailable, SentenceEncoder, load_encoder

POSTS = ["@user my order never arrived and nobody answers", "lovely sunny day at the beach", "", "x " * 500]


def test_embeddings_are_unit_vectors_in_input_order() -> None:
    enc = load_encoder()
    emb = enc.embed(POSTS)
    assert emb.shape == (len(POSTS), DIM) and emb.dtype == np.float32
    assert np.linalg.norm(emb, axis=1) == pytest.approx(np.ones(len(POSTS)), abs=1e-3)
    # The same post alone or among others: the same embedding, bit for bit (int8 activations are quantized per
    # batch, so batch-mates would otherwise move it).
    assert np.array_equal(enc.embed([POSTS[1]])[0], emb[1])
    assert np.array_equal(enc.embed([POSTS[0], "short"])[0], emb[0])
    assert enc.embed([]).shape == (0, DIM)


def test_similar_posts_are_closer_than_unrelated_ones() -> None:
    a, b, c = load_encoder().embed(
        [
            "@user you charged me twice for my order",
            "@user I was billed two times for one purchase",
            "happy birthday mum",
        ]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_long_posts_are_cut_to_max_tokens() -> None:
    enc = load_encoder()
    ids = enc.tokenizer.encode("word " * 1000).ids
    assert len(ids) == MAX_TOKENS
    # Text past the cut does not change the embedding.
    head = "please help " * 40
    x, y = enc.embed([head + "the rest is praise", head + "the rest is abuse"])
    assert float(x @ y) == pytest.approx(1.0, abs=1e-3)


def test_a_damaged_encoder_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match=str(tmp_path)):
        SentenceEncoder(tmp_path)
    shutil.copy(ENCODER_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(EncoderUnavailable, match="cannot load the sentence encoder"):
        SentenceEncoder(tmp_path)
