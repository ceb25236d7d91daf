//! The encoder's matrix product with AVX-512, for CPUs that have it.
//!
//! The `gemm` crate (the fallback in `kernels.rs`) uses AVX-512 only when
//! built with its nightly feature, so on stable Rust it runs at AVX2 speed:
//! half of what a core with 512-bit FMA units can do. This is a small
//! product for the shapes of a BERT encoder, in the GotoBLAS arrangement:
//!
//! - The right-hand side comes in *panels* of [`NR`] columns, each read
//!   one row ([`NR`] floats) per step of the inner dimension. Linear
//!   weights are packed that way once, at load ([`pack`]); attention's
//!   values are read in place (their rows are strided but each is already
//!   a run of columns), and its keys are packed per head.
//! - A [`MR`] × [`NR`] tile of the output stays in 2·[`MR`] registers
//!   while the inner dimension runs; the left-hand side is read in place,
//!   one broadcast float per row and step.
//! - The inner dimension runs in blocks of [`KC`] so that a panel's block
//!   stays in L1 while every row tile passes over it.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Columns of a panel: two 16-float registers.
pub const NR: usize = 32;
/// Rows of an output tile: 2·12 accumulators, 2 panel registers and a
/// broadcast fit the 32 vector registers (14 rows measured no faster).
const MR: usize = 12;
/// Inner-dimension block: a panel's block (KC × NR floats, 48 KiB) stays
/// near L1 while every row tile passes over it (128 to 384 measured within
/// a few percent of each other; 384 spares MiniLM's products a second
/// pass over the output).
const KC: usize = 384;

/// Whether this CPU runs the AVX-512 product.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Floats that [`pack`] makes of an `outputs` × `inputs` weight.
pub fn packed_len(outputs: usize, inputs: usize) -> usize {
    outputs.div_ceil(NR) * NR * inputs
}

/// Packs a linear weight stored as PyTorch does (`outputs` rows of
/// `inputs`) into panels: panel `p`, step `i` holds the weights of outputs
/// `p·NR ..` for input `i`, zero past the last output.
pub fn pack(w: &[f32], outputs: usize, inputs: usize) -> Vec<f32> {
    assert_eq!(w.len(), outputs * inputs, "weight shape");
    let mut packed = vec![0.0; packed_len(outputs, inputs)];
    if inputs == 0 {
        return packed;
    }
    for (p, panel) in packed.chunks_exact_mut(NR * inputs).enumerate() {
        for (j, row) in w.chunks_exact(inputs).skip(p * NR).take(NR).enumerate() {
            for (i, &v) in row.iter().enumerate() {
                panel[i * NR + j] = v;
            }
        }
    }
    packed
}

/// Packs the transpose of `rows` (a `n` × `d` view: row `r` at
/// `data[offset + r * stride ..][..d]`) into panels, as [`pack`] packs a
/// weight: the keys of attention, so that Q·Kᵀ is a product with panels.
pub fn pack_transposed(
    data: &[f32],
    offset: usize,
    stride: usize,
    n: usize,
    d: usize,
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(packed_len(n, d), 0.0);
    if d == 0 {
        return;
    }
    for (p, panel) in out.chunks_exact_mut(NR * d).enumerate() {
        for j in 0..NR.min(n - p * NR) {
            let row = &data[offset + (p * NR + j) * stride..][..d];
            for (i, &v) in row.iter().enumerate() {
                panel[i * NR + j] = v;
            }
        }
    }
}

/// The right-hand side of a product, as panels: panel `p`'s step `i` is
/// the [`NR`] floats at `data[offset + p * panel_stride + i * step ..]`
/// (fewer past the last column).
#[derive(Clone, Copy)]
pub struct Panels<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub panel_stride: usize,
    pub step: usize,
}

