"""Ingest a folder into the knowledge base, then search it.

    python examples/ingest_and_search.py FOLDER "QUERY"

Settings come from the environment and `.env` as for the `kbagent` command (KBAGENT_DATA_DIR: where the store is).
"""

import sys
from pathlib import Path

from kbagent.components import Components
from kbagent.settings import load_settings

folder, query = Path(sys.argv[1]), sys.argv[2]
with Components(load_settings()) as parts:
    report = parts.ingest([folder])
    print("ingested:", ", ".join(f"{n} {what}" for what, n in report.counts.items()))
    for doc in parts.kb.search(query, k=3):
        meta = doc.metadata
        print(f"{meta['score']:.3f}  {meta['source']}  {doc.page_content[:70]!r}")
