"""``dockyard trust key add|list|rm``, ``dockyard trust identity add|list|rm`` and ``dockyard trust policy
show|set``: a namespace's trusted signing keys, its trusted keyless identities and its trust policies (the
namespace's default and per-repository overrides), managed by the server's operator over ``dockyard.trust.manage``.
Changes reach a running server within the checker's cache time (2 seconds).

Each kind of trust material is a subgroup of ``trust``; the service and the shared argument parsing are the
helpers below."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dockyard.authz.principal import Principal
from dockyard.cli.common import Group, Operator, operator_command, parse_scope, print_fields, print_table
from dockyard.cli.ids import unique_start
from dockyard.db.engine import Database
from dockyard.signing.keys import MAX_PEM_SIZE, InvalidKey, key_id, load_public_key
from dockyard.trust.checker import MODES
from dockyard.trust.manage import IdentityView, KeyView, PolicyView, TrustService

STDIN = "-"


def _service(db: Database) -> TrustService:
    # Keys and policies need no server secret (only the managed signing key does).
    return TrustService(db)


def read_public_key(file: str) -> tuple[str, str]:
    """The PEM public key in ``file`` (``-``: standard input) and its key id. A file that is not one (a private key,
    not PEM, too large, unreadable) ends the command with a message naming it."""
    where = "standard input" if file == STDIN else click.format_filename(file)
    try:
        if file == STDIN:
            data = sys.stdin.buffer.read(MAX_PEM_SIZE + 1)
        else:
            with Path(file).open("rb") as source:
                data = source.read(MAX_PEM_SIZE + 1)
    except OSError as exc:
        raise click.ClickException(f"{where}: cannot read it: {exc.strerror or exc}") from None
    try:
        kid = key_id(load_public_key(data))
    except InvalidKey as exc:
        hint = " (give the public half, the .pub file)" if b"PRIVATE KEY-----" in data else ""
        raise click.ClickException(f"{where}: not a usable public key: {exc}{hint}") from None
    return data.decode("ascii"), kid


def default_key_name(file: str, kid: str) -> str:
    """A trusted key's name when none is given: the file's name without ``.pub``, or the start of the key id."""
    stem = "" if file == STDIN else Path(file).name.removesuffix(".pub")
    return (stem if stem and stem.isprintable() else f"key {kid[:12]}")[:100]


@click.group(cls=Group)
def trust() -> None:
    """Image-signing trust: the public keys a namespace trusts and its trust policies (off, warn, enforce)."""


# -- keys -------------------------------------------------------------------------------------------------------------


@trust.group("key")
def trust_key() -> None:
    """The public keys whose signatures a namespace trusts."""


def _print_key(key: KeyView) -> None:
    print_fields(
        f"trusted key {key.key_id}",
        [("name", key.name), ("algorithm", key.algorithm), ("added by", key.created_by), ("added", key.created_at)],
    )


@operator_command(trust_key, "add")
@click.argument("namespace", metavar="NAMESPACE")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, allow_dash=True),
    required=True,
    metavar="P.pub",
    help="The PEM public key (cosign.pub, `dockyard key generate`'s P.pub); - reads standard input.",
)
@click.option("--name", default=None, help="A label (default: the file's name without .pub).")
def trust_key_add(op: Operator, namespace: str, file: str, name: str | None) -> None:
    """Trust a public key (ECDSA P-256/P-384, Ed25519, RSA >= 2048) for the images of NAMESPACE."""
    public_key, kid = read_public_key(file)

    async def work(db: Database) -> KeyView:
        return await _service(db).add_key(
            op.actor, namespace, name=name or default_key_name(file, kid), public_key=public_key
        )

    added = op.run(work)
    op.emit(added, lambda: _print_key(added))


@operator_command(trust_key, "list")
@click.argument("namespace", metavar="NAMESPACE")
def trust_key_list(op: Operator, namespace: str) -> None:
    """List the public keys NAMESPACE trusts, with their key ids."""

    async def work(db: Database) -> list[KeyView]:
        return await _service(db).list_keys(op.actor, namespace)

    keys = op.run(work)
    op.emit(
        keys,
        lambda: print_table(
            f"trusted keys of {namespace}",
            ["key id", "name", "algorithm", "added by", "added"],
            [(k.key_id, k.name, k.algorithm, k.created_by, k.created_at) for k in keys],
        ),
    )


MIN_KEY_ID_PREFIX = 8


async def resolve_key_id(service: TrustService, actor: Principal, namespace: str, given: str) -> str:
    """The trusted key of ``namespace`` whose id is ``given`` or starts with it (at least ``MIN_KEY_ID_PREFIX`` hex
    digits, and only one key may match), as key ids are long and tables fold them."""
    keys = await service.list_keys(actor, namespace)
    return unique_start("key", given, [key.key_id for key in keys], label="trusted key", minimum=MIN_KEY_ID_PREFIX)


@operator_command(trust_key, "rm")
@click.argument("namespace", metavar="NAMESPACE")
@click.argument("kid", metavar="KEY_ID")
def trust_key_rm(op: Operator, namespace: str, kid: str) -> None:
    """Stop trusting a key (KEY_ID: its id, or a unique start of it): images signed only by it no longer verify,
    and under an enforce policy no longer pull."""

    async def work(db: Database) -> str:
        service = _service(db)
        full = await resolve_key_id(service, op.actor, namespace, kid)
        await service.remove_key(op.actor, namespace, full)
        return full

    removed = op.run(work)
    op.emit({"deleted": removed}, lambda: click.echo(f"{namespace} no longer trusts key {removed}"))


# -- keyless identities ---------------------------------------------------------------------------------------------


@trust.group("identity")
def trust_identity() -> None:
    """Keyless signers (OIDC issuer and subject pattern) whose Sigstore-bundle signatures a namespace trusts; the
    certificates must chain to the server's trusted root (setting sigstore_trusted_root)."""


