//! `imgrelay rewrite [--base URL] [--info-from URL] [--in-place | --check]
//! [--require-dimensions] PATH…|-`: files, directories (recursively: `.md`, `.markdown`,
//! `.html`, `.htm`) and standard input.
//!
//! Without a flag the rewritten documents go to standard output. `--in-place` replaces a file
//! atomically (a temp file in the same directory, then a rename) and only when its bytes
//! change, so untouched files keep their mtime. `--check` writes nothing, names each file that
//! would change or has images without `width`/`height`, and exits 1 when a file would change
//! (or, with `--require-dimensions`, when an image has no dimensions). `--info-from` (or
//! `rewrite.info_from`) first reads every input to find the images it cannot size, asks that
//! running imgrelay for them ([`super::info_from`]), then rewrites with what it measured. One
//! summary line goes to standard error. Errors are reported per file and make the exit code
//! 1; the other files are still done.

use super::{
    info_from::{self, Measured},
    Kind, Rewriter, Stats,
};
use crate::config::Config;
use std::{
    collections::BTreeSet,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};
use url::Url;

/// Extensions a directory walk picks up.
pub const EXTENSIONS: &[&str] = &["md", "markdown", "html", "htm"];

/// Flags of `imgrelay rewrite`.
#[derive(Debug, Clone, clap::Args)]
pub struct RewriteArgs {
    /// Resolve relative image URLs against this URL (else a `permalink`/`url` front matter
    /// key; without either they stay relative).
    #[arg(long, value_parser = parse_base)]
    pub base: Option<Url>,
    /// Replace each changed file (atomically); unchanged files are not touched.
    #[arg(long, conflicts_with = "check")]
    pub in_place: bool,
    /// Write nothing; exit 1 when any file would change.
    #[arg(long)]
    pub check: bool,
    /// Ask this running imgrelay (`http://127.0.0.1:8080`) for the size of each image without
    /// dimensions (`output=json`) and write `width`/`height` (default `rewrite.info_from`).
    #[arg(long, value_parser = parse_base, value_name = "URL")]
    pub info_from: Option<Url>,
    /// Exit 1 when any rewritten image is left without `width` and `height`.
    #[arg(long)]
    pub require_dimensions: bool,
    /// Files, directories (recursive) or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

fn parse_base(s: &str) -> Result<Url, String> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| format!("`{s}` is not an absolute http(s) URL"))
}

/// What a run did, for the summary line and the exit code.
#[derive(Debug, Default)]
pub struct Summary {
    pub files: usize,
    pub changed: usize,
    pub failed: usize,
    pub stats: Stats,
    /// What `--info-from` asked and got.
    pub measured: Option<Measured>,
}

