//! Output statistics for `svs_stats.json`, and the domain thresholds that turn them into findings.
//!
//! Same definitions as the Python SDK (`stage_sdk/stats.py`), over a sample of at most 10,000
//! elements: `mean`/`std` (population)/`min`/`max` over finite values; `null_ratio` = NaN share of
//! the sample (0 for integers); `unique_count` and `top1_fraction` over exact non-NaN values;
//! `entropy` in bits, over exact values for integers, bools and strings, and for floats over a
//! 1024-bin histogram between the 0.1th and 99.9th percentiles of the finite sample (outer values
//! clipped into the end bins; exact values when that range is empty); `vocab_utilization` with a
//! schema `vocab_size`. The sample itself is drawn with a different (but also fixed-seed) generator,
//! so for tensors above 10,000 elements the two SDKs see different samples of the same data.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Value};

use crate::numfmt::fmt_g;
use crate::output::OutputData;
use crate::session::Finding;
use crate::table::{Column, Table};
use crate::tensor::{ArrayD, Element};

/// Largest number of elements examined per tensor.
pub const MAX_SAMPLES: usize = 10_000;
/// Histogram bins for float entropy.
pub const ENTROPY_BINS: usize = 1024;
const VOCAB_SCAN_MAX: usize = 1_000_000;

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

