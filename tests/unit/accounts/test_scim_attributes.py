"""SCIM User attributes without I/O: reading a User, the filter Dockyard evaluates, PatchOps as Okta and Entra ID
send them, and the account names a userName may become."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.accounts.scim_attributes import (
    ScimUserFields,
    account_names,
    apply_patch,
    parse_filter,
    parse_user,
)
from dockyard.errors import Invalid


def _scim_type(exc: pytest.ExceptionInfo[Invalid]) -> Any:
    return exc.value.detail["scimType"]


def test_parse_user_keeps_what_dockyard_stores() -> None:
    fields = parse_user(
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "UserName": " jane@example.com ",  # attribute names are case-insensitive (RFC 7643 §2.1)
            "externalId": "00u1",
            "name": {"givenName": "Jane", "familyName": "Doe", "middleName": "Q"},
            "emails": [{"value": "home@example.com"}, {"value": "jane@example.com", "primary": True}],
            "title": "engineer",
            "password": "never-stored",
        }
    )
    assert fields == ScimUserFields(
        user_name="jane@example.com",
        external_id="00u1",
        given_name="Jane",
        family_name="Doe",
        email="jane@example.com",
        active=True,
    )
    assert fields.full_name == "Jane Doe"
    assert ScimUserFields("x", given_name="a" * 200, family_name="b" * 200).full_name == "a" * 200 + " " + "b" * 54


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        ([], "invalidSyntax"),
        ({"name": {"givenName": "x"}}, "invalidValue"),
        ({"userName": ""}, "invalidValue"),
        ({"userName": "a\x00b"}, "invalidValue"),
        ({"userName": "x", "active": "maybe"}, "invalidValue"),
        ({"userName": "x", "emails": [{"value": "not-an-address"}]}, "invalidValue"),
        ({"userName": "x", "name": "Jane"}, "invalidValue"),
    ],
)
def test_parse_user_refuses(body: Any, scim_type: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_user(body)
    assert _scim_type(exc) == scim_type


def test_filter() -> None:
    assert parse_filter('userName eq "Jane@Example.com"') == ("username", "Jane@Example.com")
    assert parse_filter('  USERNAME EQ "a \\"b\\""  ') == ("username", 'a "b"')
    assert parse_filter('externalId eq "00u1"') == ("externalid", "00u1")
    for text in ('userName co "j"', 'displayName eq "x"', 'userName eq "a" or userName eq "b"', "userName eq x"):
        with pytest.raises(Invalid) as exc:
            parse_filter(text)
        assert _scim_type(exc) == "invalidFilter"


def test_patch_as_okta_and_entra_send_it() -> None:
    fields = ScimUserFields(user_name="jane@example.com", given_name="Jane", email="jane@example.com")
    okta = {"Operations": [{"op": "replace", "value": {"active": False}}]}
    assert apply_patch(fields, okta).active is False
    entra = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:name.familyName", "value": "Doe"},
            {"op": "Remove", "path": "name.givenName"},
        ],
    }
    patched = apply_patch(fields, entra)
    assert (patched.active, patched.email, patched.family_name, patched.given_name) == (
        False,
        "new@example.com",
        "Doe",
        "",
    )


@pytest.mark.parametrize(
    ("operations", "scim_type"),
    [
        (None, "invalidSyntax"),
        ([], "invalidSyntax"),
        ([{"op": "copy", "path": "active"}], "invalidSyntax"),
        ([{"op": "remove"}], "noTarget"),
        ([{"op": "remove", "path": "userName"}], "mutability"),
        ([{"op": "replace", "path": "active", "value": 1}], "invalidValue"),
        ([{"op": "replace", "value": "x"}], "invalidValue"),
        ([{"op": "replace", "path": 7, "value": "x"}], "invalidPath"),
    ],
)
def test_patch_refuses(operations: Any, scim_type: str) -> None:
    with pytest.raises(Invalid) as exc:
        apply_patch(ScimUserFields(user_name="x"), {"Operations": operations})
    assert _scim_type(exc) == scim_type


def test_account_names() -> None:
    assert next(account_names("Jane.Doe@Example.com")) == "janedoe"
    assert next(account_names("alice")) == "alice"
    assert next(account_names("al@x.com")) == "aluser"
    assert next(account_names("library@x.com")) == "libraryuser"
    long = list(account_names("a" * 40 + "@x.com"))
    assert long[0] == "a" * 30
    assert all(len(name) == 30 and name[:26] == "a" * 26 and name[26:].isdigit() for name in long[1:])
