//! `systemctl` inside a node: the command kubeadm and kubeforge run to stop, start and restart
//! the kubelet, answered by the node's [supervisor](crate::supervisor).
//!
//! A node has no systemd, so the test env puts this executable first in the node's PATH as
//! `systemctl` (`/usr/local/bin/systemctl`, a link to `kubeforge-testenv`, which acts as this
//! client when called by that name). It sends one line, `<verb> [<unit>] [<signal>]`, over the
//! unix socket [`SOCKET`] and prints what comes back: a first line with the exit code, then
//! systemctl's output. The verbs and outputs are the ones kubeadm's init system code reads
//! (`status` with `Loaded:`, `is-active` printing `active`/`activating`/`inactive`,
//! `is-enabled`, `daemon-reload`, `start`, `stop`, `restart`, `enable`, `disable`) and
//! `kill --signal=SIG`; the exit codes are systemctl's (0 ok, 1 failed, 3 not active, 4 no such
//! unit for status, 5 no such unit to start).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

/// The supervisor's socket, inside the node.
pub const SOCKET: &str = "/run/kubeforge-testenv/supervisor.sock";

/// One request to the supervisor at `socket`; returns its exit code and output.
pub fn request(socket: &Path, line: &str) -> Result<(i32, String)> {
    let mut stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to the node supervisor at {}", socket.display()))?;
    writeln!(stream, "{line}").with_context(|| format!("writing to {}", socket.display()))?;
    let mut reader = BufReader::new(stream);
    let mut code = String::new();
    reader
        .read_line(&mut code)
        .with_context(|| format!("reading the reply from {}", socket.display()))?;
    let code = code.trim().parse().map_err(|_| {
        anyhow!(
            "the node supervisor at {} answered {code:?}, not an exit code",
            socket.display()
        )
    })?;
    let mut output = String::new();
    reader.read_to_string(&mut output)?;
    Ok((code, output))
}

/// The `systemctl` command line as the supervisor takes it: verb, unit (".service" dropped),
/// and for `kill` the signal. Options other than `--signal`/`-s` are accepted and ignored
/// (`--no-pager`, `--quiet`, `--now` …).
pub fn parse_args(args: &[String]) -> Result<String> {
    let mut words = Vec::new();
    let mut signal = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if let Some(value) = arg.strip_prefix("--signal=") {
            signal = Some(value.to_string());
        } else if arg == "-s" || arg == "--signal" {
            i += 1;
            signal = Some(args.get(i).context("--signal needs a value")?.clone());
        } else if !arg.starts_with('-') {
            words.push(arg.trim_end_matches(".service").to_string());
        }
        i += 1;
    }
    if words.is_empty() {
        bail!("no command given");
    }
    if words[0] == "kill" {
        words.push(signal.unwrap_or_else(|| "TERM".to_string()));
    }
    Ok(words.join(" "))
}

/// `systemctl ARGS…` in a node: exits with the supervisor's code.
pub fn main(args: &[String]) -> ! {
    let line = match parse_args(args) {
        Ok(line) => line,
        Err(e) => {
            eprintln!("systemctl: {e}");
            std::process::exit(1);
        }
    };
    match request(Path::new(SOCKET), &line) {
        Ok((code, output)) => {
            let mut stream = if code == 0 {
                Box::new(std::io::stdout()) as Box<dyn Write>
            } else {
                Box::new(std::io::stderr())
            };
            // is-active, is-enabled and status print to stdout whatever the code, as systemctl.
            if ["is-active", "is-enabled", "status", "is-failed"]
                .iter()
                .any(|v| line.starts_with(v))
            {
                stream = Box::new(std::io::stdout());
            }
            let _ = stream.write_all(output.as_bytes());
            std::process::exit(code);
        }
        Err(_) => {
            eprintln!(
                "System has not been booted with systemd as init system (PID 1). Can't operate.\n\
                 Failed to connect to bus: Host is down (no kubeforge-testenv supervisor at {SOCKET})"
            );
            std::process::exit(1);
        }
    }
}
