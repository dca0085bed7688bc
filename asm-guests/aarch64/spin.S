# rawkvm guest: spin
# Loops forever without ever leaving the guest (`b .`): for deadline, signal and kick tests.
#
# Exits, in order:
#   (none: the vCPU runs until the VMM stops it, e.g. with a signal and immediate_exit → KVM_RUN -1 EINTR)

        .include "aarch64/common.inc"
_start:
        // A branch to itself: no MMIO, no hypercall, so KVM never returns on its own.
        b       _start
