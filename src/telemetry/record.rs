//! One access line as data, and its text. A request keeps a [`Record`] (plain fields: integers,
//! static strings, its id copied inline; nothing formatted, nothing allocated unless it failed)
//! and the logging thread turns a batch of them into lines with [`Format`].
//!
//! The lines are the ones the `tracing` subscriber writes for the same event (text with or
//! without ANSI colours, or JSON with the event's fields flattened), so an access line reads
//! like every other log line; the tests hold the two byte for byte. [`Record::emit`] is that
//! event, for a process where no logging thread runs.

use crate::metrics::Route;
use http::Method;
use std::{
    io::Write,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tracing::Level;

pub(super) const TARGET: &str = "imgrelay::access";

/// The longest request id kept (`access::acceptable`); longer ones are cut.
const ID_MAX: usize = 128;

/// What one access line says, as the request left it.
#[derive(Debug)]
pub struct Record {
    /// When the answer was ready: the line's timestamp.
    pub at: Instant,
    pub took: Duration,
    /// The level the line is logged at.
    pub level: Level,
    pub request_id: RequestId,
    pub method: Method,
    pub route: Route,
    pub status: u16,
    /// The `X-Cache` value, when the answer has one.
    pub cache: Option<&'static str>,
    pub bytes: u64,
    /// The error's stable code, for an error answer.
    pub error: Option<&'static str>,
    /// The operator's detail, for errors that are the server's or the origin's doing.
    pub detail: Option<Box<str>>,
}

/// A request id copied inline (no allocation), cut at [`ID_MAX`] bytes.
#[derive(Debug, Clone, Copy)]
pub struct RequestId {
    len: u8,
    bytes: [u8; ID_MAX],
}

impl RequestId {
    pub fn new(id: &str) -> RequestId {
        let mut bytes = [0; ID_MAX];
        let len = id.len().min(ID_MAX);
        bytes[..len].copy_from_slice(&id.as_bytes()[..len]);
        RequestId {
            len: len as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("invalid")
    }
}

impl Record {
    /// The duration in milliseconds with one decimal, as tenths (`12.3` ms is 123).
    fn tenths_ms(&self) -> u128 {
        (self.took.as_nanos() + 50_000) / 100_000
    }

    /// Writes the line through `tracing` (the subscriber formats and writes it).
    pub(super) fn emit(&self) {
        let request_id = self.request_id.as_str();
        let method = &self.method;
        let route = self.route.as_str();
        let (status, cache, bytes) = (self.status, self.cache, self.bytes);
        let duration_ms = self.tenths_ms() as f64 / 10.0;
        let detail = self.detail.as_deref();
        match (self.level, self.error) {
            (Level::ERROR, Some(error)) => {
                tracing::error!(target: TARGET, request_id, %method, route, status, cache, bytes, duration_ms, error, detail, "access")
            }
            (Level::WARN, Some(error)) => {
                tracing::warn!(target: TARGET, request_id, %method, route, status, cache, bytes, duration_ms, error, detail, "access")
            }
            (_, Some(error)) => {
                tracing::info!(target: TARGET, request_id, %method, route, status, cache, bytes, duration_ms, error, "access")
            }
            (_, None) => {
                tracing::info!(target: TARGET, request_id, %method, route, status, cache, bytes, duration_ms, "access")
            }
        }
    }
}

/// How the logging thread writes records: the subscriber's format and colouring.
#[derive(Debug)]
pub struct Format {
    json: bool,
    ansi: bool,
    /// The last second formatted and its `YYYY-MM-DDTHH:MM:SS`: lines of one batch mostly
    /// share it.
    second: Option<(u64, [u8; 19])>,
}

const DIM: &str = "\x1b[2m";
const ITALIC: &str = "\x1b[3m";
const RESET: &str = "\x1b[0m";

impl Format {
    /// `ansi` applies to text only, as in the subscriber.
    pub fn new(json: bool, ansi: bool) -> Format {
        Format {
            json,
            ansi: ansi && !json,
            second: None,
        }
    }

    /// Appends `record`'s line (with its newline) to `out`; `wall` is the wall-clock time of
    /// the record's `at`.
    pub fn write(&mut self, record: &Record, wall: SystemTime, out: &mut Vec<u8>) {
        let micros = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        if self.json {
            self.json_line(record, micros, out);
        } else {
            self.text_line(record, micros, out);
        }
    }

    /// `2026-12-03T18:31:03.146033Z`, as the subscriber's default timer writes it.
    fn timestamp(&mut self, micros: u64, out: &mut Vec<u8>) {
        let secs = micros / 1_000_000;
        let prefix = match self.second {
            Some((s, prefix)) if s == secs => prefix,
            _ => {
                let t = time::OffsetDateTime::from_unix_timestamp(secs as i64)
                    .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
                let mut prefix = [0; 19];
                let _ = write!(
                    &mut prefix[..],
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                );
                self.second = Some((secs, prefix));
                prefix
            }
        };
        out.extend_from_slice(&prefix);
        out.push(b'.');
        let frac = (micros % 1_000_000) as u32;
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(frac);
        out.extend_from_slice(&b"000000"[digits.len()..]);
        out.extend_from_slice(digits.as_bytes());
        out.push(b'Z');
    }

    fn json_line(&mut self, r: &Record, micros: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        self.timestamp(micros, out);
        out.extend_from_slice(b"\",\"level\":\"");
        out.extend_from_slice(r.level.as_str().as_bytes());
        out.extend_from_slice(b"\",\"message\":\"access\",\"request_id\":");
        json_str(r.request_id.as_str(), out);
        out.extend_from_slice(b",\"method\":");
        json_str(r.method.as_str(), out);
        out.extend_from_slice(b",\"route\":\"");
        out.extend_from_slice(r.route.as_str().as_bytes());
        out.extend_from_slice(b"\",\"status\":");
        int(r.status, out);
        if let Some(cache) = r.cache {
            out.extend_from_slice(b",\"cache\":");
            json_str(cache, out);
        }
        out.extend_from_slice(b",\"bytes\":");
        int(r.bytes, out);
        out.extend_from_slice(b",\"duration_ms\":");
        tenths(r.tenths_ms(), out);
        if let Some(error) = r.error {
            out.extend_from_slice(b",\"error\":");
            json_str(error, out);
        }
        if let Some(detail) = &r.detail {
            out.extend_from_slice(b",\"detail\":");
            json_str(detail, out);
        }
        out.extend_from_slice(b",\"target\":\"imgrelay::access\"}\n");
    }

    fn text_line(&mut self, r: &Record, micros: u64, out: &mut Vec<u8>) {
        let ansi = self.ansi;
        if ansi {
            out.extend_from_slice(DIM.as_bytes());
        }
        self.timestamp(micros, out);
        let level: &[u8] = match (r.level, ansi) {
            (Level::ERROR, false) => b" ERROR ",
            (Level::WARN, false) => b"  WARN ",
            (_, false) => b"  INFO ",
            (Level::ERROR, true) => {
                b"\x1b[0m \x1b[31mERROR\x1b[0m \x1b[2mimgrelay::access\x1b[0m\x1b[2m:\x1b[0m "
            }
            (Level::WARN, true) => {
                b"\x1b[0m \x1b[33m WARN\x1b[0m \x1b[2mimgrelay::access\x1b[0m\x1b[2m:\x1b[0m "
            }
            (_, true) => {
                b"\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mimgrelay::access\x1b[0m\x1b[2m:\x1b[0m "
            }
        };
        out.extend_from_slice(level);
        if !ansi {
            out.extend_from_slice(b"imgrelay::access: ");
        }
        out.extend_from_slice(b"access");
        self.text_field("request_id", out);
        text_str(r.request_id.as_str(), out);
        self.text_field("method", out);
        out.extend_from_slice(r.method.as_str().as_bytes());
        self.text_field("route", out);
        text_str(r.route.as_str(), out);
        self.text_field("status", out);
        int(r.status, out);
        if let Some(cache) = r.cache {
            self.text_field("cache", out);
            text_str(cache, out);
        }
        self.text_field("bytes", out);
        int(r.bytes, out);
        self.text_field("duration_ms", out);
        tenths(r.tenths_ms(), out);
        if let Some(error) = r.error {
            self.text_field("error", out);
            text_str(error, out);
        }
        if let Some(detail) = &r.detail {
            self.text_field("detail", out);
            text_str(detail, out);
        }
        out.push(b'\n');
    }

    /// ` name=` before a text field's value.
    fn text_field(&self, name: &str, out: &mut Vec<u8>) {
        out.push(b' ');
        if self.ansi {
            out.extend_from_slice(ITALIC.as_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(RESET.as_bytes());
            out.extend_from_slice(DIM.as_bytes());
            out.push(b'=');
            out.extend_from_slice(RESET.as_bytes());
        } else {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
        }
    }
}

fn int(n: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `123` tenths as `12.3`, as `f64`'s `Debug` and JSON both write a one-decimal number.
fn tenths(t: u128, out: &mut Vec<u8>) {
    int(t / 10, out);
    out.push(b'.');
    out.push(b'0' + (t % 10) as u8);
}

/// Whether `s` is written as it is between quotes, both in JSON and by `str`'s `Debug`.
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// A JSON string, escaped as `serde_json` escapes it.
fn json_str(s: &str, out: &mut Vec<u8>) {
    if plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// A string as the text format writes it: `str`'s `Debug`.
fn text_str(s: &str, out: &mut Vec<u8>) {
    if plain(s) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

#[cfg(test)]
impl Record {
    /// A memory hit; tests change what they need.
    pub(super) fn hit(id: &str) -> Record {
        Record {
            at: Instant::now(),
            took: Duration::from_micros(64),
            level: Level::INFO,
            request_id: RequestId::new(id),
            method: Method::GET,
            route: Route::Image,
            status: 200,
            cache: Some("HIT-MEMORY"),
            bytes: 23_901,
            error: None,
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    /// The line the subscriber writes for `record` with `json` and `ansi`.
    fn subscriber_line(record: &Record, json: bool, ansi: bool) -> String {
        let captured = Captured::default();
        let builder = tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_writer(captured.clone());
        if json {
            let s = builder.json().flatten_event(true).finish();
            tracing::subscriber::with_default(s, || record.emit());
        } else {
            tracing::subscriber::with_default(builder.finish(), || record.emit());
        }
        let out = captured.0.lock().unwrap().clone();
        String::from_utf8(out).unwrap()
    }

    fn ours(record: &Record, json: bool, ansi: bool) -> String {
        let mut out = Vec::new();
        let wall = UNIX_EPOCH + Duration::from_micros(1_764_786_723_000_042);
        Format::new(json, ansi).write(record, wall, &mut out);
        String::from_utf8(out).unwrap()
    }

    /// The line without its timestamp, which differs by when each was written.
    fn untimed(line: &str) -> String {
        let at = line.find("Z").expect("a timestamp");
        let start = line[..at].rfind(['"', 'm']).map_or(0, |i| i + 1);
        format!("{}{}", &line[..start], &line[at + 1..])
    }

    fn records() -> Vec<Record> {
        let hit = Record::hit("5f3c2a1b9d8e7f60-2a");
        let missing = Record {
            took: Duration::from_micros(12_345),
            method: Method::HEAD,
            route: Route::Other,
            status: 404,
            cache: None,
            bytes: 10,
            error: Some("not_found"),
            ..Record::hit("cdn-1234:edge_7.x")
        };
        let upstream = Record {
            took: Duration::from_millis(1_234_567),
            level: Level::WARN,
            method: Method::from_bytes(b"BREW").unwrap(),
            route: Route::Original,
            status: 502,
            cache: Some("MISS"),
            bytes: 0,
            error: Some("upstream_error"),
            detail: Some("origin 127.0.0.1:9 answered 500 \"x\"\\\n\tü\u{1}".into()),
            ..Record::hit("a")
        };
        let server = Record {
            took: Duration::ZERO,
            level: Level::ERROR,
            method: Method::POST,
            route: Route::Purge,
            status: 500,
            cache: None,
            bytes: 0,
            error: Some("internal"),
            detail: Some("".into()),
            ..Record::hit("z")
        };
        vec![hit, missing, upstream, server]
    }

    #[test]
    fn lines_are_the_subscribers_byte_for_byte() {
        for record in records() {
            for (json, ansi) in [(false, false), (false, true), (true, false)] {
                let theirs = subscriber_line(&record, json, ansi);
                assert!(theirs.contains("request_id"), "{theirs:?}");
                let mine = ours(&record, json, ansi);
                assert_eq!(
                    untimed(&mine),
                    untimed(&theirs),
                    "json {json}, ansi {ansi}\nours:   {mine:?}\ntheirs: {theirs:?}"
                );
            }
        }
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let line = ours(&records()[0], true, false);
        assert!(
            line.starts_with("{\"timestamp\":\"2025-12-03T18:32:03.000042Z\""),
            "{line}"
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["duration_ms"], 0.1);
    }

    #[test]
    fn long_ids_are_cut_not_lost() {
        let long = "x".repeat(200);
        let r = Record::hit(&long);
        assert_eq!(r.request_id.as_str(), &long[..ID_MAX]);
    }
}
