"""Every relative link in the README, docs/ and bench/README.md leads somewhere.

A link `[text](path)` must name a file or directory that exists, inside the
repository; `[text](path#anchor)` and `[text](#anchor)` must also name a
heading of that markdown file, by the slug GitHub gives it. Links with a
scheme (https:, mailto:) are not checked, nor anything inside code (fenced
blocks and `inline code`), since sample output is not navigation.

Moving or renaming a file, or rewording a heading, that a page links to fails
this test with the list of links to fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](destination "optional title"); the text may hold one level of brackets.
INLINE_LINK = re.compile(
    r"!?\[(?P<text>(?:[^\[\]]|\[[^\]]*\])*)\]"
    r"\(\s*(?P<dest><[^>]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)"
)
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[(?P<text>[^\]]+)\]:\s*(?P<dest><[^>]*>|\S+)")
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:name|id)=[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    text: str
    dest: str

    def describe(self, root: Path) -> str:
        return f"{self.source.relative_to(root)}:{self.line}: [{self.text}]({self.dest})"


def doc_files(root: Path) -> list[Path]:
    """The markdown pages whose links are checked."""
    files = [root / "README.md", root / "bench" / "README.md"]
    files += sorted((root / "docs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def _prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield number, line
        elif (
            match
            and match.group(1)[0] == fence[0]
            and len(match.group(1)) >= len(fence)
            and not line.strip().strip(fence[0])
        ):
            fence = None


def _strip_code_spans(line: str) -> str:
    return CODE_SPAN.sub(" ", line)


def links_in(path: Path) -> list[Link]:
    found: list[Link] = []
    for number, line in _prose_lines(path.read_text(encoding="utf-8")):
        prose = _strip_code_spans(line)
        for match in INLINE_LINK.finditer(prose):
            found.append(Link(path, number, match["text"], match["dest"].strip("<>")))
        definition = REFERENCE_DEFINITION.match(prose)
        if definition:
            found.append(Link(path, number, definition["text"], definition["dest"].strip("<>")))
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its rendered text, lower case, with
    punctuation dropped and each space turned into a hyphen."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)  # _emphasis_, not snake_case
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _headings(lines: Iterable[tuple[int, str]]) -> Iterator[str]:
    previous = ""
    for _, line in lines:
        atx = ATX_HEADING.match(line)
        if atx:
            yield atx.group(2) or ""
            previous = ""
            continue
        if (
            SETEXT_UNDERLINE.match(line)
            and previous.strip()
            and not re.match(r"^ {0,3}([-*+>|#]|\d+[.)])", previous)
        ):
            yield previous.strip()
            previous = ""
            continue
        previous = line


def anchors_of(path: Path) -> set[str]:
    """Every `#anchor` a link into this markdown file may use."""
    text = path.read_text(encoding="utf-8")
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _headings(_prose_lines(text)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    anchors.update(a.lower() for a in HTML_ANCHOR.findall(text))
    return anchors


def problem(link: Link, root: Path) -> str | None:
    """Why `link` is broken, or None when it leads somewhere."""
    dest = link.dest
    if SCHEME.match(dest) or dest.startswith("//"):
        return None  # https:, mailto: and the like are not ours to check
    target_part, _, anchor = dest.partition("#")
    target_part = unquote(target_part.split("?", 1)[0])
    if not target_part:
        target = link.source
    elif target_part.startswith("/"):
        target = root / target_part.lstrip("/")
    else:
        target = link.source.parent / target_part
    target = target.resolve()
    if not target.is_relative_to(root.resolve()):
        return "points outside the repository"
    if not target.exists():
        return f"no such file: {target.relative_to(root.resolve())}"
    is_page = target.is_file() and target.suffix.lower() == ".md"
    if anchor and is_page and unquote(anchor).lower() not in anchors_of(target):
        return f"no heading #{anchor} in {target.relative_to(root.resolve())}"
    return None


def broken_links(root: Path) -> list[str]:
    broken: list[str] = []
    for page in doc_files(root):
        for link in links_in(page):
            reason = problem(link, root)
            if reason:
                broken.append(f"{link.describe(root)}: {reason}")
    return broken


# --------------------------------------------------------------- the repository


def test_the_documentation_exists() -> None:
    pages = doc_files(ROOT)
    assert ROOT / "README.md" in pages
    assert any(p.parent == ROOT / "docs" for p in pages), "docs/ has no markdown page"


def test_every_relative_link_leads_to_an_existing_file_and_heading() -> None:
    broken = broken_links(ROOT)
    assert not broken, f"{len(broken)} broken link(s):\n" + "\n".join(broken)


def test_the_docs_index_links_every_page_in_docs() -> None:
    index = ROOT / "docs" / "README.md"
    linked = {
        (index.parent / unquote(link.dest.partition("#")[0])).resolve()
        for link in links_in(index)
        if not SCHEME.match(link.dest)
    }
    missing = [
        str(page.relative_to(ROOT))
        for page in sorted((ROOT / "docs").rglob("*.md"))
        if page != index and page.resolve() not in linked
    ]
    assert not missing, "docs/README.md does not link: " + ", ".join(missing)


# --------------------------------------------------------------- the checker itself


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "README.md").write_text("# Benchmarks\n")
    (tmp_path / "docs" / "page.md").write_text(
        "# The `page`: a title\n\n## Step one\n\n## Step one\n\nSetext\n------\n"
        '<a name="custom-spot"></a>\n'
    )
    return tmp_path


def _readme(repo: Path, body: str) -> list[str]:
    (repo / "README.md").write_text(body)
    return broken_links(repo)


def test_good_links_pass(repo: Path) -> None:
    body = (
        "# Top\n\n"
        "[page](docs/page.md) [title](docs/page.md#the-page-a-title) "
        "[twice](docs/page.md#step-one-1) [setext](docs/page.md#setext) "
        "[html](docs/page.md#custom-spot) [dir](docs) [here](#top) "
        "[bench](bench/README.md) [web](https://example.com/x.md) [mail](mailto:a@b.c)\n\n"
        "[ref]: docs/page.md#step-one\n"
    )
    assert _readme(repo, body) == []


def test_a_missing_file_is_reported_with_its_line(repo: Path) -> None:
    broken = _readme(repo, "# Top\n\nsee [gone](docs/gone.md)\n")
    assert broken == ["README.md:3: [gone](docs/gone.md): no such file: docs/gone.md"]


def test_a_missing_heading_is_reported(repo: Path) -> None:
    broken = _readme(repo, "[x](docs/page.md#step-two) [y](#nowhere)\n")
    assert broken == [
        "README.md:1: [x](docs/page.md#step-two): no heading #step-two in docs/page.md",
        "README.md:1: [y](#nowhere): no heading #nowhere in README.md",
    ]


def test_links_from_docs_resolve_from_their_own_directory(repo: Path) -> None:
    other = repo / "docs" / "other.md"
    other.write_text("[ok](page.md) [bad](docs/page.md) [up](../README.md)\n")
    broken = _readme(repo, "# Top\n")
    assert broken == [
        "docs/other.md:1: [bad](docs/page.md): no such file: docs/docs/page.md",
    ]


def test_code_is_not_checked_and_leaving_the_repository_is(repo: Path) -> None:
    body = "```\n[sample](nowhere.md)\n```\n\n`[inline](nowhere.md)`\n\n[out](../../etc/passwd)\n"
    assert _readme(repo, body) == [
        "README.md:7: [out](../../etc/passwd): points outside the repository",
    ]


def test_github_slugs() -> None:
    assert github_slug("Pointing Stripe and Adyen at Steward") == (
        "pointing-stripe-and-adyen-at-steward"
    )
    assert github_slug("Order review, work queue, audit") == "order-review-work-queue-audit"
    assert github_slug("The `steward` CLI: [docs](x.md)") == "the-steward-cli-docs"
    assert github_slug("Returns — refunds") == "returns--refunds"
    assert github_slug("refund_frozen state") == "refund_frozen-state"
