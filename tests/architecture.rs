//! The house rules, checked on the sources (docs/architecture.md): no two source files import
//! each other, and no hand-written source file is over 600 lines.
//!
//! An import is a `crate::` or `super::` path (in `use` trees, expressions and doc links) in a
//! file's text before its `#[cfg(test)]` module; it is resolved to the longest module path
//! that is a file. A folder's `mod.rs` declaring and re-exporting its children (`mod x;`,
//! `pub use x::Y;`) is not an import. Paths inside an inline `mod { }` are read as if written
//! at the file's level: write `crate::` paths there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Source roots checked: the daemon's crate and the trainer's.
const ROOTS: [&str; 2] = ["src", "tools/train/src"];
const MAX_LINES: usize = 600;
/// Generated files carry this in their first lines and are exempt from the size rule.
const GENERATED: &str = "@generated";

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read a source folder").flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file relative to its crate root (`a/b.rs` and `a/b/mod.rs` are `a::b`).
fn module_of(root: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root).expect("file under its root").with_extension("");
    let mut segs: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(segs.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        segs.pop();
    }
    segs
}

/// The file holding the longest prefix of `segs` that is a module.
fn file_of(root: &Path, segs: &[String]) -> Option<PathBuf> {
    for n in (0..=segs.len()).rev() {
        let base = segs[..n].iter().fold(root.to_path_buf(), |p, s| p.join(s));
        let candidates = if n == 0 {
            vec![root.join("lib.rs"), root.join("main.rs")]
        } else {
            vec![base.with_extension("rs"), base.join("mod.rs")]
        };
        if let Some(f) = candidates.into_iter().find(|c| c.is_file()) {
            return Some(f);
        }
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parses a use tree at `s[i..]` (after its prefix): `a::b`, `a::{b, c::{d}}`, `self`.
/// Returns the full paths and where parsing stopped.
fn tree(s: &[char], mut i: usize, prefix: &[String], out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix.to_vec();
    loop {
        while i < s.len() && s[i].is_whitespace() {
            i += 1;
        }
        if i < s.len() && s[i] == '{' {
            i += 1;
            loop {
                i = tree(s, i, &path, out);
                while i < s.len() && (s[i].is_whitespace() || s[i] == ',') {
                    i += 1;
                }
                if i >= s.len() || s[i] == '}' {
                    return i + 1;
                }
            }
        }
        let start = i;
        while i < s.len() && is_ident(s[i]) {
            i += 1;
        }
        if i == start {
            break;
        }
        let ident: String = s[start..i].iter().collect();
        if ident != "self" {
            path.push(ident);
        }
        if s.get(i) == Some(&':') && s.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            break;
        }
    }
    // `x as y` and the rest of an expression are not part of the path.
    out.push(path);
    i
}

/// Every `crate::` / `super::` path in `text`, as module paths of the crate.
fn imports(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let s: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let boundary = i == 0 || !(is_ident(s[i - 1]) || s[i - 1] == ':');
        let rest = |w: &str| s[i..].iter().take(w.len()).copied().eq(w.chars());
        if boundary && (rest("crate::") || rest("super::")) {
            let mut base: Vec<String> = Vec::new();
            let mut j = i;
            if rest("crate::") {
                j += "crate::".len();
            } else {
                base = module.to_vec();
                while s[j..].iter().take(7).copied().eq("super::".chars()) {
                    base.pop();
                    j += 7;
                }
            }
            let mut paths = Vec::new();
            i = tree(&s, j, &base, &mut paths);
            out.extend(paths);
        } else {
            i += 1;
        }
    }
    out
}

/// The file's text before its test module (`#[cfg(test)]` on a `mod`).
fn code_of(text: &str) -> &str {
    let mut from = 0;
    while let Some(i) = text[from..].find("#[cfg(test)]").map(|i| from + i) {
        let after = text[i + "#[cfg(test)]".len()..].trim_start();
        if after.starts_with("mod ") || after.starts_with("pub mod ") {
            return &text[..i];
        }
        from = i + 1;
    }
    text
}

