// Fused CPU kernels for the three paper activations: one pass forward, one pass backward.
//
// The formulas are those of actadapt/families.py (their docstrings derive them); this file only
// re-expresses them with ATen's SIMD type, so that
//   * the backward writes grad_x and accumulates grad_alpha in the same pass over (grad, x)
//     (torch.compile splits that into two passes, one of them a slow column reduction);
//   * float's exp is branch-free and returns e^v and e^v - 1 together (no cancellation in 1 - e^-t);
//   * each SIMD vector evaluates only the branch its lanes need where the branch is rare (Gumbel's tiny alpha).
// The tests hold this path to the same accuracy contract as the eager one (mpmath reference).
//
// The file is compiled once per instruction set (kernels/cpu.py passes -DCPU_CAPABILITY=AVX512, AVX2 or
// DEFAULT, as ATen builds its own kernels), so Vectorized<T> is 16, 8 or the portable width of floats.
//
// Layout (see struct Layout): x is dense and split into rows of `inner` elements, each row using one alpha
// (inner > 1: SIMD along the row), or, when inner = 1, alpha varies along the contiguous axis (dense
// per-feature) and SIMD runs across channels. One walker (walk_rows / walk_columns) visits the vectors for
// both directions; a small step policy (ForwardStep / BackwardStep) says what to do with each.
//
// Speed does not depend on alpha or x: the float kernels run with subnormals flushed (FlushSubnormals), and the
// few products that need a factor under FLT_MIN carry that factor scaled by 2^64 (Underflow::kScaled).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#if (defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)) && \
    !defined(ACTADAPT_KEEP_SUBNORMALS)
#include <xmmintrin.h>
#define ACTADAPT_FLUSH_SUBNORMALS 1
#endif

