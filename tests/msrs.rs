//! MSRs and the TSC rate on the real `/dev/kvm`: the index lists, `KVM_GET_MSRS`/`KVM_SET_MSRS`
//! round trips and refusals naming the MSR, `rawkvm msrs --json`, `caps` showing the TSC rate,
//! and `run --tsc-khz` refused where the host cannot honour it.
#![cfg(target_arch = "x86_64")]

mod common;

use common::json::{self, Json};
use common::{assert_fails, backend, kvm_or_skip, process};
use rawkvm::arch::x86_64::msr::Msr;
use rawkvm::arch::x86_64::msr_names::{IA32_EFER, IA32_STAR, IA32_SYSENTER_CS, msr_name};
use rawkvm::bindings as abi;
use rawkvm::error::{CpuError, Error};

/// An MSR index no CPU defines.
const UNKNOWN_MSR: u32 = 0xC0DE_0001;

/// A VM and its vCPU 0, which has not run.
fn fresh_vcpu(kvm: &rawkvm::Kvm) -> (rawkvm::kvm::Vm, rawkvm::kvm::Vcpu) {
    let vm = kvm.create_vm().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    (vm, vcpu)
}

#[test]
fn the_index_lists_are_named() {
    let Some(kvm) = kvm_or_skip("the_index_lists_are_named") else {
        return;
    };
    let list = kvm.msr_index_list().unwrap();
    let features = kvm.feature_msr_index_list().unwrap();
    let unnamed: Vec<String> = list
        .iter()
        .chain(&features)
        .filter(|&&index| msr_name(index).is_none())
        .map(|index| format!("{index:#x}"))
        .collect();
    eprintln!(
        "backend {}: {} MSRs in the index list, {} feature MSRs, unnamed: {unnamed:?}",
        backend(),
        list.len(),
        features.len()
    );
    assert!(list.contains(&0x10) && list.contains(&IA32_SYSENTER_CS) && list.contains(&IA32_STAR));
    // Every MSR of the project's hosts has a name (another host may list MSRs rawkvm does not
    // name yet; it shows them as "-").
    if backend() == "kvm_pvm" {
        assert!(unnamed.is_empty(), "{unnamed:?}");
    }
    let values = kvm.feature_msrs(&features).unwrap();
    assert_eq!(values.iter().map(|m| m.index).collect::<Vec<_>>(), features);
}

#[test]
fn set_and_get_msrs_round_trip() {
    let Some(kvm) = kvm_or_skip("set_and_get_msrs_round_trip") else {
        return;
    };
    let (_vm, vcpu) = fresh_vcpu(&kvm);
    let written = [
        Msr::new(IA32_SYSENTER_CS, 0x10),
        Msr::new(IA32_STAR, 0x0023_0010_0000_0000),
    ];
    let before = vcpu.msrs(&[IA32_SYSENTER_CS, IA32_STAR]).unwrap();
    assert_eq!(before.iter().map(|m| m.value).collect::<Vec<_>>(), [0, 0]);
    vcpu.set_msrs(&written).unwrap();
    assert_eq!(vcpu.msrs(&[IA32_SYSENTER_CS, IA32_STAR]).unwrap(), written);
    assert_eq!(written[0].name(), Some("IA32_SYSENTER_CS"));
    // EFER is not in the index list, but KVM_GET_MSRS reads it: 0 in real mode.
    assert_eq!(vcpu.msrs(&[IA32_EFER]).unwrap()[0].value, 0);
}

