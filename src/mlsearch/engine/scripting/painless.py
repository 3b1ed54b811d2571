"""A safe evaluator for the Painless scoring expressions the k-NN documentation uses.

Only expressions are accepted: numbers, strings, `params.x` / `params['x']`, `doc[...]` of knn_vector fields
(`.size()`, `.isEmpty()`), `_score`, the k-NN vector functions, `Math.*`, + - * / %, comparisons, && || !, the
ternary operator and parentheses (an optional leading `return` and trailing `;` are tolerated). Anything else is
a 400 naming the construct. An expression is evaluated once over numpy arrays holding every candidate document,
so the cost is a few vector operations per query, not an interpreter loop per document."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlsearch.engine.scripting import vector_functions as vf
from mlsearch.errors import IllegalArgumentError, MLSearchError


class ScriptError(MLSearchError):
    status = 400
    error_type = "script_exception"


def _compile_error(source: str, message: str, position: int | None = None) -> ScriptError:
    extra: dict[str, Any] = {"script_stack": [source], "script": source, "lang": "painless"}
    if position is not None:
        extra["position"] = {"offset": position, "start": 0, "end": len(source)}
    extra["caused_by"] = {"type": "illegal_argument_exception", "reason": message}
    return ScriptError("compile error", **extra)


# ---- tokens ------------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d*(?:[eE][+-]?\d+)?[fFdD]?|\.\d+(?:[eE][+-]?\d+)?[fFdD]?|\d+(?:[eE][+-]?\d+)?[fFdDlL]?)"
    r"|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%()\[\].,?:<>!;={}&|]))"
)


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # num | str | name | op | end
    text: str
    pos: int


def tokenize(source: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(source):
        if source[pos:].strip() == "":
            break
        m = _TOKEN.match(source, pos)
        if m is None or m.end() == pos:
            bad = source[pos:].lstrip()[:1]
            raise _compile_error(source, f"unexpected character [{bad}]", pos)
        kind = m.lastgroup or "op"
        out.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(Token("end", "", len(source)))
    return out


# ---- syntax tree -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    kind: str  # num | str | name | attr | index | call | unary | binary | cond
    value: Any = None
    args: tuple[Node, ...] = ()


class Parser:
    """Recursive descent: cond > or > and > equality > comparison > additive > multiplicative > unary > postfix."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0

    def parse(self) -> Node:
        if self._peek().text == "return" and self._peek().kind == "name":
            self.i += 1
        node = self._cond()
        while self._peek().text == ";":
            self.i += 1
        tok = self._peek()
        if tok.kind != "end":
            raise self._unsupported(tok)
        return node

    # helpers
    def _peek(self) -> Token:
        return self.tokens[self.i]

    def _take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _expect(self, text: str) -> None:
        tok = self._take()
        if tok.text != text:
            raise _compile_error(self.source, f"expected [{text}] but found [{tok.text or 'end of script'}]", tok.pos)

    def _unsupported(self, tok: Token) -> ScriptError:
        what = tok.text or "end of script"
        if tok.text in ("=", "{", "}", "for", "while", "if", "def", "new"):
            return _compile_error(
                self.source, f"unsupported construct [{what}]: only expressions are supported", tok.pos
            )
        return _compile_error(self.source, f"unexpected token [{what}]", tok.pos)

    # grammar
    def _cond(self) -> Node:
        test = self._binary(0)
        if self._peek().text == "?":
            self.i += 1
            yes = self._cond()
            self._expect(":")
            no = self._cond()
            return Node("cond", None, (test, yes, no))
        return test

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!="),
        ("<", "<=", ">", ">="),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def _binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while self._peek().kind == "op" and self._peek().text in self._LEVELS[level]:
            op = self._take().text
            left = Node("binary", op, (left, self._binary(level + 1)))
        return left

    def _unary(self) -> Node:
        tok = self._peek()
        if tok.kind == "op" and tok.text in ("-", "+", "!"):
            self.i += 1
            return Node("unary", tok.text, (self._unary(),))
        if tok.text == "(" and self._is_cast():
            raise _compile_error(
                self.source, f"unsupported construct [cast to {self.tokens[self.i + 1].text}]", tok.pos
            )
        return self._postfix(self._primary())

    def _is_cast(self) -> bool:
        nxt, close = self.tokens[self.i + 1], self.tokens[self.i + 2]
        return nxt.text in ("int", "long", "float", "double", "def", "String") and close.text == ")"

    def _primary(self) -> Node:
        tok = self._take()
        if tok.kind == "num":
            return Node("num", _number(tok.text))
        if tok.kind == "str":
            return Node("str", _unquote(tok.text))
        if tok.kind == "name":
            if tok.text in _STATEMENT_WORDS:
                raise _compile_error(
                    self.source, f"unsupported construct [{tok.text}]: only expressions are supported", tok.pos
                )
            if tok.text in ("true", "false"):
                return Node("num", tok.text == "true")
            return Node("name", tok.text)
        if tok.text == "(":
            inner = self._cond()
            self._expect(")")
            return inner
        self.i -= 1
        raise self._unsupported(tok)

    def _postfix(self, node: Node) -> Node:
        while True:
            tok = self._peek()
            if tok.text == ".":
                self.i += 1
                name = self._take()
                if name.kind != "name":
                    raise self._unsupported(name)
                node = Node("attr", name.text, (node,))
            elif tok.text == "[":
                self.i += 1
                key = self._cond()
                self._expect("]")
                node = Node("index", None, (node, key))
            elif tok.text == "(":
                self.i += 1
                args: list[Node] = []
                if self._peek().text != ")":
                    args.append(self._cond())
                    while self._peek().text == ",":
                        self.i += 1
                        args.append(self._cond())
                self._expect(")")
                node = Node("call", None, (node, *args))
            else:
                return node


