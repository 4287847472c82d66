/* _sprout: the CPython extension through which the Python runtime shim (sprout_shim.py) speaks the
 * sprout device protocol, with the guest library, from guest user mode. Plus the pre-READY work
 * that keeps a clone's invocations free of system calls and page faults (docs/python.md). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "sprout/guest.h"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older headers lack the names */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define PAGE 4096u
/* glibc's ceiling for M_MMAP_THRESHOLD on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX). */
#define MMAP_THRESHOLD_MAX ((size_t)32 << 20)
/* Mappings larger than this are address-space reservations, not working memory: never populated. */
#define POPULATE_MAX ((size_t)256 << 20)

static struct sprout_guest guest;
static int guest_is_open;
static PyObject *identity_hook; /* the shim's PRNG re-seed callable, or NULL */
static PyObject *warmup_hook;   /* the shim's warm-up callable, or NULL */

/* ---- pymalloc arenas from the C heap ----
 * CPython takes its small-object arenas (1 MiB) straight from mmap and gives an empty one back
 * with munmap. In a clone either is a system call, and a new arena's pages are first-touch guest
 * page faults (2-4.5 ms each on a PVM host). Arenas taken from malloc instead come out of a heap
 * that never shrinks (M_TRIM_THRESHOLD below) and was grown and touched before READY
 * (warm_heap), so a clone reuses pages the base already faulted in. */

#define ARENAS_MAX 4096 /* 4 GiB of arenas: more than any guest has RAM */

static PyObjectArenaAllocator prev_arenas;
static void *our_arenas[ARENAS_MAX];
static size_t n_our_arenas;

static void *arena_alloc(void *ctx, size_t size)
{
        (void)ctx;
        if (n_our_arenas == ARENAS_MAX)
                return prev_arenas.alloc(prev_arenas.ctx, size);
        void *p = malloc(size);
        if (p)
                our_arenas[n_our_arenas++] = p;
        return p;
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
        (void)ctx;
        /* Arenas made before the switch came from mmap and go back the way they came. */
        for (size_t i = 0; i < n_our_arenas; i++) {
                if (our_arenas[i] == ptr) {
                        our_arenas[i] = our_arenas[--n_our_arenas];
                        free(ptr);
                        return;
                }
        }
        prev_arenas.free(prev_arenas.ctx, ptr, size);
}

static void heap_settings(void)
{
        /* A heap that shrinks must grow again later: brk, and fresh pages to fault in. */
        mallopt(M_TRIM_THRESHOLD, INT_MAX);
        /* Large blocks (big responses, captured output) from the heap as well, not from fresh
         * mmaps: those are system calls and untouched pages every time. */
        mallopt(M_MMAP_THRESHOLD, (int)MMAP_THRESHOLD_MAX);

        PyObjectArenaAllocator ours = {.ctx = NULL, .alloc = arena_alloc, .free = arena_free};
        PyObject_GetArenaAllocator(&prev_arenas);
        PyObject_SetArenaAllocator(&ours);
}

/* ---- the identity hook ---- */

/* Called by the guest library inside sprout_guest_ready/done when a clone first runs. The GIL is
 * held: we are inside _sprout.ready()/done(). An exception from the hook stays set; the caller
 * raises it, so a clone whose PRNG could not be re-seeded never serves. */
static void call_identity_hook(void *ctx, const uint8_t *entropy, size_t len)
{
        (void)ctx;
        if (!identity_hook || PyErr_Occurred())
                return;
        PyObject *b = PyBytes_FromStringAndSize((const char *)entropy, (Py_ssize_t)len);
        if (!b)
                return;
        PyObject *r = PyObject_CallOneArg(identity_hook, b);
        /* Wipe our copy unless the hook kept a reference (bytes are immutable to everyone else). */
        if (Py_REFCNT(b) == 1)
                explicit_bzero(PyBytes_AS_STRING(b), len);
        Py_DECREF(b);
        Py_XDECREF(r);
}

/* ---- the warm-up hook ---- */

