//! Scenario files: the pre-registered experiment, parsed and validated.
//!
//! This module sits at the bottom of the crate's layers (see `ARCHITECTURE.md`): it holds
//! the configuration and the vocabulary every layer above shares, and imports nothing
//! that runs. Loading happens in two layers, each in its own file:
//!
//! - `raw.rs` mirrors the YAML exactly: unknown keys are rejected and every value that
//!   needs a semantic check is wrapped in [`Spanned`](serde_saphyr::Spanned);
//! - the checker (`check.rs`, `check_gates.rs`) turns it into the validated types
//!   (`types.rs`): plain types, defaults filled in, names resolved, relative paths made
//!   absolute against the scenario file;
//! - `problem.rs` says where each problem is, also for errors serde stops at.
//!
//! The shared vocabulary lives here too: [`Metric`] and its [`Direction`], gate
//! declarations ([`Gate`], [`Bound`]) and the simulator's parameters ([`SimConfig`],
//! [`Fault`]).

mod check;
mod check_gates;
mod check_load;
mod check_matrix;
mod check_workload;
mod gate;
mod metric;
mod problem;
pub mod prompts;
mod raw;
mod sim;
pub mod trace;
mod types;

use std::path::Path;

pub use check_load::MAX_SCHEDULED;
pub use gate::{Bound, DEFAULT_ALPHA, DEFAULT_MIN_TRIALS, Gate, percent, threshold_text};
pub use metric::{Direction, Metric};
pub use problem::{Problem, ScenarioError};
pub use sim::{Fault, FaultKind, SimConfig};
pub use trace::{Trace, TraceFormat};
pub use types::{
    Agent, Arm, Arrival, BackendKind, DEFAULT_API_KEY_ENV, DEFAULT_OLLAMA_URL, DEFAULT_OPENAI_URL,
    LATE_MS, Load, LoadLevel, ModelOptions, OllamaApi, Order, ResponseLimits, Retries, Scenario,
    ServerConfig, Slo, Split, Stopping, ToolStep, Variant, Wait, Workload, WorkloadKind,
    is_safe_name, normalize_ollama_host,
};

use check::Checker;
use problem::{blank_block, scalar_at, yaml_path_at, yaml_problem};
use raw::RawScenario;

/// Largest scenario file we read; anything bigger is not a hand-written experiment.
const MAX_SCENARIO_BYTES: u64 = 1 << 20;

