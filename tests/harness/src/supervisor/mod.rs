//! A node's init: PID 1 of the node's PID namespace, doing for the node what systemd does on a
//! machine — it mounts the node's file system, names it, runs containerd and the kubelet as
//! their units say (restarting them when they exit), answers `systemctl`, reaps orphans, and
//! at shutdown kills everything in the node and removes its cgroups.
//!
//! [`boot`] is the process the host starts with new network, mount, UTS and PID namespaces: it
//! starts the supervisor as the first process of the new PID namespace, prints its pid (as the
//! host sees it) and waits for it, like `unshare --fork`.
//!
//! The supervisor runs nothing until the host sends `boot` (after it has written the node's
//! configuration and plugged in its network). It never waits for a child it started itself:
//! one thread reaps every child (`waitpid(-1)`, as PID 1 must) and hands the exits of the
//! units' processes to the unit manager.

mod mounts;
pub mod units;

pub use mounts::{BIN, ETC_UPPER, VAR_LIB, VAR_LOG};

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};

use crate::state::ProcessId;
use crate::systemctl::SOCKET;
use units::{KillMode, UNITS, UnitDef};

/// Where the units' output goes, inside the node (`/var/log` is the node's own).
pub const LOG_DIR: &str = "/var/log/kubeforge-testenv";

/// The environment of the node's services and of commands run in the node.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the supervisor is told on its command line.
#[derive(Debug, Clone)]
pub struct NodeArgs {
    pub node_dir: PathBuf,
    pub hostname: String,
    pub cgroup: String,
    pub owner: Option<ProcessId>,
    /// A pidfd of the owner, inherited from [`boot`] (the supervisor's own PID namespace cannot
    /// name the owner's pid).
    pub owner_fd: Option<i32>,
}

impl NodeArgs {
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--node-dir".to_string(),
            self.node_dir.display().to_string(),
            "--hostname".to_string(),
            self.hostname.clone(),
            "--cgroup".to_string(),
            self.cgroup.clone(),
        ];
        if let Some(owner) = self.owner {
            args.extend(["--owner".to_string(), owner.to_arg()]);
        }
        if let Some(fd) = self.owner_fd {
            args.extend(["--owner-fd".to_string(), fd.to_string()]);
        }
        args
    }
}

/// The host side of a node's start: already in the node's new namespaces (the caller's
/// `unshare` made them), starts the supervisor as PID 1 of the new PID namespace, prints its
/// host pid on stdout and waits for it.
pub fn boot(exe: &Path, args: &NodeArgs) -> Result<i32> {
    let mut args = args.clone();
    if let Some(owner) = args.owner {
        let fd = owner_pidfd(owner)?;
        // SAFETY: clearing FD_CLOEXEC on a descriptor this process owns, so the supervisor
        // inherits it.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } != 0 {
            bail!("fcntl: {}", std::io::Error::last_os_error());
        }
        args.owner_fd = Some(fd);
    }
    let mut child = Command::new(exe)
        .arg("node-supervisor")
        .args(args.to_args())
        .stdin(Stdio::null())
        .spawn()
        .context("starting the node supervisor")?;
    println!("{}", child.id());
    std::io::stdout().flush()?;
    let status = child.wait()?;
    Ok(status.code().unwrap_or(128 + 9))
}

/// Flags of `unshare(2)` for a node: the namespaces [`boot`] runs in.
pub const NODE_NAMESPACES: libc::c_int =
    libc::CLONE_NEWNET | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWPID;

/// A `Command` that runs in a session of its own (no terminal's signals reach it) and in new
/// namespaces `flags` (both between fork and exec).
pub fn in_new_namespaces(command: &mut Command, flags: libc::c_int) {
    // SAFETY: setsid and unshare are async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::unshare(flags) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Opens a pidfd for `owner`, checking it is still that process.
pub fn owner_pidfd(owner: ProcessId) -> Result<libc::c_int> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, owner.pid, 0) } as libc::c_int;
    if fd < 0 {
        bail!(
            "owner {} is gone: {}",
            owner.pid,
            std::io::Error::last_os_error()
        );
    }
    if !owner.alive() {
        bail!("owner {} is gone", owner.pid);
    }
    Ok(fd)
}

/// Blocks until the process behind `pidfd` exits.
pub fn wait_pidfd(pidfd: libc::c_int) {
    let mut poll = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    while unsafe { libc::poll(&mut poll, 1, -1) } < 0 {}
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// Makes SIGTERM and SIGINT set a flag [`terminate_requested`] reads (PID 1 of a namespace gets
/// only the signals it handles).
pub fn handle_terminate() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGTERM,
            on_terminate as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGINT,
            on_terminate as *const () as libc::sighandler_t,
        );
    }
}

pub fn terminate_requested() -> bool {
    TERMINATE.load(Ordering::SeqCst)
}

