"""What a class hands in: one folder (or one LMS zip) per learner, plus an optional roster.

Everything a learner supplies is hostile until proven otherwise: ids become file names (so they must
be safe names), zips are unpacked under strict limits (no path escapes, no symlinks, no bombs), and
symlinks inside a submission are refused rather than followed (one could point at the instructor's
own files). A learner whose submission is unusable gets a ``problem`` (their row becomes ``error``);
the rest of the class is unaffected.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import stat
import unicodedata
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from graders.errors import InputError

MAX_ID_LENGTH = 64
SNAPSHOT_NAMES = ("snapshot.yaml", "snapshot.yml")
MANIFESTS_DIR = "manifests"
# Entries an OS or LMS leaves next to the submissions; never learners.
IGNORED_ENTRIES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})

# Limits for one learner (folder or zip). Real submissions are a few KiB.
MAX_FILES = 2000
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_RATIO = 200  # uncompressed/compressed above this (for entries over 1 MiB) is treated as a zip bomb

ROSTER_FIELDS = ("id", "name", "email", "kubeconfig", "context", "canvas_id", "sis_user_id", "sis_login_id",
                 "section")


class SubmissionError(Exception):
    """One learner's submission cannot be used; ``str()`` is the reason shown in their row."""


@dataclass(frozen=True)
class RosterEntry:
    id: str
    name: str = ""
    email: str = ""
    kubeconfig: str = ""
    context: str = ""
    canvas_id: str = ""
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""


@dataclass(frozen=True)
class Submission:
    learner: str  # the id exactly as found; only used as a file name when ``safe``
    path: Path | None = None  # learner folder or zip file
    is_zip: bool = False
    roster: RosterEntry | None = None
    problem: str | None = None  # set when this learner cannot be graded at all

    @property
    def safe(self) -> bool:
        return unsafe_id_reason(self.learner) is None

    @property
    def display(self) -> str:
        return display_id(self.learner)


@dataclass
class Discovery:
    submissions: list[Submission] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # top-level files that are not submissions


def unsafe_id_reason(learner: str) -> str | None:
    """Why ``learner`` cannot be used as a file name, or None. Conservative on purpose: ids end up in
    paths, CSV cells (a leading ``=`` is a spreadsheet formula) and HTML."""
    if not learner:
        return "the learner id is empty"
    if len(learner) > MAX_ID_LENGTH:
        return f"the learner id is {len(learner)} characters long (limit {MAX_ID_LENGTH})"
    if any(unicodedata.category(ch)[0] in "CZ" and ch != " " for ch in learner) or " " in learner:
        return "the learner id contains control, format or space characters"
    if "/" in learner or "\\" in learner or ".." in learner:
        return "the learner id contains a path separator or '..'"
    if not learner[0].isalnum():
        return "the learner id must start with a letter or digit"
    if not all(ch.isalnum() or ch in "._-@" for ch in learner):
        return "the learner id may only hold letters, digits and . _ - @"
    return None


def display_id(learner: str) -> str:
    """A printable, bounded form of any id: escape sequences for control, format and other unprintable
    characters (and backslashes, so an escape is never ambiguous), but letters of any script kept as they
    are -- a safe id such as ``zoë`` is the learner's name in the gradebooks and must match the roster."""
    text = "".join(ch if ch.isprintable() and ch != "\\" else ch.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for ch in learner)
    return text if len(text) <= 80 else text[:77] + "..."


def result_stem(learner: str) -> str:
    """File name stem for a learner's stored result; unsafe ids get a hash (they start with '_', which a
    safe id cannot, so the two never collide)."""
    if unsafe_id_reason(learner) is None:
        return learner
    return "_unsafe-" + hashlib.sha256(learner.encode("utf-8", "surrogatepass")).hexdigest()[:16]


# --- roster --------------------------------------------------------------------------------------
def read_roster(path: str) -> dict[str, RosterEntry]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: roster file not found; give a CSV with at least an 'id' column")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            if "id" not in header:
                raise InputError(f"{path}: the roster has no 'id' column (header: {', '.join(header) or 'empty'}); "
                                 f"columns understood: {', '.join(ROSTER_FIELDS)}")
            reader.fieldnames = header
            entries: dict[str, RosterEntry] = {}
            for line, row in enumerate(reader, start=2):
                values = {k: (row.get(k) or "").strip() for k in ROSTER_FIELDS}
                if not values["id"] and not any(values.values()):
                    continue
                if values["id"] in entries:
                    raise InputError(f"{path}:{line}: learner id {display_id(values['id'])!r} appears twice; "
                                     "each learner needs one roster row")
                if values["kubeconfig"] and not os.path.isabs(values["kubeconfig"]):
                    values["kubeconfig"] = str((p.parent / values["kubeconfig"]).resolve())
                entries[values["id"]] = RosterEntry(**values)
    except UnicodeDecodeError:
        raise InputError(f"{path}: the roster is not UTF-8 text; export it as CSV UTF-8") from None
    except csv.Error as err:
        raise InputError(f"{path}: malformed CSV ({err}); export the roster again as plain CSV") from None
    return entries


