"""manifest.json: what a bundle holds (sha256 and size of every file), and the checks against it.

Standard library only, so a device can run `python3 -m edge_runtime.release.manifest verify DIR`
from the bundled wheel (a zip on sys.path) before it installs anything.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

try:
    from edge_runtime.errors import FerEdgeError
except ImportError:  # a lone copy of this file (what deploy and the Ansible role run on a device): no package there

    class FerEdgeError(Exception):
        """edge_runtime.errors.FerEdgeError's stand-in where there is no edge_runtime."""

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"  # `ssh-keygen -Y sign` of manifest.json, which lists every other file
NAMESPACE = "fer-edge-bundle"  # the -n of sign and verify: a signature made for anything else does not count
FORMAT = 1
VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")  # fullmatch: one plain path component
# The link install.sh makes in an installed release, the one thing beside the bundle's own files.
VENV_LINK = "venv"
VENV_TARGET = re.compile(r"^\.\./\.\./venvs/[0-9a-f]{16}$")
# A bundle with every dependency wheel is ~100 MB; far more is a decompression bomb, refused early.
MAX_MEMBER = 256 << 20
MAX_TOTAL = 1 << 30
MAX_PADDING = 1 << 20  # tar pads its end to a record (10 KiB by default); a little more is tolerated
# A manifest lists a few dozen files (~10 KB with every wheel); its signature is under 1 KB. Far more is refused
# before it is read, let alone parsed: a 255 MB manifest took 1.6 GB and 42 s to parse.
MAX_SPECIAL = {MANIFEST: 1 << 20, SIGNATURE: 64 << 10}


class ManifestError(FerEdgeError, ValueError):
    """A bundle or a file in it does not match its manifest."""


def sha256_of(stream, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    while block := stream.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict:
    with open(path, "rb") as fh:
        return {"sha256": sha256_of(fh), "size": path.stat().st_size}


def tree_files(root: Path) -> list[str]:
    """Every file below root as a POSIX relative path, sorted; a link or special file anywhere is refused.

    Only the installed release's `venv` link (made by install.sh) may stand beside the bundle's files."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if rel == Path(".") and name in (MANIFEST, SIGNATURE) and stat.S_ISREG(os.lstat(path).st_mode):
                continue
            if rel == Path(".") and name == VENV_LINK and path.is_symlink():
                if not VENV_TARGET.match(os.readlink(path)):
                    raise ManifestError(f"{VENV_LINK}: a link to {os.readlink(path)}, not to an install.sh venv")
                continue
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                raise ManifestError(f"{(rel / name).as_posix()}: not a regular file (links and special files "
                                    "are refused)")
            found.append((rel / name).as_posix())
    return sorted(found)


def write_manifest(root: Path, fields: dict) -> dict:
    """Hash every file below root into root/manifest.json, after `fields` (version, models, parity...)."""
    manifest = {"format": FORMAT, **fields, "files": {rel: file_entry(root / rel) for rel in tree_files(root)}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _too_big(name: str, size: int, where: str) -> None:
    limit = MAX_SPECIAL.get(name, MAX_SPECIAL[MANIFEST])
    if size > limit:
        raise ManifestError(f"{where}: {name} is {size} bytes or more, more than it may have ({limit >> 10} KiB): "
                            "refused")


def read_special(path: Path) -> bytes:
    """manifest.json (or another name given for it) or its signature, refused unread past its size limit."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_SPECIAL.get(path.name, MAX_SPECIAL[MANIFEST]) + 1)
    _too_big(path.name, len(data), str(path.parent))
    return data


def check_version(version: object, where: str) -> str:
    """A release name is one plain path component: it names folders on the device and in rm -rf."""
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise ManifestError(f"{where}: version {version!r} is not a plain release name (1-100 letters, digits "
                            "and . _ + -, starting with a letter or digit)")
    return version


def version_key(version: str) -> tuple:
    """Orders release names as semantic versions do: numbers as numbers, `1.0.0-rc1` before `1.0.0`, the default
    `0.1.0-YYYYmmddTHHMMSSZ` by its time, a `+build` suffix ignored; numbers rank below letters, as in semver."""
    def parts(text: str) -> tuple:
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"[0-9]+|[A-Za-z]+", text))

    release, pre = version.split("+", 1)[0].partition("-")[::2]
    return parts(release), not pre, parts(pre)


