//! Glob patterns as the Collector's `include`/`exclude` take them: `*` and
//! `?` within one path segment, `[abc]`/`[!a-z]` classes, `**` as a whole
//! segment for any number of directories. Expansion walks only the
//! directories a pattern can reach, so `/var/log/pods/*/*/*.log` lists three
//! levels, not the whole tree.

use regex::Regex;
use std::path::{Path, PathBuf};

/// Deepest directory walk for a `**` segment; deeper trees are not searched.
const MAX_RECURSIVE_DEPTH: usize = 16;

#[derive(Debug, Clone)]
pub struct Glob {
    /// `None` for `**`, else the literal text or a regex for one segment.
    segments: Vec<Segment>,
    absolute: bool,
    whole: Regex,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Pattern(Regex),
    AnyDirs,
}

fn has_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The regex text of one segment (or a whole path when `cross` lets `**` cross `/`).
fn translate(glob: &str, cross: bool) -> Result<String, String> {
    let chars: Vec<char> = glob.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if cross && chars.get(i + 1) == Some(&'*') => {
                // `**/` matches zero or more directories; a trailing `**` anything.
                if chars.get(i + 2) == Some(&'/') {
                    out.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    out.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                let close = chars[i + 1..]
                    .iter()
                    .enumerate()
                    .skip(1)
                    .find(|(_, c)| **c == ']')
                    .map(|(j, _)| i + 1 + j)
                    .ok_or_else(|| format!("unclosed '[' in \"{glob}\""))?;
                let mut class: String = chars[i + 1..close].iter().collect();
                if let Some(rest) = class.strip_prefix('!') {
                    class = format!("^{rest}");
                }
                out.push('[');
                out.push_str(&class.replace('\\', "\\\\").replace('[', "\\["));
                out.push(']');
                i = close + 1;
                continue;
            }
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    Ok(out)
}

impl Glob {
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        let whole = Regex::new(&format!("^{}$", translate(pattern, true)?)).map_err(|e| e.to_string())?;
        let mut segments = Vec::new();
        for seg in pattern.split('/').filter(|s| !s.is_empty()) {
            segments.push(if seg == "**" {
                Segment::AnyDirs
            } else if has_meta(seg) {
                Segment::Pattern(Regex::new(&format!("^{}$", translate(seg, false)?)).map_err(|e| e.to_string())?)
            } else {
                Segment::Literal(seg.to_string())
            });
        }
        Ok(Glob { segments, absolute: pattern.starts_with('/'), whole })
    }

    /// Whether the whole path matches (used for `exclude`).
    pub fn matches(&self, path: &Path) -> bool {
        path.to_str().is_some_and(|p| self.whole.is_match(p))
    }

    /// The existing regular files (or links to them) the pattern names, sorted.
    pub fn expand(&self) -> Vec<PathBuf> {
        // A relative pattern yields relative paths (no "./"), so `exclude` patterns written the same way match them.
        let base = if self.absolute { PathBuf::from("/") } else { PathBuf::new() };
        let mut out = Vec::new();
        self.walk(&base, 0, &mut out);
        out.sort();
        out.dedup();
        out
    }

    fn walk(&self, dir: &Path, seg: usize, out: &mut Vec<PathBuf>) {
        let Some(segment) = self.segments.get(seg) else {
            if std::fs::metadata(dir).is_ok_and(|m| m.is_file()) {
                out.push(dir.to_path_buf());
            }
            return;
        };
        match segment {
            Segment::Literal(name) => {
                let next = dir.join(name);
                if seg + 1 == self.segments.len() || next.is_dir() {
                    self.walk(&next, seg + 1, out);
                }
            }
            Segment::Pattern(re) => {
                for (name, path) in list(dir) {
                    if re.is_match(&name) {
                        self.walk(&path, seg + 1, out);
                    }
                }
            }
            Segment::AnyDirs => {
                let mut dirs = vec![(dir.to_path_buf(), 0usize)];
                while let Some((d, depth)) = dirs.pop() {
                    self.walk(&d, seg + 1, out);
                    if depth < MAX_RECURSIVE_DEPTH {
                        for (_, path) in list(&d) {
                            // Symbolic links to directories are not followed: they could loop.
                            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                                dirs.push((path, depth + 1));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// (name, path) of each entry of `dir`; nothing when it cannot be read.
fn list(dir: &Path) -> Vec<(String, PathBuf)> {
    let from = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(rd) = std::fs::read_dir(from) else { return Vec::new() };
    rd.filter_map(|e| e.ok()).filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), dir.join(n)))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_the_kubernetes_pod_layout_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for p in
            ["pods/ns_a_1/app/0.log", "pods/ns_a_1/app/0.log.20240101-000000", "pods/ns_b_2/side/3.log", "pods/x.log"]
        {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x\n").unwrap();
        }
        let g = Glob::new(&format!("{}/pods/*/*/*.log", root.display())).unwrap();
        let found: Vec<String> =
            g.expand().iter().map(|p| p.strip_prefix(root).unwrap().display().to_string()).collect();
        assert_eq!(found, ["pods/ns_a_1/app/0.log", "pods/ns_b_2/side/3.log"]);

        let all = Glob::new(&format!("{}/**/*.log", root.display())).unwrap();
        assert_eq!(all.expand().len(), 3);
        let ex = Glob::new(&format!("{}/pods/ns_b_*/**", root.display())).unwrap();
        assert!(ex.matches(&root.join("pods/ns_b_2/side/3.log")));
        assert!(!ex.matches(&root.join("pods/ns_a_1/app/0.log")));
    }

    #[test]
    fn relative_patterns_give_relative_paths() {
        // The tests run in the crate root: src/receivers/filelog holds this very file.
        let g = Glob::new("src/receivers/filelog/gl*.rs").unwrap();
        assert_eq!(g.expand(), [PathBuf::from("src/receivers/filelog/glob.rs")]);
        assert!(Glob::new("src/**/glob.rs").unwrap().matches(&g.expand()[0]));
        assert_eq!(Glob::new("*.nothing-here").unwrap().expand(), Vec::<PathBuf>::new());
    }

    #[test]
    fn classes_and_question_marks() {
        let g = Glob::new("/l/[!x]?.log").unwrap();
        assert!(g.matches(Path::new("/l/ab.log")));
        assert!(!g.matches(Path::new("/l/xb.log")));
        assert!(!g.matches(Path::new("/l/a/b.log")));
        assert!(Glob::new("/l/[ab.log").is_err());
    }
}
