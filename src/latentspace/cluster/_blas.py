"""The compiled kernels' matrix product: the fastest BLAS ``gemm`` in the process, by name.

The kernels call ``gemm`` through three external symbols that this module points, once per
process, at the best library loaded: the MKL inside torch's x86 builds where it is there (on
the small products of the K-means step it measured 1.25–2.2× faster than OpenBLAS, one thread
each), otherwise scipy's BLAS. The symbols are resolved when a kernel is loaded, so the
kernels stay in numba's on-disk cache however the process binds them. Each kernel thread
holds MKL to one thread of its own (``local_threads``), as the caller already holds OpenBLAS
to one (:func:`latentspace.cluster._lloyd.one_blas_thread`). Setting the environment variable
``LATENTSPACE_KERNEL_BLAS=scipy`` before the first fit keeps scipy's BLAS.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

__all__ = ["backend", "bind", "intel_cpu", "mkl_one_thread"]

_DGEMM, _SGEMM, _THREADS = "latentspace_dgemm", "latentspace_sgemm", "latentspace_local_threads"
backend: str | None = None  # "mkl" or "scipy" once bound


def _capsule_pointer(module, name: str) -> int:
    capsule = module.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


def _address(fn) -> int:
    """The address of a ctypes function."""
    return int(ctypes.cast(fn, ctypes.c_void_p).value or 0)


def _mkl() -> tuple[int, int, int] | None:
    """(dgemm, sgemm, MKL_Set_Num_Threads_Local) of the MKL linked into torch, or None."""
    try:
        import torch

        if not torch.backends.mkl.is_available():
            return None
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        fns = (lib.dgemm_, lib.sgemm_, lib.MKL_Set_Num_Threads_Local)
    except (ImportError, OSError, AttributeError):
        return None
    dgemm, sgemm, threads = (_address(f) for f in fns)
    return dgemm, sgemm, threads


_intel: bool | None = None


def intel_cpu() -> bool:
    """Whether the processor is Intel's (read once).

    MKL's routes were chosen by measurements on Intel processors, where its products run at
    close to the core's peak. On an AMD EPYC (Zen, AVX2) the same products through torch's
    MKL ran 1.1–2.8× slower than OpenBLAS's, so elsewhere the OpenBLAS routes are taken.
    """
    global _intel
    if _intel is None:
        text = ""
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("vendor_id"):
                        text = line
                        break
        except OSError:
            pass
        if not text:
            import platform

            text = platform.processor()
        _intel = "GenuineIntel" in text or "Intel" in text
    return _intel


_local_threads = None  # MKL_Set_Num_Threads_Local as a ctypes function, once looked up


def _local_threads_fn():
    global _local_threads
    if _local_threads is None:
        try:
            import torch

            if not torch.backends.mkl.is_available():
                raise OSError
            lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib",
                                           "libtorch_cpu.so"))
            fn = lib.MKL_Set_Num_Threads_Local
            fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_int]
            _local_threads = fn
        except (ImportError, OSError, AttributeError):
            _local_threads = False
    return _local_threads or None


@contextlib.contextmanager
def mkl_one_thread():
    """torch's MKL on one thread for the calling thread's products inside the block (its
    thread team costs more than a short product); the thread's setting is restored after.
    Yields whether MKL's thread count could be set: without it the products run as usual."""
    fn = _local_threads_fn()
    if fn is None:
        yield False
        return
    prev = fn(1)
    try:
        yield True
    finally:
        fn(prev)


def bind() -> str:
    """Point the kernels' symbols at a BLAS (once); returns which: "mkl" or "scipy"."""
    global backend
    if backend is not None:
        return backend
    import llvmlite.binding as llvm
    from scipy.linalg import cython_blas

    found = None if os.environ.get("LATENTSPACE_KERNEL_BLAS") == "scipy" else _mkl()
    if found is not None:
        dgemm, sgemm, threads = found
        backend = "mkl"
    else:
        dgemm, sgemm = _capsule_pointer(cython_blas, "dgemm"), _capsule_pointer(cython_blas, "sgemm")
        # OpenBLAS's threads are limited by the caller; the thread hook is then a harmless
        # int -> int function
        threads = _address(ctypes.CDLL(None).abs)
        backend = "scipy"
    llvm.add_symbol(_DGEMM, dgemm)
    llvm.add_symbol(_SGEMM, sgemm)
    llvm.add_symbol(_THREADS, threads)
    return backend


def intrinsics():
    """(dgemm, sgemm, local_threads) callable from numba code (numba is needed)."""
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def external(name):
        @intrinsic
        def call(typingctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
            sig = types.void(*([types.voidptr] * 13))

            def codegen(context, builder, signature, llargs):
                ptr = ir.IntType(8).as_pointer()
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [ptr] * 13), name)
                builder.call(fn, llargs)
                return context.get_dummy_value()

            return sig, codegen

        return call

    @intrinsic
    def local_threads(typingctx, n):
        sig = types.int32(types.int32)

        def codegen(context, builder, signature, llargs):
            i32 = ir.IntType(32)
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, [i32]),
                                                _THREADS)
            return builder.call(fn, llargs)

        return sig, codegen

    return external(_DGEMM), external(_SGEMM), local_threads
