#!/usr/bin/env bash
# Builds the two base images the Dockerfiles start FROM, debian:bookworm and debian:bookworm-slim,
# from Debian's apt archive with debootstrap, for machines that reach a Debian mirror but no
# container registry. Where Docker Hub is reachable this script is not needed: `docker build`
# pulls the official images of the same names.
#
# Usage (as root): docker/make-local-base.sh [WORK_DIR]
#   WORK_DIR (default /var/tmp/wspush-base) holds the debootstrap'd root; it is not removed, so a
#   second run only re-imports. Environment: MIRROR (default http://deb.debian.org/debian),
#   DOCKER (default docker; podman works too).
set -euo pipefail

work=${1:-/var/tmp/wspush-base}
mirror=${MIRROR:-http://deb.debian.org/debian}
docker=${DOCKER:-docker}
root=$work/bookworm

if [ "$(id -u)" -ne 0 ]; then echo "make-local-base.sh: run as root (debootstrap needs it)" >&2; exit 1; fi
command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap
}

if [ ! -x "$root/usr/bin/apt-get" ]; then
  rm -rf "$root"
  mkdir -p "$work"
  # minbase: Essential packages and apt, the same set the official debian images are made of.
  debootstrap --variant=minbase bookworm "$root" "$mirror"
fi

# The official images also follow bookworm-updates and the security archive; so must ours, or
# a rebuilt image would miss security fixes its Docker Hub twin gets.
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
# Like the official images: no apt cache in layers, no recommends dragged in by accident.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
echo 'APT::Install-Recommends "false";' >"$root/etc/apt/apt.conf.d/docker-no-recommends"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/cache/debconf/*-old

tar --numeric-owner -C "$root" -c . | "$docker" import - debian:bookworm

# -slim: the same root without documentation, man pages and translations, kept out of later
# installs by dpkg path excludes too (what the official -slim variant does).
slim=$work/bookworm-slim
rm -rf "$slim"
cp -a "$root" "$slim"
cat >"$slim/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
EOF
find "$slim/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$slim/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$slim"/usr/share/man/* "$slim"/usr/share/info/* "$slim"/usr/share/lintian "$slim"/usr/share/linda
find "$slim/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
tar --numeric-owner -C "$slim" -c . | "$docker" import - debian:bookworm-slim
rm -rf "$slim"

"$docker" image ls debian
