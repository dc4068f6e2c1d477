//! Builds the stock phase components (guest-phases/, target wasm32-wasip2) and embeds them.
//!
//! Each directory of guest-phases/ other than `sdk` is one phase crate named
//! `kubeforge-phase-<dir>`; the generated `stock_components.rs` lists them as
//! `(name, bytes)`. Set `KUBEFORGE_GUEST_DIR` to embed prebuilt components from a directory
//! instead (`kubeforge_phase_<name>.wasm`).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ is inside the repository");
    let guests = root.join("guest-phases");
    println!("cargo:rerun-if-env-changed=KUBEFORGE_GUEST_DIR");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    println!("cargo:rerun-if-changed={}", root.join("api").display());
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.toml").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        guests.join("Cargo.lock").display()
    );

    let phases = phase_crates(&guests);
    for dir in phases
        .iter()
        .map(|name| guests.join(name))
        .chain([guests.join("sdk")])
    {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    let wasm_dir = match env::var_os("KUBEFORGE_GUEST_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => build_guests(&guests),
    };

    let mut out = String::from(
        "/// The stock phase components: (phase name, component bytes).\npub static STOCK_COMPONENTS: &[(&str, &[u8])] = &[\n",
    );
    for name in &phases {
        let file = wasm_dir.join(format!("kubeforge_phase_{}.wasm", name.replace('-', "_")));
        assert!(
            file.exists(),
            "the {name} phase component was not built: {} is missing",
            file.display()
        );
        writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            file.display().to_string()
        )
        .unwrap();
    }
    out.push_str("];\n");
    let generated =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stock_components.rs");
    std::fs::write(&generated, out).expect("writing stock_components.rs");
}

/// The phase crates: every directory with a Cargo.toml except the SDK.
fn phase_crates(guests: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(guests)
        .expect("reading guest-phases/")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "sdk")
        .collect();
    names.sort();
    names
}

/// `cargo build --release` of the guest workspace, with its own target directory so it never
/// waits on the lock of the build that runs this script.
fn build_guests(guests: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target_dir = guests.join("target");
    let mut command = Command::new(cargo);
    command
        .current_dir(guests)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target_dir);
    // Settings of the outer build (host target, flags, profile) must not leak into the guests.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS"
            || key == "RUSTFLAGS"
            || key == "RUSTC_WRAPPER"
            || key == "RUSTC_WORKSPACE_WRAPPER"
            || key == "RUSTC"
            || key == "RUSTDOC"
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command
        .status()
        .expect("running cargo to build the guest phases (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`)");
    assert!(
        status.success(),
        "building the guest phases failed; run `cd guest-phases && cargo build --release` to see why (and `rustup target add wasm32-wasip2` if the target is missing)"
    );
    target_dir.join("wasm32-wasip2").join("release")
}
