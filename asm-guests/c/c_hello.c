/* c_hello.c: the body of the c_hello guest (its start and header are in c_hello.S).
 *
 * A freestanding program: no libc, no system calls. It talks to rawkvm through two
 * memory-mapped registers, which work at any privilege level:
 *   0xD0000000  the MMIO console: every byte written goes to rawkvm's stdout;
 *   0xD0000008  the exit device: a 32-bit write of v ends the run (status 0 for v = 0, else 8).
 * `volatile` makes the compiler emit every store, in order.
 */

#define MMIO_CONSOLE ((volatile unsigned char *)0xD0000000UL)

/* A .bss array: rawkvm zeroes it when it loads the ELF (p_memsz beyond p_filesz). Global,
 * so the compiler cannot assume it is zero and must read it. */
unsigned long zeroed[64];
/* A .data value, so the image has a data segment with bytes in the file. */
int factor = 6;

static void put_str(const char *text)
{
    while (*text)
        *MMIO_CONSOLE = (unsigned char)*text++;
}

static void put_uint(unsigned long value)
{
    char digits[20];
    int count = 0;
    do {
        digits[count++] = (char)('0' + value % 10);
        value /= 10;
    } while (value && count < 20);
    while (count)
        *MMIO_CONSOLE = (unsigned char)digits[--count];
}

int main(void)
{
    unsigned long sum = 0;
    for (int i = 0; i < 64; i++)
        sum += zeroed[i];
    put_str("Hello from C at CPL 3!\n");
    put_str(sum == 0 ? "bss is zero\n" : "bss is NOT zero\n");
    put_uint((unsigned long)factor);
    put_str(" * 7 = ");
    put_uint((unsigned long)(factor * 7));
    put_str("\n");
    return 0;
}
