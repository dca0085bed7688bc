# rawkvm guest: compute
# Adds N, N-1, ..., 1 in a tight loop (N from the parameter block, 1000000000 if it is 0), then prints the 64-bit sum in hex on the MMIO console and ends through the exit device; at CPL 3 the loop runs natively.
# setup: mode=user
#
# Exits, in order (without coalescing):
#   17 × MMIO write gpa 0xd0000000 len 1 (the sum as 16 hex digits, then "\n")
#   MMIO write gpa 0xd0000008 len 4 data [00 00 00 00] (the exit device: status 0)
# The loop makes no exit. N = 1000000000 prints 06F05B59F17F6500. `rawkvm bench user` runs this
# same image in --mode user and in --mode long (CPL 0, emulated on PVM) and compares.

        .include "common64.inc"
_start:
        mov     ecx, dword ptr [PARAM]
        test    ecx, ecx
        jnz     1f
        mov     ecx, 1000000000
1:      xor     eax, eax
2:      add     rax, rcx                # the loop: add, dec, jnz
        dec     rcx
        jnz     2b
        call    print_hex64
        mov     edi, MMIO_CONSOLE
        mov     byte ptr [rdi], '\n'
        EXIT    0

        .include "lib64.inc"