/// `out[dst .. ]` (an `m` × `n` matrix, rows `ldc` apart) = `a` (`m` × `k`,
/// rows `lda` apart from `a_offset`) · `b`, plus the old contents when
/// `accumulate`.
///
/// # Panics
/// When a matrix does not lie inside its slice, or when the CPU lacks
/// AVX-512 (check [`available`] first).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_offset: usize,
    lda: usize,
    b: Panels<'_>,
    out: &mut [f32],
    dst: usize,
    ldc: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(available(), "the AVX-512 product needs a CPU with AVX-512");
    if k > 0 {
        assert!(
            a_offset + (m - 1) * lda + k <= a.len(),
            "left matrix out of bounds"
        );
        // Panels do not overlap, so the last panel's last step, which
        // reads only its columns, is the furthest read.
        let panels = n.div_ceil(NR);
        assert!(panels == 1 || b.panel_stride >= NR, "panels overlap");
        let last = b.offset + (panels - 1) * b.panel_stride + (k - 1) * b.step;
        assert!(
            last + (n - (panels - 1) * NR) <= b.data.len(),
            "panels out of bounds"
        );
    }
    assert!(
        dst + (m - 1) * ldc + n <= out.len(),
        "product out of bounds"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: every read and write below stays inside the bounds checked
    // above (partial panels are masked), `out` is borrowed mutably so no
    // input aliases it, and the CPU has AVX-512 (asserted).
    unsafe {
        product(m, n, k, a, a_offset, lda, b, out, dst, ldc, accumulate)
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn product(
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    a_offset: usize,
    lda: usize,
    b: Panels<'_>,
    out: &mut [f32],
    dst: usize,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller checked the bounds (see `matmul`).
    unsafe {
        let (a, bp, c) = (
            a.as_ptr().add(a_offset),
            b.data.as_ptr().add(b.offset),
            out.as_mut_ptr().add(dst),
        );
        if k == 0 {
            if !accumulate {
                for r in 0..m {
                    std::ptr::write_bytes(c.add(r * ldc), 0, n);
                }
            }
            return;
        }
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            // The first block starts from zero unless accumulating; later
            // blocks add to what the earlier ones stored.
            let load = accumulate || k0 > 0;
            for p in 0..n.div_ceil(NR) {
                let cols = NR.min(n - p * NR);
                let masks = masks(cols);
                let panel = bp.add(p * b.panel_stride + k0 * b.step);
                let mut i = 0;
                while i < m {
                    let rows = MR.min(m - i);
                    let tile = Tile {
                        kc,
                        a: a.add(i * lda + k0),
                        lda,
                        b: panel,
                        step: b.step,
                        c: c.add(i * ldc + p * NR),
                        ldc,
                        masks,
                        load,
                    };
                    match rows {
                        12 => tile.run::<12>(),
                        11 => tile.run::<11>(),
                        10 => tile.run::<10>(),
                        9 => tile.run::<9>(),
                        8 => tile.run::<8>(),
                        7 => tile.run::<7>(),
                        6 => tile.run::<6>(),
                        5 => tile.run::<5>(),
                        4 => tile.run::<4>(),
                        3 => tile.run::<3>(),
                        2 => tile.run::<2>(),
                        _ => tile.run::<1>(),
                    }
                    i += rows;
                }
            }
            k0 += kc;
        }
    }
}

/// Lane masks of the two registers of a panel with `cols` columns.
fn masks(cols: usize) -> [u16; 2] {
    let lanes = |n: usize| -> u16 {
        if n >= 16 {
            u16::MAX
        } else {
            ((1u32 << n) - 1) as u16
        }
    };
    [lanes(cols), lanes(cols.saturating_sub(16))]
}

/// One output tile's work: `R` rows × one panel over `kc` steps.
#[cfg(target_arch = "x86_64")]
struct Tile {
    kc: usize,
    a: *const f32,
    lda: usize,
    b: *const f32,
    step: usize,
    c: *mut f32,
    ldc: usize,
    masks: [u16; 2],
    load: bool,
}

#[cfg(target_arch = "x86_64")]
impl Tile {
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn run<const R: usize>(&self) {
        // SAFETY: the tile lies inside the bounds `matmul` checked.
        unsafe {
            let [m0, m1] = self.masks;
            let mut acc = [[_mm512_setzero_ps(); 2]; R];
            if self.load {
                for (r, acc) in acc.iter_mut().enumerate() {
                    let c = self.c.add(r * self.ldc);
                    acc[0] = _mm512_maskz_loadu_ps(m0, c);
                    acc[1] = _mm512_maskz_loadu_ps(m1, c.add(16));
                }
            }
            let (mut a, mut b) = (self.a, self.b);
            for _ in 0..self.kc {
                let b0 = _mm512_maskz_loadu_ps(m0, b);
                let b1 = _mm512_maskz_loadu_ps(m1, b.add(16));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm512_set1_ps(*a.add(r * self.lda));
                    acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                    acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
                }
                a = a.add(1);
                b = b.add(self.step);
            }
            for (r, acc) in acc.iter().enumerate() {
                let c = self.c.add(r * self.ldc);
                _mm512_mask_storeu_ps(c, m0, acc[0]);
                _mm512_mask_storeu_ps(c.add(16), m1, acc[1]);
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f32]) {
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "element {i}: {g} != {w}"
            );
        }
    }

    #[test]
    #[cfg_attr(not(avx512_cpu), ignore = "this CPU has no AVX-512")]
    fn products_match_the_definition_on_every_edge() {
        assert!(
            available(),
            "built on a CPU with AVX-512, run on one without"
        );
        // Rows, columns and inner sizes on and off the tile, panel and
        // block sizes.
        for &(m, n, k) in &[
            (1, 1, 1),
            (13, 31, 5),
            (12, 32, 384),
            (13, 33, 385),
            (29, 64, 384),
            (3, 100, 400),
            (40, 17, 0),
        ] {
            let x = values(m * k, 1);
            let w = values(n * k, 2);
            let bias = values(n, 3);
            let mut want = vec![0.0f32; m * n];
            for r in 0..m {
                for c in 0..n {
                    want[r * n + c] =
                        bias[c] + (0..k).map(|i| x[r * k + i] * w[c * k + i]).sum::<f32>();
                }
            }
            let packed = pack(&w, n, k);
            let b = Panels {
                data: &packed,
                offset: 0,
                panel_stride: NR * k,
                step: NR,
            };
            let mut out: Vec<f32> = (0..m).flat_map(|_| bias.iter().copied()).collect();
            matmul(m, n, k, &x, 0, k, b, &mut out, 0, n, true);
            close(&out, &want);

            // The same keys as attention reads them: transposed in place.
            let mut keys = Vec::new();
            pack_transposed(&w, 0, k, n, k, &mut keys);
            assert_eq!(keys, packed);
        }
    }

    #[test]
    #[cfg_attr(not(avx512_cpu), ignore = "this CPU has no AVX-512")]
    fn strided_panels_and_offsets_write_only_their_tile() {
        assert!(
            available(),
            "built on a CPU with AVX-512, run on one without"
        );
        // Rows of 3·8 floats hold q, k and v; v's 8 columns are one
        // partial panel read in place; the product lands in columns 8..16
        // of a 24-wide output without touching the rest.
        let (n, d) = (5, 8);
        let qkv = values(n * 3 * d, 4);
        let p = values(n * n, 5);
        let mut out = vec![7.0f32; n * 24];
        let v = Panels {
            data: &qkv,
            offset: 2 * d,
            panel_stride: NR,
            step: 3 * d,
        };
        matmul(n, d, n, &p, 0, n, v, &mut out, 8, 24, false);
        for r in 0..n {
            for c in 0..24 {
                let got = out[r * 24 + c];
                if (8..16).contains(&c) {
                    let want: f32 = (0..n)
                        .map(|i| p[r * n + i] * qkv[i * 3 * d + 2 * d + c - 8])
                        .sum();
                    assert!((got - want).abs() < 1e-5, "({r}, {c}): {got} != {want}");
                } else {
                    assert_eq!(got, 7.0, "({r}, {c}) was written");
                }
            }
        }
    }
}
