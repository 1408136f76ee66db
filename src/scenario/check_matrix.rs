//! The checker's part for `matrix:`: variants generated from lists of option values, one
//! per combination not excluded, named systematically from the values (`ctx512-gpu40`,
//! with an optional prefix) so arms and gates can name them. Each value is range-checked
//! once, where it is written, by the same check as a variant's `options:`.

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

use super::check::{Checker, openai_refusal};
use super::raw::{RawAxes, RawMatrix, RawOptions};
use super::{ModelOptions, Variant, is_safe_name};

/// Most variants one matrix may generate.
const MAX_GENERATED: usize = 256;

/// One value of one option list.
struct Level {
    /// The option's name (`num_ctx`).
    key: &'static str,
    /// Its part of a generated name (`ctx512`).
    part: String,
    /// The value, for `exclude:`.
    value: f64,
    /// The options it sets (that one field).
    options: ModelOptions,
}

/// Turns each option list of `$axes` into levels, range-checking each value where it is.
macro_rules! levels {
    ($checker:ident, $axes:ident, $out:ident, $( $field:ident $short:literal $wrap:expr ),+ $(,)?) => {
        $(
            if let Some(list) = &$axes.$field {
                let field = concat!("matrix.options.", stringify!($field));
                if list.value.is_empty() {
                    $checker.report(list, field, "lists no value");
                }
                let mut levels: Vec<Level> = Vec::new();
                for v in &list.value {
                    let raw = RawOptions { $field: $wrap(v), ..RawOptions::default() };
                    let options = $checker.options(&raw, "matrix.options");
                    let value = v.value as f64;
                    if levels.iter().any(|l| l.value == value) {
                        $checker.report(v, field, format!("{} is listed twice", v.value));
                        continue;
                    }
                    levels.push(Level {
                        key: stringify!($field),
                        part: format!("{}{}", $short, v.value),
                        value,
                        options,
                    });
                }
                $out.push(levels);
            }
        )+
    };
}

fn spanned<T: Copy>(v: &Spanned<T>) -> Option<Spanned<T>> {
    Some(Spanned::new(v.value, v.referenced, v.defined))
}

fn plain(v: &Spanned<i64>) -> Option<i64> {
    Some(v.value)
}

/// The options set by either, `a` first.
fn either(a: ModelOptions, b: &ModelOptions) -> ModelOptions {
    ModelOptions {
        num_gpu: a.num_gpu.or(b.num_gpu),
        num_ctx: a.num_ctx.or(b.num_ctx),
        temperature: a.temperature.or(b.temperature),
        top_p: a.top_p.or(b.top_p),
        top_k: a.top_k.or(b.top_k),
        repeat_penalty: a.repeat_penalty.or(b.repeat_penalty),
        seed: a.seed.or(b.seed),
        num_predict: a.num_predict.or(b.num_predict),
    }
}

