"""`tito olympics submit|score EVENT`: the class competition of module 17. A student packs an entry; the instructor
scores every entry in the grading sandbox and writes the leaderboard (CSV and an HTML page)."""
from __future__ import annotations

import datetime
from importlib.util import find_spec
from pathlib import Path

from rich.markup import escape

from ..course import is_workspace, load_course
from ..errors import TitoError
from ..olympics_entry import EVENTS, pack_entry
from ..ui import console


def register(commands) -> None:
    parser = commands.add_parser(
        "olympics", help="the class competition: pack an entry, or score every entry (module 17)",
        description="Module 17's events, as a class competition. Example: `tito olympics submit digits-fastest "
                    "--weights mlp.npz --name ada`; the instructor: `tito olympics score digits-fastest entries/`.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    submit = actions.add_parser(
        "submit", help="pack your model and your own tinytorch package into an entry zip",
        description="Pack an entry: the weights of a Sequential(Linear, ReLU, ..., Linear) from 64 inputs to 10 "
                    "classes (a save_checkpoint file) for the digits events, or the checkpoint of `tito milestone gpt` "
                    "for gpt-bpc; your tinytorch/ package (it runs your model when scored) and a manifest; nothing "
                    "else goes in. Hand the zip in as your instructor says.")
    submit.add_argument("event", choices=EVENTS)
    submit.add_argument("--weights", type=Path, required=True, metavar="NPZ",
                        help="your model's checkpoint (.npz; gpt-bpc: runs/gpt/gpt.npz of `tito milestone gpt`)")
    submit.add_argument("--name", required=True, help="your name on the leaderboard (letters, digits, . _ -)")
    submit.add_argument("--package", type=Path, metavar="DIR", help="your tinytorch package (default: ./tinytorch of this project)")
    submit.add_argument("--out", type=Path, default=Path("olympics"), help="folder for the zip (default: olympics/)")
    submit.set_defaults(handler=run_submit)
    if find_spec("tito.grading"):  # the instructor's half: a student's kit ships no grading wing
        _register_score(actions)


def _register_score(actions) -> None:
    score = actions.add_parser(
        "score", help="score every entry zip of a folder in the grading sandbox; write the leaderboard",
        description="Run every entry of EVENT in the grading sandbox (digits: beside a reference model, alternating, "
                    "with repeats; gpt-bpc: a check that its package computes what its weights do); write EVENT.csv "
                    "and EVENT.html (docs/instructor.md: how the ranking stays fair).")
    score.add_argument("event", choices=EVENTS)
    score.add_argument("entries", type=Path, help="the folder of entry zips")
    score.add_argument("--out", type=Path, default=Path("olympics"), help="folder for the leaderboard (default: olympics/)")
    score.add_argument("--jobs", type=int, default=1, help="sessions side by side (each uses two sandboxes; default 1)")
    score.add_argument("--repeats", type=int, default=7, help="timed rounds per entry (default 7)")
    score.set_defaults(handler=run_score)


def run_submit(args) -> int:
    package = args.package or load_course().root / "tinytorch"
    path = pack_entry(args.event, args.name, args.weights, package, args.out)
    console.print(f"packed {escape(str(path))}: hand it in for {args.event}")
    return 0


def run_score(args) -> int:
    from ..grading.autograde import grading_limits, require_cores
    from ..grading.olympics import score_entries, status, write_leaderboard
    from ..milestones.gpt import held_out_text
    from ..olympics_entry import GPT_EVENT

    course = load_course()
    if is_workspace(course):
        raise TitoError("`tito olympics score` is the instructor's: run it in the course repository, not a workspace", 2)
    if args.repeats < 3:
        raise TitoError(f"--repeats {args.repeats}: a median needs at least 3 timed rounds", 2)
    require_cores(args.jobs)
    if not args.entries.is_dir():
        raise TitoError(f"no folder {args.entries}", 2)

    def report(score) -> None:
        console.print(f"{escape(score.file)}: {escape(status(args.event, score))}")

    text = held_out_text() if args.event == GPT_EVENT else ""
    scores = score_entries(args.entries, args.event, course.root / "tinytorch", grading_limits(course), args.jobs,
                           args.repeats, on_score=report, validation_text=text)
    from tinytorch.core.capstone import environment

    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    csv_path, html_path = write_leaderboard(args.out, args.event, scores, environment(), when)
    console.print(f"{sum(s.valid for s in scores)} of {len(scores)} entries valid; wrote {escape(str(csv_path))} and "
                  f"{escape(str(html_path))}")
    return 0
