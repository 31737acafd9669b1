#!/usr/bin/env bash
# Install edge-gate on a Debian-family system (Debian, Raspberry Pi OS, Ubuntu) as a systemd service.
#
#   sudo scripts/install.sh                  install or upgrade; safe to run again
#   sudo scripts/install.sh --uninstall      remove the service, code and venv; keep config and data
#   sudo scripts/install.sh --uninstall --purge   ... and the config, the data and the user
#   scripts/install.sh --prefix DIR          write the same tree under DIR (a staging root): no user,
#                                            no systemctl/udevadm, nothing outside DIR is touched
#
# What goes where (under DIR with --prefix):
#   /opt/edge-gate/              the code (a copy of this tree) and its venv (.venv), models/ verified
#   /etc/edge-gate/gate.toml     from config/gate.example.toml; never overwritten once there
#   /etc/edge-gate/credentials/  files for LoadCredential= (mqtt-password), root-only (0700, files 0600)
#   /var/lib/edge-gate/          the SQLite store and the gate's key (the edge-gate user's only: 0700, files 0600)
#   /etc/systemd/system/         edge-gate.service, edge-gate@.service (enabled: edge-gate.service),
#                                edge-gate-hub.service (the community hub, for the box next to the broker; not enabled)
#   /etc/udev/rules.d/           99-edge-gate.rules (/dev/gate-thermal, /dev/gate-relay)
#   /usr/local/bin/gate          link to the venv's `gate` command
#
# Options for tests and offline staging: --venv-from PATH links an existing venv (which must have
# edge-gate installed) instead of building one; --no-venv skips the venv and the model fetch.
set -euo pipefail
umask 022  # the code, units and rules are read by others; the data dir and credentials are made private below

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX=""
MODE=install
PURGE=0
VENV_FROM=""
NO_VENV=0
PY="${PYTHON:-python3}"
SERVICE_USER=edge-gate

usage() { sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
    --prefix=*) PREFIX="${1#*=}"; shift ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    --venv-from) [ $# -ge 2 ] || die "--venv-from needs a path"; VENV_FROM="$2"; shift 2 ;;
    --venv-from=*) VENV_FROM="${1#*=}"; shift ;;
    --no-venv) NO_VENV=1; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PY="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

