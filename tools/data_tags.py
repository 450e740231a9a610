"""Outside text (documents, web pages, tool results, a client's earlier turns) goes to a model as data. Two kinds of
tag in it would make the model read it as ours, and both are made inert here:

- our wrappers' tags (`<web_page>`, `<retrieved_passages>`): the text could close its wrapper or forge another;
- chat-template tokens (`<|im_start|>`, `[INST]`, `<tool_response>`…): llama.cpp and Ollama read special tokens
  from message text, so a document holding `<|im_start|>system` would open a real system turn.

A look-alike a model could still read as the tag counts too: any case, spaces, Markdown escapes, invisible
characters (zero-width, soft hyphen) inside, Latin letters swapped for Cyrillic or Greek ones (Unicode's
confusables data), fullwidth brackets. Only the tag's opening bracket changes, to the HTML entity of the ASCII
bracket it is or looks like (`&lt;`, `&lbrack;`): the text reads the same, and no digit or capital letter is added
that a citation check could count.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

# The turn and tool tokens of the common chat templates, for every model (an API or Ollama model's tokenizer is not
# ours to read); an in-process model adds its own (`add_model_tokens`), and any `<|name|>` counts whatever the model.
COMMON_TOKENS = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",  # ChatML (Qwen), with any other <|name|>: Llama 3, Phi-3
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>",  # Gemma
    "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_CALLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[THINK]", "[/THINK]", "<s>", "</s>",  # Mistral, Llama 2
    "<SYS>", "</SYS>",  # inside Llama 2's <<SYS>>
    "<tools>", "</tools>", "<tool_call>", "</tool_call>", "<think>", "</think>",  # Qwen, Hermes, DeepSeek-R1
    "<tool_response>", "</tool_response>",  # the same, and the local loop's own wrapper of a tool's result
)  # fmt: skip

# Tags' shapes, on the folded text (see `_fold`): an opening bracket and what follows it up to the next bracket.
_ANGLE = re.compile(r"<[^<>]{0,60}>?")
_SQUARE = re.compile(r"\[[^\[\]]{1,40}\]")
_FILLER = re.compile(r"[\s\\_\-\u2581]+")  # what a look-alike may add or drop inside a tag (▁: SentencePiece's space)
_ENTITY = {"<": "&lt;", "[": "&lbrack;"}
_INVISIBLE = {"Cf", "Mn", "Me"}  # zero-width characters, soft hyphens, joiners, combining and variation marks


class _Folded(dict[int, str]):
    """Each character as it is compared (a `str.translate` table, filled on first sight): NFKC (fullwidth to
    ASCII), invisible characters dropped, a look-alike of an ASCII character replaced by it, case folded."""

    def __missing__(self, code: int) -> str:
        kept = (c for c in unicodedata.normalize("NFKC", chr(code)) if unicodedata.category(c) not in _INVISIBLE)
        folded = "".join(_prototypes().get(c, c) for c in kept).casefold()
        self[code] = folded
        return folded


_FOLDED = _Folded()


@cache
def _prototypes() -> dict[str, str]:
    """Non-ASCII character → the ASCII one it is confusable with ('і' → 'i', 'Т' → 'T', '‹' → '<')."""
    from confusable_homoglyphs.confusables import confusables_data

    return {
        glyph["c"]: ascii_char
        for ascii_char, glyphs in confusables_data.items()
        if len(ascii_char) == 1 and ascii_char.isascii() and ascii_char.isprintable()
        for glyph in glyphs
        if len(glyph["c"]) == 1 and not glyph["c"].isascii()
    }


def _fold(text: str) -> str:
    return text.lower() if text.isascii() else text.translate(_FOLDED)


def _canonical(tag: str) -> str:
    """A folded tag with what look-alikes add or drop removed; 'l' read as 'i' (Unicode counts 'I', 'І' and 'l'
    as one glyph)."""
    return _FILLER.sub("", tag).replace("l", "i")


_marks = frozenset(_canonical(_fold(t)) for t in COMMON_TOKENS)
_WRAPPERS = tuple(_canonical(t) for t in ("<web_page", "</web_page", "<retrieved_passages", "</retrieved_passages"))
_marks_lock = threading.Lock()


def add_model_tokens(tokens: Iterable[str]) -> None:
    """Escape a loaded model's own special tokens too, from now on in this process. Text is made ready for a model
    before it is known which model reads it, and a process may serve several: the union of theirs is escaped. A
    token shaped like neither `<…>` nor `[…]` (a run of spaces, a plain word) is text, not a turn marker."""
    global _marks
    shaped = (_fold(t.strip().lstrip("\u2581")) for t in tokens)
    new = {_canonical(t) for t in shaped if (_ANGLE.fullmatch(t) and t.endswith(">")) or _SQUARE.fullmatch(t)}
    with _marks_lock:
        _marks = _marks | new


def _tag_starts(folded: str, wrappers: bool) -> Iterator[int]:
    """Where each tag to make inert begins in the folded text."""
    for match in _ANGLE.finditer(folded):
        tag = _canonical(match.group())
        token = tag in _marks or (tag.startswith("<|") and tag.endswith("|>") and len(tag) > 4)
        if token or (wrappers and tag.startswith(_WRAPPERS)):  # our wrappers' tags have attributes: a start is one
            yield match.start()
    for match in _SQUARE.finditer(folded):
        if _canonical(match.group()) in _marks:
            yield match.start()


def _escape(text: str, wrappers: bool) -> str:
    folded = _fold(text)
    starts = set(_tag_starts(folded, wrappers))
    if not starts:
        return text
    # The original character each folded one came from (a character folds to none, one or several).
    origin = range(len(text)) if text.isascii() else [i for i, c in enumerate(text) for _ in _FOLDED[ord(c)]]
    out = list(text)
    for start in starts:
        bracket = folded[start]
        out[origin[start]] = _ENTITY.get(bracket, f"&#x{ord(bracket):x};")
    return "".join(out)


def neutralise(text: str) -> str:
    """Outside text with every look-alike of our wrappers' tags and of a chat-template token made inert."""
    return _escape(text, wrappers=True)


def escape_tokens(text: str) -> str:
    """A tool's whole result with chat-template tokens made inert and our wrappers' tags kept: the tool has put its
    outside text in a wrapper already (`neutralise`d), the rest may still hold tokens (a calculator's echo)."""
    return _escape(text, wrappers=False)


def as_data(message: BaseMessage) -> BaseMessage:
    """A message of the conversation as a model may be shown it: the question, earlier turns (an API client sends
    them) and tool results escaped; our own system prompt as it is."""
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    escape = escape_tokens if isinstance(message, ToolMessage) else neutralise
    if not isinstance(message, HumanMessage | AIMessage | ToolMessage) or not isinstance(message.content, str):
        return message
    content = escape(message.content)
    return message if content == message.content else message.model_copy(update={"content": content})


def attribute(value: str, max_chars: int = 300) -> str:
    """A value for `name="..."`: one line, cut to `max_chars`, quotes and brackets escaped, no token left."""
    return neutralise(html.escape(" ".join(value.split())[:max_chars], quote=True))
