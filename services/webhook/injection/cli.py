"""``meshguard inject -f pod.yaml``: print the manifests with the sidecar injected, offline.

Like ``istioctl kube-inject``: Pods are injected, and so are the pod templates of workloads
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job); other documents pass through unchanged.
The injector's own policy (hostNetwork, already injected, opt-out annotations) still applies;
the namespace selectors do not, since asking for injection is the point of the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from meshguard.webhook.injection import settings
from meshguard.webhook.injection.annotations import InjectionError
from meshguard.webhook.injection.config import InjectionConfig
from meshguard.webhook.injection.decision import decide
from meshguard.webhook.injection.inject import inject

_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "inject",
        help="print manifests with the meshguard sidecar injected (offline)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-f", "--filename", required=True, help="YAML file, or - for stdin")
    parser.add_argument("--namespace", default="default", help="when a manifest has none")
    settings.add_arguments(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.filename == "-" else Path(args.filename).read_text()
    config = settings.from_args(args)
    out = []
    try:
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                out.append(inject_document(doc, args.namespace, config))
    except InjectionError as exc:
        print(f"{args.filename}: {exc}", file=sys.stderr)
        return 1
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)
    return 0


def inject_document(doc: dict[str, Any], namespace: str, config: InjectionConfig) -> dict[str, Any]:
    """The document with its pod (or pod template) injected, or unchanged when skipped."""
    namespace = (doc.get("metadata") or {}).get("namespace") or namespace
    if doc.get("kind") == "Pod":
        return _inject_pod(doc, namespace, config)
    template = (doc.get("spec") or {}).get("template")
    if doc.get("kind") in _TEMPLATE_KINDS and isinstance(template, dict):
        return {
            **doc,
            "spec": {**doc["spec"], "template": _inject_pod(template, namespace, config)},
        }
    return doc


def _inject_pod(pod: dict[str, Any], namespace: str, config: InjectionConfig) -> dict[str, Any]:
    if not decide(pod, namespace, config.policy).inject:
        return pod
    return inject(pod, namespace, config).pod
