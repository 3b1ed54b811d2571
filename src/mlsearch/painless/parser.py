"""Recursive-descent parser: tokens -> :mod:`mlsearch.painless.nodes`.

Anything outside the supported subset fails here, before the script runs, with
``unsupported Painless construct [<what>] at line <n>``.
"""

from __future__ import annotations

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless import nodes as ast
from mlsearch.painless.java import TYPE_NAMES
from mlsearch.painless.lexer import Token, tokenize

# Classes a script may name: as a declared type, after ``new``, or for static calls.
_CLASS_TYPES = frozenset({"ArrayList", "HashMap", "StringBuilder", "BigDecimal", "Collection", "CharSequence"})
DECL_TYPES = TYPE_NAMES | _CLASS_TYPES
STATIC_CLASSES = frozenset({"String", "Math", "Integer", "Long", "Double", "Float", "Boolean"})
# Exceptions a script may throw; each surfaces as an illegal_argument_exception carrying its message.
_EXCEPTIONS = frozenset(
    {
        "Exception",
        "RuntimeException",
        "IllegalArgumentException",
        "IllegalStateException",
        "UnsupportedOperationException",
    }
)
_UNSUPPORTED_KEYWORDS = {
    "try": "try", "catch": "try", "switch": "switch", "case": "switch", "class": "class", "import": "import",
    "synchronized": "synchronized", "assert": "assert", "goto": "goto", "this": "this", "super": "super",
}  # fmt: skip
_UNSUPPORTED_OPS = {"->": "lambda", "::": "method reference", "=~": "regex", "==~": "regex"}
_BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6, "===": 6, "!==": 6,
    "<": 7, "<=": 7, ">": 7, ">=": 7, "instanceof": 7, "<<": 8, ">>": 8, ">>>": 8,
    "+": 9, "-": 9, "*": 10, "/": 10, "%": 10,
}  # fmt: skip
_ASSIGN_OPS = frozenset({"=", "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<=", ">>=", ">>>="})
_MAX_NESTING = 60  # keeps the tree-walking evaluator well inside Python's recursion limit


def parse(source: str) -> ast.Program:
    return _Parser(tokenize(source)).program()


