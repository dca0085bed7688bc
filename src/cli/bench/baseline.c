/*
 * baseline.c: the C reference `rawkvm bench suite` measures rawkvm against.
 *
 * Written for rawkvm, not taken from anywhere: a minimal VMM on raw ioctls against
 * <linux/kvm.h>, running the same real-mode guests (rawkvm writes its embedded images to
 * files and passes one), taking the same steps as rawkvm's workloads, and printing the same
 * one-line key=value result. The harness compiles it with `cc -O2` at run time.
 *
 *   baseline WORKLOAD VARIANT COUNT IMAGE
 *
 *   pio, mmio  plain | valid-regs | get-regs   COUNT accesses (parameter block at 0xF00),
 *                                              timed from the first KVM_RUN to the HLT
 *   start      plain      COUNT cycles: create VM, 1 MiB RAM, image, vCPU, CPUID,
 *                         registers, run to HLT, destroy
 *   start-async reaper    the same, destroyed on a second thread in SCHED_IDLE (as rawkvm's
 *                         reaper); us_to_hlt is the median time from the start of a
 *                         creation to that VM's HLT
 *   restart    full | registers | ioctl   COUNT runs on one VM; after each, KVM_GET_DIRTY_LOG
 *                         and the dirty pages copied back, registers reset in kvm_run->s.regs
 *                         (full, registers) or with KVM_SET_SREGS + KVM_SET_REGS (ioctl).
 *                         Registers only, whatever the variant: no FPU, MSRs, debug
 *                         registers or events, so this is the ceiling for rawkvm's full
 *                         restart and the peer of its registers-only one
 *   console    coalesced | plain   COUNT bytes to port 0xE9 (console_loop)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define RAM_SIZE (1u << 20)
#define LOAD_ADDR 0x1000
#define PARAM_ADDR 0x0F00
#define CONSOLE_PORT 0xE9
#define RING_MAX ((PAGE - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio))
#define WARM_UP 10
#define QUEUE 16

static int kvm;
static size_t mmap_size;
static long ring_page;
static unsigned char image[0xF000];
static size_t image_len;

struct vm {
	int fd, vcpu;
	unsigned char *ram;
	struct kvm_run *run;
};

/* What the guest printed: kept the way rawkvm's console keeps it, thrown away at newlines. */
/* KVM_GET_SUPPORTED_CPUID, asked once (as rawkvm's Kvm does); every vCPU gets it. */
static struct kvm_cpuid2 *cpuid;

static unsigned char console[4096];
static size_t console_len;

