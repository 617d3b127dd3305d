// Fused CPU kernels for the three paper activations: one pass forward, one pass backward.
//
// The formulas are those of actadapt/families.py (their docstrings derive them); this file only
// re-expresses them with ATen's SIMD type, so that
//   * the backward writes grad_x and accumulates grad_alpha in the same pass over (grad, x)
//     (torch.compile splits that into two passes, one of them a slow column reduction);
//   * each SIMD vector evaluates only the branch its lanes need (Gumbel's two regimes);
//   * expm1/log1p are Sleef's accurate ones (torch.compile on CPU lowers expm1 to exp - 1).
// The tests hold this path to the same accuracy contract as the eager one (mpmath reference).
//
// Layout (see struct Layout): x is contiguous and split into rows of `inner` elements, each row using one
// alpha (inner > 1: SIMD along the row), or, when inner = 1, alpha varies along the contiguous axis
// (dense per-feature) and SIMD runs across channels.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

namespace {

template <typename T>
using Vec = at::vec::Vectorized<T>;

template <typename T>
inline Vec<T> select(const Vec<T>& mask, const Vec<T>& if_true, const Vec<T>& if_false) {
  return Vec<T>::blendv(if_false, if_true, mask);
}

// alpha with what every kernel would otherwise recompute per element: log(alpha) and 1/alpha.
template <typename T>
struct Alpha {
  Vec<T> a, log_a, inv_a;
  Vec<T> log_a_lo;  // log(alpha) - log_a, from a double-precision log (float: up to half an ulp of log_a)
};

template <typename T>
inline bool all_lanes(const Vec<T>& mask) { return mask.zero_mask() == 0; }

template <typename T>
inline bool no_lane(const Vec<T>& mask) { return mask.zero_mask() == (1 << Vec<T>::size()) - 1; }

// e^v (v <= 88). float: ATen's exp_u20 (a degree-5 polynomial, at most 20 ulp = 2.4e-6 relative, about
// half the cost of Sleef's 1-ulp expf), except when a lane is below -80 or NaN: exp_u20 flushes results under
// FLT_MIN (v < -87) to zero and drops NaN, while the callers scale e^v by up to x^2 = 1e8, so such vectors take
// Sleef's exp (gradual underflow, NaN kept). double: Sleef's 1-ulp exp. Every caller's error bound below is
// stated for these accuracies.
template <typename T>
inline Vec<T> exp_fast(const Vec<T>& v) {
  if constexpr (sizeof(T) == 4) {
    if (all_lanes(v >= Vec<T>(T(-80)))) return v.exp_u20();
  }
  return v.exp();
}

// 1 - e^{-t} for t >= 0 (t = +inf allowed), given E = e^{-t}: 1 - E where t >= t0 (or t = 0: exactly 0),
// which turns E's relative error into at most E/(1 - E) times it (float: t0 = 0.1, 9.5 x 2.4e-6 = 2.3e-5;
// double: t0 = 0.01, 99 x 1.1e-16 = 1.1e-14), else the Taylor series t * sum_k (-t)^k/(k+1)!, truncated below
// the dtype's epsilon (6 terms for float: 0.1^6/7! = 2e-10; 7 for double: 0.01^7/8! = 2.5e-19).
// Cheaper than Sleef's expm1 (about two exps) and exact where 1 - E would cancel.
template <typename T>
inline Vec<T> one_minus_exp_neg(const Vec<T>& t, const Vec<T>& E) {
  using V = Vec<T>;
  const V one(T(1));
  const V series = (t < V(static_cast<T>(sizeof(T) == 4 ? 0.1 : 0.01))) & (t > V(T(0)));
  if (no_lane(series)) return one - E;
  static constexpr double kInvFact[7] = {1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040};
  constexpr int kTerms = sizeof(T) == 4 ? 6 : 7;
  const V minus_t = t.neg();
  V acc = V(static_cast<T>(kInvFact[kTerms - 1]));
  for (int k = kTerms - 2; k >= 0; --k) acc = at::vec::fmadd(acc, minus_t, V(static_cast<T>(kInvFact[k])));
  return select(series, t * acc, one - E);
}

// log(1 + E) for 0 <= E <= 1 as 2 atanh(s) = 2 s sum_k s^(2k)/(2k+1), s = E/(2 + E) <= 1/3: one division and
// a short polynomial, about half of Sleef's log1p, and relative-accurate down to E = 0. Double: 17 terms,
// 9^-17 below epsilon. Float: 6 terms, truncation <= 9^-6/13 = 1.5e-7 relative (at E = 1 only); where the
// Gumbel kernel feeds L = log1p(E)/alpha into S = e^{-L}, that becomes <= 80 x 1.5e-7 = 1.2e-5 (S D falls
// below the float contract's 1e-30 beyond L ~ 80).
template <typename T>
inline Vec<T> log1p_from_s(const Vec<T>& s) {  // 2 atanh(s), s = E/(2 + E)
  using V = Vec<T>;
  static constexpr double kInvOdd[17] = {1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15,
                                         1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23, 1.0 / 25, 1.0 / 27, 1.0 / 29,
                                         1.0 / 31, 1.0 / 33};
  constexpr int kTerms = sizeof(T) == 4 ? 6 : 17;
  const V s2 = s * s;
  V acc = V(static_cast<T>(kInvOdd[kTerms - 1]));
  for (int k = kTerms - 2; k >= 0; --k) acc = at::vec::fmadd(acc, s2, V(static_cast<T>(kInvOdd[k])));
  return V(T(2)) * s * acc;
}

template <typename T>
inline Vec<T> log1p_unit(const Vec<T>& E) {
  return log1p_from_s<T>(E / (Vec<T>(T(2)) + E));
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
  static inline bool unified(const Alpha<T>& p) { return all_lanes(p.a >= V(T(1e-7))); }
  // u = log(alpha) + x (rounded), E = e^{-|u|} and u_pos = max(u, 0) (NaN u stays NaN).
  // A relative error d in E moves L by at most d/(2 alpha) (absolute), hence S = e^{-L} by that much (relative)
  // and F, L by at most d (relative); an absolute error e in u moves L by e/alpha where u > 0. With exp_fast's
  // d = 2.4e-6 and float's e <= |u| 6e-8, that is <= 1.2e-5 when every lane has alpha >= 0.1 (kSmallAlpha
  // false). Smaller alpha makes L up to ~80 where S D is still above float's contract threshold, with |u| up
  // to ~14 (alpha = 1e-6), so the rounding of log(alpha) and of the sum alone (~1.4e-6 in u) would reach 1e-4
  // in S: there E takes Sleef's exp and, in float, u's exact error e (TwoSum, plus log(alpha)'s low part) is
  // put back, into E to first order (E e^{-sign(u) e} = E (1 - sign(u) e)) and into u_pos.
  // The two cases are separate instantiations of the whole forward/backward (one branch per vector, no
  // merged registers), which keeps the common case as fast as without the correction.
  static inline bool small_alpha(const Alpha<T>& p) { return !all_lanes(p.a >= V(T(0.1))); }
  template <bool kSmallAlpha>
  static inline void u_and_E(const V& x, const Alpha<T>& p, V& u, V& E, V& u_pos) {
    u = p.log_a + x;
    u_pos = at::vec::clamp_min(u, V(T(0)));
    if constexpr (!kSmallAlpha) {
      E = exp_fast<T>(u.abs().neg());
    } else {
      E = u.abs().neg().exp();
      if constexpr (sizeof(T) == 4) {
        const V x_part = u - p.log_a;
        const V e = ((p.log_a - (u - x_part)) + (x - x_part)) + p.log_a_lo;  // exact u = u + e (to float)
        const V negative = u < V(T(0));
        E = at::vec::fmadd(E, select(negative, e, e.neg()), E);
        u_pos = u_pos + select(negative, V(T(0)), e);
      }
    }
  }
  template <bool kSmallAlpha>
  static inline void core(const V& x, const Alpha<T>& p, V& L, V& D, V& w) {
    const V one(T(1)), zero(T(0));
    const V& a = p.a;
    const V& log_a = p.log_a;
    if (unified(p)) {
      V u, E, u_pos;
      u_and_E<kSmallAlpha>(x, p, u, E, u_pos);
      // one division for both 1/(1+E) and s = E/(2+E)
      const V one_plus_E = one + E, two_plus_E = V(T(2)) + E;
      const V r = one / (one_plus_E * two_plus_E);
      const V inv = two_plus_E * r;
      const V positive = u > zero;
      L = (u_pos + log1p_from_s<T>(E * one_plus_E * r)) * p.inv_a;
      w = select(positive, inv, E * inv);
      D = w * p.inv_a;
      return;
    }
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
  // S = e^{-L} needs only a relative accuracy, so it takes exp_fast.
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
  template <bool kSmallAlpha>
  static inline V forward_t(const V& x, const Alpha<T>& p) {
    V L, D, w;
    if (unified(p)) {  // only L is needed here
      V u, E, u_pos;
      u_and_E<kSmallAlpha>(x, p, u, E, u_pos);
      L = (u_pos + log1p_unit<T>(E)) * p.inv_a;
    } else {
      core<kSmallAlpha>(x, p, L, D, w);
    }
    return one_minus_exp_neg<T>(L, exp_fast<T>(L.neg()));
  }
  static inline V forward(const V& x, const Alpha<T>& p) {
    return small_alpha(p) ? forward_t<true>(x, p) : forward_t<false>(x, p);
  }
  template <bool kSmallAlpha>
  static inline void backward_t(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    V L, D, w;
    core<kSmallAlpha>(x, p, L, D, w);
    const V S = exp_fast<T>(L.neg());
    const V series = w < V(T(0.05));
    V dL_da;
    if (all_lanes(series)) {
      dL_da = (D * D * chi(w)).neg();
    } else if (no_lane(series)) {
      dL_da = (D - L) * p.inv_a;
    } else {  // both, then pick per lane (w <= 1 and D, L finite: neither side overflows)
      dL_da = select(series, (D * D * chi(w)).neg(), (D - L) * p.inv_a);
    }
    const V gS = g * S;
    gx = gS * D;
    ga = gS * dL_da;
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
  static inline V forward(const V& x, const Alpha<T>& p) {
    const V t = p.a * at::vec::maximum(x, V(T(0)));
    return x * one_minus_exp_neg<T>(t, exp_fast<T>(t.neg()));
  }
  // d/dx = F + t e^{-t}; d/da = x * x_+ e^{-t}; both vanish for x <= 0 (t = 0, x_+ = 0).
  static inline void backward(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    const V x_pos = at::vec::maximum(x, V(T(0)));
    const V t = p.a * x_pos;
    const V E = exp_fast<T>(t.neg());
    gx = g * (one_minus_exp_neg<T>(t, E) + t * E);
    ga = g * x * x_pos * E;
  }
};

// ------------------------------------------------------------------ logistic, gated (Swish, eq. 3)
template <typename T>
struct LogisticGated {
  using V = Vec<T>;
  // (s(t), s(-t)) from one e = exp(-|t|), as families._sigmoid_pair.
  static inline void pair(const V& t, V& s, V& s_neg, V& e, V& big) {
    e = exp_fast<T>(t.abs().neg());
    big = V(T(1)) / (V(T(1)) + e);
    const V small = e * big;
    const V positive = t >= V(T(0));
    s = select(positive, big, small);
    s_neg = select(positive, small, big);
  }
  static inline V forward(const V& x, const Alpha<T>& p) {
    V s, s_neg, e, big;
    pair(p.a * x, s, s_neg, e, big);
    return x * s;
  }
  static inline void backward(const V& g, const V& x, const Alpha<T>& p, V& gx, V& ga) {
    const V t = p.a * x;
    V s, s_neg, e, big;
    pair(t, s, s_neg, e, big);
    const V density = s * s_neg;
    gx = g * (s + t * density);
    ga = g * x * x * density;
  }
};

// ---------------------------------------------------------------------------------- drivers
// The loops evaluate two vectors per iteration: each family is one long dependency chain (exp -> log1p -> exp
// for Gumbel), and two independent chains let the core overlap them (measured: forward 20-30% faster on
// conv-shaped inputs; four per iteration gained nothing more).
constexpr int64_t kGrainElements = 32768;

// x (contiguous) is viewed as rows of `inner` elements; row r lies in channel c = r % C of group
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
  Alpha<T> row(int64_t k) const {
    return {Vec<T>(a[k]), Vec<T>(log_a[k]), Vec<T>(inv_a[k]), Vec<T>(log_a_lo[k])};
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
    return {Vec<T>::set(one, Vec<T>::loadu(a.data() + k, n), n), Vec<T>::set(zero, Vec<T>::loadu(log_a.data() + k, n), n),
            Vec<T>::set(one, Vec<T>::loadu(inv_a.data() + k, n), n),
            Vec<T>::set(zero, Vec<T>::loadu(log_a_lo.data() + k, n), n)};
  }
};

template <typename T, template <typename> class Fam>
void forward_kernel(const T* x, const T* alpha, T* y, int64_t numel, const Layout& L) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const AlphaTable<T> table(alpha, L.G * L.C);
  if (L.inner > 1) {  // one alpha per row, SIMD along the row
    const int64_t inner = L.inner;
    at::parallel_for(0, L.rows(numel), std::max<int64_t>(1, kGrainElements / inner), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const Alpha<T> p = table.row(L.alpha_index(r));
        const T* xr = x + r * inner;
        T* yr = y + r * inner;
        int64_t i = 0;
        for (; i + 2 * W <= inner; i += 2 * W) {
          const V y0 = Fam<T>::forward(V::loadu(xr + i), p);
          const V y1 = Fam<T>::forward(V::loadu(xr + i + W), p);
          y0.store(yr + i);
          y1.store(yr + i + W);
        }
        for (; i < inner; i += W) {
          const int64_t n = std::min(W, inner - i);
          Fam<T>::forward(V::loadu(xr + i, n), p).store(yr + i, n);
        }
      }
    });
  } else {  // alpha along the contiguous axis: SIMD across channels
    const int64_t C = L.C;
    const int64_t nvec = (C + W - 1) / W;
    const std::vector<Alpha<T>> lanes = table.column_vectors(L.G, C);
    at::parallel_for(0, numel / C, std::max<int64_t>(1, kGrainElements / C), [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        const Alpha<T>* lo = lanes.data() + ((o / L.M) % L.G) * nvec;
        const T* xo = x + o * C;
        T* yo = y + o * C;
        int64_t j = 0, c = 0;
        for (; c + 2 * W <= C; c += 2 * W, j += 2) {
          const V y0 = Fam<T>::forward(V::loadu(xo + c), lo[j]);
          const V y1 = Fam<T>::forward(V::loadu(xo + c + W), lo[j + 1]);
          y0.store(yo + c);
          y1.store(yo + c + W);
        }
        for (; c < C; c += W, ++j) {
          const int64_t n = std::min(W, C - c);
          Fam<T>::forward(V::loadu(xo + c, n), lo[j]).store(yo + c, n);
        }
      }
    });
  }
}

