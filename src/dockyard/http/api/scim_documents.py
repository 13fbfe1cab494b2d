"""SCIM 2.0 on the wire (RFC 7643/7644): the discovery documents (``ServiceProviderConfig``, ``ResourceTypes``,
``Schemas``), a provisioned user as a SCIM User resource, list responses, and SCIM's error schema — every body
with the ``application/scim+json`` content type. The routes are in ``routes/scim.py``; ``problems.py`` renders
every error under ``/api/v2/scim/`` with ``error``."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from dockyard.accounts.scim_attributes import USER_SCHEMA
from dockyard.accounts.scim_users import MAX_COUNT, ScimUserInfo
from dockyard.http.api.schemas.common import rfc3339

SCIM_PATH = "/api/v2/scim/2.0"
SCIM_JSON = "application/scim+json"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"
DOCKYARD_USER_SCHEMA = "urn:dockyard:params:scim:schemas:extension:2.0:User"


class ScimResponse(JSONResponse):
    media_type = SCIM_JSON


def error(
    status: int, detail: str, scim_type: str | None = None, headers: dict[str, str] | None = None
) -> ScimResponse:
    """RFC 7644 §3.12: ``status`` is a string in the body."""
    body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    if scim_type is not None:
        body["scimType"] = scim_type
    return ScimResponse(body, status_code=status, headers=headers)


def list_response(resources: list[dict[str, Any]], total: int, start_index: int = 1) -> dict[str, Any]:
    """RFC 7644 §3.4.2: ``Resources`` (Hub's document writes ``resources``; SCIM clients read the RFC's name)."""
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def user_resource(info: ScimUserInfo, base_url: str) -> dict[str, Any]:
    fields = info.fields
    name = {"givenName": fields.given_name, "familyName": fields.family_name, "formatted": fields.full_name}
    body: dict[str, Any] = {
        "schemas": [USER_SCHEMA, DOCKYARD_USER_SCHEMA],
        "id": info.id,
        "userName": fields.user_name,
        "name": name,
        "displayName": fields.full_name,
        "active": fields.active,
        "emails": [{"value": fields.email, "type": "work", "primary": True}] if fields.email else [],
        "groups": [{"value": uuid, "display": team} for uuid, team in info.groups],
        "meta": {
            "resourceType": "User",
            "created": rfc3339(info.created_at),
            "lastModified": rfc3339(info.updated_at),
            "location": f"{base_url}{SCIM_PATH}/Users/{info.id}",
        },
        DOCKYARD_USER_SCHEMA: {"accountName": info.account},
    }
    if fields.external_id is not None:
        body["externalId"] = fields.external_id
    return body


def service_provider_config(base_url: str) -> dict[str, Any]:
    return {
        "schemas": [CONFIG_SCHEMA],
        "documentationUri": f"{base_url}/api/v2/docs",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "The organization's SCIM token (POST /api/v2/orgs/{org}/scim-token), as a bearer token",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base_url}{SCIM_PATH}/ServiceProviderConfig"},
    }


def resource_types(base_url: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "description": "A Dockyard user provisioned by the organization's identity provider",
            "endpoint": "/Users",
            "schema": USER_SCHEMA,
            "schemaExtensions": [{"schema": DOCKYARD_USER_SCHEMA, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base_url}{SCIM_PATH}/ResourceTypes/User"},
        }
    ]


def _attribute(name: str, kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **extra,
    }


def _sub(*attributes: dict[str, Any]) -> list[dict[str, Any]]:
    return list(attributes)


def schemas(base_url: str) -> list[dict[str, Any]]:
    """The User schema as Dockyard keeps it (RFC 7643 §8.7.1, the attributes Dockyard stores) and Dockyard's
    extension with the account name."""
    user_attributes = [
        _attribute(
            "userName",
            "string",
            "Unique identifier of the user at the identity provider",
            required=True,
            uniqueness="server",
        ),
        _attribute(
            "name",
            "complex",
            "The user's name",
            subAttributes=_sub(
                _attribute("givenName", "string", "Given name"),
                _attribute("familyName", "string", "Family name"),
                _attribute("formatted", "string", "The full name", mutability="readOnly"),
            ),
        ),
        _attribute("displayName", "string", "The name shown for the user (the account's full name)"),
        _attribute("externalId", "string", "The identity provider's identifier of the user", caseExact=True),
        _attribute("active", "boolean", "false disables the account and removes it from the organization"),
        _attribute(
            "emails",
            "complex",
            "E-mail addresses; Dockyard keeps the primary one",
            multiValued=True,
            subAttributes=_sub(
                _attribute("value", "string", "The address"),
                _attribute("type", "string", "work, home, other"),
                _attribute("primary", "boolean", "The primary address"),
            ),
        ),
        _attribute(
            "groups",
            "complex",
            "The organization's teams the user belongs to",
            multiValued=True,
            mutability="readOnly",
            subAttributes=_sub(
                _attribute("value", "string", "The team's uuid", mutability="readOnly"),
                _attribute("display", "string", "The team's name", mutability="readOnly"),
            ),
        ),
    ]
    extension = [
        _attribute(
            "accountName",
            "string",
            "The Dockyard account name (what the user signs in with)",
            mutability="readOnly",
            caseExact=True,
            uniqueness="server",
        )
    ]
    return [
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": USER_SCHEMA,
            "name": "User",
            "description": "User Account",
            "attributes": user_attributes,
            "meta": {"resourceType": "Schema", "location": f"{base_url}{SCIM_PATH}/Schemas/{USER_SCHEMA}"},
        },
        {
            "schemas": [SCHEMA_SCHEMA],
            "id": DOCKYARD_USER_SCHEMA,
            "name": "DockyardUser",
            "description": "Dockyard's view of a provisioned user",
            "attributes": extension,
            "meta": {"resourceType": "Schema", "location": f"{base_url}{SCIM_PATH}/Schemas/{DOCKYARD_USER_SCHEMA}"},
        },
    ]
