//! A guest flooding its console (`docs/TEST-PLAN.md` §8 E 33, the CVE-2020-27174 class): 100 MB
//! towards a slow reader. rawkvm's memory stays under a fixed cap (the console holds at most
//! 4 KiB; a slow reader slows the guest down instead of growing a queue), what arrives is
//! byte-exact, and the run still stops cleanly on SIGTERM.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io::Read;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use common::process::{rss_kib, send_signal, spawn, wait, wait_for_thread};
use nix::sys::signal::Signal;

/// The most resident memory allowed: the binary, its libraries, 1 MiB of guest RAM and the
/// kvm_run pages come to a few MiB; a growing console buffer would pass this quickly.
const RSS_CAP_KIB: u64 = 32 << 10;

#[test]
fn a_console_flood_to_a_slow_reader_keeps_memory_bounded() {
    if !common::kvm_present("console flood") {
        return;
    }
    let mut child = spawn(
        &["run", "console_loop", "--param", "100000000"],
        Stdio::piped(),
    );
    let pid = child.id();
    wait_for_thread(pid, "vcpu0");
    let mut stdout = child.stdout.take().unwrap();
    // A slow reader: 256 bytes every 20 ms, about 13 KB/s, for three seconds. The guest
    // prints several times faster than that here (one exit per byte, ~10 µs each), so the
    // 64 KiB pipe fills within a second and the console's writes wait for the reader.
    let reader = thread::spawn(move || {
        let mut received = Vec::new();
        let mut chunk = [0u8; 256];
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(3) {
            let n = stdout.read(&mut chunk).unwrap();
            received.extend_from_slice(&chunk[..n]);
            thread::sleep(Duration::from_millis(20));
        }
        (received, stdout)
    });
    let mut samples = Vec::new();
    while !reader.is_finished() {
        if let Some(rss) = rss_kib(pid) {
            samples.push(rss);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let (received, stdout) = reader.join().unwrap();
    send_signal(pid, Signal::SIGTERM);
    // Keep draining so the stop never depends on the pipe (it does not have to).
    let drain = thread::spawn(move || {
        let mut rest = Vec::new();
        let mut stdout = stdout;
        let _ = stdout.read_to_end(&mut rest);
        rest
    });
    let status = wait(&mut child);
    let rest = drain.join().unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
    let max = samples.iter().copied().max().unwrap_or(0);
    println!(
        "console flood: {} bytes read slowly, {} more after SIGTERM; VmRSS samples {}, max {max} KiB \
         (cap {RSS_CAP_KIB} KiB)",
        received.len(),
        rest.len(),
        samples.len()
    );
    assert!(samples.len() >= 10, "too few RSS samples: {samples:?}");
    assert!(max < RSS_CAP_KIB, "VmRSS reached {max} KiB: {samples:?}");
    let all: Vec<u8> = received.into_iter().chain(rest).collect();
    assert!(all.len() > 4096, "the reader got only {} bytes", all.len());
    assert!(
        all == common::console_pattern(all.len()),
        "the output is not byte-exact"
    );
}
