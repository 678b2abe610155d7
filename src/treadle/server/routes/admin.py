"""Tenants, projects, users, API keys, login and the audit log (`/api/v1/...`).

Who may do what:

- **instance admins** (instance keys, or anyone on an open server; no tenant) do everything,
  in every tenant: they alone create and delete tenants. Where a tenant is needed (creating a
  user, key or project) they name it (`tenant_id`); listings cover every tenant unless they
  filter by `tenant_id`.
- **tenant principals** (users and stored keys) act in their own tenant only: `tenant_id`
  filters are ignored, naming another tenant in a body is `403`, and any resource of another
  tenant is `404`, exactly as if it did not exist. Owners and admins manage projects, users
  and keys (`admin` permission); nobody grants a role above their own, so only owners make
  owners, and only owners change or remove owners. The last active owner of a tenant cannot
  be demoted, disabled or removed (`409 last_owner`).

Every change is written to the audit log (`treadle.server.audit`).
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from treadle.server.accounts import (
    ApiKey,
    Project,
    Tenant,
    User,
    normal_email,
)
from treadle.server.admin_schemas import (
    ApiKeyCreatedOut,
    ApiKeyOut,
    ApiKeyPage,
    AuditPage,
    CreateApiKey,
    CreateProject,
    CreateTenant,
    CreateUser,
    Login,
    PrincipalOut,
    ProjectOut,
    ProjectPage,
    RefreshBody,
    TenantOut,
    TenantPage,
    TokenOut,
    UpdateUser,
    UserOut,
    UserPage,
)
from treadle.server.audit import AuditQuery, audit, list_entries, valid_cursor
from treadle.server.auth import (
    ROLE_PERMISSIONS,
    ROLE_RANK,
    Principal,
    current_principal,
    requires,
    requires_instance,
)
from treadle.server.errors import JSON, ApiError, not_found
from treadle.server.schemas import ErrorOut
from treadle.server.state import ServerState, state_of
from treadle.server.tokens import REFRESH_REVOKED, REFRESH_USED, InvalidToken
from treadle.server.views import iso
from treadle.stores.base import Record

router = APIRouter(prefix="/api/v1")
logger = logging.getLogger("treadle.server.auth")

Reader = Annotated[Principal, Depends(requires("read"))]
Admin = Annotated[Principal, Depends(requires("admin"))]
InstanceAdmin = Annotated[Principal, Depends(requires_instance("admin"))]
Caller = Annotated[Principal, Depends(current_principal)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=500, description="`next_cursor`")]
TenantFilter = Annotated[str | None, Query(
    max_length=200, description="instance admins: only this tenant (others: always theirs)")]
PUBLIC: dict[str, Any] = {"security": []}
PRUNE_SECONDS = 3600.0


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorOut} for code in sorted({401, 403, 422, *codes})}


def _visible(principal: Principal, tenant_id: str | None) -> bool:
    return principal.tenant_id is None or principal.tenant_id == tenant_id


def _scope(principal: Principal, requested: str | None) -> str | None:
    """The tenant a listing covers: the caller's own, or (instance admins) the one asked."""
    return principal.tenant_id if principal.tenant_id is not None else requested


async def _target_tenant(st: ServerState, principal: Principal, requested: str | None) -> str:
    """The tenant a new resource goes in."""
    if principal.tenant_id is not None:
        if requested not in (None, principal.tenant_id):
            raise ApiError(403, "forbidden", "you cannot act in another tenant")
        return principal.tenant_id
    if requested is None:
        raise ApiError(400, "tenant_required", "instance admins must name the `tenant_id`")
    if await st.accounts.get_tenant(requested) is None:
        raise not_found("tenant", requested)
    return requested


def _check_cursor(cursor: str | None) -> None:
    if cursor is not None and not valid_cursor(cursor):
        raise ApiError(400, "invalid_cursor", "the cursor is not one this API returned")


def _check_grant(principal: Principal, role: str) -> None:
    if ROLE_RANK[role] > principal.rank:
        raise ApiError(403, "forbidden", f"you cannot grant the {role!r} role (above yours)")


def _page(items: list[dict[str, Any]], next_cursor: str | None) -> JSON:
    return JSON({"items": items, "next_cursor": next_cursor})


