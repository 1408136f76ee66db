//! The checker: raw layer in, validated [`Scenario`] out, with every semantic problem
//! (ranges, names, references between sections, options a backend cannot send) reported
//! at its line and column.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde_saphyr::Spanned;

use super::raw::{RawArms, RawOptions, RawScenario, RawServer, RawVariant};
use super::{
    Arm, BackendKind, DEFAULT_API_KEY_ENV, DEFAULT_OLLAMA_URL, DEFAULT_OPENAI_URL, ModelOptions,
    Problem, ResponseLimits, Scenario, ServerConfig, Variant, WorkloadKind, is_safe_name,
    normalize_ollama_host,
};

/// Options `server.ignore_options` may name.
const IGNORABLE: [&str; 3] = ["num_ctx", "num_gpu", "keep_alive"];

/// How to run anyway, added to every "cannot send" message.
const IGNORE_HINT: &str = "list it in `server.ignore_options` to run without it";

/// Ollama options an OpenAI-compatible API cannot carry per request, and why.
const NOT_PER_REQUEST: [(&str, &str); 2] = [
    (
        "num_ctx",
        "the context size is set when the server starts (llama-server -c, vllm --max-model-len)",
    ),
    (
        "num_gpu",
        "GPU offload is set when the server starts (llama-server -ngl)",
    ),
];

/// Why the openai backend cannot send a variant's `key` (`num_ctx`, `num_gpu` or
/// `keep_alive`), and how to run anyway.
pub(super) fn openai_refusal(key: &str) -> String {
    match NOT_PER_REQUEST.iter().find(|(k, _)| *k == key) {
        Some((_, why)) => {
            format!("the openai backend cannot send `{key}` per request: {why}; {IGNORE_HINT}")
        }
        None => format!("`{key}` is Ollama's; the openai backend cannot send it: {IGNORE_HINT}"),
    }
}

