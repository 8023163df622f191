"""Request and response bodies of the operator and tenant API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from farebox.kernel.access import Role
from farebox.kernel.periods import parse_duration


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where the first NUL character is (a dotted path; "" for the value itself), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if _nul_at(key) is not None:
                return here
            found = _nul_at(item, here)
            if found is not None:
                return found
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


NO_NUL = r"^[^\x00]*$"
PER_EVENT = "x-checked-per-event"  # a schema node whose text the service checks item by item (a batch's events, F7)


def state_no_nul(node: Any) -> None:
    """Say in the OpenAPI schema what `_no_nul` and the edge refuse: NUL in any text, key, path or query value."""
    if isinstance(node, list):
        for item in node:
            state_no_nul(item)
        return
    if not isinstance(node, dict) or node.get(PER_EVENT):
        return
    if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
        node["pattern"] = NO_NUL
    if node.get("type") == "object" and "properties" not in node:
        node.setdefault("propertyNames", {"pattern": NO_NUL})
        if node.get("additionalProperties", True) is True:
            leaf = {"type": ["string", "number", "boolean", "null"], "pattern": NO_NUL}
            nested = {"type": "object", "propertyNames": {"pattern": NO_NUL}, "additionalProperties": leaf}
            node["additionalProperties"] = {"anyOf": [leaf, nested, {"type": "array", "items": leaf}]}
    for child in node.get("properties", {}).values():
        state_no_nul(child)
    for key in ("anyOf", "oneOf", "allOf", "items", "prefixItems", "schema"):
        if key in node:
            state_no_nul(node[key])


def exactly_one_of(first: str, second: str) -> dict[str, Any]:
    """The JSON schema rule for two mutually exclusive fields of which one is required (as the API checks it)."""
    return {
        "oneOf": [
            {"required": [first], "not": {"required": [second]}},
            {"required": [second], "not": {"required": [first]}},
        ]
    }


# e-mail: the same characters refused under Python's, Rust's and ECMAScript's idea of `\s`
EMAIL_PATTERN = r"^[^@\s\x00\x1c-\x1f\x85]+@[^@\s\x00\x1c-\x1f\x85]+\.[^@\s\x00\x1c-\x1f\x85]+$"


def instant_text(value: Any) -> Any:
    """An instant is ISO 8601 text; a bare number is not read as seconds since 1970."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("give an ISO 8601 instant as text, e.g. 2027-01-31T12:00:00Z")


Instant = Annotated[datetime, BeforeValidator(instant_text)]


def json_integer(value: Any) -> Any:
    """A JSON integer (`10` or `10.0`, as JSON Schema's `integer` allows), never `true` or text such as `"10"`."""
    if isinstance(value, bool | str):
        raise ValueError("give a whole number, not text or true/false")
    return value


JsonInt = Annotated[int, BeforeValidator(json_integer)]
"""A request body's instant (the number and yes/no fields use JsonInt and StrictBool: no coercion)."""


