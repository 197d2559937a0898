from __future__ import annotations

from typing import Any

import pytest

from tests.webhook.support import check, errors, warnings

DEST = {"destination": {"host": "reviews"}}


def vs(http: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"hosts": ["reviews"], "http": http, **extra}


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        (
            vs(
                [
                    {
                        "route": [DEST],
                        "mirror": {"host": "a"},
                        "mirrors": [{"destination": {"host": "b"}}],
                    }
                ]
            ),
            "spec.http[0].mirrors",
        ),
        (
            vs([{"route": [DEST], "mirrorPercentage": {"value": 101}}]),
            "spec.http[0].mirrorPercentage.value",
        ),
        (
            vs([{"route": [{"destination": {"host": "*"}}]}]),
            "spec.http[0].route[0].destination.host",
        ),
        (
            vs([{"route": [{"destination": {"host": "r", "subset": "v1.0"}}]}]),
            "spec.http[0].route[0].destination.subset",
        ),
        (
            vs([{"route": [{"destination": {"host": "r", "port": {"number": 0}}}]}]),
            "spec.http[0].route[0].destination.port.number",
        ),
        (vs([{"route": [{"weight": 10}]}]), "spec.http[0].route[0].destination"),
        (vs([{"route": [DEST], "timeout": "1500us"}]), "spec.http[0].timeout"),
        (
            vs([{"route": [DEST], "retries": {"attempts": 2, "perTryTimeout": "0s"}}]),
            "spec.http[0].retries.perTryTimeout",
        ),
        (vs([{"route": [DEST], "retries": {"retryOn": "5xx"}}]), "spec.http[0].retries.retryOn"),
        (vs([{"redirect": {"redirectCode": 301}}]), "spec.http[0].redirect"),
        (vs([{"redirect": {"uri": "/a", "scheme": "ftp"}}]), "spec.http[0].redirect.scheme"),
        (
            vs([{"redirect": {"uri": "/a"}, "fault": {"abort": {"httpStatus": 500}}}]),
            "spec.http[0].redirect",
        ),
        (vs([{"route": [DEST], "rewrite": {}}]), "spec.http[0].rewrite"),
        (
            vs([{"route": [DEST], "rewrite": {"uriRegexRewrite": {"match": "^/a"}}}]),
            "spec.http[0].rewrite.uriRegexRewrite",
        ),
        (
            vs(
                [
                    {
                        "route": [DEST],
                        "rewrite": {"uriRegexRewrite": {"match": "(?<=a)", "rewrite": "/"}},
                    }
                ]
            ),
            "spec.http[0].rewrite.uriRegexRewrite.match",
        ),
        (vs([{"directResponse": {"status": 700}}]), "spec.http[0].directResponse.status"),
        (
            vs([{"directResponse": {"status": 200, "body": {"string": "x" * (1024 * 1024 + 1)}}}]),
            "spec.http[0].directResponse.body",
        ),
        (vs([{"route": [DEST], "fault": {}}]), "spec.http[0].fault"),
        (
            vs([{"route": [DEST], "fault": {"abort": {"grpcStatus": "NOPE"}}}]),
            "spec.http[0].fault.abort.grpcStatus",
        ),
        (
            vs([{"route": [DEST], "fault": {"abort": {"http2Error": "x"}}}]),
            "spec.http[0].fault.abort.http2Error",
        ),
        (
            vs([{"route": [DEST], "fault": {"delay": {"exponentialDelay": "1s"}}}]),
            "spec.http[0].fault.delay.exponentialDelay",
        ),
        (
            vs([{"route": [DEST], "corsPolicy": {"maxAge": "1500ms"}}]),
            "spec.http[0].corsPolicy.maxAge",
        ),
        (
            vs([{"route": [DEST], "corsPolicy": {"allowHeaders": ["bad header"]}}]),
            "spec.http[0].corsPolicy.allowHeaders[0]",
        ),
        (
            vs([{"match": [{"method": {"prefix": ""}}], "route": [DEST]}, {"route": [DEST]}]),
            "spec.http[0].match[0].method.prefix",
        ),
        (
            vs([{"match": [{"headers": {"bad header": {"exact": "x"}}}], "route": [DEST]}]),
            "spec.http[0].match[0].headers[bad header]",
        ),
        (vs([{"match": [{"port": 70000}], "route": [DEST]}]), "spec.http[0].match[0].port"),
        (
            vs([{"match": [{"sourceNamespace": "Bad_NS"}], "route": [DEST]}]),
            "spec.http[0].match[0].sourceNamespace",
        ),
        (
            vs([{"match": [{"queryParams": {"q": {"regex": "(?!x)"}}}], "route": [DEST]}]),
            "spec.http[0].match[0].queryParams[q].regex",
        ),
        (vs([{"delegate": {"name": "d"}, "route": [DEST]}]), "spec.http[0].route"),
        ({"http": [{"delegate": {"name": "d"}}]}, "spec.http[0].delegate"),
        (vs([{"route": [DEST]}], gateways=["ns/Bad_Name"]), "spec.gateways[0]"),
        (vs([{"route": [DEST]}], exportTo=["*", "."]), "spec.exportTo"),
        ({"hosts": ["a.com"], "tls": [{"route": [DEST]}]}, "spec.tls[0].match"),
        (
            {
                "hosts": ["a.com"],
                "tcp": [{"match": [{"destinationSubnets": ["300.0.0.0/8"]}], "route": [DEST]}],
            },
            "spec.tcp[0].match[0].destinationSubnets[0]",
        ),
        (
            vs(
                [
                    {
                        "route": [DEST],
                        "headers": {"request": {"set": {"host": "a"}}},
                        "rewrite": {"authority": "b"},
                    }
                ]
            ),
            "spec.http[0].headers",
        ),
    ],
)
def test_errors(spec: dict[str, Any], path: str) -> None:
    assert path in errors(check("VirtualService", spec))


