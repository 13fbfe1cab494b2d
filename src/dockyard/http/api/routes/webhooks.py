"""Webhooks in the Hub API: namespace-wide webhooks (``/api/v2/namespaces/{ns}/webhooks``) and a repository's
(``/api/v2/namespaces/{ns}/repositories/{repo}/webhooks``), one webhook by uuid (read, change, delete, a new
signing secret, a test delivery), its deliveries (history, one delivery with every attempt, redelivery), and
Docker Hub's callback URL (``POST /api/v2/webhooks/callbacks/{token}``).

Who may: a namespace's owners manage its namespace-wide webhooks; holders of admin on a repository manage the
repository's (``dockyard.webhooks.manage``). Webhooks someone may not manage answer 404, as missing ones do.
The callback takes no credentials: the unguessable token in its URL, sent in one delivery's payload, is the
capability, and it is good for one callback.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request, Response

from dockyard.authz.principal import Principal
from dockyard.core.paging import PageRequest
from dockyard.http.api.deps import ApiServices, Paging, Services, SignedIn, paginated
from dockyard.http.api.routing import api_router
from dockyard.http.api.schemas.common import PRINTABLE, NsPath, Paginated, RepoPath, error_responses
from dockyard.http.api.schemas.webhooks import (
    SIGNATURE_HELP,
    Acknowledged,
    CallbackReport,
    CreatedWebhook,
    CreateWebhook,
    Delivery,
    DeliveryDetail,
    UpdateWebhook,
    Webhook,
    WebhookSecret,
    created_webhook,
    delivery_detail,
    delivery_model,
    webhook_model,
)
from dockyard.http.credentials import client_ip
from dockyard.repos.access import full_name
from dockyard.webhooks.callbacks import receive_callback
from dockyard.webhooks.dispatch import public_base_url
from dockyard.webhooks.manage import WebhookService

router = api_router(prefix="/api/v2", tags=["webhooks"])

WebhookId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE, description="the webhook's uuid")]
DeliveryId = Annotated[str, Path(min_length=1, max_length=64, pattern=PRINTABLE, description="the delivery's uuid")]
CallbackToken = Annotated[
    str, Path(min_length=1, max_length=512, pattern=PRINTABLE, description="the token of the delivery's callback URL")
]
CREATED: dict[int | str, dict[str, Any]] = {
    201: {"description": "the webhook, with its signing secret (shown this once). " + SIGNATURE_HELP}
}


def webhooks(svc: ApiServices) -> WebhookService:
    return svc.webhooks


async def _list(
    request: Request, svc: ApiServices, who: Principal, namespace: str, repository: str | None, page: PageRequest
) -> dict[str, Any]:
    found = await webhooks(svc).list(who, namespace, repository, page)
    return paginated(request, found, [webhook_model(view) for view in found.items])


async def _create(
    request: Request, svc: ApiServices, who: Principal, namespace: str, repository: str | None, body: CreateWebhook
) -> CreatedWebhook:
    view, secret = await webhooks(svc).create(
        who,
        namespace,
        repository,
        name=body.name,
        url=body.url,
        events=list(body.events),
        tag_filter=body.tag_filter,
        payload_format=body.payload_format,
        auth_header=body.auth_header,
        after=body.after or None,
        active=body.active,
        source_ip=client_ip(request),
    )
    return created_webhook(view, secret)


# The callback comes first: ``/webhooks/callbacks/secret`` must not reach ``/webhooks/{uuid}/secret``.
@router.post(
    "/webhooks/callbacks/{token}",
    response_model=Acknowledged,
    responses=error_responses(400, 404, 409),
)
async def webhook_callback(token: CallbackToken, body: CallbackReport, svc: Services) -> Acknowledged:
    """Docker Hub's callback: the receiver of a delivery reports the outcome of its work. No credentials: the
    token in the URL (from the delivery's ``callback_url``) is the capability. In a callback chain, ``success``
    lets the next webhook fire; anything else stops the chain. 404 for an unknown or expired token, 409 when
    the delivery was already called back."""
    await receive_callback(
        webhooks(svc).db,
        token,
        state=body.state,
        description=body.description,
        context=body.context,
        target_url=body.target_url,
    )
    return Acknowledged()


@router.get("/namespaces/{ns}/webhooks", response_model=Paginated[Webhook], responses=error_responses(401, 404))
async def list_namespace_webhooks(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, page: Paging
) -> dict[str, Any]:
    """The namespace-wide webhooks (they see every repository of the namespace), oldest first (owners)."""
    return await _list(request, svc, who, ns, None, page)


@router.post(
    "/namespaces/{ns}/webhooks",
    status_code=201,
    response_model=CreatedWebhook,
    responses={**CREATED, **error_responses(400, 401, 404)},
)
async def create_namespace_webhook(
    body: CreateWebhook, request: Request, svc: Services, who: SignedIn, ns: NsPath
) -> CreatedWebhook:
    """A webhook for every repository of the namespace (owners)."""
    return await _create(request, svc, who, ns, None, body)


@router.get(
    "/namespaces/{ns}/repositories/{repo}/webhooks",
    response_model=Paginated[Webhook],
    responses=error_responses(400, 401, 404),
)
async def list_repository_webhooks(
    request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath, page: Paging
) -> dict[str, Any]:
    """The repository's own webhooks, oldest first (admin on the repository); namespace-wide webhooks are
    listed under the namespace."""
    return await _list(request, svc, who, ns, full_name(ns, repo), page)


@router.post(
    "/namespaces/{ns}/repositories/{repo}/webhooks",
    status_code=201,
    response_model=CreatedWebhook,
    responses={**CREATED, **error_responses(400, 401, 404)},
)
async def create_repository_webhook(
    body: CreateWebhook, request: Request, svc: Services, who: SignedIn, ns: NsPath, repo: RepoPath
) -> CreatedWebhook:
    """A webhook for one repository (admin on the repository)."""
    return await _create(request, svc, who, ns, full_name(ns, repo), body)


@router.get("/webhooks/{uuid}", response_model=Webhook, responses=error_responses(401, 404))
async def get_webhook(uuid: WebhookId, svc: Services, who: SignedIn) -> Webhook:
    return webhook_model(await webhooks(svc).get(who, uuid))


@router.patch("/webhooks/{uuid}", response_model=Webhook, responses=error_responses(400, 401, 404))
async def update_webhook(
    uuid: WebhookId, body: UpdateWebhook, request: Request, svc: Services, who: SignedIn
) -> Webhook:
    """Change some fields; see the body's description for clearing optional ones."""
    view = await webhooks(svc).update(
        who,
        uuid,
        name=body.name,
        url=body.url,
        events=None if body.events is None else list(body.events),
        tag_filter=body.cleared("tag_filter"),
        payload_format=body.payload_format,
        auth_header=body.cleared("auth_header"),
        after=body.cleared("after"),
        active=body.active,
        source_ip=client_ip(request),
    )
    return webhook_model(view)


@router.delete(
    "/webhooks/{uuid}",
    status_code=204,
    response_class=Response,
    responses=error_responses(401, 404, ok=(204, "deleted, with its delivery history")),
)
async def delete_webhook(uuid: WebhookId, request: Request, svc: Services, who: SignedIn) -> Response:
    await webhooks(svc).delete(who, uuid, source_ip=client_ip(request))
    return Response(status_code=204)


@router.post("/webhooks/{uuid}/secret", response_model=WebhookSecret, responses=error_responses(401, 404))
async def regenerate_webhook_secret(uuid: WebhookId, request: Request, svc: Services, who: SignedIn) -> WebhookSecret:
    """A new signing secret; deliveries are signed with it from now on (including retries of earlier ones)."""
    secret = await webhooks(svc).regenerate_secret(who, uuid, source_ip=client_ip(request))
    return WebhookSecret(id=uuid, secret=secret)


@router.post("/webhooks/{uuid}/test", status_code=202, response_model=Delivery, responses=error_responses(401, 404))
async def send_test_delivery(uuid: WebhookId, request: Request, svc: Services, who: SignedIn) -> Delivery:
    """Queue a sample ``push`` of ``<repository>:latest`` (a made-up digest; namespace-wide webhooks get
    ``<namespace>/sample``) in the webhook's payload format, with a working ``callback_url``. Follow it through
    ``GET /api/v2/webhooks/{uuid}/deliveries/{delivery}``."""
    view = await webhooks(svc).send_test(
        who, uuid, base_url=public_base_url(svc.settings), source_ip=client_ip(request)
    )
    return delivery_model(view)


@router.get("/webhooks/{uuid}/deliveries", response_model=Paginated[Delivery], responses=error_responses(401, 404))
async def list_deliveries(
    uuid: WebhookId, request: Request, svc: Services, who: SignedIn, page: Paging
) -> dict[str, Any]:
    """The webhook's deliveries, newest first (without their attempts)."""
    found = await webhooks(svc).deliveries(who, uuid, page)
    return paginated(request, found, [delivery_model(view) for view in found.items])


@router.get(
    "/webhooks/{uuid}/deliveries/{delivery}", response_model=DeliveryDetail, responses=error_responses(401, 404)
)
async def get_delivery(uuid: WebhookId, delivery: DeliveryId, svc: Services, who: SignedIn) -> DeliveryDetail:
    """One delivery with every attempt: the request headers sent, the response received, the outcome."""
    return delivery_detail(await webhooks(svc).delivery(who, uuid, delivery))


@router.post(
    "/webhooks/{uuid}/deliveries/{delivery}/redeliver",
    status_code=202,
    response_model=Delivery,
    responses=error_responses(401, 404),
)
async def redeliver(uuid: WebhookId, delivery: DeliveryId, request: Request, svc: Services, who: SignedIn) -> Delivery:
    """Send a past delivery's body again, as a new delivery with its own id (queued)."""
    view = await webhooks(svc).redeliver(who, uuid, delivery, source_ip=client_ip(request))
    return delivery_model(view)
