/*
 * mmkit live worker: one modelled process = one of these, driven over a
 * socket by mmkit/live (Python).  Compiled with gcc on first use.
 *
 * Modes
 *   worker serve FD TMPDIR CPU   the fork server (a child subreaper pinned to
 *                                CPU); every modelled process is forked from
 *                                it (spawn) or from another worker (fork)
 *   worker bench NPAGES REPS CPU print ns/page for first touch, fork, COW
 *                                fault and reuse fault, one "name value" line
 *                                each (medians of REPS)
 *   worker bench-thp NPAGES REPS CPU  the same for fork + COW of every 4 KiB
 *                                subpage of a region of 2 MiB THPs
 *
 * Protocol (SOCK_STREAM, strictly request/response, little endian):
 *   request  struct req  + len payload bytes; file descriptors ride on the
 *            first byte as SCM_RIGHTS
 *   reply    struct rsp  + len payload bytes; nfds descriptors likewise
 *   status 0 ok, 1 failed (err = errno), 2 signal (err = signo,
 *   r[0] = si_addr, r[1] = bytes done before the signal)
 *
 * io_uring rings are registered by the worker that owns the pages, then
 * taken over by the fork server (pidfd_getfd) so that a pin outlives its
 * process, as a device's pin would.
 *
 * Every store or load of a modelled page is bracketed by
 * getrusage(RUSAGE_THREAD) so that the reply says how many minor faults the
 * first access to each page took (0: the PTE allowed it; 1: a fault ran).
 * RUSAGE_THREAD keeps io_uring's worker threads out of the count.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL

enum {
	OP_PING = 0, OP_FORK = 1, OP_EXIT = 2, OP_MMAP = 3, OP_MUNMAP = 4,
	OP_MPROTECT = 5, OP_MADVISE = 6, OP_READ = 7, OP_WRITE = 8,
	OP_URING_PIN = 9, OP_URING_READ = 10, OP_URING_WRITE = 11,
	OP_URING_UNPIN = 12, OP_DIO_WRITE = 13, OP_DIO_READ = 14,
	OP_VMSPLICE = 15, OP_STORE_FAULTS = 16, OP_RING_ADOPT = 17,
	OP_CLOSE_FD = 18, OP_MREMAP = 19,
};

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

struct req {
	uint32_t op;
	uint32_t len;
	uint64_t a[4];
};

struct rsp {
	int32_t status;
	int32_t err;
	uint32_t len;
	uint32_t nfds;
	uint64_t r[4];
};

static void thp_restore(void);
static int chan = -1;		/* our socket to Python */
static const char *tmpdir = "/tmp";
static int dio_fd = -1;		/* O_TMPFILE|O_DIRECT file on TMPDIR (ext4) */
static int is_server;		/* the fork server (not a forked worker) */

static unsigned char *buf;	/* request / reply payload */
static size_t bufsz;

/* ---- faults and signals ------------------------------------------------ */

static sigjmp_buf access_env;
static volatile sig_atomic_t access_armed;
static volatile uintptr_t fault_addr;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (!access_armed) {		/* a bug in this worker: die loudly */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	access_armed = 0;
	fault_addr = (uintptr_t)si->si_addr;
	siglongjmp(access_env, sig);
}

static long minflt(void)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt;
}

/*
 * After fork every private page of this worker (stack, data, heap) is
 * write-protected.  Touch what the measured paths use so that no COW fault
 * of our own lands between two getrusage() calls.
 */
static void __attribute__((noinline)) warm_stack(void)
{
	volatile char pad[64 * 1024];

	memset((char *)pad, 0, sizeof(pad));
}

static void warm_up(void)
{
	warm_stack();
	if (buf)
		memset(buf, 0, bufsz);
	access_armed = 0;
	fault_addr = 0;
}

static int ensure_buf(size_t n)
{
	unsigned char *nb;

	if (n <= bufsz)
		return 0;
	nb = realloc(buf, n);
	if (!nb)
		return -1;
	/* fault the new part in now, never inside a measured access */
	memset(nb + bufsz, 0, n - bufsz);
	buf = nb;
	bufsz = n;
	return 0;
}

/* ---- io ----------------------------------------------------------------- */

static int read_full(int fd, void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = read(fd, (char *)p + done, n - done);

		if (r == 0)
			return -1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += r;
	}
	return 0;
}

