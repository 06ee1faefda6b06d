"""The README and docs/ link only to files and sections that exist, and the README stays short."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "integrations" / "nextjs" / "README.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CITED_REPORT = re.compile(r"(?<![\w./-])(?:[\w.-]+/)*(?:docs|reports)/[\w./-]+\.json\b")
"""A report named by its path from the repository root, as a command's `--json` writes it."""


def anchors(markdown: Path) -> set[str]:
    """GitHub's anchors for a Markdown file's headings: lower case, punctuation dropped, spaces as hyphens."""
    found = set()
    for line in markdown.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(REPO)) for d in DOCUMENTS])
def test_every_relative_link_resolves(document):
    broken = []
    for target in LINK.findall(document.read_text()):
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(target)
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(target)
    assert broken == []


def test_every_report_the_docs_cite_is_committed():
    """A figure's evidence is in every clone: each report named in the README or docs/ (such as
    `--json docs/operations/soak-300.json`, from the repository root or from the document's folder)
    exists and is not git-ignored."""
    cited = {}
    for document in DOCUMENTS:
        for path in CITED_REPORT.findall(document.read_text()):
            candidates = [REPO / path, document.parent / path]
            cited[path] = next((candidate.resolve() for candidate in candidates if candidate.is_file()), None)
    assert "docs/operations/soak-300.json" in cited
    missing = sorted(path for path, found in cited.items() if found is None)
    found = [str(found.relative_to(REPO)) for found in cited.values() if found is not None]
    ignored = subprocess.run(["git", "check-ignore", *found], cwd=REPO, capture_output=True, text=True, check=False).stdout.split()
    assert (missing, ignored) == ([], [])


def test_readme_stays_short():
    """The README is for callers and deployers; design and measurements go in docs/."""
    assert len((REPO / "README.md").read_bytes()) <= 12_000
