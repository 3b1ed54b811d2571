"""The Java methods, fields and constructors a Painless script may call, dispatched on the receiver's type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless.java import (
    JavaArray,
    JavaFloat,
    MapEntry,
    StringBuilder,
    cast,
    default_value,
    is_number,
    java_type_name,
    to_java_string,
)

Method = Callable[..., Any]


def runtime_error(message: str, line: int) -> IllegalArgumentError:
    return IllegalArgumentError(f"{message} at line {line}")


def _unknown_method(receiver: Any, name: str, argc: int, line: int) -> IllegalArgumentError:
    kind = java_type_name(receiver).rsplit(".", 1)[-1]
    return IllegalArgumentError(f"unsupported Painless construct [method {kind}.{name}/{argc}] at line {line}")


def check_index(size: int, index: Any, line: int) -> int:
    """Java list / array index rules, plus Painless's negative indexes counted from the end."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise runtime_error(f"Cannot cast from [{java_type_name(index)}] to [int] for an index", line)
    normalised = index + size if index < 0 else index
    if not 0 <= normalised < size:
        raise runtime_error(f"Index {index} out of bounds for length {size}", line)
    return normalised


def _java_equals(a: Any, b: Any) -> bool:
    """``a.equals(b)``: unlike ``==`` in Painless, boxed numbers of different types are not equal."""
    if type(a) is not type(b) and (isinstance(a, bool) or isinstance(b, bool) or is_number(a) or is_number(b)):
        return False
    return bool(a == b)


def _substring(s: str, line: int, begin: int, end: int | None = None) -> str:
    stop = len(s) if end is None else end
    if not 0 <= begin <= stop <= len(s):
        raise runtime_error(f"begin {begin}, end {stop}, length {len(s)}", line)
    return s[begin:stop]


def _split(s: str, regex: str, limit: int = 0) -> JavaArray:
    # Java's String.split: a regex, and trailing empty strings are dropped when limit is 0.
    parts = re.split(regex, s, maxsplit=max(limit - 1, 0)) if regex else list(s)
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return JavaArray(parts)


def _index_of(s: str, sub: str, start: int = 0) -> int:
    return s.find(sub, max(start, 0))


_STRING_METHODS: dict[str, Method] = {
    "length": lambda s, ln: len(s),
    "isEmpty": lambda s, ln: not s,
    "substring": _substring,
    "replace": lambda s, ln, a, b: s.replace(to_java_string(a), to_java_string(b)),
    "toString": lambda s, ln: s,
    "equals": lambda s, ln, o: _java_equals(s, o),
    "equalsIgnoreCase": lambda s, ln, o: isinstance(o, str) and s.lower() == o.lower(),
    "indexOf": lambda s, ln, sub, start=0: _index_of(s, sub, start),
    "lastIndexOf": lambda s, ln, sub: s.rfind(sub),
    "contains": lambda s, ln, sub: to_java_string(sub) in s,
    "startsWith": lambda s, ln, p: s.startswith(p),
    "endsWith": lambda s, ln, p: s.endswith(p),
    "toLowerCase": lambda s, ln: s.lower(),
    "toUpperCase": lambda s, ln: s.upper(),
    "trim": lambda s, ln: s.strip("".join(chr(c) for c in range(33))),
    "split": lambda s, ln, regex, limit=0: _split(s, regex, limit),
    "concat": lambda s, ln, o: s + o,
    "hashCode": lambda s, ln: _string_hash(s),
    "compareTo": lambda s, ln, o: (s > o) - (s < o),
}


def _string_hash(s: str) -> int:
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def _list_add(lst: list[Any], ln: int, *args: Any) -> Any:
    if isinstance(lst, JavaArray):
        raise _unknown_method(lst, "add", len(args), ln)
    if len(args) == 1:
        lst.append(args[0])
        return True
    index, value = args
    if not 0 <= index <= len(lst):
        raise runtime_error(f"Index: {index}, Size: {len(lst)}", ln)
    lst.insert(index, value)
    return None


def _list_set(lst: list[Any], ln: int, index: Any, value: Any) -> Any:
    i = check_index(len(lst), index, ln)
    old, lst[i] = lst[i], value
    return old


def _list_remove(lst: list[Any], ln: int, item: Any) -> Any:
    """``remove(int)`` removes at an index; any other argument is ``remove(Object)`` (true if one was removed)."""
    if isinstance(lst, JavaArray):
        raise _unknown_method(lst, "remove", 1, ln)
    if isinstance(item, int) and not isinstance(item, bool):
        return lst.pop(check_index(len(lst), item, ln))
    position = _list_index_of(lst, item)
    if position < 0:
        return False
    del lst[position]
    return True


