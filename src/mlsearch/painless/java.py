"""Java value semantics for the Painless interpreter: the value types, ``toString``, type names and checks.

Python stands in for Java as: ``str`` String, ``int`` int / long, ``float`` double, :class:`JavaFloat` float,
``bool`` boolean, ``None`` null, ``list`` ArrayList, ``dict`` HashMap, :class:`JavaArray` a fixed-size array,
:class:`StringBuilder` StringBuilder and ``decimal.Decimal`` BigDecimal.
"""

from __future__ import annotations

import math
import struct
from decimal import Decimal
from typing import Any

from mlsearch.errors import IllegalArgumentError


class JavaFloat(float):
    """A 32-bit Java float: prints with the fewest digits that read back as the same float32."""

    def __new__(cls, value: float) -> JavaFloat:
        return super().__new__(cls, _round_to_float32(float(value)))


class JavaArray(list[Any]):
    """A Java array (``new Double[n]``): fixed length, so ``add`` is not offered."""


class StringBuilder:
    """java.lang.StringBuilder: appends are amortised O(1) and the text is joined only when read."""

    __slots__ = ("_parts", "_size")

    def __init__(self, text: str = "") -> None:
        self._parts = [text] if text else []
        self._size = len(text)

    def append(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def __len__(self) -> int:
        return self._size

    def text(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def set_length(self, size: int) -> None:
        current = self.text()
        self._parts = [current[:size] + "\0" * max(0, size - len(current))]
        self._size = size


class MapEntry:
    """A ``Map.Entry`` from ``entrySet()``: a live view of one key of its map, as Java's entries are."""

    __slots__ = ("key", "owner")

    def __init__(self, owner: dict[Any, Any], key: Any) -> None:
        self.owner = owner
        self.key = key

    def value(self) -> Any:
        return self.owner.get(self.key)

    def set_value(self, value: Any) -> Any:
        old = self.owner.get(self.key)
        self.owner[self.key] = value
        return old


def to_json(value: Any) -> Any:
    """A script's value as plain JSON data (floats, lists, string-keyed dicts), to be stored as a document."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else to_java_string(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, MapEntry):
        return {to_java_string(value.key): to_json(value.value())}
    return to_java_string(value)


def _round_to_float32(value: float) -> float:
    if math.isnan(value) or math.isinf(value):
        return value
    try:
        return float(struct.unpack("f", struct.pack("f", value))[0])
    except OverflowError:
        return math.copysign(math.inf, value)


def to_java_string(value: Any) -> str:
    """``String.valueOf(value)`` as Java prints it: ``null``, ``1.0``, ``1.0E-5``, ``[a, b]``, ``{k=v}``."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, JavaFloat):
        return _format_floating(value, _float32_digits(value))
    if isinstance(value, float):
        return _format_floating(value, repr(value))
    if isinstance(value, list):
        return "[" + ", ".join(to_java_string(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{to_java_string(k)}={to_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, StringBuilder):
        return value.text()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, MapEntry):
        return f"{to_java_string(value.key)}={to_java_string(value.value())}"
    return str(value)


def _float32_digits(value: float) -> str:
    """The shortest decimal that reads back as the same float32 (Java's Float.toString digits)."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        return repr(float(value))
    for precision in range(0, 10):
        text = f"{value:.{precision}e}"
        if _round_to_float32(float(text)) == value:
            return text
    return repr(float(value))


def _format_floating(value: float, digits_text: str) -> str:
    """Lay out shortest digits the way Double.toString does: plain in [1e-3, 1e7), else d.dddE±n."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    digits, exponent = _shortest(digits_text.lstrip("-"))
    if 1e-3 <= abs(value) < 1e7:
        return sign + _plain(digits, exponent)
    rest = digits[1:] or "0"
    return f"{sign}{digits[0]}.{rest}E{exponent}"


def _shortest(text: str) -> tuple[str, int]:
    """Split a decimal text into significant digits and the exponent of the first digit."""
    if "e" in text or "E" in text:
        mant, _, exp = text.lower().partition("e")
        exponent = int(exp)
    else:
        mant, exponent = text, 0
    int_part, _, frac = mant.partition(".")
    all_digits = int_part + frac
    exponent += len(int_part) - 1
    stripped = all_digits.lstrip("0")
    exponent -= len(all_digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    return digits, exponent


def _plain(digits: str, exponent: int) -> str:
    if exponent < 0:
        return "0." + "0" * (-exponent - 1) + digits
    int_part = digits[: exponent + 1].ljust(exponent + 1, "0")
    frac = digits[exponent + 1 :] or "0"
    return f"{int_part}.{frac}"


_TYPE_NAMES: tuple[tuple[type, str], ...] = (
    (bool, "java.lang.Boolean"),
    (int, "java.lang.Integer"),
    (JavaFloat, "java.lang.Float"),
    (float, "java.lang.Double"),
    (str, "java.lang.String"),
    (JavaArray, "java.lang.Object[]"),
    (list, "java.util.ArrayList"),
    (dict, "java.util.HashMap"),
    (StringBuilder, "java.lang.StringBuilder"),
    (Decimal, "java.math.BigDecimal"),
    (MapEntry, "java.util.HashMap$Node"),
)


def java_type_name(value: Any) -> str:
    if value is None:
        return "null"
    for py_type, name in _TYPE_NAMES:
        if isinstance(value, py_type):
            return name
    return type(value).__name__


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# Painless type names -> test for "value is an instance of this type" (null is never an instance).
_INSTANCE_TESTS: dict[str, Any] = {
    "def": lambda v: True,
    "Object": lambda v: True,
    "String": lambda v: isinstance(v, str),
    "CharSequence": lambda v: isinstance(v, str | StringBuilder),
    "List": lambda v: isinstance(v, list) and not isinstance(v, JavaArray),
    "ArrayList": lambda v: isinstance(v, list) and not isinstance(v, JavaArray),
    "Collection": lambda v: isinstance(v, list) and not isinstance(v, JavaArray),
    "Map": lambda v: isinstance(v, dict),
    "HashMap": lambda v: isinstance(v, dict),
    "StringBuilder": lambda v: isinstance(v, StringBuilder),
    "Number": is_number,
    "Integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "Double": lambda v: isinstance(v, float) and not isinstance(v, JavaFloat),
    "double": lambda v: isinstance(v, float) and not isinstance(v, JavaFloat),
    "Float": lambda v: isinstance(v, JavaFloat),
    "float": lambda v: isinstance(v, JavaFloat),
    "Boolean": lambda v: isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "BigDecimal": lambda v: isinstance(v, Decimal),
}

TYPE_NAMES = frozenset(_INSTANCE_TESTS) | {"short", "byte", "char", "Short", "Byte"}
_INTEGRAL = frozenset({"int", "long", "short", "byte", "Integer", "Long", "Short", "Byte"})
_FLOATING = frozenset({"double", "Double", "float", "Float"})


def is_instance(value: Any, type_name: str) -> bool:
    if value is None:
        return False
    if type_name.endswith("[]"):
        return isinstance(value, JavaArray)
    test = _INSTANCE_TESTS.get(type_name)
    return bool(test and test(value))


def default_value(type_name: str) -> Any:
    """What an uninitialised local of this type holds (Painless initialises every local)."""
    if type_name in ("int", "long", "short", "byte"):
        return 0
    if type_name == "double":
        return 0.0
    if type_name == "float":
        return JavaFloat(0.0)
    if type_name == "boolean":
        return False
    return None


def cast(value: Any, type_name: str, *, explicit: bool, line: int) -> Any:
    """Convert ``value`` for a ``type_name`` slot: widening always, narrowing only for explicit casts."""
    if type_name in ("def", "Object") or (type(value) is int and type_name in ("int", "long") and not explicit):
        return value
    if value is None:
        if type_name in ("int", "long", "short", "byte", "double", "float", "boolean", "char"):
            raise _cast_error(value, type_name, line)
        return None
    if type_name in _INTEGRAL and is_number(value):
        if isinstance(value, float):
            if not explicit:
                raise _cast_error(value, type_name, line)
            return _truncate(value, type_name)
        return _wrap_integral(value, type_name) if explicit else value
    if type_name in _FLOATING and is_number(value):
        return JavaFloat(value) if type_name in ("float", "Float") else float(value)
    if is_instance(value, type_name):
        return value
    raise _cast_error(value, type_name, line)


def _truncate(value: float, type_name: str) -> int:
    if math.isnan(value):
        return 0
    bits = 64 if type_name in ("long", "Long") else 32
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if math.isinf(value):
        return high if value > 0 else low
    return max(low, min(high, int(value)))


def _wrap_integral(value: int, type_name: str) -> int:
    bits = {"long": 64, "Long": 64, "short": 16, "Short": 16, "byte": 8, "Byte": 8}.get(type_name, 32)
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def wrap_long(value: int) -> int:
    """Integer arithmetic overflows like Java's long (ints are held as Python ints)."""
    return value if -(2**63) <= value < 2**63 else _wrap_integral(value, "long")


def _cast_error(value: Any, type_name: str, line: int) -> IllegalArgumentError:
    return IllegalArgumentError(f"Cannot cast from [{java_type_name(value)}] to [{type_name}] at line {line}")