/* Called by the guest library inside sprout_guest_ready/done for a warm-up request (ABI 1.3), with
 * the GIL held. A warm-up is only an optimization: an exception from the hook is reported to the
 * log and cleared, never raised into the serving loop. An identity hook's exception (already set)
 * is left alone for the caller to raise. */
static void call_warmup_hook(void *ctx)
{
        (void)ctx;
        if (!warmup_hook || PyErr_Occurred())
                return;
        PyObject *r = PyObject_CallNoArgs(warmup_hook);
        if (r) {
                Py_DECREF(r);
                return;
        }
        PyErr_Clear();
        static const char msg[] = "sprout python: the warm-up hook raised (ignored)";
        sprout_guest_log(&guest, msg, sizeof(msg) - 1);
}

/* ---- module functions ---- */

/* OSError(errno, "sprout: reason"), from a negative errno and the library's message. */
static PyObject *raise_os(int rc, const char *why)
{
        PyObject *args = Py_BuildValue("(is)", -rc, why);
        if (args) {
                PyErr_SetObject(PyExc_OSError, args);
                Py_DECREF(args);
        }
        return NULL;
}

static PyObject *need_open(void)
{
        PyErr_SetString(PyExc_RuntimeError,
                        "_sprout: the device is not open (call _sprout.open())");
        return NULL;
}

/* After a ring that hands back a request: the identity step's error, the hook's exception, or the
 * request as bytes. */
static PyObject *after_ring(int rc)
{
        if (PyErr_Occurred())
                return NULL;
        if (rc < 0)
                return raise_os(rc, guest.err.msg);
        const void *req;
        uint32_t len;
        sprout_guest_request(&guest, &req, &len);
        return PyBytes_FromStringAndSize(req, (Py_ssize_t)len);
}

static PyObject *sp_open(PyObject *self, PyObject *unused)
{
        (void)self;
        (void)unused;
        if (guest_is_open)
                Py_RETURN_NONE;
        int rc = sprout_guest_open(&guest);
        if (rc < 0)
                return raise_os(rc, guest.err.msg);
        guest_is_open = 1;
        sprout_guest_on_identity(&guest, call_identity_hook, NULL);
        sprout_guest_on_warmup(&guest, call_warmup_hook, NULL);
        Py_RETURN_NONE;
}

static PyObject *sp_ready(PyObject *self, PyObject *unused)
{
        (void)self;
        (void)unused;
        if (!guest_is_open)
                return need_open();
        return after_ring(sprout_guest_ready(&guest));
}

static PyObject *sp_done(PyObject *self, PyObject *arg)
{
        (void)self;
        if (!guest_is_open)
                return need_open();
        Py_buffer view;
        /* "s*": a str as its UTF-8 (no copy for ASCII), or any bytes-like object. */
        if (!PyArg_Parse(arg, "s*", &view))
                return NULL;
        uint32_t cap;
        void *out = sprout_guest_response_buf(&guest, &cap);
        if ((size_t)view.len > cap) {
                PyErr_Format(PyExc_ValueError,
                             "_sprout.done: a %zd-byte response does not fit the %u-byte response "
                             "area",
                             view.len, cap);
                PyBuffer_Release(&view);
                return NULL;
        }
        memcpy(out, view.buf, (size_t)view.len);
        uint32_t len = (uint32_t)view.len;
        PyBuffer_Release(&view);
        return after_ring(sprout_guest_done(&guest, len));
}

static PyObject *sp_log(PyObject *self, PyObject *arg)
{
        (void)self;
        if (!guest_is_open)
                return need_open();
        Py_buffer view;
        if (!PyArg_Parse(arg, "s*", &view))
                return NULL;
        /* One LOG ring per log area's worth (each is one exit), nothing dropped. A ring ends at
         * the last newline that fits when there is one: the VMM ends every LOG with a line break
         * and a prefix, which would otherwise split a line of the handler's output in two. */
        const char *p = view.buf;
        size_t left = (size_t)view.len;
        while (left) {
                size_t n = left < SPROUT_MB_LOG_SIZE ? left : SPROUT_MB_LOG_SIZE;
                if (n < left) {
                        const char *nl = memrchr(p, '\n', n);
                        if (nl)
                                n = (size_t)(nl - p) + 1;
                }
                sprout_guest_log(&guest, p, n);
                p += n;
                left -= n;
        }
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
}

