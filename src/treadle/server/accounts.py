"""Tenants, projects, users and API keys, kept as store records (no tables of their own).

- `tenant`, key the tenant id (a slug, `acme`): its name;
- `project`, key `prj_<hex>`: tenant, name, description;
- `user`, key the e-mail address, lower-cased (unique across tenants: it is the login):
  tenant, role, argon2 password hash, disabled, token version;
- `api_key`, key a 16-hex-digit id: tenant, role, name, SHA-256 digest of the whole key;
- `api_key_used`, key the key id: when the key was last used (written once a minute at most).

Every record carries its tenant in `Record.tenant_id`, so listings are scoped by the store.
Passwords are hashed with argon2id (`argon2-cffi`), in a worker thread; API keys are random
(256 bits) and kept only as a SHA-256 digest, compared in constant time. A key reads
`trd_<id>_<secret>`: the id finds the record, the digest proves the secret.

Writes are plain record puts: the uniqueness of tenant ids and e-mails comes from
`put_record(create_only=True)`; the rule that a tenant keeps one active owner is checked
under a lock of this process (two servers changing the same tenant's owners at the same
instant could both pass it).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from treadle.engine import Engine
from treadle.journal.model import Page
from treadle.stores.base import Record, RecordQuery, Store

ROLES = ("owner", "admin", "editor", "viewer")
KEY_ROLES = ("admin", "editor", "viewer")  # ownership belongs to people

TENANT = "tenant"
PROJECT = "project"
USER = "user"
API_KEY = "api_key"
API_KEY_USED = "api_key_used"
TENANT_OWNED = (PROJECT, USER, API_KEY, API_KEY_USED)  # what deleting a tenant removes

KEY_PREFIX = "trd_"
_KEY = re.compile(r"^trd_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")
USED_WRITE_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    created_at: float
    created_by: str | None = None

    def data(self) -> dict[str, Any]:
        return {"name": self.name, "created_by": self.created_by}


@dataclass(frozen=True, slots=True)
class Project:
    id: str
    tenant_id: str
    name: str
    description: str
    created_at: float
    created_by: str | None = None

    def data(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "created_by": self.created_by}


@dataclass(frozen=True, slots=True)
class User:
    """A person who logs in. `email` is the id; `password_hash` never leaves the server."""

    email: str
    tenant_id: str
    role: str
    password_hash: str
    created_at: float
    name: str = ""
    disabled: bool = False
    token_version: int = 0  # bumped by a new password or disabling: older tokens stop working
    created_by: str | None = None
    updated_at: float | None = None

    @property
    def active_owner(self) -> bool:
        return self.role == "owner" and not self.disabled

    def data(self) -> dict[str, Any]:
        return {"role": self.role, "password_hash": self.password_hash, "name": self.name,
                "disabled": self.disabled, "token_version": self.token_version,
                "created_by": self.created_by, "updated_at": self.updated_at}


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A stored API key: only the digest of the key is kept."""

    id: str
    tenant_id: str
    role: str
    name: str
    digest: str  # hex SHA-256 of the whole key
    created_at: float
    created_by: str | None = None
    expires_at: float | None = None

    @property
    def prefix(self) -> str:
        """What identifies the key on screen (the secret part is never shown again)."""
        return f"{KEY_PREFIX}{self.id}_…"

    def data(self) -> dict[str, Any]:
        return {"role": self.role, "name": self.name, "digest": self.digest,
                "created_by": self.created_by, "expires_at": self.expires_at}


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def parse_key(token: str) -> tuple[str, str] | None:
    """(id, secret) of a `trd_<id>_<secret>` key, or None for anything else."""
    found = _KEY.match(token)
    return (found.group(1), found.group(2)) if found else None


def looks_like_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)


def new_key() -> tuple[str, str]:
    """A fresh (id, full key)."""
    key_id = secrets.token_hex(8)
    return key_id, f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def normal_email(email: str) -> str:
    return email.strip().lower()


