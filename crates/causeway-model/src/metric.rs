//! Metric rows (DESIGN.md, section 4): what the agent aggregates its spans
//! into, per key and per window of 1 s or 1 min, and the latency sketch
//! that makes their quantiles mergeable.
//!
//! The rows themselves are the wire's [`crate::wire::MetricRow`]; this module
//! holds what both the agent (which fills them) and the server (which merges
//! them at query time) must agree on: the windows ([`Granularity`]), the two
//! kinds of row ([`RowKind`]) and the sketch's buckets ([`LatencySketch`]).
//!
//! Everything in a row merges: counts and sums add, maxima take the
//! larger, and sketches add bucket by bucket. So a store may hold several
//! rows for one key and window (a late span makes a second row), and a
//! query over any range, step or grouping is a merge of rows.

use serde::Serialize;

/// A window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    /// 1 s windows, kept a short while (a day by default).
    Second,
    /// 1 min windows, kept as long as spans.
    Minute,
}

impl Granularity {
    pub const ALL: [Granularity; 2] = [Granularity::Second, Granularity::Minute];

    /// The window length in seconds (what rows carry: `granularity_s`).
    pub fn seconds(self) -> u32 {
        match self {
            Granularity::Second => 1,
            Granularity::Minute => 60,
        }
    }

    pub fn micros(self) -> u64 {
        self.seconds() as u64 * 1_000_000
    }

    pub fn from_seconds(s: u32) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.seconds() == s)
    }

    /// `1s` or `1m`, as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Second => "1s",
            Granularity::Minute => "1m",
        }
    }

    pub fn from_name(name: &str) -> Option<Granularity> {
        Granularity::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// The start of the window holding `time_us`.
    pub fn window(self, time_us: u64) -> u64 {
        time_us - time_us % self.micros()
    }
}

/// What a metric row is keyed by. The number is stored: never renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowKind {
    /// One side (the observed one: the server for server-side spans, the
    /// client for client-side spans) and the endpoint; the other side's
    /// tags are 0. Per service, per process and per endpoint figures.
    Node = 1,
    /// Both sides, client and server; the endpoint is 0. Per edge figures,
    /// the service map.
    Edge = 2,
}

impl RowKind {
    pub fn code(self) -> u32 {
        self as u32
    }

    pub fn from_code(code: u32) -> Option<RowKind> {
        [RowKind::Node, RowKind::Edge]
            .into_iter()
            .find(|k| k.code() == code)
    }
}

/// Relative accuracy of the sketch's quantiles: an estimate is within 2 %
/// of the true value at its rank.
pub const SKETCH_ACCURACY: f64 = 0.02;
/// The ratio between bucket bounds: (1 + a) / (1 - a).
pub const SKETCH_GAMMA: f64 = (1.0 + SKETCH_ACCURACY) / (1.0 - SKETCH_ACCURACY);

/// A mergeable quantile sketch of latencies in microseconds, after
/// DDSketch (Masson, Rim and Lee, VLDB 2019): bucket `i` counts values in
/// `(γ^(i-1), γ^i]` (bucket 0 also holds 0 and 1 µs), so any value in a
/// bucket is within [`SKETCH_ACCURACY`] of the bucket's representative
/// `2γ^i / (γ + 1)`. Merging adds counts bucket by bucket, which is exact:
/// the merge of two sketches is the sketch of both inputs together.
///
/// With γ ≈ 1.041 every `u64` fits in fewer than 1 200 buckets, so no
/// bucket ever needs collapsing; a real latency distribution fills a few
/// dozen. Kept dense (an offset and a run of counts) while aggregating,
/// sent and stored sparse (ascending keys and their counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencySketch {
    offset: u32,
    counts: Vec<u64>,
}

/// 1 / ln γ.
fn inv_ln_gamma() -> f64 {
    1.0 / SKETCH_GAMMA.ln()
}

impl LatencySketch {
    pub fn new() -> LatencySketch {
        LatencySketch::default()
    }

    /// The bucket of a value.
    pub fn key(value_us: u64) -> u32 {
        if value_us <= 1 {
            return 0;
        }
        ((value_us as f64).ln() * inv_ln_gamma()).ceil().max(0.0) as u32
    }

    /// The value a bucket stands for.
    pub fn value(key: u32) -> f64 {
        2.0 * SKETCH_GAMMA.powi(key as i32) / (SKETCH_GAMMA + 1.0)
    }

    pub fn add(&mut self, value_us: u64) {
        self.add_key(Self::key(value_us), 1);
    }

