# rawkvm guest: smp_fault
# vCPU 0 far-jumps to unbacked memory (an emulation failure) while every other vCPU loops forever: the first fault must stop the rest.
# setup: vcpus=4
#
# Exits, in order:
#   vCPU 0: INTERNAL_ERROR suberror 1 (KVM_INTERNAL_ERROR_EMULATION)
#   vCPU i > 0: none (they spin until the VMM stops them)
# A VMM that waits for every vCPU to halt never ends with this guest; one that stops the
# others at the first fault ends with vCPU 0's error.

        .include "common.inc"
_start:
        # The VMM puts the vCPU index in ESI: vCPU 0 faults, the others spin.
        test    esi, esi
        jz      fault
spin:
        jmp     spin
fault:
        # FFFF:0010 = GPA 0x100000, past the 1 MiB of RAM: KVM cannot fetch code there.
        jmp     HIGH_SEG:HIGH_OFF
