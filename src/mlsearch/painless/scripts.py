"""Run Painless scripts without a JVM: connector pre / post-process scripts and update scripts (``ctx._source``).

A small, safe interpreter for the subset of Painless that published blueprints, tutorials and clients use: typed and ``def``
locals, ``if`` / ``for`` / for-each / ``while`` / ``do``, functions declared in the script, ``throw``, string / list /
map / ``StringBuilder`` methods, ``params`` access, casts and ``instanceof``, with Java semantics where results
show (integer division, ``1.0E-5`` number printing, ``[a, b]`` list printing, ``==`` as value equality).
As in ML Commons, a script may call ``escape(text)`` without declaring it: the interpreter supplies that helper
natively (``mlsearch.painless.builtins``), unless the script declares its own ``escape``.

The script is tokenized and parsed into a tree that is walked; nothing is handed to Python's ``eval`` / ``exec``.
Runs are bounded by a step count, a wall-clock limit and caps on string and collection sizes. Anything outside the
subset, and every runtime error, raises :class:`mlsearch.errors.IllegalArgumentError` naming the construct or the
problem and its line.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless import nodes as ast
from mlsearch.painless.interpreter import Interpreter, Limits
from mlsearch.painless.java import to_java_string
from mlsearch.painless.parser import parse

__all__ = ["Limits", "run_script", "to_java_string", "validate_script"]


def run_script(
    source: str,
    params: dict[str, Any],
    *,
    bindings: Mapping[str, Any] | None = None,
    limits: Limits | None = None,
) -> Any:
    """Run ``source`` with ``params`` bound to the script's ``params``; return what the script returns.

    ``params`` is copied first, so a script never changes the caller's data. ``bindings`` adds more variables (an
    update script's ``ctx``) as they are: those the script may change in place, and the caller reads them back.
    The result is the raw value (ML Commons' template scripts return a String: render others with
    :func:`to_java_string`).
    """
    program, functions = _compile(source)
    interpreter = Interpreter(program, functions, limits or Limits())
    variables = {"params": _copy_json(params), **(bindings or {})}
    try:
        return interpreter.run(variables)
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
    return program, functions


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value