_STATEMENT_WORDS = frozenset(
    (
        "for",
        "while",
        "do",
        "if",
        "else",
        "def",
        "var",
        "new",
        "int",
        "long",
        "float",
        "double",
        "boolean",
        "String",
        "byte",
        "short",
        "char",
        "return",
        "break",
        "continue",
        "try",
        "catch",
        "throw",
    )
)


def _number(text: str) -> int | float:
    body = text.rstrip("fFdDlL")
    if text[-1:] in "fFdD" or any(c in body for c in ".eE"):
        return float(body)
    return int(body)


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


# ---- evaluation --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocValues:
    """A knn_vector field's vectors for the candidates: rows [n, width] and which documents have one."""

    field: str
    data: np.ndarray
    present: np.ndarray
    binary: bool = False


@dataclass(frozen=True, slots=True)
class _Val:
    """A value during evaluation, and the documents for which computing it failed (missing vectors)."""

    v: Any
    bad: np.ndarray | None = None


class _Namespace:
    def __init__(self, name: str) -> None:
        self.name = name


_PARAMS, _DOC, _MATH = _Namespace("params"), _Namespace("doc"), _Namespace("Math")

_MATH_FUNCS: dict[str, Callable[..., Any]] = {
    "log": np.log,
    "log10": np.log10,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "abs": np.abs,
    "pow": np.power,
    "max": np.maximum,
    "min": np.minimum,
    "floor": np.floor,
    "ceil": np.ceil,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "atan": np.arctan,
    "signum": np.sign,
    "round": np.round,
    "expm1": np.expm1,
    "cbrt": np.cbrt,
    "tanh": np.tanh,
}
_MATH_CONSTS = {"E": math.e, "PI": math.pi}
_VECTOR_FUNCS = ("l2Squared", "l1Norm", "lInfNorm", "innerProduct", "cosineSimilarity", "hamming")

DocLookup = Callable[[str], DocValues]


class Script:
    """A compiled expression; `run` evaluates it for n candidates."""

    def __init__(self, source: str, tree: Node) -> None:
        self.source = source
        self.tree = tree

    def run(self, n: int, params: Mapping[str, Any], doc: DocLookup, scores: np.ndarray) -> np.ndarray:
        ev = _Evaluator(self.source, n, params, doc, scores)
        out = ev.eval(self.tree)
        if out.bad is not None and out.bad.any():
            field = ev.missing_field or "?"
            raise ScriptError(
                "runtime error",
                script_stack=[self.source],
                script=self.source,
                lang="painless",
                caused_by={
                    "type": "illegal_state_exception",
                    "reason": f"Document does not have a value for the vector field [{field}]",
                },
            )
        value = out.v
        if isinstance(value, DocValues | list | str | dict | _Namespace):
            raise _compile_error(self.source, "the script must return a number")
        arr = np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()
        return arr


