//! Server truth: what the server loaded for each variant (`/api/ps`, `/api/show`) against
//! what the variant asked for, on the simulator, whose loading model is known.

use crate::common::{json, run_scenario};

const OFFLOAD: &str = r#"
name: offload
seed: 11
server: { backend: sim }
sim: { layers: 34, context_length: 8192, weights_mb: 3300, kv_mb_per_1k: 136, load_ms: 20 }
model: m:latest
workload:
  kind: prompts
  synthetic: { input_tokens: 50, output_tokens: 4 }
variants:
  baseline: {}
  full:
    options: { num_gpu: 80, num_ctx: 2048 }
  partial:
    options: { num_gpu: 17, num_ctx: 2048 }
  wide:
    options: { num_ctx: 16384 }
  capped:
    options: { num_ctx: 8192 }
arms: [[baseline], [full], [partial], [wide], [capped], [baseline, partial]]
trials: 2
warmup: 0
"#;

#[test]
fn the_report_says_what_the_server_loaded_and_flags_what_it_did_not_load_as_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let run = run_scenario(tmp.path(), OFFLOAD);
    let summary: serde_json::Value = json(&run.join("summary.json"));
    let rows = summary["loaded"].as_array().unwrap();
    let row = |v: &str| rows.iter().find(|r| r["variant"] == v).unwrap();

    // Every trial where a variant ran alone was observed after priming and after the
    // trial; the mixed arm's trials are not counted for either side.
    for v in ["baseline", "full", "partial", "wide", "capped"] {
        assert_eq!(row(v)["observations"], 4, "{v}");
        assert_eq!(row(v)["states"], 1, "{v}");
        assert_eq!(row(v)["layers"], 34);
    }
    // Memory: weights + KV for the context; VRAM in proportion to the layers offloaded.
    let mb = |ctx: f64| ((3300.0 + 136.0 * ctx / 1024.0) * 1e6_f64).round() as u64;
    assert_eq!(row("full")["size"], mb(2048.0));
    assert_eq!(row("full")["size_vram"], mb(2048.0));
    let partial = row("partial");
    assert_eq!(
        partial["size_vram"],
        ((mb(2048.0) as f64) * 17.0 / 34.0).round() as u64
    );
    assert!(
        partial["words"]
            .as_str()
            .unwrap()
            .contains("partial offload, 17 of 34 layers")
    );
    assert!(partial["words"].as_str().unwrap().contains("50% in VRAM"));
    assert!(partial["flags"].as_array().unwrap().is_empty(), "{partial}");
    // num_gpu 80 on a 34-layer model is full offload, as asked.
    assert!(row("full")["flags"].as_array().unwrap().is_empty());
    // The simulator caps num_ctx at the model's 8192: flagged, with the reason.
    assert_eq!(row("wide")["context_length"], 8192);
    let flags = row("wide")["flags"].to_string();
    assert!(
        flags.contains("asked for num_ctx 16384") && flags.contains("capped"),
        "{flags}"
    );
    assert_eq!(row("capped")["context_length"], 8192);
    assert!(row("capped")["flags"].as_array().unwrap().is_empty());
    // capped and wide asked apart but were loaded alike.
    let warnings = summary["loaded_warnings"].to_string();
    assert!(warnings.contains("capped and wide"), "{warnings}");
    assert_eq!(
        summary["loaded_warnings"].as_array().unwrap().len(),
        1,
        "{warnings}"
    );

    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("## What the server loaded"));
    assert!(
        md.contains("| partial | 17 | 34 | 2048 | 2048 | 3.6 | 50% | 4 | yes |"),
        "{md}"
    );
    assert!(md.contains("**Not loaded as asked:**"));
}
