//! The differential check of Markdown rewriting, shared by the in-process oracle (pulldown-cmark,
//! `tests/it/differential.rs`) and the reference one (Debian's `cmark`, `tests/e2e/cmark.rs`).
//!
//! A post and its rewrite are rendered to HTML by the oracle; the two renderings must be equal
//! but for image URLs. Each imgrelay URL of the second must stand, inside a tag, where the first
//! has a URL (a run without markup, quotes or whitespace; an unquoted value may have gained
//! quotes), and the `url=` it proxies must be the URL that the first rendering's reader loads
//! (parsed as a browser parses it, against the base); a second rewrite changes nothing. The
//! rewriter adds no attributes here, so anything else that differs (a block that ends
//! elsewhere, a link that now points at the proxy, a character written differently) fails.
//!
//! Inputs: the corpus posts, the `rewrite` fuzz target's seeds, and [`generated`] posts built
//! from fragments of the constructs the rewriter has got wrong before.

use imgrelay::{
    config::Config,
    rewrite::{Kind, Rewriter},
};
use std::path::{Path, PathBuf};
use url::Url;

/// What the rewriter writes URLs under.
const RELAY: &str = "https://relay.test/?";

/// A rewriter that writes URLs only (no `srcset`, `loading`, … added) and unwraps nothing.
pub fn rewriter() -> Rewriter {
    let mut c = Config::default();
    c.server.public_url = "https://relay.test".into();
    c.rewrite.widths = Vec::new();
    c.rewrite.lazy = false;
    c.rewrite.decoding = false;
    c.rewrite.dimensions = false;
    c.rewrite.eager = 0;
    c.rewrite.unwrap = Vec::new();
    c.security.allowed_referers = vec!["blog.example".parse().expect("a host pattern")];
    Rewriter::new(&c)
}

/// One post to check: a name for messages, the text, and the base it is rewritten against.
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub text: String,
    pub base: Option<Url>,
}

/// The corpus posts, the fuzz seeds and `n` generated posts.
pub fn inputs(n: usize) -> Vec<Input> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["tests/fixtures/corpus", "fuzz/corpus/rewrite"] {
        let entries = std::fs::read_dir(root.join(dir)).expect("the corpus directories exist");
        files.extend(entries.map(|e| e.expect("a directory entry").path()));
    }
    files.retain(|p| {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name.starts_with("seed-") || (name.ends_with(".md") && name != "README.md")
    });
    files.sort();
    let mut all: Vec<Input> = files
        .iter()
        .filter_map(|p| {
            let text = String::from_utf8(std::fs::read(p).ok()?).ok()?;
            Some(Input {
                name: p.display().to_string(),
                text,
                base: None,
            })
        })
        .collect();
    all.extend(generated(n));
    all
}

/// Pieces of Markdown and raw HTML that posts are built from: every construct whose reading
/// the rewriter has got wrong before, and what surrounds it in posts.
const FRAGMENTS: &[&str] = &[
    "![a](http://o.example.com/foo\\bar.jpg)",
    "![a](<http://o.example.com/a b.jpg> \"t\")",
    "![é](//o.example.com/é|{x}.png)",
    "![r](rel\\dir/x.png)",
    "![a][img]",
    "![b][home]",
    "[our home page][home]",
    "[HOME]",
    "![c][Straße]",
    "[d][STRASSE]",
    "[img]: http://o.example.com/i.png",
    "[home]: http://o.example.com/",
    "[strasse]: http://o.example.com/s.png",
    "<img src=\"http://o.example.com/a.jpg\">",
    "<img src=http://o.example.com/u.jpg alt=x>",
    "<img srcset=\"http://o.example.com/a.jpg&#xA;&#xA;1x\">",
    "<img srcset=\"http://o.example.com/a.jpg&#xD;&#xD;1x, //o.example.com/b.jpg&#x9;2x\">",
    "<img src=\"&#x1;http://o.example.com/c.jpg\">",
    "<img srcset=\"&#xB;http://o.example.com/d.jpg 1x\">",
    "<p style=\"background:url(http://o.example.com/b.png)&#xA;&#xA;\">x</p>",
    "<span style=\"background:url(&quot/s.png&quot)&nbsp;\">y</span>",
    "<a href=\"http://o.example.com/big.jpg\"><img src=\"http://o.example.com/small.jpg\"></a>",
    "<noscript><img src=\"http://o.example.com/n.jpg\"></noscript>",
    "<pre>",
    "</PRE>",
    "<script>",
    "</SCRIPT>",
    "<style>",
    "</Style>",
    "<textarea>",
    "</TEXTAREA>",
    "<!--",
    "-->",
    "<div>",
    "</div>",
    "`code <img src=\"http://o.example.com/code.jpg\">`",
    "```",
    "text",
    "> quoted",
    "- item",
    "    indented ![i](http://o.example.com/ind.jpg)",
    "| a | b |\n|---|---|\n| ![t](http://o.example.com/t.jpg) | x |",
];

