"""The ONNX path gives the same vectors as sentence-transformers, and is what the default settings build."""

from __future__ import annotations

import numpy as np

from kbagent.settings import Settings
from knowledge_base.embeddings import SentenceTransformerEmbedder, ShippedMiniLM, build_embedder
from knowledge_base.onnx_embedder import OnnxEmbedder


def test_onnx_matches_sentence_transformers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    default = build_embedder(Settings(data_dir=tmp_path, models_dir=tmp_path / "models", _env_file=None))
    assert isinstance(default, ShippedMiniLM) and default.model_name == "all-MiniLM-L6-v2"
    onnx = default.onnx
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert isinstance(onnx, OnnxEmbedder)
    texts = ["short", "a somewhat longer sentence about bicycle brakes and pads", "word " * 400, "Ünïcödé ✓"]
    got = np.array(onnx.embed(texts))
    want = np.array(embedder.embed(texts))
    assert got.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-4
    assert (tmp_path / "models" / "all-MiniLM-L6-v2.onnx").exists()


def test_torch_backend_on_request(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, embedding_backend="torch", _env_file=None)
    assert isinstance(build_embedder(settings), SentenceTransformerEmbedder)


def test_queries_use_onnx_and_batches_use_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    embedder = build_embedder(Settings(data_dir=tmp_path, models_dir=tmp_path / "models", _env_file=None))
    embedder.embed(["one query"])
    assert "session" in embedder.onnx.__dict__ and "model" not in embedder.torch.__dict__
    embedder.embed([f"sentence {i} of a short paragraph. " * 3 for i in range(50)])
    assert "model" not in embedder.torch.__dict__  # a small job stays on onnxruntime
    embedder.embed([f"chunk {i} " + "text " * 150 for i in range(20)])
    assert "model" in embedder.torch.__dict__
