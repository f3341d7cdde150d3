//! Parsing tables: canonical Display round-trips, named range errors, configured queries,
//! dpr and Accept buckets.

use super::*;

fn parse(q: &str) -> Result<Transform, Error> {
    let params = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    Transform::from_params(&params, 8192)
}

#[test]
fn display_round_trips_and_is_canonical() {
    for (given, canonical) in [
        ("w=300", "w=300"),
        ("h=200&w=300", "w=300&h=200"),
        (
            "w=300&dpr=2&fit=cover&a=top-left&q=80",
            "w=300&dpr=2&fit=cover&a=top-left&q=80",
        ),
        ("dpr=1.50&w=10", "w=10&dpr=1.5"),
        ("output=jpeg&w=1", "w=1&output=jpg"),
        ("output=auto", "output=auto"),
        ("we=0&bg=%23FFF", "we=0&bg=ffffff"),
        ("bg=ffffff80", "bg=ffffff80"),
        ("we", ""),
        ("blur=2.50&sharp", "blur=2.5&sharp=1"),
        ("a=centre&fit=CONTAIN", "fit=contain&a=center"),
        ("fit=cover&a=entropy&w=9", "w=9&fit=cover&a=entropy"),
        ("a=ATTENTION", "a=attention"),
        ("a=focal", "a=focal&fpx=0.5&fpy=0.5"),
        ("fpy=0.125&a=focal&fpx=1", "a=focal&fpx=1&fpy=0.125"),
        ("a=focal&fpx=0.25&fpy=0.500", "a=focal&fpx=0.25&fpy=0.5"),
        ("a=focal&fpx=0&fpy=0", "a=focal&fpx=0&fpy=0"),
    ] {
        let t = parse(given).unwrap();
        assert_eq!(t.to_string(), canonical, "{given}");
        assert_eq!(parse(&t.to_string()).unwrap(), t, "{given} round-trips");
    }
}

#[test]
fn out_of_range_values_are_named() {
    for (q, name) in [
        ("w=0", "`w`"),
        ("w=8193", "`w`"),
        ("h=-1", "`h`"),
        ("w=abc", "`w`"),
        ("dpr=9", "`dpr`"),
        ("dpr=0.5", "`dpr`"),
        ("q=0", "`q`"),
        ("q=101", "`q`"),
        ("fit=stretch", "`fit`"),
        ("a=middle", "`a`"),
        ("output=bmp", "`output`"),
        ("we=2", "`we`"),
        ("bg=zzz", "`bg`"),
        ("blur=0.1", "`blur`"),
        ("sharp=101", "`sharp`"),
        ("w=5000&dpr=2", "`w`"),
        ("dpr=NaN", "`dpr`"),
        ("fpx=0.3", "`fpx`"),
        ("a=top&fpy=0.3", "`fpy`"),
        ("a=entropy&fpx=0.3&fpy=0.1", "`fpx`"),
        ("a=focal&fpx=1.5", "`fpx`"),
        ("a=focal&fpy=-0.1", "`fpy`"),
        ("a=focal&fpy=x", "`fpy`"),
    ] {
        let e = parse(q).unwrap_err().to_string();
        assert!(e.contains(name), "{q}: {e}");
    }
}

#[test]
fn a_configured_query_takes_transform_parameters_only() {
    let t = Transform::from_query("w=640&h=360&fit=cover&a=attention", 8192).unwrap();
    assert_eq!(t.to_string(), "w=640&h=360&fit=cover&a=attention");
    assert_eq!(
        Transform::from_query("", 8192).unwrap(),
        Transform::default()
    );
    for (q, name) in [
        ("url=h/a.jpg&w=1", "`url`"),
        ("w=1&s=abc", "`s`"),
        ("w=1&w=2", "`w`"),
        ("width=3", "`width`"),
        ("w=9000", "`w`"),
        ("fpx=0.2", "`fpx`"),
    ] {
        let e = Transform::from_query(q, 8192).unwrap_err().to_string();
        assert!(e.contains(name), "{q}: {e}");
    }
}

#[test]
fn target_box_applies_dpr() {
    let t = parse("w=300&h=200&dpr=2").unwrap();
    assert_eq!(t.target_box(), (Some(600), Some(400)));
    let t = parse("w=333&dpr=1.5").unwrap();
    assert_eq!(t.target_box(), (Some(500), None));
}

#[test]
fn accept_buckets() {
    let chrome = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8";
    assert_eq!(accept_bucket(Some(chrome)), Some(Format::Avif));
    assert_eq!(accept_bucket(Some("image/webp,*/*")), Some(Format::Webp));
    assert_eq!(
        accept_bucket(Some("image/avif;q=0, image/webp")),
        Some(Format::Webp)
    );
    assert_eq!(accept_bucket(Some("image/avif;q=0.0")), None);
    assert_eq!(accept_bucket(Some("*/*")), None);
    assert_eq!(accept_bucket(None), None);
}