def _location(kind: str, ident: str) -> str:
    """A `Location` header for a new resource (quoted: an e-mail may hold any character)."""
    return f"/api/v1/{kind}/{quote(ident, safe='@')}"


def _no_content() -> Response:
    return Response(status_code=204)


# -- views ------------------------------------------------------------------------------------


def tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {"id": tenant.id, "name": tenant.name, "created_at": iso(tenant.created_at)}


def project_view(project: Project) -> dict[str, Any]:
    return {"id": project.id, "tenant_id": project.tenant_id, "name": project.name,
            "description": project.description, "created_at": iso(project.created_at),
            "created_by": project.created_by}


def user_view(user: User) -> dict[str, Any]:
    return {"id": user.email, "email": user.email, "tenant_id": user.tenant_id,
            "role": user.role, "name": user.name, "disabled": user.disabled,
            "created_at": iso(user.created_at), "updated_at": iso(user.updated_at),
            "created_by": user.created_by}


def key_view(key: ApiKey, last_used: float | None = None) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "role": key.role, "tenant_id": key.tenant_id,
            "prefix": key.prefix, "created_at": iso(key.created_at),
            "created_by": key.created_by, "expires_at": iso(key.expires_at),
            "last_used_at": iso(last_used)}


# -- tenants ----------------------------------------------------------------------------------


@router.post("/tenants", status_code=201, response_model=TenantOut, tags=["tenants"],
             responses=errors(409), summary="Create a tenant")
async def create_tenant(body: CreateTenant, request: Request, principal: InstanceAdmin) -> Any:
    """Instance admins only. With `owner`, its first user (role `owner`) is created too."""
    st = state_of(request)
    now = time.time()
    owner: User | None = None
    if body.owner is not None:
        email = normal_email(body.owner.email)
        if await st.accounts.get_user(email) is not None:
            raise ApiError(409, "user_exists", f"a user {email!r} exists already")
        owner = User(email, body.id, "owner", await st.accounts.hash_password(
            body.owner.password), now, body.owner.name or "", created_by=principal.id)
    tenant = Tenant(body.id, body.name or body.id, now, principal.id)
    if not await st.accounts.create_tenant(tenant):
        raise ApiError(409, "tenant_exists", f"a tenant {body.id!r} exists already")
    if owner is not None and not await st.accounts.put_user(owner, create=True):
        await st.accounts.delete_tenant(tenant.id)  # taken meanwhile: undo
        raise ApiError(409, "user_exists", f"a user {owner.email!r} exists already")
    await audit(request, "tenant.create", f"tenant:{tenant.id}", {"name": tenant.name},
                tenant_id=tenant.id)
    view = tenant_view(tenant)
    if owner is not None:
        await audit(request, "user.create", f"user:{owner.email}", {"role": "owner"},
                    tenant_id=tenant.id)
        view["owner"] = user_view(owner)
    return JSON(view, status_code=201, headers={"Location": _location("tenants", tenant.id)})


@router.get("/tenants", response_model=TenantPage, tags=["tenants"], responses=errors(400),
            summary="List tenants")
async def list_tenants(request: Request, principal: Reader, limit: Limit = 50,
                       cursor: Cursor = None) -> Any:
    """Every tenant for instance admins; a tenant's principals see their own."""
    _check_cursor(cursor)
    page = await state_of(request).accounts.list_tenants(principal.tenant_id, limit, cursor)
    return _page([tenant_view(t) for t in page.items], page.next_cursor)


@router.get("/tenants/{tenant_id}", response_model=TenantOut, tags=["tenants"],
            responses=errors(404), summary="Get a tenant")
async def get_tenant(tenant_id: Annotated[str, Path()], request: Request,
                     principal: Reader) -> Any:
    tenant = (await state_of(request).accounts.get_tenant(tenant_id)
              if _visible(principal, tenant_id) else None)
    if tenant is None:
        raise not_found("tenant", tenant_id)
    return JSON(tenant_view(tenant))


@router.delete("/tenants/{tenant_id}", status_code=204, response_class=Response,
               tags=["tenants"], responses=errors(404), summary="Delete a tenant")
async def delete_tenant(tenant_id: Annotated[str, Path()], request: Request,
                        principal: InstanceAdmin) -> Response:
    """Instance admins only: the tenant, its projects, users and API keys go (its executions
    and audit entries stay)."""
    st = state_of(request)
    if await st.accounts.get_tenant(tenant_id) is None:
        raise not_found("tenant", tenant_id)
    await st.accounts.delete_tenant(tenant_id)
    await audit(request, "tenant.delete", f"tenant:{tenant_id}", tenant_id=tenant_id)
    return _no_content()


