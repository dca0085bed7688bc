//! `rawkvm run --trace=chrome PATH`: the Chrome trace-event timeline parses as JSON and has,
//! per vCPU track, one `KVM_RUN` slice, one exit instant (with its decoded fields) and one
//! handling slice per exit.

mod common;

use common::json::{Json, parse};
use common::process::run;
use common::{ScratchDir, assert_fails, kvm_present};

/// The events of the timeline at `path`, after checking its outer shape.
fn events(path: &std::path::Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).expect("the timeline was written");
    let json = parse(&text).unwrap_or_else(|e| panic!("not JSON: {e}\n{text}"));
    let events = json.get("traceEvents").and_then(Json::as_array);
    events.expect("a traceEvents array").to_vec()
}

fn text<'a>(event: &'a Json, key: &str) -> &'a str {
    event.get(key).and_then(Json::as_str).unwrap_or("")
}

fn number(event: &Json, key: &str) -> f64 {
    match event.get(key) {
        Some(Json::Number(text)) => text.parse().unwrap(),
        other => panic!("{key} is not a number: {other:?} in {event:?}"),
    }
}

fn count(events: &[Json], phase: &str, name: &str, tid: u64) -> usize {
    events
        .iter()
        .filter(|e| text(e, "ph") == phase && text(e, "name") == name)
        .filter(|e| e.get("tid").and_then(Json::as_u64) == Some(tid))
        .count()
}

#[test]
fn hellos_45_exits_are_45_slices_and_45_instants_on_one_track() {
    if !kvm_present("hellos_45_exits_are_45_slices_and_45_instants_on_one_track") {
        return;
    }
    let dir = ScratchDir::new("timeline");
    let path = dir.join("hello.json");
    let output = run(&["run", "hello", "--trace=chrome", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"Hello from real mode!\n");
    assert!(output.stderr.is_empty(), "the timeline is not a text trace");
    let events = events(&path);
    let metadata: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| text(e, "ph") == "M")
        .map(|e| {
            (
                text(e, "name"),
                e.get("args").map_or("", |a| text(a, "name")),
            )
        })
        .collect();
    assert_eq!(
        metadata,
        [("process_name", "rawkvm"), ("thread_name", "vcpu0")]
    );
    assert_eq!(count(&events, "X", "KVM_RUN", 0), 45);
    assert_eq!(count(&events, "i", "KVM_EXIT_IO", 0), 44);
    assert_eq!(count(&events, "i", "KVM_EXIT_HLT", 0), 1);
    assert_eq!(count(&events, "X", "rawkvm", 0), 45);
    assert_eq!(events.len(), 2 + 3 * 45, "nothing else");
    // Each exit: its KVM_RUN slice, the instant where the slice ends, the handling slice
    // from there; the slices follow each other in time.
    let mut last_end = 0.0;
    for (n, triple) in events[2..].chunks(3).enumerate() {
        let (slice, instant, handling) = (&triple[0], &triple[1], &triple[2]);
        let seq = n as u64 + 1;
        for event in triple {
            let args = event.get("args").expect("args");
            assert_eq!(
                args.get("seq").and_then(Json::as_u64),
                Some(seq),
                "{event:?}"
            );
        }
        assert_eq!(text(slice, "name"), "KVM_RUN");
        assert_eq!(text(instant, "ph"), "i");
        assert_eq!(text(instant, "s"), "t", "a thread-scoped instant");
        assert_eq!(
            text(instant, "name"),
            text(slice.get("args").unwrap(), "exit")
        );
        let end = number(slice, "ts") + number(slice, "dur");
        assert!(
            number(slice, "ts") >= last_end,
            "slice {seq} starts after the last"
        );
        assert!(
            (number(instant, "ts") - end).abs() < 0.002,
            "{slice:?} {instant:?}"
        );
        assert_eq!(number(handling, "ts"), number(instant, "ts"));
        last_end = number(handling, "ts") + number(handling, "dur");
    }
    // The decoded fields, as --trace=json names them.
    let args = |i: usize| events[2 + 3 * i + 1].get("args").unwrap().clone();
    let first = args(0);
    assert_eq!(text(&first, "direction"), "in");
    assert_eq!(first.get("port").and_then(Json::as_u64), Some(0x3FD));
    assert_eq!(text(&first, "data"), "60");
    assert_eq!(first.get("claimed"), Some(&Json::Bool(true)));
    let second = args(1);
    assert_eq!(text(&second, "direction"), "out");
    assert_eq!(second.get("port").and_then(Json::as_u64), Some(0x3F8));
    assert_eq!(text(&second, "data"), "48", "'H'");
}

