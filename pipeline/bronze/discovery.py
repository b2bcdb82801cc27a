"""Finding bronze files: recursive glob, natural sort, and no path that escapes the bronze folder."""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from pipeline.bronze.compressed import COMPRESSIONS
from pipeline.errors import ConfigError
from pipeline.storage.atomic import TEMP_PREFIX
from pipeline.storage.store import FileStat, Store

_DIGITS = re.compile(r"(\d+)")


def natural_key(relative_path: str) -> tuple:
    """Sort key so that `part_2` comes before `part_10`; this order defines "first" for dedup."""
    parts = _DIGITS.split(relative_path.replace("\\", "/"))
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


@dataclass(frozen=True)
class BronzeFile:
    """One input CSV (plain, or compressed: `x.csv.gz`, `x.csv.zst`), named by its path relative to
    the bronze folder (the lineage key)."""

    relative_path: str
    absolute_path: PurePath  # a local path, or an object's (store.ObjectPath)
    stat: FileStat | None = field(default=None, compare=False)  # from the listing, on object storage


def discover_bronze(bronze_dir: PurePath, pattern: str = "**/*.csv", store: Store | None = None) -> list[BronzeFile]:
    """Every CSV under `bronze_dir` matching `pattern`, in natural order; refused paths left out."""
    return scan_bronze(bronze_dir, pattern, store)[0]


INPUT_EXTENSION = ".csv"  # matched without regard to case: Windows exporters write `.CSV`


def _stem_pattern(pattern: str) -> str:
    """The glob's last segment without its `.csv` (validated to end so, in any case)."""
    return pattern.rsplit("/", 1)[-1][: -len(INPUT_EXTENSION)]


def _walk_pattern(pattern: str) -> str:
    """The glob widened to every case of `.csv` and every compression suffix (`x.CSV.gz`): one walk
    of the tree finds them all, and `_matches_input` keeps the inputs among them."""
    return pattern[: -len(INPUT_EXTENSION)] + "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in INPUT_EXTENSION) + "*"


def _matches_input(name: str, stem_pattern: str) -> bool:
    """Whether a name the widened glob found is an input: the glob's last segment plain or with a
    compression suffix, the extensions in any case (`x.csv`, `x.CSV`, `x.Csv.gz`), not `x.csv.bak`."""
    lowered = name.lower()
    for suffix in ("", *COMPRESSIONS):
        if lowered.endswith(INPUT_EXTENSION + suffix):
            stem = name[: len(name) - len(INPUT_EXTENSION + suffix)]
            if fnmatch.fnmatchcase(stem, stem_pattern):
                return True
    return False


def scan_bronze(bronze_dir: PurePath, pattern: str = "**/*.csv", store: Store | None = None) -> tuple[list[BronzeFile], list[str]]:
    """(files in natural order of the relative path, one-line reasons for refused paths).

    What `pattern` matches is found plain and compressed, the extensions in any case: one walk of
    the folder with the glob widened (`_walk_pattern`), its finds filtered by name. A path that
    resolves outside the bronze folder (a symlink to elsewhere) is refused, so input cannot make the
    pipeline read, or name outputs after, files elsewhere on the machine. Whatever is named like an
    input but is not read (a folder, a dangling symlink, a symlink loop, a FIFO) is said, never
    skipped in silence. On object storage (`store.remote`) there are no symlinks, folders or
    FIFOs: one listing of the keys under bronze/, matched against the same glob.
    """
    if store is not None and store.remote:
        return _scan_objects(store, bronze_dir, pattern)
    bronze_dir = Path(bronze_dir)
    if not bronze_dir.exists():
        raise ConfigError(f"bronze folder {bronze_dir} does not exist "
                          "(generate a sample with `python run.py generate` or point --data-root at your data)")
    if not bronze_dir.is_dir():
        raise ConfigError(f"bronze folder {bronze_dir} is not a folder")
    root = bronze_dir.resolve()
    found: list[BronzeFile] = []
    refused: list[str] = []
    inside: dict[Path, bool] = {bronze_dir: True}  # folder -> it resolves inside the bronze folder
    stem_pattern = _stem_pattern(pattern)
    if pattern.startswith("**/") and "/" not in pattern[3:]:  # the default, `**/*.csv`
        _walk_all_folders(bronze_dir, stem_pattern, root, inside, found, refused)
        found.sort(key=lambda f: natural_key(f.relative_path))
        return found, sorted(set(refused), key=natural_key)
    for path in bronze_dir.glob(_walk_pattern(pattern)):
        if path.name.startswith(TEMP_PREFIX) or not _matches_input(path.name, stem_pattern):
            continue
        relative = path.relative_to(bronze_dir).as_posix()
        reason = _refusal(path, relative, bronze_dir, root, inside)
        if reason:
            refused.append(f"{relative}: {reason}")
        else:
            found.append(BronzeFile(relative_path=relative, absolute_path=path))
    if "**" in pattern:  # a recursive glob skips symlinked and unreadable folders: say so, never skip in silence
        def unreadable(error: OSError) -> None:
            relative = Path(error.filename).relative_to(bronze_dir).as_posix()
            refused.append(f"{relative}/: a folder that cannot be read ({error.strerror}); its files are not read")

        for folder, dirs, _names in os.walk(bronze_dir, onerror=unreadable):
            for name in dirs:
                if os.path.islink(os.path.join(folder, name)):
                    relative = Path(folder, name).relative_to(bronze_dir).as_posix()
                    refused.append(f"{relative}/: a symlinked folder; its files are not read (copy or bind-mount it instead)")
    found.sort(key=lambda f: natural_key(f.relative_path))
    return found, sorted(set(refused), key=natural_key)