def _print_identity(identity: IdentityView) -> None:
    print_fields(
        f"trusted identity {identity.identity_id}",
        [
            ("name", identity.name),
            ("issuer", identity.issuer),
            ("subject", identity.subject),
            ("added by", identity.created_by),
            ("added", identity.created_at),
        ],
    )


@operator_command(trust_identity, "add")
@click.argument("namespace", metavar="NAMESPACE")
@click.option("--issuer", required=True, help="The OIDC issuer URL the certificate must name (exact match).")
@click.option(
    "--subject",
    required=True,
    metavar="REGEX",
    help="A regular expression the certificate's subject (e-mail, URI) must match in full.",
)
@click.option("--name", default="", help="A label (default: the subject pattern).")
def trust_identity_add(op: Operator, namespace: str, issuer: str, subject: str, name: str) -> None:
    """Trust keyless signatures of an identity for the images of NAMESPACE (cosign's --certificate-oidc-issuer and
    --certificate-identity-regexp)."""

    async def work(db: Database) -> IdentityView:
        return await _service(db).add_identity(op.actor, namespace, issuer=issuer, subject=subject, name=name)

    added = op.run(work)
    op.emit(added, lambda: _print_identity(added))


@operator_command(trust_identity, "list")
@click.argument("namespace", metavar="NAMESPACE")
def trust_identity_list(op: Operator, namespace: str) -> None:
    """List the keyless identities NAMESPACE trusts."""

    async def work(db: Database) -> list[IdentityView]:
        return await _service(db).list_identities(op.actor, namespace)

    identities = op.run(work)
    op.emit(
        identities,
        lambda: print_table(
            f"trusted identities of {namespace}",
            ["identity id", "issuer", "subject", "added by", "added"],
            [(i.identity_id, i.issuer, i.subject, i.created_by, i.created_at) for i in identities],
        ),
    )


@operator_command(trust_identity, "rm")
@click.argument("namespace", metavar="NAMESPACE")
@click.argument("identity_id", metavar="IDENTITY_ID")
def trust_identity_rm(op: Operator, namespace: str, identity_id: str) -> None:
    """Stop trusting a keyless identity (IDENTITY_ID: oidc-…, as listed)."""

    async def work(db: Database) -> str:
        service = _service(db)
        identities = await service.list_identities(op.actor, namespace)
        full = unique_start("identity", identity_id, [i.identity_id for i in identities], label="trusted identity")
        await service.remove_identity(op.actor, namespace, full)
        return full

    removed = op.run(work)
    op.emit({"deleted": removed}, lambda: click.echo(f"{namespace} no longer trusts identity {removed}"))


# -- policies ---------------------------------------------------------------------------------------------------------


@trust.group("policy")
def trust_policy() -> None:
    """Trust policies: a namespace's default and repositories' own (off, warn or enforce at pull time)."""


def _policy_source(policy: PolicyView) -> str:
    """Where the policy in effect comes from (``inherited``: no row of its own)."""
    if policy.updated_at is None:
        return "none set (off)"
    if policy.repository is None or policy.inherited:
        return "the namespace's default"
    return "the repository's own"


def _print_policy(policy: PolicyView) -> None:
    print_fields(
        f"trust policy of {policy.repository or policy.namespace}",
        [
            ("mode", policy.mode),
            ("exempt", list(policy.exempt)),
            ("from", _policy_source(policy)),
            ("updated by", policy.updated_by or None),
            ("updated", policy.updated_at),
        ],
    )


@operator_command(trust_policy, "show")
@click.argument("target", metavar="NS[/REPO]")
def trust_policy_show(op: Operator, target: str) -> None:
    """Show the policy that applies to a namespace (its default) or to a repository."""
    namespace, repository = parse_scope(target)

    async def work(db: Database) -> PolicyView:
        return await _service(db).get_policy(op.actor, namespace, repository)

    policy = op.run(work)
    op.emit(policy, lambda: _print_policy(policy))


@operator_command(trust_policy, "set")
@click.argument("target", metavar="NS[/REPO]")
@click.option("--mode", type=click.Choice(MODES), required=True, help="What to do with unsigned images at pull time.")
@click.option(
    "--exempt",
    multiple=True,
    metavar="PATTERN",
    help="A glob on 'repo' or 'repo:tag' the policy skips (repeatable; replaces the current list).",
)
def trust_policy_set(op: Operator, target: str, mode: str, exempt: tuple[str, ...]) -> None:
    """Set a namespace's default policy (NS) or a repository's own (NS/REPO), which overrides the default."""
    namespace, repository = parse_scope(target)

    async def work(db: Database) -> PolicyView:
        return await _service(db).set_policy(op.actor, namespace, repository, mode=mode, exempt=list(exempt))

    policy = op.run(work)
    op.emit(policy, lambda: _print_policy(policy))
