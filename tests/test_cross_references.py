"""Every cross-reference points at something that exists.

Checked in the README, docs/*.md and benchmarks/RESULTS.md, in the comments of conf/**/*.yml and in the
code (src/, benchmarks/): a section named in quotes after its document (`README "Scaling out"`, `see
README, "Evaluation protocol"`, `docs/protocol.md, "Data contracts"`, `RESULTS.md, "CIFAR-10 quality"`)
must be one of that document's headings (a heading's trailing "(...)" may be left out); a markdown link
must reach a file, and its `#anchor` a heading of it; a project path (`benchmarks/RESULTS.md`,
`src/selfsup/probe.py`, in backticks or not) must be a file. Run outputs under data/ are not checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

DOCUMENTS = sorted(
    [PROJECT_ROOT / "README.md", PROJECT_ROOT / "benchmarks" / "RESULTS.md", *(PROJECT_ROOT / "docs").glob("*.md")]
)
CONFIGURATION = sorted((PROJECT_ROOT / "conf").rglob("*.yml"))
CODE = sorted([*(PROJECT_ROOT / "src").rglob("*.py"), *(PROJECT_ROOT / "benchmarks").glob("*.py")])
NAMED_DOCUMENTS = {
    "README": "README.md",
    "README.md": "README.md",
    "docs/protocol.md": "docs/protocol.md",
    "protocol.md": "docs/protocol.md",
    "RESULTS.md": "benchmarks/RESULTS.md",
    "benchmarks/RESULTS.md": "benchmarks/RESULTS.md",
}
# README "X", README, "X", [benchmarks/RESULTS.md](benchmarks/RESULTS.md), "X": the document, then a quoted name.
SECTION_REFERENCE = re.compile(
    r"(?<![\w/])(README\.md|README|docs/protocol\.md|protocol\.md|benchmarks/RESULTS\.md|RESULTS\.md)"
    r"(?:\]\([^)\s]*\))?,?\s+\"([^\"\n]{1,100}(?:\n[^\"\n]{1,100})?)\""
)
LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
PROJECT_PATH = re.compile(r"(?<![\w/.<{*-])((?:src|tests|benchmarks|docs|conf|notebooks)/[\w./-]*\w\.\w+)")
BACKTICKED_FILE = re.compile(r"`([\w.-]+/[\w./-]*\.(?:py|md|yml|yaml|png|ipynb|toml|jsonl))`")


def headings(document: Path) -> list[str]:
    """The markdown headings of ``document``, outside fenced code blocks."""
    found, fenced = [], False
    for line in document.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.append(line.lstrip("#").strip())
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def names_a_heading(name: str, document: Path) -> bool:
    titles = headings(document)
    return name in titles or name in {re.sub(r"\s+\([^()]*\)$", "", title) for title in titles}


def comments(configuration: Path) -> str:
    """The comment text of a YAML file, one line per comment."""
    return "\n".join(line.split("#", 1)[1] for line in configuration.read_text().splitlines() if "#" in line)


def broken_references(text: str, source: Path, check_links: bool) -> list[str]:
    """Each reference in ``text`` (found in ``source``) that points at nothing."""
    broken = []
    for document, name in SECTION_REFERENCE.findall(text):
        name = " ".join(name.split())
        if not names_a_heading(name, PROJECT_ROOT / NAMED_DOCUMENTS[document]):
            broken.append(f'{document} "{name}": no such heading')
    for path in {*PROJECT_PATH.findall(text), *BACKTICKED_FILE.findall(text)}:
        if not _is_output_or_placeholder(path) and not (PROJECT_ROOT / path).is_file():
            broken.append(f"{path}: no such file")
    if check_links:
        for target in LINK.findall(text):
            if not target.startswith(("http://", "https://", "mailto:")):
                broken.extend(_broken_link(target, source))
    return broken


def _is_output_or_placeholder(path: str) -> bool:
    """A run's output (under data/) or a pattern with a placeholder in capitals (conf/NAME/globals.yml)."""
    return path.startswith("data/") or any(re.fullmatch(r"[A-Z_]+", part) for part in path.split("/"))


def _broken_link(target: str, source: Path) -> list[str]:
    path, _, fragment = target.partition("#")
    linked = (source.parent / path).resolve() if path else source
    if not linked.exists():
        return [f"({target}): no such file"]
    if fragment and fragment not in {anchor(heading) for heading in headings(linked)}:
        return [f"({target}): no such heading in {linked.name}"]
    return []


def _relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


@pytest.mark.parametrize("document", DOCUMENTS, ids=_relative)
def test_every_reference_in_the_documentation_resolves(document):
    assert broken_references(document.read_text(encoding="utf-8"), document, check_links=True) == []


@pytest.mark.parametrize("configuration", CONFIGURATION, ids=_relative)
def test_every_reference_in_the_configuration_comments_resolves(configuration):
    assert broken_references(comments(configuration), configuration, check_links=False) == []


def test_every_reference_in_the_code_resolves():
    broken = {
        _relative(module): found
        for module in CODE
        if (found := broken_references(module.read_text(encoding="utf-8"), module, check_links=False))
    }
    assert broken == {}


def test_the_checks_catch_what_they_are_for():
    readme = PROJECT_ROOT / "README.md"
    text = 'see README "Speed"; [x](#nowhere); `benchmarks/absent.py`; docs/missing.png; [y](docs/none.md)'
    assert sorted(broken_references(text, readme, check_links=True)) == [
        "(#nowhere): no such heading in README.md",
        "(docs/none.md): no such file",
        'README "Speed": no such heading',
        "benchmarks/absent.py: no such file",
        "docs/missing.png: no such file",
        "docs/none.md: no such file",
    ]
    fine = 'README, "Evaluation protocol"; [z](#the-report); `src/selfsup/probe.py`; conf/NAME/globals.yml'
    assert broken_references(f"{fine}; `data/08_reporting/metrics.json`", readme, check_links=True) == []
