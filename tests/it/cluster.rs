//! The Slurm example (`examples/slurm/`) in a fake Slurm: `submit.sh` with an `sbatch` that
//! records what it is asked, and the shard and merge scripts run as Slurm would run them,
//! on the simulator. (The Kubernetes manifests are checked against the API schema by
//! `make test-examples`.)

use std::path::Path;
use std::process::Command;

use crate::common::{harness_bin, json, repo_root};

fn script(name: &str) -> std::path::PathBuf {
    repo_root().join("examples/slurm").join(name)
}

#[test]
fn the_slurm_scripts_parse_and_submit_an_array_then_a_merge_that_waits_for_it() {
    for name in ["shard.sbatch", "merge.sbatch", "submit.sh"] {
        let ok = Command::new("bash")
            .arg("-n")
            .arg(script(name))
            .status()
            .unwrap();
        assert!(ok.success(), "{name} does not parse");
    }
    // A fake sbatch: records its arguments, answers job ids as --parsable does.
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = tmp.path().join("sbatch.log");
    let fake = bin.join("sbatch");
    std::fs::write(
        &fake,
        format!(
            "#!/usr/bin/env bash\necho \"$*\" >> {log}\nn=$(wc -l < {log})\necho \"$((4100 + n));cluster\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let out = Command::new("bash")
        .arg(script("submit.sh"))
        .args(["scenarios/chimera.yaml", "results/chimera", "3"])
        .current_dir(tmp.path())
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<&str> = calls.lines().collect();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(
        calls[0].starts_with("--parsable --array=0-2 ")
            && calls[0].contains("shard.sbatch scenarios/chimera.yaml results/chimera"),
        "{calls:?}"
    );
    assert!(
        calls[1].starts_with("--parsable --dependency=afterany:4101 ")
            && calls[1].ends_with("merge.sbatch results/chimera"),
        "{calls:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("merge: job 4102 -> results/chimera/merged")
    );
}

/// Runs `examples/slurm/NAME` as Slurm would, with `env`, in `dir`.
fn sbatch(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) {
    let out = Command::new("bash")
        .arg(script(name))
        .args(args)
        .current_dir(dir)
        .env("HARNESS", harness_bin())
        .env("HARNESS_BACKEND", "sim")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env_remove("OLLAMA_HOST")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_array_tasks_and_the_merge_job_make_one_complete_run() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("s.yaml");
    std::fs::write(
        &scenario,
        "name: slurmed\nseed: 4\nserver: { backend: ollama }\nsim: { load_ms: 5 }\nmodel: m\nworkload: { kind: prompts, synthetic: { input_tokens: 30, output_tokens: 4 } }\nvariants: { baseline: {}, fast: { options: { num_ctx: 1024 } } }\narms: [[baseline], [fast]]\ntrials: 4\nwarmup: 1\n",
    )
    .unwrap();
    let s = scenario.display().to_string();
    // An array numbered from 1, as `--array=1-3` makes it.
    for task in 1..=3 {
        sbatch(
            tmp.path(),
            "shard.sbatch",
            &[&s, "out"],
            &[
                ("SLURM_ARRAY_TASK_ID", task.to_string()),
                ("SLURM_ARRAY_TASK_MIN", "1".to_owned()),
                ("SLURM_ARRAY_TASK_COUNT", "3".to_owned()),
            ],
        );
    }
    sbatch(tmp.path(), "merge.sbatch", &["out"], &[]);
    let merged = tmp.path().join("out/merged");
    let summary: serde_json::Value = json(&merged.join("summary.json"));
    assert_eq!(summary["complete"], true);
    assert_eq!(summary["measured_trials"], 2 * 4);
    let manifest: serde_json::Value = json(&merged.join("manifest.json"));
    assert_eq!(manifest["merged_from"].as_array().unwrap().len(), 3);
}
