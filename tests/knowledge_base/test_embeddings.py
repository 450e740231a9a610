"""The shipped model's engines (onnxruntime in float32 and 8-bit, a TorchScript trace in float32 and bfloat16)
give the vectors of sentence-transformers, and ingest batches go to the engine measured fastest on this CPU."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kbagent.settings import Settings
from knowledge_base import calibration
from knowledge_base.calibration import Calibration, CalibrationCache, calibrate, describe_cached
from knowledge_base.embeddings import Embedder, SentenceTransformerEmbedder
from knowledge_base.embeddings import build_embedder as build
from knowledge_base.shipped_minilm import OnnxEmbedder, ShippedMiniLM, TracedEmbedder


def build_embedder(settings: Settings) -> Any:
    return build(settings.embedding, settings.store.models_path, calibration_path=settings.store.calibration_path)


TEXTS = ["short", "a somewhat longer sentence about bicycle brakes and pads", "word " * 400, "Ünïcödé ✓"]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One models folder for the module: each engine is exported once."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def reference() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")


def test_onnx_matches_sentence_transformers(tmp_path, models, reference) -> None:  # type: ignore[no-untyped-def]
    default = build_embedder(Settings(data_dir=tmp_path, models_dir=models, _env_file=None))
    assert isinstance(default, ShippedMiniLM) and default.model_name == "all-MiniLM-L6-v2"
    onnx = default.onnx
    assert isinstance(onnx, OnnxEmbedder)
    got = np.array(onnx.embed(TEXTS))
    want = np.array(reference.embed(TEXTS))
    assert got.shape == (4, 384)
    assert np.abs(got - want).max() < 1e-4
    assert (models / "all-MiniLM-L6-v2.onnx").exists()


def test_torch_backend_on_request(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, embedding_backend="torch", _env_file=None)
    assert isinstance(build_embedder(settings), SentenceTransformerEmbedder)
    on_gpu = build_embedder(Settings(data_dir=tmp_path, embedding_device="cuda", _env_file=None))
    assert on_gpu.chosen == "sentence-transformers cuda"  # the trace is CPU-only


def test_queries_and_small_jobs_stay_on_onnx(tmp_path, models) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, models_dir=models, embedding_dtype="bfloat16", _env_file=None)
    embedder = build_embedder(settings)
    embedder.embed(["one query"])
    embedder.embed([f"sentence {i} of a short paragraph. " * 3 for i in range(50)])
    assert list(embedder._engines) == ["onnx float32"]  # a small job stays on onnxruntime: no torch
    embedder.embed([f"chunk {i} " + "text " * 150 for i in range(20)])
    assert isinstance(embedder._engines["torch bfloat16"], TracedEmbedder)


def test_every_engine_matches_sentence_transformers(tmp_path, models, reference) -> None:  # type: ignore[no-untyped-def]
    """Every batch size and length (up to the 256-token cut), in parallel batches, in the order given."""
    texts = [*TEXTS, *(f"sentence {i} " * (i + 1) for i in range(40))]
    want = np.array(reference.embed(texts))
    settings = Settings(data_dir=tmp_path, models_dir=models, _env_file=None)
    embedder = build_embedder(settings)
    for name, tolerance in (("torch float32", 1e-5), ("onnx int8", 0.05), ("torch bfloat16", 5e-3)):
        engine = embedder.engine(name)
        assert engine.workers >= 1
        for batch_size in (3, 32):
            engine.batch_size = batch_size
            done: list[int] = []
            got = np.array(engine.embed_many(texts, done.append))
            assert sum(done) == len(texts)
            assert np.abs(got - want).max() < tolerance
            assert (got * want).sum(axis=1).min() >= calibration.AGREEMENT
            assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)
    assert {p.name for p in models.iterdir()} >= {
        "all-MiniLM-L6-v2.float32.pt",
        "all-MiniLM-L6-v2.bfloat16.pt",
        "all-MiniLM-L6-v2.int8.onnx",
    }


class FakeEngine:
    """Vectors of a fixed direction per text, after a fixed delay: a precision of known speed and accuracy."""

    def __init__(self, seconds: float, noise: float = 0.0) -> None:
        self.seconds = seconds
        self.noise = noise
        self.calls = 0

    def load(self) -> None: ...

    def encode(self, texts: list[str]) -> Any:
        self.calls += 1
        time.sleep(self.seconds)
        vectors = np.array([[np.cos(len(t)), np.sin(len(t)), self.noise] for t in texts])
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_a_slow_precision_is_never_chosen() -> None:
    texts = [f"text {'x' * i}" for i in range(200)]
    engines = {"reference": FakeEngine(0.02), "slow": FakeEngine(0.2), "fast": FakeEngine(0.0)}
    assert calibrate(engines, "reference", texts).chosen == "fast"
    engines = {"reference": FakeEngine(0.02), "slow": FakeEngine(0.2)}
    assert calibrate(engines, "reference", texts).chosen == "reference"


def test_a_fast_precision_that_disagrees_is_never_chosen() -> None:
    texts = [f"text {'x' * i}" for i in range(200)]
    engines = {"reference": FakeEngine(0.02), "lossy": FakeEngine(0.0, noise=0.2), "close": FakeEngine(0.01, 0.01)}
    result = calibrate(engines, "reference", texts)
    assert result.agreement["lossy"] < calibration.AGREEMENT <= result.agreement["close"]
    assert result.chosen == "close"


def test_the_first_large_ingest_measures_and_the_choice_is_cached(tmp_path, models, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path, models_dir=models, _env_file=None)
    embedder = build_embedder(settings)
    texts = [f"chunk {i} about brakes, pads and cables. " * (1 + i % 9) for i in range(ShippedMiniLM.CALIBRATE_AT)]
    embedder.embed(texts[:20])  # a small job measures nothing
    assert not settings.store.calibration_path.exists()
    vectors = np.array(embedder.embed_many(texts))
    saved = json.loads(settings.store.calibration_path.read_text())
    assert saved["chosen"] == embedder.calibration.chosen and saved["chosen"] in embedder.engine_names
    assert set(saved["rates"]) == set(embedder.engine_names) and saved["cpu"] == calibration.cpu_identity()
    assert saved["agreement"][saved["chosen"]] >= calibration.AGREEMENT
    assert (vectors * np.array(embedder.onnx.embed(texts))).sum(axis=1).min() >= calibration.AGREEMENT

    def measured_again(*_: object) -> Calibration:
        raise AssertionError("measured again")

    monkeypatch.setattr("knowledge_base.shipped_minilm.calibrate", measured_again)
    again = build_embedder(settings)  # a new process on the same CPU: the cached choice
    assert again.engine_for(texts) is again.engine(saved["chosen"])

    other_cpu = {**calibration.cpu_identity(), "model": "another CPU"}
    monkeypatch.setattr(calibration, "cpu_identity", lambda: other_cpu)
    assert CalibrationCache(settings.store.calibration_path).load(embedder.engine_names) is None
    with pytest.raises(AssertionError, match="measured again"):
        build_embedder(settings).engine_for(texts)


def test_a_damaged_cache_measures_again(tmp_path: Path) -> None:
    path = tmp_path / "embedding_engine.json"
    path.write_text("{not json")
    assert CalibrationCache(path).load(["onnx float32"]) is None


def test_the_embedder_is_a_langchain_embeddings(embedder: Embedder) -> None:
    assert len(embedder.embed_documents(["a", "b"])) == 2 and len(embedder.embed_query("a")) == 384


def test_kbagent_models_says_which_engine_was_measured(tmp_path: Path) -> None:
    path = tmp_path / "embedding_engine.json"
    assert describe_cached(path).startswith("not measured yet")
    rates, agreement = {"onnx float32": 20.0, "onnx int8": 45.0, "torch bfloat16": 38.5}, {"onnx int8": 0.99}
    measured = Calibration("torch bfloat16", rates, {"onnx float32": 1.0, "torch bfloat16": 0.9999, **agreement})
    measured.cpu, measured.measured_at = calibration.cpu_identity(), "2026-12-07 16:00:00"
    CalibrationCache(path).save(measured)
    said = describe_cached(path)
    assert said.startswith("torch bfloat16") and "onnx int8 45 (vectors disagree)" in said and "38" in said
    assert "another CPU" not in said
    measured.cpu = {**measured.cpu, "cores": 64}
    CalibrationCache(path).save(measured)
    assert "another CPU" in describe_cached(path)
