"""tito's output in an 80-column terminal: every line whole, nothing cut to `…`."""
from __future__ import annotations

from rich.console import Console

from conftest import run_tito
from tinytorch.core.training import History
from tito.milestone import EpochProgress
from tito.ui import table

WIDTH = 80


def test_milestone_epoch_lines_fit_80_columns_with_every_number():
    console = Console(width=WIDTH, record=True, force_terminal=False)
    progress = EpochProgress(console)
    progress.start(15, 23, "64-512-10 MLP, Adam lr 0.001, batch 64, seed 0: 1437 digits images for training, 360 held out")
    history = History()
    for epoch in range(1, 16):
        for _ in range(23):
            progress.batch(0.1234)
        history.train_loss.append(0.0123)
        history.train_accuracy.append(0.9987)
        history.val_loss.append(0.0456)
        history.val_accuracy.append(0.9861)
        progress.epoch_end(epoch, history)
    progress.stop()
    lines = console.export_text().splitlines()
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 15 and all(len(line) <= WIDTH for line in lines)
    assert all("23/23 train 0.0123 99.87%  test 0.0456 98.61% 0:00:" in line for line in epochs), epochs
    assert "…" not in console.export_text()


def test_a_table_wraps_long_paths_at_80_columns_instead_of_cutting_them():
    console = Console(width=WIDTH, record=True)
    path = "course/submitted/a-student-with-a-long-id/05_autograd/autograd.ipynb"
    console.print(table("Feedback", ["student", "module", "page", "note"], [["a-student-with-a-long-id", "05_autograd",
                                                                          path, "written answers still to grade"]]))
    text = console.export_text()
    assert "…" not in text and all(len(line) <= WIDTH for line in text.splitlines())
    assert "".join(line.split("│")[3].strip() for line in text.splitlines() if line.count("│") == 5) == path


def test_status_fits_80_columns(course_copy):
    result = run_tito("status", cwd=course_copy, columns=WIDTH)
    assert result.returncode == 0 and "…" not in result.stdout
    assert all(len(line) <= WIDTH for line in result.stdout.splitlines())
    assert "08_training" in result.stdout