impl Scenario {
    /// Reads, parses and validates a scenario file. `ollama_host` is the value of
    /// `OLLAMA_HOST`, if set, used when the scenario names no URL.
    pub fn load(path: &Path, ollama_host: Option<&str>) -> Result<Scenario, ScenarioError> {
        let fail = |message: String| ScenarioError {
            file: path.to_owned(),
            problems: vec![Problem {
                line: None,
                column: None,
                field: String::new(),
                message,
            }],
        };
        let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        if meta.len() > MAX_SCENARIO_BYTES {
            return Err(fail(format!(
                "is {} bytes; a scenario may be at most {MAX_SCENARIO_BYTES}",
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        Scenario::parse(&text, base_dir, ollama_host).map_err(|problems| ScenarioError {
            file: path.to_owned(),
            problems,
        })
    }

    /// Parses and validates scenario text; relative paths resolve against `base_dir`.
    ///
    /// serde stops at the first error, so to report several at once a key that is unknown
    /// or has a value of the wrong type is blanked out (its lines, keeping line numbers)
    /// and the text parsed again. A required key blanked this way ends the search, since
    /// what follows would only be "missing field" about the problem already reported.
    pub fn parse(
        text: &str,
        base_dir: &Path,
        ollama_host: Option<&str>,
    ) -> Result<Scenario, Vec<Problem>> {
        const MAX_SYNTAX_PROBLEMS: usize = 20;
        let mut text = text.to_owned();
        let mut problems: Vec<Problem> = Vec::new();
        let mut blanked: Vec<String> = Vec::new();
        let mut scenario = None;
        for _ in 0..MAX_SYNTAX_PROBLEMS {
            match serde_saphyr::from_str::<RawScenario>(&text) {
                Ok(raw) => {
                    let mut check = Checker::default();
                    scenario = Some(check.scenario(raw, base_dir, ollama_host));
                    problems.extend(check.problems);
                    break;
                }
                Err(e) => {
                    let mut problem = yaml_problem(&e);
                    if problem.message.starts_with("wrong type") {
                        let found = problem
                            .line
                            .zip(problem.column)
                            .and_then(|(l, c)| scalar_at(&text, l, c));
                        if let Some(found) = found {
                            problem.message = format!("{}, not `{found}`", problem.message);
                        }
                    }
                    if problem.message.starts_with("missing field") {
                        // Reported at the end of its mapping: there is no line to blank,
                        // and parsing further would only repeat it. A field missing
                        // because we blanked it was reported already.
                        if !blanked.contains(&problem.field) {
                            problems.push(problem);
                        }
                        break;
                    }
                    if problem.field.is_empty() {
                        if let Some(line) = problem.line {
                            problem.field = yaml_path_at(&text, line as usize);
                        }
                    }
                    let line = problem.line;
                    let leaf = problem
                        .field
                        .rsplit('.')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    problems.push(problem);
                    match line.and_then(|l| blank_block(&mut text, l as usize)) {
                        Some(()) => blanked.push(leaf),
                        None => break,
                    }
                }
            }
        }
        problems.sort_by_key(|p| (p.line, p.column));
        match scenario {
            Some(s) if problems.is_empty() => Ok(s),
            _ => Err(problems),
        }
    }

    /// The JSON Schema of scenario files, generated from the types the parser reads them
    /// into, so it cannot drift from what `harness run` accepts (editors use it to
    /// complete and check scenarios; semantic rules, like names that must exist, are
    /// the checker's).
    pub fn json_schema() -> serde_json::Value {
        let mut schema =
            serde_json::to_value(schemars::schema_for!(RawScenario)).unwrap_or_default();
        if let Some(map) = schema.as_object_mut() {
            map.insert("title".into(), "harness scenario".into());
            map.insert(
                "description".into(),
                "A pre-registered experiment for `harness run`: the server, the variants under test, the arms launched together, trials, order, load levels and gates.".into(),
            );
        }
        schema
    }

    /// Variant by name; names were checked at load.
    pub fn variant(&self, name: &str) -> &Variant {
        &self.variants[name]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn data_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios")
    }

    const GOOD: &str = r#"
name: t
model: m:latest
workload: { kind: agent_report, data_dir: data }
agents:
  a: { persona: "You are A." }
  b: { persona: "You are B.", consumes: a }
variants:
  baseline: {}
  fast:
    options: { num_ctx: 512, temperature: 1.0 }
arms: [[baseline], [fast], [baseline, fast]]
trials: 3
"#;

    #[test]
    fn good_scenario_parses_with_defaults() {
        let s = Scenario::parse(GOOD, &data_dir(), None).expect("valid");
        assert_eq!(s.server.url, DEFAULT_OLLAMA_URL);
        assert_eq!(s.server.backend, BackendKind::Ollama);
        assert_eq!(s.order, Order::Interleaved);
        assert_eq!(s.warmup, 1);
        assert!(s.variant("baseline").options.is_empty());
        assert_eq!(s.variant("fast").options.num_ctx, Some(512));
        assert_eq!(s.arms[2].name, "baseline+fast");
        assert_eq!(
            s.agents.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn baseline_is_named_or_found() {
        let s = Scenario::parse(GOOD, &data_dir(), None).expect("valid");
        assert_eq!(s.baseline, "baseline");
        let named = GOOD.replace("trials: 3", "trials: 3\nbaseline: fast");
        assert_eq!(
            Scenario::parse(&named, &data_dir(), None).unwrap().baseline,
            "fast"
        );
        let unknown = GOOD.replace("trials: 3", "trials: 3\nbaseline: fsat");
        let problems = Scenario::parse(&unknown, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].field, "baseline");
        assert!(problems[0].message.contains("unknown variant `fsat`"));
        let unnamed = GOOD
            .replace("  baseline: {}", "  slow: {}")
            .replace("[[baseline], [fast], [baseline, fast]]", "[[slow], [fast]]");
        let problems = Scenario::parse(&unnamed, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].field, "baseline");
        assert_eq!(problems[0].line, Some(9));
    }

    #[test]
    fn gates_parse_with_defaults_and_report_mistakes_where_they_are() {
        let with_gates = GOOD.replace(
            "trials: 3",
            "trials: 3
gates:
  - { metric: decode_tps, variant: fast, tolerance: 5% }
  - { metric: ttft_ms, variant: fast, tolerance: 0.1, alpha: 0.01, min_trials: 8 }
  - { metric: e2e_tps, variant: fast, direction: higher, accept_confounded: true }",
        );
        let s = Scenario::parse(&with_gates, &data_dir(), None).expect("valid");
        let exprs: Vec<String> = s.gates.iter().map(|g| g.expression()).collect();
        assert_eq!(
            exprs,
            [
                "decode_tps:fast>=baseline-5%",
                "ttft_ms:fast<=baseline+10%",
                "e2e_tps:fast>=baseline"
            ]
        );
        assert!(s.gates[2].accept_confounded && !s.gates[0].accept_confounded);
        assert_eq!((s.gates[1].alpha, s.gates[1].min_trials), (0.01, 8));
        assert_eq!(s.gates[0].min_trials, DEFAULT_MIN_TRIALS);

        let bad = GOOD.replace(
            "trials: 3",
            "trials: 3
gates:
  - { metric: decode, variant: fast }
  - { metric: decode_tps, variant: fsat }
  - { metric: decode_tps, variant: fast, tolerance: 5 }
  - { metric: decode_tps, variant: fast, alpha: 0.9 }
  - { metric: decode_tps, variant: fast, arm: nope }
  - { metric: e2e_tps, variant: fast, direction: lower }",
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "gates[0].metric",
                "gates[1].variant",
                "gates[2].tolerance",
                "gates[3].alpha",
                "gates[4].arm",
                "gates[5].direction"
            ],
            "{problems:?}"
        );
        assert!(
            problems[5]
                .message
                .contains("would fail when the variant improves"),
            "{}",
            problems[5].message
        );
        assert!(problems[0].message.contains("unknown metric `decode`"));
        assert!(problems.iter().all(|p| p.line.is_some()));
        assert_eq!(problems[4].line, Some(problems[0].line.unwrap() + 4));
    }

    #[test]
    fn openai_rejects_options_it_cannot_send_unless_told_to_ignore_them() {
        let openai = GOOD.replace(
            "model: m:latest",
            "model: m:latest\nserver: { backend: openai, url: http://127.0.0.1:8088 }",
        );
        let problems = Scenario::parse(&openai, &data_dir(), None).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].field, "variants.fast.options.num_ctx");
        assert!(
            problems[0]
                .message
                .contains("cannot send `num_ctx` per request")
        );
        assert!(problems[0].message.contains("ignore_options"));
        let ignored = openai.replace(
            "url: http://127.0.0.1:8088 }",
            "url: http://127.0.0.1:8088, ignore_options: [num_ctx] }",
        );
        let s = Scenario::parse(&ignored, &data_dir(), None).expect("valid when ignored");
        assert_eq!(s.server.backend, BackendKind::Openai);
        assert_eq!(s.server.ignore_options, ["num_ctx"]);
        assert_eq!(s.server.api_key_env, DEFAULT_API_KEY_ENV);
        // Chosen on the command line instead: the same check, without a line.
        let mut ollama = Scenario::parse(GOOD, &data_dir(), None).unwrap();
        assert!(ollama.check_backend().is_ok());
        ollama.server.backend = BackendKind::Openai;
        assert!(
            ollama
                .check_backend()
                .unwrap_err()
                .contains("variant `fast`")
        );
        let bad = openai.replace(
            "url: http://127.0.0.1:8088 }",
            "url: http://x, api_key_env: sk-123 }",
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert!(problems.iter().any(|p| p.field == "server.api_key_env"));
    }

    #[test]
    fn several_servers_are_listed_once_each_and_never_beside_url() {
        let with =
            |server: &str| GOOD.replace("trials: 3", &format!("trials: 3\nserver: {server}"));
        let s = Scenario::parse(
            &with("{ urls: [\"http://a:11434/\", \"http://b:11434\"] }"),
            &data_dir(),
            None,
        )
        .expect("valid");
        assert_eq!(s.server.urls, ["http://a:11434", "http://b:11434"]);
        assert_eq!(s.server.url, "http://a:11434");
        assert_eq!(s.server.servers(), ["http://a:11434", "http://b:11434"]);
        let problem = |server: &str| {
            let problems = Scenario::parse(&with(server), &data_dir(), None).unwrap_err();
            assert_eq!(problems[0].field, "server.urls", "{problems:?}");
            // `server:` is the line after `trials: 3`, the 14th of the file.
            assert_eq!(problems[0].line, Some(14), "{problems:?}");
            problems[0].message.clone()
        };
        assert!(
            problem("{ url: \"http://a:1\", urls: [\"http://b:1\", \"http://c:1\"] }")
                .contains("not both")
        );
        assert!(problem("{ urls: [\"http://b:1\"] }").contains("two servers or more"));
        assert!(problem("{ urls: [\"http://b:1\", \"http://b:1/\"] }").contains("listed twice"));
        assert!(problem("{ urls: [\"http://b:1\", \"b:2\"] }").contains("http://"));
        assert!(
            problem("{ backend: sim, urls: [\"http://b:1\", \"http://c:1\"] }")
                .contains("harness sim-server")
        );
    }

    #[test]
    fn ollama_host_is_the_default_url() {
        let s = Scenario::parse(GOOD, &data_dir(), Some("0.0.0.0:11500")).expect("valid");
        assert_eq!(s.server.url, "http://127.0.0.1:11500");
        assert_eq!(normalize_ollama_host("gpu-box"), "http://gpu-box:11434");
        assert_eq!(
            normalize_ollama_host("https://x.example/"),
            "https://x.example:443"
        );
    }

    #[test]
    fn typo_key_names_line_column_and_field() {
        let bad = GOOD.replace("trials: 3", "trails: 3\ntrials: 3");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].field, "trails");
        assert_eq!(problems[0].line, Some(13));
        assert_eq!(problems[0].column, Some(1));
    }

