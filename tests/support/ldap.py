"""A throwaway OpenLDAP server for the LDAP sign-in tests, from Debian's ``slapd`` (``make test`` installs it).

``SlapdServer`` writes a ``cn=config`` LDIF (the core, cosine and inetOrgPerson schemas, the mdb backend with the
base DN ``dc=example,dc=org`` and a root DN for the tests' own changes, the memberof overlay — which keeps the
``memberOf`` of users added to or removed from a group while slapd runs, not of entries loaded by slapadd —, TLS
with a certificate of the given test CA) and loads it with ``slapadd -n 0``, loads the directory's entries (users
with ``{SSHA}`` passwords, groups as ``groupOfNames``) with ``slapadd``, then runs ``slapd`` in the foreground on
two free loopback ports: plain LDAP (which offers StartTLS) and LDAPS. Nothing outside the temporary directory is
used; ``stop`` kills it and ``start`` runs it again over the same database; ``pause`` freezes it.

A missing ``slapd`` skips the tests locally and fails them under CI=true (``tests.support.tools.missing``).
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ldap3 import MODIFY_ADD, MODIFY_DELETE, Connection, Server

from tests.support.ports import free_port
from tests.support.tls import TestCA
from tests.support.tools import missing

BASE_DN = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "root-secret-4-tests"
USERS_DN = f"ou=people,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
_SBIN = ("/usr/sbin", "/usr/local/sbin")
_MODULES = Path("/usr/lib/ldap")
_SCHEMAS = Path("/etc/ldap/schema")


def _find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / program
        if candidate.is_file():
            return str(candidate)
    return None


def require_slapd() -> tuple[str, str]:
    """``slapd`` and ``slapadd``; missing ones skip the test locally and fail it under CI=true."""
    slapd, slapadd = _find("slapd"), _find("slapadd")
    if (
        slapd is None
        or slapadd is None
        or not (_MODULES / "back_mdb.so").exists()
        or not (_MODULES / "memberof.so").exists()
    ):
        missing("OpenLDAP's slapd is not installed (package slapd; make test installs it when run as root)")
    return slapd, slapadd


def ssha(password: str) -> str:
    """The ``{SSHA}`` form of ``password`` (salted SHA-1, as slappasswd writes it)."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()  # noqa: S324 (the LDAP scheme under test)
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def user_dn(uid: str) -> str:
    return f"uid={uid},{USERS_DN}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS_DN}"


@dataclass(frozen=True)
class DirectoryEntryUser:
    uid: str
    password: str
    email: str


def _config_ldif(directory: Path, ca: TestCA, cert: Path, key: Path) -> str:
    return f"""dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {directory}/slapd.pid
olcTLSCACertificateFile: {ca.cert_path}
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {_MODULES}
olcModuleLoad: back_mdb
olcModuleLoad: memberof

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file://{_SCHEMAS}/core.ldif

include: file://{_SCHEMAS}/cosine.ldif

include: file://{_SCHEMAS}/inetorgperson.ldif

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {directory}/db
olcSuffix: {BASE_DN}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcDbMaxSize: 67108864
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by * read

dn: olcOverlay=memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: memberof
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf
"""


def _data_ldif(users: list[DirectoryEntryUser], groups: dict[str, list[str]]) -> str:
    parts = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n",
        f"dn: {USERS_DN}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for user in users:
        parts.append(
            f"dn: {user_dn(user.uid)}\nobjectClass: inetOrgPerson\nuid: {user.uid}\ncn: {user.uid}\nsn: {user.uid}\n"
            f"mail: {user.email}\nuserPassword: {ssha(user.password)}\n"
        )
    for cn, members in groups.items():
        # groupOfNames needs a member: every group holds the root DN, so that any user can leave it.
        lines = f"member: {ROOT_DN}\n" + "".join(f"member: {user_dn(uid)}\n" for uid in members)
        parts.append(f"dn: {group_dn(cn)}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
    return "\n".join(parts)


class SlapdServer:
    """See the module docstring. ``url`` is plain LDAP (StartTLS offered), ``ldaps_url`` LDAPS; both on
    127.0.0.1 with a certificate of ``ca`` for 127.0.0.1 and localhost."""

    def __init__(
        self,
        directory: Path,
        ca: TestCA,
        users: list[DirectoryEntryUser],
        groups: dict[str, list[str]],
    ) -> None:
        self._slapd, slapadd = require_slapd()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "db").mkdir(exist_ok=True)
        config_dir = directory / "slapd.d"
        config_dir.mkdir(exist_ok=True)
        self._config_dir = config_dir
        cert = ca.issue("slapd")
        (directory / "config.ldif").write_text(_config_ldif(directory, ca, cert.cert, cert.key))
        (directory / "data.ldif").write_text(_data_ldif(users, groups))
        for args in (["-n", "0", "-l", "config.ldif"], ["-b", BASE_DN, "-l", "data.ldif"]):
            done = subprocess.run(
                [slapadd, "-F", str(config_dir), *args], cwd=directory, capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise RuntimeError(f"slapadd {' '.join(args)} failed: {done.stderr}")
        self.port = free_port()
        self.tls_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    def start(self, timeout: float = 30.0) -> None:
        log = (self.directory / "slapd.log").open("ab")
        self._process = subprocess.Popen(
            [
                self._slapd,
                "-d",
                "0",  # in the foreground, logging nothing but errors
                "-F",
                str(self._config_dir),
                "-h",
                f"{self.url}/ {self.ldaps_url}/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        atexit.register(self.stop)  # a test run that ends without its teardown leaves no slapd behind
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"slapd exited: {(self.directory / 'slapd.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=30)
        self._process = None

    def pause(self) -> None:
        """Freeze slapd (SIGSTOP): the kernel still accepts connections, nothing answers them."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def _modify(self, group: str, change: dict[str, list[tuple[str, list[str]]]]) -> None:
        """One change as the root DN (a bound ldap3 connection used as a context manager is left open: unbind)."""
        conn = Connection(Server(self.url), user=ROOT_DN, password=ROOT_PASSWORD, auto_bind=True)
        try:
            # types-ldap3 leaves Connection.modify unannotated.
            assert conn.modify(group_dn(group), change), conn.result  # type: ignore[no-untyped-call]
        finally:
            conn.unbind()

    def add_member(self, group: str, uid: str) -> None:
        self._modify(group, {"member": [(MODIFY_ADD, [user_dn(uid)])]})

    def remove_member(self, group: str, uid: str) -> None:
        self._modify(group, {"member": [(MODIFY_DELETE, [user_dn(uid)])]})
