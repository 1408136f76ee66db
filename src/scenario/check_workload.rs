//! The checker's part for `workload:` and `agents:`: which keys each workload kind takes,
//! the agents in the order they can run (inputs first), and for an `agent_graph` the
//! shape of the graph: known names, no cycle, one final agent, fan-outs and turns in
//! range. A trace is read and checked here too, so its problems stop the run before it
//! starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use super::check::Checker;
use super::prompts::{self, MAX_LENGTH, PromptSet, PromptSource};
use super::raw::{RawAgent, RawNamedWait, RawTool, RawWait, RawWorkload};
use super::trace;
use super::{Agent, Split, ToolStep, Trace, Wait, Workload, WorkloadKind, is_safe_name};

/// Largest trace or prompts file read, bytes.
const MAX_INPUT_FILE_BYTES: u64 = 64 << 20;

/// The text of `path`, if it is at most [`MAX_INPUT_FILE_BYTES`].
fn read_capped(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > MAX_INPUT_FILE_BYTES {
        return Err(format!(
            "is {} bytes; at most {MAX_INPUT_FILE_BYTES}",
            meta.len()
        ));
    }
    std::fs::read_to_string(path).map_err(|e| e.to_string())
}

/// Agents' keys that only an `agent_graph` takes.
const GRAPH_KEYS: &str = "`after`, `fan_out`, `split`, `turns`, `tool` and `max_tokens`";

/// What a graph's first agents are asked when the workload names no task and no data.
const DEFAULT_TASK: &str = "Plan a short study of how the context size and GPU offload of a local LLM server change an agent's latency. List the questions to research as bullet points.";

impl Checker {
    pub(super) fn workload(&mut self, raw: &RawWorkload, base_dir: &Path) -> Workload {
        let kind = raw.kind.value;
        let not_for = |key: &str| format!("`{key}` is not used by a `{}` workload", kind.as_str());
        let data_dir = raw.data_dir.as_ref().map(|d| {
            let p = PathBuf::from(&d.value);
            let p = if p.is_absolute() { p } else { base_dir.join(p) };
            if let Err(e) = std::fs::read_dir(&p) {
                self.report(
                    d,
                    "workload.data_dir",
                    format!("{} is not a readable directory ({e})", p.display()),
                );
            }
            p
        });
        match kind {
            WorkloadKind::AgentReport if data_dir.is_none() => self.report(
                &raw.kind,
                "workload.data_dir",
                "an agent_report workload needs `data_dir`, the folder its first agent reads",
            ),
            WorkloadKind::Trace | WorkloadKind::Prompts => {
                if let Some(d) = &raw.data_dir {
                    self.report(d, "workload.data_dir", not_for("data_dir"));
                }
            }
            _ => {}
        }
        if let Some(t) = &raw.task {
            if kind != WorkloadKind::AgentGraph {
                self.report(t, "workload.task", not_for("task"));
            } else if t.value.trim().is_empty() {
                self.report(t, "workload.task", "must not be empty");
            }
        }
        let task = (kind == WorkloadKind::AgentGraph).then(|| match &raw.task {
            Some(t) => t.value.trim_end().to_owned(),
            None => DEFAULT_TASK.to_owned(),
        });
        let trace = match (&raw.trace, kind) {
            (Some(t), WorkloadKind::Trace) => Some(self.trace(t, raw, base_dir)),
            (Some(t), _) => {
                self.report(t, "workload.trace", not_for("trace"));
                None
            }
            (None, WorkloadKind::Trace) => {
                self.report(
                    &raw.kind,
                    "workload.trace",
                    "a trace workload needs `trace`, the file it replays",
                );
                None
            }
            (None, _) => None,
        };
        if kind != WorkloadKind::Trace {
            self.refuse(
                &raw.time_scale,
                "workload.time_scale",
                &not_for("time_scale"),
            );
            self.refuse(
                &raw.block_tokens,
                "workload.block_tokens",
                &not_for("block_tokens"),
            );
        }
        let prompts = if kind == WorkloadKind::Prompts {
            self.prompt_set(raw, base_dir)
        } else {
            self.refuse(&raw.prompts, "workload.prompts", &not_for("prompts"));
            self.refuse(&raw.column, "workload.column", &not_for("column"));
            self.refuse(&raw.synthetic, "workload.synthetic", &not_for("synthetic"));
            self.refuse(&raw.requests, "workload.requests", &not_for("requests"));
            self.refuse(
                &raw.max_tokens,
                "workload.max_tokens",
                &not_for("max_tokens"),
            );
            self.refuse(
                &raw.ignore_eos,
                "workload.ignore_eos",
                &not_for("ignore_eos"),
            );
            None
        };
        Workload {
            kind,
            data_dir,
            task,
            trace,
            prompts,
        }
    }

