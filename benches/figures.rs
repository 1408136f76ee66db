//! Cost of the figures of the flagship demo (`tests/data/results-demo`: `make demo`'s
//! records, 30 trials, 207 calls, four arms), and of everything `harness report` writes
//! for it: the summary, every figure, `report.html` and the other files.
//!
//! Run: `cargo bench --bench figures`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use harness::report::figure;

fn demo() -> harness::results::RunRecords {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/results-demo");
    harness::results::load(&dir).expect("demo records")
}

fn figures(c: &mut Criterion) {
    let run = demo();
    let samples = harness::summary::RunSamples::of(&run.meta, &run.calls, &run.trials);
    let summary = harness::summary::summarize(&run.meta, &run.calls, &run.trials);
    let n = figure::draw(&summary, &run, &samples)
        .expect("figures")
        .len();
    c.bench_function(&format!("draw all {n} figures of the flagship demo"), |b| {
        b.iter(|| figure::draw(black_box(&summary), black_box(&run), &samples).expect("figures"))
    });
}

fn whole_report(c: &mut Criterion) {
    let run = demo();
    let dir = tempfile::tempdir().expect("temporary folder");
    c.bench_function(
        "harness report on the flagship demo (summary, figures, files)",
        |b| b.iter(|| harness::report::write_records(dir.path(), black_box(&run)).expect("report")),
    );
}

criterion_group!(benches, figures, whole_report);
criterion_main!(benches);
