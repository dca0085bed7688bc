//! The `rawkvm` binary as a user runs it: output bytes, usage errors, help, the guest list,
//! and a reader that goes away. (Bad devices, images and sizes: `config_errors.rs`.)

mod common;

use std::process::Stdio;

use common::assert_fails;
use common::process::{run, spawn, wait_output};

#[test]
fn hello_prints_exactly_its_line_and_exits_0() {
    if !common::kvm_present("hello_prints_exactly_its_line_and_exits_0") {
        return;
    }
    for args in [&["run"][..], &["run", "hello"]] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(output.stdout, b"Hello from real mode!\n", "{args:?}");
        assert!(output.stderr.is_empty(), "{args:?}: {stderr}");
    }
}

#[test]
fn the_exit_device_ends_the_run_with_the_guests_code() {
    if !common::kvm_present("the_exit_device_ends_the_run_with_the_guests_code") {
        return;
    }
    let output = run(&["run", "exit_code"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"bye");
    assert!(output.stderr.is_empty(), "{output:?}");
    let output = run(&["run", "exit_code", "--param", "3"]);
    assert_eq!(
        output.status.code(),
        Some(common::status::GUEST_FAILURE),
        "{output:?}"
    );
    assert_eq!(output.stdout, b"bye");
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "rawkvm: error: vCPU 0: guest reported failure (code 3)\n"
    );
    // Every restarted run ends through the device too, and the next one still runs.
    let output = run(&["run", "exit_code", "--repeat", "3"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"byebyebye");
}

#[test]
fn usage_errors_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (&[], "no command"),
        (&["frobnicate"], "unknown command"),
        (&["run", "--bogus"], "unknown option --bogus"),
        (&["run", "no_such_guest"], "no embedded guest"),
        (&["run", "--mem"], "--mem needs a value"),
        (
            &["list", "--json"],
            "rawkvm: error: list: unknown option --json\n",
        ),
        (
            &["list", "hello"],
            "rawkvm: error: list: unexpected argument \"hello\"\n",
        ),
    ];
    for (args, message) in cases {
        assert_fails(&run(args), 2, message);
    }
}

#[test]
fn help_and_version() {
    for line in [&["--help"][..], &["-h"], &["help"]] {
        let help = run(line);
        assert_eq!(help.status.code(), Some(0), "{line:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        // Every status and every flag a command takes is there.
        for needle in [
            "Exit status:",
            "API version,\n     capability, a CPU mode the backend cannot run)",
            "--mode MODE",
            "--entry ADDR",
            "--markdown",
            "rawkvm bench restart [--guest NAME]",
            "--load-addr",
            "  --timeout DURATION  stop the guest if it has not halted after DURATION, which needs a\n",
        ] {
            assert!(text.contains(needle), "{line:?}: {needle:?} not in\n{text}");
        }
    }
    // A command's help: its own usage lines and options, not the others'.
    let per_command: [(&[&str], &str, &str); 4] = [
        (&["run", "--help"], "--load-addr", "--markdown"),
        (
            &["help", "run"],
            "  rawkvm run --image PATH",
            "rawkvm bench",
        ),
        (&["bench", "suite", "-h"], "--markdown", "--load-addr"),
        (&["help", "caps"], "  rawkvm caps [--json]", "--trace-file"),
    ];
    for (line, has, lacks) in per_command {
        let help = run(line);
        assert_eq!(help.status.code(), Some(0), "{line:?}");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.starts_with("rawkvm: a virtual machine monitor"),
            "{line:?}: {text}"
        );
        assert!(text.contains(has), "{line:?}: {has:?} not in\n{text}");
        assert!(!text.contains(lacks), "{line:?}: {lacks:?} in\n{text}");
        assert!(text.contains("Exit status:"), "{line:?}");
    }
    // Extra words are refused, as `list extra` is.
    for (line, message) in [
        (
            &["--version", "extra"][..],
            "rawkvm: error: --version: unexpected argument \"extra\"\n",
        ),
        (
            &["help", "nope"],
            "rawkvm: error: help: no command \"nope\"; try rawkvm --help\n",
        ),
        (
            &["help", "run", "x"],
            "rawkvm: error: help: unexpected argument \"x\"\n",
        ),
    ] {
        let output = run(line);
        assert_eq!(output.status.code(), Some(2), "{line:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("{message}(see rawkvm --help)\n"),
            "{line:?}"
        );
    }
    let version = run(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("rawkvm {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn list_names_every_embedded_guest_with_its_description() {
    let output = run(&["list"]);
    assert_eq!(output.status.code(), Some(0));
    let list = String::from_utf8(output.stdout).unwrap();
    // NAME  MODE  DESCRIPTION per guest, then a blank line and the conventions.
    let listed: Vec<(&str, &str, &str)> = list
        .lines()
        .take_while(|line| !line.is_empty())
        .map(|line| {
            let (name, rest) = line.split_once(' ').expect("NAME  MODE  DESCRIPTION");
            let (mode, description) = rest.trim_start().split_once(' ').expect("MODE");
            (name, mode, description.trim_start())
        })
        .collect();
    let embedded: Vec<(&str, &str, &str)> = rawkvm::machine::guests::all()
        .iter()
        .map(|guest| (guest.name, guest.mode(), guest.description))
        .collect();
    assert_eq!(listed, embedded);
    for convention in [
        "MMIO console at GPA 0xD000_0000",
        "\n  user       64-bit CPL 3 (CS 0x33)",
        "\n  0x00090000      0x48  GDT\n",
    ] {
        assert!(list.contains(convention), "{convention:?} in {list}");
    }
}

/// `rawkvm ARGS | true`: the reader is gone before rawkvm writes. The write fails with
/// `EPIPE` (Rust ignores `SIGPIPE`), and rawkvm says so and exits with 128 + `SIGPIPE`.
#[test]
fn a_closed_stdout_ends_rawkvms_own_output_with_status_141() {
    for args in [&["--help"][..], &["list"], &["abi", "kvm_run"]] {
        let (reader, writer) = nix::unistd::pipe().expect("pipe");
        drop(reader);
        let output = wait_output(spawn(args, Stdio::from(writer)));
        assert_eq!(output.status.code(), Some(141), "{args:?}: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            "rawkvm: error: stdout was closed\n",
            "{args:?}"
        );
    }
}
