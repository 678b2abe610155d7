"""Request bodies and response shapes of the tenancy routes (`routes/admin.py`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from treadle.server.schemas import JSON

Role = Literal["owner", "admin", "editor", "viewer"]
KeyRole = Literal["admin", "editor", "viewer"]
TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Email = Annotated[str, StringConstraints(
    strip_whitespace=True, max_length=320,
    pattern=r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f\x7f]+$")]
LongText = Annotated[str, StringConstraints(max_length=2000)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class OwnerBody(_Body):
    email: Email
    password: Password
    name: Text | None = None


class CreateTenant(_Body):
    """A tenant, and optionally its first owner (instance admins only)."""

    id: TenantId = Field(description="lower-case letters, digits, `-` and `_`; the "
                         "executions' `tenant_id`")
    name: Text | None = Field(None, description="default: the id")
    owner: OwnerBody | None = Field(None, description="create this user as the owner")


class CreateProject(_Body):
    name: Text
    description: LongText = ""
    tenant_id: TenantId | None = Field(None, description="instance admins: the tenant")


class CreateUser(_Body):
    email: Email
    password: Password
    role: Role = "viewer"
    name: Text | None = None
    tenant_id: TenantId | None = Field(None, description="instance admins: the tenant")


class UpdateUser(_Body):
    """Only the fields given change. A new password or `disabled: true` ends the user's
    tokens."""

    role: Role | None = None
    disabled: bool | None = None
    password: Password | None = None
    name: Text | None = None


class CreateApiKey(_Body):
    name: Text
    role: KeyRole = "viewer"
    expires_in_days: Annotated[float, Field(gt=0, le=3650)] | None = Field(
        None, description="default: never expires")
    tenant_id: TenantId | None = Field(None, description="instance admins: the tenant")


class Login(_Body):
    email: Email
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class RefreshBody(_Body):
    refresh_token: Token


# -- responses --------------------------------------------------------------------------------


class TenantOut(_Out):
    id: str
    name: str
    created_at: str
    owner: dict[str, Any] | None = Field(None, description="the owner created with it")


class ProjectOut(_Out):
    id: str
    tenant_id: str
    name: str
    description: str
    created_at: str
    created_by: str | None


class UserOut(_Out):
    id: str = Field(description="the e-mail address")
    email: str
    tenant_id: str
    role: Role
    name: str
    disabled: bool
    created_at: str
    updated_at: str | None
    created_by: str | None


class ApiKeyOut(_Out):
    id: str
    name: str
    role: KeyRole
    tenant_id: str
    prefix: str = Field(description="how the key begins (`trd_<id>_…`)")
    created_at: str
    created_by: str | None
    expires_at: str | None
    last_used_at: str | None = Field(None, description="to the minute")


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="the key: shown this once, only its digest is kept")


class TokenOut(_Out):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds the access token lives")
    refresh_expires_in: int


class PrincipalOut(_Out):
    id: str
    kind: str = Field(description="anonymous, instance_key, api_key or user")
    tenant_id: str | None = Field(description="null: an instance admin (every tenant)")
    roles: list[str]
    permissions: list[str]


class AuditEntryOut(_Out):
    id: str
    at: str
    action: str
    target: str
    tenant_id: str | None
    actor: dict[str, Any] = Field(description="id, kind, roles")
    details: dict[str, JSON]
    request_id: str | None
    client: str | None


_NEXT = "pass as `cursor` for the next page"


class TenantPage(_Out):
    items: list[TenantOut]
    next_cursor: str | None = Field(description=_NEXT)


class ProjectPage(_Out):
    items: list[ProjectOut]
    next_cursor: str | None = Field(description=_NEXT)


class UserPage(_Out):
    items: list[UserOut]
    next_cursor: str | None = Field(description=_NEXT)


class ApiKeyPage(_Out):
    items: list[ApiKeyOut]
    next_cursor: str | None = Field(description=_NEXT)


class AuditPage(_Out):
    items: list[AuditEntryOut]
    next_cursor: str | None = Field(description=_NEXT + " (a filtered page may be short)")
