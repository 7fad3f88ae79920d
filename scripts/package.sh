#!/usr/bin/env bash
# Builds kiln's Debian package (docs/deploy.md):
#
#   scripts/package.sh [BUILD_DIR [OUT_DIR]]
#
# BUILD_DIR: a build tree to take the binaries from (default: build-package,
# configured and built here as Release). OUT_DIR (default dist/) receives
# kiln_<version>_<arch>.deb, and its path is printed.
#
# The package: the binaries in /usr/lib/kiln, /usr/bin/kiln linking to them,
# the skills and image recipes in /usr/share/kiln, /etc/kiln/kiln.yaml as a
# conffile, the systemd unit kiln.service, logrotate for kiln serve's own
# log, the docs in /usr/share/doc/kiln; the kiln user and group made on
# install. Its dependencies are found from the binaries (dpkg-shlibdeps).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build-package}
out=${2:-dist}
if [[ -z ${1:-} ]]; then
  "$root/scripts/build.sh" "$build" -DCMAKE_BUILD_TYPE=Release
fi
[[ -f $build/CMakeCache.txt ]] || { echo "package: $build is not a build tree" >&2; exit 1; }
version=$(sed -n 's/^project(kiln VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
arch=$(dpkg --print-architecture)
stage=$(mktemp -d "${TMPDIR:-/tmp}/kiln-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/kiln

cmake --install "$build" --prefix "$pkg/usr" >/dev/null
strip --strip-unneeded "$pkg"/usr/lib/kiln/* 2>/dev/null || true
install -d "$pkg/usr/bin" "$pkg/etc/kiln" "$pkg/lib/systemd/system" "$pkg/etc/logrotate.d" \
  "$pkg/usr/share/doc/kiln" "$pkg/DEBIAN"
ln -s ../lib/kiln/kiln "$pkg/usr/bin/kiln"
install -m 0644 packaging/kiln.yaml "$pkg/etc/kiln/kiln.yaml"
install -m 0644 packaging/kiln.service "$pkg/lib/systemd/system/kiln.service"
install -m 0644 packaging/logrotate "$pkg/etc/logrotate.d/kiln"
install -m 0644 README.md docs/*.md "$pkg/usr/share/doc/kiln/"
for script in postinst prerm postrm; do
  install -m 0755 "packaging/$script" "$pkg/DEBIAN/$script"
done
echo /etc/kiln/kiln.yaml >"$pkg/DEBIAN/conffiles"

# The shared libraries' packages, as dpkg-shlibdeps finds them.
mkdir -p "$stage/debian"
printf 'Source: kiln\n\nPackage: kiln\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O --ignore-missing-info \
  -e kiln/usr/lib/kiln/kiln-controller -e kiln/usr/lib/kiln/kiln-proxy-forward \
  -e kiln/usr/lib/kiln/kiln-runtime 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: kiln
Version: $version
Architecture: $arch
Maintainer: kiln developers <kiln@localhost>
Installed-Size: $size
Depends: ${shlibs:+$shlibs, }git, adduser
Recommends: mmdebstrap, postgresql-client
Section: devel
Priority: optional
Description: software factory runtime for on-prem runner hosts
 kiln takes an issue through agent roles (triage, spec, implementation,
 review, verification) to a pull request. Each agent run happens in a
 sandbox kiln builds from Linux namespaces, mounts, cgroups and seccomp, and
 leaves a signed, tamper-evident session log that can be replayed for an
 audit. Several hosts can share one queue on PostgreSQL.
CONTROL
mkdir -p "$out"
deb=$out/kiln_${version}_${arch}.deb
dpkg-deb --root-owner-group --build "$pkg" "$deb" >/dev/null
echo "$deb"
