"""Cookie and consent banners leave the converted text, in both paths of `html_to_markdown` (trafilatura, and
markdownify for short pages); articles that merely talk about cookies or consent keep all their text.

The banners imitate how consent vendors write theirs (ids, classes, roles, inline styles), not the sample
knowledge base's or the test site's markup.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

import ingest.text.html as html_module
from ingest.text import html_to_markdown

LONG_ARTICLE = [
    "Composting at home",
    "A compost heap turns kitchen scraps and garden waste into dark, crumbly soil in about nine months, and it "
    "needs little more than a shady corner, a lidded bin and some patience through the colder weeks.",
    "Mix greens and browns in roughly equal parts: vegetable peelings, coffee grounds and grass cuttings on one "
    "side; torn cardboard, dry leaves and egg boxes on the other. Too many greens make the heap slimy.",
    "Turn the heap every two or three weeks with a fork so air reaches the middle. A warm centre means the "
    "microbes are working; a cold, wet heap wants more cardboard and another turn.",
    "The compost is ready when it smells of forest floor and none of the original scraps can be recognised. "
    "Sieve out the woody bits and put them back for the next batch.",
]
SHORT_ARTICLE = [
    "Bin days",
    "Green bins go out on Mondays.",
    "Paper goes out on Thursdays.",
    "Glass goes to the bottle bank.",
]
BANNER_GONE = "is the banner text"  # every banner below carries a sentence with these words


LAYOUTS = {
    "semantic": '<main id="content"><article class="post"><h1>{title}</h1>{content}</article></main>',
    "plain": '<div id="page"><div class="content entry"><h1>{title}</h1>{content}</div></div>',
}


def page(article: list[str], banner: str, layout: str, banner_first: bool) -> str:
    """A page of `article` (title, paragraphs) in a `layout` of LAYOUTS, with a banner before or after it."""
    title, *paragraphs = article
    content = "".join(f"<p>{text}</p>" for text in paragraphs)
    main = (
        '<header class="site-header"><nav aria-label="Main"><a href="/">Home</a> <a href="/news">News</a></nav>'
        "</header>"
        + LAYOUTS[layout].format(title=title, content=content)
        + '<footer class="site-footer"><p>Published by the allotment society.</p></footer>'
    )
    body = banner + main if banner_first else main + banner
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>'
        f"<body>{body}</body></html>"
    )


ONETRUST = """<div id="onetrust-consent-sdk"><div class="onetrust-pc-dark-filter ot-hide ot-fade-in"></div>
<div id="onetrust-banner-sdk" class="otFlat" tabindex="0" role="region" aria-label="Cookie banner">
<div role="dialog" aria-label="Privacy" aria-describedby="onetrust-policy-text"><div class="ot-sdk-container">
<div class="ot-sdk-row"><div id="onetrust-group-container" class="ot-sdk-eight ot-sdk-columns">
<div id="onetrust-policy"><div id="onetrust-policy-text">We and our partners store information on your device;
this is the banner text from OneTrust. <a class="ot-cookie-policy-link" href="/privacy">Privacy notice</a></div>
</div></div><div id="onetrust-button-group-parent" class="ot-sdk-three ot-sdk-columns"><div id="onetrust-button-group">
<button id="onetrust-pc-btn-handler">Cookie settings</button><button id="onetrust-accept-btn-handler">Accept all
</button></div></div></div></div></div></div></div>"""

COOKIEBOT = """<div id="CybotCookiebotDialog" name="CybotCookiebotDialog" role="dialog" aria-modal="true"
aria-labelledby="CybotCookiebotDialogBodyContentTitle" tabindex="-1" lang="en"
class="CybotEdge CybotCookiebotDialogActive">
<div class="CybotCookiebotDialogContentWrapper"><div id="CybotCookiebotDialogHeader"></div>
<div id="CybotCookiebotDialogBody"><div id="CybotCookiebotDialogBodyContent">
<h2 id="CybotCookiebotDialogBodyContentTitle" lang="en">This website uses cookies</h2>
<div id="CybotCookiebotDialogBodyContentText" lang="en">We use cookies to personalise content and ads; this is the
banner text from Cookiebot.</div></div></div><div id="CybotCookiebotDialogFooter">
<button id="CybotCookiebotDialogBodyButtonDecline">Deny</button>
<button id="CybotCookiebotDialogBodyLevelButtonLevelOptinAllowAll">Allow all</button></div></div></div>"""

DIDOMI = """<div id="didomi-host" data-nosnippet="true" aria-hidden="false"><div class="didomi-popup-backdrop
didomi-notice-popup didomi-popup__backdrop"><div class="didomi-popup-container didomi-popup-notice">
<div id="didomi-popup" class="didomi-popup-notice-text-container" role="dialog" aria-labelledby="didomi-notice-title"
aria-describedby="didomi-notice-description"><h1 id="didomi-notice-title">Your privacy</h1>
<div id="didomi-notice-description" class="didomi-popup-notice-text">We and our partners use cookies; this is the
banner text from Didomi.</div><button id="didomi-notice-agree-button" class="didomi-button">Agree and close</button>
</div></div></div></div>"""

QUANTCAST = """<div id="qc-cmp2-container" data-nosnippet=""><div class="qc-cmp2-container" id="qc-cmp2-main"
data-nosnippet=""><div class="qc-cmp-cleanslate css-1ay9vb9"><div role="dialog" aria-modal="true"
class="css-1n9ulpb"><div class="qc-cmp2-summary-section"><h2 class="css-1ng2n5r">We value your privacy</h2>
<div class="qc-cmp2-summary-info"><p>We and our partners store and access information on a device; this is the
banner text from Quantcast.</p></div></div><div class="qc-cmp2-summary-buttons"><button mode="secondary"
size="large" class=" css-47sehv">MORE OPTIONS</button><button mode="primary" size="large" class=" css-47sehv">AGREE
</button></div></div></div></div></div>"""

OSANO = """<div class="osano-cm-window" dir="ltr"><div class="osano-cm-dialog osano-cm-dialog--position_bottom
osano-cm-dialog--type_bar osano-cm-dialog--theme_blue" role="dialog" aria-label="Cookie Consent Banner"
aria-live="polite"><div class="osano-cm-content"><span class="osano-cm-message">This website stores data such as
cookies; this is the banner text from Osano.</span></div><button class="osano-cm-accept-all osano-cm-button">
Accept All</button></div></div>"""

COOKIECONSENT_JS = """<div role="dialog" aria-live="polite" aria-label="cookieconsent"
aria-describedby="cookieconsent:desc" class="cc-window cc-banner cc-type-info cc-theme-block cc-bottom">
<span id="cookieconsent:desc" class="cc-message">This website uses cookies to ensure you get the best experience;
this is the banner text from cookieconsent.js. <a aria-label="learn more about cookies" role="button" tabindex="0"
class="cc-link" href="https://cookiesandyou.com" rel="noopener noreferrer nofollow" target="_blank">Learn more</a>
</span><div class="cc-compliance"><a aria-label="dismiss cookie message" role="button" tabindex="0"
class="cc-btn cc-dismiss">Got it!</a></div></div>"""

COOKIEYES = """<div class="cky-consent-container cky-banner-bottom" tabindex="0" aria-label="We value your privacy"
role="region"><div class="cky-consent-bar" data-cky-tag="notice"><div class="cky-notice">
<p class="cky-title" role="heading" aria-level="1" data-cky-tag="title">We value your privacy</p>
<div class="cky-notice-group"><div class="cky-notice-des" data-cky-tag="description"><p>We use cookies to enhance
your browsing experience; this is the banner text from CookieYes.</p></div><div class="cky-notice-btn-wrapper"
data-cky-tag="notice-buttons"><button class="cky-btn cky-btn-accept" aria-label="Accept All"
data-cky-tag="accept-button">Accept All</button></div></div></div></div></div>"""

COMPLIANZ = """<div id="cmplz-cookiebanner-container"><div class="cmplz-cookiebanner cmplz-hidden banner-1
bottom-right-view-preferences optin cmplz-bottom-right cmplz-categories-type-view-preferences" aria-modal="true"
data-nosnippet="true" role="dialog" aria-live="polite" aria-labelledby="cmplz-header-1-optin"
aria-describedby="cmplz-message-1-optin"><div class="cmplz-header"><div class="cmplz-title"
id="cmplz-header-1-optin">Manage Cookie Consent</div></div><div class="cmplz-body"><div class="cmplz-message"
id="cmplz-message-1-optin">To provide the best experiences, we use technologies like cookies; this is the banner
text from Complianz.</div></div><div class="cmplz-buttons"><button class="cmplz-btn cmplz-accept">Accept</button>
</div></div></div>"""

IUBENDA = """<div id="iubenda-cs-banner" class="iubenda-cs-default iubenda-cs-bottom iubenda-cs-visible"
role="alertdialog" aria-labelledby="iubenda-cs-title" aria-describedby="iubenda-cs-paragraph">
<div class="iubenda-cs-container"><div class="iubenda-cs-content"><div class="iubenda-cs-rationale">
<div id="iubenda-cs-title">Notice</div><div id="iubenda-cs-paragraph"><p class="iub-p">We and selected third
parties use cookies or similar technologies; this is the banner text from iubenda.</p></div></div>
<div class="iubenda-cs-opt-group"><button class="iubenda-cs-accept-btn iubenda-cs-btn-primary">Accept</button>
</div></div></div></div>"""

KLARO = """<div id="klaro"><div class="klaro"><div class="cookie-notice" role="dialog"
aria-describedby="id-cookie-notice" aria-labelledby="id-cookie-title"><div class="cn-body">
<h2 id="id-cookie-title">Cookie Consent</h2><p id="id-cookie-notice">Hi! Could we please enable some additional
services for analytics? This is the banner text from Klaro.</p><div class="cn-ok"><button class="cm-btn
cm-btn-success" type="button">That's ok</button></div></div></div></div></div>"""

