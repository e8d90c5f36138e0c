"""The one way tfclust compiles a kernel: ``@compiled`` is ``tf.function`` with XLA on, no
autograph and no relaxed shapes.

Kernels write their loops and branches as ``tf.while_loop``/``tf.cond`` already, so autograph's
source-to-source conversion would only cost time (it was ~80% of the first K-means fit's
tracing). Importing this module turns on the persistent compilation cache
(:mod:`tfclust._compile_cache`), if TensorFlow has not set up its devices yet.
"""

from __future__ import annotations

import functools

from tfclust import _compile_cache

_compile_cache.configure()

compiled = functools.partial(
    _compile_cache.guarded, jit_compile=True, reduce_retracing=False, autograph=False
)
"""Decorator: ``tf.function(jit_compile=True, reduce_retracing=False, autograph=False)``, guarded
against a faulty compilation cache (:func:`tfclust._compile_cache.guarded`)."""


def program(fn):
    """``compiled(fn)`` as a program of its own: TensorFlow counts traces per Python code object,
    so closures of one ``def`` (or methods of one class) compiled for different static settings
    would count as retracing one another and warn; a ``functools.partial`` has no code object."""
    return compiled(functools.partial(fn))


@functools.cache
def specialised(fn, *key):
    """``program(fn)``, one per ``key`` (the static sizes it is called with): programs that are
    meant to differ, such as one per size bucket, then never count as retracing of one another."""
    return program(fn)
