"""The `${ }` expression form (expr-lang syntax), mixing both forms, and sandboxing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from treadle.config.templates import evaluate, render, render_value
from treadle.errors import TemplateError

DATA: dict[str, Any] = {
    "name": "Alice",
    "count": 3,
    "price": 2.5,
    "status": "active",
    "nothing": None,
    "tags": ["a", "b", "c"],
    "users": [
        {"name": "Ann", "age": 31, "admin": True},
        {"name": "Bob", "age": 17, "admin": False},
        {"name": "Cid", "age": 45, "admin": False},
    ],
    "steps": {
        "fetch": {"id": 7, "rows": [10, 20, 30]},
        "parse-request": {"path_params": {"id": "42"}},
    },
    "trigger": {"headers": {"X-Request-Id": "r-1"}, "query": {"page": "2"}},
    "meta": {"pipeline": "orders"},
}


def v(expr: str, data: dict[str, Any] | None = None, **kw: Any) -> Any:
    """The native value of one `${ }` block."""
    return render_value("${ " + expr + " }", DATA if data is None else data, **kw)


# --- literals and operators ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("42", 42),
        ("0x2A", 42),
        ("0b101", 5),
        ("1_000", 1000),
        ("0.5", 0.5),
        (".5", 0.5),
        ("1e3", 1000.0),
        ('"a\\tb"', "a\tb"),
        ("'single'", "single"),
        ("`raw\\n`", "raw\\n"),
        ("true", True),
        ("false", False),
        ("nil", None),
        ("[1, 'x', nil]", [1, "x", None]),
        ("{a: 1, 'b': 2, (name): 3}", {"a": 1, "b": 2, "Alice": 3}),
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("6 / 3", 2.0),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("2 ** 10", 1024.0),
        ("2 ^ 3 ^ 2", 512.0),
        ("-2 ** 2", -4.0),
        ("1 / 0", float("inf")),
        ("count - 1", 2),
        ("price * 2", 5.0),
        ("-count", -3),
        ('"a" + "b"', "ab"),
        ("[1] + [2]", [1, 2]),
        ("count == 3", True),
        ("count == 3.0", True),
        ("count != 3", False),
        ('1 == "1"', False),
        ("nil == nothing", True),
        ("[1, 2] == [1, 2]", True),
        ("count < 4", True),
        ("count >= 3", True),
        ('"a" < "b"', True),
        ("true && false", False),
        ("true and true", True),
        ("false || true", True),
        ("false or false", False),
        ("!true", False),
        ("not false", True),
        ("not (count == 3)", False),
        ("nothing && true", False),
        ("!nothing", True),
        ('"b" in tags', True),
        ('"z" in tags', False),
        ('"z" not in tags', True),
        ('"admin" in users[0]', True),
        ("1 in nothing", False),
        ('name contains "lic"', True),
        ('name startsWith "Al"', True),
        ('name endsWith "ce"', True),
        ('name not endsWith "x"', True),
        ('name matches "^A.+e$"', True),
        ('status not matches "^in"', True),
        ("1..4", [1, 2, 3, 4]),
        ("count > 2 ? 'big' : 'small'", "big"),
        ("count > 9 ? 'big' : count > 2 ? 'mid' : 'small'", "mid"),
        ("nothing ?? 'fallback'", "fallback"),
        ("name ?? 'fallback'", "Alice"),
        ("let x = count * 2; let y = x + 1; y", 7),
    ],
)
def test_literals_and_operators(expr: str, expected: Any) -> None:
    assert v(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("steps.fetch.id", 7),
        ('steps["parse-request"]["path_params"]["id"]', "42"),
        ('steps["parse-request"].path_params.id', "42"),
        ('trigger["headers"]["X-Request-Id"]', "r-1"),
        ("body.query.page", "2"),  # body is the Go project's alias of trigger
        ("meta.pipeline", "orders"),
        ("current.name", "Alice"),
        ('$env["name"]', "Alice"),
        ("tags[0]", "a"),
        ("tags[-1]", "c"),
        ("tags[1:]", ["b", "c"]),
        ("tags[:2]", ["a", "b"]),
        ("name[1:3]", "li"),
        ("steps.fetch?.id", 7),
        ("nothing?.x", None),
        ("nothing?.[0]", None),
        ("users[1].name", "Bob"),
    ],
)
def test_member_access(expr: str, expected: Any) -> None:
    assert v(expr) == expected


def test_pipe_operator() -> None:
    assert v("name | upper()") == "ALICE"
    assert v("name | lower() | trim('a')") == "lice"
    # The piped value becomes the FIRST argument (expr-lang), while the Go project's
    # functions take their subject LAST: `tags | join("-")` is join(tags, "-").
    assert v("join('-', tags)") == "a-b-c"
    with pytest.raises(TemplateError, match="error calling join: expected a string, got slice"):
        v("tags | join('-')")


# --- functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # the Go project's functions keep their Go argument order inside ${ }
        ('split(",", "a,b")', ["a", "b"]),
        ('join("-", tags)', "a-b-c"),
        ("upper(name)", "ALICE"),
        ('default("d", nothing)', "d"),
        ('replace("l", "L", name)', "ALice"),
        ('hasPrefix("Al", name)', True),
        ("sum(steps.fetch.rows)", 60),
        ('sum(users, "age")', 93),
        ('pluck(users, "name")', ["Ann", "Bob", "Cid"]),
        ('sortBy(users, "age")[0].name', "Bob"),
        ("first(tags)", "a"),
        ("last(tags)", "c"),
        ("max(steps.fetch.rows)", 30),
        ("min(steps.fetch.rows)", 10),
        ("add(1, 2)", 3),
        ("div(1, 4)", 0.25),
        ("toInt('7')", 7),
        ("length('héllo')", 6),
        # expr-lang builtins
        ("len(tags)", 3),
        ("len('héllo')", 5),
        ("len({'a': 1})", 1),
        ("trim('  x  ')", "x"),
        ("trim('__x__', '_')", "x"),
        ("repeat('ab', 3)", "ababab"),
        ("indexOf('apple pie', 'pie')", 6),
        ("lastIndexOf('a-b-a', 'a')", 4),
        ("abs(-3)", 3),
        ("abs(-2.5)", 2.5),
        ("ceil(1.2)", 2.0),
        ("floor(1.8)", 1.0),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("keys({'a': 1, 'b': 2})", ["a", "b"]),
        ("values({'a': 1})", [1]),
        ("type(1)", "int"),
        ("type(1.5)", "float"),
        ("type('x')", "string"),
        ("type(nil)", "nil"),
        ("type(tags)", "array"),
        ("type(meta)", "map"),
        ("int('12') + 1", 13),
        ("int(3.9)", 3),
        ("float('1.5')", 1.5),
        ("string(12)", "12"),
        ("toJSON({'b': 1, 'a': [true, nil]})", '{"a":[true,null],"b":1}'),
        ("fromJSON('{\"a\": [1, 2]}').a[1]", 2),
        ("toBase64('Hello World')", "SGVsbG8gV29ybGQ="),
        ("fromBase64('SGVsbG8gV29ybGQ=')", "Hello World"),
        ("take(tags, 2)", ["a", "b"]),
        ("sort([3, 1, 2])", [1, 2, 3]),
        ("sort([3, 1, 2], 'desc')", [3, 2, 1]),
        ("reverse(tags)", ["c", "b", "a"]),
        ("mean([1, 2, 3, 4])", 2.5),
        ("median([3, 1, 2])", 2.0),
        ("concat([1], [2, 3])", [1, 2, 3]),
        ("uniq([1, 2, 1])", [1, 2]),
        ("get(tags, 9)", None),
        ("get(meta, 'pipeline')", "orders"),
        ("toPairs({'a': 1})", [["a", 1]]),
        ("fromPairs([['a', 1]])", {"a": 1}),
    ],
)
def test_functions(expr: str, expected: Any) -> None:
    assert v(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("filter(users, .age > 18)", [DATA["users"][0], DATA["users"][2]]),
        ("map(users, .name)", ["Ann", "Bob", "Cid"]),
        ("map(1..3, # * 2)", [2, 4, 6]),
        ("map(tags, #index)", [0, 1, 2]),
        ("all(users, {.age > 10})", True),
        ("any(users, .admin)", True),
        ("none(users, .age > 99)", True),
        ("one(users, .admin)", True),
        ("count(users, .age > 18)", 2),
        ("find(users, .age > 18).name", "Ann"),
        ("findIndex(users, .age < 18)", 1),
        ("findLast(users, .age > 18).name", "Cid"),
        ("findLastIndex(users, .age > 99)", -1),
        ("find(users, .age > 99)", None),
        ("reduce(1..4, #acc + #)", 10),
        ("reduce(1..4, #acc + #, 10)", 20),
        ("users | filter(.admin) | map(.name)", ["Ann"]),
        ("map(filter(users, .age > 18), {upper(.name)})", ["ANN", "CID"]),
    ],
)
def test_predicates(expr: str, expected: Any) -> None:
    assert v(expr) == expected


# --- text output, mixing forms, block scanning ---------------------------------------------


def test_text_output_of_expressions() -> None:
    assert render("Hello ${ name }!", DATA) == "Hello Alice!"
    assert render("${ nothing }|${ missing }", DATA) == "|"  # nil prints as "" in ${ }
    assert render("${ tags }", DATA) == "[a b c]"
    assert render("${ 1e6 }", DATA) == "1e+06"
    assert render("${ count > 1 }", DATA) == "true"


def test_mixing_both_forms() -> None:
    assert (
        render("${ upper(name) } has {{ .count }} and ${ count + 1 }", DATA) == "ALICE has 3 and 4"
    )
    assert render("{{ if gt .count 1 }}${ name }{{ end }}", DATA) == "Alice"


def test_expression_output_is_never_parsed_as_a_template() -> None:
    data = {"evil": "{{ .secret }}", "secret": "s3cr3t"}
    assert render("${ evil }", data) == "{{ .secret }}"
    assert render("${ evil } {{ .evil }}", data) == "{{ .secret }} {{ .secret }}"


def test_block_scanning() -> None:
    assert render('${ {"a": "}"}.a }', DATA) == "}"
    assert render("${ '}' + name }", DATA) == "}Alice"
    assert render("cost: ${5", DATA) == "cost: ${5"  # unterminated: plain text, like Go
    assert render("${}", DATA) == "${}"
    assert render("$name ${ name }}", DATA) == "$name Alice}"


# --- missing keys and strict mode ----------------------------------------------------------


def test_missing_keys_are_nil_unless_strict() -> None:
    assert v("steps.fetch.missing") is None
    assert v("steps.nostep.id") is None
    assert v("nope") is None
    with pytest.raises(TemplateError, match=r"missing key steps\.fetch\.missing"):
        v("steps.fetch.missing", strict=True)
    with pytest.raises(TemplateError, match=r"missing key steps\.nostep\b"):
        v("steps.nostep.id", strict=True)
    with pytest.raises(TemplateError, match=r"missing key steps\.parse-request\.nope"):
        v('steps["parse-request"]["nope"]', strict=True)
    with pytest.raises(TemplateError, match="undefined variable nope"):
        v("nope", strict=True)


def test_nil_coalescing_and_optional_chaining_tolerate_missing_keys_in_strict_mode() -> None:
    assert v("steps.nostep.id ?? 'default'", strict=True) == "default"
    assert v("nothing?.x", strict=True) is None


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "where", "problem"),
    [
        ("${ 1 + }", "column 8", "unexpected end of expression"),
        ("${ }", "column 4", "empty expression"),
        ("${ (1 }", "column 7", "expected ')'"),
        ("a\n${ foo(1) }", "line 2, column 4", "unknown function foo"),
        ("${ x = 1 }", "column 6", "unexpected '='"),
        ("${ 'a' 'b' }", "column 8", "unexpected 'b'"),
        ("${ not count == 3 }", "column 4", "not expects a bool, got int"),  # (not count) == 3
        ("${ 1 @ 2 }", "column 6", "unexpected '@'"),
        ("${ upper() }", "column 4", "wrong number of arguments for upper"),
        ("${ # > 1 }", "column 4", "only valid inside a predicate"),
        ("${ name.upper() }", "column 14", "method calls are not supported"),
        ("${ 1 + 'a' }", "column 6", "mismatched types int and string"),
        ("${ 1 % 0 }", "column 6", "integer divide by zero"),
        ("${ 1 < 'a' }", "column 6", "mismatched types"),
        ("${ 'a' && true }", "column 8", "&& expects a bool, got string"),
        ("${ tags[9] }", "column 8", "index out of range: 9"),
        ("${ name.first }", "column 8", "cannot fetch 'first' from string"),
        ("${ int('x') }", "column 4", "error calling int"),
        ("${ name matches '(' }", "column 9", "invalid regular expression"),
        ("${ 1..5000000 }", "column 5", "too large"),
        ("${ repeat('x', 9999999) }", "column 4", "out of range"),
    ],
)
def test_errors_name_template_position_and_problem(template: str, where: str, problem: str) -> None:
    with pytest.raises(TemplateError) as info:
        render(template, DATA)
    message = str(info.value)
    assert message.startswith("template ")
    assert where in message
    assert problem in message


def test_integer_arithmetic_wraps_like_go() -> None:
    assert v("9223372036854775807 + 1") == -9223372036854775808
    assert v("reduce(1..100, #acc * #)") == 0  # 100! wraps to 0 in int64, no bigint blow-up


# --- sandboxing: nothing reaches Python internals ------------------------------------------


class Secretive:
    secret = "s3cr3t"

    def __repr__(self) -> str:
        return "<Secretive>"


SANDBOX: dict[str, Any] = {"x": {"a": 1}, "name": "Alice", "obj": Secretive(), "tags": [1]}


@pytest.mark.parametrize(
    "template",
    [
        "{{ .__class__ }}",
        "{{ .x.__class__ }}",
        '{{ index .x "__class__" }}',
        '{{ index .x "__dict__" }}',
        "{{ ._private }}",
    ],
)
def test_go_form_cannot_reach_attributes(template: str) -> None:
    assert render(template, SANDBOX) == "<no value>"
    with pytest.raises(TemplateError, match="missing key"):
        render(template, SANDBOX, strict=True)


@pytest.mark.parametrize(
    "template",
    ["${ x.__class__ }", '${ x["__class__"] }', "${ __class__ }", "${ x._private }"],
)
def test_expr_form_cannot_reach_attributes(template: str) -> None:
    assert render(template, SANDBOX) == ""
    with pytest.raises(TemplateError):
        render(template, SANDBOX, strict=True)


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ .name.__class__ }}", "can't evaluate field __class__ in type string"),
        ("{{ .obj.secret }}", "can't evaluate field secret in type Secretive"),
        ("{{ .tags.__len__ }}", "can't evaluate field __len__ in type slice"),
        ("${ name.__class__ }", "cannot fetch '__class__' from string"),
        ("${ obj.secret }", "cannot fetch 'secret' from Secretive"),
        ("${ tags.__len__ }", "cannot fetch '__len__' from slice"),
        ("${ name.__class__.__mro__ }", "cannot fetch"),
        ("${ __import__('os') }", "unknown function __import__"),
        ("${ eval('1') }", "unknown function eval"),
        ("${ name.upper() }", "method calls are not supported"),
        ("{{ call .x }}", 'function "call" not defined'),
        ("{{ .obj.secret | print }}", "can't evaluate field secret"),
    ],
)
def test_attribute_and_call_attempts_fail(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        render(template, SANDBOX)


def test_evaluate_bare_expressions_are_sandboxed_too() -> None:
    with pytest.raises(TemplateError, match="unknown function __import__"):
        evaluate("__import__('os').system('true')", SANDBOX)
    assert evaluate("x.__class__", SANDBOX) is None


# --- docs stay in sync with the function table ---------------------------------------------


def test_every_function_is_documented() -> None:
    from treadle.config.templates._functions import EXPR_FUNCS, GO_FUNCS, PREDICATES

    doc = Path(__file__).resolve().parents[3] / "docs" / "templates.md"
    text = doc.read_text()
    missing = [name for name in [*GO_FUNCS, *EXPR_FUNCS, *PREDICATES] if f"`{name}" not in text]
    assert not missing, f"undocumented functions: {missing}"


def test_lookups_never_mutate_the_data() -> None:
    from collections import defaultdict

    counts: defaultdict[str, int] = defaultdict(int, {"a": 1})
    data = {"counts": counts}
    assert (
        render("{{ .counts.b }}|{{ index .counts \"c\" }}|${ counts.d }|${ counts['e'] }", data)
        == "<no value>|<no value>||"
    )
    assert evaluate("'f' in counts", data) is False
    assert dict(counts) == {"a": 1}