    /// Adds `count` to bucket `key`.
    pub fn add_key(&mut self, key: u32, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.offset = key;
            self.counts.push(count);
            return;
        }
        if key < self.offset {
            let grow = (self.offset - key) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = key;
        }
        let i = (key - self.offset) as usize;
        if i >= self.counts.len() {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += count;
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &LatencySketch) {
        for (k, c) in other.buckets() {
            self.add_key(k, c);
        }
    }

    /// Adds sparse buckets (`keys` and `counts` side by side, as rows carry
    /// them); extra entries of the longer list are ignored.
    pub fn merge_sparse(&mut self, keys: &[u32], counts: &[u64]) {
        for (k, c) in keys.iter().zip(counts) {
            self.add_key(*k, *c);
        }
    }

    /// The non-empty buckets, ascending: (key, count).
    pub fn buckets(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (self.offset + i as u32, *c))
    }

    /// The sparse form rows carry: ascending keys and their counts.
    pub fn to_sparse(&self) -> (Vec<u32>, Vec<u64>) {
        self.buckets().unzip()
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|c| *c == 0)
    }

    /// The `q` quantile (0 ≤ q ≤ 1) in microseconds, rounded: within
    /// [`SKETCH_ACCURACY`] of the value at rank ⌊q·(n − 1)⌋ of the sorted
    /// values (0-based). None for an empty sketch.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (n - 1) as f64).floor() as u64;
        let mut seen = 0;
        for (k, c) in self.buckets() {
            seen += c;
            if seen > rank {
                return Some(Self::value(k));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value at rank ⌊q(n−1)⌋, the sketch's reference.
    fn exact(sorted: &[u64], q: f64) -> u64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn within(estimate: f64, truth: u64) -> bool {
        (estimate - truth as f64).abs() <= SKETCH_ACCURACY * truth as f64 + 1e-6 * truth as f64
            || truth <= 1 && estimate <= 1.0
    }

    #[test]
    fn every_value_is_within_the_accuracy_of_its_bucket() {
        let mut v = 1u64;
        while v < u64::MAX / 4 {
            for x in [v, v + 1, v / 2 * 3] {
                let k = LatencySketch::key(x);
                assert!(within(LatencySketch::value(k), x), "{x}: key {k}");
            }
            v += v / 4 + 1;
        }
        assert!(LatencySketch::key(u64::MAX) < 1200);
        assert_eq!(LatencySketch::key(0), 0);
        assert_eq!(LatencySketch::key(1), 0);
    }

    #[test]
    fn quantiles_are_within_the_accuracy_at_their_rank() {
        // A skewed load: mostly fast, some slow, a few very slow.
        let mut values: Vec<u64> = (0..10_000u64)
            .map(|i| match i % 100 {
                0..=79 => 200 + (i * 7919) % 300,
                80..=98 => 2_000 + (i * 104_729) % 8_000,
                _ => 250_000 + i,
            })
            .collect();
        let mut s = LatencySketch::new();
        for v in &values {
            s.add(*v);
        }
        values.sort_unstable();
        assert_eq!(s.count(), 10_000);
        for q in [0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let est = s.quantile(q).unwrap();
            let truth = exact(&values, q);
            assert!(within(est, truth), "q {q}: {est} vs {truth}");
        }
        assert_eq!(LatencySketch::new().quantile(0.5), None);
    }

    #[test]
    fn merging_is_exact() {
        let (mut a, mut b, mut both) = (
            LatencySketch::new(),
            LatencySketch::new(),
            LatencySketch::new(),
        );
        for i in 0..5000u64 {
            let v = (i * 7) % 900 + 3;
            if i % 3 == 0 {
                a.add(v * 100);
            } else {
                b.add(v);
            }
            both.add(if i % 3 == 0 { v * 100 } else { v });
        }
        let mut m = a.clone();
        m.merge(&b);
        assert_eq!(m.to_sparse(), both.to_sparse());
        // Sparse round trip, in any order of merging.
        let (k, c) = b.to_sparse();
        let mut n = LatencySketch::new();
        n.merge_sparse(&k, &c);
        n.merge(&a);
        assert_eq!(n.to_sparse(), both.to_sparse());
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(m.quantile(q), both.quantile(q));
        }
        let (keys, _) = m.to_sparse();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "ascending keys");
    }

    #[test]
    fn windows() {
        assert_eq!(Granularity::Second.window(1_234_567), 1_000_000);
        assert_eq!(Granularity::Minute.window(61_000_001), 60_000_000);
        for g in Granularity::ALL {
            assert_eq!(Granularity::from_seconds(g.seconds()), Some(g));
            assert_eq!(Granularity::from_name(g.as_str()), Some(g));
        }
        assert_eq!(RowKind::from_code(2), Some(RowKind::Edge));
        assert_eq!(RowKind::from_code(0), None);
    }
}
