/* critsec.runtimes._ccoroutines: the coroutines runtime's hot paths in C.
 *
 * The lesson's locked coroutine takes and releases the lock at every
 * increment, `with (yield from lock): ...`, and switches inside it. In
 * Python that cost a generator made by `__iter__`, `__enter__`, `__exit__`
 * and `release` calls, and two turns of the scheduler's loop per update: on
 * 3.11 the least lock there is (a flag and a spin, lab/_work.py LeastLock)
 * alone measured 5.1x the bare unlocked loop, above issue 9's target of 4.
 * Only what every switch, acquire and release does is here; the Python in
 * _coroutines.py stays the reference and does everything else:
 *
 *   round_robin  the scheduler's common steps for a run without a timeout
 *                (resume a task, keep what it yielded, put back a woken
 *                waiter whose lock was taken again); any other step goes
 *                back to CoroutinesRuntime._schedule.
 *   ParkBase, RunningBase   the fields of _coroutines.Park and _Running,
 *                read at every switch without attribute lookups.
 *   LockBase     the coroutines lock's `_locked`, `release()`, `_rewait`
 *                and `__iter__`'s no-wait path; waiting stays
 *                _core.LockCore's algorithm, reached through
 *                `_acquire_waiting()`. The waiter list of _core.UNLOCKED
 *                and the woken counts are _cooperative.Cooperative's, bound
 *                by `_bind`.
 *   Held         what `yield from lock` returns: `__exit__` releases.
 *   Taken        what `__iter__` hands `yield from` when the lock was free:
 *                it stops at once, returning the Held.
 *
 * `iter(lock)` takes a free lock at once (a generator would at its first
 * `next`); `yield from` does the two back to back, so no task sees the
 * difference. tests/test_ccoroutines.py runs random programs under this
 * loop and the Python one and compares them step by step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    char locked;
    char fair;          /* the class's _fair, read by _bind */
    char own_release;   /* its class keeps LockBase.release: Held calls it in C */
    PyObject *condition; /* _core.UNLOCKED: what waiters wait for */
    PyObject *waiters;  /* deque of the parks waiting for it */
    PyObject *popleft, *append; /* its methods, bound once */
    PyObject *woken;    /* dict: condition -> parks woken, not yet run */
    PyObject *taken;    /* Taken, handed to `yield from` on a free lock */
    PyObject *held;     /* Held, what `yield from lock` returns */
} LockBase;

typedef struct {
    PyObject_HEAD
    PyObject *lock;
} Held;

typedef struct {
    PyObject_HEAD
    PyObject *held;
    PyObject *stop;  /* 3.12+: StopIteration(held), made again only if kept */
} Taken;

static PyObject *str_popleft, *str_append, *str_deadline, *str_woken, *str_acquire_waiting,
    *str_fair, *str_release, *str_park, *str_owner, *str_rewait, *str_generator, *ZERO, *ONE, *MINUS_ONE;

/* A waiting task's park (_coroutines.Park is it, with its __init__). */
typedef struct {
    PyObject_HEAD
    PyObject *owner;     /* the primitive waited on */
    PyObject *condition; /* the condition's name */
    PyObject *deadline;  /* a clock.now() time, or None */
    char woken;
} ParkBase;

/* A task being run (_coroutines._Running is it, with ready()). */
typedef struct {
    PyObject_HEAD
    PyObject *index;
    PyObject *name;
    PyObject *generator;
    PyObject *park;      /* its ParkBase, or None */
} RunningBase;

static PyTypeObject LockBaseType, HeldType, TakenType, ParkBaseType, RunningBaseType;

#define IS_PARK(o) PyObject_TypeCheck((o), &ParkBaseType)

/* park.woken = value */
static int
set_woken(PyObject *park, int value)
{
    if (IS_PARK(park)) {
        ((ParkBase *)park)->woken = (char)value;
        return 0;
    }
    return PyObject_SetAttr(park, str_woken, value ? Py_True : Py_False);
}

/* -- Taken: an iterator that returns the Held at its first step ---------- */

static PySendResult
Taken_send(Taken *self, PyObject *arg, PyObject **result)
{
    /* 3.10-3.11 `yield from` steps an iterator through am_send: no
     * StopIteration is made. */
    *result = Py_NewRef(self->held);
    return PYGEN_RETURN;
}

