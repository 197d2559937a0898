"""`helm test` for meshguard: health endpoints answer, and the webhook denies a bad VirtualService.

Runs in the meshguard image with the standard library only. Settings come from the environment
the test pod template sets; the paths can be pointed elsewhere to run it outside a cluster.
"""

import json
import os
import ssl
import sys
import urllib.error
import urllib.request

BAD_VIRTUAL_SERVICE = {
    "apiVersion": "networking.istio.io/v1",
    "kind": "VirtualService",
    "metadata": {"name": "meshguard-helm-test-bad"},
    # No hosts and a route without a destination host: invalid for Istio and for meshguard.
    "spec": {"hosts": [], "http": [{"route": [{"destination": {"host": ""}}]}]},
}


def check_health(base_url):
    """Problems with one admin endpoint; an empty list when /healthz and /readyz answer 200."""
    problems = []
    for path in ("/healthz", "/readyz"):
        url = base_url.rstrip("/") + path
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:
            problems.append(f"{url}: unreachable ({exc})")
            continue
        if status != 200:
            problems.append(f"{url}: HTTP {status}, expected 200")
    return problems


def check_webhook_denies(api, namespace, sa_dir, webhook_name):
    """Problems with the admission check; an empty list when the dry run was denied by us."""
    with open(os.path.join(sa_dir, "token")) as fh:
        token = fh.read().strip()
    context = ssl.create_default_context(cafile=os.path.join(sa_dir, "ca.crt"))
    url = f"{api}/apis/networking.istio.io/v1/namespaces/{namespace}/virtualservices?dryRun=All"
    request = urllib.request.Request(
        url,
        data=json.dumps(BAD_VIRTUAL_SERVICE).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15, context=context) as response:
            return [f"dry-run create of a bad VirtualService was accepted (HTTP {response.status})"]
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            message = json.loads(body).get("message", body)
        except ValueError:
            message = body
        if webhook_name in message and "denied the request" in message:
            print(f"ok: webhook denied the bad VirtualService: {message}")
            return []
        return [f"dry-run create failed, but not by {webhook_name}: HTTP {exc.code}: {message}"]
    except OSError as exc:
        return [f"{url}: unreachable ({exc})"]


def main():
    problems = []
    for base_url in filter(None, os.environ.get("MESHGUARD_TEST_ADMIN_URLS", "").split(",")):
        found = check_health(base_url)
        if not found:
            print(f"ok: {base_url} healthy and ready")
        problems += found
    webhook_name = os.environ.get("MESHGUARD_TEST_WEBHOOK", "")
    if webhook_name:
        host = os.environ.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        api = os.environ.get("MESHGUARD_TEST_API", f"https://{host}:{port}")
        problems += check_webhook_denies(
            api,
            os.environ.get("MESHGUARD_TEST_NAMESPACE", "default"),
            os.environ.get(
                "MESHGUARD_TEST_SA_DIR", "/var/run/secrets/kubernetes.io/serviceaccount"
            ),
            webhook_name,
        )
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
