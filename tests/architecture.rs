//! docs/architecture.md's module graph is the code's: each library module's line there
//! lists exactly the modules its code imports (`crate::…`, outside `#[cfg(test)]` items).
//! A change that adds or drops an import fails here until the diagram says so too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dlq_triage_test_support::fixtures::repo_path;

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The graph as docs/architecture.md draws it: the lines `module → a b c` of the block
/// after the marker.
fn documented() -> Graph {
    let doc = std::fs::read_to_string(repo_path("docs/architecture.md")).unwrap();
    let marker = "<!-- module graph: checked by tests/architecture.rs -->";
    let after = &doc[doc.find(marker).expect("the module graph's marker") + marker.len()..];
    let block = after
        .split("```")
        .nth(1)
        .expect("a fenced block after the marker");
    let mut graph = Graph::new();
    for line in block.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let (module, imports) = line
            .split_once('→')
            .unwrap_or_else(|| panic!("not `module → imports`: {line:?}"));
        let imports = imports.split_whitespace().map(str::to_owned).collect();
        graph.insert(module.trim().to_owned(), imports);
    }
    graph
}

/// The graph the code has: for each top-level module of src/ (a file or a folder), the
/// other top-level modules its non-test code names through `crate::`.
fn actual() -> Graph {
    let src = repo_path("src");
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "bin" {
            continue;
        }
        let mut imports = BTreeSet::new();
        for file in rust_files(&path) {
            if file.file_name().is_some_and(|f| f == "tests.rs") {
                continue;
            }
            let code = without_test_items(&std::fs::read_to_string(&file).unwrap());
            imports.extend(crate_paths(&code));
        }
        imports.remove(&name);
        graph.insert(name, imports);
    }
    graph
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return vec![path.to_owned()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        files.extend(rust_files(&entry.unwrap().path()));
    }
    files
}

/// `code` without the items marked `#[cfg(test)]` (a `mod tests { … }`, a twin's `impl`).
fn without_test_items(code: &str) -> String {
    let mut kept = String::new();
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "#[cfg(test)]" {
            kept.push_str(line);
            kept.push('\n');
            continue;
        }
        // Skip the item: to its `;` when it has no body, else until its braces close.
        let mut depth = 0i32;
        for line in lines.by_ref() {
            depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
            let trimmed = line.trim_end();
            if depth <= 0 && (trimmed.ends_with('}') || trimmed.ends_with(';')) {
                break;
            }
        }
    }
    kept
}

/// The top-level modules named in `code` as `crate::name` (in `use` lines, paths in
/// code, and `use crate::{a, b::{c, d}}` groups, over as many lines as they take),
/// comments left out.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let code: Vec<&str> = code
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect();
    let code = code.join("\n");
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            found.extend(group_items(group).filter_map(|p| first_segment(p.trim())));
        } else {
            found.extend(first_segment(rest));
        }
    }
    found
}

/// The items of the group `group` opens (the text after its `{`), up to its closing
/// brace: split at its own commas, not at those of a nested group.
fn group_items(group: &str) -> impl Iterator<Item = &str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items.into_iter();
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items.into_iter()
}

/// A loop of imports in `graph` (`a → b → … → a`), if there is one.
fn cycle(graph: &Graph) -> Option<Vec<String>> {
    // Depth first; `path` is the chain being explored, `done` the modules with no loop
    // below them.
    fn visit<'g>(
        module: &'g str,
        graph: &'g Graph,
        path: &mut Vec<&'g str>,
        done: &mut BTreeSet<&'g str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| *m == module) {
            let mut found: Vec<String> = path[at..].iter().map(|m| (*m).to_owned()).collect();
            found.push(module.to_owned());
            return Some(found);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module);
        for import in graph.get(module).into_iter().flatten() {
            if let Some(found) = visit(import, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(module);
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut Vec::new(), &mut done))
}

