//! Layering of `src/` (issue #31): no import cycle between files or between
//! top-level modules, and no import from a lower layer to a higher one.
//!
//! It reads the source text, std only, so it also runs without cargo, from
//! the repository root:
//! `rustc --edition 2021 --test tests/layering.rs -o /tmp/layering && /tmp/layering`

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// The layers, lowest first: a module may import from its own layer and the
/// ones below. Names are top-level modules of src/ (`main` = src/main.rs);
/// src/lib.rs is the crate root and on no layer. A listed module that does
/// not exist is fine; one that exists and is not listed is a failure.
#[rustfmt::skip]
const LAYERS: &Layers = &[
    ("ground", &["error", "files", "device", "progress", "validation", "metrics", "verdict", "allocator"]),
    ("model/data", &["model", "data"]),
    ("explain/compare/calibrate/evaluate", &["explain", "compare", "calibrate", "evaluate", "ensemble", "train"]),
    ("jobs", &["jobs", "config", "doctor"]),
    ("engine/batch/report", &["engine", "batch", "report"]),
    ("faces", &["cli", "tui", "main"]),
];

type Layers = [(&'static str, &'static [&'static str])];

/// One imported path: `path` as written (a group expanded), `name` what it
/// brings into scope (the alias, the last segment, or `*`).
#[derive(Clone, Debug, PartialEq)]
struct Use {
    path: Vec<String>,
    name: String,
    glob: bool,
}

impl Use {
    fn new(path: Vec<String>, glob: bool) -> Use {
        let name = if glob {
            "*".into()
        } else {
            path.last().cloned().unwrap_or_default()
        };
        Use { path, name, glob }
    }

    fn written(&self) -> String {
        self.path.join("::") + if self.glob { "::*" } else { "" }
    }
}

/// What one file says about the module structure, test code left out.
#[derive(Debug, Default)]
struct Parsed {
    /// Every path that may start in this crate (`crate::`, `super::`, `x::`
    /// ...), with the inline `mod m { .. }` blocks it stands in.
    refs: Vec<(Vec<String>, Use)>,
    /// The file's top-level `use` items: where its names come from.
    uses: Vec<Use>,
    /// Names the file defines at its top level.
    defs: BTreeSet<String>,
    /// `mod x;` declarations; those under `#[cfg(test)]`; `#![cfg(test)]`.
    mods: Vec<String>,
    test_mods: Vec<String>,
    test_only: bool,
}

/// Source text as tokens: comments dropped, each string or char literal one
/// `""` token, `::` one token, a lifetime a `'` and its name.
fn tokens(text: &str) -> Vec<String> {
    let c: Vec<char> = text.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or(' ');
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let literal = || "\"\"".to_string();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < c.len() {
        let start = i;
        match (at(i), at(i + 1)) {
            (ch, _) if ch.is_whitespace() => i += 1,
            ('/', '/') => i = (i..c.len()).find(|&j| c[j] == '\n').unwrap_or(c.len()),
            ('/', '*') => {
                let mut depth = 0;
                while i < c.len() {
                    match (at(i), at(i + 1)) {
                        ('/', '*') => (depth, i) = (depth + 1, i + 2),
                        ('*', '/') => (depth, i) = (depth - 1, i + 2),
                        _ => i += 1,
                    }
                    if depth == 0 {
                        break;
                    }
                }
            }
            ('"', _) => {
                i += 1;
                while i < c.len() && c[i] != '"' {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                out.push(literal());
            }
            ('\'', '\\') => {
                i = (i + 3..c.len()).find(|&j| c[j] == '\'').unwrap_or(c.len()) + 1;
                out.push(literal());
            }
            ('\'', _) if at(i + 2) == '\'' => {
                i += 3;
                out.push(literal());
            }
            (ch, _) if word(ch) => {
                while i < c.len() && word(c[i]) {
                    i += 1;
                }
                let w: String = c[start..i].iter().collect();
                let hashes = (i..c.len()).take_while(|&j| c[j] == '#').count();
                if (w == "r" || w == "br") && at(i + hashes) == '"' {
                    // A raw string: no escapes, it ends at `"` and as many `#`.
                    i += hashes + 1;
                    while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|h| at(i + h) == '#')) {
                        i += 1;
                    }
                    i += hashes + 1;
                    out.push(literal());
                } else {
                    out.push(w);
                }
            }
            (':', ':') => {
                i += 2;
                out.push("::".to_string());
            }
            (ch, _) => {
                i += 1;
                out.push(ch.to_string());
            }
        }
    }
    out
}

fn is_ident(w: &str) -> bool {
    w.starts_with(|ch: char| ch.is_alphabetic() || ch == '_')
}

/// Index just past the bracket that closes the one at `i`.
fn close(t: &[String], i: usize) -> usize {
    let mut depth = 0;
    for (j, tok) in t.iter().enumerate().skip(i) {
        match tok.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            return j + 1;
        }
    }
    t.len()
}

/// The `use` tree at `i` (a path, a `*` or a `{..}` group) with `prefix`
/// in front, one `Use` per leaf.
fn use_tree(t: &[String], i: &mut usize, prefix: &[String], out: &mut Vec<Use>) {
    let at = |i: usize| t.get(i).map_or("", String::as_str);
    let mut path = prefix.to_vec();
    loop {
        *i += 1;
        match at(*i - 1) {
            "::" => {}
            "*" => return out.push(Use::new(path, true)),
            "{" => {
                while !matches!(at(*i), "}" | ";" | "") {
                    use_tree(t, i, &path, out);
                    *i += usize::from(at(*i) == ",");
                }
                *i += 1;
                return;
            }
            w if is_ident(w) => {
                // `a::{self, B}` imports `a` itself.
                if w != "self" || path.is_empty() {
                    path.push(w.to_string());
                }
                if at(*i) != "::" {
                    let mut u = Use::new(path, false);
                    if at(*i) == "as" {
                        u.name = at(*i + 1).to_string();
                        *i += 2;
                    }
                    return out.push(u);
                }
            }
            _ => return,
        }
    }
}

/// Index past the item at `i` (its attributes, then up to a `;` or through
/// its `{..}` body), noting a `mod x;` it declares.
fn skip_item(t: &[String], mut i: usize, p: &mut Parsed) -> usize {
    while i < t.len() {
        match t[i].as_str() {
            ";" => return i + 1,
            "{" => return close(t, i),
            "#" | "(" | "[" => i = close(t, i + usize::from(t[i] == "#")),
            "mod" if t.get(i + 2).is_some_and(|s| s == ";") => {
                p.test_mods.push(t[i + 1].clone());
                i += 1;
            }
            _ => i += 1,
        }
    }
    i
}

const CFG_TEST: [&str; 6] = ["[", "cfg", "(", "test", ")", "]"];

fn parse(text: &str) -> Parsed {
    let t = tokens(text);
    let at = |i: usize| t.get(i).map_or("", String::as_str);
    let cfg_test = |i: usize| t.get(i..i + 6).is_some_and(|w| w == CFG_TEST);
    let defines = "fn struct enum trait type const static union mod macro_rules".split(' ');
    let defines: Vec<&str> = defines.collect();
    let mut p = Parsed::default();
    // Brace depth, and the inline `mod m {` blocks open, with the depth inside each.
    let (mut depth, mut scope, mut i) = (0, Vec::<(String, usize)>::new(), 0);
    while i < t.len() {
        let outside = depth == 0;
        let here = || scope.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
        let after = |w: &[&str]| i >= w.len() && t[i - w.len()..i] == *w;
        match at(i) {
            "#" if at(i + 1) == "!" && cfg_test(i + 2) => p.test_only = true,
            "#" if cfg_test(i + 1) => {
                i = skip_item(&t, i + 7, &mut p);
                continue;
            }
            "#" if at(i + 1) == "[" => {
                i = close(&t, i + 1);
                continue;
            }
            "use" => {
                let mut items = Vec::new();
                i += 1;
                use_tree(&t, &mut i, &[], &mut items);
                if outside {
                    p.uses.extend(items.iter().cloned());
                }
                p.refs.extend(items.into_iter().map(|u| (here(), u)));
                continue;
            }
            "mod" if at(i + 2) == "{" => scope.push((at(i + 1).to_string(), depth + 1)),
            "mod" if at(i + 2) == ";" && outside => p.mods.push(at(i + 1).to_string()),
            "{" => depth += 1,
            "}" => {
                if scope.last().is_some_and(|s| s.1 == depth) {
                    scope.pop();
                }
                depth = depth.saturating_sub(1);
            }
            // A path in code: `crate::x::Y {`, `super::f(..)`; not the tail
            // of a path, not `$crate::`, not `pub(in crate::x)`.
            w if is_ident(w)
                && at(i + 1) == "::"
                && !after(&["::"])
                && !after(&["$"])
                && !after(&["(", "in"]) =>
            {
                let mut path = vec![w.to_string()];
                i += 1;
                while at(i) == "::" && is_ident(at(i + 1)) {
                    path.push(at(i + 1).to_string());
                    i += 2;
                }
                p.refs.push((here(), Use::new(path, false)));
                continue;
            }
            _ => {}
        }
        if outside && defines.contains(&at(i)) {
            let not_a_name = ["mut", "!", "fn"];
            let name = (i + 1..i + 3).map(at).find(|w| !not_a_name.contains(w));
            if let Some(name) = name.filter(|w| is_ident(w)) {
                p.defs.insert(name.to_string());
            }
        }
        i += 1;
    }
    p
}

/// The files of one crate folder, parsed, and its modules by path.
struct Crate {
    /// "src/a/b.rs" -> (module path `a::b`, what the file says).
    files: BTreeMap<String, (Vec<String>, Parsed)>,
    /// `a::b` -> "src/a/b.rs" or "src/a/b/mod.rs"; `[]` -> src/lib.rs.
    modules: BTreeMap<Vec<String>, String>,
    /// The library's name, as src/main.rs and its modules write it.
    lib: Option<String>,
}

const LIB: &str = "src/lib.rs";
const MAIN: &str = "src/main.rs";

/// (from file, to file, name taken, path as written).
type Edge = (String, String, String, String);

impl Crate {
    /// `sources`: (path from the crate folder, "src/...", text).
    fn new(sources: Vec<(String, String)>, lib: Option<String>) -> Crate {
        let (mut files, mut modules) = (BTreeMap::new(), BTreeMap::new());
        for (file, text) in sources {
            let rel = file.trim_start_matches("src/").trim_end_matches(".rs");
            let mut module: Vec<String> = rel.split('/').map(String::from).collect();
            if matches!(rel, "lib" | "main") || module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if file != MAIN {
                modules.entry(module.clone()).or_insert(file.clone());
            }
            files.insert(file, (module, parse(&text)));
        }
        Crate {
            files,
            modules,
            lib,
        }
    }

    /// The crate root of a file: src/main.rs for itself and the modules it
    /// declares, src/lib.rs for the rest.
    fn root(&self, file: &str) -> &'static str {
        let bin = self.files.get(MAIN).map_or(&[][..], |f| &f.1.mods[..]);
        match self.files[file].0.first() {
            Some(top) if bin.contains(top) => MAIN,
            None if file == MAIN => MAIN,
            _ => LIB,
        }
    }

    /// `path`, written in `file` inside the inline modules `scope`, from its
    /// crate root: (root file, segments); None when it is not of this crate.
    fn absolute(
        &self,
        file: &str,
        scope: &[String],
        path: &[String],
    ) -> Option<(&str, Vec<String>)> {
        let (module, parsed) = &self.files[file];
        let mut here: Vec<String> = module.iter().chain(scope).cloned().collect();
        let root = self.root(file);
        let first = path.first()?;
        match first.as_str() {
            "crate" => Some((root, path[1..].to_vec())),
            "self" => Some((root, [&here[..], &path[1..]].concat())),
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                here.truncate(here.len().checked_sub(supers)?);
                Some((root, [&here[..], &path[supers..]].concat()))
            }
            _ if self.lib.as_ref() == Some(first) => Some((LIB, path[1..].to_vec())),
            // A child module, by a relative path: `pub use agreement::X;` in mod.rs.
            _ if scope.is_empty() && parsed.mods.contains(first) => {
                Some((root, [&module[..], path].concat()))
            }
            _ => None,
        }
    }

    /// The file a path from a crate root lands on, and the name it takes
    /// there: down the module files as far as they go, then after the name
    /// through the `use` item that brought it into that module, if any.
    fn land(&self, root: &str, path: &[String], hops: usize) -> (String, String) {
        let mut file = root.to_string();
        let mut k = 0;
        while let Some(f) = path.get(..k + 1).and_then(|m| self.modules.get(m)) {
            (file, k) = (f.clone(), k + 1);
        }
        let Some(name) = path.get(k) else {
            return (file, path.last().cloned().unwrap_or_else(|| "crate".into()));
        };
        let stop = (file.clone(), name.clone());
        let parsed = match self.files.get(&file) {
            Some(f) if hops < 16 && !self.defines(&file, name) => &f.1,
            _ => return stop,
        };
        let follow = |u: &Use, from: usize| {
            let (root, to) = self.absolute(&file, &[], &u.path)?;
            Some(self.land(root, &[&to[..], &path[from..]].concat(), hops + 1))
        };
        let named = parsed.uses.iter().filter(|u| !u.glob && u.name == *name);
        if let Some(hit) = named.filter_map(|u| follow(u, k + 1)).next() {
            return hit;
        }
        // Through a glob, only to a file that defines the name.
        let globs = parsed.uses.iter().filter(|u| u.glob);
        let mut hits = globs.filter_map(|u| follow(u, k));
        hits.find(|(f, n)| self.defines(f, n)).unwrap_or(stop)
    }

    fn defines(&self, file: &str, name: &str) -> bool {
        self.files
            .get(file)
            .is_some_and(|f| f.1.defs.contains(name))
    }

    /// Every import between two files of non-test code. A module's file and
    /// its submodules' files are one unit: a submodule taking a name from a
    /// module it stands in (`super::X`, X defined in mod.rs) is no edge.
    fn edges(&self) -> BTreeSet<Edge> {
        let test = self.test_files();
        let mut out = BTreeSet::new();
        for (file, (module, parsed)) in &self.files {
            if file == LIB || test.contains(file) {
                continue;
            }
            // The files of the modules this one stands in.
            let mut above = vec![self.root(file).to_string()];
            for k in 1..module.len() {
                above.extend(self.modules.get(&module[..k]).cloned());
            }
            for (scope, u) in &parsed.refs {
                let Some((root, path)) = self.absolute(file, scope, &u.path) else {
                    continue;
                };
                let (to, name) = self.land(root, &path, 0);
                let ours = self.files.contains_key(&to) && !test.contains(&to);
                if ours && to != *file && to != LIB && !above.contains(&to) {
                    let name = if u.glob { "*".into() } else { name };
                    out.insert((file.clone(), to, name, u.written()));
                }
            }
        }
        out
    }

    /// Files of test code: `#![cfg(test)]`, `#[cfg(test)] mod x;`, and below.
    fn test_files(&self) -> BTreeSet<String> {
        let mut test: Vec<Vec<String>> = Vec::new();
        for (module, parsed) in self.files.values() {
            if parsed.test_only && !module.is_empty() {
                test.push(module.clone());
            }
            for m in &parsed.test_mods {
                test.push([&module[..], std::slice::from_ref(m)].concat());
            }
        }
        let mut out = BTreeSet::new();
        for (file, (module, _)) in &self.files {
            if test.iter().any(|t| module.starts_with(t)) {
                out.insert(file.clone());
            }
        }
        out
    }

    /// The top-level module a file belongs to; None for src/lib.rs.
    fn top(&self, file: &str) -> Option<String> {
        match file {
            LIB => None,
            MAIN => Some("main".into()),
            _ => self.files[file].0.first().cloned(),
        }
    }
}

