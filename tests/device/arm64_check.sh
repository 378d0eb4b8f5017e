#!/usr/bin/env bash
# Emulated arm64 device check (issue 8): does what `fer-edge bundle --platform linux_aarch64
# --with-deps` produces install offline and run on the Pi's software, Debian 12 (bookworm)
# on aarch64 with Python 3.11, the base of Raspberry Pi OS Bookworm?
#
# One command, as root, on a Debian 12 x86-64 machine:
#
#     sudo tests/device/arm64_check.sh                 # builds the bundle from this checkout
#     sudo tests/device/arm64_check.sh --bundle DIR    # checks a bundle built elsewhere
#
# What it does:
#   1. apt-get installs debootstrap, qemu-user-static and binfmt-support when missing;
#   2. makes sure the kernel runs aarch64 ELF files through qemu-aarch64-static (binfmt_misc);
#   3. builds an arm64 Debian 12 root (debootstrap --arch=arm64 --variant=minbase, plus python3
#      and python3-venv, from the Debian mirror this machine's apt uses) once and caches it under
#      ${FER_EDGE_CACHE:-~/.cache/fer-edge}/arm64-bookworm (a stamp file says it is complete);
#      every run works on a fresh copy of it, so a run never sees the last run's install;
#   4. builds the offline aarch64 bundle on the host (or takes --bundle), copies it into the
#      root and runs its install.sh --prefix inside the root in a network namespace with no
#      network at all (unshare --net): the wheels in the bundle are all it gets;
#   5. runs `fer-edge detect --json` on the bundled sample video with the shipped int8 model
#      inside the root (again with no network) and the same command on this x86-64 host, and
#      compares the JSON lines (compare_detections.py): the same frames, faces, track ids, boxes
#      and labels, probabilities within --prob-tol (0.02 absolute by default; see docs/device.md);
#   6. starts `fer-edge run --source <sample> --loop --http 127.0.0.1:PORT` inside the root for a
#      short while and checks /healthz and /metrics from the host over loopback (this step shares
#      the host's network namespace, since the host has to reach the daemon);
#   7. prints the versions inside the root and a verdict; exits 0 only when everything matched.
#
# Emulation: qemu-user runs every aarch64 instruction in software, so NOTHING timed here says
# anything about a Raspberry Pi's speed. The script prints durations only so that a slow run
# can be told from a hung one.
#
# binfmt_misc: the kernel has to hand aarch64 executables to qemu, including the ones a process
# inside the root execs (dpkg's maintainer scripts, pip's subprocesses, the venv's python).
# update-binfmts --enable (from binfmt-support) registers qemu-aarch64 with the F (fix binary)
# flag, so the interpreter is opened on the host at registration and nothing has to be copied
# into the root. Inside a container /proc/sys/fs/binfmt_misc may need mounting first, which this
# script does; if it still can't register (no CAP_SYS_ADMIN, a read-only /proc), it writes the
# registration itself, and if that fails too it stops with an explanation: running only the
# first binary through `chroot ROOT qemu-aarch64-static ...` is not enough, because qemu-user
# can't follow an execve of another aarch64 binary (dpkg, pip and python all exec children).
# qemu-aarch64-static is copied into the root's /usr/bin as well, for poking around by hand.
#
# Exit status: 0 all checks passed; 1 a check failed (a difference beyond the tolerance, the
# install or a command failed, the daemon did not answer); 2 bad usage or the host can't run it.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

SUITE=bookworm
CACHE=${FER_EDGE_CACHE:-${HOME:-/root}/.cache/fer-edge}
ROOT_CACHE=$CACHE/arm64-$SUITE
STAMP_NAME=.fer-edge-root.stamp
# Bump when what the root holds changes, so a cached root built by an older recipe is rebuilt.
ROOT_RECIPE="v1 debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv $SUITE"

