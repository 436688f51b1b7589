/* critsec.runtimes._ccounter: the cooperative runtimes' counter in C.
 *
 * In the coroutines and asyncio runtimes one task runs at a time and
 * switches only where it yields, so the counter needs no lock: it is
 * _core.PlainCounter (an int, a type check on every write). As Python, its
 * `value` is a property: `counter.value += 1` makes two Python calls, which
 * on 3.11 cost more than a whole switch of the coroutines scheduler (see
 * docs/performance.md). Here `value` is a C attribute with the same checks
 * and errors, so the lesson's loop costs what a plain attribute costs.
 * PlainCounter stays the reference (the threads runtime's counter is built
 * on it, and tests/test_ccounter.py holds the two to one behaviour).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject_HEAD
    PyObject *value; /* an int, never NULL once initialised */
} Counter;

/* 0 if a counter may hold `value` (an int, not a bool); else TypeError and -1.
 * The message is check_counter_value's. */
static int
check(PyObject *value)
{
    if (PyLong_CheckExact(value) || (PyLong_Check(value) && !PyBool_Check(value)))
        return 0;
    PyObject *name = PyType_GetName(Py_TYPE(value));
    if (name != NULL) {
        PyErr_Format(PyExc_TypeError, "a counter holds an int, got %U", name);
        Py_DECREF(name);
    }
    return -1;
}

static int
Counter_init(Counter *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"initial", NULL};
    PyObject *initial = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:Counter", keywords, &initial))
        return -1;
    if (initial == NULL)
        initial = PyLong_FromLong(0);
    else if (check(initial) < 0)
        return -1;
    else
        Py_INCREF(initial);
    if (initial == NULL)
        return -1;
    Py_XSETREF(self->value, initial);
    return 0;
}

static void
Counter_dealloc(Counter *self)
{
    Py_XDECREF(self->value);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Counter_get_value(Counter *self, void *closure)
{
    if (self->value == NULL) /* a subclass's __init__ did not call ours */
        return PyLong_FromLong(0);
    return Py_NewRef(self->value);
}

static int
Counter_set_value(Counter *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "a counter's value cannot be deleted");
        return -1;
    }
    if (!PyLong_CheckExact(value) && check(value) < 0)
        return -1;
    Py_XSETREF(self->value, Py_NewRef(value));
    return 0;
}

static PyObject *
Counter_add(Counter *self, PyObject *delta)
{
    if (!PyLong_CheckExact(delta) && check(delta) < 0)
        return NULL;
    PyObject *sum = self->value ? PyNumber_Add(self->value, delta) : Py_NewRef(delta);
    if (sum == NULL)
        return NULL;
    Py_XSETREF(self->value, sum);
    return Py_NewRef(sum);
}

static PyGetSetDef Counter_getset[] = {
    {"value", (getter)Counter_get_value, (setter)Counter_set_value,
     "The int held: a plain read or a plain write (TypeError for anything but an int).", NULL},
    {NULL},
};

static PyMethodDef Counter_methods[] = {
    {"add", (PyCFunction)Counter_add, METH_O, "add(delta) -> int: add `delta`; return the new value."},
    {NULL},
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "critsec.runtimes._ccounter.Counter",
    .tp_basicsize = sizeof(Counter),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Counter(initial=0): an int counter for tasks that switch only where they yield.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_getset = Counter_getset,
    .tp_methods = Counter_methods,
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "critsec.runtimes._ccounter",
    .m_doc = "The cooperative runtimes' counter in C.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__ccounter(void)
{
    if (PyType_Ready(&CounterType) < 0)
        return NULL;
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Counter", (PyObject *)&CounterType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