def _str(data: Mapping[str, Any], name: str, default: str = "") -> str:
    value = data.get(name)
    return value if isinstance(value, str) else default


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def _opt_float(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    return float(value) if isinstance(value, int | float) else None


def _tenant(record: Record) -> Tenant:
    return Tenant(record.key, _str(record.data, "name"), record.created_at,
                  _opt_str(record.data, "created_by"))


def _project(record: Record) -> Project:
    d = record.data
    return Project(record.key, record.tenant_id or "", _str(d, "name"), _str(d, "description"),
                   record.created_at, _opt_str(d, "created_by"))


def _user(record: Record) -> User:
    d = record.data
    version = d.get("token_version")
    return User(record.key, record.tenant_id or "", _str(d, "role", "viewer"),
                _str(d, "password_hash"), record.created_at, _str(d, "name"),
                bool(d.get("disabled")), version if isinstance(version, int) else 0,
                _opt_str(d, "created_by"), _opt_float(d, "updated_at"))


def _api_key(record: Record) -> ApiKey:
    d = record.data
    return ApiKey(record.key, record.tenant_id or "", _str(d, "role", "viewer"),
                  _str(d, "name"), _str(d, "digest"), record.created_at,
                  _opt_str(d, "created_by"), _opt_float(d, "expires_at"))


class Accounts:
    """The tenants, projects, users and API keys in an engine's store.

    Every method opens the engine first (idempotent). Listings are newest first and take the
    store's cursors; `tenant_id` None lists every tenant.
    """

    def __init__(self, engine: Engine, *, time_cost: int = 3, memory_kib: int = 65536,
                 parallelism: int = 4) -> None:
        self.engine = engine
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                     parallelism=parallelism)
        self.lock = asyncio.Lock()  # owner changes: see the module docs
        self._hashing = asyncio.Semaphore(4)  # argon2 holds memory_kib per hash
        self._dummy_hash: str | None = None
        self._used: dict[str, float] = {}
        self.pruned_at = 0.0  # when expired refresh-token records were last pruned

    async def store(self) -> Store:
        await self.engine.open()
        return self.engine.store

    # -- passwords ---------------------------------------------------------------------------

    async def hash_password(self, password: str) -> str:
        async with self._hashing:
            return await asyncio.to_thread(self.hasher.hash, password)

    async def verify_password(self, user: User | None, password: str) -> bool:
        """Whether `password` is `user`'s; with no user, the same work is done for nothing
        (the time taken does not tell whether an e-mail is known)."""
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash_password(secrets.token_urlsafe(16))
            stored = self._dummy_hash
        else:
            stored = user.password_hash
        ok: bool
        async with self._hashing:
            try:
                ok = await asyncio.to_thread(self.hasher.verify, stored, password)
            except (VerificationError, InvalidHashError):
                ok = False
        return ok and user is not None

    def needs_rehash(self, user: User) -> bool:
        try:
            return self.hasher.check_needs_rehash(user.password_hash)
        except InvalidHashError:
            return False

    # -- tenants -----------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> bool:
        record = Record(TENANT, tenant.id, tenant.data(), tenant.created_at, tenant.id)
        return await (await self.store()).put_record(record, create_only=True)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        if not TENANT_ID.match(tenant_id):
            return None
        record = await (await self.store()).get_record(TENANT, tenant_id)
        return None if record is None else _tenant(record)

    async def list_tenants(self, tenant_id: str | None, limit: int,
                           cursor: str | None) -> Page[Tenant]:
        page = await self._list(TENANT, tenant_id, limit, cursor)
        return Page([_tenant(r) for r in page.items], page.next_cursor)

    async def delete_tenant(self, tenant_id: str) -> bool:
        """Delete the tenant with its projects, users and API keys (executions and audit
        entries stay)."""
        store = await self.store()
        for kind in TENANT_OWNED:
            while True:
                page = await store.list_records(RecordQuery(kind, tenant_id=tenant_id,
                                                            limit=500))
                for record in page.items:
                    await store.delete_record(kind, record.key)
                if page.next_cursor is None:
                    break
        return await store.delete_record(TENANT, tenant_id)

    # -- projects ----------------------------------------------------------------------------

    async def create_project(self, project: Project) -> None:
        record = Record(PROJECT, project.id, project.data(), project.created_at,
                        project.tenant_id)
        await (await self.store()).put_record(record, create_only=True)

    async def get_project(self, project_id: str) -> Project | None:
        record = await (await self.store()).get_record(PROJECT, project_id)
        return None if record is None else _project(record)

    async def list_projects(self, tenant_id: str | None, limit: int,
                            cursor: str | None) -> Page[Project]:
        page = await self._list(PROJECT, tenant_id, limit, cursor)
        return Page([_project(r) for r in page.items], page.next_cursor)

    async def delete_project(self, project_id: str) -> bool:
        return await (await self.store()).delete_record(PROJECT, project_id)

    # -- users -------------------------------------------------------------------------------

    async def put_user(self, user: User, *, create: bool = False) -> bool:
        record = Record(USER, user.email, user.data(), user.created_at, user.tenant_id)
        return await (await self.store()).put_record(record, create_only=create)

    async def get_user(self, email: str) -> User | None:
        if not EMAIL.match(email):
            return None
        record = await (await self.store()).get_record(USER, normal_email(email))
        return None if record is None else _user(record)

    async def list_users(self, tenant_id: str | None, limit: int,
                         cursor: str | None) -> Page[User]:
        page = await self._list(USER, tenant_id, limit, cursor)
        return Page([_user(r) for r in page.items], page.next_cursor)

    async def active_owners(self, tenant_id: str) -> int:
        count = 0
        async for record in self._all(USER, tenant_id):
            count += _user(record).active_owner
        return count

    async def delete_user(self, email: str) -> bool:
        return await (await self.store()).delete_record(USER, normal_email(email))

    # -- API keys ----------------------------------------------------------------------------

    async def create_key(self, tenant_id: str, role: str, name: str, created_by: str,
                         expires_at: float | None) -> tuple[ApiKey, str]:
        """A new key and its full text (to show once: only the digest is kept)."""
        key_id, full = new_key()
        key = ApiKey(key_id, tenant_id, role, name, key_digest(full), time.time(), created_by,
                     expires_at)
        record = Record(API_KEY, key.id, key.data(), key.created_at, tenant_id)
        await (await self.store()).put_record(record, create_only=True)
        return key, full

    async def get_key(self, key_id: str) -> ApiKey | None:
        if not re.fullmatch(r"[0-9a-f]{16}", key_id):
            return None
        record = await (await self.store()).get_record(API_KEY, key_id)
        return None if record is None else _api_key(record)

    async def list_keys(self, tenant_id: str | None, limit: int,
                        cursor: str | None) -> Page[ApiKey]:
        page = await self._list(API_KEY, tenant_id, limit, cursor)
        return Page([_api_key(r) for r in page.items], page.next_cursor)

    async def delete_key(self, key_id: str) -> bool:
        store = await self.store()
        await store.delete_record(API_KEY_USED, key_id)
        return await store.delete_record(API_KEY, key_id)

    async def verify_key(self, token: str) -> ApiKey | None:
        """The stored key `token` is, when it is one, unexpired; else None."""
        parsed = parse_key(token)
        if parsed is None:
            return None
        key = await self.get_key(parsed[0])
        expected = key.digest if key is not None else "0" * 64
        if not hmac.compare_digest(key_digest(token), expected) or key is None:
            return None
        if key.expires_at is not None and key.expires_at <= time.time():
            return None
        return key

    async def mark_used(self, key: ApiKey) -> None:
        """Remember when `key` was last used (a store write at most once a minute per key)."""
        now = time.time()
        if now - self._used.get(key.id, 0.0) < USED_WRITE_SECONDS:
            return
        self._used[key.id] = now
        if len(self._used) > 10_000:
            self._used.clear()
        record = Record(API_KEY_USED, key.id, {"at": now}, now, key.tenant_id)
        await (await self.store()).put_record(record)

    async def last_used(self, key_id: str) -> float | None:
        record = await (await self.store()).get_record(API_KEY_USED, key_id)
        return None if record is None else _opt_float(record.data, "at")

    # -- listing -----------------------------------------------------------------------------

    async def _list(self, kind: str, tenant_id: str | None, limit: int,
                    cursor: str | None) -> Page[Record]:
        query = RecordQuery(kind, tenant_id=tenant_id, limit=limit, cursor=cursor)
        return await (await self.store()).list_records(query)

    async def _all(self, kind: str, tenant_id: str) -> AsyncIterator[Record]:
        cursor = None
        while True:
            page = await self._list(kind, tenant_id, 500, cursor)
            for record in page.items:
                yield record
            cursor = page.next_cursor
            if cursor is None:
                return
