"""Outside text (web pages, retrieved passages) goes to the model inside a tag that says "data". Nothing in that
text may close the tag, open another, or break out of an attribute, or the model reads the rest as ours."""

from __future__ import annotations

import html
import re

# A "<" a model could read as the start of one of our tags: any case, spaces or Markdown escapes anywhere
# (`< / WEB page >`, `\</web\_page>`). Only that "<" changes, so the text reads the same.
_TAG_START = re.compile(r"<(?=\s*/?\s*(?:web[\s_\\-]*page|retrieved[\s_\\-]*passages))", re.IGNORECASE)


def neutralise(text: str) -> str:
    """`text` with every look-alike of our wrappers' tags made inert (`<` becomes `&lt;`)."""
    return _TAG_START.sub("&lt;", text)


def attribute(value: str, max_chars: int = 300) -> str:
    """A value for `name="..."`: one line, cut to `max_chars`, quotes and brackets escaped."""
    return html.escape(" ".join(value.split())[:max_chars], quote=True)
