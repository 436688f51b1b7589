/* critsec.runtimes._robust: the few things Python cannot do on shared memory.
 *
 * The processes runtime keeps its lock, counter and queue in shared memory.
 * To survive the death of a process at any instruction it needs
 *
 *   - a mutex that the kernel hands on when its owner dies: a POSIX robust,
 *     process-shared mutex (the owner's thread is on the kernel's robust
 *     list; at its death the kernel marks the mutex and wakes a waiter, who
 *     gets EOWNERDEAD: within microseconds, no polling);
 *   - waiting without a lock of its own: futexes, so a waiter that dies
 *     holds nothing (the kernel just forgets it);
 *   - an atomic add on an int64, so the counter has no lock to leave held.
 *
 * Each is a C function, so that an uncontended `with lock:` costs what the
 * standard library's semaphore costs; ctypes calls cost ten times more.
 * Linux only (futexes, robust mutexes with glibc or musl).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* A blocked acquire on the main thread wakes this often to run signal
 * handlers (Ctrl-C): a robust mutex's wait, unlike a semaphore's, restarts
 * by itself when a signal arrives. Other threads never see signals. */
#define SIGNAL_SLICE_NS 50000000L

static double
now_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static struct timespec
add_seconds(struct timespec ts, double seconds)
{
    time_t whole = (time_t)seconds;
    long nanos = ts.tv_nsec + (long)((seconds - (double)whole) * 1e9);
    ts.tv_sec += whole + nanos / 1000000000L;
    ts.tv_nsec = nanos % 1000000000L;
    return ts;
}

/* How long a contended lock or a wait spins before it sleeps in the
 * kernel. The queue's critical sections and the other side's operation
 * last a few microseconds, while a sleep and a wake-up cost tens (more in
 * a VM): a short spin turns most of them into no sleep at all. The spin
 * yields the CPU after a while, so that on a busy machine it hands its
 * core to whoever it waits for instead of burning it. */
#define SPIN_NS 50000L
#define SPIN_PAUSE_NS 5000L

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline long
elapsed_ns(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - start->tv_sec) * 1000000000L + (now.tv_nsec - start->tv_nsec);
}

/* Try to lock `m` for up to SPIN_NS (the caller released the GIL): the
 * result of the last trylock (EBUSY: still held by another). */
static int
spin_lock(pthread_mutex_t *m)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        for (int i = 0; i < 64; i++)
            cpu_relax();
        int rc = pthread_mutex_trylock(m);
        if (rc != EBUSY)
            return rc;
        long ns = elapsed_ns(&start);
        if (ns > SPIN_NS)
            return EBUSY;
        if (ns > SPIN_PAUSE_NS)
            sched_yield();
    }
}

/* Spin for up to `limit_ns` while the uint32 at `word` holds `expected`:
 * 1 if it changed. */
static int
spin_while(uint32_t *word, uint32_t expected, long limit_ns)
{
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != expected)
                return 1;
            cpu_relax();
        }
        long ns = elapsed_ns(&start);
        if (ns > limit_ns)
            return 0;
        if (ns > SPIN_PAUSE_NS)
            sched_yield();
    }
}

/* Lock `m` with a deadline on CLOCK_MONOTONIC (`deadline` < 0: none). */
static int
timed_lock(pthread_mutex_t *m, double deadline, int slices)
{
    int rc;
    for (;;) {
        struct timespec ts;
        double left = deadline < 0 ? -1 : deadline - now_monotonic();
        if (deadline >= 0 && left <= 0)
            left = 0;
        if (!slices && deadline < 0) {
            Py_BEGIN_ALLOW_THREADS
            rc = pthread_mutex_lock(m);
            Py_END_ALLOW_THREADS
            return rc;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (slices && (left < 0 || left > SIGNAL_SLICE_NS * 1e-9))
            ts = add_seconds(ts, SIGNAL_SLICE_NS * 1e-9);
        else
            ts = add_seconds(ts, left);
        Py_BEGIN_ALLOW_THREADS
        rc = pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &ts);
        Py_END_ALLOW_THREADS
        if (rc != ETIMEDOUT)
            return rc;
        if (deadline >= 0 && now_monotonic() >= deadline)
            return ETIMEDOUT;
        if (slices && PyErr_CheckSignals() < 0)
            return -1;
    }
}