    #[test]
    fn typo_wrong_type_and_bad_range_are_reported_together() {
        let bad = format!(
            "{}warmup: lots\nordre: random\n",
            GOOD.replace("num_ctx: 512", "num_ctx: 0")
        );
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let found: Vec<(&str, Option<u64>, Option<u64>)> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.line, p.column))
            .collect();
        assert_eq!(
            found,
            [
                ("variants.fast.options.num_ctx", Some(11), Some(25)),
                ("warmup", Some(14), Some(9)),
                ("ordre", Some(15), Some(1)),
            ]
        );
        assert!(
            problems[1].message.contains("wrong type"),
            "{}",
            problems[1].message
        );
    }

    #[test]
    fn wrong_types_say_what_was_expected_and_what_was_found() {
        for (from, to, expected) in [
            (
                "temperature: 1.0",
                "temperature: hot",
                "wrong type: expected a number, not `hot`",
            ),
            (
                "trials: 3",
                "trials: many",
                "expected a whole number ≥ 0 (u32), not `many`",
            ),
            (
                "trials: 3",
                "trials: 3\nprime_on_switch: maybe",
                "expected true or false, not `maybe`",
            ),
        ] {
            let bad = GOOD.replace(from, to);
            let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
            assert!(problems[0].message.contains(expected), "{problems:?}");
        }
    }

    #[test]
    fn wrong_type_has_location() {
        let bad = GOOD.replace("trials: 3", "trials: many");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert_eq!(problems[0].line, Some(13));
        assert!(problems[0].column.is_some());
    }

    #[test]
    fn range_and_reference_errors_are_all_reported_in_file_order() {
        let bad = GOOD
            .replace(
                "num_ctx: 512, temperature: 1.0",
                "num_ctx: 0, temperature: -0.5",
            )
            .replace("[baseline, fast]]", "[baseline, fsat]]");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "variants.fast.options.num_ctx",
                "variants.fast.options.temperature",
                "arms[2][1]"
            ]
        );
        assert_eq!(problems[0].line, Some(11));
        assert_eq!(problems[0].column, Some(25));
        assert_eq!(problems[2].line, Some(12));
        assert!(problems[2].message.contains("unknown variant `fsat`"));
    }

    #[test]
    fn cycles_and_missing_data_dir_are_errors() {
        let bad = GOOD
            .replace("You are A.\" }", "You are A.\", consumes: b }")
            .replace("data_dir: data", "data_dir: nowhere");
        let problems = Scenario::parse(&bad, &data_dir(), None).unwrap_err();
        assert!(problems.iter().any(|p| p.field == "workload.data_dir"));
        assert!(problems.iter().any(|p| p.message.contains("cycle")));
    }
}
