"""A key pair from ``dockyard key generate`` signs with real clients, and Dockyard serves the signatures exactly as
they expect (issue 7's client acceptance).

skopeo signs while it copies an image into Dockyard (``--sign-by-sigstore-private-key``, with ``registries.d``
saying ``use-sigstore-attachments: true`` for the server): the signature lands as cosign's tag scheme
(``sha256-<hex>.sig``). The test reads it back over HTTP and checks it with the public key using ``cryptography``
alone. Then skopeo and podman pull with a ``policy.json`` that requires a ``sigstoreSigned`` signature by that key
for the server: the signed image passes, an unsigned one (and one signed by another key) is refused.

Debian bookworm's skopeo and podman are built with sigstore disabled; ``scripts/install-sigstore-clients.sh``
installs Debian trixie's into ``$DOCKYARD_SIGSTORE_CLIENTS`` (default ``/opt/dockyard-sigstore-clients``). Without
a sigstore-capable client the tests skip, and fail under CI=true.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.clients.conftest import ContainersEnv, Tool, docker_ref
from tests.support.cli import dockyard_cli
from tests.support.images import Layout, build_image_layout
from tests.support.oci import OCI_MANIFEST, sha256
from tests.support.server import DockyardServer
from tests.support.tools import missing, require_tool

pytestmark = pytest.mark.clients

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PASSWORD = "key password for tests"
CLIENTS_DIR = Path(os.environ.get("DOCKYARD_SIGSTORE_CLIENTS", "/opt/dockyard-sigstore-clients"))
DISABLED = "sigstore disabled"  # Debian bookworm's patch, in the error of every sigstore operation


@dataclass
class SigstoreClients:
    skopeo: Tool
    podman: Tool
    env: ContainersEnv


@pytest.fixture
def clients(containers_env: ContainersEnv, server: DockyardServer) -> SigstoreClients:
    """skopeo and podman that speak sigstore, in the test's isolated containers environment, told by
    ``registries.d`` (in the isolated HOME, where c/image looks first) to use sigstore attachments on the server."""
    env = containers_env
    registries_d = env.root / "home" / ".config" / "containers" / "registries.d"
    registries_d.mkdir(parents=True)
    (registries_d / "dockyard.yaml").write_text(f"docker:\n  {server.host}:\n    use-sigstore-attachments: true\n")
    env.env["PODMAN_IGNORE_CGROUPSV1_WARNING"] = "1"
    if (CLIENTS_DIR / "bin" / "skopeo").exists():
        if (CLIENTS_DIR / "containers.conf").exists():
            env.env["CONTAINERS_CONF_OVERRIDE"] = str(CLIENTS_DIR / "containers.conf")
        skopeo = Tool(str(CLIENTS_DIR / "bin" / "skopeo"), env.env, env.root)
        podman = Tool(str(CLIENTS_DIR / "bin" / "podman"), env.env, env.root)
    else:  # the machine's own, if they were built with sigstore (not Debian bookworm's: see _run)
        skopeo, podman = (
            Tool(require_tool("skopeo"), env.env, env.root),
            Tool(require_tool("podman"), env.env, env.root),
        )
    store = podman.json("info", "--format", "json")["store"]
    assert store["graphRoot"] == str(env.graphroot), store  # never the machine's own container storage
    return SigstoreClients(skopeo, podman, env)


@pytest.fixture
def other_layout(tmp_path: Path, seed: str, busybox: Path) -> Layout:
    """An image other than ``image_layout``'s (a signature covers a manifest digest, whatever its tag)."""
    return build_image_layout(tmp_path / "other-layout", f"{seed}-other", busybox=busybox)