/* -- Mutex ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    pthread_mutex_t *mutex;
    PyObject *memory;  /* keeps the shared memory alive */
    Py_buffer view;
    char owner_died;
} Mutex;

static int
Mutex_init(Mutex *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"memory", "create", NULL};
    PyObject *memory;
    int create = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|$p:Mutex", kwlist, &memory, &create))
        return -1;
    if (self->memory != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Mutex is initialised once");
        return -1;
    }
    if (PyObject_GetBuffer(memory, &self->view, PyBUF_WRITABLE) < 0)
        return -1;
    if ((size_t)self->view.len < sizeof(pthread_mutex_t)
        || ((uintptr_t)self->view.buf) % _Alignof(pthread_mutex_t)) {
        PyBuffer_Release(&self->view);
        PyErr_Format(PyExc_ValueError, "a Mutex needs %zu aligned bytes, got %zd",
                     sizeof(pthread_mutex_t), self->view.len);
        return -1;
    }
    self->mutex = (pthread_mutex_t *)self->view.buf;
    Py_INCREF(memory);
    self->memory = memory;
    if (create) {
        pthread_mutexattr_t attr;
        int rc = pthread_mutexattr_init(&attr);
        if (!rc)
            rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
        if (!rc)
            rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
        if (!rc)
            rc = pthread_mutex_init(self->mutex, &attr);
        pthread_mutexattr_destroy(&attr);
        if (rc) {
            errno = rc;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    return 0;
}

/* Whether thread `tid` belongs to this process. */
static int
ours(int tid)
{
    char path[64];
    if (tid == (int)syscall(SYS_gettid))
        return 1;
    snprintf(path, sizeof path, "/proc/self/task/%d", tid);
    return access(path, F_OK) == 0;
}

static void
Mutex_dealloc(Mutex *self)
{
    if (self->memory != NULL) {
#ifdef __GLIBC__
        int tid = __atomic_load_n((int *)self->mutex, __ATOMIC_RELAXED) & FUTEX_TID_MASK;
#else
        int tid = 0; /* where the owner is kept is glibc's secret elsewhere */
#endif
        PyBuffer_Release(&self->view);
        /* A mutex held by a thread of this process is linked into that
         * thread's robust list, through the mutex's own bytes: if the heap
         * gave them to another object, glibc (or the kernel, at the
         * thread's exit) would follow garbage. Keep them for good; it
         * costs a few bytes, only for a lock dropped while held. */
        if (tid && ours(tid))
            self->memory = NULL;
        else
            Py_CLEAR(self->memory);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
check_ready(Mutex *self)
{
    if (self->mutex == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Mutex.__init__ was not called");
        return -1;
    }
    return 0;
}

/* After lock returned `rc`: 1 if taken, 0 if not, -1 with an exception. */
static int
taken(Mutex *self, int rc)
{
    if (rc == 0) {
        self->owner_died = 0;
        return 1;
    }
    if (rc == EOWNERDEAD) {
        /* The previous owner died holding it: it is ours now. Mark it
         * usable again (else its next unlock would ruin it for good) and
         * tell whoever asks. */
        pthread_mutex_consistent(self->mutex);
        self->owner_died = 1;
        return 1;
    }
    if (rc == EBUSY || rc == ETIMEDOUT)
        return 0;
    if (rc == -1)
        return -1;
    if (rc == EDEADLK) {
        PyErr_SetString(PyExc_RuntimeError, "the calling thread already holds this lock");
        return -1;
    }
    errno = rc;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* The thread that runs signal handlers (threading.main_thread()). A child
 * forked from another thread keeps that thread's identity, which is then
 * not this one; it simply waits without slices. */
static unsigned long main_thread_ident;

static int
on_main_thread(void)
{
    return PyThread_get_thread_ident() == main_thread_ident;
}

/* acquire(blocking=True, timeout=-1), with threading.Lock.acquire's checks. */
static PyObject *
Mutex_acquire(Mutex *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    int blocking = 1;
    double timeout = -1;
    PyObject *blocking_obj = NULL, *timeout_obj = NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (check_ready(self) < 0)
        return NULL;
    if (nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "acquire() takes at most 2 arguments");
        return NULL;
    }
    if (nargs > 0)
        blocking_obj = args[0];
    if (nargs > 1)
        timeout_obj = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, i);
        PyObject **slot = NULL;
        if (PyUnicode_CompareWithASCIIString(key, "blocking") == 0)
            slot = &blocking_obj;
        else if (PyUnicode_CompareWithASCIIString(key, "timeout") == 0)
            slot = &timeout_obj;
        if (slot == NULL || *slot != NULL) {
            PyErr_Format(PyExc_TypeError, "acquire() got an unexpected or repeated argument %R", key);
            return NULL;
        }
        *slot = args[nargs + i];
    }
    if (blocking_obj != NULL && (blocking = PyObject_IsTrue(blocking_obj)) < 0)
        return NULL;
    if (timeout_obj != NULL) {
        if (PyBool_Check(timeout_obj) || !(PyFloat_Check(timeout_obj) || PyLong_Check(timeout_obj)
                                           || PyNumber_Check(timeout_obj))) {
            PyErr_Format(PyExc_TypeError, "timeout must be a number of seconds, got %s",
                         Py_TYPE(timeout_obj)->tp_name);
            return NULL;
        }
        timeout = PyFloat_AsDouble(timeout_obj);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
    }
    if (timeout != -1 && !blocking) {
        PyErr_SetString(PyExc_ValueError, "can't specify a timeout for a non-blocking call");
        return NULL;
    }
    if (timeout < 0 && timeout != -1) {
        PyErr_SetString(PyExc_ValueError, "timeout value must be a non-negative number");
        return NULL;
    }
    if (timeout > PY_TIMEOUT_MAX * 1e-6) {
        PyErr_SetString(PyExc_OverflowError, "timeout value is too large");
        return NULL;
    }
    int rc = pthread_mutex_trylock(self->mutex);
    if (rc == EBUSY && blocking) {
        double deadline = timeout == -1 ? -1 : now_monotonic() + timeout;
        if (timeout != 0) {
            Py_BEGIN_ALLOW_THREADS
            rc = spin_lock(self->mutex);
            Py_END_ALLOW_THREADS
        }
        if (rc == EBUSY)
            rc = timed_lock(self->mutex, deadline, on_main_thread());
    }
    int got = taken(self, rc);
    if (got < 0)
        return NULL;
    return PyBool_FromLong(got);
}

/* Take the mutex, waiting as long as it takes: 1, or -1 with an exception
 * (a signal handler's, on the main thread) and the mutex not taken. */
static int
mutex_enter(Mutex *self)
{
    int rc = pthread_mutex_trylock(self->mutex);
    if (rc == EBUSY) {
        Py_BEGIN_ALLOW_THREADS
        rc = spin_lock(self->mutex);
        Py_END_ALLOW_THREADS
    }
    if (rc == EBUSY)
        rc = timed_lock(self->mutex, -1, on_main_thread());
    return taken(self, rc) < 0 ? -1 : 1;
}

static PyObject *
Mutex_enter(Mutex *self, PyObject *Py_UNUSED(ignored))
{
    if (check_ready(self) < 0)
        return NULL;
    if (mutex_enter(self) < 0)
        return NULL;
    Py_RETURN_TRUE;
}

static int
locked(Mutex *self)
{
#ifdef __GLIBC__
    /* glibc keeps the owner's thread id in the mutex's first int (the
     * kernel clears it, keeping the OWNER_DIED bit, when the owner dies). */
    int word = __atomic_load_n((int *)self->mutex, __ATOMIC_RELAXED);
    return (word & FUTEX_TID_MASK) != 0;
#else
    int rc = pthread_mutex_trylock(self->mutex);
    if (rc == EOWNERDEAD)
        pthread_mutex_consistent(self->mutex);
    if (rc == 0 || rc == EOWNERDEAD) {
        pthread_mutex_unlock(self->mutex);
        return 0;
    }
    return 1;
#endif
}

static PyObject *
Mutex_release(Mutex *self, PyObject *Py_UNUSED(ignored))
{
    if (check_ready(self) < 0)
        return NULL;
    int rc = pthread_mutex_unlock(self->mutex);
    if (rc == 0)
        Py_RETURN_NONE;
    if (rc == EPERM) {
        PyErr_SetString(PyExc_RuntimeError,
                        locked(self) ? "cannot release a processes lock held by another thread"
                                     : "release unlocked lock");
        return NULL;
    }
    errno = rc;
    return PyErr_SetFromErrno(PyExc_OSError);
}

static PyObject *
Mutex_exit(Mutex *self, PyObject *const *args, Py_ssize_t nargs)
{
    return Mutex_release(self, NULL);
}

static PyObject *
Mutex_locked(Mutex *self, PyObject *Py_UNUSED(ignored))
{
    if (check_ready(self) < 0)
        return NULL;
    return PyBool_FromLong(locked(self));
}

static PyMethodDef Mutex_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Mutex_acquire, METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=-1) -> bool\n\nTake the mutex, as threading.Lock.acquire "
     "does. If its previous owner died holding it, it is taken all the same and owner_died "
     "is set."},
    {"release", (PyCFunction)Mutex_release, METH_NOARGS,
     "Release the mutex; RuntimeError if the calling thread does not hold it."},
    {"locked", (PyCFunction)Mutex_locked, METH_NOARGS, "True while some thread holds it."},
    {"__enter__", (PyCFunction)Mutex_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Mutex_exit, METH_FASTCALL, NULL},
    {NULL},
};

