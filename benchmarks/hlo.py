"""Reading XLA's optimized HLO text: computations, loops, branches and the instructions in them.

Used by tests/test_hlo.py (the hot programs have static trip counts and no branch inside an
iteration) and by the GPU estimate (docs/accelerators.md). Works on the text of
``tf.function(...).experimental_get_compiler_ir(*args)(stage="optimized_hlo")`` or of the
``*.after_optimizations.txt`` files of ``XLA_FLAGS=--xla_dump_to=DIR``.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

_HEADER = re.compile(r"^(ENTRY )?%?([\w.\-]+) \(.*\) -> .* \{$")
_INSTRUCTION = re.compile(r"^\s*(ROOT )?%?([\w.\-]+) = (.*)$")
_OPCODE = re.compile(r"(?:^|[\s\]}])([a-z][a-z0-9\-]*)\(")
_CALLED = re.compile(
    r"(?:condition|body|calls|to_apply|true_computation|false_computation)=%?([\w.\-]+)"
)
_BRANCHES = re.compile(r"branch_computations=\{([^}]*)\}")
_METADATA = re.compile(r", metadata=\{[^}]*\}")
_TRIP_COUNT = re.compile(r'"known_trip_count":\{"n":"(\d+)"\}')


class Instruction(NamedTuple):
    """One HLO instruction: its name, result type text, opcode and the rest of its line
    (operands and attributes, metadata removed)."""

    name: str
    shape: str
    opcode: str
    text: str


class Computation(NamedTuple):
    """One HLO computation: its name, whether it is the entry, and its instructions."""

    name: str
    entry: bool
    instructions: list[Instruction]


def parse(hlo: str) -> dict[str, Computation]:
    """The computations of an HLO module's text, by name."""
    computations: dict[str, Computation] = {}
    current = None
    for line in hlo.splitlines():
        header = _HEADER.match(line)
        if header:
            current = Computation(header.group(2), bool(header.group(1)), [])
            computations[current.name] = current
            continue
        if line.startswith("}"):
            current = None
            continue
        match = _INSTRUCTION.match(line) if current is not None else None
        if match:
            rest = _METADATA.sub("", match.group(3))
            opcode = _OPCODE.search(rest)
            shape = rest[: opcode.start(1)].strip() if opcode else rest
            current.instructions.append(
                Instruction(match.group(2), shape, opcode.group(1) if opcode else "", rest)
            )
    return computations


def called(instruction: Instruction) -> list[str]:
    """Names of the computations ``instruction`` calls (loop bodies, branches, fusions...)."""
    names = _CALLED.findall(instruction.text)
    for group in _BRANCHES.findall(instruction.text):
        names += [name.strip().lstrip("%") for name in group.split(",") if name.strip()]
    return names


def reachable(computations: dict[str, Computation], roots) -> set[str]:
    """The computations ``roots`` are, or call directly or indirectly."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen or name not in computations:
            continue
        seen.add(name)
        for instruction in computations[name].instructions:
            stack += called(instruction)
    return seen


def trip_count(instruction: Instruction) -> int | None:
    """The trip count XLA proved for a ``while`` instruction, or None (decided at run time)."""
    match = _TRIP_COUNT.search(instruction.text)
    return int(match.group(1)) if match else None


def loops(computations: dict[str, Computation]) -> list[tuple[str, Instruction]]:
    """Every ``while`` instruction, with the name of the computation holding it."""
    return [
        (computation.name, instruction)
        for computation in computations.values()
        for instruction in computation.instructions
        if instruction.opcode == "while"
    ]


def in_loops(computations: dict[str, Computation]) -> set[str]:
    """The computations that run once per iteration of some loop (bodies, conditions and all
    they call)."""
    roots = []
    for _, instruction in loops(computations):
        roots += called(instruction)
    return reachable(computations, roots)


def dynamic_control_flow(hlo: str) -> list[str]:
    """What keeps a program from running without host round trips on an accelerator: loops
    whose trip count is only known at run time, and branches inside a loop's iteration. Empty
    for a static program."""
    computations = parse(hlo)
    problems = [
        f"while {instruction.name} in {name}: trip count decided at run time"
        for name, instruction in loops(computations)
        if trip_count(instruction) is None
    ]
    for name in sorted(in_loops(computations)):
        problems += [
            f"conditional {instruction.name} inside the loop computation {name}"
            for instruction in computations[name].instructions
            if instruction.opcode == "conditional"
        ]
    return problems


# --- Sizes, operands, FLOPs and a cost tree per module (the GPU estimate) -----------------

_ARRAY = re.compile(
    r"\b(pred|s4|s8|s16|s32|s64|u4|u8|u16|u32|u64|f8\w*|bf16|f16|f32|f64|c64|c128)"
    r"\[([\d,]*)\]"
)
_BITS = {"pred": 8, "s4": 4, "u4": 4, "bf16": 16, "f16": 16, "c64": 64, "c128": 128}
_DIMS = re.compile(r"(lhs_contracting_dims|rhs_batch_dims)=\{([\d,]*)\}")
_FFT_LENGTH = re.compile(r"fft_length=\{([\d,]*)\}")
_INT_CONSTANT = re.compile(r"^[su](?:8|16|32|64)\[\] constant\((-?\d+)\)")
_DIRECTION = re.compile(r"direction=(\w+)")

NOT_KERNELS = frozenset(
    {
        "parameter",
        "constant",
        "tuple",
        "get-tuple-element",
        "bitcast",
        "while",
        "conditional",
        "call",
        "after-all",
        "add-dependency",
        "opt-barrier",
        "partition-id",
        "replica-id",
        "domain",
    }
)
"""Opcodes that launch no kernel of their own (control flow is counted through what it runs)."""


def _element_bits(dtype: str) -> int:
    if dtype in _BITS:
        return _BITS[dtype]
    if dtype.startswith("f8"):
        return 8
    return int(re.sub(r"\D", "", dtype))


def dims(shape: str) -> list[int]:
    """The dimensions of the first array in a shape's text (``f32[5,2]{1,0}`` -> [5, 2])."""
    match = _ARRAY.search(shape)
    return [int(d) for d in match.group(2).split(",") if d] if match else []


