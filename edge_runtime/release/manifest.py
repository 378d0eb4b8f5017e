"""manifest.json: what a bundle holds (sha256 and size of every file), and the checks against it.

Standard library only, so a device can run `python3 -m edge_runtime.release.manifest verify DIR`
from the bundled wheel (a zip on sys.path) before it installs anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

MANIFEST = "manifest.json"
FORMAT = 1


class ManifestError(ValueError):
    """A bundle or a file in it does not match its manifest."""


def sha256_of(stream, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    while block := stream.read(chunk):
        digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict:
    with open(path, "rb") as fh:
        return {"sha256": sha256_of(fh), "size": path.stat().st_size}


def tree_files(root: Path, ignore: Iterable[str] = ()) -> list[str]:
    """Every regular file below root as a POSIX relative path, sorted; top-level names in `ignore` skipped."""
    skip = {MANIFEST, *ignore}
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        if rel == Path("."):
            dirnames[:] = [d for d in dirnames if d not in skip]
            filenames = [f for f in filenames if f not in skip]
        found.extend((rel / name).as_posix() for name in filenames)
    return sorted(found)


def write_manifest(root: Path, fields: dict) -> dict:
    """Hash every file below root into root/manifest.json, after `fields` (version, models, parity...)."""
    manifest = {"format": FORMAT, **fields, "files": {rel: file_entry(root / rel) for rel in tree_files(root)}}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_manifest(text: bytes | str, where: str) -> dict:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{where}: not a readable manifest: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise ManifestError(f"{where}: not a fer-edge manifest (no 'files' table)")
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


def verify_dir(root: str | os.PathLike, ignore: Iterable[str] = ()) -> dict:
    """Check an unpacked bundle (or an installed release, ignoring e.g. its venv); returns the manifest."""
    root = Path(root)
    path = root / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{MANIFEST}: missing in {root}")
    manifest = load_manifest(path.read_bytes(), str(path))
    compare(manifest["files"], tree_files(root, ignore), lambda rel: file_entry(root / rel))
    return manifest


def verify_tarball(bundle: str | os.PathLike) -> dict:
    """Check a BUNDLE.tar.gz without unpacking it: one top folder, regular files only, all as listed."""
    entries: dict[str, dict] = {}
    manifest_text = None
    top = None
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            for member in tar:
                parts = PurePosixPath(member.name).parts
                if not parts or member.name.startswith("/") or ".." in parts or (top and parts[0] != top):
                    raise ManifestError(f"{member.name}: outside the bundle's one top folder")
                top = parts[0]
                rel = PurePosixPath(*parts[1:]).as_posix() if len(parts) > 1 else ""
                if member.isdir():
                    continue
                if not member.isfile():
                    raise ManifestError(f"{rel or member.name}: not a regular file (links are refused)")
                data = tar.extractfile(member)
                if rel == MANIFEST:
                    manifest_text = data.read()
                else:
                    entries[rel] = {"sha256": sha256_of(data), "size": member.size}
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ManifestError(f"{bundle}: not a readable .tar.gz bundle: {exc}") from exc
    if manifest_text is None:
        raise ManifestError(f"{MANIFEST}: missing in {bundle}")
    manifest = load_manifest(manifest_text, f"{bundle}:{MANIFEST}")
    compare(manifest["files"], entries, entries.__getitem__)
    manifest["top"] = top
    return manifest


def verify(bundle: str | os.PathLike, ignore: Iterable[str] = ()) -> dict:
    """A bundle .tar.gz or an unpacked bundle folder: its manifest when every file matches, else ManifestError."""
    return verify_dir(bundle, ignore) if Path(bundle).is_dir() else verify_tarball(bundle)


def find_manifest(model_path: str | os.PathLike) -> Path | None:
    """The fer-edge manifest.json of the bundle or release a model lies in (searching upwards), or None.

    Another project's manifest.json on the way (a web app's) is not ours and is passed by."""
    for folder in Path(os.path.abspath(model_path)).parents:
        try:
            manifest = load_manifest((folder / MANIFEST).read_bytes(), str(folder / MANIFEST))
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
    manifest = load_manifest(manifest_path.read_bytes(), str(manifest_path))
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
    from edge_runtime.interpreter import ModelError  # numpy: imported here, the verifier needs only the stdlib

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
    p.add_argument("--ignore", action="append", default=[], metavar="NAME",
                   help="a top-level name that is not part of the bundle (an installed release's venv)")
    sub.add_parser("version", help="print the version a bundle folder's manifest gives").add_argument("bundle")
    args = parser.parse_args(argv)
    try:
        if args.command == "version":
            print(load_manifest(Path(args.bundle, MANIFEST).read_bytes(), args.bundle)["version"])
            return 0
        manifest = verify(args.bundle, args.ignore)
    except (ManifestError, OSError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 1
    print(f"verify: {args.bundle}: release {manifest.get('version')}, {len(manifest['files'])} files match "
          f"{MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
