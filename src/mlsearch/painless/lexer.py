"""Tokenizer for the Painless subset run by connector pre / post-process scripts.

Keywords are not told apart here: after a ``.`` any word is a field name (``params.embeddings.float``), so the
parser decides what a word means from where it stands.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlsearch.errors import IllegalArgumentError

TokenKind = Literal["num", "str", "id", "op", "eof"]

# Longest first, so that ">>>=" wins over ">>" and "==" over "=".
_OPERATORS = (
    ">>>=", ">>>", "===", "!==", "==~", "<<=", ">>=",
    "->", "::", "?.", "?:", "++", "--", "&&", "||", "==", "!=", "<=", ">=", "=~",
    "+=", "-=", "*=", "/=", "%=", "&=", "|=", "^=", "<<", ">>",
    "{", "}", "[", "]", "(", ")", ";", ",", ".", "?", ":", "+", "-", "*", "/", "%",
    "<", ">", "=", "!", "~", "&", "|", "^",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    value: object
    line: int


def tokenize(source: str) -> list[Token]:
    """Split a script into tokens; raise IllegalArgumentError naming the line of anything unreadable."""
    return _Lexer(source).run()


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.line = 1
        self.tokens: list[Token] = []

    def run(self) -> list[Token]:
        while self._skip_blank():
            ch = self.src[self.pos]
            if ch in "\"'":
                self._string(ch)
            elif ch.isdigit() or (ch == "." and self._peek(1).isdigit()):
                self._number()
            elif ch.isalpha() or ch in "_$":
                self._word()
            else:
                self._operator()
        self.tokens.append(Token("eof", "", None, self.line))
        return self.tokens

    def _peek(self, offset: int) -> str:
        i = self.pos + offset
        return self.src[i] if i < len(self.src) else ""

    def _skip_blank(self) -> bool:
        """Skip whitespace and comments; False at the end of the source."""
        src = self.src
        while self.pos < len(src):
            ch = src[self.pos]
            if ch == "\n":
                self.line += 1
                self.pos += 1
            elif ch.isspace():
                self.pos += 1
            elif src.startswith("//", self.pos):
                end = src.find("\n", self.pos)
                self.pos = len(src) if end < 0 else end
            elif src.startswith("/*", self.pos):
                end = src.find("*/", self.pos + 2)
                if end < 0:
                    raise IllegalArgumentError(f"unterminated comment at line {self.line}")
                self.line += src.count("\n", self.pos, end)
                self.pos = end + 2
            else:
                return True
        return False

    def _string(self, quote: str) -> None:
        # Painless knows only two escapes: the backslash and the quote; raw newlines are allowed inside.
        start_line = self.line
        out: list[str] = []
        i = self.pos + 1
        src = self.src
        while i < len(src):
            ch = src[i]
            if ch == quote:
                break
            if ch == "\\":
                nxt = src[i + 1] if i + 1 < len(src) else ""
                if nxt not in ("\\", quote):
                    raise IllegalArgumentError(
                        f"unsupported Painless construct [escape sequence \\{nxt}] at line {self.line}"
                    )
                out.append(nxt)
                i += 2
                continue
            if ch == "\n":
                self.line += 1
            out.append(ch)
            i += 1
        else:
            raise IllegalArgumentError(f"unterminated string literal at line {start_line}")
        self.tokens.append(Token("str", src[self.pos : i + 1], "".join(out), start_line))
        self.pos = i + 1

    def _number(self) -> None:
        src, start = self.src, self.pos
        if src.startswith(("0x", "0X"), start):
            i = start + 2
            while i < len(src) and src[i] in "0123456789abcdefABCDEF":
                i += 1
            self._finish_int(src[start:i], int(src[start + 2 : i], 16), i)
            return
        i = start
        while i < len(src) and src[i].isdigit():
            i += 1
        is_float = False
        if i < len(src) and src[i] == "." and i + 1 < len(src) and src[i + 1].isdigit():
            is_float = True
            i += 1
            while i < len(src) and src[i].isdigit():
                i += 1
        if i < len(src) and src[i] in "eE":
            j = i + 1
            if j < len(src) and src[j] in "+-":
                j += 1
            if j < len(src) and src[j].isdigit():
                is_float = True
                i = j
                while i < len(src) and src[i].isdigit():
                    i += 1
        text = src[start:i]
        suffix = src[i] if i < len(src) else ""
        if suffix in ("f", "F", "d", "D") or is_float:
            self._finish_float(text, suffix, i)
        else:
            self._finish_int(text, int(text), i)

    def _finish_int(self, text: str, value: int, end: int) -> None:
        if end < len(self.src) and self.src[end] in "lL":
            end += 1
        elif value > 2**31 - 1:
            raise IllegalArgumentError(f"integer literal [{text}] is out of range at line {self.line}")
        self.tokens.append(Token("num", self.src[self.pos : end], value, self.line))
        self.pos = end

    def _finish_float(self, text: str, suffix: str, end: int) -> None:
        from mlsearch.painless.java import JavaFloat

        value: float = float(text)
        if suffix in ("f", "F"):
            value = JavaFloat(value)
        if suffix in ("f", "F", "d", "D"):
            end += 1
        self.tokens.append(Token("num", self.src[self.pos : end], value, self.line))
        self.pos = end

    def _word(self) -> None:
        src, i = self.src, self.pos
        while i < len(src) and (src[i].isalnum() or src[i] in "_$"):
            i += 1
        text = src[self.pos : i]
        self.tokens.append(Token("id", text, text, self.line))
        self.pos = i

    def _operator(self) -> None:
        for op in _OPERATORS:
            if self.src.startswith(op, self.pos):
                self.tokens.append(Token("op", op, op, self.line))
                self.pos += len(op)
                return
        ch = self.src[self.pos]
        raise IllegalArgumentError(f"unexpected character [{ch}] at line {self.line}")
