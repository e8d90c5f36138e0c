"""The persistent XLA compilation cache (tfclust._compile_cache).

Unit tests run in this process without TensorFlow. The rest run tiny jit-compiled programs in
fresh processes (TensorFlow reads its cache flags once per process), five in all, two or three
at a time: two writers racing on one folder and a process without a usable folder, then a
reader of damaged entries and a reader under a file-size limit, each on a copy of what the
writers left.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfclust import _compile_cache as cc

REPO = Path(__file__).resolve().parents[1]
ANSWERS = {"square_sum": 17.0, "cube_sum": 36.0, "shifted_max": 5.0, "scaled_min": 3.0}
LATE_ANSWER = [4.0, 6.0]  # doubled_mean of x and of x + 1, never in the shared cache
HIT = "Loading cached entry for: __inference_{}_"
TENSORFLOW_STARTED = cc._tensorflow_started

WORKER = r"""
import json, os, resource, sys, time, warnings

mode = sys.argv[1]
out = {}
if mode == "file_size_limit":
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from tfclust import _compile_cache as cc
    cc.configure()
    cc.configure()
out["configure_warnings"] = [str(w.message) for w in caught]
out["cache_dir"] = cc.cache_dir()
out["flags"] = os.environ.get("TF_XLA_FLAGS", "")

import tensorflow as tf


def square_sum(x):
    return tf.reduce_sum(x * x + 1.0)


def cube_sum(x):
    return tf.reduce_sum(x * x * x)


def shifted_max(x):
    return tf.reduce_max(x) + 2.0


def scaled_min(x):
    return tf.reduce_min(x) * 3.0


if mode == "write":
    def doubled_mean(x):
        return tf.reduce_mean(x) * 2.0
else:  # another program under the same name, so never in the shared cache
    def doubled_mean(x):
        return tf.reduce_mean(x) + tf.reduce_mean(x)


def not_compilable(x):
    return tf.strings.length(tf.strings.as_string(x))


x = tf.constant([1.0, 2.0, 3.0])
if mode == "write":
    open(sys.argv[2] + str(os.getpid()), "w").close()
    deadline = time.time() + 120
    while len([n for n in os.listdir(os.path.dirname(sys.argv[2]))]) < 2:
        assert time.time() < deadline, "the other writer never started"
        time.sleep(0.01)
results = {}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for fn in (square_sum, cube_sum, shifted_max, scaled_min):
        results[fn.__name__] = float(cc.guarded(fn, jit_compile=True)(x))
    if mode == "faults":
        # the disk fills up after configure: the next save fails
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
    late = cc.guarded(doubled_mean, jit_compile=True)
    results["late"] = [float(late(x)), float(late(x + 1.0))]
    try:
        cc.guarded(not_compilable, jit_compile=True)(x)
    except Exception as exc:
        results["not_compilable"] = type(exc).__name__