static PyMemberDef Mutex_members[] = {
    {"owner_died", T_BOOL, offsetof(Mutex, owner_died), READONLY,
     "True if the last acquire of this object took the mutex from an owner that died "
     "holding it."},
    {"_memory", T_OBJECT, offsetof(Mutex, memory), READONLY, "The shared memory it lives in."},
    {NULL},
};

static PyTypeObject MutexType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._robust.Mutex",
    .tp_basicsize = sizeof(Mutex),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Mutex(memory, *, create=False): a robust, process-shared mutex living in "
              "`memory` (a writable buffer of shared memory); create=True initialises it.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Mutex_init,
    .tp_dealloc = (destructor)Mutex_dealloc,
    .tp_methods = Mutex_methods,
    .tp_members = Mutex_members,
};

/* -- futexes and atomics on an address -------------------------------------- */

static int
parse_address(PyObject *obj, void **address, size_t alignment)
{
    *address = PyLong_AsVoidPtr(obj);
    if (*address == NULL && PyErr_Occurred())
        return -1;
    if (*address == NULL || (uintptr_t)*address % alignment) {
        PyErr_SetString(PyExc_ValueError, "a null or misaligned address");
        return -1;
    }
    return 0;
}

/* futex_wait(address, expected, timeout) -> bool: sleep while the uint32 at
 * `address` holds `expected`, at most `timeout` seconds (None: no limit);
 * spinning first for a moment (SPIN_NS), as a wake-up often comes at once.
 * False only if the time ran out; True when woken, when the value had
 * already changed, or after a signal (the caller re-checks its condition). */