namespace {

template <typename T>
using Vec = at::vec::Vectorized<T>;

#define ACTADAPT_STR2(x) #x
#define ACTADAPT_STR(x) ACTADAPT_STR2(x)
constexpr const char* kCapability = ACTADAPT_STR(CPU_CAPABILITY);

template <typename T>
inline Vec<T> select(const Vec<T>& mask, const Vec<T>& if_true, const Vec<T>& if_false) {
  return Vec<T>::blendv(if_false, if_true, mask);
}

template <typename T>
inline bool all_lanes(const Vec<T>& mask) { return mask.zero_mask() == 0; }

template <typename T>
inline bool no_lane(const Vec<T>& mask) {
  return mask.zero_mask() == static_cast<int>((1ULL << Vec<T>::size()) - 1);
}

// ------------------------------------------------------------------------------ subnormals
// x86 cores run every SSE/AVX instruction that has a subnormal input lane (magnitude under FLT_MIN = 1.2e-38,
// DBL_MIN = 2.2e-308) or a result lane that underflows through a microcode assist, a hundred cycles or more.
// e^{-alpha |x|} is under FLT_MIN wherever alpha |x| > 87.3, so without this the float kernels ran 3-12x slower
// at alpha = 100 than at alpha = 1 on N(0, 1) inputs, and Gumbel 8-20x slower on N(0, 100) inputs
// (benchmarks/bench_alpha_range.py).
// FlushSubnormals<float> sets FTZ (bit 15: results under FLT_MIN are 0) and DAZ (bit 6: subnormal inputs read as
// 0) in this thread's MXCSR for its lifetime, and puts the caller's two bits back after (RAII, so also when an
// exception passes; the sticky exception flags are left as the work set them, as for any other operation). The
// walkers hold one in each at::parallel_for chunk, on whichever thread runs it, so neither the caller's thread
// nor torch's worker threads keep the mode after the kernel.
// What flushing costs the float contract (relative 1e-4 where |exact| >= 1e-30; the tests add absolute 1e-34
// below): every result and intermediate under FLT_MIN becomes 0. Results that small are under both thresholds.
// Intermediates that small only matter where a larger factor multiplies them back over 1e-34: each family's
// comments bound its cases, and those that need it (x^2 e^{-t} and x e^{-t} with |x| up to 1e4, Gumbel's
// E/alpha for alpha down to 1e-6) carry the small factor times 2^64 (exp_parts' kScaled) and another factor
// times 2^-64: exact power-of-two scalings. The same formulas hold without the flush (the build for other
// architectures, or -DACTADAPT_KEEP_SUBNORMALS, which a slow test checks): gradual underflow only adds low bits.
// double keeps IEEE gradual underflow: its contract judges results down to 1e-310 (absolute), under DBL_MIN.
// Other architectures keep their mode (no MXCSR; aarch64 cores take subnormals at full speed).
template <typename T>
class FlushSubnormals {
 public:
  FlushSubnormals() {
#ifdef ACTADAPT_FLUSH_SUBNORMALS
    if constexpr (kActive) {
      saved_ = _mm_getcsr();
      _mm_setcsr(saved_ | kBits);
    }
#endif
  }
  ~FlushSubnormals() {
#ifdef ACTADAPT_FLUSH_SUBNORMALS
    if constexpr (kActive) _mm_setcsr((_mm_getcsr() & ~kBits) | (saved_ & kBits));
#endif
  }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr bool kActive = sizeof(T) == 4;
  static constexpr unsigned kBits = 0x8040;  // MXCSR's FTZ | DAZ
  unsigned saved_ = 0;
};

// alpha with what every kernel would otherwise recompute per element: log(alpha) and 1/alpha.
template <typename T>
struct Alpha {
  Vec<T> a, log_a, inv_a;
  Vec<T> log_a_lo;  // log(alpha) - log_a, from a double-precision log (float: up to half an ulp of log_a)
  bool unified;     // every lane has alpha >= 1e-7 (Gumbel's one-formula form)
  bool small;       // some lane has alpha < 0.1 (Gumbel's corrected form)
};

// ------------------------------------------------------------------------------ exp and expm1
// float: e^v and e^v - 1 from one Cody-Waite reduction, v = n ln2 + r, |r| <= ln2/2, and Cephes' degree-7
// polynomial e^r = 1 + q(r), q = r + r^2 P(r) (fit error <= 1.2e-7 relative to e^r; relative to q, r P's error
// r dP <= 2e-7). Branch-free: no data-dependent jump, no call (AVX-512 in particular loses much to either).
//   e^v  = (1 + q) 2^n, by one of three underflow modes:
//          kFlush: results under FLT_MIN (v < -87.33) are 0, for callers whose products stay below the contract's
//          absolute 1e-34 there.
//          kGradual: as 2^n1 2^n2 with n = n1 + n2, so that both stay normal down to v = -104 and results under
//          FLT_MIN underflow gradually, as Sleef's do; then 0. (Under FlushSubnormals they flush, as kFlush.)
//          kScaled (v <= 0 only): e^v 2^64, the same two factors with 64 added to n, so that the result is normal
//          down to v = -131.7 (e^v = 5.4e-58) also when subnormals flush; under FLT_MIN 2^-64 it underflows as
//          kGradual (0 from v = -149.5 on). A caller multiplies its other factor by 2^-64 (unscale) instead: both
//          scalings are exact (powers of two, no rounding while the numbers stay normal), so the product keeps the
//          exp's own accuracy wherever it is >= FLT_MIN, whatever the size of e^v. That is what x^2 e^{-t} needs:
//          with x up to 1e4 it is over the contract's 1e-30 down to e^{-t} = 1e-38, under FLT_MIN.
//   e^v - 1 = q when n = 0 (no cancellation: relative error a few ulp), else fma(2^n, q, 2^n - 1) with
//          |e^v - 1| >= 0.29 (a few ulp).
// Both within 4 ulp (4.8e-7 relative) for v in [-104, 88.7] (e^v 2^64: v in [-131.7, 0]); NaN stays NaN (the
// clamps keep NaN in x86's and the portable min/max operand order, and comparisons with NaN are false); v > 88.7
// gives inf.
enum class Underflow { kFlush, kGradual, kScaled };
constexpr float kScaleDown = 5.42101086242752217e-20f;  // 2^-64, the inverse of kScaled's factor

template <typename T>
struct ExpParts {
  Vec<T> e, em1;
};

// A factor that multiplies a kScaled e^v: times 2^-64 for float (exact for |v| >= 2^64 FLT_MIN = 2.2e-19; a
// smaller factor makes a product under FLT_MIN anyway, since e^v 2^64 <= 2^64); double is never scaled.
template <typename T>
inline Vec<T> unscale(const Vec<T>& v) {
  if constexpr (sizeof(T) == 4) return v * Vec<T>(kScaleDown);
  else return v;
}

template <bool kWantExpm1, Underflow kMode = Underflow::kGradual>
inline ExpParts<float> exp_parts(const Vec<float>& v_in) {
  using V = Vec<float>;
  using VI = Vec<int32_t>;
  constexpr float kLow = kMode == Underflow::kFlush ? -87.33f : kMode == Underflow::kGradual ? -104.f : -149.5f;
  const V v = at::vec::clamp_max(at::vec::clamp_min(v_in, V(kLow)), V(88.8f));
  const V magic(12582912.f);  // 1.5 * 2^23: adding it rounds to an integer
  const V n = at::vec::fmadd(v, V(1.44269504088896341f), magic) - magic;
  V r = at::vec::fmadd(n, V(-0.693359375f), v);  // ln2 = 0.693359375 - 2.12194440e-4 (Cephes' split)
  r = at::vec::fmadd(n, V(2.12194440e-4f), r);
  V p(1.9875691500E-4f);
  p = at::vec::fmadd(p, r, V(1.3981999507E-3f));
  p = at::vec::fmadd(p, r, V(8.3334519073E-3f));
  p = at::vec::fmadd(p, r, V(4.1665795894E-2f));
  p = at::vec::fmadd(p, r, V(1.6666665459E-1f));
  p = at::vec::fmadd(p, r, V(5.0000001201E-1f));
  const V q = at::vec::fmadd(p * r, r, r);  // e^r - 1
  const VI ni = at::vec::convert_to_int_of_same_size(n);
  const VI bias(127), shift(23);
  ExpParts<float> out;
  V s;  // 2^n (subnormal or 0 below -126)
  if constexpr (kMode == Underflow::kFlush) {
    s = at::vec::cast<float>((ni + bias) << shift);
    out.e = select<float>(v_in < V(-87.33f), V(0.f), (q + V(1.f)) * s);
  } else {
    const VI ns = kMode == Underflow::kScaled ? ni + VI(64) : ni;  // n + 64 >= -152: both halves >= -76
    const VI n1 = ns >> VI(1);
    const V s1 = at::vec::cast<float>((n1 + bias) << shift);
    const V s2 = at::vec::cast<float>(((ns - n1) + bias) << shift);
    out.e = (q + V(1.f)) * s1 * s2;
    if constexpr (kWantExpm1) s = kMode == Underflow::kScaled ? s1 * s2 * V(kScaleDown) : s1 * s2;
  }
  if constexpr (kWantExpm1) out.em1 = select<float>(n == V(0.f), q, at::vec::fmadd(s, q, s - V(1.f)));
  return out;
}

// double: Sleef's 1-ulp exp and expm1 (the double path is for accuracy, not speed), always gradual (kScaled is
// not needed: unscale leaves double alone).
template <bool kWantExpm1, Underflow kMode = Underflow::kGradual>
inline ExpParts<double> exp_parts(const Vec<double>& v) {
  ExpParts<double> out;
  out.e = v.exp();
  if constexpr (kWantExpm1) out.em1 = v.expm1();
  return out;
}

template <typename T, Underflow kMode = Underflow::kGradual>
inline Vec<T> exp_fast(const Vec<T>& v) { return exp_parts<false, kMode>(v).e; }

// log(1 + E) for 0 <= E <= 1 as 2 atanh(s) = 2 s sum_k s^(2k)/(2k+1), s = E/(2 + E) <= 1/3: one division and
// a short polynomial, about half of Sleef's log1p, and relative-accurate down to E = 0. Double: 17 terms,
// 9^-17 below epsilon. Float: 6 terms, truncation <= 9^-6/13 = 1.5e-7 relative (at E = 1 only); where the
// Gumbel kernel feeds L = log1p(E)/alpha into S = e^{-L}, that becomes <= 80 x 1.5e-7 = 1.2e-5 (S D falls
// below the float contract's 1e-30 beyond L ~ 80). s_out is s, or s scaled by a power of two (then so is the
// result); s itself only enters the series' s^2, where its flush under FLT_MIN costs nothing.
template <typename T>
inline Vec<T> log1p_from_s(const Vec<T>& s_out, const Vec<T>& s) {  // 2 atanh(s), s = E/(2 + E)
  using V = Vec<T>;
  static constexpr double kInvOdd[17] = {1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15,
                                         1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23, 1.0 / 25, 1.0 / 27, 1.0 / 29,
                                         1.0 / 31, 1.0 / 33};
  constexpr int kTerms = sizeof(T) == 4 ? 6 : 17;
  const V s2 = s * s;
  V acc = V(static_cast<T>(kInvOdd[kTerms - 1]));
  for (int k = kTerms - 2; k >= 0; --k) acc = at::vec::fmadd(acc, s2, V(static_cast<T>(kInvOdd[k])));
  return V(T(2)) * s_out * acc;
}

// ------------------------------------------------------------------ Box-Cox-Gumbel, bounded (eq. 1)
template <typename T>
struct Gumbel {
  using V = Vec<T>;
  // L = log(1 + a e^x)/a, D = dL/dx = e^x/(1 + a e^x), w = a D; see families._gumbel_core.
  // For alpha >= 1e-7 (every lane) one formula covers both regimes: with u = log(alpha) + x and
  // E = exp(-|u|), alpha L = log(1 + e^u) = max(u, 0) + log1p(E), w = sigmoid(u) = (u > 0 ? 1 : E)/(1 + E),
  // D = w / alpha. e^u stays a normal number wherever e^x is above the contract's thresholds as long as
  // alpha >= ~2e-8, so nothing is lost; smaller alpha (down to the alpha -> 0 Gumbel limit) takes the
  // two-regime form of families._gumbel_core.
  static inline bool unified(const Alpha<T>& p) { return p.unified; }
  // u = log(alpha) + x (rounded), E = e^{-|u|} and u_pos = max(u, 0) (NaN u stays NaN).
  // A relative error d in E moves L by at most d/(2 alpha) (absolute), hence S = e^{-L} by that much (relative)
  // and F, L by at most d (relative); an absolute error e in u moves L by e/alpha where u > 0. With the float
  // exp's d = 4.8e-7 and float's e <= |u| 6e-8, that is <= 3e-6 when every lane has alpha >= 0.1 (kSmallAlpha
  // false; L <= 88 where S is above FLT_MIN). Smaller alpha makes L up to ~80 where S D is still above float's contract threshold, with |u| up
  // to ~14 (alpha = 1e-6), so the rounding of log(alpha) and of the sum alone (~1.4e-6 in u) would reach 1e-4
  // in S: there, in float, u's exact error e (TwoSum, plus log(alpha)'s low part) is put back, into E to first
  // order (E e^{-sign(u) e} = E (1 - sign(u) e)) and into u_pos.
  // The two cases are separate instantiations of the whole forward/backward (one branch per vector on a
  // per-alpha condition, which the branch predictor learns), which keeps the common case lean. In the common
  // case E and S = e^{-L} also flush to 0 below FLT_MIN: F, L, D are then <= 1.2e-38/0.1 and S dL/dalpha <=
  // 1.2e-38 (D + L)/alpha <= 1.2e-38 (10 + 88)/0.1 = 1.2e-35, under the float contract's absolute 1e-34.
  // With alpha < 0.1 (kSmallAlpha) F ~ L ~ D ~ E/alpha (u < 0) stay over 1e-34 down to E = 1e-34 alpha = 1e-40
  // (alpha = 1e-6), under FLT_MIN: there E is carried as E_s = E 2^64 (kScaled; normal down to E = 5e-58), and
  // so are s = E/(2 + E) and log1p(E); L and D take 1/alpha 2^-64 >= 5e-23 (normal) instead of 1/alpha. Exact
  // scalings: nothing changes where E is normal. S = e^{-L} may flush: under FLT_MIN, L > 87.3, and there
  // S D <= S L <= 1e-36 and |S dL/dalpha| <= S L^2/2 <= 4.5e-35 (with y = alpha L, dL/dalpha =
  // -L^2 (y - 1 + e^{-y})/y^2, and (y - 1 + e^{-y})/y^2 <= 1/2).
  static inline bool small_alpha(const Alpha<T>& p) { return p.small; }
  template <bool kSmallAlpha>
  static constexpr bool kScaledE = kSmallAlpha && sizeof(T) == 4;
  template <bool kSmallAlpha>
  static inline V unscale_E(const V& v) {  // E, s or log1p(E) from their kScaledE form
    if constexpr (kScaledE<kSmallAlpha>) return unscale<T>(v);
    else return v;
  }
  // L = (max(u, 0) + log1p(E)) / alpha from log1p(E) in its kScaledE form
  template <bool kSmallAlpha>
  static inline V L_from(const V& u_pos, const V& log1p_E, const Alpha<T>& p) {
    if constexpr (kScaledE<kSmallAlpha>) return at::vec::fmadd(log1p_E, unscale<T>(p.inv_a), u_pos * p.inv_a);
    else return (u_pos + log1p_E) * p.inv_a;
  }
  // E comes out in its kScaledE form
  template <bool kSmallAlpha>
  static inline void u_and_E(const V& x, const Alpha<T>& p, V& u, V& E, V& u_pos) {
    u = p.log_a + x;
    u_pos = at::vec::clamp_min(u, V(T(0)));
    E = exp_fast<T, kSmallAlpha ? Underflow::kScaled : Underflow::kFlush>(u.abs().neg());
    if constexpr (kSmallAlpha && sizeof(T) == 4) {
      const V x_part = u - p.log_a;
      const V e_raw = ((p.log_a - (u - x_part)) + (x - x_part)) + p.log_a_lo;  // exact u = u + e (to float)
      const V e = select(e_raw == e_raw, e_raw, V(T(0)));  // x = +-inf: inf - inf; u, E and u_pos are right
      const V negative = u < V(T(0));
      E = at::vec::fmadd(E, select(negative, e, e.neg()), E);
      u_pos = u_pos + select(negative, V(T(0)), e);
    }
  }
  template <bool kSmallAlpha>
  static inline void core(const V& x, const Alpha<T>& p, V& L, V& D, V& w) {
    const V one(T(1)), zero(T(0));
    const V& a = p.a;
    const V& log_a = p.log_a;
    if (unified(p)) {
      V u, E_s, u_pos;
      u_and_E<kSmallAlpha>(x, p, u, E_s, u_pos);
      const V E = unscale_E<kSmallAlpha>(E_s);
      // one division for both 1/(1+E) and s = E/(2+E)
      const V one_plus_E = one + E, two_plus_E = V(T(2)) + E;
      const V r = one / (one_plus_E * two_plus_E);
      const V inv = two_plus_E * r;
      const V s_s = E_s * one_plus_E * r;
      L = L_from<kSmallAlpha>(u_pos, log1p_from_s<T>(s_s, unscale_E<kSmallAlpha>(s_s)), p);
      w = select(u > zero, inv, E * inv);
      if constexpr (kScaledE<kSmallAlpha>) D = select(u > zero, inv * p.inv_a, E_s * inv * unscale<T>(p.inv_a));
      else D = w * p.inv_a;
      return;
    }
    // alpha < 1e-7 in some lane (towards the alpha -> 0 Gumbel limit): the two regimes of families._gumbel_core
    const V u = log_a + x;  // only its sign and max(u, 0) are used below, where a rounding of u is harmless
    const V small = u <= zero;
    V L_s, D_s, w_s, L_b, D_b, w_b;
    const bool any_small = !no_lane(small), any_big = !all_lanes(small);
    if (any_small) {  // alpha e^x <= 1
      const V z = at::vec::minimum(x, log_a.neg()).exp();
      const V v = a * z;
      const V normal = v > V(std::sqrt(std::numeric_limits<T>::min()));
      const V v_safe = select(normal, v, one);
      const V log1p_over_v = select(normal, v_safe.log1p() / v_safe, one);
      const V one_plus_v = one + v;
      L_s = z * log1p_over_v;
      D_s = z / one_plus_v;
      w_s = v / one_plus_v;
    }
    if (any_big) {  // alpha e^x > 1
      const V u_b = at::vec::maximum(u, zero);
      const V a_b = select(small, one, a);
      const V e = u_b.neg().exp();
      w_b = one / (one + e);
      L_b = (u_b + e.log1p()) / a_b;
      D_b = w_b / a_b;
    }
    if (!any_big) { L = L_s; D = D_s; w = w_s; }
    else if (!any_small) { L = L_b; D = D_b; w = w_b; }
    else { L = select(small, L_s, L_b); D = select(small, D_s, D_b); w = select(small, w_s, w_b); }
  }
  // sum_{k>=2} w^(k-2)/k for w < 0.05, truncated below epsilon: 5 terms for float (0.05^5/7 = 4e-8 against
  // the leading 1/2), 13 for double.
  static inline V chi(const V& w) {
    static constexpr double kInv[13] = {1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7, 1.0 / 8,
                                        1.0 / 9, 1.0 / 10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14};
    constexpr int kTerms = sizeof(T) == 4 ? 5 : 13;
    V acc = V(static_cast<T>(kInv[kTerms - 1]));
    for (int k = kTerms - 2; k >= 0; --k) acc = at::vec::fmadd(acc, w, V(static_cast<T>(kInv[k])));
    return acc;
  }
  // F = 1 - e^{-L} = -expm1(-L).
  template <bool kSmallAlpha>
  static inline V forward_t(const V& x, const Alpha<T>& p) {
    V L, D, w;
    if (unified(p)) {  // only L is needed here
      V u, E_s, u_pos;
      u_and_E<kSmallAlpha>(x, p, u, E_s, u_pos);
      const V s_s = E_s / (V(T(2)) + unscale_E<kSmallAlpha>(E_s));
      L = L_from<kSmallAlpha>(u_pos, log1p_from_s<T>(s_s, unscale_E<kSmallAlpha>(s_s)), p);
    } else {
      core<kSmallAlpha>(x, p, L, D, w);
    }
    return exp_parts<true, Underflow::kFlush>(L.neg()).em1.neg();
  }
  static inline V forward(const V& x, const Alpha<T>& p) {
    return small_alpha(p) ? forward_t<true>(x, p) : forward_t<false>(x, p);
  }
  // dF/dx = S D, dF/dalpha = S dL/dalpha with S = e^{-L} and dL/dalpha = -D^2 chi(w) (w < 0.05, where
  // (D - L)/alpha would cancel) or (D - L)/alpha. Both are computed and blended: a per-lane branch here is
  // data-dependent and mispredicts. A lane with S = 0 (L = inf: x = +inf) contributes 0, not 0 x inf.
  template <bool kSmallAlpha>
  static inline void backward_t(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    V L, D, w;
    core<kSmallAlpha>(x, p, L, D, w);
    const V S = exp_fast<T, kSmallAlpha ? Underflow::kGradual : Underflow::kFlush>(L.neg());
    const V dL_da = select(w < V(T(0.05)), (D * D * chi(w)).neg(), (D - L) * p.inv_a);
    const V gS = g * S;
    gx = gS * D;
    ga = select(S == V(T(0)), V(T(0)), gS * dL_da);
  }
  static inline void backward(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    if (small_alpha(p)) backward_t<true>(g, x, p, gx, ga);
    else backward_t<false>(g, x, p, gx, ga);
  }
};

// --------------------------------------------------------------- exponential, gated (adaptive ReLU, eq. 2)
template <typename T>
struct ExponentialGated {
  using V = Vec<T>;
  // F = 1 - e^{-t}, t = alpha max(x, 0): -expm1(-t), exact to a few ulp for small t too (e^{-t} under FLT_MIN
  // may flush: F is 1 there).
  static inline V forward(const V& x, const Alpha<T>& p) {
    const V t = p.a * at::vec::clamp_min(x, V(T(0)));
    return x * exp_parts<true, Underflow::kFlush>(t.neg()).em1.neg();
  }
  // d/dx = F + x_+ (alpha e^{-t}); d/dalpha = x (x_+ e^{-t}); both vanish for x <= 0 (t = 0, x_+ = 0). The
  // products are grouped as in families.exponential_cdf_and_grads, so a huge x gives x_+ 0 = 0, not
  // inf x 0 = NaN (x = 1e30: x x_+ = inf in float; x = 3e38: t = alpha x = inf).
  // d/dalpha is >= 1e-30 down to e^{-t} = 1e-30 / x^2 = 1e-38 (x = 1e4), under FLT_MIN: x_+ e^{-t} is formed as
  // (x_+ 2^-64)(e^{-t} 2^64), exact scalings where x_+ >= 2.2e-19 and t <= 131.7 (else x^2 e^{-t} <= 5e-38).
  // d/dx takes e^{-t} itself, 0 under FLT_MIN: there F = 1 and x_+ alpha e^{-t} = t e^{-t} <= 1.1e-36.
  static inline void backward(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    const V x_pos = at::vec::clamp_min(x, V(T(0)));
    const V t = p.a * x_pos;
    const ExpParts<T> ex = exp_parts<true, Underflow::kScaled>(t.neg());  // ex.e = e^{-t} 2^64 (float)
    gx = g * at::vec::fmadd(x_pos, p.a * unscale<T>(ex.e), ex.em1.neg());
    ga = g * x * (unscale<T>(x_pos) * ex.e);
  }
};

// ------------------------------------------------------------------ logistic, gated (Swish, eq. 3)
template <typename T>
struct LogisticGated {
  using V = Vec<T>;
  // s(t) from e = exp(-|t|), as families._sigmoid_pair: s(|t|) = 1/(1 + e) and s(-|t|) = e s(|t|). For t < 0,
  // x s(t) is over the contract's absolute 1e-34 down to e = 1e-38 (|x| = 1e4), under FLT_MIN: it is formed as
  // ((x s(|t|)) e_s) 2^-64 from e_s = e 2^64 (kScaled), exact scalings, the last rounding only where x s(t) is
  // under FLT_MIN itself. No overflow: |x| e 2^64 <= 2^64 / (e alpha) = 7e24 for alpha >= 1e-6.
  static inline V forward(const V& x, const Alpha<T>& p) {
    const V t = p.a * x;
    const V e_s = exp_fast<T, Underflow::kScaled>(t.abs().neg());
    const V x_big = x / (V(T(1)) + unscale<T>(e_s));  // x s(|t|)
    return select(t >= V(T(0)), x_big, unscale<T>(x_big * e_s));
  }
  // d/dx = s + alpha q / g and d/dalpha = x q / g with q = g (x s(t) s(-t)): grouped as in
  // families.logistic_cdf_and_grads, so that a huge |x| gives x 0 = 0, not inf x 0 = NaN.
  // s(t) s(-t) = big small ~ e^{-|t|}, and x^2 s(t) s(-t) is >= 1e-30 down to e^{-|t|} = 1e-38 (x = 1e4), under
  // FLT_MIN: q is formed as g ((x 2^-64)(s(t) s(-t) 2^64)) from e_s = e^{-|t|} 2^64, exact scalings where
  // |x| >= 2.2e-19 and |t| <= 131.7 (else x^2 s(t) s(-t) <= 5e-38; for tiny x, alpha q is 1e-16 of g s). s(t)
  // itself flushes under FLT_MIN (t < -87.3), where d/dx's scale |s| + |t s(t) s(-t)| is <= 1.1e-36.
  static inline void backward(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    const V t = p.a * x;
    const V e_s = exp_fast<T, Underflow::kScaled>(t.abs().neg());
    const V e = unscale<T>(e_s);
    const V big = V(T(1)) / (V(T(1)) + e);
    const V density_s = big * (e_s * big);  // s(t) s(-t) 2^64
    const V s = select(t >= V(T(0)), big, e * big);
    const V q = g * (unscale<T>(x) * density_s);
    gx = at::vec::fmadd(p.a, q, g * s);
    ga = x * q;
  }
};

// ---------------------------------------------------------------------------------- layout
// x (dense, in memory order) is viewed as rows of `inner` elements; row r lies in channel c = r % C of group
// g = (r / (M C)) % G, and uses alpha[g C + c]. That covers alpha shared (G = C = 1), per channel/feature
// (G = 1), and alpha over two separate blocks of axes, e.g. (models, 1, neurons) for a batch of models.
struct Layout {
  int64_t G, M, C, inner;
  int64_t rows(int64_t numel) const { return numel / inner; }
  int64_t alpha_index(int64_t r) const { return ((r / (M * C)) % G) * C + r % C; }
};

// Per-alpha log(alpha) and 1/alpha, computed once per call.
template <typename T>
struct AlphaTable {
  std::vector<T> a, log_a, inv_a, log_a_lo;
  AlphaTable(const T* alpha, int64_t n) : a(alpha, alpha + n), log_a(n), inv_a(n), log_a_lo(n) {
    for (int64_t k = 0; k < n; ++k) {
      const double log_exact = std::log(static_cast<double>(alpha[k]));
      log_a[k] = static_cast<T>(log_exact);
      log_a_lo[k] = static_cast<T>(log_exact - static_cast<double>(log_a[k]));
      inv_a[k] = T(1) / alpha[k];
    }
  }
  // the per-vector decisions of Gumbel, made once per alpha vector rather than per x vector
  static Alpha<T> with_flags(Alpha<T> p) {
    p.unified = all_lanes(p.a >= Vec<T>(T(1e-7)));
    p.small = !all_lanes(p.a >= Vec<T>(T(0.1)));
    return p;
  }
  Alpha<T> row(int64_t k) const {
    return with_flags({Vec<T>(a[k]), Vec<T>(log_a[k]), Vec<T>(inv_a[k]), Vec<T>(log_a_lo[k]), false, false});
  }
  // For alpha along the contiguous axis (inner = 1): the alpha vectors of channels [jW, jW + W) of group g at
  // [g * ceil(C / W) + j], tail lanes alpha = 1, built once per call so the loops load them without masking.
  std::vector<Alpha<T>> column_vectors(int64_t G, int64_t C) const {
    constexpr int64_t W = Vec<T>::size();
    const int64_t nvec = (C + W - 1) / W;
    std::vector<Alpha<T>> out(G * nvec);
    for (int64_t g = 0; g < G; ++g)
      for (int64_t j = 0; j < nvec; ++j) out[g * nvec + j] = lanes(g * C + j * W, std::min(W, C - j * W));
    return out;
  }
  Alpha<T> lanes(int64_t k, int64_t n) const {  // lanes past n get alpha = 1
    const Vec<T> one(T(1)), zero(T(0));
    return with_flags({Vec<T>::set(one, Vec<T>::loadu(a.data() + k, n), n), Vec<T>::set(zero, Vec<T>::loadu(log_a.data() + k, n), n),
            Vec<T>::set(one, Vec<T>::loadu(inv_a.data() + k, n), n),
            Vec<T>::set(zero, Vec<T>::loadu(log_a_lo.data() + k, n), n), false, false});
  }
};

// ------------------------------------------------------------------------- step policies
// What to do with one SIMD vector at element offset `off` (n valid lanes in a tail): the forward writes y,
// the backward writes grad_x and adds grad_alpha's lanes to `acc` (tail lanes zeroed).
template <typename T, template <typename> class Fam>
struct ForwardStep {
  using V = Vec<T>;
  static constexpr bool kReduces = false;
  const T* x;
  T* y;
  inline void full(int64_t off, const Alpha<T>& p, V&) const { Fam<T>::forward(V::loadu(x + off), p).store(y + off); }
  inline void tail(int64_t off, int64_t n, const Alpha<T>& p, V&) const {
    Fam<T>::forward(V::loadu(x + off, n), p).store(y + off, n);
  }
};

template <typename T, template <typename> class Fam>
struct BackwardStep {
  using V = Vec<T>;
  static constexpr bool kReduces = true;
  const T* g;
  const T* x;
  T* gx;
  inline void full(int64_t off, const Alpha<T>& p, V& acc) const {
    V gxv, gav;
    Fam<T>::backward(V::loadu(g + off), V::loadu(x + off), p, gxv, gav);
    gxv.store(gx + off);
    acc = acc + gav;
  }
  inline void tail(int64_t off, int64_t n, const Alpha<T>& p, V& acc) const {
    V gxv, gav;
    Fam<T>::backward(V::loadu(g + off, n), V::loadu(x + off, n), p, gxv, gav);
    gxv.store(gx + off, n);
    acc = acc + V::set(V(T(0)), gav, n);
  }
};

// -------------------------------------------------------------------------------- walkers
// Two vectors per step: each family is one long dependency chain (exp -> log1p -> exp for Gumbel), and two
// independent chains let the core overlap them (measured: forward 20-30% faster on conv-shaped inputs; four
// per step gained nothing more).
constexpr int64_t kGrainElements = 32768;
// grad_alpha is summed in the vectors' own precision over at most kChunk elements per lane group, then in
// double, so long rows and columns keep their accuracy.
constexpr int64_t kChunk = 16384;

template <typename T>
inline double horizontal_sum(const Vec<T>& v) {
  alignas(64) T lanes[Vec<T>::size()];
  v.store(lanes);
  double sum = 0.0;
  for (int64_t l = 0; l < Vec<T>::size(); ++l) sum += lanes[l];
  return sum;
}

// alpha constant along each row (inner > 1): SIMD along the row. Work is split into (row, chunk) units, so
// a shared alpha (one row of numel elements) still spreads over the threads.
template <typename T, class Step>
void walk_rows(const Step& step, const AlphaTable<T>& table, int64_t numel, const Layout& L, double* ga_total) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const int64_t inner = L.inner, n_alpha = L.G * L.C;
  const int64_t chunks = (inner + kChunk - 1) / kChunk;
  const int64_t chunk = ((inner + chunks - 1) / chunks + 2 * W - 1) / (2 * W) * (2 * W);
  std::mutex merge;
  at::parallel_for(0, L.rows(numel) * chunks, std::max<int64_t>(1, kGrainElements / std::min(inner, chunk)),
                   [&](int64_t begin, int64_t end) {
    [[maybe_unused]] const FlushSubnormals<T> subnormals;
    std::vector<double> acc(Step::kReduces ? n_alpha : 0, 0.0);
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t r = unit / chunks, lo = (unit % chunks) * chunk, hi = std::min(inner, lo + chunk);
      const int64_t k = L.alpha_index(r);
      const Alpha<T> p = table.row(k);
      const int64_t off = r * inner;
      V acc0(T(0)), acc1(T(0));
      int64_t i = lo;
      for (; i + 2 * W <= hi; i += 2 * W) {
        step.full(off + i, p, acc0);
        step.full(off + i + W, p, acc1);
      }
      for (; i + W <= hi; i += W) step.full(off + i, p, acc0);
      if (i < hi) step.tail(off + i, hi - i, p, acc1);
      if constexpr (Step::kReduces) acc[k] += horizontal_sum<T>(acc0 + acc1);
    }
    if constexpr (Step::kReduces) {
      std::lock_guard<std::mutex> lock(merge);
      for (int64_t k = 0; k < n_alpha; ++k) ga_total[k] += acc[k];
    }
  });
}

