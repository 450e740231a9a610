"""The shipped all-MiniLM-L6-v2 through onnxruntime: the same vectors as sentence-transformers (max |Δ| ~1e-7),
without importing torch, so a search starts in about a second instead of four.

The ONNX file is exported once from the shipped weights (torch is needed for that step only) into the models
folder beside the store.
"""

from __future__ import annotations

import json
import os
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

EXPORT_NAME = "all-MiniLM-L6-v2.onnx"


class OnnxEmbedder:
    def __init__(self, model_name: str, model_dir: Path, onnx_path: Path, batch_size: int = 32) -> None:
        self.model_name = model_name
        self.model_dir = model_dir
        self.onnx_path = onnx_path
        self.batch_size = batch_size

    @cached_property
    def max_length(self) -> int:
        config = self.model_dir / "sentence_bert_config.json"
        return int(json.loads(config.read_text()).get("max_seq_length", 256)) if config.exists() else 256

    @cached_property
    def tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(self.max_length)
        tokenizer.enable_padding()
        return tokenizer

    @cached_property
    def session(self) -> Any:
        import onnxruntime

        if not self.onnx_path.exists():
            export_onnx(self.model_dir, self.onnx_path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        out = []
        for start in range(0, len(texts), self.batch_size):
            encodings = self.tokenizer.encode_batch(texts[start : start + self.batch_size])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": 0 * ids})[0]
            pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out.extend(pooled.astype(np.float32).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed([text])[0]


def export_onnx(model_dir: Path, onnx_path: Path) -> None:
    """Export the transformer (mean pooling and normalising stay in numpy); written atomically."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    class Encoder(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    sample = tokenizer(["an example", "a slightly longer example text"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    partial = onnx_path.with_suffix(f".{os.getpid()}.tmp")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes about shapes fixed at export; checked by the tests
        torch.onnx.export(
            Encoder(model),
            tuple(sample[n] for n in names),
            str(partial),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(onnx_path)
