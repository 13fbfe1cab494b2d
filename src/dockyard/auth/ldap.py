"""The LDAP directory client (ldap3): finds a user by name, checks their password with a bind as that user, and
reads their groups — over ``ldaps://``, or ``ldap://`` upgraded with StartTLS, the server's certificate always
verified (``ldap_ca_file`` or the system's trust store, host name included).

``LdapDirectory.authenticate`` answers a ``DirectoryUser`` (the password is right), ``None`` (no such user, more
than one, or a wrong password) or raises ``DirectoryUnavailable`` (the server cannot be reached, TLS fails, the
search account is refused: nothing the user did). The reason is logged here, never handed to the client.

ldap3 speaks blocking sockets: each sign-in opens its own connections in a thread of the directory's own pool
(``_THREADS``), bounded by ``ldap_timeout_seconds`` for connecting and for each answer — so a hung server never
blocks the event loop, nor the default executor where local passwords are verified (argon2).

The search account's password is read once, at start: ``ldap_bind_password_sealed`` (sealed with the server
secret, ``seal_bind_password``), else the file ``ldap_bind_password_file``, else ``ldap_bind_password``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from ldap3 import NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.core.results import RESULT_INVALID_CREDENTIALS
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from dockyard.auth.credentials import DirectoryUnavailable
from dockyard.auth.secrets import SecretBox
from dockyard.settings import Settings
from dockyard.settings_ldap import USER_DN_PLACEHOLDER, USERNAME_PLACEHOLDER

log = logging.getLogger("dockyard.auth.ldap")
_THREADS = 8  # directory sign-ins at once per process; more wait their turn (each bounded by the timeouts)


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A user whose password the directory accepted: their entry's DN and e-mail, and their groups (each group's
    DN and its ``cn``, lowercase, so that ``ldap_group_teams`` may name either)."""

    dn: str
    email: str | None
    groups: frozenset[str]


def seal_bind_password(settings: Settings, password: str) -> str:
    """The value of ``ldap_bind_password_sealed`` for ``password`` under this server's secret."""
    return SecretBox(settings.secret_key).seal(password.encode())


def bind_password(settings: Settings) -> str:
    """The search account's password from the first setting that has one (sealed, file, plain). Raises ValueError
    when the sealed value does not open with this server's secret or the file cannot be read."""
    if settings.ldap_bind_password_sealed:
        return SecretBox(settings.secret_key).open(settings.ldap_bind_password_sealed).decode()
    if settings.ldap_bind_password_file is not None:
        try:
            return settings.ldap_bind_password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"ldap_bind_password_file: cannot read {settings.ldap_bind_password_file}") from exc
    return settings.ldap_bind_password