fn first_segment(path: &str) -> Option<String> {
    let name: String = path
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    // `crate::Name` (a re-export at the root) is not a module.
    (!name.is_empty() && name.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .then_some(name)
}

#[test]
fn the_documented_module_graph_is_the_codes() {
    let (doc, code) = (documented(), actual());
    let mut wrong = Vec::new();
    for module in doc.keys().chain(code.keys()).collect::<BTreeSet<_>>() {
        let (d, c) = (doc.get(module), code.get(module));
        match (d, c) {
            (None, _) => wrong.push(format!("{module}: missing from the diagram")),
            (_, None) => wrong.push(format!("{module}: in the diagram, not in src/")),
            (Some(d), Some(c)) if d != c => {
                let added: Vec<_> = c.difference(d).collect();
                let gone: Vec<_> = d.difference(c).collect();
                wrong.push(format!(
                    "{module}: the code also imports {added:?}; the diagram also draws {gone:?}"
                ));
            }
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "docs/architecture.md's module graph disagrees with the code:\n{}\n\nThe code's graph:\n{}",
        wrong.join("\n"),
        code.iter()
            .map(|(m, i)| format!("{m} → {}", i.iter().cloned().collect::<Vec<_>>().join(" ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_module_imports_one_that_imports_it() {
    if let Some(found) = cycle(&actual()) {
        panic!("an import cycle: {}", found.join(" → "));
    }
}

#[test]
fn each_module_imports_only_modules_listed_below_it() {
    let order = documented_order();
    let wrong = upward_imports(&order, &documented());
    assert!(
        wrong.is_empty(),
        "docs/architecture.md lists the modules top down; these import one listed above them:\n{}",
        wrong.join("\n")
    );
}

/// The modules in the order docs/architecture.md's graph lists them, top down.
fn documented_order() -> Vec<String> {
    let doc = std::fs::read_to_string(repo_path("docs/architecture.md")).unwrap();
    let marker = "<!-- module graph: checked by tests/architecture.rs -->";
    let after = &doc[doc.find(marker).expect("the module graph's marker") + marker.len()..];
    let block = after.split("```").nth(1).expect("a fenced block");
    block
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('→'))
        .map(|(m, _)| m.trim().to_owned())
        .collect()
}

/// `module → import` pairs of `graph` where the import is listed above the module in
/// `order` (or not listed at all).
fn upward_imports(order: &[String], graph: &Graph) -> Vec<String> {
    let rank = |m: &str| order.iter().position(|o| o == m);
    let mut wrong = Vec::new();
    for (module, imports) in graph {
        for import in imports {
            match (rank(module), rank(import)) {
                (Some(m), Some(i)) if i > m => {}
                _ => wrong.push(format!("{module} → {import}")),
            }
        }
    }
    wrong
}

#[test]
fn test_items_and_comments_are_not_imports() {
    let code = "use crate::a::X;\n// crate::b\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\nfn f() { crate::d::g(); }\nuse crate::{e::Y, f};\n#[cfg(test)]\nuse crate::h;\n";
    let kept = without_test_items(code);
    assert_eq!(
        crate_paths(&kept),
        ["a", "d", "e", "f"].map(str::to_owned).into()
    );
}

#[test]
fn a_multi_line_group_names_each_of_its_modules() {
    let code = "use crate::{\n    a::{X, y},\n    // crate::b\n    c::Z,\n    d,\n};\nuse crate::e::{self, F};\n";
    assert_eq!(
        crate_paths(code),
        ["a", "c", "d", "e"].map(str::to_owned).into()
    );
}

#[test]
fn the_checker_finds_a_cycle_and_passes_a_layered_graph() {
    let graph = |edges: &[(&str, &[&str])]| -> Graph {
        edges
            .iter()
            .map(|(m, i)| ((*m).to_owned(), i.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    };
    let layered = graph(&[("a", &["b", "c"]), ("b", &["c"]), ("c", &[])]);
    assert_eq!(cycle(&layered), None);
    let order: Vec<String> = ["a", "b", "c"].map(str::to_owned).into();
    assert!(upward_imports(&order, &layered).is_empty());

    let looped = graph(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
    assert_eq!(
        cycle(&looped),
        Some(["a", "b", "c", "a"].map(str::to_owned).into())
    );
    assert_eq!(upward_imports(&order, &looped), ["c → a"]);
}