@pytest.mark.parametrize(
    "spec",
    [
        vs([{"route": [DEST], "retries": {"attempts": 3, "retryOn": "5xx,503, reset"}}]),
        vs([{"route": [{**DEST, "weight": 0}, {"destination": {"host": "b"}, "weight": 250}]}]),
        vs([{"match": [{"uri": {"prefix": ""}}], "route": [DEST]}]),
        vs([{"route": [DEST], "fault": {"delay": {"fixedDelay": "5s", "percent": 50}}}]),
        vs(
            [
                {
                    "route": [DEST],
                    "corsPolicy": {
                        "allowOrigins": [{"regex": ".*\\.a\\.com"}],
                        "maxAge": "24h",
                        "allowHeaders": ["*"],
                    },
                }
            ]
        ),
        {
            "hosts": ["a.example.com"],
            "gateways": ["gw"],
            "tls": [{"match": [{"sniHosts": ["a.example.com"]}], "route": [DEST]}],
        },
        {
            "hosts": ["*.example.com"],
            "gateways": ["ns/gw"],
            "http": [
                {
                    "match": [{"headers": {"@request.auth.claims[grp]": {"exact": "a"}}}],
                    "route": [DEST],
                }
            ],
        },
        {
            "hosts": ["outbound_.443_._.api.example.com"],
            "gateways": ["ns/gw"],
            "tls": [
                {"match": [{"sniHosts": ["outbound_.443_._.api.example.com"]}], "route": [DEST]}
            ],
        },
    ],
)
def test_accepted(spec: dict[str, Any]) -> None:
    assert errors(check("VirtualService", spec)) == {}


def test_ineffective_and_shadowed_matches_warn() -> None:
    found = check(
        "VirtualService",
        vs(
            [
                {"match": [{"uri": {"prefix": "/api"}}], "route": [DEST]},
                {
                    "match": [{"uri": {"prefix": "/api/v1"}}, {"uri": {"exact": "/x"}}],
                    "route": [DEST],
                },
                {"match": [{"uri": {"exact": "/api/v2"}}], "route": [DEST]},
            ]
        ),
    )
    assert errors(found) == {}
    assert set(warnings(found)) == {"spec.http[1].match[0]", "spec.http[2]"}


def test_deprecated_mirror_percent_warns() -> None:
    found = check(
        "VirtualService", vs([{"route": [DEST], "mirror": {"host": "m"}, "mirrorPercent": 10}])
    )
    assert set(warnings(found)) == {"spec.http[0].mirrorPercent"}


def test_message_names_the_field_and_value() -> None:
    found = check("VirtualService", vs([{"route": [DEST], "timeout": "0s"}]))
    assert errors(found) == {"spec.http[0].timeout": "duration must be at least 1ms, got 0s"}
