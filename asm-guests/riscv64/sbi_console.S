# rawkvm guest: sbi_console
# Prints "SBI!" and a newline through rawkvm's SBI console (experimental extension 0x8000000, function 0), which KVM forwards to the VMM, checks each answer, then makes one call rawkvm does not implement and powers off if it was refused.
#
# Exits, in order:
#   5 × RISCV_SBI extension_id 0x8000000 function_id 0 args [the byte, ...] (rawkvm prints a0, answers ret [0, 0])
#   RISCV_SBI extension_id 0x8000000 function_id 1 (unclaimed: ret [-2 (SBI_ERR_NOT_SUPPORTED), 0])
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0]
# A wrong answer (a putchar not answered 0, the unknown call not refused) ends the run with a
# cold-reboot SRST instead: SYSTEM_EVENT type 2, status 6.
# KVM forwards the SBI experimental (0x08000000..0x08FFFFFF) and vendor ranges to user space;
# the legacy console putchar (extension 0x01), which rawkvm also answers, only reaches it on
# kernels built with CONFIG_RISCV_SBI_V01 (Debian's is not).

        .include "riscv64/common.inc"
_start:
        la      s0, message
next_byte:
        lbu     a0, 0(s0)
        beqz    a0, unknown_call
        li      a7, RAWKVM_SBI_CONSOLE
        li      a6, RAWKVM_SBI_CONSOLE_PUTCHAR
        ecall
        bnez    a0, failed
        addi    s0, s0, 1
        j       next_byte

unknown_call:
        li      a7, RAWKVM_SBI_CONSOLE
        li      a6, 1
        ecall
        li      t0, SBI_ERR_NOT_SUPPORTED
        bne     a0, t0, failed
        POWER_OFF

failed:
        li      a0, SBI_SRST_COLD_REBOOT
        SBI_RESET

message:
        .asciz  "SBI!\n"
