//! Every exit reason through the whole trace path, on synthetic `kvm_run` pages (no KVM
//! needed): text, JSON (which real parsers must accept), `--explain`, and the flight recorder.

mod common;

use common::json::{self, Json};
use rawkvm::bindings as abi;
use rawkvm::exit::GuardedBuffer;
use rawkvm::exit::RunPage;
use rawkvm::exit::{Exit, decode};
use rawkvm::run_loop::Observer;
use rawkvm::trace::{TraceFormat, TraceObserver, WatchOptions};

/// A page for `reason` with every payload byte non-zero, and the fields that are validated
/// set to valid values; text-hostile bytes (quotes, backslashes, control characters) in the
/// IO data.
fn page_for(reason: u32) -> GuardedBuffer {
    let mut buffer = GuardedBuffer::new(3 * 4096).unwrap();
    let bytes = buffer.bytes();
    bytes[8..12].copy_from_slice(&reason.to_le_bytes());
    for (offset, byte) in bytes.iter_mut().enumerate().take(288).skip(32) {
        *byte = (offset * 13 + 5) as u8;
    }
    let mut put =
        |offset: usize, value: &[u8]| bytes[offset..offset + value.len()].copy_from_slice(value);
    match reason {
        abi::KVM_EXIT_IO => {
            put(32, &[1, 1]); // out, size 1
            put(36, &8u32.to_le_bytes());
            put(40, &4096u64.to_le_bytes());
            put(4096, b"\"\\\n\x01\x7fA\xff ");
        }
        abi::KVM_EXIT_MMIO | abi::KVM_EXIT_LOONGARCH_IOCSR => put(48, &8u32.to_le_bytes()),
        abi::KVM_EXIT_INTERNAL_ERROR | abi::KVM_EXIT_SYSTEM_EVENT => put(36, &16u32.to_le_bytes()),
        abi::KVM_EXIT_FAIL_ENTRY => put(32, &0x8000_0021u64.to_le_bytes()),
        _ => {}
    }
    buffer
}

fn trace(options: WatchOptions, reasons: &[u32]) -> String {
    let mut observer = TraceObserver::new(options, Vec::new());
    for &reason in reasons {
        let mut page = page_for(reason);
        let exit = decode(RunPage::from_bytes(page.bytes()).unwrap()).unwrap();
        observer.before_run(0);
        observer.after_run(0);
        observer.exit(0, &exit, None);
    }
    observer.flush().unwrap();
    String::from_utf8(observer.into_sink()).unwrap()
}

fn all_reasons() -> Vec<u32> {
    abi::EXIT_REASONS
        .iter()
        .map(|&(nr, _)| nr)
        .chain([42, 1000, u32::MAX])
        .collect()
}

#[test]
fn every_reason_becomes_one_json_object_that_parsers_accept() {
    let reasons = all_reasons();
    let options = WatchOptions {
        trace: Some(TraceFormat::Json),
        explain: true,
        ..WatchOptions::default()
    };
    let text = trace(options, &reasons);
    let objects = json::parse_lines(&text);
    assert_eq!(objects.len(), reasons.len());
    for (object, &reason) in objects.iter().zip(&reasons) {
        assert_eq!(
            object.get("nr").and_then(Json::as_u64),
            Some(u64::from(reason))
        );
        let name = abi::exit_reason_name(reason).unwrap_or("unknown");
        assert_eq!(object.get("reason").and_then(Json::as_str), Some(name));
        let read = object.get("read").and_then(Json::as_array).unwrap();
        assert_eq!(
            read[0].get("name").and_then(Json::as_str),
            Some("exit_reason")
        );
        assert_eq!(read[0].get("offset").and_then(Json::as_u64), Some(8));
    }
    let io = &objects[abi::KVM_EXIT_IO as usize];
    assert_eq!(
        io.get("data").and_then(Json::as_str),
        Some("225c0a017f41ff20")
    );
    let fail = &objects[abi::KVM_EXIT_FAIL_ENTRY as usize];
    assert_eq!(
        fail.get("hardware_entry_failure_reason")
            .and_then(Json::as_u64),
        Some(0x8000_0021)
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(
        fail.get("hardware_entry_failure_reason_text")
            .and_then(Json::as_str),
        Some("VMX: VM-entry failure due to invalid guest state (33)")
    );
}

#[test]
fn every_reason_has_a_text_line_an_explanation_and_a_recorder_entry() {
    let reasons = all_reasons();
    let options = WatchOptions {
        trace: Some(TraceFormat::Text),
        explain: true,
        ..WatchOptions::default()
    };
    let text = trace(options, &reasons);
    let heads: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(heads.len(), reasons.len());
    let io = heads[abi::KVM_EXIT_IO as usize];
    assert!(
        io.contains(r#"data=225c0a017f41ff20 "\"\\\n..A. ""#),
        "printable bytes quoted, the rest as dots: {io}"
    );
    #[cfg(target_arch = "x86_64")]
    assert!(heads[abi::KVM_EXIT_FAIL_ENTRY as usize].contains(
        "hardware_entry_failure_reason=0x80000021 (VMX: VM-entry failure due to invalid guest \
         state (33)) cpu="
    ));
    assert!(heads[42].starts_with("#43 vcpu0 unknown(42)"));
    // Every exit is followed by its `read` line and its sentence.
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("    read  exit_reason @ +8 (4)"))
            .count(),
        reasons.len()
    );

    // With the recorder on and no trace, the ring formats the same lines later.
    let mut observer = TraceObserver::new(
        WatchOptions {
            flight_recorder: true,
            ..WatchOptions::default()
        },
        Vec::new(),
    );
    for &reason in &reasons {
        let mut page = page_for(reason);
        let exit: Exit<'_> = decode(RunPage::from_bytes(page.bytes()).unwrap()).unwrap();
        observer.exit(0, &exit, None);
    }
    let kept = observer.recorder().unwrap().lines();
    assert_eq!(kept.len(), 32);
    let untimed = |line: &str| line.rsplit_once(" run_ns=").unwrap().0.to_string();
    let expected: Vec<String> = heads[heads.len() - 32..]
        .iter()
        .map(|l| untimed(l))
        .collect();
    let got: Vec<String> = kept.iter().map(|l| untimed(l)).collect();
    assert_eq!(got, expected, "the recorder prints what the trace printed");
}

#[test]
fn the_recorder_keeps_the_length_of_data_it_cuts() {
    let mut page = page_for(abi::KVM_EXIT_IO);
    // `rep insb` of 1024 bytes: in, size 1, count 1024.
    page.bytes()[32..34].copy_from_slice(&[0, 1]);
    page.bytes()[36..40].copy_from_slice(&1024u32.to_le_bytes());
    let exit = decode(RunPage::from_bytes(page.bytes()).unwrap()).unwrap();
    let mut traced = TraceObserver::new(
        WatchOptions {
            trace: Some(TraceFormat::Text),
            ..WatchOptions::default()
        },
        Vec::new(),
    );
    traced.exit(0, &exit, None);
    let mut recorded = TraceObserver::new(
        WatchOptions {
            flight_recorder: true,
            ..WatchOptions::default()
        },
        Vec::new(),
    );
    recorded.exit(0, &exit, None);
    let line = String::from_utf8(traced.into_sink()).unwrap();
    assert!(line.contains("...(1024 bytes)"), "{line}");
    assert_eq!(recorded.recorder().unwrap().lines(), [line.trim_end()]);
}
