"""One authorization check end to end: workload → JWT stage → policy decision → outcome.

Both wire flavours (gRPC and HTTP) call :meth:`Authorizer.check` and only translate the
:class:`Outcome`; this is where Istio's ordering (request authentication before any policy)
and its response conventions (403 ``RBAC: access denied``, 401 from jwt_authn) live.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import MappingProxyType

from meshguard.authz.attributes import HttpRequest, RequestAttributes
from meshguard.authz.authn import Authenticator, AuthnResult
from meshguard.authz.compiler import Context
from meshguard.authz.engine import Decision, PolicySet

DENIED_BODY = "RBAC: access denied"


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """What to answer: ``status`` is the HTTP status Envoy returns when denied (200 = allow)."""

    allowed: bool
    status: int
    reason: str
    body: str = ""
    decision: Decision | None = None
    authn: AuthnResult = dataclasses.field(default_factory=AuthnResult)
    response_headers: tuple[tuple[str, str], ...] = ()

    def metadata(self) -> dict[str, object]:
        """Dynamic metadata for Envoy access logs: who decided, and dry-run / audit results."""
        out: dict[str, object] = {"decision": "allow" if self.allowed else "deny"}
        out["reason"] = self.reason
        d = self.decision
        if d is not None and d.match is not None:
            out["policy"] = d.match.policy
            out["rule"] = d.match.rule
        if d is not None and d.audit:
            out["audit_policies"] = [m.policy for m in d.audit]
        if d is not None and d.shadow_deny is not None:
            out["shadow_deny_allowed"] = d.shadow_deny.allowed
            if d.shadow_deny.match:
                out["shadow_deny_policy"] = d.shadow_deny.match.policy
        if d is not None and d.shadow_allow is not None:
            out["shadow_allow_allowed"] = d.shadow_allow.allowed
            if d.shadow_allow.match:
                out["shadow_allow_policy"] = d.shadow_allow.match.policy
        if self.authn.issuer:
            out["jwt_issuer"] = self.authn.issuer
        return out


def _www_authenticate(attrs: RequestAttributes) -> str:
    http = attrs.http
    realm = f"{http.scheme or 'http'}://{http.host}{http.url_path}" if http else ""
    return f'Bearer realm="{realm}", error="invalid_token"'


class Authorizer:
    """Holds the source of the active PolicySet (a config store) and the JWT stage."""

    def __init__(self, policies: Callable[[], PolicySet], authenticator: Authenticator) -> None:
        self._policies = policies
        self._authenticator = authenticator

    async def check(self, attrs: RequestAttributes) -> Outcome:
        workload = self._policies().workload(attrs.namespace, attrs.labels)
        authn = await self._authenticator.run(attrs.http, workload.jwt)
        if authn.failed:
            reason = "jwt_audience" if authn.status == 403 else "jwt_invalid"
            headers = (
                (("www-authenticate", _www_authenticate(attrs)),) if authn.status == 401 else ()
            )
            return Outcome(False, authn.status, reason, authn.message, None, authn, headers)
        effective = _after_authn(attrs, authn)
        decision = workload.decide(Context(effective, authn.identity))
        if decision.allowed:
            return Outcome(True, 200, decision.reason, "", decision, authn)
        return Outcome(False, 403, decision.reason, DENIED_BODY, decision, authn)


def _after_authn(attrs: RequestAttributes, authn: AuthnResult) -> RequestAttributes:
    """The request as later filters see it: jwt_authn removed/set headers before RBAC runs."""
    if attrs.http is None or not (authn.headers_to_remove or authn.headers_to_set):
        return attrs
    http = attrs.http
    headers = {k: v for k, v in http.headers.items() if k not in authn.headers_to_remove}
    headers.update(authn.headers_to_set)
    # Explicit constructors: dataclasses.replace re-reads the fields on every call.
    return RequestAttributes(
        namespace=attrs.namespace,
        labels=attrs.labels,
        source_principal=attrs.source_principal,
        source_ip=attrs.source_ip,
        remote_ip=attrs.remote_ip,
        destination_ip=attrs.destination_ip,
        destination_port=attrs.destination_port,
        destination_principal=attrs.destination_principal,
        sni=attrs.sni,
        http=HttpRequest(http.host, http.method, http.path, MappingProxyType(headers), http.scheme),
        metadata=attrs.metadata,
    )
