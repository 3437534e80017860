#!/bin/sh
# ec2spot --{flag}: start dockerd with docker-machine's TLS drop-in. cloud-init runs
# this part before the user's own scripts (by file name); their failure does not stop it.
set -eu
{env}dockerd={dockerd}
want='{version}'
retry() {{ for i in 1 2 3 4 5; do "$@" && return 0; sleep $((i * 3)); done; return 1; }}
# Where this image's Docker package put dockerd (Debian's docker.io: /usr/sbin).
found() {{
  for d in "$dockerd" /usr/bin/dockerd /usr/sbin/dockerd /usr/local/bin/dockerd; do
    if [ -x "$d" ]; then echo "$d"; return 0; fi
  done
  return 1
}}
# dockerd is there, at the wanted version if one is pinned.
ready() {{
  d=$(found) || return 1
  [ -z "$want" ] && return 0
  case "$("$d" --version)" in "Docker version $want"*) return 0 ;; esac
  return 1
}}
if ! command -v systemctl >/dev/null 2>&1; then
  echo "ec2spot: this image has no systemd; the TLS bootstrap starts dockerd with a systemd drop-in" >&2
  exit 1
fi
if ! ready; then
  if command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    pkg=docker.io
    [ -z "$want" ] || pkg="docker.io=$want*"
    retry apt-get -o DPkg::Lock::Timeout=300 -q update
    retry apt-get -o DPkg::Lock::Timeout=300 -q -y --allow-downgrades install "$pkg"
  elif command -v dnf >/dev/null 2>&1; then
    pkg=docker
    [ -z "$want" ] || pkg="docker-$want*"
    retry dnf -q -y install "$pkg"
  elif command -v yum >/dev/null 2>&1; then
    pkg=docker
    [ -z "$want" ] || pkg="docker-$want*"
    retry yum -q -y install "$pkg"
  else
    echo "ec2spot: no dockerd on this image and no apt-get, dnf or yum to install Docker" >&2
    exit 1
  fi
  if ! ready; then
    echo "ec2spot: Docker ${{want:-(any version)}} is not installed after the install" >&2
    exit 1
  fi
fi
d=$(found)
if [ "$d" != "$dockerd" ]; then
  mkdir -p "$(dirname "$dockerd")"
  ln -sf "$d" "$dockerd"
fi
systemctl daemon-reload
systemctl enable docker.service
systemctl restart docker.service
