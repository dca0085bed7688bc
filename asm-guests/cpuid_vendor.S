# rawkvm guest: cpuid_vendor
# Executes CPUID leaf 0 and leaf 0x40000000 and prints the vendor string (EBX, EDX, ECX) and the hypervisor signature (EBX, ECX, EDX), one line each.
#
# Exits, in order:
#   12 × IO out port 0xe9 size 1 count 1 (the vendor string: "AuthenticAMD", or --cpuid-vendor)
#   IO out port 0xe9 size 1 count 1 ("\n")
#   12 × IO out port 0xe9 size 1 count 1 (the hypervisor signature: "rawkvmrawkvm")
#   IO out port 0xe9 size 1 count 1 ("\n")
#   HLT
# CPUID never exits: the kernel answers it from the table the VMM set with KVM_SET_CPUID2
# (a vCPU that never got one reads zeros: the strings would be twelve NUL bytes each).
# Output with rawkvm's defaults on an AMD host: "AuthenticAMD\nrawkvmrawkvm\n".

        .include "common.inc"

_start:
        # Leaf 0: EAX = highest leaf; the vendor string is EBX, EDX, ECX, in that order.
        xor     eax, eax
        cpuid
        mov     [text], ebx
        mov     [text + 4], edx
        mov     [text + 8], ecx
        call    print_text

        # Leaf 0x40000000, the hypervisor leaf: the signature is EBX, ECX, EDX.
        mov     eax, 0x40000000
        cpuid
        mov     [text], ebx
        mov     [text + 4], ecx
        mov     [text + 8], edx
        call    print_text
        HALT

# print_text: write the 12 bytes at `text` and a newline to the debug console (NULs too: the
# host sees exactly what CPUID returned).
print_text:
        mov     si, offset text
        mov     cx, 12
1:      mov     al, [si]
        out     CONSOLE, al
        inc     si
        loop    1b
        PUTC    '\n'
        ret

        # Twelve bytes for the string, outside the image so they start as whatever CPUID wrote.
        .equ text, 0x4000
