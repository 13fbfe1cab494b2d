"""Inbound push webhooks (``dockyard.builds.triggers``): each git host's signature scheme and push payload."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from dockyard.builds.rules import GitRef
from dockyard.builds.triggers import PushedRef, is_push, parse_push, provider_of, verify

pytestmark = pytest.mark.embedded_only

SECRET = "s3cret-webhook"
BODY = json.dumps(
    {"ref": "refs/heads/main", "after": "a" * 40, "head_commit": {"id": "a" * 40, "message": "hello"}}
).encode()


def _hex(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github() -> None:
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + _hex(BODY)}
    assert provider_of(headers) == "github"
    assert verify("github", headers, BODY, SECRET)
    assert not verify("github", headers, BODY + b" ", SECRET)
    assert not verify("github", {**headers, "X-Hub-Signature-256": "sha256=" + _hex(BODY, "other")}, BODY, SECRET)
    assert not verify("github", {"X-GitHub-Event": "push"}, BODY, SECRET)
    assert not verify("github", {**headers, "X-Hub-Signature-256": "sha1=" + _hex(BODY)}, BODY, SECRET)
    assert is_push("github", headers)
    assert not is_push("github", {"X-GitHub-Event": "ping"})
    assert parse_push("github", BODY) == [PushedRef(GitRef("Branch", "main"), "a" * 40, "hello")]


def test_gitlab() -> None:
    body = json.dumps(
        {
            "object_kind": "tag_push",
            "ref": "refs/tags/v1.0",
            "checkout_sha": "b" * 40,
            "commits": [{"id": "c" * 40, "message": "old"}, {"id": "b" * 40, "message": "x [skip build]"}],
        }
    ).encode()
    headers = {"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": SECRET}
    assert provider_of(headers) == "gitlab"
    assert verify("gitlab", headers, body, SECRET)
    assert not verify("gitlab", {**headers, "X-Gitlab-Token": "nope"}, body, SECRET)
    assert not verify("gitlab", {"X-Gitlab-Event": "Push Hook"}, body, SECRET)
    assert is_push("gitlab", headers)
    assert parse_push("gitlab", body) == [PushedRef(GitRef("Tag", "v1.0"), "b" * 40, "x [skip build]")]


def test_gitea_is_told_apart_from_github() -> None:
    headers = {"X-Gitea-Event": "push", "X-GitHub-Event": "push", "X-Gitea-Signature": _hex(BODY)}
    assert provider_of(headers) == "gitea"
    assert verify("gitea", headers, BODY, SECRET)
    assert not verify("gitea", {**headers, "X-Gitea-Signature": _hex(BODY, "x")}, BODY, SECRET)
    forgejo = {"X-Forgejo-Event": "push", "X-Forgejo-Signature": _hex(BODY)}
    assert provider_of(forgejo) == "gitea"
    assert verify("gitea", forgejo, BODY, SECRET)


def test_bitbucket() -> None:
    body = json.dumps(
        {
            "push": {
                "changes": [
                    {"new": {"type": "branch", "name": "dev", "target": {"hash": "d" * 40, "message": "m"}}},
                    {"new": None, "old": {"type": "branch", "name": "gone"}},
                    {"new": {"type": "tag", "name": "v2", "target": {"hash": "e" * 40}}},
                ]
            }
        }
    ).encode()
    headers = {"X-Event-Key": "repo:push", "X-Hub-Signature": "sha256=" + _hex(body)}
    assert provider_of(headers) == "bitbucket"
    assert verify("bitbucket", headers, body, SECRET)
    assert not verify("bitbucket", {"X-Event-Key": "repo:push"}, body, SECRET)
    assert parse_push("bitbucket", body) == [
        PushedRef(GitRef("Branch", "dev"), "d" * 40, "m"),
        PushedRef(GitRef("Tag", "v2"), "e" * 40, None),
    ]


def test_deleted_refs_build_nothing() -> None:
    body = json.dumps({"ref": "refs/heads/main", "after": "0" * 40, "deleted": True}).encode()
    assert parse_push("github", body) == []


def test_unknown_sender() -> None:
    assert provider_of({"Content-Type": "application/json"}) is None