def compile_painless(source: str) -> Script:
    if not isinstance(source, str) or not source.strip():
        raise IllegalArgumentError("script source must be a non-empty string")
    return Script(source, Parser(source).parse())


class _Evaluator:
    def __init__(self, source: str, n: int, params: Mapping[str, Any], doc: DocLookup, scores: np.ndarray) -> None:
        self.source, self.n, self.params, self.doc, self.scores = source, n, params, doc, scores
        self.missing_field: str | None = None

    def fail(self, message: str) -> ScriptError:
        return _compile_error(self.source, message)

    def eval(self, node: Node) -> _Val:
        handler = getattr(self, f"_{node.kind}")
        return handler(node)

    def _num(self, node: Node) -> _Val:
        return _Val(node.value)

    def _str(self, node: Node) -> _Val:
        return _Val(node.value)

    def _name(self, node: Node) -> _Val:
        name = node.value
        if name == "params":
            return _Val(_PARAMS)
        if name == "doc":
            return _Val(_DOC)
        if name == "Math":
            return _Val(_MATH)
        if name == "_score":
            return _Val(self.scores)
        if name in _VECTOR_FUNCS:
            raise self.fail(f"function [{name}] must be called")
        raise self.fail(f"cannot resolve symbol [{name}]")

    def _attr(self, node: Node) -> _Val:
        target = self.eval(node.args[0])
        name = node.value
        if target.v is _PARAMS:
            return _Val(self._param(name))
        if target.v is _MATH:
            if name in _MATH_CONSTS:
                return _Val(_MATH_CONSTS[name])
            if name in _MATH_FUNCS:
                return _Val(("math", name))
            raise self.fail(f"unsupported construct [Math.{name}]")
        if isinstance(target.v, DocValues) and name in ("size", "isEmpty", "empty", "length"):
            return _Val(("docmethod", name, target.v))
        if isinstance(target.v, list) and name in ("size", "length"):
            return _Val(("listmethod", name, target.v))
        raise self.fail(f"unsupported construct [.{name}]")

    def _param(self, name: str) -> Any:
        if name not in self.params:
            raise self.fail(f"unknown parameter [params.{name}]")
        return self.params[name]

    def _index(self, node: Node) -> _Val:
        target = self.eval(node.args[0])
        key = self.eval(node.args[1]).v
        if target.v is _DOC:
            if not isinstance(key, str):
                raise self.fail("doc[...] needs a field name")
            return _Val(self.doc(key))
        if target.v is _PARAMS:
            if not isinstance(key, str):
                raise self.fail("params[...] needs a parameter name")
            return _Val(self._param(key))
        if isinstance(target.v, list) and isinstance(key, int) and not isinstance(key, bool):
            return _Val(target.v[key])
        if isinstance(target.v, Mapping) and isinstance(key, str):
            return _Val(target.v[key])
        raise self.fail("unsupported construct [[...] on this value]")

    def _call(self, node: Node) -> _Val:
        head, arg_nodes = node.args[0], node.args[1:]
        if head.kind == "name" and head.value in _VECTOR_FUNCS:
            return self._vector_function(head.value, [self.eval(a) for a in arg_nodes])
        if head.kind == "name":
            raise self.fail(f"unsupported function [{head.value}]")
        fn = self.eval(head).v
        args = [self.eval(a) for a in arg_nodes]
        if isinstance(fn, tuple) and fn[0] == "math":
            with np.errstate(all="ignore"):
                return _Val(_MATH_FUNCS[fn[1]](*[_num(a.v, self) for a in args]), _any_bad(args, self.n))
        if isinstance(fn, tuple) and fn[0] == "docmethod" and not args:
            present = fn[2].present
            return _Val(present.astype(np.int64) if fn[1] in ("size", "length") else ~present)
        if isinstance(fn, tuple) and fn[0] == "listmethod" and not args:
            return _Val(len(fn[2]))
        if head.kind == "name":
            raise self.fail(f"unsupported function [{head.value}]")
        raise self.fail("unsupported method call")

    def _vector_function(self, name: str, args: list[_Val]) -> _Val:
        expected = (2, 3) if name == "cosineSimilarity" else (2,)
        if len(args) not in expected:
            raise self.fail(f"function [{name}] takes {' or '.join(map(str, expected))} arguments, got {len(args)}")
        query, values = args[0].v, args[1].v
        if not isinstance(values, DocValues):
            raise self.fail(f"the second argument of [{name}] must be doc[<knn_vector field>]")
        if not isinstance(query, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in query
        ):
            raise IllegalArgumentError(f"[{name}] query vector must be a list of numbers")
        q = np.asarray(query, dtype=np.float64)
        width = values.data.shape[1]
        if len(q) != width:
            raise IllegalArgumentError(
                f"The query vector has a different number of dimensions [{len(q)}] than the document vectors [{width}]."
            )
        if name == "hamming":
            raw = vf.hamming_bits(values.data, q)
        elif values.binary:
            raise IllegalArgumentError(f"function [{name}] does not support binary vectors")
        elif name == "l2Squared":
            raw = vf.l2_squared(values.data, q)
        elif name == "l1Norm":
            raw = vf.l1_norm(values.data, q)
        elif name == "lInfNorm":
            raw = vf.linf_norm(values.data, q)
        elif name == "innerProduct":
            raw = vf.inner_product(values.data, q)
        else:
            q_norm = None if len(args) == 2 else float(_num(args[2].v, self))
            raw = vf.cosine_similarity(values.data, q, q_norm)
        if not values.present.all():
            self.missing_field = values.field
            return _Val(np.where(values.present, raw, 0.0), ~values.present)
        return _Val(raw)

    def _unary(self, node: Node) -> _Val:
        inner = self.eval(node.args[0])
        v = _num(inner.v, self)
        if node.value == "-":
            return _Val(-v, inner.bad)
        if node.value == "!":
            return _Val(np.logical_not(v), inner.bad)
        return _Val(v, inner.bad)

    def _binary(self, node: Node) -> _Val:
        a, b = self.eval(node.args[0]), self.eval(node.args[1])
        bad = _any_bad([a, b], self.n)
        x, y, op = _num(a.v, self), _num(b.v, self), node.value
        with np.errstate(all="ignore"):
            if op == "/" and _is_int(x) and _is_int(y):
                if y == 0:
                    raise ScriptError(
                        "runtime error",
                        script_stack=[self.source],
                        script=self.source,
                        lang="painless",
                        caused_by={"type": "arithmetic_exception", "reason": "/ by zero"},
                    )
                return _Val(int(x / y), bad)  # Java truncates integer division toward zero
            result = _OPS[op](x, y)
        return _Val(result, bad)

    def _cond(self, node: Node) -> _Val:
        test = self.eval(node.args[0])
        yes, no = self.eval(node.args[1]), self.eval(node.args[2])
        t = np.asarray(_num(test.v, self), dtype=bool)
        value = np.where(t, _num(yes.v, self), _num(no.v, self))
        bad = None
        if yes.bad is not None or no.bad is not None:
            none = np.zeros(self.n, dtype=bool)
            bad = np.where(t, none if yes.bad is None else yes.bad, none if no.bad is None else no.bad)
        if test.bad is not None:
            bad = test.bad if bad is None else bad | test.bad
        return _Val(value, bad)


_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.fmod,
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "&&": np.logical_and,
    "||": np.logical_or,
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any, ev: _Evaluator) -> Any:
    if isinstance(v, bool | int | float | np.ndarray | np.number | np.bool_):
        return v
    if isinstance(v, DocValues):
        raise ev.fail(f"doc['{v.field}'] is a vector; use it through a vector function")
    raise ev.fail(f"expected a number but found [{type(v).__name__ if not isinstance(v, str) else v}]")


def _any_bad(vals: list[_Val], n: int) -> np.ndarray | None:
    masks = [v.bad for v in vals if v.bad is not None]
    if not masks:
        return None
    out = np.zeros(n, dtype=bool)
    for m in masks:
        out |= m
    return out