template <typename T, template <typename> class Fam>
void backward_kernel(const T* g, const T* x, const T* alpha, T* gx, double* ga_total, int64_t numel,
                     const Layout& L) {
  using V = Vec<T>;
  constexpr int64_t W = V::size();
  const int64_t n_alpha = L.G * L.C;
  const AlphaTable<T> table(alpha, n_alpha);
  std::mutex merge;
  if (L.inner > 1) {
    const int64_t inner = L.inner;
    at::parallel_for(0, L.rows(numel), std::max<int64_t>(1, kGrainElements / inner), [&](int64_t begin, int64_t end) {
      std::vector<double> acc(n_alpha, 0.0);
      alignas(64) T lanes[W];
      for (int64_t r = begin; r < end; ++r) {
        const int64_t k = L.alpha_index(r);
        const Alpha<T> p = table.row(k);
        const int64_t off = r * inner;
        V row_sum(T(0));
        int64_t i = 0;
        for (; i + 2 * W <= inner; i += 2 * W) {
          V gx0, ga0, gx1, ga1;
          Fam<T>::backward(V::loadu(g + off + i), V::loadu(x + off + i), p, gx0, ga0);
          Fam<T>::backward(V::loadu(g + off + i + W), V::loadu(x + off + i + W), p, gx1, ga1);
          gx0.store(gx + off + i);
          gx1.store(gx + off + i + W);
          row_sum = row_sum + (ga0 + ga1);
        }
        for (; i < inner; i += W) {
          const int64_t n = std::min(W, inner - i);
          V gxv, gav;
          Fam<T>::backward(V::loadu(g + off + i, n), V::loadu(x + off + i, n), p, gxv, gav);
          gxv.store(gx + off + i, n);
          row_sum = row_sum + (n == W ? gav : V::set(V(T(0)), gav, n));
        }
        row_sum.store(lanes);
        double sum = 0.0;
        for (int64_t l = 0; l < W; ++l) sum += lanes[l];
        acc[k] += sum;
      }
      std::lock_guard<std::mutex> lock(merge);
      for (int64_t k = 0; k < n_alpha; ++k) ga_total[k] += acc[k];
    });
  } else {
    // alpha along the contiguous axis: accumulate grad_alpha in SIMD registers' precision for up to
    // kFlushRows rows, then into double, so long columns keep their accuracy.
    constexpr int64_t kFlushRows = 64;
    const int64_t C = L.C;
    const int64_t nvec = (C + W - 1) / W;
    const std::vector<Alpha<T>> lanes = table.column_vectors(L.G, C);
    at::parallel_for(0, numel / C, std::max<int64_t>(1, kGrainElements / C), [&](int64_t begin, int64_t end) {
      std::vector<double> acc(n_alpha, 0.0);
      std::vector<V> partial(L.G * nvec, V(T(0)));
      alignas(64) T buf[W];
      const auto flush = [&] {
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
        const T* go = g + o * C;
        const T* xo = x + o * C;
        T* gxo = gx + o * C;
        int64_t j = 0, c = 0;
        for (; c + 2 * W <= C; c += 2 * W, j += 2) {
          V gx0, ga0, gx1, ga1;
          Fam<T>::backward(V::loadu(go + c), V::loadu(xo + c), lanes[gi + j], gx0, ga0);
          Fam<T>::backward(V::loadu(go + c + W), V::loadu(xo + c + W), lanes[gi + j + 1], gx1, ga1);
          gx0.store(gxo + c);
          gx1.store(gxo + c + W);
          partial[gi + j] = partial[gi + j] + ga0;
          partial[gi + j + 1] = partial[gi + j + 1] + ga1;
        }
        for (; c + W <= C; c += W, ++j) {
          V gxv, gav;
          Fam<T>::backward(V::loadu(go + c), V::loadu(xo + c), lanes[gi + j], gxv, gav);
          gxv.store(gxo + c);
          partial[gi + j] = partial[gi + j] + gav;
        }
        if (c < C) {
          const int64_t n = C - c;
          V gxv, gav;
          Fam<T>::backward(V::loadu(go + c, n), V::loadu(xo + c, n), lanes[gi + j], gxv, gav);
          gxv.store(gxo + c, n);
          partial[gi + j] = partial[gi + j] + V::set(V(T(0)), gav, n);
        }
        if ((o - begin + 1) % kFlushRows == 0) flush();
      }
      flush();
      std::lock_guard<std::mutex> lock(merge);
      for (int64_t k = 0; k < n_alpha; ++k) ga_total[k] += acc[k];
    });
  }
}