def _list_index_of(lst: list[Any], item: Any) -> int:
    return next((i for i, x in enumerate(lst) if _java_equals(x, item)), -1)


_LIST_METHODS: dict[str, Method] = {
    "size": lambda lst, ln: len(lst),
    "getLength": lambda lst, ln: len(lst),
    "isEmpty": lambda lst, ln: not lst,
    "get": lambda lst, ln, i: lst[check_index(len(lst), i, ln)],
    "add": _list_add,
    "set": _list_set,
    "remove": _list_remove,
    "addAll": lambda lst, ln, other: lst.extend(other) or True,
    "clear": lambda lst, ln: lst.clear(),
    "contains": lambda lst, ln, item: _list_index_of(lst, item) >= 0,
    "indexOf": lambda lst, ln, item: _list_index_of(lst, item),
    "toString": lambda lst, ln: to_java_string(lst),
    "equals": lambda lst, ln, o: isinstance(o, list) and lst == o,
}

_MAP_METHODS: dict[str, Method] = {
    "get": lambda m, ln, k: m.get(k),
    "getOrDefault": lambda m, ln, k, d: m.get(k, d),
    "put": lambda m, ln, k, v: _map_put(m, k, v),
    "containsKey": lambda m, ln, k: k in m,
    "containsValue": lambda m, ln, v: any(_java_equals(x, v) for x in m.values()),
    "remove": lambda m, ln, k: m.pop(k, None),
    "isEmpty": lambda m, ln: not m,
    "size": lambda m, ln: len(m),
    "keySet": lambda m, ln: list(m.keys()),
    "entrySet": lambda m, ln: [MapEntry(m, k) for k in m],
    "values": lambda m, ln: list(m.values()),
    "putAll": lambda m, ln, other: m.update(other),
    "clear": lambda m, ln: m.clear(),
    "toString": lambda m, ln: to_java_string(m),
    "equals": lambda m, ln, o: isinstance(o, dict) and m == o,
}


def _map_put(m: dict[Any, Any], key: Any, value: Any) -> Any:
    old = m.get(key)
    m[key] = value
    return old


def _sb_append(sb: StringBuilder, ln: int, value: Any) -> StringBuilder:
    sb.append(to_java_string(value))
    return sb


_BUILDER_METHODS: dict[str, Method] = {
    "append": _sb_append,
    "toString": lambda sb, ln: sb.text(),
    "length": lambda sb, ln: len(sb),
    "setLength": lambda sb, ln, n: sb.set_length(n),
    "isEmpty": lambda sb, ln: len(sb) == 0,
}

_NUMBER_METHODS: dict[str, Method] = {
    "intValue": lambda n, ln: cast(n, "int", explicit=True, line=ln),
    "longValue": lambda n, ln: cast(n, "long", explicit=True, line=ln),
    "floatValue": lambda n, ln: JavaFloat(n),
    "doubleValue": lambda n, ln: float(n),
    "toString": lambda n, ln: to_java_string(n),
    "equals": lambda n, ln, o: _java_equals(n, o),
    "compareTo": lambda n, ln, o: (n > o) - (n < o),
    "isNaN": lambda n, ln: isinstance(n, float) and math.isnan(n),
}

_BOOLEAN_METHODS: dict[str, Method] = {
    "toString": lambda b, ln: to_java_string(b),
    "equals": lambda b, ln, o: _java_equals(b, o),
    "booleanValue": lambda b, ln: b,
}

_DECIMAL_METHODS: dict[str, Method] = {
    "intValue": lambda d, ln: cast(float(d), "int", explicit=True, line=ln),
    "longValue": lambda d, ln: cast(float(d), "long", explicit=True, line=ln),
    "doubleValue": lambda d, ln: float(d),
    "floatValue": lambda d, ln: JavaFloat(float(d)),
    "toString": lambda d, ln: str(d),
}


_ENTRY_METHODS: dict[str, Method] = {
    "getKey": lambda e, ln: e.key,
    "getValue": lambda e, ln: e.value(),
    "setValue": lambda e, ln, v: e.set_value(v),
    "toString": lambda e, ln: to_java_string(e),
}


def _method_table(receiver: Any) -> dict[str, Method]:
    if isinstance(receiver, str):
        return _STRING_METHODS
    if isinstance(receiver, bool):
        return _BOOLEAN_METHODS
    if is_number(receiver):
        return _NUMBER_METHODS
    if isinstance(receiver, list):
        return _LIST_METHODS
    if isinstance(receiver, dict):
        return _MAP_METHODS
    if isinstance(receiver, StringBuilder):
        return _BUILDER_METHODS
    if isinstance(receiver, Decimal):
        return _DECIMAL_METHODS
    if isinstance(receiver, MapEntry):
        return _ENTRY_METHODS
    return {}