def _run(tool: Tool, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = tool.run(*args, check=False)
    if DISABLED in proc.stderr:
        missing(
            f"{tool.path} is built without sigstore ({proc.stderr.strip()[-200:]}); "
            "scripts/install-sigstore-clients.sh installs one that has it"
        )
    if check and proc.returncode != 0:
        tool.run(*args)  # raises ToolError with the output
    return proc


def generate_key(prefix: Path, password: str = PASSWORD) -> None:
    """``dockyard key generate`` as a user runs it (password on standard input)."""
    made = dockyard_cli(
        "key", "generate", "--output-prefix", str(prefix), "--password-stdin", env=os.environ, input=password
    )
    assert made.returncode == 0, made.stderr


@dataclass
class Signed:
    key: Path  # the key pair's prefix: key.key, key.pub
    repo: str
    digest: str


def sign_and_push(clients: SigstoreClients, server: DockyardServer, layout: Layout, repo: str, tag: str) -> Signed:
    root = clients.env.root
    generate_key(root / "release")
    passphrase = root / "passphrase"
    passphrase.write_text(PASSWORD)
    digest_file = root / f"digest-{tag}"
    _run(
        clients.skopeo,
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        str(root / "release.key"),
        "--sign-passphrase-file",
        str(passphrase),
        "--digestfile",
        str(digest_file),
        layout.ref,
        docker_ref(server, repo, tag),
    )
    return Signed(root / "release", repo, digest_file.read_text().strip())


def write_policy(path: Path, server: DockyardServer, public_key: Path) -> Path:
    """containers-policy.json: anything from local transports, only images signed by ``public_key`` from the
    server (the signature's identity must name the pulled repository and tag, or its digest)."""
    policy = {
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {
            "docker": {
                server.host: [
                    {
                        "type": "sigstoreSigned",
                        "keyPath": str(public_key),
                        "signedIdentity": {"type": "matchRepoDigestOrExact"},
                    }
                ]
            }
        },
    }
    path.write_text(json.dumps(policy, indent=2))
    return path


def test_a_dockyard_key_signs_with_skopeo_and_dockyard_holds_the_signature(
    clients: SigstoreClients, server: DockyardServer, client: httpx.Client, image_layout: Layout, repo: str
) -> None:
    signed = sign_and_push(clients, server, image_layout, repo, "v1")
    assert signed.digest == image_layout.top_digest

    # cosign's tag scheme: the signature is the manifest tagged sha256-<hex>.sig in the same repository.
    sig_tag = signed.digest.replace(":", "-") + ".sig"
    assert sig_tag in client.get(f"/v2/{repo}/tags/list").json()["tags"]
    response = client.get(f"/v2/{repo}/manifests/{sig_tag}", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200, response.text
    manifest = json.loads(response.content)
    assert manifest["mediaType"] == OCI_MANIFEST
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING

    payload = client.get(f"/v2/{repo}/blobs/{layer['digest']}").content
    assert sha256(payload) == layer["digest"]
    assert len(payload) == layer["size"]
    simple_signing = json.loads(payload)
    assert simple_signing["critical"]["type"] == "cosign container image signature"
    assert simple_signing["critical"]["image"]["docker-manifest-digest"] == signed.digest
    assert simple_signing["critical"]["identity"]["docker-reference"] == f"{server.host}/{repo}:v1"

    # The annotation is an ECDSA-SHA256 signature over the payload bytes, valid for release.pub.
    public_key = serialization.load_pem_public_key(signed.key.with_suffix(".pub").read_bytes())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    signature = base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])
    public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, payload.replace(b"sha256:", b"sha512:"), ec.ECDSA(hashes.SHA256()))

    # Dockyard's own verifier (what the trust policy runs) accepts what skopeo wrote, for that key only.
    from dockyard.signing.keys import key_id
    from dockyard.signing.verify import verify_signature_manifest

    blobs = {layer["digest"]: payload}
    (result,) = verify_signature_manifest(
        response.content, OCI_MANIFEST, signed.digest, lambda d, _n: blobs.get(d), {key_id(public_key): public_key}
    )
    assert result.verified, result.reason
    assert result.key_id == key_id(public_key)
    assert result.format == "cosign"
    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    (refused,) = verify_signature_manifest(
        response.content, OCI_MANIFEST, signed.digest, lambda d, _n: blobs.get(d), {key_id(other): other}
    )
    assert not refused.verified

    # A wrong password does not open the key: skopeo signs nothing.
    wrong = clients.env.root / "wrong-passphrase"
    wrong.write_text("not the password")
    proc = _run(
        clients.skopeo,
        "copy",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        str(signed.key.with_suffix(".key")),
        "--sign-passphrase-file",
        str(wrong),
        image_layout.ref,
        docker_ref(server, repo, "v2"),
        check=False,
    )
    assert proc.returncode != 0
    assert "decrypt" in proc.stderr


def test_skopeo_verifies_the_signature_on_pull(
    clients: SigstoreClients,
    server: DockyardServer,
    image_layout: Layout,
    other_layout: Layout,
    repo: str,
    tmp_path: Path,
) -> None:
    signed = sign_and_push(clients, server, image_layout, repo, "signed")
    _run(clients.skopeo, "copy", "--dest-tls-verify=false", other_layout.ref, docker_ref(server, repo, "unsigned"))
    policy = write_policy(tmp_path / "policy.json", server, signed.key.with_suffix(".pub"))

    def pull(tag: str, policy: Path) -> subprocess.CompletedProcess[str]:
        return _run(
            clients.skopeo,
            "copy",
            "--src-tls-verify=false",
            "--policy",
            str(policy),
            docker_ref(server, repo, tag),
            f"dir:{tmp_path / f'out-{tag}-{policy.stem}'}",
            check=False,
        )

    accepted = pull("signed", policy)
    assert accepted.returncode == 0, accepted.stderr
    refused = pull("unsigned", policy)
    assert refused.returncode != 0
    assert "A signature was required, but no signature exists" in refused.stderr

    # The same signed image against another key: refused, so the policy really checks the signature.
    generate_key(tmp_path / "other")
    other_policy = write_policy(tmp_path / "other-policy.json", server, tmp_path / "other.pub")
    refused = pull("signed", other_policy)
    assert refused.returncode != 0
    assert "cryptographic signature verification failed" in refused.stderr


def test_podman_pull_enforces_a_sigstore_signed_policy(
    clients: SigstoreClients,
    server: DockyardServer,
    image_layout: Layout,
    other_layout: Layout,
    repo: str,
    tmp_path: Path,
) -> None:
    signed = sign_and_push(clients, server, image_layout, repo, "signed")
    _run(clients.skopeo, "copy", "--dest-tls-verify=false", other_layout.ref, docker_ref(server, repo, "unsigned"))
    policy = write_policy(tmp_path / "policy.json", server, signed.key.with_suffix(".pub"))
    podman = clients.podman

    def pull(tag: str) -> subprocess.CompletedProcess[str]:
        return _run(
            podman,
            "pull",
            "--tls-verify=false",
            "--signature-policy",
            str(policy),
            f"{server.host}/{repo}:{tag}",
            check=False,
        )

    accepted = pull("signed")
    assert accepted.returncode == 0, accepted.stderr
    image_id = image_layout.images[0].config_digest.removeprefix("sha256:")
    assert accepted.stdout.strip().splitlines()[-1] == image_id
    (info,) = podman.json("image", "inspect", f"{server.host}/{repo}:signed")
    assert info["Digest"] == signed.digest

    refused = pull("unsigned")
    assert refused.returncode != 0
    assert "A signature was required, but no signature exists" in refused.stderr
    assert podman.run("image", "exists", f"{server.host}/{repo}:unsigned", check=False).returncode != 0
