"""Two tenants on a real server, each with an owner, admin, editor and viewer (users who log
in, and stored API keys for every key role), an execution, a failed execution (a dead
letter), a breakpoint and a project.

Every response a kit client receives is kept (`World.responses`), so tests can look for
secrets in all of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

import treadle
from treadle.server import Settings, create_app

from .conftest import Server, finished, start, start_server
from .workflows import hello

KIT = treadle.Registry()


@treadle.workflow(name="greet", registry=KIT)
async def greet(ctx: treadle.Context, name: str) -> dict[str, str]:
    greeting: dict[str, str] = await hello(name)
    return greeting


@treadle.workflow(name="doomed", registry=KIT, dead_letter=True)
async def doomed(ctx: treadle.Context, data: Any) -> None:
    raise ValueError("doomed to fail")

ROOT_KEY = "root-instance-key-4d1f0c9e7b"
JWT_SECRET = "jwt-secret-for-tests-0123456789abcdef-xyz"
FAST = Settings(password_time_cost=1, password_memory_kib=8, password_parallelism=1)
ROLES = ("owner", "admin", "editor", "viewer")
KEY_ROLES = ("admin", "editor", "viewer")


@dataclass
class Account:
    email: str
    password: str
    access_token: str = ""
    refresh_token: str = ""


@dataclass
class Key:
    id: str
    key: str


@dataclass
class Tenancy:
    id: str
    users: dict[str, Account] = field(default_factory=dict)
    keys: dict[str, Key] = field(default_factory=dict)
    execution: str = ""
    failed_execution: str = ""
    project: str = ""
    breakpoint: str = ""

    def markers(self) -> list[str]:
        """Strings that only this tenant's data contains."""
        return [self.id, self.execution, self.failed_execution, self.project, self.breakpoint,
                *(a.email for a in self.users.values()), *(k.id for k in self.keys.values())]


@dataclass
class World:
    server: Server
    a: Tenancy
    b: Tenancy
    responses: list[httpx.Response] = field(default_factory=list)

    def client(self, token: str | None = None, *, header: str = "authorization"
               ) -> httpx.Client:
        headers = {}
        if token is not None:
            headers = ({"Authorization": f"Bearer {token}"} if header == "authorization"
                       else {"X-API-Key": token})
        return httpx.Client(base_url=self.server.url, headers=headers, timeout=10.0,
                            event_hooks={"response": [self._keep]})

    def _keep(self, response: httpx.Response) -> None:
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            response.read()
            self.responses.append(response)

    def root(self) -> httpx.Client:
        return self.client(ROOT_KEY)

    def as_user(self, tenant: Tenancy, role: str) -> httpx.Client:
        return self.client(tenant.users[role].access_token)

    def as_key(self, tenant: Tenancy, role: str) -> httpx.Client:
        return self.client(tenant.keys[role].key, header="x-api-key")

    def secrets(self) -> list[str]:
        """Every password, key and token of both tenants, and the instance secrets."""
        out = [ROOT_KEY, JWT_SECRET]
        for tenant in (self.a, self.b):
            for account in tenant.users.values():
                out += [account.password, account.access_token, account.refresh_token]
            out += [k.key for k in tenant.keys.values()]
            out += [k.key[len("trd_") + 17:] for k in tenant.keys.values()]  # the secret part
        return [s for s in out if s]


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, response.request.url,
                                             response.status_code, response.text)
    return response.json() if response.content else None


def login(client: httpx.Client, account: Account) -> None:
    body = ok(client.post("/api/v1/auth/login",
                          json={"email": account.email, "password": account.password}))
    account.access_token, account.refresh_token = body["access_token"], body["refresh_token"]


def make_tenant(world: World, tenant_id: str) -> Tenancy:
    tenant = Tenancy(tenant_id)
    tag = uuid.uuid4().hex[:6]
    for role in ROLES:
        tenant.users[role] = Account(f"{role}-{tag}@{tenant_id}.test",
                                     f"pw-{role}-{tag}-Secret!")
    owner = tenant.users["owner"]
    with world.root() as root:
        ok(root.post("/api/v1/tenants", json={
            "id": tenant_id, "name": f"Tenant {tenant_id}",
            "owner": {"email": owner.email, "password": owner.password}}), 201)
    with world.client() as anon:
        login(anon, owner)
    with world.as_user(tenant, "owner") as c:
        for role in ("admin", "editor", "viewer"):
            account = tenant.users[role]
            ok(c.post("/api/v1/users", json={"email": account.email, "role": role,
                                             "password": account.password}), 201)
        for role in KEY_ROLES:
            body = ok(c.post("/api/v1/api-keys", json={"name": f"{role} key", "role": role}),
                      201)
            tenant.keys[role] = Key(body["id"], body["key"])
        tenant.project = ok(c.post("/api/v1/projects", json={"name": "payments"}), 201)["id"]
    with world.client() as anon:
        for role in ("admin", "editor", "viewer"):
            login(anon, tenant.users[role])
    with world.as_user(tenant, "editor") as c:
        tenant.execution = start(c, "greet", tenant_id)
        tenant.failed_execution = start(c, "doomed", {"id": 1})
        finished(c, tenant.execution)
        finished(c, tenant.failed_execution)
        tenant.breakpoint = ok(c.post("/api/v1/pipelines/doomed/breakpoints",
                                      json={"step": "never-called"}), 201)["id"]
    return tenant


