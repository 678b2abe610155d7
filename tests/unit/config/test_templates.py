"""Go text/template form (`{{ }}`), its function table, typed results and strict mode."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from treadle.config.templates import evaluate, is_template, render, render_value, truthy
from treadle.errors import TemplateError

DATA: dict[str, Any] = {
    "name": "Alice",
    "count": 3,
    "ratio": 1.5,
    "flag": True,
    "empty": "",
    "nothing": None,
    "tags": ["a", "b", "a"],
    "phone": "+15551234567",
    "csv": "x,y,z",
    "items": [
        {"id": 1, "cat": "tools", "price": 9.5, "qty": 2},
        {"id": 2, "cat": "food", "price": 3, "qty": 1},
        {"id": 1, "cat": "tools", "price": 12, "qty": 4},
    ],
    "steps": {
        "fetch": {"id": 7, "status": "ok", "rows": [10, 20, 30]},
        "parse-request": {"path_params": {"id": "42"}, "body": {"nested": "deep"}},
    },
    "trigger": {"path_params": {"id": "99"}, "headers": {"X-Request-Id": "r-1"}},
    "meta": {"pipeline": "orders"},
}


def r(template: str, data: dict[str, Any] | None = None, **kw: Any) -> str:
    return render(template, DATA if data is None else data, **kw)


# --- fields, hyphens, helpers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ .name }}", "Alice"),
        ("Hello {{ .name }}!", "Hello Alice!"),
        ("{{ .steps.fetch.id }}", "7"),
        ("{{.steps.fetch.status}}", "ok"),
        ("{{ .meta.pipeline }}", "orders"),
        ("{{ .trigger.path_params.id }}", "99"),
        ("{{ .steps.parse-request.path_params.id }}", "42"),
        ("{{ .steps.parse-request.body.nested | upper }}", "DEEP"),
        ('{{ index .steps "parse-request" "path_params" "id" }}', "42"),
        ('{{ index .trigger.headers "X-Request-Id" }}', "r-1"),
        ("{{ index .steps.fetch.rows 1 }}", "20"),
        ('{{ step "parse-request" "path_params" "id" }}', "42"),
        ('{{ step "fetch" "status" }}', "ok"),
        ('{{ trigger "path_params" "id" }}', "99"),
        ("{{ . | len }}", str(len(DATA))),
        ("{{ $.name }}", "Alice"),
        ('{{ (index .steps "fetch").status }}', "ok"),
        ("plain text", "plain text"),
        ("", ""),
    ],
)
def test_field_access(template: str, expected: str) -> None:
    assert r(template) == expected


def test_values_print_like_go() -> None:
    data = {
        "m": {"b": 2, "a": [1, None, "x"]},
        "f1": 1e6,
        "f2": 42.0,
        "f3": 0.00001,
        "t": True,
        "n": None,
    }
    assert r("{{ .m }}", data) == "map[a:[1 <nil> x] b:2]"
    assert r("{{ .f1 }} {{ .f2 }} {{ .f3 }} {{ .t }}", data) == "1e+06 42 1e-05 true"
    assert r("{{ .n }}", data) == "<no value>"


# --- missing keys and strict mode ----------------------------------------------------------


def test_missing_keys_render_no_value_like_go() -> None:
    # The Go project runs text/template with missingkey=zero over map[string]any: "<no value>".
    assert r("{{ .nope }}") == "<no value>"
    assert r("[{{ .steps.fetch.nope }}]") == "[<no value>]"
    assert r("{{ .steps.nostep.id }}") == "<no value>"  # Treadle is lenient through nil
    assert r('{{ index .steps "nostep" "id" }}') == "<no value>"
    assert r('{{ step "nostep" "id" }}') == "<no value>"
    assert r('{{ trigger "nope" }}') == "<no value>"


def test_default_replaces_missing_and_empty() -> None:
    assert r('{{ .steps.fetch.page_size | default "25" }}') == "25"
    assert r('{{ .empty | default "x" }}') == "x"
    assert r('{{ default "x" .nothing }}') == "x"
    assert r('{{ .count | default "x" }}') == "3"
    assert r('{{ 0 | default "x" }}') == "0"  # only nil and "" are replaced


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("{{ .steps.fetch.missing }}", "steps.fetch.missing"),
        ("{{ .steps.nostep.id }}", "steps.nostep"),
        ('{{ index .steps "fetch" "nope" }}', "steps.fetch.nope"),
        ("{{ with .steps.fetch }}{{ .nope }}{{ end }}", "nope"),
        ("{{ $s := .steps }}{{ $s.zip }}", "$s.zip"),
        ("{{ .steps.fetch.missing | default 1 }}", "steps.fetch.missing"),
    ],
)
def test_strict_mode_names_the_missing_path(template: str, path: str) -> None:
    with pytest.raises(TemplateError, match=rf"missing key {re.escape(path)}\b"):
        r(template, strict=True)


def test_strict_mode_step_and_trigger_helpers() -> None:
    with pytest.raises(TemplateError, match="step 'nope' not found"):
        r('{{ step "nope" "id" }}', strict=True)
    with pytest.raises(TemplateError, match="key 'zz' not found"):
        r('{{ step "fetch" "zz" }}', strict=True)
    with pytest.raises(TemplateError, match="trigger: key 'zz' not found"):
        r('{{ trigger "zz" }}', strict=True)
    assert r('{{ step "fetch" "id" }}', strict=True) == "7"


def test_strict_mode_passes_when_everything_exists() -> None:
    assert r("{{ .steps.fetch.id }}-{{ .name }}", strict=True) == "7-Alice"


# --- pipes, variables, blocks --------------------------------------------------------------


def test_pipes_and_parentheses() -> None:
    assert r("{{ .name | lower }}") == "alice"
    assert r("{{ .name | lower | upper }}") == "ALICE"
    assert r('{{ .phone | trimPrefix "+" }}') == "15551234567"
    assert r('{{ join "-" (split "," .csv) }}') == "x-y-z"
    assert r('{{ .csv | split "," | len }}') == "3"


def test_variables() -> None:
    assert r("{{ $x := .count }}{{ $x }}") == "3"
    assert r("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}") == "2"
    assert r('{{ $parts := split "," .csv }}{{ index $parts 1 }}') == "y"
    assert r("{{ $x := 1 }}{{ if .flag }}{{ $x = 5 }}{{ end }}{{ $x }}") == "5"


def test_if_else_chains() -> None:
    t = "{{ if eq .n 1 }}one{{ else if eq .n 2 }}two{{ else }}many{{ end }}"
    assert [r(t, {"n": n}) for n in (1, 2, 3)] == ["one", "two", "many"]
    assert r("{{ if .empty }}y{{ else }}n{{ end }}") == "n"
    assert r("{{ if .tags }}y{{ end }}") == "y"
    assert r("{{ if .nope }}y{{ end }}") == ""
    assert r("{{ if and .flag (gt .count 2) }}yes{{ end }}") == "yes"


def test_with_blocks() -> None:
    assert r("{{ with .steps.fetch }}{{ .status }}:{{ .id }}{{ end }}") == "ok:7"
    assert r("{{ with .nope }}x{{ else }}none{{ end }}") == "none"
    assert r("{{ with .nope }}x{{ else with .name }}{{ . }}{{ end }}") == "Alice"


def test_range_blocks() -> None:
    assert r("{{ range .tags }}{{ . }},{{ end }}") == "a,b,a,"
    assert r("{{ range $i, $t := .tags }}{{ $i }}{{ $t }} {{ end }}") == "0a 1b 2a "
    assert r("{{ range $k, $v := .meta }}{{ $k }}={{ $v }}{{ end }}") == "pipeline=orders"
    assert r("{{ range $k, $v := .m }}{{ $k }}{{ end }}", {"m": {"b": 1, "a": 2}}) == "ab"
    assert r("{{ range .nope }}x{{ else }}empty{{ end }}") == "empty"
    assert r("{{ range 3 }}{{ . }}{{ end }}") == "012"
    loop = "{{ range .steps.fetch.rows }}{{ if eq . 20 }}{{ continue }}{{ end }}{{ . }};{{ end }}"
    assert r(loop) == "10;30;"
    assert (
        r("{{ range .steps.fetch.rows }}{{ if eq . 20 }}{{ break }}{{ end }}{{ . }}{{ end }}")
        == "10"
    )
    assert r("{{ range .items }}{{ .id }}{{ end }}") == "121"


def test_trim_markers_and_comments() -> None:
    assert r("a  {{- .count -}}  b") == "a3b"
    assert r("a  {{- .count }}  b") == "a3  b"
    assert r("{{ .count -}}\n\n  x") == "3x"
    assert r("a {{/* a comment */}}b") == "a b"
    assert r("a {{- /* comment */ -}} b") == "ab"
    assert r("{{ -3 }}") == "-3"  # a number, not a trim marker


def test_literals() -> None:
    assert r('{{ "a\\tb" }}') == "a\tb"
    assert r("{{ `raw\\n` }}") == "raw\\n"
    assert r("{{ 'a' }}") == "97"
    assert r("{{ 0x1F }} {{ 1_000 }} {{ 1.5 }} {{ true }}") == "31 1000 1.5 true"


# --- the Go project's functions ------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ "Hello" | lower }}', "hello"),
        ('{{ "hello" | upper }}', "HELLO"),
        ('{{ "hello big  world" | title }}', "Hello Big World"),
        ('{{ "hello.txt" | trimSuffix ".txt" }}', "hello"),
        ('{{ "hello" | trimSuffix ".txt" }}', "hello"),
        ('{{ "hello" | trimPrefix "world" }}', "hello"),
        ('{{ replace "o" "0" "foo" }}', "f00"),
        ('{{ contains "ell" "hello" }} {{ contains "xyz" "hello" }}', "true false"),
        ('{{ hasPrefix "hel" "hello" }} {{ hasPrefix "x" "hello" }}', "true false"),
        ('{{ hasSuffix "llo" "hello" }} {{ hasSuffix "x" "hello" }}', "true false"),
        ('{{ split "," "a,b,c" }}', "[a b c]"),
        ('{{ join "," .tags }}', "a,b,a"),
        ('{{ join "," "notalist" }}', "notalist"),
        ('{{ "  hi  " | trimSpace }}', "hi"),
        ('{{ "  hi  " | trim }}', "hi"),
        ('{{ "hello world&foo=bar" | urlEncode }}', "hello+world%26foo%3Dbar"),
        ("{{ add 3 4 }} {{ add 1.5 2 }}", "7 3.5"),
        ("{{ sub 10 3 }} {{ mul 3 4 }} {{ mul 1.5 2 }}", "7 12 3"),
        ("{{ div 10 4 }} {{ div 10 0 }}", "2.5 0"),
        ('{{ add "2" 1 }}', "3"),  # numeric strings count, as toFloat64 does
        ('{{ toInt 3.7 }} {{ toInt "12" }} {{ toInt "x" }}', "3 12 0"),
        ('{{ toFloat 42 }} {{ toFloat "1.25" }}', "42 1.25"),
        ("{{ toString 42 }} {{ toString .nothing }}", "42 <nil>"),
        ('{{ length "héllo" }} {{ length .tags }} {{ length .meta }} {{ length 5 }}', "6 3 1 0"),
        ('{{ coalesce .nothing "" "x" }}', "x"),
        ("{{ coalesce .nothing .empty }}", "<no value>"),
        ("{{ json .steps.fetch }}", '{"id":7,"rows":[10,20,30],"status":"ok"}'),
        ('{{ json "<a&b>" }}', '"\\u003ca\\u0026b\\u003e"'),
        ("{{ json 2.0 }} {{ json .nothing }}", "2 null"),
        ('{{ config "url" }}', ""),
    ],
)
def test_project_functions(template: str, expected: str) -> None:
    assert r(template) == expected


def test_json_of_unsupported_value_is_empty_object() -> None:
    assert r("{{ json .x }}", {"x": float("nan")}) == "{}"
    assert r("{{ json .x }}", {"x": object()}) == "{}"


def test_uuid_functions() -> None:
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    first, second = r("{{ uuid }}"), r("{{ uuidv4 }}")
    assert pattern.match(first) and pattern.match(second)
    assert first != second


def test_now_formats() -> None:
    stamp = r("{{ now }}")
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None and abs(parsed - dt.datetime.now(dt.UTC)).total_seconds() < 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r('{{ now "RFC3339" }}'))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", r('{{ now "2006-01-02" }}'))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", r('{{ now "DateOnly" }}'))
    assert re.fullmatch(r"\d{1,2}:\d\d[AP]M", r('{{ now "Kitchen" }}'))
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r('{{ now "DateTime" }}'))


def test_collection_functions() -> None:
    assert r('{{ sum .items "qty" }}') == "7"
    assert r('{{ sum .items "price" }}') == "24.5"
    assert r("{{ sum .steps.fetch.rows }}") == "60"
    assert r("{{ sum .nothing }}") == "0"
    assert r('{{ pluck .items "id" }}') == "[1 2 1]"
    assert r("{{ flatten .x }}", {"x": [[1, 2], 3, [4]]}) == "[1 2 3 4]"
    assert r("{{ unique .tags }}") == "[a b]"
    assert r('{{ unique .items "id" | len }}') == "2"
    assert r('{{ groupBy .items "cat" | len }}') == "2"
    assert r('{{ index (groupBy .items "cat") "food" | len }}') == "1"
    assert r('{{ range sortBy .items "price" }}{{ .price }} {{ end }}') == "3 9.5 12 "
    assert (
        r(
            '{{ range sortBy .x "k" }}{{ .k }},{{ end }}',
            {"x": [{"k": "b"}, {"k": None}, {"k": "10"}, {"k": 2}]},
        )
        == "2,10,b,<no value>,"
    )
    assert r("{{ first .tags }} {{ last .tags }} {{ first .nothing }}") == "a a <no value>"
    assert r('{{ min .items "price" }} {{ max .items "price" }}') == "3 12"
    assert r("{{ min .steps.fetch.rows }} {{ max .steps.fetch.rows }}") == "10 30"


def test_collection_functions_native_values() -> None:
    grouped = render_value('{{ groupBy .items "cat" }}', DATA)
    assert grouped == {"tools": [DATA["items"][0], DATA["items"][2]], "food": [DATA["items"][1]]}
    assert render_value('{{ pluck .items "cat" }}', DATA) == ["tools", "food", "tools"]
    assert render_value("{{ min .x }}", {"x": []}) is None


# --- text/template builtins ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ and .flag .name }} {{ and .empty .name }}", "Alice "),
        ('{{ or .empty .nothing "fallback" }} {{ or .name "x" }}', "fallback Alice"),
        ("{{ not .flag }} {{ not .empty }}", "false true"),
        ('{{ len .tags }} {{ len "héllo" }} {{ len .meta }}', "3 6 1"),
        ('{{ slice .tags 1 }} {{ slice "abcdef" 1 3 }}', "[b a] bc"),
        ("{{ eq .count 3 }} {{ eq .count 1 2 3 }} {{ eq .count 1.0 }}", "true true false"),
        ('{{ eq .nothing .nope }} {{ eq .name "Alice" }}', "true true"),
        (
            "{{ ne .count 3 }} {{ lt 1 2 }} {{ le 2 2 }} {{ gt 1 2 }} {{ ge 2.5 2 }}",
            "false true true false true",
        ),
        ('{{ lt "a" "b" }}', "true"),
        ('{{ print 1 2 "a" "b" 3 }}', "1 2ab3"),
        (
            '{{ printf "%s has %d items (%.1f) %v %q" .name 3 1.25 .tags "x" }}',
            'Alice has 3 items (1.2) [a b a] "x"',
        ),
        ('{{ printf "%05d|%-4s|%x" 42 "ab" 255 }}', "00042|ab  |ff"),
        ('{{ printf "%d" "x" }}', "%!d(string=x)"),
        ('{{ println "a" 1 }}', "a 1\n"),
        ("{{ html \"<a href='x'>&</a>\" }}", "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"),
        ('{{ js "it\'s <b>" }}', "it\\'s \\u003Cb\\u003E"),
        ('{{ urlquery "a b&c" }}', "a+b%26c"),
    ],
)
def test_builtins(template: str, expected: str) -> None:
    assert r(template) == expected


def test_and_or_short_circuit() -> None:
    # the second operand would fail if it were evaluated
    assert r("{{ and .empty (index .tags 99) }}") == ""
    assert r("{{ or .name (index .tags 99) }}") == "Alice"


def test_int_arithmetic_wraps_like_go_int64() -> None:
    assert r("{{ mul 9223372036854775807 2 }}") == "-2"
    assert r("{{ add 9223372036854775807 1 }}") == "-9223372036854775808"


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "where", "problem"),
    [
        ("{{ .unclosed", "line 1, column 1", "unclosed action"),
        ("{{ .a | }}", "line 1, column 8", "missing value for command"),
        ("{{ }}", "line 1, column 1", "missing value for command"),
        ("{{ if .x }}a", "line 1, column 4", "{{if}} has no {{end}}"),
        ("{{ range .x }}a{{ else if .y }}b{{ end }}", "line 1, column 24", "after else"),
        ("{{ end }}", "line 1, column 1", "unexpected {{end}}"),
        ("a\nb {{ bogus .x }}", "line 2, column 6", 'function "bogus" not defined'),
        ("{{ $y }}", "line 1, column 4", "undefined variable $y"),
        ("{{ $y = 1 }}", "line 1, column 4", "undefined variable $y"),
        ("{{ lower }}", "line 1, column 4", "wrong number of args for lower: want 1 got 0"),
        ("{{ .x | lower 1 }}", "line 1, column 9", "wrong number of args for lower"),
        ('{{ "abc }}', "line 1, column 4", "unterminated quoted string"),
        ("{{ (.x }}", "line 1, column 4", "unclosed left paren"),
        ("{{ .x .y }}", "line 1, column 7", "can't give argument to non-function"),
        ("{{ nil }}", "line 1, column 4", "nil is not a command"),
        ('{{ template "x" }}', "line 1, column 4", "not supported"),
        ("{{ break }}", "line 1, column 4", "outside {{range}}"),
        ("{{ .x@ }}", "line 1, column 6", "unexpected '@'"),
        ("{{/* open ", "line 1, column 1", "unclosed comment"),
        ("{{ 12abc }}", "line 1, column 4", "bad number syntax"),
        ('{{ .x"y" }}', "line 1, column 6", "unexpected 'y' after operand"),
    ],
)
def test_parse_errors_name_template_position_and_problem(
    template: str, where: str, problem: str
) -> None:
    with pytest.raises(TemplateError) as info:
        r(template)
    message = str(info.value)
    assert message.startswith(f"template {template[:57]!r}"[:20])
    assert where in message
    assert problem in message


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ .name.first }}", "can't evaluate field first in type string"),
        ("{{ index .tags 5 }}", "error calling index: index out of range: 5"),
        ("{{ index .count 1 }}", "can't index item of type int"),
        ('{{ lt 1 "a" }}', "error calling lt: invalid type for comparison"),
        ('{{ eq 1 "1" }}', "incompatible types for comparison"),
        ("{{ len 5 }}", "len of type int"),
        ("{{ range .name }}{{ end }}", "range can't iterate over Alice"),
        ("{{ range 5000000 }}{{ end }}", "too large"),
    ],
)
def test_runtime_errors(template: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(problem)):
        r(template)


# --- render_value / typed results ----------------------------------------------------------


def test_render_value_returns_native_values_for_a_single_action() -> None:
    assert render_value("{{ .count }}", DATA) == 3
    assert render_value("{{ .ratio }}", DATA) == 1.5
    assert render_value("{{ .flag }}", DATA) is True
    assert render_value("{{ .steps.fetch }}", DATA) == DATA["steps"]["fetch"]
    assert render_value("{{ .steps.fetch.rows }}", DATA) == [10, 20, 30]
    assert render_value("{{ .nope }}", DATA) is None
    assert render_value("{{ eq .count 3 }}", DATA) is True
    assert render_value("{{ add .count 1 }}", DATA) == 4
    assert render_value("${ count * 2 }", DATA) == 6


def test_render_value_mixed_text_stays_text() -> None:
    assert render_value("n={{ .count }}", DATA) == "n=3"
    assert render_value(" {{ .count }}", DATA) == " 3"
    assert render_value("{{ .count }}{{ .count }}", DATA) == "33"
    assert render_value("{{ $x := 1 }}", DATA) == ""


def test_render_value_native_false_matches_go_strings() -> None:
    assert render_value("{{ .count }}", DATA, native=False) == "3"
    assert render_value({"a": ["{{ .nope }}"]}, DATA, native=False) == {"a": ["<no value>"]}


def test_render_value_walks_containers() -> None:
    config = {
        "url": "https://x/{{ .steps.fetch.id }}",
        "count": "{{ .count }}",
        "static": 5,
        "flag": False,
        "nested": {"list": ["{{ .name | upper }}", 1, None, {"deep": "${ name }"}]},
        "tuple": ("{{ .count }}",),
        "{{ .name }}": "keys are not rendered",
    }
    out = render_value(config, DATA)
    assert out == {
        "url": "https://x/7",
        "count": 3,
        "static": 5,
        "flag": False,
        "nested": {"list": ["ALICE", 1, None, {"deep": "Alice"}]},
        "tuple": (3,),
        "{{ .name }}": "keys are not rendered",
    }
    assert config["count"] == "{{ .count }}"  # input is not mutated


def test_render_value_errors_name_the_config_path() -> None:
    with pytest.raises(TemplateError, match=r"^body\.items\[1\]: template '\{\{ \.x \}\}'"):
        render_value({"body": {"items": ["ok", "{{ .x }}"]}}, {}, strict=True)


def test_is_template() -> None:
    assert is_template("{{ .x }}") and is_template("a ${ x } b")
    assert not is_template("plain") and not is_template("{ x }") and not is_template("$x")


# --- evaluate / truthy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{{ .flag }}", True),
        ('{{ eq .steps.fetch.status "ok" }}', True),
        ("{{ .nope }}", False),
        ("{{ .empty }}", False),
        ("{{ .count }}", True),
        ("{{ 0 }}", False),
        ('{{ "false" }}', False),
        ('{{ " 0 " }}', False),
        ("{{ .tags }}", True),
        ("x{{ .nope }}", True),  # mixed text: the rendered string decides
        ("${ count > 2 }", True),
        ("steps.fetch.id == 7", True),
        ("count > 5 || name == 'Alice'", True),
        ("steps.fetch.missing", False),
        ("true", True),
        ("false", False),
        ("0", False),
        ("1", True),
        ("", False),
        ("   ", False),
    ],
)
def test_evaluate_and_truthy(expr: str, expected: bool) -> None:
    assert truthy(evaluate(expr, DATA)) is expected


def test_evaluate_returns_values() -> None:
    assert evaluate("count * 2", DATA) == 6
    assert evaluate("{{ .steps.fetch.rows }}", DATA) == [10, 20, 30]
    assert evaluate("n={{ .count }}", DATA) == "n=3"
    assert evaluate("", DATA) is None
    with pytest.raises(TemplateError, match="undefined variable nope"):
        evaluate("nope == 1", DATA, strict=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        (True, True),
        (0, False),
        (0.0, False),
        (1, True),
        ("", False),
        ("false", False),
        (" 0 ", False),
        ("no", True),
        ("False", True),
        ([], True),
        ({}, True),
        ("<no value>", True),
    ],
)
def test_truthy_follows_the_go_guard_rule(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_compiled_templates_are_reused() -> None:
    template = "{{ .count }} cached {{ .name }}"
    assert r(template) == r(template) == "3 cached Alice"
    assert r(template, {"count": 1, "name": "B"}) == "1 cached B"


UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize("template", ["{{ default now .at }}", "{{ default (now) .at }}",
                                      "{{ .at | default now }}"])  # fmt: skip
def test_niladic_function_as_argument_is_called(template: str) -> None:
    """Go text/template: a bare function name as an argument is a call with no arguments."""
    stamp = r(template, {"at": ""})
    parsed = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(parsed - dt.datetime.now(dt.UTC)).total_seconds() < 5
    assert r(template, {"at": "2020-01-01"}) == "2020-01-01"


def test_uuidv4_as_argument() -> None:
    generated = r("{{ default uuidv4 .id }}", {})
    assert UUID4.match(generated)
    assert r("{{ default uuidv4 .id }}", {"id": "o-1"}) == "o-1"
    first, second = r('{{ printf "%s|%s" uuidv4 uuid }}', {}).split("|")
    assert UUID4.match(first) and UUID4.match(second) and first != second
    # native values: the called function's result, not the function
    assert UUID4.match(render_value("{{ default uuidv4 .id }}", {}))


def test_function_needing_arguments_as_argument_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"column 12: wrong number of args for lower: "
                       r"want 1 got 0"):  # fmt: skip
        r("{{ default lower .x }}", {"x": "y"})


def test_unknown_identifier_as_argument_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r'column 12: function "nowish" not defined'):
        r("{{ default nowish .x }}", {})