static void die(const char *what)
{
	fprintf(stderr, "baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void console_put(unsigned char byte)
{
	console[console_len++] = byte;
	if (byte == '\n' || console_len == sizeof(console))
		console_len = 0;
}

static void vm_create(struct vm *vm, uint32_t slot_flags, uint32_t param)
{
	do
		vm->fd = ioctl(kvm, KVM_CREATE_VM, 0);
	while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0)
		die("KVM_CREATE_VM");
	vm->ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED)
		die("mmap RAM");
	struct kvm_userspace_memory_region region = {
		.slot = 0, .flags = slot_flags, .guest_phys_addr = 0,
		.memory_size = RAM_SIZE, .userspace_addr = (uint64_t)(uintptr_t)vm->ram,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	memcpy(vm->ram + LOAD_ADDR, image, image_len);
	if (param)
		memcpy(vm->ram + PARAM_ADDR, &param, sizeof(param));
	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		die("KVM_CREATE_VCPU");
	if (ioctl(vm->vcpu, KVM_SET_CPUID2, cpuid) < 0)
		die("KVM_SET_CPUID2");
	vm->run = mmap(NULL, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED)
		die("mmap kvm_run");
	struct kvm_sregs sregs;
	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	struct kvm_segment *segments[] = { &sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss };
	for (size_t i = 0; i < sizeof(segments) / sizeof(segments[0]); i++) {
		segments[i]->selector = 0;
		segments[i]->base = 0;
	}
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
	struct kvm_regs regs = { .rip = LOAD_ADDR, .rsp = PARAM_ADDR, .rflags = 2 };
	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
}

/* The teardown order of docs/ARCHITECTURE.md: unmap kvm_run, close the vCPU, close the VM,
   unmap RAM. */
static void vm_destroy(struct vm *vm)
{
	munmap(vm->run, mmap_size);
	close(vm->vcpu);
	close(vm->fd);
	munmap(vm->ram, RAM_SIZE);
}

static void ring_drain(struct vm *vm)
{
	struct kvm_coalesced_mmio_ring *ring = (void *)((char *)vm->run + ring_page * PAGE);
	uint32_t first = ring->first;
	while (first != __atomic_load_n(&ring->last, __ATOMIC_ACQUIRE)) {
		struct kvm_coalesced_mmio *entry = &ring->coalesced_mmio[first];
		if (entry->pio && entry->phys_addr == CONSOLE_PORT)
			console_put(entry->data[0]);
		first = (first + 1) % RING_MAX;
		__atomic_store_n(&ring->first, first, __ATOMIC_RELEASE);
	}
}

enum regs_read { READ_NONE, READ_IN_PLACE, READ_IOCTL };

/* KVM_RUN until HLT, answering like rawkvm's devices; returns the number of exits. */
static uint64_t run_to_hlt(struct vm *vm, int coalesced, enum regs_read read, uint64_t *rip_sum)
{
	struct kvm_run *run = vm->run;
	for (uint64_t exits = 1;; exits++) {
		if (ioctl(vm->vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			die("KVM_RUN");
		}
		if (coalesced)
			ring_drain(vm);
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			unsigned char *data = (unsigned char *)run + run->io.data_offset;
			size_t len = (size_t)run->io.size * run->io.count;
			if (run->io.direction == KVM_EXIT_IO_IN)
				memset(data, 0xFF, len);
			else if (run->io.port == CONSOLE_PORT)
				for (size_t i = 0; i < len; i += run->io.size)
					console_put(data[i]);
			break;
		}
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xFF, run->mmio.len);
			break;
		case KVM_EXIT_HLT:
			return exits;
		default:
			fprintf(stderr, "baseline: unexpected exit %u\n", run->exit_reason);
			exit(1);
		}
		if (read == READ_IN_PLACE) {
			*rip_sum += run->s.regs.regs.rip;
		} else if (read == READ_IOCTL) {
			struct kvm_regs regs;
			if (ioctl(vm->vcpu, KVM_GET_REGS, &regs) < 0)
				die("KVM_GET_REGS");
			*rip_sum += regs.rip;
		}
	}
}

static void exit_loop(const char *workload, const char *variant, uint32_t count, int coalesced)
{
	struct vm vm;
	vm_create(&vm, 0, count);
	enum regs_read read = READ_NONE;
	if (!strcmp(variant, "valid-regs")) {
		read = READ_IN_PLACE;
		vm.run->kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
	} else if (!strcmp(variant, "get-regs")) {
		read = READ_IOCTL;
	}
	if (coalesced) {
		struct kvm_coalesced_mmio_zone zone = { .addr = CONSOLE_PORT, .size = 1, .pio = 1 };
		if (ioctl(vm.fd, KVM_REGISTER_COALESCED_MMIO, &zone) < 0)
			die("KVM_REGISTER_COALESCED_MMIO");
	}
	uint64_t rip_sum = 0;
	uint64_t start = now_ns();
	uint64_t exits = run_to_hlt(&vm, coalesced, read, &rip_sum);
	uint64_t total = now_ns() - start;
	vm_destroy(&vm);
	if (!strcmp(workload, "console")) {
		double per = (double)total / (count ? count : 1);
		printf("console bytes=%u total_ns=%llu ns_per_byte=%.1f bytes_per_sec=%.0f variant=%s\n",
		       count, (unsigned long long)total, per, 1e9 / per, variant);
	} else {
		double per = (double)total / (double)exits;
		printf("%s exits=%llu total_ns=%llu ns_per_exit=%.1f exits_per_sec=%.0f variant=%s\n",
		       workload, (unsigned long long)exits, (unsigned long long)total, per, 1e9 / per,
		       variant);
	}
}

