"""Tree-walking evaluator for parsed Painless scripts, with Java semantics and step / time / size limits."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlsearch.errors import IllegalArgumentError
from mlsearch.painless import methods as jm
from mlsearch.painless import nodes as ast
from mlsearch.painless.builtins import BUILTIN_FUNCTIONS
from mlsearch.painless.java import (
    JavaFloat,
    StringBuilder,
    cast,
    default_value,
    is_instance,
    is_number,
    java_type_name,
    to_java_string,
    wrap_long,
)


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = 1_000_000
    timeout_seconds: float = 2.0
    max_string_length: int = 16 * 1024 * 1024
    max_elements: int = 1_000_000
    max_call_depth: int = 20


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Var:
    __slots__ = ("type_name", "value")

    def __init__(self, type_name: str, value: Any) -> None:
        self.type_name = type_name
        self.value = value


class Interpreter:
    """Runs one script once; not shared between threads (the parsed program is)."""

    def __init__(self, program: ast.Program, functions: dict[str, ast.Function], limits: Limits) -> None:
        self.program = program
        self.functions = functions
        self.limits = limits
        self.steps = 0
        self.deadline = time.monotonic() + limits.timeout_seconds
        self.scopes: list[dict[str, _Var]] = []
        self.call_depth = 0

    def run(self, variables: dict[str, Any]) -> Any:
        """Run the program with ``variables`` (``params``, and ``ctx`` for update scripts) bound as ``def``."""
        self.scopes = [{name: _Var("def", value) for name, value in variables.items()}]
        try:
            for stmt in self.program.body:
                self.execute(stmt)
        except _Return as ret:
            return ret.value
        except (_Break, _Continue):
            raise IllegalArgumentError("invalid Painless script: break or continue outside a loop") from None
        return None

    # --- bookkeeping ---------------------------------------------------------------------------------------------
    def tick(self, line: int) -> None:
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise IllegalArgumentError(
                f"script exceeded the limit of {self.limits.max_steps} steps at line {line}; is there an endless loop?"
            )
        if self.steps & 1023 == 0 and time.monotonic() > self.deadline:
            raise IllegalArgumentError(
                f"script exceeded the time limit of {self.limits.timeout_seconds}s at line {line}"
            )

    def check_size(self, value: Any, line: int) -> Any:
        if isinstance(value, str | StringBuilder) and len(value) > self.limits.max_string_length:
            raise IllegalArgumentError(
                f"script built a string longer than {self.limits.max_string_length} characters at line {line}"
            )
        if isinstance(value, list | dict) and len(value) > self.limits.max_elements:
            raise IllegalArgumentError(
                f"script built a collection larger than {self.limits.max_elements} elements at line {line}"
            )
        return value

    def lookup(self, name: str, line: int) -> _Var:
        for scope in reversed(self.scopes):
            var = scope.get(name)
            if var is not None:
                return var
        raise IllegalArgumentError(f"cannot resolve symbol [{name}] at line {line}")

    def declare(self, name: str, type_name: str, value: Any, line: int) -> None:
        if any(name in scope for scope in self.scopes):
            raise IllegalArgumentError(f"variable [{name}] is already defined at line {line}")
        self.scopes[-1][name] = _Var(type_name, value)

    # --- statements ----------------------------------------------------------------------------------------------
    def execute(self, node: ast.Node) -> None:
        self.tick(node.line)
        _STATEMENTS[type(node)](self, node)

    def exec_block(self, node: ast.Block) -> None:
        self.scopes.append({})
        try:
            for stmt in node.body:
                self.execute(stmt)
        finally:
            self.scopes.pop()

    def exec_scoped(self, node: ast.Node) -> None:
        """A loop or if body that is a single statement still gets its own scope."""
        if isinstance(node, ast.Block):
            self.exec_block(node)
            return
        self.scopes.append({})
        try:
            self.execute(node)
        finally:
            self.scopes.pop()

    def exec_decl(self, node: ast.Decl) -> None:
        for name, init in node.names:
            if init is None:
                value = default_value(node.type_name)
            else:
                value = cast(self.evaluate(init), node.type_name, explicit=False, line=node.line)
            self.declare(name, node.type_name, value, node.line)

    def exec_if(self, node: ast.If) -> None:
        if self.truth(node.cond):
            self.exec_scoped(node.then)
        elif node.other is not None:
            self.exec_scoped(node.other)

    def exec_while(self, node: ast.While) -> None:
        if node.test_first and not self.truth(node.cond):
            return
        while True:
            try:
                self.exec_scoped(node.body)
            except _Break:
                return
            except _Continue:
                pass
            if not self.truth(node.cond):
                return

    def exec_for(self, node: ast.For) -> None:
        self.scopes.append({})
        try:
            if node.init is not None:
                self.execute(node.init)
            while node.cond is None or self.truth(node.cond):
                try:
                    self.exec_scoped(node.body)
                except _Break:
                    return
                except _Continue:
                    pass
                for update in node.updates:
                    self.evaluate(update)
        finally:
            self.scopes.pop()

    def exec_for_each(self, node: ast.ForEach) -> None:
        iterable = self.evaluate(node.iterable)
        if not isinstance(iterable, list):
            raise jm.runtime_error(f"Cannot iterate over [{java_type_name(iterable)}]", node.line)
        for item in list(iterable):
            self.scopes.append(
                {node.name: _Var(node.type_name, cast(item, node.type_name, explicit=False, line=node.line))}
            )
            try:
                self.exec_scoped(node.body)
            except _Break:
                return
            except _Continue:
                pass
            finally:
                self.scopes.pop()

    def exec_return(self, node: ast.Return) -> None:
        raise _Return(None if node.value is None else self.evaluate(node.value))

    def exec_throw(self, node: ast.Throw) -> None:
        raise IllegalArgumentError(jm.script_exception_message(self.evaluate(node.value), node.line))

    def exec_break(self, node: ast.Node) -> None:
        raise _Break

    def exec_continue(self, node: ast.Node) -> None:
        raise _Continue

    def truth(self, node: ast.Node) -> bool:
        value = self.evaluate(node)
        if not isinstance(value, bool):
            raise jm.runtime_error(f"Cannot cast from [{java_type_name(value)}] to [boolean]", node.line)
        return value

    # --- expressions ---------------------------------------------------------------------------------------------
    def evaluate(self, node: ast.Node) -> Any:
        self.tick(node.line)
        return _EXPRESSIONS[type(node)](self, node)

    def eval_name(self, node: ast.Name) -> Any:
        return self.lookup(node.name, node.line).value

    def eval_list(self, node: ast.ListLit) -> Any:
        return [self.evaluate(item) for item in node.items]

    def eval_map(self, node: ast.MapLit) -> Any:
        return {self.evaluate(k): self.evaluate(v) for k, v in node.pairs}

    def eval_field(self, node: ast.Field) -> Any:
        obj = self.evaluate(node.obj)
        if obj is None and node.null_safe:
            return None
        return jm.get_field(obj, node.name, node.line)

    def eval_index(self, node: ast.Index) -> Any:
        return jm.get_index(self.evaluate(node.obj), self.evaluate(node.index), node.line)

    def eval_call(self, node: ast.Call) -> Any:
        if node.obj is None:
            return self.call_function(node)
        receiver = self.evaluate(node.obj)
        if receiver is None and node.null_safe:
            return None
        args = [self.evaluate(arg) for arg in node.args]
        result = jm.call_method(receiver, node.name, args, node.line)
        self.check_size(receiver, node.line)
        return self.check_size(result, node.line)

    def call_function(self, node: ast.Call) -> Any:
        function = self.functions.get(node.name)
        if function is None and node.name in BUILTIN_FUNCTIONS:
            return self.call_builtin(node)
        if function is None or len(function.params) != len(node.args):
            raise jm.IllegalArgumentError(
                f"unsupported Painless construct [function {node.name}/{len(node.args)}] at line {node.line}"
            )
        args = [self.evaluate(arg) for arg in node.args]
        if self.call_depth >= self.limits.max_call_depth:
            raise IllegalArgumentError(f"script functions recurse too deeply at line {node.line}")
        frame = {
            name: _Var(t, cast(v, t, explicit=False, line=node.line))
            for (t, name), v in zip(function.params, args, strict=True)
        }
        saved, self.scopes = self.scopes, [frame]
        self.call_depth += 1
        try:
            self.exec_block(function.body)
            result = None
        except _Return as ret:
            result = ret.value
        finally:
            self.scopes = saved
            self.call_depth -= 1
        if function.return_type == "void":
            return None
        return cast(result, function.return_type, explicit=False, line=node.line)

    def call_builtin(self, node: ast.Call) -> Any:
        """A function the interpreter provides (``escape``), used only when the script declares none by that name."""
        arity, implementation = BUILTIN_FUNCTIONS[node.name]
        if arity != len(node.args):
            raise IllegalArgumentError(
                f"unsupported Painless construct [function {node.name}/{len(node.args)}] at line {node.line}"
            )
        args = [self.evaluate(arg) for arg in node.args]
        return self.check_size(implementation(args, node.line), node.line)

    def eval_static_call(self, node: ast.StaticCall) -> Any:
        args = [self.evaluate(arg) for arg in node.args]
        return self.check_size(jm.call_static(node.cls, node.name, args, node.line), node.line)

    def eval_static_field(self, node: ast.StaticField) -> Any:
        return jm.static_field(node.cls, node.name, node.line)

    def eval_new(self, node: ast.New) -> Any:
        return jm.construct(node.type_name, [self.evaluate(arg) for arg in node.args], node.line)

    def eval_new_array(self, node: ast.NewArray) -> Any:
        if node.size is None:
            return jm.JavaArray(
                cast(self.evaluate(i), node.type_name, explicit=False, line=node.line) for i in node.items
            )
        return jm.new_array(node.type_name, self.evaluate(node.size), node.line, self.limits.max_elements)

    def eval_unary(self, node: ast.Unary) -> Any:
        value = self.evaluate(node.operand)
        if node.op == "!":
            if not isinstance(value, bool):
                raise jm.runtime_error(f"Cannot apply [!] to type [{java_type_name(value)}]", node.line)
            return not value
        if not is_number(value) or (node.op == "~" and isinstance(value, float)):
            raise jm.runtime_error(f"Cannot apply [{node.op}] to type [{java_type_name(value)}]", node.line)
        if node.op == "-":
            return (
                JavaFloat(-value)
                if isinstance(value, JavaFloat)
                else (wrap_long(-value) if isinstance(value, int) else -value)
            )
        return ~value if node.op == "~" else value

    def eval_binary(self, node: ast.Binary) -> Any:
        op = node.op
        if op in ("&&", "||"):
            left = self.truth(node.left)
            if left == (op == "||"):
                return left
            return self.truth(node.right)
        left = self.evaluate(node.left)
        if op == "?:":
            return left if left is not None else self.evaluate(node.right)
        right = self.evaluate(node.right)
        return self.check_size(binary_op(op, left, right, node.line), node.line)

    def eval_ternary(self, node: ast.Ternary) -> Any:
        return self.evaluate(node.then if self.truth(node.cond) else node.other)

    def eval_cast(self, node: ast.Cast) -> Any:
        return cast(self.evaluate(node.expr), node.type_name, explicit=True, line=node.line)

    def eval_instanceof(self, node: ast.InstanceOf) -> Any:
        return is_instance(self.evaluate(node.expr), node.type_name)

    def eval_assign(self, node: ast.Assign) -> Any:
        value = self.evaluate(node.value)
        if node.op == "=":
            return self.store(node.target, lambda _old: value, explicit=False)
        op = node.op[:-1]
        return self.store(node.target, lambda old: binary_op(op, old, value, node.line), explicit=True)

    def eval_inc_dec(self, node: ast.IncDec) -> Any:
        before: list[Any] = []

        def bump(old: Any) -> Any:
            before.append(old)
            return binary_op("+" if node.op == "++" else "-", old, 1, node.line)

        after = self.store(node.target, bump, explicit=True)
        return after if node.prefix else before[0]

    def store(self, target: ast.Node, compute: Callable[[Any], Any], *, explicit: bool) -> Any:
        """Assign ``compute(old value)`` to a variable, map key or list / array slot; compound ops narrow like Java."""
        line = target.line
        if isinstance(target, ast.Name):
            var = self.lookup(target.name, line)
            var.value = cast(self.check_size(compute(var.value), line), var.type_name, explicit=explicit, line=line)
            return var.value
        if isinstance(target, ast.Field):
            obj = self.evaluate(target.obj)
            if not isinstance(obj, dict):
                raise jm.runtime_error(f"Cannot assign field [{target.name}] of [{java_type_name(obj)}]", line)
            value = obj[target.name] = self.check_size(compute(obj.get(target.name)), line)
            return value
        assert isinstance(target, ast.Index)  # the parser only builds Name, Field and Index targets
        obj = self.evaluate(target.obj)
        index = self.evaluate(target.index)
        old = None if isinstance(obj, dict) and index not in obj else jm.get_index(obj, index, line)
        value = self.check_size(compute(old), line)
        jm.set_index(obj, index, value, line)
        return value


_FAST_INT_OPS: dict[str, Callable[[int, int], Any]] = {
    "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
    "<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
    "==": lambda x, y: x == y, "!=": lambda x, y: x != y,
}  # fmt: skip


def binary_op(op: str, left: Any, right: Any, line: int) -> Any:
    if type(left) is int and type(right) is int and op in _FAST_INT_OPS:
        # Loop counters and indexes: the common case, decided without the general promotion rules below.
        result = _FAST_INT_OPS[op](left, right)
        return wrap_long(result) if type(result) is int else result
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        return to_java_string(left) + to_java_string(right)
    if op in ("==", "!="):
        return painless_equals(left, right) == (op == "==")
    if op in ("===", "!=="):
        same = left is right if isinstance(left, list | dict | StringBuilder) else painless_equals(left, right)
        return same == (op == "===")
    if op in ("&", "|", "^") and isinstance(left, bool) and isinstance(right, bool):
        return {"&": left and right, "|": left or right, "^": left != right}[op]
    if not (is_number(left) and is_number(right)):
        raise jm.runtime_error(
            f"Cannot apply [{op}] operation to types [{java_type_name(left)}] and [{java_type_name(right)}]", line
        )
    if op in ("<", "<=", ">", ">="):
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]
    if isinstance(left, float) or isinstance(right, float):
        return _floating(op, float(left), float(right), line, single=_is_single(left, right))
    return wrap_long(_integral(op, left, right, line))


def _is_single(left: Any, right: Any) -> bool:
    """float op float / float op int stays float; any double makes it double."""
    kinds = [type(v) for v in (left, right) if isinstance(v, float)]
    return all(k is JavaFloat for k in kinds)


def _floating(op: str, a: float, b: float, line: int, *, single: bool) -> float:
    if op in ("&", "|", "^", "<<", ">>", ">>>"):
        raise jm.runtime_error(f"Cannot apply [{op}] operation to floating point values", line)
    if op == "+":
        result = a + b
    elif op == "-":
        result = a - b
    elif op == "*":
        result = a * b
    elif op == "/":
        result = (
            a / b
            if b != 0
            else (math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b))
        )
    else:
        result = math.fmod(a, b) if b != 0 and not math.isinf(a) else math.nan
    return JavaFloat(result) if single else result


def _integral(op: str, a: int, b: int, line: int) -> int:
    if op in ("/", "%") and b == 0:
        raise jm.runtime_error("ArithmeticException: / by zero", line)
    if op == "/":
        quotient = abs(a) // abs(b)
        return quotient if (a >= 0) == (b >= 0) else -quotient
    if op == "%":
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    if op in ("<<", ">>", ">>>"):
        shift = b & 63
        if op == "<<":
            return a << shift
        return a >> shift if op == ">>" else (a & (2**64 - 1)) >> shift
    table: dict[str, Callable[[int, int], int]] = {
        "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "&": lambda x, y: x & y, "|": lambda x, y: x | y, "^": lambda x, y: x ^ y,
    }  # fmt: skip
    return table[op](a, b)


def painless_equals(left: Any, right: Any) -> bool:
    """Painless ``==`` compares values (it calls ``equals``), with numeric promotion between number types."""
    if left is None or right is None:
        return left is right
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if is_number(left) and is_number(right):
        return bool(left == right)
    if isinstance(left, StringBuilder) or isinstance(right, StringBuilder):
        return left is right
    return bool(left == right)


_STATEMENTS: dict[type, Callable[[Interpreter, Any], None]] = {
    ast.Block: Interpreter.exec_block,
    ast.Decl: Interpreter.exec_decl,
    ast.ExprStmt: lambda self, node: self.evaluate(node.expr),
    ast.If: Interpreter.exec_if,
    ast.While: Interpreter.exec_while,
    ast.For: Interpreter.exec_for,
    ast.ForEach: Interpreter.exec_for_each,
    ast.Return: Interpreter.exec_return,
    ast.Throw: Interpreter.exec_throw,
    ast.Break: Interpreter.exec_break,
    ast.Continue: Interpreter.exec_continue,
}

_EXPRESSIONS: dict[type, Callable[[Interpreter, Any], Any]] = {
    ast.Lit: lambda self, node: node.value,
    ast.Name: Interpreter.eval_name,
    ast.ListLit: Interpreter.eval_list,
    ast.MapLit: Interpreter.eval_map,
    ast.Field: Interpreter.eval_field,
    ast.Index: Interpreter.eval_index,
    ast.Call: Interpreter.eval_call,
    ast.StaticCall: Interpreter.eval_static_call,
    ast.StaticField: Interpreter.eval_static_field,
    ast.New: Interpreter.eval_new,
    ast.NewArray: Interpreter.eval_new_array,
    ast.Unary: Interpreter.eval_unary,
    ast.Binary: Interpreter.eval_binary,
    ast.Ternary: Interpreter.eval_ternary,
    ast.Cast: Interpreter.eval_cast,
    ast.InstanceOf: Interpreter.eval_instanceof,
    ast.Assign: Interpreter.eval_assign,
    ast.IncDec: Interpreter.eval_inc_dec,
}
