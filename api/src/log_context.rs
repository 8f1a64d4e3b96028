//! The request a JSON log line belongs to, without a `tracing` span per request.
//!
//! A span cost ≈ 0.7 µs a request (a registry entry, its fields formatted as JSON when
//! it is created, enter/exit on every poll): 5 % of the CPU of `/` at saturation
//! (docs/performance.md), for events that requests almost never emit. Instead, the
//! request's future carries its context and installs it in a thread-local while it is
//! polled; the JSON event formatter adds it under `span`, where the span put it.
//! Pretty (development) mode keeps a real span.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde::Serialize;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// What `span` holds in a request's log lines, access line included.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct RequestFields<'a> {
    pub request_id: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<Cow<'a, str>>,
    pub name: &'static str,
}

impl<'a> RequestFields<'a> {
    pub fn new(request_id: &'a str, trace_id: Option<&'a str>) -> Self {
        Self {
            request_id: Cow::Borrowed(request_id),
            trace_id: trace_id.map(Cow::Borrowed),
            name: "request",
        }
    }

    pub fn into_owned(self) -> RequestFields<'static> {
        RequestFields {
            request_id: Cow::Owned(self.request_id.into_owned()),
            trace_id: self.trace_id.map(|t| Cow::Owned(t.into_owned())),
            name: self.name,
        }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<RequestFields<'static>>> = const { RefCell::new(None) };
}

pin_project_lite::pin_project! {
    /// A future whose polls run with its request's fields installed.
    pub struct WithRequest<F> {
        fields: Option<RequestFields<'static>>,
        #[pin]
        inner: F,
    }
}

impl<F> WithRequest<F> {
    pub fn new(fields: RequestFields<'static>, inner: F) -> Self {
        Self {
            fields: Some(fields),
            inner,
        }
    }
}

impl<F: Future> Future for WithRequest<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        // Moved in and out, never cloned: other tasks on this thread see their own.
        let outer = CURRENT.with(|c| c.replace(this.fields.take()));
        let polled = this.inner.poll(cx);
        *this.fields = CURRENT.with(|c| c.replace(outer));
        polled
    }
}

/// Wraps the JSON event formatter: an event emitted while a request is polled, outside
/// any span, gets that request's fields under `span`.
pub struct JsonWithRequest<E>(pub E);

impl<S, N, E> FormatEvent<S, N> for JsonWithRequest<E>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
    E: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let fields = CURRENT.with(|c| {
            c.borrow()
                .as_ref()
                .and_then(|f| serde_json::to_string(f).ok())
        });
        let Some(fields) = fields.filter(|_| ctx.lookup_current().is_none()) else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.trim_end().strip_suffix('}') {
            Some(head) => writeln!(writer, "{head},\"span\":{fields}}}"),
            None => writer.write_str(&line),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn current() -> Option<RequestFields<'static>> {
        CURRENT.with(|c| c.borrow().clone())
    }

    #[test]
    fn fields_are_set_only_while_polled() {
        let fields = RequestFields::new("abc", None).into_owned();
        let mut fut = std::pin::pin!(WithRequest::new(fields.clone(), async { current() }));
        assert_eq!(current(), None);
        let seen = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        assert_eq!(seen, Poll::Ready(Some(fields)));
        assert_eq!(current(), None, "restored after the poll");
    }

    /// The formatter as telemetry installs it, writing into a buffer.
    fn json_lines(f: impl FnOnce()) -> Vec<serde_json::Value> {
        use std::sync::{Arc, Mutex};
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
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .map_event_format(JsonWithRequest)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn events_inside_a_request_carry_its_fields() {
        let lines = json_lines(|| {
            tracing::warn!(answer = 42, "outside");
            let fields = RequestFields::new("req-1", Some("trace-1")).into_owned();
            let fut = std::pin::pin!(WithRequest::new(fields, async {
                tracing::warn!(answer = 43, "inside");
            }));
            let _ = fut.poll(&mut Context::from_waker(Waker::noop()));
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["message"], "outside");
        assert!(lines[0].get("span").is_none(), "{:?}", lines[0]);
        assert_eq!(lines[1]["message"], "inside");
        assert_eq!(lines[1]["answer"], 43);
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["span"]["request_id"], "req-1");
        assert_eq!(lines[1]["span"]["trace_id"], "trace-1");
        assert_eq!(lines[1]["span"]["name"], "request");
    }

    #[test]
    fn fields_serialize_like_the_span_did() {
        let json = serde_json::to_string(&RequestFields::new("a\"b", Some("t1"))).unwrap();
        assert_eq!(
            json,
            r#"{"request_id":"a\"b","trace_id":"t1","name":"request"}"#
        );
    }
}