/// PID 1 of a node.
pub fn run(args: NodeArgs) -> Result<()> {
    let owner = args.owner_fd;
    mounts::set_up(&args.node_dir).context("setting up the node's mounts")?;
    let hostname = args.hostname.as_bytes();
    // SAFETY: a valid buffer and its length.
    if unsafe { libc::sethostname(hostname.as_ptr().cast(), hostname.len()) } != 0 {
        bail!("sethostname: {}", std::io::Error::last_os_error());
    }
    // kubeadm's preflight wants forwarding on, and so do pods; per network namespace.
    fs::write("/proc/sys/net/ipv4/ip_forward", "1").context("enabling ip_forward")?;
    fs::create_dir_all(LOG_DIR)?;
    fs::create_dir_all(Path::new(SOCKET).parent().unwrap())?;
    handle_terminate();

    let supervisor = Arc::new(Supervisor::new(args.cgroup.clone()));
    {
        let s = supervisor.clone();
        std::thread::spawn(move || s.reap());
    }
    {
        let s = supervisor.clone();
        std::thread::spawn(move || s.manage());
    }
    if let Some(pidfd) = owner {
        let s = supervisor.clone();
        std::thread::spawn(move || {
            wait_pidfd(pidfd);
            s.log("the owner of the node exited: shutting down");
            s.shutdown_and_exit();
        });
    }
    {
        let s = supervisor.clone();
        std::thread::spawn(move || {
            while !terminate_requested() {
                std::thread::sleep(Duration::from_millis(200));
            }
            s.log("SIGTERM: shutting down");
            s.shutdown_and_exit();
        });
    }
    let _ = fs::remove_file(SOCKET);
    let listener = UnixListener::bind(SOCKET).with_context(|| format!("binding {SOCKET}"))?;
    supervisor.log(&format!("node {} is up; waiting for boot", args.hostname));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let s = supervisor.clone();
        std::thread::spawn(move || s.serve(stream));
    }
    Ok(())
}

#[derive(Debug)]
struct UnitState {
    def: &'static UnitDef,
    enabled: bool,
    /// Whether it should run (started and not stopped): Restart=always keeps it running.
    wanted: bool,
    pid: Option<i32>,
    since: Option<SystemTime>,
    restart_at: Option<Instant>,
    last_exit: Option<String>,
    starts: u32,
}

struct Supervisor {
    units: Mutex<BTreeMap<&'static str, UnitState>>,
    changed: Condvar,
    cgroup: String,
    shutting_down: AtomicBool,
}

