//! Prompt sets a `prompts` workload sends: prompts read from a JSONL file (OpenAI
//! `messages`, or a plain `prompt`) or a CSV column, or synthetic text whose input and
//! output lengths are fixed or drawn from a distribution, with an optional prefix every
//! prompt shares.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A validated prompt set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PromptSet {
    /// Where the prompts come from.
    pub source: PromptSource,
    /// Requests one job sends, one after another.
    pub requests: u32,
    /// Cap on each request's generated tokens (file prompts; synthetic ones draw theirs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Ask for exactly the tokens allowed, past end-of-sequence (`ignore_eos`), where the
    /// server honours it; recorded here so a reader knows the lengths were forced.
    pub ignore_eos: bool,
}

/// Where a prompt set's prompts come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptSource {
    /// Prompts read from a file.
    File {
        /// The file (absolute).
        path: PathBuf,
        /// SHA-256 of the file.
        sha256: String,
        /// Prompts in it.
        count: usize,
        /// The prompts, in file order.
        #[serde(skip)]
        items: Arc<Vec<Prompt>>,
    },
    /// Synthetic text of drawn lengths.
    Synthetic {
        /// Prompt length, tokens (the shared prefix included).
        input_tokens: Length,
        /// Reply length, tokens.
        output_tokens: Length,
        /// Leading tokens every prompt shares.
        shared_prefix_tokens: u32,
    },
}

/// One prompt of a file: earlier messages and the last user message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    /// The system message, if any.
    pub system: String,
    /// Messages between the system message and the last one, as (role, content).
    pub history: Vec<(String, String)>,
    /// The last message (the one answered).
    pub user: String,
}

/// A token length: fixed, or drawn per request from a seeded distribution (rounded,
/// at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Length {
    /// Always this many.
    Fixed(u32),
    /// Drawn.
    Drawn(Drawn),
}

/// A distribution of lengths.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Drawn {
    /// Uniform over the whole numbers from the first to the second.
    Uniform([u32; 2]),
    /// Normal with this mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        sd: f64,
    },
    /// Lognormal with this median and standard deviation of the log.
    Lognormal {
        /// Median.
        median: f64,
        /// Standard deviation of the log.
        sigma: f64,
    },
}

/// Largest length a request may have, tokens.
pub const MAX_LENGTH: u32 = 1 << 20;

impl Length {
    /// One length drawn from `rng`, between 1 and [`MAX_LENGTH`].
    pub fn draw(&self, rng: &mut Rng) -> u32 {
        let x = match *self {
            Length::Fixed(n) => f64::from(n),
            Length::Drawn(Drawn::Uniform([lo, hi])) => {
                f64::from(lo) + rng.below((hi - lo) as usize + 1) as f64
            }
            Length::Drawn(Drawn::Normal { mean, sd }) => mean + sd * rng.normal(),
            Length::Drawn(Drawn::Lognormal { median, sigma }) => {
                median * rng.lognormal_factor(sigma)
            }
        };
        x.round().clamp(1.0, f64::from(MAX_LENGTH)) as u32
    }

    /// What is wrong with it, if anything.
    pub fn problem(&self) -> Option<String> {
        let ok = |x: f64| x.is_finite() && x > 0.0 && x <= f64::from(MAX_LENGTH);
        match *self {
            Length::Fixed(n) if n == 0 || n > MAX_LENGTH => {
                Some(format!("{n} must be 1 to {MAX_LENGTH}"))
            }
            Length::Drawn(Drawn::Uniform([lo, hi])) if lo == 0 || lo > hi || hi > MAX_LENGTH => {
                Some(format!(
                    "uniform [{lo}, {hi}] needs 1 ≤ low ≤ high ≤ {MAX_LENGTH}"
                ))
            }
            Length::Drawn(Drawn::Normal { mean, sd })
                if !(ok(mean) && sd.is_finite() && sd >= 0.0) =>
            {
                Some(format!(
                    "normal needs a mean of 1 to {MAX_LENGTH} and an sd ≥ 0, not {mean} and {sd}"
                ))
            }
            Length::Drawn(Drawn::Lognormal { median, sigma })
                if !(ok(median) && sigma.is_finite() && (0.0..=3.0).contains(&sigma)) =>
            {
                Some(format!(
                    "lognormal needs a median of 1 to {MAX_LENGTH} and a sigma of 0 to 3, not {median} and {sigma}"
                ))
            }
            _ => None,
        }
    }
}

/// One JSONL line: OpenAI `messages`, or a plain `prompt`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[serde(default)]
    messages: Option<Vec<LineMessage>>,
    #[serde(default)]
    prompt: Option<String>,
}

#[derive(Deserialize)]
struct LineMessage {
    role: String,
    content: String,
}

