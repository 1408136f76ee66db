//! The JSON Schema editors use: generated from the parser's own types, committed where
//! the shipped scenarios point at it, and every shipped scenario valid against it.

use harness::scenario::Scenario;

use crate::common::{harness, repo_root};

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&Scenario::json_schema()).expect("a valid JSON Schema")
}

/// A YAML document as JSON.
fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("YAML")
}

#[test]
fn the_committed_schema_is_the_one_the_parser_generates() {
    let committed = std::fs::read_to_string(repo_root().join("scenarios/scenario.schema.json"))
        .expect("scenarios/scenario.schema.json");
    let out = harness().arg("schema").assert().success();
    let printed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        committed == printed,
        "scenarios/scenario.schema.json is stale: run `harness schema > scenarios/scenario.schema.json`"
    );
}

#[test]
fn every_shipped_scenario_names_the_schema_and_is_valid_against_it() {
    let validator = validator();
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=./scenario.schema.json"),
            "{}",
            path.display()
        );
        let errors: Vec<String> = validator
            .iter_errors(&yaml(&text))
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        // The parser agrees.
        Scenario::load(&path, None).unwrap_or_else(|e| panic!("{e}"));
        checked += 1;
    }
    assert!(checked >= 7, "{checked} scenarios");
}

#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let validator = validator();
    let good = "name: s\nmodel: m\nworkload: { kind: prompts, synthetic: { input_tokens: 8, output_tokens: { uniform: [4, 8] } } }\nvariants: { baseline: { options: { num_ctx: 512 } } }\nload: { concurrency: [1, 4], requests: 8 }\nslo: { ttft_ms: 200 }\ntrials: 2\n";
    assert!(validator.is_valid(&yaml(good)));
    for bad in [
        good.replace("concurrency:", "concurency:"), // unknown key
        good.replace("kind: prompts", "kind: promts"), // unknown kind
        good.replace("trials: 2", "trials: two"),    // wrong type
        good.replace("[4, 8]", "[4]"),               // a bound missing
        good.replace("name: s\n", ""),               // required key missing
    ] {
        assert!(!validator.is_valid(&yaml(&bad)), "{bad}");
        assert!(
            Scenario::parse(&bad, std::path::Path::new("."), None).is_err(),
            "{bad}"
        );
    }
}
