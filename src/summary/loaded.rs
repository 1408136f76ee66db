//! What the server actually loaded for each variant, read from `/api/ps` after priming
//! and after every trial, against what the variant asked for. A comparison between two
//! variants the server loaded identically is a comparison of noise; a `num_gpu` above the
//! model's layers, a context capped by the model or overridden by the server's settings,
//! or a model that did not fit in VRAM change what a variant measures. This says so.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backend::{LoadedModel, ModelShape};
use crate::results::{RunMeta, TrialRecord, VariantSetup};

/// A variant's loaded state, as the server reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadedRow {
    /// Variant.
    pub variant: String,
    /// The `num_gpu` it asked for.
    pub num_gpu: Option<u32>,
    /// The `num_ctx` it asked for.
    pub num_ctx: Option<u32>,
    /// The model's layers, when the server said.
    pub layers: Option<u32>,
    /// Times the server was asked while only this variant ran (after priming or a trial).
    pub observations: usize,
    /// Distinct states among them.
    pub states: usize,
    /// The state seen most often: memory, bytes.
    pub size: u64,
    /// Of which in VRAM, bytes.
    pub size_vram: u64,
    /// Its context length, tokens.
    pub context_length: Option<u32>,
    /// What was asked for and what was loaded, in words.
    pub words: String,
    /// Where the loaded state differs from what was asked for.
    pub flags: Vec<String>,
}

type State = (u64, u64, Option<u32>);

fn state(m: &LoadedModel) -> State {
    (m.size, m.size_vram, m.context_length)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Every variant's loaded state, and warnings about pairs of variants that asked for
/// different configurations but were loaded identically. Empty when the server was never
/// asked (an API without `/api/ps`, or an older results folder).
pub fn loaded(meta: &RunMeta, trials: &[TrialRecord]) -> (Vec<LoadedRow>, Vec<String>) {
    let shape: ModelShape = meta
        .setup
        .server
        .as_ref()
        .and_then(|s| s.model_shape.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for v in &meta.setup.variants {
        // Only trials where this variant ran alone (or beside copies of itself): in a
        // mixed arm the server's state is whichever configuration came last.
        let seen: Vec<&LoadedModel> = trials
            .iter()
            .filter(|t| !t.variants.is_empty() && t.variants.iter().all(|x| *x == v.name))
            .flat_map(|t| {
                t.loaded_after_prime
                    .iter()
                    .chain(t.loaded_after.iter())
                    .flatten()
            })
            .filter(|m| m.model == v.model)
            .collect();
        let mut counts: BTreeMap<State, usize> = BTreeMap::new();
        for m in &seen {
            *counts.entry(state(m)).or_default() += 1;
        }
        let Some((&(size, size_vram, context_length), _)) = counts
            .iter()
            .max_by_key(|(s, n)| (**n, std::cmp::Reverse(**s)))
        else {
            continue;
        };
        rows.push(row(
            v,
            &shape,
            seen.len(),
            counts.len(),
            (size, size_vram, context_length),
        ));
    }
    let warnings = identical_loads(&meta.setup.variants, &rows);
    (rows, warnings)
}

fn row(
    v: &VariantSetup,
    shape: &ModelShape,
    observations: usize,
    states: usize,
    s: State,
) -> LoadedRow {
    let (size, size_vram, context_length) = s;
    let share = if size == 0 {
        0.0
    } else {
        size_vram as f64 / size as f64
    };
    let pct = format!("{:.0}% in VRAM", (share * 100.0).floor());
    let layers = shape.layers;
    let mut words = Vec::new();
    let mut flags = Vec::new();
    match (v.num_gpu, layers) {
        (Some(g), Some(l)) => {
            words.push(format!("num_gpu {g} requested; the model has {l} layers"));
            if g >= l && share < 0.99 {
                flags.push(format!(
                    "asked for every layer on the GPU (num_gpu {g} ≥ {l} layers) but only {pct}: the rest runs on the CPU"
                ));
            } else if g < l && share >= 0.99 {
                flags.push(format!(
                    "asked for {g} of {l} layers on the GPU, but the whole model is in VRAM: num_gpu was not applied"
                ));
            } else if g < l {
                words.push(format!("partial offload, {g} of {l} layers"));
            }
        }
        (Some(g), None) => words.push(format!("num_gpu {g} requested")),
        (None, _) => {
            words.push("num_gpu: server default".to_owned());
            if share < 0.99 {
                flags.push(format!("partly on the CPU by default: {pct}"));
            }
        }
    }
    words.push(format!("{} loaded, {pct}", gib(size)));
    match (v.num_ctx, context_length) {
        (Some(n), Some(c)) if n != c => {
            let why = match shape.context_length {
                Some(max) if c == max && n > max => format!("capped at the context length of the model ({max})"),
                _ => "overridden by the server (OLLAMA_CONTEXT_LENGTH, the Modelfile, or a VRAM limit)".to_owned(),
            };
            words.push(format!("context {c}"));
            flags.push(format!(
                "asked for num_ctx {n}; the server loaded a context of {c} tokens, {why}"
            ));
        }
        (_, Some(c)) => words.push(format!("context {c}")),
        (_, None) => words.push("context not reported".to_owned()),
    }
    if states > 1 {
        flags.push(format!(
            "loaded in {states} different states over {observations} observations (the most common shown)"
        ));
    }
    LoadedRow {
        variant: v.name.clone(),
        num_gpu: v.num_gpu,
        num_ctx: v.num_ctx,
        layers,
        observations,
        states,
        size,
        size_vram,
        context_length,
        words: words.join("; "),
        flags,
    }
}

/// Pairs of variants of one model that asked for different `num_ctx`/`num_gpu` but that
/// the server loaded in the same state.
fn identical_loads(variants: &[VariantSetup], rows: &[LoadedRow]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            let model = |r: &LoadedRow| {
                variants
                    .iter()
                    .find(|v| v.name == r.variant)
                    .map(|v| v.model.clone())
            };
            let asked_apart = (a.num_ctx, a.num_gpu) != (b.num_ctx, b.num_gpu);
            let same =
                (a.size, a.size_vram, a.context_length) == (b.size, b.size_vram, b.context_length);
            if model(a) == model(b) && asked_apart && same {
                out.push(format!(
                    "{} and {} ask for different num_ctx/num_gpu, but the server loaded them identically ({} in memory, {:.0}% in VRAM, context {}): a difference between them does not come from these options",
                    a.variant,
                    b.variant,
                    gib(a.size),
                    (a.size_vram as f64 / a.size.max(1) as f64 * 100.0).floor(),
                    a.context_length.map_or("not reported".to_owned(), |c| c.to_string())
                ));
            }
        }
    }
    out
}