static PyObject *
futex_wait(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    void *address;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "futex_wait(address, expected, timeout)");
        return NULL;
    }
    if (parse_address(args[0], &address, 4) < 0)
        return NULL;
    unsigned long expected = PyLong_AsUnsignedLong(args[1]);
    if (expected == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    struct timespec ts, *timeout = NULL;
    if (args[2] != Py_None) {
        double seconds = PyFloat_AsDouble(args[2]);
        if (seconds == -1 && PyErr_Occurred())
            return NULL;
        if (seconds <= 0)
            Py_RETURN_FALSE;
        ts.tv_sec = (time_t)seconds;
        ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
        timeout = &ts;
    }
    long rc = -1, spin = SPIN_NS;
    int err = 0, changed;
    if (timeout != NULL && (timeout->tv_sec == 0 && timeout->tv_nsec < spin))
        spin = timeout->tv_nsec / 2;  /* a short wait spins for at most half of it */
    Py_BEGIN_ALLOW_THREADS
    changed = spin_while(address, (uint32_t)expected, spin);
    if (!changed) {
        if (timeout != NULL) {  /* the spin took its share of the time */
            long nanos = timeout->tv_nsec - spin;
            timeout->tv_sec += nanos < 0 ? -1 : 0;
            timeout->tv_nsec = nanos < 0 ? nanos + 1000000000L : nanos;
        }
        rc = syscall(SYS_futex, address, FUTEX_WAIT, (uint32_t)expected, timeout, NULL, 0);
        err = errno;
    }
    Py_END_ALLOW_THREADS
    if (changed)
        Py_RETURN_TRUE;
    if (rc == 0 || err == EAGAIN)
        Py_RETURN_TRUE;
    if (err == ETIMEDOUT)
        Py_RETURN_FALSE;
    if (err == EINTR) {
        if (PyErr_CheckSignals() < 0)
            return NULL;
        Py_RETURN_TRUE;
    }
    errno = err;
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* futex_wake(address, n) -> int: wake at most n sleepers on `address`. */
static PyObject *
futex_wake(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    void *address;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "futex_wake(address, n)");
        return NULL;
    }
    if (parse_address(args[0], &address, 4) < 0)
        return NULL;
    long n = PyLong_AsLong(args[1]);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    long rc = syscall(SYS_futex, address, FUTEX_WAKE, n > INT_MAX ? INT_MAX : (int)n, NULL, NULL, 0);
    if (rc < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(rc);
}

