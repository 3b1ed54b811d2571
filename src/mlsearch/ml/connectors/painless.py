"""Run the Painless pre / post-process scripts of ML Commons connectors, without a JVM.

A small, safe interpreter for the subset of Painless that published blueprints and tutorials use: typed and ``def``
locals, ``if`` / ``for`` / for-each / ``while`` / ``do``, functions declared in the script, ``throw``, string / list /
map / ``StringBuilder`` methods, ``params`` access, casts and ``instanceof``, with Java semantics where results
show (integer division, ``1.0E-5`` number printing, ``[a, b]`` list printing, ``==`` as value equality).
Like ML Commons, a script that calls ``escape(...)`` without defining it gets ML Commons' default ``escape``.

The script is tokenized and parsed into a tree that is walked; nothing is handed to Python's ``eval`` / ``exec``.
Runs are bounded by a step count, a wall-clock limit and caps on string and collection sizes. Anything outside the
subset, and every runtime error, raises :class:`mlsearch.errors.IllegalArgumentError` naming the construct or the
problem and its line.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.ml.connectors import _painless_ast as ast
from mlsearch.ml.connectors._painless_eval import Interpreter, Limits
from mlsearch.ml.connectors._painless_java import to_java_string
from mlsearch.ml.connectors._painless_parser import parse

__all__ = ["Limits", "run_script", "to_java_string", "validate_script"]

# ML Commons' StringUtils.DEFAULT_ESCAPE_FUNCTION, which it prepends to scripts that call escape() without
# defining it. Kept as Painless (a raw CR, LF, backspace and form feed inside the quotes) so that it escapes
# exactly as ML Commons does, quirks included: a tab character is left alone, "\t" text becomes "\\\t".
_DEFAULT_ESCAPE_FUNCTION = (
    "String escape(def input) {\n"
    '  if (input.contains("\\\\")) { input = input.replace("\\\\", "\\\\\\\\"); }\n'
    '  if (input.contains("\\"")) { input = input.replace("\\"", "\\\\\\""); }\n'
    "  if (input.contains('\r')) { input = input.replace('\r', '\\\\r'); }\n"
    '  if (input.contains("\\\\t")) { input = input.replace("\\\\t", "\\\\\\\\\\\\t"); }\n'
    "  if (input.contains('\n')) { input = input.replace('\n', '\\\\n'); }\n"
    "  if (input.contains('\b')) { input = input.replace('\b', '\\\\b'); }\n"
    "  if (input.contains('\f')) { input = input.replace('\f', '\\\\f'); }\n"
    "  return input;\n"
    "}\n"
)
# ML Commons' isEscapeUsed: a call of escape( that is not its declaration.
_ESCAPE_USED = re.compile(r"(?<!\bString\s)\bescape\s*\(")


def run_script(source: str, params: dict[str, Any], *, limits: Limits | None = None) -> Any:
    """Run ``source`` with ``params`` bound to the script's ``params``; return what the script returns.

    ``params`` is copied first, so a script never changes the caller's data. The result is the raw value
    (ML Commons' template scripts return a String: render others with :func:`to_java_string`).
    """
    program, functions = _compile(source)
    interpreter = Interpreter(program, functions, limits or Limits())
    try:
        return interpreter.run(_copy_json(params))
    except RecursionError:
        raise IllegalArgumentError("script nests or recurses too deeply") from None


def validate_script(source: str) -> None:
    """Parse ``source`` only, so a connector can be refused when it is stored rather than when it first runs."""
    _compile(source)


@lru_cache(maxsize=256)
def _compile(source: str) -> tuple[ast.Program, dict[str, ast.Function]]:
    program = parse(source)
    functions: dict[str, ast.Function] = {}
    for function in program.functions:
        if function.name in functions:
            raise IllegalArgumentError(f"function [{function.name}] is already defined at line {function.line}")
        functions[function.name] = function
    if "escape" not in functions and _ESCAPE_USED.search(source):
        functions["escape"] = _default_escape()
    return program, functions


@lru_cache(maxsize=1)
def _default_escape() -> ast.Function:
    return parse(_DEFAULT_ESCAPE_FUNCTION).functions[0]


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value