# -- projects ---------------------------------------------------------------------------------


@router.post("/projects", status_code=201, response_model=ProjectOut, tags=["projects"],
             responses=errors(400, 404), summary="Create a project")
async def create_project(body: CreateProject, request: Request, principal: Admin) -> Any:
    """A project groups a tenant's executions: start them with `metadata.project_id`."""
    st = state_of(request)
    tenant_id = await _target_tenant(st, principal, body.tenant_id)
    project = Project(f"prj_{secrets.token_hex(8)}", tenant_id, body.name, body.description,
                      time.time(), principal.id)
    await st.accounts.create_project(project)
    await audit(request, "project.create", f"project:{project.id}", {"name": project.name},
                tenant_id=tenant_id)
    return JSON(project_view(project), status_code=201,
                headers={"Location": f"/api/v1/projects/{project.id}"})


@router.get("/projects", response_model=ProjectPage, tags=["projects"], responses=errors(400),
            summary="List projects")
async def list_projects(request: Request, principal: Reader, tenant_id: TenantFilter = None,
                        limit: Limit = 50, cursor: Cursor = None) -> Any:
    _check_cursor(cursor)
    page = await state_of(request).accounts.list_projects(_scope(principal, tenant_id), limit,
                                                          cursor)
    return _page([project_view(p) for p in page.items], page.next_cursor)


async def _project(request: Request, principal: Principal, project_id: str) -> Project:
    project = await state_of(request).accounts.get_project(project_id)
    if project is None or not _visible(principal, project.tenant_id):
        raise not_found("project", project_id)
    return project


@router.get("/projects/{project_id}", response_model=ProjectOut, tags=["projects"],
            responses=errors(404), summary="Get a project")
async def get_project(project_id: Annotated[str, Path()], request: Request,
                      principal: Reader) -> Any:
    return JSON(project_view(await _project(request, principal, project_id)))


@router.delete("/projects/{project_id}", status_code=204, response_class=Response,
               tags=["projects"], responses=errors(404), summary="Delete a project")
async def delete_project(project_id: Annotated[str, Path()], request: Request,
                         principal: Admin) -> Response:
    project = await _project(request, principal, project_id)
    await state_of(request).accounts.delete_project(project.id)
    await audit(request, "project.delete", f"project:{project.id}", {"name": project.name},
                tenant_id=project.tenant_id)
    return _no_content()


# -- users ------------------------------------------------------------------------------------


@router.post("/users", status_code=201, response_model=UserOut, tags=["users"],
             responses=errors(400, 404, 409), summary="Create a user")
async def create_user(body: CreateUser, request: Request, principal: Admin) -> Any:
    """A user of the caller's tenant (instance admins: of `tenant_id`). Nobody grants a role
    above their own: only owners create owners."""
    st = state_of(request)
    tenant_id = await _target_tenant(st, principal, body.tenant_id)
    _check_grant(principal, body.role)
    email = normal_email(body.email)
    if await st.accounts.get_user(email) is not None:
        raise ApiError(409, "user_exists", f"a user {email!r} exists already")
    user = User(email, tenant_id, body.role, await st.accounts.hash_password(body.password),
                time.time(), body.name or "", created_by=principal.id)
    if not await st.accounts.put_user(user, create=True):
        raise ApiError(409, "user_exists", f"a user {email!r} exists already")
    await audit(request, "user.create", f"user:{email}", {"role": user.role},
                tenant_id=tenant_id)
    return JSON(user_view(user), status_code=201, headers={"Location": _location("users", email)})


@router.get("/users", response_model=UserPage, tags=["users"], responses=errors(400),
            summary="List users")
async def list_users(request: Request, principal: Admin, tenant_id: TenantFilter = None,
                     limit: Limit = 50, cursor: Cursor = None) -> Any:
    _check_cursor(cursor)
    page = await state_of(request).accounts.list_users(_scope(principal, tenant_id), limit,
                                                       cursor)
    return _page([user_view(u) for u in page.items], page.next_cursor)