// alpha along the contiguous axis (inner = 1): SIMD across the C channels of each of the numel / C rows;
// grad_alpha's lanes are summed per channel vector in registers' precision for up to kChunk / C rows, then
// in double.
template <typename T, class Step>
void walk_columns(const Step& step, const AlphaTable<T>& table, int64_t numel, const Layout& L, double* ga_total) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const int64_t C = L.C, n_alpha = L.G * C;
  const int64_t nvec = (C + W - 1) / W;
  const int64_t flush_rows = std::max<int64_t>(1, kChunk / C);
  const std::vector<Alpha<T>> lanes = table.column_vectors(L.G, C);
  std::mutex merge;
  at::parallel_for(0, numel / C, std::max<int64_t>(1, kGrainElements / C), [&](int64_t begin, int64_t end) {
    [[maybe_unused]] const FlushSubnormals<T> subnormals;
    std::vector<double> acc(Step::kReduces ? n_alpha : 0, 0.0);
    std::vector<V> partial(Step::kReduces ? L.G * nvec : 0, V(T(0)));
    V unused(T(0));
    const auto flush = [&] {
      alignas(64) T buf[W];
      for (int64_t g = 0; g < L.G; ++g)
        for (int64_t j = 0; j < nvec; ++j) {
          partial[g * nvec + j].store(buf);
          const int64_t n = std::min(W, C - j * W);
          for (int64_t l = 0; l < n; ++l) acc[g * C + j * W + l] += buf[l];
          partial[g * nvec + j] = V(T(0));
        }
    };
    for (int64_t o = begin; o < end; ++o) {
      const int64_t gi = ((o / L.M) % L.G) * nvec;
      const Alpha<T>* lo = lanes.data() + gi;
      V* sums = Step::kReduces ? partial.data() + gi : nullptr;
      const int64_t off = o * C;
      int64_t j = 0, c = 0;
      for (; c + 2 * W <= C; c += 2 * W, j += 2) {
        step.full(off + c, lo[j], Step::kReduces ? sums[j] : unused);
        step.full(off + c + W, lo[j + 1], Step::kReduces ? sums[j + 1] : unused);
      }
      for (; c + W <= C; c += W, ++j) step.full(off + c, lo[j], Step::kReduces ? sums[j] : unused);
      if (c < C) step.tail(off + c, C - c, lo[j], Step::kReduces ? sums[j] : unused);
      if constexpr (Step::kReduces) {
        if ((o - begin + 1) % flush_rows == 0) flush();
      }
    }
    if constexpr (Step::kReduces) {
      flush();
      std::lock_guard<std::mutex> lock(merge);
      for (int64_t k = 0; k < n_alpha; ++k) ga_total[k] += acc[k];
    }
  });
}

