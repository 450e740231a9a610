"""Cookie and consent banners, found by what an element is called and how it sits on the page.

An element is a banner when its id, class, name, aria labels or data attributes name cookies, consent, GDPR or
a consent-management platform (CMP) *and* it is shaped like a banner: a dialog (role dialog or alertdialog,
aria-modal, <dialog>), pinned by an inline position: fixed or sticky, or called a banner, bar, notice, popup,
modal, ... in the same names (or "cookie" and "consent" together). The containers of well-known consent
managers count on their own. Naming cookies or consent is not enough: recipe cards and GDPR guides do that. An
element holding the page's content (main, article, the h1) is never a banner; role=region alone is no sign
either, since every labelled <section> has it.

trafilatura has consent rules of its own that drop any block whose class merely contains "cookie" or "consent"
(a "cookie-recipe" card, a "consent-form-guide"), so once the banners are gone those words are taken out of the
names it sees (`hide_consent_names`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml.html import HtmlElement

SIGNALS = ("cookie", "consent", "gdpr", "cmp")
SHAPES = {
    "banner", "bar", "notice", "notification", "popup", "modal", "overlay", "dialog", "wall", "toast", "alert",
    "prompt", "message", "msg", "law", "warning",
}  # fmt: skip
DIALOG_ROLES = {"dialog", "alertdialog"}
PINNED = re.compile(r"position\s*:\s*(?:fixed|sticky)", re.I)
NAMING = ("id", "class", "name", "aria-label", "aria-labelledby", "aria-describedby")
CONTENT = {"html", "body", "main", "article"}
VENDOR_IDS = {
    "onetrust-consent-sdk",  # OneTrust
    "onetrust-banner-sdk",
    "onetrust-pc-sdk",
    "CybotCookiebotDialog",  # Cookiebot
    "didomi-host",  # Didomi
    "usercentrics-root",  # Usercentrics
    "truste-consent-track",  # TrustArc
    "consent_blackbar",
    "cmplz-cookiebanner-container",  # Complianz
    "iubenda-cs-banner",  # iubenda
    "termly-code-snippet-support",  # Termly
    "qc-cmp2-container",  # Quantcast
    "BorlabsCookieBox",  # Borlabs
    "cookie-law-info-bar",  # CookieYes (GDPR Cookie Consent plugin)
    "moove_gdpr_cookie_info_bar",  # Moove GDPR
}
VENDOR_ID_PREFIXES = ("sp_message_container_",)  # Sourcepoint
VENDOR_CLASSES = {
    "qc-cmp2-container",  # Quantcast
    "osano-cm-window",  # Osano
    "cky-consent-container",  # CookieYes
    "klaro",  # Klaro
    "cc-window",  # cookieconsent.js
    "fc-consent-root",  # Google Funding Choices
    "cmplz-cookiebanner",  # Complianz
}
HIDDEN_WORDS = re.compile(r"cookie|consent", re.I)


def drop_consent_banners(tree: HtmlElement) -> None:
    """Removes consent banners from an lxml.html tree in place (the text after each one stays)."""
    found = [el for el in tree.iter() if isinstance(el.tag, str) and is_consent_banner(el)]
    for element in found:
        if element.getparent() is not None:
            element.drop_tree()


def is_consent_banner(element: HtmlElement) -> bool:
    vendor = _is_vendor_container(element)
    if not vendor and not _named_and_shaped(element):
        return False
    return not _holds_content(element, vendor)


def _named_and_shaped(element: HtmlElement) -> bool:
    """Names cookies, consent, GDPR or a CMP, and is named or shaped like a banner."""
    tokens = _tokens(element)
    signals = {signal for token in tokens for signal in SIGNALS if token.startswith(signal)}
    if not signals:
        return False
    rests = {token[len(s) :] for token in tokens for s in SIGNALS if token.startswith(s) and len(token) > len(s)}
    shaped_name = any(_shape(word) for word in tokens | rests) or {"cookie", "consent"} <= signals | rests
    return shaped_name or _shaped_like_dialog(element)


def hide_consent_names(tree: HtmlElement) -> None:
    """Takes "cookie" and "consent" out of the ids and classes left after the banners were dropped."""
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue
        if HIDDEN_WORDS.search(element.get("id") or ""):
            del element.attrib["id"]
        classes = element.get("class") or ""
        if HIDDEN_WORDS.search(classes):
            element.set("class", " ".join(name for name in classes.split() if not HIDDEN_WORDS.search(name)))


def _is_vendor_container(element: HtmlElement) -> bool:
    ident = element.get("id") or ""
    classes = set((element.get("class") or "").split())
    return ident in VENDOR_IDS or ident.startswith(VENDOR_ID_PREFIXES) or bool(classes & VENDOR_CLASSES)


def _holds_content(element: HtmlElement, vendor: bool) -> bool:
    """Main content is never inside a banner; a consent manager's own dialog may use an h1 for its title."""
    if element.tag in CONTENT:
        return True
    inner = ("main", "article") if vendor else ("main", "article", "h1")
    return next(element.iterdescendants(*inner), None) is not None


def _tokens(element: HtmlElement) -> set[str]:
    """The words of an element's names: "CybotCookiebotDialog" → cybot, cookiebot, dialog."""
    values = [element.get(name) or "" for name in NAMING]
    values += [f"{name} {value}" for name, value in element.attrib.items() if name.startswith("data-")]
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", " ".join(values))
    return {word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word}


def _shape(word: str) -> bool:
    return word in SHAPES or (word.endswith("s") and word[:-1] in SHAPES)


def _shaped_like_dialog(element: HtmlElement) -> bool:
    role = (element.get("role") or "").strip().lower()
    return (
        element.tag == "dialog"
        or role in DIALOG_ROLES
        or (element.get("aria-modal") or "").lower() == "true"
        or bool(PINNED.search(element.get("style") or ""))
    )
