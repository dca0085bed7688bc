# rawkvm guest: spin
# Loops forever without ever leaving the guest (`j .`): for deadline, signal and kick tests.
#
# Exits, in order:
#   (none: the vCPU runs until the VMM stops it, e.g. with a signal and immediate_exit → KVM_RUN -1 EINTR)

        .include "riscv64/common.inc"
_start:
        # A jump to itself: no MMIO, no SBI call, so KVM never returns on its own.
        j       _start
