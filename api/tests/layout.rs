//! The modules of `src/` depend on each other in one direction only: no import cycle.

use std::collections::{BTreeMap, BTreeSet};

/// Module → the modules it names as `crate::x` (or in `use crate::{x, y}`).
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let module = path.file_stem().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        // Unit tests may reach anywhere; only the module's own code counts.
        let code = source.split("#[cfg(test)]\nmod tests").next().unwrap();
        let mut names = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let named: Vec<&str> = match rest.strip_prefix('{') {
                Some(list) => list[..list.find('}').unwrap()].split(',').collect(),
                None => vec![rest],
            };
            for name in named {
                let name: String = name
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    names.insert(name);
                }
            }
        }
        graph.insert(module, names);
    }
    graph
}

/// A cycle through `module`, if one exists (depth-first search).
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    module: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(start) = path.iter().position(|m| m == module) {
        return Some(path[start..].to_vec());
    }
    path.push(module.to_owned());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(found) = cycle(graph, next, path) {
            return Some(found);
        }
    }
    path.pop();
    None
}

#[test]
fn modules_import_each_other_without_cycles() {
    let graph = imports();
    assert!(graph.len() > 10, "{graph:?}");
    assert!(
        graph["server"].contains("routes"),
        "the parser sees imports"
    );
    for module in graph.keys() {
        if let Some(found) = cycle(&graph, module, &mut Vec::new()) {
            panic!("import cycle: {}", found.join(" → "));
        }
    }
}