static void start_cycles(uint32_t count)
{
	uint64_t unused = 0, start = 0;
	for (uint32_t i = 0; i < count + WARM_UP; i++) {
		if (i == WARM_UP)
			start = now_ns();
		struct vm vm;
		vm_create(&vm, 0, 0);
		run_to_hlt(&vm, 0, READ_NONE, &unused);
		vm_destroy(&vm);
	}
	uint64_t total = now_ns() - start;
	printf("start vms=%u total_ns=%llu us_per_vm=%.1f variant=plain\n", count,
	       (unsigned long long)total, (double)total / count / 1e3);
}

/* start-async: a destroyer thread and a bounded queue, as rawkvm's reaper. */
static struct vm queue[QUEUE];
static unsigned queued_head, queued_tail;
static int queue_closed;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_changed = PTHREAD_COND_INITIALIZER;

static void *destroyer(void *unused)
{
	(void)unused;
	struct sched_param idle = { .sched_priority = 0 };
	sched_setscheduler(0, SCHED_IDLE, &idle); /* best effort, as in rawkvm */
	pthread_mutex_lock(&queue_lock);
	for (;;) {
		while (queued_head == queued_tail && !queue_closed)
			pthread_cond_wait(&queue_changed, &queue_lock);
		if (queued_head == queued_tail)
			break;
		struct vm vm = queue[queued_head++ % QUEUE];
		pthread_cond_broadcast(&queue_changed);
		pthread_mutex_unlock(&queue_lock);
		vm_destroy(&vm);
		pthread_mutex_lock(&queue_lock);
	}
	pthread_mutex_unlock(&queue_lock);
	return NULL;
}

