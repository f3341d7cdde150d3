//! The top-level blocks of a Markdown body, found without a Markdown parser when the body is
//! simple enough that the answer is certain: HTML blocks, blank lines, and runs of plain lines.
//!
//! A Hexo post's body is mostly HTML blocks separated by blank lines, and pulldown-cmark's
//! block pass costs about as much as a whole HTML tokenizer pass over them. This module splits
//! such a body the way pulldown-cmark 0.13 (with the options [`super::markdown`] uses) would:
//! an HTML block of types 1 to 5 (`<pre`, `<script`, `<style`, `<textarea`, `<!--`, `<?`, `<!X`,
//! `<![CDATA[`) runs to the first line holding its end marker (case-sensitive, as pulldown-cmark
//! compares it), one of type 6 (a block-level tag name) to the next blank line. Every other run
//! of lines up to a blank line is a paragraph or an HTML block of type 7, and either way ends
//! there with no open block: it is handed back as [`Block::Text`] for pulldown-cmark to parse
//! on its own, which gives the events it gives inside the whole body.
//!
//! It goes on only while nothing on a line start can open another kind of block or make a
//! line's block depend on the ones before it: a block whose line could start a list, a quote,
//! a heading, a fence, a thematic break, a setext underline, a table's delimiter row, a
//! footnote or a link reference definition, an indented block start, or tabs in a block
//! start's indentation end the split there, and the body from that block on goes to
//! pulldown-cmark as one [`Block::Rest`] (the whole body, `None`, when that is the first block,
//! when the rest defines a label, or for any `\r`, `\x0b`, `\x0c` or NUL). Without
//! definitions the inline parse of one paragraph depends on nothing outside it, so parsing
//! each [`Block::Text`] alone is exact.

use std::ops::Range;

/// One top-level block of a body (byte ranges of the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Block {
    /// An HTML block as pulldown-cmark's `Start(HtmlBlock)` reports it.
    Html(Range<usize>),
    /// A paragraph or a type-7 HTML block, ending at a blank line: parse it alone.
    Text(Range<usize>),
    /// The rest of the body from the first block the splitter cannot tell: parse it alone.
    Rest(Range<usize>),
}

/// Bytes that can open a block other than a paragraph or HTML at a line start (after up to
/// three spaces), or turn a paragraph into something else.
fn opens_block(c: u8) -> bool {
    matches!(
        c,
        b'>' | b'-' | b'*' | b'+' | b'_' | b'=' | b'#' | b'`' | b'~' | b'[' | b'|' | b':'
    ) || c.is_ascii_digit()
}

/// The top-level blocks of `body`, or `None` when only pulldown-cmark can tell them.
pub(super) fn split(body: &[u8]) -> Option<Vec<Block>> {
    let b = body;
    if has_odd_controls(b) {
        return None;
    }
    let mut blocks = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let next = line_end(b, at);
        let line = &b[at..next];
        let indent = spaces(line);
        let Some(&first) = line.get(indent).filter(|&&c| c != b'\n') else {
            at = next; // blank
            continue;
        };
        if indent >= 4 || first == b'\t' {
            return rest(blocks, b, at);
        }
        let start = at + indent;
        if first == b'<' {
            if let Some(marker) = html_end_marker(&b[start + 1..]) {
                let end = memchr::memmem::find(&b[start..], marker.as_bytes())
                    .map_or(b.len(), |i| line_end(b, start + i));
                blocks.push(Block::Html(start..end));
                at = end;
                continue;
            }
            if starts_block_tag(&b[start + 1..]) {
                let end = next_blank(b, next);
                blocks.push(Block::Html(start..end));
                at = end;
                continue;
            }
        } else if opens_block(first) {
            return rest(blocks, b, at);
        }
        let Some(end) = text_end(b, next, first == b'<') else {
            return rest(blocks, b, at);
        };
        blocks.push(Block::Text(at..end));
        at = end;
    }
    Some(blocks)
}

/// Whether `b` holds a `\r`, `\x0b`, `\x0c` or NUL, which change where lines and blocks end.
/// (`memchr`'s two passes beat one hand-written pass that the compiler vectorizes only for the
/// baseline target: 213 against 285 µs for the rewrite bench.)
fn has_odd_controls(b: &[u8]) -> bool {
    memchr::memchr3(b'\r', 0x0b, 0x0c, b).is_some() || memchr::memchr(0, b).is_some()
}

/// `blocks`, then the body from the block start `at` on as [`Block::Rest`]: everything before
/// it is closed (no container is ever open), so pulldown-cmark parses the rest alone as it
/// parses it in the whole body, unless the rest defines a link label that an image before it
/// uses: any `]:` in the rest, and the whole body goes to pulldown-cmark (`None`, as when the
/// first block is already one the splitter cannot tell).
fn rest(mut blocks: Vec<Block>, b: &[u8], at: usize) -> Option<Vec<Block>> {
    if at == 0 || memchr::memmem::find(&b[at..], b"]:").is_some() {
        return None;
    }
    blocks.push(Block::Rest(at..b.len()));
    Some(blocks)
}