TRUSTARC = """<div id="truste-consent-track" style="display: block;"><div id="truste-consent-content">
<div id="truste-consent-text">We use cookies and other tracking technologies to improve your browsing experience;
this is the banner text from TrustArc.</div><div id="truste-consent-buttons"><button id="truste-consent-button"
class="truste-button1">Accept All Cookies</button></div></div></div>"""

TERMLY = """<div id="termly-code-snippet-support"><div class="termly-styles-module-root-f61419
termly-styles-root-b2eb49" data-tid="banner"><div aria-label="Cookie Consent Prompt" role="dialog"
class="termly-styles-main-bd1a1a termly-styles-bottom-dd5ecd"><div class="termly-styles-content-a9cc3b">
<p class="termly-styles-message-e8ac4b">This website uses cookies; this is the banner text from Termly.</p></div>
<button class="termly-styles-button-d6f8d0" data-tid="banner-accept">Accept</button></div></div></div>"""

WP_COOKIE_NOTICE = """<div id="cookie-notice" role="dialog" class="cookie-revoke-hidden cn-position-bottom
cn-effect-fade cookie-notice-visible" aria-label="Cookie Notice" style="background-color: rgba(50,50,58,1);">
<div class="cookie-notice-container" style="color: #fff"><span id="cn-notice-text" class="cn-text-container">We use
cookies to ensure that we give you the best experience; this is the banner text from Cookie Notice.</span>
<span id="cn-notice-buttons" class="cn-buttons-container"><a href="#" id="cn-accept-cookie" data-cookie-set="accept"
class="cn-set-cookie cn-button" aria-label="Ok">Ok</a></span></div></div>"""

