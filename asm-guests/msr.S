# rawkvm guest: msr
# Reads and then writes MSR 0xC0DE0001, which KVM does not know, so that with user-space MSR exits the VMM handles both; prints what RDMSR returned.
# setup: user-msr
#
# Exits, in order (VMM answers error = 0):
#   X86_RDMSR index 0xc0de0001 reason 2 (KVM_MSR_EXIT_REASON_UNKNOWN; the VMM puts the value in msr.data)
#   17 × IO out port 0xe9 size 1 count 1 (msr.data as 16 hex digits, then "\n")
#   X86_WRMSR index 0xc0de0001 reason 2 data 0x0123456789abcdef
#   3 × IO out port 0xe9 size 1 count 1 ("ok\n")
#   HLT
# If the VMM answers the RDMSR with error = 1, KVM injects #GP: the guest's handler prints "#GP\n"
# (4 exits) and halts. Without `user-msr`, KVM itself injects #GP: the same "#GP\n", no MSR exit.

        .include "common.inc"

        .equ UNKNOWN_MSR, 0xC0DE0001
        .equ VECTOR_GP, 13

_start:
        # Catch #GP (vector 13) with our own real-mode handler, in case the MSR is refused.
        SET_IVT VECTOR_GP, general_protection

        # RDMSR: ECX = MSR index; the value comes back in EDX:EAX. Store it and print it.
        mov     ecx, UNKNOWN_MSR
        rdmsr
        mov     [msr_value], eax
        mov     [msr_value + 4], edx
        mov     si, offset msr_value
        call    print_hex64
        PUTC    '\n'

        # WRMSR: ECX = index, EDX:EAX = the value to write.
        mov     ecx, UNKNOWN_MSR
        mov     edx, 0x01234567
        mov     eax, 0x89ABCDEF
        wrmsr

        # Both accesses went through: say so and stop.
        mov     si, offset ok_line
        call    print_str
        HALT

# general_protection: #GP handler. Reached if RDMSR or WRMSR is refused (by KVM, or by the VMM
# answering with msr.error = 1). It says so and ends the run instead of returning to the fault.
general_protection:
        mov     si, offset gp_line
        call    print_str
        HALT

ok_line:
        .asciz  "ok\n"
gp_line:
        .asciz  "#GP\n"

        .include "lib.inc"

        # Where the RDMSR result is kept for print_hex64 (low dword first, as in memory).
        .data
        .p2align 3
msr_value:
        .quad   0