/// `n` posts of one to eight fragments each, with line breaks, blank lines or spaces between,
/// every second one rewritten against a base. The same `n` gives the same posts.
pub fn generated(n: usize) -> Vec<Input> {
    // splitmix64: a fixed sequence, so a failure names a post that the next run builds again
    let mut state: u64 = 0x5eed_1234_abcd_0042;
    let mut next = move |below: usize| {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % below as u64) as usize
    };
    let base = Url::parse("https://blog.example/posts/a/").expect("a base URL");
    (0..n)
        .map(|i| {
            let mut text = String::new();
            for _ in 0..1 + next(8) {
                if !text.is_empty() {
                    text.push_str(["\n", "\n\n", " "][next(3)]);
                }
                text.push_str(FRAGMENTS[next(FRAGMENTS.len())]);
            }
            text.push('\n');
            Input {
                name: format!("generated #{i}"),
                text,
                base: (i % 2 == 1).then(|| base.clone()),
            }
        })
        .collect()
}

/// The body of a post: what follows its front matter, if it has one (front matter is not
/// Markdown, and renderers do not show it).
fn body(post: &str) -> &str {
    // blank lines may precede front matter
    let mut rest = post;
    while let Some((line, tail)) = rest.split_once('\n') {
        if !line.trim().is_empty() {
            break;
        }
        rest = tail;
    }
    for fence in ["---", "+++"] {
        let Some(after) = rest.strip_prefix(fence) else {
            continue;
        };
        if !after.starts_with(['\n', '\r']) {
            continue;
        }
        let close = format!("\n{fence}");
        if let Some(end) = after.find(&close) {
            let tail = &after[end + close.len()..];
            return tail.split_once('\n').map_or("", |(_, b)| b);
        }
    }
    post
}

/// Panics listing every input of `inputs` whose renderings by `render` differ in more than
/// image URLs (see [`check_all`]).
pub fn assert_all(inputs: &[Input], render: &dyn Fn(&str) -> String) {
    let failures = check_all(inputs, render);
    assert!(
        failures.is_empty(),
        "{} of {} posts:\n{}",
        failures.len(),
        inputs.len(),
        failures.join("\n")
    );
}

/// Rewrites every input and checks its renderings by `render`; the failures, one per line.
pub fn check_all(inputs: &[Input], render: &dyn Fn(&str) -> String) -> Vec<String> {
    let rw = rewriter();
    let mut failures = Vec::new();
    for input in inputs {
        let out =
            match rw.rewrite_document(input.text.as_bytes(), Kind::Markdown, input.base.as_ref()) {
                Ok(out) => out,
                Err(e) => {
                    failures.push(format!("{}: not rewritten: {e}", input.name));
                    continue;
                }
            };
        let after = String::from_utf8(out.bytes).expect("a rewritten post is UTF-8");
        let again = rw.rewrite_document(after.as_bytes(), Kind::Markdown, input.base.as_ref());
        if !again.is_ok_and(|a| a.bytes == after.as_bytes()) {
            failures.push(format!(
                "{}: a second rewrite changes it: {after:?}",
                input.name
            ));
            continue;
        }
        let (before_html, after_html) = (render(body(&input.text)), render(body(&after)));
        if let Err(why) = same_but_image_urls(&before_html, &after_html, input.base.as_ref()) {
            failures.push(format!(
                "{}: {why}\n  post: {:?}\n  rewritten: {:?}\n  rendered: {:?}\n  then: {:?}",
                input.name, input.text, after, before_html, after_html
            ));
        }
    }
    failures
}

/// The pieces of `after` around its imgrelay URLs, and those URLs.
fn split_at_relay_urls(after: &str) -> (Vec<&str>, Vec<&str>) {
    let (mut lits, mut urls, mut at) = (Vec::new(), Vec::new(), 0);
    while let Some(i) = after[at..].find(RELAY) {
        let start = at + i;
        // URL characters, and `&` only as `&amp;` (a reference after the URL is not in it)
        let mut len = RELAY.len();
        loop {
            let tail = &after[start + len..];
            if tail.starts_with("&amp;") {
                len += "&amp;".len();
            } else if tail
                .starts_with(|c: char| c.is_ascii_alphanumeric() || "%+*._-=~".contains(c))
            {
                len += 1;
            } else {
                break;
            }
        }
        lits.push(&after[at..start]);
        urls.push(&after[start..start + len]);
        at = start + len;
    }
    lits.push(&after[at..]);
    (lits, urls)
}

