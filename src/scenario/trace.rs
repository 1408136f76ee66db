//! Traces a `trace` workload replays: recorded agent conversations, or requests in the
//! Mooncake format, read into one shape (conversations of turns) and checked line by line.
//!
//! **Conversations** (`format: conversations`), one JSON object a line:
//!
//! ```json
//! {"id": "c1", "start_ms": 0, "turns": [
//!   {"input_tokens": 180, "output_tokens": 60},
//!   {"tool_wait_ms": 250, "input_tokens": 120, "output_tokens": 40, "fan_out": 2}]}
//! ```
//!
//! A turn's `input_tokens` are the tokens it adds to the conversation (the user's message
//! or a tool's result); its prompt is the whole conversation so far plus them.
//! `tool_wait_ms` is the wait before the turn (the tool running); `fan_out` sends the turn
//! as that many calls at once, the first of which carries the conversation on.
//!
//! **Mooncake** (`format: mooncake`), one request a line: `timestamp` (ms),
//! `input_length`, `output_length` and `hash_ids`, the prompt's blocks of `block_tokens`
//! tokens (512 in Mooncake's traces): requests that share a block id share its text.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rng::{Rng, mix64};

/// Which trace format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// Agent conversations: turns with token lengths, tool waits and fan-out.
    #[default]
    Conversations,
    /// Mooncake's request traces: timestamp, lengths and prefix block ids.
    Mooncake,
}

/// A validated trace: where it came from, and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// The trace file (absolute).
    pub path: PathBuf,
    /// Its format.
    pub format: TraceFormat,
    /// Start times and tool waits are multiplied by this (0.5 replays twice as fast).
    pub time_scale: f64,
    /// Tokens in one `hash_ids` block (Mooncake).
    pub block_tokens: u32,
    /// SHA-256 of the file, so a results folder names exactly what it replayed.
    pub sha256: String,
    /// Conversations (Mooncake: requests) in the file.
    pub conversations: usize,
    /// LLM calls one replay makes.
    pub calls: usize,
    /// The conversations, in file order.
    #[serde(skip)]
    pub items: Arc<Vec<Conversation>>,
}

/// One recorded conversation (a Mooncake request is one of a single turn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conversation {
    /// Name (the line number when the trace gives none).
    #[serde(default)]
    pub id: String,
    /// When it starts, ms after the replay's start (before `time_scale`).
    #[serde(default, alias = "timestamp")]
    pub start_ms: f64,
    /// Its turns, in order.
    pub turns: Vec<Turn>,
}

/// One turn: one LLM call (or `fan_out` at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Tokens the turn adds to the conversation before its call.
    pub input_tokens: u32,
    /// Tokens the call generates.
    pub output_tokens: u32,
    /// Wait before the turn (a tool running), ms.
    #[serde(default)]
    pub tool_wait_ms: f64,
    /// Calls sent at once for this turn.
    #[serde(default = "one")]
    pub fan_out: u32,
    /// Prefix blocks of the input (Mooncake); the same id, the same text.
    #[serde(default)]
    pub hash_ids: Vec<u64>,
}

fn one() -> u32 {
    1
}

/// One Mooncake request line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MooncakeRequest {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
    #[serde(default)]
    hash_ids: Vec<u64>,
}

/// Largest token count of one turn's input or output.
const MAX_TURN_TOKENS: u32 = 1 << 20;

