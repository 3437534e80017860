//! What matters to a process docker-machine or a shell starts, as Rust's start-up code
//! provides it: closed standard descriptors are opened on /dev/null, and a closed stdout is an
//! error, not a SIGPIPE death.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::PLUGIN;

#[test]
fn a_closed_stdin_is_reopened_on_dev_null_and_the_plugin_serves() {
    let mut cmd = Command::new(PLUGIN);
    cmd.env("MACHINE_PLUGIN_TOKEN", "42")
        .env("MACHINE_PLUGIN_DRIVER_NAME", "ec2spot")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: close(2) is async-signal-safe; the child runs nothing else before exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::close(0);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let stdin = std::fs::read_link(format!("/proc/{}/fd/0", child.id()));
    // The RPC server answers on the address it printed.
    let mut s = std::net::TcpStream::connect(line.trim()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"CONNECT /_goRPC_ HTTP/1.0\n\n").unwrap();
    let mut reply = [0u8; 34];
    let answered = s.read_exact(&mut reply);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(stdin.unwrap(), std::path::Path::new("/dev/null"));
    answered.unwrap();
    assert_eq!(&reply, b"HTTP/1.0 200 Connected to Go RPC\n\n");
}

#[test]
fn a_closed_stdout_is_an_error_not_a_sigpipe_death() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // whatever the binary writes now meets EPIPE (or SIGPIPE)
    let status = Command::new(PLUGIN)
        .arg("--help")
        .env_remove("MACHINE_PLUGIN_TOKEN")
        .stdout(writer)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_ne!(
        status.signal(),
        Some(libc::SIGPIPE),
        "killed by SIGPIPE: {status:?}"
    );
}