/// The groups of nodes that reach each other (strongly connected, two or more).
fn cycles(edges: &BTreeSet<(String, String)>) -> Vec<BTreeSet<String>> {
    let reach = |from: &String| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(n) = todo.pop() {
            for (_, to) in edges.iter().filter(|e| e.0 == n) {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let reached: BTreeMap<&String, BTreeSet<String>> =
        edges.iter().map(|e| (&e.0, reach(&e.0))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for (n, seen) in &reached {
        let group: BTreeSet<String> = seen
            .iter()
            .filter(|m| reached.get(m).is_some_and(|r| r.contains(*n)))
            .cloned()
            .collect();
        if group.len() > 1 && !out.contains(&group) {
            out.push(group);
        }
    }
    out
}

/// Every violation of the layering in one crate, one line each.
fn check(krate: &Crate, layers: &Layers) -> Vec<String> {
    let mut out = Vec::new();
    let layer = |top: &str| layers.iter().position(|l| l.1.contains(&top));
    let top = |file: &String| krate.top(file).unwrap_or_default();
    let edges = krate.edges();
    // Per pair of files, the names the first takes from the second.
    let mut names: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (from, to, name, _) in &edges {
        let taken = names.entry((from.clone(), to.clone())).or_default();
        if !taken.contains(name) {
            taken.push(name.clone());
        }
    }
    let tie = |e: &(String, String)| format!("{} -> {} ({})", e.0, e.1, names[e].join(", "));
    let files: BTreeSet<(String, String)> = names.keys().cloned().collect();
    for group in cycles(&files) {
        let inside = files
            .iter()
            .filter(|e| group.contains(&e.0) && group.contains(&e.1));
        let ties = Vec::from_iter(inside.map(tie)).join("; ");
        let list = Vec::from_iter(group.iter().cloned()).join(", ");
        out.push(format!(
            "file cycle of {} files ({list}): {ties}",
            group.len()
        ));
    }
    // Between top-level modules: one file import named per pair of them.
    let mut across: BTreeMap<(String, String), Vec<&(String, String)>> = BTreeMap::new();
    for e in &files {
        if top(&e.0) != top(&e.1) {
            across.entry((top(&e.0), top(&e.1))).or_default().push(e);
        }
    }
    for group in cycles(&across.keys().cloned().collect()) {
        let inside = across
            .iter()
            .filter(|(k, _)| group.contains(&k.0) && group.contains(&k.1));
        let ties = inside.map(|((a, b), by)| match by.len() {
            1 => format!("{a} -> {b} by {}", tie(by[0])),
            n => format!("{a} -> {b} by {} and {} more", tie(by[0]), n - 1),
        });
        let list = Vec::from_iter(group.iter().cloned()).join(", ");
        let ties = Vec::from_iter(ties).join("; ");
        out.push(format!(
            "folder cycle of {} folders ({list}): {ties}",
            group.len()
        ));
    }
    let mut upward = BTreeSet::new();
    for (from, to, _, written) in &edges {
        if let (Some(i), Some(j)) = (layer(&top(from)), layer(&top(to))) {
            if j > i && upward.insert((from, written)) {
                let (a, b) = (layers[i].0, layers[j].0);
                out.push(format!(
                    "{from} imports {written}: layer {} '{a}' -> layer {} '{b}'",
                    i + 1,
                    j + 1
                ));
            }
        }
    }
    // Top-level modules on no layer, named by their file (or folder).
    let test = krate.test_files();
    let mut tops: BTreeMap<String, String> = BTreeMap::new();
    for file in krate.files.keys().filter(|f| !test.contains(*f)) {
        let Some(t) = krate.top(file) else { continue };
        let shown = if file.matches('/').count() == 1 {
            file.clone()
        } else {
            format!("src/{t}/")
        };
        let entry = tops.entry(t).or_insert(shown.clone());
        if shown.ends_with(".rs") {
            *entry = shown;
        }
    }
    let unlisted = tops.iter().filter(|(t, _)| layer(t).is_none());
    out.extend(unlisted.map(|(_, shown)| format!("{shown} is on no layer: add it to LAYERS")));
    for (i, (name, mods)) in layers.iter().enumerate() {
        for m in mods
            .iter()
            .filter(|m| layers[i + 1..].iter().any(|l| l.1.contains(m)))
        {
            out.push(format!(
                "{m} is on layer '{name}' and on a higher one: list it once"
            ));
        }
    }
    out
}

/// Reads the crate whose source folder is `src` and checks it.
fn analyze(src: &Path, layers: &Layers) -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .expect("read src")
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let name = format!("{rel}/{}", path.file_name().unwrap().to_string_lossy());
            if path.is_dir() {
                walk(&path, &name, out);
            } else if name.ends_with(".rs") {
                out.push((name, fs::read_to_string(&path).expect("read source")));
            }
        }
    }
    let mut sources = Vec::new();
    walk(src, "src", &mut sources);
    // The library's name: `name` under [lib], else under [package].
    let manifest = fs::read_to_string(src.join("../Cargo.toml")).unwrap_or_default();
    let (mut section, mut names) = ("", BTreeMap::new());
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
        } else if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "name" {
                names.insert(section, value.trim().trim_matches('"').replace('-', "_"));
            }
        }
    }
    let lib = names.get("[lib]").or(names.get("[package]")).cloned();
    check(&Crate::new(sources, lib), layers)
}

