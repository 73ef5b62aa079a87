/* runstore._fastlog: log()'s common call in C (see runstore/_fast.py).
 *
 * A Cursor holds a run's step and its ring's producer state; Run.log's Python path reads
 * and writes them as attributes. Cursor.log() is the run's log(): a row of floats whose
 * keys the hand-off has packed before, with no step= or commit=, is put() here: checked,
 * packed into the ring with its CRC, the step moved, its values kept for the summary.
 * Anything else (a first row, a new key, an int, a pending row, define_metric rules, a
 * lock held by another thread, a full ring, a closed cursor) changes nothing here and
 * goes to Run.log. This code holds the GIL throughout and runs no Python code before its
 * last write, so no other thread sees a half-made call.
 *
 * The summary's dict is not touched per row: the newest row's values stay here as
 * doubles, and fold() puts them in before anything reads or changes the summary
 * (Summary._data) or a row of another layout comes. A dict update per row touched a
 * cache line per key and per old value, most of the call's cost after the training
 * loop's own work had evicted them.
 *
 * The record's layout is _ring.py's (PACKED, layout, step, timestamp, runtime, values),
 * little-endian; its constants come from _ring through bind(), and a big-endian build
 * does not import.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <structmember.h>

#define PACKED_HEAD 32 /* u8 kind, 3 pad, u32 layout, i64 step, f64 timestamp, f64 runtime */
#define MAX_KEYS 4096  /* a bigger row is rare: the Python path logs it */

static uint32_t crc_table[256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

/* zlib.crc32's CRC-32 (the ring's readers check it with zlib). */
static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--)
        c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

typedef struct {
    PyObject_HEAD
    /* Shared with the Python path, which reads and writes them as attributes. */
    unsigned long long step;      /* the run's next step */
    unsigned long long head;      /* the producer's bytes written into the ring */
    unsigned long long tail_seen; /* the consumer's tail, as last read */
    unsigned long long puts;      /* records handed over */
    char open;                    /* put() may log (bind() opens it) */
    /* Set by bind(). */
    double t0, offset;
    Py_buffer view; /* the ring's map, held from bind() to unbind() */
    int has_view;
    PyObject *handoff, *pending, *rules, *version, *data, *layouts;
    PyObject *run_locked, *ring_locked; /* the two locks' bound locked() */
    PyObject *fallback; /* Run.log of the run, bound: what log() calls when put() can't */
    long long capacity, largest, header, head_field;
    unsigned char packed;
    unsigned long long notice_every;
    /* The layout of the last row packed here: its key objects, and its number. */
    PyObject *keys;
    uint32_t layout;
    /* The summary's newest values, not folded into its dict yet (fold()): the last row
     * put() logged, under last_keys, and how many rows that stands for. */
    PyObject *last_keys;
    double *last;
    Py_ssize_t last_room;
    unsigned long long unfolded;
} Cursor;

static int
cursor_traverse(Cursor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->handoff);
    Py_VISIT(self->pending);
    Py_VISIT(self->rules);
    Py_VISIT(self->version);
    Py_VISIT(self->data);
    Py_VISIT(self->layouts);
    Py_VISIT(self->run_locked);
    Py_VISIT(self->ring_locked);
    Py_VISIT(self->keys);
    Py_VISIT(self->last_keys);
    Py_VISIT(self->fallback);
    if (self->has_view)
        Py_VISIT(self->view.obj);
    return 0;
}

/* Fold the newest values into the summary's dict (and count the rows in its version):
 * before anything reads or changes the summary (Summary._data), and before put() keeps
 * a row of another layout. */