/* add(address, delta) -> int: atomically add `delta` to the int64 at
 * `address`, return the new value; OverflowError (and no change) past int64. */
static PyObject *
atomic_add(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    void *address;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "add(address, delta)");
        return NULL;
    }
    if (parse_address(args[0], &address, 8) < 0)
        return NULL;
    int overflow;
    long long delta = PyLong_AsLongLongAndOverflow(args[1], &overflow);
    if (delta == -1 && PyErr_Occurred())
        return NULL;
    int64_t *p = address, old = __atomic_load_n(p, __ATOMIC_RELAXED), new;
    do {
        if (overflow || __builtin_add_overflow(old, (int64_t)delta, &new)) {
            PyErr_SetString(PyExc_OverflowError, "the sum is outside a process counter's int64 range");
            return NULL;
        }
    } while (!__atomic_compare_exchange_n(p, &old, new, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED));
    return PyLong_FromLongLong(new);
}

/* -- the queue's fast path --------------------------------------------------- */

/* A processes queue (critsec/runtimes/_shared_memory.py, ProcessQueue) keeps
 * its items in a byte ring of shared memory, as records (uint64 length,
 * uint64 id, the pickle), and its bookkeeping in two copies of an int64
 * array: an operation copies the committed state to the other copy, changes
 * that, and commits with one 8-byte store of `active`, just before the
 * unlock. A process that dies inside an operation leaves it done or not
 * begun. FastPath does, in one call, what the Python code does for a put
 * with room or a get with an item: the same bytes, the same two copies,
 * the same commit, in the same order -- and declines (returns with the
 * mutex still held, having changed nothing) whenever anything is unusual,
 * so the Python code goes on from there. The slots of the state, as
 * _shared_memory.py numbers them (QUEUE_STATE checks that they agree): */
enum { Q_HEAD, Q_USED, Q_COUNT, Q_UNFINISHED, Q_SHUTDOWN, Q_RECLAIM, Q_PENDING, Q_NEXT_ID, Q_READY,
       Q_FIXED_SLOTS };
enum { Q_NOT_EMPTY, Q_NOT_FULL };  /* conditions: their futex word and waiters' count */
#define Q_HEADER 16  /* a record's length and id */

/* Tests only (tests/test_robust.py kills a process "at any line"): called
 * at every step of a fast path's critical section, where a Python line
 * would be, so that a kill lands between any two of them. */
static PyObject *step_hook;

static void
step(void)
{
    if (step_hook == NULL)
        return;
    PyObject *result = PyObject_CallNoArgs(step_hook);
    if (result == NULL)
        PyErr_WriteUnraisable(step_hook);
    Py_XDECREF(result);
}

static PyObject *
set_step_hook(PyObject *module, PyObject *hook)
{
    Py_XSETREF(step_hook, hook == Py_None ? NULL : Py_NewRef(hook));
    Py_RETURN_NONE;
}

