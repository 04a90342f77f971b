"""Every relative link in README.md, CHANGELOG.md and docs/*.md leads somewhere: the file exists
and, when the link names a heading (`file.md#anchor` or `#anchor`), that heading exists, with
the anchor spelled as GitHub makes it. The README is the front door and the docs were split out
of it, so a moved section must not leave a dead link behind. Code comments and docs cite only
files inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md")])

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    seen: dict[str, int] = {}
    found = set()
    for line in text.splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if not match:
            continue
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code is not a link
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


def test_the_checker_sees_links_and_headings() -> None:
    readme = ROOT / "README.md"
    assert "docs/operations.md" in links(readme)
    assert "quick-start" in anchors(readme)
    assert slug("Adopting what Zendesk already has: `init --adopt`") == (
        "adopting-what-zendesk-already-has-init---adopt"
    )


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.relative_to(ROOT)}")
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


def test_nothing_cites_files_outside_the_repository() -> None:
    outside = re.compile(r"DESIGN\.md|\breference/[\w-]+\.md|\.\./shared")
    hits = []
    for folder in ("snapzen", "tests", "bench", "docs", "config"):
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in {".py", ".md", ".toml"} or path == Path(__file__):
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if outside.search(line):
                    hits.append(f"{path.relative_to(ROOT)}:{number}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    if outside.search(readme):
        hits.append("README.md")
    assert not hits, "cite the repository's own docs instead: " + ", ".join(hits)


def test_readme_stays_the_front_door() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8")) < 15_000
