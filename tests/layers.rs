//! The module layering of ARCHITECTURE.md holds: no top-level module of
//! `src/` imports, directly or through others, a module that imports it back
//! (test code aside), and `config/` imports nothing but `data/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `crate::<module>` references of the non-test code of each top-level module.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let first = rel.components().next().unwrap().as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let is_test = name.ends_with("tests.rs") || name == "test_support.rs" || name == "test_server.rs";
        if is_test || ["bin", "main", "lib", "fuzz_targets"].contains(&module.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
        for (i, _) in code.match_indices("crate::") {
            let used: String = code[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !used.is_empty() && used != module {
                deps.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    deps
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let deps = imports();
    fn reaches(deps: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str, seen: &mut BTreeSet<String>) -> bool {
        deps.get(from).into_iter().flatten().any(|m| m == to || (seen.insert(m.clone()) && reaches(deps, m, to, seen)))
    }
    let mut circles = Vec::new();
    for (module, used) in &deps {
        for u in used {
            if reaches(&deps, u, module, &mut BTreeSet::new()) {
                circles.push(format!("{module} -> {u} -> ... -> {module}"));
            }
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}\nimports: {deps:#?}");
}

#[test]
fn config_is_the_generic_layer() {
    let deps = imports();
    let config: Vec<&String> = deps.get("config").into_iter().flatten().collect();
    assert_eq!(config, vec!["data"], "config/ may use only data/");
    // The components sit above config/ and below the registry.
    for kind in ["receivers", "processors", "exporters", "connectors", "extensions"] {
        let used = deps.get(kind).cloned().unwrap_or_default();
        for above in ["components", "service", "pipeline"] {
            assert!(!used.contains(above), "{kind} imports {above}");
        }
    }
}
