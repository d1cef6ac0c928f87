/* Plain Python values straight from libyaml, for the common shape of a config file.
 *
 * `values(text, implicit_starts, typed, key)` gives what `yaml_values.EventBuilder(...).build()` gives without
 * positions, or raises `Declined` whenever it cannot be sure of giving exactly that (anchors, aliases, tags,
 * keys that are not plain strings, duplicate keys, several documents, malformed text, deep nesting, or any
 * exception from a callback); the caller then reads the text with the Python event reader, which also words
 * any error. PyYAML's own libyaml binding spends most of its time making an event and two mark objects per
 * node; this builds the values from libyaml's C events instead.
 *
 * Scalars: quoted text, and plain text that starts with no character in `implicit_starts`, is a string.
 * Any other plain scalar is typed by `typed(None, text, True)`; a plain key that is not certainly a string is
 * checked by `key(text)`, which answers whether it is one (else this declines). Both answers depend on the text
 * only, so each distinct text is asked once per call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <yaml.h>

/* Deeper documents are left to the Python reader (and its recursion limit): real configs nest about ten deep. */
#define MAX_DEPTH 100
/* Scalar texts up to CACHE_TEXT bytes are decoded (and typed) once per call, in a table of CACHE_SLOTS slots
 * filled to at most half, so hostile text cannot make it large; other texts are decoded each time. */
#define CACHE_TEXT 64
#define CACHE_SLOTS 16384

static PyObject *Declined;

typedef struct {
    PyObject *text;          /* the text as str (ASCII only), or NULL for a free slot */
    PyObject *typed;         /* typed(None, text, True) when known and immutable, else NULL */
    uint32_t hash;           /* of the text's bytes */
    unsigned char length;    /* of the text */
    unsigned char plain_key; /* key(text) accepted it */
} Entry;

typedef struct {
    yaml_parser_t parser;
    unsigned char starts[256]; /* first bytes a plain scalar must be typed for */
    PyObject *typed;           /* borrowed */
    PyObject *key;             /* borrowed */
    Entry *cache;              /* CACHE_SLOTS entries */
    size_t cached;             /* entries in use */
} Builder;

static PyObject *build(Builder *b, yaml_event_t *event, int depth);

static PyObject *
decline(void)
{
    PyErr_SetNone(Declined);
    return NULL;
}

/* Turns an ordinary exception raised while building into Declined: the Python reader meets the same text
 * and raises (or not) exactly as it does. Interrupts and memory errors pass through. */
static PyObject *
decline_on_exception(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception) && !PyErr_ExceptionMatches(PyExc_MemoryError)) {
        PyErr_Clear();
        PyErr_SetNone(Declined);
    }
    return NULL;
}

static int
next_event(Builder *b, yaml_event_t *event)
{
    if (!yaml_parser_parse(&b->parser, event)) {
        /* libyaml leaves the event empty when it fails. */
        PyErr_SetNone(Declined);
        return -1;
    }
    return 0;
}

static PyObject *
scalar_text(const yaml_event_t *event)
{
    PyObject *text = PyUnicode_DecodeUTF8(
        (const char *)event->data.scalar.value, (Py_ssize_t)event->data.scalar.length, "strict");
    if (text == NULL) {
        return decline_on_exception();
    }
    return text;
}

/* Whether a plain scalar's text may be of a type other than str. */
static int
needs_typing(const Builder *b, const yaml_event_t *event)
{
    return event->data.scalar.length == 0 || b->starts[event->data.scalar.value[0]];
}

static int
memoizable(PyObject *value)
{
    return value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) || PyFloat_CheckExact(value) ||
           PyUnicode_CheckExact(value);
}

/* The cache entry of a scalar's text: the one holding it, a free slot to fill (text NULL), or NULL when the
 * text is too long or the table is full. */