/// Sample positions: everything when small, else `k` distinct random positions (Floyd's algorithm;
/// a strided sample would alias with row lengths), sorted for locality.
fn sample_indices(n: usize, k: usize, seed: u64) -> Option<Vec<usize>> {
    if n <= k {
        return None;
    }
    let mut rng = SplitMix(seed ^ n as u64);
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

fn sample<T: Copy>(data: &[T], k: usize, seed: u64) -> Vec<T> {
    match sample_indices(data.len(), k, seed) {
        Some(idx) => idx.iter().map(|&i| data[i]).collect(),
        None => data.to_vec(),
    }
}

const SEED: u64 = 0x0601_DF15;

fn num(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

fn entropy_counts<I: Iterator<Item = usize>>(counts: I) -> f64 {
    let counts: Vec<usize> = counts.filter(|&c| c > 0).collect();
    let total: usize = counts.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let n = total as f64;
    let h: f64 = counts.iter().map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum();
    h.max(0.0)
}

/// numpy's `percentile(sorted, q)` with the default linear method.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let q = q / 100.0;
    // numpy's virtual index for alpha = beta = 1, with its operation order: n*q + (alpha + q*(1-alpha-beta)) - 1.
    let (alpha, beta) = (1.0f64, 1.0f64);
    let virtual_index = n as f64 * q + (alpha + q * (1.0 - alpha - beta)) - 1.0;
    let prev = virtual_index.floor();
    let gamma = virtual_index - prev;
    let clamp = |i: f64| (i.max(0.0) as usize).min(n - 1);
    let (a, b) = (sorted[clamp(prev)], sorted[clamp(prev + 1.0)]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

fn exact_key(x: f64) -> u64 {
    if x == 0.0 {
        0.0f64.to_bits()
    } else {
        x.to_bits()
    }
}

/// Entropy of float data as numpy computes the histogram (`np.histogram(clip(x), 1024, (lo, hi))`).
fn float_entropy(finite: &[f64]) -> f64 {
    if finite.is_empty() {
        return 0.0;
    }
    let mut sorted = finite.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let lo = percentile(&sorted, 0.1);
    let hi = percentile(&sorted, 99.9);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for &x in finite {
            *counts.entry(exact_key(x)).or_insert(0) += 1;
        }
        return entropy_counts(counts.into_values());
    }
    let bins = ENTROPY_BINS;
    let step = (hi - lo) / bins as f64;
    let edge = |i: usize| if i == bins { hi } else { i as f64 * step + lo };
    let denom = hi - lo;
    let mut counts = vec![0usize; bins];
    for &x in finite {
        let x = x.max(lo).min(hi);
        let mut i = (((x - lo) / denom) * bins as f64) as usize;
        if i == bins {
            i -= 1;
        }
        if x < edge(i) {
            i -= 1;
        } else if i != bins - 1 && x >= edge(i + 1) {
            i += 1;
        }
        counts[i] += 1;
    }
    entropy_counts(counts.into_iter())
}

fn base_entry(dtype: &str, shape: &[usize], used: usize, total: usize) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("dtype".into(), json!(dtype));
    m.insert("shape".into(), json!(shape));
    for k in ["mean", "std", "min", "max"] {
        m.insert(k.into(), Value::Null);
    }
    m.insert("samples_used".into(), json!(used));
    m.insert("total_elements".into(), json!(total));
    m.insert("entropy".into(), json!(0.0));
    m.insert("null_ratio".into(), json!(0.0));
    m.insert("unique_count".into(), json!(0));
    m.insert("top1_fraction".into(), Value::Null);
    m.insert("vocab_utilization".into(), Value::Null);
    m
}

/// Stats over sampled numeric values (as f64); `is_float` decides NaN handling and the entropy method.
fn numeric_entry(dtype: &str, shape: &[usize], total: usize, sample: &[f64], is_float: bool) -> Value {
    let mut m = base_entry(dtype, shape, sample.len(), total);
    if sample.is_empty() {
        return Value::Object(m);
    }
    let present: Vec<f64> = sample.iter().copied().filter(|x| !x.is_nan()).collect();
    if is_float {
        m.insert("null_ratio".into(), json!((sample.len() - present.len()) as f64 / sample.len() as f64));
    }
    let finite: Vec<f64> = present.iter().copied().filter(|x| x.is_finite()).collect();
    if !finite.is_empty() {
        let n = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / n;
        let var = finite.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
        m.insert("mean".into(), num(mean));
        m.insert("std".into(), num(var.sqrt()));
        m.insert("min".into(), num(finite.iter().copied().fold(f64::INFINITY, f64::min)));
        m.insert("max".into(), num(finite.iter().copied().fold(f64::NEG_INFINITY, f64::max)));
    }
    let mut exact: HashMap<u64, usize> = HashMap::new();
    for &x in &present {
        *exact.entry(exact_key(x)).or_insert(0) += 1;
    }
    m.insert("unique_count".into(), json!(exact.len()));
    if let Some(top) = exact.values().copied().max() {
        m.insert("top1_fraction".into(), json!(top as f64 / present.len() as f64));
    }
    let entropy = if is_float { float_entropy(&finite) } else { entropy_counts(exact.values().copied()) };
    m.insert("entropy".into(), json!(entropy));
    Value::Object(m)
}

/// Share of ids `0..vocab_size` that occur (exact up to 1,000,000 elements, else over a sample).
fn vocab_utilization<T: Element>(a: &ArrayD<T>, vocab_size: u64) -> Option<f64> {
    if T::IS_FLOAT || vocab_size == 0 {
        return None;
    }
    let total = a.len();
    let k = if total <= VOCAB_SCAN_MAX { total } else { VOCAB_SCAN_MAX.min(MAX_SAMPLES.max(4 * vocab_size as usize)) };
    let values = sample(a.as_slice(), k, SEED + 1);
    let mut used = vec![false; vocab_size.min(1 << 32) as usize];
    for v in values {
        let x = v.to_f64();
        if x >= 0.0 && x < vocab_size as f64 {
            used[x as usize] = true;
        }
    }
    Some(used.iter().filter(|&&u| u).count() as f64 / vocab_size as f64)
}

/// Stats of one tensor as stored under its key in `svs_stats.json`.
pub fn array_stats<T: Element>(a: &ArrayD<T>, vocab_size: Option<u64>) -> Value {
    let sampled: Vec<f64> = sample(a.as_slice(), MAX_SAMPLES, SEED).into_iter().map(|x| x.to_f64()).collect();
    let mut v = numeric_entry(T::DTYPE, a.shape(), a.len(), &sampled, T::IS_FLOAT);
    if let (Some(size), Value::Object(m)) = (vocab_size, &mut v) {
        if !a.is_empty() {
            m.insert("vocab_utilization".into(), vocab_utilization(a, size).map(num).unwrap_or(Value::Null));
        }
    }
    v
}

/// Stats for a tensor variant; None for other data.
pub fn tensor_stats(data: &OutputData, vocab_size: Option<u64>) -> Option<Value> {
    match data {
        OutputData::TensorF32(a) => Some(array_stats(a, vocab_size)),
        OutputData::TensorF64(a) => Some(array_stats(a, vocab_size)),
        OutputData::TensorI64(a) => Some(array_stats(a, vocab_size)),
        OutputData::TensorI32(a) => Some(array_stats(a, vocab_size)),
        OutputData::TensorU8(a) => Some(array_stats(a, vocab_size)),
        _ => None,
    }
}

/// Stats of one table column (`<signal>.<column>` entries for csv outputs).
pub fn column_stats(c: &Column) -> Value {
    let n = c.len();
    match c {
        Column::Int64(v) => numeric_entry(
            "int64",
            &[n],
            n,
            &sample(v, MAX_SAMPLES, SEED).iter().map(|&x| x as f64).collect::<Vec<_>>(),
            false,
        ),
        Column::Float64(v) => numeric_entry("float64", &[n], n, &sample(v, MAX_SAMPLES, SEED), true),
        Column::Bool(v) => numeric_entry(
            "bool",
            &[n],
            n,
            &sample(v, MAX_SAMPLES, SEED).iter().map(|&b| if b { 1.0 } else { 0.0 }).collect::<Vec<_>>(),
            false,
        ),
        Column::Str(v) => {
            let idx = sample_indices(n, MAX_SAMPLES, SEED);
            let picked: Vec<&Option<String>> = match &idx {
                Some(i) => i.iter().map(|&k| &v[k]).collect(),
                None => v.iter().collect(),
            };
            let mut m = base_entry("object", &[n], picked.len(), n);
            if !picked.is_empty() {
                let present: Vec<&String> = picked.iter().filter_map(|s| s.as_ref()).collect();
                m.insert("null_ratio".into(), json!(1.0 - present.len() as f64 / picked.len() as f64));
                let mut counts: HashMap<&str, usize> = HashMap::new();
                for s in &present {
                    *counts.entry(s.as_str()).or_insert(0) += 1;
                }
                if let Some(top) = counts.values().copied().max() {
                    m.insert("unique_count".into(), json!(counts.len()));
                    m.insert("top1_fraction".into(), json!(top as f64 / present.len() as f64));
                    m.insert("entropy".into(), json!(entropy_counts(counts.into_values())));
                }
            }
            Value::Object(m)
        }
    }
}

/// Per-column stats keyed by column name.
pub fn table_stats(t: &Table) -> Vec<(String, Value)> {
    t.columns().map(|(name, c)| (name.to_string(), column_stats(c))).collect()
}

// ---- domain thresholds ----------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Threshold {
    stat: &'static str,
    is_min: bool,
    limit: f64,
    severity: &'static str,
}

