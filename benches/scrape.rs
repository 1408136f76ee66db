//! What reading a server's metrics page costs the client, on a page the size of vLLM's
//! (about 1,300 lines: 30 histograms of 20 buckets, counters and gauges, two label sets),
//! and what turning a trial's scrapes into its window costs. At the default interval of
//! 500 ms the scrapes take two pages a second.
//!
//! Run: `cargo bench --bench scrape`.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use harness::telemetry::prometheus;
use harness::telemetry::server::{ServerScrape, window};

/// A page shaped like vLLM's: `vllm:` names, `engine` and `model_name` labels.
fn vllm_page(step: u32) -> String {
    let mut page = String::new();
    let labels = |engine: u32| {
        format!("engine=\"{engine}\",model_name=\"meta-llama/Llama-3.1-8B-Instruct\"")
    };
    for g in [
        "num_requests_running",
        "num_requests_waiting",
        "kv_cache_usage_perc",
    ] {
        writeln!(page, "# HELP vllm:{g} A gauge.\n# TYPE vllm:{g} gauge").unwrap();
        for e in 0..2 {
            writeln!(
                page,
                "vllm:{g}{{{}}} {}",
                labels(e),
                f64::from(step % 7) / 7.0
            )
            .unwrap();
        }
    }
    for c in 0..20 {
        writeln!(
            page,
            "# HELP vllm:counter_{c}_total A counter.\n# TYPE vllm:counter_{c}_total counter"
        )
        .unwrap();
        for e in 0..2 {
            writeln!(
                page,
                "vllm:counter_{c}_total{{{}}} {}.0",
                labels(e),
                step * 10 + c
            )
            .unwrap();
            writeln!(page, "vllm:counter_{c}_created{{{}}} 1.7e+09", labels(e)).unwrap();
        }
    }
    for h in 0..30 {
        writeln!(page, "# HELP vllm:histogram_{h}_seconds A histogram.\n# TYPE vllm:histogram_{h}_seconds histogram").unwrap();
        for e in 0..2 {
            for b in 0..20 {
                writeln!(
                    page,
                    "vllm:histogram_{h}_seconds_bucket{{{},le=\"{}\"}} {}.0",
                    labels(e),
                    0.01 * f64::from(1 << (b % 12)),
                    step + b
                )
                .unwrap();
            }
            writeln!(
                page,
                "vllm:histogram_{h}_seconds_bucket{{{},le=\"+Inf\"}} {}.0",
                labels(e),
                step + 20
            )
            .unwrap();
            writeln!(
                page,
                "vllm:histogram_{h}_seconds_count{{{}}} {}.0",
                labels(e),
                step + 20
            )
            .unwrap();
            writeln!(
                page,
                "vllm:histogram_{h}_seconds_sum{{{}}} {}",
                labels(e),
                f64::from(step) * 0.37
            )
            .unwrap();
        }
    }
    page
}

fn bench(c: &mut Criterion) {
    let page = vllm_page(3);
    let mut group = c.benchmark_group("metrics_page");
    group.throughput(Throughput::Bytes(page.len() as u64));
    group.bench_function(
        format!("parse_vllm_sized_{}_lines", page.lines().count()),
        |b| b.iter(|| black_box(prometheus::parse(black_box(&page)).unwrap())),
    );
    group.finish();

    // A trial of ten scrapes.
    let scrapes: Vec<ServerScrape> = (0..10)
        .map(|i| {
            let p = prometheus::parse(&vllm_page(i)).unwrap();
            ServerScrape {
                offset_ms: f64::from(i) * 500.0,
                server: None,
                counters: p.counters,
                gauges: p.gauges,
            }
        })
        .collect();
    let refs: Vec<&ServerScrape> = scrapes.iter().collect();
    c.bench_function("trial_window_of_10_scrapes", |b| {
        b.iter(|| black_box(window(black_box(&refs)).unwrap()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
