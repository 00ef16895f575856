# Sourced by deploy/check-replicas.sh and deploy/prometheus/check.sh (from the repository root):
# installs Debian's prometheus package (prometheus and promtool) when either is missing, and
# sets BIN to the vigil binary (VIGIL_BIN, else a built one, else builds the debug one).
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
BIN="${VIGIL_BIN:-}"
if [ -z "$BIN" ]; then
  for b in .build/debug/vigil .build/release/vigil; do [ -x "$b" ] && BIN="$b" && break; done
fi
[ -n "$BIN" ] || { swift build --product vigil; BIN=.build/debug/vigil; }
