//! The plugin's output: info lines on stdout (docker-machine shows them as `(machine) line`),
//! debug lines on stderr (shown with `docker-machine --debug`). Writing never fails loudly:
//! once docker-machine is gone its pipes are closed, and the plugin must still reach its
//! heartbeat watchdog's exit rather than die (or hang) on a broken pipe.

use std::io::Write;

/// Prints one info line for the user; a closed or broken stdout is ignored.
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A stderr writer for `tracing` that swallows write errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietStderr;

    fn make_writer(&'a self) -> Self::Writer {
        QuietStderr
    }
}
