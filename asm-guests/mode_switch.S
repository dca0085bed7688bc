# rawkvm guest: mode_switch
# Starts in real mode and switches itself to 32-bit protected mode and then to 64-bit long mode, as an OS boot does, printing a line in each mode; needs the CPUID table set (KVM_SET_CPUID2), or `wrmsr EFER.LME` raises #GP.
# setup: mem=2M
#
# Exits, in order:
#   10 × IO out port 0xe9 size 1 count 1 ("real mode\n")
#   15 × IO out port 0xe9 size 1 count 1 ("protected mode\n")
#   10 × IO out port 0xe9 size 1 count 1 ("long mode\n")
#   HLT
# Its own GDT is in the image; its page tables (one 2 MiB page identity-mapping the first
# 2 MiB) are built at GPA 0x70000..0x73000. With no CPUID table, the `wrmsr` faults with no IDT:
# a triple fault (KVM_EXIT_SHUTDOWN) after "protected mode\n".

        .include "common.inc"

        .equ PML4_AT, 0x70000
        .equ PDPT_AT, 0x71000
        .equ PD_AT,   0x72000
        .equ EFER,    0xC0000080
        .equ EFER_LME, 1 << 8
        .equ CR0_PE,  1 << 0
        .equ CR0_PG,  1 << 31
        .equ CR4_PAE, 1 << 5

_start:
        cli
        mov     si, offset real_line
        call    print_str
        # Protected mode: load the GDT, set CR0.PE, far-jump to the 32-bit code segment.
        lgdt    [gdt_pointer]
        mov     eax, cr0
        or      eax, CR0_PE
        mov     cr0, eax
        # jmp far 0x08:protected (ptr16:32: an operand-size prefix in 16-bit code)
        .byte   0x66, 0xEA
        .long   protected
        .word   0x08

        .code32
protected:
        mov     ax, 0x10
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        mov     esi, offset protected_line
        call    print_str32
        # Page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD[0] = a 2 MiB page at 0 (P|RW|PS).
        mov     edi, PML4_AT
        xor     eax, eax
        mov     ecx, 3 * 4096 / 4
        rep stosd
        mov     dword ptr [PML4_AT], PDPT_AT | 3
        mov     dword ptr [PDPT_AT], PD_AT | 3
        mov     dword ptr [PD_AT], 0x83
        mov     eax, cr4
        or      eax, CR4_PAE
        mov     cr4, eax
        mov     eax, PML4_AT
        mov     cr3, eax
        # EFER.LME: #GP unless CPUID 0x80000001 EDX says LM (KVM checks the vCPU's table).
        mov     ecx, EFER
        rdmsr
        or      eax, EFER_LME
        wrmsr
        mov     eax, cr0
        or      eax, CR0_PG
        mov     cr0, eax
        # Now in compatibility mode; jmp far 0x18:long (64-bit code segment).
        .byte   0xEA
        .long   long
        .word   0x18

        .code64
long:
        lea     rsi, [rip + long_line]
1:      mov     al, [rsi]
        test    al, al
        jz      2f
        out     CONSOLE, al
        inc     rsi
        jmp     1b
2:
1:      cli
        hlt
        jmp     1b

        .code32
# print_str32: the NUL-terminated string at ESI to the debug console.
print_str32:
        mov     al, [esi]
        test    al, al
        jz      1f
        out     CONSOLE, al
        inc     esi
        jmp     print_str32
1:      ret

        .code16
real_line:
        .asciz  "real mode\n"
protected_line:
        .asciz  "protected mode\n"
long_line:
        .asciz  "long mode\n"

        .p2align 3
gdt:
        .quad   0                       # null
        .quad   0x00CF9B000000FFFF      # 0x08: 32-bit code, flat
        .quad   0x00CF93000000FFFF      # 0x10: data, flat
        .quad   0x00AF9B000000FFFF      # 0x18: 64-bit code
gdt_end:
gdt_pointer:
        .word   gdt_end - gdt - 1
        .long   gdt

        .include "lib.inc"
