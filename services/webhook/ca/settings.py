"""Every setting of ``meshguard ca serve`` in one place, from flags or ``MESHGUARD_*`` env."""

from __future__ import annotations

import argparse
import dataclasses
import datetime
from pathlib import Path

from meshguard.common.settings import add_flag, repeated
from meshguard.webhook.ca.rootpublisher import INJECTION_SELECTORS

_DEFAULT_HOSTS = ["meshguard-ca.meshguard-system.svc", "localhost", "127.0.0.1"]


@dataclasses.dataclass(frozen=True, slots=True)
class CaSettings:
    host: str
    grpc_port: int
    admin_port: int
    trust_domain: str
    ca_cert: Path | None
    ca_key: Path | None
    root_cert: Path | None
    generated_root_dir: Path | None
    default_ttl: datetime.timedelta
    max_ttl: datetime.timedelta
    audience: str
    token_verifier: str
    issuer_keys: Path | None
    token_issuer: str | None
    kube_api: str
    serving_hosts: tuple[str, ...]
    publish_root_cert: bool = False
    publish_root_cert_selectors: tuple[str, ...] = INJECTION_SELECTORS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "--host", default="0.0.0.0", help="address to listen on")
    add_flag(parser, "--grpc-port", type=int, default=15012, help="CertificateService port")
    add_flag(parser, "--admin-port", type=int, default=15014, help="health and metrics port")
    add_flag(parser, "--trust-domain", default="cluster.local", help="SPIFFE trust domain")
    add_flag(parser, "--ca-cert", type=Path, help="issuer certificate PEM (then intermediates)")
    add_flag(parser, "--ca-key", type=Path, help="issuer private key PEM")
    add_flag(parser, "--root-cert", type=Path, help="root bundle when the issuer is intermediate")
    add_flag(
        parser,
        "--generated-root-dir",
        type=Path,
        help="development: load ca-cert.pem/ca-key.pem from here, generating them if missing",
    )
    add_flag(parser, "--default-ttl", type=int, default=86400, help="leaf TTL, seconds")
    add_flag(parser, "--max-ttl", type=int, default=90 * 86400, help="max TTL, seconds")
    add_flag(parser, "--audience", default="meshguard-ca", help="token audience required")
    add_flag(
        parser,
        "--token-verifier",
        default="tokenreview",
        help="'tokenreview' (Kubernetes API) or 'issuer-keys' (offline JWKS/PEM keys)",
    )
    add_flag(parser, "--issuer-keys", type=Path, help="JWKS or PEM keys of the SA token issuer")
    add_flag(parser, "--token-issuer", help="expected 'iss' of tokens (issuer-keys verifier)")
    add_flag(
        parser,
        "--publish-root-cert",
        boolean=True,
        default=False,
        help="write ConfigMap meshguard-ca-root-cert into namespaces labelled for injection",
    )
    add_flag(
        parser,
        "--publish-root-cert-selectors",
        default=";".join(INJECTION_SELECTORS),
        help="label selectors of the namespaces to publish into, ';' between selectors that are "
        "OR-ed (a selector has commas of its own); default: where the injector can inject",
    )
    add_flag(parser, "--kube-api", default="https://kubernetes.default.svc", help="API server")
    add_flag(
        parser,
        "--serving-host",
        repeatable=True,
        help=f"DNS name or IP of the CA's serving certificate (default {_DEFAULT_HOSTS})",
    )


def from_args(args: argparse.Namespace) -> CaSettings:
    if args.token_verifier not in ("tokenreview", "issuer-keys"):
        raise SystemExit(
            f"--token-verifier must be tokenreview or issuer-keys, not {args.token_verifier!r}"
        )
    if args.token_verifier == "issuer-keys" and args.issuer_keys is None:
        raise SystemExit("--token-verifier issuer-keys needs --issuer-keys")
    if (args.ca_cert is None) == (args.generated_root_dir is None):
        raise SystemExit("give either --ca-cert/--ca-key or --generated-root-dir")
    return CaSettings(
        host=args.host,
        grpc_port=args.grpc_port,
        admin_port=args.admin_port,
        trust_domain=args.trust_domain,
        ca_cert=args.ca_cert,
        ca_key=args.ca_key,
        root_cert=args.root_cert,
        generated_root_dir=args.generated_root_dir,
        default_ttl=datetime.timedelta(seconds=args.default_ttl),
        max_ttl=datetime.timedelta(seconds=args.max_ttl),
        audience=args.audience,
        token_verifier=args.token_verifier,
        issuer_keys=args.issuer_keys,
        token_issuer=args.token_issuer,
        kube_api=args.kube_api,
        serving_hosts=tuple(repeated(args, "serving_host") or _DEFAULT_HOSTS),
        publish_root_cert=args.publish_root_cert,
        publish_root_cert_selectors=_selectors(args.publish_root_cert_selectors),
    )


def _selectors(text: str) -> tuple[str, ...]:
    selectors = tuple(part.strip() for part in text.split(";") if part.strip())
    if not selectors:
        raise SystemExit("--publish-root-cert-selectors needs at least one label selector")
    return selectors