static int
fold(Cursor *self)
{
    if (self->unfolded == 0 || self->data == NULL)
        return 0;
    PyObject *keys = self->last_keys;
    Py_ssize_t n = PyTuple_GET_SIZE(keys);
    unsigned long long rows = self->unfolded;
    self->unfolded = 0;
    Py_INCREF(keys);
    int failed = 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        PyObject *value = PyFloat_FromDouble(self->last[i]);
        failed = value == NULL || PyDict_SetItem(self->data, PyTuple_GET_ITEM(keys, i), value) < 0;
        Py_XDECREF(value);
    }
    Py_DECREF(keys);
    if (failed)
        return -1;
    PyObject *old = PyList_GET_ITEM(self->version, 0);
    PyObject *sum = PyLong_FromUnsignedLongLong(rows);
    PyObject *version = sum == NULL ? NULL : PyNumber_Add(old, sum);
    Py_XDECREF(sum);
    if (version == NULL)
        return -1;
    PyList_SetItem(self->version, 0, version); /* steals it */
    return 0;
}

static int
cursor_unbind(Cursor *self)
{
    int result = fold(self);
    self->open = 0;
    if (self->has_view) {
        self->has_view = 0;
        PyBuffer_Release(&self->view);
    }
    Py_CLEAR(self->handoff);
    Py_CLEAR(self->pending);
    Py_CLEAR(self->rules);
    Py_CLEAR(self->version);
    Py_CLEAR(self->data);
    Py_CLEAR(self->layouts);
    Py_CLEAR(self->run_locked);
    Py_CLEAR(self->ring_locked);
    Py_CLEAR(self->keys);
    Py_CLEAR(self->last_keys);
    self->unfolded = 0;
    return result;
}

static int
cursor_clear(Cursor *self)
{
    self->unfolded = 0; /* the GC breaks a cycle: nobody reads the summary any more */
    cursor_unbind(self);
    PyErr_Clear();
    Py_CLEAR(self->fallback);
    return 0;
}

static void
cursor_dealloc(Cursor *self)
{
    PyObject_GC_UnTrack(self);
    cursor_clear(self);
    PyMem_Free(self->last);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
exact(PyObject *v, int ok, const char *name)
{
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "Cursor.bind: %s has the wrong type", name);
        return NULL;
    }
    Py_INCREF(v);
    return v;
}

static PyObject *
cursor_bind(Cursor *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"handoff", "map", "capacity", "largest", "header",
                             "head_field", "packed", "notice_every", "layouts", "run_lock",
                             "ring_lock", "t0", "offset", "pending", "summary_data",
                             "summary_rules", "summary_version", "fallback", "packed_head",
                             NULL};
    PyObject *handoff, *map, *layouts, *run_lock, *ring_lock, *pending, *data, *rules,
        *version, *fallback;
    long long capacity, largest, header, head_field, packed_head;
    unsigned char packed;
    unsigned long long notice_every;
    double t0, offset;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOLLLLbKOOOddOOOOOL:bind", kwlist, &handoff,
                                     &map, &capacity, &largest, &header, &head_field,
                                     &packed, &notice_every, &layouts, &run_lock,
                                     &ring_lock, &t0, &offset, &pending, &data, &rules,
                                     &version, &fallback, &packed_head))
        return NULL;
    if (packed_head != PACKED_HEAD) {
        PyErr_Format(PyExc_ValueError, "Cursor.bind: a packed row's head is %lld bytes, "
                     "this build writes %d", packed_head, PACKED_HEAD);
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "Cursor.bind: fallback must be callable");
        return NULL;
    }
    if (cursor_unbind(self) < 0)
        return NULL;
    if (capacity <= 0 || largest < 0 || header < 0 || head_field < 0 || head_field + 8 > header) {
        PyErr_SetString(PyExc_ValueError, "Cursor.bind: a ring's sizes are out of range");
        return NULL;
    }
    if (PyObject_GetBuffer(map, &self->view, PyBUF_WRITABLE) < 0)
        return NULL;
    self->has_view = 1;
    self->capacity = capacity;
    self->largest = largest;
    self->header = header;
    self->head_field = head_field;
    self->packed = packed;
    self->notice_every = notice_every;
    self->t0 = t0;
    self->offset = offset;
    Py_INCREF(handoff);
    self->handoff = handoff;
    Py_INCREF(fallback);
    Py_XSETREF(self->fallback, fallback); /* kept after unbind(): log() goes on calling it */
    if (self->view.len < header + capacity
        || !(self->layouts = exact(layouts, PyDict_CheckExact(layouts), "layouts"))
        || !(self->pending = exact(pending, PyDict_CheckExact(pending), "pending"))
        || !(self->data = exact(data, PyDict_CheckExact(data), "summary_data"))
        || !(self->rules = exact(rules, PyList_CheckExact(rules), "summary_rules"))
        || !(self->version = exact(version, PyList_CheckExact(version)
                                   && PyList_GET_SIZE(version) == 1, "summary_version"))
        || !(self->run_locked = PyObject_GetAttrString(run_lock, "locked"))
        || !(self->ring_locked = PyObject_GetAttrString(ring_lock, "locked"))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "Cursor.bind: the map is smaller than the ring");
        cursor_unbind(self);
        return NULL;
    }
    self->open = 1;
    Py_RETURN_NONE;
}