class Body(BaseModel):
    """A request body: unknown fields and NUL characters are refused (neither can be stored faithfully; the schema
    says so)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        where = _nul_at(data)
        if where is not None:
            raise ValueError(f"{where or 'the body'}: text must not contain NUL (\\u0000) characters")
        return data


class TenantIn(Body):
    id: str | None = Field(
        default=None, min_length=1, max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$", examples=["acme"]
    )
    name: str = Field(min_length=1, max_length=200)
    owner_email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    owner_name: str = Field(default="", max_length=200)


class TenantOut(BaseModel):
    id: str
    name: str
    test_clock_id: str | None
    billing_email: str | None
    created_at: datetime


class MemberIn(Body):
    email: str = Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)
    name: str = Field(default="", max_length=200)
    role: Literal["owner", "admin", "member"]


class MemberOut(BaseModel):
    id: str
    email: str
    name: str
    role: Role
    created_at: datetime


class ApiKeyIn(Body):
    role: Literal["owner", "admin", "member"] = Field(
        description="A tenant key's role (operator keys: POST /v1/api-keys)"
    )
    name: str = Field(default="", max_length=200)
    expires_at: AwareDatetime | None = Field(
        default=None, description="Refused from this instant on; in the future"
    )


class ApiKeyOut(BaseModel):
    key_id: str
    secret: str = Field(description="The full key; shown once, only its hash is stored")
    role: Role
    tenant_id: str | None
    expires_at: datetime | None = None


class ClockIn(Body):
    name: str = Field(min_length=1, max_length=200)
    start: Instant | None = None


class ClockOut(BaseModel):
    id: str
    name: str
    now_at: datetime
    created_at: datetime
    tenants: list[str] = []


DURATION = (
    r"^(\d{1,4}d)?(\d{1,5}h)?(\d{1,7}m)?(\d{1,9}s)?$"  # at most 88 years, under the 100 years a clock moves
)


class AdvanceIn(Body):
    """Exactly one of `to` or `by`."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("to", "by"))

    to: Instant | SkipJsonSchema[None] = Field(default=None, description="Advance to this instant")
    by: str | SkipJsonSchema[None] = Field(
        default=None,
        pattern=DURATION,
        min_length=2,
        max_length=40,
        examples=["36h", "30d"],
        json_schema_extra={"pattern": DURATION},
    )

    @field_validator("by")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # its ValueError names the text; 422
        return value


class ProcessedOut(BaseModel):
    tenant_id: str
    kind: str
    ref: str
    due_at: datetime
    outcome: str


class AdvanceOut(BaseModel):
    clock_id: str
    from_at: datetime
    to_at: datetime
    processed: list[ProcessedOut]


class AttachIn(Body):
    tenant_id: str = Field(min_length=1, max_length=63)


class CatalogLoadIn(Body):
    """Exactly one of `bundled` (a bundled catalog's name) or `document` (a catalog's YAML text)."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("bundled", "document"))

    bundled: str | SkipJsonSchema[None] = Field(default=None, min_length=1, max_length=64, examples=["agent-sessions"])
    document: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=1_000_000, description="The catalog file's YAML text (docs/catalog.md)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> "CatalogLoadIn":
        if (self.bundled is None) == (self.document is None):
            raise ValueError("give exactly one of bundled or document")
        return self


class CatalogLoadOut(BaseModel):
    catalog: str
    added: list[str]
    unchanged: list[str]
    retired: list[str]


class PlanOut(BaseModel):
    code: str
    version: int
    version_id: int
    document: dict[str, Any]


class CatalogOut(BaseModel):
    name: str
    title: str
    currency: str
    plans: list[PlanOut]


class SubscribeIn(Body):
    catalog: str = Field(min_length=1, max_length=64)
    plan: str = Field(min_length=1, max_length=64)
    trial: StrictBool = Field(default=False, description="Start the plan's free trial (A3, once per tenant)")


class SubscriptionOut(BaseModel):
    id: str
    tenant_id: str
    catalog: str
    plan: str
    plan_version_id: int
    status: str
    period_start_at: datetime
    period_end_at: datetime
    trial_ends_at: datetime | None
    grace_ends_at: datetime | None
    cancel_at_period_end: bool

    @classmethod
    def of(cls, s: Any) -> SubscriptionOut:
        return cls(
            id=s.id,
            tenant_id=s.tenant_id,
            catalog=s.catalog,
            plan=s.plan.code,
            plan_version_id=s.plan_version_id,
            status=s.status.value,
            period_start_at=s.period.start,
            period_end_at=s.period.end,
            trial_ends_at=s.trial_ends_at,
            grace_ends_at=s.grace_ends_at,
            cancel_at_period_end=s.cancel_at_period_end,
        )


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorOut(BaseModel):
    error: ErrorDetail


class AuditEntryOut(BaseModel):
    tenant_id: str = Field(description="Empty for operator-wide changes (catalogs, operator keys)")
    id: str
    at: datetime
    actor: str = Field(
        description="Who: `<role>:<API key id>` for an API call (e.g. `owner:fbk_…`), `<role>:<email>` for a portal "
        "member, `operator:system` or `system` for farebox itself"
    )
    kind: str
    subject: str | None
    data: dict[str, Any] = Field(description="What changed; `before` and `after` where the change has them")