template <typename T, class Step>
void walk(const Step& step, const T* alpha, int64_t numel, const Layout& L, double* ga_total) {
  const AlphaTable<T> table(alpha, L.G * L.C);
  if (L.inner > 1 || L.C == 1) walk_rows<T>(step, table, numel, L, ga_total);
  else walk_columns<T>(step, table, numel, L, ga_total);
}

// ---- bindings ------------------------------------------------------------------------------------------
enum Family : int64_t { kGumbel = 0, kExponentialGated = 1, kLogisticGated = 2 };

Layout check(const torch::Tensor& x, const torch::Tensor& alpha, int64_t G, int64_t M, int64_t C, int64_t inner) {
  TORCH_CHECK(x.device().is_cpu() && alpha.device().is_cpu(), "actadapt CPU kernel: CPU tensors only");
  TORCH_CHECK(x.is_contiguous() && alpha.is_contiguous(), "actadapt CPU kernel: contiguous tensors only");
  TORCH_CHECK(x.scalar_type() == alpha.scalar_type(), "actadapt CPU kernel: x and alpha dtypes differ");
  TORCH_CHECK(G >= 1 && M >= 1 && C >= 1 && inner >= 1 && alpha.numel() == G * C &&
                  x.numel() % (G * M * C * inner) == 0,
              "actadapt CPU kernel: bad layout");
  return Layout{G, M, C, inner};
}