    /// A `prompts` workload's prompt set: a file (JSONL, or a CSV column) or synthetic.
    fn prompt_set(&mut self, raw: &RawWorkload, base_dir: &Path) -> Option<PromptSet> {
        let requests = raw
            .requests
            .as_ref()
            .map_or(8, |r| self.range(r, "workload.requests", 1, 100_000));
        let source = match (&raw.prompts, &raw.synthetic) {
            (Some(file), None) => self.prompt_file(file, raw.column.as_ref(), base_dir)?,
            (None, Some(synthetic)) => {
                self.refuse(
                    &raw.column,
                    "workload.column",
                    "`column` names the column of a CSV `prompts` file",
                );
                self.refuse(
                    &raw.max_tokens,
                    "workload.max_tokens",
                    "synthetic prompts draw their reply length from `synthetic.output_tokens`",
                );
                let s = &synthetic.value;
                for (at, field) in [
                    (&s.input_tokens, "workload.synthetic.input_tokens"),
                    (&s.output_tokens, "workload.synthetic.output_tokens"),
                ] {
                    if let Some(problem) = at.value.problem() {
                        self.report(at, field, problem);
                    }
                }
                PromptSource::Synthetic {
                    input_tokens: s.input_tokens.value,
                    output_tokens: s.output_tokens.value,
                    shared_prefix_tokens: s.shared_prefix_tokens.as_ref().map_or(0, |p| {
                        self.range(p, "workload.synthetic.shared_prefix_tokens", 0, MAX_LENGTH)
                    }),
                }
            }
            (Some(file), Some(_)) => {
                self.report(
                    file,
                    "workload.prompts",
                    "a prompts workload takes either a `prompts` file or `synthetic` lengths, not both",
                );
                return None;
            }
            (None, None) => {
                self.report(
                    &raw.kind,
                    "workload.prompts",
                    "a prompts workload needs a `prompts` file (JSONL, or CSV with `column`) or `synthetic` lengths",
                );
                return None;
            }
        };
        let synthetic = matches!(source, PromptSource::Synthetic { .. });
        Some(PromptSet {
            source,
            requests,
            max_tokens: raw
                .max_tokens
                .as_ref()
                .map(|m| self.range(m, "workload.max_tokens", 1, MAX_LENGTH)),
            // Synthetic lengths are meant exactly; a file's prompts end where the model ends.
            ignore_eos: raw.ignore_eos.as_ref().map_or(synthetic, |b| b.value),
        })
    }

    fn prompt_file(
        &mut self,
        at: &Spanned<String>,
        column: Option<&Spanned<String>>,
        base_dir: &Path,
    ) -> Option<PromptSource> {
        let p = PathBuf::from(&at.value);
        let path = if p.is_absolute() { p } else { base_dir.join(p) };
        let csv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        match (csv, column) {
            (true, None) => {
                self.report(
                    at,
                    "workload.column",
                    "a CSV prompts file needs `column`, the header of the prompts' column",
                );
                return None;
            }
            (false, Some(c)) => {
                self.report(
                    c,
                    "workload.column",
                    "`column` is for a CSV prompts file; this one is read as JSONL",
                );
                return None;
            }
            _ => {}
        }
        let text = match read_capped(&path) {
            Ok(t) => t,
            Err(e) => {
                self.report(
                    at,
                    "workload.prompts",
                    format!("cannot read {}: {e}", path.display()),
                );
                return None;
            }
        };
        let parsed = match column {
            Some(c) => prompts::parse_csv(&text, &c.value),
            None => prompts::parse_jsonl(&text),
        };
        match parsed {
            Ok(items) => Some(PromptSource::File {
                sha256: format!("{:x}", Sha256::digest(text.as_bytes())),
                count: items.len(),
                items: Arc::new(items),
                path,
            }),
            Err(e) => {
                self.report(at, "workload.prompts", format!("{}: {e}", path.display()));
                None
            }
        }
    }

