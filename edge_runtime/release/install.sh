#!/usr/bin/env bash
# Install the fer-edge bundle this script lies in: Raspberry Pi OS / Debian 12 or 13, 64-bit, Python 3.11+.
#
#   PREFIX/releases/VERSION/        the bundle's files, and venv -> ../../venvs/KEY
#   PREFIX/venvs/KEY/               made with --system-site-packages; shared by releases with the same wheels
#   PREFIX/current -> releases/VERSION   switched atomically (ln -sfn + mv -T)
#   /etc/systemd/system/fer-edge.service runs PREFIX/current/venv/bin/fer-edge run
#
# When PREFIX/allowed_signers or /etc/fer-edge/allowed_signers exists (ssh-keygen's allowed-signers format),
# only a bundle whose manifest.json one of its keys signed (`fer-edge bundle --sign KEY`) is installed.
#
# A release older than the current one is refused unless --allow-downgrade is given (a replayed old signed
# bundle is still signed), but for the rollback case: the install.sh of a release already installed in
# PREFIX/releases, run from there. A bundle whose version is installed with other files is refused: a changed
# bundle needs a new version.
#
# Safe to repeat: every step checks first, and a second run says there is nothing to do.
set -euo pipefail

PREFIX=/opt/fer-edge
PYTHON=python3
DRY_RUN=0 VERIFY_ONLY=0 SWITCH=1 SERVICE=1 SYSTEMD=auto ALLOW_DOWNGRADE=0
UNIT=fer-edge.service
DEFAULT_PREFIX=/opt/fer-edge  # the path the bundled unit is written for

usage() {
  cat <<EOF
usage: install.sh [--prefix DIR] [--python PYTHON] [--dry-run] [--verify-only] [--no-switch]
                  [--no-service] [--no-systemd] [--allow-downgrade]

Install this fer-edge bundle into DIR/releases/VERSION (default prefix $DEFAULT_PREFIX), make it
current, and install, enable and (re)start $UNIT.

  --prefix DIR     install root (a plain folder for a test root)
  --python PYTHON  the interpreter the venv is made from (default python3)
  --dry-run        say what would change, change nothing
  --verify-only    check every file against manifest.json and stop
  --no-switch      install the release but leave 'current' where it is
  --no-service     leave the unit and the service alone
  --no-systemd     write the unit into DIR/$UNIT, never call systemctl (a root without systemd)
  --allow-downgrade  install a release older than the current one (a rollback by hand from an
                   installed release's own install.sh needs no flag)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --python) PYTHON=${2:?--python needs an interpreter}; shift 2 ;;
    --python=*) PYTHON=${1#*=}; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --verify-only) VERIFY_ONLY=1; shift ;;
    --no-switch) SWITCH=0; shift ;;
    --no-service) SERVICE=0; shift ;;
    --no-systemd) SYSTEMD=0; shift ;;
    --allow-downgrade) ALLOW_DOWNGRADE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done

