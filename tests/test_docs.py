"""The docs tell one story: a short README, links that resolve, and every quoted figure found where it is measured."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "benchmarks").glob("*.md"))]

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
BENCHMARK_LINK = re.compile(r"\]\((benchmarks/[^)#\s]+\.md)")
# A measured figure: a number with a unit, or a ratio written with x (0.50x, 397x). "32 x 64" is a shape, not a ratio.
NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?"
UNIT = r"(?:[x×%](?!\w)|\s?(?:ms|us|µs|s|min|minutes|MB|KB|B|bits|tokens)\b)"
FIGURE = re.compile(rf"(?<![\w.]){NUMBER}{UNIT}")
ISSUE_LABEL = re.compile(r"\bissues? #?\d+", re.IGNORECASE)


def relative_link_problems(page: Path) -> list[str]:
    """Each relative link of `page` that names no file of the repository."""
    problems = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        if not path.is_relative_to(ROOT):
            problems.append(f"{page.relative_to(ROOT)}: {target} is outside the repository")
        elif not path.exists():
            problems.append(f"{page.relative_to(ROOT)}: {target} does not exist")
    return problems


def figures(text: str) -> list[str]:
    return [" ".join(found.split()) for found in FIGURE.findall(text)]


def appears_in(figure: str, text: str) -> bool:
    """Whether `figure` is written in `text` as a whole number (0.5x is not found inside 10.5x), spacing aside."""
    spaced = r"\s*".join(re.escape(part) for part in figure.split())
    return re.search(rf"(?<![\d.,]){spaced}(?![\d])", text) is not None


def unquoted_figures(readme_text: str) -> list[str]:
    """Each figure of a README table row that its linked benchmarks page does not hold verbatim."""
    problems = []
    for row in readme_text.splitlines():
        if not row.startswith("|") or not (link := BENCHMARK_LINK.search(row)):
            continue
        page = ROOT / link.group(1)
        text = page.read_text(encoding="utf-8") if page.exists() else ""
        cells = LINK.sub("", row)  # a link's own text is a name, not a figure
        problems += [f"{figure} ({link.group(1)})" for figure in figures(cells) if not appears_in(figure, text)]
    return problems


def test_the_readme_is_a_front_door_of_at_most_150_lines():
    lines = len(README.read_text(encoding="utf-8").splitlines())
    assert lines <= 150, f"README.md has {lines} lines: move details to docs/ or benchmarks/"


def test_every_relative_link_points_at_a_file_of_the_repository():
    problems = [problem for page in PAGES for problem in relative_link_problems(page)]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_figure_of_the_readme_ratio_table_is_in_the_page_its_row_links():
    text = README.read_text(encoding="utf-8")
    assert len([row for row in text.splitlines() if row.startswith("|") and BENCHMARK_LINK.search(row)]) >= 10, \
        "README.md lost its table of ratios linking benchmarks/*.md"
    problems = unquoted_figures(text)
    assert not problems, "README figures not found in the benchmarks page their row links:\n" + "\n".join(problems)


def test_no_issue_labels_in_the_readme_docs_or_benchmarks():
    files = PAGES + sorted((ROOT / "benchmarks").glob("*.py"))
    found = [f"{path.relative_to(ROOT)}: {match.group(0)}" for path in files
             for match in ISSUE_LABEL.finditer(path.read_text(encoding="utf-8"))]
    assert not found, "issue labels are history, not documentation:\n" + "\n".join(found)


def test_a_figure_is_a_number_with_a_unit_or_a_ratio():
    assert figures("| 0.50x | 4.6 us | 98.61% | 1,024 | 32 x 64 | 102.5x | 0.376 tokens | -0.06 s |") == \
        ["0.50x", "4.6 us", "98.61%", "102.5x", "0.376 tokens", "-0.06 s"]
    assert appears_in("0.5x", "at most 0.5x")
    assert not appears_in("0.5x", "measured 10.5x")
    assert not appears_in("1.0x", "1.05x")
