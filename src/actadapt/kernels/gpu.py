r"""Triton kernels for the three paper activations: CUDA tensors, and CPU tensors under Triton's interpreter.

The formulas and their error budgets are those of ``csrc/activations.cpp`` (which cites
:mod:`actadapt.families`), written once more in Triton: float32 work (half and bfloat16 inputs are loaded and
computed in float32), float64 for float64. Each transcendental is built from FMAs, as in the C++ kernel, so
that its accuracy does not depend on the GPU's approximate ``ex2``/``lg2`` units and the interpreter runs the
very same arithmetic:

* ``e^v`` and ``e^v - 1``: Cody-Waite reduction and Cephes' polynomial (float32), with gradual underflow;
  float64 takes ``tl.exp`` and a 16-term series for ``e^v - 1`` at ``|v| < 0.35``;
* ``log(1 + E)``, ``0 <= E <= 1``: ``2 atanh(E / (2 + E))`` by its series.

Subnormals: GPUs flush float32 subnormals in many operations (Triton's NVIDIA backend compiles with
flush-to-zero), and the interpreter keeps them. Both give the same results here, because the few results that
need a factor under FLT_MIN (x^2 e^{-alpha x} with x up to 1e4; Swish's x s(alpha x); Gumbel's E/alpha for small
alpha) carry that factor scaled by 2^64 and another one by 2^-64 (``SCALED``, ``_unscale``), exact power-of-two
scalings, as the C++ kernel does (its comments give the bounds). The tests run the float32 contract in the
interpreter both ways (``torch.set_flush_denormal(True)`` makes numpy flush too).

Work split (``x`` dense, in memory order; ``(G, M, C, inner)`` from :mod:`.layout`):

* alpha constant along rows of ``inner`` elements (per channel of a conv, or shared): one program per chunk
  of a row (``_rows_kernel``);
* alpha along the contiguous axis (dense per-feature, channels-last conv): one program per tile of rows and
  a block of channels (``_columns_kernel``).

The backward writes grad_x and one partial sum of grad_alpha per program in the same launch; a small
``torch.sum`` over those partials (about one value per thousand elements) gives grad_alpha in a second.
No atomics, so results are deterministic.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import triton
import triton.language as tl
from torch import Tensor

from .dispatch import triton_interpreted
from .layout import plan
from .reference import compute_dtype

__all__ = ["unavailable", "forward", "backward", "INTERPRETED"]

# Triton decides between interpreted and compiled kernels when a function is decorated: its own library
# (tl.sum, ...) when triton is imported, these kernels when this module is. Both must agree.
INTERPRETED = type(tl.sum).__name__ == "InterpretedFunction"
_CONSISTENT = INTERPRETED == triton_interpreted()


def unavailable(device_type: str) -> Optional[str]:
    """Why the kernels cannot run on ``device_type`` now, or ``None`` if they can."""
    if not _CONSISTENT:
        return ("TRITON_INTERPRET changed after triton was imported; set it before anything imports triton "
                "(torch.compile does)")
    if device_type == "cpu" and not INTERPRETED:
        return ("Triton runs CPU tensors only in its interpreter, and triton was imported without it (set "
                "TRITON_INTERPRET=1 before anything imports triton)")
    if device_type == "cuda" and not INTERPRETED and not torch.cuda.is_available():
        return "no CUDA device is available"
    return None


# ------------------------------------------------------------------------------------------ math
_SCALE_DOWN = tl.constexpr(5.421010862427522e-20)  # 2^-64: see _exp_parts' SCALED


@triton.jit
def _unscale(v, F64: tl.constexpr):
    """A factor of a SCALED e^v, times 2^-64 (float32; float64 is never scaled)."""
    if F64:
        return v
    else:
        return v * _SCALE_DOWN


@triton.jit
def _exp_parts(v, WANT_EXPM1: tl.constexpr, F64: tl.constexpr, SCALED: tl.constexpr = False):
    """(e^v, e^v - 1) for v <= 88 (v = -inf gives (0, -1); NaN stays NaN). See the module docstring.

    SCALED (float32, v <= 0): the first is e^v 2^64, normal down to v = -131.7 also where subnormals flush
    (0 from v = -149.5 on); e^v - 1 is unchanged."""
    if F64:
        e = tl.exp(v)
        em1 = e - 1.0
        if WANT_EXPM1:
            # |v| < 0.35: v (1 + v/2 (1 + v/3 (1 + ... v/17))), truncated at 0.35^17/17! = 5e-23 relative
            acc = tl.full(v.shape, 1.0, tl.float64)
            for k in tl.static_range(17, 1, -1):
                acc = 1.0 + acc * v * (1.0 / k)
            em1 = tl.where(tl.abs(v) < 0.35, v * acc, em1)
        return e, em1
    else:
        low = -149.5 if SCALED else -104.0
        vv = tl.where(v < low, low, v)  # comparisons with NaN are false: NaN passes through
        vv = tl.where(vv > 88.8, 88.8, vv)
        n = tl.floor(vv * 1.44269504088896341 + 0.5)
        r = tl.fma(n, -0.693359375, vv)  # ln2 = 0.693359375 - 2.12194440e-4 (Cephes' split)
        r = tl.fma(n, 2.12194440e-4, r)
        p = tl.fma(r, 1.9875691500e-4, 1.3981999507e-3)
        p = tl.fma(p, r, 8.3334519073e-3)
        p = tl.fma(p, r, 4.1665795894e-2)
        p = tl.fma(p, r, 1.6666665459e-1)
        p = tl.fma(p, r, 5.0000001201e-1)
        q = tl.fma(p * r, r, r)  # e^r - 1
        ni = tl.where(n == n, n, 0.0).to(tl.int32)
        if SCALED:
            ni = ni + 64  # n + 64 >= -152: both halves >= -76
        n1 = ni >> 1
        s1 = ((n1 + 127) << 23).to(tl.float32, bitcast=True)
        s2 = ((ni - n1 + 127) << 23).to(tl.float32, bitcast=True)
        e = (q + 1.0) * s1 * s2  # two scalings: results under FLT_MIN underflow gradually
        em1 = e
        if WANT_EXPM1:
            s = s1 * s2
            if SCALED:
                s = s * _SCALE_DOWN
            em1 = tl.where(n == 0.0, q, tl.fma(s, q, s - 1.0))
        return e, em1


@triton.jit
def _atanh_series(s, F64: tl.constexpr):
    """sum_k s^(2k)/(2k+1) for s in [0, 1/3], so that log(1 + E) = 2 s (this) with s = E / (2 + E): 17 terms
    (float64, 9^-17 below epsilon) or 6 (float32, 9^-6/13 = 1.5e-7)."""
    s2 = s * s
    if F64:
        acc = tl.full(s.shape, 1.0 / 33.0, tl.float64)
        for k in tl.static_range(15, -1, -1):
            acc = acc * s2 + 1.0 / (2 * k + 1)
    else:
        acc = tl.full(s.shape, 1.0 / 11.0, tl.float32)
        for k in tl.static_range(4, -1, -1):
            acc = acc * s2 + 1.0 / (2 * k + 1)
    return acc


@triton.jit
def _gumbel_core(x, a, log_a, log_a_lo, inv_a, F64: tl.constexpr, UNIFIED: tl.constexpr):
    """(L, D, w) of families._gumbel_core: L = log(1 + a e^x)/a, D = dL/dx, w = a D.

    UNIFIED (every alpha >= 1e-7): u = log(a) + x, E = e^{-|u|}, a L = max(u, 0) + log1p(E), w = sigmoid(u);
    in float32 the rounding error of u (TwoSum, and log(a)'s low part from a float64 log) is put back, as in
    the C++ kernel, since S = e^{-L} turns an error e in u into e/alpha; and E, E/(2 + E) and log1p(E) are
    carried times 2^64 (SCALED), since F ~ L ~ D ~ E/alpha stay over the contract's absolute 1e-34 down to
    E = 1e-40 for alpha = 1e-6. Else the two regimes split at u = 0 (continuous down to alpha = 0, the Gumbel
    cdf)."""
    if UNIFIED:
        u = log_a + x
        u_pos = tl.where(u < 0.0, 0.0, u)
        E_s, _ = _exp_parts(-tl.abs(u), False, F64, True)  # E 2^64 (float32)
        if not F64:
            x_part = u - log_a
            err = ((log_a - (u - x_part)) + (x - x_part)) + log_a_lo  # exact u = u + err
            err = tl.where(err == err, err, 0.0)  # x = +-inf: inf - inf; u, E and u_pos are right
            E_s = tl.fma(E_s, tl.where(u < 0.0, err, -err), E_s)
            u_pos = u_pos + tl.where(u < 0.0, 0.0, err)
        E = _unscale(E_s, F64)
        one_plus_E = 1.0 + E
        two_plus_E = 2.0 + E
        r = 1.0 / (one_plus_E * two_plus_E)
        inv = two_plus_E * r  # 1 / (1 + E)
        s_s = E_s * one_plus_E * r  # E / (2 + E), scaled as E_s
        log1p_s = 2.0 * s_s * _atanh_series(_unscale(s_s, F64), F64)
        w = tl.where(u > 0.0, inv, E * inv)
        if F64:
            L = (u_pos + log1p_s) * inv_a
            D = w * inv_a
        else:
            inv_a_down = inv_a * _SCALE_DOWN  # >= 5e-23: normal
            L = tl.fma(log1p_s, inv_a_down, u_pos * inv_a)
            D = tl.where(u > 0.0, inv * inv_a, E_s * inv * inv_a_down)
    else:
        u = log_a + x
        small = u <= 0.0
        # one exponential serves both regimes: z = e^x (capped at 1/alpha) where alpha e^x <= 1, else e^{-u}
        t, _ = _exp_parts(tl.where(small, tl.minimum(x, -log_a), -u), False, F64)
        v = a * t
        # small regime: L = z log(1 + v)/v = z 2 atanh(s)/v = 2 z series(s)/(2 + v), s = v/(2 + v): no 0/0 at v = 0
        L_s = 2.0 * t * _atanh_series(v / (2.0 + v), F64) / (2.0 + v)
        D_s = t / (1.0 + v)
        w_s = v / (1.0 + v)
        # big regime: alpha L = u + log(1 + e^{-u}), w = sigmoid(u)
        a_b = tl.where(small, 1.0, a)
        s_b = t / (2.0 + t)
        L_b = (tl.where(small, 0.0, u) + 2.0 * s_b * _atanh_series(s_b, F64)) / a_b
        w_b = 1.0 / (1.0 + t)
        D_b = w_b / a_b
        L = tl.where(small, L_s, L_b)
        D = tl.where(small, D_s, D_b)
        w = tl.where(small, w_s, w_b)
    return L, D, w


@triton.jit
def _chi(w, F64: tl.constexpr):
    """sum_{k>=2} w^(k-2)/k for w < 0.05: 13 terms (float64) or 5 (float32)."""
    if F64:
        acc = tl.full(w.shape, 1.0 / 14.0, tl.float64)
        for k in tl.static_range(13, 1, -1):
            acc = acc * w + 1.0 / k
    else:
        acc = tl.full(w.shape, 1.0 / 6.0, tl.float32)
        for k in tl.static_range(5, 1, -1):
            acc = acc * w + 1.0 / k
    return acc


@triton.jit
def _forward_math(x, a, log_a, log_a_lo, inv_a, KIND: tl.constexpr, F64: tl.constexpr, UNIFIED: tl.constexpr):
    if KIND == 0:  # adaptive Gumbel: F = -expm1(-L)
        L, _, _ = _gumbel_core(x, a, log_a, log_a_lo, inv_a, F64, UNIFIED)
        _, em1 = _exp_parts(-L, True, F64)
        y = -em1
    elif KIND == 1:  # adaptive ReLU: x (1 - e^{-t}), t = alpha max(x, 0)
        t = a * tl.where(x < 0.0, 0.0, x)
        _, em1 = _exp_parts(-t, True, F64)
        y = -x * em1
    else:  # Swish: x s(alpha x), for t < 0 as ((x s(|t|)) e^{-|t|} 2^64) 2^-64
        t = a * x
        e_s, _ = _exp_parts(-tl.abs(t), False, F64, True)
        x_big = x / (1.0 + _unscale(e_s, F64))
        y = tl.where(t >= 0.0, x_big, _unscale(x_big * e_s, F64))
    return y


@triton.jit
def _backward_math(g, x, a, log_a, log_a_lo, inv_a, KIND: tl.constexpr, F64: tl.constexpr, UNIFIED: tl.constexpr):
    """(grad * dsigma/dx, grad * dsigma/dalpha), grouped as in the C++ kernel so that |x| = 1e30 gives 0."""
    if KIND == 0:
        L, D, w = _gumbel_core(x, a, log_a, log_a_lo, inv_a, F64, UNIFIED)
        S, _ = _exp_parts(-L, False, F64)
        dL_da = tl.where(w < 0.05, -(D * D * _chi(tl.where(w < 0.05, w, 0.0), F64)), (D - L) * inv_a)
        gS = g * S
        gx = gS * D
        ga = tl.where(S == 0.0, 0.0, gS * dL_da)
    elif KIND == 1:
        x_pos = tl.where(x < 0.0, 0.0, x)
        t = a * x_pos
        E_s, em1 = _exp_parts(-t, True, F64, True)  # E_s = e^{-t} 2^64 (float32)
        gx = g * tl.fma(x_pos, a * _unscale(E_s, F64), -em1)
        ga = g * x * (_unscale(x_pos, F64) * E_s)
    else:
        t = a * x
        e_s, _ = _exp_parts(-tl.abs(t), False, F64, True)  # e^{-|t|} 2^64 (float32)
        e = _unscale(e_s, F64)
        big = 1.0 / (1.0 + e)
        s = tl.where(t >= 0.0, big, e * big)
        q = g * (_unscale(x, F64) * (big * (e_s * big)))  # g x s(t) s(-t)
        gx = tl.fma(a, q, g * s)
        ga = x * q
    return gx, ga


@triton.jit
def _alpha_parts(a, F64: tl.constexpr):
    """alpha in the compute dtype, log(alpha) (a float64 log, split for float32 into value and low part) and
    1/alpha: once per program, for a scalar or a block of channels."""
    if F64:
        a = a.to(tl.float64)
        log_a = tl.log(a)
        log_a_lo = log_a * 0.0
    else:
        a = a.to(tl.float32)
        log64 = tl.log(a.to(tl.float64))
        log_a = log64.to(tl.float32)
        log_a_lo = (log64 - log_a.to(tl.float64)).to(tl.float32)
    return a, log_a, log_a_lo, 1.0 / a


@triton.jit
def _step(x_ptr, g_ptr, out_ptr, offs, mask, a, log_a, log_a_lo, inv_a, unified, acc,
          KIND: tl.constexpr, BACKWARD: tl.constexpr, F64: tl.constexpr):
    """One block of a kernel's walk (as the C++ kernel's step policies): the forward writes y; the backward
    writes grad_x and adds grad_alpha to ``acc``. ``unified`` (every alpha of the program >= 1e-7) picks
    Gumbel's one-formula form, once per program."""
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    xc = x.to(tl.float64) if F64 else x.to(tl.float32)
    if BACKWARD:
        g = tl.load(g_ptr + offs, mask=mask, other=0.0)
        gc = g.to(tl.float64) if F64 else g.to(tl.float32)
        if unified:
            gx, ga = _backward_math(gc, xc, a, log_a, log_a_lo, inv_a, KIND, F64, True)
        else:
            gx, ga = _backward_math(gc, xc, a, log_a, log_a_lo, inv_a, KIND, F64, False)
        tl.store(out_ptr + offs, gx.to(x.dtype), mask=mask)
        acc += tl.where(mask, ga, 0.0)
    else:
        if unified:
            y = _forward_math(xc, a, log_a, log_a_lo, inv_a, KIND, F64, True)
        else:
            y = _forward_math(xc, a, log_a, log_a_lo, inv_a, KIND, F64, False)
        tl.store(out_ptr + offs, y.to(x.dtype), mask=mask)
    return acc