template <template <typename, template <typename> class> class Step, typename T, typename... Ptrs>
void dispatch_family(int64_t family, const T* alpha, int64_t numel, const Layout& L, double* ga, Ptrs... ptrs) {
  switch (family) {
    case kGumbel: walk<T>(Step<T, Gumbel>{ptrs...}, alpha, numel, L, ga); break;
    case kExponentialGated: walk<T>(Step<T, ExponentialGated>{ptrs...}, alpha, numel, L, ga); break;
    case kLogisticGated: walk<T>(Step<T, LogisticGated>{ptrs...}, alpha, numel, L, ga); break;
    default: TORCH_CHECK(false, "actadapt CPU kernel: unknown family ", family);
  }
}

// y = sigma_alpha(x), written into y (same shape, contiguous, x's dtype).
void forward_out(torch::Tensor x, torch::Tensor alpha, torch::Tensor y, int64_t family, int64_t G, int64_t M,
                 int64_t C, int64_t inner) {
  const Layout L = check(x, alpha, G, M, C, inner);
  TORCH_CHECK(y.is_contiguous() && y.scalar_type() == x.scalar_type() && y.numel() == x.numel(),
              "actadapt CPU kernel: y must match x");
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "actadapt_forward", [&] {
    dispatch_family<ForwardStep, scalar_t>(family, alpha.data_ptr<scalar_t>(), x.numel(), L, nullptr,
                                           x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>());
  });
}