enum Family : int64_t { kGumbel = 0, kExponentialGated = 1, kLogisticGated = 2 };

Layout check(const torch::Tensor& x, const torch::Tensor& alpha, int64_t G, int64_t M, int64_t C, int64_t inner) {
  TORCH_CHECK(x.device().is_cpu() && alpha.device().is_cpu(), "actadapt native kernel: CPU tensors only");
  TORCH_CHECK(x.is_contiguous() && alpha.is_contiguous(), "actadapt native kernel: contiguous tensors only");
  TORCH_CHECK(x.scalar_type() == alpha.scalar_type(), "actadapt native kernel: x and alpha dtypes differ");
  TORCH_CHECK(G >= 1 && M >= 1 && C >= 1 && inner >= 1 && alpha.numel() == G * C &&
                  x.numel() % (G * M * C * inner) == 0,
              "actadapt native kernel: bad layout");
  return Layout{G, M, C, inner};
}

torch::Tensor forward(torch::Tensor x, torch::Tensor alpha, int64_t family, int64_t G, int64_t M, int64_t C,
                      int64_t inner) {
  const Layout L = check(x, alpha, G, M, C, inner);
  auto y = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "actadapt_forward", [&] {
    const auto* xp = x.data_ptr<scalar_t>();
    const auto* ap = alpha.data_ptr<scalar_t>();
    auto* yp = y.data_ptr<scalar_t>();
    const int64_t n = x.numel();
    switch (family) {
      case kGumbel: forward_kernel<scalar_t, Gumbel>(xp, ap, yp, n, L); break;
      case kExponentialGated: forward_kernel<scalar_t, ExponentialGated>(xp, ap, yp, n, L); break;
      case kLogisticGated: forward_kernel<scalar_t, LogisticGated>(xp, ap, yp, n, L); break;
      default: TORCH_CHECK(false, "actadapt native kernel: unknown family ", family);
    }
  });
  return y;
}

