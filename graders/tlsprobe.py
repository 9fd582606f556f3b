"""A real TLS handshake with the gateway, for live checks (lab 6): through a port-forward to a Ready
gateway pod (``graders.probes``), with the SNI a client would send, reading the certificate the
gateway serves (DER, parsed with ``cryptography``) and, optionally, one HTTPS request.

The handshake does not verify the certificate: the point is to *read* it (which names it carries),
whatever it is; ``getpeercert()`` is empty without verification, so the DER form is parsed instead
(facts sheet §6.2). Nothing is written to the cluster and no Secret is read.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass, field
from typing import Any

from graders import certs
from graders.probes import DEFAULT_GATEWAY, PortForward, _exchange, _Failed, _via_port_forward


@dataclass(frozen=True)
class TlsRecord:
    sni: str
    names: tuple[str, ...] = ()  # DNS names of the served certificate
    error: str | None = None  # why there was no handshake (curl would exit with 35)
    status: int | None = None  # HTTPS request only
    headers: dict[str, str] = field(default_factory=dict)

    def covers(self, host: str) -> bool:
        return any(certs.name_covers(n, host) for n in self.names)

    @property
    def upstream(self) -> bool:
        """The response came from an application behind the gateway (x-envoy-upstream-service-time)."""
        return "x-envoy-upstream-service-time" in self.headers


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def _close(tls: ssl.SSLSocket) -> None:
    """Say goodbye (close_notify) and read what the server sent after the handshake (TLS 1.3 session
    tickets): closing with unread bytes would reset the port-forward's connection."""
    with contextlib.suppress(ssl.SSLError, OSError):
        tls.unwrap()


def _talk(sni: str, path: str | None, timeout: float):
    def talk(sock: Any) -> TlsRecord:
        try:
            tls = _context().wrap_socket(sock, server_hostname=sni)
        except (ssl.SSLError, OSError) as err:
            raise _Failed(f"TLS handshake failed ({err.__class__.__name__}: {err}); curl would exit with 35") from None
        der = tls.getpeercert(binary_form=True) or b""
        names = certs.dns_names(der) if der else ()
        if path is None:
            _close(tls)
            return TlsRecord(sni, names)
        status, headers, _body = _exchange(tls, sni, path, "GET", None, timeout)
        return TlsRecord(sni, names, status=status, headers=headers)
    return talk


def handshake(context: str | None, kubeconfig: str | None, *, gateway: str = DEFAULT_GATEWAY, port: int = 443,
              sni: str, path: str | None = None, timeout: float = 5.0) -> TlsRecord:
    """Open TLS to the gateway Service ``port`` with ``sni``; with ``path``, also GET it over that TLS."""
    try:
        return _via_port_forward(PortForward(context, kubeconfig), gateway, port, sni, path or "/", "GET", None,
                                 timeout, talk=_talk(sni, path, timeout))
    except _Failed as err:
        return TlsRecord(sni, error=str(err))


def https_get(context: str | None, kubeconfig: str | None, *, gateway: str = DEFAULT_GATEWAY, port: int = 443,
              host: str, path: str, timeout: float = 5.0) -> TlsRecord:
    return handshake(context, kubeconfig, gateway=gateway, port=port, sni=host, path=path, timeout=timeout)
