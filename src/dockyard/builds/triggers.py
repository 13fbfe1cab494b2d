"""Inbound push webhooks from git hosts: which host sent one, whether its signature is right, and which refs it
says moved to which commits (with the head commit's message, for ``[skip build]``). Pure: no I/O.

Verification, with the link's webhook secret:

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``
- GitLab: ``X-Gitlab-Token: <the secret>``
- Gitea / Forgejo: ``X-Gitea-Signature`` (or ``X-Forgejo-Signature``): ``<hex HMAC-SHA256 of the body>``
- Bitbucket: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>``

Every comparison is constant-time; a missing or wrong signature is refused before the body is parsed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from dockyard.builds.rules import GitRef

Provider = Literal["github", "gitlab", "gitea", "bitbucket"]
_ZERO = "0" * 40


@dataclass(frozen=True, slots=True)
class PushedRef:
    ref: GitRef
    commit: str
    message: str | None  # the head commit's message, when the payload has it


def provider_of(headers: Mapping[str, str]) -> Provider | None:
    """The host that sent the webhook, by its event header (Gitea also sends GitHub's headers: it is checked
    first)."""
    lowered = {k.lower() for k in headers}
    if "x-gitea-event" in lowered or "x-forgejo-event" in lowered:
        return "gitea"
    if "x-gitlab-event" in lowered:
        return "gitlab"
    if "x-github-event" in lowered:
        return "github"
    if "x-event-key" in lowered:
        return "bitbucket"
    return None


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(provider: Provider, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Whether the webhook carries the right signature (or token) for ``secret``."""
    get = {k.lower(): v for k, v in headers.items()}.get
    if provider == "gitlab":
        token = get("x-gitlab-token", "")
        return bool(token) and hmac.compare_digest(token.encode(), secret.encode())
    if provider == "gitea":
        signature = get("x-gitea-signature") or get("x-forgejo-signature") or ""
        return bool(signature) and hmac.compare_digest(signature.lower().encode(), _hmac_hex(secret, body).encode())
    header = get("x-hub-signature-256" if provider == "github" else "x-hub-signature", "")
    scheme, _, value = header.partition("=")
    if scheme != "sha256" or not value:
        return False
    return hmac.compare_digest(value.lower().encode(), _hmac_hex(secret, body).encode())


def is_push(provider: Provider, headers: Mapping[str, str]) -> bool:
    """Whether the event is a push (others — GitHub's ping, issues… — are acknowledged and ignored)."""
    get = {k.lower(): v for k, v in headers.items()}.get
    if provider == "github":
        return get("x-github-event") == "push"
    if provider == "gitea":
        return (get("x-gitea-event") or get("x-forgejo-event")) == "push"
    if provider == "gitlab":
        return get("x-gitlab-event") in ("Push Hook", "Tag Push Hook")
    return get("x-event-key") == "repo:push"


def _head_message(commits: Any, commit: str) -> str | None:
    if not isinstance(commits, list):
        return None
    for entry in reversed(commits):
        if isinstance(entry, dict) and entry.get("id") == commit:
            message = entry.get("message")
            return message if isinstance(message, str) else None
    return None


def parse_push(provider: Provider, body: bytes) -> list[PushedRef]:
    """The refs a verified push payload moved (deleted refs left out). Raises ``ValueError`` for a body that is not
    such a payload."""
    payload = json.loads(body)
    if not isinstance(payload, dict):
        raise ValueError("a push payload is a JSON object")
    if provider == "bitbucket":
        return _bitbucket(payload)
    ref = GitRef.parse(str(payload.get("ref", "")))
    commit = str(payload.get("checkout_sha") or payload.get("after") or "")
    if ref is None or not commit or commit.strip("0") == "" or payload.get("deleted") is True:
        return []
    head = payload.get("head_commit")
    message: str | None = None
    if isinstance(head, dict) and isinstance(head.get("message"), str):
        message = head["message"]
    else:
        message = _head_message(payload.get("commits"), commit)
    return [PushedRef(ref, commit, message)]


def _bitbucket(payload: dict[str, Any]) -> list[PushedRef]:
    push = payload.get("push")
    changes = push.get("changes") if isinstance(push, dict) else None
    out: list[PushedRef] = []
    for change in changes if isinstance(changes, list) else []:
        new = change.get("new") if isinstance(change, dict) else None
        if not isinstance(new, dict):
            continue  # a deleted branch or tag
        kind, name, target = new.get("type"), new.get("name"), new.get("target")
        if kind not in ("branch", "tag") or not isinstance(name, str) or not isinstance(target, dict):
            continue
        commit = target.get("hash")
        if not isinstance(commit, str) or not commit:
            continue
        message = target.get("message")
        out.append(
            PushedRef(
                GitRef("Branch" if kind == "branch" else "Tag", name),
                commit,
                message if isinstance(message, str) else None,
            )
        )
    return out
