#!/bin/sh
# Install what rctl needs beside its Python package (run as root, after `pip install`):
#
#   packaging/install.sh [--prefix /usr/local] [--python /opt/rctl/venv/bin/python]
#
# - the systemd user generator, PREFIX/lib/systemd/user-generators/rctl-user-generator,
#   which turns ~/.config/rctl/definitions/*.toml and /etc/rctl/definitions/USER/*.toml
#   into rctl-NAME.service units in every user's manager at daemon-reload;
# - /etc/rctl/definitions/, where an administrator puts definitions for named users;
# - the user units PREFIX/lib/systemd/user/rctl.socket, rctl.service (the Docker-compatible
#   API) and rctl-auto-update.timer, .service, for users to enable.
#
# --python defaults to the interpreter of the `rctl` on PATH (its shebang: a venv works).
set -eu
prefix=/usr
python=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --python) python=$2; shift 2 ;;
        *) echo "usage: $0 [--prefix DIR] [--python PATH]" >&2; exit 2 ;;
    esac
done
if [ -z "$python" ]; then
    rctl=$(command -v rctl) || { echo "rctl is not on PATH: pip install it first" >&2; exit 1; }
    python=$(head -n 1 "$rctl" | sed -n 's/^#! *//p' | cut -d' ' -f1)
fi
"$python" -I -c 'import rootless.definitions.generator' || {
    echo "$python cannot import rctl's generator" >&2; exit 1; }
here=$(dirname "$0")
dest="$prefix/lib/systemd/user-generators"
install -d "$dest" /etc/rctl/definitions
sed "s|@PYTHON@|$python|" "$here/rctl-user-generator.in" > "$dest/rctl-user-generator.tmp"
chmod 0755 "$dest/rctl-user-generator.tmp"
mv "$dest/rctl-user-generator.tmp" "$dest/rctl-user-generator"
units="$prefix/lib/systemd/user"
install -d "$units"
sed "s|@PYTHON@|$python|" "$here/rctl.service" > "$units/rctl.service"
rctl_bin=$(dirname "$python")/rctl
[ -x "$rctl_bin" ] || rctl_bin=$(command -v rctl)
sed "s|/usr/bin/rctl|$rctl_bin|" "$here/rctl-auto-update.service" > "$units/rctl-auto-update.service"
install -m 0644 "$here/rctl.socket" "$here/rctl-auto-update.timer" "$units/"
chmod 0644 "$units/rctl.service" "$units/rctl-auto-update.service"
echo "installed $dest/rctl-user-generator (Python: $python) and user units in $units"
echo "users: systemctl --user daemon-reload"
