"""Tests for the sentence encoder (all-MiniLM-L6-v2 cut after layer 5, int8 MatMuls, run by ONNX Runtime) shipped in
nlp/encoder/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fairdesk.nlp.encoder import DIM, ENCODER_DIR, MAX_TOKENS, EncoderUnavailable, SentenceEncoder, load_encoder

POSTS = ["@user my order never arrived and nobody answers", "lovely sunny day at the beach", "", "x " * 500]


def test_embeddings_are_one_unit_vector_per_pooled_layer_in_input_order() -> None:
    enc = load_encoder()
    emb = enc.embed(POSTS)
    assert enc.dim == 2 * DIM, "the shipped graph pools layers 4 and 5"
    assert emb.shape == (len(POSTS), enc.dim) and emb.dtype == np.float32
    for layer in (emb[:, :DIM], emb[:, DIM:]):
        assert np.linalg.norm(layer, axis=1) == pytest.approx(np.ones(len(POSTS)), abs=1e-3)
    # Two different layers, not one layer twice.
    assert not np.allclose(emb[:, :DIM], emb[:, DIM:], atol=0.05)
    # The same post alone or among others: the same embedding, bit for bit (int8 activations are quantized per
    # batch, so batch-mates would otherwise move it).
    assert np.array_equal(enc.embed([POSTS[1]])[0], emb[1])
    assert np.array_equal(enc.embed([POSTS[0], "short"])[0], emb[0])
    assert enc.embed([]).shape == (0, enc.dim)


def test_similar_posts_are_closer_than_unrelated_ones() -> None:
    a, b, c = load_encoder().embed(
        [
            "@user you charged me twice for my order",
            "@user I was billed two times for one purchase",
            "happy birthday mum",
        ]
    )
    # Per layer, then averaged: each block is a unit vector.
    assert float(a @ b) / 2 > float(a @ c) / 2 + 0.2


def test_long_posts_are_cut_to_max_tokens() -> None:
    enc = load_encoder()
    ids = enc.tokenizer.encode("word " * 1000).ids
    assert len(ids) == MAX_TOKENS
    # Text past the cut does not change the embedding.
    head = "please help " * 40
    x, y = enc.embed([head + "the rest is praise", head + "the rest is abuse"])
    assert float(x @ y) / 2 == pytest.approx(1.0, abs=1e-3)


def test_a_damaged_encoder_folder_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderUnavailable, match=str(tmp_path)):
        SentenceEncoder(tmp_path)
    shutil.copy(ENCODER_DIR / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(EncoderUnavailable, match="cannot load the sentence encoder"):
        SentenceEncoder(tmp_path)
