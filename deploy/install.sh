#!/usr/bin/env bash
# Install (or update) carctl on the car's board from the offline bundle that `make dist` builds: no network, no
# compiler. Run from the unpacked bundle, as root:
#
#   sudo ./install.sh [--python python3.13] [--root DIR] [--no-system]
#
# It makes /opt/carctl/.venv from the bundle's wheels only, creates the system user carctl (groups dialout and
# video) if absent, copies configs/board.toml to /etc/carctl/board.toml only if there is none (an existing
# configuration is never overwritten), and installs the systemd unit without enabling or starting it: the building
# must be configured first (docs/deployment.md, docs/commissioning.md). Safe to run again to update.
#
# --root DIR    install under DIR (DIR/opt/carctl, DIR/etc/carctl, DIR/etc/systemd/system): tests, images
# --no-system   no user, no ownership, no systemd: for tests; root is then not required
# --python P    the Python to make the venv with (default python3): 3.11 to 3.13
set -euo pipefail

refuse() { echo "install.sh: $*" >&2; exit 2; }

bundle="$(cd "$(dirname "$0")" && pwd)"
root=""
system=1
python=python3
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || refuse "--root needs a directory."; root="${2%/}"; shift 2 ;;
    --no-system) system=0; shift ;;
    --python) [ $# -ge 2 ] || refuse "--python needs a Python command."; python="$2"; shift 2 ;;
    *) refuse "unknown option '$1' (options: --root DIR, --no-system, --python P)." ;;
  esac
done

if [ -n "$root" ] && [ "$system" = 1 ]; then
  refuse "--root installs into a folder, not this machine: give --no-system too (a user and a unit reload there would change this machine)."
fi
if [ "$system" = 1 ] && [ "$(id -u)" != 0 ]; then
  refuse "must be run as root (sudo), as it creates a user and installs a systemd unit."
fi
[ -d "$bundle/wheels" ] && [ -f "$bundle/TARGETS" ] || refuse "$bundle is not an unpacked carctl bundle (no wheels/)."
version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" \
  || refuse "cannot run the Python '$python'."
case "$version" in
  3.11|3.12|3.13) ;;
  *) refuse "'$python' is Python $version; carctl needs Python 3.11, 3.12 or 3.13." ;;
esac
# Debian splits venv's pip bootstrap into the package python3-venv: without it the venv would fail half-made.
"$python" -c 'import ensurepip, venv' 2>/dev/null \
  || refuse "'$python' has no venv module with pip (on Debian: apt install python3-venv, or python3.13-venv)."
# The machine type of this Python, not of the kernel: a 32-bit system on a 64-bit kernel reports aarch64 from uname.
machine="$("$python" -c 'import sysconfig; print(sysconfig.get_platform().split("-", 1)[-1])')"
target="cp${version/./}-$machine"
grep -qx "$target" "$bundle/TARGETS" \
  || refuse "this bundle has no wheels for $target (it has: $(paste -sd' ' "$bundle/TARGETS")); build it with make dist DIST_PY=$version DIST_ARCH=$machine."

prefix="$root/opt/carctl"
venv="$prefix/.venv"
etc="$root/etc/carctl"
units="$root/etc/systemd/system"

if [ -L "$etc/board.toml" ]; then
  refuse "$etc/board.toml is a symbolic link: the configuration must be a file of its own (its owner and mode are set)."
fi
# A venv of another Python (the OS upgraded from bookworm to trixie), or whose Python is gone, cannot be updated in
# place: make it anew.
if [ -e "$venv/pyvenv.cfg" ] && \
   [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$version" ]; then
  "$python" -m venv --clear "$venv"
fi
mkdir -p "$prefix"
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

# Only the bundle's wheels: --no-index keeps pip off the network, the constraints keep every package at its pin.
extras=platform,service
[ -d "$bundle/models" ] && extras=platform,service,face
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet install --no-index --find-links "$bundle/wheels"
     --only-binary=:all: -c "$bundle/requirements/constraints.txt")
"${pip[@]}" "carctl[$extras]"
# The version stays 0.1.0 from one build to the next: without this an update would keep the old code.
"${pip[@]}" --force-reinstall --no-deps "$bundle"/wheels/carctl-*.whl
if [ -d "$bundle/models" ]; then
  # face_recognition's dependency dlib would be built from source; dlib-bin is installed instead (the face extra).
  "${pip[@]}" --no-deps face_recognition==1.3.0
  "$venv/bin/python" "$bundle/tools/install_face_models.py" --from "$bundle/models"
fi

mkdir -p "$etc" "$units" "$prefix/share" "$root/usr/local/bin"
# On the technician's path: `carctl faults`, `carctl run --check`.
ln -sfn /opt/carctl/.venv/bin/carctl "$root/usr/local/bin/carctl"   # as seen from the installed system
# The state and log directories, as the unit's StateDirectory and LogsDirectory make them at its first start: made
# now so that `carctl run --check` can pass, and a foreground `carctl run` can write, before the service has run.
mkdir -p "$root/var/lib/carctl" "$root/var/log/carctl"
chmod 0750 "$root/var/lib/carctl" "$root/var/log/carctl"
cp -r "$bundle/deploy/mosquitto" "$prefix/share/"
if [ -e "$etc/board.toml" ]; then
  echo "kept the existing $etc/board.toml (the bundle's is $bundle/configs/board.toml)"
else
  cp "$bundle/configs/board.toml" "$etc/board.toml"
  echo "installed $etc/board.toml: configure the building, the car and the ports in it"
fi
cp "$bundle/deploy/carctl.service" "$units/carctl.service"

if [ "$system" = 1 ]; then
  if ! id carctl >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      --groups dialout,video carctl
  fi
  # Also for a user made by hand or by an older install: the serial ports (dialout) and the camera (video).
  usermod -a -G dialout,video carctl
  # The configuration and keys: the firmware reads them; only root changes them (docs/security.md). The folder is
  # 0755 as the unit's ConfigurationDirectoryMode has it; board.toml is for root and group carctl.
  chown root:carctl "$etc/board.toml"
  chown carctl:carctl "$root/var/lib/carctl" "$root/var/log/carctl"
  chmod 0755 "$etc"
  chmod 0640 "$etc/board.toml"
  systemctl daemon-reload
fi

echo "carctl installed in $venv. The unit is installed but neither enabled nor started: configure $etc/board.toml"
echo "for this building first (docs/commissioning.md), check the board with"
echo "  sudo -u carctl carctl run --check --config /etc/carctl/board.toml"
echo "and only then, with the precautions of docs/commissioning.md section 3: systemctl enable --now carctl"
echo "(an update: with the car out of service and the service stopped first, the same check, then systemctl start carctl)."
