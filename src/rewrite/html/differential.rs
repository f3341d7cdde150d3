//! The tokenizer against `lol_html`: every document rewritten both ways must come out the same,
//! byte for byte and count for count — the corpus, every prefix of some posts, and snippets
//! chosen to hit each tokenizer state.

use super::super::{tests::corpus_posts, Config, Kind, Output, Rewriter};
use url::Url;

fn both(configure: impl Fn(&mut Config)) -> (Rewriter, Rewriter) {
    let mut c = Config::default();
    configure(&mut c);
    let fast = Rewriter::new(&c);
    let mut reference = Rewriter::new(&c);
    reference.lol_html_only = true;
    (fast, reference)
}

fn same(fast: &Rewriter, reference: &Rewriter, doc: &[u8], kind: Kind, base: Option<&Url>) {
    let a = fast
        .rewrite_document(doc, kind, base)
        .map_err(|e| e.to_string());
    let b = reference
        .rewrite_document(doc, kind, base)
        .map_err(|e| e.to_string());
    let show = |r: &Result<Output, String>| match r {
        Ok(o) => format!("{:?}\n{}", o.stats, String::from_utf8_lossy(&o.bytes)),
        Err(e) => e.clone(),
    };
    assert!(
        a == b,
        "{kind:?} {:?}\n--- tokenizer:\n{}\n--- lol_html:\n{}",
        String::from_utf8_lossy(doc),
        show(&a),
        show(&b)
    );
}

#[test]
fn the_corpus_comes_out_the_same() {
    let (fast, reference) = both(|_| {});
    let base = Url::parse("https://blog.example/2021/post/").ok();
    let posts = corpus_posts();
    assert_eq!(posts.len(), 46);
    for post in &posts {
        for kind in [Kind::Auto, Kind::Html] {
            same(&fast, &reference, post, kind, None);
            same(&fast, &reference, post, kind, base.as_ref());
        }
    }
    // every prefix of a few posts as HTML: a cut can fall in any tokenizer state
    for post in posts.iter().step_by(9) {
        for cut in 0..post.len() {
            same(&fast, &reference, &post[..cut], Kind::Html, None);
        }
    }
}