static PyObject *
Taken_next(Taken *self)
{
    /* 3.12+ step a non-generator with tp_iternext: the return value travels
     * in a StopIteration. Making one costs more than the rest of an acquire
     * and release together (~180 ns on 3.13), so the last one is raised
     * again when nobody kept it, cleared of what its last trip attached. */
#if PY_VERSION_HEX >= 0x030C0000
    if (self->stop == NULL || Py_REFCNT(self->stop) != 1) {
        PyObject *stop = PyObject_CallOneArg(PyExc_StopIteration, self->held);
        if (stop == NULL)
            return NULL;
        Py_XSETREF(self->stop, stop);
    }
    PyException_SetTraceback(self->stop, Py_None);
    PyException_SetContext(self->stop, NULL);
    PyException_SetCause(self->stop, NULL);
    PyErr_SetRaisedException(Py_NewRef(self->stop));
#else
    PyErr_SetObject(PyExc_StopIteration, self->held);
#endif
    return NULL;
}

static int
Taken_traverse(Taken *self, visitproc visit, void *arg)
{
    Py_VISIT(self->held);
    Py_VISIT(self->stop);
    return 0;
}

static int
Taken_clear(Taken *self)
{
    Py_CLEAR(self->held);
    Py_CLEAR(self->stop);
    return 0;
}

static void
Taken_dealloc(Taken *self)
{
    PyObject_GC_UnTrack(self);
    Taken_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyAsyncMethods Taken_async = {.am_send = (sendfunc)Taken_send};

static PyTypeObject TakenType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccoroutines.Taken",
    .tp_basicsize = sizeof(Taken),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A lock taken without waiting: `yield from` gets its Held at once.",
    .tp_as_async = &Taken_async,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Taken_next,
    .tp_traverse = (traverseproc)Taken_traverse,
    .tp_clear = (inquiry)Taken_clear,
    .tp_dealloc = (destructor)Taken_dealloc,
};

/* -- LockBase ------------------------------------------------------------ */

/* 1 if some task waits for the lock or was woken and has not run yet
 * (Cooperative._queued("unlocked")), 0 if none, -1 on error. */
static int
queued(LockBase *self)
{
    Py_ssize_t waiting = PyObject_Length(self->waiters);
    if (waiting != 0)
        return waiting < 0 ? -1 : 1;
    PyObject *count = PyDict_GetItemWithError(self->woken, self->condition);
    if (count == NULL)
        return PyErr_Occurred() ? -1 : 0;
    return PyObject_IsTrue(count);
}

static int
unbound(LockBase *self)
{
    if (self->held != NULL)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "lock used before _bind(): its __init__ did not run");
    return -1;
}

static PyObject *
LockBase_bind(LockBase *self, PyObject *args)
{
    PyObject *condition, *waiters, *woken;
    if (!PyArg_ParseTuple(args, "OOO!:_bind", &condition, &waiters, &PyDict_Type, &woken))
        return NULL;
    PyObject *fair = PyObject_GetAttr((PyObject *)self, str_fair);
    if (fair == NULL)
        return NULL;
    int is_fair = PyObject_IsTrue(fair);
    Py_DECREF(fair);
    if (is_fair < 0)
        return NULL;
    Held *held = PyObject_GC_New(Held, &HeldType);
    if (held == NULL)
        return NULL;
    held->lock = Py_NewRef(self);
    PyObject_GC_Track(held);
    Taken *taken = PyObject_GC_New(Taken, &TakenType);
    if (taken == NULL) {
        Py_DECREF(held);
        return NULL;
    }
    taken->held = Py_NewRef(held);
    taken->stop = NULL;
    PyObject_GC_Track(taken);
    PyObject *popleft = PyObject_GetAttr(waiters, str_popleft);
    PyObject *append = popleft ? PyObject_GetAttr(waiters, str_append) : NULL;
    if (append == NULL) {
        Py_XDECREF(popleft);
        Py_DECREF(taken);
        Py_DECREF(held);
        return NULL;
    }
    PyObject *release = PyObject_GetAttr((PyObject *)Py_TYPE(self), str_release);
    PyObject *ours = release ? PyDict_GetItemWithError(LockBaseType.tp_dict, str_release) : NULL;
    if (ours == NULL) {
        Py_XDECREF(release);
        Py_DECREF(popleft);
        Py_DECREF(append);
        Py_DECREF(taken);
        Py_DECREF(held);
        return NULL;
    }
    self->own_release = release == ours;
    Py_DECREF(release);
    self->fair = (char)is_fair;
    Py_XSETREF(self->popleft, popleft);
    Py_XSETREF(self->append, append);
    Py_XSETREF(self->condition, Py_NewRef(condition));
    Py_XSETREF(self->waiters, Py_NewRef(waiters));
    Py_XSETREF(self->woken, Py_NewRef(woken));
    Py_XSETREF(self->held, (PyObject *)held);
    Py_XSETREF(self->taken, (PyObject *)taken);
    Py_RETURN_NONE;
}

