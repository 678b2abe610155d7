"""Recursive-descent parser for Go text/template syntax, producing a small node tree.

Supported: text, `{{ pipeline }}`, pipes, parenthesised pipelines, `$var :=` / `$var =`,
`if` / `else if` / `else` / `end`, `with` / `else with`, `range` (with `$i, $e :=`,
`break`, `continue`, `else`), comments, trim markers, and `${ }` blocks as leaves.
`define`, `template` and `block` are rejected: pipeline configs have no named templates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from treadle.errors import TemplateError

from ._common import template_error
from ._functions import GO_FUNCS
from ._lexer import Action, ExprBlock, Segment, Text, Tok, scan

__all__ = [
    "Cmd",
    "Control",
    "Dot",
    "Expr",
    "Field",
    "Func",
    "Lit",
    "Node",
    "Operand",
    "Pipe",
    "Sub",
    "TextNode",
    "Var",
    "parse",
]

_CONTROL = ("if", "with", "range")
_UNSUPPORTED = ("define", "template", "block")
_RESERVED = ("if", "else", "end", "range", "with", "break", "continue", *_UNSUPPORTED)


# --- operands ------------------------------------------------------------------------------


@dataclass(slots=True)
class Field:
    """`.a.b` relative to dot."""

    pos: int
    names: list[str]


@dataclass(slots=True)
class Dot:
    pos: int


@dataclass(slots=True)
class Var:
    """`$x.a.b` (`$` alone is the root)."""

    pos: int
    name: str
    names: list[str]


@dataclass(slots=True)
class Func:
    pos: int
    name: str


@dataclass(slots=True)
class Lit:
    pos: int
    value: Any
    is_nil: bool = False


@dataclass(slots=True)
class Sub:
    """`(pipeline).a.b`."""

    pos: int
    pipe: Pipe
    names: list[str]


Operand = Field | Dot | Var | Func | Lit | Sub


@dataclass(slots=True)
class Cmd:
    pos: int
    args: list[Operand]


@dataclass(slots=True)
class Pipe:
    pos: int
    cmds: list[Cmd]
    decl: list[str] = field(default_factory=list)
    assign: bool = False  # `$x = ...` rather than `$x := ...`


# --- statements ----------------------------------------------------------------------------


@dataclass(slots=True)
class TextNode:
    text: str


@dataclass(slots=True)
class Expr:
    """A `${ ... }` block; `start:end` is its body in the source."""

    pos: int
    start: int
    end: int


@dataclass(slots=True)
class ActionNode:
    pos: int
    pipe: Pipe


@dataclass(slots=True)
class Control:
    kind: str  # if / with / range
    pos: int
    pipe: Pipe
    body: list[Node]
    else_body: list[Node] | None


@dataclass(slots=True)
class Loop:
    kind: str  # break / continue
    pos: int


Node = TextNode | Expr | ActionNode | Control | Loop


def parse(source: str) -> list[Node]:
    """Parse a whole template into nodes. Raises TemplateError with the position."""
    try:
        return _Parser(source).parse()
    except RecursionError:
        raise TemplateError(f"template {source[:40]!r}...: nested too deeply") from None


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.segments: list[Segment] = scan(source)
        self.i = 0
        self.scopes: list[set[str]] = [{"$"}]
        self.loops = 0

    def error(self, pos: int, problem: str) -> TemplateError:
        return template_error(self.source, pos, problem)

    def parse(self) -> list[Node]:
        nodes, term = self.parse_list()
        if term is not None:
            raise self.error(term.pos, f"unexpected {{{{{term.tokens[0].value}}}}}")
        return nodes

    # -- lists --------------------------------------------------------------------------

    def parse_list(self) -> tuple[list[Node], Action | None]:
        """Nodes up to the next `{{ end }}` / `{{ else ... }}` (returned as the terminator)."""
        nodes: list[Node] = []
        while self.i < len(self.segments):
            seg = self.segments[self.i]
            self.i += 1
            if isinstance(seg, Text):
                nodes.append(TextNode(seg.text))
                continue
            if isinstance(seg, ExprBlock):
                nodes.append(Expr(seg.pos, seg.start, seg.end))
                continue
            if not seg.tokens:
                raise self.error(seg.pos, "missing value for command")
            head = seg.tokens[0]
            word = head.value if head.kind == "ident" else None
            if word in ("end", "else"):
                if word == "end" and len(seg.tokens) > 1:
                    raise self.error(seg.tokens[1].pos, "unexpected token after end")
                return nodes, seg
            if word in _CONTROL:
                nodes.append(self.parse_control(str(word), head.pos, seg.tokens[1:]))
            elif word in ("break", "continue"):
                if not self.loops:
                    raise self.error(head.pos, f"{{{{{word}}}}} outside {{{{range}}}}")
                if len(seg.tokens) > 1:
                    raise self.error(seg.tokens[1].pos, f"unexpected token after {word}")
                nodes.append(Loop(str(word), head.pos))
            elif word in _UNSUPPORTED:
                raise self.error(head.pos, f"{{{{{word}}}}} is not supported in pipeline templates")
            else:
                pipe = self.parse_pipe(_Stream(self, seg.tokens, seg.pos), decl_vars=1)
                nodes.append(ActionNode(seg.pos, pipe))
        return nodes, None

    def parse_control(self, kind: str, pos: int, tokens: list[Tok]) -> Control:
        self.scopes.append(set())
        try:
            stream = _Stream(self, tokens, pos)
            pipe = self.parse_pipe(stream, decl_vars=2 if kind == "range" else 1)
            if kind == "range":
                self.loops += 1
            body, term = self.parse_list()
            if kind == "range":
                self.loops -= 1
            if term is None:
                raise self.error(pos, f"unexpected EOF: {{{{{kind}}}}} has no {{{{end}}}}")
            else_body: list[Node] | None = None
            if term.tokens[0].value == "else":
                rest = term.tokens[1:]
                if rest and rest[0].kind == "ident" and rest[0].value == kind != "range":
                    else_body = [self.parse_control(kind, rest[0].pos, rest[1:])]
                elif rest:
                    raise self.error(rest[0].pos, f"unexpected {rest[0].value!r} after else")
                else:
                    else_body, term = self.parse_list()
                    if term is None or term.tokens[0].value != "end":
                        where = pos if term is None else term.pos
                        raise self.error(where, f"expected {{{{end}}}} to close {{{{{kind}}}}}")
            return Control(kind, pos, pipe, body, else_body)
        finally:
            self.scopes.pop()

    # -- pipelines ----------------------------------------------------------------------

    def declared(self, name: str) -> bool:
        return any(name in scope for scope in self.scopes)

    def parse_pipe(self, stream: _Stream, decl_vars: int, in_paren: bool = False) -> Pipe:
        pipe = Pipe(stream.pos(), [])
        toks = stream.tokens
        j = stream.j
        # declarations: $x := / $x = / $i, $e :=
        if j < len(toks) and toks[j].kind == "var" and not in_paren:
            names = [toks[j]]
            k = j + 1
            if (
                decl_vars == 2
                and k + 1 < len(toks)
                and toks[k].kind == ","
                and toks[k + 1].kind == "var"
            ):
                names.append(toks[k + 1])
                k += 2
            if k < len(toks) and toks[k].kind in (":=", "="):
                assign = toks[k].kind == "="
                if assign and len(names) > 1:
                    raise self.error(toks[k].pos, "cannot assign to two variables")
                for tok in names:
                    if assign and not self.declared(tok.value):
                        raise self.error(tok.pos, f"undefined variable {tok.value}")
                pipe.decl = [t.value for t in names]
                pipe.assign = assign
                stream.j = k + 1
            elif len(names) > 1:
                raise self.error(
                    toks[k].pos if k < len(toks) else names[-1].pos,
                    "expected := after range variables",
                )
        while True:
            pipe.cmds.append(self.parse_cmd(stream, in_paren))
            after = stream.peek()
            if after is None or after.kind == ")":
                break
            if after.kind != "|":
                raise self.error(after.pos, f"unexpected {after.value!r} in pipeline")
            stream.j += 1
        if pipe.decl and not pipe.assign:
            self.scopes[-1].update(pipe.decl)
        return pipe

    def parse_cmd(self, stream: _Stream, in_paren: bool) -> Cmd:
        cmd = Cmd(stream.pos(), [])
        while True:
            tok = stream.peek()
            if tok is None or tok.kind in ("|", ")"):
                break
            if cmd.args and not tok.spaced:
                raise self.error(tok.pos, f"missing space before {tok.value!r}")
            cmd.args.append(self.parse_operand(stream))
        if not cmd.args:
            where = tok.pos if tok is not None else stream.end_pos()
            raise self.error(where, "missing value for command")
        return cmd

    def parse_operand(self, stream: _Stream) -> Operand:
        tok = stream.next()
        pos = tok.pos
        if tok.kind == "field":
            return Field(pos, [tok.value, *stream.chain()])
        if tok.kind == "dot":
            return Dot(pos)
        if tok.kind == "var":
            if not self.declared(tok.value):
                raise self.error(pos, f"undefined variable {tok.value}")
            return Var(pos, tok.value, stream.chain())
        if tok.kind == "ident":
            if tok.value in _RESERVED:
                raise self.error(pos, f"unexpected <{tok.value}> in command")
            if tok.value not in GO_FUNCS:
                raise self.error(pos, f'function "{tok.value}" not defined')
            return Func(pos, tok.value)
        if tok.kind in ("string", "number", "bool"):
            return Lit(pos, tok.value)
        if tok.kind == "nil":
            return Lit(pos, None, is_nil=True)
        if tok.kind == "(":
            inner = self.parse_pipe(stream, decl_vars=0, in_paren=True)
            close = stream.peek()
            if close is None or close.kind != ")":
                raise self.error(pos, "unclosed left paren")
            stream.j += 1
            return Sub(pos, inner, stream.chain())
        raise self.error(pos, f"unexpected {tok.value!r} in operand")


class _Stream:
    """A cursor over the tokens of one action."""

    def __init__(self, parser: _Parser, tokens: list[Tok], action_pos: int) -> None:
        self.parser = parser
        self.tokens = tokens
        self.j = 0
        self.action_pos = action_pos

    def peek(self) -> Tok | None:
        return self.tokens[self.j] if self.j < len(self.tokens) else None

    def next(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise self.parser.error(self.end_pos(), "unexpected end of action")
        self.j += 1
        return tok

    def pos(self) -> int:
        tok = self.peek()
        return tok.pos if tok is not None else self.action_pos

    def end_pos(self) -> int:
        return self.tokens[-1].pos + 1 if self.tokens else self.action_pos

    def chain(self) -> list[str]:
        """Field names glued to the previous token (`$x.a.b`, `(...).a`)."""
        names: list[str] = []
        while (tok := self.peek()) is not None and tok.kind == "field" and not tok.spaced:
            names.append(tok.value)
            self.j += 1
        if (tok := self.peek()) is not None and not tok.spaced and tok.kind not in ("|", ")"):
            raise self.parser.error(tok.pos, f"unexpected {tok.value!r} after operand")
        return names
