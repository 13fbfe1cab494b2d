"""Every domain error, whatever its subject, renders on both surfaces with the status its class promises: an OCI
``{"errors": [...]}`` body with a spec code on ``/v2``, a problem+json body naming the subject on ``/api``. A
subject added to ``errors.Subject`` is covered here without a new test."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from dockyard import errors as e
from dockyard.http.api import problems
from dockyard.http.oci import errors as oci

# The status each class stands for. On /v2 the spec's code table makes an unsupported operation a 405.
API_STATUS: dict[type[e.DomainError], int] = {
    e.NotFound: 404,
    e.Invalid: 400,
    e.TooLarge: 413,
    e.RangeNotSatisfiable: 416,
    e.Conflict: 409,
    e.Unsupported: 400,
    e.Denied: 403,
    e.Unauthorized: 401,
    e.RateLimited: 429,
    e.Unavailable: 503,
}
OCI_STATUS = {**API_STATUS, e.Unsupported: 405}
SUBJECTS: tuple[str, ...] = get_args(e.Subject)


def test_every_error_class_has_a_status() -> None:
    assert set(API_STATUS) == set(e.DomainError.__subclasses__())


@pytest.mark.parametrize("subject", SUBJECTS)
@pytest.mark.parametrize("cls", list(API_STATUS), ids=lambda cls: cls.__name__)
def test_both_surfaces_render_every_subject(cls: type[e.DomainError], subject: e.Subject) -> None:
    exc = cls(subject, "what went wrong", {"field": "x"})

    rendered = oci.from_domain(exc)
    assert rendered.code in oci.CODES
    assert rendered.code != "UNKNOWN"
    assert rendered.status == OCI_STATUS[cls]
    assert rendered.message == "what went wrong"
    body = json.loads(bytes(oci.render(rendered).body))
    assert body == {"errors": [{"code": rendered.code, "message": "what went wrong", "detail": {"field": "x"}}]}

    response = problems.from_domain(exc)
    assert response.status_code == API_STATUS[cls]
    assert response.media_type == problems.PROBLEM
    problem = json.loads(bytes(response.body))
    assert problem["type"] == f"urn:dockyard:error:{subject}"
    assert (problem["subject"], problem["status"], problem["detail"]) == (subject, API_STATUS[cls], "what went wrong")