#[test]
fn src_tree_has_no_cycles_and_no_upward_imports() {
    let root = option_env!("CARGO_MANIFEST_DIR").unwrap_or(".");
    let violations = analyze(&Path::new(root).join("src"), LAYERS);
    assert!(
        violations.is_empty(),
        "{} layering violations in src/ (issue #31):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

fn fixture(name: &str) -> Vec<String> {
    let root = option_env!("CARGO_MANIFEST_DIR").unwrap_or(".");
    analyze(
        &Path::new(root)
            .join("tests/fixtures/layering")
            .join(name)
            .join("src"),
        LAYERS,
    )
}

#[test]
fn clean_fixture_has_no_violations() {
    assert_eq!(fixture("clean"), Vec::<String>::new());
}

#[test]
fn two_files_importing_each_other_are_a_file_cycle() {
    let cycle = "file cycle of 2 files (src/data/a.rs, src/data/b.rs): \
                 src/data/a.rs -> src/data/b.rs (B); src/data/b.rs -> src/data/a.rs (A)";
    assert_eq!(fixture("file_cycle"), [cycle]);
}

#[test]
fn two_folders_importing_each_other_are_a_folder_cycle() {
    let cycle = "folder cycle of 2 folders (compare, explain): \
                 compare -> explain by src/compare/agreement.rs -> src/explain/mod.rs (Method); \
                 explain -> compare by src/explain/maps.rs -> src/compare/mod.rs (Metric)";
    assert_eq!(fixture("folder_cycle"), [cycle]);
}

#[test]
fn a_ground_module_importing_a_face_is_an_upward_import() {
    let upward = "src/error.rs imports crate::tui::Theme: layer 1 'ground' -> layer 6 'faces'";
    assert_eq!(fixture("upward"), [upward]);
}

#[test]
fn a_module_on_no_layer_is_named() {
    let unlisted = [
        "src/helpers/ is on no layer: add it to LAYERS",
        "src/scratch.rs is on no layer: add it to LAYERS",
    ];
    assert_eq!(fixture("unlisted"), unlisted);
}

fn paths(p: &Parsed) -> Vec<String> {
    p.refs
        .iter()
        .map(|(_, u)| u.path.join("::") + if u.glob { "::*" } else { "" })
        .collect()
}

#[test]
fn comments_and_literals_are_not_imports() {
    let text = r##"
        // crate::a::X
        /// crate::b::X
        /* crate::c /* nested */ crate::d */
        const S: &str = "crate::e::X \" crate::f";
        const R: &str = r#"crate::g "quoted" crate::h"#;
        const C: [char; 3] = ['"', '\'', '\u{22}'];
        fn f<'a>(x: &'a str) -> &'a str { crate::kept::Y(x) }
    "##;
    assert_eq!(paths(&parse(text)), ["crate::kept::Y"]);
}

#[test]
fn use_groups_expand_to_one_path_each() {
    let text =
        "pub use crate::{a::b::{C, D as E}, f::G, h::{self, *}};\nuse super::x::*;\nuse std::fmt;";
    let p = parse(text);
    assert_eq!(
        paths(&p),
        [
            "crate::a::b::C",
            "crate::a::b::D",
            "crate::f::G",
            "crate::h",
            "crate::h::*",
            "super::x::*",
            "std::fmt"
        ]
    );
    let names: Vec<&str> = p.uses.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["C", "E", "G", "h", "*", "*", "fmt"]);
}

