# rawkvm guest: c_hello
# A guest written in C (c_hello.c, this file is its start): prints a greeting, the sum of a zeroed .bss array and a computed line on the MMIO console at CPL 3, then ends through the exit device with main's return value.
# setup: mode=user
#
# Exits, in order (without coalescing):
#   46 × MMIO write gpa 0xd0000000 len 1 ("Hello from C at CPL 3!\n" then "bss is zero\n" then "6 * 7 = 42\n")
#   MMIO write gpa 0xd0000008 len 4 data [00 00 00 00] (the exit device: main returned 0)
# The image is an ELF executable: rawkvm loads its PT_LOAD segments (code at 0x1000, data and
# .bss at the next page, .bss zeroed) and enters at e_entry. Build your own with
#   gcc -m64 -ffreestanding -nostdlib -static -fno-pic -no-pie -T asm-guests/c/guest_c.ld \
#       -o my_guest asm-guests/c/c_hello.S my.c
# and run it with `rawkvm run --image my_guest` (an ELF64 image defaults to --mode long; add
# --mode user for CPL 3).

        .intel_syntax noprefix
        .code64
        .section .text.start, "ax"
        .globl  _start
_start:
        # RSP is at the top of RAM, 16-byte aligned: right for a call (the ABI wants RSP + 8
        # aligned at a function's entry, which the call's push of the return address gives).
        call    main
        # The exit device: a 32-bit write of main's return value ends the run.
        mov     edi, 0xD0000008
        mov     dword ptr [rdi], eax
1:      jmp     1b

        # No executable stack (ld warns without this note).
        .section .note.GNU-stack, "", @progbits
