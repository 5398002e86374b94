#!/usr/bin/env bash
# Outpost installer for Raspberry Pi OS / Debian (arm64, armhf, x86_64).
#
#   sudo systemd/install.sh                 # from a built checkout or release tarball
#   sudo systemd/install.sh --board rpi-4   # skip board detection
#   systemd/install.sh --root /mnt/image --board rpi-zero-2w --skip-deps
#   sudo systemd/install.sh --uninstall [--purge]
#
# Idempotent: running it again changes only what differs, never overwrites
# /etc/outpost/outpost.yaml, and restarts the service only when something
# changed. See docs/install.md and `install.sh --help`.
set -euo pipefail

readonly UNIT_NAME=outpost.service
readonly SERVICE_USER=outpost
readonly SERVICE_GROUP=outpost
# Owns file share directories others write to (docs/file-share.md). Not $SERVICE_GROUP: that one
# also owns the admin socket, and a program in it controls the gateway (deploys functions).
readonly SHARE_GROUP=outpost-share
readonly CONFIG_DIR=/etc/outpost
readonly CONFIG_FILE=/etc/outpost/outpost.yaml
readonly STATE_DIR=/var/lib/outpost
readonly RUNTIME_DIR=/run/outpost
readonly UNIT_FILE=/etc/systemd/system/outpost.service
readonly DROPIN_DIR=/etc/systemd/system/outpost.service.d
readonly DROPIN_FILE=/etc/systemd/system/outpost.service.d/board.conf
readonly WANTS_LINK=/etc/systemd/system/multi-user.target.wants/outpost.service
readonly SYSUSERS_FILE=/etc/sysusers.d/outpost.conf
readonly TMPFILES_FILE=/etc/tmpfiles.d/outpost.conf
readonly CLI_WRAPPER=/usr/local/bin/outpost
readonly MARKER=.outpost-install
readonly DEPS_STAMP=node_modules/.outpost-deps
readonly MIN_NODE_MAJOR=20

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
SOURCE_DIR=$(cd -- "$SCRIPT_DIR/.." && pwd -P)
readonly SCRIPT_DIR SOURCE_DIR
readonly BOARDS_DIR=$SOURCE_DIR/firmware-configs/boards
readonly PROFILE_TOOL=$SCRIPT_DIR/board-profile.mjs

BOARD=""
ROOT=""
PREFIX=/opt/outpost
NODE_BIN=""
MACHINE=""
DRY_RUN=0
UNINSTALL=0
PURGE=0
NO_START=0
SKIP_DEPS=0
BUILD=0
CHANGES=0
SYSTEMD_LIVE=0
LIST_BOARDS=0
NODE_VERSION=""
RENDERED=""

usage() {
  cat <<'EOF'
Usage: install.sh [options]

Installs the Outpost gateway daemon as the systemd service outpost.service.

Options:
  --board NAME     board profile from firmware-configs/boards/ (default: detected
                   from /proc/device-tree/model, else `uname -m`, else minimal-128mb)
  --list-boards    print the board profiles and exit
  --prefix DIR     where the application goes (default: /opt/outpost)
  --root DIR       install into DIR as a file system root (an SD card image, a
                   chroot): every path is prefixed with DIR; no useradd, chown or
                   systemctl (printed as "skipped"); the user is created at boot by
                   systemd-sysusers and the service enabled by a wants/ symlink
  --arch MACHINE   target machine as `uname -m` prints it (default: this machine's);
                   used for board detection and the architecture check
  --node PATH      Node.js binary the service runs (default: `command -v node`)
  --build          run `npm run build` in the checkout first (needs its dev
                   dependencies: npm ci); without it dist/ must already be built
  --skip-deps      don't run `npm ci --omit=dev` in the prefix (offline, tests;
                   install the production dependencies yourself later)
  --no-start       don't enable or start the service
  --dry-run        print what would change, change nothing
  --uninstall      remove the service and the application; keeps /etc/outpost,
                   /var/lib/outpost and the outpost user
  --purge          with --uninstall: also remove /etc/outpost, /var/lib/outpost,
                   the outpost user and the groups outpost and outpost-share
  -h, --help       this help
EOF
}