impl Summary {
    /// `rewrite: 46 files, 30 changed, 120 images rewritten, 9 skipped (9 relative without base)`.
    pub fn line(&self, check: bool) -> String {
        let verb = if check { "would change" } else { "changed" };
        let mut line = format!(
            "rewrite: {} files, {} {verb}, {} images rewritten, {} skipped",
            self.files,
            self.changed,
            self.stats.rewritten,
            self.stats.skipped.values().sum::<usize>()
        );
        if !self.stats.skipped.is_empty() {
            let reasons: Vec<String> = self
                .stats
                .skipped
                .iter()
                .map(|(why, n)| format!("{n} {}", why.as_str()))
                .collect();
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        if self.stats.undimensioned > 0 {
            line.push_str(&format!(
                ", {} without width/height",
                self.stats.undimensioned
            ));
        }
        if let Some(m) = &self.measured {
            let failed: usize = m.failed.values().sum();
            line.push_str(&format!(
                "; {} sources asked for sizes, {} measured",
                m.asked,
                m.asked - failed
            ));
            if failed > 0 {
                let by: Vec<String> = m.failed.iter().map(|(c, n)| format!("{c} {n}")).collect();
                line.push_str(&format!(", {failed} not ({})", by.join(", ")));
            }
        }
        if self.failed > 0 {
            line.push_str(&format!(", {} failed", self.failed));
        }
        line
    }
}

/// Runs the subcommand; messages go to standard error.
pub fn main(config: &Config, args: &RewriteArgs) -> ExitCode {
    match run(config, args) {
        Ok(summary) => {
            eprintln!("{}", summary.line(args.check));
            let fail = summary.failed > 0
                || (args.check && summary.changed > 0)
                || (args.require_dimensions && summary.stats.undimensioned > 0);
            ExitCode::from(u8::from(fail))
        }
        Err(e) => {
            eprintln!("imgrelay: {e}");
            ExitCode::from(1)
        }
    }
}

/// Rewrites every input as `args` say.
pub fn run(config: &Config, args: &RewriteArgs) -> io::Result<Summary> {
    let mut rw = Rewriter::new(config);
    let mut summary = Summary::default();
    let stdout = io::stdout();
    // read once: sized first, rewritten after
    let mut stdin = Vec::new();
    if args.paths.iter().any(|p| p.as_os_str() == "-") {
        io::stdin().lock().read_to_end(&mut stdin)?;
    }
    let info_from = match &args.info_from {
        Some(u) => Some(u.clone()),
        None if config.rewrite.info_from.is_empty() => None,
        None => Some(parse_base(&config.rewrite.info_from).map_err(io::Error::other)?),
    };
    if let Some(base) = info_from {
        let wanted = unmeasured(&rw, args, &stdin);
        let mut measured = info_from::measure(config, &base, wanted)?;
        rw = rw.with_measures(std::mem::take(&mut measured.measures));
        summary.measured = Some(measured);
    }
    for path in &args.paths {
        if path.as_os_str() == "-" {
            let input = &stdin;
            let done = one(&rw, args, input, Kind::Auto, None, &mut summary);
            if let Some(bytes) = done.filter(|_| !args.check) {
                stdout.lock().write_all(&bytes)?;
            }
            continue;
        }
        let files = match collect(path) {
            Ok(files) => files,
            Err(e) => {
                eprintln!("imgrelay: {}: {e}", path.display());
                summary.failed += 1;
                continue;
            }
        };
        for file in files {
            if let Err(e) = file_one(&rw, args, &file, &mut summary, &stdout) {
                eprintln!("imgrelay: {}: {e}", file.display());
                summary.failed += 1;
            }
        }
    }
    Ok(summary)
}

/// The sources of every input the rewrite cannot size; inputs that cannot be read or
/// rewritten are passed over here (the rewrite itself reports them).
fn unmeasured(rw: &Rewriter, args: &RewriteArgs, stdin: &[u8]) -> BTreeSet<String> {
    let mut wanted = BTreeSet::new();
    let mut add = |input: &[u8], kind: Kind| {
        if let Ok(out) = rw.rewrite_document(input, kind, args.base.as_ref()) {
            wanted.extend(out.unmeasured);
        }
    };
    for path in &args.paths {
        if path.as_os_str() == "-" {
            add(stdin, Kind::Auto);
            continue;
        }
        for file in collect(path).unwrap_or_default() {
            if let Ok(input) = std::fs::read(&file) {
                add(&input, Kind::from_path(&file));
            }
        }
    }
    wanted
}

fn file_one(
    rw: &Rewriter,
    args: &RewriteArgs,
    file: &Path,
    summary: &mut Summary,
    stdout: &io::Stdout,
) -> io::Result<()> {
    let input = std::fs::read(file)?;
    let before = summary.stats.undimensioned;
    let Some(bytes) = one(rw, args, &input, Kind::from_path(file), Some(file), summary) else {
        return Ok(());
    };
    let undimensioned = summary.stats.undimensioned - before;
    if args.check {
        if bytes != input {
            eprintln!("would rewrite {}", file.display());
        }
        if undimensioned > 0 {
            eprintln!(
                "{undimensioned} images without width/height in {}",
                file.display()
            );
        }
    } else if args.in_place {
        if bytes != input {
            replace_atomically(file, &bytes)?;
        }
    } else {
        stdout.lock().write_all(&bytes)?;
    }
    Ok(())
}

/// Rewrites one document and counts it; `None` (and a message) when it could not be.
fn one(
    rw: &Rewriter,
    args: &RewriteArgs,
    input: &[u8],
    kind: Kind,
    path: Option<&Path>,
    summary: &mut Summary,
) -> Option<Vec<u8>> {
    summary.files += 1;
    match rw.rewrite_document(input, kind, args.base.as_ref()) {
        Ok(out) => {
            summary.stats.add(&out.stats);
            summary.changed += usize::from(out.changed(input));
            Some(out.bytes)
        }
        Err(e) => {
            let name = path.map_or("-".into(), |p| p.display().to_string());
            eprintln!("imgrelay: {name}: {e}");
            summary.failed += 1;
            None
        }
    }
}

/// `path` itself, or the article files under it (sorted, recursively; symlinked directories
/// are not followed, so a link loop cannot trap the walk).
pub fn collect(path: &Path) -> io::Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let p = entry.path();
            if kind.is_dir() {
                dirs.push(p);
            } else if (kind.is_file() || kind.is_symlink()) && is_article(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn is_article(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Writes `bytes` to a temp file beside `path` (same permissions), then renames it over
/// `path`: readers see the old file or the new one, never a half-written one.
pub fn replace_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".imgrelay-rewrite-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let perms = std::fs::metadata(path)?.permissions();
    std::fs::set_permissions(tmp.path(), perms)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewrite::Skip;

    #[test]
    fn summary_line_names_reasons() {
        let mut s = Summary {
            files: 3,
            changed: 2,
            ..Summary::default()
        };
        s.stats.rewritten = 7;
        s.stats.skipped.insert(Skip::Relative, 2);
        s.stats.skipped.insert(Skip::AlreadyProxied, 1);
        assert_eq!(
            s.line(false),
            "rewrite: 3 files, 2 changed, 7 images rewritten, 3 skipped \
             (1 already proxied, 2 relative without base)"
        );
        s.failed = 1;
        assert!(s.line(true).contains("2 would change") && s.line(true).ends_with(", 1 failed"));
    }

    #[test]
    fn directories_are_walked_for_articles_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        std::fs::create_dir_all(&sub).unwrap();
        for name in [
            "x.md",
            "a/y.HTML",
            "a/b/z.markdown",
            "a/b/skip.txt",
            "a/w.htm",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let found: Vec<String> = collect(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(found, ["a/b/z.markdown", "a/w.htm", "a/y.HTML", "x.md"]);
        let file = dir.path().join("a/b/skip.txt");
        assert_eq!(collect(&file).unwrap(), std::slice::from_ref(&file));
        replace_atomically(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
}
