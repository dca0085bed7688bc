# rawkvm guest: msr_kernel
# Writes 0x0000123456789000 to IA32_KERNEL_GS_BASE (MSR 0xC0000102), which KVM handles in the kernel (no exit), reads it back and prints it, in long mode at CPL 0.
# setup: mode=long
#
# Exits, in order:
#   17 × IO out port 0xe9 size 1 count 1 ("0000123456789000\n": what RDMSR returned)
#   HLT
# The host can read the same value back after the run with KVM_GET_MSRS.

        .include "common64.inc"

        .equ KERNEL_GS_BASE, 0xC0000102

_start:
        mov     ecx, KERNEL_GS_BASE
        mov     edx, 0x00001234
        mov     eax, 0x56789000
        wrmsr
        xor     eax, eax
        xor     edx, edx
        rdmsr
        shl     rdx, 32
        or      rax, rdx
        call    print_hex64
        PUTC    '\n'
        HALT

        .set    LIB64_PORT_CONSOLE, 1
        .include "lib64.inc"
