"""Persistent XLA compilation cache: compiled kernels are saved on disk and reused by later runs.

TensorFlow does the saving and loading itself (``TF_XLA_FLAGS=--tf_xla_persistent_cache_directory``,
read once, when TensorFlow sets up its devices). This module picks the folder, keys it by TensorFlow
version and CPU, bounds its size, and keeps a faulty folder from failing a fit:

- :func:`configure` (called when :mod:`tfclust._compile` is imported) sets the flag, turns the cache
  read-only or off when the folder cannot take writes, and deletes damaged entries, which
  TensorFlow would otherwise raise on rather than recompile.
- :func:`guarded` wraps a ``tf.function`` so that a fault TensorFlow only reports during a call (an
  entry it cannot load, a write that fails on a full disk) costs a recompilation, not the call.

See ``docs/compilation_cache.md``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import re
import sys
import tempfile
import time
import warnings

try:
    import resource
except ImportError:  # not on Windows
    resource = None

_DIR_FLAG = "--tf_xla_persistent_cache_directory"
_READ_ONLY_FLAG = "--tf_xla_persistent_cache_read_only"
_DEFAULT_MAX_MB = 1024
_RESERVE_BYTES = 64 << 20
_STALE_TEMP_SECONDS = 3600
_CPU_FIELDS = (
    "vendor_id",
    "model name",
    "flags",
    "features",
    "cpu implementer",
    "cpu architecture",
    "cpu variant",
    "cpu part",
    "isa",
)
# TensorFlow's names: <prefix>__<signature hash>__<HLO hash>__<device>[__pjrt].pb, written to
# <name><unique>.tmp first and renamed into place.
_ENTRY = re.compile(
    r"(?:(?P<prefix>.+)__)?(?P<signature>\d+)__(?P<cluster>\d+)__"
    r"(?P<device>\w+?)(?P<pjrt>__pjrt)?\.pb"
)
_KEYED_FOLDER = re.compile(r"xla-tf[\w.+-]+-[0-9a-f]{12}")
_LOAD_ERRORS = (
    "Serialized cache key does not match",
    "Serialized HLO does not match",
    "No binary found in serialized entry",
    "Read less bytes than requested",
    "Failed to parse serialized CpuAotCompilationResult",
)

_configured = False
_active: str | None = None
_root: str | None = None
_read_only = False
_warned: set[str] = set()


def configure() -> None:
    """Turn TensorFlow's persistent XLA cache on for this process, once.

    Must run before TensorFlow sets up its devices (its first op, ``tf.function`` call or device
    listing): TensorFlow reads ``TF_XLA_FLAGS`` then, once; later, it warns and does nothing.
    Cheap: no TensorFlow import, a directory listing and a few small reads per entry. Never
    raises: on an unexpected error it warns and leaves the cache off.

    The folder is ``$TFCLUST_CACHE_DIR``, else ``$XDG_CACHE_HOME/tfclust``, else
    ``~/.cache/tfclust`` (``TFCLUST_CACHE_DIR=off`` or empty: no cache), plus a subfolder
    ``xla-tf<version>-<hash>`` keyed by the TensorFlow version, the CPU (model and feature flags)
    and ``XLA_FLAGS``. A ``--tf_xla_persistent_cache_directory`` already in ``TF_XLA_FLAGS`` is left
    as it is. A folder that cannot take writes is used read-only if it can be read, else not at
    all, with one warning. Entries beyond ``$TFCLUST_CACHE_MAX_MB`` (default 1024, MiB, counted
    over every keyed subfolder) are deleted, least recently used first.
    """
    global _configured, _active
    if _configured:
        return
    _configured = True
    try:
        _active = _configure(os.environ)
    except Exception as exc:  # noqa: BLE001 -- a cache must never break an import
        _active = None
        _warn(f"tfclust: compilation cache disabled after an unexpected error ({exc!r}).")


def cache_dir() -> str | None:
    """The folder TensorFlow saves compiled programs to in this process, or None if none."""
    configure()
    return _active


def clear() -> int:
    """Delete the saved compiled programs, of every TensorFlow version and CPU.

    Only TensorFlow's cache-entry files are deleted (in the folder set in ``TF_XLA_FLAGS``, if the
    user set one). Programs a running process has loaded stay in its memory.

    Returns:
      The number of files deleted.
    """
    configure()
    if _active is None:
        return 0
    folders = [_active] if _root is None else [_active, *_keyed_folders(_root)]
    removed = 0
    for folder in dict.fromkeys(folders):
        for entry in _scandir(folder):
            if _ENTRY.fullmatch(entry.name) or _is_temp(entry.name):
                removed += _remove(entry.path)
    return removed


def guarded(python_function=None, **options):
    """``tf.function(python_function, **options)`` whose calls survive a faulty cache.

    Args:
      python_function: the function to trace; omitted, ``guarded(**options)`` is a decorator.
      **options: passed to ``tf.function`` (``jit_compile=True`` and so on).

    TensorFlow raises, rather than recompiles, when a call finds a saved program it cannot load
    (the failure then sticks to that traced function for the rest of the process), and when it
    cannot save a new one (full disk, file-size limit). On the first, the wrapper deletes the
    entry and retraces (a new function name is a new cache key, so XLA compiles afresh). On the
    second, it warns once and runs ``python_function`` without XLA for the rest of the process.
    Other errors propagate unchanged.

    Attribute access (``get_concrete_function``, ``python_function``...) goes to the current
    ``tf.function``; the wrapper itself is not one, so ``tf.distribute`` strategies run it
    eagerly per replica.
    """
    if python_function is None:
        return functools.partial(guarded, **options)
    return _Guarded(python_function, options)


class _Guarded:
    def __init__(self, python_function, options):
        import tensorflow as tf

        self.__dict__["function"] = tf.function(python_function, **options)
        self._tf_function = tf.function
        self._options = options
        functools.update_wrapper(self, python_function)

    def __call__(self, *args, **kwargs):
        for attempt in range(2):
            try:
                return self.function(*args, **kwargs)
            except Exception as exc:
                fault = _fault(exc)
                if fault is None:
                    raise
                self.function = self._recover(fault, exc, retrace=attempt == 0)
        return self.function(*args, **kwargs)

    def _recover(self, fault: str, exc: BaseException, retrace: bool):
        """A new ``tf.function``: retraced with XLA after a load fault, else without XLA."""
        name = getattr(self.__wrapped__, "__name__", "a kernel")
        if fault == "load":
            _evict(exc)
            what = f"a compiled program in the compilation cache {_active} could not be loaded"
        else:
            _remove_temps_named_in(exc)
            what = f"could not save a compiled program to the compilation cache {_active}"
        if fault == "load" and retrace:
            _warn(f"tfclust: {what} ({_first_line(exc)}); deleted it and recompiled.", "load")
            return self._tf_function(self.__wrapped__, **self._options)
        _warn(
            f"tfclust: {what} ({_first_line(exc)}); {name}, and any other kernel this happens to, "
            "runs without XLA in this process. Free some disk space, or set TFCLUST_CACHE_DIR=off.",
            "no-xla",
        )
        return self._tf_function(self.__wrapped__, **{**self._options, "jit_compile": False})

    def __getattr__(self, name):
        function = self.__dict__.get("function")
        if function is None:
            raise AttributeError(name)
        return getattr(function, name)


def _configure(environ) -> str | None:
    """Set ``TF_XLA_FLAGS`` in ``environ``; return the active folder or None."""
    global _root, _read_only
    flags = environ.get("TF_XLA_FLAGS", "")
    if _DIR_FLAG in flags:
        found = re.search(_DIR_FLAG + r'=(?:"([^"]*)"|(\S*))', flags)
        value = None if found is None else (found.group(1) or found.group(2))
        _read_only = re.search(_READ_ONLY_FLAG + r"=(true|1)\b", flags) is not None
        return value or None
    root = _resolve_root(environ)
    if root is None:
        return None
    if _tensorflow_started():
        _warn(
            "tfclust: compilation cache not active in this process: TensorFlow had set up its "
            "devices, and so read TF_XLA_FLAGS, before tfclust's kernels were imported. Import "
            "tfclust's estimators before running TensorFlow code; see docs/compilation_cache.md."
        )
        return None
    version = _tf_version()
    if version is None:
        _warn("tfclust: compilation cache disabled: cannot tell which TensorFlow is installed.")
        return None
    if '"' in root or "\n" in root:
        _warn(
            f"tfclust: compilation cache disabled: TF_XLA_FLAGS cannot hold the path {root!r}. "
            "Set TFCLUST_CACHE_DIR to another folder."
        )
        return None
    folder = os.path.join(root, _key(version, environ.get("XLA_FLAGS", "")))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        problem = exc.strerror or str(exc)
    else:
        problem = _write_problem(folder)
    readable = os.path.isdir(folder) and os.access(folder, os.R_OK | os.X_OK)
    if problem is not None and not readable:
        _warn(
            f"tfclust: cannot use the compilation cache folder {folder} ({problem}); compiled "
            "programs will not be saved. Set TFCLUST_CACHE_DIR to a writable folder, or to "
            "'off' to silence this warning."
        )
        return None
    bad = _sweep(root, folder, _max_bytes(environ), writable=problem is None)
    if problem is not None:
        if bad:
            _warn(
                f"tfclust: compilation cache disabled: {folder} is read-only and holds "
                f"{bad} damaged entries. Delete them, or set TFCLUST_CACHE_DIR elsewhere."
            )
            return None
        _warn(
            f"tfclust: the compilation cache folder {folder} is not writable ({problem}); "
            "using it read-only. Set TFCLUST_CACHE_DIR to a writable folder, or to 'off'."
        )
        flags = f"{flags} {_READ_ONLY_FLAG}=true"
    quoted = f'"{folder}"' if any(c.isspace() for c in folder) else folder
    environ["TF_XLA_FLAGS"] = f"{flags} {_DIR_FLAG}={quoted}".strip()
    _root, _read_only = root, problem is not None
    return folder


def _tensorflow_started() -> bool:
    """Whether TensorFlow has listed or created its devices, which parses ``TF_XLA_FLAGS``."""
    context = sys.modules.get("tensorflow.python.eager.context")
    try:
        current = None if context is None else context.context_safe()
        return current is not None and (
            current._initialized or current._physical_devices is not None
        )
    except Exception:  # noqa: BLE001 -- a private API: if it moved, assume not started
        return False


def _resolve_root(environ) -> str | None:
    """The cache root from the environment, or None when the cache is off."""
    value = environ.get("TFCLUST_CACHE_DIR")
    if value is not None:
        if value.strip().lower() in ("", "off"):
            return None
        return os.path.abspath(os.path.expanduser(value.strip()))
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        _warn("tfclust: compilation cache disabled: no home folder. Set TFCLUST_CACHE_DIR.")
        return None
    return os.path.join(base, "tfclust")


def _tf_version() -> str | None:
    import importlib.metadata  # ~0.1 s to import, but TensorFlow has imported it already

    for name in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return getattr(sys.modules.get("tensorflow"), "__version__", None)


def _cpu_description() -> str:
    """Model and feature flags of the first CPU in /proc/cpuinfo (else ``platform.processor()``)."""
    fields = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break
                    continue
                name, _, value = line.partition(":")
                if name.strip().lower() in _CPU_FIELDS:
                    fields[name.strip().lower()] = " ".join(value.split())
    except OSError:
        pass
    if not fields:
        return platform.processor()
    return "\n".join(f"{name}={fields[name]}" for name in sorted(fields))


def _key(version: str, xla_flags: str) -> str:
    """The subfolder name: ``xla-tf<version>-<12 hex digits>``."""
    text = "\n".join([version, platform.machine(), _cpu_description(), xla_flags])
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    safe_version = re.sub(r"[^\w.+-]", "_", version)
    return f"xla-tf{safe_version}-{digest}"


def _max_bytes(environ) -> int:
    value = environ.get("TFCLUST_CACHE_MAX_MB", "")
    try:
        megabytes = float(value) if value.strip() else _DEFAULT_MAX_MB
        if not 0 <= megabytes < float("inf"):
            raise ValueError
    except ValueError:
        _warn(
            f"tfclust: ignoring TFCLUST_CACHE_MAX_MB={value!r} (not a number of MiB >= 0); "
            f"using {_DEFAULT_MAX_MB}."
        )
        megabytes = _DEFAULT_MAX_MB
    return int(megabytes * (1 << 20))


def _write_problem(folder: str) -> str | None:
    """Why TensorFlow could not save entries in ``folder`` (a file is written for real), or None."""
    if resource is not None:
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if limit != resource.RLIM_INFINITY and limit < _RESERVE_BYTES:
            return f"file size limit (ulimit -f) of {limit} bytes"
    try:
        fd, path = tempfile.mkstemp(prefix=".tfclust-probe-", dir=folder)
        try:
            os.write(fd, b"tfclust")
        finally:
            os.close(fd)
            os.unlink(path)
        space = os.statvfs(folder)
    except OSError as exc:
        return exc.strerror or str(exc)
    if space.f_bavail * space.f_frsize < _RESERVE_BYTES:
        return f"less than {_RESERVE_BYTES >> 20} MiB free"
    return None


def _sweep(root: str, folder: str, max_bytes: int, writable: bool) -> int:
    """Delete damaged entries of ``folder``, stale temp files and the least recently used entries
    of every keyed folder of ``root`` beyond ``max_bytes``; return how many damaged entries
    (found, deleted only if ``writable``)."""
    bad = 0
    entries = []
    now = time.time()
    for directory in dict.fromkeys([folder, *_keyed_folders(root)]):
        for entry in _scandir(directory):
            try:
                stat = entry.stat()
            except OSError:
                continue
            if _is_temp(entry.name):
                if writable and now - stat.st_mtime > _STALE_TEMP_SECONDS:
                    _remove(entry.path)
                continue
            match = _ENTRY.fullmatch(entry.name)
            if match is None:
                continue
            if directory == folder and _entry_header(entry.path, match) is None:
                bad += 1
                if writable:
                    _remove(entry.path)
                continue
            entries.append((max(stat.st_atime, stat.st_mtime), stat.st_size, entry.path))
    if writable:
        total = sum(size for _, size, _ in entries)
        for _, size, path in sorted(entries):
            if total <= max_bytes:
                break
            _remove(path)
            total -= size
    return bad


def _entry_header(path: str, match) -> str | None:
    """The HLO module name of a complete entry whose key matches its file name, else None.

    Reads only field headers: the entry is ``key`` (1), ``hlo_module`` (2) and ``executable`` (3),
    all length-delimited, and must end exactly at the end of the file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOATIME", 0))
    except PermissionError:  # O_NOATIME needs to own the file
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        fields = {}
        position = 0
        while position < size:
            head = os.pread(fd, 20, position)
            tag, n = _varint(head, 0)
            length, n = _varint(head, n)
            if tag & 7 != 2:
                return None
            fields[tag >> 3] = (position + n, length)
            position += n + length
        if position != size or 1 not in fields or 2 not in fields or not fields.get(3, (0, 0))[1]:
            return None
        key = _message(os.pread(fd, fields[1][1], fields[1][0]))
        module = _message(os.pread(fd, min(fields[2][1], 4096), fields[2][0]), partial=True)
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    expected = {
        1: int(match["signature"]),
        2: int(match["cluster"]),
        3: match["device"].encode(),
        4: (match["prefix"] or "").encode(),
        5: int(bool(match["pjrt"])),
    }
    found = {number: key.get(number, b"" if number in (3, 4) else 0) for number in expected}
    if found != expected:
        return None
    name = module.get(1, b"")
    return name.decode(errors="replace") if isinstance(name, bytes) else ""


