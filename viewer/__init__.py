"""The viewer: a cited passage shown in its document, at its place, with the words that back the answer marked.

`service.SourceViewer` resolves a recorded source id (and chunk id) to a `View`; `pages` draws PDF pages and
images, `documents` the text types, `locate` finds a passage in a document's text, `html` renders text safely,
`address` makes and reads the stable addresses `/source/<knowledge base>/<source id>?chunk=<chunk id>`.
"""