# --- discovery -----------------------------------------------------------------------------------
def discover(root: Path, roster: dict[str, RosterEntry] | None = None, *, live: bool = False) -> Discovery:
    """One Submission per learner in ``root`` (and per roster row without a submission), sorted by id.
    In live mode the learner's cluster is the submission, so a roster row alone is enough."""
    if not root.is_dir():
        raise InputError(f"{root}: submissions folder not found; give the folder holding one folder or zip per learner")
    found = Discovery()
    by_id: dict[str, list[tuple[Path, bool]]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        name, path = entry.name, Path(entry.path)
        if name in IGNORED_ENTRIES or name.startswith("."):
            continue
        if entry.is_symlink() or entry.is_dir():
            by_id.setdefault(name, []).append((path, False))
        elif entry.is_file() and name.lower().endswith(".zip"):
            by_id.setdefault(name[:-4], []).append((path, True))
        else:
            found.ignored.append(name)
    roster = roster or {}
    for learner in sorted(set(by_id) | set(roster)):
        entry_roster = roster.get(learner)
        places = by_id.get(learner, [])
        problem = unsafe_id_reason(learner)
        if problem:
            problem += "; rename the folder (or fix the roster row) to a plain id such as the LMS login"
        elif not places and not live:
            problem = "no submission found (no folder or zip with this id in the submissions folder)"
        elif len(places) > 1:
            problem = f"both a folder and a zip named {learner}; keep one of them"
        elif places and places[0][0].is_symlink():
            problem = "the submission is a symbolic link; copy the real folder in instead"
        path, is_zip = places[0] if places else (None, False)
        found.submissions.append(Submission(learner, path, is_zip, entry_roster, problem))
    found.submissions = _refuse_case_twins(found.submissions)
    return found


def fold_id(learner: str) -> str:
    """What a case-insensitive (and normalisation-insensitive) file system sees of a file name."""
    return unicodedata.normalize("NFC", learner).casefold()


def _refuse_case_twins(subs: list[Submission]) -> list[Submission]:
    """Ids that differ only by case or Unicode form (``Alice``/``alice``) would share result and
    feedback files on macOS or Windows, one learner's grade overwriting the other's. Both get an
    error row; guessing which is which would be worse."""
    groups: dict[str, list[str]] = {}
    for sub in subs:
        if sub.safe:
            groups.setdefault(fold_id(sub.learner), []).append(sub.learner)
    out = []
    for sub in subs:
        twins = groups.get(fold_id(sub.learner), []) if sub.safe else []
        if len(twins) > 1:  # says more than "no submission found" for a roster row written in other case
            names = ", ".join(repr(display_id(t)) for t in twins)
            sub = replace(sub, problem=f"learner ids {names} differ only by case; their files would collide on a "
                                       "case-insensitive file system, so neither is graded: rename one folder (or "
                                       "roster row)")
        out.append(sub)
    return out


# --- files of one submission ---------------------------------------------------------------------
def list_files(folder: Path) -> list[Path]:
    """All regular files under ``folder`` (sorted), refusing symlinks and oversized submissions."""
    files: list[Path] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath, name)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise SubmissionError(f"the submission contains a symbolic link ({p.relative_to(folder)}); "
                                      "submissions must hold plain files only")
            if stat.S_ISREG(st.st_mode):
                files.append(p)
                total += st.st_size
            elif not stat.S_ISDIR(st.st_mode):
                raise SubmissionError(f"{p.relative_to(folder)} is not a regular file; remove it")
            if len(files) > MAX_FILES or total > MAX_TOTAL_BYTES:
                raise SubmissionError(f"the submission holds more than {MAX_FILES} files or "
                                      f"{MAX_TOTAL_BYTES // 2**20} MiB; only the lab files are needed")
    return sorted(files)


def content_hash(sub: Submission, extra: str) -> str:
    """sha256 of the learner's input bytes plus ``extra`` (lab notebook, graders version, mode...)."""
    h = hashlib.sha256(extra.encode())
    h.update(b"\0learner\0" + sub.learner.encode("utf-8", "surrogatepass"))
    if sub.path is None:
        return h.hexdigest()
    if sub.is_zip:
        _hash_file(h, sub.path)
        return h.hexdigest()
    for f in list_files(sub.path):
        h.update(b"\0file\0" + str(f.relative_to(sub.path)).encode("utf-8", "surrogateescape") + b"\0")
        _hash_file(h, f)
    return h.hexdigest()


def _hash_file(h: hashlib._Hash, path: Path) -> None:  # type: ignore[name-defined]
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)


