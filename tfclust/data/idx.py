"""Reader for the IDX format of the MNIST family (LeCun et al.), plain or gzip-compressed.

Layout: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, each
dimension as a big-endian uint32, then the values in C order.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

_UBYTE = 0x08


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with ``ndim`` dimensions.

    Args:
      path: the file; a name ending in ``.gz`` is decompressed.
      ndim: the expected number of dimensions (3 for images, 1 for labels).

    Returns:
      uint8 array with the file's shape.

    Raises:
      ValueError: a wrong magic number, type code or dimension count, or a length that does
        not match the header (truncated or padded file). The message names the file.
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # gzip raises these for corrupt or truncated archives
        raise ValueError(f"{path}: cannot read IDX file ({err})") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(raw)} bytes)")
    zero0, zero1, type_code, file_ndim = raw[:4]
    if zero0 != 0 or zero1 != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex()})")
    if type_code != _UBYTE:
        raise ValueError(
            f"{path}: IDX type code 0x{type_code:02x} is not supported (need 0x08, uint8)"
        )
    if file_ndim != ndim:
        raise ValueError(f"{path}: expected {ndim} dimension(s), the header says {file_ndim}")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise ValueError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:header_len])
    expected = int(np.prod(shape, dtype=np.int64))
    actual = len(raw) - header_len
    if actual != expected:
        raise ValueError(
            f"{path}: header announces shape {shape} ({expected} bytes of data) but the file "
            f"holds {actual} bytes: truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape)
