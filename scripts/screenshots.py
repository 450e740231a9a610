"""The README's screenshots, from the real embedded model on the sample knowledge base: run on purpose
(`.venv/bin/python scripts/screenshots.py`, a few minutes on 2 CPUs), never by the tests.

docs/screenshot.png: the chat with a cited answer and its sources; docs/screenshot-knowledge.png: the Knowledge
base tab; docs/screenshot-evaluation.png: the Answers evaluation's leaderboard (one question per category);
docs/screenshot-viewer.png: the answer's first citation opened in the viewer's panel beside the chat.
`scripts/screenshots.py chat viewer` makes only those (chat always: the others follow its answer).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from real_app import chromium, real_app  # noqa: E402

DOCS = REPO / "docs"
QUESTIONS = [
    "How much is a Family membership per year?",
    "What does a Concession membership cost, and who can get one?",
    "When is the workshop open on Saturdays?",
]
ANSWERED = """() => document.querySelector('#ask').innerText.trim() == 'Ask'
    && /score|No sources/.test(document.querySelector('#sources-panel').innerText)"""


def main(wanted: set[str]) -> None:
    wanted = wanted or {"chat", "viewer", "knowledge", "evaluation"}
    DOCS.mkdir(exist_ok=True)
    with real_app() as (url, _parts), chromium() as page:
        page.goto(url)
        for question in QUESTIONS:  # the first answer that cites a passage (a small model does not always)
            box = page.locator("#question textarea")
            box.fill(question)
            box.press("Enter")
            page.wait_for_function(ANSWERED, timeout=600_000)
            if page.locator("#sources-panel").get_by_text("[1]").count() or question == QUESTIONS[-1]:
                break  # cited, or the last try: shown as it is
            page.locator("#new-chat").click()
        time.sleep(1)
        page.screenshot(path=str(DOCS / "screenshot.png"))

        citation = page.locator("#chatbot a[href*='/source/']")
        if "viewer" in wanted and citation.count():
            citation.first.click()
            page.frame_locator("#kb-viewer-frame").locator("main").wait_for()
            time.sleep(1.5)
            page.screenshot(path=str(DOCS / "screenshot-viewer.png"))
            page.locator("#kb-viewer [data-kb=close]").click()
        if not wanted & {"knowledge", "evaluation"}:
            return

        page.get_by_role("tab", name="Knowledge base").click()
        page.locator("#sources-table").get_by_text("membership.md").first.wait_for()
        time.sleep(1)
        page.screenshot(path=str(DOCS / "screenshot-knowledge.png"))

        page.get_by_role("tab", name="Evaluation").click()
        page.locator("#eval-mode").get_by_text("Answers").click()
        page.locator("#per-category").click()
        page.get_by_role("option", name="1", exact=True).click()
        page.locator("#run-answers").click()
        page.locator("#answers-leaderboard .kb-leaderboard").wait_for(timeout=1_800_000)
        page.locator("#answers-leaderboard").scroll_into_view_if_needed()
        time.sleep(1)
        page.screenshot(path=str(DOCS / "screenshot-evaluation.png"))
    print("wrote", *(p.name for p in sorted(DOCS.glob("screenshot*.png"))))


if __name__ == "__main__":
    main(set(sys.argv[1:]))
