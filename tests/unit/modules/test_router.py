"""The router matches like Go 1.22's ServeMux."""

from __future__ import annotations

import pytest

from treadle.modules.web import HTTPRequest, HTTPResponse, Pattern, Router


async def _h(request: HTTPRequest) -> HTTPResponse:
    return HTTPResponse(200)


def _router(*routes: tuple[str, str]) -> Router:
    router = Router()
    for method, path in routes:
        router.add(method, path, _h, owner=f"{method} {path}")
    return router


def _match(router: Router, method: str, path: str) -> tuple[str | None, dict[str, str],
                                                            list[str]]:
    route, params, allowed = router.lookup(method, path)
    return (str(route.pattern) if route else None), params, allowed


def test_single_segment_and_rest_wildcards() -> None:
    router = _router(("GET", "/items/{id}"), ("GET", "/files/{rest...}"))
    assert _match(router, "GET", "/items/42") == ("GET /items/{id}", {"id": "42"}, [])
    assert _match(router, "GET", "/items/42/x")[0] is None
    assert _match(router, "GET", "/items/")[0] is None  # {id} needs a non-empty segment
    assert _match(router, "GET", "/files/a/b/c.txt")[1] == {"rest": "a/b/c.txt"}
    assert _match(router, "GET", "/files/")[1] == {"rest": ""}


def test_wildcard_values_are_decoded_per_segment() -> None:
    router = _router(("GET", "/items/{id}"))
    assert _match(router, "GET", "/items/a%2Fb")[1] == {"id": "a/b"}
    assert _match(router, "GET", "/items/caf%C3%A9")[1] == {"id": "café"}


def test_most_specific_pattern_wins_whatever_the_order() -> None:
    router = _router(("GET", "/items/{id}"), ("GET", "/items/new"), ("GET", "/{rest...}"))
    assert _match(router, "GET", "/items/new")[0] == "GET /items/new"
    assert _match(router, "GET", "/items/7")[0] == "GET /items/{id}"
    assert _match(router, "GET", "/elsewhere/x")[0] == "GET /{rest...}"


def test_a_method_beats_no_method_and_get_answers_head() -> None:
    router = _router(("", "/ping"), ("POST", "/ping"), ("GET", "/doc"))
    assert _match(router, "POST", "/ping")[0] == "POST /ping"
    assert _match(router, "DELETE", "/ping")[0] == "/ping"
    assert _match(router, "HEAD", "/doc")[0] == "GET /doc"


def test_other_methods_give_the_allowed_list() -> None:
    router = _router(("GET", "/items/{id}"), ("PUT", "/items/{id}"))
    assert _match(router, "POST", "/items/1") == (None, {}, ["GET", "HEAD", "PUT"])
    assert _match(router, "POST", "/nothing") == (None, {}, [])


def test_trailing_slash_matches_the_subtree_and_dollar_only_itself() -> None:
    router = _router(("GET", "/static/"), ("GET", "/exact/{$}"))
    assert _match(router, "GET", "/static/a/b")[0] == "GET /static/"
    assert _match(router, "GET", "/exact/")[0] == "GET /exact/{$}"
    assert _match(router, "GET", "/exact/more")[0] is None


def test_duplicates_are_skipped_and_conflicts_refused() -> None:
    router = Router()
    assert router.add("GET", "/a/{x}", _h) is not None
    assert router.add("GET", "/a/{x}", _h) is None
    with pytest.raises(ValueError, match=r"conflicts with GET /a/\{x\}"):
        router.add("GET", "/a/{y}", _h)
    router.add("GET", "/b/{x}/c", _h)
    with pytest.raises(ValueError, match="neither is more specific"):
        router.add("GET", "/b/d/{y}", _h)


@pytest.mark.parametrize("path", ["items", "/a/{x...}/b", "/a/{1x}", "/a/{x}{y}", "/a/{x}/{x}"])
def test_bad_patterns(path: str) -> None:
    with pytest.raises(ValueError):
        Pattern.parse("GET", path)


def test_pattern_relations() -> None:
    def rel(a: str, b: str) -> str:
        return Pattern.parse("GET", a).compare(Pattern.parse("GET", b))

    assert rel("/a/b", "/a/{x}") == "more"
    assert rel("/a/{x}", "/a/b") == "less"
    assert rel("/a/{x}", "/b/{y}") == "disjoint"
    assert rel("/a/{x...}", "/a/b/c") == "less"
    assert rel("/a/b", "/a/b/c") == "disjoint"