HERE=$(cd "$(dirname "$0")" && pwd -P)
say() { echo "install.sh: $*"; }
die() { echo "install.sh: error: $*" >&2; exit 1; }
# The prefix goes into paths and the unit's ExecStart: absolute, and nothing systemd or a shell reads specially.
case "$PREFIX" in
  /*) ;;
  *) die "--prefix $PREFIX: must be an absolute path" ;;
esac
case "$PREFIX" in
  *[[:space:]%\\\"\'\$\`\;]*) die "--prefix $PREFIX: spaces, %, \\, quotes, \$, \` and ; are not allowed (systemd and pip read them specially)" ;;
esac
CHANGES=0
# Run a changing step, or only say it under --dry-run.
change() {
  CHANGES=$((CHANGES + 1))
  if [ "$DRY_RUN" = 1 ]; then echo "  would run: $*"; else echo "  + $*"; "$@"; fi
}

command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: install Python 3.11+ (apt install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$("$PYTHON" -V 2>&1) is too old: fer-edge needs Python 3.10+ (Raspberry Pi OS Bookworm has 3.11)"

shopt -s nullglob
SELF_WHEELS=("$HERE"/wheels/fer_edge-*.whl)
[ ${#SELF_WHEELS[@]} = 1 ] || die "expected one fer_edge wheel in $HERE/wheels, found ${#SELF_WHEELS[@]}"
SELF_WHEEL=${SELF_WHEELS[0]}
ALL_WHEELS=("$HERE"/wheels/*.whl)
# The verifier runs from the bundled wheel (a zip on sys.path): nothing needs to be installed first.
manifest() { PYTHONPATH="$SELF_WHEEL" "$PYTHON" -m edge_runtime.release.manifest "$@"; }

# A device with an allowed-signers file installs only bundles whose manifest one of its keys signed.
VERIFY_OPTS=()
for ALLOWED in "$PREFIX/allowed_signers" /etc/fer-edge/allowed_signers; do
  if [ -f "$ALLOWED" ]; then VERIFY_OPTS=(--allowed-signers "$ALLOWED"); break; fi
done
# Every file, through real paths: nothing unlisted, no links (but the installed release's own venv link).
manifest verify "$HERE" "${VERIFY_OPTS[@]}" || die "this bundle does not match its manifest (or its signature): refused"
VERSION=$(manifest version "$HERE") || die "no readable version in $HERE/manifest.json"
# A release name is one plain path component: it becomes PREFIX/releases/VERSION.
[[ "$VERSION" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$ ]] || die "manifest.json: version '$VERSION' is not a plain release name"
REL="$PREFIX/releases/$VERSION"
# The same version with other files: the installed copy would be kept and the new unit would name files it lacks.
if [ -f "$REL/manifest.json" ] && [ "$HERE" != "$(cd "$REL" && pwd -P)" ] && ! "$PYTHON" -c 'import json, sys
sys.exit(json.load(open(sys.argv[1]))["files"] != json.load(open(sys.argv[2]))["files"])' "$HERE/manifest.json" "$REL/manifest.json"; then
  die "release $VERSION is already installed in $REL with other files: a changed bundle needs a new version (fer-edge bundle --version)"
fi
# A downgrade: refused unless asked for, or run from an installed release (a rollback).
CURRENT=$(readlink "$PREFIX/current" 2>/dev/null || true); CURRENT=${CURRENT#releases/}
if [ "$SWITCH" = 1 ] && [ "$ALLOW_DOWNGRADE" = 0 ] && [ -n "$CURRENT" ] && [ "$CURRENT" != "$VERSION" ] \
   && [ "$HERE" != "$(cd "$REL" 2>/dev/null && pwd -P)" ] \
   && manifest older "$VERSION" "$CURRENT"; then
  die "release $VERSION is older than the current release $CURRENT: refused as a downgrade (--allow-downgrade installs it anyway)"
fi
[ "$VERIFY_ONLY" = 1 ] && exit 0

WANT_PY=$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("python") or "")' "$HERE/manifest.json")
HAVE_PY=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ -n "$WANT_PY" ] && [ "$WANT_PY" != "$HAVE_PY" ]; then
  die "the bundled wheels are for Python $WANT_PY, $PYTHON is $HAVE_PY: rebuild with fer-edge bundle --python-version $HAVE_PY"
fi

mkdir_p() { [ -d "$1" ] || change mkdir -p "$1"; }

# 1. The Pi camera stack: picamera2 comes from apt, into a venv that sees system packages.
if command -v rpicam-hello >/dev/null 2>&1 || command -v libcamera-hello >/dev/null 2>&1 \
   || compgen -G '/usr/lib/*/libcamera.so.*' >/dev/null; then
  if "$PYTHON" -c 'import picamera2' >/dev/null 2>&1; then
    say "Pi camera stack present, python3-picamera2 already installed"
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "Pi camera stack present: installing python3-picamera2"
    change apt-get install -y --no-install-recommends python3-picamera2 \
      || say "warning: apt could not install python3-picamera2 (no network?): cameras work through OpenCV only"
  else
    say "Pi camera stack present: run 'sudo apt install python3-picamera2' for picamera2 sources"
  fi
fi