static PyObject *sp_on_identity(PyObject *self, PyObject *fn)
{
        (void)self;
        if (fn != Py_None && !PyCallable_Check(fn)) {
                PyErr_SetString(PyExc_TypeError,
                                "_sprout.on_identity: expected a callable or None");
                return NULL;
        }
        Py_XSETREF(identity_hook, fn == Py_None ? NULL : Py_NewRef(fn));
        Py_RETURN_NONE;
}

static PyObject *sp_on_warmup(PyObject *self, PyObject *fn)
{
        (void)self;
        if (fn != Py_None && !PyCallable_Check(fn)) {
                PyErr_SetString(PyExc_TypeError, "_sprout.on_warmup: expected a callable or None");
                return NULL;
        }
        Py_XSETREF(warmup_hook, fn == Py_None ? NULL : Py_NewRef(fn));
        Py_RETURN_NONE;
}

static PyObject *sp_identity(PyObject *self, PyObject *unused)
{
        (void)self;
        (void)unused;
        if (!guest_is_open)
                return need_open();
        const uint8_t *id = sprout_guest_clone_id(&guest);
        char uuid[37];
        snprintf(uuid, sizeof(uuid),
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", id[0],
                 id[1], id[2], id[3], id[4], id[5], id[6], id[7], id[8], id[9], id[10], id[11],
                 id[12], id[13], id[14], id[15]);
        return Py_BuildValue("{s:s,s:I,s:I,s:K,s:L,s:I}", "clone", uuid, "identities",
                             (unsigned)guest.identities, "syscalls",
                             (unsigned)guest.identity_syscalls, "ns",
                             (unsigned long long)guest.identity_ns, "clock_step_ns",
                             (long long)guest.clock_step_ns, "warmups", (unsigned)guest.warmups);
}

static PyObject *sp_touch_stack(PyObject *self, PyObject *arg)
{
        (void)self;
        size_t n = PyLong_AsSize_t(arg);
        if (n == (size_t)-1 && PyErr_Occurred())
                return NULL;
        sprout_guest_touch_stack(n);
        Py_RETURN_NONE;
}

/* Grow the heap by about n bytes and touch every page, then free it all: with trimming off the
 * pages stay in the heap, faulted in, for whatever a clone allocates. */
static PyObject *sp_warm_heap(PyObject *self, PyObject *arg)
{
        (void)self;
        size_t n = PyLong_AsSize_t(arg);
        if (n == (size_t)-1 && PyErr_Occurred())
                return NULL;
        enum { CHUNK = 256 << 10, MAXCHUNKS = 4096 };
        static void *chunks[MAXCHUNKS];
        size_t k = 0;
        for (; k < MAXCHUNKS && (size_t)k * CHUNK < n; k++) {
                chunks[k] = malloc(CHUNK);
                if (!chunks[k])
                        break;
                for (size_t off = 0; off < CHUNK; off += PAGE)
                        ((volatile char *)chunks[k])[off] = 0;
        }
        /* Free in reverse so each block merges into the top of the heap. */
        while (k > 0)
                free(chunks[--k]);
        Py_RETURN_NONE;
}

/* Touch each page of [p, p + len) the slow way: for kernels without MADV_POPULATE_*. */
static void touch_range(char *p, size_t len, int write)
{
        for (size_t off = 0; off < len; off += PAGE) {
                volatile char *q = p + off;
                if (write)
                        *q = *q;
                else
                        (void)*q;
        }
}

/* Map every page of the process that a clone could touch: code and constants read-only, private
 * writable memory (heap, arenas, stack, library data) for writing. Returns (bytes read-populated,
 * bytes write-populated, "madvise" or "touch"). Done once before READY, so a path the priming
 * missed still takes no guest page fault in a clone; in the host these pages are only mapped, never
 * copied, until a clone writes them. */
