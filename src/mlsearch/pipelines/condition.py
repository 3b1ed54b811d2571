"""A tiny, safe evaluator for the Painless conditions that ingest processors use in `if`.

It understands the common forms only — `ctx.a.b`, `ctx['a']`, `ctx?.a`, literals, `== != < <= > >=`, `&& || !`,
parentheses and a few read-only methods (`containsKey`, `contains`, `startsWith`, `endsWith`, `isEmpty`, `size`,
`length`, `toLowerCase`, `toUpperCase`, `trim`, `equals`). Anything else is refused when the pipeline is stored, so a
condition never runs code. A null dereference fails at run time, as Painless' NullPointerException does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from mlsearch.errors import MLSearchError, ScriptError

Expr = Callable[[dict[str, Any]], Any]

_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<num>\d+(?:\.\d+)?)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)"""
    r"""|(?P<op>\?\.|==|!=|<=|>=|&&|\|\||[<>!().\[\],]))"""
)
_METHODS: dict[str, Callable[..., Any]] = {
    "containsKey": lambda r, k: isinstance(r, dict) and k in r,
    "contains": lambda r, v: v in r,
    "startsWith": lambda r, v: str(r).startswith(v),
    "endsWith": lambda r, v: str(r).endswith(v),
    "isEmpty": lambda r: len(r) == 0,
    "size": len,
    "length": len,
    "toLowerCase": lambda r: str(r).lower(),
    "toUpperCase": lambda r: str(r).upper(),
    "trim": lambda r: str(r).strip(),
    "equals": lambda r, v: r == v,
}


class ConditionError(MLSearchError):
    """A condition that failed while running (a null dereference, a bad comparison)."""

    status = 400
    error_type = "script_exception"


def compile_condition(source: str) -> Expr:
    """Parse `source` into a callable over `ctx`; raises ScriptError for anything outside the supported subset."""
    parser = _Parser(source)
    expr = parser.expression()
    parser.expect_end()
    return expr


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = self._tokenize(source)
        self.pos = 0

    def _tokenize(self, source: str) -> list[tuple[str, str]]:
        out, pos = [], 0
        source = source.strip().removesuffix(";")
        while pos < len(source):
            if source[pos:].strip() == "":
                break
            match = _TOKEN.match(source, pos)
            if match is None or match.end() == pos:
                raise self._error(f"unexpected character at position {pos}")
            kind = next(k for k, v in match.groupdict().items() if v is not None)
            out.append((kind, match.group(kind)))
            pos = match.end()
        return out

    def _error(self, why: str) -> ScriptError:
        return ScriptError(f"compile error: {why} in condition [{self.source}]", script=self.source, lang="painless")

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        token = self._peek()
        if token is None or (value is not None and token[1] != value):
            raise self._error(f"expected [{value or 'a value'}]")
        self.pos += 1
        return token

    def _at(self, *values: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "op" and token[1] in values

    def expect_end(self) -> None:
        if self._peek() is not None:
            raise self._error(f"unexpected [{self._peek()[1]}]")  # type: ignore[index]

    def expression(self) -> Expr:
        left = self._and()
        while self._at("||"):
            self._take()
            right, prev = self._and(), left
            left = lambda ctx, a=prev, b=right: bool(a(ctx)) or bool(b(ctx))  # noqa: E731
        return left

    def _and(self) -> Expr:
        left = self._unary()
        while self._at("&&"):
            self._take()
            right, prev = self._unary(), left
            left = lambda ctx, a=prev, b=right: bool(a(ctx)) and bool(b(ctx))  # noqa: E731
        return left

    def _unary(self) -> Expr:
        if self._at("!"):
            self._take()
            inner = self._unary()
            return lambda ctx: not inner(ctx)
        return self._comparison()

    def _comparison(self) -> Expr:
        left = self._postfix()
        if self._at("==", "!=", "<", "<=", ">", ">="):
            op = self._take()[1]
            right = self._postfix()
            return lambda ctx: _compare(op, left(ctx), right(ctx))
        return left

    def _postfix(self) -> Expr:
        expr = self._primary()
        while self._at(".", "?.", "["):
            op = self._take()[1]
            if op == "[":
                key = self.expression()
                self._take("]")
                expr = _index(expr, key, safe=False)
                continue
            kind, name = self._take()
            if kind != "id":
                raise self._error(f"expected a name after [{op}]")
            if self._at("("):
                expr = self._call(expr, name, safe=op == "?.")
            else:
                expr = _index(expr, lambda ctx, n=name: n, safe=op == "?.")
        return expr

    def _call(self, receiver: Expr, name: str, *, safe: bool) -> Expr:
        if name not in _METHODS:
            raise self._error(f"unknown method [{name}]")
        self._take("(")
        args: list[Expr] = []
        while not self._at(")"):
            args.append(self.expression())
            if not self._at(")"):
                self._take(",")
        self._take(")")
        method = _METHODS[name]

        def call(ctx: dict[str, Any]) -> Any:
            value = receiver(ctx)
            if value is None:
                if safe:
                    return None
                raise ConditionError(f"cannot invoke [{name}] on a null value")
            try:
                return method(value, *(a(ctx) for a in args))
            except TypeError as exc:
                raise ConditionError(f"cannot invoke [{name}]: {exc}") from None

        return call

    def _primary(self) -> Expr:
        kind, value = self._take()
        if kind == "str":
            text = value[1:-1].encode().decode("unicode_escape")
            return lambda ctx: text
        if kind == "num":
            number = float(value) if "." in value else int(value)
            return lambda ctx: number
        if kind == "id":
            literals = {"true": True, "false": False, "null": None}
            if value in literals:
                constant = literals[value]
                return lambda ctx: constant
            if value == "ctx":
                return lambda ctx: ctx
            raise self._error(f"unknown variable [{value}]")
        if value == "(":
            inner = self.expression()
            self._take(")")
            return inner
        raise self._error(f"unexpected [{value}]")


def _index(receiver: Expr, key: Expr, *, safe: bool) -> Expr:
    def get(ctx: dict[str, Any]) -> Any:
        value = receiver(ctx)
        name = key(ctx)
        if value is None:
            if safe:
                return None
            raise ConditionError(f"cannot access [{name}] of a null value")
        if isinstance(value, dict):
            return value.get(name)
        if isinstance(value, list) and isinstance(name, int):
            return value[name] if -len(value) <= name < len(value) else None
        raise ConditionError(f"cannot access [{name}] of a value of type [{type(value).__name__}]")

    return get


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return left == right
    if op == "!=":
        return left != right
    try:
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    except TypeError:
        raise ConditionError(f"cannot compare [{left!r}] and [{right!r}]") from None