# --- zips ----------------------------------------------------------------------------------------
def unpack_zip(zpath: Path, dest: Path) -> Path:
    """Unpack a learner's zip into ``dest`` (which must be empty) and return the learner folder inside
    it. Checks every entry before writing anything and counts real bytes while writing, because
    the sizes in a zip's headers are whatever the zip's author wrote there."""
    try:
        with zipfile.ZipFile(zpath) as zf:
            infos = zf.infolist()
            plan = _check_zip_entries(infos)
            written = 0
            for info, parts in plan:
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("xb") as out:
                    size = 0
                    for chunk in iter(lambda s=src: s.read(1 << 16), b""):
                        size += len(chunk)
                        written += len(chunk)
                        if size > min(info.file_size, MAX_FILE_BYTES) or written > MAX_TOTAL_BYTES:
                            raise SubmissionError(f"zip entry {info.filename!r} expands beyond its declared size "
                                                  "or the size limit; refused as a possible zip bomb")
                        out.write(chunk)
    except zipfile.BadZipFile as err:
        raise SubmissionError(f"{zpath.name} is not a readable zip ({err}); ask for a fresh export") from None
    except (NotImplementedError, RuntimeError) as err:  # unsupported compression, encryption
        raise SubmissionError(f"{zpath.name} cannot be unpacked ({err})") from None
    except FileExistsError:
        raise SubmissionError(f"{zpath.name} has two entries for the same file; refused") from None
    return _learner_root(dest)


def _check_zip_entries(infos: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    if len(infos) > MAX_FILES:
        raise SubmissionError(f"the zip has {len(infos)} entries (limit {MAX_FILES})")
    plan = []
    total = 0
    for info in infos:
        name = info.filename
        parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
        if (name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts
                or any(unicodedata.category(ch)[0] == "C" for ch in name)):
            raise SubmissionError(f"zip entry {display_id(name)!r} points outside the learner's folder; refused")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise SubmissionError(f"zip entry {display_id(name)!r} is a symbolic link; refused")
        if info.flag_bits & 0x1:
            raise SubmissionError(f"zip entry {display_id(name)!r} is encrypted; ask for an unencrypted export")
        if not parts or parts[0] in IGNORED_ENTRIES:
            continue
        total += info.file_size
        if info.file_size > MAX_FILE_BYTES or total > MAX_TOTAL_BYTES:
            raise SubmissionError(f"the zip expands to more than {MAX_TOTAL_BYTES // 2**20} MiB (or one entry "
                                  f"over {MAX_FILE_BYTES // 2**20} MiB); refused as a possible zip bomb")
        if info.file_size > 2**20 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise SubmissionError(f"zip entry {display_id(name)!r} compresses more than {MAX_RATIO}:1; "
                                  "refused as a possible zip bomb")
        plan.append((info, parts))
    return plan


def _learner_root(dest: Path) -> Path:
    """LMS exports often wrap the files in one folder; descend into it when that is all there is."""
    entries = [e for e in dest.iterdir() if e.name not in IGNORED_ENTRIES]
    if len(entries) == 1 and entries[0].is_dir() and not is_submission_root(dest):
        return entries[0]
    return dest


def is_submission_root(folder: Path) -> bool:
    """Whether ``folder`` holds a submission's layout itself (so a zip's single top folder is not a wrapper):
    a snapshot, a notebook, or one of the folders ``manifests_dir`` reads (``manifests/``, ``work/``,
    ``labs/``) -- a learner who zips their work folder as the lab says hands in ``work/...`` or
    ``labs/labNN/work/...``."""
    return (any((folder / n).is_file() for n in SNAPSHOT_NAMES)
            or any((folder / d).is_dir() for d in (MANIFESTS_DIR, "work", "labs"))
            or any(folder.glob("*.ipynb")))


def snapshot_file(folder: Path) -> Path | None:
    return next((folder / n for n in SNAPSHOT_NAMES if (folder / n).is_file()), None)


def manifests_dir(folder: Path, lab_id: str) -> Path | None:
    """The learner's YAML: ``manifests/``, else the lab's working folder as the notebook has them write
    it (``labs/<lab>/work/``, or ``work/`` when they zipped just that part), if it holds any YAML."""
    for d in (folder / MANIFESTS_DIR, folder / "labs" / lab_id / "work", folder / "work"):
        if d.is_dir() and any(f.suffix in (".yaml", ".yml", ".json") for f in d.rglob("*") if f.is_file()):
            return d
    return None


def submitted_notebook(folder: Path, lab_notebook_name: str) -> Path:
    """The learner's notebook: the one named like the course's, else the only one."""
    notebooks = sorted(p for p in folder.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    for p in notebooks:
        if p.name == lab_notebook_name:
            return p
    if len(notebooks) == 1:
        return notebooks[0]
    if not notebooks:
        raise SubmissionError("no notebook (*.ipynb) in the submission")
    raise SubmissionError(f"{len(notebooks)} notebooks in the submission and none is named {lab_notebook_name}")


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
