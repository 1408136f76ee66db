//! Cost of one comparison (variant against baseline on one metric), dominated by the BCa
//! bootstrap's 10,000 resamples, and of summarizing a whole results folder.
//!
//! Run: `cargo bench --bench stats`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::rng::Rng;
use harness::stats::bootstrap::DEFAULT_RESAMPLES;
use harness::stats::{CONFIDENCE, Sample, compare};

fn sample(rng: &mut Rng, n: usize, median: f64) -> Sample {
    Sample::new((0..n).map(|_| median * rng.lognormal_factor(0.1))).expect("finite values")
}

fn comparisons(c: &mut Criterion) {
    let mut rng = Rng::new(1);
    for n in [5, 10, 40] {
        let (x, y) = (sample(&mut rng, n, 120.0), sample(&mut rng, n, 100.0));
        c.bench_function(&format!("compare n={n} vs n={n}"), |b| {
            b.iter(|| {
                compare(
                    black_box(&x),
                    black_box(&y),
                    CONFIDENCE,
                    DEFAULT_RESAMPLES,
                    7,
                )
            })
        });
    }
}

fn summarize_fixture(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/results-fixture");
    let run = harness::results::load(&dir).expect("fixture");
    c.bench_function("summarize results fixture (10 comparisons)", |b| {
        b.iter(|| harness::summary::summarize(black_box(&run.meta), &run.calls, &run.trials))
    });
}

criterion_group!(benches, comparisons, summarize_fixture);
criterion_main!(benches);
