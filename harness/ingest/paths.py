"""Finding submissions: which files and folders are one student's work, and under which id.

A path may be one notebook (``.ipynb``), one module (``.py``), a student's folder, a class
folder holding any of these, or a ``.zip`` (a student's archive, or Moodle's "download all
submissions"), extracted safely first. Nothing here reads the code (``harness.ingest.read``).

>>> paths, ignored = discover([Path("submissions")])     # doctest: +SKIP
>>> ids = assign_ids(paths)                               # doctest: +SKIP
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import unicodedata
import zipfile
import zlib
from pathlib import Path

from harness.results import IgnoredItem

SUBMISSION_SUFFIXES = (".ipynb", ".py")

# Moodle's "download all submissions": one folder per student and submission plugin,
# "Jean Dupont_12345_assignsubmission_file_" (or files named "Jean Dupont_12345_assignsubmission_file_x.ipynb").
MOODLE_NAME = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<rest>.*)$")
ARCHIVE_SUFFIXES = (".zip",)
ARCHIVE_MAX_MEMBERS = 5000
ARCHIVE_MAX_FILE_BYTES = 200 * 2**20
ARCHIVE_MAX_TOTAL_BYTES = 1024 * 2**20
ARCHIVE_MAX_DEPTH = 2  # a zip inside a zip (a student's upload inside Moodle's download)
SKIPPED_NAMES = {
    "__MACOSX": "macOS archive metadata",
    ".DS_Store": "macOS folder metadata",
    ".ipynb_checkpoints": "Jupyter autosave checkpoints",
    "__pycache__": "Python bytecode cache",
    "Thumbs.db": "Windows thumbnail cache",
    "desktop.ini": "Windows folder settings",
}

# What students hand in instead of a notebook: found like a submission, graded `invalid` with the reason
# (harness/ingest/read.py), so that the student is in the gradebook; any other file is listed as ignored. A
# PDF or a document beside the submissions may be the instructor's (a syllabus): only an HTML file that is a
# notebook's export (NOTEBOOK_HTML) and the archive formats the harness does not open count.
HANDED_IN_INSTEAD = {
    ".html": "an HTML export of a notebook",
    ".htm": "an HTML export of a notebook",
    ".rar": "a RAR archive",
    ".7z": "a 7-Zip archive",
    ".tar": "a tar archive",
    ".tgz": "a tar archive",
    ".gz": "a gzip archive",
}
NOTEBOOK_HTML = re.compile(rb"(?i)jp-Notebook|jp-Cell|nbconvert|jupyter|colab|ipynb")


def handed_in_instead(path: Path) -> bool:
    """A file in a class folder that a student handed in instead of a notebook (see HANDED_IN_INSTEAD)."""
    suffix = path.suffix.lower()
    if suffix not in HANDED_IN_INSTEAD:
        return False
    if suffix in (".html", ".htm"):
        try:
            with path.open("rb") as opened:
                return bool(NOTEBOOK_HTML.search(opened.read(256 * 1024)))
        except OSError:
            return False
    return True


def wrong_format_reason(path: Path) -> str:
    """Why a file handed in instead of a notebook is not graded, and what to hand in."""
    what = HANDED_IN_INSTEAD.get(path.suffix.lower(), f"a {path.suffix or 'file without extension'} file")
    if "archive" in what:
        return f"{path.name} is {what}: the harness opens .zip archives only; hand in a .zip or the notebook itself."
    return (
        f"{path.name} is {what}, not a notebook: the harness retrains the models of the notebook itself "
        "(.ipynb) or of a .py module; hand in the notebook."
    )


def moodle_name(name: str) -> str | None:
    """The student's name in a Moodle download's folder or file name, else None."""
    match = MOODLE_NAME.match(unicodedata.normalize("NFC", name).strip())
    return match.group("name").strip() if match else None


def student_id(path: Path) -> str:
    """A student's id: the file's stem or the folder's name, NFC-normalised, accents kept.

    A Moodle download's name keeps only the student's name:
    ``Jean Dupont_12345_assignsubmission_file_`` → ``Jean Dupont``.
    """
    name = path.stem if path.is_file() else path.name
    name = unicodedata.normalize("NFC", name).strip()
    return moodle_name(name) or name


def _candidates(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in SUBMISSION_SUFFIXES and not p.name.startswith(".")
    )


def _has_submissions_below(folder: Path) -> bool:
    return any(
        p.is_dir()
        and not p.name.startswith(".")
        and p.name not in SKIPPED_NAMES
        and (_candidates(p) or _has_submissions_below(p))
        for p in folder.iterdir()
    )


def _is_student_folder(folder: Path) -> bool:
    """One student's folder: at most one notebook (a .py alone if no notebook), no subfolders of work.

    A Moodle folder (``Jean Dupont_12345_assignsubmission_file_``) is always one student's,
    whatever it holds: its first notebook is graded and the other files are listed as ignored.
    """
    files = _candidates(folder)
    if moodle_name(folder.name) and (files or _has_submissions_below(folder)):
        return True
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    modules = [p for p in files if p.suffix == ".py"]
    if _has_submissions_below(folder) or _archives_with_work(folder):
        return False
    return len(notebooks) == 1 or (not notebooks and len(modules) == 1)


def _archives_with_work(folder: Path) -> bool:
    """Whether `folder` holds a zip with a notebook or module inside: another student's archive beside a loose
    notebook makes it a class folder (a zip of data or models beside one's notebook does not)."""
    for archive in folder.iterdir():
        if not (archive.is_file() and archive.suffix.lower() in ARCHIVE_SUFFIXES):
            continue
        try:
            with zipfile.ZipFile(archive) as opened:
                names = opened.namelist()
        except ZIP_ERRORS:
            continue
        if any(_is_work_member(name) for name in names):
            return True
    return False


def _is_work_member(name: str) -> bool:
    """A notebook or module in an archive, not a macOS resource fork or a Jupyter checkpoint."""
    parts = name.replace("\\", "/").split("/")
    return Path(parts[-1]).suffix in SUBMISSION_SUFFIXES and not _hidden(parts)


def _hidden(parts) -> bool:
    """A path under a skipped folder or file (``__MACOSX``, ``.ipynb_checkpoints``) or a hidden one (``._x``)."""
    return any(part in SKIPPED_NAMES or part.startswith(".") for part in parts)


def _zip_member_name(info: zipfile.ZipInfo) -> str:
    """The member's name as its author wrote it: zips without the UTF-8 flag (Windows, old macOS)
    store names as bytes that zipfile reads as cp437; UTF-8 bytes are recovered when they decode."""
    name = info.filename
    if not info.flag_bits & 0x800:
        try:
            name = name.encode("cp437").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return unicodedata.normalize("NFC", name)


# What zipfile raises on a damaged archive or member (found by tests/ingest/test_properties.py): a bad
# CRC or header, a broken deflate stream (zlib.error), a truncated member (EOFError), a name flagged
# UTF-8 that is not (UnicodeDecodeError, a ValueError), an unknown version or method.
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, RuntimeError, NotImplementedError)


