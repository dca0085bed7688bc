//! The `rawkvm` binary as a user runs it: output bytes, exit statuses, error messages.

mod common;

use std::io::Write;

use common::{assert_fails, rawkvm};

#[test]
fn hello_prints_exactly_its_line_and_exits_0() {
    if !common::kvm_present("hello_prints_exactly_its_line_and_exits_0") {
        return;
    }
    let output = rawkvm(&["run"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout, b"Hello from real mode!\n");
    assert!(
        output.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(rawkvm(&["run", "hello"]).stdout, b"Hello from real mode!\n");
}

#[test]
fn a_missing_image_exits_4_naming_the_path() {
    let output = rawkvm(&["run", "--image", "/nonexistent/guest.bin"]);
    assert_fails(&output, 4, "/nonexistent/guest.bin");
}

#[test]
fn an_empty_image_exits_4_naming_the_path() {
    let dir = tempdir("empty");
    let path = dir.join("empty.bin");
    std::fs::File::create(&path).unwrap();
    let output = rawkvm(&["run", "--image", path.to_str().unwrap()]);
    assert_fails(
        &output,
        4,
        &format!("guest image {} is empty", path.display()),
    );
}

#[test]
fn an_image_one_byte_too_large_exits_4_and_one_that_fits_runs() {
    let dir = tempdir("large");
    // 64 KiB of RAM, loaded at 0x1000: 0xF000 bytes fit.
    let fits = dir.join("fits.bin");
    let mut image = vec![0x90u8; 0xF000]; // nop sled
    image[0xF000 - 2..].copy_from_slice(&[0xFA, 0xF4]); // cli; hlt at the very end
    std::fs::File::create(&fits)
        .unwrap()
        .write_all(&image)
        .unwrap();
    let too_large = dir.join("too_large.bin");
    image.push(0x90);
    std::fs::File::create(&too_large)
        .unwrap()
        .write_all(&image)
        .unwrap();
    let output = rawkvm(&[
        "run",
        "--mem",
        "64K",
        "--image",
        too_large.to_str().unwrap(),
    ]);
    assert_fails(
        &output,
        4,
        &format!(
            "guest image {} is 61441 bytes but only 61440 bytes fit",
            too_large.display()
        ),
    );
    if common::kvm_present("an_image_one_byte_too_large_exits_4_and_one_that_fits_runs") {
        let output = rawkvm(&["run", "--mem", "64K", "--image", fits.to_str().unwrap()]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_missing_device_exits_3() {
    let output = rawkvm(&["run", "--kvm-device", "/nonexistent/kvm"]);
    assert_fails(&output, 3, "cannot open /nonexistent/kvm: ENOENT");
}

#[test]
fn zero_and_unaligned_memory_exit_2() {
    assert_fails(&rawkvm(&["run", "--mem", "0"]), 2, "at least one page");
    assert_fails(
        &rawkvm(&["run", "--mem", "4097"]),
        2,
        "multiple of the page size 4096",
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_fails(&rawkvm(&[]), 2, "no command");
    assert_fails(&rawkvm(&["frobnicate"]), 2, "unknown command");
    assert_fails(&rawkvm(&["run", "--bogus"]), 2, "unknown option --bogus");
    assert_fails(&rawkvm(&["run", "no_such_guest"]), 2, "no embedded guest");
    assert_fails(&rawkvm(&["run", "--mem"]), 2, "--mem needs a value");
}

#[test]
fn help_version_and_list() {
    for line in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["run", "--help"],
        &["bench", "suite", "-h"],
    ] {
        let help = rawkvm(line);
        assert_eq!(help.status.code(), Some(0), "{line:?}");
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("Exit status:"),
            "{line:?}"
        );
    }
    let version = rawkvm(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("rawkvm {}\n", env!("CARGO_PKG_VERSION"))
    );
    let list = String::from_utf8(rawkvm(&["list"]).stdout).unwrap();
    for name in ["hello", "hlt", "pio_loop", "mmio_loop"] {
        assert!(
            list.lines().any(|line| line.starts_with(name)),
            "{name} not listed:\n{list}"
        );
    }
}

/// A fresh directory under the system temp dir, unique to this process and `name`.
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rawkvm-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
