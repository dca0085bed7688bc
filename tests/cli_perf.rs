//! The command line of the fast paths: `run --repeat`, `run --no-coalesce`, `bench` lines,
//! and one system call per exit as `strace` counts it.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::assert_fails;
use common::process::{run, run_program};

fn stdout_of(args: &[&str]) -> String {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn repeat_runs_mutate_from_the_same_state_every_time() {
    if !common::kvm_present("repeat_runs_mutate_from_the_same_state_every_time") {
        return;
    }
    assert_eq!(
        stdout_of(&["run", "mutate", "--repeat", "5"]),
        "00000001\n".repeat(5)
    );
    assert_eq!(stdout_of(&["run", "mutate"]), "00000001\n");
    assert_fails(
        &run(&["run", "mutate", "--repeat", "0"]),
        2,
        "--repeat 0: at least 1 run",
    );
    assert_eq!(
        stdout_of(&[
            "run",
            "mutate",
            "--repeat",
            "2",
            "--restart-scope",
            "registers"
        ]),
        "00000001\n".repeat(2)
    );
    assert_fails(
        &run(&["run", "mutate", "--repeat", "2", "--restart-scope", "fpu"]),
        2,
        "--restart-scope fpu: unknown restart scope \"fpu\"; choose full or registers",
    );
    assert_fails(
        &run(&["run", "mutate", "--restart-scope", "full"]),
        2,
        "--restart-scope says what --repeat puts back between runs; give --repeat N too",
    );
}

#[test]
fn console_output_is_the_same_with_and_without_coalescing() {
    if !common::kvm_present("console_output_is_the_same_with_and_without_coalescing") {
        return;
    }
    for guest in ["console_loop", "console_burst"] {
        let coalesced = stdout_of(&["run", guest, "--param", "1000"]);
        let plain = stdout_of(&["run", guest, "--param", "1000", "--no-coalesce"]);
        let expected = String::from_utf8(common::console_pattern(1000)).unwrap();
        assert_eq!(coalesced, expected, "{guest}");
        assert_eq!(plain, expected, "{guest}");
    }
}

/// The keys of a `key=value` line, in order, after its first word.
fn keys(line: &str) -> Vec<&str> {
    line.split_whitespace()
        .skip(1)
        .map(|item| item.split_once('=').expect("key=value").0)
        .collect()
}

#[test]
fn bench_prints_one_key_value_line_per_workload_and_variant() {
    if !common::kvm_present("bench_prints_one_key_value_line_per_workload_and_variant") {
        return;
    }
    // Each case: the command, the line's first word, its keys, and the values that are
    // counts and names rather than times.
    type Case<'a> = (
        &'a [&'a str],
        &'a str,
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
    );
    const RESTART_KEYS: &[&str] = &[
        "runs",
        "total_ns",
        "us_per_run",
        "dirty_pages",
        "vcpu_ioctls",
        "reset",
        "variant",
    ];
    let cases: [Case; 6] = [
        (
            &["bench", "pio", "--count", "200", "--variant", "valid-regs"],
            "pio",
            &[
                "exits",
                "total_ns",
                "ns_per_exit",
                "exits_per_sec",
                "variant",
            ],
            &[("exits", "201"), ("variant", "valid-regs")],
        ),
        (
            &["bench", "restart", "--count", "50"],
            "restart",
            RESTART_KEYS,
            &[
                ("runs", "50"),
                ("dirty_pages", "0"),
                ("reset", "sync-regs"),
                ("variant", "full"),
            ],
        ),
        (
            &[
                "bench",
                "restart",
                "--count",
                "50",
                "--variant",
                "registers",
            ],
            "restart",
            RESTART_KEYS,
            &[
                ("dirty_pages", "0"),
                ("vcpu_ioctls", "0"),
                ("reset", "sync-regs"),
                ("variant", "registers"),
            ],
        ),
        (
            &[
                "bench",
                "restart",
                "--count",
                "20",
                "--guest",
                "mutate",
                "--variant",
                "ioctl",
            ],
            "restart",
            RESTART_KEYS,
            &[
                ("runs", "20"),
                ("dirty_pages", "80"),
                ("reset", "ioctl"),
                ("variant", "ioctl"),
            ],
        ),
        (
            &["bench", "console", "--count", "500"],
            "console",
            &[
                "bytes",
                "total_ns",
                "ns_per_byte",
                "bytes_per_sec",
                "variant",
            ],
            &[("bytes", "500"), ("variant", "coalesced")],
        ),
        (
            &["bench", "start-async", "--count", "5"],
            "start-async",
            &["vms", "total_ns", "us_per_vm", "us_to_hlt", "variant"],
            &[("vms", "5"), ("variant", "reaper")],
        ),
    ];
    for (args, first, want, values) in cases {
        let out = stdout_of(args);
        assert_eq!(out.lines().count(), 1, "{args:?}: {out}");
        assert_eq!(out.split_whitespace().next(), Some(first));
        assert_eq!(keys(&out), want, "{args:?}");
        for &(key, value) in values {
            assert_eq!(common::field(&out, key), Some(value), "{args:?}: {out}");
        }
    }
    let restart = stdout_of(&["bench", "restart", "--count", "20", "--guest", "mutate"]);
    assert!(
        restart.contains(" dirty_pages=80 ") && restart.ends_with(" variant=full\n"),
        "4 pages a run: {restart}"
    );
    assert!(stdout_of(&["bench", "console", "--count", "400"]).ends_with("variant=coalesced\n"));
    assert_fails(
        &run(&["bench", "restart", "--variant", "fast"]),
        2,
        "no variant \"fast\"; choose full, registers, ioctl",
    );
    for (reps, why) in [
        ("0", "--reps 0: repetitions must be 1 to 1000"),
        ("1001", "--reps 1001: repetitions must be 1 to 1000"),
    ] {
        assert_fails(&run(&["bench", "suite", "--reps", reps]), 2, why);
    }
}