static Entry *
cache_slot(Builder *b, const yaml_event_t *event)
{
    size_t length = event->data.scalar.length;
    if (length > CACHE_TEXT) {
        return NULL;
    }
    const unsigned char *bytes = event->data.scalar.value;
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < length; i++) {
        hash = (hash ^ bytes[i]) * 16777619u;
    }
    size_t mask = CACHE_SLOTS - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        Entry *entry = &b->cache[i];
        if (entry->text == NULL) {
            if (b->cached >= CACHE_SLOTS / 2) {
                return NULL;
            }
            entry->hash = hash;
            entry->length = (unsigned char)length;
            return entry;
        }
        if (entry->hash == hash && entry->length == length &&
            memcmp(PyUnicode_DATA(entry->text), bytes, length) == 0) {
            return entry;
        }
    }
}

/* A scalar's text as a new reference, from the cache (`entry`, which may be NULL) when there. */
static PyObject *
cached_text(Builder *b, Entry *entry, const yaml_event_t *event)
{
    if (entry != NULL && entry->text != NULL) {
        Py_INCREF(entry->text);
        return entry->text;
    }
    PyObject *text = scalar_text(event);
    if (text != NULL && entry != NULL && PyUnicode_IS_ASCII(text)) {
        /* ASCII text's characters are its UTF-8 bytes, which `cache_slot` compares with. */
        Py_INCREF(text);
        entry->text = text;
        b->cached++;
    }
    return text;
}

/* A scalar value; consumes nothing (the caller deletes the event). */
static PyObject *
scalar(Builder *b, const yaml_event_t *event)
{
    if (event->data.scalar.anchor != NULL || event->data.scalar.tag != NULL) {
        return decline();
    }
    int typing = event->data.scalar.plain_implicit && needs_typing(b, event);
    Entry *entry = cache_slot(b, event);
    if (typing && entry != NULL && entry->typed != NULL) {
        Py_INCREF(entry->typed);
        return entry->typed;
    }
    PyObject *text = cached_text(b, entry, event);
    if (text == NULL || !typing) {
        return text;
    }
    PyObject *args[3] = {Py_None, text, Py_True};
    PyObject *value = PyObject_Vectorcall(b->typed, args, 3, NULL);
    if (value == NULL) {
        Py_DECREF(text);
        return decline_on_exception();
    }
    if (entry != NULL && entry->text == text && memoizable(value)) {
        Py_INCREF(value);
        entry->typed = value;
    }
    Py_DECREF(text);
    return value;
}

/* A mapping key's text; consumes nothing (the caller deletes the event). */
static PyObject *
key_text(Builder *b, const yaml_event_t *event)
{
    if (event->type != YAML_SCALAR_EVENT || event->data.scalar.anchor != NULL ||
        event->data.scalar.tag != NULL) {
        return decline(); /* a complex key, an alias, or a key with a tag or an anchor */
    }
    int resolve = event->data.scalar.plain_implicit && needs_typing(b, event);
    Entry *entry = cache_slot(b, event);
    if (resolve && entry != NULL && entry->plain_key) {
        Py_INCREF(entry->text);
        return entry->text;
    }
    PyObject *text = cached_text(b, entry, event);
    if (text == NULL || !resolve) {
        return text;
    }
    PyObject *args[1] = {text};
    PyObject *answer = PyObject_Vectorcall(b->key, args, 1, NULL);
    int accepted = answer == NULL ? -1 : PyObject_IsTrue(answer);
    Py_XDECREF(answer);
    if (accepted <= 0) {
        Py_DECREF(text);
        /* a typed key (`1:`, `true:`, `null:`, empty) or a merge key */
        return accepted == 0 ? decline() : decline_on_exception();
    }
    if (entry != NULL && entry->text == text) {
        entry->plain_key = 1;
    }
    return text;
}