def unsupported(what: str, line: int) -> IllegalArgumentError:
    return IllegalArgumentError(f"unsupported Painless construct [{what}] at line {line}")


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0
        self.depth = 0

    # --- token helpers -------------------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, offset: int = 1) -> Token:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def at(self, text: str) -> bool:
        tok = self.tok
        return tok.kind in ("op", "id") and tok.text == text

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> Token:
        if not self.at(text):
            raise self.error(f"expected [{text}]")
        tok = self.tok
        self.i += 1
        return tok

    def error(self, what: str) -> IllegalArgumentError:
        tok = self.tok
        found = "end of script" if tok.kind == "eof" else f"[{tok.text}]"
        if tok.kind == "op" and tok.text in _UNSUPPORTED_OPS:
            return unsupported(_UNSUPPORTED_OPS[tok.text], tok.line)
        return IllegalArgumentError(f"invalid Painless script: {what} but found {found} at line {tok.line}")

    def identifier(self) -> str:
        tok = self.tok
        if tok.kind != "id":
            raise self.error("expected a name")
        self.i += 1
        return tok.text

    def nest(self) -> None:
        self.depth += 1
        if self.depth > _MAX_NESTING:
            raise IllegalArgumentError(f"script nesting is too deep at line {self.tok.line}")

    # --- statements ----------------------------------------------------------------------------------------------
    def program(self) -> ast.Program:
        functions: list[ast.Function] = []
        body: list[ast.Node] = []
        while self.tok.kind != "eof":
            if self._at_function():
                functions.append(self.function())
            else:
                body.append(self.statement())
        return ast.Program(1, tuple(functions), tuple(body))

    def _at_function(self) -> bool:
        if self.tok.kind != "id" or self.tok.text not in DECL_TYPES | {"void"}:
            return False
        offset = 1
        while self.peek(offset).text == "[" and self.peek(offset + 1).text == "]":
            offset += 2
        return self.peek(offset).kind == "id" and self.peek(offset + 1).text == "("

    def function(self) -> ast.Function:
        line = self.tok.line
        return_type = self.type_name()
        name = self.identifier()
        self.expect("(")
        params: list[tuple[str, str]] = []
        while not self.accept(")"):
            if params:
                self.expect(",")
            params.append((self.type_name(), self.identifier()))
        return ast.Function(line, return_type, name, tuple(params), self.block())

    def type_name(self) -> str:
        tok = self.tok
        if tok.kind != "id" or tok.text not in DECL_TYPES | {"void"}:
            raise unsupported(f"type {tok.text}", tok.line) if tok.kind == "id" else self.error("expected a type")
        self.i += 1
        name = tok.text
        while self.at("[") and self.peek().text == "]":
            self.i += 2
            name += "[]"
        return name

    def block(self) -> ast.Block:
        line = self.expect("{").line
        body: list[ast.Node] = []
        while not self.accept("}"):
            if self.tok.kind == "eof":
                raise self.error("expected [}]")
            body.append(self.statement())
        return ast.Block(line, tuple(body))

    def statement(self) -> ast.Node:
        self.nest()
        try:
            return self._statement()
        finally:
            self.depth -= 1

    def _statement(self) -> ast.Node:
        tok = self.tok
        if tok.kind == "id" and tok.text in _UNSUPPORTED_KEYWORDS:
            raise unsupported(_UNSUPPORTED_KEYWORDS[tok.text], tok.line)
        if self.at("{"):
            return self.block()
        if self.accept(";"):
            return ast.Block(tok.line, ())
        keyword = tok.text if tok.kind == "id" else ""
        handler = {
            "if": self.if_statement, "while": self.while_statement, "do": self.do_statement,
            "for": self.for_statement, "return": self.return_statement, "throw": self.throw_statement,
        }.get(keyword)  # fmt: skip
        if handler:
            self.i += 1
            return handler(tok.line)
        if keyword in ("break", "continue"):
            self.i += 1
            self.end_statement()
            return ast.Break(tok.line) if keyword == "break" else ast.Continue(tok.line)
        if self._at_declaration():
            decl = self.declaration()
            self.end_statement()
            return decl
        expr = self.expression()
        self.end_statement()
        return ast.ExprStmt(tok.line, expr)

    def end_statement(self) -> None:
        # Painless lets the last statement of a block or script drop its semicolon.
        if not self.accept(";") and not (self.at("}") or self.tok.kind == "eof"):
            raise self.error("expected [;]")

    def _at_declaration(self) -> bool:
        if self.tok.kind != "id" or self.tok.text not in DECL_TYPES:
            return False
        offset = 1
        while self.peek(offset).text == "[" and self.peek(offset + 1).text == "]":
            offset += 2
        return self.peek(offset).kind == "id"

    def declaration(self) -> ast.Decl:
        line = self.tok.line
        type_name = self.type_name()
        names: list[tuple[str, ast.Node | None]] = []
        while True:
            name = self.identifier()
            names.append((name, self.expression() if self.accept("=") else None))
            if not self.accept(","):
                return ast.Decl(line, type_name, tuple(names))

    def condition(self) -> ast.Node:
        self.expect("(")
        cond = self.expression()
        self.expect(")")
        return cond

    def if_statement(self, line: int) -> ast.Node:
        cond = self.condition()
        then = self.statement()
        other = self.statement() if self.accept("else") else None
        return ast.If(line, cond, then, other)

    def while_statement(self, line: int) -> ast.Node:
        cond = self.condition()
        return ast.While(line, cond, self.statement(), True)

    def do_statement(self, line: int) -> ast.Node:
        body = self.statement()
        self.expect("while")
        cond = self.condition()
        self.end_statement()
        return ast.While(line, cond, body, False)

    def for_statement(self, line: int) -> ast.Node:
        self.expect("(")
        if self._at_declaration() and self.peek(2).text == ":":
            type_name = self.type_name()
            name = self.identifier()
            self.expect(":")
            return self._for_each(line, type_name, name)
        if self.tok.kind == "id" and self.peek().text == "in":
            name = self.identifier()
            self.i += 1
            return self._for_each(line, "def", name)
        init: ast.Node | None = None
        if not self.at(";"):
            init = self.declaration() if self._at_declaration() else ast.ExprStmt(line, self.expression())
        self.expect(";")
        cond = None if self.at(";") else self.expression()
        self.expect(";")
        updates: list[ast.Node] = []
        while not self.accept(")"):
            if updates:
                self.expect(",")
            updates.append(self.expression())
        return ast.For(line, init, cond, tuple(updates), self.statement())

    def _for_each(self, line: int, type_name: str, name: str) -> ast.Node:
        iterable = self.expression()
        self.expect(")")
        return ast.ForEach(line, type_name, name, iterable, self.statement())

    def return_statement(self, line: int) -> ast.Node:
        value = None if self.at(";") or self.at("}") or self.tok.kind == "eof" else self.expression()
        self.end_statement()
        return ast.Return(line, value)

    def throw_statement(self, line: int) -> ast.Node:
        value = self.expression()
        self.end_statement()
        return ast.Throw(line, value)

    # --- expressions ---------------------------------------------------------------------------------------------
    def expression(self) -> ast.Node:
        self.nest()
        try:
            return self.assignment()
        finally:
            self.depth -= 1

    def assignment(self) -> ast.Node:
        target = self.ternary()
        tok = self.tok
        if tok.kind == "op" and tok.text in _ASSIGN_OPS:
            if not isinstance(target, ast.Name | ast.Field | ast.Index):
                raise IllegalArgumentError(f"invalid assignment target at line {tok.line}")
            self.i += 1
            return ast.Assign(tok.line, tok.text, target, self.assignment())
        return target

    def ternary(self) -> ast.Node:
        cond = self.binary(1)
        tok = self.tok
        if self.accept("?"):
            then = self.expression()
            self.expect(":")
            return ast.Ternary(tok.line, cond, then, self.ternary())
        if self.accept("?:"):
            return ast.Binary(tok.line, "?:", cond, self.ternary())
        return cond

    def binary(self, min_prec: int) -> ast.Node:
        left = self.unary()
        while True:
            tok = self.tok
            prec = _BINARY_PRECEDENCE.get(tok.text, 0) if tok.kind in ("op", "id") else 0
            if prec < min_prec:
                return left
            self.i += 1
            if tok.text == "instanceof":
                left = ast.InstanceOf(tok.line, left, self.type_name())
            else:
                left = ast.Binary(tok.line, tok.text, left, self.binary(prec + 1))

    def unary(self) -> ast.Node:
        tok = self.tok
        if tok.kind == "op" and tok.text in ("!", "-", "+", "~"):
            self.i += 1
            return ast.Unary(tok.line, tok.text, self.unary())
        if tok.kind == "op" and tok.text in ("++", "--"):
            self.i += 1
            return ast.IncDec(tok.line, tok.text, self._target(self.unary(), tok.line), True)
        if tok.kind == "op" and tok.text in ("/", "/="):
            raise unsupported("regex", tok.line)
        if self._at_cast():
            self.i += 1
            type_name = self.type_name()
            self.expect(")")
            return ast.Cast(tok.line, type_name, self.unary())
        return self.postfix(self.primary())

    def _at_cast(self) -> bool:
        if not self.at("(") or self.peek().kind != "id" or self.peek().text not in DECL_TYPES:
            return False
        offset = 2
        while self.peek(offset).text == "[" and self.peek(offset + 1).text == "]":
            offset += 2
        return self.peek(offset).text == ")"

    def _target(self, node: ast.Node, line: int) -> ast.Node:
        if not isinstance(node, ast.Name | ast.Field | ast.Index):
            raise IllegalArgumentError(f"invalid increment target at line {line}")
        return node

    def postfix(self, node: ast.Node) -> ast.Node:
        while True:
            tok = self.tok
            if tok.kind == "op" and tok.text in (".", "?."):
                self.i += 1
                name = self.identifier()
                if self.at("("):
                    node = ast.Call(tok.line, node, name, self.arguments(), tok.text == "?.")
                else:
                    node = ast.Field(tok.line, node, name, tok.text == "?.")
            elif self.accept("["):
                index = self.expression()
                self.expect("]")
                node = ast.Index(tok.line, node, index)
            elif tok.kind == "op" and tok.text in ("++", "--"):
                self.i += 1
                node = ast.IncDec(tok.line, tok.text, self._target(node, tok.line), False)
            else:
                return node

    def arguments(self) -> tuple[ast.Node, ...]:
        self.expect("(")
        args: list[ast.Node] = []
        while not self.accept(")"):
            if args:
                self.expect(",")
            args.append(self.expression())
        return tuple(args)

    def primary(self) -> ast.Node:
        tok = self.tok
        if tok.kind in ("num", "str"):
            self.i += 1
            return ast.Lit(tok.line, tok.value)
        if self.accept("("):
            inner = self.expression()
            self.expect(")")
            return inner
        if self.at("["):
            return self.collection_literal()
        if tok.kind != "id":
            raise self.error("expected an expression")
        return self.word(tok)

    def word(self, tok: Token) -> ast.Node:
        text = tok.text
        literal = {"null": None, "true": True, "false": False}
        if text in literal:
            self.i += 1
            return ast.Lit(tok.line, literal[text])
        if text == "new":
            self.i += 1
            return self.new_expression(tok.line)
        if text in _UNSUPPORTED_KEYWORDS:
            raise unsupported(_UNSUPPORTED_KEYWORDS[text], tok.line)
        self.i += 1
        if text in STATIC_CLASSES and self.at("."):
            self.i += 1
            name = self.identifier()
            if self.at("("):
                return ast.StaticCall(tok.line, text, name, self.arguments())
            return ast.StaticField(tok.line, text, name)
        if self.at("("):
            return ast.Call(tok.line, None, text, self.arguments(), False)
        return ast.Name(tok.line, text)

    def new_expression(self, line: int) -> ast.Node:
        tok = self.tok
        if tok.kind != "id" or not (tok.text in DECL_TYPES or tok.text in _EXCEPTIONS):
            raise unsupported(f"new {tok.text}", tok.line)
        self.i += 1
        if self.accept("[") and tok.text in DECL_TYPES:
            if self.accept("]"):
                while self.accept("["):
                    self.expect("]")
                return ast.NewArray(line, tok.text, None, self.array_initializer())
            size = self.expression()
            self.expect("]")
            if self.at("["):
                raise unsupported("multi-dimensional array", line)
            return ast.NewArray(line, tok.text, size, ())
        return ast.New(line, tok.text, self.arguments())

    def array_initializer(self) -> tuple[ast.Node, ...]:
        self.expect("{")
        items: list[ast.Node] = []
        while not self.accept("}"):
            if items:
                self.expect(",")
            items.append(self.expression())
        return tuple(items)

    def collection_literal(self) -> ast.Node:
        line = self.expect("[").line
        if self.accept(":"):
            self.expect("]")
            return ast.MapLit(line, ())
        if self.accept("]"):
            return ast.ListLit(line, ())
        first = self.expression()
        if self.accept(":"):
            pairs = [(first, self.expression())]
            while self.accept(","):
                key = self.expression()
                self.expect(":")
                pairs.append((key, self.expression()))
            self.expect("]")
            return ast.MapLit(line, tuple(pairs))
        items = [first]
        while self.accept(","):
            items.append(self.expression())
        self.expect("]")
        return ast.ListLit(line, tuple(items))