async def _user(request: Request, principal: Principal, user_id: str) -> User:
    user = await state_of(request).accounts.get_user(user_id)
    if user is None or not _visible(principal, user.tenant_id):
        raise not_found("user", user_id)
    return user


UserId = Annotated[str, Path(description="the user's e-mail address")]


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"],
            responses=errors(404), summary="Get a user",
            openapi_extra={"x-permission": "admin"})  # or the user themselves
async def get_user(user_id: UserId, request: Request, principal: Reader) -> Any:
    """Admins see their tenant's users; anyone sees themselves."""
    itself = principal.kind == "user" and principal.id == normal_email(user_id)
    if not itself and not principal.can("admin"):
        raise ApiError(403, "forbidden", "this needs the 'admin' permission")
    return JSON(user_view(await _user(request, principal, user_id)))


def _check_owner_change(principal: Principal, user: User, new_role: str | None) -> None:
    if (user.role == "owner" or new_role == "owner") and principal.rank < ROLE_RANK["owner"]:
        raise ApiError(403, "forbidden", "only owners grant, change or remove the owner role")


async def _check_last_owner(st: ServerState, user: User) -> None:
    if user.active_owner and await st.accounts.active_owners(user.tenant_id) <= 1:
        raise ApiError(409, "last_owner", f"{user.email} is the last owner of tenant "
                       f"{user.tenant_id!r}: make another owner first")


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"],
              responses=errors(404, 409), summary="Change a user")
async def update_user(user_id: UserId, body: UpdateUser, request: Request,
                      principal: Admin) -> Any:
    """Role, disabled, password, name. A new password or disabling ends the user's tokens."""
    st = state_of(request)
    async with st.accounts.lock:
        user = await _user(request, principal, user_id)
        _check_owner_change(principal, user, body.role)
        if body.role is not None:
            _check_grant(principal, body.role)
        changed = {name for name in body.model_fields_set
                   if getattr(body, name) is not None}
        updated = replace(user, role=body.role or user.role, updated_at=time.time(),
                          disabled=user.disabled if body.disabled is None else body.disabled,
                          name=user.name if body.name is None else body.name)
        if user.active_owner and not updated.active_owner:
            await _check_last_owner(st, user)
        if body.password is not None:
            updated = replace(updated, password_hash=await st.accounts.hash_password(
                body.password), token_version=updated.token_version + 1)
        if updated.disabled and not user.disabled:
            updated = replace(updated, token_version=updated.token_version + 1)
        await st.accounts.put_user(updated)
    details: dict[str, Any] = {"changed": sorted(changed)}
    if updated.role != user.role:
        details["role"] = {"from": user.role, "to": updated.role}
    if updated.disabled != user.disabled:
        details["disabled"] = updated.disabled
    await audit(request, "user.update", f"user:{user.email}", details,
                tenant_id=user.tenant_id)
    return JSON(user_view(updated))


@router.delete("/users/{user_id}", status_code=204, response_class=Response, tags=["users"],
               responses=errors(404, 409), summary="Remove a user")
async def delete_user(user_id: UserId, request: Request, principal: Admin) -> Response:
    st = state_of(request)
    async with st.accounts.lock:
        user = await _user(request, principal, user_id)
        _check_owner_change(principal, user, None)
        await _check_last_owner(st, user)
        await st.accounts.delete_user(user.email)
    await audit(request, "user.delete", f"user:{user.email}", {"role": user.role},
                tenant_id=user.tenant_id)
    return _no_content()


# -- API keys ---------------------------------------------------------------------------------


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreatedOut, tags=["api keys"],
             responses=errors(400, 404), summary="Create an API key")
async def create_api_key(body: CreateApiKey, request: Request, principal: Admin) -> Any:
    """The answer holds the key, this once: only its SHA-256 digest is kept. Its role is at
    most the caller's (admin, editor or viewer)."""
    st = state_of(request)
    tenant_id = await _target_tenant(st, principal, body.tenant_id)
    _check_grant(principal, body.role)
    expires_at = (None if body.expires_in_days is None
                  else time.time() + body.expires_in_days * 86400)
    key, full = await st.accounts.create_key(tenant_id, body.role, body.name, principal.id,
                                             expires_at)
    await audit(request, "api_key.create", f"api_key:{key.id}",
                {"name": key.name, "role": key.role}, tenant_id=tenant_id)
    return JSON({**key_view(key), "key": full}, status_code=201,
                headers={"Location": f"/api/v1/api-keys/{key.id}", "Cache-Control": "no-store"})


