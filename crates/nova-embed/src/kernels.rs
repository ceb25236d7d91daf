//! The CPU kernels of the encoder: matrix products (the `gemm` crate, which
//! candle uses too) and the element-wise passes, each fused into one sweep
//! over its rows and written so the compiler vectorises them (no calls to
//! libm inside the loops). On CPUs with AVX-512 the products run on
//! `avx512.rs` instead.

use super::avx512;

/// A read-only matrix view: element (r, c) is at `data[r * row + c * col]`
/// from `offset`.
#[derive(Clone, Copy)]
struct View<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub row: usize,
    pub col: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix with `cols` columns, from the start of `data`.
    fn rows(data: &'a [f32], cols: usize) -> Self {
        View {
            data,
            offset: 0,
            row: cols,
            col: 1,
        }
    }

    /// Checks that an `r` × `c` view stays inside `data`.
    fn check(&self, r: usize, c: usize) {
        if r > 0 && c > 0 {
            let last = self.offset + (r - 1) * self.row + (c - 1) * self.col;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst` (an `m` × `n` view into `out`, rows `dst_row` apart) =
/// `lhs` (m × k) · `rhs` (k × n), plus the old `dst` when `accumulate`.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    out: &mut [f32],
    dst_offset: usize,
    dst_row: usize,
    accumulate: bool,
    lhs: View<'_>,
    rhs: View<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    lhs.check(m, k);
    rhs.check(k, n);
    assert!(
        dst_offset + (m - 1) * dst_row + n <= out.len(),
        "matrix product out of bounds"
    );
    // SAFETY: every view was checked to lie inside its slice above, `out`
    // is borrowed mutably and none of the inputs alias it.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr().add(dst_offset),
            1,
            dst_row as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.offset),
            lhs.col as isize,
            lhs.row as isize,
            rhs.data.as_ptr().add(rhs.offset),
            rhs.col as isize,
            rhs.row as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Which matrix product the encoder runs. Both compute the same vectors
/// to float rounding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kernel {
    /// nova's AVX-512 product where the CPU has it, else `gemm`.
    #[default]
    Fastest,
    /// The `gemm` crate (AVX2 at most) on every CPU: what a CPU without
    /// AVX-512 runs, for comparison and tests.
    Portable,
}

impl Kernel {
    /// Whether this choice runs the AVX-512 product on this CPU.
    pub fn wide(self) -> bool {
        self == Kernel::Fastest && avx512::available()
    }

    /// The product that runs on this CPU, for logs: `avx512` or `gemm`.
    pub fn runs(self) -> &'static str {
        if self.wide() { "avx512" } else { "gemm" }
    }
}

/// A linear layer's weight, laid out for the product this CPU runs:
/// packed in panels for the AVX-512 kernel, or as PyTorch stores it
/// (`outputs` rows of `inputs`) for the `gemm` crate, which reads it in
/// place (its columns contiguous) so short inputs such as one query need
/// no copy of the weights.
pub struct Linear {
    data: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    packed: bool,
}

impl Linear {
    /// `weight` is `outputs` × `inputs` as stored, `bias` has `outputs`;
    /// packed for the AVX-512 product when `wide`.
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, inputs: usize, wide: bool) -> Self {
        let outputs = bias.len();
        assert_eq!(weight.len(), outputs * inputs, "linear weight shape");
        let data = if wide {
            avx512::pack(&weight, outputs, inputs)
        } else {
            weight
        };
        Linear {
            data,
            bias,
            inputs,
            packed: wide,
        }
    }

    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// `out` (t × outputs) = `x` (t × inputs) · weightᵀ + bias.
    pub fn forward(&self, x: &[f32], t: usize, out: &mut [f32]) {
        let (k, n) = (self.inputs, self.outputs());
        for row in out[..t * n].chunks_exact_mut(n) {
            row.copy_from_slice(&self.bias);
        }
        if self.packed {
            let panels = avx512::Panels {
                data: &self.data,
                offset: 0,
                panel_stride: avx512::NR * k,
                step: avx512::NR,
            };
            avx512::matmul(t, n, k, x, 0, k, panels, out, 0, n, true);
        } else {
            let w = View {
                data: &self.data,
                offset: 0,
                row: 1,
                col: k,
            };
            matmul(t, n, k, out, 0, n, true, View::rows(&x[..t * k], k), w);
        }
    }
}

/// Attention of one head over one text's `n` tokens, on real tokens only
/// (no mask): `context` columns `head·d ..` of rows `start ..` =
/// softmax(Q·Kᵀ)·V, with Q, K and V read from `qkv` (rows of 3·`h`: query,
/// key, value; the 1/√d scale already in Q), on the AVX-512 product when
/// `wide`. `scores` holds n × n floats; `keys` is scratch for the AVX-512
/// product.
#[allow(clippy::too_many_arguments)]
pub fn attention_head(
    wide: bool,
    qkv: &[f32],
    start: usize,
    n: usize,
    h: usize,
    head: usize,
    d: usize,
    scores: &mut [f32],
    keys: &mut Vec<f32>,
    context: &mut [f32],
) {
    let base = start * 3 * h + head * d;
    let (scores, dst) = (&mut scores[..n * n], start * h + head * d);
    if wide {
        // scores = Q · Kᵀ, with Kᵀ packed as panels of keys
        avx512::pack_transposed(qkv, base + h, 3 * h, n, d, keys);
        let keys = avx512::Panels {
            data: keys,
            offset: 0,
            panel_stride: avx512::NR * d,
            step: avx512::NR,
        };
        avx512::matmul(n, n, d, qkv, base, 3 * h, keys, scores, 0, n, false);
        softmax_rows(scores, n);
        // context = softmax(scores) · V, V's rows read in place
        let values = avx512::Panels {
            data: qkv,
            offset: base + 2 * h,
            panel_stride: avx512::NR,
            step: 3 * h,
        };
        avx512::matmul(n, d, n, scores, 0, n, values, context, dst, h, false);
        return;
    }
    let q = View {
        data: qkv,
        offset: base,
        row: 3 * h,
        col: 1,
    };
    let k_t = View {
        data: qkv,
        offset: base + h,
        row: 1,
        col: 3 * h,
    };
    matmul(n, n, d, scores, 0, n, false, q, k_t);
    softmax_rows(scores, n);
    let v = View {
        data: qkv,
        offset: base + 2 * h,
        row: 3 * h,
        col: 1,
    };
    matmul(n, d, n, context, dst, h, false, View::rows(scores, n), v);
}

/// Defines `pub fn $name` three times over: compiled for AVX-512 (16
/// floats a step) and for AVX2 with FMA (8), each used when the CPU has
/// it, and for the baseline otherwise. The bodies are plain loops the
/// compiler vectorises for whichever it gets.
macro_rules! simd_kernel {
    ($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn widest($($arg: $ty),*) $body
                #[target_feature(enable = "avx2,fma")]
                fn wide($($arg: $ty),*) $body
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: `widest` is only called on a CPU with the
                    // features it is compiled for, checked just above
                    // (every AVX-512 CPU has AVX2 and FMA).
                    return unsafe { widest($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above, for `wide`.
                    return unsafe { wide($($arg),*) };
                }
            }
            $body
        }
    };
}

simd_kernel! {
    /// `x` = LayerNorm(`x` + `residual`) row by row, rows of `weight.len()`.
    pub fn add_layer_norm(x: &mut [f32], residual: &[f32], weight: &[f32], bias: &[f32], eps: f32) {
        let h = weight.len();
        for (row, res) in x.chunks_exact_mut(h).zip(residual.chunks_exact(h)) {
            for (v, r) in row.iter_mut().zip(res) {
                *v += r;
            }
            normalize_row(row, weight, bias, eps);
        }
    }
}

simd_kernel! {
    /// LayerNorm of each row of `x` in place.
    pub fn layer_norm(x: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
        for row in x.chunks_exact_mut(weight.len()) {
            normalize_row(row, weight, bias, eps);
        }
    }
}

#[inline(always)]
fn normalize_row(row: &mut [f32], weight: &[f32], bias: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let var = sum_sq_dev(row, mean) / n;
    let scale = 1.0 / (var + eps).sqrt();
    for ((v, w), b) in row.iter_mut().zip(weight).zip(bias) {
        *v = (*v - mean) * scale * w + b;
    }
}

/// The activations BERT-family configs name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// `gelu`: x·Φ(x), with the exact (erf) normal CDF.
    Gelu,
    /// `gelu_new`, `gelu_pytorch_tanh`: the tanh approximation.
    GeluTanh,
    Relu,
}

simd_kernel! {
    pub fn activate(x: &mut [f32], act: Activation) {
        match act {
            Activation::Gelu => x.iter_mut().for_each(|v| *v = gelu_erf(*v)),
            Activation::GeluTanh => x.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
            Activation::Relu => x.iter_mut().for_each(|v| *v = v.max(0.0)),
        }
    }
}

simd_kernel! {
    /// Softmax of each row of `x` in place, rows of `n`.
    pub fn softmax_rows(x: &mut [f32], n: usize) {
        for row in x.chunks_exact_mut(n) {
            let max = max(row);
            row.iter_mut().for_each(|v| *v = exp(*v - max));
            let inv = 1.0 / sum(row);
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
}

const LANES: usize = 16;

/// Sums in 16 lanes (one AVX-512 register, two AVX2 ones): a plain float
/// sum is a serial chain the compiler may not reorder, so it would not
/// vectorise.
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    let rest: f32 = rest.iter().sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

/// Σ (x - mean)², in lanes like `sum`.
#[inline(always)]
fn sum_sq_dev(xs: &[f32], mean: f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    let rest: f32 = rest.iter().map(|v| (v - mean) * (v - mean)).sum();
    for chunk in chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += (v - mean) * (v - mean);
        }
    }
    lanes.iter().sum::<f32>() + rest
}

#[inline(always)]
fn max(xs: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let (chunks, rest) = xs.as_chunks::<LANES>();
    let rest = rest.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            // A comparison, not `f32::max`: its NaN rule keeps the loop
            // from compiling to one max instruction per register.
            if v > *lane {
                *lane = v;
            }
        }
    }
    lanes.iter().fold(rest, |m, &v| m.max(v))
}

/// e^x, relative error about 1e-7 (Cephes' expf polynomial), in float
/// and bit operations only, so loops over it vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5 · 2^23: adding and subtracting it rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    // 2^23 + 127: k + this holds k's biased exponent in its low bits.
    const BIAS: f32 = 8_388_735.0;
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + ROUND) - ROUND;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.987_569_2e-4;
    let p = p * r + 1.398_2e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2^k: the biased exponent shifted into place (the shift drops the
    // bits of BIAS above it).
    e * f32::from_bits((k + BIAS).to_bits() << 23)
}

/// x·Φ(x) with Φ from erfc (Numerical Recipes' Chebyshev fit, fractional
/// error under 1.2e-7): matches PyTorch's exact `gelu` to float precision.
#[inline(always)]
fn gelu_erf(x: f32) -> f32 {
    let z = x.abs() * std::f32::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_2 + t * 0.170_872_77))))))));
    let erfc = t * exp(-z * z + poly);
    // Φ(x) = erfc(-x/√2)/2: 1 - erfc(|x|/√2)/2 for x ≥ 0.
    let phi = if x >= 0.0 {
        1.0 - 0.5 * erfc
    } else {
        0.5 * erfc
    };
    x * phi
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    // tanh(u) = 1 - 2/(e^{2u} + 1)
    let u = 0.797_884_6 * (x + 0.044_715 * x * x * x);
    let tanh = 1.0 - 2.0 / (exp(2.0 * u) + 1.0);
    0.5 * x * (1.0 + tanh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avx512::tests::values;

    /// erf by its Taylor series in f64: exact enough for |x| ≤ 3.
    fn erf64(x: f64) -> f64 {
        let mut sum = 0.0f64;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 400.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_accurate_over_the_range_used() {
        let mut worst: f64 = 0.0;
        let mut x = -80.0f32;
        while x < 80.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.013;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn gelu_matches_the_exact_definition() {
        let mut worst: f64 = 0.0;
        let mut x = -4.0f32;
        while x < 4.0 {
            let xd = x as f64;
            let want = 0.5 * xd * (1.0 + erf64(xd / std::f64::consts::SQRT_2));
            let got = gelu_erf(x) as f64;
            worst = worst.max((got - want).abs() / want.abs().max(1e-3));
            x += 0.0037;
        }
        assert!(worst < 3e-6, "worst error {worst}");
        // The tails: x for large x, 0 for very negative x.
        assert!((gelu_erf(9.0) - 9.0).abs() < 1e-6);
        assert!(gelu_erf(-9.0).abs() < 1e-12);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_keep_order() {
        let mut x = vec![1.0, 2.0, 3.0, -1000.0, 0.0, 1000.0];
        softmax_rows(&mut x, 3);
        let first: f32 = x[..3].iter().sum();
        assert!((first - 1.0).abs() < 1e-6);
        assert!(x[0] < x[1] && x[1] < x[2]);
        assert!((x[5] - 1.0).abs() < 1e-6 && x[3] < 1e-30);
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut x = vec![1.0, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &[1.0; 4], &[0.5; 4], 1e-12);
        let mean: f32 = x.iter().sum::<f32>() / 4.0;
        let var: f32 = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / 4.0;
        assert!((mean - 0.5).abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    }

    #[test]
    fn linear_adds_the_bias_to_the_product() {
        // x: 2×3, w: 2 outputs × 3 inputs, bias 2.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let w = vec![1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let mut out = [0.0; 4];
        Linear::new(w, vec![10.0, 20.0], 3, avx512::available()).forward(&x, 2, &mut out);
        assert_eq!(out, [14.0, 25.0, 20.0, 31.0]);
    }

    /// The kernels this CPU can run: the `gemm` crate always, AVX-512 too
    /// where present.
    fn kernels() -> Vec<bool> {
        let mut wide = vec![false];
        if avx512::available() {
            wide.push(true);
        }
        wide
    }

    #[test]
    fn linear_layers_agree_with_the_definition_on_every_kernel() {
        let (t, k, n) = (37, 70, 45);
        let x = values(t * k, 1);
        let w = values(n * k, 2);
        let bias = values(n, 3);
        for wide in kernels() {
            let layer = Linear::new(w.clone(), bias.clone(), k, wide);
            let mut out = vec![f32::NAN; t * n];
            layer.forward(&x, t, &mut out);
            for r in 0..t {
                for c in 0..n {
                    let want = bias[c] + (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>();
                    let got = out[r * n + c];
                    assert!(
                        (got - want).abs() < 1e-4,
                        "wide {wide}, ({r}, {c}): {got} != {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn attention_heads_agree_with_the_definition_on_every_kernel() {
        // Two texts (5 and 40 tokens) packed one after the other, 3 heads
        // of 8; the second text's middle head.
        let (h, d, n, start, head) = (24, 8, 40, 5, 1);
        let qkv = values((start + n) * 3 * h, 4);
        let at = |row: usize, col: usize| qkv[row * 3 * h + col];
        for wide in kernels() {
            let mut scores = vec![0.0; n * n];
            let mut keys = Vec::new();
            let mut context = vec![7.0; (start + n) * h];
            attention_head(
                wide,
                &qkv,
                start,
                n,
                h,
                head,
                d,
                &mut scores,
                &mut keys,
                &mut context,
            );
            for i in 0..n {
                let q = start + i;
                let logits: Vec<f32> = (0..n)
                    .map(|j| {
                        (0..d)
                            .map(|c| at(q, head * d + c) * at(start + j, h + head * d + c))
                            .sum()
                    })
                    .collect();
                let max = logits.iter().fold(f32::MIN, |m, &v| m.max(v));
                let weights: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f32 = weights.iter().sum();
                for c in 0..d {
                    let want: f32 = (0..n)
                        .map(|j| weights[j] / total * at(start + j, 2 * h + head * d + c))
                        .sum();
                    let got = context[q * h + head * d + c];
                    assert!(
                        (got - want).abs() < 1e-5,
                        "wide {wide}, ({i}, {c}): {got} != {want}"
                    );
                }
            }
            // Nothing outside the head's columns of the text's rows moved.
            for (idx, v) in context.iter().enumerate() {
                let (row, col) = (idx / h, idx % h);
                if row < start || col / d != head {
                    assert_eq!(*v, 7.0, "({row}, {col}) was written");
                }
            }
        }
    }
}