def load_manifest(text: bytes | str, where: str) -> dict:
    """The manifest, with its version and every file entry checked for shape: a bad one is a ManifestError."""
    try:
        manifest = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ManifestError(f"{where}: not a readable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ManifestError(f"{where}: not a fer-edge manifest (no 'files' table)")
    check_version(manifest.get("version"), where)
    for rel, entry in manifest["files"].items():
        parts = PurePosixPath(rel).parts
        if (not parts or rel.startswith("/") or "\\" in rel or any(p in (".", "..") for p in rel.split("/"))
                or parts[0] == VENV_LINK):
            raise ManifestError(f"{where}: files: {rel!r} is not a plain relative path inside the bundle")
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) or type(entry.get("size")) is not int
                or entry["size"] < 0):
            raise ManifestError(f"{where}: files: {rel}: needs a 64-hex-digit 'sha256' and a byte 'size', "
                                f"has {entry!r}"[:300])
    return manifest


def compare(expected: dict, present: Iterable[str], entry_of: Callable[[str], dict]) -> None:
    """Raise naming the first file (in sorted order) that is missing, extra, or differs from its manifest entry."""
    present = set(present)
    for rel in sorted(present | set(expected)):
        if rel not in present:
            raise ManifestError(f"{rel}: missing (listed in {MANIFEST})")
        if rel not in expected:
            raise ManifestError(f"{rel}: extra file (not listed in {MANIFEST})")
        want, got = expected[rel], entry_of(rel)
        if got["size"] != want["size"]:
            raise ManifestError(f"{rel}: changed: {got['size']} bytes, {MANIFEST} says {want['size']}")
        if got["sha256"] != want["sha256"]:
            raise ManifestError(f"{rel}: changed: sha256 {got['sha256'][:12]}..., {MANIFEST} says "
                                f"{want['sha256'][:12]}...")


def check_signature(manifest_text: bytes, signature: bytes | None, allowed_signers: str | os.PathLike,
                    where: str) -> str:
    """The principal of the key in `allowed_signers` whose good `ssh-keygen -Y sign` signature of the manifest
    `signature` is; ManifestError when it is missing, from another key or namespace, or does not match."""
    if signature is None:
        raise ManifestError(f"{where}: unsigned ({SIGNATURE} missing), but {allowed_signers} names the keys a "
                            "bundle must be signed with: refused")
    with tempfile.TemporaryDirectory(prefix="fer-edge-sig-") as tmp:
        sig = Path(tmp, SIGNATURE)
        sig.write_bytes(signature)
        try:
            found = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f", str(allowed_signers)],
                                   capture_output=True, text=True, timeout=30)
            principals = found.stdout.split()
            good = bool(principals) and found.returncode == 0 and subprocess.run(
                ["ssh-keygen", "-Y", "verify", "-f", str(allowed_signers), "-I", principals[0], "-n", NAMESPACE,
                 "-s", str(sig)], input=manifest_text, capture_output=True, timeout=30).returncode == 0
        except FileNotFoundError:
            raise ManifestError("ssh-keygen not found: install openssh-client to check signed bundles") from None
    if not principals:
        raise ManifestError(f"{where}: {SIGNATURE} is by no key in {allowed_signers}: refused")
    if not good:
        raise ManifestError(f"{where}: {SIGNATURE} does not match {MANIFEST} (or is not a {NAMESPACE} signature) "
                            f"for {principals[0]}'s key in {allowed_signers}: refused")
    return principals[0]


def verify_dir(root: str | os.PathLike, allowed_signers: str | os.PathLike | None = None) -> dict:
    """Check an unpacked bundle or an installed release, through real paths; returns the manifest.

    With `allowed_signers`, manifest.json must carry a good signature by one of its keys."""
    root = Path(os.path.realpath(root))
    path = root / MANIFEST
    if path.is_symlink() or not path.is_file():
        raise ManifestError(f"{MANIFEST}: missing in {root} (or not a regular file)")
    text = read_special(path)
    signed_by = None
    if allowed_signers:  # before the manifest is parsed: only a signed one is worth reading
        sig = root / SIGNATURE
        signature = read_special(sig) if sig.is_file() and not sig.is_symlink() else None
        signed_by = check_signature(text, signature, allowed_signers, str(root))
    manifest = load_manifest(text, str(path))
    if signed_by:
        manifest["signed_by"] = signed_by
    compare(manifest["files"], tree_files(root), lambda rel: file_entry(root / rel))
    return manifest


