# rawkvm guest: cpuid
# Runs CPUID leaf 0 and prints the vendor string, then leaf 1 and prints whether EDX bit 26 (SSE2) is set, in long mode at CPL 0; CPUID never exits (the kernel answers it from the table KVM_SET_CPUID2 gave).
# setup: mode=long
#
# Exits, in order:
#   20 × IO out port 0xe9 size 1 count 1 ("vendor " + the 12-byte vendor string + "\n")
#   10 × IO out port 0xe9 size 1 count 1 ("SSE2 yes\n" plus "\n" padding: see below)
#   HLT
# The lines are "vendor AuthenticAMD\n" (or GenuineIntel, ...; 12 NUL bytes if no CPUID table
# was set) and "SSE2 yes\n\n" or "SSE2 no\n\n\n" (each 10 bytes, so the exit count is fixed).

        .include "common64.inc"
_start:
        lea     rsi, [rip + vendor_label]
        call    print_str
        xor     eax, eax
        cpuid
        # The vendor is EBX, EDX, ECX, four bytes each, in that order.
        lea     rdi, [rip + vendor]
        mov     [rdi], ebx
        mov     [rdi + 4], edx
        mov     [rdi + 8], ecx
        mov     ecx, 12
1:      mov     al, [rdi]
        out     CONSOLE, al
        inc     rdi
        dec     ecx
        jnz     1b
        PUTC    '\n'
        mov     eax, 1
        cpuid
        lea     rsi, [rip + sse2_no]
        lea     rax, [rip + sse2_yes]
        bt      edx, 26
        cmovc   rsi, rax
        call    print_str
        HALT

vendor_label:
        .asciz  "vendor "
sse2_yes:
        .asciz  "SSE2 yes\n\n"
sse2_no:
        .asciz  "SSE2 no\n\n\n"

        .set    LIB64_PORT_CONSOLE, 1
        .include "lib64.inc"

        .data
vendor:
        .space  12