typedef struct {
    PyObject_HEAD
    Mutex *mutex;       /* the queue's mutex (its owner_died is what Python reads) */
    PyObject *keep;     /* keeps the shared memory below alive */
    int64_t *state;     /* the two copies, `words` int64s each */
    Py_ssize_t words;
    unsigned char *ring;
    uint64_t ring_size;
    int64_t *active;    /* which copy is committed */
    uint32_t *sequence; /* per condition: the futex word a wake-up bumps */
    uint32_t *waiters;  /* per condition: how many wait (0: a wake-up can be skipped) */
    double maxsize;
    int wakes;          /* how many waiters a wake-up wakes: all (the mutation check: 1) */
} FastPath;

static int
FastPath_init(FastPath *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"mutex", "keep", "state", "words", "ring", "ring_size",
                             "active", "sequence", "waiters", "maxsize", "wakes", NULL};
    PyObject *mutex, *keep, *state, *ring, *active, *sequence, *waiters;
    Py_ssize_t words;
    unsigned long long ring_size;
    double maxsize;
    int wakes;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O$OnOKOOOdi:FastPath", kwlist, &MutexType,
                                     &mutex, &keep, &state, &words, &ring, &ring_size, &active,
                                     &sequence, &waiters, &maxsize, &wakes))
        return -1;
    if (self->mutex != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a FastPath is initialised once");
        return -1;
    }
    void *p_state, *p_ring, *p_active, *p_sequence, *p_waiters;
    if (parse_address(state, &p_state, 8) < 0 || parse_address(ring, &p_ring, 1) < 0
        || parse_address(active, &p_active, 8) < 0 || parse_address(sequence, &p_sequence, 4) < 0
        || parse_address(waiters, &p_waiters, 4) < 0)
        return -1;
    if (words < Q_FIXED_SLOTS || ring_size <= Q_HEADER || wakes < 1) {
        PyErr_SetString(PyExc_ValueError, "a FastPath needs the fixed slots, a ring, wakes >= 1");
        return -1;
    }
    if (check_ready((Mutex *)mutex) < 0)
        return -1;
    self->mutex = (Mutex *)Py_NewRef(mutex);
    self->keep = Py_NewRef(keep);
    self->state = p_state;
    self->words = words;
    self->ring = p_ring;
    self->ring_size = ring_size;
    self->active = p_active;
    self->sequence = p_sequence;
    self->waiters = p_waiters;
    self->maxsize = maxsize;
    self->wakes = wakes;
    return 0;
}

