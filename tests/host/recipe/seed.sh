#!/bin/sh
# Seeds the test host's registry with the images written by images.py. Runs inside the tree
# (systemd-nspawn, private network) as root: starts the registry, pushes with skopeo (not rctl,
# so a bug in rctl's push can't hide a bug in its pull), stops it.
set -eu
OCI=$1
/usr/bin/docker-registry serve /etc/docker/registry/config.yml >/var/tmp/registry.log 2>&1 &
reg=$!
trap 'kill $reg 2>/dev/null || true' EXIT
ip link set lo up
for i in $(seq 1 100); do
    busybox wget -q -O /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break
    sleep 0.1
done
push() {  # push NAME [skopeo options]
    name=$1; shift
    skopeo copy --quiet --dest-tls-verify=false "$@" "oci:$OCI/$name:latest" "docker://127.0.0.1:5000/test/$name:latest"
    echo "seeded test/$name"
}
# busybox and httpd go up as Docker schema 2 so both manifest formats are served.
push busybox --format v2s2
push httpd --format v2s2
push layered
push debian
push big
push multiarch --all
# The registry runs as docker-registry: it must own what the pushes above created (as root).
chown -R docker-registry:docker-registry /var/lib/docker-registry