BUNDLE=""
MODEL=""
PROB_TOL=0.02
RUN_SECONDS=40
QEMU_CPU_MODEL=cortex-a72   # a Raspberry Pi 4's core (a Pi 5 has Cortex-A76)
HTTP_PORT=""
KEEP=0
ROOT_ONLY=0
REBUILD_ROOT=0
WORK=""

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    cat <<EOF
Options:
  --bundle DIR       check this bundle (a directory with install.sh, or a .tar.gz of one)
                     instead of building one with 'fer-edge bundle' from this checkout
  --model FILE       int8 model to bundle (default: the runtime's default, the shipped int8 model)
  --prob-tol X       largest absolute probability difference allowed (default $PROB_TOL)
  --run-seconds N    how long the daemon runs before its metrics are read (default $RUN_SECONDS)
  --port N           daemon HTTP port on 127.0.0.1 (default: a free one)
  --cpu MODEL        the CPU qemu emulates (QEMU_CPU; default $QEMU_CPU_MODEL, a Pi 4's core)
  --work DIR         keep this run's files here (default: a temporary directory)
  --keep             keep the work directory (root copy, bundle, JSON lines) afterwards
  --root-only        only build (or check) the cached arm64 root, then stop
  --rebuild-root     throw the cached root away and debootstrap a new one
Environment: FER_EDGE_CACHE (cache dir, default ~/.cache/fer-edge), FER_EDGE_MIRROR (Debian
mirror for debootstrap; default: the one this machine's apt uses), FER_EDGE_HOST_PYTHON (the x86-64
Python that builds the bundle and runs the reference detect, as \`python -m edge_runtime.cli\` from
this checkout; default: .venv/bin/python of the checkout if there is one, else python3 on PATH).
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --bundle) BUNDLE=$2; shift 2 ;;
        --model) MODEL=$2; shift 2 ;;
        --prob-tol) PROB_TOL=$2; shift 2 ;;
        --run-seconds) RUN_SECONDS=$2; shift 2 ;;
        --port) HTTP_PORT=$2; shift 2 ;;
        --cpu) QEMU_CPU_MODEL=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --root-only) ROOT_ONLY=1; shift ;;
        --rebuild-root) REBUILD_ROOT=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "arm64_check: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done

T0=$(date +%s)
log() { printf '[arm64-check %4ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit "${2:-1}"; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot, mounts and binfmt_misc need it)" 2
[ "$(uname -m)" = x86_64 ] || log "note: host is $(uname -m), not x86-64; the comparison is still run"

# ---------------------------------------------------------------- 1. host packages
host_packages() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
    command -v update-binfmts >/dev/null || missing+=(binfmt-support)
    command -v unshare >/dev/null || missing+=(util-linux)
    command -v curl >/dev/null || missing+=(curl)
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
}

# ---------------------------------------------------------------- 2. binfmt_misc
BINFMT=/proc/sys/fs/binfmt_misc
binfmt_ready() { [ -e $BINFMT/qemu-aarch64 ] && grep -q '^enabled' $BINFMT/qemu-aarch64; }
binfmt_setup() {
    if [ ! -e $BINFMT/register ]; then
        mount -t binfmt_misc binfmt_misc $BINFMT 2>/dev/null \
            || die "can't mount binfmt_misc on $BINFMT (a container without CAP_SYS_ADMIN?); the kernel must run aarch64 binaries through qemu for dpkg, pip and python's children to work" 2
    fi
    binfmt_ready || update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    if ! binfmt_ready; then
        # The registration binfmt-support would make, written directly, with F (fix binary).
        local magic='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
        local mask='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'
        printf ':qemu-aarch64:M::%s:%s:%s:F' "$magic" "$mask" "$(command -v qemu-aarch64-static)" \
            > $BINFMT/register 2>/dev/null || true
    fi
    binfmt_ready || die "could not register qemu-aarch64 with binfmt_misc; see the comment at the top of $0" 2
    log "binfmt_misc: qemu-aarch64 $(sed -n 's/^flags: //p' $BINFMT/qemu-aarch64 | tr -d '\n') -> $(sed -n 's/^interpreter //p' $BINFMT/qemu-aarch64)"
}

# ---------------------------------------------------------------- 3. the cached arm64 root
debian_mirror() {
    if [ -n "${FER_EDGE_MIRROR:-}" ]; then echo "$FER_EDGE_MIRROR"; return; fi
    # The mirror this machine's apt uses for the main archive (deb822 or one-line sources).
    local m
    m=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' \
        | grep -v -e security -e updates | grep '/debian/\?$' | head -1 || true)
    [ -n "$m" ] || m=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{print $2}' | grep -v security | grep '/debian/\?$' | head -1 || true)
    echo "${m:-http://deb.debian.org/debian}"
}

root_ok() { [ -f "$ROOT_CACHE/$STAMP_NAME" ] && [ "$(head -1 "$ROOT_CACHE/$STAMP_NAME")" = "$ROOT_RECIPE" ]; }

build_root() {
    if [ "$REBUILD_ROOT" -eq 1 ] && [ -d "$ROOT_CACHE" ]; then
        log "--rebuild-root: removing $ROOT_CACHE"
        rm -rf --one-file-system "$ROOT_CACHE"
    fi
    if root_ok; then
        log "arm64 root: cached at $ROOT_CACHE ($(sed -n 2p "$ROOT_CACHE/$STAMP_NAME"))"
        return
    fi
    local mirror tmp t
    mirror=$(debian_mirror)
    mkdir -p "$CACHE"
    tmp=$ROOT_CACHE.building.$$
    rm -rf --one-file-system "$ROOT_CACHE".building.* 2>/dev/null || true
    t=$(date +%s)
    # One stage: debootstrap runs on the host (its package resolution in the host's perl) and
    # chroots into the new root for dpkg and the maintainer scripts, which binfmt_misc hands to
    # qemu. (--foreign plus --second-stage inside the root works too, but runs debootstrap's own
    # perl under emulation as well: 41 min instead of 27 here, side by side on a busy machine.)
    log "arm64 root: debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv $SUITE from $mirror (dpkg under qemu; slow)"
    # Private mount namespace: whatever debootstrap mounts inside the root goes away with it.
    unshare --mount --propagation private -- debootstrap --arch=arm64 --variant=minbase \
        --include=python3,python3-venv "$SUITE" "$tmp" "$mirror" > "$CACHE/debootstrap.log" 2>&1 \
        || die "debootstrap failed; see $CACHE/debootstrap.log and $tmp/debootstrap/debootstrap.log"
    cp "$(command -v qemu-aarch64-static)" "$tmp/usr/bin/"
    chroot "$tmp" /usr/bin/python3 -c 'import venv, ensurepip' \
        || die "the new root has no working python3 -m venv"
    rm -f "$tmp/var/cache/apt/archives/"*.deb
    printf '%s\nbuilt %s from %s in %ss\n' "$ROOT_RECIPE" "$(date -u +%Y-%m-%dT%H:%MZ)" "$mirror" \
        "$(( $(date +%s) - t ))" > "$tmp/$STAMP_NAME"
    rm -rf --one-file-system "$ROOT_CACHE"
    mv "$tmp" "$ROOT_CACHE"
    log "arm64 root: built in $(( $(date +%s) - t ))s, $(du -sh "$ROOT_CACHE" | cut -f1)"
}

host_packages
binfmt_setup
build_root
root_arch=$(chroot "$ROOT_CACHE" /usr/bin/dpkg --print-architecture)
[ "$root_arch" = arm64 ] || die "the cached root says its architecture is '$root_arch', not arm64"
log "arm64 root: runs ($(chroot "$ROOT_CACHE" /usr/bin/uname -m), Debian $(cat "$ROOT_CACHE/etc/debian_version"))"
if [ "$ROOT_ONLY" -eq 1 ]; then
    exit 0
fi

# ---------------------------------------------------------------- helpers for the run
if [ -z "$WORK" ]; then
    WORK=$(mktemp -d /tmp/fer-edge-arm64-check.XXXXXX)
else
    mkdir -p "$WORK"
fi
WORK=$(cd "$WORK" && pwd)
RUN_ROOT=$WORK/root
DAEMON_PID=""
cleanup() {
    local rc=$?
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        sleep 2
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ "$KEEP" -eq 1 ] || [ "$rc" -ne 0 ]; then
        log "work files kept in $WORK"
    else
        # --one-file-system: never follows a mount into the host, should one have been left behind.
        rm -rf --one-file-system "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# in_root [--net] CMD...: run CMD inside the run's arm64 root under qemu, with /proc, /dev and /sys,
# qemu emulating a Pi 4's Cortex-A72 (QEMU_CPU) and /proc/cpuinfo replaced by a Pi 4's: qemu 7.2
# shows the host's x86 /proc/cpuinfo, which XNNPACK's cpuinfo library can't parse on arm64 (it
# crashes, or without /sys gives up and LiteRT quietly runs without XNNPACK, as a Pi never does),
# in a private mount namespace (the mounts vanish with it) and, unless --net, a network namespace
# with no interfaces up at all: nothing inside can reach a network, not even loopback.
# IN_ROOT_EXEC=exec makes the calling (sub)shell become the command, so $! is its process.
in_root() {
    local net=--net
    if [ "$1" = --net ]; then net=""; shift; fi
    # shellcheck disable=SC2016  # $1, $@ are the inner shell's
    ${IN_ROOT_EXEC:-} unshare --mount --propagation private $net -- /bin/sh -c '
        r=$1; shift
        mount -t proc proc "$r/proc" && mount --bind "$r/../cpuinfo" "$r/proc/cpuinfo" \
            && mount --bind /dev "$r/dev" && mount --bind /sys "$r/sys" || exit 125
        exec chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 QEMU_CPU="$QEMU_CPU_MODEL" \
            PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' in_root "$RUN_ROOT" "$@"
}

host_python() {
    local py
    for py in "${FER_EDGE_HOST_PYTHON:-}" "$REPO/.venv/bin/python" "$(command -v python3 || true)"; do
        if [ -z "$py" ] || [ ! -x "$py" ]; then continue; fi
        if (cd "$REPO" && "$py" -c 'import edge_runtime.cli, cv2, numpy, yaml' >/dev/null 2>&1); then
            echo "$py"; return
        fi
    done
    die "no x86-64 Python here runs fer-edge from $REPO: set it up as the README says (python3 -m venv .venv && .venv/bin/pip install -e .) or set FER_EDGE_HOST_PYTHON" 2
}
HOST_PY=$(host_python)
host_fer_edge() { (cd "$REPO" && "$HOST_PY" -m edge_runtime.cli "$@"); }

VERSIONS_PY='
import importlib.metadata as md, json, platform, sys
def v(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
import cv2, numpy
out = {"machine": platform.machine(), "python": platform.python_version(), "glibc": platform.libc_ver()[1],
       "numpy": numpy.__version__, "opencv": cv2.__version__,
       "opencv_dist": v("opencv-python-headless") or v("opencv-python"),
       "ai_edge_litert": v("ai-edge-litert"), "tflite_runtime": v("tflite-runtime"), "tensorflow": v("tensorflow"),
       "pydantic": v("pydantic"), "fer_edge": v("fer-edge")}
print(json.dumps(out))
'
json_get() { "$HOST_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(d.get(sys.argv[2]) or "-")' "$1" "$2"; }

# ---------------------------------------------------------------- 4. bundle and offline install
if [ -z "$MODEL" ]; then  # the runtime's default: the shipped int8 model a device runs
    MODEL=$(cd "$REPO" && "$HOST_PY" -c 'from edge_runtime.classifier import default_model_path; print(default_model_path())')
    [ -f "$MODEL" ] || die "the shipped int8 model $MODEL is missing; pass --model" 2
fi
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
if [ -z "$BUNDLE" ]; then
    BUNDLE=$WORK/fer-edge-linux_aarch64.tar.gz
    t=$(date +%s)
    log "bundle: fer-edge bundle --model ${MODEL#"$REPO"/} --platform linux_aarch64 --with-deps (host, $("$HOST_PY" -V))"
    host_fer_edge bundle --model "$MODEL" --platform linux_aarch64 --with-deps --out "$BUNDLE" \
        > "$WORK/bundle.log" 2>&1 || { tail -20 "$WORK/bundle.log" >&2; die "fer-edge bundle failed; see $WORK/bundle.log"; }
    grep -v '^WARNING: Location' "$WORK/bundle.log" | tail -2 >&2
    BUNDLE_SECONDS=$(( $(date +%s) - t ))
else
    [ -e "$BUNDLE" ] || die "--bundle $BUNDLE: not found" 2
    BUNDLE=$(cd "$(dirname "$BUNDLE")" && pwd)/$(basename "$BUNDLE")
    BUNDLE_SECONDS=-
fi

log "root: fresh copy of the cached root in $RUN_ROOT"
rm -rf --one-file-system "$RUN_ROOT"
cp -a --reflink=auto "$ROOT_CACHE" "$RUN_ROOT"
export QEMU_CPU_MODEL
# A Raspberry Pi 4's /proc/cpuinfo (4 x Cortex-A72: implementer 0x41, part 0xd08), for in_root.
for i in 0 1 2 3; do
    printf 'processor\t: %s\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
done > "$WORK/cpuinfo"
printf 'Revision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4 (emulated)\n' >> "$WORK/cpuinfo"
mkdir -p "$RUN_ROOT/root/bundle"
if [ -d "$BUNDLE" ]; then
    cp -a "$BUNDLE" "$RUN_ROOT/root/bundle/"
else
    tar -xzf "$BUNDLE" -C "$RUN_ROOT/root/bundle"
fi
INSTALL_SH=$(find "$RUN_ROOT/root/bundle" -maxdepth 2 -name install.sh | head -1)
[ -n "$INSTALL_SH" ] || die "the bundle $BUNDLE has no install.sh"
BUNDLE_DIR=${INSTALL_SH%/install.sh}
BUNDLE_IN_ROOT=${BUNDLE_DIR#"$RUN_ROOT"}
WHEELS=$(find "$BUNDLE_DIR/wheels" -name '*.whl' | wc -l)
ARCH_WHEELS=$(find "$BUNDLE_DIR/wheels" -name '*aarch64*.whl' | wc -l)
BUNDLED_MODEL=$(find "$BUNDLE_DIR/models" -name '*.tflite' ! -name '*_edgetpu*' | head -1)
[ -n "$BUNDLED_MODEL" ] || die "the bundle has no int8 model in models/"
MODEL_NAME=$(basename "$BUNDLED_MODEL")
log "bundle: $(basename "$BUNDLE_DIR"), $WHEELS wheels ($ARCH_WHEELS for aarch64), model $MODEL_NAME"

PREFIX=/opt/fer-edge
t=$(date +%s)
log "install: $BUNDLE_IN_ROOT/install.sh --prefix $PREFIX --no-systemd, inside the root, no network"
if ! in_root /bin/bash -c "cd '$BUNDLE_IN_ROOT' && ./install.sh --prefix $PREFIX --no-systemd" \
        > "$WORK/install.log" 2>&1; then
    tail -30 "$WORK/install.log" >&2
    die "install.sh failed inside the arm64 root (offline); see $WORK/install.log"
fi
INSTALL_SECONDS=$(( $(date +%s) - t ))
tail -3 "$WORK/install.log" >&2
VENV=$PREFIX/current/venv
[ -x "$RUN_ROOT$VENV/bin/fer-edge" ] || die "install.sh finished but $VENV/bin/fer-edge is missing"

in_root "$VENV/bin/python" -c "$VERSIONS_PY" > "$WORK/versions-arm64.json" 2> "$WORK/versions-arm64.err" \
    || { cat "$WORK/versions-arm64.err" >&2; die "the installed venv can't import numpy and cv2 inside the root"; }
(cd "$REPO" && "$HOST_PY" -c "$VERSIONS_PY") > "$WORK/versions-host.json"
[ "$(json_get "$WORK/versions-arm64.json" machine)" = aarch64 ] \
    || die "the root's Python says it runs on $(json_get "$WORK/versions-arm64.json" machine), not aarch64"

# ---------------------------------------------------------------- 5. detect on both, compare
# Two comparisons, because the sample is an MPEG-4 Part 2 video, and FFmpeg's decoder and colour
# conversion inside opencv-python-headless take different SIMD paths on x86-64 and arm64: the
# same file decodes to pixels a few levels apart, and a Haar cascade fed other pixels finds
# boxes a few pixels off. So:
#   a. frames: the sample's frames, decoded once on the host and written as lossless PNG, through
#      `fer-edge detect FOLDER --json` on both: the same pixels in, so the same faces, boxes and
#      labels, and probabilities within --prob-tol are required (this judges fer-edge's own work:
#      OpenCV's Haar cascade, the preprocessing and LiteRT's int8 kernels on arm64);
#   b. video: `fer-edge detect --json` on the bundled sample video itself, as a user runs it: the
#      same frames, faces, track ids and labels are required; the boxes and probabilities are
#      measured and printed, not judged, and the decoders' pixel difference is measured too.
SAMPLE=$REPO/edge_runtime/samples/faces.mp4
ROOT_SAMPLE=$(find "$RUN_ROOT$VENV/lib" -path '*/edge_runtime/samples/faces.mp4' | head -1)
[ -n "$ROOT_SAMPLE" ] || die "the installed fer-edge has no bundled sample video (edge_runtime/samples/faces.mp4)"
[ "$(sha256sum < "$ROOT_SAMPLE")" = "$(sha256sum < "$SAMPLE")" ] \
    || die "the installed sample video differs from $SAMPLE"
[ "$(sha256sum < "$BUNDLED_MODEL")" = "$(sha256sum < "$MODEL")" ] \
    || log "note: the bundle's $MODEL_NAME is not $MODEL; both sides use the bundle's"
ROOT_MODEL=$PREFIX/current/models/$MODEL_NAME
DECODE_PY='
import sys, cv2
cap, n = cv2.VideoCapture(sys.argv[1]), 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    n += 1
    cv2.imwrite(f"{sys.argv[2]}/frame_{n:03d}.png", frame)
print(n)
'
mkdir -p "$RUN_ROOT/root/frames" "$RUN_ROOT/root/frames-arm64"
FRAMES=$("$HOST_PY" -c "$DECODE_PY" "$SAMPLE" "$RUN_ROOT/root/frames")
in_root "$VENV/bin/python" -c "$DECODE_PY" "${ROOT_SAMPLE#"$RUN_ROOT"}" /root/frames-arm64 > /dev/null 2>&1 \
    || die "the arm64 root could not decode the sample video"
PIXELS=$("$HOST_PY" -c '
import glob, sys, cv2, numpy as np
differ, worst, share = 0, 0, []
for a in sorted(glob.glob(sys.argv[1] + "/*.png")):
    x = cv2.imread(a).astype(int)
    y = cv2.imread(a.replace(sys.argv[1], sys.argv[2]))
    d = np.abs(x - y.astype(int)) if y is not None and y.shape == x.shape else None
    if d is None:
        print(f"arm64 decoded no frame like {a}"); sys.exit()
    differ += bool(d.any()); worst = max(worst, int(d.max())); share.append((d > 0).mean())
print(f"{differ} of {len(share)} frames differ, by up to {worst} levels, {100 * np.mean(share):.1f} % of values")
' "$RUN_ROOT/root/frames" "$RUN_ROOT/root/frames-arm64")
log "video decode (OpenCV's FFmpeg), arm64 vs x86-64: $PIXELS"

detect_both() {  # detect_both NAME HOST_INPUT ROOT_INPUT|"" : JSON lines from both sides
    local name=$1 t
    t=$(date +%s)
    log "detect $name (arm64, no network): fer-edge detect ${3:-<the bundled sample>} --model $ROOT_MODEL --json"
    # shellcheck disable=SC2086  # an empty $3 is no argument: detect's default, the bundled sample
    # -v: LiteRT's "Created ... XNNPACK delegate" line is logged at DEBUG since 34c08d8; the JSON on stdout is the same.
    in_root "$VENV/bin/fer-edge" -v detect $3 --model "$ROOT_MODEL" --json --no-progress \
        > "$WORK/$name-arm64.jsonl" 2> "$WORK/$name-arm64.err" \
        || { tail -20 "$WORK/$name-arm64.err" >&2; die "fer-edge detect failed inside the arm64 root"; }
    grep -h 'XNNPACK\|fer-edge detect:' "$WORK/$name-arm64.err" | sed 's/^.*DEBUG fer_edge.interpreter: //; s/^/    arm64:  /' >&2
    printf -v "DETECT_${name}_SECONDS" '%s' "$(( $(date +%s) - t ))"
    host_fer_edge -v detect "$2" --model "$BUNDLED_MODEL" --json --no-progress \
        > "$WORK/$name-x86_64.jsonl" 2> "$WORK/$name-x86_64.err" \
        || { tail -20 "$WORK/$name-x86_64.err" >&2; die "fer-edge detect failed on the host"; }
    grep -h 'XNNPACK\|fer-edge detect:' "$WORK/$name-x86_64.err" | sed 's/^.*DEBUG fer_edge.interpreter: //; s/^/    x86-64: /' >&2
}
DETECT_frames_SECONDS=- DETECT_video_SECONDS=-
detect_both frames "$RUN_ROOT/root/frames" /root/frames
detect_both video "$SAMPLE" ""
XNNPACK_ARM=$(grep -c 'XNNPACK delegate' "$WORK/frames-arm64.err" || true)
COMPARE_RC=0
"$HOST_PY" "$HERE/compare_detections.py" "$WORK/frames-x86_64.jsonl" "$WORK/frames-arm64.jsonl" \
    --prob-tol "$PROB_TOL" --summary "$WORK/compare-frames.json" > "$WORK/compare-frames.txt" || COMPARE_RC=$?
"$HOST_PY" "$HERE/compare_detections.py" "$WORK/video-x86_64.jsonl" "$WORK/video-arm64.jsonl" --labels-only \
    --summary "$WORK/compare-video.json" > "$WORK/compare-video.txt" || COMPARE_RC=$(( COMPARE_RC ? COMPARE_RC : $? ))
sed 's/^/    frames: /' "$WORK/compare-frames.txt" >&2
sed 's/^/    video:  /' "$WORK/compare-video.txt" >&2

# ---------------------------------------------------------------- 6. the daemon on a looping video
if [ -z "$HTTP_PORT" ]; then
    HTTP_PORT=$("$HOST_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
URL=http://127.0.0.1:$HTTP_PORT
DAEMON_OK=1
daemon_fail() { log "daemon: FAIL: $*"; DAEMON_OK=0; }
metric() {  # metric FILE NAME: the sum of NAME's samples in a Prometheus text file ('' if none)
    awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; f = 1 } END { if (f) printf "%g\n", s }' "$1"
}
ROOT_VIDEO=${ROOT_SAMPLE#"$RUN_ROOT"}
# The command systemd would run: install.sh --no-systemd wrote the unit to PREFIX/fer-edge.service.
UNIT_FILE=$RUN_ROOT$PREFIX/fer-edge.service
EXEC_START=$(sed -n 's/^ExecStart=//p' "$UNIT_FILE" 2>/dev/null | head -1)
[ -n "$EXEC_START" ] || die "install.sh --no-systemd wrote no unit with an ExecStart to $PREFIX/fer-edge.service"
WORKDIR=$(sed -n 's/^WorkingDirectory=//p' "$UNIT_FILE" | head -1)
mkdir -p "$RUN_ROOT${WORKDIR:-/var/lib/fer-edge}"
DAEMON_CMD="$EXEC_START --source $ROOT_VIDEO --loop --http 127.0.0.1:$HTTP_PORT --jsonl /tmp/events.jsonl"
log "daemon (arm64): the unit's ExecStart + overrides: $DAEMON_CMD"
# Shares the host's network namespace (no --net isolation here): the host must reach its port.
(IN_ROOT_EXEC="exec" in_root --net /bin/sh -c "cd ${WORKDIR:-/var/lib/fer-edge} && PYTHONUNBUFFERED=1 exec $DAEMON_CMD" \
    > "$WORK/daemon.log" 2>&1) &
DAEMON_PID=$!
HEALTH_CODE=000
t=$(date +%s)
while [ $(( $(date +%s) - t )) -lt 180 ]; do  # start-up under emulation: imports alone take a while
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    HEALTH_CODE=$(curl -s -o "$WORK/healthz.json" -w '%{http_code}' --max-time 5 "$URL/healthz" || true)
    [ "$HEALTH_CODE" = 200 ] && break
    sleep 2
done
DAEMON_START_SECONDS=$(( $(date +%s) - t ))
if [ "$HEALTH_CODE" != 200 ]; then
    tail -20 "$WORK/daemon.log" >&2
    daemon_fail "/healthz never answered 200 (last: $HEALTH_CODE)"
else
    log "daemon: /healthz 200 after ${DAEMON_START_SECONDS}s: $(cat "$WORK/healthz.json")"
    curl -sf --max-time 10 "$URL/metrics" > "$WORK/metrics-1.txt" || daemon_fail "/metrics did not answer"
    sleep "$RUN_SECONDS"
    HEALTH_CODE=$(curl -s -o "$WORK/healthz-2.json" -w '%{http_code}' --max-time 10 "$URL/healthz" || true)
    [ "$HEALTH_CODE" = 200 ] || daemon_fail "/healthz went to $HEALTH_CODE after ${RUN_SECONDS}s: $(cat "$WORK/healthz-2.json")"
    curl -sf --max-time 10 "$URL/metrics" > "$WORK/metrics-2.txt" || daemon_fail "/metrics did not answer the second time"
fi
FRAMES_1=$(metric "$WORK/metrics-1.txt" fer_edge_frames_processed_total 2>/dev/null || true)
FRAMES_2=$(metric "$WORK/metrics-2.txt" fer_edge_frames_processed_total 2>/dev/null || true)
INFER_2=$(metric "$WORK/metrics-2.txt" fer_edge_inference_seconds_count 2>/dev/null || true)
EVENTS_2=$(metric "$WORK/metrics-2.txt" fer_edge_events_total 2>/dev/null || true)
CAMERA_UP=$(metric "$WORK/metrics-2.txt" fer_edge_camera_up 2>/dev/null || true)
if [ "$DAEMON_OK" -eq 1 ]; then
    awk -v a="${FRAMES_1:-0}" -v b="${FRAMES_2:-0}" 'BEGIN { exit !(b > a) }' \
        || daemon_fail "fer_edge_frames_processed_total did not grow (${FRAMES_1:-none} -> ${FRAMES_2:-none})"
    awk -v n="${INFER_2:-0}" 'BEGIN { exit !(n > 0) }' || daemon_fail "no classifier call counted (fer_edge_inference_seconds_count)"
    [ "${CAMERA_UP:-0}" = 1 ] || daemon_fail "fer_edge_camera_up is ${CAMERA_UP:-missing}, not 1"
fi
if kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID"
    for _ in $(seq 60); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 1; done
fi
DAEMON_RC=0
wait "$DAEMON_PID" || DAEMON_RC=$?
DAEMON_PID=""
[ "$DAEMON_RC" -eq 0 ] || daemon_fail "fer-edge run exited with status $DAEMON_RC after SIGTERM (see $WORK/daemon.log)"
EVENT_LINES=$(wc -l < "$RUN_ROOT/tmp/events.jsonl" 2>/dev/null || echo 0)

# ---------------------------------------------------------------- 7. verdict and figures
A=$WORK/versions-arm64.json H=$WORK/versions-host.json
litert() { local v; v=$(json_get "$1" ai_edge_litert); [ "$v" != - ] && echo "ai-edge-litert $v" || echo "tflite-runtime $(json_get "$1" tflite_runtime)"; }
if [ "$COMPARE_RC" -eq 0 ] && [ "$DAEMON_OK" -eq 1 ]; then VERDICT=PASS; else VERDICT=FAIL; fi
{
    echo "== fer-edge arm64 device check (emulated): $VERDICT =="
    echo "date:     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "root:     Debian $(cat "$RUN_ROOT/etc/debian_version") ($SUITE) arm64, $(json_get "$A" machine), glibc $(json_get "$A" glibc), run by $(qemu-aarch64-static --version | head -1 | sed 's/ version / /; s/ (.*//') via binfmt_misc"
    echo "arm64:    Python $(json_get "$A" python), $(litert "$A"), OpenCV $(json_get "$A" opencv) (opencv-python-headless $(json_get "$A" opencv_dist)), numpy $(json_get "$A" numpy), pydantic $(json_get "$A" pydantic), fer-edge $(json_get "$A" fer_edge)"
    echo "x86-64:   Python $(json_get "$H" python), $(litert "$H"), OpenCV $(json_get "$H" opencv), numpy $(json_get "$H" numpy) (reference: $HOST_PY)"
    echo "bundle:   $(basename "$BUNDLE_DIR"): $WHEELS wheels ($ARCH_WHEELS aarch64), model $MODEL_NAME; install.sh --prefix $PREFIX ran offline (unshare --net: no network at all): ok"
    echo "qemu:     -cpu $QEMU_CPU_MODEL with a Pi 4 /proc/cpuinfo; LiteRT's XNNPACK delegate on arm64: $([ "${XNNPACK_ARM:-0}" -gt 0 ] && echo yes || echo NO)"
    echo "frames:   the sample's $FRAMES frames as lossless PNG (same pixels on both), $MODEL_NAME: boxes and labels exact, |p_arm64 - p_x86| <= $PROB_TOL"
    sed 's/^/          /' "$WORK/compare-frames.txt"
    echo "video:    fer-edge detect on the bundled sample video (decoded on each machine: $PIXELS): frames, faces, tracks and labels exact; boxes and probabilities measured"
    sed 's/^/          /' "$WORK/compare-video.txt"
    echo "daemon:   fer-edge run --loop for ${RUN_SECONDS}s: /healthz $HEALTH_CODE, frames processed ${FRAMES_1:-?} -> ${FRAMES_2:-?}, classifier calls ${INFER_2:-?}, events ${EVENTS_2:-0} ($EVENT_LINES JSON lines), camera_up ${CAMERA_UP:-?}, exit status $DAEMON_RC on SIGTERM: $([ "$DAEMON_OK" -eq 1 ] && echo ok || echo FAIL)"
    echo "emulated durations (qemu on x86-64: NOT a Pi's speed): bundle ${BUNDLE_SECONDS}s (host), install ${INSTALL_SECONDS}s, detect frames ${DETECT_frames_SECONDS}s, video ${DETECT_video_SECONDS}s, daemon healthy after ${DAEMON_START_SECONDS}s, whole run $(( $(date +%s) - T0 ))s"
} | tee "$WORK/verdict.txt"
[ "$VERDICT" = PASS ]
