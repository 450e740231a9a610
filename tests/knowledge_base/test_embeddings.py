"""The shipped model's two engines (onnxruntime, a TorchScript trace) give the same vectors as
sentence-transformers, and are what the default settings build."""

from __future__ import annotations

import numpy as np

from kbagent.settings import Settings
from knowledge_base.embeddings import Embedder, SentenceTransformerEmbedder
from knowledge_base.embeddings import build_embedder as build
from knowledge_base.shipped_minilm import OnnxEmbedder, ShippedMiniLM, TracedEmbedder


def build_embedder(settings: Settings) -> Embedder:
    return build(settings.embedding, settings.store.models_path)


TEXTS = ["short", "a somewhat longer sentence about bicycle brakes and pads", "word " * 400, "Ünïcödé ✓"]


def test_onnx_matches_sentence_transformers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    default = build_embedder(Settings(data_dir=tmp_path, models_dir=tmp_path / "models", _env_file=None))
    assert isinstance(default, ShippedMiniLM) and default.model_name == "all-MiniLM-L6-v2"
    onnx = default.onnx
    embedder = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    assert isinstance(onnx, OnnxEmbedder)
    got = np.array(onnx.embed(TEXTS))
    want = np.array(embedder.embed(TEXTS))
    assert got.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-4
    assert (tmp_path / "models" / "all-MiniLM-L6-v2.onnx").exists()


def test_torch_backend_on_request(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, embedding_backend="torch", _env_file=None)
    assert isinstance(build_embedder(settings), SentenceTransformerEmbedder)
    on_gpu = build_embedder(Settings(data_dir=tmp_path, embedding_device="cuda", _env_file=None))
    assert isinstance(on_gpu.torch, SentenceTransformerEmbedder)  # type: ignore[attr-defined]  # the trace is CPU-only


def test_queries_use_onnx_and_batches_use_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    embedder = build_embedder(Settings(data_dir=tmp_path, models_dir=tmp_path / "models", _env_file=None))
    embedder.embed(["one query"])
    assert "session" in embedder.onnx.__dict__ and "model" not in embedder.torch.__dict__
    embedder.embed([f"sentence {i} of a short paragraph. " * 3 for i in range(50)])
    assert "model" not in embedder.torch.__dict__  # a small job stays on onnxruntime
    embedder.embed([f"chunk {i} " + "text " * 150 for i in range(20)])
    assert "model" in embedder.torch.__dict__


def test_traced_torch_matches_sentence_transformers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """One trace serves every batch size and length (up to the 256-token cut), in both precisions."""
    reference = SentenceTransformerEmbedder("all-MiniLM-L6-v2")
    texts = [*TEXTS, *(f"sentence {i} " * (i + 1) for i in range(40))]
    want = np.array(reference.embed(texts))
    for dtype, tolerance in (("float32", 1e-5), ("bfloat16", 5e-3)):
        settings = Settings(data_dir=tmp_path, models_dir=tmp_path / "models", embedding_dtype=dtype, _env_file=None)
        traced = build_embedder(settings).torch  # type: ignore[attr-defined]
        assert isinstance(traced, TracedEmbedder)
        for batch_size in (1, 7, 32):
            traced.batch_size = batch_size
            got = np.array(traced.embed(texts))
            assert np.abs(got - want).max() < tolerance
            assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
        assert (tmp_path / "models" / f"all-MiniLM-L6-v2.{dtype}.pt").exists()