def shape_bytes(shape: str) -> int:
    """Bytes of a shape's text: an array, or every array of a tuple."""
    total = 0
    for dtype, ds in _ARRAY.findall(shape):
        total += math.prod(int(d) for d in ds.split(",") if d) * _element_bits(dtype) // 8
    return total


def operands(instruction: Instruction) -> list[str]:
    """The names of an instruction's operands, in order."""
    text = instruction.text
    start = text.find(instruction.opcode + "(", len(instruction.shape)) + len(instruction.opcode)
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    inner = re.sub(r"/\*[^*]*\*/", "", text[start + 1 : end])
    names, depth, token = [], 0, ""
    for char in inner + ",":
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            if token.strip():
                names.append(token.strip().split()[-1].lstrip("%"))
            token = ""
        else:
            token += char
    return names


def flops(computations: dict[str, Computation], instruction: Instruction) -> float:
    """Floating-point operations of a dot, convolution or FFT, or of those inside a fusion (or
    anything else the instruction calls); 0 for the rest (elementwise work is bandwidth-bound)."""
    if instruction.opcode == "dot":
        contracting = _dims_attribute(instruction.text, "lhs_contracting_dims")
        lhs = _operand_shape(computations, instruction, 0)
        k = math.prod(dims(lhs)[i] for i in contracting) if lhs else 1
        return 2.0 * math.prod(dims(instruction.shape)) * k
    if instruction.opcode == "convolution":
        rhs = dims(_operand_shape(computations, instruction, 1) or "")
        out = dims(instruction.shape)
        # Every output element takes a window of the kernel: 2 x output x kernel / out-features.
        return 2.0 * math.prod(out) * math.prod(rhs) / max(out[-1] if out else 1, 1)
    if instruction.opcode == "fft":
        length = _FFT_LENGTH.search(instruction.text)
        n = math.prod(int(d) for d in length.group(1).split(",") if d) if length else 1
        complex_side = max(
            (
                s
                for s in (instruction.shape, _operand_shape(computations, instruction, 0) or "")
                if s.startswith("c")
            ),
            key=shape_bytes,
            default=instruction.shape,
        )
        return 5.0 * math.prod(dims(complex_side)) * math.log2(max(n, 2))
    return sum(
        flops(computations, inner)
        for name in called(instruction)
        if name in computations and instruction.opcode == "fusion"
        for inner in computations[name].instructions
    )


def _dims_attribute(text: str, key: str) -> list[int]:
    for name, value in _DIMS.findall(text):
        if name == key:
            return [int(d) for d in value.split(",") if d]
    return []


_OWNER: dict[int, dict[str, Instruction]] = {}


def _by_name(computations: dict[str, Computation]) -> dict[str, Instruction]:
    key = id(computations)
    if key not in _OWNER:
        _OWNER.clear()
        _OWNER[key] = {
            i.name: i for computation in computations.values() for i in computation.instructions
        }
    return _OWNER[key]


def _operand_shape(computations, instruction: Instruction, index: int) -> str | None:
    names = operands(instruction)
    if index >= len(names):
        return None
    operand = _by_name(computations).get(names[index])
    return operand.shape if operand else None


