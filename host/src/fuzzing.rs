//! The runner every fuzz target uses, in the library's unit tests and in `tests/fuzz.rs` (which
//! includes this file): a fixed number of proptest cases from a fixed seed, each case run under
//! a wall-clock and a memory limit; and the inputs both kinds of targets draw from.
//!
//! - `KUBEFORGE_FUZZ_CASES`: cases per target (default [`DEFAULT_CASES`], sized so that every
//!   target together takes well under a minute in a debug build on two cores).
//! - `KUBEFORGE_FUZZ_SEED`: a number that replaces the fixed seed, to explore other inputs.
//!
//! A failure names the smallest input proptest shrank it to, and the seed and case count that
//! reproduce it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

/// Cases per target when `KUBEFORGE_FUZZ_CASES` is not set.
const DEFAULT_CASES: u32 = 512;

/// The seed when `KUBEFORGE_FUZZ_SEED` is not set: fixed, so CI runs the same inputs every time.
const DEFAULT_SEED: u64 = 17;

/// Longest one case may take before it counts as a hang: twenty times the slowest case seen
/// optimized (45 ms), five times the slowest in a debug build (about 1 s on two loaded cores,
/// as CI runs).
const CASE_TIME_LIMIT: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(5)
} else {
    Duration::from_secs(1)
};

/// Most memory one case may hold at once (bytes allocated and not yet freed by its thread).
/// Inputs are at most about a megabyte and the largest case holds a few; a parser that
/// expands an input past this amplifies it.
const CASE_MEMORY_LIMIT: usize = 32 << 20;

/// Counts each thread's live heap bytes so a case's peak can be checked.
struct CountingAllocator;

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

thread_local! {
    // Const-initialised and without destructors: usable inside the allocator at any point of a
    // thread's life. Signed: a thread may free what another allocated.
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static PEAK_BYTES: Cell<isize> = const { Cell::new(0) };
}

fn count(change: isize) {
    let live = LIVE_BYTES.get() + change;
    LIVE_BYTES.set(live);
    PEAK_BYTES.set(PEAK_BYTES.get().max(live));
}

// SAFETY: every call is forwarded to the system allocator unchanged; counting only touches
// thread-local cells.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            count(layout.size() as isize);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(pointer, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        moved
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text:?} is not a number")),
        Err(_) => default,
    }
}

