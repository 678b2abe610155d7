"""Compile a parsed template into nested closures and run them.

Compiling to closures (rather than walking the tree on every render) keeps a cached
`{{ .steps.x.y }}` render to a few microseconds. Lookups only ever index mappings and
sequences: there is no attribute access, so `{{ .__class__ }}` is just a missing key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from treadle.errors import TemplateError

from ._common import MAX_ITEMS, FuncError, Scope, go_truth, template_error
from ._expr import compile_block
from ._functions import GO_FUNCS, index_path
from ._gofmt import go_str, sorted_items, type_name
from ._parser import (
    ActionNode,
    Cmd,
    Control,
    Dot,
    Expr,
    Field,
    Func,
    Lit,
    Loop,
    Node,
    Operand,
    Pipe,
    Sub,
    TextNode,
    Var,
    parse,
)

__all__ = ["Template", "compile_template"]

NO_VALUE = "<no value>"


class _State(Scope):
    """Per-render state: data root, strictness, variables and output."""

    __slots__ = ("out", "source", "vars")

    def __init__(self, source: str, data: Mapping[str, Any], strict: bool) -> None:
        Scope.__init__(self, data, strict)
        self.source = source
        self.vars: list[list[Any]] = []
        self.out: list[str] = []


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NO = object()  # "no piped value"
Value = Callable[[_State, Any], Any]
Stmt = Callable[[_State, Any], None]
CmdFn = Callable[[_State, Any, Any], Any]


def _print(value: Any) -> str:
    if type(value) is str:
        return value
    return NO_VALUE if value is None else go_str(value)


def _missing(st: _State, pos: int, label: str) -> None:
    if st.strict:
        raise template_error(st.source, pos, f"missing key {label}")


def _walk(st: _State, value: Any, names: list[str], pos: int, label: str) -> Any:
    """Follow `.a.b.c` through mappings. A missing key is nil (strict mode: an error)."""
    for i, name in enumerate(names):
        if type(value) is dict:
            try:
                value = value[name]
                continue
            except KeyError:
                pass
        elif isinstance(value, Mapping):
            if name in value:  # never index a defaultdict blindly: it would insert the key
                value = value[name]
                continue
        elif value is not None:
            raise template_error(
                st.source, pos, f"can't evaluate field {name} in type {type_name(value)}"
            )
        _missing(st, pos, ".".join([label, *names[: i + 1]]).lstrip("."))
        return None
    return value


class _Compiler:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, pos: int, problem: str) -> TemplateError:
        return template_error(self.source, pos, problem)

    # -- statements ---------------------------------------------------------------------

    def block(self, nodes: list[Node]) -> Stmt:
        stmts = [self.stmt(n) for n in nodes]
        if len(stmts) == 1:
            return stmts[0]

        def run(st: _State, dot: Any) -> None:
            for stmt in stmts:
                stmt(st, dot)

        return run

    def stmt(self, node: Node) -> Stmt:
        if isinstance(node, TextNode):
            text = node.text

            def text_(st: _State, dot: Any) -> None:
                st.out.append(text)

            return text_
        if isinstance(node, Expr):
            expr = self.expr(node)

            def expr_(st: _State, dot: Any) -> None:
                value = expr(st, dot)
                st.out.append("" if value is None else go_str(value))

            return expr_
        if isinstance(node, ActionNode):
            pipe = self.pipe(node.pipe)
            if node.pipe.decl:

                def decl_(st: _State, dot: Any) -> None:
                    pipe(st, dot)

                return decl_

            def action_(st: _State, dot: Any) -> None:
                st.out.append(_print(pipe(st, dot)))

            return action_
        if isinstance(node, Loop):
            signal = _Break if node.kind == "break" else _Continue

            def loop_(st: _State, dot: Any) -> None:
                raise signal

            return loop_
        return self.control(node)

    def control(self, node: Control) -> Stmt:
        body = self.block(node.body)
        else_body = self.block(node.else_body) if node.else_body else None
        if node.kind == "range":
            return self.range_(node, body, else_body)
        pipe = self.pipe(node.pipe)
        is_with = node.kind == "with"

        def control_(st: _State, dot: Any) -> None:
            mark = len(st.vars)
            value = pipe(st, dot)
            if go_truth(value):
                body(st, value if is_with else dot)
            elif else_body is not None:
                else_body(st, dot)
            del st.vars[mark:]

        return control_

    def range_(self, node: Control, body: Stmt, else_body: Stmt | None) -> Stmt:
        decl = node.pipe.decl
        pipe = self.pipe(Pipe(node.pipe.pos, node.pipe.cmds))
        pos, source = node.pos, self.source

        def pairs(value: Any) -> list[tuple[Any, Any]]:
            if value is None:
                return []
            if isinstance(value, list | tuple):
                return list(enumerate(value))
            if isinstance(value, Mapping):
                return sorted_items(value)
            if isinstance(value, int) and not isinstance(value, bool):
                if len(decl) > 1:
                    raise template_error(source, pos, "can't use two variables with range over int")
                if value > MAX_ITEMS:
                    raise template_error(source, pos, f"range over {value} is too large")
                return [(i, i) for i in range(value)]
            raise template_error(source, pos, f"range can't iterate over {go_str(value)}")

        def range_(st: _State, dot: Any) -> None:
            mark = len(st.vars)
            items = pairs(pipe(st, dot))
            if not items:
                if else_body is not None:
                    else_body(st, dot)
                return
            slots = [[name, None] for name in decl]
            st.vars.extend(slots)
            inner = len(st.vars)
            try:
                for key, elem in items:
                    if len(slots) == 2:
                        slots[0][1], slots[1][1] = key, elem
                    elif slots:
                        slots[0][1] = elem
                    try:
                        body(st, elem)
                    except _Break:
                        break
                    except _Continue:
                        pass
                    del st.vars[inner:]
            finally:
                del st.vars[mark:]

        return range_

    def expr(self, node: Expr) -> Value:
        fn = compile_block(self.source, node.start, node.end)

        def expr_(st: _State, dot: Any) -> Any:
            return fn(st)

        return expr_

    # -- pipelines ----------------------------------------------------------------------

    def pipe(self, pipe: Pipe) -> Value:
        cmds = [self.cmd(c, piped=i > 0) for i, c in enumerate(pipe.cmds)]
        first, rest = cmds[0], cmds[1:]
        if not rest and not pipe.decl:
            return lambda st, dot: first(st, dot, _NO)

        def run(st: _State, dot: Any) -> Any:
            value = first(st, dot, _NO)
            for cmd in rest:
                value = cmd(st, dot, value)
            return value

        if not pipe.decl:
            return run
        name, assign = pipe.decl[0], pipe.assign

        def declare(st: _State, dot: Any) -> Any:
            value = run(st, dot)
            if assign:
                for slot in reversed(st.vars):
                    if slot[0] == name:
                        slot[1] = value
                        break
            else:
                st.vars.append([name, value])
            return value

        return declare

    def cmd(self, cmd: Cmd, piped: bool) -> CmdFn:
        head = cmd.args[0]
        if isinstance(head, Func):
            return self.call(head, cmd.args[1:], piped)
        if piped or len(cmd.args) > 1:
            raise self.error(
                cmd.args[1].pos if len(cmd.args) > 1 else head.pos,
                "can't give argument to non-function",
            )
        if isinstance(head, Lit) and head.is_nil:
            raise self.error(head.pos, "nil is not a command")
        operand = self.operand(head)
        return lambda st, dot, final: operand(st, dot)

    def call(self, head: Func, args: list[Operand], piped: bool) -> CmdFn:
        spec = GO_FUNCS[head.name]
        count = len(args) + piped
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            want = spec.min_args if spec.max_args == spec.min_args else f"{spec.min_args}+"
            raise self.error(
                head.pos, f"wrong number of args for {head.name}: want {want} got {count}"
            )
        argfns = [self.operand(a) for a in args]
        name, pos, source, fn = head.name, head.pos, self.source, spec.fn
        if name in ("and", "or"):
            stop_on = name == "or"

            def logic(st: _State, dot: Any, final: Any) -> Any:
                value: Any = None
                for argfn in argfns:
                    value = argfn(st, dot)
                    if go_truth(value) == stop_on:
                        return value
                return value if final is _NO else final

            return logic
        if name == "index":
            label = _label(args[0]) if args else ""

            def fn_index(st: _State, *values: Any) -> Any:
                return index_path(st, values[0], values[1:], label)

            fn, scoped = fn_index, True
        else:
            scoped = spec.scoped

        def call_(st: _State, dot: Any, final: Any) -> Any:
            values = [a(st, dot) for a in argfns]
            if final is not _NO:
                values.append(final)
            try:
                return fn(st, *values) if scoped else fn(*values)
            except TemplateError:
                raise
            except FuncError as exc:
                raise template_error(source, pos, f"error calling {name}: {exc}") from None
            except Exception as exc:
                raise template_error(source, pos, f"error calling {name}: {exc}") from exc

        return call_

    def operand(self, op: Operand) -> Value:
        if isinstance(op, Field):
            names, pos = op.names, op.pos
            return lambda st, dot: _walk(st, dot, names, pos, "")
        if isinstance(op, Dot):
            return lambda st, dot: dot
        if isinstance(op, Var):
            name, names, pos = op.name, op.names, op.pos

            def var(st: _State, dot: Any) -> Any:
                if name == "$":
                    value: Any = st.data
                else:
                    for slot in reversed(st.vars):
                        if slot[0] == name:
                            value = slot[1]
                            break
                    else:
                        raise template_error(st.source, pos, f"undefined variable {name}")
                return _walk(st, value, names, pos, name) if names else value

            return var
        if isinstance(op, Lit):
            value = op.value
            return lambda st, dot: value
        if isinstance(op, Sub):
            inner = self.pipe(op.pipe)
            names, pos = op.names, op.pos
            if not names:
                return inner
            return lambda st, dot: _walk(st, inner(st, dot), names, pos, "(...)")
        # Go's text/template: a function named as an argument is called with no arguments
        # (`{{ default now .x }}` is `{{ default (now) .x }}`); one that needs arguments is
        # a compile error ("wrong number of args for lower: want 1 got 0").
        call = self.call(op, [], piped=False)
        return lambda st, dot: call(st, dot, _NO)


def _label(op: Operand) -> str:
    if isinstance(op, Field):
        return ".".join(op.names)
    if isinstance(op, Var):
        return ".".join([op.name, *op.names])
    return ""


class Template:
    """A compiled template. Immutable and safe to share between threads."""

    __slots__ = ("_body", "_nil_text", "_single", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        nodes = parse(source)
        compiler = _Compiler(source)
        try:
            self._body = compiler.block(nodes) if nodes else None
            self._single: Value | None = None
            self._nil_text = ""
            if len(nodes) == 1 and isinstance(nodes[0], Expr):
                self._single = compiler.expr(nodes[0])
            elif len(nodes) == 1 and isinstance(nodes[0], ActionNode) and not nodes[0].pipe.decl:
                self._single = compiler.pipe(nodes[0].pipe)
                self._nil_text = NO_VALUE
        except RecursionError:
            raise TemplateError(f"template {source[:40]!r}...: nested too deeply") from None

    def render(self, data: Mapping[str, Any], strict: bool) -> str:
        st = _State(self.source, data, strict)
        try:
            if self._single is not None:  # fast path: the whole template is one action
                value = self._single(st, data)
                if type(value) is str:
                    return value
                return self._nil_text if value is None else go_str(value)
            if self._body is not None:
                self._body(st, data)
        except RecursionError:
            raise template_error(self.source, 0, "data or template nested too deeply") from None
        return "".join(st.out)

    def value(self, data: Mapping[str, Any], strict: bool) -> Any:
        """The native value when the template is exactly one action, else the rendered text."""
        if self._single is None:
            return self.render(data, strict)
        try:
            return self._single(_State(self.source, data, strict), data)
        except RecursionError:
            raise template_error(self.source, 0, "data or template nested too deeply") from None


def compile_template(source: str) -> Template:
    return Template(source)