class _Bounded:
    """The decompressed bundle for tarfile: refuses to unpack past `limit` bytes, and notes any data that is
    not zero from `mark` (where the last member ended) on: after the archive's end only padding is allowed."""

    def __init__(self, raw, limit: int, what: str):
        self.raw, self.limit, self.what, self.mark, self.stray = raw, limit, what, 0, False

    def read(self, size: int = -1) -> bytes:
        start = self.raw.tell()
        if start - self.mark > MAX_PADDING:
            raise ManifestError(f"{self.what}: more than {MAX_PADDING >> 10} KiB after the archive's last file: "
                                "refused")
        room = self.limit + 1 - start
        data = self.raw.read(min(size, room) if size >= 0 else room) if room > 0 else b""
        if self.raw.tell() > self.limit:
            raise ManifestError(f"{self.what}: unpacks to more than {self.limit >> 20} MiB: refused")
        self.stray = self.stray or (start >= self.mark and bool(data.strip(b"\0")))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()


def verify_tarball(bundle: str | os.PathLike, allowed_signers: str | os.PathLike | None = None) -> dict:
    """Check a BUNDLE.tar.gz without unpacking it, reading it as GNU tar does: past blocks tarfile would stop
    at, to the end of the gzip stream (its CRC and length checked). One top folder, regular files only, each
    name once, no block the archive does not account for, within MAX_MEMBER and MAX_TOTAL bytes."""
    entries: dict[str, dict] = {}
    special: dict[str, bytes] = {}  # manifest.json and its signature
    top = None
    try:
        with gzip.open(bundle, "rb") as gz:
            stream = _Bounded(gz, MAX_TOTAL, str(bundle))
            # ignore_zeros: read on past a zero or junk block, as GNU tar does, instead of stopping quietly.
            with tarfile.open(fileobj=stream, mode="r:", ignore_zeros=True) as tar:
                for member in tar:
                    rel, top = _member_path(member, top)
                    if member.offset != stream.mark:
                        raise ManifestError(f"{rel or member.name}: {member.offset - stream.mark} bytes before it "
                                            "that are no file of the archive (tar would skip them): refused")
                    stream.mark, stream.stray = tar.offset, False
                    if member.isdir():
                        continue
                    if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
                        raise ManifestError(f"{rel or member.name}: not a regular file (links and special files "
                                            "are refused)")
                    if member.size > MAX_MEMBER:
                        raise ManifestError(f"{rel}: {member.size} bytes, more than a bundle file may have "
                                            f"({MAX_MEMBER >> 20} MiB): refused")
                    if rel in entries or rel in special:
                        raise ManifestError(f"{rel}: in the archive twice (tar would keep the second): refused")
                    data = tar.extractfile(member)
                    if rel in (MANIFEST, SIGNATURE):
                        _too_big(rel, member.size, str(bundle))
                        special[rel] = data.read()
                    else:
                        entries[rel] = {"sha256": sha256_of(data), "size": member.size}
            stream.read()  # to the end of the gzip stream, whose trailer (CRC, length) gzip checks there
            if stream.stray:
                raise ManifestError(f"{bundle}: data after the archive's last file that is not tar's zero "
                                    "padding: refused")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ManifestError(f"{bundle}: not a readable .tar.gz bundle: {exc}") from exc
    if MANIFEST not in special:
        raise ManifestError(f"{MANIFEST}: missing in {bundle}")
    signed_by = None
    if allowed_signers:  # before the manifest is parsed: only a signed one is worth reading
        signed_by = check_signature(special[MANIFEST], special.get(SIGNATURE), allowed_signers, str(bundle))
    manifest = load_manifest(special[MANIFEST], f"{bundle}:{MANIFEST}")
    if signed_by:
        manifest["signed_by"] = signed_by
    if top != f"fer-edge-{manifest['version']}":
        raise ManifestError(f"{bundle}: top folder {top!r} is not fer-edge-{manifest['version']}")
    compare(manifest["files"], entries, entries.__getitem__)
    manifest["top"] = top
    return manifest


def _member_path(member: tarfile.TarInfo, top: str | None) -> tuple[str, str]:
    """(path below the top folder, the top folder) of a member; a path that leaves it is refused."""
    name = member.name
    parts = PurePosixPath(name).parts
    if (not parts or name.startswith("/") or "\\" in name or any(p in (".", "..") for p in name.split("/"))
            or (top and parts[0] != top)):
        raise ManifestError(f"{name}: outside the bundle's one top folder")
    return PurePosixPath(*parts[1:]).as_posix() if len(parts) > 1 else "", parts[0]


