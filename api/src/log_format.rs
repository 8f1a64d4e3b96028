//! The JSON shape of a log line, for `tracing-subscriber`'s fmt layer: one object per
//! event, its fields at the top level, `target`, and the fields of the span it happened
//! in (the request) under `span`, as the library's own JSON formatter writes them.
//!
//! Why not that formatter: it keeps span fields as a JSON string that it parses back into
//! `serde_json` values for every event, and collects event fields into a map of values;
//! measured at twice this one's cost per logged request (ADR 0009). This writes the same
//! line straight from the fields. Spans, filter and writer are the library's.

use std::fmt::{self, Write};

use chrono::{Datelike, Timelike, Utc};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Event format: `{"timestamp":…,"level":…,<fields>,"target":…,"span":{<fields>,"name":…}}`.
pub struct JsonLine;

/// Span fields, kept by the fmt layer as `"key":value,` pairs ready to be copied.
pub struct JsonFields;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Pairs::new(None);
        let out = &mut line.out;
        out.push_str("{\"timestamp\":\"");
        timestamp(out);
        out.push_str("\",\"level\":\"");
        out.push_str(meta.level().as_str());
        out.push_str("\",");
        event.record(&mut line);
        let out = &mut line.out;
        out.push_str("\"target\":");
        string(out, meta.target());
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            out.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                out.push_str(fields);
            }
            out.push_str("\"name\":");
            string(out, span.name());
            out.push('}');
        }
        out.push_str("}\n");
        w.write_str(out)
    }
}

impl<'w> MakeVisitor<Writer<'w>> for JsonFields {
    type Visitor = Pairs<'w>;

    fn make_visitor(&self, target: Writer<'w>) -> Pairs<'w> {
        Pairs::new(Some(target))
    }
}

/// Writes each field as `"key":value,` (JSON-escaped; numbers and booleans bare) into a
/// buffer, copied to `dest` (span fields) at the end.
pub struct Pairs<'w> {
    out: String,
    dest: Option<Writer<'w>>,
}

impl<'w> Pairs<'w> {
    fn new(dest: Option<Writer<'w>>) -> Self {
        Self {
            out: String::with_capacity(256),
            dest,
        }
    }

    fn key(&mut self, field: &Field) -> &mut String {
        string(&mut self.out, field.name());
        self.out.push(':');
        &mut self.out
    }
}

impl Visit for Pairs<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let out = self.key(field);
        // JSON has no NaN or infinity.
        let _ = match value.is_finite() {
            true => write!(out, "{value},"),
            false => out.write_str("null,"),
        };
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        let _ = write!(self.key(field), "{value},");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        let _ = write!(self.key(field), "{value},");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        let _ = write!(self.key(field), "{value},");
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let out = self.key(field);
        string(out, value);
        out.push(',');
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let out = self.key(field);
        out.push('"');
        let _ = write!(Escaped(out), "{value:?}");
        out.push_str("\",");
    }
}

impl VisitOutput<fmt::Result> for Pairs<'_> {
    fn finish(self) -> fmt::Result {
        match self.dest {
            Some(mut dest) => dest.write_str(&self.out),
            None => Ok(()),
        }
    }
}

impl VisitFmt for Pairs<'_> {
    fn writer(&mut self) -> &mut dyn Write {
        &mut self.out
    }
}

/// `2026-11-25T09:09:57.620150Z`: RFC 3339, UTC, microseconds.
fn timestamp(out: &mut String) {
    let now = Utc::now();
    let micros = now.timestamp_subsec_micros().min(999_999);
    for (value, width, then) in [
        (now.year() as u32, 4, '-'),
        (now.month(), 2, '-'),
        (now.day(), 2, 'T'),
        (now.hour(), 2, ':'),
        (now.minute(), 2, ':'),
        (now.second(), 2, '.'),
        (micros, 6, 'Z'),
    ] {
        for place in (0..width).rev() {
            let digit = value / 10u32.pow(place) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        out.push(then);
    }
}

/// A JSON string literal.
fn string(out: &mut String, value: &str) {
    out.push('"');
    let _ = Escaped(out).write_str(value);
    out.push('"');
}

/// Escapes what it is given for the inside of a JSON string.
struct Escaped<'a>(&'a mut String);

impl Write for Escaped<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
            self.0.push_str(s);
            return Ok(());
        }
        let mut start = 0;
        for (i, byte) in s.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => "",
                _ => continue,
            };
            self.0.push_str(&s[start..i]);
            match escape {
                "" => write!(self.0, "\\u{byte:04x}")?,
                _ => self.0.push_str(escape),
            }
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The lines the formatter writes while `f` runs, parsed.
    fn lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || out.clone())
            .event_format(JsonLine)
            .fmt_fields(JsonFields)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    #[test]
    fn events_are_json_lines_with_their_span_fields() {
        let lines = lines(|| {
            tracing::warn!(answer = 42, "outside");
            let span = tracing::info_span!("request", request_id = "req-1", trace_id = Some("t1"));
            span.in_scope(|| tracing::info!(ok = true, ratio = 0.5, "inside"));
            tracing::info!(parent: &span, status = 200u16, "explicit parent");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["answer"], 42);
        assert_eq!(lines[0]["level"], "WARN");
        assert!(lines[0].get("span").is_none());
        let ts = lines[0]["timestamp"].as_str().unwrap();
        let parsed = chrono::DateTime::parse_from_rfc3339(ts).unwrap();
        assert!(
            (Utc::now() - parsed.to_utc()).num_seconds().abs() < 5,
            "{ts}"
        );
        assert_eq!((ts.len(), &ts[19..20], &ts[26..]), (27, ".", "Z"), "{ts}");
        assert_eq!(lines[1]["ok"], true);
        assert_eq!(lines[1]["ratio"], 0.5);
        let span = serde_json::json!({"request_id": "req-1", "trace_id": "t1", "name": "request"});
        assert_eq!(lines[1]["span"], span);
        assert_eq!(lines[2]["span"], span);
        assert_eq!(lines[2]["status"], 200);
        assert_eq!(lines[2]["target"], module_path!());
    }

    #[test]
    fn strings_are_escaped_and_odd_numbers_stay_json() {
        let nasty = "quote\" backslash\\ newline\n tab\t bell\u{7} é";
        let lines = lines(|| {
            tracing::info!(value = nasty, debug = ?nasty, nan = f64::NAN, big = u128::MAX, "m\"sg");
        });
        assert_eq!(lines[0]["value"], nasty);
        assert_eq!(lines[0]["debug"], format!("{nasty:?}"));
        assert_eq!(lines[0]["nan"], serde_json::Value::Null);
        assert_eq!(lines[0]["big"], u128::MAX.to_string());
        assert_eq!(lines[0]["message"], "m\"sg");
    }
}