    fn trace(&mut self, at: &Spanned<String>, raw: &RawWorkload, base_dir: &Path) -> Trace {
        let format = raw.format.unwrap_or_default();
        let time_scale = raw
            .time_scale
            .as_ref()
            .map_or(1.0, |s| self.range(s, "workload.time_scale", 0.001, 1000.0));
        let block_tokens = raw
            .block_tokens
            .as_ref()
            .map_or(512, |b| self.range(b, "workload.block_tokens", 1, 65_536));
        let p = PathBuf::from(&at.value);
        let path = if p.is_absolute() { p } else { base_dir.join(p) };
        let mut out = Trace {
            path: path.clone(),
            format,
            time_scale,
            block_tokens,
            sha256: String::new(),
            conversations: 0,
            calls: 0,
            items: Arc::new(Vec::new()),
        };
        let text = match read_capped(&path) {
            Ok(t) => t,
            Err(e) => {
                self.report(
                    at,
                    "workload.trace",
                    format!("cannot read {}: {e}", path.display()),
                );
                return out;
            }
        };
        match trace::parse(&text, format, block_tokens) {
            Ok(items) => {
                out.sha256 = format!("{:x}", Sha256::digest(text.as_bytes()));
                out.conversations = items.len();
                out.calls = trace::calls(&items);
                out.items = Arc::new(items);
            }
            Err(e) => self.report(at, "workload.trace", format!("{}: {e}", path.display())),
        }
        out
    }

    /// The agents in an order they can run in: every agent after the ones it reads.
    pub(super) fn agents(
        &mut self,
        raw: Option<&Spanned<BTreeMap<String, RawAgent>>>,
        kind: WorkloadKind,
    ) -> Vec<Agent> {
        let empty = BTreeMap::new();
        let map = raw.map_or(&empty, |r| &r.value);
        match (raw, kind) {
            (Some(r), WorkloadKind::Trace | WorkloadKind::Prompts) if r.value.len() > 1 => self.report(
                r,
                "agents",
                format!("a {} workload takes at most one agent, whose persona is every call's system prompt", kind.as_str()),
            ),
            (Some(r), WorkloadKind::AgentReport | WorkloadKind::AgentGraph) if r.value.is_empty() => {
                self.report(r, "agents", "at least one agent is needed")
            }
            (None, WorkloadKind::AgentReport | WorkloadKind::AgentGraph) => self.problems.push(super::Problem {
                line: None,
                column: None,
                field: "agents".to_owned(),
                message: format!("a `{}` workload needs `agents`", kind.as_str()),
            }),
            _ => {}
        }
        let graph = kind == WorkloadKind::AgentGraph;
        let mut agents: BTreeMap<&str, Agent> = BTreeMap::new();
        for (name, a) in map {
            let field = format!("agents.{name}");
            if !is_safe_name(name) {
                self.report(&a.persona, &field, "agent name is not a safe file name");
            }
            if a.persona.value.trim().is_empty() {
                self.report(&a.persona, &format!("{field}.persona"), "must not be empty");
            }
            let mut agent = Agent::new(name, a.persona.value.trim_end(), None);
            if graph {
                self.node(a, &field, map, &mut agent);
            } else {
                self.not_a_node(a, &field, kind);
                if let Some(c) = &a.consumes {
                    if matches!(kind, WorkloadKind::Trace | WorkloadKind::Prompts) {
                        self.report(
                            c,
                            &format!("{field}.consumes"),
                            format!("a {} workload's agent reads nothing", kind.as_str()),
                        );
                    } else if self.known_agent(c, &format!("{field}.consumes"), map) {
                        agent.consumes = Some(c.value.clone());
                    }
                }
            }
            agents.insert(name, agent);
        }
        let ordered = self.ordered(map, &agents);
        if graph && ordered.len() == agents.len() {
            self.one_final_agent(map, &ordered);
        }
        ordered
    }