static PyObject *
mapping(Builder *b, int depth)
{
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    for (;;) {
        yaml_event_t event;
        if (next_event(b, &event) < 0) {
            goto fail;
        }
        if (event.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&event);
            return out;
        }
        PyObject *key = key_text(b, &event);
        yaml_event_delete(&event);
        if (key == NULL) {
            goto fail;
        }
        int seen = PyDict_Contains(out, key);
        if (seen != 0) {
            Py_DECREF(key);
            if (seen > 0) {
                decline(); /* a duplicate key: the node reader reports it */
            }
            goto fail;
        }
        if (next_event(b, &event) < 0) {
            Py_DECREF(key);
            goto fail;
        }
        PyObject *value = build(b, &event, depth);
        if (value == NULL) {
            Py_DECREF(key);
            goto fail;
        }
        int set = PyDict_SetItem(out, key, value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (set < 0) {
            goto fail;
        }
    }
fail:
    Py_DECREF(out);
    return NULL;
}

static PyObject *
sequence(Builder *b, int depth)
{
    PyObject *items = PyList_New(0);
    if (items == NULL) {
        return NULL;
    }
    for (;;) {
        yaml_event_t event;
        if (next_event(b, &event) < 0) {
            goto fail;
        }
        if (event.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&event);
            return items;
        }
        PyObject *item = build(b, &event, depth);
        if (item == NULL) {
            goto fail;
        }
        int added = PyList_Append(items, item);
        Py_DECREF(item);
        if (added < 0) {
            goto fail;
        }
    }
fail:
    Py_DECREF(items);
    return NULL;
}

/* The value starting at `event`, which this deletes. */
static PyObject *
build(Builder *b, yaml_event_t *event, int depth)
{
    PyObject *value;
    int plain_collection;
    switch (event->type) {
    case YAML_SCALAR_EVENT:
        value = scalar(b, event);
        yaml_event_delete(event);
        return value;
    case YAML_MAPPING_START_EVENT:
        plain_collection = event->data.mapping_start.anchor == NULL && event->data.mapping_start.tag == NULL;
        yaml_event_delete(event);
        if (!plain_collection || depth >= MAX_DEPTH) {
            return decline();
        }
        if (Py_EnterRecursiveCall(" while reading YAML")) {
            return decline_on_exception();
        }
        value = mapping(b, depth + 1);
        Py_LeaveRecursiveCall();
        return value;
    case YAML_SEQUENCE_START_EVENT:
        plain_collection = event->data.sequence_start.anchor == NULL && event->data.sequence_start.tag == NULL;
        yaml_event_delete(event);
        if (!plain_collection || depth >= MAX_DEPTH) {
            return decline();
        }
        if (Py_EnterRecursiveCall(" while reading YAML")) {
            return decline_on_exception();
        }
        value = sequence(b, depth + 1);
        Py_LeaveRecursiveCall();
        return value;
    default: /* an alias */
        yaml_event_delete(event);
        return decline();
    }
}

/* The stream's only document's value, None for an empty stream. */
static PyObject *
document(Builder *b)
{
    yaml_event_t event;
    if (next_event(b, &event) < 0) {
        return NULL;
    }
    yaml_event_delete(&event); /* stream start */
    if (next_event(b, &event) < 0) {
        return NULL;
    }
    yaml_event_type_t kind = event.type;
    yaml_event_delete(&event);
    if (kind == YAML_STREAM_END_EVENT) {
        Py_RETURN_NONE;
    }
    if (kind != YAML_DOCUMENT_START_EVENT) {
        return decline();
    }
    if (next_event(b, &event) < 0) {
        return NULL;
    }
    PyObject *value = build(b, &event, 0);
    if (value == NULL) {
        return NULL;
    }
    if (next_event(b, &event) < 0) {
        goto fail;
    }
    kind = event.type;
    yaml_event_delete(&event);
    if (kind != YAML_DOCUMENT_END_EVENT) {
        decline();
        goto fail;
    }
    if (next_event(b, &event) < 0) {
        goto fail;
    }
    kind = event.type;
    yaml_event_delete(&event);
    if (kind != YAML_STREAM_END_EVENT) {
        decline(); /* another document */
        goto fail;
    }
    return value;
fail:
    Py_DECREF(value);
    return NULL;
}

