"""MkDocs hooks for the docs build: keep every page free of external assets.

nbconvert's page template (used by mkdocs-jupyter for the notebooks) adds a MathJax loader
(``<script src="">`` when no URL is configured, otherwise a CDN) and a module script that
imports mermaid from a CDN when a page has diagrams. The notebooks use neither maths nor
diagrams, so both are removed. Every page is then checked: a ``<script src>``,
``<link href>`` or ``import()`` of an absolute URL is logged as a warning, which fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

log = logging.getLogger("mkdocs.hooks.scalelaw_docs")

MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)
MERMAID = re.compile(r"<script type=\"module\">(?:(?!</script>).)*?mermaid(?:(?!</script>).)*"
                     r"</script>", re.S)
EXTERNAL = re.compile(
    r"<script[^>]*\bsrc=\"(?:https?:)?//[^\"]*\"|<link[^>]*\bhref=\"(?:https?:)?//[^\"]*\""
    r"|\bimport\(\s*[\"'](?:https?:)?//[^\"']*[\"']|@import\s+url\(\s*[\"']?(?:https?:)?//")


def on_post_page(output: str, *, page: Any, config: Any) -> str:
    if page.file.src_uri.endswith(".ipynb"):
        output = MATHJAX.sub("", output)
        output = MERMAID.sub("", output)
    for match in EXTERNAL.finditer(output):
        log.warning("%s: loads an external asset: %s", page.file.src_uri, match.group(0)[:120])
    return output