impl Supervisor {
    fn new(cgroup: String) -> Supervisor {
        let units = UNITS
            .iter()
            .map(|def| {
                (
                    def.name,
                    UnitState {
                        def,
                        enabled: true,
                        wanted: false,
                        pid: None,
                        since: None,
                        restart_at: None,
                        last_exit: None,
                        starts: 0,
                    },
                )
            })
            .collect();
        Supervisor {
            units: Mutex::new(units),
            changed: Condvar::new(),
            cgroup,
            shutting_down: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, UnitState>> {
        self.units.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, message: &str) {
        eprintln!("{} supervisor: {message}", timestamp());
    }

    /// Reaps every child; a unit's main process exiting schedules its restart.
    fn reap(&self) {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid <= 0 {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let mut units = self.lock();
            if let Some(unit) = units.values_mut().find(|u| u.pid == Some(pid)) {
                let exit = describe_status(status);
                unit_log(unit.def, &format!("main process {pid} exited: {exit}"));
                unit.pid = None;
                unit.last_exit = Some(exit);
                unit.restart_at = Some(Instant::now() + unit.def.restart_sec);
                self.changed.notify_all();
            }
        }
    }

    /// Starts every wanted unit that is not running once its restart delay has passed.
    fn manage(&self) {
        let mut units = self.lock();
        loop {
            let now = Instant::now();
            let mut next = Duration::from_secs(1);
            if !self.shutting_down.load(Ordering::SeqCst) {
                for unit in units.values_mut() {
                    if !unit.wanted || unit.pid.is_some() {
                        continue;
                    }
                    match unit.restart_at {
                        Some(at) if at > now => next = next.min(at - now),
                        _ => start_process(unit),
                    }
                }
            }
            units = self
                .changed
                .wait_timeout(units, next)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn serve(&self, stream: UnixStream) {
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (code, output) = self.handle(&words);
        let mut stream = stream;
        let _ = write!(stream, "{code}\n{output}");
        if words.first() == Some(&"shutdown") {
            let _ = stream.flush();
            drop(stream);
            std::process::exit(0);
        }
    }

    fn handle(&self, words: &[&str]) -> (i32, String) {
        match words {
            ["ping"] => (0, "pong\n".to_string()),
            ["daemon-reload"] => (0, String::new()),
            ["boot"] => self.boot(),
            ["shutdown"] => {
                self.shutdown();
                (0, "node stopped\n".to_string())
            }
            [verb, unit, rest @ ..] => {
                let unit = unit.trim_end_matches(".service");
                if !self.lock().contains_key(unit) {
                    return unknown_unit(verb, unit);
                }
                match (*verb, rest) {
                    ("start", []) => self.start(unit),
                    ("stop", []) => self.stop(unit),
                    ("restart" | "try-restart" | "reload-or-restart", []) => {
                        let stopped = self.stop(unit);
                        if stopped.0 != 0 {
                            return stopped;
                        }
                        self.start(unit)
                    }
                    ("kill", [signal]) => self.kill(unit, signal),
                    ("is-active", []) => {
                        let state = self.active_state(unit);
                        (if state == "active" { 0 } else { 3 }, format!("{state}\n"))
                    }
                    ("is-failed", []) => (1, format!("{}\n", self.active_state(unit))),
                    ("is-enabled", []) => {
                        let enabled = self.lock()[unit].enabled;
                        if enabled {
                            (0, "enabled\n".to_string())
                        } else {
                            (1, "disabled\n".to_string())
                        }
                    }
                    ("enable" | "disable", []) => {
                        let enable = *verb == "enable";
                        self.lock().get_mut(unit).unwrap().enabled = enable;
                        (0, String::new())
                    }
                    ("status", []) => self.status(unit),
                    _ => (1, format!("Unknown command verb {verb}.\n")),
                }
            }
            _ => (1, format!("Unknown command: {}\n", words.join(" "))),
        }
    }

    /// Starts the enabled units in order, each once the one before is ready.
    fn boot(&self) -> (i32, String) {
        let mut output = String::new();
        for def in UNITS {
            if !self.lock()[def.name].enabled {
                continue;
            }
            let (code, out) = self.start(def.name);
            output.push_str(&out);
            if code != 0 {
                return (code, output);
            }
            if let Some(socket) = def.ready_socket {
                let deadline = Instant::now() + Duration::from_secs(30);
                while UnixStream::connect(socket).is_err() {
                    if Instant::now() > deadline {
                        return (
                            1,
                            format!("{output}{} did not open {socket} within 30s\n", def.name),
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        (0, output)
    }

    fn start(&self, unit: &str) -> (i32, String) {
        let mut units = self.lock();
        let state = units.get_mut(unit).unwrap();
        if state.pid.is_some() {
            return (0, String::new());
        }
        state.wanted = true;
        state.restart_at = None;
        let starts = state.starts;
        self.changed.notify_all();
        // Type=simple: started once the process is spawned; a start that fails is systemd's
        // "activating (auto-restart)" and still exit 0.
        let deadline = Instant::now() + Duration::from_secs(2);
        while units[unit].starts == starts && Instant::now() < deadline {
            units = self
                .changed
                .wait_timeout(units, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        (0, String::new())
    }

    fn stop(&self, unit: &str) -> (i32, String) {
        let mut units = self.lock();
        let state = units.get_mut(unit).unwrap();
        state.wanted = false;
        state.restart_at = None;
        let def = state.def;
        let Some(pid) = state.pid else {
            state.last_exit = None;
            return (0, String::new());
        };
        unit_log(def, &format!("stopping main process {pid}"));
        signal_unit(pid, def.kill_mode, libc::SIGTERM);
        let deadline = Instant::now() + def.stop_timeout;
        while units[unit].pid == Some(pid) {
            if Instant::now() > deadline {
                unit_log(def, &format!("{pid} did not stop in time: SIGKILL"));
                signal_unit(pid, def.kill_mode, libc::SIGKILL);
            }
            units = self
                .changed
                .wait_timeout(units, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        // Stopped on request: inactive, not failed, however it exited.
        units.get_mut(unit).unwrap().last_exit = None;
        (0, String::new())
    }

    fn kill(&self, unit: &str, signal: &str) -> (i32, String) {
        let Some(signo) = signal_number(signal) else {
            return (1, format!("Failed to parse signal string {signal}.\n"));
        };
        let units = self.lock();
        if let Some(pid) = units[unit].pid {
            unit_log(
                units[unit].def,
                &format!("sending signal {signal} to {pid}"),
            );
            // SAFETY: kill with a pid this process started.
            unsafe { libc::kill(pid, signo) };
        }
        (0, String::new())
    }

    fn active_state(&self, unit: &str) -> &'static str {
        let units = self.lock();
        let state = &units[unit];
        match (state.wanted, state.pid) {
            (_, Some(_)) => "active",
            (true, None) => "activating",
            (false, None) if state.last_exit.as_deref().is_some_and(|e| e != "exited 0") => {
                "failed"
            }
            (false, None) => "inactive",
        }
    }

    fn status(&self, unit: &str) -> (i32, String) {
        let active = self.active_state(unit);
        let units = self.lock();
        let state = &units[unit];
        let def = state.def;
        let enabled = if state.enabled { "enabled" } else { "disabled" };
        let mut out = format!(
            "● {}.service - {}\n     Loaded: loaded ({}; {enabled}; preset: enabled)\n",
            def.name, def.description, def.unit_file
        );
        let since = state
            .since
            .map(|t| format!(" since {}", format_time(t)))
            .unwrap_or_default();
        match (active, state.pid) {
            ("active", Some(pid)) => {
                out.push_str(&format!("     Active: active (running){since}\n"));
                out.push_str(&format!("   Main PID: {pid} ({})\n", def.name));
            }
            ("activating", _) => out.push_str(&format!(
                "     Active: activating (auto-restart) ({}){since}\n",
                state.last_exit.as_deref().unwrap_or("starting")
            )),
            _ => out.push_str(&format!(
                "     Active: {active} (dead){}\n",
                state
                    .last_exit
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )),
        }
        out.push_str(&format!("      Tasks: starts {}\n", state.starts));
        (if active == "active" { 0 } else { 3 }, out)
    }

    /// Stops the kubelet and containerd, kills whatever else runs in the node, reaps it and
    /// removes the node's cgroups.
    fn shutdown(&self) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            return;
        }
        for def in UNITS.iter().rev() {
            self.stop(def.name);
        }
        // SAFETY: from PID 1 of the namespace, -1 means every other process in it.
        unsafe { libc::kill(-1, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while other_processes() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if let Err(e) = crate::cgroups::remove(&self.cgroup, Duration::from_secs(10)) {
            self.log(&format!("{e:#}"));
        }
        self.log("node stopped");
    }

    fn shutdown_and_exit(&self) -> ! {
        self.shutdown();
        std::process::exit(0);
    }
}

fn unknown_unit(verb: &str, unit: &str) -> (i32, String) {
    match verb {
        "status" => (4, format!("Unit {unit}.service could not be found.\n")),
        "is-active" | "is-failed" => (3, "inactive\n".to_string()),
        "is-enabled" => (
            1,
            format!(
                "Failed to get unit file state for {unit}.service: No such file or directory\n"
            ),
        ),
        _ => (
            5,
            format!("Failed to {verb} {unit}.service: Unit {unit}.service not found.\n"),
        ),
    }
}

/// Spawns the unit's process with its output appended to its log.
fn start_process(unit: &mut UnitState) {
    let def = unit.def;
    unit.starts += 1;
    let spawned = def.command().and_then(|command| {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(Path::new(LOG_DIR).join(format!("{}.log", def.name)))
            .context("opening the unit's log")?;
        unit_log(def, &format!("starting: {}", command.join(" ")));
        let child = Command::new(&command[0])
            .args(&command[1..])
            .env_clear()
            .env("PATH", PATH)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", command[0]))?;
        Ok(child.id() as i32)
    });
    match spawned {
        Ok(pid) => {
            unit.pid = Some(pid);
            unit.since = Some(SystemTime::now());
        }
        Err(e) => {
            unit_log(def, &format!("{e:#}"));
            unit.last_exit = Some(format!("{e:#}"));
            unit.restart_at = Some(Instant::now() + def.restart_sec);
        }
    }
}

/// One line in the unit's log, as journald would show the unit's own messages.
fn unit_log(def: &UnitDef, message: &str) {
    let line = format!("{} systemd: {}.service: {message}\n", timestamp(), def.name);
    if let Ok(mut log) = OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(LOG_DIR).join(format!("{}.log", def.name)))
    {
        let _ = log.write_all(line.as_bytes());
    }
}

fn signal_unit(pid: i32, mode: KillMode, signal: libc::c_int) {
    // SAFETY: kill with a pid (or process group) this process started.
    unsafe {
        match mode {
            KillMode::Process => libc::kill(pid, signal),
            KillMode::ControlGroup => libc::kill(-pid, signal),
        };
    }
}

fn signal_number(name: &str) -> Option<libc::c_int> {
    let name = name.trim_start_matches("SIG");
    Some(match name {
        "TERM" | "15" => libc::SIGTERM,
        "KILL" | "9" => libc::SIGKILL,
        "INT" | "2" => libc::SIGINT,
        "HUP" | "1" => libc::SIGHUP,
        "STOP" | "19" => libc::SIGSTOP,
        "CONT" | "18" => libc::SIGCONT,
        _ => return None,
    })
}

fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status}")
    }
}

/// Processes in the node's PID namespace other than PID 1.
fn other_processes() -> usize {
    fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.parse::<u32>().ok())
                        .is_some_and(|pid| pid != 1)
                })
                .count()
        })
        .unwrap_or(0)
}

fn timestamp() -> String {
    format_time(SystemTime::now())
}

fn format_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
