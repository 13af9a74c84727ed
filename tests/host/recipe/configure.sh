#!/bin/sh
# Configures the test host tree. Runs inside the freshly debootstrapped tree (systemd-nspawn,
# not booted) as root, with the recipe at /root/recipe and Python wheels at /root/wheels.
# Facts behind each step: shared/TESTHOST.md.
set -eu
R=/root/recipe

echo rctl-testhost > /etc/hostname
printf '127.0.0.1 localhost rctl-testhost\n::1 localhost ip6-localhost\n' > /etc/hosts
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > /etc/fstab

# The non-root user every integration test runs as, with a subordinate ID range and linger
# (its user manager starts at boot).
useradd --create-home --uid 1000 --user-group --shell /bin/bash rctltest
echo rctltest:100000:65536 > /etc/subuid
echo rctltest:100000:65536 > /etc/subgid
mkdir -p /var/lib/systemd/linger
touch /var/lib/systemd/linger/rctltest

# Delegate the controllers to user managers (systemd only delegates memory and pids by default).
mkdir -p /etc/systemd/system/user@.service.d
printf '[Service]\nDelegate=cpu cpuset io memory pids\n' > /etc/systemd/system/user@.service.d/delegate.conf

# Persistent journal: journald only writes per-user journal files (which `journalctl --user`
# reads without extra groups) when storage is persistent.
mkdir -p /var/log/journal

# ssh is how the harness enters both tiers (a real PAM login session: XDG_RUNTIME_DIR, user bus).
install -d -m 0700 /root/.ssh /home/rctltest/.ssh
install -m 0600 /root/harness.pub /root/.ssh/authorized_keys
install -m 0600 -o rctltest -g rctltest /root/harness.pub /home/rctltest/.ssh/authorized_keys
chown rctltest:rctltest /home/rctltest/.ssh
cat > /etc/ssh/sshd_config.d/rctl-testhost.conf <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
CONF

# Tier vm: DHCP on the virtio NIC and a marker on the serial console once ssh and the
# user manager are up. Tier nspawn: a tap device with a default route, which pasta needs to
# find an upstream interface inside --private-network.
mkdir -p /etc/systemd/network
# qemu's restricted user network hands out no router; pasta and slirp4netns need a default
# route to pick their upstream interface (traffic past it still goes nowhere: restrict=on).
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n[Route]\nGateway=10.0.2.2\nGatewayOnLink=yes\n' \
    > /etc/systemd/network/80-vm.network
systemctl enable systemd-networkd.service
cat > /etc/systemd/system/rctl-ready.service <<'UNIT'
[Unit]
Description=Tell the test harness the host is ready
ConditionVirtualization=vm
After=ssh.service user@1000.service systemd-networkd-wait-online.service
Wants=user@1000.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo RCTL-TESTHOST-READY > /dev/ttyS0'
[Install]
WantedBy=multi-user.target
UNIT
cat > /etc/systemd/system/rctl-tap.service <<'UNIT'
[Unit]
Description=Fake uplink for user-mode networking inside systemd-nspawn --private-network
ConditionVirtualization=container
Before=network.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip tuntap add dev tap0 mode tap
ExecStart=/sbin/ip addr add 10.0.2.15/24 dev tap0
ExecStart=/sbin/ip link set tap0 up
ExecStart=/sbin/ip route add default via 10.0.2.2 dev tap0 onlink
[Install]
WantedBy=multi-user.target
UNIT
systemctl enable rctl-ready.service rctl-tap.service
# Waiting for a routable network only makes sense in the vm (nspawn has just lo and tap0).
mkdir -p /etc/systemd/system/systemd-networkd-wait-online.service.d
printf '[Unit]\nConditionVirtualization=vm\n' \
    > /etc/systemd/system/systemd-networkd-wait-online.service.d/vm-only.conf
echo LANG=C.UTF-8 > /etc/default/locale
# Nothing in the test host should wake up on its own during tests.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
    man-db.timer getty@tty1.service serial-getty@ttyS0.service console-getty.service \
    podman.service podman.socket podman-restart.service podman-auto-update.timer \
    podman-auto-update.service 2>/dev/null || true
# docker.io is here for its client only: the tests point it at rctl's socket, never a daemon.
systemctl mask docker.service docker.socket containerd.service

# The local registry: 127.0.0.1:5000, no auth (Debian's listens everywhere with htpasswd).
cat > /etc/docker/registry/config.yml <<'CONF'
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:5000
CONF
mkdir -p /etc/containers/registries.conf.d
cat > /etc/containers/registries.conf.d/50-rctl-testhost.conf <<'CONF'
[[registry]]
location = "127.0.0.1:5000"
insecure = true
CONF
# Debian ships no storage.conf: podman would fall back to vfs.
cat > /etc/containers/storage.conf <<'CONF'
[storage]
driver = "overlay"
CONF
# The nspawn tier has no pids controller for the user; podman refuses to start otherwise.
cat > /etc/containers/containers.conf <<'CONF'
[containers]
pids_limit = 0
CONF

# Python for rctl and its tests, installed offline from wheels the harness downloaded.
python3 -m venv /opt/rctl/venv
/opt/rctl/venv/bin/pip install -q --no-index --find-links /root/wheels -r $R/requirements.txt
printf 'PATH=/opt/rctl/venv/bin:$PATH\nexport PATH\n' > /etc/profile.d/rctl.sh
echo 'PATH="/opt/rctl/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"' > /etc/environment

apt-get clean
rm -rf /var/lib/apt/lists/*