// grad_x written into gx; returns grad_alpha summed to (G*C,) in x's dtype (accumulated in double).
torch::Tensor backward_out(torch::Tensor grad, torch::Tensor x, torch::Tensor alpha, torch::Tensor gx,
                           int64_t family, int64_t G, int64_t M, int64_t C, int64_t inner) {
  const Layout L = check(x, alpha, G, M, C, inner);
  TORCH_CHECK(grad.is_contiguous() && grad.scalar_type() == x.scalar_type() && grad.numel() == x.numel(),
              "actadapt CPU kernel: grad must match x");
  TORCH_CHECK(gx.is_contiguous() && gx.scalar_type() == x.scalar_type() && gx.numel() == x.numel(),
              "actadapt CPU kernel: grad_x must match x");
  auto ga = torch::zeros({G * C}, x.options().dtype(torch::kFloat64));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "actadapt_backward", [&] {
    dispatch_family<BackwardStep, scalar_t>(family, alpha.data_ptr<scalar_t>(), x.numel(), L,
                                            ga.data_ptr<double>(), grad.data_ptr<scalar_t>(),
                                            x.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>());
  });
  return ga.to(x.scalar_type());
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward_out", &forward_out, "fused adaptive activation forward, into y");
  m.def("backward_out", &backward_out, "fused adaptive activation backward: grad_x into gx; returns grad_alpha (G*C,)");
  m.attr("capability") = kCapability;
#ifdef ACTADAPT_FLUSH_SUBNORMALS
  m.attr("flushes_subnormals") = true;  // float32 work runs with FTZ | DAZ (FlushSubnormals)
#else
  m.attr("flushes_subnormals") = false;
#endif
}
