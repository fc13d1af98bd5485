//! The Debian package that `bash tools/package.sh` builds (tools/test.sh builds it before the
//! tests): Debian's own checks (lintian, dpkg-deb, systemd-analyze), the unpacked binaries
//! running with no environment and no build folder to lean on, and a real install, run,
//! remove and purge on this machine. Without a package it says SKIPPED, except under CI.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::daemon::Daemon;

/// The install test and the unpacked runs must not see each other's /usr/bin/safed.
static SYSTEM: Mutex<()> = Mutex::new(());

/// `$CARGO_TARGET_DIR/debian/safed_*.deb`, where tools/package.sh writes it.
fn deb() -> Option<PathBuf> {
    let target = Path::new(env!("CARGO_BIN_EXE_safed")).parent()?.parent()?;
    let found = std::fs::read_dir(target.join("debian")).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("safed_"))
            && p.extension().is_some_and(|x| x == "deb")
    });
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "no package under CI: tools/test.sh runs tools/package.sh first");
        eprintln!("SKIPPED: no package in {} (bash tools/package.sh)", target.join("debian").display());
    }
    found
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    text(&out)
}

#[test]
fn lintian_and_dpkg_deb_accept_the_package_and_it_holds_what_it_should() {
    let Some(deb) = deb() else { return };
    // Debian's package checker: errors fail, warnings are printed for the log.
    let lint = run(Command::new("lintian").args(["--fail-on", "error", "--tag-display-limit", "0"]).arg(&deb));
    eprintln!("lintian:\n{}", text(&lint));
    assert!(lint.status.success() && !text(&lint).lines().any(|l| l.starts_with("E: ")), "lintian reports errors");

    let listing = ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in [
        "./usr/bin/safed",
        "./usr/bin/safe-train",
        "./usr/lib/safed/libonnxruntime.so",
        "./usr/lib/safed/openvino/libopenvino_c.so",
        "./usr/lib/safed/openvino/libopenvino_intel_cpu_plugin.so",
        "./usr/lib/safed/install-gpu-runtime",
        "./etc/safed/safed.toml",
        "./usr/lib/udev/rules.d/60-safed-cameras.rules",
        "/systemd/system/safed.service",
        "./usr/share/man/man1/safed.1.gz",
        "./usr/share/man/man1/safe-train.1.gz",
        "./usr/share/safed/demo.onnx",
        "./usr/share/safed/demo-sample.aedat4",
    ] {
        assert!(listing.contains(path), "{path} is not in the package:\n{listing}");
    }
    assert!(!listing.contains("/usr/lib/safed/gpu/"), "the GPU runtime is a separate install");

    let depends = ok(Command::new("dpkg-deb").args(["--field"]).arg(&deb).arg("Depends"));
    for lib in ["libc6", "libstdc++6", "libopencv-core", "libopencv-videoio", "libhdf5"] {
        assert!(depends.contains(lib), "Depends lacks {lib}: {depends}");
    }
    assert!(!depends.contains("libtbb"), "the package ships its own TBB: {depends}");
    let names: Vec<&str> = depends.split(',').filter_map(|d| d.split_whitespace().next()).collect();
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), unique.len(), "a library named twice in Depends: {depends}");
    let control = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb").arg("--control").arg(&deb).arg(control.path()));
    let conffiles = std::fs::read_to_string(control.path().join("conffiles")).unwrap_or_default();
    assert_eq!(conffiles.trim(), "/etc/safed/safed.toml", "conffiles");

    // Stripped binaries; their debug information in the -dbgsym package beside it.
    let root = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
    for bin in ["usr/bin/safed", "usr/bin/safe-train"] {
        let sections = ok(Command::new("readelf").arg("-S").arg(root.path().join(bin)));
        assert!(!sections.contains(".debug_info"), "{bin} carries debug information");
    }
    let dbgsym = std::fs::read_dir(deb.parent().unwrap())
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("safed-dbgsym_"));
    assert!(dbgsym, "no safed-dbgsym package beside {}", deb.display());
}