class _OverLimit(Exception):
    """A member decompressed past a size limit (not a ValueError: zipfile raises those too)."""


def _safe_member_parts(name: str) -> list[str] | None:
    """The member's path parts, or None when it would land outside the extraction folder."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        return None
    return parts


def extract_archive(archive: Path, dest_root: Path, ignored: list[IgnoredItem], depth: int = 0) -> Path | None:
    """Extract a zip safely into ``dest_root/<sha256[:12]>/<archive stem>/``; None if it cannot be read.

    No member is written outside that folder (absolute names and ``..`` are refused), links are
    not extracted, and the member count and sizes are capped (a zip bomb stops the extraction).
    A single top-level folder is flattened, so the student id is the archive's name. Every
    member not extracted is added to `ignored` with the reason. An archive already extracted
    (same content) is not extracted again.
    """
    label = str(archive)
    try:
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
        handle = zipfile.ZipFile(archive)
    except ZIP_ERRORS as error:
        ignored.append(IgnoredItem(name=label, reason=f"not a readable zip archive ({error})"))
        return None
    stem = unicodedata.normalize("NFC", archive.stem).strip() or "archive"
    target = Path(dest_root) / digest / stem
    with handle:
        entries = _archive_entries(handle, label, ignored)
        if entries is None:
            return None
        if (target.parent / EXTRACTED_MARKER).exists() and target.is_dir():
            return target
        # Built aside and renamed into place: other graders or threads may be extracting the same archive
        # into the same folder, and must never see half of it or delete what the other is writing.
        Path(dest_root).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=dest_root))
        try:
            os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the submission from a sandbox run as another user
            _write_entries(handle, entries, staging / stem, label, ignored)
            (staging / stem).mkdir(exist_ok=True)
            _extract_inner_archives(staging / stem, dest_root, ignored, depth, label)
            (staging / EXTRACTED_MARKER).write_text(label, encoding="utf-8")
            _install_extraction(staging, target.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


EXTRACTED_MARKER = ".extracted"


def _install_extraction(staging: Path, final: Path) -> None:
    """Rename the complete extraction `staging` to `final`, unless another extractor's complete one is
    already there (the same archive: the same files); one without its marker (left by an extraction
    killed under an older harness) is renamed aside first, then deleted."""
    for _ in range(20):
        try:
            os.rename(staging, final)
            return
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
        if (final / EXTRACTED_MARKER).exists():
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{final.name}.old.", dir=final.parent))
        try:
            os.replace(final, aside)
        except FileNotFoundError:
            pass
        finally:
            shutil.rmtree(aside, ignore_errors=True)
    raise OSError(f"could not install the extraction of {final.name}: other extractors keep replacing it")


def _archive_entries(
    handle: zipfile.ZipFile, label: str, ignored: list[IgnoredItem]
) -> list[tuple[zipfile.ZipInfo, list[str]]] | None:
    """The members to extract, each with its path parts (one wrapping folder flattened); those
    refused go to `ignored`. None when the archive has too many members to extract at all."""
    members = handle.infolist()
    if len(members) > ARCHIVE_MAX_MEMBERS:
        ignored.append(
            IgnoredItem(
                name=label,
                reason=f"archive has {len(members)} entries (more than {ARCHIVE_MAX_MEMBERS}): not extracted",
            )
        )
        return None
    entries: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for info in members:
        name = _zip_member_name(info)
        parts = _safe_member_parts(name)
        where = f"{label}:{name}"
        if parts is None:
            ignored.append(
                IgnoredItem(name=where, reason="unsafe path in the archive (absolute or '..'): not extracted")
            )
            continue
        if not parts:
            continue
        skipped = next((SKIPPED_NAMES[p] for p in parts if p in SKIPPED_NAMES), None)
        if skipped:
            if not info.is_dir():
                ignored.append(IgnoredItem(name=where, reason=f"{skipped}: not extracted"))
            continue
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            ignored.append(IgnoredItem(name=where, reason="symbolic link in the archive: not extracted"))
            continue
        if info.flag_bits & 0x1:
            ignored.append(IgnoredItem(name=where, reason="encrypted member: not extracted"))
            continue
        if info.is_dir():
            continue
        entries.append((info, parts))
    # one wrapping folder (not a Moodle student folder) is flattened
    tops = {parts[0] for _, parts in entries}
    if len(tops) == 1 and all(len(parts) > 1 for _, parts in entries) and not moodle_name(next(iter(tops))):
        entries = [(info, parts[1:]) for info, parts in entries]
    return entries


def _write_entries(
    handle: zipfile.ZipFile,
    entries: list[tuple[zipfile.ZipInfo, list[str]]],
    target: Path,
    label: str,
    ignored: list[IgnoredItem],
) -> None:
    """Write `entries` under `target`, counting the bytes actually decompressed (a member may be larger
    than it declares): past a file's or the archive's size limit, extraction stops there."""
    total = 0
    for info, parts in entries:
        where = f"{label}:{'/'.join(parts)}"
        if info.file_size > ARCHIVE_MAX_FILE_BYTES:
            ignored.append(
                IgnoredItem(
                    name=where,
                    reason=f"file of {info.file_size / 2**20:.0f} MiB "
                    f"(limit {ARCHIVE_MAX_FILE_BYTES // 2**20} MiB): not extracted",
                )
            )
            continue
        out_path = target.joinpath(*parts)
        if not out_path.resolve().is_relative_to(target.resolve()):
            ignored.append(IgnoredItem(name=where, reason="unsafe path in the archive: not extracted"))
            continue
        out_path.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with handle.open(info) as source, open(out_path, "wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    total += len(chunk)
                    if written > ARCHIVE_MAX_FILE_BYTES or total > ARCHIVE_MAX_TOTAL_BYTES:
                        raise _OverLimit
                    sink.write(chunk)
        except _OverLimit:
            out_path.unlink(missing_ok=True)
            ignored.append(
                IgnoredItem(
                    name=where,
                    reason="larger than declared or over the archive's "
                    f"size limit ({ARCHIVE_MAX_TOTAL_BYTES // 2**20} MiB "
                    "in all): extraction stopped",
                )
            )
            return
        except ZIP_ERRORS as error:  # a damaged member is one member lost, not the batch
            out_path.unlink(missing_ok=True)
            ignored.append(IgnoredItem(name=where, reason=f"could not be extracted ({error})"))


def _extract_inner_archives(target: Path, dest_root: Path, ignored: list[IgnoredItem], depth: int, label: str) -> None:
    """Zips inside the extracted archive (a student's upload inside Moodle's download), extracted in
    place of the zip, down to ARCHIVE_MAX_DEPTH; deeper ones are listed as ignored."""
    if depth + 1 < ARCHIVE_MAX_DEPTH:
        for inner in sorted(target.rglob("*.zip")):
            parent = inner.parent
            extracted = extract_archive(inner, dest_root, ignored, depth + 1)
            if extracted is not None:
                place = (
                    parent / extracted.name
                    if not (parent / extracted.name).exists()
                    else parent / f"{extracted.name}-zip"
                )
                shutil.copytree(extracted, place)
                inner.unlink()
    else:
        for inner in sorted(target.rglob("*.zip")):
            ignored.append(
                IgnoredItem(
                    name=f"{label}:{inner.relative_to(target)}",
                    reason=f"archive nested more than {ARCHIVE_MAX_DEPTH} deep: not extracted",
                )
            )


def default_archive_dir() -> Path:
    """Where archives are extracted when the caller names no folder (a per-user temporary folder)."""
    return Path(tempfile.gettempdir()) / f"harness-archives-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def discover(paths: list[Path], extract_to: Path | None = None) -> tuple[list[Path], list[IgnoredItem]]:
    """Submission paths (files or student folders) under `paths`, and what was ignored and why.

    A folder given on the command line is a student's folder when it holds exactly one
    notebook (or, without notebooks, one module); otherwise it is a class folder whose files
    and subfolders are walked. A ``.zip`` (a student's archive, or Moodle's "download all
    submissions") is extracted safely into `extract_to` (default: a temporary folder) and
    treated as the folder it contains; Moodle folders (``Jean Dupont_12345_assignsubmission_file_``)
    are one student each, whose id is the student's name.
    """
    finder = _Finder(Path(extract_to) if extract_to is not None else default_archive_dir())
    for path in paths:
        finder.take(Path(path))
    return finder.found, finder.ignored


class _Finder:
    """The walk behind `discover`: submissions found and entries ignored, in the order they are met."""

    def __init__(self, archives: Path) -> None:
        self.archives = archives  # where archives are extracted
        self.found: list[Path] = []
        self.ignored: list[IgnoredItem] = []

    def take(self, path: Path) -> None:
        """A path named by the caller: a file, an archive, a student's folder or a class folder."""
        if not path.exists():
            self.ignored.append(IgnoredItem(name=str(path), reason="does not exist"))
        elif path.is_file() and path.suffix.lower() in ARCHIVE_SUFFIXES:
            self.take_archive(path)
        elif path.is_file():
            self.found.append(path)
        elif moodle_name(path.name) and self.folder_with_archive(path):
            return
        elif _is_student_folder(path):
            self.found.append(path)
        else:
            self.walk(path)

    def take_folder(self, folder: Path) -> None:
        """A folder met in a walk (or an extracted archive): one student's, walked, or ignored."""
        if _is_student_folder(folder):
            self.found.append(folder)
        elif (
            _candidates(folder)
            or _has_submissions_below(folder)
            or any(p.suffix.lower() in ARCHIVE_SUFFIXES for p in folder.rglob("*") if p.is_file())
        ):
            self.walk(folder)
        else:
            self.ignored.append(IgnoredItem(name=str(folder), reason="folder without a notebook or .py module"))

    def take_archive(self, archive: Path) -> None:
        """An archive: extracted, then taken as the folder it contains."""
        extracted = extract_archive(archive, self.archives, self.ignored)
        if extracted is None:
            return
        if any(extracted.rglob("*.zip")) or not (_candidates(extracted) or _has_submissions_below(extracted)):
            if not any(p.suffix in SUBMISSION_SUFFIXES for p in extracted.rglob("*")):
                self.ignored.append(IgnoredItem(name=str(archive), reason="archive without a notebook or .py module"))
                return
        self.take_folder(extracted)

    def folder_with_archive(self, folder: Path) -> bool:
        """A student's folder that holds a zip and no notebook or module (a Moodle folder, or any folder
        with exactly one zip): grade the zip's content under the folder's name."""
        if _candidates(folder) or _has_submissions_below(folder):
            return False
        zips = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in ARCHIVE_SUFFIXES)
        if not zips or (len(zips) > 1 and not moodle_name(folder.name)):
            return False  # several zips in a plain folder: each is a submission (walked)
        extracted = extract_archive(zips[0], self.archives, self.ignored)
        if extracted is None:
            return True
        named = extracted.parent / folder.name  # keep the folder's name, so the id is the student's
        if not named.exists():
            shutil.copytree(extracted, named)
        for other in zips[1:]:
            self.ignored.append(IgnoredItem(name=str(other), reason="only one archive per student is graded"))
        if _candidates(named) or _has_submissions_below(named):
            self.found.append(named)
        else:
            self.ignored.append(IgnoredItem(name=str(zips[0]), reason="archive without a notebook or .py module"))
        return True

    def walk(self, folder: Path) -> None:
        """A class folder: each entry in name order."""
        for entry in sorted(folder.iterdir()):
            if entry.name in SKIPPED_NAMES:
                self.ignored.append(IgnoredItem(name=str(entry), reason=SKIPPED_NAMES[entry.name]))
                continue
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if entry.is_dir():
                if self.folder_with_archive(entry):
                    continue
                self.take_folder(entry)
            elif entry.suffix in SUBMISSION_SUFFIXES or handed_in_instead(entry):
                self.found.append(entry)
            elif entry.suffix.lower() in ARCHIVE_SUFFIXES:
                self.take_archive(entry)
            else:
                self.ignored.append(
                    IgnoredItem(name=str(entry), reason=f"not a submission ({entry.suffix or 'no extension'})")
                )