/// Reads `text` as a trace of `format`. An error names the line and the field.
pub fn parse(
    text: &str,
    format: TraceFormat,
    block_tokens: u32,
) -> Result<Vec<Conversation>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: String| format!("line {n}: {e}");
        let mut conversation = match format {
            TraceFormat::Conversations => {
                serde_json::from_str::<Conversation>(line).map_err(|e| at(e.to_string()))?
            }
            TraceFormat::Mooncake => {
                let r: MooncakeRequest =
                    serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
                let covered = r.hash_ids.len() as u64 * u64::from(block_tokens);
                let needs = r.hash_ids.len().saturating_sub(1) as u64 * u64::from(block_tokens);
                let fits = (needs + 1..=covered).contains(&u64::from(r.input_length));
                if !r.hash_ids.is_empty() && !fits {
                    return Err(at(format!(
                        "`input_length` {} does not fit {} blocks of {block_tokens} tokens \
                         (`hash_ids`); set `workload.block_tokens` to the trace's block size",
                        r.input_length,
                        r.hash_ids.len()
                    )));
                }
                Conversation {
                    id: String::new(),
                    start_ms: r.timestamp,
                    turns: vec![Turn {
                        input_tokens: r.input_length,
                        output_tokens: r.output_length,
                        tool_wait_ms: 0.0,
                        fan_out: 1,
                        hash_ids: r.hash_ids,
                    }],
                }
            }
        };
        if conversation.id.is_empty() {
            conversation.id = format!("line{n}");
        }
        check(&conversation).map_err(at)?;
        out.push(conversation);
    }
    if out.is_empty() {
        return Err("the trace has no conversations".to_owned());
    }
    Ok(out)
}

fn check(c: &Conversation) -> Result<(), String> {
    if !(c.start_ms.is_finite() && c.start_ms >= 0.0) {
        return Err(format!("start_ms: {} must be 0 or more", c.start_ms));
    }
    if c.turns.is_empty() {
        return Err("turns: a conversation needs at least one turn".to_owned());
    }
    for (k, t) in c.turns.iter().enumerate() {
        let field = |f: &str| format!("turns[{k}].{f}");
        if t.input_tokens == 0 && k == 0 {
            return Err(format!(
                "{}: the first turn needs an input",
                field("input_tokens")
            ));
        }
        for (name, v) in [
            ("input_tokens", t.input_tokens),
            ("output_tokens", t.output_tokens),
        ] {
            if v > MAX_TURN_TOKENS {
                return Err(format!(
                    "{}: {v} is more than {MAX_TURN_TOKENS}",
                    field(name)
                ));
            }
        }
        if t.output_tokens == 0 {
            return Err(format!("{}: must be at least 1", field("output_tokens")));
        }
        if !(t.tool_wait_ms.is_finite() && (0.0..=3_600_000.0).contains(&t.tool_wait_ms)) {
            return Err(format!(
                "{}: {} must be 0 to 3600000",
                field("tool_wait_ms"),
                t.tool_wait_ms
            ));
        }
        if !(1..=256).contains(&t.fan_out) {
            return Err(format!(
                "{}: {} must be 1 to 256",
                field("fan_out"),
                t.fan_out
            ));
        }
    }
    Ok(())
}

/// LLM calls one replay of `items` makes.
pub fn calls(items: &[Conversation]) -> usize {
    items
        .iter()
        .flat_map(|c| &c.turns)
        .map(|t| t.fan_out as usize)
        .sum()
}

/// A synthetic agentic trace of `count` conversations, seeded: what
/// `scenarios/traces/agentic.jsonl` holds (`harness synth-trace`). Each conversation is
/// a tool loop of 2 to 5 turns: a first request of 150–400 tokens, then tool results of
/// 40–300 tokens after waits of 50–600 ms, replies of 20–120 tokens, and now and then a
/// turn fanned out to 2 or 3 calls; conversations start 0–1500 ms apart.
pub fn synthesize(seed: u64, count: usize) -> String {
    let mut rng = Rng::new(mix64(seed));
    let between = |rng: &mut Rng, lo: u32, hi: u32| lo + rng.below((hi - lo + 1) as usize) as u32;
    let mut out = String::new();
    let mut start = 0u32;
    for i in 0..count {
        let turns = between(&mut rng, 2, 5);
        let mut list = Vec::new();
        for k in 0..turns {
            let (input, wait) = if k == 0 {
                (between(&mut rng, 150, 400), 0)
            } else {
                (between(&mut rng, 40, 300), between(&mut rng, 50, 600))
            };
            let output = between(&mut rng, 20, 120);
            let fan_out = if k > 0 && rng.uniform() < 0.2 {
                between(&mut rng, 2, 3)
            } else {
                1
            };
            list.push(Turn {
                input_tokens: input,
                output_tokens: output,
                tool_wait_ms: f64::from(wait),
                fan_out,
                hash_ids: Vec::new(),
            });
        }
        let c = Conversation {
            id: format!("c{i}"),
            start_ms: f64::from(start),
            turns: list,
        };
        out.push_str(&serde_json::to_string(&Compact(&c)).unwrap_or_default());
        out.push('\n');
        start += between(&mut rng, 0, 1500);
    }
    out
}