def verify(bundle: str | os.PathLike, allowed_signers: str | os.PathLike | None = None) -> dict:
    """A bundle .tar.gz or an unpacked bundle folder: its manifest when every file matches (and, with
    `allowed_signers`, manifest.json is signed by one of its keys), else ManifestError."""
    check = verify_dir if Path(bundle).is_dir() else verify_tarball
    return check(bundle, allowed_signers)


def find_manifest(model_path: str | os.PathLike) -> Path | None:
    """The fer-edge manifest.json of the bundle or release a model lies in (searching upwards), or None.

    Another project's manifest.json on the way (a web app's) is not ours and is passed by."""
    for folder in Path(os.path.abspath(model_path)).parents:
        try:
            manifest = load_manifest(read_special(folder / MANIFEST), str(folder / MANIFEST))
        except (OSError, ManifestError):
            continue
        if manifest.get("name") == "fer-edge":
            return folder / MANIFEST
    return None


def check_model(model_path: str | os.PathLike, manifest_path: str | os.PathLike | None = None) -> Path | None:
    """Refuse a model (and its .json metadata) whose sha256 differs from its bundle's manifest.

    The interpreter loader calls this first. Both the path as given and its real path are checked, so a
    model reached through a symlinked folder is still checked against the bundle it really lies in, and
    a link inside a bundle against that bundle. A model outside any bundle (a checkout's models/) has
    no manifest and passes: returns the (last) manifest used, or None.
    """
    used = None
    for model in dict.fromkeys((Path(os.path.abspath(model_path)), Path(os.path.realpath(model_path)))):
        found = Path(manifest_path) if manifest_path else find_manifest(model)
        if found is not None:
            _check_listed(model, found)
            used = found
    return used


def _check_listed(model: Path, manifest_path: Path) -> None:
    manifest = load_manifest(read_special(Path(manifest_path)), str(manifest_path))
    roots = (Path(os.path.abspath(manifest_path)).parent, Path(os.path.realpath(manifest_path)).parent)
    root = next((r for r in roots if model.is_relative_to(r)), roots[0])
    for path in (model, model.with_suffix(".json")):
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else None
        want = manifest["files"].get(rel)
        if want is None:
            if path == model:
                raise ManifestError(f"{model}: refusing to load a model that its bundle's manifest "
                                    f"{manifest_path} does not list")
            continue
        if not path.is_file():
            raise ManifestError(f"{path}: missing, but listed in the bundle manifest {manifest_path}")
        got = file_entry(path)
        if got["sha256"] != want["sha256"]:
            raise ManifestError(f"{path}: sha256 {got['sha256'][:12]}... does not match the bundle manifest "
                                f"{manifest_path} ({want['sha256'][:12]}...): the file changed after the bundle "
                                "was made; refusing to load it. Reinstall or redeploy the bundle.")


def require_bundled_model(model_path: str | os.PathLike) -> None:
    """check_model for the interpreter loader: a mismatch is a ModelError, which every command reports in one
    sentence."""
    from edge_runtime.errors import ModelError  # the package's, when there is one: a lone copy never gets here

    try:
        check_model(model_path)
    except ManifestError as exc:
        raise ModelError(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m edge_runtime.release.manifest",
                                     description="Check a fer-edge bundle (.tar.gz or folder) against its manifest.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("verify", help="exit 0 when every file matches manifest.json, 1 naming the first that does not")
    p.add_argument("bundle")
    p.add_argument("--allowed-signers", metavar="FILE", help="require a good signature of manifest.json by a key "
                   "in this ssh allowed-signers file")
    sub.add_parser("version", help="print the version a bundle folder's manifest gives").add_argument("bundle")
    p = sub.add_parser("older", help="exit 0 when release name A is older than B, else 1")
    p.add_argument("a")
    p.add_argument("b")
    args = parser.parse_args(argv)
    if args.command == "older":
        return 0 if version_key(args.a) < version_key(args.b) else 1
    try:
        if args.command == "version":
            print(load_manifest(read_special(Path(args.bundle, MANIFEST)), args.bundle)["version"])
            return 0
        manifest = verify(args.bundle, args.allowed_signers)
    except (ManifestError, OSError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 1
    signed = f", signed by {manifest['signed_by']}" if manifest.get("signed_by") else ""
    print(f"verify: {args.bundle}: release {manifest.get('version')}, {len(manifest['files'])} files match "
          f"{MANIFEST}{signed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