#[test]
fn inline_paths_are_found_and_macro_paths_skipped() {
    let text = "fn f() { let r = crate::eval::EvalRow { a: 1 }; crate::x::y::<u8>(2); }
                fn g() { for x in crate::it::all() {} $crate::z::W; }
                pub(crate) fn h() {} pub(in crate::a) fn k() {}";
    let want = ["crate::eval::EvalRow", "crate::x::y", "crate::it::all"];
    assert_eq!(paths(&parse(text)), want);
}

#[test]
fn cfg_test_items_are_skipped() {
    let text = "#[cfg(test)]\nmod tests { use crate::tui::App; }\n#[cfg(test)]\nmod more;\n\
                #[cfg(test)]\n#[allow(dead_code)]\nfn helper() { crate::x::y(); }\nuse crate::kept::K;";
    let p = parse(text);
    assert_eq!(paths(&p), ["crate::kept::K"]);
    assert_eq!(p.test_mods, ["more"]);
    assert!(parse("#![cfg(test)]\nuse crate::a::B;").test_only);
}

#[test]
fn definitions_and_inline_modules() {
    let text = "pub mod check { use super::OutOfRange; pub fn positive() {} }\n\
                pub(crate) struct S; const fn c() {} static mut M: u8 = 0; mod child;\n\
                impl S { fn method() {} }";
    let p = parse(text);
    assert_eq!(
        p.defs,
        ["M", "S", "c", "check", "child"].map(String::from).into()
    );
    assert_eq!(p.mods, ["child"]);
    assert_eq!(p.refs[0].0, ["check"]);
}

