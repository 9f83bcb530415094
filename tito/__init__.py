"""tito: the command line of the tinytorch course (export, test, grade, study)."""
import sys

# nbformat validates notebooks with jsonschema, which imports rfc3987_syntax when it is installed (JupyterLab's
# dependencies bring it) and builds a grammar for it at import: about 3 s of every tito command, for the "iri"
# format that no notebook schema uses. Importing it then fails, which jsonschema handles by skipping that format.
sys.modules.setdefault("rfc3987_syntax", None)