out["call_warnings"] = [str(w.message) for w in caught]
out["results"] = results
print("RESULT " + json.dumps(out))
"""


# ---------------------------------------------------------------------------------------------
# helpers


def _varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def fake_entry(folder, signature, cluster, size=1000, function="__inference_f_1", binary=True):
    """An entry laid out as TensorFlow writes one, of about ``size`` bytes."""
    key = (
        _varint(1 << 3)
        + _varint(signature)
        + _varint(2 << 3)
        + _varint(cluster)
        + _field(3, b"XLA_CPU_JIT")
        + _field(4, b"xla_compile_cache")
    )
    body = _field(1, key) + _field(2, _field(1, f"{function}[_XlaMustCompile=true].2".encode()))
    data = body + (_field(3, b"\x07" * max(1, size - len(body) - 4)) if binary else b"")
    path = Path(folder) / f"xla_compile_cache__{signature}__{cluster}__XLA_CPU_JIT.pb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _set_age(path, seconds):
    when = time.time() - seconds
    os.utime(path, (when, when))


def _keyed_folder(root):
    return Path(root) / cc._key(cc._tf_version(), "")


def _entries(folder):
    """{Python function name: [paths]} of the entries in ``folder``, which must all be valid."""
    found = {}
    for path in sorted(Path(folder).iterdir()):
        match = cc._ENTRY.fullmatch(path.name)
        if match:
            module = cc._entry_header(str(path), match)  # "__inference_<name>_<n>[...].<m>"
            assert module is not None, f"damaged entry {path.name}"
            name = module.split("[")[0].removeprefix("__inference_").rsplit("_", 1)[0]
            found.setdefault(name, []).append(path)
    return found


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """The module as if never configured, in a clean environment; returns a scratch folder."""
    for name, value in [
        ("_configured", False),
        ("_active", None),
        ("_root", None),
        ("_read_only", False),
        ("_warned", set()),
    ]:
        monkeypatch.setattr(cc, name, value)
    monkeypatch.setattr(cc, "_tensorflow_started", lambda: False)  # as in a new process
    for var in ("TF_XLA_FLAGS", "XLA_FLAGS", "TFCLUST_CACHE_DIR", "TFCLUST_CACHE_MAX_MB"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return tmp_path


# ---------------------------------------------------------------------------------------------
# configure(): folder, key, flags


def test_folder_resolution_order(fresh, monkeypatch):
    monkeypatch.setenv("HOME", str(fresh / "home"))
    explicit, xdg = str(fresh / "explicit"), str(fresh / "xdg")
    assert cc._resolve_root({"TFCLUST_CACHE_DIR": explicit, "XDG_CACHE_HOME": xdg}) == explicit
    assert cc._resolve_root({"XDG_CACHE_HOME": xdg}) == os.path.join(xdg, "tfclust")
    home_cache = str(fresh / "home" / ".cache" / "tfclust")
    assert cc._resolve_root({}) == home_cache
    assert cc._resolve_root({"XDG_CACHE_HOME": "relative/path"}) == home_cache
    assert cc._resolve_root({"TFCLUST_CACHE_DIR": "~/c"}) == str(fresh / "home" / "c")

    monkeypatch.setenv("TFCLUST_CACHE_DIR", explicit)
    monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    cc.configure()
    folder = cc.cache_dir()
    assert Path(folder).parent == Path(explicit) and Path(folder).is_dir()
    assert Path(folder).name.startswith(f"xla-tf{cc._tf_version()}-")
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_persistent_cache_directory={folder}"


@pytest.mark.parametrize("value", ["off", "OFF", " Off ", ""])
def test_off_disables(fresh, monkeypatch, recwarn, value):
    monkeypatch.setenv("TFCLUST_CACHE_DIR", value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(fresh))
    cc.configure()
    assert cc.cache_dir() is None
    assert "TF_XLA_FLAGS" not in os.environ
    assert list(fresh.iterdir()) == []
    assert len(recwarn) == 0


def test_key_depends_on_tf_version_cpu_and_machine(monkeypatch):
    monkeypatch.setattr(cc, "_cpu_description", lambda: "model name=A\nflags=sse avx2")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    base = cc._key("2.21.0", "")
    assert base == cc._key("2.21.0", "")
    assert base.startswith("xla-tf2.21.0-") and cc._KEYED_FOLDER.fullmatch(base)
    assert cc._key("2.22.0", "") != base
    assert cc._key("2.21.0", "--xla_cpu_enable_fast_math=true") != base
    monkeypatch.setattr(cc, "_cpu_description", lambda: "model name=A\nflags=sse avx2 avx512f")
    assert cc._key("2.21.0", "") != base
    monkeypatch.setattr(cc, "_cpu_description", lambda: "model name=B\nflags=sse avx2")
    assert cc._key("2.21.0", "") != base
    monkeypatch.setattr(cc, "_cpu_description", lambda: "model name=A\nflags=sse avx2")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cc._key("2.21.0", "") != base


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="no /proc/cpuinfo")
def test_cpu_description_has_model_and_features():
    description = cc._cpu_description()
    assert "flags=" in description or "features=" in description


def test_users_own_cache_flag_left_alone(fresh, monkeypatch, recwarn):
    theirs = f"--tf_xla_enable_lazy_compilation=false --tf_xla_persistent_cache_directory={fresh}/t"
    monkeypatch.setenv("TF_XLA_FLAGS", theirs)
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh / "ours"))
    cc.configure()
    assert os.environ["TF_XLA_FLAGS"] == theirs
    assert cc.cache_dir() == f"{fresh}/t"
    assert list(fresh.iterdir()) == []
    assert len(recwarn) == 0


def test_other_flags_kept_and_spaces_quoted(fresh, monkeypatch):
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_enable_lazy_compilation=false")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh / "with space"))
    cc.configure()
    assert os.environ["TF_XLA_FLAGS"] == (
        f'--tf_xla_enable_lazy_compilation=false --tf_xla_persistent_cache_directory="'
        f'{cc.cache_dir()}"'
    )


def test_too_late_once_tensorflow_set_up_its_devices(fresh, monkeypatch):
    class Context:
        _initialized, _physical_devices = False, ["CPU:0"]  # tf.config.list_physical_devices()

    module = type(sys)("context")
    module.context_safe = Context
    monkeypatch.setitem(sys.modules, "tensorflow.python.eager.context", module)
    monkeypatch.setattr(cc, "_tensorflow_started", TENSORFLOW_STARTED)
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    with pytest.warns(RuntimeWarning, match="not active in this process"):
        cc.configure()
    assert cc.cache_dir() is None and "TF_XLA_FLAGS" not in os.environ
    assert list(fresh.iterdir()) == []


def test_configure_never_raises_and_runs_once(fresh, monkeypatch):
    calls = []

    def broken(environ):
        calls.append(1)
        raise RuntimeError("boom")

    monkeypatch.setattr(cc, "_configure", broken)
    with pytest.warns(RuntimeWarning, match="compilation cache disabled.*boom"):
        cc.configure()
    cc.configure()
    assert cc.cache_dir() is None and calls == [1]
    assert "TF_XLA_FLAGS" not in os.environ


def test_unwritable_folder_used_read_only_with_one_warning(fresh, monkeypatch, recwarn):
    monkeypatch.setattr(cc, "_write_problem", lambda folder: "Read-only file system")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    cc.configure()
    cc.configure()
    assert cc.cache_dir() is not None
    assert os.environ["TF_XLA_FLAGS"] == (
        f"--tf_xla_persistent_cache_read_only=true "
        f"--tf_xla_persistent_cache_directory={cc.cache_dir()}"
    )
    messages = [str(w.message) for w in recwarn]
    assert len(messages) == 1
    assert "not writable (Read-only file system)" in messages[0]
    assert cc.cache_dir() in messages[0] and "TFCLUST_CACHE_DIR" in messages[0]


def test_probe_writes_for_real(tmp_path, monkeypatch):
    assert cc._write_problem(str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == []  # the probe file is gone
    assert cc._write_problem(str(tmp_path / "missing")) is not None
    # a probe that cannot write reports it even where os.access says yes (as for root)
    with monkeypatch.context() as m:
        m.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(OSError(28, "full")))
        problem = cc._write_problem(str(tmp_path))
    assert problem == "full"
    assert list(tmp_path.iterdir()) == []


def test_folder_that_cannot_exist_disables_with_one_warning(fresh, monkeypatch, recwarn):
    blocker = fresh / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(blocker / "cache"))
    cc.configure()
    cc.configure()
    assert cc.cache_dir() is None and "TF_XLA_FLAGS" not in os.environ
    messages = [str(w.message) for w in recwarn]
    assert len(messages) == 1 and "cannot use the compilation cache folder" in messages[0]
    assert str(blocker / "cache") in messages[0] and "TFCLUST_CACHE_DIR" in messages[0]


# ---------------------------------------------------------------------------------------------
# configure(): damaged entries and the size bound


def test_damaged_entries_deleted_at_configure(fresh, monkeypatch, recwarn):
    folder = _keyed_folder(fresh)
    good = fake_entry(folder, 11, 12)
    zero = fake_entry(folder, 21, 22)
    zero.write_bytes(b"")
    truncated = fake_entry(folder, 31, 32)
    truncated.write_bytes(truncated.read_bytes()[:-10])
    garbage = fake_entry(folder, 41, 42)
    garbage.write_bytes(bytes(range(256)) * 4)
    renamed = fake_entry(folder, 51, 52).rename(
        folder / "xla_compile_cache__51__99__XLA_CPU_JIT.pb"
    )
    no_binary = fake_entry(folder, 61, 62, binary=False)
    other = folder / "notes.txt"
    other.write_text("not an entry")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    cc.configure()
    assert cc.cache_dir() == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted([good.name, other.name])
    assert not any(p.exists() for p in (zero, truncated, garbage, renamed, no_binary))
    assert len(recwarn) == 0


def test_read_only_folder_with_damaged_entries_disables(fresh, monkeypatch):
    folder = _keyed_folder(fresh)
    damaged = fake_entry(folder, 21, 22)
    damaged.write_bytes(b"")
    monkeypatch.setattr(cc, "_write_problem", lambda folder: "Read-only file system")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    with pytest.warns(RuntimeWarning, match="read-only and holds 1 damaged"):
        cc.configure()
    assert cc.cache_dir() is None and "TF_XLA_FLAGS" not in os.environ
    assert damaged.exists()


def test_size_cap_prunes_least_recently_used(fresh, monkeypatch):
    folder = _keyed_folder(fresh)
    mib = 1 << 20
    entries = [fake_entry(folder, i, i, size=mib) for i in range(1, 6)]
    for age, path in zip([500, 400, 300, 200, 100], entries, strict=True):
        _set_age(path, age)
    old_version = fake_entry(fresh / "xla-tf2.0.0-0123456789ab", 9, 9, size=mib)
    _set_age(old_version, 10_000)
    unrelated = fresh / "xla-tf2.0.0-0123456789ab" / "big.bin"
    unrelated.write_bytes(b"\0" * 3 * mib)
    _set_age(unrelated, 20_000)
    stale_temp = folder / (entries[0].name + "vm-1-2-3.tmp")
    stale_temp.write_bytes(b"partial")
    _set_age(stale_temp, 7200)
    fresh_temp = folder / (entries[0].name + "vm-4-5-6.tmp")
    fresh_temp.write_bytes(b"being written")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    monkeypatch.setenv("TFCLUST_CACHE_MAX_MB", "3.5")
    cc.configure()
    kept = [p for p in entries + [old_version] if p.exists()]
    assert kept == entries[2:]  # 6 MiB of entries, oldest first, down to 3 MiB
    assert unrelated.exists() and fresh_temp.exists() and not stale_temp.exists()


def test_size_cap_bad_value_warns_and_uses_default(fresh, monkeypatch):
    fake_entry(_keyed_folder(fresh), 1, 1)
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    monkeypatch.setenv("TFCLUST_CACHE_MAX_MB", "lots")
    with pytest.warns(RuntimeWarning, match="TFCLUST_CACHE_MAX_MB='lots'"):
        cc.configure()
    assert len(list(Path(cc.cache_dir()).iterdir())) == 1


def test_sweep_tolerates_entries_vanishing(fresh, monkeypatch):
    folder = _keyed_folder(fresh)
    entries = [fake_entry(folder, i, i, size=1 << 20) for i in range(1, 5)]
    for age, path in zip([400, 300, 200, 100], entries, strict=True):
        _set_age(path, age)
    real_scandir, real_unlink = cc._scandir, os.unlink

    def listing_then_vanish(directory):
        listed = real_scandir(directory)
        if Path(directory) == folder and entries[3].exists():
            real_unlink(entries[3])  # gone between listing and stat
        return listed

    def unlink_after_another_process(path):
        if Path(path).name.startswith("xla_compile_cache"):
            real_unlink(path)  # another process deletes it first
        real_unlink(path)

    monkeypatch.setattr(cc, "_scandir", listing_then_vanish)
    monkeypatch.setattr(os, "unlink", unlink_after_another_process)
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    monkeypatch.setenv("TFCLUST_CACHE_MAX_MB", "1.5")
    cc.configure()
    assert cc.cache_dir() == str(folder)
    assert [p.exists() for p in entries] == [False, False, True, False]


def test_clear(fresh, monkeypatch):
    folder = _keyed_folder(fresh)
    fake_entry(folder, 1, 1)
    fake_entry(fresh / "xla-tf2.0.0-0123456789ab", 2, 2)
    (folder / "xla_compile_cache__3__3__XLA_CPU_JIT.pbvm-1.tmp").write_bytes(b"x")
    (folder / "keep.txt").write_text("mine")
    monkeypatch.setenv("TFCLUST_CACHE_DIR", str(fresh))
    assert cc.clear() == 3
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]
    assert cc.clear() == 0


def test_faults_recognised_only_from_the_cache(fresh, monkeypatch):
    assert cc._fault(Exception("Serialized cache key does not match. [Op:f]")) is None  # no cache
    monkeypatch.setattr(cc, "_active", "/c/xla-tf2.21.0-0123456789ab")
    assert cc._fault(Exception("Serialized cache key does not match. [Op:f]")) == "load"
    assert cc._fault(Exception("Failed to parse serialized CpuAotCompilationResult.")) == "load"
    unparsable = "Can't parse /c/xla-tf2.21.0-0123456789ab/e.pb as binary proto"
    assert cc._fault(Exception(unparsable)) == "load"
    saved = "/c/xla-tf2.21.0-0123456789ab/xla_compile_cache__1__2__XLA_CPU_JIT.pbvm-1.tmp"
    assert cc._fault(Exception(f"{saved}; No space left on device")) == "save"
    assert cc._fault(Exception("Input to reshape is a tensor with 3 values")) is None


def test_warns_once_per_kind(fresh, recwarn):
    cc._warn("could not save kernel_a", "no-xla")
    cc._warn("could not save kernel_b", "no-xla")
    cc._warn("another problem")
    cc._warn("another problem")
    assert [str(w.message) for w in recwarn] == ["could not save kernel_a", "another problem"]


# ---------------------------------------------------------------------------------------------
# TensorFlow in fresh processes


def _start(mode, cache_root, tmp, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "TFCLUST_CACHE_MAX_MB")}
    env.update(
        TFCLUST_CACHE_DIR=str(cache_root),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        TF_CPP_MIN_LOG_LEVEL="0",
        TF_CPP_VMODULE="device_executable_persistor=2",
    )
    script = tmp / "worker.py"
    if not script.exists():
        script.write_text(WORKER)
    return subprocess.Popen(
        [sys.executable, str(script), mode, *map(str, extra)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process):
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-3000:]
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT ") :]), "stderr": stderr}


def _snapshot(folder):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in Path(folder).iterdir()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compile-cache")
    shared, barrier = tmp / "shared", tmp / "barrier" / "ready-"
    barrier.parent.mkdir()
    blocker = tmp / "a-file"
    blocker.write_text("")
    started = time.perf_counter()
    first = [
        _start("write", shared, tmp, barrier),
        _start("write", shared, tmp, barrier),
        _start("unusable", blocker / "cache", tmp),
    ]
    writers, unusable = [_finish(p) for p in first[:2]], _finish(first[2])
    folder = Path(writers[0]["cache_dir"])
    written = _snapshot(folder)

    faults_root, limited_root = tmp / "faults", tmp / "limited"
    for root in (faults_root, limited_root):
        shutil.copytree(shared, root)
    faults_folder = faults_root / folder.name
    by_function = _entries(faults_folder)
    (zero,), (truncated,), (flipped,) = (
        by_function[f] for f in ("cube_sum", "shifted_max", "scaled_min")
    )
    zero.write_bytes(b"")
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    data = flipped.read_bytes()  # the executable is last: its bytes change, the layout does not
    flipped.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    before_faults = _snapshot(faults_folder)
    before_limited = _snapshot(limited_root / folder.name)
    second = [_start("faults", faults_root, tmp), _start("file_size_limit", limited_root, tmp)]
    faults, limited = (_finish(p) for p in second)
    return {
        "writers": writers,
        "unusable": unusable,
        "shared": folder,
        "written": written,
        "faults": faults,
        "faults_folder": faults_folder,
        "before_faults": before_faults,
        "damaged": {"zero": zero, "truncated": truncated, "flipped": flipped},
        "limited": limited,
        "limited_folder": limited_root / folder.name,
        "before_limited": before_limited,
        "seconds": time.perf_counter() - started,
    }


def _assert_right(run):
    results = run["results"]
    assert {k: results[k] for k in ANSWERS} == ANSWERS
    assert results["late"] == LATE_ANSWER
    assert results["not_compilable"] == "InvalidArgumentError"  # not a cache fault: propagates


def test_concurrent_writers_both_succeed_and_leave_one_valid_entry_each(runs):
    for run in runs["writers"]:
        _assert_right(run)
        assert run["configure_warnings"] == [] and run["call_warnings"] == []
        assert run["flags"] == f"--tf_xla_persistent_cache_directory={run['cache_dir']}"
    assert runs["writers"][0]["cache_dir"] == runs["writers"][1]["cache_dir"]
    by_function = _entries(runs["shared"])  # every entry parses and matches its name
    assert {f: len(paths) for f, paths in by_function.items()} == dict.fromkeys(
        [*ANSWERS, "doubled_mean"], 1
    )
    assert not [n for n in runs["written"] if n.endswith(".tmp")]


def test_entry_written_by_one_process_is_loaded_by_the_next(runs):
    faults, limited = runs["faults"], runs["limited"]
    for run in (faults, limited):
        assert HIT.format("square_sum") in run["stderr"]
        assert run["results"]["square_sum"] == ANSWERS["square_sum"]
    (square,) = _entries(runs["faults_folder"])["square_sum"]
    assert _snapshot(runs["faults_folder"])[square.name] == runs["before_faults"][square.name]


def test_zero_byte_and_truncated_entries_replaced(runs):
    faults = runs["faults"]
    _assert_right(faults)
    for name in ("cube_sum", "shifted_max"):
        assert HIT.format(name) not in faults["stderr"]
    after = _snapshot(runs["faults_folder"])
    for path in (runs["damaged"]["zero"], runs["damaged"]["truncated"]):
        # deleted by configure before TensorFlow could raise on it, then saved anew
        assert path.name in after and after[path.name] != runs["before_faults"][path.name]
        assert cc._entry_header(str(path), cc._ENTRY.fullmatch(path.name)) is not None
    assert "Serialized cache key does not match" not in faults["stderr"]
    assert "Read less bytes than requested" not in faults["stderr"]


def test_unloadable_entry_deleted_and_recompiled(runs):
    faults = runs["faults"]
    assert "Failed to parse serialized CpuAotCompilationResult" in faults["stderr"]  # TF raised
    assert faults["results"]["scaled_min"] == ANSWERS["scaled_min"]
    assert not runs["damaged"]["flipped"].exists()
    assert len(_entries(runs["faults_folder"])["scaled_min"]) == 1  # the retraced program
    loads = [w for w in faults["call_warnings"] if "could not be loaded" in w]
    assert len(loads) == 1 and "deleted it and recompiled" in loads[0]


def test_disk_full_after_configure_still_right(runs):
    faults = runs["faults"]
    assert "File too large" in faults["stderr"]  # TF's save failed and raised
    assert faults["results"]["late"] == LATE_ANSWER
    saves = [w for w in faults["call_warnings"] if "could not save" in w]
    assert len(saves) == 1 and "doubled_mean, and any other kernel" in saves[0]
    names = os.listdir(runs["faults_folder"])
    assert not [n for n in names if n.endswith(".tmp")]  # TF's partial file removed
    (new,) = set(names) - set(runs["before_faults"])  # only the retraced scaled_min was saved
    assert new in {p.name for p in _entries(runs["faults_folder"])["scaled_min"]}


def test_file_size_limit_at_configure_uses_cache_read_only(runs):
    limited = runs["limited"]
    _assert_right(limited)
    (warning,) = limited["configure_warnings"]
    assert "not writable (file size limit" in warning and "TFCLUST_CACHE_DIR" in warning
    assert limited["cache_dir"] in warning
    assert "--tf_xla_persistent_cache_read_only=true" in limited["flags"]
    for name in ANSWERS:  # every entry still loads
        assert HIT.format(name) in limited["stderr"]
    assert limited["call_warnings"] == []
    assert _snapshot(runs["limited_folder"]) == runs["before_limited"]  # nothing written


def test_unusable_folder_warns_once_and_still_right(runs):
    unusable = runs["unusable"]
    _assert_right(unusable)
    assert unusable["cache_dir"] is None and unusable["flags"] == ""
    (warning,) = unusable["configure_warnings"]
    assert "cannot use the compilation cache folder" in warning
    assert "a-file" in warning and "TFCLUST_CACHE_DIR" in warning
    assert unusable["call_warnings"] == []


def test_importing_tfclust_turns_the_cache_on_without_tensorflow(tmp_path):
    """``import tfclust`` configures the cache (before the user's first TensorFlow op), and
    does not import TensorFlow to do so."""
    code = (
        "import os, sys, tfclust; "
        "print(os.environ.get('TF_XLA_FLAGS', '')); print('tensorflow' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"}
    env["TFCLUST_CACHE_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert f"--tf_xla_persistent_cache_directory={tmp_path}" in out[0]
    assert out[1] == "False"