static PyObject *sp_populate(PyObject *self, PyObject *unused)
{
        (void)self;
        (void)unused;
        FILE *f = fopen("/proc/self/maps", "re");
        if (!f)
                return PyErr_SetFromErrnoWithFilename(PyExc_OSError, "/proc/self/maps");
        char line[512];
        unsigned long long rd = 0, wr = 0;
        int use_madvise = 1;
        while (fgets(line, sizeof(line), f)) {
                unsigned long lo, hi;
                char perms[5];
                int name_at = 0;
                if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &lo, &hi, perms, &name_at) < 3)
                        continue;
                const char *name = line + name_at;
                size_t len = hi - lo;
                /* Shared mappings (the mailbox, via /dev/mem) and inaccessible guard pages are not
                 * ours to fault in; [vvar], [vdso], [vsyscall] are the kernel's. */
                int kernels = name[0] == '[' && strncmp(name, "[heap]", 6) != 0 &&
                              strncmp(name, "[stack]", 7) != 0;
                if (perms[0] != 'r' || perms[3] != 'p' || kernels)
                        continue;
                if (len > POPULATE_MAX)
                        continue;
                int write = perms[1] == 'w';
                if (use_madvise && madvise((void *)lo, len,
                                           write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) < 0) {
                        /* ENOSYS: a kernel without CONFIG_ADVISE_SYSCALLS (tinyconfig's
                         * default); EINVAL: one older than 5.14. Touch instead, a fault a page. */
                        if (errno != ENOSYS && errno != EINVAL)
                                continue; /* e.g. EFAULT on a racing unmap: leave it */
                        use_madvise = 0;
                }
                if (!use_madvise)
                        touch_range((char *)lo, len, write);
                if (write)
                        wr += len;
                else
                        rd += len;
        }
        fclose(f);
        return Py_BuildValue("(KKs)", rd, wr, use_madvise ? "madvise" : "touch");
}

static PyMethodDef methods[] = {
    {"open", sp_open, METH_NOARGS,
     "open()\n\nMap the sprout device (mailbox, doorbell) for this process. OSError if absent."},
    {"ready", sp_ready, METH_NOARGS,
     "ready() -> bytes\n\nRing READY; returns the first request (in a clone, with the clone's "
     "identity applied and the identity hook called)."},
    {"done", sp_done, METH_O,
     "done(response) -> bytes\n\nPut response (bytes-like or str) in the response area, ring "
     "DONE; returns the next request."},
    {"log", sp_log, METH_O, "log(text)\n\nSend text to the VM's log (LOG rings of 4 KiB)."},
    {"on_identity", sp_on_identity, METH_O,
     "on_identity(fn)\n\nCall fn(entropy: bytes) when a clone first runs (None removes it)."},
    {"on_warmup", sp_on_warmup, METH_O,
     "on_warmup(fn)\n\nCall fn() for each warm-up request (ABI 1.3), which the library answers "
     "itself; ready()/done() never return one (None removes it)."},
    {"identity", sp_identity, METH_NOARGS,
     "identity() -> dict\n\nThe clone id and what applying identities cost (the library's "
     "counters)."},
    {"touch_stack", sp_touch_stack, METH_O, "touch_stack(nbytes)\n\nFault in stack pages."},
    {"warm_heap", sp_warm_heap, METH_O,
     "warm_heap(nbytes)\n\nGrow the C heap by nbytes of touched, free memory."},
    {"populate", sp_populate, METH_NOARGS,
     "populate() -> (read_bytes, write_bytes, how)\n\nFault in every private mapping of the "
     "process."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_sprout",
    .m_doc = "The sprout device, from the Python runtime shim (docs/python.md).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__sprout(void)
{
        PyObject *m = PyModule_Create(&module);
        if (!m)
                return NULL;
        if (PyModule_AddIntConstant(m, "REQUEST_MAX", SPROUT_MB_REQ_SIZE) < 0 ||
            PyModule_AddIntConstant(m, "RESPONSE_MAX", SPROUT_MB_RESP_SIZE) < 0 ||
            PyModule_AddIntConstant(m, "LOG_MAX", SPROUT_MB_LOG_SIZE) < 0) {
                Py_DECREF(m);
                return NULL;
        }
        /* As early as the runtime can: every arena and heap block from here on is reusable. */
        heap_settings();
        return m;
}