# --------------------------------------------------------------------------------------- kernels
@triton.jit
def _rows_kernel(x_ptr, g_ptr, alpha_ptr, out_ptr, partial_ptr, n_rows, inner, chunks, MC, G, C,
                 KIND: tl.constexpr, BACKWARD: tl.constexpr, F64: tl.constexpr, BLOCK_R: tl.constexpr,
                 BLOCK_I: tl.constexpr, ITERS: tl.constexpr):
    """alpha constant along each row of `inner` elements; program = (BLOCK_R rows, chunk of BLOCK_I * ITERS
    elements of each); short rows are packed several to a program."""
    pid = tl.program_id(0)
    rows = (pid // chunks) * BLOCK_R + tl.arange(0, BLOCK_R)
    chunk = pid % chunks
    rmask = rows < n_rows
    alpha = tl.load(alpha_ptr + ((rows // MC) % G) * C + rows % C, mask=rmask, other=1.0)
    a1, log_a1, log_a_lo1, inv_a1 = _alpha_parts(alpha, F64)
    a, log_a, log_a_lo, inv_a = a1[:, None], log_a1[:, None], log_a_lo1[:, None], inv_a1[:, None]
    unified = tl.min(a1, axis=0) >= 1e-7
    base = rows.to(tl.int64) * inner
    acc = tl.zeros([BLOCK_R, BLOCK_I], dtype=tl.float64 if F64 else tl.float32)
    for it in tl.static_range(ITERS):
        cols = chunk * (BLOCK_I * ITERS) + it * BLOCK_I + tl.arange(0, BLOCK_I)
        mask = rmask[:, None] & (cols < inner)[None, :]
        offs = base[:, None] + cols[None, :]
        acc = _step(x_ptr, g_ptr, out_ptr, offs, mask, a, log_a, log_a_lo, inv_a, unified, acc, KIND, BACKWARD, F64)
    if BACKWARD:
        tl.store(partial_ptr + rows.to(tl.int64) * chunks + chunk, tl.sum(acc, axis=1), mask=rmask)


@triton.jit
def _columns_kernel(x_ptr, g_ptr, alpha_ptr, out_ptr, partial_ptr, M, C, G, m_chunks, c_blocks,
                    KIND: tl.constexpr, BACKWARD: tl.constexpr, F64: tl.constexpr, BLOCK_R: tl.constexpr,
                    BLOCK_C: tl.constexpr, ITERS: tl.constexpr):
    """alpha along the contiguous axis of C channels; x is (B, G, M, C); program = (slab b*G + g, chunk of
    BLOCK_R * ITERS rows of M, block of BLOCK_C channels)."""
    pid = tl.program_id(0)
    cb = pid % c_blocks
    mc = (pid // c_blocks) % m_chunks
    slab = pid // (c_blocks * m_chunks)
    g_idx = slab % G
    cols = cb * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    a1, log_a1, log_a_lo1, inv_a1 = _alpha_parts(tl.load(alpha_ptr + g_idx * C + cols, mask=cmask, other=1.0), F64)
    a, log_a, log_a_lo = a1[None, :], log_a1[None, :], log_a_lo1[None, :]
    inv_a = inv_a1[None, :]
    unified = tl.min(a1, axis=0) >= 1e-7
    acc = tl.zeros([BLOCK_R, BLOCK_C], dtype=tl.float64 if F64 else tl.float32)
    for it in tl.static_range(ITERS):
        rows = mc * (BLOCK_R * ITERS) + it * BLOCK_R + tl.arange(0, BLOCK_R)
        mask = (rows < M)[:, None] & cmask[None, :]
        offs = (slab.to(tl.int64) * M + rows)[:, None] * C + cols[None, :]
        acc = _step(x_ptr, g_ptr, out_ptr, offs, mask, a, log_a, log_a_lo, inv_a, unified, acc, KIND, BACKWARD, F64)
    if BACKWARD:
        tl.store(partial_ptr + (slab.to(tl.int64) * m_chunks + mc) * C + cols, tl.sum(acc, axis=0), mask=cmask)


# ------------------------------------------------------------------------------------- launchers
_TILE = 2048  # elements per block step of a program (lanes of its tile)
_MAX_ITERS = 8  # block steps per program: up to 16k elements, one partial sum of grad_alpha per row in it


def _pow2(n: int, cap: int) -> int:
    return min(triton.next_power_of_2(max(1, n)), cap)


def _launch(x: Tensor, alpha: Tensor, kind: int, grad: Optional[Tensor]) -> Optional[Tuple[Tensor, Optional[Tensor]]]:
    f64 = compute_dtype(x, alpha) == torch.float64
    out = torch.empty_like(x)
    found = plan(out, alpha)
    if found is None:
        return None
    G, M, C, inner = found.layout
    x_k, out_k, alpha_k = found.order(x), found.view(out), found.alpha(alpha)
    backward_pass = grad is not None
    g_k = found.order(grad) if backward_pass else x_k
    acc_dtype = torch.float64 if f64 else torch.float32
    numel = x.numel()
    if inner > 1 or C == 1:  # rows of `inner` elements, one alpha each
        n_rows = numel // inner
        block_i = _pow2(inner, _TILE // 2)
        block_r = _pow2(n_rows, max(1, _TILE // block_i // 2))
        iters = max(1, min(triton.cdiv(inner, block_i), _MAX_ITERS))
        chunks = triton.cdiv(inner, block_i * iters)
        partial = torch.empty(n_rows * chunks if backward_pass else 1, device=x.device, dtype=acc_dtype)
        grid = (triton.cdiv(n_rows, block_r) * chunks,)
        _rows_kernel[grid](x_k, g_k, alpha_k, out_k, partial, n_rows, inner, chunks, M * C, G, C, KIND=kind,
                           BACKWARD=backward_pass, F64=f64, BLOCK_R=block_r, BLOCK_I=block_i, ITERS=iters)
        grad_alpha = partial.view(-1, G, M, C, chunks).sum(dim=(0, 2, 4)) if backward_pass else None
    else:  # alpha along the contiguous axis: x is (B * G, M, C)
        slabs = numel // (M * C)
        block_c = _pow2(C, 128)
        block_r = _pow2(M, max(1, _TILE // block_c // 2))
        iters = max(1, min(triton.cdiv(M, block_r), _MAX_ITERS))
        m_chunks = triton.cdiv(M, block_r * iters)
        c_blocks = triton.cdiv(C, block_c)
        partial = torch.empty(slabs * m_chunks * C if backward_pass else 1, device=x.device, dtype=acc_dtype)
        _columns_kernel[(slabs * m_chunks * c_blocks,)](
            x_k, g_k, alpha_k, out_k, partial, M, C, G, m_chunks, c_blocks, KIND=kind, BACKWARD=backward_pass,
            F64=f64, BLOCK_R=block_r, BLOCK_C=block_c, ITERS=iters)
        grad_alpha = partial.view(-1, G, m_chunks, C).sum(dim=(0, 2)) if backward_pass else None
    if grad_alpha is not None:
        grad_alpha = found.alpha_back(grad_alpha, alpha_k, alpha)
    return out, grad_alpha


def forward(x: Tensor, alpha: Tensor, kind: int) -> Optional[Tensor]:
    """``sigma(x)`` with ``x``'s strides and dtype, or ``None`` when the kernels do not take this layout."""
    result = _launch(x, alpha, kind, None)
    return None if result is None else result[0]


def backward(grad: Tensor, x: Tensor, alpha: Tensor, kind: int) -> Optional[Tuple[Tensor, Tensor]]:
    """``(grad_x, grad_alpha)`` in the shapes and dtypes of ``x`` and ``alpha``, or ``None`` (layout declined)."""
    return _launch(x, alpha, kind, grad)  # type: ignore[return-value]
