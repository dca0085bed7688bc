# rawkvm guest: shutdown
# Calls PSCI SYSTEM_OFF, or SYSTEM_RESET when the parameter block holds 1: the run ends on KVM_EXIT_SYSTEM_EVENT.
# setup: param=0
#
# Exits, in order:
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0] (param 0: SYSTEM_OFF; the run ends with status 0)
# With param 1 the one exit is SYSTEM_EVENT type 2 (RESET) data [0] instead (status 6: rawkvm does not reboot).

        .include "aarch64/common.inc"
_start:
        MOV32   x1, PARAM_BLOCK
        ldr     w1, [x1]
        cbnz    w1, reset
        PSCI    PSCI_SYSTEM_OFF
reset:
        PSCI    PSCI_SYSTEM_RESET
