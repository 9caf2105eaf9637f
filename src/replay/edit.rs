//! `--edit PROGRAM`: a jq program (run by the jaq crates, no external `jq`) that repairs
//! each payload before it is planned and sent. The stored payload is never changed.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Native, Vars, data, unwrap_valr};
use jaq_json::Val;

type Filter = jaq_core::compile::Filter<Native<data::JustLut<Val>>>;

/// A compiled `--edit` program.
pub(crate) struct Edit {
    filter: Filter,
}

/// What a program made of one payload.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Edited {
    /// The same value: the stored bytes are sent as they are.
    Unchanged,
    /// A different value, as JSON text.
    Changed(Vec<u8>),
    /// The program yields nothing (`empty`, a `select` that fails): not sent.
    Dropped,
    /// The program failed on it, or yields more than one value: why.
    Failed(String),
}

/// Why an `--edit` program cannot be used: each problem found, as one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The program does not parse (unreadable input, unexpected tokens).
    #[error("the --edit program does not parse: {}", .0.join("; "))]
    Parse(Vec<String>),
    /// The program names filters or variables that are not defined.
    #[error("the --edit program does not compile: {}", .0.join("; "))]
    Compile(Vec<String>),
}

impl std::fmt::Debug for Edit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Edit")
    }
}

impl Edit {
    /// Compiles `code`; an error says in one line why it does not compile.
    pub(crate) fn compile(code: &str) -> Result<Edit, EditError> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs());
        let funs = jaq_core::funs()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs());
        let arena = Arena::default();
        let modules = Loader::new(defs)
            .load(&arena, File { code, path: () })
            .map_err(|errors| {
                let why: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, e)| match e {
                        jaq_core::load::Error::Io(io) => {
                            io.iter().map(|(_, m)| m.clone()).collect::<Vec<_>>()
                        }
                        jaq_core::load::Error::Lex(lex) => lex
                            .iter()
                            .map(|(expect, at)| {
                                format!("expected {} at {:?}", expect.as_str(), near(at))
                            })
                            .collect(),
                        jaq_core::load::Error::Parse(parse) => parse
                            .iter()
                            .map(|(expect, at)| {
                                format!("expected {} at {:?}", expect.as_str(), near(at))
                            })
                            .collect(),
                    })
                    .collect();
                EditError::Parse(why)
            })?;
        let filter = Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errors| {
                let why: Vec<String> = errors
                    .iter()
                    .flat_map(|(_, es)| es.iter())
                    .map(|(name, undefined)| {
                        format!("{} {name} is not defined", undefined.as_str())
                    })
                    .collect();
                EditError::Compile(why)
            })?;
        Ok(Edit { filter })
    }

    /// The program applied to `payload` (a JSON document).
    pub(crate) fn apply(&self, payload: &[u8]) -> Edited {
        let input = match jaq_json::read::parse_single(payload) {
            Ok(v) => v,
            Err(e) => return Edited::Failed(format!("the payload is not JSON: {e}")),
        };
        let ctx = Ctx::<data::JustLut<Val>>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = self.filter.id.run((ctx, input.clone())).map(unwrap_valr);
        let first = match outputs.next() {
            None => return Edited::Dropped,
            Some(Err(e)) => return Edited::Failed(format!("the --edit program failed: {e}")),
            Some(Ok(v)) => v,
        };
        if outputs.next().is_some() {
            return Edited::Failed(
                "the --edit program yields more than one value; one event is replayed as one"
                    .into(),
            );
        }
        if first == input {
            return Edited::Unchanged;
        }
        let text = first.to_string();
        // What is sent must be JSON as any consumer reads it.
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(_) => Edited::Changed(text.into_bytes()),
            Err(e) => Edited::Failed(format!(
                "the --edit program made something that is not JSON: {e}"
            )),
        }
    }
}

/// The start of the program text an error points at.
fn near(at: &str) -> String {
    at.chars().take(20).collect()
}

/// A unified diff of `original` → `edited`, both indented first so a change shows on the
/// lines it touches.
pub(crate) fn diff(original: &[u8], edited: &[u8]) -> String {
    let pretty = |b: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(b)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| String::from_utf8_lossy(b).into_owned())
    };
    let (a, b) = (pretty(original), pretty(edited));
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(2)
        .header("stored", "edited")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str =
        r#"{"id":"e1","detail":{"version":2,"old":"x","drop":true,"eventBody":{"n":1}}}"#;

    fn edited(program: &str) -> Edited {
        Edit::compile(program).unwrap().apply(EVENT.as_bytes())
    }

    fn json(e: Edited) -> serde_json::Value {
        match e {
            Edited::Changed(b) => serde_json::from_slice(&b).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn jq_programs_repair_payloads() {
        // Delete a field.
        let v = json(edited("del(.detail.drop)"));
        assert!(v["detail"].get("drop").is_none());
        // Rename one.
        let v = json(edited(".detail.new = .detail.old | del(.detail.old)"));
        assert_eq!(v["detail"]["new"], "x");
        assert!(v["detail"].get("old").is_none());
        // Fix a type.
        let v = json(edited(".detail.version |= tostring"));
        assert_eq!(v["detail"]["version"], "2");
        // The rest stays as it was.
        assert_eq!(v["detail"]["eventBody"]["n"], 1);
    }

    #[test]
    fn unchanged_dropped_and_failed_are_told_apart() {
        assert_eq!(edited("."), Edited::Unchanged);
        assert_eq!(edited(".detail.version |= . + 0"), Edited::Unchanged);
        assert_eq!(edited(r#"select(.id != "e1")"#), Edited::Dropped);
        assert_eq!(edited("empty"), Edited::Dropped);
        assert!(matches!(edited(r#"error("no")"#), Edited::Failed(e) if e.contains("no")));
        assert!(matches!(edited(".[]?, ."), Edited::Failed(e) if e.contains("more than one")));
        let not_json = Edit::compile(".").unwrap().apply(b"not json");
        assert!(matches!(not_json, Edited::Failed(e) if e.contains("not JSON")));
    }

    #[test]
    fn a_program_that_does_not_compile_is_one_line() {
        for bad in [".detail |", "nosuchfunction(1)", "{"] {
            let e = Edit::compile(bad).unwrap_err().to_string();
            assert!(e.starts_with("the --edit program does not"), "{e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn the_diff_shows_the_changed_lines() {
        let edited = br#"{"id":"e1","detail":{"version":"2"}}"#;
        let d = diff(br#"{"id":"e1","detail":{"version":2}}"#, edited);
        assert!(d.contains("--- stored") && d.contains("+++ edited"), "{d}");
        assert!(
            d.contains("-    \"version\": 2") && d.contains("+    \"version\": \"2\""),
            "{d}"
        );
    }
}