def build_world(tmp: Path, **options: Any) -> Iterator[World]:
    engine = treadle.Engine(f"sqlite:///{tmp}/tenancy.db", registry=KIT)
    server = start_server(engine, api_keys={"root": ROOT_KEY}, jwt_secret=JWT_SECRET,
                          settings=options.pop("settings", FAST), **options)
    try:
        world = World(server, Tenancy(""), Tenancy(""))
        world.a = make_tenant(world, "tenant-a")
        world.b = make_tenant(world, "tenant-b")
        yield world
    finally:
        server.stop()


# -- requests for every operation of the OpenAPI document -------------------------------------

SPEC = create_app(treadle.Engine(registry=KIT)).openapi()
OPERATIONS = [(path, method, op) for path, ops in SPEC["paths"].items()
              for method, op in ops.items()]

# A path or query parameter naming a tenant's resource: (A's value, a value naming nothing).
RESOURCES: dict[str, tuple[Callable[[Tenancy], str], Callable[[], str]]] = {
    "execution_id": (lambda t: t.execution, lambda: str(uuid.uuid4())),
    "left": (lambda t: t.execution, lambda: str(uuid.uuid4())),
    "right": (lambda t: t.failed_execution, lambda: str(uuid.uuid4())),
    "tenant_id": (lambda t: t.id, lambda: "no-such-tenant"),
    "user_id": (lambda t: t.users["editor"].email, lambda: "nobody@nowhere.test"),
    "key_id": (lambda t: t.keys["viewer"].id, lambda: "0123456789abcdef"),
    "project_id": (lambda t: t.project, lambda: "prj_0123456789abcdef"),
    "breakpoint_id": (lambda t: t.breakpoint, lambda: uuid.uuid4().hex),
    "message_id": (lambda t: t.failed_execution, lambda: str(uuid.uuid4())),
}
SHARED = {"pipeline": "doomed"}  # workflows are code: every tenant may run them
TENANT_FILTERS = {"tenant_id", "tenant"}  # query filters a tenant principal cannot widen
STREAMING = {"/api/v1/executions/live"}  # a resource request (execution_id) or its own test


def _schema(ref_or_schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in ref_or_schema:
        name = ref_or_schema["$ref"].rsplit("/", 1)[-1]
        found: dict[str, Any] = SPEC["components"]["schemas"][name]
        return found
    return ref_or_schema


SAMPLES = {"email": "sample@tenant-b.test", "password": "sample-password-1", "id": "sampled",
           "workflow": "greet", "name": "sample", "step": "never-called",
           "refresh_token": "not-a-token", "mode": "exact"}
BODY_EXTRAS = {"/api/v1/executions": {"input": "x"}}  # optional fields a valid request needs


def sample(schema: dict[str, Any], name: str = "") -> Any:
    """A small valid value for `schema` (required fields only)."""
    schema = _schema(schema)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return sample(options[0], name) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: sample(props[key], key) for key in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("exclusiveMinimum", schema.get("minimum", 0))) + 1
    if kind == "boolean":
        return False
    return SAMPLES.get(name, "sample")


def request_for(path: str, op: dict[str, Any], owner: Tenancy | None
                ) -> tuple[str, dict[str, str], Any, bool]:
    """URL, query and body aimed at `owner`'s resources (None: at resources that do not
    exist); and whether the request names a resource of a tenant."""
    url, params, targets = path, {}, False
    for param in op.get("parameters", []):
        name, where = param["name"], param["in"]
        if name in RESOURCES and (where == "path" or name not in TENANT_FILTERS):
            mine, missing = RESOURCES[name]
            value = mine(owner) if owner is not None else missing()
            targets = True
        elif name in TENANT_FILTERS:
            value = "tenant-a"  # a tenant filter: B asks for A's data
        elif where == "path" and name in SHARED:
            value = SHARED[name]
        elif where == "path":
            raise AssertionError(f"unknown path parameter {name!r} in {path}: teach RESOURCES")
        else:
            continue
        if where == "path":
            url = url.replace("{" + name + "}", quote(value, safe="@"))
        elif where == "query":
            params[name] = value
    body = None
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        body = sample(schema)
        if isinstance(body, dict):
            body.update(BODY_EXTRAS.get(path, {}))
        if isinstance(body, dict) and "tenant_id" in _schema(schema).get("properties", {}):
            body["tenant_id"] = "tenant-a"
    return url, params, body, targets
