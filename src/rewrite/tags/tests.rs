//! Tables of what the tokenizer finds: tags and attributes, comments, raw text, foreign
//! content, the picture stack, and `lol_html`'s name hash.

use super::*;

/// The start tags of `html` as `name[attr=value …]`, noscript contents as `{…}`.
fn tags(html: &str) -> Result<Vec<String>, Unsupported> {
    tags_tracking(html, true)
}

fn tags_tracking(html: &str, track_picture: bool) -> Result<Vec<String>, Unsupported> {
    let d = html.as_bytes();
    let mut out = Vec::new();
    let done = Scanner::default().scan(d, 0..d.len(), track_picture, |e| match e {
        Event::Start {
            name,
            attrs,
            in_picture,
            ..
        } => {
            let mut s = String::from_utf8_lossy(name).into_owned();
            if in_picture {
                s.insert(0, '^');
            }
            for a in attrs {
                s.push(' ');
                s.push_str(&html[a.name.clone()]);
                if let Some(v) = &a.value {
                    s.push('=');
                    s.push_str(&html[v.clone()]);
                }
            }
            out.push(s);
        }
        Event::Noscript(r) => out.push(format!("{{{}}}", &html[r])),
    })?;
    if !done {
        out.push("(picture)".into());
    }
    Ok(out)
}

#[test]
fn tags_table() {
    let cases: &[(&str, &[&str])] = &[
        ("text only", &[]),
        ("<p>a</p><img src=x>", &["p", "img src=x"]),
        ("<IMG/SRC='a b'/>", &["IMG SRC=a b"]),
        ("<img src = \"x>y\" alt>", &["img src=x>y alt"]),
        ("<div a\"b c=\">\">", &["div a\"b c=>"]),
        ("<img a=\"1\"b='2'c=3>", &["img a=1 b=2 c=3"]),
        ("<img src=>", &["img src"]),
        ("<!-- <img a> --><img b>", &["img b"]),
        ("<!--><img a>", &["img a"]),
        ("<!---><img a>", &["img a"]),
        ("<!-- a --!><img b>", &["img b"]),
        ("<!-- a <!-- b --><img c>", &["img c"]),
        ("<!-- unclosed <img a>", &[]),
        ("<!DOCTYPE html><? x <img a> ?><img b>", &["img b"]),
        ("<![CDATA[<img a>]]><img b>", &["img b"]),
        ("</div title=\">\"><img a>", &["img a"]),
        ("</ x <img a>><img b>", &["img b"]),
        ("</><img a>", &["img a"]),
        ("a < b <3 <img a>", &["img a"]),
        ("<script>'<img a>'</script ><img b>", &["script", "img b"]),
        ("<style><img a></STYLE><img b>", &["style", "img b"]),
        (
            "<title><img a></titlex></title><img b>",
            &["title", "img b"],
        ),
        ("<textarea><img a>", &["textarea"]),
        ("<textarea a=><img a>", &["textarea a"]),
        ("<plaintext></plaintext><img a>", &["plaintext"]),
        (
            "<noscript><img a></noscript><img b>",
            &["noscript", "{<img a>}", "img b"],
        ),
        ("<noscript></noscript>", &["noscript"]),
        (
            "<picture><source a></picture><source b>",
            &["picture", "^source a", "source b"],
        ),
        (
            "<div><picture></div><source a>",
            &["div", "picture", "source a"],
        ),
        ("<picture></img><source a>", &["picture", "^source a"]),
        ("<img src='x", &[]),
        ("<img src=x", &[]),
        ("<img", &[]),
        ("<", &[]),
    ];
    for (html, want) in cases {
        assert_eq!(
            tags(html),
            Ok(want.iter().map(|s| s.to_string()).collect()),
            "{html}"
        );
    }
    for html in [
        "<picture><svg><img a></svg>",
        "<MATH>",
        "<script><!--<script></script>--></script>",
    ] {
        assert_eq!(tags(html), Err(Unsupported), "{html}");
    }
}

#[test]
fn foreign_content_table() {
    let cases: &[(&str, &[&str])] = &[
        (
            "<svg><style><img a></style></svg>",
            &["svg", "style", "img a"],
        ),
        (
            "<svg><![CDATA[<img a>]]><img b></svg><![CDATA[<img c>]]><img d>",
            &["svg", "img b", "img d"],
        ),
        ("<svg><p><title><img a></title>", &["svg", "p", "title"]),
        (
            "<svg><desc><title><img a></title><![CDATA[<img b>]]><img c>",
            &["svg", "desc", "title", "img c"],
        ),
        (
            "<svg><font color=red><style><img a>",
            &["svg", "font color=red", "style"],
        ),
        (
            "<svg><font x><style><img a>",
            &["svg", "font x", "style", "img a"],
        ),
        (
            "<math><annotation-xml encoding=TEXT/HTML><style><img a></style>",
            &["math", "annotation-xml encoding=TEXT/HTML", "style"],
        ),
        ("<svg/><textarea><img a>", &["svg", "textarea", "img a"]),
        ("<svg></p><textarea><img a>", &["svg", "textarea"]),
    ];
    for (html, want) in cases {
        let got = tags_tracking(html, false);
        assert_eq!(
            got,
            Ok(want.iter().map(|s| s.to_string()).collect()),
            "{html}"
        );
    }
    assert_eq!(tags_tracking("<svg><noscript>", false), Err(Unsupported));
}

#[test]
fn names_hash_as_lol_html_hashes_them() {
    assert_eq!(name_hash(b"div"), 9691);
    assert_eq!(name_hash(b"DiV"), 9691);
    assert_eq!(name_hash(b"svg"), 25_452);
    assert_eq!(name_hash(b"title"), 26_699_306);
    assert_eq!(name_hash(b"foreignObject"), 13_428_975_859_192_539_417);
    assert_eq!(name_hash(b"h1"), name_hash(b"H1"));
    assert_eq!(name_hash(b"my-el"), NO_HASH);
    assert_eq!(name_hash(b"abcdefghijklmnopq"), NO_HASH);
    assert!(same_tag(b"My-El", NO_HASH, b"my-el", NO_HASH));
    assert!(!same_tag(b"div", tag::P, b"div", name_hash(b"div")));
}

#[test]
fn ranges_point_into_the_input() {
    let html = "x<img  data-src='a' src=b alt>";
    let mut seen = Vec::new();
    Scanner::default()
        .scan(html.as_bytes(), 1..html.len(), false, |e| {
            if let Event::Start { at, attrs, .. } = e {
                seen.push((at, attrs.to_vec()));
            }
        })
        .unwrap();
    let attr = |name: Range<usize>, value: Option<Range<usize>>, quote, end| Attr {
        name,
        value,
        quote,
        end,
    };
    assert_eq!(
        seen,
        vec![(
            1,
            vec![
                attr(7..15, Some(17..18), Some(b'\''), 19),
                attr(20..23, Some(24..25), None, 25),
                attr(26..29, None, None, 29),
            ]
        )]
    );
}