/// A URL in the first rendering: no markup, quotes or whitespace.
fn is_url_text(s: &str) -> bool {
    !s.is_empty() && !s.contains(|c: char| c.is_ascii_whitespace() || "<>\"'".contains(c))
}

/// Whether `html[..at]` ends inside a tag.
fn in_tag(html: &str, at: usize) -> bool {
    let head = &html[..at];
    match (head.rfind('<'), head.rfind('>')) {
        (Some(open), Some(close)) => open > close,
        (open, _) => open.is_some(),
    }
}

/// Checks that `after` is `before` with image URLs replaced by imgrelay URLs that proxy them.
fn same_but_image_urls(before: &str, after: &str, base: Option<&Url>) -> Result<(), String> {
    let (lits, urls) = split_at_relay_urls(after);
    let mut offset = 0;
    for (i, url) in urls.iter().enumerate() {
        offset += lits[i].len();
        if !in_tag(after, offset) {
            return Err(format!("the imgrelay URL {url} is text, not in a tag"));
        }
        offset += url.len();
    }
    match_from(before, 0, &lits, &urls, 0, base).map_err(|(_, why)| why)
}

/// Matches `before[at..]` against the pieces from `lits[i]` on, each URL slot a URL of the
/// first rendering; backtracks over where a slot ends. A failure says how far it got.
fn match_from(
    before: &str,
    at: usize,
    lits: &[&str],
    urls: &[&str],
    i: usize,
    base: Option<&Url>,
) -> Result<(), (usize, String)> {
    let lit = lits[i];
    let rest = &before[at..];
    if i == urls.len() {
        return match rest == lit {
            true => Ok(()),
            false => Err((at, first_difference(rest, lit))),
        };
    }
    let next = lits[i + 1];
    let mut tries = vec![(lit, next)];
    // an unquoted value the rewriter quoted: `=URL` there, `="RELAY"` here
    if let (Some(lit), Some(next)) = (lit.strip_suffix('"'), next.strip_prefix('"')) {
        if lit.ends_with('=') {
            tries.push((lit, next));
        }
    }
    // a reference without its `;` right before the URL got one (`&quot/a.png` → `&quot;…`)
    if let Some(bare) = lit.strip_suffix(';') {
        tries.push((bare, next));
    }
    let mut best = (
        at,
        format!(
            "no URL in the first rendering where the second has {}",
            urls[i]
        ),
    );
    for (lit, next) in tries {
        if !rest.starts_with(lit) {
            best = best.max((at, first_difference(rest, lit)));
            continue;
        }
        let slot = at + lit.len();
        let mut lits = lits.to_vec();
        lits[i + 1] = next;
        let mut end = slot;
        for c in before[slot..].chars() {
            end += c.len_utf8();
            let url = &before[slot..end];
            if !is_url_text(url) {
                break;
            }
            match match_from(before, end, &lits, urls, i + 1, base) {
                Ok(()) => return proxies(urls[i], url, base).map_err(|e| (end, e)),
                Err(e) => best = best.max(e),
            }
        }
    }
    Err(best)
}

/// Checks that the imgrelay URL `relay` (as written in HTML) proxies what a reader of the
/// first rendering loads for `url` (as written there).
fn proxies(relay: &str, url: &str, base: Option<&Url>) -> Result<(), String> {
    let relay = htmlize::unescape_attribute(relay);
    let query = relay.strip_prefix(RELAY).unwrap_or_default();
    let source = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "url")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("{relay} has no url parameter"))?;
    let written = htmlize::unescape_attribute(url);
    let written = written.trim_matches(|c: char| c <= ' ');
    let loaded = match base {
        Some(b) => b.join(written),
        None if written.starts_with("//") => Url::parse(&format!("https:{written}")),
        None => Url::parse(written),
    };
    let proxied = Url::parse(&source);
    match (loaded, proxied) {
        (Ok(l), Ok(p)) if l == p => Ok(()),
        (l, p) => Err(format!(
            "{url:?} loads {:?} but imgrelay proxies {:?}",
            l.map(String::from),
            p.map(String::from)
        )),
    }
}

fn first_difference(got: &str, want: &str) -> String {
    let same = got
        .char_indices()
        .zip(want.chars())
        .find(|((_, a), b)| a != b)
        .map_or(got.len().min(want.len()), |((i, _), _)| i);
    let show = |s: &str| s[same..].chars().take(60).collect::<String>();
    format!(
        "renderings differ after {:?}: {:?} before, {:?} after",
        &got[same.saturating_sub(40)..same],
        show(got),
        show(want)
    )
}