/// A conversation as the synthetic trace writes it: defaults left out.
struct Compact<'a>(&'a Conversation);

impl Serialize for Compact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let turns: Vec<serde_json::Value> = self
            .0
            .turns
            .iter()
            .map(|t| {
                let mut v = serde_json::json!({
                    "input_tokens": t.input_tokens,
                    "output_tokens": t.output_tokens,
                });
                if t.tool_wait_ms > 0.0 {
                    v["tool_wait_ms"] = serde_json::json!(t.tool_wait_ms);
                }
                if t.fan_out > 1 {
                    v["fan_out"] = serde_json::json!(t.fan_out);
                }
                v
            })
            .collect();
        serde_json::json!({"id": self.0.id, "start_ms": self.0.start_ms, "turns": turns})
            .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversations_and_mooncake_lines_read_into_one_shape() {
        let text = r#"{"id": "a", "start_ms": 5, "turns": [{"input_tokens": 10, "output_tokens": 4}, {"tool_wait_ms": 20, "input_tokens": 3, "output_tokens": 2, "fan_out": 2}]}

{"turns": [{"input_tokens": 1, "output_tokens": 1}]}
"#;
        let c = parse(text, TraceFormat::Conversations, 512).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].id.as_str(), c[0].start_ms), ("a", 5.0));
        assert_eq!(c[0].turns[1].fan_out, 2);
        assert_eq!(c[1].id, "line3");
        assert_eq!(calls(&c), 4);

        let m =
            r#"{"timestamp": 27, "input_length": 1000, "output_length": 52, "hash_ids": [4, 5]}"#;
        let c = parse(m, TraceFormat::Mooncake, 512).unwrap();
        assert_eq!(c[0].start_ms, 27.0);
        assert_eq!(c[0].turns[0].hash_ids, [4, 5]);
        assert_eq!(c[0].turns[0].input_tokens, 1000);
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let bad = "{\"turns\": [{\"input_tokens\": 5, \"output_tokens\": 1}]}\n{\"turns\": [{\"input_tokens\": 5, \"output_tokens\": 0}]}\n";
        let e = parse(bad, TraceFormat::Conversations, 512).unwrap_err();
        assert!(e.starts_with("line 2: turns[0].output_tokens"), "{e}");
        let e = parse(
            "{\"turns\": [{\"input_tokens\": 5}]}",
            TraceFormat::Conversations,
            512,
        )
        .unwrap_err();
        assert!(e.contains("line 1") && e.contains("output_tokens"), "{e}");
        let e = parse(
            r#"{"timestamp": 0, "input_length": 2000, "output_length": 5, "hash_ids": [1]}"#,
            TraceFormat::Mooncake,
            512,
        )
        .unwrap_err();
        assert!(e.contains("does not fit 1 blocks"), "{e}");
        assert!(parse("\n", TraceFormat::Mooncake, 512).is_err());
    }

    #[test]
    fn the_synthetic_trace_is_seeded_and_valid() {
        let a = synthesize(1, 6);
        assert_eq!(a, synthesize(1, 6));
        assert_ne!(a, synthesize(2, 6));
        let c = parse(&a, TraceFormat::Conversations, 512).unwrap();
        assert_eq!(c.len(), 6);
        assert!(c.iter().all(|c| (2..=5).contains(&c.turns.len())));
    }
}