[ "$PURGE" = 0 ] || [ "$MODE" = uninstall ] || die "--purge goes with --uninstall"
if [ -n "$PREFIX" ]; then
  case "$PREFIX" in /*) ;; *) PREFIX="$(pwd)/$PREFIX" ;; esac
  PREFIX="${PREFIX%/}"
  [ -n "$PREFIX" ] || die "--prefix / is the live system: run without --prefix instead"
  STAGING=1
else
  STAGING=0
  [ "$(id -u)" = 0 ] || die "run as root (sudo), or use --prefix DIR for a staging tree"
fi

OPT_RT=/opt/edge-gate                      # paths as the running system sees them
OPT="$PREFIX$OPT_RT"
ETC="$PREFIX/etc/edge-gate"
VAR="$PREFIX/var/lib/edge-gate"
UNITS="$PREFIX/etc/systemd/system"
RULES="$PREFIX/etc/udev/rules.d"
BIN="$PREFIX/usr/local/bin"

systemd_running() { [ "$STAGING" = 0 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }
udev_running() { [ "$STAGING" = 0 ] && command -v udevadm >/dev/null 2>&1 && [ -d /run/udev ]; }

ha_purge() {  # the Home Assistant device goes with the gate (empty retained configs), if it was turned on
  local py="$OPT/.venv/bin/python" cfg="$ETC/gate.toml"
  [ -x "$py" ] && [ -f "$cfg" ] || return 0
  "$py" -c 'import sys; from edge.config import load_config
sys.exit(0 if load_config(sys.argv[1]).homeassistant.enabled else 1)' "$cfg" 2>/dev/null || return 0
  say "removing the gate's Home Assistant device (gate ha purge)"
  timeout 60 "$py" -m edge ha purge --config "$cfg" \
    || say "the Home Assistant device was not removed (broker unreachable?): run gate ha purge before reinstalling"
}

uninstall() {
  if systemd_running; then
    say "stopping and disabling the services"
    systemctl disable --now edge-gate.service >/dev/null 2>&1 || true
    for unit in $(systemctl list-units --plain --no-legend 'edge-gate@*' 2>/dev/null | awk '{print $1}'); do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
  if [ "$PURGE" = 1 ]; then ha_purge; fi  # while the venv and the config are still there
  say "removing units, udev rules, code and venv"
  rm -f "$UNITS/edge-gate.service" "$UNITS/edge-gate@.service" "$UNITS/edge-gate-hub.service" "$RULES/99-edge-gate.rules"
  [ -L "$BIN/gate" ] && rm -f "$BIN/gate"
  rm -rf "$OPT"  # a linked venv (--venv-from) is a symlink here: removed, not followed
  if systemd_running; then systemctl daemon-reload; fi
  if udev_running; then udevadm control --reload || true; fi
  if [ "$PURGE" = 1 ]; then
    say "purging config and data ($ETC, $VAR)"
    rm -rf "$ETC" "$VAR"
    if [ "$STAGING" = 0 ] && getent passwd "$SERVICE_USER" >/dev/null; then
      userdel "$SERVICE_USER" || true
    fi
  else
    say "kept config $ETC and data $VAR (--purge removes them)"
  fi
}

check_system() {
  "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
    || die "edge-gate needs Python >= 3.11 ($PY); set --python or PYTHON="
  if [ "$STAGING" = 0 ] && [ "$NO_VENV" = 0 ] && [ -z "$VENV_FROM" ] && ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    command -v apt-get >/dev/null 2>&1 || die "$PY cannot create venvs and this is not a Debian-family system"
    say "installing python3-venv"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
  fi
}

make_user() {
  [ "$STAGING" = 0 ] || return 0
  getent group gpio >/dev/null || groupadd --system gpio  # Raspberry Pi OS has it; SupplementaryGroups= needs it
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    say "creating system user $SERVICE_USER"
    local group=(--user-group)
    getent group "$SERVICE_USER" >/dev/null && group=(--gid "$SERVICE_USER")  # left by an earlier purge
    useradd --system "${group[@]}" --home-dir /var/lib/edge-gate --no-create-home \
      --shell /usr/sbin/nologin --comment "edge-gate service" "$SERVICE_USER"
  fi
  usermod -a -G dialout,video,gpio "$SERVICE_USER"
}

copy_tree() {
  say "copying $SRC to $OPT"
  mkdir -p "$OPT"
  # replace the code, keep the venv and already verified model files
  find "$OPT" -mindepth 1 -maxdepth 1 ! -name .venv ! -name models -exec rm -rf {} +
  tar -C "$SRC" -cf - \
    --exclude=./.git --exclude=./.venv --exclude=./.cache --exclude=./.demo \
    --exclude=.mypy_cache --exclude=.pytest_cache --exclude=.ruff_cache --exclude=.hypothesis \
    --exclude=__pycache__ --exclude='*.egg-info' --exclude=./build --exclude=./dist \
    --exclude=./test-artifacts --exclude='*.part' . | tar -C "$OPT" --no-same-owner -xf -
}

make_venv() {
  if [ "$NO_VENV" = 1 ]; then
    say "no venv (--no-venv): $OPT/.venv and the models are left as they are"
    return 0
  fi
  if [ -n "$VENV_FROM" ]; then
    [ -x "$VENV_FROM/bin/gate" ] || die "--venv-from $VENV_FROM has no bin/gate (install edge-gate into it first)"
    [ -L "$OPT/.venv" ] || rm -rf "$OPT/.venv"
    ln -sfn "$(cd "$VENV_FROM" && pwd)" "$OPT/.venv"
    say "linked venv $VENV_FROM"
    return 0
  fi
  [ -L "$OPT/.venv" ] && rm -f "$OPT/.venv"
  if [ ! -x "$OPT/.venv/bin/python" ]; then
    say "creating venv $OPT/.venv"
    "$PY" -m venv "$OPT/.venv"
  fi
  say "installing edge-gate and its dependencies into the venv (this takes a while the first time)"
  "$OPT/.venv/bin/python" -m pip install -q --upgrade pip
  # editable: the code runs from $OPT_RT, so models/ and config/ resolve next to it as in the repo
  "$OPT/.venv/bin/python" -m pip install -q -e "$OPT"
  "$OPT/.venv/bin/python" -m compileall -q "$OPT/edge" "$OPT/drivers" >/dev/null  # the service cannot write there
}

fetch_models() {
  [ "$NO_VENV" = 0 ] || return 0
  say "fetching and verifying the models into $OPT/models"
  local tmp
  tmp="$(mktemp)"
  printf '[vision]\nmodels_dir = "%s"\n' "$OPT/models" > "$tmp"
  "$OPT/.venv/bin/gate" models fetch --config "$tmp" || { rm -f "$tmp"; die "model fetch failed"; }
  "$OPT/.venv/bin/gate" models verify --config "$tmp" >/dev/null || { rm -f "$tmp"; die "model verification failed"; }
  rm -f "$tmp"
}

# The data dir and the credentials are their owner's only (docs/security.md, "File modes"); what an older
# version left open (0750 and 0640 under UMask=0027) is tightened, and said so.
make_private() {
  local loose
  loose=$(find "$@" ! -type l -perm /077 -print | wc -l)
  if [ "$loose" -gt 0 ]; then
    say "tightening $loose entries open to other users under $* (now their owner's only)"
    chmod -R go= "$@"
  fi
}

verify_private() {
  local bad
  bad=$(find "$VAR" "$ETC/credentials" ! -type l -perm /077 -print -quit)
  [ -z "$bad" ] || die "still open to other users: $bad (fix: chmod -R go= $VAR $ETC/credentials)"
  [ "$(stat -c %a "$VAR")" = 700 ] || die "$VAR is mode $(stat -c %a "$VAR"), not 700 (fix: chmod 700 $VAR)"
}

write_config() {
  mkdir -p "$ETC/credentials"
  [ -d "$VAR" ] || install -d -m 0700 "$VAR"
  chmod 0750 "$ETC"
  chmod 0700 "$ETC/credentials"
  make_private "$VAR" "$ETC/credentials"
  chmod 0700 "$VAR"
  if [ -e "$ETC/gate.toml" ]; then
    say "kept existing $ETC/gate.toml"
  else
    say "writing $ETC/gate.toml from the example"
    install -m 0640 "$SRC/config/gate.example.toml" "$ETC/gate.toml"
  fi
  # LoadCredential= refuses to start the service when the file is missing: an empty one means "no password"
  [ -e "$ETC/credentials/mqtt-password" ] || install -m 0600 /dev/null "$ETC/credentials/mqtt-password"
  if [ "$STAGING" = 0 ]; then
    chown root:"$SERVICE_USER" "$ETC" "$ETC/gate.toml"
    chown "$SERVICE_USER:$SERVICE_USER" "$VAR"
  fi
}

install_units() {
  say "installing units and udev rules"
  mkdir -p "$UNITS" "$RULES"
  install -m 0644 "$SRC/systemd/edge-gate.service" "$SRC/systemd/edge-gate@.service" \
    "$SRC/systemd/edge-gate-hub.service" "$UNITS/"
  install -m 0644 "$SRC/systemd/99-edge-gate.rules" "$RULES/"
  mkdir -p "$BIN"
  ln -sfn "$OPT_RT/.venv/bin/gate" "$BIN/gate"
  if udev_running; then
    udevadm control --reload
    udevadm trigger --subsystem-match=tty --action=add || true
  fi
  if systemd_running; then
    systemctl daemon-reload
    systemctl enable edge-gate.service
    say "enabled edge-gate.service: check the wiring with 'gate selftest --config /etc/edge-gate/gate.toml',"
    say "then 'systemctl start edge-gate' (or restart it after an upgrade)"
  elif [ "$STAGING" = 0 ]; then
    say "systemd is not running here: enable the unit on the target with 'systemctl enable --now edge-gate'"
  fi
}

if [ "$MODE" = uninstall ]; then
  uninstall
  exit 0
fi
check_system
make_user
copy_tree
make_venv
fetch_models
write_config
install_units
verify_private
say "installed into ${PREFIX:-/}"
say "the gate makes its signing key at its first start ({data_dir}/gate-key.pem, mode 0600); then run"
say "  gate keys show --json --config /etc/edge-gate/gate.toml   and give that line to the community admin"
