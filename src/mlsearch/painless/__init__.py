"""A safe Painless interpreter (lexer, parser, tree-walking evaluator with Java semantics), shared by connector
pre / post-process scripts and document update scripts. It imports nothing from mlsearch but ``errors``."""

from mlsearch.painless.scripts import Limits, run_script, to_java_string, validate_script

__all__ = ["Limits", "run_script", "to_java_string", "validate_script"]
