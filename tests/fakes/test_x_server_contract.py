"""The fake X server answers as X API v2 does: its real responses validate against the official OpenAPI spec."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from jsonschema import Draft4Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from fairdesk.listener.base import PermanentError, Reply
from fairdesk.listener.x import XAdapter
from tests.fakes import x_server as fake
from tests.fakes.x_server import FakeXServer, Fault, RecordedRequest

SPEC_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "xapi" / "openapi-2.159.json"
SPEC_URI = "urn:x-openapi-2.159"
# (method, path template, success status, response schema) for every operation the fake serves.
OPERATIONS = {
    "mentions": ("get", "/2/users/{id}/mentions", "200", "Get2UsersIdMentionsResponse"),
    "timeline": ("get", "/2/users/{id}/tweets", "200", "Get2UsersIdTweetsResponse"),
    "search": ("get", "/2/tweets/search/recent", "200", "Get2TweetsSearchRecentResponse"),
    "me": ("get", "/2/users/me", "200", "Get2UsersMeResponse"),
    "create": ("post", "/2/tweets", "201", "TweetCreateResponse"),
    "lookup": ("get", "/2/tweets", "200", "Get2TweetsResponse"),
}
X_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # what tweepy's parser requires

pytestmark = pytest.mark.skipif(not SPEC_PATH.exists(), reason=f"X API spec not found at {SPEC_PATH}")

MakeAdapter = Callable[..., XAdapter]  # the x_adapter_with fixture


@cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


def _checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if isinstance(value, str):
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return checker


@cache
def _validator(schema_name: str) -> Draft4Validator:
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(_spec(), default_specification=DRAFT4))
    return Draft4Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}, registry=registry, format_checker=_checker()
    )


def _schema(name: str) -> dict[str, Any]:
    return _spec()["components"]["schemas"][name]


def _validate(instance: Any, schema_name: str) -> None:
    errors = sorted(_validator(schema_name).iter_errors(instance), key=str)
    assert not errors, f"{schema_name}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def _validate_problem(problem: dict[str, Any]) -> None:
    """A problem validates as Problem and as the schema its ``type`` maps to (the spec's discriminator)."""
    _validate(problem, "Problem")
    mapping = _schema("Problem")["discriminator"]["mapping"]
    assert problem["type"] in mapping, problem["type"]
    _validate(problem, mapping[problem["type"]].rsplit("/", 1)[-1])


def _closed(instance: dict[str, Any], schema_name: str) -> None:
    # The spec leaves Tweet and User open; the fake must still invent no field X does not have.
    extra = set(instance) - set(_schema(schema_name)["properties"])
    assert not extra, f"{schema_name} has no {sorted(extra)}"


def _check_success(record: RecordedRequest) -> None:
    method, _, status, schema_name = OPERATIONS[record.endpoint]
    assert str(record.status) == status, (record.path, record.status, record.response)
    assert record.content_type.startswith("application/json")
    body = record.response
    _validate(body, schema_name)
    if record.endpoint == "create":
        tweets = [body["data"]]
    elif record.endpoint == "me":
        tweets = []
    else:
        tweets = body.get("data", [])
    for tweet in tweets:
        _closed(tweet, "Tweet")
        if "created_at" in tweet:
            assert X_TIMESTAMP.match(tweet["created_at"])
    for tweet in body.get("includes", {}).get("tweets", []):
        _closed(tweet, "Tweet")
    for user in body.get("includes", {}).get("users", []) + ([body["data"]] if record.endpoint == "me" else []):
        _closed(user, "User")
    for problem in body.get("errors", []):
        _validate_problem(problem)


def _check_failure(record: RecordedRequest) -> None:
    body = record.response
    if record.content_type == fake.PROBLEM_JSON:
        _validate_problem(body)
        assert body.get("status", record.status) == record.status
    else:  # the legacy {"errors": [{"code", "message"}]} form
        assert record.content_type.startswith("application/json")
        for error in body["errors"]:
            _validate(error, "Error")


def test_the_fake_serves_the_spec_operations_with_their_parameters() -> None:
    spec = _spec()
    params = spec["components"]["parameters"]
    allowed = {
        "mentions": fake._TIMELINE_PARAMS,
        "timeline": fake._TIMELINE_PARAMS | {"exclude"},
        "search": fake._SEARCH_PARAMS,
        "lookup": frozenset({"ids", *fake._FIELD_PARAMS}),
    }
    for endpoint, (method, path, status, _) in OPERATIONS.items():
        operation = spec["paths"][path][method]
        assert status in operation["responses"]
        if endpoint in allowed:
            names = {
                (params[p["$ref"].rsplit("/", 1)[-1]] if "$ref" in p else p)["name"] for p in operation["parameters"]
            }
            assert set(allowed[endpoint]) == names - {"id"}, endpoint
    tweet_fields = params["TweetFieldsParameter"]["schema"]["items"]["enum"]
    user_fields = params["UserFieldsParameter"]["schema"]["items"]["enum"]
    expansions = params["TweetExpansionsParameter"]["schema"]["items"]["enum"]
    assert (set(tweet_fields), set(user_fields), set(expansions)) == (
        fake.TWEET_FIELDS,
        fake.USER_FIELDS,
        fake.TWEET_EXPANSIONS,
    )
    # The adapter sends no user.fields: every expanded User carries these without being asked.
    assert {"id", "name", "username"} <= set(_schema("User")["required"])
    create = _schema("TweetCreateRequest")
    assert set(create["properties"]) == fake._CREATE_KEYS and create["additionalProperties"] is False
    assert set(create["properties"]["reply"]["properties"]) == fake._REPLY_KEYS


def test_responses_to_the_adapter_match_the_spec(x_server: FakeXServer, x_adapter_with: MakeAdapter) -> None:
    adapter = x_adapter_with(user_id=None, search_query="acme OR router")
    root = x_server.post("dana_k", "@acme_support my router is broken")
    own = x_server.post("acme_support", "We are on it @dana_k")
    x_server.post("fan", retweet=own)
    x_server.post("lee_t", "@acme_support me too", quote=own)
    x_server.post("dana_k", "@acme_support still broken", reply_to=root)
    x_server.post("sam_p", "acme is down again")
    for i in range(120):
        x_server.post(f"c{i % 9}", f"@acme_support issue {i}")
    first = adapter.fetch(None)
    again = adapter.fetch(first.cursor)  # empty pages: {"meta": {"result_count": 0}}
    mention = next(m for m in first.mentions if m.post_id == x_server.posts_by("c0")[-1].id)
    reply = adapter.send_reply(
        Reply(account="brand", in_reply_to=mention, text="Ticket FD-000001: https://a.example.com/t/x")
    )
    assert adapter.find_reply(mention) == reply
    x_server.delete(root)
    x_server.add_user("private_p", protected=True)
    hidden = x_server.post("private_p", "@acme_support psst")
    assert adapter.deleted_posts([root, hidden, mention.post_id]) == {root, hidden}  # 200 with partial errors
    assert again.mentions == ()

    records = x_server.requests()
    assert {r.endpoint for r in records} == set(OPERATIONS)
    for record in records:
        _check_success(record)
    (create,) = x_server.requests("create")
    _validate(create.body, "TweetCreateRequest")  # what the adapter sent obeys additionalProperties: false
    # The example set covers a full page with includes, a next_token, and an empty page.
    mention_pages = [r.response for r in x_server.requests("mentions")]
    assert any("next_token" in p.get("meta", {}) for p in mention_pages) or len(first.mentions) <= 100
    assert any(p == {"meta": {"result_count": 0}} for p in mention_pages)
    assert any("users" in p.get("includes", {}) for p in mention_pages)


def test_full_fields_and_expansions_match_the_spec(x_server: FakeXServer) -> None:
    root = x_server.post("dana_k", "@acme_support my #router is broken")
    x_server.post("lee_t", "@acme_support @dana_k same", reply_to=root)
    x_server.post("fan", retweet=root)
    query = {
        "tweet.fields": ",".join(sorted(fake.TWEET_FIELDS)),
        "user.fields": ",".join(sorted(fake.USER_FIELDS)),
        "expansions": ",".join(sorted(fake.TWEET_EXPANSIONS)),
        "max_results": "5",
    }
    bearer = {"Authorization": f"Bearer {x_server.credentials.bearer_token}"}
    for path in (f"/2/users/{x_server.brand.id}/mentions", "/2/tweets/search/recent"):
        params = dict(query, **({"query": "router OR @acme_support", "max_results": "10"} if "search" in path else {}))
        requests.get(x_server.url + path, params=params, headers=bearer, timeout=5).close()
    requests.get(f"{x_server.url}/2/users/404/mentions", headers=bearer, timeout=5).close()  # 200 + partial error
    records = x_server.requests()
    for record in records:
        _check_success(record)
    body = records[0].response
    assert body["includes"]["users"] and body["includes"]["tweets"]
    assert "public_metrics" in body["includes"]["users"][0]  # served when asked: the adapter just never asks
    assert records[-1].response["errors"][0]["type"].endswith("resource-not-found")


def test_error_responses_match_the_spec(x_server: FakeXServer) -> None:
    url, brand = x_server.url, x_server.brand.id
    bearer = {"Authorization": f"Bearer {x_server.credentials.bearer_token}"}
    calls = [
        ("get", f"/2/users/{brand}/mentions", {"Authorization": "Bearer wrong"}, {}, None, 401),
        ("get", f"/2/users/{brand}/mentions", bearer, {"max_results": "1000"}, None, 400),
        ("get", f"/2/users/{brand}/mentions", bearer, {"user.fields": "followers"}, None, 400),
        ("get", f"/2/users/{brand}/mentions", bearer, {"tweet_fields": "lang"}, None, 400),
        ("get", "/2/tweets/search/recent", bearer, {"query": "acme has_gone:wrong"}, None, 400),
        ("post", "/2/tweets", bearer, {}, {"text": "hi"}, 403),  # app-only auth cannot post
        ("get", "/2/users/me", bearer, {}, None, 403),
        ("get", "/2/nothing/here", bearer, {}, None, 404),
    ]
    for method, path, headers, params, body, status in calls:
        response = requests.request(method, url + path, headers=headers, params=params, json=body, timeout=5)
        assert response.status_code == status, (path, response.text)
    x_server.inject("mentions", Fault.error(503), Fault.rate_limited(30), Fault.rate_limited(30, legacy=True))
    for _ in range(3):
        requests.get(f"{url}/2/users/{brand}/mentions", headers=bearer, timeout=5).close()

    records = x_server.requests()
    assert [r.status for r in records] == [s for *_, s in calls] + [503, 429, 429]
    for record in records:
        _check_failure(record)
    limited = requests.get(f"{url}/2/users/{brand}/mentions", headers=bearer, timeout=5)
    assert limited.status_code == 429 and limited.headers["x-rate-limit-remaining"] == "0"
    assert int(limited.headers["x-rate-limit-reset"]) > 0


def test_posting_errors_match_the_spec(x_server: FakeXServer, x_adapter: XAdapter) -> None:
    adapter = x_adapter
    root = x_server.post("dana_k", "@acme_support my router is broken")
    mention = next(m for m in adapter.fetch(None).mentions if m.post_id == root)
    adapter.send_reply(Reply(account="brand", in_reply_to=mention, text="Ticket FD-1: https://a.example.com/t/x"))
    x_server.delete(root)
    with pytest.raises(PermanentError):
        adapter.send_reply(Reply(account="brand", in_reply_to=mention, text="Ticket FD-1: https://a.example.com/t/y"))
    failures = [r for r in x_server.requests("create") if r.status != 201]
    assert [r.status for r in failures] == [403]
    for record in failures:
        _check_failure(record)
