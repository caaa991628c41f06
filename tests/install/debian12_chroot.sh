#!/bin/sh
# Installs the Debian packages with apt on a fresh Debian 12 root and uses them there: the check
# that `apt install ./x.deb` works with nothing of the build machine present. Not run by ctest
# (it needs root, network access to a Debian mirror and a few minutes); run it by hand:
#
#   debootstrap --variant=minbase bookworm ROOT http://deb.debian.org/debian
#   tests/install/debian12_chroot.sh ROOT BUILD_DIR
#
# BUILD_DIR holds the packages (`make deb`). Steps: libtailtrace0 alone (must not bring gRPC);
# then the other three; build tests/install/app.c with pkg-config (shared and static) and CMake
# inside the root; run them with OTEL_TRACES_EXPORTER=none and, when a receiver's HTTP port is
# given as RECEIVER_HTTP_PORT (tests/peers/otlp_receiver.py on this host: a chroot shares the
# loopback), exporting to it; run the packaged collector's --help and --validate.
set -eu
root=$1
build=$2
src=$(cd "$(dirname "$0")/../.." && pwd)
run() { chroot "$root" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

mkdir -p "$root/tmp/debs" "$root/tmp/app"
cp "$build"/*.deb "$root/tmp/debs/"
cp "$src/tests/install/app.c" "$root/tmp/app/"
cp "$src/tests/install/cmake-consumer/CMakeLists.txt" "$root/tmp/app/CMakeLists.txt"
sed -i 's|\.\./app\.c|app.c|' "$root/tmp/app/CMakeLists.txt"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
trap 'umount "$root/proc"' EXIT

run apt-get update -qq
echo "== apt install ./libtailtrace0_*.deb"
# What it brings is what dpkg lists after it and not before (minbase itself has libstdc++6 for
# apt, so the question is what the package adds).
run dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/before"
run sh -c 'apt-get install -y -q /tmp/debs/libtailtrace0_*.deb'
run dpkg-query -W -f '${Package}\n' | sort > "$root/tmp/after"
added=$(comm -13 "$root/tmp/before" "$root/tmp/after")
echo "libtailtrace0 added $(echo "$added" | wc -l) packages:" $added
if echo "$added" | grep -E "grpc|absl|libstdc"; then
  echo "FAIL: libtailtrace0 brought gRPC, Abseil or libstdc++" >&2
  exit 1
fi
echo "ok: libtailtrace0 installed without gRPC, Abseil or libstdc++"

echo "== apt install the other three, and a compiler"
run sh -c 'apt-get install -y -q /tmp/debs/libtailtrace-grpc0_*.deb /tmp/debs/libtailtrace-dev_*.deb /tmp/debs/tailtrace-collector_*.deb'
run apt-get install -y -q --no-install-recommends gcc libc6-dev pkg-config cmake make

echo "== build with pkg-config and CMake"
run sh -c 'cd /tmp/app && cc app.c -o app_shared $(pkg-config --cflags --libs tailtrace) &&
  cc app.c -o app_static $(pkg-config --cflags tailtrace) "$(pkg-config --variable=libdir tailtrace)/libtailtrace.a" -Wl,--as-needed $(pkg-config --static --libs tailtrace) &&
  cmake -S . -B b >/dev/null && cmake --build b >/dev/null'
run sh -c 'ldd /tmp/app/app_shared | grep -E "grpc|absl|libstdc" && exit 1 || true'
for exe in app_shared app_static b/app_shared b/app_static b/app_grpc; do
  run env OTEL_TRACES_EXPORTER=none "/tmp/app/$exe"
  if [ -n "${RECEIVER_HTTP_PORT:-}" ]; then
    run env INSTALL_CHECK_LABEL="chroot-$(echo $exe | tr / -)" \
      OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$RECEIVER_HTTP_PORT" "/tmp/app/$exe"
  fi
done
if [ -n "${RECEIVER_GRPC_PORT:-}" ]; then
  run env INSTALL_CHECK_LABEL=chroot-grpc-ondemand OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$RECEIVER_GRPC_PORT" /tmp/app/app_shared
fi

echo "== the collector"
run tailtrace-collector --help
run tailtrace-collector --config /etc/tailtrace/tailtrace-collector.yaml --validate
echo "all chroot checks passed"