impl Scenario {
    /// Options the scenario's backend cannot send, for a backend chosen after parsing
    /// (`--backend`); parsing reports them with their lines already.
    pub fn check_backend(&self) -> Result<(), String> {
        if !self.server.backend.speaks_openai() {
            return Ok(());
        }
        let ignored = |key: &str| self.server.ignore_options.iter().any(|i| i == key);
        let mut problems = Vec::new();
        for (name, v) in &self.variants {
            let set = [
                ("num_ctx", v.options.num_ctx.is_some()),
                ("num_gpu", v.options.num_gpu.is_some()),
                ("keep_alive", v.keep_alive.is_some()),
            ];
            for (key, _) in set.into_iter().filter(|&(key, set)| set && !ignored(key)) {
                problems.push(format!("variant `{name}`: {}", openai_refusal(key)));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// Validates a raw scenario into a [`Scenario`], collecting every problem with where it is.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
}

impl Checker {
    pub(super) fn report<T>(&mut self, at: &Spanned<T>, field: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: Some(at.referenced.line()),
            column: Some(at.referenced.column()),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    /// Checks `lo <= value <= hi` and reports otherwise.
    pub(super) fn range<T: PartialOrd + fmt::Display + Copy>(
        &mut self,
        at: &Spanned<T>,
        field: &str,
        lo: T,
        hi: T,
    ) -> T {
        if !(at.value >= lo && at.value <= hi) {
            self.report(
                at,
                field,
                format!("{} is out of range (must be {lo} to {hi})", at.value),
            );
        }
        at.value
    }

    /// Reports `name` at `at` unless `variants` has it; true when it does.
    pub(super) fn known_variant<T>(
        &mut self,
        at: &Spanned<T>,
        field: &str,
        name: &str,
        variants: &BTreeMap<String, Variant>,
    ) -> bool {
        if variants.contains_key(name) {
            return true;
        }
        let known: Vec<&str> = variants.keys().map(String::as_str).collect();
        self.report(
            at,
            field,
            format!("unknown variant `{name}` (variants: {})", known.join(", ")),
        );
        false
    }

    fn safe_name(&mut self, at: &Spanned<String>, field: &str) {
        if !is_safe_name(&at.value) {
            self.report(
                at,
                field,
                format!(
                    "`{}` must be 1-64 characters of letters, digits, '-', '_' or '.', not starting with '.'",
                    at.value
                ),
            );
        }
    }

    pub(super) fn scenario(
        &mut self,
        raw: RawScenario,
        base_dir: &Path,
        host: Option<&str>,
    ) -> Scenario {
        self.safe_name(&raw.name, "name");
        let server = self.server(raw.server, host);
        let model = raw.model.value.clone();
        if model.trim().is_empty() {
            self.report(&raw.model, "model", "must not be empty");
        }
        let workload = self.workload(&raw.workload, base_dir);
        let agents = self.agents(raw.agents.as_ref(), workload.kind);
        let mut variants = raw
            .variants
            .as_ref()
            .map(|v| self.variants(v, &model))
            .unwrap_or_default();
        let openai = server.backend.speaks_openai();
        if let (Some(v), true) = (&raw.variants, openai) {
            self.openai_options(v, &server.ignore_options);
        }
        if let Some(m) = &raw.matrix {
            let ignored = openai.then_some(server.ignore_options.as_slice());
            self.matrix(m, &model, &mut variants, ignored);
        }
        if variants.is_empty() {
            let message =
                "at least one variant is needed, under `variants:` or generated by `matrix:`";
            match &raw.variants {
                Some(v) => self.report(v, "variants", message),
                None => self.problems.push(Problem {
                    line: None,
                    column: None,
                    field: "variants".to_owned(),
                    message: message.to_owned(),
                }),
            }
        }
        let baseline = self.baseline(
            raw.baseline.as_ref(),
            raw.variants.as_ref(),
            raw.matrix.as_ref(),
            &variants,
        );
        let load = raw.load.as_ref().map(|l| self.load(l));
        if let (Some(l), true) = (&raw.load, workload.kind != WorkloadKind::Prompts) {
            self.report(
                l,
                "load",
                format!(
                    "load levels drive a prompt set: `workload.kind: prompts`, not `{}`",
                    workload.kind.as_str()
                ),
            );
        }
        if let (Some(_), Some(n)) = (&raw.load, &raw.workload.requests) {
            self.report(
                n,
                "workload.requests",
                "with `load:`, each level sets how many requests its jobs send: `load.requests` (or `load.duration_s`)",
            );
        }
        let slo = match (&raw.slo, &load) {
            (Some(s), Some(_)) => Some(self.slo(s)),
            (Some(s), None) => {
                self.report(
                    s,
                    "slo",
                    "goodput is measured per load level: `slo` needs `load:`",
                );
                None
            }
            (None, _) => None,
        };
        let arms = match &raw.arms {
            Some(a) => self.arms(a, &variants),
            // Every variant alone, the baseline first.
            None if load.is_some() => std::iter::once(&baseline)
                .chain(variants.keys().filter(|v| **v != baseline))
                .map(|v| Arm::new(vec![v.clone()]))
                .collect(),
            None => {
                self.problems.push(Problem {
                    line: None,
                    column: None,
                    field: "arms".to_owned(),
                    message: "missing field `arms`: the sets of variants launched together, e.g. `arms: [[baseline], [chimera]]`".to_owned(),
                });
                Vec::new()
            }
        };
        let arms = match &load {
            Some(l) => l
                .levels
                .iter()
                .flat_map(|&level| arms.iter().map(move |a| a.at(level)))
                .collect(),
            None => arms,
        };
        let gates = raw
            .gates
            .as_ref()
            .map(|g| self.gates(g, &variants, &arms, &baseline))
            .unwrap_or_default();
        let order = raw.order.unwrap_or_default();
        let (stopping, max_trials) = match &raw.stopping {
            Some(s) => self.stopping(s, &variants, &arms, &baseline, order),
            None => (None, None),
        };
        let trials = self.range(&raw.trials, "trials", 1, 10_000);
        // A stopping rule runs up to its max_trials rounds (default: `trials`).
        let trials = max_trials.unwrap_or(trials);
        let warmup = raw
            .warmup
            .as_ref()
            .map(|w| self.range(w, "warmup", 0, 1_000))
            .unwrap_or(1);
        Scenario {
            name: raw.name.value,
            description: raw.description,
            seed: raw.seed.unwrap_or(0),
            server,
            sim: raw.sim.unwrap_or_default(),
            model,
            workload,
            agents,
            variants,
            baseline,
            arms,
            load,
            slo,
            trials,
            warmup,
            order,
            prime_on_switch: raw.prime_on_switch.unwrap_or(true),
            gates,
            stopping,
            retries: raw.retries.unwrap_or_default(),
            stop_grace_s: raw
                .stop_grace_s
                .as_ref()
                .map_or(30.0, |g| self.range(g, "stop_grace_s", 0.0, 86_400.0)),
        }
    }

    fn server(&mut self, raw: Option<RawServer>, host: Option<&str>) -> ServerConfig {
        let raw = raw.unwrap_or_default();
        let backend = raw.backend.unwrap_or(BackendKind::Ollama);
        let url = match &raw.url {
            Some(u) => {
                if !(u.value.starts_with("http://") || u.value.starts_with("https://")) {
                    self.report(u, "server.url", "must start with http:// or https://");
                }
                u.value.clone()
            }
            None if backend == BackendKind::Openai => DEFAULT_OPENAI_URL.to_owned(),
            None => host
                .map(normalize_ollama_host)
                .unwrap_or_else(|| DEFAULT_OLLAMA_URL.to_owned()),
        };
        let mut urls = Vec::new();
        if let Some(list) = &raw.urls {
            if raw.url.is_some() {
                self.report(
                    list,
                    "server.urls",
                    "give `url` (one server) or `urls` (several), not both",
                );
            } else if backend.is_sim() {
                self.report(
                    list,
                    "server.urls",
                    "the built-in simulator is one server; start a `harness sim-server` per URL and use `backend: ollama`",
                );
            } else if list.value.len() < 2 {
                self.report(
                    list,
                    "server.urls",
                    "lists two servers or more (one server is `url:`)",
                );
            }
            for u in &list.value {
                let value = u.value.trim_end_matches('/').to_owned();
                if !(value.starts_with("http://") || value.starts_with("https://")) {
                    self.report(u, "server.urls", "must start with http:// or https://");
                } else if urls.contains(&value) {
                    self.report(u, "server.urls", format!("{value} is listed twice"));
                }
                urls.push(value);
            }
        }
        let url = urls.first().cloned().unwrap_or(url);
        let api_key_env = match &raw.api_key_env {
            Some(e) => {
                let ok = !e.value.is_empty()
                    && e.value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    self.report(
                        e,
                        "server.api_key_env",
                        "must name an environment variable (letters, digits, `_`), not hold the key itself",
                    );
                }
                e.value.clone()
            }
            None => DEFAULT_API_KEY_ENV.to_owned(),
        };
        let timeout_s = raw
            .timeout_s
            .as_ref()
            .map(|t| self.range(t, "server.timeout_s", 0.001, 86_400.0))
            .unwrap_or(300.0);
        let mut ignore_options = Vec::new();
        for o in raw.ignore_options.iter().flat_map(|l| &l.value) {
            if IGNORABLE.contains(&o.value.as_str()) {
                ignore_options.push(o.value.clone());
            } else {
                self.report(
                    o,
                    "server.ignore_options",
                    format!(
                        "`{}` cannot be ignored (only {})",
                        o.value,
                        IGNORABLE.join(", ")
                    ),
                );
            }
        }
        let defaults = ResponseLimits::default();
        ServerConfig {
            backend,
            url: url.trim_end_matches('/').to_owned(),
            urls,
            api: raw.api.unwrap_or_default(),
            timeout_s,
            api_key_env,
            ignore_options,
            max_response_bytes: raw
                .max_response_bytes
                .as_ref()
                .map_or(defaults.max_bytes, |b| {
                    self.range(b, "server.max_response_bytes", 1024, 1 << 34)
                }),
            max_response_tokens: raw
                .max_response_tokens
                .as_ref()
                .map_or(defaults.max_tokens, |t| {
                    self.range(t, "server.max_response_tokens", 1, 100_000_000)
                }),
        }
    }

    fn variants(
        &mut self,
        raw: &Spanned<BTreeMap<String, RawVariant>>,
        model: &str,
    ) -> BTreeMap<String, Variant> {
        let mut out = BTreeMap::new();
        for (name, v) in &raw.value {
            if !is_safe_name(name) {
                self.report(
                    raw,
                    &format!("variants.{name}"),
                    "variant name is not a safe file name",
                );
            }
            let options = v
                .options
                .as_ref()
                .map(|o| self.options(o, &format!("variants.{name}.options")))
                .unwrap_or_default();
            out.insert(
                name.clone(),
                Variant {
                    name: name.clone(),
                    description: v.description.clone(),
                    model: v.model.clone().unwrap_or_else(|| model.to_owned()),
                    options,
                    keep_alive: v.keep_alive.clone(),
                },
            );
        }
        out
    }

    pub(super) fn options(&mut self, raw: &RawOptions, prefix: &str) -> ModelOptions {
        let f = |name: &str| format!("{prefix}.{name}");
        ModelOptions {
            num_gpu: raw
                .num_gpu
                .as_ref()
                .map(|v| self.range(v, &f("num_gpu"), 0, 100_000) as u32),
            num_ctx: raw
                .num_ctx
                .as_ref()
                .map(|v| self.range(v, &f("num_ctx"), 1, 10_000_000) as u32),
            temperature: raw
                .temperature
                .as_ref()
                .map(|v| self.range(v, &f("temperature"), 0.0, 100.0)),
            top_p: raw
                .top_p
                .as_ref()
                .map(|v| self.range(v, &f("top_p"), 0.0, 1.0)),
            top_k: raw
                .top_k
                .as_ref()
                .map(|v| self.range(v, &f("top_k"), 0, 1_000_000) as u32),
            repeat_penalty: raw
                .repeat_penalty
                .as_ref()
                .map(|v| self.range(v, &f("repeat_penalty"), 0.0, 100.0)),
            seed: raw.seed,
            num_predict: raw
                .num_predict
                .as_ref()
                .map(|v| self.range(v, &f("num_predict"), -2, 10_000_000)),
        }
    }

    /// Reports options an OpenAI-compatible API cannot carry per request.
    fn openai_options(&mut self, raw: &Spanned<BTreeMap<String, RawVariant>>, ignored: &[String]) {
        let refused = |key: &str| !ignored.iter().any(|i| i == key);
        for (name, v) in &raw.value {
            if v.keep_alive.is_some() && refused("keep_alive") {
                // `keep_alive` has no span of its own: point at the variants.
                let field = format!("variants.{name}.keep_alive");
                self.report(raw, &field, openai_refusal("keep_alive"));
            }
            let Some(o) = &v.options else { continue };
            for (key, value) in [("num_ctx", &o.num_ctx), ("num_gpu", &o.num_gpu)] {
                if let (Some(at), true) = (value, refused(key)) {
                    let field = format!("variants.{name}.options.{key}");
                    self.report(at, &field, openai_refusal(key));
                }
            }
        }
    }

    fn baseline(
        &mut self,
        named: Option<&Spanned<String>>,
        raw_variants: Option<&Spanned<BTreeMap<String, RawVariant>>>,
        matrix: Option<&Spanned<super::raw::RawMatrix>>,
        variants: &BTreeMap<String, Variant>,
    ) -> String {
        if let Some(b) = named {
            self.known_variant(b, "baseline", &b.value, variants);
            return b.value.clone();
        }
        if let Some(m) = matrix {
            self.report(
                m,
                "baseline",
                "a scenario with a `matrix:` names its baseline: `baseline: <variant>` (a generated name such as `ctx512-gpu40`, or one of `variants:`)",
            );
        } else if variants.contains_key("baseline") {
            return "baseline".to_owned();
        } else if let (Some(at), true) = (raw_variants, variants.len() > 1) {
            self.report(
                at,
                "baseline",
                "no variant is called `baseline`: name the one the others are compared against with `baseline: <variant>`",
            );
        }
        variants.keys().next().cloned().unwrap_or_default()
    }

    fn arms(&mut self, raw: &RawArms, variants: &BTreeMap<String, Variant>) -> Vec<Arm> {
        if raw.value.is_empty() {
            self.report(raw, "arms", "at least one arm is needed");
        }
        let mut arms: Vec<Arm> = Vec::new();
        for (i, arm) in raw.value.iter().enumerate() {
            if arm.value.is_empty() {
                self.report(
                    arm,
                    &format!("arms[{i}]"),
                    "an arm needs at least one variant",
                );
                continue;
            }
            for (j, v) in arm.value.iter().enumerate() {
                self.known_variant(v, &format!("arms[{i}][{j}]"), &v.value, variants);
            }
            let new = Arm::new(arm.value.iter().map(|v| v.value.clone()).collect());
            if arms.iter().any(|a| a.name == new.name) {
                self.report(
                    arm,
                    &format!("arms[{i}]"),
                    format!("arm `{}` is listed twice", new.name),
                );
            }
            arms.push(new);
        }
        arms
    }
}