/// Where a paragraph (or type-7 block) whose second line starts at `from` ends: at a blank
/// line, or before a line that opens an HTML block of types 1 to 5, which ends a paragraph
/// but not a type-7 block (`maybe_html`: the first line starts with `<`; then `None`). A line
/// that opens one of type 6 ends a paragraph and is content in a type-7 block: either way the
/// lines after it are HTML up to the blank line.
fn text_end(b: &[u8], from: usize, maybe_html: bool) -> Option<usize> {
    let mut at = from;
    while at < b.len() {
        let next = line_end(b, at);
        let line = &b[at..next];
        let ws = line
            .iter()
            .position(|&c| c != b' ' && c != b'\t')
            .unwrap_or(line.len());
        let Some(&first) = line.get(ws).filter(|&&c| c != b'\n') else {
            return Some(at);
        };
        if opens_block(first) {
            return None;
        }
        if first == b'<' && ws < 4 {
            let tab = line[..ws].contains(&b'\t');
            let rest = &line[ws + 1..];
            if html_end_marker(rest).is_some() {
                return (!maybe_html && !tab).then_some(at);
            }
            if starts_block_tag(rest) {
                return (!tab).then(|| next_blank(b, next));
            }
        }
        at = next;
    }
    Some(b.len())
}

/// The end of the line starting at `at` (after its `\n`, or the end of `b`).
fn line_end(b: &[u8], at: usize) -> usize {
    super::bytes::find(b'\n', &b[at..]).map_or(b.len(), |i| at + i + 1)
}

fn spaces(line: &[u8]) -> usize {
    line.iter().take_while(|&&c| c == b' ').count()
}

/// The start of the first blank line (spaces and tabs only) at or after the line start
/// `from`, or the end: one sweep over the line breaks, most lines decided by one byte.
fn next_blank(b: &[u8], from: usize) -> usize {
    let blank_at = |at: usize| {
        let rest = &b[at..];
        let n = rest
            .iter()
            .take_while(|&&c| c == b' ' || c == b'\t')
            .count();
        rest.get(n).is_none_or(|&c| c == b'\n')
    };
    if from >= b.len() || blank_at(from) {
        return from.min(b.len());
    }
    memchr::memchr_iter(b'\n', &b[from..])
        .map(|i| from + i + 1)
        .find(|&at| at >= b.len() || blank_at(at))
        .map_or(b.len(), |at| at.min(b.len()))
}

/// The end marker of an HTML block of types 1 to 5 whose `<` precedes `rest`, if it is one:
/// pulldown-cmark's start conditions (a raw-text tag name followed by whitespace, `>` or the
/// end of the body; `<!--`, `<?`, `<![CDATA[`, `<!` and a letter).
fn html_end_marker(rest: &[u8]) -> Option<&'static str> {
    const RAW: &[(&[u8], &str)] = &[
        (b"pre", "</pre>"),
        (b"style", "</style>"),
        (b"script", "</script>"),
        (b"textarea", "</textarea>"),
    ];
    for &(name, marker) in RAW {
        if rest.len() < name.len() {
            break; // the names grow longer; pulldown-cmark stops here
        }
        if rest[..name.len()].eq_ignore_ascii_case(name)
            && rest
                .get(name.len())
                .is_none_or(|&c| matches!(c, b'\t'..=b'\r' | b' ' | b'>'))
        {
            return Some(marker);
        }
    }
    if rest.starts_with(b"!--") {
        Some("-->")
    } else if rest.starts_with(b"?") {
        Some("?>")
    } else if rest.starts_with(b"![CDATA[") {
        Some("]]>")
    } else if rest.len() > 1 && rest[0] == b'!' && rest[1].is_ascii_alphabetic() {
        Some(">")
    } else {
        None
    }
}

/// The block-level tag names that start an HTML block of type 6 (pulldown-cmark's list).
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "base",
    "basefont",
    "blockquote",
    "body",
    "caption",
    "center",
    "col",
    "colgroup",
    "dd",
    "details",
    "dialog",
    "dir",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "frame",
    "frameset",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "head",
    "header",
    "hr",
    "html",
    "iframe",
    "legend",
    "li",
    "link",
    "main",
    "menu",
    "menuitem",
    "nav",
    "noframes",
    "ol",
    "optgroup",
    "option",
    "p",
    "param",
    "search",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "title",
    "tr",
    "track",
    "ul",
];

/// Whether `rest` (after a `<`) starts an HTML block of type 6: `/` or not, a block-level tag
/// name, then a space, a tab, a line end, `>`, `/>` or the end of the body.
fn starts_block_tag(rest: &[u8]) -> bool {
    let rest = rest.strip_prefix(b"/").unwrap_or(rest);
    let n = rest
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    let name = &rest[..n];
    if !BLOCK_TAGS
        .iter()
        .any(|t| name.eq_ignore_ascii_case(t.as_bytes()))
    {
        return false;
    }
    matches!(
        &rest[n..],
        [] | [b' ' | b'\t' | b'\r' | b'\n' | b'>', ..] | [b'/', b'>', ..]
    )
}

#[cfg(test)]
mod tests;