fn edges_of(files: &[(&str, &str)], lib: Option<&str>) -> Vec<String> {
    let sources = files
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    let krate = Crate::new(sources, lib.map(String::from));
    krate
        .edges()
        .into_iter()
        .map(|(from, to, name, path)| format!("{from} -> {to}: {name} ({path})"))
        .collect()
}

#[test]
fn paths_resolve_through_super_and_re_exports() {
    let edges = edges_of(
        &[
            ("src/lib.rs", "pub mod a; pub mod b; pub use a::Top;"),
            ("src/a/mod.rs", "pub mod inner; pub use inner::*; pub use inner::Thing as Alias; pub struct Top;"),
            ("src/a/inner.rs", "pub struct Thing; pub fn helper() { super::super::b::f() }"),
            ("src/b.rs", "use crate::a::{Alias, helper}; pub fn f() { crate::Top; }\nmod m { use super::super::a::Top; }"),
        ],
        None,
    );
    let want = [
        "src/a/inner.rs -> src/b.rs: f (super::super::b::f)",
        "src/a/mod.rs -> src/a/inner.rs: * (inner::*)",
        "src/a/mod.rs -> src/a/inner.rs: Thing (inner::Thing)",
        "src/b.rs -> src/a/inner.rs: Thing (crate::a::Alias)",
        "src/b.rs -> src/a/inner.rs: helper (crate::a::helper)",
        "src/b.rs -> src/a/mod.rs: Top (crate::Top)",
        "src/b.rs -> src/a/mod.rs: Top (super::super::a::Top)",
    ];
    assert_eq!(edges, want);
}

#[test]
fn the_binary_reaches_the_library_by_its_name() {
    let edges = edges_of(
        &[
            ("src/lib.rs", "pub mod a;"),
            ("src/a.rs", "pub fn helper() {}"),
            (
                "src/main.rs",
                "mod cli; const V: u8 = 0; fn main() { cli::run() }",
            ),
            (
                "src/cli.rs",
                "use super::V; pub fn run() { fake::a::helper() }",
            ),
        ],
        Some("fake"),
    );
    assert_eq!(
        edges,
        [
            "src/cli.rs -> src/a.rs: helper (fake::a::helper)",
            "src/main.rs -> src/cli.rs: run (cli::run)"
        ]
    );
}
