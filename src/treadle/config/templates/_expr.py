"""The `${ }` expression language: a recursive-descent parser for expr-lang syntax that
compiles straight to closures.

Grammar (expr-lang precedence, lowest first): `?:` · `|` (pipe) · `or ||` · `and &&` ·
`== != < > <= >= in matches contains startsWith endsWith` (each may be negated with `not`) ·
`..` · `+ -` · `* / %` · unary `not ! - +` · `** ^` (right-assoc) · `??` · postfix `.x ?.x
[i] [a:b]`. Literals: numbers, strings, `true false nil`, `[...]`, `{k: v}`. `let x = e; body`.
Calls go only to the registered function table; method calls do not exist, and member
access only indexes mappings and sequences, so nothing can reach Python internals.

Names resolve against the data root, with the Go project's namespaces: `steps`, `trigger`,
`body` (alias of `trigger`), `meta`, `current` / `$env` (the root itself).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from treadle.errors import TemplateError

from ._common import FuncError, Scope, template_error
from ._expr_lex import ETok, tokenize
from ._expr_ops import (
    arith,
    as_bool,
    compare,
    equal,
    fetch,
    make_range,
    member_in,
    negate,
    slice_value,
    string_op,
)
from ._functions import EXPR_FUNCS, PREDICATES

__all__ = ["compile_block", "compile_expression"]

_BINARY: dict[str, tuple[int, bool]] = {  # operator -> (precedence, right-associative)
    "|": (0, False),
    "or": (10, False),
    "||": (10, False),
    "and": (15, False),
    "&&": (15, False),
    "==": (20, False),
    "!=": (20, False),
    "<": (20, False),
    ">": (20, False),
    ">=": (20, False),
    "<=": (20, False),
    "in": (20, False),
    "matches": (20, False),
    "contains": (20, False),
    "startsWith": (20, False),
    "endsWith": (20, False),
    "..": (25, False),
    "+": (30, False),
    "-": (30, False),
    "*": (60, False),
    "/": (60, False),
    "%": (60, False),
    "**": (100, True),
    "^": (100, True),
    "??": (500, False),
}
_WORD_OPS = ("or", "and", "in", "matches", "contains", "startsWith", "endsWith")
_NEGATABLE = ("in", "matches", "contains", "startsWith", "endsWith")
_UNARY = {"not": 50, "!": 50, "-": 90, "+": 90}


class _Env:
    """Evaluation state: the data root, strictness, `let` locals and predicate frames."""

    __slots__ = ("data", "frames", "locals", "strict")

    def __init__(self, data: Mapping[str, Any], strict: bool) -> None:
        self.data = data
        self.strict = strict
        self.locals: dict[str, Any] | None = None
        self.frames: list[list[Any]] = []  # [item, index, acc] per active predicate


Fn = Callable[[_Env], Any]


def compile_block(source: str, start: int, end: int) -> Callable[[Scope], Any]:
    """Compile the body of a `${ }` block found at `source[start:end]`."""
    fn = _Parser(source, start, end).parse()
    return lambda scope: fn(_Env(scope.data, scope.strict))


def compile_expression(source: str) -> Callable[[Mapping[str, Any], bool], Any]:
    """Compile a bare expression (a condition such as `steps.check.ok && x > 1`)."""
    fn = _Parser(source, 0, len(source)).parse()
    return lambda data, strict: fn(_Env(data, strict))


def _const(value: Any) -> Fn:
    return lambda env: value


class _Parser:
    def __init__(self, source: str, start: int, end: int) -> None:
        self.source = source
        self.toks = tokenize(source, start, end)
        self.i = 0
        self.predicates = 0

    # -- helpers ------------------------------------------------------------------------

    @property
    def cur(self) -> ETok:
        return self.toks[self.i]

    def peek(self, offset: int = 1) -> ETok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def is_op(self, value: str, tok: ETok | None = None) -> bool:
        tok = tok or self.cur
        return tok.kind == "op" and tok.value == value

    def expect(self, value: str) -> ETok:
        tok = self.cur
        if not self.is_op(value):
            raise self.error(tok, f"expected {value!r}, found {self._describe(tok)}")
        self.i += 1
        return tok

    def error(self, tok: ETok | int, problem: str) -> TemplateError:
        pos = tok if isinstance(tok, int) else tok.pos
        return template_error(self.source, pos, problem)

    @staticmethod
    def _describe(tok: ETok) -> str:
        return "end of expression" if tok.kind == "eof" else repr(tok.value)

    def guard(self, pos: int, op: Callable[[_Env], Any]) -> Fn:
        """Re-raise runtime FuncErrors of `op` as TemplateErrors at `pos`."""
        source = self.source

        def guarded(env: _Env) -> Any:
            try:
                return op(env)
            except FuncError as exc:
                raise template_error(source, pos, str(exc)) from None

        return guarded

    # -- grammar ------------------------------------------------------------------------

    def parse(self) -> Fn:
        if self.cur.kind == "eof":
            raise self.error(self.cur, "empty expression")
        try:
            fn = self.program()
        except RecursionError:
            raise self.error(self.cur, "expression nested too deeply") from None
        if self.cur.kind != "eof":
            raise self.error(self.cur, f"unexpected {self._describe(self.cur)}")
        return fn

    def program(self) -> Fn:
        if self.cur.kind == "ident" and self.cur.value == "let":
            self.i += 1
            name_tok = self.cur
            if name_tok.kind != "ident":
                raise self.error(name_tok, "expected a variable name after let")
            self.i += 1
            self.expect("=")
            value = self.expression(0)
            self.expect(";")
            body = self.program()
            name = name_tok.value

            def let_(env: _Env) -> Any:
                saved = env.locals
                env.locals = {**(saved or {}), name: value(env)}
                try:
                    return body(env)
                finally:
                    env.locals = saved

            return let_
        return self.expression(0)

    def binary_op(self) -> tuple[str, bool, int] | None:
        tok = self.cur
        if tok.kind == "op" and tok.value in _BINARY:
            return tok.value, False, 1
        if tok.kind == "ident":
            if tok.value in _WORD_OPS:
                return tok.value, False, 1
            nxt = self.peek()
            if tok.value == "not" and nxt.kind == "ident" and nxt.value in _NEGATABLE:
                return nxt.value, True, 2
        return None

    def expression(self, precedence: int) -> Fn:
        left = self.unary()
        while (found := self.binary_op()) is not None:
            op, negated, width = found
            prec, right_assoc = _BINARY[op]
            if prec < precedence:
                break
            pos = self.cur.pos
            self.i += width
            if op == "|":
                left = self.call(self._call_name(), piped=left)
                continue
            right = self.expression(prec if right_assoc else prec + 1)
            left = self.binary(op, negated, left, right, pos)
        if precedence == 0 and self.is_op("?"):
            pos = self.cur.pos
            self.i += 1
            then = self.expression(0)
            self.expect(":")
            other = self.expression(0)
            cond = left
            left = self.guard(
                pos, lambda env: then(env) if as_bool(cond(env), "?:") else other(env)
            )
        return left

    def binary(self, op: str, negated: bool, left: Fn, right: Fn, pos: int) -> Fn:
        if op in ("and", "&&"):
            return self.guard(pos, lambda env: as_bool(left(env), op) and as_bool(right(env), op))
        if op in ("or", "||"):
            return self.guard(pos, lambda env: as_bool(left(env), op) or as_bool(right(env), op))
        if op == "??":

            def coalesce(env: _Env) -> Any:
                strict, env.strict = env.strict, False  # a missing left side is the point
                try:
                    value = left(env)
                finally:
                    env.strict = strict
                return right(env) if value is None else value

            return coalesce
        fn: Callable[[Any, Any], Any]
        if op == "==":
            fn = equal
        elif op == "!=":
            fn = lambda a, b: not equal(a, b)  # noqa: E731
        elif op in ("<", "<=", ">", ">="):
            fn = lambda a, b: compare(op, a, b)  # noqa: E731
        elif op == "in":
            fn = member_in
        elif op in _NEGATABLE:
            fn = lambda a, b: string_op(op, a, b)  # noqa: E731
        elif op == "..":
            fn = make_range
        else:
            fn = lambda a, b: arith(op, a, b)  # noqa: E731
        if negated:
            inner = fn
            fn = lambda a, b: not inner(a, b)  # noqa: E731
        return self.guard(pos, lambda env: fn(left(env), right(env)))

    def unary(self) -> Fn:
        tok = self.cur
        word = tok.value if tok.kind in ("op", "ident") else None
        if word in _UNARY and (tok.kind == "op" or word == "not"):
            self.i += 1
            operand = self.expression(_UNARY[str(word)])
            if word in ("not", "!"):
                return self.guard(tok.pos, lambda env: not as_bool(operand(env), "not"))
            op = str(word)
            return self.guard(tok.pos, lambda env: negate(op, operand(env)))
        fn, _label = self.postfix(*self.primary())
        return fn

    def primary(self) -> tuple[Fn, str]:
        tok = self.cur
        self.i += 1
        if tok.kind in ("num", "str"):
            return _const(tok.value), ""
        if tok.kind == "ident":
            if tok.value in ("true", "false", "nil"):
                return _const({"true": True, "false": False, "nil": None}[tok.value]), ""
            if self.is_op("("):
                self.i -= 1
                return self.call(self._call_name()), ""
            return self.name(tok), tok.value
        if tok.kind == "pointer":
            return self.pointer(tok), "#"
        if tok.kind == "op":
            if tok.value == "(":
                inner = self.expression(0)
                self.expect(")")
                return inner, ""
            if tok.value == "[":
                return self.array(), ""
            if tok.value == "{":
                return self.mapping(), ""
            if tok.value == "." and self.predicates and self.cur.kind == "ident":
                self.i -= 1
                return self.pointer(ETok("pointer", "", tok.pos)), "#"
        raise self.error(tok, f"unexpected {self._describe(tok)}")

    def postfix(self, fn: Fn, label: str) -> tuple[Fn, str]:
        while True:
            tok = self.cur
            if tok.kind != "op" or tok.value not in (".", "?.", "["):
                return fn, label
            self.i += 1
            optional = tok.value == "?."
            if tok.value in (".", "?.") and self.cur.kind == "ident":
                key: Any = self.cur.value
                self.i += 1
                if self.is_op("("):
                    raise self.error(self.cur, f"method calls are not supported ({key}(...))")
                label = f"{label}.{key}" if label else ""
                fn = self.member(fn, _const(key), label, optional, tok.pos)
                continue
            if tok.value == "?.":
                self.expect("[")
            if self.is_op(":"):
                self.i += 1
                fn = self.slice(fn, None, tok.pos)
                continue
            index = self.expression(0)
            if self.is_op(":"):
                self.i += 1
                fn = self.slice(fn, index, tok.pos)
                continue
            self.expect("]")
            const = self.toks[self.i - 2]
            literal = const.kind in ("str", "num") and self.toks[self.i - 3] is tok
            label = f"{label}.{const.value}" if label and literal else ""
            fn = self.member(fn, index, label, optional, tok.pos)

    def slice(self, base: Fn, lo: Fn | None, pos: int) -> Fn:
        hi = None if self.is_op("]") else self.expression(0)
        self.expect("]")
        return self.guard(
            pos,
            lambda env: slice_value(base(env), lo(env) if lo else None, hi(env) if hi else None),
        )

    def member(self, base: Fn, key: Fn, label: str, optional: bool, pos: int) -> Fn:
        source = self.source

        def member_(env: _Env) -> Any:
            container = base(env)
            k = key(env)
            if container is None:
                if env.strict and not optional:
                    raise template_error(source, pos, f"missing key {label or k}")
                return None
            if type(container) is dict:
                try:
                    return container[k]
                except KeyError:
                    found = False
                except TypeError:
                    raise template_error(source, pos, f"invalid map key {k!r}") from None
            else:
                try:
                    found, value = fetch(container, k)
                except FuncError as exc:
                    raise template_error(source, pos, str(exc)) from None
                if found:
                    return value
            if env.strict and not found:
                raise template_error(source, pos, f"missing key {label or k}")
            return None

        return member_

    def name(self, tok: ETok) -> Fn:
        name, source, pos = tok.value, self.source, tok.pos

        def name_(env: _Env) -> Any:
            if env.locals is not None and name in env.locals:
                return env.locals[name]
            data = env.data
            if name in data:
                if name == "body" and "trigger" in data:
                    return data["trigger"]
                return data[name]
            if name == "body" and "trigger" in data:
                return data["trigger"]
            if name in ("current", "$env"):
                return data
            if env.strict:
                raise template_error(source, pos, f"undefined variable {name}")
            return None

        return name_

    def pointer(self, tok: ETok) -> Fn:
        slot = {"": 0, "index": 1, "acc": 2}.get(tok.value)
        if slot is None or not self.predicates:
            raise self.error(tok, f"#{tok.value} is only valid inside a predicate")
        return lambda env: env.frames[-1][slot]

    def array(self) -> Fn:
        items: list[Fn] = []
        while not self.is_op("]"):
            items.append(self.expression(0))
            if not self.is_op("]"):
                self.expect(",")
        self.i += 1
        return lambda env: [item(env) for item in items]

    def mapping(self) -> Fn:
        pairs: list[tuple[Fn, Fn]] = []
        while not self.is_op("}"):
            tok = self.cur
            if tok.kind in ("ident", "str", "num"):
                self.i += 1
                key = _const(tok.value)
            elif self.is_op("("):
                self.i += 1
                key = self.expression(0)
                self.expect(")")
            else:
                raise self.error(tok, f"unexpected {self._describe(tok)} as map key")
            self.expect(":")
            pairs.append((key, self.expression(0)))
            if not self.is_op("}"):
                self.expect(",")
        self.i += 1
        return lambda env: {k(env): v(env) for k, v in pairs}

    # -- calls ----------------------------------------------------------------------------

    def _call_name(self) -> ETok:
        tok = self.cur
        if tok.kind != "ident" or not self.is_op("(", self.peek()):
            raise self.error(tok, "expected a function call")
        return tok

    def call(self, name_tok: ETok, piped: Fn | None = None) -> Fn:
        name, pos = name_tok.value, name_tok.pos
        self.i += 2  # name and "("
        if name in PREDICATES:
            return self.predicate_call(name_tok, piped)
        spec = EXPR_FUNCS.get(name)
        if spec is None:
            raise self.error(name_tok, f"unknown function {name}")
        args: list[Fn] = [] if piped is None else [piped]
        while not self.is_op(")"):
            args.append(self.expression(0))
            if not self.is_op(")"):
                self.expect(",")
        self.i += 1
        if len(args) < spec.min_args or (spec.max_args is not None and len(args) > spec.max_args):
            raise self.error(name_tok, f"wrong number of arguments for {name}: got {len(args)}")
        fn, source = spec.fn, self.source

        def call_(env: _Env) -> Any:
            values = [a(env) for a in args]
            try:
                return fn(*values)
            except TemplateError:
                raise
            except Exception as exc:
                raise template_error(source, pos, f"error calling {name}: {exc}") from None

        return call_

    def predicate_call(self, name_tok: ETok, piped: Fn | None) -> Fn:
        name = name_tok.value
        items = piped if piped is not None else self.expression(0)
        if piped is None:
            self.expect(",")
        self.predicates += 1
        try:
            if self.is_op("{"):
                self.i += 1
                pred = self.program()
                self.expect("}")
            else:
                pred = self.expression(0)
        finally:
            self.predicates -= 1
        init: Fn | None = None
        if name == "reduce" and self.is_op(","):
            self.i += 1
            init = self.expression(0)
        self.expect(")")
        return self.guard(name_tok.pos, _predicate(name, items, pred, init))


def _predicate(name: str, items_fn: Fn, pred: Fn, init: Fn | None) -> Fn:
    def run(env: _Env) -> Any:
        items = items_fn(env)
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise FuncError(f"{name} expects an array")
        frame: list[Any] = [None, 0, None]
        env.frames.append(frame)
        try:
            if name == "reduce":
                rest = list(enumerate(items))
                if init is not None:
                    frame[2] = init(env)
                elif rest:
                    frame[2] = rest.pop(0)[1]
                for i, item in rest:
                    frame[0], frame[1] = item, i
                    frame[2] = pred(env)
                return frame[2]
            if name == "map":
                out = []
                for i, item in enumerate(items):
                    frame[0], frame[1] = item, i
                    out.append(pred(env))
                return out
            order = (
                reversed(list(enumerate(items)))
                if name.startswith("findLast")
                else enumerate(items)
            )
            hits: list[tuple[int, Any]] = []
            for i, item in order:
                frame[0], frame[1] = item, i
                if as_bool(pred(env), name):
                    hits.append((i, item))
                    if name.startswith("find") or name in ("any",):
                        break
                elif name in ("all",):
                    return False
        finally:
            env.frames.pop()
        if name in ("find", "findLast"):
            return hits[0][1] if hits else None
        if name in ("findIndex", "findLastIndex"):
            return hits[0][0] if hits else -1
        return {
            "all": True,
            "any": bool(hits),
            "none": not hits,
            "one": len(hits) == 1,
            "count": len(hits),
            "filter": [item for _, item in hits],
        }[name]

    return run