#[test]
fn every_vcpu_has_a_track_of_its_own() {
    if !kvm_present("every_vcpu_has_a_track_of_its_own") {
        return;
    }
    let dir = ScratchDir::new("timeline-smp");
    let path = dir.join("smp.json");
    let args = [
        "run",
        "smp",
        "--vcpus",
        "3",
        "--trace=chrome",
        path.to_str().unwrap(),
    ];
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0));
    let events = events(&path);
    for tid in 0..3 {
        let name = format!("vcpu{tid}");
        assert!(events.iter().any(|e| text(e, "name") == "thread_name"
            && e.get("tid").and_then(Json::as_u64) == Some(tid)
            && e.get("args").is_some_and(|a| text(a, "name") == name)));
        // One byte out, then hlt.
        assert_eq!(count(&events, "X", "KVM_RUN", tid), 2, "vcpu{tid}");
        assert_eq!(count(&events, "i", "KVM_EXIT_IO", tid), 1);
        assert_eq!(count(&events, "i", "KVM_EXIT_HLT", tid), 1);
    }
}

#[test]
fn a_timeline_needs_a_path_it_can_create() {
    let output = run(&["run", "hello", "--trace=chrome"]);
    assert_fails(&output, 2, "--trace=chrome needs a PATH to write");
    let output = run(&["run", "hello", "--trace=chrome", "/nonexistent-dir/t.json"]);
    assert_fails(
        &output,
        2,
        "--trace=chrome /nonexistent-dir/t.json: cannot create it",
    );
    // Opened as --trace-file is: never the guest image.
    let dir = ScratchDir::new("timeline-image");
    let image = dir.join("guest.bin");
    std::fs::write(&image, [0xF4]).unwrap();
    let image = image.to_str().unwrap();
    let output = run(&["run", "--image", image, "--trace=chrome", image]);
    assert_fails(&output, 2, "is the guest image");
    assert_eq!(std::fs::read(image).unwrap(), [0xF4], "untouched");
    let output = run(&["bench", "pio", "--trace=chrome", "/tmp/x.json"]);
    assert_fails(&output, 2, "--trace=chrome PATH is for rawkvm run");
}

#[test]
fn an_injected_interrupt_is_an_event_of_its_own() {
    if !kvm_present("an_injected_interrupt_is_an_event_of_its_own") {
        return;
    }
    let dir = ScratchDir::new("timeline-irq");
    let path = dir.join("irq.json");
    let output = run(&[
        "run",
        "irq_window",
        "--trace=chrome",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"irq 20\n");
    let events = events(&path);
    let at = |name: &str| events.iter().position(|e| text(e, "name") == name);
    let injected: Vec<&Json> = events
        .iter()
        .filter(|e| text(e, "name") == "KVM_INTERRUPT")
        .collect();
    assert_eq!(injected.len(), 1, "one vector injected");
    assert_eq!(text(injected[0], "ph"), "i");
    let vector = injected[0].get("args").and_then(|a| a.get("vector"));
    assert_eq!(vector.and_then(Json::as_u64), Some(0x20));
    // At the interrupt window, before the KVM_RUN that delivers it.
    let window = at("KVM_EXIT_IRQ_WINDOW_OPEN").expect("the window exit");
    let interrupt = at("KVM_INTERRUPT").unwrap();
    assert!(window < interrupt, "after the window opened");
    assert_eq!(text(&events[interrupt + 1], "name"), "KVM_RUN");
    assert!(number(&events[interrupt + 1], "ts") >= number(injected[0], "ts"));
}
