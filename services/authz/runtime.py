"""Assemble the authz process: config store, JWKS cache, authorizer, gRPC and HTTP flavours."""

from __future__ import annotations

import asyncio

from meshguard.authz import grpc_api, loader
from meshguard.authz.authn import Authenticator, VerifiedCache
from meshguard.authz.authorizer import Authorizer
from meshguard.authz.compiler import EngineOptions
from meshguard.authz.decision_log import DecisionLog
from meshguard.authz.engine import PolicySet
from meshguard.authz.http_api import HttpAuthorization
from meshguard.authz.jwks import JwksCache
from meshguard.authz.keys import KeySet
from meshguard.authz.model import JWTRule
from meshguard.authz.settings import AuthzSettings
from meshguard.common.configstore import ConfigStore, Snapshot
from meshguard.common.server import BackgroundTask, ServiceRuntime


def engine_options(settings: AuthzSettings) -> EngineOptions:
    return EngineOptions(
        root_namespace=settings.root_namespace,
        trust_domain=settings.trust_domain,
        trust_domain_aliases=settings.trust_domain_aliases,
    )


def build_authorizer(policies: ConfigStore[PolicySet], jwks: JwksCache) -> Authorizer:
    async def remote_keys(rule: JWTRule, unknown_kid: bool) -> KeySet | None:
        return await jwks.get(
            rule.jwks_uri, rule.issuer, rule.timeout_seconds, unknown_kid=unknown_kid
        )

    cache = VerifiedCache()

    def forget_verified(snapshot: Snapshot[PolicySet]) -> None:
        cache.clear()

    policies.on_swap(forget_verified)
    return Authorizer(lambda: policies.current.value, Authenticator(remote_keys, cache))


def _closing(jwks: JwksCache) -> BackgroundTask:
    """A background task that only closes the JWKS HTTP session when the runtime stops."""

    async def wait_then_close() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await jwks.close()

    return wait_then_close


def build_runtime(settings: AuthzSettings) -> ServiceRuntime:
    """A ready-to-start runtime; raises FindingsError when the initial policies are invalid."""
    store = ConfigStore(
        "authz-policies", settings.policies, loader.compiler(engine_options(settings))
    )
    store.load()
    jwks = JwksCache(refresh_interval=settings.jwks_refresh_interval)
    authorizer = build_authorizer(store, jwks)
    decisions = DecisionLog(
        allow_rate=settings.log_allow_sample, deny_rate=settings.log_deny_sample
    )
    runtime = ServiceRuntime("authz", admin_port=settings.admin_port, host=settings.host)
    runtime.add_store(store)
    runtime.add_background(_closing(jwks))
    servicer = grpc_api.AuthorizationServicer(authorizer, decisions, settings.xff_trusted_hops)
    if settings.grpc_server == "lean":
        runtime.add_lean_grpc(
            settings.grpc_port, grpc_api.lean_methods(servicer), [grpc_api.SERVICE_NAME]
        )
    else:
        runtime.add_grpc(settings.grpc_port, grpc_api.register(servicer), [grpc_api.SERVICE_NAME])
    if settings.http_port is not None:
        http = HttpAuthorization(
            authorizer,
            decisions,
            path_prefix=settings.http_path_prefix,
            xff_trusted_hops=settings.xff_trusted_hops,
        )
        runtime.add_http_server(http.server(settings.host, settings.http_port))
    return runtime
