"""An in-place float64 Cholesky factorisation that other threads can run at the same time.

LAPACK's ``dpotrf`` from scipy's public Cython LAPACK table (``scipy.linalg.cython_lapack``, the same library
``scipy.linalg`` uses), called through ``ctypes``, which releases the GIL for the call. The alternatives cost
twice as much in the bootstrap, where one process factors thousands of 384 × 384 matrices on two worker threads
(measured on the 2-core machine, per matrix): ``np.linalg.cholesky`` 1.25 ms (it copies the matrix in and out
column by column and zeroes a triangle around the 0.6 ms of LAPACK work); ``scipy.linalg.lapack.dpotrf`` 0.66 ms
alone but 1.31 ms on each of two threads (its wrapper holds the GIL, so the threads take turns); this 0.61 ms on
each of two threads.
"""
from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import numpy as np
import scipy.linalg.cython_lapack


@functools.cache
def _dpotrf() -> Callable[..., None]:
    capsule = scipy.linalg.cython_lapack.__pyx_capi__["dpotrf"]
    name = ctypes.pythonapi.PyCapsule_GetName
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    pointer = ctypes.pythonapi.PyCapsule_GetPointer
    pointer.restype, pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    c_int_p = ctypes.POINTER(ctypes.c_int)
    # void dpotrf(char *uplo, int *n, double *a, int *lda, int *info)
    return ctypes.CFUNCTYPE(None, ctypes.c_char_p, c_int_p, ctypes.c_void_p, c_int_p, c_int_p)(
        pointer(capsule, name(capsule)))


def cholesky_diagonal(m: np.ndarray) -> np.ndarray:
    """The diagonal of the Cholesky factor L (m = L Lᵀ) of a symmetric positive definite float64 matrix, which is
    overwritten (``m`` must be C-contiguous and writeable; only one triangle is read, as m is symmetric).

    Raises:
        np.linalg.LinAlgError: m is not positive definite (as ``np.linalg.cholesky`` does).
    """
    if m.dtype != np.float64 or not m.flags.c_contiguous or not m.flags.writeable or m.ndim != 2 \
            or m.shape[0] != m.shape[1]:
        raise ValueError("cholesky_diagonal needs a square, C-contiguous, writeable float64 matrix")
    n = ctypes.c_int(m.shape[0])
    if n.value == 0:
        return np.empty(0)
    info = ctypes.c_int(0)
    # LAPACK reads column-major: the C-ordered m is seen as mᵀ = m; its "L" factor is the upper triangle here
    _dpotrf()(b"L", ctypes.byref(n), m.ctypes.data, ctypes.byref(n), ctypes.byref(info))
    if info.value != 0:
        raise np.linalg.LinAlgError(f"Matrix is not positive definite (LAPACK dpotrf info {info.value})")
    return np.diagonal(m).copy()
