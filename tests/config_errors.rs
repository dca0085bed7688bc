//! `docs/TEST-PLAN.md` §8 A, as a user meets it: a missing, forbidden or wrong KVM device, images
//! that are not images, sizes that are not sizes. Each ends with its documented status and a
//! message naming what was wrong, never a panic and never a hang (every run has a watchdog).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::process::{run, run_program};
use common::{ScratchDir, assert_fails};

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

const NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

/// Runs rawkvm as uid/gid 65534 with `setpriv`, or says why it cannot.
fn run_as_nobody(args: &[&str]) -> Result<std::process::Output, String> {
    let mut setpriv_args: Vec<&str> = NOBODY.to_vec();
    setpriv_args.push(env!("CARGO_BIN_EXE_rawkvm"));
    setpriv_args.extend_from_slice(args);
    let output = run_program("setpriv", &setpriv_args).map_err(|e| format!("no setpriv ({e})"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.starts_with("setpriv:") {
        return Err(format!("setpriv cannot switch user here: {stderr}"));
    }
    Ok(output)
}

#[test]
fn a_missing_device_exits_3_with_the_module_hint() {
    let output = run(&["run", "--kvm-device", "/nonexistent/kvm"]);
    assert_fails(
        &output,
        3,
        "rawkvm: error: cannot open /nonexistent/kvm: ENOENT (No such file or directory); is a \
         KVM module loaded (kvm_intel, kvm_amd, ...) and does the device exist?\n",
    );
}

#[test]
fn a_device_without_permission_exits_3_with_the_group_hint() {
    if !common::kvm_present("permission test") {
        return;
    }
    let mode = std::fs::metadata("/dev/kvm").unwrap().permissions().mode();
    if mode & 0o006 != 0 {
        common::skip(format_args!(
            "/dev/kvm is open to every user here (mode {mode:o}), no EACCES"
        ));
        return;
    }
    match run_as_nobody(&["run"]) {
        Ok(output) => assert_fails(
            &output,
            3,
            "cannot open /dev/kvm: EACCES (Permission denied); add the user to the kvm group \
             or fix the device's ACL",
        ),
        Err(why) => common::skip(format_args!("{why}")),
    }
}

#[test]
fn files_that_are_not_kvm_devices_exit_3() {
    let dir = ScratchDir::new("notkvm");
    let regular = dir.join("regular");
    std::fs::write(&regular, b"not a device").unwrap();
    for path in ["/dev/null", text(&regular)] {
        let output = run(&["run", "--kvm-device", path]);
        assert_fails(
            &output,
            3,
            &format!(
                "{path} is not a KVM device: KVM_GET_API_VERSION failed with ENOTTY (Not a \
                 typewriter); pass the KVM character device"
            ),
        );
    }
    let output = run(&["run", "--kvm-device", text(dir.path())]);
    assert_fails(
        &output,
        3,
        &format!(
            "cannot open {}: EISDIR (Is a directory); that is a directory",
            dir.path().display()
        ),
    );
}

#[test]
fn images_that_are_missing_or_not_regular_files_exit_4_without_blocking() {
    let dir = ScratchDir::new("images");
    let fifo = dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let dangling = dir.join("dangling");
    std::os::unix::fs::symlink(dir.join("nowhere"), &dangling).unwrap();
    let missing = "/nonexistent/guest.bin";
    let not_found = "ENOENT (No such file or directory); check the path (a dangling link counts \
                     as missing)";
    let cases = [
        (
            missing.to_string(),
            format!("cannot read guest image {missing}: {not_found}"),
        ),
        (
            text(&dangling).to_string(),
            format!(
                "cannot read guest image {}: {not_found}",
                dangling.display()
            ),
        ),
        (
            text(&fifo).to_string(),
            format!(
                "guest image {} is a FIFO, not a regular file; pass a flat binary file",
                fifo.display()
            ),
        ),
        (
            "/dev/zero".to_string(),
            "guest image /dev/zero is a character device, not a regular file".to_string(),
        ),
        (
            text(dir.path()).to_string(),
            format!(
                "guest image {} is a directory, not a regular file",
                dir.path().display()
            ),
        ),
    ];
    for (path, message) in cases {
        let output = run(&["run", "--image", &path]);
        assert_fails(&output, 4, &format!("rawkvm: error: {message}"));
    }
}

#[test]
fn an_empty_image_exits_4_naming_the_path() {
    let dir = ScratchDir::new("empty");
    let path = dir.join("empty.bin");
    std::fs::File::create(&path).unwrap();
    let output = run(&["run", "--image", text(&path)]);
    assert_fails(
        &output,
        4,
        &format!(
            "rawkvm: error: guest image {} is empty; pass a flat binary with code in it\n",
            path.display()
        ),
    );
}

#[test]
fn an_unreadable_image_exits_4_with_eacces() {
    let dir = ScratchDir::new("unreadable");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let image = dir.join("secret.bin");
    std::fs::write(&image, [0xFA, 0xF4]).unwrap();
    std::fs::set_permissions(&image, std::fs::Permissions::from_mode(0o600)).unwrap();
    match run_as_nobody(&["run", "--image", text(&image)]) {
        Ok(output) => assert_fails(
            &output,
            4,
            &format!(
                "cannot read guest image {}: EACCES (Permission denied); make the file \
                 readable by this user",
                image.display()
            ),
        ),
        Err(why) => common::skip(format_args!("{why}")),
    }
}

#[test]
fn memory_sizes_that_cannot_work_exit_2() {
    let cases = [
        (
            "0",
            "RAM size 0: guest RAM must be at least one page (4096 bytes); raise --mem",
        ),
        (
            "4097",
            "RAM size 4097 (0x1001) must be a multiple of the page size 4096; round --mem up to 8192 (0x2000)",
        ),
        (
            "0x1800",
            "RAM size 6144 (0x1800) must be a multiple of the page size 4096; round --mem up to 8192 (0x2000)",
        ),
        (
            "1T",
            "RAM size 1 TiB is above rawkvm's limit of 4 GiB: its guests run in real or 32-bit mode",
        ),
        ("256T", "RAM size 256 TiB is above rawkvm's limit of 4 GiB"),
        (
            "18446744073709551615",
            "RAM size 18446744073709551615 bytes is above rawkvm's limit",
        ),
        (
            "18446744073709551616",
            "--mem 18446744073709551616: \"18446744073709551616\" is too large",
        ),
        ("16777216T", "--mem 16777216T: \"16777216T\" is too large"),
        ("-1", "--mem -1: \"-1\" is not a number"),
        (
            "1Q",
            "--mem 1Q: \"1Q\" has an unknown suffix (use K, M, G or T)",
        ),
        ("1.5M", "--mem 1.5M: \"1.5\" is not a number"),
        ("", "--mem : an empty value is not a number"),
    ];
    for (size, message) in cases {
        let output = run(&["run", "--mem", size]);
        assert_fails(&output, 2, message);
    }
}

#[test]
fn bad_vcpu_counts_and_durations_exit_2() {
    let cases: [(&[&str], &str); 6] = [
        (&["--vcpus", "0"], "the number of vCPUs must be at least 1"),
        (
            &["--vcpus", "4294967296"],
            "--vcpus 4294967296: KVM allows far fewer vCPUs",
        ),
        (&["--vcpus", "two"], "--vcpus two: \"two\" is not a number"),
        (
            &["--timeout", "5"],
            "--timeout 5: \"5\" has no unit (write 500ms, 2s or 1m)",
        ),
        (&["--timeout", "0ms"], "--timeout 0ms: \"0ms\" is zero"),
        (
            &["--timeout", "1h"],
            "--timeout 1h: \"1h\" has an unknown unit \"h\"",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run", "spin"];
        args.extend_from_slice(flags);
        assert_fails(&run(&args), 2, message);
    }
}

#[test]
fn an_image_exactly_filling_ram_runs_and_one_byte_more_exits_4() {
    let dir = ScratchDir::new("fill");
    // 8 KiB of RAM, loaded at 0x1000: 4096 bytes fit. A nop sled ending in cli; hlt.
    let mut image = vec![0x90u8; 4096];
    image[4094..].copy_from_slice(&[0xFA, 0xF4]);
    let fits = dir.join("fits.bin");
    std::fs::write(&fits, &image).unwrap();
    image.push(0x90);
    let too_large = dir.join("too_large.bin");
    std::fs::write(&too_large, &image).unwrap();
    let output = run(&["run", "--mem", "8K", "--image", text(&too_large)]);
    assert_fails(
        &output,
        4,
        &format!(
            "guest image {} is 4097 bytes but only 4096 bytes fit between load address 0x1000 \
             and end of RAM 0x2000",
            too_large.display()
        ),
    );
    if common::kvm_present("running the image that fits") {
        let output = run(&["run", "--mem", "8K", "--image", text(&fits)]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
    }
}

#[test]
fn a_load_address_outside_ram_or_an_embedded_guest_moved_exits_2() {
    let dir = ScratchDir::new("load");
    // mov al, 'L'; out 0xe9, al; cli; hlt
    let image = dir.join("load.bin");
    std::fs::write(&image, [0xB0, b'L', 0xE6, 0xE9, 0xFA, 0xF4]).unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["--image", text(&image), "--load-addr", "0x100000"],
            "load address 0x100000 is outside guest RAM [0, 0x100000); lower --load-addr or \
             raise --mem",
        ),
        (
            &[
                "--image",
                text(&image),
                "--mem",
                "64K",
                "--load-addr",
                "0x20000",
            ],
            "load address 0x20000 is outside guest RAM [0, 0x10000)",
        ),
        (
            &["hello", "--load-addr", "0x2000"],
            "--load-addr 0x2000: the embedded guests are linked at 0x1000 and run only there; \
             give --image PATH for code built for another address",
        ),
    ];
    for (flags, message) in cases {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        assert_fails(&run(&args), 2, &format!("rawkvm: error: {message}"));
    }
    if !common::kvm_present("images at other load addresses") {
        return;
    }
    // The embedded guest at its own address, and an image loaded and entered elsewhere.
    let output = run(&["run", "hello", "--load-addr", "0x1000"]);
    assert_eq!(output.stdout, b"Hello from real mode!\n", "{output:?}");
    let output = run(&[
        "run",
        "--image",
        text(&image),
        "--load-addr",
        "0x2000",
        "--entry",
        "0000:2000",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"L");
}