def call_method(receiver: Any, name: str, args: list[Any], line: int) -> Any:
    if receiver is None:
        raise runtime_error(f"Cannot invoke method [{name}] on a null value", line)
    method = _method_table(receiver).get(name)
    if method is None:
        raise _unknown_method(receiver, name, len(args), line)
    try:
        return method(receiver, line, *args)
    except TypeError as exc:
        # Wrong arity or argument types: Painless reports the method it could not find.
        raise _unknown_method(receiver, name, len(args), line) from exc


def get_field(obj: Any, name: str, line: int) -> Any:
    """``obj.name``: the map shortcut (``map.key`` is ``map.get("key")``), list ``length`` / numeric index."""
    if obj is None:
        raise runtime_error(f"Cannot access field [{name}] of a null value", line)
    if isinstance(obj, dict):
        return obj.get(name)
    if isinstance(obj, MapEntry) and name in ("key", "value"):
        return obj.key if name == "key" else obj.value()  # Painless's getter shortcut
    if isinstance(obj, list):
        if name in ("length", "size"):
            return len(obj)
        if name == "empty":
            return not obj
        if name.isdigit():
            return obj[check_index(len(obj), int(name), line)]
    kind = java_type_name(obj).rsplit(".", 1)[-1]
    raise IllegalArgumentError(f"unsupported Painless construct [field {kind}.{name}] at line {line}")


def get_index(obj: Any, index: Any, line: int) -> Any:
    if obj is None:
        raise runtime_error("Cannot index a null value", line)
    if isinstance(obj, dict):
        return obj.get(index)
    if isinstance(obj, list):
        return obj[check_index(len(obj), index, line)]
    raise runtime_error(f"Attempting to address a non-array type [{java_type_name(obj)}] as an array", line)


def set_index(obj: Any, index: Any, value: Any, line: int) -> None:
    if obj is None:
        raise runtime_error("Cannot index a null value", line)
    if isinstance(obj, dict):
        obj[index] = value
    elif isinstance(obj, list):
        obj[check_index(len(obj), index, line)] = value
    else:
        raise runtime_error(f"Attempting to address a non-array type [{java_type_name(obj)}] as an array", line)


# --- constructors and static members --------------------------------------------------------------------------------
def construct(type_name: str, args: list[Any], line: int) -> Any:
    if type_name == "StringBuilder" and len(args) <= 1:
        initial = args[0] if args else ""
        return StringBuilder("" if is_number(initial) else to_java_string(initial))
    if type_name in ("ArrayList", "List") and len(args) <= 1:
        return list(args[0]) if args and isinstance(args[0], list) else []
    if type_name in ("HashMap", "Map") and len(args) <= 1:
        return dict(args[0]) if args and isinstance(args[0], dict) else {}
    if type_name == "BigDecimal" and len(args) == 1:
        try:
            return Decimal(to_java_string(args[0]) if not isinstance(args[0], float) else repr(args[0]))
        except InvalidOperation as exc:
            raise runtime_error(f"Character array is missing \"exponent\" mark 'e' or 'E' [{args[0]}]", line) from exc
    if type_name in ("String",) and len(args) <= 1:
        return to_java_string(args[0]) if args else ""
    if type_name.endswith("Exception") and len(args) <= 1:
        return _ScriptException(type_name, None if not args else to_java_string(args[0]))
    raise IllegalArgumentError(f"unsupported Painless construct [new {type_name}/{len(args)}] at line {line}")


class _ScriptException:
    """An exception object a script builds to ``throw``."""

    def __init__(self, type_name: str, message: str | None) -> None:
        self.type_name = type_name
        self.message = message


def script_exception_message(value: Any, line: int) -> str:
    if isinstance(value, _ScriptException):
        return value.message if value.message is not None else value.type_name
    raise runtime_error(f"Cannot throw a value of type [{java_type_name(value)}]", line)


def new_array(type_name: str, size: Any, line: int, max_elements: int) -> JavaArray:
    if not isinstance(size, int) or isinstance(size, bool):
        raise runtime_error(f"Cannot cast from [{java_type_name(size)}] to [int] for an array size", line)
    if size < 0:
        raise runtime_error(f"Negative array size [{size}]", line)
    if size > max_elements:
        raise runtime_error(f"array of {size} elements exceeds the script limit of {max_elements}", line)
    return JavaArray([default_value(type_name)] * size)