/// Reads JSONL prompts. An error names the line and what is wrong.
pub fn parse_jsonl(text: &str) -> Result<Vec<Prompt>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: &str| format!("line {}: {e}", i + 1);
        let parsed: Line = serde_json::from_str(line).map_err(|e| at(&e.to_string()))?;
        let prompt = match (parsed.messages, parsed.prompt) {
            (Some(messages), None) => {
                let mut system = String::new();
                let mut rest: Vec<(String, String)> = Vec::new();
                for (k, m) in messages.into_iter().enumerate() {
                    match m.role.as_str() {
                        "system" if k == 0 => system = m.content,
                        "user" | "assistant" => rest.push((m.role, m.content)),
                        other => {
                            return Err(at(&format!(
                                "messages[{k}].role: `{other}` (a system message first, then user and assistant)"
                            )));
                        }
                    }
                }
                match rest.pop() {
                    Some((role, user)) if role == "user" => Prompt {
                        system,
                        history: rest,
                        user,
                    },
                    _ => return Err(at("messages: the last message must be the user's")),
                }
            }
            (None, Some(prompt)) => Prompt {
                system: String::new(),
                history: Vec::new(),
                user: prompt,
            },
            _ => return Err(at("needs either `messages` or `prompt`")),
        };
        out.push(prompt);
    }
    if out.is_empty() {
        return Err("no prompts".to_owned());
    }
    Ok(out)
}

/// Reads the prompts of CSV column `column` (by its header).
pub fn parse_csv(text: &str, column: &str) -> Result<Vec<Prompt>, String> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|e| e.to_string())?.clone();
    let Some(index) = headers.iter().position(|h| h == column) else {
        let names: Vec<&str> = headers.iter().collect();
        return Err(format!(
            "no column `{column}` (columns: {})",
            names.join(", ")
        ));
    };
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("row {}: {e}", i + 2))?;
        let text = record.get(index).unwrap_or_default();
        if text.trim().is_empty() {
            return Err(format!("line {}: `{column}` is empty", i + 2));
        }
        out.push(Prompt {
            system: String::new(),
            history: Vec::new(),
            user: text.to_owned(),
        });
    }
    if out.is_empty() {
        return Err("no prompts".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_reads_messages_and_plain_prompts_and_names_bad_lines() {
        let text = "{\"prompt\": \"hi\"}\n{\"messages\": [{\"role\": \"system\", \"content\": \"s\"}, {\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}]}\n";
        let p = parse_jsonl(text).unwrap();
        assert_eq!(p[0].user, "hi");
        assert_eq!(
            (p[1].system.as_str(), p[1].user.as_str(), p[1].history.len()),
            ("s", "c", 2)
        );
        let e = parse_jsonl(
            "{\"prompt\": \"x\"}\n{\"messages\": [{\"role\": \"assistant\", \"content\": \"b\"}]}",
        )
        .unwrap_err();
        assert_eq!(e, "line 2: messages: the last message must be the user's");
        let e = parse_jsonl("{\"promt\": \"x\"}").unwrap_err();
        assert!(e.starts_with("line 1: unknown field `promt`"), "{e}");
    }

    #[test]
    fn csv_reads_a_column_and_lists_the_others_when_it_is_missing() {
        let text = "id,question\n1,\"What, exactly?\"\n2,Why\n";
        let p = parse_csv(text, "question").unwrap();
        assert_eq!(
            p.iter().map(|p| p.user.as_str()).collect::<Vec<_>>(),
            ["What, exactly?", "Why"]
        );
        assert_eq!(
            parse_csv(text, "q").unwrap_err(),
            "no column `q` (columns: id, question)"
        );
        assert_eq!(
            parse_csv("id,q\n1,\n", "q").unwrap_err(),
            "line 2: `q` is empty"
        );
    }

    #[test]
    fn lengths_are_drawn_within_their_bounds() {
        let mut rng = Rng::new(9);
        let u = Length::Drawn(Drawn::Uniform([10, 12]));
        let drawn: Vec<u32> = (0..200).map(|_| u.draw(&mut rng)).collect();
        assert!(drawn.iter().all(|n| (10..=12).contains(n)));
        assert!(
            (10..=12).all(|n| drawn.contains(&n)),
            "every value comes up"
        );
        assert_eq!(Length::Fixed(7).draw(&mut rng), 7);
        let normal = Length::Drawn(Drawn::Normal {
            mean: 2.0,
            sd: 50.0,
        });
        assert!(
            (0..200).all(|_| normal.draw(&mut rng) >= 1),
            "at least one token"
        );
        assert!(Length::Fixed(0).problem().is_some());
        assert!(Length::Drawn(Drawn::Uniform([5, 3])).problem().is_some());
        assert!(u.problem().is_none());
    }
}