def _parameter_read(computations, fused: Computation, index: int, shape: str) -> int:
    """Bytes a fusion reads of its operand ``index``: only the slices when every use slices it,
    nothing when it is only updated in place, else all of it."""
    parameter = next(
        (
            i
            for i in fused.instructions
            if i.opcode == "parameter" and f"parameter({index})" in i.text
        ),
        None,
    )
    if parameter is None:
        return shape_bytes(shape)
    users = [
        (i, operands(i).index(parameter.name))
        for i in fused.instructions
        if parameter.name in operands(i)
    ]
    if users and all(u.opcode in ("dynamic-slice", "slice", "gather") and k == 0 for u, k in users):
        return sum(shape_bytes(u.shape) for u, _ in users)
    if users and all(u.opcode in ("dynamic-update-slice", "scatter") and k == 0 for u, k in users):
        return 0
    return shape_bytes(shape)


def _written(computations, fused: Computation) -> int:
    """Bytes a fusion writes: the updates of an in-place root, else its result."""
    by = {i.name: i for i in fused.instructions}
    root = by.get(_root_name(fused))
    if root is None:
        return 0
    parts = [root]
    if root.opcode == "tuple":
        parts = [by[n] for n in operands(root) if n in by]
    total = 0
    for part in parts:
        if part.opcode in ("dynamic-update-slice", "scatter"):
            update = operands(part)[-1 if part.opcode == "scatter" else 1]
            total += shape_bytes(by[update].shape) if update in by else 0
        else:
            total += shape_bytes(part.shape)
    return total


_ROOTS: dict[str, str] = {}


def _root_name(computation: Computation) -> str:
    """The ROOT instruction's name (recorded by :func:`module_stats`), else the last one's."""
    return _ROOTS.get(computation.name, computation.instructions[-1].name)


SORT_TILE = 2048
"""Keys one GPU thread block sorts in shared memory (XLA:GPU's bitonic sort works on tiles of
this order): the stages of a sort whose partners lie within a tile take one pass over memory."""
TOP_K_KERNEL_MAX_K = 16
"""Largest k of XLA:GPU's own top-k kernel (one pass over the rows); a larger k sorts them."""


def sort_passes(length: int) -> int:
    """Passes over memory (each a read and a write of the rows) of a bitonic sort of rows of
    ``length`` keys: one for all stages inside a :data:`SORT_TILE` tile, then per merge step
    one for each stage whose partners lie farther apart and one for the stages within a tile."""
    stages, tile = math.ceil(math.log2(max(length, 2))), int(math.log2(SORT_TILE))
    return 1 + sum(step - tile + 1 for step in range(tile + 1, stages + 1))


def _selection_bytes(instruction: Instruction, shapes: list[str]) -> int | None:
    """Bytes of a sort, or of a top-k (XLA's ``TopK`` custom call), on a GPU; None for other
    instructions. A top-k with k <= :data:`TOP_K_KERNEL_MAX_K` reads its rows once; a larger
    one, or a sort, costs :func:`sort_passes` reads and writes of the rows (keys and indices)."""
    is_top_k = 'custom_call_target="TopK"' in instruction.text
    if instruction.opcode != "sort" and not is_top_k:
        return None
    data = sum(map(shape_bytes, shapes))
    length = ((dims(shapes[0]) if shapes else []) or [1])[-1]
    if is_top_k:
        if (dims(instruction.shape) or [1])[-1] <= TOP_K_KERNEL_MAX_K:
            return data + shape_bytes(instruction.shape)
        data *= 2  # the sort carries an index per key
    return 2 * sort_passes(length) * data


def kernel_bytes(computations: dict[str, Computation], instruction: Instruction) -> int:
    """Bytes a kernel moves to and from memory: what it reads of its operands plus what it
    writes (slices and in-place updates count only the part touched; a sort or top-k as on a
    GPU, :func:`_selection_bytes`)."""
    by = _by_name(computations)
    shapes = [by[n].shape if n in by else "" for n in operands(instruction)]
    op = instruction.opcode
    selection = _selection_bytes(instruction, shapes)
    if selection is not None:
        return selection
    if op == "fusion":
        fused = computations.get(called(instruction)[0]) if called(instruction) else None
        if fused is None:
            return sum(map(shape_bytes, shapes)) + shape_bytes(instruction.shape)
        read = sum(_parameter_read(computations, fused, k, s) for k, s in enumerate(shapes))
        return read + _written(computations, fused)
    if op in ("dynamic-slice", "slice", "gather"):
        return 2 * shape_bytes(instruction.shape) + sum(map(shape_bytes, shapes[1:]))
    if op == "dynamic-update-slice":
        return 2 * shape_bytes(shapes[1]) if len(shapes) > 1 else 0
    if op == "scatter":
        return 3 * shape_bytes(shapes[-1]) + sum(map(shape_bytes, shapes[1:-1]))
    return sum(map(shape_bytes, shapes)) + shape_bytes(instruction.shape)


