//! URL spelling, read without a URL parser: schemes, the `http(s)` URLs `url` would keep as
//! written, and links that look like image files.

/// The host and path of an absolute `http(s)://` URL when `url::Url` would parse it to exactly
/// those (a lowercase ASCII domain without port, user or IDNA labels, whose last label starts
/// with a letter so it is no IPv4 address; a path without dot segments, backslashes or
/// characters the parser drops), so that checking them needs no parse. `None`: parse it.
/// Characters the parser percent-encodes may stay: encoding never changes whether a path
/// ends in `.svg`, the one thing asked of it.
pub(in crate::rewrite) fn plain_http(url: &str) -> Option<(&str, &str)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let b = rest.as_bytes();
    // host: labels of [a-z0-9-], none empty, none `xn--`, the last starting with a letter
    let len = b
        .iter()
        .position(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'))
        .unwrap_or(b.len());
    if !matches!(b.get(len), None | Some(b'/' | b'?' | b'#')) {
        return None;
    }
    let mut last = &b[..0];
    for label in b[..len].split(|&c| c == b'.') {
        if label.is_empty() || label.starts_with(b"xn--") {
            return None;
        }
        last = label;
    }
    if !last.first().is_some_and(u8::is_ascii_lowercase) {
        return None;
    }
    let (host, after) = rest.split_at(len);
    let end = memchr::memchr2(b'?', b'#', after.as_bytes()).unwrap_or(after.len());
    let path = &after[..end];
    let p = path.as_bytes();
    for (j, &c) in p.iter().enumerate() {
        if !PATH_SPECIAL[usize::from(c)] {
            continue;
        }
        let dot_segment = c == b'.' && j > 0 && p[j - 1] == b'/';
        let encoded_dot = c == b'%'
            && p.get(j + 1..j + 3)
                .is_some_and(|h| h.eq_ignore_ascii_case(b"2e"));
        if c <= b' ' || c == 0x7f || c == b'\\' || dot_segment || encoded_dot {
            return None;
        }
    }
    Some((host, path))
}

/// Path bytes [`plain_http`] looks at twice: controls, space, DEL, `\\`, and the `.` and `%`
/// that may start a dot segment.
const PATH_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c <= 0x20 || matches!(c as u8, 0x7f | b'\\' | b'.' | b'%');
        c += 1;
    }
    t
};

/// `url` from `//` on, when it is http(s) (any case) or protocol-relative.
pub(in crate::rewrite) fn schemeless(url: &str) -> Option<&str> {
    if has_scheme(url, "https") {
        Some(&url[6..])
    } else if has_scheme(url, "http") {
        Some(&url[5..])
    } else {
        url.starts_with("//").then_some(url)
    }
}

/// Whether `url` starts with `scheme:` in any case (`scheme` is a valid scheme).
pub(super) fn has_scheme(url: &str, scheme: &str) -> bool {
    let b = url.as_bytes();
    b.len() > scheme.len()
        && b[scheme.len()] == b':'
        && b[..scheme.len()].eq_ignore_ascii_case(scheme.as_bytes())
}

/// The scheme of an absolute URL (`[a-zA-Z][a-zA-Z0-9+.-]*:`), if it has one.
pub(super) fn scheme_of(url: &str) -> Option<&str> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    let first = bytes.next()?;
    (first.is_ascii_alphabetic()
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))
    .then_some(scheme)
}

