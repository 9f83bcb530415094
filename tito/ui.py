"""Console output shared by every command."""
from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def table(title: str, columns: list[str], rows: list[list[str]], whole: tuple[str, ...] = ()) -> Table:
    """A table for a terminal 80 columns wide. Columns named in `whole` (names, ids, numbers, dates) never wrap,
    so a name is never split; the others wrap between words, and a word wider than its column (a long path)
    folds instead of being cut."""
    result = Table(title=title, title_justify="left")
    for column in columns:
        if column in whole:
            result.add_column(column, no_wrap=True)
        else:
            result.add_column(column, overflow="fold")
    for row in rows:
        result.add_row(*row)
    return result


def mark(ok: bool | None) -> str:
    return {True: "[green]passed[/]", False: "[red]failed[/]", None: "[dim]not run[/]"}[ok]