impl Checker {
    /// Adds the variants `raw` generates to `variants`; `openai_ignored` is `Some` (the
    /// options the scenario lets go unsent) when the backend is OpenAI-compatible.
    pub(super) fn matrix(
        &mut self,
        raw: &Spanned<RawMatrix>,
        model: &str,
        variants: &mut BTreeMap<String, Variant>,
        openai_ignored: Option<&[String]>,
    ) {
        let m = &raw.value;
        if let Some(ignored) = openai_ignored {
            let axes = &m.options.value;
            for (key, list) in [("num_ctx", &axes.num_ctx), ("num_gpu", &axes.num_gpu)] {
                if let (Some(at), false) = (list, ignored.iter().any(|i| i == key)) {
                    self.report(at, &format!("matrix.options.{key}"), openai_refusal(key));
                }
            }
        }
        let axes = self.axes(&m.options.value);
        if axes.is_empty() {
            self.report(&m.options, "matrix.options", "lists no option to vary");
            return;
        }
        let mut combos: Vec<Vec<&Level>> = vec![Vec::new()];
        for levels in &axes {
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    levels.iter().map(move |l| {
                        let mut c = c.clone();
                        c.push(l);
                        c
                    })
                })
                .collect();
        }
        for (i, entry) in m.exclude.iter().flat_map(|e| &e.value).enumerate() {
            let field = format!("matrix.exclude[{i}]");
            let mut known = true;
            for (key, v) in &entry.value {
                if !axes.iter().any(|l| l[0].key == key) {
                    self.report(
                        v,
                        &field,
                        format!("`{key}` is not an option the matrix varies"),
                    );
                    known = false;
                }
            }
            let matches = |c: &Vec<&Level>| {
                entry.value.iter().all(|(key, v)| {
                    c.iter()
                        .any(|l| l.key == key && (l.value - v.value).abs() < 1e-9)
                })
            };
            let before = combos.len();
            combos.retain(|c| !matches(c));
            if known && combos.len() == before {
                self.report(entry, &field, "excludes no combination of the matrix");
            }
        }
        if combos.len() > MAX_GENERATED {
            self.report(
                raw,
                "matrix",
                format!(
                    "generates {} variants; at most {MAX_GENERATED} (exclude some, or split the experiment)",
                    combos.len()
                ),
            );
            return;
        }
        let prefix = m.prefix.as_ref().map(|p| p.value.as_str());
        for combo in combos {
            let parts: Vec<&str> = combo.iter().map(|l| l.part.as_str()).collect();
            let name = match prefix {
                Some(p) => format!("{p}-{}", parts.join("-")),
                None => parts.join("-"),
            };
            if !is_safe_name(&name) {
                self.report(
                    raw,
                    "matrix",
                    format!("the generated name `{name}` is not a safe file name"),
                );
                continue;
            }
            if variants.contains_key(&name) {
                self.report(
                    raw,
                    "matrix",
                    format!("generates `{name}`, which `variants:` names too"),
                );
                continue;
            }
            let options = combo
                .iter()
                .fold(ModelOptions::default(), |o, l| either(o, &l.options));
            let label = options.label();
            variants.insert(
                name.clone(),
                Variant {
                    name,
                    description: Some(match &m.description {
                        Some(d) => format!("{d} ({label})"),
                        None => format!("matrix: {label}"),
                    }),
                    model: m.model.clone().unwrap_or_else(|| model.to_owned()),
                    options,
                    keep_alive: m.keep_alive.clone(),
                },
            );
        }
    }

    /// The option lists, in the order of a variant's options, each with where it is.
    fn axes(&mut self, a: &RawAxes) -> Vec<Vec<Level>> {
        let mut out = Vec::new();
        levels!(self, a, out,
            num_gpu "gpu" spanned,
            num_ctx "ctx" spanned,
            temperature "temp" spanned,
            top_p "topp" spanned,
            top_k "topk" spanned,
            repeat_penalty "rep" spanned,
            seed "seed" plain,
            num_predict "np" spanned,
        );
        out.retain(|levels| !levels.is_empty());
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::{Problem, Scenario};

    fn parse(matrix: &str, arms: &str, baseline: &str) -> Result<Scenario, Vec<Problem>> {
        let text = format!(
            "name: m\nmodel: x\nworkload: {{ kind: agent_report, data_dir: data }}\nagents: {{ a: {{ persona: p }} }}\nvariants: {{ base: {{}} }}\n{matrix}\narms: {arms}\ntrials: 2\n{baseline}"
        );
        Scenario::parse(
            &text,
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
            None,
        )
    }

    const MATRIX: &str = "matrix:\n  prefix: c\n  options:\n    num_ctx: [512, 2048, 8192]\n    num_gpu: [40, 80]\n    temperature: [0.7]\n  exclude:\n    - { num_ctx: 8192, num_gpu: 40 }";

    #[test]
    fn every_combination_but_the_excluded_becomes_a_named_variant() {
        let s = parse(
            MATRIX,
            "[[base], [c-gpu80-ctx8192-temp0.7]]",
            "baseline: base",
        )
        .unwrap();
        let names: Vec<&str> = s.variants.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "base",
                "c-gpu40-ctx2048-temp0.7",
                "c-gpu40-ctx512-temp0.7",
                "c-gpu80-ctx2048-temp0.7",
                "c-gpu80-ctx512-temp0.7",
                "c-gpu80-ctx8192-temp0.7"
            ]
        );
        let v = s.variant("c-gpu80-ctx8192-temp0.7");
        assert_eq!(
            (v.options.num_gpu, v.options.num_ctx, v.options.temperature),
            (Some(80), Some(8192), Some(0.7))
        );
        assert_eq!(
            v.description.as_deref(),
            Some("matrix: num_ctx=8192, num_gpu=80, temperature=0.7")
        );
        assert_eq!(s.baseline, "base");
    }

    #[test]
    fn matrix_mistakes_are_reported_where_they_are() {
        let fields = |r: Result<Scenario, Vec<Problem>>| -> Vec<(String, Option<u64>, String)> {
            r.unwrap_err()
                .into_iter()
                .map(|p| (p.field, p.line, p.message))
                .collect()
        };
        // A value out of range, at its line; a value twice; an exclude that names an option
        // the matrix does not vary, and one that matches nothing.
        let bad = MATRIX
            .replace("[512, 2048, 8192]", "[0, 2048, 2048]")
            .replace(
                "{ num_ctx: 8192, num_gpu: 40 }",
                "{ top_k: 5 }\n    - { num_ctx: 8192 }",
            );
        let found = fields(parse(&bad, "[[base]]", "baseline: base"));
        let at: Vec<(&str, Option<u64>)> = found.iter().map(|(f, l, _)| (f.as_str(), *l)).collect();
        assert_eq!(
            at,
            [
                ("matrix.options.num_ctx", Some(9)),
                ("matrix.options.num_ctx", Some(9)),
                ("matrix.exclude[0]", Some(13)),
                ("matrix.exclude[1]", Some(14)),
            ],
            "{found:?}"
        );
        assert!(found[0].2.contains("out of range"), "{found:?}");
        assert!(found[1].2.contains("2048 is listed twice"), "{found:?}");
        assert!(
            found[2]
                .2
                .contains("`top_k` is not an option the matrix varies")
        );
        assert!(found[3].2.contains("excludes no combination"));

        // The baseline must be named; an arm naming a variant the matrix does not make lists
        // the ones it does.
        let found = fields(parse(MATRIX, "[[c-gpu40-ctx8192-temp0.7]]", ""));
        let message = |field: &str| {
            found
                .iter()
                .find(|(f, _, _)| f == field)
                .map(|(_, _, m)| m.clone())
                .unwrap_or_default()
        };
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            message("arms[0][0]").contains("c-gpu80-ctx8192-temp0.7"),
            "{found:?}"
        );
        assert!(
            message("baseline").contains("names its baseline"),
            "{found:?}"
        );

        // A generated name that `variants:` uses already.
        let clash = parse(
            "matrix: { options: { num_ctx: [512, 1024] } }",
            "[[base]]",
            "baseline: base",
        )
        .unwrap();
        assert!(clash.variants.contains_key("ctx512") && clash.variants.contains_key("ctx1024"));
        let text = "name: m\nmodel: x\nworkload: { kind: agent_report, data_dir: data }\nagents: { a: { persona: p } }\nvariants: { ctx512: {} }\nmatrix: { options: { num_ctx: [512, 1024] } }\narms: [[ctx512]]\ntrials: 2\nbaseline: ctx512\n";
        let found = Scenario::parse(
            text,
            &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios"),
            None,
        )
        .unwrap_err();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .contains("generates `ctx512`, which `variants:` names too"),
            "{found:?}"
        );
    }
}