const SNIPPETS: &[&str] = &[
    "<!-- <img src=https://h/a.jpg> --><img src=https://h/b.jpg>",
    "<!--><img src=https://h/a.jpg>",
    "<!---><img src=https://h/a.jpg>",
    "<!----><img src=https://h/a.jpg>",
    "<!--!><img src=https://h/a.jpg>-->",
    "<!-- a --!><img src=https://h/a.jpg>",
    "<!-- a --!-><img src=https://h/a.jpg>--><img src=https://h/b.jpg>",
    "<!-- <!-- nested --><img src=https://h/a.jpg>",
    "<!--<!--><img src=https://h/a.jpg>",
    "<!--<!---><img src=https://h/a.jpg>",
    "<!-- a <!- b -> <img src=https://h/a.jpg> -->",
    "<!-- unclosed <img src=https://h/a.jpg>",
    "<!- <img src=https://h/a.jpg> -><img src=https://h/b.jpg>",
    "<!DOCTYPE html PUBLIC \"a>b\"><img src=https://h/a.jpg>",
    "<![CDATA[<img src=https://h/a.jpg>]]><img src=https://h/b.jpg>",
    "<?php echo '<img src=https://h/a.jpg>' ?><img src=https://h/b.jpg>",
    "</div title=\"<img src=https://h/a.jpg>\"><img src=https://h/b.jpg>",
    "</ <img src=https://h/a.jpg>><img src=https://h/b.jpg>",
    "</><img src=https://h/a.jpg>",
    "</3 <img src=https://h/a.jpg>",
    "a <3 b < c <img src=https://h/a.jpg>",
    "<script>var s='<img src=https://h/a.jpg>'</script><img src=https://h/b.jpg>",
    "<script>a</scripts><img src=https://h/a.jpg></SCRIPT\n x='>'><img src=https://h/b.jpg>",
    "<script><!--<img src=https://h/a.jpg>--></script><img src=https://h/b.jpg>",
    "<script><!--<script></script><img src=https://h/a.jpg></script><img src=https://h/b.jpg>",
    "<script/><img src=https://h/a.jpg>",
    "<style>a{background:url(https://h/a.jpg)}</style><p style='background:url(//h/b.jpg)'>",
    "<textarea><img src=https://h/a.jpg></textarea><img src=https://h/b.jpg>",
    "<textarea a=><img src=https://h/a.jpg>",
    "<title><img src=https://h/a.jpg></title ><img src=https://h/b.jpg>",
    "<xmp><img src=https://h/a.jpg></xmp><iframe><img src=https://h/a.jpg></iframe>",
    "<noembed><img src=https://h/a.jpg></noembed><noframes><img src=https://h/a.jpg></noframes>",
    "<plaintext><img src=https://h/a.jpg></plaintext><img src=https://h/b.jpg>",
    "<noscript><img src=https://h/a.jpg></noscript><img src=https://h/b.jpg>",
    "<noscript><noscript><img src=https://h/a.jpg></noscript></noscript>",
    "<noscript><noscript><noscript><img src=https://h/a.jpg></noscript></noscript></noscript>",
    "<noscript><img src=https://h/a.jpg>",
    "<noscript><img src=https://h/a.jpg></noscript",
    "<noscript><img src=https://h/a.jpg></noscript x='",
    "<noscript><img src=https://h/a.jpg></noscript/><img src=https://h/b.jpg>",
    "<noscript a=><img src=https://h/a.jpg></noscript>",
    "<noscript></noscript><noscript>a < b</noscript>",
    "<NoScript>x<img src=https://h/a.jpg>y<p>z</NOSCRIPT>",
    "<div title=\"<img src=http://x/a.jpg>\"><img src=https://h/b.jpg>",
    "<div title='<img src=http://x/a.jpg>'>",
    "<div title=<img src=http://x/a.jpg>>",
    "<div a\"b c=\">\" <img src=https://h/a.jpg>",
    "<IMG SRC=\"https://h/a.jpg\" SRCSET='https://h/b.jpg 2x'>",
    "<img/src=https://h/a.jpg>",
    "<img src=https://h/a.jpg/>",
    "<img src = 'https://h/a.jpg' alt = x>",
    "<img src=\"https://h/a.jpg\"alt=\"x>y\"data-src='//h/b.jpg'>",
    "<img src=https://h/a.jpg?a=1&amp;b=2 alt=\"x\">",
    "<img src=>",
    "<img src=\"\" srcset=\" , \">",
    "<img src=https://h/a.jpg src=https://h/b.jpg>",
    "<img =src=https://h/a.jpg>",
    "<img src='https://h/a.jpg' / / alt>",
    "<img \u{feff}src=https://h/a.jpg>",
    "<picture><source srcset=https://h/a.jpg><img src=https://h/b.jpg></picture>",
    "<picture><source srcset=https://h/a.jpg></picture><source srcset=https://h/b.jpg>",
    "<source srcset=https://h/a.jpg><picture/><source data-src=https://h/b.jpg>",
    "<div><picture></div><source srcset=https://h/a.jpg>",
    "<picture><div></picture><source srcset=https://h/a.jpg></div><source srcset=https://h/b.jpg>",
    "<picture><p></P><source SRC=https://h/a.jpg></picture></picture><source src=https://h/b.jpg>",
    "<picture><noscript><source srcset=https://h/a.jpg></noscript></picture>",
    "<video poster=https://h/a.jpg><source src=https://h/v.mp4></video><video>",
    "<meta property=og:image content=https://h/a.jpg><meta name=TWITTER:IMAGE content='//h/b.jpg'>",
    "<meta content=https://h/a.jpg property=\"og:image\">",
    "<link rel='preload stylesheet' as=image href=https://h/a.jpg imagesrcset='https://h/b.jpg 2x'>",
    "<a href=https://h/a.jpg><abbr href=https://h/b.jpg>x</abbr></a><A HREF=//h/c.png>",
    "<div STYLE=\"background:URL(https://h/a.jpg)\"><p sTyle='x:url(//h/b.jpg)'><i STyle='url(//h/c.jpg)'>",
    "<span style=\"background:url&#40;https://h/a.jpg)\">",
    "<img src=https://h/a.jpg style='background:url(//h/b.jpg)' data-size='700,500' width=100>",
    "<svg><img src=https://h/a.jpg></svg><img src=https://h/b.jpg>",
    "<svg><![CDATA[<img src=https://h/a.jpg>]]></svg><img src=https://h/b.jpg>",
    "<svg><style><img src=https://h/a.jpg></style></svg>",
    "<math><mi><textarea><img src=https://h/a.jpg></textarea></mi></math>",
    "<svg><a href=https://h/a.jpg><image href=//h/b.png/></a></svg><img src=//h/c.jpg>",
    "<svg><desc><title><img src=https://h/a.jpg></title><style><img src=//h/b.jpg></style>",
    "<svg><font color=red><style><img src=https://h/a.jpg>",
    "<svg><font><style><img src=https://h/a.jpg></style></font></svg><style><img src=//h/b.jpg>",
    "<math><annotation-xml encoding=text/html><xmp><img src=https://h/a.jpg></xmp></annotation-xml>",
    "<math><mi><title><img src=https://h/a.jpg></title></mi><title><img src=//h/b.jpg>",
    "<svg><p><textarea><img src=https://h/a.jpg>",
    "<svg></p><textarea><img src=https://h/a.jpg>",
    "<svg/><svg></svg><title><img src=https://h/a.jpg>",
    "<svg><noscript><![CDATA[<img src=https://h/a.jpg>]]></noscript></svg>",
    "<picture><svg></svg><source srcset=https://h/a.jpg></picture>",
    "<svg><foreignObject><p><img src=https://h/a.jpg></foreignObject><style><img src=//h/b.jpg>",
    "<svg><foreignobject/><style><img src=https://h/a.jpg>",
    "<svg><voreignObject><style><img src=https://h/a.jpg>",
    "<k111111111img src=https://h/a.jpg><x1111111111111script><img src=//h/b.jpg>",
    "<img src=\"https://h/a.jpg",
    "<img src='https://h/a.jpg' <img src=",
    "<img src=https://h/a.jpg",
    "<img src",
    "<img",
    "<",
    "</",
    "<!",
    "<!-",
    "<img src=https://h/\0a.jpg>\0<img\0 src=https://h/b.jpg><im\0g src=https://h/c.jpg>",
    "<img alt=\"caf\u{e9}\" src=\"https://h/a.jpg\">",
];

