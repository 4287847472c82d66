/* Opening and closing the sprout device from the guest: doorbell access, the /dev/mem mappings of the
 * mailbox and the MMIO doorbell page, and the magic/ABI check. The only part of the library that makes
 * system calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sprout/guest.h"
#include "doorbell.h"

#define PAGE 4096u

/*
 * Map size bytes of guest-physical memory at gpa. The mailbox is RAM on the host side, so it is mapped
 * without O_SYNC (write-back; under shadow paging an uncached mapping would make every request and
 * response byte an uncached access); the doorbell page is mapped O_SYNC (uncached), as device memory.
 */
static void *map_phys(uint64_t gpa, size_t size, int extra_flags, struct sprout_err *err)
{
	int fd = open("/dev/mem", O_RDWR | O_CLOEXEC | extra_flags);
	if (fd < 0)
		return sprout_err_errno(err, -errno, "/dev/mem: open"), NULL;
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)gpa);
	int saved = errno;
	close(fd); /* the mapping keeps what it needs */
	if (p == MAP_FAILED)
		return sprout_err_errno(err, -saved, "/dev/mem: mmap of %zu bytes at 0x%llx", size,
					(unsigned long long)gpa),
		       NULL;
	return p;
}

static int pick_mode(int *use_mmio, struct sprout_err *err)
{
	const char *mode = getenv("SPROUT_DOORBELL");

	*use_mmio = 0;
	if (!mode || !*mode || strcmp(mode, "port") == 0)
		return 0;
	if (strcmp(mode, "mmio") == 0) {
		*use_mmio = 1;
		return 0;
	}
	return sprout_err_set(err, -EINVAL, "SPROUT_DOORBELL=\"%.32s\": expected \"port\" or \"mmio\"",
			      mode);
}

static int check_abi(struct sprout_guest *g)
{
	uint32_t magic = g->hdr->magic, host = g->hdr->host_abi;

	if (magic != SPROUT_MB_MAGIC)
		return sprout_err_set(&g->err, -EPROTO,
				      "mailbox at 0x%llx: magic 0x%08x, expected 0x%08x (no sprout device?)",
				      (unsigned long long)SPROUT_MAILBOX_GPA, magic, SPROUT_MB_MAGIC);
	if ((host >> 16) != SPROUT_ABI_MAJOR)
		return sprout_err_set(&g->err, -EPROTO,
				      "mailbox: host speaks ABI %u.%u, this library speaks %u.%u",
				      host >> 16, host & 0xffffu, SPROUT_ABI_MAJOR, SPROUT_ABI_MINOR);
	return 0;
}

int sprout_guest_open(struct sprout_guest *g)
{
	int use_mmio, rc;

	memset(g, 0, sizeof(*g));
	rc = pick_mode(&use_mmio, &g->err);
	if (rc < 0)
		return rc;
	if (!use_mmio) {
		rc = db_port_access();
		if (rc < 0)
			return sprout_err_errno(&g->err, rc, "doorbell port 0x%x: ioperm and iopl",
						SPROUT_DOORBELL_PORT);
	}

	void *mb = map_phys(SPROUT_MAILBOX_GPA, SPROUT_MAILBOX_SIZE, 0, &g->err);
	if (!mb)
		return g->err.code;
	if (use_mmio) {
		void *db = map_phys(SPROUT_DOORBELL_MMIO_GPA, SPROUT_DOORBELL_MMIO_SIZE, O_SYNC, &g->err);
		if (!db) {
			munmap(mb, SPROUT_MAILBOX_SIZE);
			return g->err.code;
		}
		g->mmio = db;
	}
	g->mb = mb;
	g->hdr = mb;

	/* Fault every page in now: after a snapshot restore a first touch would cost a guest fault. */
	for (size_t off = 0; off < SPROUT_MAILBOX_SIZE; off += PAGE)
		(void)*(volatile uint8_t *)(g->mb + off);

	rc = check_abi(g);
	if (rc < 0) {
		/* The host cannot read why from a mailbox it laid out differently; the code says it. */
		sprout_guest_ring(g, SPROUT_CMD_PANIC, SPROUT_PANIC_ABI);
		struct sprout_err keep = g->err;
		sprout_guest_close(g);
		g->err = keep;
		return rc;
	}
	return 0;
}

void sprout_guest_close(struct sprout_guest *g)
{
	if (g->mmio)
		munmap((void *)g->mmio, SPROUT_DOORBELL_MMIO_SIZE);
	if (g->mb)
		munmap(g->mb, SPROUT_MAILBOX_SIZE);
	g->mmio = NULL;
	g->mb = NULL;
	g->hdr = NULL;
}