@router.get("/api-keys", response_model=ApiKeyPage, tags=["api keys"], responses=errors(400),
            summary="List API keys")
async def list_api_keys(request: Request, principal: Admin, tenant_id: TenantFilter = None,
                        limit: Limit = 50, cursor: Cursor = None) -> Any:
    """Without the keys themselves (never shown again)."""
    _check_cursor(cursor)
    accounts = state_of(request).accounts
    page = await accounts.list_keys(_scope(principal, tenant_id), limit, cursor)
    return _page([key_view(k, await accounts.last_used(k.id)) for k in page.items],
                 page.next_cursor)


async def _key(request: Request, principal: Principal, key_id: str) -> ApiKey:
    key = await state_of(request).accounts.get_key(key_id)
    if key is None or not _visible(principal, key.tenant_id):
        raise not_found("api_key", key_id)
    return key


@router.get("/api-keys/{key_id}", response_model=ApiKeyOut, tags=["api keys"],
            responses=errors(404), summary="Get an API key")
async def get_api_key(key_id: Annotated[str, Path()], request: Request,
                      principal: Admin) -> Any:
    key = await _key(request, principal, key_id)
    return JSON(key_view(key, await state_of(request).accounts.last_used(key.id)))


@router.delete("/api-keys/{key_id}", status_code=204, response_class=Response,
               tags=["api keys"], responses=errors(404), summary="Revoke an API key")
async def revoke_api_key(key_id: Annotated[str, Path()], request: Request,
                         principal: Admin) -> Response:
    key = await _key(request, principal, key_id)
    await state_of(request).accounts.delete_key(key.id)
    await audit(request, "api_key.revoke", f"api_key:{key.id}",
                {"name": key.name, "role": key.role}, tenant_id=key.tenant_id)
    return _no_content()


# -- login ------------------------------------------------------------------------------------


def _token_error(exc: InvalidToken) -> ApiError:
    if exc.reason == "expired":
        return ApiError(401, "token_expired", "the refresh token has expired: log in again")
    return ApiError(401, "invalid_token", "the refresh token is not valid")