/// (file -> the files it imports) over every root.
fn import_graph() -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut graph = BTreeMap::new();
    for root in ROOTS.map(|r| repo.join(r)) {
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read a source file");
            let module = module_of(&root, &file);
            let targets: BTreeSet<PathBuf> = imports(code_of(&text), &module)
                .iter()
                .filter_map(|p| file_of(&root, p))
                .filter(|f| *f != file)
                .collect();
            graph.insert(file, targets);
        }
    }
    graph
}

#[test]
fn no_two_source_files_import_each_other() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let graph = import_graph();
    assert!(graph.len() > 50, "only {} source files found: is the walk broken?", graph.len());
    let mut circles = Vec::new();
    for (a, targets) in &graph {
        for b in targets {
            if a < b && graph.get(b).is_some_and(|t| t.contains(a)) {
                let rel = |p: &Path| p.strip_prefix(repo).unwrap_or(p).display().to_string();
                circles.push(format!("{} <-> {}", rel(a), rel(b)));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "files that import each other (merge them, or move what both need to a third file):\n  {}",
        circles.join("\n  ")
    );
}

#[test]
fn no_hand_written_source_file_is_over_600_lines() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut long = Vec::new();
    for root in ROOTS.iter().chain(&["tests", "tools/train/tests", "fuzz/fuzz_targets"]) {
        let mut files = Vec::new();
        rust_files(&repo.join(root), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read a source file");
            let generated = text.lines().take(3).any(|l| l.contains(GENERATED));
            let lines = text.lines().count();
            if lines > MAX_LINES && !generated {
                long.push(format!("{} ({lines} lines)", file.strip_prefix(repo).unwrap_or(&file).display()));
            }
        }
    }
    assert!(long.is_empty(), "source files over {MAX_LINES} lines (split them by concern):\n  {}", long.join("\n  "));
}

/// The checker itself: a circle is found, groups and `super::super` resolve, and test modules
/// and `self` items are not imports.
#[test]
fn the_import_reader_finds_what_it_should() {
    let m = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let found = imports("use crate::a::{b::{C, d}, self};\nlet x = super::super::e::f(1);", &m(&["p", "q", "r"]));
    assert_eq!(found, vec![m(&["a", "b", "C"]), m(&["a", "b", "d"]), m(&["a"]), m(&["p", "e", "f"])]);
    assert!(imports("my_crate::x; not_super::y", &m(&["p"])).is_empty());
    assert_eq!(code_of("use crate::a;\n#[cfg(test)]\nmod tests { use crate::b; }"), "use crate::a;\n");
    let helper = "#[cfg(test)]\nfn helper() {}\nuse crate::a;\n";
    assert_eq!(code_of(helper), helper, "a test-only item is not the test module");
}

/// docs/architecture.dot names files and folders; each must still be there.
#[test]
fn the_architecture_picture_names_files_that_exist() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dot = std::fs::read_to_string(repo.join("docs/architecture.dot")).expect("docs/architecture.dot");
    let named: BTreeSet<&str> = dot
        .split(|c: char| !(c.is_alphanumeric() || "_/.-".contains(c)))
        .filter(|w| (w.starts_with("src/") || w.starts_with("tools/")) && (w.ends_with(".rs") || w.ends_with('/')))
        .collect();
    assert!(named.len() > 15, "only {} paths read from the picture", named.len());
    let missing: Vec<&str> = named.into_iter().filter(|p| !repo.join(p).exists()).collect();
    assert!(missing.is_empty(), "docs/architecture.dot names paths that do not exist: {missing:?}");
    let svg = std::fs::read_to_string(repo.join("docs/architecture.svg")).expect("docs/architecture.svg");
    assert!(svg.contains("infer_loop.rs"), "docs/architecture.svg is not rendered from the current .dot");
}
