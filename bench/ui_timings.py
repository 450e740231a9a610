"""What a user waits for in the browser, with the embedded model on the sample knowledge base: page load to a
usable question box; first visible step and first answer word on the first question (the model warming up since
the app started) and on a later one; the page height at 1440×900 with every panel open.

    .venv/bin/python bench/ui_timings.py     # ~2 min on 2 CPUs; writes bench/results/ui_timings.json
"""

from __future__ import annotations

import time
from typing import Any

from real_app import chromium, real_app
from record import save

QUESTIONS = ["How much is a Family membership per year?", "When is the workshop open on Saturdays?"]
RECORD = """() => {
    window.__t0 = performance.now(); window.__step = null; window.__word = null;
    const chat = document.querySelector('#chatbot'), panel = document.querySelector('#sources-panel');
    const calls = () => chat.innerText.split('search_knowledge_base').length;
    const before = calls();
    new MutationObserver(() => {
        const now = performance.now() - window.__t0;
        const step = /Thinking|Reading/.test(chat.innerText) || calls() > before;
        if (window.__step === null && step) window.__step = now;
        if (window.__word === null && /Writing the answer/.test(panel.innerText)) window.__word = now;
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def ask(page: Any, question: str) -> dict[str, float]:
    """Seconds from Enter to the first step shown and to the first answer word (the panel says "Writing")."""
    page.evaluate(RECORD)
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    page.wait_for_function("window.__word !== null", timeout=300_000)
    step, word = page.evaluate("[window.__step, window.__word]")
    page.wait_for_function("document.querySelector('#ask').innerText.trim() == 'Ask'", timeout=300_000)
    return {"first_step_s": round(step / 1000, 2), "first_word_s": round(word / 1000, 2)}


def page_height(page: Any) -> int:
    """The tallest tab at 1440×900 with every accordion open."""
    tallest = 0
    for tab in ("Chat", "Knowledge base", "Evaluation", "Settings"):
        page.get_by_role("tab", name=tab).click()
        time.sleep(0.5)
        for closed in page.locator(".label-wrap:not(.open)").all():
            if closed.is_visible():
                closed.click()
        time.sleep(0.5)
        tallest = max(tallest, page.evaluate("document.documentElement.scrollHeight"))
    return int(tallest)


def main() -> None:
    with real_app() as (url, _parts), chromium() as page:
        start = time.perf_counter()
        page.goto(url)
        page.locator("#question textarea").wait_for(state="visible")
        usable = time.perf_counter() - start
        first = ask(page, QUESTIONS[0])
        later = ask(page, QUESTIONS[1])
        figures = {
            "page_load_to_usable_input_s": round(usable, 2),
            "first_question": first,
            "later_question": later,
            "page_height_px_1440x900_all_open": page_height(page),
            "note": "the first question is asked as soon as the page is usable; the model warms up from app start",
        }
    print(save("ui_timings", figures))
    print(figures)


if __name__ == "__main__":
    main()
