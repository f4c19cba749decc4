//! Output statistics for `svs_stats.json`, over a sample of at most 10,000 elements.
//!
//! Definitions shared with the Python SDK: `mean`/`std` (population)/`min`/`max` over non-NaN
//! sampled values; `null_ratio` = NaN share of the sample (0 for integers); `entropy` in bits, over
//! exact values for integer dtypes and over a 256-bin histogram between the finite min and max for
//! floats; `unique_count` and `top1_fraction` over exact non-NaN values; `vocab_utilization` null
//! (no vocabulary size is known at save time).

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::output::OutputData;
use crate::tensor::{ArrayD, Element};

/// Largest number of elements examined per tensor.
pub const MAX_SAMPLES: usize = 10_000;
/// Histogram bins for float entropy.
pub const ENTROPY_BINS: usize = 256;

/// Deterministic PRNG (splitmix64) so stats are reproducible run to run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..=bound.
    fn upto(&mut self, bound: u64) -> u64 {
        if bound == u64::MAX {
            return self.next();
        }
        let span = bound + 1;
        let zone = u64::MAX - (u64::MAX % span);
        loop {
            let x = self.next();
            if x < zone {
                return x % span;
            }
        }
    }
}

/// Indices of the sample: everything when small, else `MAX_SAMPLES` distinct random positions
/// (Floyd's algorithm; a strided sample would alias with row lengths), sorted for locality.
fn sample_indices(n: usize, k: usize) -> Option<Vec<usize>> {
    if n <= k {
        return None;
    }
    let mut rng = SplitMix(0x5EED_0000_0000_0000 ^ n as u64);
    let mut chosen: HashSet<usize> = HashSet::with_capacity(k * 2);
    for j in (n - k)..n {
        let t = rng.upto(j as u64) as usize;
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    let mut v: Vec<usize> = chosen.into_iter().collect();
    v.sort_unstable();
    Some(v)
}

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn entropy_from_counts<I: Iterator<Item = usize>>(counts: I, total: usize) -> f64 {
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    let h: f64 = counts
        .filter(|&c| c > 0)
        .map(|c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    // -0.0 and tiny negative rounding noise read as 0 bits.
    h.max(0.0)
}

/// Stats of one tensor as the JSON object stored under its key in `svs_stats.json`.
pub fn array_stats<T: Element>(a: &ArrayD<T>) -> Value {
    let data = a.as_slice();
    let total = data.len();
    let picked = sample_indices(total, MAX_SAMPLES);
    let sample: Vec<T> = match &picked {
        Some(idx) => idx.iter().map(|&i| data[i]).collect(),
        None => data.to_vec(),
    };
    let used = sample.len();
    let values: Vec<f64> = sample.iter().map(|x| x.to_f64()).filter(|x| !x.is_nan()).collect();
    let nulls = used - values.len();

    let (mut mean, mut std, mut min, mut max) = (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    if !values.is_empty() {
        let n = values.len() as f64;
        mean = values.iter().sum::<f64>() / n;
        std = (values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    }

    // Exact-value distribution (NaN excluded; -0.0 counted as 0.0).
    let mut exact: HashMap<u64, usize> = HashMap::new();
    for &x in &values {
        let key = if x == 0.0 { 0.0f64.to_bits() } else { x.to_bits() };
        *exact.entry(key).or_insert(0) += 1;
    }
    let unique = exact.len();
    let top1 = exact.values().copied().max().map(|c| c as f64 / values.len() as f64);

    let entropy = if values.is_empty() {
        None
    } else if !T::IS_FLOAT {
        Some(entropy_from_counts(exact.values().copied(), values.len()))
    } else {
        let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if finite.is_empty() {
            None
        } else {
            let lo = finite.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let mut bins = [0usize; ENTROPY_BINS];
            if hi > lo {
                let scale = ENTROPY_BINS as f64 / (hi - lo);
                for &x in &finite {
                    let b = ((x - lo) * scale) as usize;
                    bins[b.min(ENTROPY_BINS - 1)] += 1;
                }
            } else {
                bins[0] = finite.len();
            }
            Some(entropy_from_counts(bins.iter().copied(), finite.len()))
        }
    };

    json!({
        "dtype": T::DTYPE,
        "shape": a.shape(),
        "mean": num(mean),
        "std": num(std),
        "min": num(min),
        "max": num(max),
        "samples_used": used,
        "total_elements": total,
        "entropy": entropy.map(num).unwrap_or(Value::Null),
        "null_ratio": if used == 0 { Value::Null } else { json!(nulls as f64 / used as f64) },
        "unique_count": unique,
        "top1_fraction": top1.map(num).unwrap_or(Value::Null),
        "vocab_utilization": Value::Null,
    })
}

/// Stats for a tensor variant; None for other data.
pub fn tensor_stats(data: &OutputData) -> Option<Value> {
    match data {
        OutputData::TensorF32(a) => Some(array_stats(a)),
        OutputData::TensorF64(a) => Some(array_stats(a)),
        OutputData::TensorI64(a) => Some(array_stats(a)),
        OutputData::TensorI32(a) => Some(array_stats(a)),
        OutputData::TensorU8(a) => Some(array_stats(a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_stats_with_nan() {
        let a = ArrayD::from_vec(vec![1.0f32, 2.0, 3.0, f32::NAN]);
        let s = array_stats(&a);
        assert_eq!(s["dtype"], "float32");
        assert_eq!(s["shape"], json!([4]));
        assert_eq!(s["mean"], 2.0);
        assert!((s["std"].as_f64().unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(s["min"], 1.0);
        assert_eq!(s["max"], 3.0);
        assert_eq!(s["null_ratio"], 0.25);
        assert_eq!(s["samples_used"], 4);
        assert_eq!(s["unique_count"], 3);
        // three values in three different histogram bins → log2(3) bits
        assert!((s["entropy"].as_f64().unwrap() - 3f64.log2()).abs() < 1e-12);
        assert!((s["top1_fraction"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(s["vocab_utilization"].is_null());
    }

    #[test]
    fn integer_entropy_uses_exact_values() {
        let a = ArrayD::from_vec(vec![0i64, 0, 1, 1, 2, 2, 3, 3]);
        let s = array_stats(&a);
        assert_eq!(s["entropy"], 2.0);
        assert_eq!(s["null_ratio"], 0.0);
        assert_eq!(s["top1_fraction"], 0.25);
        let c = array_stats(&ArrayD::from_vec(vec![7u8; 10]));
        assert_eq!(c["entropy"], 0.0);
        assert_eq!(c["unique_count"], 1);
        assert_eq!(c["std"], 0.0);
    }

    #[test]
    fn float_histogram_bins_close_values_together() {
        // Over [0, 1000] a bin is ~3.9 wide: 0, 0, 1 and 1+1e-9 share bin 0, the two 1000s fill bin 255.
        let a = ArrayD::from_vec(vec![0.0f64, 1.0, 1.0 + 1e-9, 1000.0, 1000.0, 0.0]);
        let s = array_stats(&a);
        let expected = -(4.0f64 / 6.0) * (4.0f64 / 6.0).log2() - (2.0f64 / 6.0) * (2.0f64 / 6.0).log2();
        assert!((s["entropy"].as_f64().unwrap() - expected).abs() < 1e-12, "{}", s["entropy"]);
        assert_eq!(s["unique_count"], 4);
    }

    #[test]
    fn large_tensors_are_sampled_without_aliasing() {
        // Column 0 is always 1, the rest 0: a strided sample with stride multiple of 768 would see only 1s.
        let rows = 200;
        let mut v = vec![0u8; rows * 768];
        for r in 0..rows {
            v[r * 768] = 1;
        }
        let a = ArrayD::from_shape_vec(vec![rows, 768], v).unwrap();
        let s = array_stats(&a);
        assert_eq!(s["samples_used"], MAX_SAMPLES);
        assert_eq!(s["total_elements"], rows * 768);
        let mean = s["mean"].as_f64().unwrap();
        assert!(mean < 0.01, "{}", mean);
        assert_eq!(array_stats(&a), s, "sampling is deterministic");
        let idx = sample_indices(100_000, MAX_SAMPLES).unwrap();
        assert_eq!(idx.len(), MAX_SAMPLES);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn all_nan_and_empty() {
        let s = array_stats(&ArrayD::from_vec(vec![f64::NAN; 3]));
        assert!(s["mean"].is_null() && s["entropy"].is_null());
        assert_eq!(s["null_ratio"], 1.0);
        let e = array_stats(&ArrayD::<f32>::zeros(vec![0]));
        assert_eq!(e["samples_used"], 0);
        assert!(e["null_ratio"].is_null());
        let inf = array_stats(&ArrayD::from_vec(vec![1.0f32, f32::INFINITY]));
        assert!(inf["max"].is_null() && inf["mean"].is_null());
        assert_eq!(inf["entropy"], 0.0);
    }
}