static void
FastPath_dealloc(FastPath *self)
{
    Py_CLEAR(self->mutex);
    Py_CLEAR(self->keep);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void
ring_write(FastPath *q, uint64_t offset, const void *data, uint64_t n)
{
    uint64_t first = q->ring_size - offset < n ? q->ring_size - offset : n;
    memcpy(q->ring + offset, data, first);
    if (first < n)  /* wraps around the end of the ring */
        memcpy(q->ring, (const char *)data + first, n - first);
}

static void
ring_read(FastPath *q, uint64_t offset, void *data, uint64_t n)
{
    uint64_t first = q->ring_size - offset < n ? q->ring_size - offset : n;
    memcpy(data, q->ring + offset, first);
    if (first < n)
        memcpy((char *)data + first, q->ring, n - first);
}

/* _Condition.wake: every waiter of `condition` is woken (and counts itself
 * again if it must wait again); q->wakes is less only in the mutation check. */
static void
wake(FastPath *q, int condition)
{
    __atomic_add_fetch(&q->sequence[condition], 1, __ATOMIC_SEQ_CST);
    q->waiters[condition] = 0;
    syscall(SYS_futex, &q->sequence[condition], FUTEX_WAKE, q->wakes, NULL, NULL, 0);
}

/* Lock; 0 with the committed copy in *src and the other in *dst, 1 if the
 * previous holder died (declined: Python recovers), -1 on an error. */
static int
enter(FastPath *q, int64_t **src, int64_t **dst)
{
    if (mutex_enter(q->mutex) < 0)
        return -1;
    if (q->mutex->owner_died)
        return 1;
    int64_t active = __atomic_load_n(q->active, __ATOMIC_RELAXED);
    *src = q->state + active * q->words;
    *dst = q->state + (1 - active) * q->words;
    return 0;
}

/* Publish *dst: the 8-byte store that makes it the committed copy. */
static void
commit(FastPath *q, int64_t *dst)
{
    step();
    __atomic_store_n(q->active, (int64_t)(dst != q->state), __ATOMIC_RELEASE);
    step();
}

/* put(data) -> bool: take the mutex and, if the queue is not shut down and
 * has room for `data` (a bytes object, a pickle), put it, wake the getters
 * if some wait, commit and unlock: True. Otherwise (shut down, full, the
 * last holder died) change nothing and return False WITH THE MUTEX HELD:
 * the caller goes on in Python (and releases it). */
static PyObject *
FastPath_put(FastPath *self, PyObject *data)
{
    int64_t *src, *dst;
    if (!PyBytes_CheckExact(data)) {
        PyErr_Format(PyExc_TypeError, "put() takes bytes, not %s", Py_TYPE(data)->tp_name);
        return NULL;
    }
    uint64_t n = (uint64_t)PyBytes_GET_SIZE(data), size = Q_HEADER + n;
    int rc = enter(self, &src, &dst);
    if (rc < 0)
        return NULL;
    if (rc > 0)
        Py_RETURN_FALSE;
    step();
    double qsize = (double)(src[Q_COUNT] + src[Q_READY]);
    if (src[Q_SHUTDOWN] || (0 < self->maxsize && self->maxsize <= qsize)
        || size > self->ring_size - (uint64_t)src[Q_USED])
        Py_RETURN_FALSE;
    /* The bytes go where no committed state looks yet: until the commit
     * they are invisible, so a death here loses only this put. */
    memcpy(dst, src, (size_t)self->words * sizeof(int64_t));
    uint64_t tail = ((uint64_t)src[Q_RECLAIM] + (uint64_t)src[Q_USED]) % self->ring_size;
    uint64_t header[2] = {n, (uint64_t)src[Q_NEXT_ID]};
    ring_write(self, tail, header, Q_HEADER);
    ring_write(self, (tail + Q_HEADER) % self->ring_size, PyBytes_AS_STRING(data), n);
    step();
    dst[Q_NEXT_ID] += 1;
    dst[Q_USED] += (int64_t)size;
    dst[Q_COUNT] += 1;
    dst[Q_UNFINISHED] += 1;
    step();
    if (self->waiters[Q_NOT_EMPTY])
        wake(self, Q_NOT_EMPTY);  /* before the commit: see _shared_memory.py */
    commit(self, dst);
    pthread_mutex_unlock(self->mutex->mutex);
    Py_RETURN_TRUE;
}

/* get() -> (bytes, (id, 1)) | None: take the mutex and, if there is an
 * item, take the oldest off the ring, wake the putters if some wait,
 * commit and unlock. Otherwise (empty, the last holder died) change
 * nothing and return None WITH THE MUTEX HELD. At-most-once queues only:
 * a taken item's bytes are free at once. */
static PyObject *
FastPath_get(FastPath *self, PyObject *Py_UNUSED(ignored))
{
    int64_t *src, *dst;
    int rc = enter(self, &src, &dst);
    if (rc < 0)
        return NULL;
    if (rc > 0)
        Py_RETURN_NONE;
    step();
    if (!src[Q_COUNT] || src[Q_READY])
        Py_RETURN_NONE;
    uint64_t head = (uint64_t)src[Q_HEAD], header[2];
    ring_read(self, head, header, Q_HEADER);
    uint64_t n = header[0], size = Q_HEADER + n;
    if (size > (uint64_t)src[Q_USED]) {  /* not a record: let Python see it */
        pthread_mutex_unlock(self->mutex->mutex);
        PyErr_SetString(PyExc_RuntimeError, "the queue's ring holds no record where it should");
        return NULL;
    }
    PyObject *item = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    PyObject *ident = PyLong_FromLongLong((long long)header[1]);
    PyObject *once = PyLong_FromLong(1);
    PyObject *delivery = ident && once ? PyTuple_Pack(2, ident, once) : NULL;
    PyObject *got = item && delivery ? PyTuple_Pack(2, item, delivery) : NULL;
    Py_XDECREF(ident);
    Py_XDECREF(once);
    Py_XDECREF(delivery);
    Py_XDECREF(item);
    if (got == NULL) {  /* out of memory: nothing was changed */
        pthread_mutex_unlock(self->mutex->mutex);
        return NULL;
    }
    ring_read(self, (head + Q_HEADER) % self->ring_size, PyBytes_AS_STRING(item), n);
    memcpy(dst, src, (size_t)self->words * sizeof(int64_t));
    dst[Q_COUNT] -= 1;
    dst[Q_HEAD] = (int64_t)((head + size) % self->ring_size);
    /* Its bytes are free at once (_take, then _free). */
    dst[Q_RECLAIM] = (int64_t)(((uint64_t)dst[Q_RECLAIM] + size) % self->ring_size);
    dst[Q_USED] -= (int64_t)size;
    if (!dst[Q_USED])  /* empty: start over at the front */
        dst[Q_HEAD] = dst[Q_RECLAIM] = 0;
    step();
    if (self->waiters[Q_NOT_FULL])
        wake(self, Q_NOT_FULL);
    commit(self, dst);
    pthread_mutex_unlock(self->mutex->mutex);
    return got;
}

static PyMethodDef FastPath_methods[] = {
    {"put", (PyCFunction)FastPath_put, METH_O,
     "put(data) -> bool: put `data` if there is room and nothing unusual, as one critical "
     "section; False: nothing done, and the mutex is held."},
    {"get", (PyCFunction)FastPath_get, METH_NOARGS,
     "get() -> (bytes, (id, 1)) | None: take the oldest item if there is one, as one critical "
     "section; None: nothing done, and the mutex is held."},
    {NULL},
};

static PyTypeObject FastPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._robust.FastPath",
    .tp_basicsize = sizeof(FastPath),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "FastPath(mutex, keep, *, state, words, ring, ring_size, active, sequence, waiters, "
              "maxsize, wakes): a processes queue's put and get when nobody must wait, in C (addresses "
              "of its shared memory; `keep` keeps that alive).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FastPath_init,
    .tp_dealloc = (destructor)FastPath_dealloc,
    .tp_methods = FastPath_methods,
};