static void destroy_in_background(struct vm *vm)
{
	pthread_mutex_lock(&queue_lock);
	while (queued_tail - queued_head == QUEUE)
		pthread_cond_wait(&queue_changed, &queue_lock);
	queue[queued_tail++ % QUEUE] = *vm;
	pthread_cond_broadcast(&queue_changed);
	pthread_mutex_unlock(&queue_lock);
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void start_async(uint32_t count)
{
	pthread_t thread;
	if (pthread_create(&thread, NULL, destroyer, NULL))
		die("pthread_create");
	uint64_t *to_hlt = calloc(count, sizeof(uint64_t)), unused = 0, start = 0;
	for (uint32_t i = 0; i < count + WARM_UP; i++) {
		if (i == WARM_UP)
			start = now_ns();
		uint64_t begin = now_ns();
		struct vm vm;
		vm_create(&vm, 0, 0);
		run_to_hlt(&vm, 0, READ_NONE, &unused);
		if (i >= WARM_UP)
			to_hlt[i - WARM_UP] = now_ns() - begin;
		destroy_in_background(&vm);
	}
	uint64_t total = now_ns() - start;
	pthread_mutex_lock(&queue_lock);
	queue_closed = 1;
	pthread_cond_broadcast(&queue_changed);
	pthread_mutex_unlock(&queue_lock);
	pthread_join(thread, NULL);
	qsort(to_hlt, count, sizeof(uint64_t), compare_u64);
	printf("start-async vms=%u total_ns=%llu us_per_vm=%.1f us_to_hlt=%.1f variant=reaper\n", count,
	       (unsigned long long)total, (double)total / count / 1e3, to_hlt[count / 2] / 1e3);
	free(to_hlt);
}

static void restart(const char *variant, uint32_t count)
{
	int sync_regs = strcmp(variant, "ioctl") != 0;
	struct vm vm;
	vm_create(&vm, KVM_MEM_LOG_DIRTY_PAGES, 0);
	uint64_t bitmap[RAM_SIZE / PAGE / 64];
	struct kvm_dirty_log log = { .slot = 0, .dirty_bitmap = bitmap };
	if (ioctl(vm.fd, KVM_GET_DIRTY_LOG, &log) < 0) /* arm the log */
		die("KVM_GET_DIRTY_LOG");
	unsigned char *pristine = malloc(RAM_SIZE);
	memcpy(pristine, vm.ram, RAM_SIZE);
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(vm.vcpu, KVM_GET_REGS, &regs) < 0 || ioctl(vm.vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_REGS/SREGS");
	uint64_t unused = 0, start = 0, dirty = 0;
	for (uint32_t i = 0; i < count + WARM_UP; i++) {
		if (i == WARM_UP) {
			start = now_ns();
			dirty = 0;
		}
		run_to_hlt(&vm, 0, READ_NONE, &unused);
		if (ioctl(vm.fd, KVM_GET_DIRTY_LOG, &log) < 0)
			die("KVM_GET_DIRTY_LOG");
		for (size_t word = 0; word < sizeof(bitmap) / sizeof(bitmap[0]); word++)
			for (uint64_t bits = bitmap[word]; bits; bits &= bits - 1) {
				size_t page = word * 64 + (size_t)__builtin_ctzll(bits);
				memcpy(vm.ram + page * PAGE, pristine + page * PAGE, PAGE);
				dirty++;
			}
		if (sync_regs) {
			vm.run->s.regs.regs = regs;
			vm.run->s.regs.sregs = sregs;
			vm.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		} else if (ioctl(vm.vcpu, KVM_SET_SREGS, &sregs) < 0 ||
			   ioctl(vm.vcpu, KVM_SET_REGS, &regs) < 0) {
			die("KVM_SET_SREGS/REGS");
		}
	}
	uint64_t total = now_ns() - start;
	vm_destroy(&vm);
	free(pristine);
	printf("restart runs=%u total_ns=%llu us_per_run=%.2f dirty_pages=%llu variant=%s\n", count,
	       (unsigned long long)total, (double)total / count / 1e3, (unsigned long long)dirty,
	       variant);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: baseline WORKLOAD VARIANT COUNT IMAGE\n");
		return 2;
	}
	const char *workload = argv[1], *variant = argv[2];
	uint32_t count = (uint32_t)strtoul(argv[3], NULL, 0);
	int image_fd = open(argv[4], O_RDONLY | O_CLOEXEC);
	if (image_fd < 0)
		die(argv[4]);
	ssize_t got = read(image_fd, image, sizeof(image));
	if (got <= 0)
		die("read image");
	image_len = (size_t)got;
	close(image_fd);
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	mmap_size = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	ring_page = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO);
	/* The supported CPUID table, doubling the room while the kernel says E2BIG. */
	for (uint32_t room = 128;; room *= 2) {
		cpuid = realloc(cpuid, sizeof(*cpuid) + room * sizeof(cpuid->entries[0]));
		if (!cpuid)
			die("realloc");
		cpuid->nent = room;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
			break;
		if (errno != E2BIG || room >= 4096)
			die("KVM_GET_SUPPORTED_CPUID");
	}
	if (count == 0) {
		fprintf(stderr, "baseline: COUNT must be at least 1\n");
		return 2;
	}

	if (!strcmp(workload, "pio") || !strcmp(workload, "mmio"))
		exit_loop(workload, variant, count, 0);
	else if (!strcmp(workload, "console"))
		exit_loop(workload, variant, count, !strcmp(variant, "coalesced") && ring_page > 0);
	else if (!strcmp(workload, "start"))
		start_cycles(count);
	else if (!strcmp(workload, "start-async"))
		start_async(count);
	else if (!strcmp(workload, "restart"))
		restart(variant, count);
	else {
		fprintf(stderr, "baseline: unknown workload %s\n", workload);
		return 2;
	}
	return 0;
}
