//! `harness` binary: parse, set up, call the library, map the outcome to an exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use harness::cli::{Action, Cli};
use harness::gate::GateVerdict;
use harness::report::terminal::Terminal;
use tokio_util::sync::CancellationToken;

/// Exit code for errors: bad input, unreachable server.
const EXIT_ERROR: u8 = 2;
/// Exit code when a gate failed.
const EXIT_GATE_FAILED: u8 = 1;
/// Exit code when gates were inconclusive and `--fail-on-inconclusive` was given.
const EXIT_INCONCLUSIVE: u8 = 3;
/// Exit code after Ctrl-C (128 + SIGINT).
const EXIT_INTERRUPTED: u8 = 130;
/// Exit code after SIGTERM (128 + SIGTERM).
const EXIT_TERMINATED: u8 = 143;

/// The exit code of the signal that stopped the run (0 while none has).
static STOPPED_BY: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HARNESS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    harness::backend::install_tls_provider();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let action = cli.into_action(std::io::stderr().is_terminal());
    // Colour only for a person reading a terminal (https://no-color.org).
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let terminal = Terminal { color };
    match runtime.block_on(dispatch(action, terminal)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn dispatch(action: Action, terminal: Terminal) -> anyhow::Result<ExitCode> {
    match action {
        Action::Gate {
            dir,
            options,
            fail_on_inconclusive,
        } => {
            let report = harness::gate::files::gate_dir(&dir, &options)?;
            harness::report::write_gate(&dir, &report)?;
            print!("{}", terminal.gate_text(&report));
            Ok(gate_exit(&report, fail_on_inconclusive))
        }
        Action::Power { dir, options } => {
            let plan = harness::gate::power::plan_dir(&dir, &options)?;
            print!("{}", terminal.power_text(&plan));
            Ok(ExitCode::SUCCESS)
        }
        Action::Merge { dirs, out } => {
            let merged = harness::merge::merge(&dirs, &out)?;
            println!("{}", terminal.text(&merged.summary));
            if let Some(g) = &merged.gate {
                print!("{}", terminal.gate_text(g));
            }
            if !merged.missing.is_empty() {
                let names: Vec<String> = merged.missing.iter().map(u32::to_string).collect();
                println!(
                    "INCOMPLETE: shards {} missing; merged what there is",
                    names.join(", ")
                );
            }
            println!("merged: {}", merged.dir.display());
            Ok(match &merged.gate {
                Some(g) => gate_exit(g, false),
                None => ExitCode::SUCCESS,
            })
        }
        Action::Compare {
            base,
            new,
            force,
            options,
            fail_on_inconclusive,
        } => {
            let report = harness::gate::files::compare_dirs(&base, &new, &options, force)?;
            harness::report::write_gate(&new, &report)?;
            print!("{}", terminal.gate_text(&report));
            Ok(gate_exit(&report, fail_on_inconclusive))
        }
        Action::Report { dir } => {
            let summary = harness::report::write(&dir)?;
            println!("{}", terminal.text(&summary));
            let files: Vec<&str> = harness::report::file_exporters()
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            println!(
                "wrote {}, {}/ in {}",
                files.join(", "),
                harness::report::FIGURES_DIR,
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Validate {
            scenario,
            ollama_host,
        } => {
            println!(
                "{}",
                harness::run::validate(&scenario, ollama_host.as_deref())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::SynthTrace {
            conversations,
            seed,
        } => {
            print!(
                "{}",
                harness::scenario::trace::synthesize(seed, conversations)
            );
            Ok(ExitCode::SUCCESS)
        }
        Action::Schema => {
            let schema = harness::scenario::Scenario::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Action::SimServer { apis, addr, config } => {
            harness::sim::serve_forever(config, addr, apis).await?;
            Ok(ExitCode::SUCCESS)
        }
        Action::Run(config) => {
            let fail_on_inconclusive = config.fail_on_inconclusive;
            let cancel = CancellationToken::new();
            tokio::spawn(watch_interrupts(cancel.clone()));
            let report = harness::run::run(config, cancel).await?;
            println!("{}", terminal.text(&report.summary));
            if let Some(gate) = &report.gate {
                print!("\n{}", terminal.gate_text(gate));
            }
            println!("results: {}", report.dir.display());
            println!("report:  {}", report.dir.join("report.html").display());
            Ok(match &report.gate {
                _ if report.interrupted => {
                    ExitCode::from(match STOPPED_BY.load(std::sync::atomic::Ordering::SeqCst) {
                        0 => EXIT_INTERRUPTED,
                        code => code,
                    })
                }
                Some(gate) => gate_exit(gate, fail_on_inconclusive),
                None => ExitCode::SUCCESS,
            })
        }
    }
}

/// 0 pass, 1 fail, 3 inconclusive when that counts as failure.
fn gate_exit(report: &harness::gate::GateReport, fail_on_inconclusive: bool) -> ExitCode {
    match report.verdict {
        GateVerdict::Pass => ExitCode::SUCCESS,
        GateVerdict::Fail => ExitCode::from(EXIT_GATE_FAILED),
        GateVerdict::Inconclusive if fail_on_inconclusive => ExitCode::from(EXIT_INCONCLUSIVE),
        GateVerdict::Inconclusive => ExitCode::SUCCESS,
    }
}

/// First Ctrl-C (SIGINT) or SIGTERM: start no new trial, let the one in flight finish
/// (each call ends by its timeout at the latest), write what was measured, exit 130 or 143.
/// A second signal: leave at once (every finished record is already on disk).
async fn watch_interrupts(cancel: CancellationToken) {
    let first = next_signal().await;
    STOPPED_BY.store(first, std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "\n{}: finishing the trial in flight, then writing the summary (again to stop now)",
        if first == EXIT_TERMINATED {
            "terminated"
        } else {
            "interrupted"
        }
    );
    cancel.cancel();
    let second = next_signal().await;
    std::process::exit(i32::from(second));
}

/// Waits for SIGINT or SIGTERM; returns the exit code that reports it. A signal that
/// cannot be listened for is never reported.
async fn next_signal() -> u8 {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => EXIT_INTERRUPTED,
        _ = terminate => EXIT_TERMINATED,
    }
}
