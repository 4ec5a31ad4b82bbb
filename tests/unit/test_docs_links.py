"""Every relative link in README.md and docs/*.md leads somewhere: the file exists and, with an
anchor, a heading of that file makes that anchor the way GitHub does."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the text as rendered (links and emphasis reduced to
    their text, code to its content), lower-cased, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = text.replace("`", "")
    text = re.sub(r"(\*+|(?<!\w)_+|_+(?!\w))", "", text)  # emphasis markers, not snake_case
    text = text.strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    """The anchors of a markdown file's headings, with GitHub's -1, -2 for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", document.read_text())):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(document: Path) -> list[str]:
    """The targets of the document's links that stay in this repository, outside code."""
    text = INLINE_CODE.sub("", FENCE.sub("", document.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_slugs_follow_githubs_rules():
    assert github_slug("What is uploaded, and how a release is named") == (
        "what-is-uploaded-and-how-a-release-is-named"
    )
    assert github_slug("The `database` section") == "the-database-section"
    assert github_slug("Rollback / roll **forward**") == "rollback--roll-forward"
    assert github_slug("keep_releases and [docs](docs/x.md)") == "keep_releases-and-docs"


def test_a_missing_file_or_heading_is_found(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n## Health check\n\n## Health check\n\n```\n# not a heading\n```\n")
    assert anchors(doc) == {"title", "health-check", "health-check-1"}
    doc.write_text("[a](other.md) [b](#nope) `[c](code.md)` [d](https://example.com/x.md)\n")
    assert relative_links(doc) == ["other.md", "#nope"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(document: Path):
    broken = []
    for target in relative_links(document):
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no file {os.path.relpath(linked, REPO_ROOT)}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading in {linked.name} makes #{anchor}")
    assert not broken, f"{document.relative_to(REPO_ROOT)}: broken links:\n" + "\n".join(broken)