#[test]
fn a_refused_msr_is_named() {
    let Some(kvm) = kvm_or_skip("a_refused_msr_is_named") else {
        return;
    };
    let (_vm, vcpu) = fresh_vcpu(&kvm);
    let msrs = [Msr::new(IA32_SYSENTER_CS, 0x18), Msr::new(UNKNOWN_MSR, 1)];
    let error = vcpu.set_msrs(&msrs).unwrap_err();
    match &error {
        Error::Cpu(CpuError::MsrRefused {
            ioctl: "KVM_SET_MSRS",
            vcpu: Some(0),
            index: UNKNOWN_MSR,
            name: None,
            done: 1,
            asked: 2,
        }) => {}
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("refused MSR 0xc0de0001"), "{message}");
    assert_eq!(error.kind(), rawkvm::error::ErrorKind::Setup);
    // The ones before it were written.
    assert_eq!(vcpu.msrs(&[IA32_SYSENTER_CS]).unwrap()[0].value, 0x18);
    match vcpu.msrs(&[IA32_STAR, UNKNOWN_MSR, IA32_SYSENTER_CS]) {
        Err(Error::Cpu(CpuError::MsrRefused {
            ioctl: "KVM_GET_MSRS",
            index: UNKNOWN_MSR,
            done: 1,
            asked: 3,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // A known MSR given a value it cannot hold is refused by name: EFER with reserved bit 63.
    let bad_efer = [Msr::new(IA32_EFER, 1 << 63)];
    let message = vcpu.set_msrs(&bad_efer).unwrap_err().to_string();
    assert!(message.contains("0xc0000080 (IA32_EFER)"), "{message}");
}

#[test]
fn msrs_json_lists_the_index_list_and_efer() {
    let Some(kvm) = kvm_or_skip("msrs_json_lists_the_index_list_and_efer") else {
        return;
    };
    let output = process::run(&["msrs", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    json::python_parses(&text);
    let report = json::parse(&text).unwrap();
    let rows = |key: &str| report.get(key).and_then(Json::as_array).unwrap().to_vec();
    let msrs = rows("msrs");
    let list = kvm.msr_index_list().unwrap();
    let indices: Vec<u64> = msrs
        .iter()
        .filter_map(|m| m.get("index")?.as_u64())
        .collect();
    assert_eq!(
        indices,
        list.iter().map(|&i| u64::from(i)).collect::<Vec<_>>()
    );
    let named = |rows: &[Json], name: &str| {
        rows.iter()
            .find(|m| m.get("name").and_then(Json::as_str) == Some(name))
            .cloned()
    };
    let sysenter = named(&msrs, "IA32_SYSENTER_CS").expect("SYSENTER_CS listed");
    assert_eq!(sysenter.get("value").and_then(Json::as_u64), Some(0));
    let features = rows("feature_msrs");
    assert_eq!(features.len(), kvm.feature_msr_index_list().unwrap().len());
    let others = rows("other_msrs");
    let efer = named(&others, "IA32_EFER")
        .or_else(|| named(&msrs, "IA32_EFER"))
        .expect("EFER listed");
    assert_eq!(efer.get("index").and_then(Json::as_u64), Some(0xc000_0080));
    assert_eq!(efer.get("value").and_then(Json::as_u64), Some(0));
    let apic_base = named(&others, "IA32_APIC_BASE").expect("APIC_BASE listed");
    // 0xFEE00000, enabled (bit 11), bootstrap processor (bit 8).
    assert_eq!(
        apic_base.get("value").and_then(Json::as_u64),
        Some(0xfee0_0900)
    );
}

#[test]
fn caps_shows_the_tsc_rate() {
    let Some(kvm) = kvm_or_skip("caps_shows_the_tsc_rate") else {
        return;
    };
    let khz = fresh_vcpu(&kvm).1.tsc_khz().unwrap();
    assert!(khz > 0);
    let output = process::run(&["caps", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report = json::parse(&String::from_utf8(output.stdout).unwrap()).unwrap();
    assert_eq!(
        report.get("tsc_khz").and_then(Json::as_u64),
        Some(u64::from(khz))
    );
    let text = String::from_utf8(process::run(&["caps"]).stdout).unwrap();
    assert!(
        text.contains(&format!("TSC rate          {khz} kHz")),
        "{text}"
    );
}

#[test]
fn a_tsc_rate_the_host_cannot_give_is_refused() {
    let Some(kvm) = kvm_or_skip("a_tsc_rate_the_host_cannot_give_is_refused") else {
        return;
    };
    let khz = fresh_vcpu(&kvm).1.tsc_khz().unwrap();
    let scaling = kvm.check_extension(abi::KVM_CAP_TSC_CONTROL) > 0;
    eprintln!(
        "backend {}: TSC {khz} kHz, TSC scaling {scaling}",
        backend()
    );
    // The host's own rate is always honoured.
    let output = process::run(&["run", "hlt", "--tsc-khz", &khz.to_string()]);
    assert_eq!(output.status.code(), Some(0));
    let lower = (khz / 2).to_string();
    let higher = (u64::from(khz) * 2).to_string();
    let (lower, higher) = (
        process::run(&["run", "hlt", "--tsc-khz", &lower]),
        process::run(&["run", "hlt", "--tsc-khz", &higher]),
    );
    if scaling {
        // VMX/SVM with TSC scaling: both rates are applied.
        assert_eq!(lower.status.code(), Some(0));
        assert_eq!(higher.status.code(), Some(0));
        return;
    }
    // No scaling (PVM): lower is the kernel's EINVAL, higher is accepted and ignored.
    assert_fails(&lower, 5, "KVM_SET_TSC_KHZ");
    assert_fails(&lower, 5, "EINVAL");
    assert_fails(&lower, 5, &format!("only at the host's {khz} kHz"));
    assert_fails(&higher, 5, "accepted but cannot take effect");
    assert_fails(&higher, 5, &format!("keeps the host's {khz} kHz"));
    let zero = process::run(&["run", "hlt", "--tsc-khz", "0"]);
    assert_fails(&zero, 2, "--tsc-khz 0");
}
