"""Artifacts, locally: runstore.Artifact (wandb.Artifact under RUNSTORE_AS_WANDB).

    art = runstore.Artifact("model", type="model", metadata={"acc": 0.9})
    art.add_file("model.ckpt")                    # or add_dir(path), add_reference(uri)
    run.log_artifact(art, aliases=["best"])       # -> version v0, v1, ...; alias "latest"
    path = run.use_artifact("model:best").download()

Versions, aliases, files and lineage live in the run's store (schema/009_artifacts.sql).
Files are content-addressed by SHA-256: up to INLINE_MAX bytes in the store file itself,
larger ones beside it in `<dir>/artifacts/<sha[:2]>/<sha256>`. A file's bytes are read
when the artifact is logged. `download()` writes the files to `./artifacts/<name>:v<N>`
(or `root`), as wandb does.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import UsageError

# Files up to this size are kept inside runstore.db (as `blobs`); larger ones beside it.
INLINE_MAX = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
_FORBIDDEN = set("/:\\")


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f"an artifact name must be a non-empty string, got {name!r}")
    if _FORBIDDEN & set(name) or len(name) > 128:
        raise UsageError(f"artifact name {name!r} must be at most 128 characters without "
                         "'/', ':' or '\\'")
    return name


class ArtifactEntry:
    """One file of an artifact (what get_path() / get_entry() return)."""

    def __init__(self, artifact: Artifact, path: str, sha256: str | None, size: int | None,
                 ref: str | None = None) -> None:
        self._artifact = artifact
        self.path = self.name = path
        self.digest = self.sha256 = sha256
        self.size = size
        self.ref = ref

    def download(self, root: str | os.PathLike | None = None) -> str:
        """Write this file under `root` (default: the artifact's download directory);
        returns the local path."""
        return self._artifact._download_one(self.path, root)

    def ref_target(self) -> str | None:
        return self.ref

    def __repr__(self) -> str:
        return f"<ArtifactEntry {self.path}>"


class Artifact:
    """A versioned set of files, logged with run.log_artifact() and read back with
    run.use_artifact(); the arguments are wandb.Artifact's."""

    def __init__(self, name: str, type: str, description: str | None = None,
                 metadata: dict[str, Any] | None = None, incremental: bool = False,
                 use_as: str | None = None, **_: Any) -> None:
        self._name = _check_name(name)
        if not isinstance(type, str) or not type:
            raise UsageError(f"an artifact type must be a non-empty string, got {type!r}")
        self.type = type
        self.description = description
        self.metadata = dict(metadata or {})
        self._entries: dict[str, dict[str, Any]] = {}  # name -> {"source"|"ref"|...}
        self._tmp: list[str] = []
        self._stored: dict[str, Any] | None = None  # the version row once logged or used
        self._store_dir: Path | None = None
        self.aliases: list[str] = []
        self.incremental = incremental

    # -- building ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._stored is not None:
            raise UsageError(f"artifact {self.name} is logged; make a new Artifact to change it")

    def add_file(self, local_path: str | os.PathLike, name: str | None = None,
                 is_tmp: bool | None = False, skip_cache: bool | None = False,
                 policy: str | None = "mutable", overwrite: bool = False) -> ArtifactEntry:
        """Add one file, as `name` (default: the file's name)."""
        self._check_open()
        path = Path(local_path)
        if not path.is_file():
            raise UsageError(f"artifact file {str(path)!r} does not exist or is not a file")
        entry_name = Path(name).as_posix() if name else path.name
        if entry_name in self._entries and not overwrite:
            existing = self._entries[entry_name].get("source")
            if existing != path.resolve():
                raise UsageError(f"artifact {self._name} already has a file {entry_name!r} "
                                 "(pass overwrite=True to replace it)")
        self._entries[entry_name] = {"source": path.resolve()}
        return ArtifactEntry(self, entry_name, None, path.stat().st_size)

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None,
                skip_cache: bool | None = False, policy: str | None = "mutable",
                merge: bool = False) -> None:
        """Add every file under a directory (names relative to it, under `name/`)."""
        self._check_open()
        root = Path(local_path)
        if not root.is_dir():
            raise UsageError(f"artifact directory {str(root)!r} does not exist")
        for dirpath, _, filenames in os.walk(root):
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                rel = path.relative_to(root).as_posix()
                self.add_file(path, name=f"{name.rstrip('/')}/{rel}" if name else rel,
                              overwrite=True)

    def add_reference(self, uri: str | os.PathLike, name: str | None = None,
                      checksum: bool = True, max_objects: int | None = None) -> list[ArtifactEntry]:
        """Record a URI without copying it. A local path or file:// URI is checksummed
        (each file under a directory is its own entry) so new content makes a new version."""
        self._check_open()
        uri = os.fspath(uri)
        local = uri[len("file://"):] if uri.startswith("file://") else (
            None if "://" in uri else uri)
        entries = []
        if local is not None and checksum and Path(local).is_dir():
            base = Path(local)
            for dirpath, _, filenames in os.walk(base):
                for filename in sorted(filenames):
                    path = Path(dirpath, filename)
                    rel = path.relative_to(base).as_posix()
                    entry_name = f"{name.rstrip('/')}/{rel}" if name else rel
                    file_sha, file_size = _sha256_file(path)
                    self._entries[entry_name] = {"ref": path.resolve().as_uri(),
                                                 "sha256": file_sha, "size": file_size}
                    entries.append(ArtifactEntry(self, entry_name, file_sha, file_size,
                                                 path.resolve().as_uri()))
            return entries
        entry_name = name or Path(local or uri.rstrip("/")).name or uri
        sha: str | None = None
        size: int | None = None
        if local is not None and checksum and Path(local).is_file():
            sha, size = _sha256_file(Path(local))
            uri = Path(local).resolve().as_uri()
        self._entries[entry_name] = {"ref": uri, "sha256": sha, "size": size}
        return [ArtifactEntry(self, entry_name, sha, size, uri)]

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None) -> Iterator[Any]:
        """Open a new file to write into the artifact as `name`."""
        import tempfile

        self._check_open()
        folder = tempfile.mkdtemp(prefix="runstore-artifact-")
        self._tmp.append(folder)
        path = Path(folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        if "b" not in mode and encoding is None:
            encoding = "utf-8"
        with open(path, mode.replace("x", "w"), encoding=encoding) as handle:
            yield handle
        self.add_file(path, name=name, overwrite=True)

    def remove(self, item: str) -> None:
        self._check_open()
        self._entries.pop(item, None)

    # -- what it is -------------------------------------------------------------------

    @property
    def name(self) -> str:
        """`name`, or `name:v<N>` once logged or used (as wandb shows it)."""
        return self._name if self._stored is None else f"{self._name}:{self.version}"

    @property
    def source_name(self) -> str:
        return self.name

    @property
    def qualified_name(self) -> str:
        if self._stored is None:
            return self._name
        return f"{self._stored['entity']}/{self._stored['project']}/{self.name}"

    @property
    def version(self) -> str | None:
        return None if self._stored is None else f"v{self._stored['version']}"

    @property
    def digest(self) -> str | None:
        return None if self._stored is None else self._stored["digest"]

    @property
    def id(self) -> str | None:
        return None if self._stored is None else str(self._stored["version_key"])

    @property
    def size(self) -> int:
        if self._stored is not None:
            return self._stored["size"]
        return sum(e.get("size") or (e["source"].stat().st_size if "source" in e else 0)
                   for e in self._entries.values())

    @property
    def state(self) -> str:
        return "PENDING" if self._stored is None else "COMMITTED"

    def logged_by(self) -> str | None:
        """The id of the run that logged this version."""
        return None if self._stored is None else self._stored["logged_by"]

    def used_by(self) -> list[str]:
        """The ids of the runs that used this version."""
        return [] if self._stored is None else list(self._stored["used_by"])

    def wait(self, timeout: float | None = None) -> Artifact:
        return self  # logging is synchronous

    def files(self) -> list[ArtifactEntry]:
        return [self.get_entry(path) for path in sorted(self._file_rows())]

    def get_entry(self, name: str) -> ArtifactEntry:
        rows = self._file_rows()
        if name not in rows:
            raise KeyError(f"artifact {self.name} has no file {name!r}")
        row = rows[name]
        return ArtifactEntry(self, name, row.get("sha256"), row.get("size"), row.get("ref"))

    get_path = get_entry

    def _file_rows(self) -> dict[str, dict[str, Any]]:
        if self._stored is not None:
            return {f["path"]: f for f in self._stored["files"]}
        return {k: {"sha256": v.get("sha256"), "size": v.get("size"), "ref": v.get("ref")}
                for k, v in self._entries.items()}

    def __repr__(self) -> str:
        return f"<Artifact {self.name} ({self.type})>"

    # -- reading back -----------------------------------------------------------------

    def _default_root(self) -> Path:
        base = os.environ.get("RUNSTORE_ARTIFACT_DIR") or os.environ.get(
            "WANDB_ARTIFACT_DIR") or "artifacts"
        return Path(base) / f"{self._name}:{self.version}"

    def download(self, root: str | os.PathLike | None = None,
                 allow_missing_references: bool = False, skip_cache: bool | None = None,
                 path_prefix: str | None = None, **_: Any) -> str:
        """Write the version's files (not its references) under `root` (default
        ./artifacts/<name>:v<N>); returns that directory."""
        if self._stored is None:
            raise UsageError(f"artifact {self._name} is not logged yet; nothing to download")
        target = Path(root) if root is not None else self._default_root()
        for path in self._file_rows():
            if path_prefix and not path.startswith(path_prefix):
                continue
            self._download_one(path, target)
        return str(target)

    def file(self, root: str | os.PathLike | None = None) -> str:
        """Download the artifact's one file; returns its path."""
        rows = self._file_rows()
        if len(rows) != 1:
            raise UsageError(f"artifact {self.name} has {len(rows)} files; use download()")
        return self._download_one(next(iter(rows)), root)

    def _download_one(self, path: str, root: str | os.PathLike | None) -> str:
        if self._stored is None or self._store_dir is None:  # set together when logged
            raise UsageError(f"artifact {self._name} is not logged yet; nothing to download")
        row = self._file_rows()[path]
        target_root = Path(root) if root is not None else self._default_root()
        target = target_root / path
        if row.get("ref") is not None:
            return row["ref"]  # a reference is not copied
        if target.is_file() and _sha256_file(target)[0] == row["sha256"]:
            return str(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        if row.get("location"):
            import shutil

            shutil.copyfile(self._store_dir / row["location"], tmp)
        else:
            from . import _store
            from ._store import _artifacts as stored_artifacts

            conn = _store.connect(self._store_dir / _store.STORE_FILENAME, readonly=True)
            try:
                content = stored_artifacts.read_blob(conn, row["sha256"])
            finally:
                conn.close()
            if content is None:
                raise UsageError(f"the store has lost the bytes of {path} ({row['sha256']})")
            tmp.write_bytes(content)
        os.replace(tmp, target)
        return str(target)


# -- logging and using ------------------------------------------------------------------


def _open_store(run: Any) -> Any:
    from . import _store

    return _store.connect(Path(run.dir) / _store.STORE_FILENAME)


def _run_key(conn: Any, run: Any) -> int:
    from . import _store

    key = _store.find_run_key(conn, run.entity, run.project, run.id)
    if key is None:
        raise UsageError(f"run {run.path} is not in its store {run.dir}")
    return key


def _place(store_dir: Path, source: Path, sha: str) -> str:
    """Copy a large file beside the store, once per content; returns its location."""
    import shutil

    location = f"artifacts/{sha[:2]}/{sha}"
    target = store_dir / location
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{sha}.part")
        shutil.copyfile(source, tmp)
        if _sha256_file(tmp)[0] != sha:
            tmp.unlink()
            raise UsageError(f"{source} changed while it was being logged; log it again")
        os.replace(tmp, target)
    return location


def log_artifact(run: Any, artifact: Any, name: str | None = None, type: str | None = None,
                 aliases: list[str] | None = None, tags: list[str] | None = None) -> Artifact:
    """run.log_artifact(): store `artifact` (an Artifact, or a path to a file or
    directory) as the next version of its name, logged by `run`."""
    if not isinstance(artifact, Artifact):
        path = Path(os.fspath(artifact))
        built = Artifact(name or f"run-{run.id}-{path.name}", type or "unspecified")
        if path.is_dir():
            built.add_dir(path)
        else:
            built.add_file(path)
        artifact = built
    if isinstance(aliases, str):
        aliases = [aliases]
    for alias in aliases or []:
        if not isinstance(alias, str) or not alias or _FORBIDDEN & set(alias):
            raise UsageError(f"artifact alias {alias!r} must be a non-empty string without "
                             "'/', ':' or '\\'")
    if run.disabled:
        return artifact
    from ._store import _artifacts as stored_artifacts
    from ._values import utc_now

    store_dir = Path(run.dir)
    files, inline = [], {}
    for entry_name, entry in sorted(artifact._entries.items()):
        if "ref" in entry:
            files.append({"path": entry_name, "sha256": entry.get("sha256"),
                          "size": entry.get("size"), "location": None, "ref": entry["ref"]})
            continue
        source = entry["source"]
        if not source.is_file():
            raise UsageError(f"artifact file {source} is gone; it is read when logged")
        sha, size = _sha256_file(source)
        location = None
        if size > INLINE_MAX:
            location = _place(store_dir, source, sha)
        else:
            content = source.read_bytes()
            sha = hashlib.sha256(content).hexdigest()  # what is stored is what was read
            inline[sha] = content
        files.append({"path": entry_name, "sha256": sha, "size": size, "location": location,
                      "ref": None})
    digest = hashlib.sha256(json.dumps(
        [[f["path"], f["sha256"], f["ref"]] for f in files]).encode()).hexdigest()
    conn = _open_store(run)
    try:
        stored = stored_artifacts.add_version(
            conn, entity=run.entity, project=run.project, name=artifact._name,
            type=artifact.type, description=artifact.description, metadata=artifact.metadata,
            digest=digest, files=files, inline=inline, aliases=list(aliases or []),
            run_key=_run_key(conn, run), at=utc_now())
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    finally:
        conn.close()
    artifact._stored, artifact._store_dir = stored, store_dir
    artifact.aliases = list(stored["aliases"])
    import shutil

    for folder in artifact._tmp:
        shutil.rmtree(folder, ignore_errors=True)
    artifact._tmp.clear()
    return artifact


def parse_name(spec: str, entity: str, project: str) -> tuple[str, str, str, str]:
    """"name", "name:alias", "project/name:v2", "entity/project/name:latest" ->
    (entity, project, name, selector)."""
    path, _, selector = spec.partition(":")
    parts = path.split("/")
    if len(parts) == 3:
        entity, project, name = parts
    elif len(parts) == 2:
        project, name = parts
    elif len(parts) == 1:
        (name,) = parts
    else:
        raise UsageError(f"cannot read artifact name {spec!r}; use [entity/project/]name[:alias]")
    return entity, project, _check_name(name), selector or "latest"


def load(store_dir: Path, spec: str, entity: str, project: str,
         type: str | None = None) -> Artifact:
    """The stored version `spec` names, as an Artifact (read-only)."""
    from . import _store
    from ._store import _artifacts as stored_artifacts

    entity, project, name, selector = parse_name(spec, entity, project)
    conn = _store.connect(store_dir / _store.STORE_FILENAME)
    try:
        stored = stored_artifacts.find_version(conn, entity, project, name, selector)
    finally:
        conn.close()
    if stored is None:
        raise UsageError(f"no artifact {spec!r} in {entity}/{project} of the store {store_dir}")
    if type is not None and stored["type"] != type:
        raise UsageError(f"artifact {spec!r} has type {stored['type']!r}, not {type!r}")
    artifact = Artifact(name, stored["type"], stored["description"], stored["metadata"])
    artifact._stored, artifact._store_dir = stored, store_dir
    artifact.aliases = list(stored["aliases"])
    return artifact


def use_artifact(run: Any, artifact_or_name: Any, type: str | None = None,
                 aliases: list[str] | None = None, use_as: str | None = None) -> Any:
    """run.use_artifact(): the stored version, recorded as used by `run`."""
    if run.disabled:
        return None
    from ._store import _artifacts as stored_artifacts
    from ._values import utc_now

    if isinstance(artifact_or_name, Artifact):
        if artifact_or_name._stored is None:
            raise UsageError(f"artifact {artifact_or_name.name} is not logged; log it with "
                             "run.log_artifact() first")
        artifact = artifact_or_name
    else:
        artifact = load(Path(run.dir), str(artifact_or_name), run.entity, run.project, type)
    stored = artifact._stored
    assert stored is not None  # logged (checked above) or loaded from the store
    conn = _open_store(run)
    try:
        stored_artifacts.use_version(conn, _run_key(conn, run), stored["version_key"],
                           utc_now())
    finally:
        conn.close()
    artifact._stored = {**stored, "used_by": [*stored["used_by"], run.id]}
    return artifact