def _parse_int(line: int, text: Any) -> int:
    try:
        return int(str(text), 10)
    except ValueError as exc:
        raise runtime_error(f'For input string: "{text}"', line) from exc


def _parse_double(line: int, text: Any) -> float:
    try:
        return float(str(text).strip())
    except ValueError as exc:
        raise runtime_error(f'For input string: "{text}"', line) from exc


def _math_round(x: float) -> int:
    return math.floor(x + 0.5) if not isinstance(x, int) else x


_STATIC_METHODS: dict[tuple[str, str], Method] = {
    ("String", "join"): lambda ln, sep, *items: sep.join(
        to_java_string(x) for x in (items[0] if len(items) == 1 and isinstance(items[0], list) else items)
    ),
    ("String", "valueOf"): lambda ln, v: to_java_string(v),
    ("Integer", "parseInt"): _parse_int,
    ("Integer", "valueOf"): lambda ln, v: _parse_int(ln, v) if isinstance(v, str) else v,
    ("Integer", "toString"): lambda ln, v: to_java_string(v),
    ("Long", "parseLong"): _parse_int,
    ("Long", "valueOf"): lambda ln, v: _parse_int(ln, v) if isinstance(v, str) else v,
    ("Double", "parseDouble"): _parse_double,
    ("Double", "valueOf"): lambda ln, v: _parse_double(ln, v) if isinstance(v, str) else float(v),
    ("Double", "toString"): lambda ln, v: to_java_string(float(v)),
    ("Double", "isNaN"): lambda ln, v: math.isnan(v),
    ("Float", "parseFloat"): lambda ln, v: JavaFloat(_parse_double(ln, v)),
    ("Boolean", "parseBoolean"): lambda ln, v: isinstance(v, str) and v.lower() == "true",
    ("Boolean", "valueOf"): lambda ln, v: v if isinstance(v, bool) else (isinstance(v, str) and v.lower() == "true"),
    ("Math", "abs"): lambda ln, x: abs(x),
    ("Math", "min"): lambda ln, a, b: _numeric_pair(min, a, b),
    ("Math", "max"): lambda ln, a, b: _numeric_pair(max, a, b),
    ("Math", "floor"): lambda ln, x: float(math.floor(x)),
    ("Math", "ceil"): lambda ln, x: float(math.ceil(x)),
    ("Math", "round"): lambda ln, x: _math_round(x),
    ("Math", "sqrt"): lambda ln, x: math.sqrt(x) if x >= 0 else math.nan,
    ("Math", "pow"): lambda ln, a, b: _pow(a, b),
    ("Math", "exp"): lambda ln, x: math.exp(x),
    ("Math", "log"): lambda ln, x: math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan),
    ("Math", "log10"): lambda ln, x: math.log10(x) if x > 0 else (-math.inf if x == 0 else math.nan),
    ("Math", "signum"): lambda ln, x: float((x > 0) - (x < 0)),
}

_STATIC_FIELDS: dict[tuple[str, str], Any] = {
    ("Math", "PI"): math.pi,
    ("Math", "E"): math.e,
    ("Integer", "MAX_VALUE"): 2**31 - 1,
    ("Integer", "MIN_VALUE"): -(2**31),
    ("Long", "MAX_VALUE"): 2**63 - 1,
    ("Long", "MIN_VALUE"): -(2**63),
    ("Double", "MAX_VALUE"): 1.7976931348623157e308,
    ("Double", "NaN"): math.nan,
    ("Double", "POSITIVE_INFINITY"): math.inf,
    ("Double", "NEGATIVE_INFINITY"): -math.inf,
}


def _pow(a: float, b: float) -> float:
    try:
        return float(math.pow(a, b))
    except (OverflowError, ValueError):
        return math.inf if a > 0 else math.nan


def _numeric_pair(pick: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    result = pick(a, b)
    return float(result) if isinstance(a, float) or isinstance(b, float) else result


def call_static(cls: str, name: str, args: list[Any], line: int) -> Any:
    method = _STATIC_METHODS.get((cls, name))
    if method is None:
        raise IllegalArgumentError(f"unsupported Painless construct [method {cls}.{name}/{len(args)}] at line {line}")
    try:
        return method(line, *args)
    except (TypeError, AttributeError) as exc:
        raise IllegalArgumentError(
            f"unsupported Painless construct [method {cls}.{name}/{len(args)}] at line {line}"
        ) from exc


def static_field(cls: str, name: str, line: int) -> Any:
    if (cls, name) not in _STATIC_FIELDS:
        raise IllegalArgumentError(f"unsupported Painless construct [field {cls}.{name}] at line {line}")
    return _STATIC_FIELDS[(cls, name)]