#[test]
fn the_unpacked_binaries_find_their_libraries_with_no_environment_and_no_build_folder() {
    let Some(deb) = deb() else { return };
    let _system = SYSTEM.lock().unwrap_or_else(|e| e.into_inner());
    let root = tempfile::tempdir().unwrap();
    ok(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()));
    let bin = root.path().join("usr/bin/safed");
    // Nothing of the checkout that built it is in the binary: no path to its tools/.
    let checkout_tools = format!("{}/tools", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&bin).unwrap();
    assert!(
        !bytes.windows(checkout_tools.len()).any(|w| w == checkout_tools.as_bytes()),
        "the binary holds the build checkout's path {checkout_tools}"
    );
    let bare = |args: &[&str]| {
        let mut c = Command::new(&bin);
        c.args(args).env_clear().env("PATH", "/usr/bin:/bin").current_dir(root.path()).stdin(Stdio::null());
        c
    };
    let report = root.path().join("report.json");
    let out = ok(bare(&["replay", "--report", report.to_str().unwrap()]).stdout(Stdio::piped()));
    assert!(out.contains("\"top\""), "no recognitions: {out}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(r["recognitions"].as_u64().unwrap_or(0) > 0, "{r}");

    let doctor = text(&run(&mut bare(&["doctor"])));
    let lib = root.path().join("usr/lib/safed");
    assert!(doctor.contains(&lib.join("libonnxruntime.so").display().to_string()), "{doctor}");
    assert!(doctor.contains(&lib.join("openvino").display().to_string()), "{doctor}");
    assert!(doctor.contains(&format!("sudo {}", lib.join("install-gpu-runtime").display())), "{doctor}");

    // The OpenVINO backend loads from the package too.
    let ov = ok(bare(&["replay", "--backend", "openvino"]).stdout(Stdio::piped()));
    assert!(ov.contains("\"top\""), "{ov}");
}

fn dpkg_status() -> String {
    text(&run(Command::new("dpkg-query").args(["-W", "-f", "${Status}", "safed"])))
}

/// Installed, or removed with its conffiles kept ("not-installed" and "no packages found" are
/// neither).
fn present(status: &str) -> bool {
    status.ends_with(" installed") || status.ends_with("config-files")
}

fn apt(args: &[&str]) -> String {
    ok(Command::new("apt-get").args(["-y", "-q"]).args(args).env("DEBIAN_FRONTEND", "noninteractive"))
}

#[test]
fn installed_it_runs_as_the_unit_would_and_remove_and_purge_leave_what_they_should() {
    let Some(deb) = deb() else { return };
    let is_root = text(&run(Command::new("id").arg("-u"))).trim() == "0";
    if !is_root {
        assert!(std::env::var_os("CI").is_none(), "CI runs as root");
        eprintln!("SKIPPED: installing a package needs root");
        return;
    }
    let _system = SYSTEM.lock().unwrap_or_else(|e| e.into_inner());
    if present(&dpkg_status()) {
        apt(&["purge", "safed"]);
    }
    apt(&["install", "--no-install-recommends", deb.to_str().unwrap()]);
    assert_eq!(dpkg_status(), "install ok installed");
    let files: Vec<PathBuf> = ok(Command::new("dpkg-query").args(["-L", "safed"]))
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    assert!(files.iter().any(|p| p == Path::new("/usr/bin/safed")), "{files:?}");
    // systemd's own check of the unit, installed (its ExecStart must exist).
    ok(Command::new("systemd-analyze").args(["verify", "safed.service"]));

    // As the unit runs it: the packaged config, a notify socket of our own, no environment
    // but the unit's.
    let tmp = tempfile::tempdir().unwrap();
    let sock_path = tmp.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut daemon = Daemon::spawn(
        Command::new("/usr/bin/safed")
            .args(["run", "--config", "/etc/safed/safed.toml"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("NOTIFY_SOCKET", &sock_path)
            .current_dir("/"),
    );
    let mut buf = [0u8; 512];
    let mut said = String::new();
    while !said.contains("READY=1") {
        let n = sock.recv(&mut buf).unwrap_or_else(|e| panic!("no READY ({e}):\n{}", daemon.log().join("\n")));
        said.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    daemon.wait_lines(3, Duration::from_secs(60));
    assert!(daemon.lines().iter().all(|(_, l)| l["top"].is_array()), "JSON lines with labels");
    // The packaged config plays the bundled recording once; stop it if it is still going.
    if daemon.child.try_wait().unwrap().is_none() {
        daemon.signal(libc::SIGTERM);
    }
    assert!(daemon.wait(Duration::from_secs(10)).success(), "{}", daemon.log().join("\n"));

    // remove: only the conffile stays; purge: nothing.
    apt(&["remove", "safed"]);
    assert_eq!(dpkg_status(), "deinstall ok config-files");
    let left: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    assert_eq!(left, [Path::new("/etc/safed/safed.toml")], "after remove");
    apt(&["purge", "safed"]);
    let left: Vec<&PathBuf> = files.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "after purge: {left:?}");
    assert!(!Path::new("/etc/safed").exists() && !Path::new("/usr/lib/safed").exists(), "folders left after purge");
    assert!(!present(&dpkg_status()), "{}", dpkg_status());
}

/// A binary moved away from its libraries (no package, no checkout above it, no environment)
/// fails with an error naming every folder it looked in, never a panic.
#[test]
fn a_binary_without_its_libraries_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin/safed");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_safed"), &bin).unwrap();
    let out = run(Command::new(&bin).arg("replay").env_clear().env("PATH", "/usr/bin:/bin").current_dir(tmp.path()));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    let looked = tmp.path().join("lib/safed").display().to_string();
    assert!(said.contains("ONNX Runtime library libonnxruntime.so not found") && said.contains(&looked), "{said}");
}