#[test]
fn adversarial_snippets_come_out_the_same() {
    let (fast, reference) = both(|_| {});
    let base = Url::parse("https://blog.example/p/").ok();
    for snippet in SNIPPETS {
        for kind in [Kind::Html, Kind::Markdown] {
            same(&fast, &reference, snippet.as_bytes(), kind, None);
            same(&fast, &reference, snippet.as_bytes(), kind, base.as_ref());
        }
        // every prefix, and the snippet in the middle of a document
        for cut in 0..snippet.len() {
            same(
                &fast,
                &reference,
                &snippet.as_bytes()[..cut],
                Kind::Html,
                None,
            );
        }
        let wrapped = format!("<p>before <img src=//h/x.jpg></p>{snippet}<p><img src=//h/y.jpg>");
        same(&fast, &reference, wrapped.as_bytes(), Kind::Html, None);
    }
}

#[test]
fn invalid_utf8_and_bom_names_come_out_the_same() {
    let (fast, reference) = both(|_| {});
    for doc in [
        &b"<img alt=\"caf\xe9\" src=\"https://h/a.jpg\" title=\"\xff\">"[..],
        b"<img src=\"https://h/\xff.jpg\"><img \xff=1 src=//h/b.jpg>",
        b"<im\xffg src=//h/a.jpg><img src=//h/b.jpg \xef\xbb\xbfsrc=//h/c.jpg>",
        b"<img \xff\xfes\0r\0c\0=//h/a.jpg><img \xfe\xff\0s\0r\0c=//h/b.jpg>",
        b"<div \xef\xbb\xbfstyle='url(//h/a.jpg)' style='url(//h/b.jpg)'>",
        b"<div \xef\xbb\xbfstyle='url(//h/a.jpg)'>",
        b"<noscript>\xff<img src=//h/a.jpg></noscript>",
    ] {
        same(&fast, &reference, doc, Kind::Html, None);
    }
}
