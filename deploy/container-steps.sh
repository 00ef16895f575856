#!/usr/bin/env bash
# deploy/Containerfile's steps as a script, for a machine without a container engine (this
# one: `docker` here is only the client, no engine runs). It does what the two stages do and
# checks what an image would hold:
#   1. builder: the Debian -dev packages, `swift build -c release --product vigil`;
#   2. stages the binary and the Swift runtime libraries ldd resolves under the toolchain into
#      a temporary root (the image's /usr/local/bin and /usr/lib/swift/linux);
#   3. lists every shared library the binary needs and checks each one is either staged (Swift
#      runtime) or shipped by one of the runtime stage's Debian packages (dpkg -S), nothing else;
#   4. runs the staged binary the way the image would: the staged Swift runtime only (the
#      toolchain's lib directory hidden with LD_LIBRARY_PATH pointing at the staged copy, the
#      toolchain off PATH), as uid/gid 10001 when run as root (setpriv), with the model package
#      read-only: `vigil inspect` and `vigil score` on models/sepsis.
# The release build takes ~10 minutes on 2 cores the first time; SKIP_BUILD=1 reuses it.
set -euo pipefail
cd "$(dirname "$0")/.."
# The Containerfile's runtime packages, and the packages apt installs with them (libopenblas0
# -> libopenblas0-pthread -> libgfortran5, libquadmath0; liblapacke -> liblapack3/libblas3,
# libtmglib3; everything -> libc6).
RUNTIME_PACKAGES="libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0 liblapacke liblapack3 libblas3 libtmglib3 libpng16-16 libjpeg62-turbo libstdc++6 libgcc-s1 zlib1g libc6"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

echo "== 1. builder stage: packages and release build"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  scripts/system-packages.sh
  timeout 1800 swift build -c release --product vigil 2>&1 | tail -3
fi
BIN="$(swift build -c release --show-bin-path)/vigil"
[ -x "$BIN" ] || { echo "no release binary at $BIN"; exit 1; }

echo "== 2. stage the runtime files"
ROOTFS="$(mktemp -d /tmp/vigil-image.XXXXXX)"
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/usr/lib/swift/linux" "$ROOTFS/models" "$ROOTFS/var/lib/vigil"
cp "$BIN" "$ROOTFS/usr/local/bin/vigil"
ldd "$ROOTFS/usr/local/bin/vigil" | awk '$3 ~ /\/swift\/linux\// { print $3 }' | xargs -r -I{} cp -L {} "$ROOTFS/usr/lib/swift/linux/"
cp -r models/sepsis "$ROOTFS/models/sepsis"
chmod -R a-w "$ROOTFS/models"
echo "staged: $(du -sh "$ROOTFS/usr/local/bin/vigil" | cut -f1) binary, $(ls "$ROOTFS/usr/lib/swift/linux" | wc -l) Swift runtime libraries ($(du -sh "$ROOTFS/usr/lib/swift/linux" | cut -f1))"

echo "== 3. shared libraries and where each comes from"
bad=0
while read -r name path; do
  if [ -e "$ROOTFS/usr/lib/swift/linux/$name" ]; then
    printf '  %-28s staged Swift runtime\n' "$name"
    continue
  fi
  pkg="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1 || true)"
  [ -z "$pkg" ] && pkg="$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1 || true)"
  if [ -n "$pkg" ] && [[ " $RUNTIME_PACKAGES " == *" $pkg "* ]]; then
    printf '  %-28s %s (Debian %s)\n' "$name" "$path" "$pkg"
  else
    printf '  %-28s %s: NOT from the runtime stage packages (%s)\n' "$name" "$path" "${pkg:-no package}"
    bad=1
  fi
done < <(ldd "$ROOTFS/usr/local/bin/vigil" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 } $1 ~ /^\// { n=$1; sub(/.*\//, "", n); print n, $1 }')
[ "$bad" = 0 ] || { echo "a library is missing from the Containerfile's runtime stage"; exit 1; }
echo "every library is staged or in: $RUNTIME_PACKAGES (the Containerfile installs libopenblas0, which pulls libopenblas0-pthread)"

echo "== 4. run the staged binary as the image would"
RUN=(env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$ROOTFS/usr/lib/swift/linux" HOME=/nonexistent)
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  chmod 0755 "$ROOTFS"
  chown 10001:10001 "$ROOTFS/var/lib/vigil" && chmod 0750 "$ROOTFS/var/lib/vigil"   # as in the image
  RUN+=(setpriv --reuid=10001 --regid=10001 --clear-groups)
  echo "running as uid 10001, gid 10001 (setpriv)"
else
  echo "running as $(id -un) (not root: no uid switch)"
fi
# The staged Swift runtime must be what loads (LD_LIBRARY_PATH comes before the binary's
# RUNPATH, which names the build machine's toolchain; the image has no toolchain and finds
# /usr/lib/swift/linux through ld.so.conf.d).
if "${RUN[@]}" /usr/bin/ldd "$ROOTFS/usr/local/bin/vigil" | grep "swift" | grep -v "$ROOTFS" ; then
  echo "a Swift runtime library resolves outside the staged root"; exit 1
fi
echo "every Swift runtime library resolves from the staged root"
cd "$ROOTFS"
timeout 60 "${RUN[@]}" "$ROOTFS/usr/local/bin/vigil" --version
timeout 60 "${RUN[@]}" "$ROOTFS/usr/local/bin/vigil" inspect --model "$ROOTFS/models/sepsis" > "$ROOTFS/inspect.txt"
head -8 "$ROOTFS/inspect.txt"
timeout 120 "${RUN[@]}" "$ROOTFS/usr/local/bin/vigil" score --model "$ROOTFS/models/sepsis" --input "$ROOTFS/models/sepsis/test_cohort.csv" \
    --output "$ROOTFS/var/lib/vigil/part-0.csv" --shard 0/2 --batch-size 500 --summary "$ROOTFS/var/lib/vigil/part-0.json"
echo "wrote $(wc -l < "$ROOTFS/var/lib/vigil/part-0.csv") lines as $(stat -c %U:%G "$ROOTFS/var/lib/vigil/part-0.csv" 2>/dev/null || stat -c %u:%g "$ROOTFS/var/lib/vigil/part-0.csv")"
# The read-only model package cannot be written by the service user.
if "${RUN[@]}" /bin/sh -c "touch '$ROOTFS/models/sepsis/x'" 2>/dev/null; then echo "the model package is writable"; exit 1; fi
echo "the model package is read-only for the service user"
echo "container steps: ok"