def assign_ids(paths: list[Path]) -> dict[str, Path]:
    """Student ids for submission paths, one per path.

    A name shared by several submissions gets its parent folders as prefix (`2024-groupe1-mini_projet`),
    as many as it takes to be unique, then a number.
    """
    by_id: dict[str, list[Path]] = {}
    for path in paths:
        by_id.setdefault(student_id(path), []).append(path)
    ids = {name: group[0] for name, group in by_id.items() if len(group) == 1}
    for name, group in by_id.items():
        if len(group) == 1:
            continue
        for path in group:
            unique, parent = name, path.parent
            while unique == name or unique in ids:
                if parent == parent.parent or not student_id(parent):
                    unique = next(f"{name} ({n})" for n in range(2, len(paths) + 2) if f"{name} ({n})" not in ids)
                    break
                unique, parent = f"{student_id(parent)}-{unique}", parent.parent
            ids[unique] = path
    return ids


# --------------------------------------------------------------------------- the graded file


def choose_main_file(folder: Path, ignored: list[IgnoredItem]) -> Path:
    """The file of a student's folder that is graded: its first notebook, else its module; every other
    file is added to `ignored`."""
    files = _candidates(folder) or sorted(  # a Moodle folder may hold its notebook one level down
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in SUBMISSION_SUFFIXES and not _hidden(p.relative_to(folder).parts)
    )
    notebooks = [p for p in files if p.suffix == ".ipynb"]
    chosen = notebooks[0] if notebooks else files[0]
    for entry in sorted(folder.rglob("*")):
        if entry.is_file() and entry != chosen and "__pycache__" not in entry.parts:
            ignored.append(
                IgnoredItem(
                    name=str(entry.relative_to(folder)),
                    reason="only the notebook (or the single module) of a folder is graded",
                )
            )
    return chosen


def main_file_path(path: Path) -> Path:
    """The file that is graded: the submission itself, or the notebook (or module) chosen in its folder."""
    path = Path(path)
    return choose_main_file(path, []) if path.is_dir() else path
