# rawkvm guest: dirty_state
# Prints what it finds in MM0, XMM0, the MSRs IA32_SYSENTER_ESP (0x175) and IA32_KERNEL_GS_BASE (0xC0000102) and the debug registers DR0-DR3, as one line of hex, then writes a marker into each of them and halts: a machine restarted without its FPU, MSRs or debug registers prints the previous run's markers.
#
# Exits, in order:
#   163 × IO out port 0xe9 size 1 count 1 ("mm0 0000000000000000 xmm0 00000000000000000000000000000000 sysenter_esp 0000000000000000 kernel_gs_base 0000000000000000 dr0-3 00000000 00000000 00000000 00000000\n" on a fresh vCPU)
#   HLT
# CR0.EM and CR0.TS are cleared, CR0.MP and CR4.OSFXSR set first, so the MMX and SSE moves run
# (KVM's instruction emulator, which runs every real-mode instruction here, refuses SSE without
# OSFXSR). After a run the markers are 0BADC0DEFEEDFACE (MM0), 0123456789ABCDEF FEDCBA9876543210
# (XMM0), 000000005EE5E5E5 (SYSENTER_ESP), 00007FFF12345678 (KERNEL_GS_BASE, canonical) and
# D0D0D000 D1D1D100 D2D2D200 D3D3D300 (DR0-DR3; DR7 stays as it was, so no breakpoint is armed).
# `rawkvm run dirty_state --repeat 3` prints the fresh line three times; with
# `--restart-scope registers` (which restores none of these) runs 2 and 3 print the markers.

        .include "common.inc"

        .equ MSR_SYSENTER_ESP, 0x175
        .equ MSR_KERNEL_GS_BASE, 0xC0000102
        .equ CR4_OSFXSR, 0x200

_start:
        mov     eax, cr0
        and     eax, ~0x0C                      # EM (bit 2) and TS (bit 3) off
        or      eax, 0x02                       # MP on
        mov     cr0, eax
        mov     eax, cr4
        or      eax, CR4_OSFXSR
        mov     cr4, eax

        # Read everything first, print it, and only then dirty it.
        movq    [seen_mm0], mm0
        movdqu  [seen_xmm0], xmm0
        mov     ecx, MSR_SYSENTER_ESP
        rdmsr
        mov     [seen_sysenter_esp], eax
        mov     [seen_sysenter_esp + 4], edx
        mov     ecx, MSR_KERNEL_GS_BASE
        rdmsr
        mov     [seen_kernel_gs_base], eax
        mov     [seen_kernel_gs_base + 4], edx
        mov     eax, dr0
        mov     [seen_dr], eax
        mov     eax, dr1
        mov     [seen_dr + 4], eax
        mov     eax, dr2
        mov     [seen_dr + 8], eax
        mov     eax, dr3
        mov     [seen_dr + 12], eax

        mov     si, offset mm0_text
        call    print_str
        mov     si, offset seen_mm0
        call    print_hex64
        mov     si, offset xmm0_text
        call    print_str
        mov     si, offset seen_xmm0 + 8        # the high quadword first
        call    print_hex64
        mov     si, offset seen_xmm0
        call    print_hex64
        mov     si, offset sysenter_esp_text
        call    print_str
        mov     si, offset seen_sysenter_esp
        call    print_hex64
        mov     si, offset kernel_gs_base_text
        call    print_str
        mov     si, offset seen_kernel_gs_base
        call    print_hex64
        mov     si, offset dr_text
        call    print_str
        mov     bx, offset seen_dr
        mov     cx, 8
        mov     dx, 4
1:      mov     eax, [bx]
        call    print_hex
        add     bx, 4
        dec     dx
        jz      2f
        PUTC    ' '
        jmp     1b
2:      PUTC    '\n'

        # Now leave a marker in each, for the next run to find if nothing puts them back.
        movq    mm0, [marker_mm0]
        movdqu  xmm0, [marker_xmm0]
        mov     ecx, MSR_SYSENTER_ESP
        mov     edx, 0
        mov     eax, 0x5EE5E5E5
        wrmsr
        mov     ecx, MSR_KERNEL_GS_BASE
        mov     edx, 0x00007FFF
        mov     eax, 0x12345678
        wrmsr
        mov     eax, 0xD0D0D000
        mov     dr0, eax
        mov     eax, 0xD1D1D100
        mov     dr1, eax
        mov     eax, 0xD2D2D200
        mov     dr2, eax
        mov     eax, 0xD3D3D300
        mov     dr3, eax
        HALT

mm0_text:
        .asciz  "mm0 "
xmm0_text:
        .asciz  " xmm0 "
sysenter_esp_text:
        .asciz  " sysenter_esp "
kernel_gs_base_text:
        .asciz  " kernel_gs_base "
dr_text:
        .asciz  " dr0-3 "

        .include "lib.inc"

        .data
        .p2align 4
marker_xmm0:
        .quad   0xFEDCBA9876543210
        .quad   0x0123456789ABCDEF
seen_xmm0:
        .quad   0, 0
marker_mm0:
        .quad   0x0BADC0DEFEEDFACE
seen_mm0:
        .quad   0
seen_sysenter_esp:
        .quad   0
seen_kernel_gs_base:
        .quad   0
seen_dr:
        .long   0, 0, 0, 0
