"""What the chunking costs the encoder: tokens embedded per corpus for each chunk size, with and without the
context header (`Title › Section`), and how many chunks pass the model's 256-token cut. Token counts are the
encoder's work whatever else runs on the machine (no timing).

    .venv/bin/python bench/chunk_tokens.py [--sets squad11_dev,scifact]

Writes bench/results/chunk_tokens.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from record import save  # bench/record.py: every result file with its command

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langchain_core.documents import Document  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

from ingest.chunking import Chunker, ChunkingConfig  # noqa: E402
from knowledge_base.embeddings import resolve_local_model  # noqa: E402

SIZES = ((600, 60), (800, 80), (1000, 100), (1200, 120))
CUT = 256


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="squad11_dev,scifact")
    parser.add_argument("--bench", type=Path, default=ROOT.parent / "shared" / "bench")
    args = parser.parse_args()
    tokenizer = Tokenizer.from_file(str(Path(resolve_local_model("all-MiniLM-L6-v2")) / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    rows = []
    for name in args.sets.split(","):
        docs = [json.loads(line) for line in (args.bench / name / "corpus.jsonl").open(encoding="utf-8")]
        for size, overlap in SIZES:
            chunker = Chunker(ChunkingConfig(size, overlap))
            with_header = without = chunks = cut = 0
            for doc in docs:
                document = Document(f"# {doc['title']}\n\n{doc['text']}", metadata={"format": "markdown"})
                texts = [c.page_content for c in chunker.split([document], doc["title"])]
                bodies = [t.split("\n\n", 1)[-1] for t in texts]
                full = [len(e.ids) for e in tokenizer.encode_batch(texts)]
                with_header += sum(min(n, CUT) for n in full)
                without += sum(min(len(e.ids), CUT) for e in tokenizer.encode_batch(bodies))
                chunks += len(texts)
                cut += sum(n > CUT for n in full)
            rows.append(
                {
                    "set": name,
                    "chunk_size": size,
                    "chunk_overlap": overlap,
                    "chunks": chunks,
                    "tokens_embedded": with_header,
                    "tokens_without_header": without,
                    "header_share": round(1 - without / with_header, 3),
                    "chunks_past_256_tokens": cut,
                }
            )
            print(rows[-1], flush=True)
    save("chunk_tokens", rows)


if __name__ == "__main__":
    main()
