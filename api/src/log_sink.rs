//! Where log lines go: stdout, whole lines, batched per runtime worker.
//!
//! A runtime worker appends its lines to a buffer of its own and writes the buffer out
//! in one `write(2)` just before it parks (nothing left to run) or once the buffer
//! passes `FLUSH_AT`. Any other thread (main, blocking pool), and a worker before its
//! first park, writes each line straight through. Under load this turns one syscall
//! per request into one per event-loop turn; when idle, a line still leaves at once.
//! A crash (`panic = abort`) can lose at most the current turn's lines.

use std::cell::RefCell;
use std::io::{self, Write};

use tracing_subscriber::fmt::MakeWriter;

/// A worker writes its buffer out once it holds this much, parked or not.
const FLUSH_AT: usize = 32 * 1024;

thread_local! {
    /// `Some` on a runtime worker once it has parked: its pending lines.
    static PENDING: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
}

/// Writes whole lines (each ending in `\n`): buffered on a worker, else straight through.
pub fn write_lines(lines: &[u8]) {
    let buffered = PENDING.try_with(|pending| {
        let Ok(mut pending) = pending.try_borrow_mut() else {
            return false;
        };
        let Some(buf) = pending.as_mut() else {
            return false;
        };
        buf.extend_from_slice(lines);
        if buf.len() >= FLUSH_AT {
            write_out(buf);
            buf.clear();
        }
        true
    });
    if buffered != Ok(true) {
        write_out(lines);
    }
}

/// Runtime hook, before a worker parks: write its lines out; buffer from now on.
pub fn on_worker_park() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut() {
            match pending.as_mut() {
                Some(buf) if !buf.is_empty() => {
                    write_out(buf);
                    buf.clear();
                }
                Some(_) => {}
                None => *pending = Some(Vec::with_capacity(FLUSH_AT)),
            }
        }
    });
}

/// Runtime hook, when a thread stops: write out what it still holds.
pub fn on_thread_stop() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut()
            && let Some(buf) = pending.take()
        {
            write_out(&buf);
        }
    });
}

/// One locked write of whole lines, so lines of different threads never mix; a failing
/// stdout (closed pipe) drops them rather than grow the buffer or fail the request.
fn write_out(lines: &[u8]) {
    let _ = io::stdout().lock().write_all(lines);
}

/// `tracing-subscriber` writer: the formatter hands over one whole line per event.
#[derive(Clone, Copy, Default)]
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_lines(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Stdout {
    type Writer = Stdout;

    fn make_writer(&'a self) -> Self::Writer {
        Stdout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending_len() -> Option<usize> {
        PENDING.with(|p| p.borrow().as_ref().map(Vec::len))
    }

    #[test]
    fn a_thread_writes_through_until_it_parks() {
        std::thread::spawn(|| {
            write_lines(b"log_sink test: through\n");
            assert_eq!(pending_len(), None);
            on_worker_park();
            write_lines(b"log_sink test: buffered\n");
            assert_eq!(pending_len(), Some(24));
            on_worker_park();
            assert_eq!(pending_len(), Some(0));
            write_lines(b"log_sink test: at stop\n");
            on_thread_stop();
            assert_eq!(pending_len(), None);
        })
        .join()
        .unwrap();
    }
}
