"""Self-signed certificates for lab 6 and chapter 8, made offline with the `cryptography` library.

A learner needs a certificate and key for ``https://bookinfo.example.com`` without a CA, a network or
openssl's flags. ``self_signed`` makes one certificate that is its own trust anchor: it carries the
host names in subjectAltName (Go clients ignore the CN; facts sheet §7) and ``CA:TRUE`` so that
``curl --cacert bookinfo.crt`` trusts it. ``tls_secret`` wraps it in the ``kubernetes.io/tls`` Secret
istiod reads (``tls.crt``/``tls.key``, in the gateway *pod's* namespace).

The graders never call this on a learner's Secret: they never read Secret data. Only the live TLS
check (``graders.tlsprobe``) reads a certificate, the one the gateway serves in a real handshake.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

ISSUER_ORG = "Istio gateway course (self-signed, for labs only)"


@dataclass(frozen=True)
class KeyPair:
    cert_pem: bytes
    key_pem: bytes


def self_signed(hosts: Sequence[str], *, days: int = 825, now: dt.datetime | None = None) -> KeyPair:
    """A self-signed certificate for ``hosts`` (SAN DNS names; the first is also the CN) and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts:
        raise ValueError("a certificate needs at least one host name")
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ISSUER_ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM),
                   key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))


def dns_names(cert: bytes) -> tuple[str, ...]:
    """The SAN DNS names of a PEM or DER certificate (the CN when it has no SAN, as curl falls back)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    parsed = x509.load_pem_x509_certificate(cert) if cert.lstrip().startswith(b"-----") else \
        x509.load_der_x509_certificate(cert)
    try:
        san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        return tuple(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        return tuple(str(a.value) for a in parsed.subject.get_attributes_for_oid(NameOID.COMMON_NAME))


def name_covers(pattern: str, host: str) -> bool:
    """RFC 6125 matching as TLS clients do it: exact (case-insensitive), or ``*.`` for one label only."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return pattern == host


def tls_secret(name: str, namespace: str, pair: KeyPair) -> dict:
    """The ``kubernetes.io/tls`` Secret manifest istiod reads for ``credentialName: <name>``."""
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"tls.crt": b64(pair.cert_pem), "tls.key": b64(pair.key_pem)}}


def write_tls_secret(folder: str | Path, name: str, namespace: str, hosts: Sequence[str]) -> list[Path]:
    """Make a certificate for ``hosts`` and write ``<name>.crt`` (for ``curl --cacert``), ``<name>.key``
    and ``<name>-secret.yaml`` (the Secret, for ``kubectl apply``) into ``folder``; returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    pair = self_signed(hosts)
    crt, key, manifest = out / f"{name}.crt", out / f"{name}.key", out / f"{name}-secret.yaml"
    crt.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)
    header = (f"# A self-signed certificate for {', '.join(hosts)} made by graders.certs (labs only).\n"
              f"# istiod reads it from the gateway pod's namespace: {namespace}.\n")
    manifest.write_text(header + yaml.safe_dump(tls_secret(name, namespace, pair), sort_keys=False),
                        encoding="utf-8")
    return [crt, key, manifest]