/// Whether a link target looks like an image file (lightbox links): the last path segment,
/// cut at image-service suffixes (`!custom`, `@s_2,w_820`), ends in a raster extension. Works
/// on the reference as written (absolute or relative), without parsing it as a URL.
pub(in crate::rewrite) fn looks_like_image(reference: &str) -> bool {
    let b = reference.as_bytes();
    let path = &b[..memchr::memchr2(b'?', b'#', b).unwrap_or(b.len())];
    let after_host = match double_slash(path) {
        Some(i) => memchr::memchr(b'/', &path[i + 2..]).map_or(&[][..], |j| &path[i + 2 + j..]),
        None => path,
    };
    let last = &after_host[memchr::memrchr(b'/', after_host).map_or(0, |i| i + 1)..];
    let name = &last[..memchr::memchr2(b'!', b'@', last).unwrap_or(last.len())];
    let ext = memchr::memrchr(b'.', name).map_or(&[][..], |i| &name[i + 1..]);
    let mut lower = [0u8; 4];
    let Some(lower) = lower.get_mut(..ext.len()) else {
        return false;
    };
    lower.copy_from_slice(ext);
    lower.make_ascii_lowercase();
    matches!(
        &*lower,
        b"jpg" | b"jpeg" | b"jfif" | b"png" | b"gif" | b"webp" | b"avif" | b"bmp"
    )
}

/// Where the first `//` of `b` is.
fn double_slash(b: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'/', &b[from..]) {
        let at = from + i;
        if b.get(at + 1) == Some(&b'/') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use url::Url;

    #[test]
    fn plain_urls_are_what_url_parses_them_to() {
        let urls = [
            "https://h.example/a.jpg",
            "http://static.1sapp.com/qupost/img/a.jpeg?x=1&y=2#f",
            "https://h.example",
            "https://h.example?x",
            "https://h.example/a b/\u{56fe}.svg?x=/../",
            "https://h.example/A.SVG",
            "https://h.example/a.svg/..",
            "https://h.example/a/%2E%2e/b.svg",
            "https://h.example/a.sv\ng",
            "https://h.example/a.svg\u{1}",
            "https://h.example\\a.svg",
            "https://H.example/a.jpg",
            "https://h.example:443/a.jpg",
            "https://u@h.example/a.jpg",
            "https://1.2.3.4/a.jpg",
            "https://h.0x7f/a.jpg",
            "https://h.example./a.jpg",
            "https://h..example/a.jpg",
            "https://xn--nxasmq6b.example/a.jpg",
            "https://a-.-b.example/a.jpg",
            "https://h.xn--p1ai/a.jpg",
            "https://h.example/%2E./a.svg",
            "https://h.example/%2",
            "https://h.example/a.svg%2",
            "https://9h.example/a/./b.svg",
            "https:///h.example/a.jpg",
            "https://h_x.example/a.jpg",
            "http://exa mple/a.jpg",
        ];
        for url in urls {
            if let Some((host, path)) = plain_http(url) {
                let parsed = Url::parse(url).unwrap();
                assert_eq!(parsed.host_str(), Some(host), "{url}");
                let svg = |p: &str| p.to_ascii_lowercase().ends_with(".svg");
                assert_eq!(svg(parsed.path()), svg(path), "{url}");
            }
        }
        assert!(plain_http("https://h.example/a.jpg").is_some());
        assert!(plain_http("https://H.example/a.jpg").is_none());
    }

    #[test]
    fn image_links_are_told_by_their_extension() {
        for (url, want) in [
            ("https://upload.wikimedia.org/a/b/Cat.JPG", true),
            ("http://img.jandan.net/news/a.jpg!custom", true),
            ("https://img.ithome.com/a.jpg@s_2,w_820,h_547", true),
            ("https://h/a.png?imageView2/2/w/1120", true),
            ("https://h/post.html", false),
            ("https://h/download.exe", false),
            ("https://h/", false),
            ("https://h.png", false),
            ("/relative/a.gif", true),
            ("not a url", false),
            ("https://h/a.png!x?y.gif", true),
            ("https://h/a.jpg/page#x.png", false),
            ("//h.png", false),
            ("a@b.png", false),
            ("x.PNG@2x", true),
            (".gif", true),
            ("", false),
            ("https://h/a.jpe", false),
            ("https://h/a.jpegx", false),
            ("https://h/a.webp5", false),
            ("//h/a//b.webp", true),
            ("a/b.AVIF", true),
            ("https://h/x.bmp", true),
            ("https://h/p//q.jfif?x", true),
        ] {
            assert_eq!(looks_like_image(url), want, "{url}");
        }
    }
}