const fn th(stat: &'static str, is_min: bool, limit: f64, severity: &'static str) -> Threshold {
    Threshold { stat, is_min, limit, severity }
}

fn preset(domain: &str) -> &'static [Threshold] {
    const DEFAULT: [Threshold; 2] = [th("null_ratio", false, 0.5, "warning"), th("entropy", true, 0.1, "warning")];
    const NLP: [Threshold; 3] = [
        th("entropy", true, 6.0, "error"),
        th("vocab_utilization", true, 0.7, "warning"),
        th("null_ratio", false, 0.01, "error"),
    ];
    const IMAGE: [Threshold; 2] = [th("entropy", true, 8.0, "warning"), th("null_ratio", false, 0.001, "error")];
    const TABULAR: [Threshold; 2] =
        [th("null_ratio", false, 0.05, "error"), th("top1_fraction", false, 0.5, "warning")];
    match domain {
        "default" => &DEFAULT,
        "nlp_tokenizer" => &NLP,
        "image_embeddings" => &IMAGE,
        "tabular_features" => &TABULAR,
        _ => &[],
    }
}

/// The default thresholds with the domain's replacing those on the same stat.
fn thresholds_for(domain: &str) -> Vec<Threshold> {
    let mut chosen: Vec<Threshold> = preset("default").to_vec();
    for t in preset(domain) {
        match chosen.iter_mut().find(|c| c.stat == t.stat) {
            Some(c) => *c = *t,
            None => chosen.push(*t),
        }
    }
    chosen
}