class LdapDirectory:
    """Bind authentication and group look-up against one LDAP server (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._bind_dn = settings.ldap_bind_dn
        self._bind_password = bind_password(settings) if settings.ldap_bind_dn else ""
        self._ca_file = str(settings.ldap_ca_file) if settings.ldap_ca_file is not None else None
        self._pool = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="ldap")

    async def authenticate(self, username: str, password: str) -> DirectoryUser | None:
        """See the module docstring. ``username`` is the normalised (lowercase) name signed in with."""
        if not password or not username:
            return None  # an empty password would be an unauthenticated bind, which servers accept
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._authenticate, username, password)

    def _authenticate(self, username: str, password: str) -> DirectoryUser | None:
        settings = self._settings
        try:
            with self._connect(self._bind_dn or None, self._bind_password or None) as search:
                entry = self._find_user(search, username)
                if entry is None:
                    return None
                dn: str = entry["dn"]
                if not self._password_matches(dn, password):
                    return None
                attributes: dict[str, Any] = entry["attributes"]
                groups = (
                    self._searched_groups(search, dn)
                    if settings.ldap_group_search_base
                    else _groups_of(_values(attributes, settings.ldap_member_of_attribute))
                )
        except (LDAPException, OSError) as exc:  # OSError: ssl.SSLError and socket errors ldap3 lets through
            log.warning("LDAP server %s cannot be used: %s", settings.ldap_url, exc)
            raise DirectoryUnavailable(str(exc)) from exc
        emails = _values(attributes, settings.ldap_email_attribute) if settings.ldap_email_attribute else []
        return DirectoryUser(dn, emails[0] if emails else None, groups)

    @contextmanager
    def _connect(self, user: str | None, password: str | None) -> Iterator[Connection]:
        """A bound connection (StartTLS first when asked), closed on leaving. Raises LDAPException, whose
        subclass ``_BindRefused`` says the server refused the credentials."""
        url = self._settings.ldap_url
        server = Server(  # one per connection: ldap3's Server keeps per-connection state (the address in use)
            url,
            use_ssl=url.lower().startswith("ldaps://"),
            tls=Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self._ca_file),
            get_info=NONE,
            connect_timeout=self._settings.ldap_timeout_seconds,
        )
        connection = Connection(
            server,
            user=user,
            password=password,
            receive_timeout=math.ceil(self._settings.ldap_timeout_seconds),  # ldap3 wants whole seconds here
            read_only=True,
            raise_exceptions=False,
        )
        try:
            connection.open()
            if self._settings.ldap_start_tls and not connection.start_tls():
                raise _StartTlsRefused(f"StartTLS refused: {connection.result}")
            if not connection.bind():
                raise _BindRefused(connection.result.get("result", -1) if connection.result else -1, user)
            yield connection
        finally:
            with suppress(LDAPException, OSError):
                connection.unbind()
            # A connection that broke (a timeout, a reset) is marked closed without closing its socket: close it.
            broken: socket.socket | None = getattr(connection, "socket", None)
            if broken is not None:
                broken.close()

    def _find_user(self, search: Connection, username: str) -> dict[str, Any] | None:
        settings = self._settings
        query = settings.effective_ldap_user_filter.replace(USERNAME_PLACEHOLDER, escape_filter_chars(username))
        wanted = [settings.ldap_uid_attribute]
        wanted += [name for name in (settings.ldap_email_attribute, settings.ldap_member_of_attribute) if name]
        search.search(settings.ldap_user_search_base, query, SUBTREE, attributes=wanted, size_limit=2)
        entries = [item for item in search.response or [] if item.get("type") == "searchResEntry"]
        if len(entries) != 1:
            if len(entries) > 1:
                log.warning("LDAP: %d entries match the user filter for %r; refusing", len(entries), username)
            return None
        uids = [str(uid).lower() for uid in _values(entries[0]["attributes"], settings.ldap_uid_attribute)]
        if username not in uids:  # the filter matched someone else (e.g. a filter on another attribute)
            return None
        entry: dict[str, Any] = entries[0]
        return entry

    def _password_matches(self, dn: str, password: str) -> bool:
        try:
            with self._connect(dn, password):
                return True
        except _BindRefused as refused:
            if refused.code == RESULT_INVALID_CREDENTIALS:
                return False
            raise

    def _searched_groups(self, search: Connection, dn: str) -> frozenset[str]:
        settings = self._settings
        query = settings.ldap_group_filter.replace(USER_DN_PLACEHOLDER, escape_filter_chars(dn))
        search.search(settings.ldap_group_search_base, query, SUBTREE, attributes=["cn"])
        names: set[str] = set()
        for item in search.response or []:
            if item.get("type") != "searchResEntry":
                continue
            names.add(str(item["dn"]).lower())
            names.update(str(cn).lower() for cn in _values(item["attributes"], "cn"))
        return frozenset(names)


class _BindRefused(LDAPException):
    def __init__(self, code: int, user: str | None) -> None:
        super().__init__(f"bind refused (result {code}) for {user or 'anonymous'}")
        self.code = code


class _StartTlsRefused(LDAPException):
    pass


def _values(attributes: dict[str, Any], name: str) -> list[Any]:
    for key, value in attributes.items():
        if key.lower() == name.lower():
            return list(value) if isinstance(value, list) else [value]
    return []


def _groups_of(dns: list[Any]) -> frozenset[str]:
    """Each group DN, and its first RDN's value (the ``cn`` of ``cn=devs,ou=groups,…``)."""
    names: set[str] = set()
    for raw in dns:
        dn = str(raw).lower()
        names.add(dn)
        try:
            names.add(parse_dn(dn)[0][1])
        except (LDAPException, IndexError, ValueError):
            continue
    return frozenset(names)
