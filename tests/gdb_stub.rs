//! `rawkvm run --gdb ADDR`: real gdb against the `hello` guest (registers at entry, a
//! hardware breakpoint, three single steps, memory read and written, `info registers`,
//! `kill`), and the protocol by hand (Ctrl-C, the four debug registers, refused watchpoints,
//! memory outside RAM).
//!
//! Without gdb the gdb tests say `SKIPPED: gdb ...`; under `RAWKVM_REQUIRE_GDB=1` (set by
//! `.ci/run`, which installs gdb) they fail instead.
// The debugger is x86-64 only.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::process::{spawn, wait_output};
use common::{ScratchDir, backend, kvm_present};

/// Whether gdb can be run; if not, says SKIPPED, or fails under `RAWKVM_REQUIRE_GDB=1`.
fn gdb_or_skip(test: &str) -> bool {
    let found = Command::new("gdb")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var_os("RAWKVM_REQUIRE_GDB").is_none_or(|v| v != "1"),
            "RAWKVM_REQUIRE_GDB=1 but gdb cannot be run ({test})"
        );
        common::skip(format_args!("gdb not installed ({test})"));
    }
    found
}

/// Runs gdb in batch mode with `commands` after connecting to `addr`, real-mode code.
fn gdb(addr: &str, commands: &[&str]) -> String {
    gdb_for("i8086", addr, commands)
}

/// Runs gdb in batch mode for `architecture` with `commands` after connecting to `addr`.
fn gdb_for(architecture: &str, addr: &str, commands: &[&str]) -> String {
    let mut command = Command::new("gdb");
    let architecture = format!("set architecture {architecture}");
    command.args(["--batch", "-nx", "-ex", &architecture]);
    command.args(["-ex", &format!("target remote {addr}")]);
    for c in commands {
        command.args(["-ex", c]);
    }
    let output = command.stdin(Stdio::null()).output().expect("run gdb");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

fn assert_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert_has(text, needle);
    }
}

fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{needle:?} not in:\n{text}");
}