say() { printf 'outpost-install: %s\n' "$*"; }
warn() { printf 'outpost-install: warning: %s\n' "$*" >&2; }
die() {
  printf 'outpost-install: error: %s\n' "$*" >&2
  exit 1
}

# Path of a target file on this machine (ROOT prefixed).
t() { printf '%s%s' "$ROOT" "$1"; }

changed() {
  CHANGES=$((CHANGES + 1))
  if ((DRY_RUN)); then say "would $*"; else say "$*"; fi
}

# Commands that act on the running system (users, ownership, systemctl): printed
# under --dry-run, skipped under --root.
system_cmd() {
  if ((DRY_RUN)); then
    say "would run: $*"
  elif [[ -n $ROOT ]]; then
    say "skipped (--root): $*"
  else
    "$@"
  fi
}

need_value() {
  [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value (see --help)"
}

parse_args() {
  while (($# > 0)); do
    case $1 in
      --board) need_value "$@"; BOARD=$2; shift 2 ;;
      --board=*) BOARD=${1#*=}; shift ;;
      --root) need_value "$@"; ROOT=$2; shift 2 ;;
      --root=*) ROOT=${1#*=}; shift ;;
      --prefix) need_value "$@"; PREFIX=$2; shift 2 ;;
      --prefix=*) PREFIX=${1#*=}; shift ;;
      --node) need_value "$@"; NODE_BIN=$2; shift 2 ;;
      --node=*) NODE_BIN=${1#*=}; shift ;;
      --arch) need_value "$@"; MACHINE=$2; shift 2 ;;
      --arch=*) MACHINE=${1#*=}; shift ;;
      --skip-deps) SKIP_DEPS=1; shift ;;
      --build) BUILD=1; shift ;;
      --no-start) NO_START=1; shift ;;
      --dry-run) DRY_RUN=1; shift ;;
      --uninstall) UNINSTALL=1; shift ;;
      --purge) PURGE=1; shift ;;
      --list-boards) LIST_BOARDS=1; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage >&2; die "unknown option $1" ;;
    esac
  done
  if ((PURGE && !UNINSTALL)); then die "--purge only goes with --uninstall"; fi
  # Paths end up in a unit file and in rm -rf: keep them plain.
  [[ $PREFIX =~ ^/[A-Za-z0-9._/-]+$ && $PREFIX != *..* ]] ||
    die "--prefix must be an absolute path of letters, digits and ._-/ (got '$PREFIX')"
  PREFIX=${PREFIX%/}
  case $PREFIX in
    "" | /bin | /boot | /dev | /etc | /home | /lib | /lib64 | /opt | /proc | /root | /run | /sbin | /srv | /sys | /tmp | \
      /usr | /usr/bin | /usr/lib | /usr/local | /usr/local/bin | /usr/local/lib | /usr/share | /var | /var/lib)
      die "--prefix ${PREFIX:-/} is a system directory; use e.g. /opt/outpost" ;;
  esac
  if [[ -n $ROOT ]]; then
    [[ $ROOT == /* ]] || ROOT=$PWD/$ROOT
    [[ -d $ROOT ]] || die "--root $ROOT is not a directory"
    ROOT=$(cd -- "$ROOT" && pwd -P)
    [[ $ROOT != / ]] || ROOT=""
  fi
}

# --- checks --------------------------------------------------------------------

find_node() {
  if [[ -z $NODE_BIN ]]; then
    NODE_BIN=$(command -v node || true)
  fi
  if [[ -z $NODE_BIN || ! -x $NODE_BIN ]]; then
    die "Node.js ${MIN_NODE_MAJOR} or newer is required and 'node' was not found${NODE_BIN:+ at $NODE_BIN}.
  Debian 13 / Raspberry Pi OS trixie:  sudo apt-get install -y nodejs npm
  Debian 12 / Raspberry Pi OS bookworm (its nodejs is 18): use NodeSource, e.g.
      curl -fsSL https://deb.nodesource.com/setup_22.x | sudo -E bash - && sudo apt-get install -y nodejs
  or the official linux-arm64 / linux-armv7l / linux-x64 tarball unpacked under /usr/local.
  Under sudo, a node from nvm is not on the PATH: pass --node /path/to/node (outside /home)."
  fi
  [[ $NODE_BIN == /* ]] || NODE_BIN=$(cd -- "$(dirname -- "$NODE_BIN")" && pwd -P)/$(basename -- "$NODE_BIN")
  [[ $NODE_BIN =~ ^/[A-Za-z0-9._/+-]+$ ]] || die "the path of node ($NODE_BIN) has characters a unit file can't take"
  case $NODE_BIN in
    /home/* | /root/* | /run/user/*)
      local problem="node is at $NODE_BIN, which the service can't reach (ProtectHome=yes, and the outpost user can't read it).
  Install Node.js system-wide (see docs/install.md) or copy it: sudo install -m 0755 $NODE_BIN /usr/local/bin/node
  and run the installer with --node /usr/local/bin/node."
      if [[ -n $ROOT ]]; then warn "$problem"; else die "$problem"; fi ;;
  esac
  local version major
  version=$("$NODE_BIN" -p 'process.versions.node' 2>/dev/null) || die "$NODE_BIN does not run"
  major=${version%%.*}
  [[ $major =~ ^[0-9]+$ ]] || die "can't read the version of $NODE_BIN ($version)"
  if ((major < MIN_NODE_MAJOR)); then
    die "Node.js $version at $NODE_BIN is too old: Outpost needs ${MIN_NODE_MAJOR} or newer.
  Debian 12 / Raspberry Pi OS bookworm ship 18: install 20+ from NodeSource
      curl -fsSL https://deb.nodesource.com/setup_22.x | sudo -E bash - && sudo apt-get install -y nodejs
  or from the official tarball (see docs/install.md)."
  fi
  NODE_VERSION=$version
  if [[ -n $ROOT && ! -x $(t "$NODE_BIN") ]]; then
    warn "$NODE_BIN does not exist under $ROOT: the unit runs $NODE_BIN, so install Node.js there too (or pass --node)"
  fi
}

check_arch() {
  [[ -n $MACHINE ]] || MACHINE=$(uname -m)
  case $MACHINE in
    arm64) MACHINE=aarch64 ;;
    amd64) MACHINE=x86_64 ;;
    armhf) MACHINE=armv7l ;;
  esac
  case $MACHINE in
    aarch64 | armv7l | armv8l | x86_64) ;;
    armv6l)
      warn "armv6 (Pi 1, Zero, Zero W): Node.js ${MIN_NODE_MAJOR}+ has no official build for it; continuing with $NODE_BIN ($NODE_VERSION)" ;;
    *) die "unsupported architecture $MACHINE: Outpost supports aarch64 (arm64), armv7l (armhf) and x86_64" ;;
  esac
  if [[ -z $ROOT ]]; then
    local node_arch
    node_arch=$("$NODE_BIN" -p 'process.arch')
    case $node_arch in
      arm64 | arm | x64) ;;
      *) die "this Node.js is built for $node_arch; Outpost supports arm64, arm (armhf) and x64" ;;
    esac
  fi
}

profile_tool() {
  "$NODE_BIN" "$PROFILE_TOOL" "$@" --boards "$BOARDS_DIR" --modules "$(t "$PREFIX")" --modules "$SOURCE_DIR"
}

# Picks the board and renders its config and drop-in into $RENDERED.
choose_board() {
  RENDERED=$(mktemp -d)
  if [[ -n $BOARD ]]; then
    profile_tool render --out "$RENDERED" --board "$BOARD" ||
      die "can't use board profile '$BOARD' (see above; --list-boards lists them)"
    say "board: $BOARD (--board)"
  else
    local model="" model_file
    model_file=$(t /proc/device-tree/model)
    if [[ -r $model_file ]]; then
      model=$(tr -d '\0' <"$model_file")
    fi
    profile_tool render --out "$RENDERED" --model "$model" --machine "$MACHINE" ||
      die "board detection failed (see above)"
    BOARD=$(<"$RENDERED/board")
    say "board: $BOARD ($(<"$RENDERED/reason"); override with --board)"
  fi
  local archs
  archs=$(<"$RENDERED/arch")
  if [[ " $archs " != *" $MACHINE "* ]]; then
    warn "board profile $BOARD lists architectures '$archs', not $MACHINE"
  fi
  check_node_memory "$(<"$RENDERED/memory")"
}

# The smallest boards' budget (64 MB idle) is kept with Node.js 20: 22 and 24 have a larger binary
# and V8 heap at rest (64 → 75 and 81 MB RSS idle on x86_64 with minimal-128mb's settings).
check_node_memory() { # MEMORY_MB
  local major=${NODE_VERSION%%.*}
  if (($1 <= 128 && major > 20)); then
    warn "Node.js $NODE_VERSION takes about 11-17 MB more at rest than Node.js 20, past the 64 MB idle budget of $BOARD ($1 MB of RAM); on such a board use Node.js 20 (Debian 13's nodejs package)"
  fi
}

cleanup() {
  if [[ -n $RENDERED && -d $RENDERED ]]; then rm -rf -- "$RENDERED"; fi
}

# --- file operations (all idempotent, all honour --dry-run) -----------------------

same_mode() { # FILE MODE
  local current
  current=$(stat -c '%a' -- "$1")
  (((8#$current) == (8#$2)))
}

ensure_dir() { # DIR MODE [OWNER:GROUP]
  local dir=$1 mode=$2 owner=${3:-}
  local path
  path=$(t "$dir")
  if [[ ! -d $path ]]; then
    changed "create $dir"
    ((DRY_RUN)) || { mkdir -p -- "$path" && chmod "$mode" -- "$path"; }
  elif ! same_mode "$path" "$mode"; then
    changed "chmod $mode $dir"
    ((DRY_RUN)) || chmod "$mode" -- "$path"
  fi
  if [[ -n $owner ]]; then set_owner "$dir" "$owner"; fi
}

set_owner() { # PATH OWNER:GROUP
  [[ -z $ROOT ]] || return 0 # systemd-tmpfiles fixes it at boot (see TMPFILES_FILE)
  local path
  path=$(t "$1")
  if [[ -e $path ]] && [[ $(stat -c '%U:%G' -- "$path") == "$2" ]]; then return 0; fi
  if ((DRY_RUN)); then
    changed "chown $2 $1"
  elif getent passwd "${2%%:*}" >/dev/null && getent group "${2#*:}" >/dev/null; then
    changed "chown $2 $1"
    chown "$2" -- "$path"
  fi
}

# Writes stdin to FILE when its content or mode differs.
write_file() { # FILE MODE
  local file=$1 mode=$2 path tmp
  path=$(t "$file")
  tmp=$(mktemp)
  cat >"$tmp"
  if [[ -f $path ]] && cmp -s -- "$tmp" "$path"; then
    rm -f -- "$tmp"
    if ! same_mode "$path" "$mode"; then
      changed "chmod $mode $file"
      ((DRY_RUN)) || chmod "$mode" -- "$path"
    fi
    return 0
  fi
  if [[ -e $path ]]; then changed "update $file"; else changed "write $file"; fi
  if ((DRY_RUN)); then
    rm -f -- "$tmp"
    return 0
  fi
  mkdir -p -- "$(dirname -- "$path")"
  install -m "$mode" -- "$tmp" "$path.outpost-new"
  rm -f -- "$tmp"
  mv -f -- "$path.outpost-new" "$path"
}

copy_file() { # SRC FILE MODE
  write_file "$2" "$3" <"$1"
}

ensure_symlink() { # LINK TARGET
  local path
  path=$(t "$1")
  if [[ -L $path && $(readlink -- "$path") == "$2" ]]; then return 0; fi
  changed "link $1 -> $2"
  ((DRY_RUN)) && return 0
  mkdir -p -- "$(dirname -- "$path")"
  ln -sfn -- "$2" "$path"
}

remove_path() { # PATH (target path; refuses anything outside the known locations)
  local target=$1 path
  case $target in
    "$PREFIX" | "$PREFIX"/* | "$CONFIG_DIR" | "$STATE_DIR" | "$RUNTIME_DIR" | "$UNIT_FILE" | "$DROPIN_DIR" | "$DROPIN_DIR"/* | "$WANTS_LINK" | "$SYSUSERS_FILE" | "$TMPFILES_FILE" | "$CLI_WRAPPER") ;;
    *) die "internal error: refusing to remove $target" ;;
  esac
  path=$(t "$target")
  [[ -e $path || -L $path ]] || return 0
  changed "remove $target"
  ((DRY_RUN)) || rm -rf -- "$path"
}

# Mirrors directory SRC into target directory DEST: copies what differs and
# removes files that are no longer in SRC.
sync_dir() { # SRC DEST
  local src=$1 dest=$2 rel mode
  [[ -d $src ]] || return 0
  ensure_dir "$dest" 0755
  while IFS= read -r -d '' rel; do
    rel=${rel#./}
    if [[ -d $src/$rel ]]; then
      ensure_dir "$dest/$rel" 0755
    else
      mode=0644
      [[ -x $src/$rel ]] && mode=0755
      copy_file "$src/$rel" "$dest/$rel" "$mode"
    fi
  done < <(cd -- "$src" && find . -mindepth 1 \( -type d -o -type f \) -print0 | LC_ALL=C sort -z)
  [[ -d $(t "$dest") ]] || return 0
  while IFS= read -r -d '' rel; do
    rel=${rel#./}
    if [[ ! -e $src/$rel ]]; then remove_path "$dest/$rel"; fi
  done < <(cd -- "$(t "$dest")" && find . -mindepth 1 -depth -print0)
}

# --- install steps -----------------------------------------------------------------

ensure_built() {
  if ((BUILD)); then
    [[ -d $SOURCE_DIR/node_modules/typescript ]] ||
      die "--build needs the dev dependencies: cd $SOURCE_DIR && npm ci"
    if ((DRY_RUN)); then
      say "would build: npm run build in $SOURCE_DIR"
      return 0
    fi
    say "building: npm run build in $SOURCE_DIR"
    # Build as the user who ran sudo, so the checkout doesn't get root-owned files.
    local -a as_user=()
    if [[ $(id -u) -eq 0 && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
      as_user=(runuser -u "$SUDO_USER" --)
    fi
    (cd -- "$SOURCE_DIR" && "${as_user[@]}" npm run build) || die "npm run build failed in $SOURCE_DIR"
  fi
  [[ -f $SOURCE_DIR/dist/bin/outpostd.js ]] ||
    die "$SOURCE_DIR/dist/bin/outpostd.js is missing. Build it first (cd $SOURCE_DIR && npm ci && npm run build),
  or pass --build, or install from a release tarball (npm pack), which contains dist/.
  On a 512 MB board, better build on another machine and copy the tarball over."
}

ensure_user() {
  # For --root images (and as a safety net on a live system) systemd-sysusers
  # creates the user at boot from this file.
  write_file "$SYSUSERS_FILE" 0644 <<EOF
# Outpost service account, written by Outpost's install.sh (systemd-sysusers(8)).
u $SERVICE_USER - "Outpost IoT gateway" $STATE_DIR /usr/sbin/nologin
m $SERVICE_USER dialout
g $SHARE_GROUP -
m $SERVICE_USER $SHARE_GROUP
EOF
  if [[ -n $ROOT ]]; then
    say "skipped (--root): useradd --system $SERVICE_USER; groupadd --system $SHARE_GROUP; usermod -aG dialout,$SHARE_GROUP $SERVICE_USER (systemd-sysusers does it at boot)"
    return 0
  fi
  if ! getent group "$SERVICE_GROUP" >/dev/null; then
    changed "create group $SERVICE_GROUP"
    system_cmd groupadd --system "$SERVICE_GROUP"
  fi
  if ! getent passwd "$SERVICE_USER" >/dev/null; then
    changed "create user $SERVICE_USER"
    system_cmd useradd --system --gid "$SERVICE_GROUP" --home-dir "$STATE_DIR" --no-create-home \
      --shell /usr/sbin/nologin --comment "Outpost IoT gateway" "$SERVICE_USER"
  fi
  if ! getent group "$SHARE_GROUP" >/dev/null; then
    changed "create group $SHARE_GROUP"
    system_cmd groupadd --system "$SHARE_GROUP"
  fi
  if ! id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx "$SHARE_GROUP"; then
    changed "add $SERVICE_USER to group $SHARE_GROUP"
    system_cmd usermod -aG "$SHARE_GROUP" "$SERVICE_USER"
  fi
  if getent group dialout >/dev/null; then
    if ! id -nG "$SERVICE_USER" 2>/dev/null | tr ' ' '\n' | grep -qx dialout; then
      changed "add $SERVICE_USER to group dialout"
      system_cmd usermod -aG dialout "$SERVICE_USER"
    fi
  else
    warn "group dialout does not exist: serial ports may not be accessible"
  fi
}

install_app() {
  ensure_dir "$PREFIX" 0755
  copy_file "$SOURCE_DIR/package.json" "$PREFIX/package.json" 0644
  if [[ -f $SOURCE_DIR/package-lock.json ]]; then
    copy_file "$SOURCE_DIR/package-lock.json" "$PREFIX/package-lock.json" 0644
  fi
  local dir
  # docs/: install.md, and the others it and the unit point at (file-share.md, sync.md)
  for dir in dist firmware-configs systemd docs; do
    sync_dir "$SOURCE_DIR/$dir" "$PREFIX/$dir"
  done
}

write_marker() {
  write_file "$PREFIX/$MARKER" 0644 <<EOF
# Written by Outpost's install.sh; uninstall removes this directory only when this file is in it.
prefix=$PREFIX
board=$BOARD
node=$NODE_BIN
EOF
}

install_deps() {
  if ((SKIP_DEPS)); then
    say "skipped production dependencies (--skip-deps): run 'npm ci --omit=dev' in $(t "$PREFIX") before starting"
    return 0
  fi
  local lock=package.json stamp abi_arch
  [[ -f $SOURCE_DIR/package-lock.json ]] && lock=package-lock.json
  abi_arch=$("$NODE_BIN" -p 'process.versions.modules + "-" + process.arch + "-" + process.platform')
  stamp="$(sha256sum <"$SOURCE_DIR/$lock" | cut -d' ' -f1) node-abi-$abi_arch"
  if [[ -f $(t "$PREFIX/$DEPS_STAMP") && $(<"$(t "$PREFIX/$DEPS_STAMP")") == "$stamp" ]]; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is required to install the production dependencies (sudo apt-get install -y npm, or use --skip-deps)"
  local -a npm_cmd=(npm ci --omit=dev --no-audit --no-fund)
  [[ $lock == package.json ]] && npm_cmd=(npm install --omit=dev --no-audit --no-fund --no-package-lock)
  changed "install production dependencies: ${npm_cmd[*]} (in $PREFIX)"
  ((DRY_RUN)) && return 0
  # Native addons (better-sqlite3, serialport) come prebuilt for arm64/armhf/x64;
  # without a prebuilt binary they compile, which needs: apt-get install build-essential python3
  (cd -- "$(t "$PREFIX")" && PATH="$(dirname -- "$NODE_BIN"):$PATH" "${npm_cmd[@]}") ||
    die "${npm_cmd[*]} failed in $(t "$PREFIX") (compiling native addons needs: sudo apt-get install -y build-essential python3)"
  printf '%s\n' "$stamp" >"$(t "$PREFIX/$DEPS_STAMP")"
}

install_config() {
  ensure_dir "$CONFIG_DIR" 0750 "root:$SERVICE_GROUP"
  local path
  path=$(t "$CONFIG_FILE")
  if [[ -e $path ]]; then
    say "kept $CONFIG_FILE (never overwritten; delete it to regenerate from the $BOARD profile)"
    # the drop-in's memory limits follow the new board; the kept file's sizes (cache, connections) do not
    local written_for
    written_for=$(sed -n 's/^board:[[:space:]]*\([A-Za-z0-9._-]*\).*/\1/p' "$path" | head -n 1)
    if [[ -n $written_for && $written_for != "$BOARD" ]]; then
      warn "$CONFIG_FILE was written for board $written_for, this install is for $BOARD: its sizes (store cache, connections, threads) may not fit; compare it with 'node $SOURCE_DIR/systemd/board-profile.mjs config --boards $SOURCE_DIR/firmware-configs/boards --board $BOARD'"
    fi
  else
    write_file "$CONFIG_FILE" 0640 <"$RENDERED/outpost.yaml"
  fi
  set_owner "$CONFIG_FILE" "root:$SERVICE_GROUP"
  ensure_dir "$STATE_DIR" 0750 "$SERVICE_USER:$SERVICE_GROUP"
  write_file "$TMPFILES_FILE" 0644 <<EOF
# Outpost, written by Outpost's install.sh (tmpfiles.d(5)): the daemon reads its
# configuration as group $SERVICE_GROUP and nobody else does.
d $CONFIG_DIR 0750 root $SERVICE_GROUP -
z $CONFIG_FILE 0640 root $SERVICE_GROUP -
EOF
}

validate_config() {
  local daemon
  daemon=$(t "$PREFIX/dist/bin/outpostd.js")
  if ((DRY_RUN)); then
    return 0
  fi
  if ((SKIP_DEPS)) || [[ ! -f $daemon || ! -d $(t "$PREFIX/node_modules") ]]; then
    say "not checked $CONFIG_FILE (no dependencies in $PREFIX yet): once they are, run $NODE_BIN $PREFIX/dist/bin/outpostd.js --config $CONFIG_FILE --print-config"
    return 0
  fi
  local output
  if ! output=$("$NODE_BIN" "$daemon" --config "$(t "$CONFIG_FILE")" --print-config 2>&1); then
    die "$CONFIG_FILE is not a valid configuration:
$output"
  fi
  say "checked $CONFIG_FILE (outpostd --print-config)"
}

install_unit() {
  local unit
  unit=$(<"$SOURCE_DIR/systemd/outpost.service")
  # The template runs /usr/bin/node from /opt/outpost; use this node and --prefix.
  unit=${unit//\/opt\/outpost\//@PREFIX@/}
  unit=${unit//\/usr\/bin\/node/"$NODE_BIN"}
  unit=${unit//@PREFIX@/"$PREFIX"}
  printf '%s\n' "$unit" | write_file "$UNIT_FILE" 0644
  ensure_dir "$DROPIN_DIR" 0755
  write_file "$DROPIN_FILE" 0644 <"$RENDERED/board.conf"
  write_file "$CLI_WRAPPER" 0755 <<EOF
#!/bin/sh
# Outpost admin CLI, written by Outpost's install.sh. The admin socket is
# group $SERVICE_GROUP: add yourself with  sudo usermod -aG $SERVICE_GROUP "\$USER"  (then log in again).
OUTPOST_SOCKET="\${OUTPOST_SOCKET:-$RUNTIME_DIR/admin.sock}"
export OUTPOST_SOCKET
exec "$NODE_BIN" "$PREFIX/dist/bin/outpost.js" "\$@"
EOF
}

start_service() {
  local had_changes=$1
  if [[ -n $ROOT ]]; then
    if ((NO_START)); then
      say "not enabled (--no-start): the service does not start at the target's boot until enabled there (systemctl enable $UNIT_NAME)"
    else
      ensure_symlink "$WANTS_LINK" "$UNIT_FILE"
      say "skipped (--root): systemctl daemon-reload; the service starts on the target's next boot"
    fi
    return 0
  fi
  if ((!SYSTEMD_LIVE)); then
    warn "systemd is not running here: skipped systemctl (start it later: systemctl enable --now $UNIT_NAME)"
    return 0
  fi
  if ((had_changes)); then system_cmd systemctl daemon-reload; fi
  if ((NO_START)); then
    say "not enabled or started (--no-start): sudo systemctl enable --now $UNIT_NAME"
    return 0
  fi
  if ! systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null; then
    changed "enable $UNIT_NAME"
    system_cmd systemctl enable "$UNIT_NAME"
  fi
  if ((had_changes)) || ! systemctl is-active --quiet "$UNIT_NAME"; then
    changed "(re)start $UNIT_NAME"
    system_cmd systemctl restart "$UNIT_NAME"
  fi
}

do_install() {
  find_node
  check_arch
  ensure_built
  [[ -f $PROFILE_TOOL && -d $BOARDS_DIR ]] || die "$SOURCE_DIR is not an Outpost checkout (no systemd/board-profile.mjs or firmware-configs/boards)"
  # Before any change: a board name mistyped must not leave an application copied
  # and its dependencies installed. The profiles are read with the checkout's
  # js-yaml (a release tarball bundles it).
  choose_board
  ensure_user
  install_app
  install_deps
  write_marker
  install_config
  validate_config
  install_unit
  local had_changes=0
  ((CHANGES == 0)) || had_changes=1
  start_service "$had_changes"
  if ((DRY_RUN)); then
    say "dry run: $CHANGES change(s) would be made, none were"
  elif ((CHANGES == 0)); then
    say "already up to date (0 changes)"
  else
    say "done ($CHANGES change(s)); logs: journalctl -u outpost -f"
    if [[ -z $ROOT && -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
      say "to use the 'outpost' CLI without sudo: sudo usermod -aG $SERVICE_GROUP $SUDO_USER (then log in again)"
    fi
  fi
}

do_uninstall() {
  if [[ -z $ROOT ]] && ((SYSTEMD_LIVE)); then
    if systemctl is-enabled --quiet "$UNIT_NAME" 2>/dev/null || systemctl is-active --quiet "$UNIT_NAME" 2>/dev/null; then
      changed "stop and disable $UNIT_NAME"
      system_cmd systemctl disable --now "$UNIT_NAME"
    fi
  fi
  remove_path "$WANTS_LINK"
  remove_path "$UNIT_FILE"
  local dropin_dir others
  dropin_dir=$(t "$DROPIN_DIR")
  if [[ -d $dropin_dir ]]; then
    others=$(find "$dropin_dir" -mindepth 1 -maxdepth 1 ! -name board.conf -printf '%f ')
    if [[ -z $others ]] || ((PURGE)); then
      remove_path "$DROPIN_DIR"
    else
      remove_path "$DROPIN_FILE"
      say "kept $DROPIN_DIR: it holds your own drop-ins ($others)"
    fi
  fi
  remove_path "$CLI_WRAPPER"
  remove_path "$TMPFILES_FILE"
  remove_path "$SYSUSERS_FILE"
  local prefix_path
  prefix_path=$(t "$PREFIX")
  if [[ -f $prefix_path/$MARKER ]]; then
    remove_path "$PREFIX"
  elif [[ -e $prefix_path ]]; then
    warn "kept $PREFIX: it has no $MARKER, so this installer did not make it"
  fi
  if [[ -z $ROOT ]] && ((SYSTEMD_LIVE && CHANGES > 0)); then
    system_cmd systemctl daemon-reload
  fi
  if ((PURGE)); then
    remove_path "$CONFIG_DIR"
    remove_path "$STATE_DIR"
    remove_path "$RUNTIME_DIR"
    if [[ -n $ROOT ]]; then
      say "skipped (--root): userdel $SERVICE_USER; groupdel $SERVICE_GROUP; groupdel $SHARE_GROUP"
    else
      if getent passwd "$SERVICE_USER" >/dev/null; then
        changed "delete user $SERVICE_USER"
        system_cmd userdel "$SERVICE_USER"
      fi
      if getent group "$SERVICE_GROUP" >/dev/null; then
        changed "delete group $SERVICE_GROUP"
        system_cmd groupdel "$SERVICE_GROUP"
      fi
      if getent group "$SHARE_GROUP" >/dev/null; then
        changed "delete group $SHARE_GROUP"
        system_cmd groupdel "$SHARE_GROUP"
      fi
    fi
  else
    say "kept $CONFIG_DIR and $STATE_DIR (and the $SERVICE_USER user); --purge removes them"
  fi
  if ((DRY_RUN)); then
    say "dry run: $CHANGES change(s) would be made, none were"
  else
    say "uninstalled ($CHANGES change(s))"
  fi
}

main() {
  trap cleanup EXIT
  parse_args "$@"
  if ((LIST_BOARDS)); then
    find_node
    profile_tool list
    exit 0
  fi
  if [[ -z $ROOT ]] && ((!DRY_RUN)) && [[ $(id -u) -ne 0 ]]; then
    die "run as root: sudo $0 $* (or try --dry-run, or --root DIR)"
  fi
  if [[ -z $ROOT && -d /run/systemd/system ]]; then SYSTEMD_LIVE=1; fi
  if [[ -n $ROOT ]]; then say "target root: $ROOT"; fi
  if ((UNINSTALL)); then do_uninstall; else do_install; fi
}

main "$@"
