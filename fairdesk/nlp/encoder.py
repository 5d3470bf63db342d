"""A small sentence encoder (all-MiniLM-L6-v2, int8 ONNX) run by ONNX Runtime on one thread."""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

# We only ever read local files; make sure nothing under tokenizers reaches for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import onnxruntime as ort  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

logger = logging.getLogger(__name__)

ENCODER_DIR = Path(__file__).resolve().parent / "encoder"
MODEL_FILE, TOKENIZER_FILE = "model.onnx", "tokenizer.json"
DIM = 384  # per pooled layer; the shipped graph outputs layers 4 and 5 side by side (768 values)
# Tweets are ~40 word pieces; the rare longer one is cut (attention cost grows with the square of the length).
MAX_TOKENS = 64
# Posts are run one at a time. The int8 graph quantizes its activations with one scale per batch, so in a batch of 32
# (sorted by length) a post's embedding, and its score near the threshold, moved with its batch-mates: by up to 0.07 on
# train.csv, enough to flip a label. Alone, the same post always gets the same score; it costs about a fifth of the
# encoder's speed (530 against 670 posts/s on one core).
BATCH_SIZE = 1


class EncoderUnavailable(RuntimeError):
    """The encoder's files are missing or damaged."""


def file_digest(path: Path) -> str:
    """sha256 of a file, 16 hex digits: names the exact encoder weights a trained model was fitted against."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


class SentenceEncoder:
    """Sentence embeddings: per layer the graph pools, the mean of its token states, L2-normalised (384 values per
    layer, side by side; the width is read from the graph). Empty text gives the [CLS][SEP] vector."""

    def __init__(self, folder: Path = ENCODER_DIR, *, threads: int = 1) -> None:
        model, tok = Path(folder) / MODEL_FILE, Path(folder) / TOKENIZER_FILE
        try:
            self.tokenizer = Tokenizer.from_file(str(tok))
            opts = ort.SessionOptions()
            # One core per daemon: the classifier must not compete with the web server and the poll jobs.
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime and tokenizers raise their own (untyped) errors
            raise EncoderUnavailable(f"cannot load the sentence encoder from {folder}: {exc}") from exc
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.digest = file_digest(model)
        width = self.session.get_outputs()[0].shape[-1]
        if not isinstance(width, int) or width % DIM:
            raise EncoderUnavailable(f"the encoder in {folder} outputs {width} values, not a multiple of {DIM}")
        self.dim = width

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), self.dim) float32 embeddings, in the order given."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=True)]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            width = max(len(ids[i]) for i in batch)
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            (emb,) = self.session.run(None, {"input_ids": input_ids, "attention_mask": mask})
            out[batch] = emb
        return out


@lru_cache(maxsize=2)
def load_encoder(folder: Path = ENCODER_DIR) -> SentenceEncoder:
    """The encoder in `folder`, loaded once per process (its ONNX session is shared and thread-safe)."""
    encoder = SentenceEncoder(folder)
    logger.info("loaded sentence encoder %s from %s", encoder.digest, folder)
    return encoder