#[test]
fn real_gdb_reads_breaks_steps_writes_and_kills_hello() {
    let test = "real_gdb_reads_breaks_steps_writes_and_kills_hello";
    if !kvm_present(test) || !gdb_or_skip(test) {
        return;
    }
    let args = ["run", "hello", "--gdb", "127.0.0.1:0"];
    let mut child = spawn(&args, Stdio::piped());
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("rawkvm: waiting for gdb on 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .map(|port| format!("127.0.0.1:{port}"))
        .unwrap_or_else(|| panic!("{line:?}"));
    let transcript = gdb(
        &addr,
        &[
            "info registers eip cs",
            "hbreak *0x1009",
            "continue",
            "stepi",
            "p/x $pc",
            "stepi",
            "p/x $pc",
            "stepi",
            "p/x $pc",
            "x/4xb 0x101e",
            "set {char}0x101e = 0x4a",
            "x/4xb 0x101e",
            "info registers",
            "kill",
        ],
    );
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let output = wait_output(child);
    println!("{transcript}");
    // Stopped before the first instruction: 0000:1000.
    assert_all(
        &transcript,
        &[
            "0x00001000 in ?? ()",
            "eip            0x1000              0x1000",
            "cs             0x0                 0",
            "Hardware assisted breakpoint 1 at 0x1009",
            "Breakpoint 1, 0x00001009 in ?? ()",
            // mov dx,0x3fd (3 bytes); in al,dx (an IO exit on the way); test al,0x20.
            "$1 = 0x100c",
            "$2 = 0x100d",
            "$3 = 0x100f",
            "0x101e:\t0x48\t0x65\t0x6c\t0x6c",
            "0x101e:\t0x4a\t0x65\t0x6c\t0x6c",
            "eax            0x60                96",
            "edx            0x3fd               1021",
            "ebx            0x48                72",
            "esp            0xf00               3840",
            "esi            0x101e              4126",
            "eip            0x100f              0x100f",
            "ss             0x0                 0",
            "[Inferior 1 (Remote target) killed]",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{rest}");
    assert_eq!(rest, "rawkvm: gdb killed the guest\n");
    assert!(output.stdout.is_empty(), "the guest never got to print");
}

#[test]
fn real_gdb_over_a_unix_socket_changes_what_the_guest_prints() {
    let test = "real_gdb_over_a_unix_socket_changes_what_the_guest_prints";
    if !kvm_present(test) || !gdb_or_skip(test) {
        return;
    }
    let dir = ScratchDir::new("gdb-unix");
    let (child, socket) = start_on_socket(&dir, "gdb.sock", "hello");
    let socket = socket.as_str();
    let transcript = gdb(
        socket,
        &[
            "set {char}0x101e = 0x4a",
            // int3 is not intercepted here: `break` becomes a debug register too.
            "break *0x1016",
            "continue",
            "p/x $eax",
            "watch *(char *)0x2000",
            "continue",
            "delete",
            "continue",
        ],
    );
    let output = wait_output(child);
    println!("{transcript}");
    assert_all(
        &transcript,
        &[
            "Breakpoint 1, 0x00001016 in ?? ()",
            "$1 = 0x4a",
            // The watchpoint is refused when gdb resumes, and it says so.
            "Could not insert hardware watchpoint 2",
            "[Inferior 1 (Remote target) exited normally]",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_has(
        &stderr,
        "rawkvm: gdb: no watchpoint at 0x2000: data watchpoints never fire",
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_eq!(output.stdout, b"Jello from real mode!\n");
    assert!(!dir.join("gdb.sock").exists(), "the socket is removed");
}

/// Starts `rawkvm run GUEST --gdb DIR/NAME` and waits until it listens; returns the child
/// and the socket's path.
fn start_on_socket(dir: &ScratchDir, name: &str, guest: &str) -> (Child, String) {
    let socket = dir.join(name).to_str().unwrap().to_string();
    let child = spawn(&["run", guest, "--gdb", &socket], Stdio::piped());
    wait_for_socket(&socket);
    (child, socket)
}

/// Waits until rawkvm has bound `path` (it binds before opening KVM).
fn wait_for_socket(path: &str) {
    for _ in 0..6000 {
        if std::path::Path::new(path).exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("rawkvm never listened on {path}");
}

/// A minimal gdb: frames packets, reads replies.
struct Client {
    stream: UnixStream,
}

impl Client {
    fn connect(path: &str) -> Client {
        wait_for_socket(path);
        let stream = UnixStream::connect(path).expect("connect to the stub");
        stream
            .set_read_timeout(Some(common::process::WATCHDOG))
            .unwrap();
        Client { stream }
    }

    fn send(&mut self, payload: &str) {
        let sum = payload.bytes().fold(0u8, |sum, b| sum.wrapping_add(b));
        write!(self.stream, "${payload}#{sum:02x}").unwrap();
    }

    /// The next reply's payload (acks skipped; no-ack mode is not asked for).
    fn reply(&mut self) -> String {
        let mut byte = [0u8];
        loop {
            self.stream.read_exact(&mut byte).expect("a reply");
            if byte[0] == b'$' {
                break;
            }
        }
        let mut payload = Vec::new();
        loop {
            self.stream.read_exact(&mut byte).unwrap();
            if byte[0] == b'#' {
                break;
            }
            payload.push(byte[0]);
        }
        let mut sum = [0u8; 2];
        self.stream.read_exact(&mut sum).unwrap();
        // After `D` the stub may already have closed the connection.
        let _ = self.stream.write_all(b"+");
        String::from_utf8(payload).unwrap()
    }

    fn ask(&mut self, payload: &str) -> String {
        self.send(payload);
        self.reply()
    }
}

#[test]
fn ctrl_c_stops_a_spinning_guest_and_refusals_say_why() {
    let test = "ctrl_c_stops_a_spinning_guest_and_refusals_say_why";
    if !kvm_present(test) {
        return;
    }
    let dir = ScratchDir::new("gdb-raw");
    let (child, socket) = start_on_socket(&dir, "raw.sock", "spin");
    let socket = socket.as_str();
    let mut gdb = Client::connect(socket);
    let supported = gdb.ask("qSupported:multiprocess+;xmlRegisters=i386");
    assert_eq!(
        supported,
        "PacketSize=1000;qXfer:features:read+;QStartNoAckMode+;hwbreak+;vContSupported+"
    );
    assert_eq!(gdb.ask("?"), "T05thread:01;");
    assert_eq!(gdb.ask("p8"), "00100000", "eip at entry");
    // Four debug registers; Z0 takes one too; the fifth is refused, with the reason on
    // rawkvm's stderr (gdb 13 does not take E.text replies unless it asks).
    for addr in ["2000", "2001", "2002", "2003"] {
        assert_eq!(gdb.ask(&format!("Z0,{addr},1")), "OK");
    }
    assert_eq!(gdb.ask("Z1,2004,1"), "E1c");
    assert_eq!(gdb.ask("Z2,3000,1"), "E16");
    assert_eq!(gdb.ask("z0,2000,1"), "OK");
    // Outside the 1 MiB of RAM.
    assert_eq!(gdb.ask("m100000,4"), "E0e");
    assert_eq!(gdb.ask("mffffe,4"), "E0e");
    assert_eq!(gdb.ask("mffffc,4"), "00000000");
    // `spin` is `jmp $`: it runs until Ctrl-C, which must stop it (SIGINT), at the jmp.
    gdb.send("vCont;c");
    std::thread::sleep(Duration::from_millis(200));
    gdb.stream.write_all(&[0x03]).unwrap();
    assert_eq!(gdb.reply(), "T02thread:01;");
    assert_eq!(gdb.ask("p8"), "00100000", "still at the jmp $");
    // Ctrl-C again, after stepping: the step does not wait for it.
    assert_eq!(gdb.ask("vCont;s:1"), "T05thread:01;");
    gdb.send("k");
    let output = wait_output(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{} ({}):\n{stderr}", test, backend());
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_has(
        &stderr,
        "no breakpoint at 0x2004: hardware breakpoints: all 4 debug registers",
    );
    assert_has(
        &stderr,
        "no watchpoint at 0x3000: data watchpoints never fire",
    );
    assert_has(
        &stderr,
        "cannot read 4 bytes at 0x100000: not all of it is guest RAM",
    );
    assert_has(&stderr, "rawkvm: gdb killed the guest");
}

#[test]
fn bad_gdb_addresses_are_usage_errors() {
    let output = common::process::run(&["run", "hello", "--gdb", "gdb.sock"]);
    common::assert_fails(&output, 2, "write ./gdb.sock");
    let output = common::process::run(&["run", "hello", "--gdb", "/nonexistent-dir/x.sock"]);
    common::assert_fails(
        &output,
        2,
        "--gdb /nonexistent-dir/x.sock: cannot listen there",
    );
    let output = common::process::run(&["run", "smp", "--gdb", "127.0.0.1:0"]);
    common::assert_fails(&output, 2, "--gdb debugs one vCPU");
    let output = common::process::run(&["run", "hello", "--gdb", "127.0.0.1:0", "--step"]);
    common::assert_fails(&output, 2, "--gdb and --step are two debuggers");
}

#[test]
fn detaching_lets_the_guest_run_on_and_a_lost_gdb_stops_it() {
    let test = "detaching_lets_the_guest_run_on_and_a_lost_gdb_stops_it";
    if !kvm_present(test) {
        return;
    }
    let dir = ScratchDir::new("gdb-detach");
    let (child, socket) = start_on_socket(&dir, "detach.sock", "hello");
    let socket = socket.as_str();
    let mut gdb = Client::connect(socket);
    assert_eq!(gdb.ask("Z1,1016,1"), "OK");
    assert_eq!(gdb.ask("D"), "OK", "detach disarms the breakpoint too");
    let output = wait_output(child);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"Hello from real mode!\n");

    let (child, socket) = start_on_socket(&dir, "lost.sock", "hello");
    let socket = socket.as_str();
    let mut gdb = Client::connect(socket);
    assert_eq!(gdb.ask("QStartNoAckMode"), "OK");
    drop(gdb);
    let output = wait_output(child);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert_has(&stderr, "rawkvm: gdb went away; the guest is stopped");
    assert!(output.stdout.is_empty());
}

#[test]
fn real_gdb_debugs_a_long_mode_guest_as_x86_64() {
    let test = "real_gdb_debugs_a_long_mode_guest_as_x86_64";
    if !kvm_present(test) || !gdb_or_skip(test) {
        return;
    }
    let dir = ScratchDir::new("gdb-long");
    let (child, socket) = start_on_socket(&dir, "long.sock", "long_hello");
    let socket = socket.as_str();
    // long_hello: lea rsi,[rip+9] (0x1000, 7 bytes), call print_str (0x1007), HALT at
    // 0x100c, the message at 0x1010; print_str (0x1027) starts with push rax, push rsi.
    let commands = [
        "info registers rip cs rsp",
        "x/7xb 0x1000",
        "hbreak *0x1007",
        "continue",
        "stepi",
        "p/x $pc",
        "x/gx $rsp",
        "stepi",
        "p/x $pc",
        "stepi",
        "p/x $pc",
        "p/x $rsp",
        "set {char}0x1010 = 0x4a",
        "info registers",
        "delete",
        "continue",
    ];
    let transcript = gdb_for("i386:x86-64", socket, &commands);
    let output = wait_output(child);
    println!("{transcript}");
    assert_all(
        &transcript,
        &[
            "0x0000000000001000 in ?? ()",
            "rip            0x1000              0x1000",
            "cs             0x18                24",
            "rsp            0x100000            1048576",
        ],
    );
    assert_all(
        &transcript,
        &[
            "0x1000:\t0x48\t0x8d\t0x35\t0x09\t0x00\t0x00\t0x00",
            "Breakpoint 1, 0x0000000000001007 in ?? ()",
            "$1 = 0x1027",
            "0xffff8:\t0x000000000000100c",
            "$2 = 0x1028",
            "$3 = 0x1029",
            "$4 = 0xfffe8",
            "rsi            0x1010              4112",
            "rsp            0xfffe8             1048552",
            "r15            0x0                 0",
            "rip            0x1029              0x1029",
            "ss             0x20                32",
            "[Inferior 1 (Remote target) exited normally]",
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"Jello from long mode!\n");
}
