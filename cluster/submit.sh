#!/usr/bin/env bash
# Submit (or resubmit) an xstilts sweep to a Ray cluster as a Ray job.
#
# Shell only launches: everything about the sweep (what is done, what to resume) is decided
# by `xstilts run` on the cluster, so resubmitting the same command after any failure
# continues the sweep.  This script adds three things to plain `ray job submit`:
#
# * a submission id per attempt, `xstilts-<sweep>-<n>`, n = 1 + the highest n among the
#   cluster's existing submissions of this sweep (`ray job list`).  Deterministic (the same
#   cluster state gives the same id, no clock or random part), unique (Ray refuses a reused
#   id, so two racing submissions cannot both start), and it reads as "attempt n" in the
#   dashboard.  The cluster's own job table is the source of truth: a counter file on a
#   laptop would drift between laptops and would not know about a recreated cluster.  Using
#   the highest n rather than the count stays unique after `ray job delete`.
# * the token: RAY_AUTH_MODE=token, and the token itself is read by the `ray` CLI from
#   RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token (in that order).  It is never
#   put on a command line, printed or written anywhere by this script.
# * the runtime env (cluster/runtime_env.yaml) and the repository as working dir.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: cluster/submit.sh [--wait] [--print-id] SPEC [xstilts run options ...]

Submit `xstilts run SPEC [options]` to a Ray cluster with `ray job submit`, uploading this
repository as the job's working dir.  Resubmit the same command after any failure; the
sweep continues where it stopped.

  SPEC          a built-in spec name (quickstart, phang2020, scaling) or a YAML file inside
                this repository
  options       passed to `xstilts run`, e.g. --storage s3://bucket/prefix --name NAME
                (storage on a multi-node cluster must be shared: s3://, gs:// or NFS)
  --wait        stream the job's logs and exit with its status (default: return once
                submitted; follow with `ray job logs --follow ID`)
  --print-id    print the submission id this attempt would get, submit nothing
  -h, --help    this text

Environment:
  RAY_API_SERVER_ADDRESS / RAY_ADDRESS   the job API (default http://127.0.0.1:8265, i.e.
                                         through `ray dashboard cluster/aws.yaml`)
  RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH   the cluster's token (default ~/.ray/auth_token)
EOF
}

die() { # usage error: one line, exit 2
  echo "submit.sh: $*" >&2
  exit 2
}

fail() { # runtime error: one line, exit 1
  echo "submit.sh: $*" >&2
  exit 1
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The sweep name: --name from the options, else `name:` of a spec file, else the built-in's.
sweep_name() {
  local spec=$1 name="" prev="" arg
  shift
  for arg in "$@"; do
    [[ $prev == --name ]] && name=$arg
    [[ $arg == --name=* ]] && name=${arg#--name=}
    prev=$arg
  done
  if [[ -z $name && -f $spec ]]; then
    name=$(sed -n -E "s/^name:[[:space:]]*[\"']?([^\"'#[:space:]]+).*/\\1/p" "$spec" | head -n 1)
  fi
  if [[ -z $name ]]; then
    name=$(basename "$spec")
    name=${name%.yaml}
    name=${name%.yml}
  fi
  printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '-'
}

# 1 + the highest attempt number among `ray job list`'s submission ids of this sweep.
next_attempt() {
  local prefix="xstilts-$1-" listing err max=0 id n
  err=$(mktemp)
  if ! listing=$(ray job list --address "$ADDRESS" 2>"$err"); then
    local cause
    cause=$(grep -v '^[[:space:]]*$' "$err" | tail -n 1 || true)
    rm -f "$err"
    fail "cannot list jobs at $ADDRESS (${cause:-no output}); is the dashboard forwarded (ray dashboard cluster/aws.yaml) and the token right?"
  fi
  rm -f "$err"
  while IFS= read -r id; do
    n=${id#"$prefix"}
    if [[ $n =~ ^[0-9]+$ ]] && ((10#$n > max)); then
      max=$((10#$n))
    fi
  done < <(printf '%s\n' "$listing" | grep -oE "submission_id='[^']*'" | sed -E "s/^submission_id='(.*)'$/\\1/")
  echo $((max + 1))
}

wait_flag=0
print_id=0
while (($#)); do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --wait) wait_flag=1; shift ;;
    --print-id) print_id=1; shift ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
  esac
done
(($#)) || die "missing SPEC: cluster/submit.sh SPEC [xstilts run options] (see --help)"
spec=$1
shift

# A spec file travels inside the working dir, so it must live in the repository; on the
# cluster it is addressed relative to the repository root.
spec_arg=$spec
if [[ -f $spec ]]; then
  abs="$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")"
  [[ $abs == "$ROOT"/* ]] || die "spec file $spec is outside the repository ($ROOT), so the cluster cannot see it"
  spec_arg=${abs#"$ROOT"/}
elif [[ $spec == */* || $spec == *.yaml || $spec == *.yml ]]; then
  die "spec file $spec not found"
fi

command -v ray >/dev/null || die "the ray CLI is not on PATH (activate the xstilts virtualenv)"
export RAY_AUTH_MODE=token
if [[ -z ${RAY_AUTH_TOKEN:-} ]]; then
  token_file=${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}
  [[ -s $token_file ]] || die "no Ray auth token: put the cluster's token in ~/.ray/auth_token or set RAY_AUTH_TOKEN_PATH / RAY_AUTH_TOKEN"
fi
ADDRESS=${RAY_API_SERVER_ADDRESS:-${RAY_ADDRESS:-http://127.0.0.1:8265}}

sweep=$(sweep_name "$spec" "$@")
attempt=$(next_attempt "$sweep")
submission_id="xstilts-$sweep-$attempt"
if ((print_id)); then
  echo "$submission_id"
  exit 0
fi

cd "$ROOT"
metadata=$(printf '{"sweep": "%s", "attempt": "%s", "spec": "%s"}' "$sweep" "$attempt" "$spec_arg")
submit=(ray job submit --address "$ADDRESS" --submission-id "$submission_id"
  --runtime-env cluster/runtime_env.yaml --working-dir . --metadata-json "$metadata")
((wait_flag)) || submit+=(--no-wait)
echo "submit.sh: submitting $submission_id (attempt $attempt of sweep $sweep) to $ADDRESS" >&2
"${submit[@]}" -- xstilts run "$spec_arg" "$@"
if ! ((wait_flag)); then
  echo "submit.sh: follow with: ray job logs --follow $submission_id --address $ADDRESS" >&2
fi