static PyMethodDef module_methods[] = {
    {"futex_wait", (PyCFunction)(void (*)(void))futex_wait, METH_FASTCALL, NULL},
    {"futex_wake", (PyCFunction)(void (*)(void))futex_wake, METH_FASTCALL, NULL},
    {"add", (PyCFunction)(void (*)(void))atomic_add, METH_FASTCALL, NULL},
    {"set_step_hook", (PyCFunction)set_step_hook, METH_O,
     "set_step_hook(hook | None): tests only -- call hook() at every step of a FastPath "
     "critical section (where a test may kill the process)."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "critsec.runtimes._robust",
    .m_doc = "Robust mutexes, futexes and an atomic add on shared memory (Linux).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__robust(void)
{
    if (PyType_Ready(&MutexType) < 0 || PyType_Ready(&FastPathType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    PyObject *threading = PyImport_ImportModule("threading");
    PyObject *main = threading ? PyObject_CallMethod(threading, "main_thread", NULL) : NULL;
    Py_XDECREF(threading);
    PyObject *ident = main ? PyObject_GetAttrString(main, "ident") : NULL;
    Py_XDECREF(main);
    if (ident == NULL) {
        Py_DECREF(module);
        return NULL;
    }
    main_thread_ident = PyLong_AsUnsignedLong(ident);
    Py_DECREF(ident);
    Py_INCREF(&MutexType);
    Py_INCREF(&FastPathType);
    PyObject *slots = Py_BuildValue("(sssssssss)", "head", "used", "count", "unfinished",
                                    "shutdown", "reclaim", "pending", "next_id", "ready");
    if (PyModule_AddObject(module, "Mutex", (PyObject *)&MutexType) < 0
        || PyModule_AddObject(module, "FastPath", (PyObject *)&FastPathType) < 0
        || PyModule_AddObject(module, "QUEUE_STATE", slots) < 0
        || PyModule_AddIntConstant(module, "MUTEX_SIZE", sizeof(pthread_mutex_t)) < 0
        || PyModule_AddIntConstant(module, "MUTEX_ALIGNMENT", _Alignof(pthread_mutex_t)) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
