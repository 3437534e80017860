#!/bin/sh
# ec2spot image build, recipe {recipe}: Docker (and pulled images) baked into an image, so
# nothing is installed at boot. Powers the builder off when done; on a failure it stays up
# and the build times out, its console output showing why.
set -eux
{env}want='{version}'
pulls='{pulls}'
export DEBIAN_FRONTEND=noninteractive
retry() {{ for i in 1 2 3 4 5; do "$@" && return 0; sleep $((i * 3)); done; return 1; }}
if command -v apt-get >/dev/null 2>&1; then
  pkg=docker.io
  [ -z "$want" ] || pkg="docker.io=$want*"
  retry apt-get -o DPkg::Lock::Timeout=300 -q update
  retry apt-get -o DPkg::Lock::Timeout=300 -q -y install "$pkg"
elif command -v dnf >/dev/null 2>&1; then
  pkg=docker
  [ -z "$want" ] || pkg="docker-$want*"
  retry dnf -q -y install "$pkg"
else
  pkg=docker
  [ -z "$want" ] || pkg="docker-$want*"
  retry yum -q -y install "$pkg"
fi
# dockerd where docker-machine's drop-ins start it (Debian's docker.io: /usr/sbin).
if [ ! -x /usr/bin/dockerd ]; then ln -s "$(command -v dockerd || echo /usr/sbin/dockerd)" /usr/bin/dockerd; fi
systemctl start docker.service
for image in $pulls; do retry docker pull "$image"; done
# Docker starts on the machine with its TLS drop-in (the bootstrap's script restarts it), not
# before it at boot; its socket stays enabled, so docker-machine's SSH provisioner, whose
# `sudo docker version` waits for a daemon, starts it on first use.
systemctl stop docker.service docker.socket || true
systemctl disable docker.service || true
systemctl enable docker.socket
# After cloud-init's last stage: forget this instance (the image's machines are new ones),
# then power off; the build makes the image of the stopped builder.
systemd-run --no-block --unit=ec2spot-image-seal --property=After=cloud-final.service \
  sh -c 'cloud-init clean --logs; rm -f /etc/ssh/ssh_host_*; poweroff'
