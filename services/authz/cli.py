"""``meshguard authz serve`` and ``meshguard explain``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from meshguard.authz import explain, loader, settings
from meshguard.authz.attributes import HttpRequest
from meshguard.authz.authn import Authenticator, AuthnResult
from meshguard.authz.checkrequest import InvalidRequest
from meshguard.authz.compiler import Context, EngineOptions
from meshguard.authz.jwks import JwksCache
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule, RequestAuthentication
from meshguard.authz.runtime import build_runtime
from meshguard.common import eventloop, logs
from meshguard.common.findings import FindingsError
from meshguard.common.resources import load_paths, parse_documents
from meshguard.common.settings import repeated


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    authz = sub.add_parser("authz", help="Istio-exact ext_authz server")
    authz_sub = authz.add_subparsers(dest="authz_command", metavar="COMMAND")
    serve = authz_sub.add_parser(
        "serve",
        help="serve envoy.service.auth.v3.Authorization (gRPC) and the HTTP flavour",
        description="Evaluates AuthorizationPolicy and RequestAuthentication exactly as Istio "
        "does, for Envoy's ext_authz filter; policy changes on disk apply within a second.",
    )
    settings.add_arguments(serve)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=_serve)
    explain_parser = sub.add_parser(
        "explain",
        help="show the authz decision for one request and why",
        description="Loads the policies, evaluates the request described in --request (YAML "
        "or JSON: namespace, labels, source, destination, http, claims) and prints the trace.",
    )
    settings.add_policy_flags(explain_parser)
    explain_parser.add_argument("--request", required=True, type=Path, help="request file")
    explain_parser.set_defaults(handler=_explain)


def _serve(args: argparse.Namespace) -> int:
    logs.configure(args.log_level)
    options = settings.from_args(args)
    try:
        runtime = build_runtime(options)
    except FindingsError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return 1
    eventloop.run(runtime.run(), options.event_loop)
    return 0


def _explain(args: argparse.Namespace) -> int:
    paths = repeated(args, "policies")
    if not paths:
        print("--policies is required", file=sys.stderr)
        return 2
    options = EngineOptions(
        root_namespace=args.root_namespace,
        trust_domain=args.trust_domain,
        trust_domain_aliases=tuple(repeated(args, "trust_domain_alias")),
    )
    try:
        policy_set = loader.build(load_paths(paths), options)
        [(_, doc)] = list(parse_documents(args.request.read_text(), str(args.request)))
        attrs, identity = explain.request_from_document(doc)
    except FindingsError as exc:
        for finding in exc.findings:
            print(finding, file=sys.stderr)
        return 1
    except (InvalidRequest, ValueError, TypeError) as exc:
        print(f"{args.request}: {exc}", file=sys.stderr)
        return 1
    workload = policy_set.workload(attrs.namespace, attrs.labels)
    if identity is None and workload.authentications:
        result = asyncio.run(_authenticate(attrs.http, workload.authentications))
        if result.failed:
            print(f"decision: DENY ({result.status} before authorization: {result.message})")
            return 0
        identity = result.identity
    ctx = Context(attrs, identity)
    print(explain.explain(workload, ctx, workload.decide(ctx)))
    return 0


async def _authenticate(
    http: HttpRequest | None, authentications: Sequence[RequestAuthentication]
) -> AuthnResult:
    jwks = JwksCache()

    async def keys(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
        return await jwks.get(rule.jwks_uri, rule.issuer, rule.timeout_seconds)

    try:
        return await Authenticator(keys).authenticate(http, authentications)
    finally:
        await jwks.close()
