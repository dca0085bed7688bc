# rawkvm guest: shutdown
# Calls SBI system reset (SRST) of type shutdown, or cold reboot when the parameter block holds 1: the run ends on KVM_EXIT_SYSTEM_EVENT.
# setup: param=0
#
# Exits, in order:
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0] (param 0: SRST shutdown, reason 0; the run ends with status 0)
# With param 1 the one exit is SYSTEM_EVENT type 2 (RESET) data [0] instead (status 6: rawkvm does not reboot).

        .include "riscv64/common.inc"
_start:
        li      t0, PARAM_BLOCK
        lwu     a0, 0(t0)
        # SBI_SRST_SHUTDOWN is 0 and SBI_SRST_COLD_REBOOT 1: the parameter is the reset type.
        SBI_RESET