    fn known_agent(
        &mut self,
        at: &Spanned<String>,
        field: &str,
        map: &BTreeMap<String, RawAgent>,
    ) -> bool {
        if map.contains_key(&at.value) {
            return true;
        }
        let known: Vec<&str> = map.keys().map(String::as_str).collect();
        self.report(
            at,
            field,
            format!(
                "no agent named `{}` (agents: {})",
                at.value,
                known.join(", ")
            ),
        );
        false
    }

    /// An `agent_graph` node's own keys.
    fn node(
        &mut self,
        a: &RawAgent,
        field: &str,
        map: &BTreeMap<String, RawAgent>,
        agent: &mut Agent,
    ) {
        if let Some(c) = &a.consumes {
            self.report(
                c,
                &format!("{field}.consumes"),
                format!(
                    "an agent_graph names what an agent waits for and reads with `after: [{}]`",
                    c.value
                ),
            );
            // Read as meant, so the shape is checked without a second, derived problem.
            if map.contains_key(&c.value) && c.value != agent.name {
                agent.after.push(c.value.clone());
            }
        }
        for input in a.after.iter().flat_map(|l| &l.value) {
            let at = format!("{field}.after");
            if input.value == agent.name {
                self.report(input, &at, "an agent cannot come after itself");
            } else if self.known_agent(input, &at, map) && !agent.after.contains(&input.value) {
                agent.after.push(input.value.clone());
            }
        }
        if let Some(f) = &a.fan_out {
            agent.fan_out = self.range(f, &format!("{field}.fan_out"), 1, 1024);
        }
        if let Some(t) = &a.turns {
            agent.turns = self.range(t, &format!("{field}.turns"), 1, 64);
        }
        if let Some(m) = &a.max_tokens {
            agent.max_tokens = Some(self.range(m, &format!("{field}.max_tokens"), 1, 1 << 20));
        }
        if let Some(s) = &a.split {
            if agent.fan_out < 2 {
                self.report(
                    s,
                    &format!("{field}.split"),
                    "`split` says what each fan-out instance reads; this agent has no `fan_out` above 1",
                );
            } else if s.value == Split::Items && agent.after.len() > 1 {
                self.report(
                    s,
                    &format!("{field}.split"),
                    "`split: items` takes the items of one input; this agent reads several",
                );
            }
            agent.split = Some(s.value);
        } else if agent.fan_out > 1 {
            agent.split = Some(if agent.after.len() > 1 {
                Split::Same
            } else {
                Split::Items
            });
        }
        if let Some(t) = &a.tool {
            if agent.turns < 2 {
                self.report(
                    t,
                    &format!("{field}.tool"),
                    "a tool step runs between turns; with one turn it never runs (set `turns`)",
                );
            }
            agent.tool = Some(self.tool(&t.value, &format!("{field}.tool")));
        }
    }

    fn tool(&mut self, raw: &RawTool, field: &str) -> ToolStep {
        let at = format!("{field}.wait_ms");
        let w = &raw.wait_ms;
        let ok = |ms: f64| ms.is_finite() && (0.0..=3_600_000.0).contains(&ms);
        let wait = match &w.value {
            RawWait::Fixed(ms) | RawWait::Named(RawNamedWait::Fixed(ms)) => {
                if !ok(*ms) {
                    self.report(w, &at, format!("{ms} must be 0 to 3600000 ms"));
                }
                Wait::Fixed(*ms)
            }
            RawWait::Named(RawNamedWait::Uniform([lo, hi])) => {
                if !(ok(*lo) && ok(*hi) && lo <= hi) {
                    self.report(
                        w,
                        &at,
                        format!("uniform [{lo}, {hi}] needs 0 ≤ low ≤ high ≤ 3600000 ms"),
                    );
                }
                Wait::Uniform([*lo, *hi])
            }
            RawWait::Named(RawNamedWait::Lognormal { median, sigma }) => {
                if !(ok(*median)
                    && *median > 0.0
                    && sigma.is_finite()
                    && (0.0..=3.0).contains(sigma))
                {
                    self.report(w, &at, format!("lognormal needs a median above 0 ms and a sigma of 0 to 3, not {median} and {sigma}"));
                }
                Wait::Lognormal {
                    median: *median,
                    sigma: *sigma,
                }
            }
        };
        let result_tokens = raw.result_tokens.as_ref().map_or(0, |r| {
            self.range(r, &format!("{field}.result_tokens"), 0, 1 << 20)
        });
        ToolStep {
            wait,
            result_tokens,
        }
    }

