//! The `prompts` workload on the simulator: synthetic lengths drawn as declared, the same
//! prompts for every arm of a round, a shared prefix the server caches; prompt files read
//! and refused where they are wrong.

use std::collections::BTreeMap;
use std::path::Path;

use harness::scenario::Scenario;

use crate::common::run_scenario;

fn scenario(workload: &str) -> String {
    format!(
        "name: p\nseed: 8\nmodel: m:latest\nserver: {{ backend: sim }}\nsim: {{ decode_tps: 2000, load_ms: 10 }}\nworkload: {workload}\nprime_on_switch: false\nvariants: {{ baseline: {{}}, warm: {{ options: {{ temperature: 1.0 }} }} }}\narms: [[baseline], [warm]]\ntrials: 2\nwarmup: 0\n"
    )
}

fn run(dir: &Path, yaml: &str) -> harness::results::RunRecords {
    harness::results::load(&run_scenario(dir, yaml)).unwrap()
}

#[test]
fn synthetic_prompts_have_their_drawn_lengths_and_are_the_same_for_every_arm_of_a_round() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        dir.path(),
        &scenario(
            "{ kind: prompts, requests: 6, synthetic: { input_tokens: { uniform: [40, 60] }, output_tokens: { uniform: [5, 9] }, shared_prefix_tokens: 32 } }",
        ),
    );
    let calls: Vec<_> = r.calls.iter().filter(|c| c.step == "prompt").collect();
    assert_eq!(calls.len(), 2 * 2 * 6);
    assert!(calls.iter().all(|c| c.ok));
    for c in &calls {
        assert!((40..=60).contains(&c.prompt_tokens.unwrap()), "{c:?}");
        assert!((5..=9).contains(&c.output_tokens.unwrap()), "{c:?}");
    }
    // Per round, both arms sent the same lengths in the same order.
    let mut by: BTreeMap<(u32, String), Vec<(u64, u64)>> = BTreeMap::new();
    let mut sorted = calls.clone();
    sorted.sort_by(|a, b| a.offset_ms.total_cmp(&b.offset_ms));
    for c in &sorted {
        by.entry((c.round, c.variant.to_string()))
            .or_default()
            .push((c.prompt_tokens.unwrap(), c.output_tokens.unwrap()));
    }
    for round in 0..2 {
        let a = &by[&(round, "baseline".to_owned())];
        assert_eq!(a, &by[&(round, "warm".to_owned())], "round {round}");
        assert!(
            a.windows(2).any(|w| w[0] != w[1]),
            "lengths are drawn, not fixed: {a:?}"
        );
    }
    // Every prompt after the first starts with the same 32 tokens: two cached blocks.
    assert!(
        sorted[1..]
            .iter()
            .all(|c| c.cached_prompt_tokens.unwrap() >= 32)
    );
}

#[test]
fn prompt_files_are_read_as_jsonl_or_a_csv_column() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("p.jsonl");
    std::fs::write(
        &jsonl,
        "{\"prompt\": \"Say hello.\"}\n{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Why?\"}]}\n",
    )
    .unwrap();
    let r = run(
        dir.path(),
        &scenario(&format!(
            "{{ kind: prompts, prompts: {}, requests: 3, max_tokens: 4 }}",
            jsonl.display()
        )),
    );
    assert!(
        r.calls
            .iter()
            .all(|c| c.ok && c.output_tokens.unwrap() <= 4)
    );
    assert_eq!(r.calls.iter().filter(|c| c.step == "prompt").count(), 12);

    let csv = dir.path().join("q.csv");
    std::fs::write(&csv, "id,question\n1,What is a token?\n").unwrap();
    let ok = scenario(&format!(
        "{{ kind: prompts, prompts: {}, column: question }}",
        csv.display()
    ));
    assert!(Scenario::parse(&ok, dir.path(), None).is_ok());
    let problems = Scenario::parse(
        &ok.replace("column: question", "column: q"),
        dir.path(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        (problems[0].field.as_str(), problems[0].line),
        ("workload.prompts", Some(6))
    );
    assert!(
        problems[0]
            .message
            .ends_with("no column `q` (columns: id, question)"),
        "{problems:?}"
    );
    let problems =
        Scenario::parse(&ok.replace(", column: question", ""), dir.path(), None).unwrap_err();
    assert!(
        problems[0].message.contains("needs `column`"),
        "{problems:?}"
    );

    std::fs::write(&jsonl, "{\"prompt\": \"a\"}\n{\"text\": \"b\"}\n").unwrap();
    let bad = scenario(&format!(
        "{{ kind: prompts, prompts: {} }}",
        jsonl.display()
    ));
    let problems = Scenario::parse(&bad, dir.path(), None).unwrap_err();
    assert!(
        problems[0]
            .message
            .contains("p.jsonl: line 2: unknown field `text`"),
        "{problems:?}"
    );

    let both = scenario(
        "{ kind: prompts, synthetic: { input_tokens: 0, output_tokens: 5 }, max_tokens: 3 }",
    );
    let problems = Scenario::parse(&both, dir.path(), None).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        ["workload.synthetic.input_tokens", "workload.max_tokens"],
        "{problems:?}"
    );
}