/* woken[condition] += delta */
static int
add_woken(LockBase *self, PyObject *delta)
{
    PyObject *count = PyDict_GetItemWithError(self->woken, self->condition);
    if (count == NULL && PyErr_Occurred())
        return -1;
    PyObject *sum = PyNumber_Add(count ? count : ZERO, delta);
    if (sum == NULL)
        return -1;
    int failed = PyDict_SetItem(self->woken, self->condition, sum);
    Py_DECREF(sum);
    return failed;
}

/* _core.LockCore._release with Cooperative._notify in line, for a park
 * (it always accepts its wake-up). */
static int
release(LockBase *self)
{
    if (unbound(self) < 0)
        return -1;
    if (!self->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return -1;
    }
    self->locked = 0;
    Py_ssize_t waiting = PyObject_Length(self->waiters);
    if (waiting <= 0)
        return (int)waiting;
    PyObject *park = PyObject_CallNoArgs(self->popleft);
    if (park == NULL)
        return -1;
    int failed = set_woken(park, 1);
    Py_DECREF(park);
    if (failed)
        return -1;
    return add_woken(self, ONE);
}

static PyObject *
LockBase_release(LockBase *self, PyObject *unused)
{
    if (release(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* What _acquire_steps does for a woken waiter that finds the lock taken
 * meanwhile (by a task that did not wait): wait again, at the back. Not
 * when it has a deadline: then it runs, to see whether its time is up. The
 * scheduler asks before resuming a woken park (_coroutines._taken_back). */
static PyObject *
LockBase_rewait(LockBase *self, PyObject *park)
{
    if (unbound(self) < 0)
        return NULL;
    if (!self->locked)
        Py_RETURN_FALSE;
    int timed;
    if (IS_PARK(park)) {
        timed = ((ParkBase *)park)->deadline != Py_None;
    }
    else {
        PyObject *deadline = PyObject_GetAttr(park, str_deadline);
        if (deadline == NULL)
            return NULL;
        timed = deadline != Py_None;
        Py_DECREF(deadline);
    }
    if (timed)
        Py_RETURN_FALSE;
    if (set_woken(park, 0) < 0 || add_woken(self, MINUS_ONE) < 0)
        return NULL;
    PyObject *done = PyObject_CallOneArg(self->append, park);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    Py_RETURN_TRUE;
}

static PyObject *
LockBase_iter(LockBase *self)
{
    if (unbound(self) < 0)
        return NULL;
    if (!self->locked) {
        int passing = self->fair ? queued(self) : 0;
        if (passing < 0)
            return NULL;
        if (!passing) {
            /* Free and no one to pass: taken without waiting. */
            self->locked = 1;
            return Py_NewRef(self->taken);
        }
    }
    return PyObject_CallMethodNoArgs((PyObject *)self, str_acquire_waiting);
}

static int
LockBase_traverse(LockBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->condition);
    Py_VISIT(self->waiters);
    Py_VISIT(self->popleft);
    Py_VISIT(self->append);
    Py_VISIT(self->woken);
    Py_VISIT(self->taken);
    Py_VISIT(self->held);
    return 0;
}

static int
LockBase_clear(LockBase *self)
{
    Py_CLEAR(self->condition);
    Py_CLEAR(self->waiters);
    Py_CLEAR(self->popleft);
    Py_CLEAR(self->append);
    Py_CLEAR(self->woken);
    Py_CLEAR(self->taken);
    Py_CLEAR(self->held);
    return 0;
}

static void
LockBase_dealloc(LockBase *self)
{
    /* A Python subclass's dealloc untracks first and drops its type after. */
    PyObject_GC_UnTrack(self);
    LockBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef LockBase_members[] = {
    {"_locked", T_BOOL, offsetof(LockBase, locked), 0, "True while some task holds the lock."},
    {"_held", T_OBJECT, offsetof(LockBase, held), READONLY, "What `yield from lock` returns."},
    {NULL},
};

static PyMethodDef LockBase_methods[] = {
    {"_bind", (PyCFunction)LockBase_bind, METH_VARARGS,
     "_bind(condition, waiters, woken): the condition waited for, its waiter list and the woken counts."},
    {"release", (PyCFunction)LockBase_release, METH_NOARGS,
     "Release the lock and wake one waiting task. Never waits."},
    {"_rewait", (PyCFunction)LockBase_rewait, METH_O,
     "_rewait(park) -> bool: put a woken park that would find the lock taken back to wait."},
    {NULL},
};

static PyTypeObject LockBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccoroutines.LockBase",
    .tp_basicsize = sizeof(LockBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The coroutines lock's state, release() and no-wait acquire.",
    .tp_new = PyType_GenericNew,
    .tp_iter = (getiterfunc)LockBase_iter,
    .tp_members = LockBase_members,
    .tp_methods = LockBase_methods,
    .tp_traverse = (traverseproc)LockBase_traverse,
    .tp_clear = (inquiry)LockBase_clear,
    .tp_dealloc = (destructor)LockBase_dealloc,
};

/* -- Held ---------------------------------------------------------------- */

static PyObject *
Held_enter(Held *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyObject *
Held_exit(Held *self, PyObject *const *args, Py_ssize_t nargs)
{
    LockBase *lock = (LockBase *)self->lock;
    if (lock->own_release) {
        if (release(lock) < 0)
            return NULL;
        Py_RETURN_NONE; /* exceptions propagate */
    }
    /* A subclass's release(), as `with` would call it in Python. */
    PyObject *done = PyObject_CallMethodNoArgs(self->lock, str_release);
    if (done == NULL)
        return NULL;
    Py_DECREF(done);
    Py_RETURN_NONE;
}

static int
Held_traverse(Held *self, visitproc visit, void *arg)
{
    Py_VISIT(self->lock);
    return 0;
}

static int
Held_clear(Held *self)
{
    Py_CLEAR(self->lock);
    return 0;
}

static void
Held_dealloc(Held *self)
{
    PyObject_GC_UnTrack(self);
    Held_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Held_methods[] = {
    {"__enter__", (PyCFunction)Held_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Held_exit, METH_FASTCALL, "Release the lock."},
    {NULL},
};

static PyTypeObject HeldType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccoroutines.Held",
    .tp_basicsize = sizeof(Held),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "What `yield from lock` returns: a context manager whose exit releases.",
    .tp_methods = Held_methods,
    .tp_traverse = (traverseproc)Held_traverse,
    .tp_clear = (inquiry)Held_clear,
    .tp_dealloc = (destructor)Held_dealloc,
};

/* -- Park and Running: the scheduler's records, read at every switch ------- */

static int
ParkBase_traverse(ParkBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->owner);
    Py_VISIT(self->condition);
    Py_VISIT(self->deadline);
    return 0;
}

static int
ParkBase_clear(ParkBase *self)
{
    Py_CLEAR(self->owner);
    Py_CLEAR(self->condition);
    Py_CLEAR(self->deadline);
    return 0;
}

static void
ParkBase_dealloc(ParkBase *self)
{
    PyObject_GC_UnTrack(self);
    ParkBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef ParkBase_members[] = {
    {"owner", T_OBJECT, offsetof(ParkBase, owner), 0, "The primitive waited on."},
    {"condition", T_OBJECT, offsetof(ParkBase, condition), 0, "The condition's name."},
    {"deadline", T_OBJECT, offsetof(ParkBase, deadline), 0, "When the wait times out, or None."},
    {"woken", T_BOOL, offsetof(ParkBase, woken), 0, "True once a notify woke it."},
    {NULL},
};

static PyTypeObject ParkBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccoroutines.ParkBase",
    .tp_basicsize = sizeof(ParkBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "A waiting task's park: owner, condition, deadline, woken.",
    .tp_new = PyType_GenericNew,
    .tp_members = ParkBase_members,
    .tp_traverse = (traverseproc)ParkBase_traverse,
    .tp_clear = (inquiry)ParkBase_clear,
    .tp_dealloc = (destructor)ParkBase_dealloc,
};

static int
RunningBase_init(RunningBase *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"index", "name", "generator", "park", NULL};
    PyObject *index, *name, *generator, *park = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO|O:_Running", keywords, &index, &name,
                                     &generator, &park))
        return -1;
    Py_XSETREF(self->index, Py_NewRef(index));
    Py_XSETREF(self->name, Py_NewRef(name));
    Py_XSETREF(self->generator, Py_NewRef(generator));
    Py_XSETREF(self->park, Py_NewRef(park));
    return 0;
}

static int
RunningBase_traverse(RunningBase *self, visitproc visit, void *arg)
{
    Py_VISIT(self->index);
    Py_VISIT(self->name);
    Py_VISIT(self->generator);
    Py_VISIT(self->park);
    return 0;
}

static int
RunningBase_clear(RunningBase *self)
{
    Py_CLEAR(self->index);
    Py_CLEAR(self->name);
    Py_CLEAR(self->generator);
    Py_CLEAR(self->park);
    return 0;
}

static void
RunningBase_dealloc(RunningBase *self)
{
    PyObject_GC_UnTrack(self);
    RunningBase_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMemberDef RunningBase_members[] = {
    {"index", T_OBJECT, offsetof(RunningBase, index), 0, "Its place among the run's tasks."},
    {"name", T_OBJECT, offsetof(RunningBase, name), 0, "The task's name."},
    {"generator", T_OBJECT, offsetof(RunningBase, generator), 0, "The task's generator."},
    {"park", T_OBJECT, offsetof(RunningBase, park), 0, "The park it waits on, or None."},
    {NULL},
};

static PyTypeObject RunningBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccoroutines.RunningBase",
    .tp_basicsize = sizeof(RunningBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "RunningBase(index, name, generator, park=None): a task being run.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)RunningBase_init,
    .tp_members = RunningBase_members,
    .tp_traverse = (traverseproc)RunningBase_traverse,
    .tp_clear = (inquiry)RunningBase_clear,
    .tp_dealloc = (destructor)RunningBase_dealloc,
};

/* -- the round-robin scheduler's common steps ----------------------------- */

/* Events round_robin hands back to the Python scheduler. */
enum { TAKE = 0, YIELDED = 1, RETURNED = 2, RAISED = 3 };

static PyObject *
event(Py_ssize_t turn, int what, PyObject *payload)
{
    return Py_BuildValue("(niO)", turn, what, payload ? payload : Py_None);
}

/* round_robin(live, turn, dropped) -> (turn, event, payload)
 *
 * CoroutinesRuntime._schedule's round-robin steps for a run without a
 * timeout, as long as they are the common ones: resume a task that does not
 * wait, keep the bare `yield` or Park it yields, and put back a woken park
 * that would find its lock taken (its owner's _rewait). It stops and hands
 * back, without doing it, any turn the Python scheduler must take itself:
 *   (turn, TAKE, None)       a task that waits and was not put back: the
 *                            Python code picks what to run (time, idling)
 * or what a resumption did, for the Python code to settle:
 *   (turn, YIELDED, request) something other than None or a Park, or a
 *                            wait dropped without `yield from` (`dropped`)
 *   (turn, RETURNED, value)  the task finished
 *   (turn, RAISED, exc)      the task raised an Exception
 * A BaseException that is not an Exception (KeyboardInterrupt, the
 * watchdog's) propagates, as from the Python loop. The Python loop is the
 * reference: tests/test_coroutines.py runs every scenario through both. */
static PyObject *
round_robin(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "round_robin(live: list, turn: int, dropped: list)");
        return NULL;
    }
    PyObject *live = args[0], *dropped = args[2];
    Py_ssize_t turn = PyLong_AsSsize_t(args[1]);
    if (turn == -1 && PyErr_Occurred())
        return NULL;
    for (;;) {
        Py_ssize_t count = PyList_GET_SIZE(live);
        if (count == 0)
            return event(turn, TAKE, NULL);
        if (turn >= count)
            turn = 0;
        PyObject *item = PyList_GET_ITEM(live, turn);
        if (!PyObject_TypeCheck(item, &RunningBaseType))
            return PyErr_Format(PyExc_TypeError, "live holds a %T, not a _Running", item);
        RunningBase *running = (RunningBase *)item;
        PyObject *park = running->park;
        if (park != NULL && park != Py_None) {
            /* Waiting: only a woken park put back by its owner is a turn
             * taken here; anything else is the Python code's. */
            if (!IS_PARK(park) || !((ParkBase *)park)->woken)
                return event(turn, TAKE, NULL);
            PyObject *owner = ((ParkBase *)park)->owner;
            PyObject *back;
            if (owner != NULL && PyObject_TypeCheck(owner, &LockBaseType))
                back = LockBase_rewait((LockBase *)owner, park);
            else
                back = PyObject_CallMethodOneArg(owner ? owner : Py_None, str_rewait, park);
            if (back == NULL)
                return NULL;
            int put_back = back == Py_True;
            Py_DECREF(back);
            if (!put_back)
                return event(turn, TAKE, NULL);
            turn++;
            continue;
        }
        PyObject *generator = Py_NewRef(running->generator);
        PyObject *result = NULL;
        Py_INCREF(running); /* kept alive across the resumption, whatever it does */
        PySendResult status = PyIter_Send(generator, Py_None, &result);
        Py_DECREF(generator);
        if (status == PYGEN_ERROR) {
            Py_DECREF(running);
            if (!PyErr_ExceptionMatches(PyExc_Exception))
                return NULL;
            PyObject *type, *exc, *traceback;
            PyErr_Fetch(&type, &exc, &traceback);
            PyErr_NormalizeException(&type, &exc, &traceback);
            if (traceback != NULL)
                PyException_SetTraceback(exc, traceback);
            Py_XDECREF(type);
            Py_XDECREF(traceback);
            PyObject *done = event(turn, RAISED, exc);
            Py_XDECREF(exc);
            return done;
        }
        if (status == PYGEN_RETURN || PyList_GET_SIZE(dropped) != 0
            || (result != Py_None && !IS_PARK(result))) {
            PyObject *done = event(turn, status == PYGEN_RETURN ? RETURNED : YIELDED, result);
            Py_DECREF(result);
            Py_DECREF(running);
            return done;
        }
        Py_XSETREF(running->park, result);
        Py_DECREF(running);
        turn++;
    }
}

