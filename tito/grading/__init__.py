"""The grading wing: the instructor's steps in nbgrader's course folder, one file per step as nbgrader lays them
out (release, autograde, feedback, exchange, scores, formgrader), with the sandbox and kernel that run a
submission. It imports nbgrader at the top of its files; the student kit does not ship it."""
