"""Reader for the IDX format of the MNIST family (LeCun et al.), plain or gzip-compressed.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each
dimension as a big-endian uint32, then the values in C order.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

_UBYTE = 0x08
_CHUNK = 1 << 20
"""Bytes read at a time: a lying header or a gzip bomb never allocates more than the file holds."""


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions.

    Args:
      path: the file; a name ending in ``.gz`` is decompressed.
      ndim: the expected number of dimensions (3 for images, 1 for labels).

    Returns:
      uint8 array with the file's shape.

    Raises:
      ValueError: a wrong magic number, type code or dimension count, or a length that does
        not match the header (a truncated or padded file, or a header announcing more data than
        the file holds). The message names the file and the sizes in bytes.

    Examples:
      >>> import os, tempfile
      >>> from tfclust.data import read_idx
      >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte")
      >>> with open(path, "wb") as f:  # magic (uint8, 1 dimension), size 3, the bytes
      ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
      >>> read_idx(path, 1)
      array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return _read(f, path, ndim)
    except (OSError, EOFError, zlib.error) as err:  # gzip raises these for corrupt archives
        raise ValueError(f"{path}: cannot read IDX file ({err})") from err


def _read(f, path: str, ndim: int) -> np.ndarray:
    head = f.read(4)
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(head)} bytes)")
    zero0, zero1, type_code, file_ndim = head
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {head.hex()})")
    if type_code != _UBYTE:
        raise ValueError(
            f"{path}: IDX type code 0x{type_code:02x} is not supported (need 0x08, uint8)"
        )
    if file_ndim != ndim:
        raise ValueError(f"{path}: expected {ndim} dimension(s), the header says {file_ndim}")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", dims)
    # Python ints: a product of uint32 dimensions overflows int64 (it once read "-4294967296").
    expected = math.prod(shape)
    size = _plain_size(f, path)
    if size is not None and size - 4 - 4 * ndim < expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({_bytes(expected)} of data) but the file "
            f"holds {_bytes(size - 4 - 4 * ndim)} after the header: truncated or corrupt"
        )
    chunks, actual = [], 0
    while actual <= expected:  # read one byte past the announced size to detect padding
        chunk = f.read(min(_CHUNK, expected + 1 - actual))
        if not chunk:
            break
        chunks.append(chunk)
        actual += len(chunk)
    if actual < expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({_bytes(expected)} of data) but the file "
            f"holds {_bytes(actual)} after the header: truncated or corrupt"
        )
    if actual > expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({_bytes(expected)} of data) but the file "
            "holds more bytes after it: padded or corrupt"
        )
    return np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(shape)


def _plain_size(f, path: str) -> int | None:
    """The file's size on disk, or None for a gzip stream (whose size is known only once read)."""
    if isinstance(f, gzip.GzipFile):
        return None
    return os.fstat(f.fileno()).st_size


def _bytes(n: int) -> str:
    """``n`` bytes as text, with a binary prefix when large: "281474976710656 bytes (256 TiB)"."""
    if n < 1024:
        return f"{n} bytes"
    exponent = min((n.bit_length() - 1) // 10, 6)
    unit = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")[exponent - 1]
    return f"{n} bytes ({n / 1024**exponent:.3g} {unit})"