# 2. The release folder: a verified copy of this bundle.
if [ "$HERE" = "$(cd "$REL" 2>/dev/null && pwd -P)" ]; then
  say "release $VERSION: running from it"
elif [ -d "$REL" ]; then
  manifest verify "$REL" "${VERIFY_OPTS[@]}" >/dev/null || die "$REL exists but does not match this bundle: remove it and rerun"
  say "release $VERSION already in $REL"
else
  say "release $VERSION: copying the bundle to $REL"
  mkdir_p "$PREFIX/releases"
  [ ! -e "$REL.partial" ] || change rm -rf -- "$REL.partial"
  change cp -R "$HERE" "$REL.partial"
  # What was copied is what gets installed: verified again there.
  [ "$DRY_RUN" = 1 ] || manifest verify "$REL.partial" "${VERIFY_OPTS[@]}" >/dev/null || die "the copy in $REL.partial does not match the manifest"
  change mv -T "$REL.partial" "$REL"
fi

# 3. The venv. Releases with the same wheels and Python share one (PREFIX/venvs/KEY, linked as
#    releases/VERSION/venv): a release that changes only the model or the config installs nothing.
VENV_KEY=$("$PYTHON" -c 'import json, sys
files = json.load(open(sys.argv[1]))["files"]
print(sys.executable, sys.version)
print(*sorted(name + " " + entry["sha256"] for name, entry in files.items() if name.startswith("wheels/")))
' "$HERE/manifest.json" | sha256sum | cut -c1-16)
VENV="$PREFIX/venvs/$VENV_KEY"
STAMP="$VENV/.fer-edge-installed"
# The system's pip (22.3+) can install into a venv made without one: seconds instead of ensurepip's ten.
if "$PYTHON" -m pip --version 2>/dev/null | awk '{split($2, v, "."); exit !(v[1] > 22 || (v[1] == 22 && v[2] >= 3))}'; then
  VENV_OPTS=(--without-pip); PIP=("$PYTHON" -m pip --python "$VENV/bin/python")
else
  VENV_OPTS=(); PIP=("$VENV/bin/python" -m pip)
fi
if [ -x "$VENV/bin/python" ]; then
  say "venv $VENV exists"
else
  mkdir_p "$PREFIX/venvs"
  change "$PYTHON" -m venv --system-site-packages "${VENV_OPTS[@]}" "$VENV" \
    || die "could not make a venv: on Debian, apt install python3-venv"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$VENV_KEY" ]; then
  say "wheels already installed in $VENV"
else
  PIP+=(install --quiet --disable-pip-version-check --no-warn-script-location)
  WHEELS=()
  for wheel in "${ALL_WHEELS[@]}"; do WHEELS+=("$REL/wheels/$(basename "$wheel")"); done
  # fer-edge itself always goes into the venv, even where the system site already has this version.
  change "${PIP[@]}" --no-index --no-deps --force-reinstall "$REL/wheels/$(basename "$SELF_WHEEL")"
  if [ ${#ALL_WHEELS[@]} -gt 1 ]; then
    say "installing ${#ALL_WHEELS[@]} bundled wheels offline (--no-index)"
    change "${PIP[@]}" --no-index --find-links "$REL/wheels" "${WHEELS[@]}"
  else
    say "no dependency wheels bundled: pip takes what the system site lacks from the network"
    change "${PIP[@]}" --find-links "$REL/wheels" "$REL/wheels/$(basename "$SELF_WHEEL")"
  fi
  if [ "$DRY_RUN" = 1 ]; then echo "  would write $STAMP"; else echo "$VENV_KEY" > "$STAMP"; fi
fi
if [ "$(readlink "$REL/venv" 2>/dev/null || true)" != "../../venvs/$VENV_KEY" ]; then
  # -T: a venv folder in the release would otherwise receive the link instead of being replaced by it.
  change ln -sfnT "../../venvs/$VENV_KEY" "$REL/venv"
fi

# 4. current -> releases/VERSION, atomically: a new link renamed over the old one.
SWITCHED=0
if [ "$SWITCH" = 1 ]; then
  if [ "$(readlink "$PREFIX/current" 2>/dev/null || true)" = "releases/$VERSION" ]; then
    say "current is already releases/$VERSION"
  else
    say "switching current: $(readlink "$PREFIX/current" 2>/dev/null || echo none) -> releases/$VERSION"
    change ln -sfnT "releases/$VERSION" "$PREFIX/current.new"
    change mv -T "$PREFIX/current.new" "$PREFIX/current"
    SWITCHED=1
  fi
fi

# 5. The unit, written for this prefix; enabled and (re)started when systemd runs here.
if [ "$SERVICE" = 1 ]; then
  if [ "$SYSTEMD" = auto ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then SYSTEMD=1; else SYSTEMD=0; fi
  fi
  if [ "$SYSTEMD" = 1 ]; then UNIT_PATH=/etc/systemd/system/$UNIT; else UNIT_PATH=$PREFIX/$UNIT; fi
  # Plain text replacement (quoted, so & and # in the prefix stay themselves, unlike in sed).
  BUNDLED_UNIT=$(cat "$HERE/systemd/$UNIT")
  NEW_UNIT=${BUNDLED_UNIT//"$DEFAULT_PREFIX"/"$PREFIX"}
  UNIT_CHANGED=0
  if [ -f "$UNIT_PATH" ] && [ "$(cat "$UNIT_PATH")" = "$NEW_UNIT" ]; then
    say "unit $UNIT_PATH is up to date"
  else
    UNIT_CHANGED=1
    if [ "$DRY_RUN" = 1 ]; then echo "  would write $UNIT_PATH"; CHANGES=$((CHANGES + 1))
    else
      echo "  + write $UNIT_PATH"; CHANGES=$((CHANGES + 1))
      printf '%s\n' "$NEW_UNIT" > "$UNIT_PATH.new" && mv -f "$UNIT_PATH.new" "$UNIT_PATH"
    fi
  fi
  if [ "$SYSTEMD" = 1 ]; then
    RUN_AS=$(printf '%s\n' "$NEW_UNIT" | sed -n 's/^User=//p')
    if [ -n "$RUN_AS" ] && ! id "$RUN_AS" >/dev/null 2>&1; then
      GROUPS_OPT=()
      if getent group video >/dev/null; then GROUPS_OPT=(--groups video); fi
      change useradd --system --no-create-home --shell /usr/sbin/nologin "${GROUPS_OPT[@]}" "$RUN_AS"
    fi
    [ "$UNIT_CHANGED" = 0 ] || change systemctl daemon-reload
    systemctl is-enabled --quiet "$UNIT" 2>/dev/null || change systemctl enable "$UNIT"
    if [ "$SWITCHED$UNIT_CHANGED" != 00 ] || ! systemctl is-active --quiet "$UNIT"; then
      change systemctl restart "$UNIT"
    else
      say "$UNIT is running release $VERSION"
    fi
  else
    say "systemd is not running here: the unit is in $UNIT_PATH, nothing enabled or started"
  fi
fi

# 6. Coral: the Edge TPU runtime comes from Google's apt repository; say how, install nothing.
if compgen -G "$HERE/models/*_edgetpu.tflite" >/dev/null && ! ldconfig -p 2>/dev/null | grep -q libedgetpu.so.1; then
  cat <<'EOF'
install.sh: this bundle has an Edge TPU model, but the Edge TPU runtime (libedgetpu.so.1) is not installed.
  Add it (network needed), then restart fer-edge:
    echo "deb https://packages.cloud.google.com/apt coral-edgetpu-stable main" | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list
    curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o /etc/apt/trusted.gpg.d/coral-edgetpu.gpg
    sudo apt-get update && sudo apt-get install libedgetpu1-std
EOF
fi

if [ "$CHANGES" = 0 ]; then
  say "nothing to do: release $VERSION is already installed in $PREFIX"
elif [ "$DRY_RUN" = 1 ]; then
  say "dry run: $CHANGES changes would be made, none made"
else
  say "installed release $VERSION in $PREFIX ($CHANGES changes)"
fi