/// Runs `target` on `KUBEFORGE_FUZZ_CASES` inputs drawn from `inputs`. Each case runs on a
/// thread of its own, so a hang is reported after [`CASE_TIME_LIMIT`] instead of stalling the
/// run (the hung thread is left behind), and so its peak memory is its own; the thread has
/// Rust's default 2 MiB stack, as much as wasmtime gives the host calls of a phase. Panics with
/// the smallest failing input when a case panics, hangs or holds more than
/// [`CASE_MEMORY_LIMIT`].
pub(crate) fn fuzz<S>(inputs: S, target: impl Fn(S::Value) + Send + Sync + 'static)
where
    S: Strategy,
    S::Value: Send + 'static,
{
    let cases = env_number("KUBEFORGE_FUZZ_CASES", DEFAULT_CASES.into());
    let seed = env_number("KUBEFORGE_FUZZ_SEED", DEFAULT_SEED);
    let config = Config {
        cases: u32::try_from(cases).expect("KUBEFORGE_FUZZ_CASES fits in 32 bits"),
        failure_persistence: None,
        // Shrinking a hang re-runs hangs; bound it so a failing run still ends.
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut seed_bytes = [0; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let target = Arc::new(target);
    let slowest = Cell::new(Duration::ZERO);
    let most_memory = Cell::new(0);
    let result = runner.run(&inputs, |input| {
        let target = Arc::clone(&target);
        let (finished, outcome) = mpsc::channel();
        let started = Instant::now();
        let case = std::thread::spawn(move || {
            target(input);
            // The peak of this thread alone: it started at zero and ran only the target (the
            // input, allocated before, is not counted).
            let _ = finished.send(PEAK_BYTES.get().max(0) as usize);
        });
        match outcome.recv_timeout(CASE_TIME_LIMIT) {
            Ok(peak) if peak > CASE_MEMORY_LIMIT => Err(TestCaseError::fail(format!(
                "held {} MiB at once, more than the {} MiB allowed",
                peak >> 20,
                CASE_MEMORY_LIMIT >> 20
            ))),
            Ok(peak) => {
                slowest.set(slowest.get().max(started.elapsed()));
                most_memory.set(most_memory.get().max(peak));
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
                "still running after {:?}",
                started.elapsed()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                let payload = case.join().expect_err("the case ended without reporting");
                let message = payload
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "(a panic without a message)".into());
                Err(TestCaseError::fail(format!("panicked: {message}")))
            }
        }
    });
    if let Err(failure) = result {
        panic!("{failure} (KUBEFORGE_FUZZ_SEED={seed} KUBEFORGE_FUZZ_CASES={cases})");
    }
    // How close the inputs came to the limits (shown with `--nocapture`).
    println!(
        "{}: {cases} cases; the slowest took {:?}, the largest held {} KiB",
        std::thread::current().name().unwrap_or("fuzz"),
        slowest.get(),
        most_memory.get() >> 10
    );
}

/// Words a parser of configs, flags or names may trip on: YAML syntax, numbers at the edges of
/// their types, malformed addresses, CIDRs, durations and versions, and odd characters.
pub(crate) const ODD_WORDS: &[&str] = &[
    "",
    " ",
    "~",
    "null",
    "true",
    "no",
    "0",
    "-1",
    "65535",
    "65536",
    "99999",
    "2147483648",
    "-9223372036854775809",
    "18446744073709551616",
    "1e400",
    "0x1F",
    ".nan",
    "1h",
    "-1s",
    "0.5ns",
    "1.5.6h",
    "2562047h47m16.854775807s",
    "2562047h47m16.854775808s",
    "99999999999999999999h",
    "v1.35.4",
    "v1.0.0",
    "v99.99.99",
    "1.35",
    "latest",
    "10.96.0.0/12",
    "10.96.0.0/33",
    "10.96.0.0/30",
    "10.96.0.0/12,fd00::/112",
    "::/0",
    "fd00::/129",
    "10.0.0.1",
    "256.0.0.1",
    "::1",
    "fe80::1%eth0",
    "[::1]:6443",
    "lb.example.com:443",
    "lb.example.com:99999",
    ":6443",
    "*.example.com",
    "a..b",
    "-a-",
    "system:masters",
    "kube-system",
    "NodeLocalCRISocket=true",
    "a=b=c,=true,,",
    "all",
    "unix:///run/containerd/containerd.sock",
    "/etc/kubernetes/pki",
    "../../etc/passwd",
    "abcdef.0123456789abcdef",
    "ABCDEF.0123456789ABCDEF",
    "builtin:kube-dns",
    "file:/dev/zero",
    "addon/coredns",
    "ü",
    "\u{feff}",
    "\u{0}",
    "\u{202e}",
    "\t",
    "\r\n",
    "'",
    "\"",
    "\\",
    "#",
    ": ",
    "- ",
    "&a",
    "*a",
    "!!binary",
    "<<",
    "---",
    "...",
    "{",
    "]",
    "|",
    ">",
    "%",
    "@",
];

/// Text that is odd, arbitrary, or long.
pub(crate) fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(ODD_WORDS).prop_map(str::to_owned),
        2 => any::<String>(),
        1 => "[ -~]{0,40}",
        1 => (1..=1usize << 14, select(ODD_WORDS)).prop_map(|(times, word)| word.repeat(times)),
    ]
}

/// Any JSON value with odd scalars, a few levels deep.
pub(crate) fn json_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |number| {
            serde_json::Number::from_f64(number).map(Value::Number)
        }),
        odd_text().prop_map(Value::String),
    ];
    scalar.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((odd_text(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A mapping, indented by two spaces, of `levels` anchored lists, each `fanout` aliases of the
/// one before: a "billion laughs" that expands to `fanout^levels` values.
pub(crate) fn alias_bomb(fanout: usize, levels: usize) -> String {
    let mut text = String::from("  l0: &l0 [lol]\n");
    for level in 1..=levels {
        let aliases = vec![format!("*l{}", level - 1); fanout].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{aliases}]\n"));
    }
    text
}
