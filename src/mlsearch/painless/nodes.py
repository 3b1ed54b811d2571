"""Syntax tree of the Painless subset: frozen nodes, so a parsed script can be cached and shared across threads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Node:
    line: int


# --- expressions -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Lit(Node):
    value: Any


@dataclass(frozen=True, slots=True)
class Name(Node):
    name: str


@dataclass(frozen=True, slots=True)
class ListLit(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit(Node):
    pairs: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Field(Node):
    obj: Node
    name: str
    null_safe: bool


@dataclass(frozen=True, slots=True)
class Index(Node):
    obj: Node
    index: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """``obj.name(args)``; ``obj`` is None for a call of a script-defined function such as ``escape(x)``."""

    obj: Node | None
    name: str
    args: tuple[Node, ...]
    null_safe: bool


@dataclass(frozen=True, slots=True)
class StaticCall(Node):
    cls: str
    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class StaticField(Node):
    cls: str
    name: str


@dataclass(frozen=True, slots=True)
class New(Node):
    type_name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NewArray(Node):
    type_name: str
    size: Node | None
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Unary(Node):
    op: str
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(frozen=True, slots=True)
class Assign(Node):
    op: str
    target: Node
    value: Node


@dataclass(frozen=True, slots=True)
class IncDec(Node):
    op: str
    target: Node
    prefix: bool


@dataclass(frozen=True, slots=True)
class Cast(Node):
    type_name: str
    expr: Node


@dataclass(frozen=True, slots=True)
class InstanceOf(Node):
    expr: Node
    type_name: str


# --- statements ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Block(Node):
    body: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Decl(Node):
    type_name: str
    names: tuple[tuple[str, Node | None], ...]


@dataclass(frozen=True, slots=True)
class ExprStmt(Node):
    expr: Node


@dataclass(frozen=True, slots=True)
class If(Node):
    cond: Node
    then: Node
    other: Node | None


@dataclass(frozen=True, slots=True)
class While(Node):
    cond: Node
    body: Node
    test_first: bool


@dataclass(frozen=True, slots=True)
class For(Node):
    init: Node | None
    cond: Node | None
    updates: tuple[Node, ...]
    body: Node


@dataclass(frozen=True, slots=True)
class ForEach(Node):
    type_name: str
    name: str
    iterable: Node
    body: Node


@dataclass(frozen=True, slots=True)
class Return(Node):
    value: Node | None


@dataclass(frozen=True, slots=True)
class Break(Node):
    pass


@dataclass(frozen=True, slots=True)
class Continue(Node):
    pass


@dataclass(frozen=True, slots=True)
class Throw(Node):
    value: Node


@dataclass(frozen=True, slots=True)
class Function(Node):
    return_type: str
    name: str
    params: tuple[tuple[str, str], ...]
    body: Block


@dataclass(frozen=True, slots=True)
class Program(Node):
    functions: tuple[Function, ...]
    body: tuple[Node, ...]