PINNED_GDPR_STRIP = """<div class="gdpr-strip" style="position: fixed; bottom: 0; left: 0; right: 0; z-index: 9999">
<p>By continuing you agree to our use of tracking; this is the banner text from a hand-written GDPR strip.</p>
<button onclick="this.parentNode.remove()">OK</button></div>"""

NATIVE_DIALOG = """<dialog open id="consent-choices" aria-labelledby="consent-choices-title">
<h2 id="consent-choices-title">Your choices</h2><p>Optional analytics help us improve the site; this is the banner
text from a native dialog.</p><form method="dialog"><button value="accept">Accept</button>
<button value="reject">Reject</button></form></dialog>"""

HAND_ROLLED_MESSAGE = """<div class="cookieMessage" id="cookieMessage"><p>Like most sites we use cookies; this is
the banner text from a hand-rolled message.</p><a href="#" class="cookieMessage__close">Close</a></div>"""

BANNERS = {
    "onetrust": ONETRUST,
    "cookiebot": COOKIEBOT,
    "didomi": DIDOMI,
    "quantcast": QUANTCAST,
    "osano": OSANO,
    "cookieconsent.js": COOKIECONSENT_JS,
    "cookieyes": COOKIEYES,
    "complianz": COMPLIANZ,
    "iubenda": IUBENDA,
    "klaro": KLARO,
    "trustarc": TRUSTARC,
    "termly": TERMLY,
    "wp-cookie-notice": WP_COOKIE_NOTICE,
    "pinned-gdpr-strip": PINNED_GDPR_STRIP,
    "native-dialog": NATIVE_DIALOG,
    "hand-rolled-message": HAND_ROLLED_MESSAGE,
}


def words(text: str) -> str:
    """Text with Markdown emphasis and all whitespace runs flattened, for comparing prose."""
    return " ".join(re.sub(r"[*_`]", "", text).split())


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], tuple[str, str]]:
    """html_to_markdown → (Markdown, the path it took): the markdownify fallback or trafilatura alone."""
    calls: list[Any] = []
    original = html_module._markdownify

    def observed(tree: Any) -> str:
        calls.append(tree)
        return original(tree)

    monkeypatch.setattr(html_module, "_markdownify", observed)

    def run(html: str) -> tuple[str, str]:
        calls.clear()
        markdown = html_to_markdown(html, "https://allotments.example/news/post").markdown
        return markdown, "markdownify" if calls else "trafilatura"

    return run