static PyMethodDef module_methods[] = {
    {"round_robin", (PyCFunction)(void (*)(void))round_robin, METH_FASTCALL,
     "round_robin(live, turn, dropped) -> (turn, event, payload): the "
     "round-robin scheduler's common steps; see _ccoroutines.c."},
    {NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "critsec.runtimes._ccoroutines",
    .m_doc = "The hot path of the coroutines runtime's lock in C.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__ccoroutines(void)
{
    if (PyType_Ready(&LockBaseType) < 0 || PyType_Ready(&HeldType) < 0
        || PyType_Ready(&TakenType) < 0 || PyType_Ready(&ParkBaseType) < 0
        || PyType_Ready(&RunningBaseType) < 0)
        return NULL;
    str_popleft = PyUnicode_InternFromString("popleft");
    str_woken = PyUnicode_InternFromString("woken");
    str_acquire_waiting = PyUnicode_InternFromString("_acquire_waiting");
    str_fair = PyUnicode_InternFromString("_fair");
    str_append = PyUnicode_InternFromString("append");
    str_deadline = PyUnicode_InternFromString("deadline");
    str_park = PyUnicode_InternFromString("park");
    str_release = PyUnicode_InternFromString("release");
    str_owner = PyUnicode_InternFromString("owner");
    str_rewait = PyUnicode_InternFromString("_rewait");
    str_generator = PyUnicode_InternFromString("generator");
    ZERO = PyLong_FromLong(0);
    ONE = PyLong_FromLong(1);
    MINUS_ONE = PyLong_FromLong(-1);
    if (!str_popleft || !str_woken || !str_acquire_waiting || !str_fair || !str_append
        || !str_deadline || !str_park || !str_release || !str_owner || !str_rewait || !str_generator || !ZERO
        || !ONE || !MINUS_ONE)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddIntConstant(module, "TAKE", TAKE) < 0
        || PyModule_AddIntConstant(module, "YIELDED", YIELDED) < 0
        || PyModule_AddIntConstant(module, "RETURNED", RETURNED) < 0
        || PyModule_AddIntConstant(module, "RAISED", RAISED) < 0
        || PyModule_AddObjectRef(module, "LockBase", (PyObject *)&LockBaseType) < 0
        || PyModule_AddObjectRef(module, "Held", (PyObject *)&HeldType) < 0
        || PyModule_AddObjectRef(module, "ParkBase", (PyObject *)&ParkBaseType) < 0
        || PyModule_AddObjectRef(module, "RunningBase", (PyObject *)&RunningBaseType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