static int write_full(int fd, const void *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += r;
	}
	return 0;
}

/* Receive a request header plus up to 2 descriptors; -1 on EOF. */
static int recv_req(struct req *q, int fds[2], int *nfds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { q, sizeof(*q) };
	struct msghdr mh = { 0 };
	struct cmsghdr *c;
	ssize_t r;

	*nfds = 0;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	do
		r = recvmsg(chan, &mh, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return -1;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			memcpy(fds + *nfds, CMSG_DATA(c), n * sizeof(int));
			*nfds += n;
		}
	}
	if ((size_t)r < sizeof(*q) && read_full(chan, (char *)q + r, sizeof(*q) - r))
		return -1;
	if (q->len > (256u << 20))
		return -1;
	if (ensure_buf(q->len ? q->len : 1))
		return -1;
	if (q->len && read_full(chan, buf, q->len))
		return -1;
	return 0;
}

static void send_rsp(struct rsp *s, const void *payload, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { s, sizeof(*s) };
	struct msghdr mh = { 0 };

	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	s->nfds = 0;
	if (fd >= 0) {
		struct cmsghdr *c;

		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
		s->nfds = 1;
	}
	if (sendmsg(chan, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(*s))
		_exit(3);
	if (s->len && write_full(chan, payload, s->len))
		_exit(3);
}

/* ---- user accesses ------------------------------------------------------ */

/*
 * Load (write == 0) or store the bytes [addr, addr+n) one page at a time.
 * The first access to each page is bracketed by getrusage(); the number of
 * minor faults it took goes to faults[i].  Returns 0, or the signal number
 * (SIGSEGV/SIGBUS) that stopped it, with *done = bytes completed.
 */
static int user_access(uintptr_t addr, unsigned char *data, size_t n, int write,
		       uint32_t *faults, size_t *done)
{
	volatile size_t pos = 0, page = 0;
	int sig;

	warm_stack();
	sig = sigsetjmp(access_env, 1);
	if (sig) {
		*done = pos;
		return sig;
	}
	access_armed = 1;
	while (pos < n) {
		uintptr_t a = addr + pos;
		size_t chunk = PAGE - (a & (PAGE - 1));
		long f0, f1;

		if (chunk > n - pos)
			chunk = n - pos;
		f0 = minflt();
		if (write)
			*(volatile unsigned char *)a = data[pos];
		else
			data[pos] = *(volatile unsigned char *)a;
		f1 = minflt();
		faults[page] = (uint32_t)(f1 - f0);
		if (write)
			memcpy((void *)(a + 1), data + pos + 1, chunk - 1);
		else
			memcpy(data + pos + 1, (void *)(a + 1), chunk - 1);
		pos += chunk;
		page++;
	}
	access_armed = 0;
	*done = pos;
	return 0;
}

static size_t pages_spanned(uintptr_t addr, size_t n)
{
	if (!n)
		return 0;
	return ((addr + n - 1) / PAGE) - (addr / PAGE) + 1;
}

/* ---- io_uring (raw syscalls) -------------------------------------------- */

#define MAX_RINGS 64

struct ring {
	int fd, scratch, used;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
	void *sq_ptr, *cq_ptr;
	size_t sq_sz, cq_sz, sqes_sz;
	uintptr_t addr;
	size_t len;
};

static struct ring rings[MAX_RINGS];

static void ring_unmap(struct ring *r)
{
	if (r->sqes)
		munmap(r->sqes, r->sqes_sz);
	if (r->cq_ptr && r->cq_ptr != r->sq_ptr)
		munmap(r->cq_ptr, r->cq_sz);
	if (r->sq_ptr)
		munmap(r->sq_ptr, r->sq_sz);
	if (r->fd >= 0)
		close(r->fd);
	if (r->scratch >= 0)
		close(r->scratch);
	memset(r, 0, sizeof(*r));
	r->fd = r->scratch = -1;
}

/*
 * Map the SQ/CQ rings of io_uring fd (set up by another process, whose
 * io_uring_setup() filled *p) and make a scratch memfd for fixed-buffer I/O.
 */
static int ring_map(struct ring *r, int fd, const struct io_uring_params *p)
{
	int e;

	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->scratch = -1;
	r->sq_sz = p->sq_off.array + p->sq_entries * sizeof(unsigned);
	r->cq_sz = p->cq_off.cqes + p->cq_entries * sizeof(struct io_uring_cqe);
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_sz > r->sq_sz)
			r->sq_sz = r->cq_sz;
		r->cq_sz = r->sq_sz;
	}
	r->sq_ptr = mmap(0, r->sq_sz, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	if (r->sq_ptr == MAP_FAILED)
		goto fail;
	if (p->features & IORING_FEAT_SINGLE_MMAP) {
		r->cq_ptr = r->sq_ptr;
	} else {
		r->cq_ptr = mmap(0, r->cq_sz, PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
		if (r->cq_ptr == MAP_FAILED)
			goto fail;
	}
	r->sqes_sz = p->sq_entries * sizeof(struct io_uring_sqe);
	r->sqes = mmap(0, r->sqes_sz, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		goto fail;
	r->sq_head = (unsigned *)((char *)r->sq_ptr + p->sq_off.head);
	r->sq_tail = (unsigned *)((char *)r->sq_ptr + p->sq_off.tail);
	r->sq_mask = (unsigned *)((char *)r->sq_ptr + p->sq_off.ring_mask);
	r->sq_array = (unsigned *)((char *)r->sq_ptr + p->sq_off.array);
	r->cq_head = (unsigned *)((char *)r->cq_ptr + p->cq_off.head);
	r->cq_tail = (unsigned *)((char *)r->cq_ptr + p->cq_off.tail);
	r->cq_mask = (unsigned *)((char *)r->cq_ptr + p->cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)((char *)r->cq_ptr + p->cq_off.cqes);
	r->scratch = memfd_create("mmkit-pin-scratch", MFD_CLOEXEC);
	if (r->scratch < 0)
		goto fail;
	r->used = 1;
	return 0;
fail:
	e = errno;
	if (r->sq_ptr == MAP_FAILED)
		r->sq_ptr = NULL;
	if (r->cq_ptr == MAP_FAILED)
		r->cq_ptr = NULL;
	if (r->sqes == MAP_FAILED)
		r->sqes = NULL;
	ring_unmap(r);
	return -e;
}

/* Submit one fixed-buffer read or write on the scratch memfd; res or -errno. */
static int ring_rw_fixed(struct ring *r, int opcode, uintptr_t addr, size_t len)
{
	unsigned tail = __atomic_load_n(r->sq_tail, __ATOMIC_ACQUIRE);
	unsigned idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];
	unsigned head;
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = opcode;
	sqe->fd = r->scratch;
	sqe->addr = addr;
	sqe->len = len;
	sqe->off = 0;
	sqe->buf_index = 0;
	r->sq_array[idx] = idx;
	__atomic_store_n(r->sq_tail, tail + 1, __ATOMIC_RELEASE);
	for (;;) {
		int rc = syscall(__NR_io_uring_enter, r->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);

		if (rc >= 0)
			break;
		if (errno != EINTR)
			return -errno;
	}
	head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
	while (head == __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE)) {
		int rc = syscall(__NR_io_uring_enter, r->fd, 0, 1, IORING_ENTER_GETEVENTS, NULL, 0);

		if (rc < 0 && errno != EINTR)
			return -errno;
	}
	res = r->cqes[head & *r->cq_mask].res;
	__atomic_store_n(r->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

/* ---- O_DIRECT ------------------------------------------------------------ */

static int dio_open(void)
{
	if (dio_fd >= 0)
		return 0;
	dio_fd = open(tmpdir, O_TMPFILE | O_RDWR | O_DIRECT | O_CLOEXEC, 0600);
	return dio_fd < 0 ? -errno : 0;
}

static int dio_set_direct(int on)
{
	int fl = fcntl(dio_fd, F_GETFL);

	if (fl < 0)
		return -errno;
	fl = on ? (fl | O_DIRECT) : (fl & ~O_DIRECT);
	return fcntl(dio_fd, F_SETFL, fl) < 0 ? -errno : 0;
}

/* ---- request handlers ----------------------------------------------------- */

static void reply_err(struct rsp *s, int e)
{
	s->status = 1;
	s->err = e;
}

static void do_access(struct req *q, struct rsp *s, int write, void **payload)
{
	uintptr_t addr = q->a[0];
	size_t n = write ? q->len : q->a[1];
	size_t np = pages_spanned(addr, n), done = 0;
	uint32_t *faults;
	unsigned char *data;
	int sig;

	/* payload: data (read) then one u32 fault count per page */
	if (ensure_buf(n + np * 4 + 1)) {
		reply_err(s, ENOMEM);
		return;
	}
	data = buf;
	faults = (uint32_t *)(buf + n);
	memset(faults, 0, np * 4);
	sig = user_access(addr, data, n, write, faults, &done);
	if (write) {
		memmove(buf, faults, np * 4);
		s->len = np * 4;
	} else {
		s->len = n + np * 4;
	}
	s->r[0] = np;
	*payload = buf;
	if (sig) {
		s->status = 2;
		s->err = sig;
		s->r[0] = fault_addr;
		s->r[1] = done;
		s->len = 0;
	}
}

static void do_store_faults(struct req *q, struct rsp *s)
{
	uint32_t f = 0;
	size_t done = 0;
	unsigned char b;
	int sig;

	/* read the byte, then store the same value back: data unchanged, but
	 * the store takes whatever fault the PTE asks for */
	sig = user_access(q->a[0], &b, 1, 0, &f, &done);
	if (!sig) {
		s->r[1] = f;
		sig = user_access(q->a[0], &b, 1, 1, &f, &done);
	}
	if (sig) {
		s->status = 2;
		s->err = sig;
		s->r[0] = fault_addr;
		return;
	}
	s->r[0] = f;
}

/*
 * In the worker that owns the pages: io_uring_setup() and
 * IORING_REGISTER_BUFFERS, a FOLL_PIN|FOLL_WRITE|FOLL_LONGTERM pin of
 * current->mm's pages.  Replies with the ring fd and the setup params; the
 * fork server then takes the ring over (OP_RING_ADOPT) so that the pin
 * outlives this process, as a device's would, and we close our fd.
 */
static void do_uring_pin(struct req *q, struct rsp *s, void **payload)
{
	static struct io_uring_params p;
	struct iovec iov = { (void *)q->a[0], q->a[1] * PAGE };
	int fd;

	memset(&p, 0, sizeof(p));
	fd = syscall(__NR_io_uring_setup, 4, &p);
	if (fd < 0) {
		reply_err(s, errno);
		return;
	}
	if (syscall(__NR_io_uring_register, fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0) {
		reply_err(s, errno);
		close(fd);
		return;
	}
	s->r[0] = fd;
	s->len = sizeof(p);
	*payload = &p;
}

/* In the fork server: pidfd_getfd() the ring of worker a[0] (fd a[1]). */
static void do_ring_adopt(struct req *q, struct rsp *s)
{
	struct io_uring_params p;
	int i, pidfd, fd, rc;

	if (q->len != sizeof(p)) {
		reply_err(s, EINVAL);
		return;
	}
	memcpy(&p, buf, sizeof(p));
	for (i = 0; i < MAX_RINGS && rings[i].used; i++)
		;
	if (i == MAX_RINGS) {
		reply_err(s, EMFILE);
		return;
	}
	pidfd = syscall(SYS_pidfd_open, (pid_t)q->a[0], 0);
	if (pidfd < 0) {
		reply_err(s, errno);
		return;
	}
	fd = syscall(SYS_pidfd_getfd, pidfd, (int)q->a[1], 0);
	rc = fd < 0 ? -errno : 0;
	close(pidfd);
	if (rc < 0) {
		reply_err(s, -rc);
		return;
	}
	rc = ring_map(&rings[i], fd, &p);
	if (rc < 0) {
		reply_err(s, -rc);
		return;
	}
	rings[i].addr = q->a[2];
	rings[i].len = q->a[3];
	s->r[0] = i;
}

static struct ring *ring_get(uint64_t id)
{
	if (id >= MAX_RINGS || !rings[id].used)
		return NULL;
	return &rings[id];
}

static void do_uring_read(struct req *q, struct rsp *s, void **payload)
{
	struct ring *r = ring_get(q->a[0]);
	size_t off = q->a[1], n = q->a[2];
	int res;

	if (!r) {
		reply_err(s, EBADF);
		return;
	}
	if (off + n > r->len || ensure_buf(n + 1)) {
		reply_err(s, EINVAL);
		return;
	}
	/* what the device sees: WRITE_FIXED copies from the pinned pages to the
	 * scratch memfd without looking at any page table */
	if (ftruncate(r->scratch, 0) < 0) {
		reply_err(s, errno);
		return;
	}
	res = ring_rw_fixed(r, IORING_OP_WRITE_FIXED, r->addr + off, n);
	if (res < 0) {
		reply_err(s, -res);
		return;
	}
	if (pread(r->scratch, buf, res, 0) != res) {
		reply_err(s, EIO);
		return;
	}
	s->len = res;
	*payload = buf;
}

static void do_uring_write(struct req *q, struct rsp *s)
{
	struct ring *r = ring_get(q->a[0]);
	size_t off = q->a[1], n = q->len;
	int res;

	if (!r) {
		reply_err(s, EBADF);
		return;
	}
	if (off + n > r->len) {
		reply_err(s, EINVAL);
		return;
	}
	/* what the device writes: READ_FIXED copies from the scratch memfd into
	 * the pinned pages */
	if (ftruncate(r->scratch, 0) < 0 || pwrite(r->scratch, buf, n, 0) != (ssize_t)n) {
		reply_err(s, errno ? errno : EIO);
		return;
	}
	res = ring_rw_fixed(r, IORING_OP_READ_FIXED, r->addr + off, n);
	if (res < 0)
		reply_err(s, -res);
	else
		s->r[0] = res;
}

static void do_uring_unpin(struct req *q, struct rsp *s)
{
	struct ring *r = ring_get(q->a[0]);

	if (!r) {
		reply_err(s, EBADF);
		return;
	}
	/* unregister explicitly: close() alone would unpin asynchronously */
	if (syscall(__NR_io_uring_register, r->fd, IORING_UNREGISTER_BUFFERS, NULL, 0) < 0) {
		int e = errno;

		ring_unmap(r);
		reply_err(s, e);
		return;
	}
	ring_unmap(r);
}

static void do_dio_write(struct req *q, struct rsp *s, void **payload)
{
	size_t len = q->a[1] * PAGE;
	ssize_t w;
	int rc = dio_open();

	if (rc < 0) {
		reply_err(s, -rc);
		return;
	}
	if (ensure_buf(len) || (rc = dio_set_direct(1)) < 0) {
		reply_err(s, rc < 0 ? -rc : ENOMEM);
		return;
	}
	/* a short-term FOLL_PIN without FOLL_WRITE, released before return */
	w = pwrite(dio_fd, (void *)q->a[0], len, 0);
	if (w < 0) {
		reply_err(s, errno);
		return;
	}
	if ((rc = dio_set_direct(0)) < 0 || pread(dio_fd, buf, w, 0) != w) {
		reply_err(s, rc < 0 ? -rc : EIO);
		return;
	}
	s->len = w;
	*payload = buf;
}

static void do_dio_read(struct req *q, struct rsp *s, void **payload)
{
	size_t len = q->a[1] * PAGE, done = 0;
	uint32_t *faults;
	ssize_t r;
	int rc = dio_open(), sig;

	if (rc < 0) {
		reply_err(s, -rc);
		return;
	}
	if (ensure_buf(len + q->a[1] * 4)) {
		reply_err(s, ENOMEM);
		return;
	}
	/* the device writes back what the pages hold: a plain load first */
	faults = (uint32_t *)(buf + len);
	sig = user_access(q->a[0], buf, len, 0, faults, &done);
	if (sig) {
		s->status = 2;
		s->err = sig;
		s->r[0] = fault_addr;
		return;
	}
	if ((rc = dio_set_direct(0)) < 0 || pwrite(dio_fd, buf, len, 0) != (ssize_t)len ||
	    fdatasync(dio_fd) < 0 || (rc = dio_set_direct(1)) < 0) {
		reply_err(s, rc < 0 ? -rc : errno);
		return;
	}
	/* a short-term FOLL_PIN|FOLL_WRITE, released before return */
	r = pread(dio_fd, (void *)q->a[0], len, 0);
	if (r < 0) {
		reply_err(s, errno);
		return;
	}
	s->r[0] = r;
	s->len = len;		/* what the device wrote */
	*payload = buf;
}

static void do_vmsplice(struct req *q, struct rsp *s, int *fd_out)
{
	uintptr_t addr = q->a[0];
	size_t n = q->a[1], done = 0;
	int p[2];
	long sz = 1 << 16;

	if (pipe2(p, O_CLOEXEC) < 0) {
		reply_err(s, errno);
		return;
	}
	while ((size_t)sz < n + PAGE)
		sz <<= 1;
	if (fcntl(p[1], F_SETPIPE_SZ, sz) < 0) {
		reply_err(s, errno);
		goto out;
	}
	/* vmsplice() without SPLICE_F_GIFT: FOLL_GET references in pipe buffers */
	while (done < n) {
		struct iovec iov = { (void *)(addr + done), n - done };
		ssize_t r = vmsplice(p[1], &iov, 1, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			reply_err(s, errno);
			goto out;
		}
		done += r;
	}
	s->r[0] = done;
	*fd_out = p[0];
	close(p[1]);
	return;
out:
	close(p[0]);
	close(p[1]);
}

static void do_fork(struct rsp *s, int newfd)
{
	pid_t pid;

	if (newfd < 0) {
		reply_err(s, EBADF);
		return;
	}
	pid = fork();
	if (pid < 0) {
		reply_err(s, errno);
		close(newfd);
		return;
	}
	if (pid == 0) {
		close(chan);
		chan = newfd;
		is_server = 0;
		signal(SIGTERM, SIG_DFL);
		warm_up();
		return;		/* the child serves on newfd; no reply to the parent's request */
	}
	close(newfd);
	warm_up();
	s->r[0] = pid;
}

static void serve(void)
{
	for (;;) {
		struct req q;
		struct rsp s;
		int fds[2], nfds, fd_out = -1, i, is_child = 0;
		void *payload = NULL;

		if (recv_req(&q, fds, &nfds)) {
			/* Python closed the socket (or died): go away; the fork
			 * server also removes the (empty) temp dir, in case
			 * Python could not */
			if (is_server) {
				thp_restore();
				rmdir(tmpdir);
			}
			_exit(0);
		}
		memset(&s, 0, sizeof(s));
		switch (q.op) {
		case OP_PING:
			s.r[0] = getpid();
			break;
		case OP_FORK: {
			pid_t me = getpid();

			do_fork(&s, nfds ? fds[0] : -1);
			if (nfds)
				fds[0] = -1;
			is_child = getpid() != me;
			break;
		}
		case OP_EXIT:
			send_rsp(&s, NULL, -1);
			_exit(0);
		case OP_MMAP: {
			int fd = nfds ? fds[0] : -1;
			void *a = mmap(NULL, q.a[0], (int)q.a[1], (int)q.a[2], fd, q.a[3]);

			if (a == MAP_FAILED)
				reply_err(&s, errno);
			else
				s.r[0] = (uintptr_t)a;
			break;
		}
		case OP_MUNMAP:
			if (munmap((void *)q.a[0], q.a[1]) < 0)
				reply_err(&s, errno);
			break;
		case OP_MREMAP: {
			/* a[0] addr, a[1] old_len, a[2] new_len, a[3] new_addr;
			 * the MREMAP_* flags come as an 8-byte payload */
			uint64_t flags = 0;
			void *r;

			if (q.len == sizeof(flags))
				memcpy(&flags, buf, sizeof(flags));
			r = mremap((void *)q.a[0], q.a[1], q.a[2], (int)flags, (void *)q.a[3]);
			if (r == MAP_FAILED)
				reply_err(&s, errno);
			else
				s.r[0] = (uintptr_t)r;
			break;
		}
		case OP_MPROTECT:
			if (mprotect((void *)q.a[0], q.a[1], (int)q.a[2]) < 0)
				reply_err(&s, errno);
			break;
		case OP_MADVISE:
			if (madvise((void *)q.a[0], q.a[1], (int)q.a[2]) < 0)
				reply_err(&s, errno);
			break;
		case OP_READ:
			do_access(&q, &s, 0, &payload);
			break;
		case OP_WRITE:
			do_access(&q, &s, 1, &payload);
			break;
		case OP_STORE_FAULTS:
			do_store_faults(&q, &s);
			break;
		case OP_URING_PIN:
			do_uring_pin(&q, &s, &payload);
			break;
		case OP_RING_ADOPT:
			do_ring_adopt(&q, &s);
			break;
		case OP_CLOSE_FD:
			if (close((int)q.a[0]) < 0)
				reply_err(&s, errno);
			break;
		case OP_URING_READ:
			do_uring_read(&q, &s, &payload);
			break;
		case OP_URING_WRITE:
			do_uring_write(&q, &s);
			break;
		case OP_URING_UNPIN:
			do_uring_unpin(&q, &s);
			break;
		case OP_DIO_WRITE:
			do_dio_write(&q, &s, &payload);
			break;
		case OP_DIO_READ:
			do_dio_read(&q, &s, &payload);
			break;
		case OP_VMSPLICE:
			do_vmsplice(&q, &s, &fd_out);
			break;
		default:
			reply_err(&s, ENOSYS);
		}
		for (i = 0; i < nfds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (is_child)
			continue;
		send_rsp(&s, payload, fd_out);
		if (fd_out >= 0)
			close(fd_out);
	}
}

/*
 * Write back the THP sysfs values Python listed in TMPDIR/thp-restore, one
 * "PATH\tVALUE\n" per line (mmkit/live/thp.py).  Python restores them
 * itself and removes the file; this covers a Python killed outright (we get
 * SIGTERM through PR_SET_PDEATHSIG).  Async-signal-safe calls only.
 */
static void thp_restore(void)
{
	static char path[4096], data[16384];
	size_t tl = strlen(tmpdir);
	const char *name = "/thp-restore";
	ssize_t n;
	int fd;
	char *p, *end;

	if (tl + strlen(name) + 1 > sizeof(path))
		return;
	memcpy(path, tmpdir, tl);
	memcpy(path + tl, name, strlen(name) + 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, data, sizeof(data) - 1);
	close(fd);
	if (n <= 0)
		return;
	data[n] = 0;
	for (p = data; p < data + n; p = end + 1) {
		char *tab = strchr(p, '\t');
		int sfd;

		end = strchr(p, '\n');
		if (!end || !tab || tab > end)
			break;
		*tab = 0;
		sfd = open(p, O_WRONLY | O_CLOEXEC);
		if (sfd >= 0) {
			if (write(sfd, tab + 1, end - tab - 1) < 0) {
				/* nothing more can be done from here */
			}
			close(sfd);
		}
	}
	unlink(path);
}

static void on_parent_death(int sig)
{
	(void)sig;
	thp_restore();
	rmdir(tmpdir);
	_exit(0);
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* ---- bench ---------------------------------------------------------------- */

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int bench(long npages, int reps)
{
	double touch[64], frk[64], cow[64], reuse[64];
	size_t len = npages * PAGE;

	if (reps > 64)
		reps = 64;
	signal(SIGCHLD, SIG_DFL);
	for (int r = 0; r < reps; r++) {
		int p[2];
		double t0, t1, child_ns = -1;
		pid_t pid;
		volatile char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED || pipe(p) < 0)
			return 1;
		madvise((void *)m, len, MADV_NOHUGEPAGE);
		t0 = now_ns();
		for (long i = 0; i < npages; i++)
			m[i * PAGE] = 1;
		touch[r] = (now_ns() - t0) / npages;
		t0 = now_ns();
		pid = fork();
		if (pid == 0) {
			double c0 = now_ns(), c;

			for (long i = 0; i < npages; i++)
				m[i * PAGE] = 2;	/* the parent still maps: copy */
			c = now_ns() - c0;
			if (write(p[1], &c, sizeof(c)) != sizeof(c))
				_exit(1);
			_exit(0);
		}
		t1 = now_ns();
		if (pid < 0)
			return 1;
		frk[r] = (t1 - t0) / npages;
		if (read(p[0], &child_ns, sizeof(child_ns)) != sizeof(child_ns))
			return 1;
		waitpid(pid, NULL, 0);
		cow[r] = child_ns / npages;
		t0 = now_ns();
		for (long i = 0; i < npages; i++)
			m[i * PAGE] = 3;	/* sole mapper again: reuse */
		reuse[r] = (now_ns() - t0) / npages;
		close(p[0]);
		close(p[1]);
		munmap((void *)m, len);
	}
	printf("first_touch %.3f\nfork %.3f\ncow_fault %.3f\nreuse_fault %.3f\n",
	       median(touch, reps), median(frk, reps), median(cow, reps), median(reuse, reps));
	return 0;
}

/* AnonHugePages of this process, in kB (smaps_rollup), or -1. */
static long anon_huge_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * fork + COW of every 4 KiB subpage of a region backed by 2 MiB THPs
 * (MADV_HUGEPAGE, 2 MiB aligned): the parent populates the region (one
 * huge page fault per 2 MiB), forks (copy_huge_pmd(): one PMD per 2 MiB),
 * and the child writes one byte of every 4 KiB page while the parent still
 * maps it: the first write to each THP splits the child's PMD
 * (do_huge_pmd_wp_page() -> __split_huge_pmd()) and copies 4 KiB, every
 * further subpage is a PTE-level COW of a shared large folio.
 * Prints thp_fork, thp_cow_fault and thp_fork_cow (ns per 4 KiB page,
 * medians), and thp_coverage: the share of the region that was PMD-mapped
 * before fork (1.0 when every 2 MiB got a THP).
 */
static int bench_thp(long npages, int reps)
{
	double frk[64], cow[64], both[64], cover = 0;
	size_t len = npages * PAGE, pmd = 2UL << 20;

	if (reps > 64)
		reps = 64;
	signal(SIGCHLD, SIG_DFL);
	for (int r = 0; r < reps; r++) {
		int p[2];
		double t0, t1, child_ns = -1;
		pid_t pid;
		long base_kb = anon_huge_kb(), kb;
		char *raw = mmap(NULL, len + pmd, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		volatile char *m;

		if (raw == MAP_FAILED || pipe(p) < 0)
			return 1;
		m = (volatile char *)(((uintptr_t)raw + pmd - 1) & ~(pmd - 1));
		if (madvise((void *)m, len, MADV_HUGEPAGE) < 0)
			return 1;
		for (long i = 0; i < npages; i++)
			m[i * PAGE] = 1;
		kb = anon_huge_kb();
		if (kb >= 0 && base_kb >= 0)
			cover = (double)(kb - base_kb) * 1024 / len;
		t0 = now_ns();
		pid = fork();
		if (pid == 0) {
			double c0 = now_ns(), c;

			for (long i = 0; i < npages; i++)
				m[i * PAGE] = 2;	/* the parent still maps: copy */
			c = now_ns() - c0;
			if (write(p[1], &c, sizeof(c)) != sizeof(c))
				_exit(1);
			_exit(0);
		}
		t1 = now_ns();
		if (pid < 0)
			return 1;
		frk[r] = (t1 - t0) / npages;
		if (read(p[0], &child_ns, sizeof(child_ns)) != sizeof(child_ns))
			return 1;
		waitpid(pid, NULL, 0);
		cow[r] = child_ns / npages;
		both[r] = frk[r] + cow[r];
		close(p[0]);
		close(p[1]);
		munmap(raw, len + pmd);
	}
	printf("thp_fork %.3f\nthp_cow_fault %.3f\nthp_fork_cow %.3f\nthp_coverage %.4f\n",
	       median(frk, reps), median(cow, reps), median(both, reps), cover);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { 0 };

	if (argc == 5 && !strcmp(argv[1], "bench")) {
		pin_cpu(atoi(argv[4]));
		return bench(atol(argv[2]), atoi(argv[3]));
	}
	if (argc == 5 && !strcmp(argv[1], "bench-thp")) {
		pin_cpu(atoi(argv[4]));
		return bench_thp(atol(argv[2]), atoi(argv[3]));
	}
	if (argc != 5 || strcmp(argv[1], "serve")) {
		fprintf(stderr, "usage: %s serve FD TMPDIR CPU | bench NPAGES REPS CPU | bench-thp NPAGES REPS CPU\n",
			argv[0]);
		return 2;
	}
	chan = atoi(argv[2]);
	tmpdir = argv[3];
	pin_cpu(atoi(argv[4]));
	/* the fork server dies with Python (removing its temp dir); workers
	 * notice EOF on their socket */
	is_server = 1;
	signal(SIGTERM, on_parent_death);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 0;
	/* orphans (a worker whose parent exited) come back to us and are reaped
	 * automatically: no zombies, nothing re-parented to init */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	if (ensure_buf(1 << 16))
		return 1;
	serve();
	return 0;
}
