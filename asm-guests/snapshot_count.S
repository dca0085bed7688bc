# rawkvm guest: snapshot_count
# Counts from 1 to N (N from the parameter block), printing each count as 4 hex digits and a newline; after count N/2 it writes that count to port 0xF5 (the snapshot port of `rawkvm run --snapshot-on-port 0xF5 PATH`), and at the end it prints a checksum carried in EDI, on the stack and in memory at GPA 0x20000 (4 hex digits each, ":"-separated), then halts.
# setup: param=16
#
# Exits, in order:
#   for each count i = 1..N: 5 × IO out port 0xe9 size 1 count 1 (i as 4 hex digits, "\n"); after i = N/2 also IO out port 0xf5 size 1 count 1 (data i & 0xff)
#   14 × IO out port 0xe9 size 1 count 1 (the checksums "XXXX:XXXX:XXXX\n", all equal)
#   HLT
# The checksum is the sum of (i * i) for i = 1..N, modulo 2^16: kept in EDI, in a word pushed on the stack before the loop, and at GPA 0x20000 (reached through ES = 0x2000), so a resumed guest prints it right only if registers, stack and memory all came back.

        .include "common.inc"
        .equ SNAPSHOT_PORT, 0xF5
_start:
        mov     bx, 0x2000
        mov     es, bx
        mov     word ptr es:[0], 0
        xor     edi, edi
        push    di                      # the stack copy of the checksum, at SS:SP
        mov     ebp, dword ptr [PARAM]
        shr     ebp, 1                  # the count after which the snapshot is pulled
        mov     esi, 1                  # i
1:      cmp     esi, dword ptr [PARAM]
        ja      3f
        mov     eax, esi
        mov     cx, 4
        call    print_hex
        PUTC    '\n'
        # checksum += i * i, in all three places
        mov     eax, esi
        imul    eax, esi
        add     di, ax
        add     es:[0], ax
        mov     bx, sp
        add     ss:[bx], ax
        cmp     esi, ebp
        jne     2f
        mov     eax, esi
        out     SNAPSHOT_PORT, al
2:      inc     esi
        jmp     1b
3:      mov     eax, edi
        mov     cx, 4
        call    print_hex
        PUTC    ':'
        pop     ax
        call    print_hex
        PUTC    ':'
        mov     ax, es:[0]
        call    print_hex
        PUTC    '\n'
        HALT

        .include "lib.inc"