    /// Reports `key` where it is set, with `message`.
    pub(super) fn refuse<T>(&mut self, key: &Option<Spanned<T>>, field: &str, message: &str) {
        if let Some(at) = key {
            self.report(at, field, message);
        }
    }

    /// Keys of a graph node on an agent of another workload.
    fn not_a_node(&mut self, a: &RawAgent, field: &str, kind: WorkloadKind) {
        let msg = format!(
            "{GRAPH_KEYS} belong to `workload.kind: agent_graph`, not `{}`",
            kind.as_str()
        );
        self.refuse(&a.after, &format!("{field}.after"), &msg);
        self.refuse(&a.fan_out, &format!("{field}.fan_out"), &msg);
        self.refuse(&a.split, &format!("{field}.split"), &msg);
        self.refuse(&a.turns, &format!("{field}.turns"), &msg);
        self.refuse(&a.tool, &format!("{field}.tool"), &msg);
        self.refuse(&a.max_tokens, &format!("{field}.max_tokens"), &msg);
    }

    /// `agents` in an order that puts every agent after its inputs; a cycle is reported
    /// with its path, at the first edge of it, and leaves the order short.
    fn ordered(
        &mut self,
        map: &BTreeMap<String, RawAgent>,
        agents: &BTreeMap<&str, Agent>,
    ) -> Vec<Agent> {
        let mut ordered: Vec<Agent> = Vec::with_capacity(agents.len());
        loop {
            let before = ordered.len();
            for (name, agent) in agents {
                let placed = |n: &str| ordered.iter().any(|a| a.name == n);
                if !placed(name) && agent.inputs().all(placed) {
                    ordered.push(agent.clone());
                }
            }
            if ordered.len() == agents.len() {
                return ordered;
            }
            if ordered.len() == before {
                break;
            }
        }
        // Follow inputs among the unplaced agents until one repeats: that is a cycle.
        let unplaced = |n: &str| !ordered.iter().any(|a| a.name == n);
        let Some(start) = agents.keys().copied().find(|n| unplaced(n)) else {
            return ordered;
        };
        let mut path: Vec<&str> = vec![start];
        let cycle = loop {
            let last = path[path.len() - 1];
            let Some(next) = agents[last].inputs().find(|n| unplaced(n)) else {
                return ordered;
            };
            if let Some(i) = path.iter().position(|p| *p == next) {
                let mut cycle = path[i..].to_vec();
                cycle.push(next);
                break cycle;
            }
            path.push(next);
        };
        // Written in waiting order: `a after b` is the edge a → b.
        let first = cycle[0];
        let raw = &map[first];
        let words = format!(
            "agents wait for each other in a cycle: {}",
            cycle.join(" waits for ")
        );
        if let Some(c) = raw.consumes.as_ref().filter(|c| c.value == cycle[1]) {
            self.report(c, &format!("agents.{first}.consumes"), words);
        } else if let Some(e) = raw
            .after
            .iter()
            .flat_map(|l| &l.value)
            .find(|e| e.value == cycle[1])
        {
            self.report(e, &format!("agents.{first}.after"), words);
        }
        ordered
    }

    /// A job ends with one final agent: every other agent must have one after it.
    fn one_final_agent(&mut self, map: &BTreeMap<String, RawAgent>, agents: &[Agent]) {
        let finals: Vec<&Agent> = agents
            .iter()
            .filter(|a| !agents.iter().any(|b| b.after.contains(&a.name)))
            .collect();
        if finals.len() < 2 {
            return;
        }
        let names: Vec<&str> = finals.iter().map(|a| a.name.as_str()).collect();
        for a in &finals {
            self.report(
                &map[&a.name].persona,
                &format!("agents.{}", a.name),
                format!(
                    "no agent comes after `{}`, so its output reaches no one: a graph ends with one final agent, and {} have none after them ({})",
                    a.name,
                    finals.len(),
                    names.join(", ")
                ),
            );
        }
    }
}
