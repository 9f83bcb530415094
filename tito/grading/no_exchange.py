"""nbgrader's exchange steps for a course that has none: one machine, where students hand in with
`tito student submit --course PATH` (docs/instructor.md, section 4).

nbgrader_config.py names these when settings.ini has no `[nbgrader] exchange` (tito/coursefolder.py): the
formgrader then finds nothing released, shows no "exchange directory could not be created" box and logs
nothing per page, and its Release, Collect and Return buttons say what to set instead of creating nbgrader's
default folder (/usr/local/share/nbgrader/exchange) system-wide.
"""
from __future__ import annotations

from nbgrader.exchange import abc

REASON = "this course has no exchange: set [nbgrader] exchange in settings.ini (docs/instructor.md, section 9)"


class NoExchangeList(abc.ExchangeList):
    """Nothing was ever released to or handed in through an exchange."""

    def start(self):
        return []


class NoReleaseAssignment(abc.ExchangeReleaseAssignment):
    def start(self):
        self.fail(REASON)


class NoCollect(abc.ExchangeCollect):
    def start(self):
        self.fail(REASON)


class NoReleaseFeedback(abc.ExchangeReleaseFeedback):
    def start(self):
        self.fail(REASON)