def _varint(buffer: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while shift < 64:
        if i >= len(buffer):
            raise ValueError("truncated varint")
        byte = buffer[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return value, i
        shift += 7
    raise ValueError("varint too long")


def _message(data: bytes, partial: bool = False) -> dict:
    """The varint and length-delimited fields of a protobuf message (last one wins)."""
    fields = {}
    i = 0
    while i < len(data):
        try:
            tag, i = _varint(data, i)
            if tag & 7 == 0:
                fields[tag >> 3], i = _varint(data, i)
            elif tag & 7 == 2:
                length, i = _varint(data, i)
                if i + length > len(data) and not partial:
                    raise ValueError("truncated field")
                fields[tag >> 3] = data[i : i + length]
                i += length
            else:
                raise ValueError(f"unexpected wire type {tag & 7}")
        except ValueError:
            if partial:
                break
            raise
    return fields


def _fault(exc: BaseException) -> str | None:
    """``"load"`` or ``"save"`` if ``exc`` came from the persistent cache, else None."""
    if _active is None:
        return None
    message = str(exc)
    if any(text in message for text in _LOAD_ERRORS):
        return "load"
    if f"{_active}{os.sep}" in message or f"inside {_active}" in message:
        return "load" if "as binary proto" in message else "save"
    return None


def _evict(exc: BaseException) -> None:
    """Delete the entries behind a load fault from tfclust's folder (not from one the user set
    in ``TF_XLA_FLAGS``): the file the message names, the failing function's, any damaged one."""
    if _active is None or _root is None or _read_only:
        return
    message = str(exc)
    functions = re.findall(r"\[Op:([^\]\s]+)\]", message)
    for entry in _scandir(_active):
        match = _ENTRY.fullmatch(entry.name)
        if match is None:
            continue
        name = _entry_header(entry.path, match)
        if (
            entry.path in message
            or name is None
            or any(name == f or name.startswith(f + "[") for f in functions)
        ):
            _remove(entry.path)


def _remove_temps_named_in(exc: BaseException) -> None:
    """Delete the partial temp files a failed save names (TensorFlow leaves them behind)."""
    if _active is None:
        return
    for path in re.findall(r"(\S+\.tmp)\b", str(exc)):
        if os.path.dirname(path) == _active and _is_temp(os.path.basename(path)):
            _remove(path)


def _is_temp(name: str) -> bool:
    return name.endswith(".tmp") and _ENTRY.match(name) is not None


def _keyed_folders(root: str) -> list[str]:
    return [
        entry.path
        for entry in _scandir(root)
        if _KEYED_FOLDER.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False)
    ]


def _scandir(folder: str) -> list:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError:
        return []


def _remove(path: str) -> int:
    """Delete a file another process may delete first; return 1 if this call deleted it."""
    try:
        os.unlink(path)
    except OSError:
        return 0
    return 1


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _warn(message: str, kind: str | None = None) -> None:
    """Warn once per process per ``kind`` of problem (default: per message)."""
    kind = message if kind is None else kind
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