def constant_bound(computations: dict[str, Computation], condition: str) -> int | None:
    """For a loop XLA found no trip count for: the trip count its condition implies if every
    comparison in it is against a constant and no flag (a ``pred`` element of the loop state)
    takes part (a counter from 0 below a constant, as ``tf.map_fn``'s two counters), else None
    (the trip count depends on the data)."""
    names = reachable(computations, [condition])
    bounds = []
    for name in names:
        computation = computations[name]
        local = {i.name: i for i in computation.instructions}
        for i in computation.instructions:
            if i.opcode == "get-tuple-element" and i.shape.startswith("pred"):
                return None
            if i.opcode == "parameter" and name == condition:
                continue
            if i.opcode != "compare":
                continue
            values = []
            for operand in operands(i):
                source = local.get(operand)
                if source is not None and source.opcode == "parameter" and name != condition:
                    source = _fusion_argument(computations, condition, name, source)
                match = _INT_CONSTANT.match(source.text) if source is not None else None
                if match:
                    values.append(int(match.group(1)))
            if len(values) != 1:
                return None
            direction = _DIRECTION.search(i.text)
            bounds.append(
                values[0] + (1 if direction and direction.group(1) in ("LE", "GE") else 0)
            )
    return min(bounds) if bounds else None


def reads_flag(computations: dict[str, Computation], condition: str) -> bool:
    """Whether a loop condition reads a ``pred`` element of the loop state (a convergence flag:
    the loop runs until the data say stop)."""
    return any(
        i.opcode == "get-tuple-element" and i.shape.startswith("pred")
        for i in computations[condition].instructions
    )


def _fusion_argument(computations, condition, fused_name, parameter):
    """The instruction a fusion in ``condition`` passes as ``parameter`` of ``fused_name``."""
    index = int(re.search(r"parameter\((\d+)\)", parameter.text).group(1))
    local = {i.name: i for i in computations[condition].instructions}
    for i in computations[condition].instructions:
        if fused_name in called(i):
            names = operands(i)
            return local.get(names[index]) if index < len(names) else None
    return None


def _roofline(nbytes: float, nflops: float, bandwidth: float, peak: float) -> float:
    return max(nbytes / bandwidth, nflops / peak)


def cost_tree(
    computations: dict[str, Computation], name: str, bandwidth: float, peak: float
) -> dict:
    """What running computation ``name`` once costs: its kernels (count, bytes, FLOPs and
    roofline seconds at ``bandwidth`` bytes/s and ``peak`` FLOP/s), plus the loops and
    conditionals it runs, each with the cost tree of what one trip or branch runs."""
    node = {"kernels": 0, "bytes": 0, "flops": 0.0, "kernel_s": 0.0, "loops": [], "branches": []}
    for i in computations[name].instructions:
        if i.opcode == "while":
            condition, body = _CALLED.findall(i.text)[:2]
            node["loops"].append(
                {
                    "name": i.name,
                    "trip_count": trip_count(i),
                    "bound": constant_bound(computations, condition)
                    if trip_count(i) is None
                    else None,
                    "flag": reads_flag(computations, condition),
                    "body": cost_tree(computations, body, bandwidth, peak),
                    "condition": cost_tree(computations, condition, bandwidth, peak),
                }
            )
        elif i.opcode == "conditional":
            node["branches"].append(
                {
                    "name": i.name,
                    "branches": [
                        cost_tree(computations, b, bandwidth, peak)
                        for b in called(i)
                        if b in computations
                    ],
                }
            )
        elif i.opcode == "call":
            inner = cost_tree(computations, called(i)[0], bandwidth, peak)
            for key in ("kernels", "bytes", "flops", "kernel_s"):
                node[key] += inner[key]
            node["loops"] += inner["loops"]
            node["branches"] += inner["branches"]
        elif i.opcode not in NOT_KERNELS:
            nbytes, nflops = kernel_bytes(computations, i), flops(computations, i)
            node["kernels"] += 1
            node["bytes"] += nbytes
            node["flops"] += nflops
            node["kernel_s"] += _roofline(nbytes, nflops, bandwidth, peak)
    return node


def module_stats(text: str, bandwidth: float = 2.0e12, peak: float = 19.5e12) -> dict:
    """The cost tree of a module's entry computation (:func:`cost_tree`)."""
    computations = parse(text)
    _ROOTS.clear()
    current = None
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header:
            current = header.group(2)
            continue
        match = _INSTRUCTION.match(line)
        if match and match.group(1) and current:
            _ROOTS[current] = match.group(2)
    entry = next(c.name for c in computations.values() if c.entry)
    return cost_tree(computations, entry, bandwidth, peak)
