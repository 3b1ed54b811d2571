"""Functions a script may call without declaring them.

ML Commons lets connector scripts call ``escape(text)`` without declaring it; the helper turns a response text into
something that can sit between double quotes in the JSON the script assembles. We provide it natively, in Python.
A function the script declares under the same name always wins (see ``Interpreter.call_function``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless.java import java_type_name

# What ML Commons' escape() does to each character, observed as a whole (one pass here, same result):
#   backslash -> two backslashes, except a backslash right before the letter t, which becomes FOUR backslashes
#                (the t itself is kept): their helper doubles backslashes and then rewrites the text "\t" again;
#   "  -> \"    CR -> \r    LF -> \n    backspace -> \b    form feed -> \f   (a backslash and a letter);
#   everything else is kept, a real TAB included, so a response holding a tab still yields JSON that does not
#   parse - scripts relying on ML Commons see the same.
_ESCAPED = {
    "\\": "\\\\",
    "\\t": "\\\\\\\\t",
    '"': '\\"',
    "\r": "\\r",
    "\n": "\\n",
    "\b": "\\b",
    "\f": "\\f",
}
_NEEDS_ESCAPING = re.compile(r'\\t?|["\r\n\b\f]')


def escape(text: str) -> str:
    """ML Commons' default ``escape`` helper, quirks included (see the table above)."""
    return _NEEDS_ESCAPING.sub(lambda match: _ESCAPED[match.group()], text)


def _escape_builtin(args: list[Any], line: int) -> str:
    (value,) = args
    if isinstance(value, str):
        return escape(value)
    if value is None:
        raise IllegalArgumentError(f"Cannot escape a null value at line {line}")
    raise IllegalArgumentError(
        f"Cannot escape a value of type [{java_type_name(value)}], only a String, at line {line}"
    )


# name -> (number of arguments, implementation taking the evaluated arguments and the call's line)
BUILTIN_FUNCTIONS: dict[str, tuple[int, Callable[[list[Any], int], Any]]] = {
    "escape": (1, _escape_builtin),
}
