//! Where a job's time went: from the spans of its agent instances (start, end, time in
//! LLM calls and tool waits, and the spans each one waited for), the critical path and
//! the time lost waiting for siblings.

use std::time::Instant;

use crate::results::{JobTiming, PathStep};

/// One agent instance of a job, as it ran.
#[derive(Debug, Clone)]
pub struct Span {
    /// Agent (graph node) or conversation.
    pub node: String,
    /// Fan-out instance, 0-based.
    pub instance: u32,
    /// When it started (its inputs were ready).
    pub start: Instant,
    /// When its last call ended.
    pub end: Instant,
    /// Time in LLM calls, ms.
    pub llm_ms: f64,
    /// Time in tool waits, ms.
    pub tool_ms: f64,
    /// Indices of the spans it waited for.
    pub after: Vec<usize>,
}

impl Span {
    fn ms(&self) -> f64 {
        self.end.saturating_duration_since(self.start).as_secs_f64() * 1e3
    }
}

/// The timing of a job made of `spans`: its critical path runs back from the span that
/// ended last through, at each step, the input that ended last (the one it really waited
/// for).
pub fn timing(spans: &[Span]) -> JobTiming {
    let latest = |indices: &mut dyn Iterator<Item = usize>| {
        indices.max_by(|&a, &b| spans[a].end.cmp(&spans[b].end).then(b.cmp(&a)))
    };
    let mut path = Vec::new();
    let mut at = latest(&mut (0..spans.len()));
    while let Some(i) = at {
        path.push(i);
        at = latest(&mut spans[i].after.iter().copied());
    }
    path.reverse();
    let critical_path: Vec<PathStep> = path
        .iter()
        .map(|&i| {
            let s = &spans[i];
            PathStep {
                node: s.node.clone(),
                instance: s.instance,
                ms: s.ms(),
                llm_ms: s.llm_ms,
                tool_ms: s.tool_ms,
            }
        })
        .collect();
    JobTiming {
        llm_ms: critical_path.iter().map(|p| p.llm_ms).sum(),
        tool_ms: critical_path.iter().map(|p| p.tool_ms).sum(),
        sibling_wait_ms: sibling_wait_ms(spans),
        critical_path,
    }
}

/// Summed over nodes with several instances: the mean time from an instance's end to the
/// end of the node's last instance.
fn sibling_wait_ms(spans: &[Span]) -> f64 {
    let mut nodes: Vec<&str> = spans.iter().map(|s| s.node.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
        .into_iter()
        .map(|node| {
            let ends: Vec<Instant> = spans
                .iter()
                .filter(|s| s.node == node)
                .map(|s| s.end)
                .collect();
            let Some(&last) = ends.iter().max() else {
                return 0.0;
            };
            if ends.len() < 2 {
                return 0.0;
            }
            let waits: f64 = ends
                .iter()
                .map(|&e| last.saturating_duration_since(e).as_secs_f64() * 1e3)
                .sum();
            waits / ends.len() as f64
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn span(node: &str, instance: u32, t0: Instant, from: u64, to: u64, after: &[usize]) -> Span {
        Span {
            node: node.to_owned(),
            instance,
            start: t0 + Duration::from_millis(from),
            end: t0 + Duration::from_millis(to),
            llm_ms: (to - from) as f64 * 0.75,
            tool_ms: (to - from) as f64 * 0.25,
            after: after.to_vec(),
        }
    }

    #[test]
    fn the_critical_path_runs_through_the_slowest_sibling() {
        let t0 = Instant::now();
        // planner 0–100; researchers 100–300, 100–500, 100–200; writer 500–600.
        let spans = [
            span("planner", 0, t0, 0, 100, &[]),
            span("researcher", 0, t0, 100, 300, &[0]),
            span("researcher", 1, t0, 100, 500, &[0]),
            span("researcher", 2, t0, 100, 200, &[0]),
            span("writer", 0, t0, 500, 600, &[1, 2, 3]),
        ];
        let t = timing(&spans);
        let path: Vec<(&str, u32)> = t
            .critical_path
            .iter()
            .map(|p| (p.node.as_str(), p.instance))
            .collect();
        assert_eq!(path, [("planner", 0), ("researcher", 1), ("writer", 0)]);
        let ms: Vec<f64> = t.critical_path.iter().map(|p| p.ms).collect();
        assert_eq!(ms, [100.0, 400.0, 100.0]);
        assert!((t.llm_ms - 450.0).abs() < 1e-9 && (t.tool_ms - 150.0).abs() < 1e-9);
        // Instances ended 200, 0 and 300 ms before the last: 500 / 3 on average.
        assert!(
            (t.sibling_wait_ms - 500.0 / 3.0).abs() < 1e-9,
            "{}",
            t.sibling_wait_ms
        );
    }

    #[test]
    fn no_spans_no_path() {
        let t = timing(&[]);
        assert!(t.critical_path.is_empty());
        assert_eq!(t.sibling_wait_ms, 0.0);
    }
}
