"""Console output shared by every command."""
from rich.console import Console
from rich.table import Table

console = Console(highlight=False)


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    result = Table(title=title, title_justify="left")
    for column in columns:
        result.add_column(column, overflow="fold")  # in a narrow terminal a long path wraps instead of being cut
    for row in rows:
        result.add_row(*row)
    return result


def mark(ok: bool | None) -> str:
    return {True: "[green]passed[/]", False: "[red]failed[/]", None: "[dim]not run[/]"}[ok]