std::vector<torch::Tensor> backward(torch::Tensor grad, torch::Tensor x, torch::Tensor alpha, int64_t family,
                                    int64_t G, int64_t M, int64_t C, int64_t inner) {
  const Layout L = check(x, alpha, G, M, C, inner);
  TORCH_CHECK(grad.is_contiguous() && grad.scalar_type() == x.scalar_type() && grad.numel() == x.numel(),
              "actadapt native kernel: grad must match x");
  auto gx = torch::empty_like(x);
  auto ga = torch::zeros({G * C}, x.options().dtype(torch::kFloat64));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "actadapt_backward", [&] {
    const auto* gp = grad.data_ptr<scalar_t>();
    const auto* xp = x.data_ptr<scalar_t>();
    const auto* ap = alpha.data_ptr<scalar_t>();
    auto* gxp = gx.data_ptr<scalar_t>();
    auto* gap = ga.data_ptr<double>();
    const int64_t n = x.numel();
    switch (family) {
      case kGumbel: backward_kernel<scalar_t, Gumbel>(gp, xp, ap, gxp, gap, n, L); break;
      case kExponentialGated: backward_kernel<scalar_t, ExponentialGated>(gp, xp, ap, gxp, gap, n, L); break;
      case kLogisticGated: backward_kernel<scalar_t, LogisticGated>(gp, xp, ap, gxp, gap, n, L); break;
      default: TORCH_CHECK(false, "actadapt native kernel: unknown family ", family);
    }
  });
  return {gx, ga.to(x.scalar_type())};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "fused adaptive activation forward");
  m.def("backward", &backward, "fused adaptive activation backward: (grad_x, grad_alpha summed to (G*C,))");
}