#[test]
fn bench_suite_runs_a_workload_against_the_c_baseline() {
    if !common::kvm_present("bench_suite_runs_a_workload_against_the_c_baseline") {
        return;
    }
    let out = stdout_of(&[
        "bench",
        "suite",
        "--workload",
        "restart",
        "--quick",
        "--reps",
        "2",
    ]);
    // The create-run-destroy cycle first: the restart targets divide by it.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("restart ") || l.starts_with("start "))
        .collect();
    let variants: Vec<&str> = rows
        .iter()
        .map(|row| row.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(variants, ["plain", "full", "registers", "ioctl"], "{out}");
    // A --quick run is a smoke run: figures shown, no verdict.
    let smoke: Vec<&str> = out.lines().filter(|l| l.starts_with("smoke   ")).collect();
    assert!(
        smoke
            .iter()
            .any(|l| l.starts_with("smoke   restart: C's fastest cycle / rawkvm full restart")),
        "{out}"
    );
    assert!(
        smoke
            .iter()
            .all(|l| l.ends_with(": not judged (--quick)") || l.ends_with(": n/a (not measured)")),
        "{out}"
    );
    assert!(
        !out.contains("target  ") && !out.contains("MISSED"),
        "{out}"
    );
    if out.contains("no C baseline") {
        common::skip(format_args!("the C baseline could not be built (no cc?)"));
    } else {
        // Every row ends with its ratios, not "-".
        assert!(rows.iter().all(|row| row.ends_with(')')), "{out}");
    }
}

/// `strace -c -f` of `rawkvm bench WORKLOAD --count N`: (all system calls, ioctls), or `None`
/// when strace is not installed. A table that cannot be read fails the test.
fn syscalls(workload: &str, count: u32) -> Option<(u64, u64)> {
    let count = count.to_string();
    let args = [
        "-c",
        "-f",
        "-o",
        "/dev/stderr",
        env!("CARGO_BIN_EXE_rawkvm"),
        "bench",
        workload,
        "--count",
        &count,
    ];
    let output = match run_program("strace", &args) {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => panic!("cannot start strace: {error}"),
    };
    let table = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "strace or rawkvm failed: {table}");
    let calls = |name: &str| -> u64 {
        table
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.last() == Some(&name))
            .and_then(|fields| fields.get(3)?.parse().ok())
            .unwrap_or_else(|| {
                panic!("no {name} row with a call count in strace's table:\n{table}")
            })
    };
    Some((calls("total"), calls("ioctl")))
}

#[test]
fn each_exit_costs_exactly_one_system_call() {
    if !common::kvm_present("each_exit_costs_exactly_one_system_call") {
        return;
    }
    for workload in ["pio", "mmio"] {
        let (Some(few), Some(many)) = (syscalls(workload, 1000), syscalls(workload, 3000)) else {
            common::skip(format_args!(
                "strace is not installed (each_exit_costs_exactly_one_system_call)"
            ));
            return;
        };
        // Same setup either way: the 2000 extra exits account for every extra call.
        assert_eq!(many.0 - few.0, 2000, "{workload}: all system calls");
        assert_eq!(many.1 - few.1, 2000, "{workload}: ioctls (KVM_RUN)");
    }
}
