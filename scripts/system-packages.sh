#!/usr/bin/env bash
# The Debian packages Vigil builds against, installed in one place (scripts/install.sh and
# .ci/run call this): OpenBLAS and LAPACKE (Sources/CBLAS), libpng and libjpeg-turbo
# (Sources/CPNG, Sources/CJPEG), pkg-config (which finds them); curl and openssl, the real TLS
# client and certificate maker the server tests use. Re-running is safe.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq libopenblas-dev liblapacke-dev libpng-dev libjpeg62-turbo-dev pkg-config curl openssl >/dev/null
