"""Files that are whole or absent, and arrays read with errors that say what is wrong.

Every artefact tfclust writes goes through :func:`atomic_path`: it is written under a hidden
temporary name in the same folder, flushed to disk and renamed into place, so a crash, a full
disk or a SIGKILL never leaves a partial file under its final name (``docs/run_folders.md``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import uuid
import zipfile

import numpy as np

PARTIAL_MARK = ".partial-"
"""Part of every temporary name; :func:`remove_partials` clears what a killed process left."""


def as_path(value, *, name: str, what: str, empty_hint: str = "") -> str:
    """``value`` (str, bytes or ``os.PathLike``) as a str path; a ``TypeError`` ("{name} must
    be {what}") for anything else, a ``ValueError`` for the empty string (plus
    ``empty_hint``)."""
    try:
        path = os.fspath(value)
    except TypeError as err:
        raise TypeError(f"{name} must be {what}, got {value!r}") from err
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not path:
        raise ValueError(f"{name} is an empty string{empty_hint}")
    return path


def _fsync(path: str) -> None:
    """Flush a file, or every file under a folder, to disk."""
    if os.path.isdir(path):
        for folder, _, files in os.walk(path):
            for name in files:
                _fsync(os.path.join(folder, name))
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove(path: str) -> None:
    """Remove a file or a folder tree if it exists; ``path`` may be a glob pattern."""
    for match in glob.glob(path) if glob.has_magic(path) else [path]:
        if os.path.isdir(match) and not os.path.islink(match):
            shutil.rmtree(match)
        elif os.path.lexists(match):
            os.remove(match)


def _partial_name(path: str) -> str:
    """A hidden temporary name beside ``path`` that keeps its suffix (``np.save`` and Keras add
    or require it)."""
    folder, name = os.path.split(path)
    stem, suffix = os.path.splitext(name)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return os.path.join(folder, f".{stem}{PARTIAL_MARK}{token}{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path`` to write a file or a folder to; when the block
    ends without error, flush it and rename it to ``path`` (replacing a file there), else
    remove it.

    The temporary name is hidden (a leading dot) and keeps ``path``'s suffix. A folder
    replaces an existing folder only if the caller removed that first.
    """
    path = os.fspath(path)
    tmp = _partial_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(os.path.dirname(path))
    except BaseException:
        remove(tmp)
        raise


@contextlib.contextmanager
def scratch_folder(folder: str, name: str):
    """Yield a new temporary folder ``folder/.<name>.partial-...``, removed when the block
    ends."""
    tmp = _partial_name(os.path.join(folder, name))
    os.makedirs(tmp)
    try:
        yield tmp
    finally:
        remove(tmp)


def remove_partials(folder: str) -> list[str]:
    """Remove the temporary files and folders that killed writers left under ``folder``;
    returns their paths."""
    removed = []
    for parent, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            if name.startswith(".") and PARTIAL_MARK in name:
                removed.append(os.path.join(parent, name))
                remove(removed[-1])
        dirs[:] = [d for d in dirs if PARTIAL_MARK not in d]
    return removed


def save_npy(path: str, array) -> str:
    """``np.save`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        np.save(tmp, np.asarray(array))
    return path


def save_npz(path: str, arrays: dict) -> str:
    """``np.savez`` of name -> array to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)
    return path


def save_text(path: str, text: str) -> str:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def save_json(path: str, record) -> str:
    """Write ``record`` as indented JSON atomically (numpy scalars and arrays become numbers
    and lists); returns ``path``."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(record, f, indent=2, default=json_default)
    return path


def load_npy(path: str, name: str) -> np.ndarray:
    """Read a numeric ``.npy`` array, with an error that says what the file is instead.

    Args:
      path: the file.
      name: what the array is, for messages (e.g. ``"--latents"``).

    Returns:
      The array (any shape; callers check it).

    Raises:
      FileNotFoundError: no such file.
      ValueError: an empty file, a ``.npz`` archive, a text or pickle file, a truncated
        ``.npy``, or a non-numeric array.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} {path}: no such file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{name} {path} is an empty file, not a .npy array")
    if zipfile.is_zipfile(path):
        raise ValueError(
            f"{name} {path} is a .npz archive (several arrays); save the one array with np.save"
        )
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY":
        raise ValueError(f"{name} {path} is not a .npy file (saved with np.save)")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise ValueError(f"{name} {path} holds Python objects, not numbers") from err
        raise ValueError(f"{name} {path} is a truncated or damaged .npy file ({err})") from err
    except EOFError as err:
        raise ValueError(f"{name} {path} is a truncated or damaged .npy file") from err
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} {path} holds {array.dtype} values, not numbers")
    return array