def _walk_all_folders(bronze_dir: Path, stem_pattern: str, root: Path, inside: dict[Path, bool],
                      found: list[BronzeFile], refused: list[str]) -> None:
    """`**/<name>`: what the glob finds (every folder not reached through a symlink) and what the
    glob skips (symlinked and unreadable folders, said) in one walk, where the glob and a second
    walk for those took three stats a file and one a folder: a regular file costs no stat here, its
    type comes with the folder's listing (20,000 date folders: 1.3 s -> bench/README.md, "Planning")."""
    folders: list[tuple[str, str]] = [(str(bronze_dir), "")]
    while folders:
        folder, relative_folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as error:
            refused.append(f"{relative_folder.rstrip('/') or '.'}/: a folder that cannot be read ({error.strerror}); "
                           "its files are not read")
            continue
        for entry in entries:
            relative = relative_folder + entry.name
            if _is_folder(entry):
                if entry.is_symlink():
                    refused.append(f"{relative}/: a symlinked folder; its files are not read (copy or bind-mount it instead)")
                else:
                    folders.append((entry.path, relative + "/"))
            if entry.name.startswith(TEMP_PREFIX) or not _matches_input(entry.name, stem_pattern):
                continue
            path = Path(entry.path)
            reason = None if entry.is_file(follow_symlinks=False) else _refusal(path, relative, bronze_dir, root, inside)
            if reason:
                refused.append(f"{relative}: {reason}")
            else:
                found.append(BronzeFile(relative_path=relative, absolute_path=path))


def _is_folder(entry: os.DirEntry) -> bool:
    """A folder, or a symlink to one (the glob's test for `**`)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _refusal(path: Path, relative: str, bronze_dir: Path, root: Path, inside: dict[Path, bool]) -> str | None:
    """Why a path named like an input is not read, or None for a regular file inside bronze/."""
    try:
        escapes = (not _folder_inside(path.parent, bronze_dir, root, inside) or ".." in relative.split("/")
                   or (path.is_symlink() and not path.resolve(strict=True).is_relative_to(root)))
    except FileNotFoundError:
        return "a symlink whose target does not exist; not read"
    except (RuntimeError, OSError):  # RuntimeError: Python 3.11's "Symlink loop"
        return "a symlink loop (or a link that cannot be followed); not read"
    if escapes:
        return "points outside the bronze folder (a symlink?); refusing to read it"
    if path.is_dir():
        return "a folder named like an input file; not read (its files are matched by the glob on their own)"
    if not path.is_file():
        return "not a regular file (a FIFO, socket or device?); not read"
    return None


def _folder_inside(folder: Path, bronze_dir: Path, root: Path, known: dict[Path, bool]) -> bool:
    """`folder` (under `bronze_dir`) resolves inside the bronze folder: a folder that is no symlink
    is inside when its parent is, so only symlinked folders cost a realpath (at 20,000 date
    folders a realpath each took 0.7 s)."""
    if folder not in known:
        if folder.is_symlink():  # a loop raises: the caller names the path
            known[folder] = folder.resolve().is_relative_to(root)
        else:
            known[folder] = folder != folder.parent and _folder_inside(folder.parent, bronze_dir, root, known)
    return known[folder]


def _scan_objects(store: Store, bronze_dir: PurePath, pattern: str) -> tuple[list[BronzeFile], list[str]]:
    """The objects under `bronze_dir` that `pattern` matches (plain or compressed, any case)."""
    base = len(str(bronze_dir)) + 1
    stats = {str(entry.path)[base:]: entry for entry in store.list_files(bronze_dir)}
    relative_paths = sorted(stats)
    if not relative_paths and not store.is_dir(bronze_dir):
        raise ConfigError(f"bronze folder {bronze_dir} does not exist (no object under {bronze_dir}/; "
                          "upload your CSV files there or point --data-root at your data)")
    folders = _glob_regex(pattern.rsplit("/", 1)[0]) if "/" in pattern else None
    stem_pattern = _stem_pattern(pattern)
    found = []
    for relative in relative_paths:
        folder, _, name = relative.rpartition("/")
        if name.startswith(TEMP_PREFIX) or not _matches_input(name, stem_pattern):
            continue
        if (folders is None and folder) or (folders is not None and not folders.fullmatch(folder)):
            continue
        found.append(BronzeFile(relative_path=relative, absolute_path=bronze_dir / relative, stat=stats[relative]))
    found.sort(key=lambda f: natural_key(f.relative_path))
    return found, []


def _glob_regex(folders: str) -> re.Pattern[str]:
    """The folder part of a glob (`**`, `date=*`, `a/b`) as a regex over a relative folder path,
    with pathlib's meaning: `**` is any number of folders (none too), `*` and `?` stay in one."""
    pieces = []
    for segment in folders.split("/"):
        if segment == "**":
            pieces.append("(?:[^/]+(?:/[^/]+)*)?")
        else:
            pieces.append(fnmatch.translate(segment).removeprefix("(?s:").removesuffix(")\\Z").replace(".*", "[^/]*"))
    regex = "/".join(pieces).replace("(?:[^/]+(?:/[^/]+)*)?/", "(?:[^/]+/)*")
    return re.compile(regex)