@pytest.mark.parametrize("vendor", list(BANNERS))
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("banner_first", [False, True], ids=["banner-last", "banner-first"])
@pytest.mark.parametrize("path", ["trafilatura", "markdownify"])
def test_consent_banner_is_dropped_and_the_article_kept(
    converted: Callable[[str], tuple[str, str]], vendor: str, layout: str, banner_first: bool, path: str
) -> None:
    """Long articles go through trafilatura, short ones (under its minimum length) through markdownify."""
    article = LONG_ARTICLE if path == "trafilatura" else SHORT_ARTICLE
    markdown, taken = converted(page(article, BANNERS[vendor], layout, banner_first))
    assert BANNER_GONE not in words(markdown)
    for text in article:
        assert words(text) in words(markdown)
    assert taken == path


BAKING = {
    "trafilatura": [
        "Brown butter chocolate chip cookies",
        "These cookies start with butter browned until it smells of toffee, which gives the dough a deeper "
        "flavour than creaming soft butter ever does. Let it cool before you add the sugar.",
        "Rest the dough in the fridge overnight. The flour hydrates, the cookies spread less in the oven, and the "
        "edges turn crisp while the middles stay soft and chewy.",
        "Bake at 180 degrees for eleven minutes and let the tray stand for five more; the cookies keep baking on "
        "the hot metal, so take them out while they still look a little underdone.",
    ],
    "markdownify": ["Oat cookies", "Rest the dough overnight.", "Bake for eleven minutes.", "They keep a week."],
}
GDPR = {
    "trafilatura": [
        "GDPR compliance checklist",
        "Before you collect a single email address, write down why you need it, how long you will keep it and "
        "who inside the organisation may read it. The regulation calls this purpose limitation.",
        "Consent must be freely given, specific and informed: a pre-ticked box is not consent, and neither is "
        "silence. Keep a record of when and how each person agreed.",
        "Give people a way to withdraw consent that is as easy as the way they gave it, and answer access "
        "requests within one month.",
    ],
    "markdownify": ["GDPR checklist", "Say why you collect data.", "Record each consent.", "Answer within a month."],
}
RECIPE_CARD = '<div class="recipe-card cookiecutter-recipe" id="cookie-recipe-812" data-recipe="cookies"><p>{}</p>'
CONTENT_PAGES = {  # case → (article, body class, layout with {t}itle and {c}ontent): names cookies/consent, no banner
    "wordpress-cookie-category": (
        BAKING,
        "single-post category-cookies cookies-not-set",
        '<main><article id="post-8" class="post type-post category-cookies tag-cookie-recipes">{t}{c}</article></main>',
    ),
    "cookie-named-blocks": (BAKING, "", '<div>{t}<div class="cookie-tips">{c}</div></div>'),
    "wrapper-named-after-the-notice": (BAKING, "", '<div class="site has-cookie-notice">{t}{c}</div>'),
    "consent-form-guide": (GDPR, "", '<main class="consent-form-guide" id="gdpr-guide">{t}{c}</main>'),
    "consent-named-sections": (GDPR, "", '<article>{t}<section class="consent-records">{c}</section></article>'),
    "labelled-region": (GDPR, "", '<div>{t}<section role="region" aria-label="Consent records">{c}</section></div>'),
}


@pytest.mark.parametrize("case", list(CONTENT_PAGES))
@pytest.mark.parametrize("path", ["trafilatura", "markdownify"])
def test_content_that_names_cookies_or_consent_keeps_its_text(
    converted: Callable[[str], tuple[str, str]], case: str, path: str
) -> None:
    """Baking cookies, a GDPR guide: named in body, article, section and block classes, ids and data attributes
    (the cookie recipe card sits in the last paragraph's place), none of it a banner."""
    articles, body_class, layout = CONTENT_PAGES[case]
    title, *paragraphs = articles[path]
    blocks = "".join(f"<p>{text}</p>" for text in paragraphs[:-1]) + RECIPE_CARD.format(paragraphs[-1]) + "</div>"
    body = layout.format(t=f"<h1>{title}</h1>", c=blocks)
    html = f'<!doctype html><html><head><title>{title}</title></head><body class="{body_class}">{body}</body></html>'
    markdown, taken = converted(html)
    for text in articles[path]:
        assert words(text) in words(markdown)
    assert taken == path