static PyObject *
fastyaml_values(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "values() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *source = args[0], *starts = args[1];
    if (!PyUnicode_Check(starts)) {
        PyErr_SetString(PyExc_TypeError, "values(): implicit_starts must be str");
        return NULL;
    }
    if (!PyCallable_Check(args[2]) || !PyCallable_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "values(): typed and key must be callable");
        return NULL;
    }
    const char *data;
    Py_ssize_t size;
    if (PyBytes_Check(source)) {
        data = PyBytes_AS_STRING(source);
        size = PyBytes_GET_SIZE(source);
    }
    else if (PyUnicode_Check(source)) {
        /* No copy for ASCII text; other text keeps its UTF-8 form cached on the str. */
        data = PyUnicode_AsUTF8AndSize(source, &size);
        if (data == NULL) {
            return decline_on_exception(); /* e.g. lone surrogates: the Python reader says what it says */
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError, "values(): text must be bytes or str");
        return NULL;
    }

    Builder b;
    memset(&b, 0, sizeof(b));
    Py_ssize_t n = PyUnicode_GET_LENGTH(starts);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ_CHAR(starts, i);
        if (c < 0x80) {
            b.starts[c] = 1;
        }
        else { /* only ASCII is compared byte-wise; any other start types every non-ASCII first character */
            memset(b.starts + 0x80, 1, 0x80);
        }
    }
    b.typed = args[2];
    b.key = args[3];
    b.cache = PyMem_Calloc(CACHE_SLOTS, sizeof(Entry));
    if (b.cache == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *value = NULL;
    if (!yaml_parser_initialize(&b.parser)) {
        PyErr_NoMemory();
        goto done;
    }
    /* As PyYAML's parser does for str input. */
    yaml_parser_set_encoding(&b.parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)data, (size_t)size);
    /* The values are acyclic: scanning them for cycles while they are built is wasted work (about a tenth of
     * the time for a large file). The collector's state is restored before returning. */
    int collecting = PyGC_Disable();
    value = document(&b);
    if (collecting) {
        PyGC_Enable();
    }
    yaml_parser_delete(&b.parser);
done:
    for (Py_ssize_t i = 0; i < CACHE_SLOTS; i++) {
        Py_XDECREF(b.cache[i].text);
        Py_XDECREF(b.cache[i].typed);
    }
    PyMem_Free(b.cache);
    return value;
}

static PyMethodDef fastyaml_methods[] = {
    {"values", (PyCFunction)(void (*)(void))fastyaml_values, METH_FASTCALL,
     "values(text, implicit_starts, typed, key) -> the YAML document's plain value, or raises Declined."},
    {NULL, NULL, 0, NULL},
};

static int
fastyaml_exec(PyObject *module)
{
    if (Declined == NULL) {
        Declined = PyErr_NewExceptionWithDoc(
            "reconciler.config._fastyaml.Declined",
            "The text needs the Python reader: it uses something this reader does not build, or is malformed.",
            NULL, NULL);
        if (Declined == NULL) {
            return -1;
        }
    }
    if (PyModule_AddObjectRef(module, "Declined", Declined) < 0) {
        return -1;
    }
    return PyModule_AddStringConstant(module, "LIBYAML_VERSION", yaml_get_version_string());
}

static PyModuleDef_Slot fastyaml_slots[] = {
    {Py_mod_exec, fastyaml_exec},
    {0, NULL},
};

static struct PyModuleDef fastyaml_module = {
    PyModuleDef_HEAD_INIT,
    "reconciler.config._fastyaml",
    "Plain Python values straight from libyaml for the common shape of a config file (see yaml_values).",
    0,
    fastyaml_methods,
    fastyaml_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__fastyaml(void)
{
    return PyModuleDef_Init(&fastyaml_module);
}