@router.post("/auth/login", response_model=TokenOut, tags=["auth"], openapi_extra=PUBLIC,
             responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Log in")
async def login(body: Login, request: Request) -> Any:
    """E-mail and password → an access token (send it as `Authorization: Bearer`) and a
    refresh token (for `/auth/refresh`). A wrong e-mail, a wrong password and a disabled user
    get the same answer."""
    st = state_of(request)
    user = await st.accounts.get_user(normal_email(body.email))
    ok = await st.accounts.verify_password(user, body.password)
    if user is None or not ok or user.disabled:
        logger.warning("failed login for %s from %s", normal_email(body.email),
                       request.client.host if request.client else "?")
        if user is not None:
            who = Principal(user.email, kind="user", roles=frozenset({user.role}),
                            tenant_id=user.tenant_id)
            await audit(request, "auth.login_failed", f"user:{user.email}",
                        {"reason": "disabled" if ok else "wrong_password"}, actor=who)
        raise ApiError(401, "invalid_credentials", "wrong e-mail or password")
    if st.accounts.needs_rehash(user):
        user = replace(user, password_hash=await st.accounts.hash_password(body.password))
        await st.accounts.put_user(user)
    pair, _ = st.tokens.issue(user.email, user.tenant_id, user.role, user.token_version)
    return JSON(pair.view(), headers={"Cache-Control": "no-store"})


@router.post("/auth/refresh", response_model=TokenOut, tags=["auth"], openapi_extra=PUBLIC,
             responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Refresh a login")
async def refresh(body: RefreshBody, request: Request) -> Any:
    """A refresh token → a new pair. Each refresh token works once: using one again revokes
    every token descended from the same login."""
    st = state_of(request)
    try:
        claims = st.tokens.decode(body.refresh_token, "refresh")
    except InvalidToken as exc:
        raise _token_error(exc) from None
    store = await st.accounts.store()
    now = time.time()
    await _prune(st, now)
    if await store.get_record(REFRESH_REVOKED, claims.family) is not None:
        raise ApiError(401, "invalid_token", "the refresh token is not valid")
    used = Record(REFRESH_USED, claims.jti, {"family": claims.family}, now, claims.tenant_id,
                  claims.expires_at)
    if not await store.put_record(used, create_only=True):
        logger.warning("a refresh token of %s was used twice: its login is revoked",
                       claims.sub)
        await _revoke_family(st, claims.family, claims.tenant_id, now)
        who = Principal(claims.sub, kind="user", roles=frozenset({claims.role}),
                        tenant_id=claims.tenant_id)
        await audit(request, "auth.refresh_reused", f"user:{claims.sub}",
                    {"family": claims.family}, actor=who)
        raise ApiError(401, "invalid_token", "the refresh token is not valid")
    user = await st.accounts.get_user(claims.sub)
    if (user is None or user.disabled or user.tenant_id != claims.tenant_id
            or user.token_version != claims.version):
        raise ApiError(401, "invalid_token", "the refresh token is no longer valid")
    pair, _ = st.tokens.issue(user.email, user.tenant_id, user.role, user.token_version,
                              family=claims.family)
    return JSON(pair.view(), headers={"Cache-Control": "no-store"})


@router.post("/auth/logout", status_code=204, response_class=Response, tags=["auth"],
             openapi_extra=PUBLIC,
             responses={401: {"model": ErrorOut}, 422: {"model": ErrorOut}},
             summary="Log out")
async def logout(body: RefreshBody, request: Request) -> Response:
    """Revoke the login a refresh token belongs to (its access tokens live out their
    minutes)."""
    st = state_of(request)
    try:
        claims = st.tokens.decode(body.refresh_token, "refresh")
    except InvalidToken as exc:
        raise _token_error(exc) from None
    await _revoke_family(st, claims.family, claims.tenant_id, time.time())
    return _no_content()


async def _revoke_family(st: ServerState, family: str, tenant_id: str, now: float) -> None:
    store = await st.accounts.store()
    await store.put_record(Record(REFRESH_REVOKED, family, {}, now, tenant_id,
                                  now + st.tokens.refresh_seconds))


async def _prune(st: ServerState, now: float) -> None:
    """Drop the records of expired refresh tokens, at most once an hour per process."""
    if now - st.accounts.pruned_at < PRUNE_SECONDS:
        return
    st.accounts.pruned_at = now
    store = await st.accounts.store()
    for kind in (REFRESH_USED, REFRESH_REVOKED):
        await store.prune_records(now, kind)


@router.get("/auth/me", response_model=PrincipalOut, tags=["auth"],
            responses={401: {"model": ErrorOut}}, summary="Who am I")
async def whoami(principal: Caller) -> Any:
    """The caller as the server sees it: id, kind, tenant, roles and permissions."""
    permissions = sorted({p for role in principal.roles for p in ROLE_PERMISSIONS.get(role, ())})
    return JSON({"id": principal.id, "kind": principal.kind, "tenant_id": principal.tenant_id,
                 "roles": sorted(principal.roles), "permissions": permissions})


# -- audit ------------------------------------------------------------------------------------


def _epoch(value: datetime | None) -> float | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@router.get("/audit", response_model=AuditPage, tags=["audit"], responses=errors(400),
            summary="The audit log")
async def audit_log(
    request: Request,
    principal: Admin,
    action: Annotated[str | None, Query(max_length=200,
                                        description="exact, or a prefix as `user.*`")] = None,
    actor: Annotated[str | None, Query(max_length=320, description="the actor's id")] = None,
    target: Annotated[str | None, Query(max_length=400, description="`<kind>:<id>`")] = None,
    since: Annotated[datetime | None, Query(description="at or after")] = None,
    until: Annotated[datetime | None, Query(description="before")] = None,
    tenant_id: TenantFilter = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    """Administrative actions and operators' decisions, newest first. A tenant's admins see
    their tenant's entries; instance admins see all (or one tenant's with `tenant_id`)."""
    _check_cursor(cursor)
    st = state_of(request)
    query = AuditQuery(tenant_id=_scope(principal, tenant_id), action=action, actor=actor,
                       target=target, since=_epoch(since), until=_epoch(until), limit=limit,
                       cursor=cursor)
    items, next_cursor = await list_entries(await st.accounts.store(), query,
                                            st.settings.audit_scan_limit)
    return _page(items, next_cursor)