/// Findings for one stats entry. `domain_checks == false` applies only the default sanity checks
/// (secondary arrays of a multi-array output with a `primary_array`).
pub(crate) fn evaluate(stats: &Value, signal: &str, key: &str, domain: &str, domain_checks: bool) -> Vec<Finding> {
    let label = if key == signal {
        key.to_string()
    } else {
        format!("{} (array/column '{}')", signal, key.get(signal.len() + 1..).unwrap_or(key))
    };
    let total = stats["total_elements"].as_u64().unwrap_or(0);
    let used = stats["samples_used"].as_u64().unwrap_or(0);
    if total == 0 {
        let mut f =
            Finding::new("stats", "empty_output", "warning", signal, format!("{} is empty (0 elements).", label));
        f.value = Some(0.0);
        return vec![f];
    }
    let mut out = Vec::new();
    let constant = stats["unique_count"].as_u64() == Some(1) && total > 1;
    if constant {
        let mut f = Finding::new(
            "stats",
            "constant_output",
            "warning",
            signal,
            format!(
                "{} is constant: every sampled value is the same ({} samples of {}). Possible collapse or a fill bug.",
                label, used, total
            ),
        );
        f.value = Some(1.0);
        out.push(f);
    }
    let shown_domain = if domain_checks { domain } else { "default" };
    for t in thresholds_for(shown_domain) {
        let value = match stats[t.stat].as_f64() {
            Some(v) => v,
            None => continue,
        };
        if t.stat == "entropy" {
            // A sample of n values cannot exceed log2(n) bits: only judge entropy when it could.
            let checkable = total > 100 && (used as f64) > 4.0 * 2f64.powf(t.limit);
            if !checkable || (constant && t.limit <= 0.1) {
                continue;
            }
        }
        let failed = if t.is_min { value < t.limit } else { value > t.limit };
        if failed {
            let word = if t.is_min { "below the minimum" } else { "above the maximum" };
            let unit = if t.stat == "entropy" { " bits" } else { "" };
            let mut f = Finding::new(
                "stats",
                &format!("{}_{}", t.stat, if t.is_min { "min" } else { "max" }),
                t.severity,
                signal,
                format!(
                    "{}: {} {}{} is {} {}{} (svs.domain '{}').",
                    label,
                    t.stat,
                    fmt_g(value, 4),
                    unit,
                    word,
                    fmt_g(t.limit, 6),
                    unit,
                    shown_domain
                ),
            );
            f.value = Some(value);
            f.threshold = Some(t.limit);
            out.push(f);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_stats_with_nan() {
        let a = ArrayD::from_vec(vec![1.0f32, 2.0, 3.0, f32::NAN]);
        let s = array_stats(&a, None);
        assert_eq!(s["dtype"], "float32");
        assert_eq!(s["shape"], json!([4]));
        assert_eq!(s["mean"], 2.0);
        assert!((s["std"].as_f64().unwrap() - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((s["min"].as_f64(), s["max"].as_f64()), (Some(1.0), Some(3.0)));
        assert_eq!(s["null_ratio"], 0.25);
        assert_eq!(s["samples_used"], 4);
        assert_eq!(s["unique_count"], 3);
        assert!((s["entropy"].as_f64().unwrap() - 3f64.log2()).abs() < 1e-12);
        assert!((s["top1_fraction"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!(s["vocab_utilization"].is_null());
    }

    #[test]
    fn integer_entropy_uses_exact_values() {
        let a = ArrayD::from_vec(vec![0i64, 0, 1, 1, 2, 2, 3, 3]);
        let s = array_stats(&a, Some(8));
        assert_eq!(s["entropy"], 2.0);
        assert_eq!(s["null_ratio"], 0.0);
        assert_eq!(s["top1_fraction"], 0.25);
        assert_eq!(s["vocab_utilization"], 0.5);
        let c = array_stats(&ArrayD::from_vec(vec![7u8; 10]), None);
        assert_eq!(
            (c["entropy"].as_f64(), c["unique_count"].as_u64(), c["std"].as_f64()),
            (Some(0.0), Some(1), Some(0.0))
        );
    }

    #[test]
    fn percentile_matches_numpy() {
        // np.percentile(np.arange(11.0), [0.1, 99.9]) == [0.01, 9.99]
        let xs: Vec<f64> = (0..11).map(|i| i as f64).collect();
        assert!((percentile(&xs, 0.1) - 0.01).abs() < 1e-12);
        assert!((percentile(&xs, 99.9) - 9.99).abs() < 1e-12);
        assert_eq!(percentile(&[5.0], 50.0), 5.0);
    }

    #[test]
    fn float_entropy_uses_clipped_1024_bins() {
        // 1000 evenly spread values: one per bin at most → log2(1000) bits, an outlier cannot squash them.
        let mut v: Vec<f64> = (0..1000).map(|i| i as f64).collect();
        v.push(1e12);
        let s = array_stats(&ArrayD::from_vec(v), None);
        let h = s["entropy"].as_f64().unwrap();
        assert!(h > 9.5 && h < 10.0, "{}", h);
        // A constant float reads 0 bits (exact-value fallback when the percentile range is empty).
        assert_eq!(array_stats(&ArrayD::from_vec(vec![2.5f32; 50]), None)["entropy"], 0.0);
    }

    #[test]
    fn large_tensors_are_sampled_without_aliasing() {
        let rows = 200;
        let mut v = vec![0u8; rows * 768];
        for r in 0..rows {
            v[r * 768] = 1;
        }
        let a = ArrayD::from_shape_vec(vec![rows, 768], v).unwrap();
        let s = array_stats(&a, None);
        assert_eq!(s["samples_used"], MAX_SAMPLES);
        assert_eq!(s["total_elements"], rows * 768);
        assert!(s["mean"].as_f64().unwrap() < 0.01);
        assert_eq!(array_stats(&a, None), s, "sampling is deterministic");
        let idx = sample_indices(100_000, MAX_SAMPLES, SEED).unwrap();
        assert_eq!(idx.len(), MAX_SAMPLES);
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn all_nan_empty_and_infinite() {
        let s = array_stats(&ArrayD::from_vec(vec![f64::NAN; 3]), None);
        assert!(s["mean"].is_null() && s["top1_fraction"].is_null());
        assert_eq!(
            (s["null_ratio"].as_f64(), s["entropy"].as_f64(), s["unique_count"].as_u64()),
            (Some(1.0), Some(0.0), Some(0))
        );
        let e = array_stats(&ArrayD::<f32>::zeros(vec![0]), None);
        assert_eq!((e["samples_used"].as_u64(), e["null_ratio"].as_f64()), (Some(0), Some(0.0)));
        let inf = array_stats(&ArrayD::from_vec(vec![1.0f32, f32::INFINITY]), None);
        assert_eq!((inf["max"].as_f64(), inf["mean"].as_f64()), (Some(1.0), Some(1.0)), "over finite values");
        assert_eq!(inf["unique_count"], 2);
    }

    #[test]
    fn column_stats_for_each_type() {
        let s = column_stats(&Column::Str(vec![Some("a".into()), Some("a".into()), None, Some("b".into())]));
        assert_eq!(s["dtype"], "object");
        assert_eq!(s["null_ratio"], 0.25);
        assert_eq!(s["unique_count"], 2);
        assert!((s["top1_fraction"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(s["mean"].is_null());
        let b = column_stats(&Column::Bool(vec![true, false, true, true]));
        assert_eq!(
            (b["dtype"].as_str(), b["mean"].as_f64(), b["top1_fraction"].as_f64()),
            (Some("bool"), Some(0.75), Some(0.75))
        );
    }

    #[test]
    fn thresholds_by_domain() {
        let constant = array_stats(&ArrayD::from_vec(vec![1.0f32; 500]), None);
        let f = evaluate(&constant, "emb", "emb", "default", true);
        assert_eq!(f.iter().map(|x| x.check.as_str()).collect::<Vec<_>>(), vec!["constant_output"]);
        let mut nan = vec![f32::NAN; 10];
        nan.extend((0..90).map(|i| i as f32));
        let s = array_stats(&ArrayD::from_vec(nan), None);
        let f = evaluate(&s, "emb", "emb", "image_embeddings", true);
        let null = f.iter().find(|x| x.check == "null_ratio_max").unwrap();
        assert_eq!(null.severity, "error");
        assert_eq!(null.message, "emb: null_ratio 0.1 is above the maximum 0.001 (svs.domain 'image_embeddings').");
        let f = evaluate(&s, "emb", "emb.mask", "image_embeddings", false);
        assert!(f.is_empty(), "secondary arrays get only the default checks: {:?}", f);
        let empty = array_stats(&ArrayD::<u8>::zeros(vec![0]), None);
        assert_eq!(
            evaluate(&empty, "x", "x.ids", "default", true)[0].message,
            "x (array/column 'ids') is empty (0 elements)."
        );
    }
}
