"""tito: the command line of the tinytorch course (export, test, grade, study)."""
