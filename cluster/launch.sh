#!/usr/bin/env bash
# Launch a cluster from one of the configs in cluster/, refusing while it still has a
# placeholder or opens anything to the whole internet.
#
#   cluster/launch.sh cluster/aws.yaml     -> ray up cluster/aws.yaml [options]
#   cluster/launch.sh cluster/gcp.yaml     -> ray up cluster/gcp.yaml [options]
#   cluster/launch.sh cluster/rayjob.yaml  -> kubectl apply -f cluster/rayjob.yaml [options]
#
# The configs ship with `SET-ME` wherever only you can know the value: the security group
# that admits SSH from your CIDR, the AMI id, the project, the service accounts, the image
# names and digests, the bucket, the CIDR that may reach the job API.  The cloud would refuse
# most of them too, but only halfway through (after `ray up` has made a key pair, or after
# `kubectl apply` has created the RayJob without its NetworkPolicy), so this checks first.
# Shell only launches: the checks are on the file's text, the tools do the rest.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: cluster/launch.sh CONFIG [options ...]

Run `ray up CONFIG [options]` (a Ray cluster-launcher config such as cluster/aws.yaml or
cluster/gcp.yaml) or `kubectl apply -f CONFIG [options]` (a Kubernetes manifest such as
cluster/rayjob.yaml) from the repository root, once CONFIG has no SET-ME placeholder left
and no world-open CIDR (0.0.0.0/0, ::/0).  cluster/README.md says what to fill in.

  -h, --help    this text
EOF
}

die() { # usage error: one line, exit 2
  echo "launch.sh: $*" >&2
  exit 2
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

case ${1:-} in
  -h | --help) usage; exit 0 ;;
  "") die "missing CONFIG: cluster/launch.sh cluster/aws.yaml|cluster/gcp.yaml|cluster/rayjob.yaml (see --help)" ;;
  -*) die "unknown option $1 (see --help)" ;;
esac
shown=$1 # as the user named it, for messages
shift
[[ -f $shown ]] || die "config $shown not found"
config="$(cd "$(dirname "$shown")" && pwd)/$(basename "$shown")"

# Each line's text before its comment (a `#` at the start or after a blank), trimmed and
# numbered (`N:text`); blank results left out.
code_lines() {
  sed -E 's/(^|[[:space:]])#.*$//; s/^[[:space:]]+//; s/[[:space:]]+$//' "$config" |
    grep -n '[^[:space:]]' || true
}

placeholders=$(code_lines | grep 'SET-ME' || true)
if [[ -n $placeholders ]]; then
  count=$(printf '%s\n' "$placeholders" | wc -l)
  first=$(printf '%s\n' "$placeholders" | head -n 1)
  die "$shown:${first%%:*}: SET-ME is a placeholder to fill in (\`${first#*:}\`), one of $count line(s) with one; cluster/README.md says what goes there"
fi

open=$(code_lines | grep -E '(^|[^0-9.])0\.0\.0\.0/0|::/0' | head -n 1 || true)
if [[ -n $open ]]; then
  die "$shown:${open%%:*}: a CIDR open to the whole internet (\`${open#*:}\`); name your own range"
fi

cd "$ROOT" # the launcher configs copy `.` (the repository) to every node
if grep -qE '^kind:[[:space:]]' "$config"; then
  command -v kubectl >/dev/null || die "kubectl is not on PATH"
  exec kubectl apply -f "$config" "$@"
fi
command -v ray >/dev/null || die "the ray CLI is not on PATH (activate the xstilts virtualenv)"
exec ray up "$config" "$@"