static PyObject *
cursor_unbind_py(Cursor *self, PyObject *unused)
{
    if (cursor_unbind(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
cursor_fold_py(Cursor *self, PyObject *unused)
{
    if (fold(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int
unlocked(PyObject *locked)
{
    PyObject *r = PyObject_CallNoArgs(locked);
    if (r == NULL) {
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(r);
    return r == Py_False;
}

/* The layout of the row's keys (in order) as the hand-off numbered them: 1 found, 0 not
 * (yet). The last row's key objects are remembered, so a loop that builds its rows from
 * the same key objects pays one pointer compare per key. */
static int
find_layout(Cursor *self, PyObject *row, Py_ssize_t n)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0, i = 0;
    if (self->keys != NULL && PyTuple_GET_SIZE(self->keys) == n) {
        int same = 1;
        while (same && PyDict_Next(row, &pos, &key, &value))
            same = PyTuple_GET_ITEM(self->keys, i++) == key;
        if (same)
            return 1;
    }
    PyObject *keys = PyTuple_New(n);
    if (keys == NULL) {
        PyErr_Clear();
        return 0;
    }
    /* A new tuple may start a garbage collection, which runs Python code (finalizers,
     * gc.callbacks) and may let other threads run: the row may have changed size, or
     * the cursor been closed (finish(), which unbinds it) meanwhile. */
    if (!self->open || PyDict_GET_SIZE(row) != n) {
        Py_DECREF(keys);
        return 0;
    }
    pos = 0;
    i = 0;
    while (PyDict_Next(row, &pos, &key, &value)) {
        if (!PyUnicode_CheckExact(key)) {
            Py_DECREF(keys);
            return 0;
        }
        Py_INCREF(key);
        PyTuple_SET_ITEM(keys, i++, key);
    }
    PyObject *layout = PyDict_GetItemWithError(self->layouts, keys);
    long long number = -1;
    if (layout != NULL && PyTuple_CheckExact(layout) && PyTuple_GET_SIZE(layout) >= 1
        && PyLong_CheckExact(PyTuple_GET_ITEM(layout, 0)))
        number = PyLong_AsLongLong(PyTuple_GET_ITEM(layout, 0));
    if (number < 0 || number > UINT32_MAX) {
        PyErr_Clear();
        Py_DECREF(keys);
        return 0;
    }
    Py_XSETREF(self->keys, keys);
    self->layout = (uint32_t)number;
    return 1;
}

/* Room for the newest values of a row of n keys (kept for fold()). */
static int
last_room(Cursor *self, Py_ssize_t n)
{
    if (n <= self->last_room)
        return 1;
    double *last = PyMem_Realloc(self->last, (size_t)n * sizeof(double));
    if (last == NULL)
        return 0;
    self->last = last;
    self->last_room = n;
    return 1;
}

static PyObject *
cursor_put(Cursor *self, PyObject *row)
{
    if (!self->open || !PyDict_CheckExact(row))
        Py_RETURN_FALSE;
    Py_ssize_t n = PyDict_GET_SIZE(row);
    if (n == 0 || n > MAX_KEYS)
        Py_RETURN_FALSE;
    /* Keys of a known layout. First: finding it may run Python code (see find_layout),
     * so the rest is checked after it, and nothing from there on runs any. */
    if (!find_layout(self, row, n))
        Py_RETURN_FALSE;
    /* No pending row (log(commit=False) or log(step=...) before), a summary of last
     * values (no define_metric rules), a step the store can hold. */
    if (PyDict_GET_SIZE(self->pending) != 0
        || PyList_GET_SIZE(self->rules) != 0 || self->step >= (unsigned long long)INT64_MAX)
        Py_RETURN_FALSE;
    /* Floats alone. */
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(row, &pos, &key, &value)) {
        if (!PyFloat_CheckExact(value))
            Py_RETURN_FALSE;
    }
    /* Room in the ring, as Ring.put's fast branch sees it. */
    unsigned long long payload = PACKED_HEAD + 8 * (unsigned long long)n;
    unsigned long long size = (payload + 15) & ~7ULL;
    unsigned long long head = self->head, capacity = (unsigned long long)self->capacity;
    unsigned long long at = head % capacity;
    if (size > (unsigned long long)self->largest || at + size > capacity
        || head + size - self->tail_seen > capacity)
        Py_RETURN_FALSE;
    /* Nobody else is between the run's or the ring's steps (the Python path holds these
     * locks while it works, and may have let the GIL go half way). */
    if (!unlocked(self->run_locked) || !unlocked(self->ring_locked))
        Py_RETURN_FALSE;
    /* The summary's newest values are kept here as doubles; those of a row of another
     * layout are folded into its dict first. */
    if (self->last_keys != self->keys) {
        if (fold(self) < 0)
            return NULL;
        Py_INCREF(self->keys);
        Py_XSETREF(self->last_keys, self->keys);
    }
    if (!last_room(self, n))
        return PyErr_NoMemory();

    struct timespec now;
    timespec_get(&now, TIME_UTC);
    double ts = (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
    double runtime = ts - self->t0 + self->offset;
    int64_t step = (int64_t)self->step;
    uint32_t layout = self->layout;
    unsigned char *record = (unsigned char *)self->view.buf + self->header + at;
    unsigned char *p = record + 8;
    p[0] = self->packed;
    p[1] = p[2] = p[3] = 0;
    memcpy(p + 4, &layout, 4);
    memcpy(p + 8, &step, 8);
    memcpy(p + 16, &ts, 8);
    memcpy(p + 24, &runtime, 8);
    double *last = self->last;
    unsigned char *out = p + PACKED_HEAD;
    pos = 0;
    while (PyDict_Next(row, &pos, &key, &value)) {
        double d = PyFloat_AS_DOUBLE(value);
        memcpy(out, &d, 8);
        out += 8;
        *last++ = d;
    }
    uint32_t fields[2] = {(uint32_t)payload, crc32_of(p, (size_t)payload)};
    memcpy(record, fields, 8);
#if defined(__GNUC__) || defined(__clang__)
    __atomic_thread_fence(__ATOMIC_RELEASE); /* the record before the head that shows it */
#endif
    self->head = head + size;
    memcpy((unsigned char *)self->view.buf + self->head_field, &self->head, 8);
    self->step++;
    self->unfolded++;
    if ((++self->puts & self->notice_every) == 0) {
        PyObject *r = PyObject_CallMethod(self->handoff, "_forward_notices", NULL);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
    }
    Py_RETURN_TRUE;
}

/* run.log(data, step=None, commit=None): put() when it can, else Run.log (fallback). */
static PyObject *
cursor_log(Cursor *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    int common = nargs >= 1 && nargs + nkw <= 3;
    for (Py_ssize_t i = 1; common && i < nargs + nkw; i++)
        common = args[i] == Py_None;
    /* Keywords only step= and commit=, each not given by position as well: any other
     * (a typo, data=) is Run.log's TypeError, not a row logged. */
    for (Py_ssize_t i = 0; common && i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        common = (nargs < 2 && PyUnicode_CompareWithASCIIString(name, "step") == 0)
                 || (nargs < 3 && PyUnicode_CompareWithASCIIString(name, "commit") == 0);
    }
    if (common && self->open) {
        PyObject *done = cursor_put(self, args[0]);
        if (done == NULL)
            return NULL;
        Py_DECREF(done);
        if (done == Py_True)
            Py_RETURN_NONE;
    }
    if (self->fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Cursor.log: not bound to a run");
        return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, (size_t)nargs, kwnames);
}

static PyMemberDef cursor_members[] = {
    {"step", T_ULONGLONG, offsetof(Cursor, step), 0, "the run's next step"},
    {"head", T_ULONGLONG, offsetof(Cursor, head), 0, "bytes written into the ring"},
    {"tail_seen", T_ULONGLONG, offsetof(Cursor, tail_seen), 0, "the tail, as last read"},
    {"puts", T_ULONGLONG, offsetof(Cursor, puts), 0, "records handed over"},
    {"open", T_BOOL, offsetof(Cursor, open), 0, "put() may log (bind() opens it)"},
    {NULL, 0, 0, 0, NULL},
};

static PyMethodDef cursor_methods[] = {
    {"put", (PyCFunction)cursor_put, METH_O,
     "put(row) -> bool\n\nLog `row` as the next step if it is the common case: True when "
     "done, False (nothing changed) when Run.log's Python path must do it."},
    {"log", (PyCFunction)(void (*)(void))cursor_log, METH_FASTCALL | METH_KEYWORDS,
     "log($self, data, step=None, commit=None)\n--\n\nLog a dict of metrics at the current "
     "step (wandb's step rules): the run's log(), the common call in C (runstore/_fast.py)."},
    {"bind", (PyCFunction)(void (*)(void))cursor_bind, METH_VARARGS | METH_KEYWORDS,
     "bind(...)\n\nWhat put() works with (see runstore/_fast.py); opens the cursor."},
    {"unbind", (PyCFunction)cursor_unbind_py, METH_NOARGS,
     "unbind()\n\nFold the summary, close the cursor and let go of what bind() gave it."},
    {"fold", (PyCFunction)cursor_fold_py, METH_NOARGS,
     "fold()\n\nPut the newest logged values into the summary's dict."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject CursorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "runstore._fastlog.Cursor",
    .tp_basicsize = sizeof(Cursor),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Cursor()\n\nA run's step and its ring's producer state, shared by Run.log's "
              "Python path and put() (see runstore/_fast.py).",
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)cursor_dealloc,
    .tp_traverse = (traverseproc)cursor_traverse,
    .tp_clear = (inquiry)cursor_clear,
    .tp_methods = cursor_methods,
    .tp_members = cursor_members,
};

static PyObject *
crc32_py(PyObject *module, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t c = crc32_of(view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(c);
}

static PyMethodDef module_methods[] = {
    {"crc32", crc32_py, METH_O, "crc32(data) -> int\n\nThe CRC the ring's records carry."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastlog_module = {
    PyModuleDef_HEAD_INIT, "_fastlog", "The common log() call in C (see runstore/_fast.py).",
    -1, module_methods,
};

PyMODINIT_FUNC
PyInit__fastlog(void)
{
#if PY_BIG_ENDIAN
    PyErr_SetString(PyExc_ImportError, "runstore._fastlog writes little-endian records");
    return NULL;
#endif
#ifdef Py_GIL_DISABLED
    /* put() relies on the GIL: no other thread runs while it checks and writes. */
    PyErr_SetString(PyExc_ImportError, "runstore._fastlog needs the GIL");
    return NULL;
#endif
    crc_init();
    if (PyType_Ready(&CursorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastlog_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&CursorType);
    if (PyModule_AddObject(m, "Cursor", (PyObject *)&CursorType) < 0) {
        Py_DECREF(&CursorType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
