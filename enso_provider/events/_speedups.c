/*
 * The mapper's fast path in C: SQL tuple rows of the common shape to encoded events.
 *
 * It produces byte for byte what the pure-Python loop in _mapper.py produces (the reference,
 * property-tested against this module), and only for rows it is sure of: exact str/float/int
 * values, text that needs no JSON escaping, timestamps the mapper's own converter has settled.
 * Any other row stops the loop *before* any side effect of that row, and Python maps it.
 *
 * BLAKE2b is written here from RFC 7693 because hashlib's hasher state is not reachable from C;
 * its output is checked against hashlib in the tests.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------------ BLAKE2b (RFC 7693) */

typedef struct {
    uint64_t h[8];
    uint64_t t[2];
    uint8_t buf[128];
    size_t buflen;
} b2_state;

static const uint64_t B2_IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};

static const uint8_t B2_SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t
load64(const uint8_t *p)
{
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) | ((uint64_t)p[3] << 24) |
           ((uint64_t)p[4] << 32) | ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) |
           ((uint64_t)p[7] << 56);
}

static inline uint64_t
rotr64(uint64_t x, int n)
{
    return (x >> n) | (x << (64 - n));
}

#define B2_G(a, b, c, d, x, y)          \
    do {                                \
        v[a] = v[a] + v[b] + (x);       \
        v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y);       \
        v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];             \
        v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)

static void
b2_compress(b2_state *s, const uint8_t *block, int last)
{
    uint64_t m[16], v[16];
    int i;
    for (i = 0; i < 16; i++) {
        m[i] = load64(block + 8 * i);
    }
    for (i = 0; i < 8; i++) {
        v[i] = s->h[i];
        v[i + 8] = B2_IV[i];
    }
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    if (last) {
        v[14] = ~v[14];
    }
    /* Rounds written out, so that every message index is a constant the compiler resolves. */
#define B2_ROUND(r)                                                          \
    do {                                                                     \
        B2_G(0, 4, 8, 12, m[B2_SIGMA[r][0]], m[B2_SIGMA[r][1]]);            \
        B2_G(1, 5, 9, 13, m[B2_SIGMA[r][2]], m[B2_SIGMA[r][3]]);            \
        B2_G(2, 6, 10, 14, m[B2_SIGMA[r][4]], m[B2_SIGMA[r][5]]);           \
        B2_G(3, 7, 11, 15, m[B2_SIGMA[r][6]], m[B2_SIGMA[r][7]]);           \
        B2_G(0, 5, 10, 15, m[B2_SIGMA[r][8]], m[B2_SIGMA[r][9]]);           \
        B2_G(1, 6, 11, 12, m[B2_SIGMA[r][10]], m[B2_SIGMA[r][11]]);         \
        B2_G(2, 7, 8, 13, m[B2_SIGMA[r][12]], m[B2_SIGMA[r][13]]);          \
        B2_G(3, 4, 9, 14, m[B2_SIGMA[r][14]], m[B2_SIGMA[r][15]]);          \
    } while (0)
    B2_ROUND(0);
    B2_ROUND(1);
    B2_ROUND(2);
    B2_ROUND(3);
    B2_ROUND(4);
    B2_ROUND(5);
    B2_ROUND(6);
    B2_ROUND(7);
    B2_ROUND(8);
    B2_ROUND(9);
    B2_ROUND(10);
    B2_ROUND(11);
#undef B2_ROUND
    for (i = 0; i < 8; i++) {
        s->h[i] ^= v[i] ^ v[i + 8];
    }
}

/* An unkeyed state with a digest length and a personalisation (zero-padded to 16 bytes). */
static void
b2_init(b2_state *s, size_t outlen, const uint8_t *person, size_t person_len)
{
    uint8_t p[16] = {0};
    memcpy(p, person, person_len < 16 ? person_len : 16);
    for (int i = 0; i < 8; i++) {
        s->h[i] = B2_IV[i];
    }
    s->h[0] ^= 0x01010000ULL ^ (uint64_t)outlen;
    s->h[6] ^= load64(p);
    s->h[7] ^= load64(p + 8);
    s->t[0] = s->t[1] = 0;
    s->buflen = 0;
}

static void
b2_update(b2_state *s, const uint8_t *in, size_t len)
{
    while (len > 0) {
        if (s->buflen == 128) {  /* a full block is compressed only once more input follows */
            s->t[0] += 128;
            if (s->t[0] < 128) {
                s->t[1]++;
            }
            b2_compress(s, s->buf, 0);
            s->buflen = 0;
        }
        size_t take = 128 - s->buflen;
        if (take > len) {
            take = len;
        }
        memcpy(s->buf + s->buflen, in, take);
        s->buflen += take;
        in += take;
        len -= take;
    }
}

static void
b2_final(b2_state *s, uint8_t *out, size_t outlen)
{
    s->t[0] += s->buflen;
    if (s->t[0] < s->buflen) {
        s->t[1]++;
    }
    memset(s->buf + s->buflen, 0, 128 - s->buflen);
    b2_compress(s, s->buf, 1);
    for (size_t i = 0; i < outlen; i++) {
        out[i] = (uint8_t)(s->h[i / 8] >> (8 * (i % 8)));
    }
}

/* ------------------------------------------------------------------ the output buffer */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;  /* past this the row is too big for the fast path */
} Out;

static inline int
put(Out *w, const char *s, Py_ssize_t n)
{
    if (w->len + n > w->cap) {
        return 0;
    }
    memcpy(w->data + w->len, s, (size_t)n);
    w->len += n;
    return 1;
}

#define PUT_LIT(w, lit) put((w), (lit), (Py_ssize_t)(sizeof(lit) - 1))

/* Results of the value writers: written, hand the row to Python, or a Python error is set. */
#define OK 1
#define STOP 0
#define ERR (-1)

/* A JSON string as orjson writes it, for text that needs no escaping; else STOP. */
static int
put_text(Out *w, PyObject *s, int identifier)
{
    Py_ssize_t n;
    const char *p;
    if (PyUnicode_IS_ASCII(s)) {
        p = (const char *)PyUnicode_DATA(s);
        n = PyUnicode_GET_LENGTH(s);
    }
    else {
        p = PyUnicode_AsUTF8AndSize(s, &n);
        if (p == NULL) {  /* lone surrogates: Python names the field */
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
                return ERR;
            }
            PyErr_Clear();
            return STOP;
        }
    }
    if (identifier) {
        /* The Python path strips identifiers: only text with nothing to strip is written here. */
        Py_ssize_t chars = PyUnicode_GET_LENGTH(s);
        if (chars == 0 || Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(s, 0)) ||
            Py_UNICODE_ISSPACE(PyUnicode_READ_CHAR(s, chars - 1))) {
            return STOP;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == '"' || c == '\\') {
            return STOP;
        }
    }
    if (w->len + n + 2 > w->cap) {
        return STOP;
    }
    w->data[w->len++] = '"';
    memcpy(w->data + w->len, p, (size_t)n);
    w->len += n;
    w->data[w->len++] = '"';
    return OK;
}

static const double POW10[] = {1.0, 10.0, 100.0, 1000.0, 10000.0};

/*
 * Usage values mostly have a few decimals: for |d| < 1e9 and at most 4 of them, the decimal
 * m / 10^k with the fewest digits that reads back as d is the only one of its length that does
 * (the spacing of doubles there is far below 10^-4), so it is exactly the shortest repr Python
 * writes. Returns the length written to tmp, or 0 where dtoa must decide.
 */
static int
short_decimal(double d, char *tmp)
{
    double a = fabs(d);
    if (!(a < 1e9) || (a < 1e-4 && a != 0.0)) {
        return 0;
    }
    for (int k = 0; k <= 4; k++) {
        long long m = llround(a * POW10[k]);
        if ((double)m / POW10[k] != a) {
            continue;
        }
        /* Digits of m from the right; the point k digits in; "0." before a fraction; ".0" if whole. */
        char rev[32];
        int n = 0;
        if (k == 0) {
            rev[n++] = '0';
            rev[n++] = '.';
        }
        for (int j = 0; m > 0 || j <= k; j++) {
            if (j == k && k > 0) {
                rev[n++] = '.';
            }
            rev[n++] = (char)('0' + m % 10);
            m /= 10;
        }
        int len = 0;
        if (signbit(d)) {
            tmp[len++] = '-';
        }
        while (n > 0) {
            tmp[len++] = rev[--n];
        }
        return len;
    }
    return 0;
}

/* A finite float as orjson writes it: Python's repr, except in exponent form (STOP there). */
static int
put_float(Out *w, double d)
{
    if (!isfinite(d)) {
        return STOP;
    }
    char tmp[48];
    int n = short_decimal(d, tmp);
    if (n > 0) {
        return put(w, tmp, n) ? OK : STOP;
    }
    char *s = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
    if (s == NULL) {
        return ERR;
    }
    int result = STOP;
    if (strchr(s, 'e') == NULL) {
        result = put(w, s, (Py_ssize_t)strlen(s)) ? OK : STOP;
    }
    PyMem_Free(s);
    return result;
}

/* An exact int within 64-bit signed range as decimal digits; else STOP. */
static int
put_int(Out *w, PyObject *o)
{
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
        return STOP;
    }
    if (v == -1 && PyErr_Occurred()) {
        return ERR;
    }
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    return put(w, tmp, n) ? OK : STOP;
}

/* The event's value: a finite float or an int. */
static int
put_value(Out *w, PyObject *o)
{
    if (PyFloat_CheckExact(o)) {
        return put_float(w, PyFloat_AS_DOUBLE(o));
    }
    if (PyLong_CheckExact(o)) {
        return put_int(w, o);
    }
    return STOP;
}

/* A metadata column's value: text, int, finite float, None or a bool. */
static int
put_meta_value(Out *w, PyObject *o)
{
    if (PyUnicode_CheckExact(o)) {
        return put_text(w, o, 0);
    }
    if (PyFloat_CheckExact(o)) {
        return put_float(w, PyFloat_AS_DOUBLE(o));
    }
    if (PyLong_CheckExact(o)) {
        return put_int(w, o);
    }
    if (o == Py_None) {
        return PUT_LIT(w, "null") ? OK : STOP;
    }
    if (o == Py_True) {
        return PUT_LIT(w, "true") ? OK : STOP;
    }
    if (o == Py_False) {
        return PUT_LIT(w, "false") ? OK : STOP;
    }
    return STOP;
}

static int
put_bytes(Out *w, PyObject *b)
{
    return put(w, PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b)) ? OK : STOP;
}

/* ------------------------------------------------------------------ FastPlan */

/* A converter's answer, or NULL: with an error set (ERR) or, for an Exception, none (STOP). */
static PyObject *
call_slow(PyObject *convert, PyObject *raw, int *r)
{
    PyObject *out = PyObject_CallOneArg(convert, raw);
    if (out == NULL) {
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();  /* a bad value: Python maps the row again and rejects it */
            *r = STOP;
        }
        else {
            *r = ERR;
        }
    }
    return out;
}

typedef struct {
    PyObject_HEAD
    Py_ssize_t width;
    Py_ssize_t idx[4];      /* CustomerEntityId, metric, value, timestamp: column, or -1 */
    PyObject *konst[4];     /* the encoded constant of a field without a column (bytes) */
    Py_ssize_t n_meta;
    Py_ssize_t *meta_idx;
    PyObject *meta_keys;    /* tuple of bytes: '"key":', in the order orjson sorts them */
    PyObject *meta_const;   /* bytes: the metadata object when no column feeds it */
    PyObject *job;          /* bytes '"JobId":"...",' or None */
    PyObject *ts_text;      /* dict str -> wire str (the mapper's own cache) */
    PyObject *ts_datetime;  /* dict datetime -> wire str */
    int tz_is_utc;
    PyObject *utc;
    PyObject *slow[4];      /* the mapper's own converter per field: raw -> value, or raises */
    PyObject *encode;       /* orjson.dumps: for a value the writers here do not take */
    PyObject *tables;       /* the occurrence counter's lists */
    PyObject *masks;
    PyObject *room;
    PyObject *add;
    PyTypeObject *event_type;
    b2_state seed;
    Py_ssize_t content_cap; /* longest content this path writes (the rest is Python's to judge) */
    char *buf;
    int ready;              /* initialised once: map() holds pointers into this state */
} FastPlan;

static int
FastPlan_traverse(FastPlan *self, visitproc visit, void *arg)
{
    for (int i = 0; i < 4; i++) {
        Py_VISIT(self->konst[i]);
    }
    Py_VISIT(self->meta_keys);
    Py_VISIT(self->meta_const);
    Py_VISIT(self->job);
    Py_VISIT(self->ts_text);
    Py_VISIT(self->ts_datetime);
    Py_VISIT(self->utc);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(self->slow[i]);
    }
    Py_VISIT(self->encode);
    Py_VISIT(self->tables);
    Py_VISIT(self->masks);
    Py_VISIT(self->room);
    Py_VISIT(self->add);
    Py_VISIT((PyObject *)self->event_type);
    return 0;
}

static int
FastPlan_clear(FastPlan *self)
{
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(self->konst[i]);
    }
    Py_CLEAR(self->meta_keys);
    Py_CLEAR(self->meta_const);
    Py_CLEAR(self->job);
    Py_CLEAR(self->ts_text);
    Py_CLEAR(self->ts_datetime);
    Py_CLEAR(self->utc);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(self->slow[i]);
    }
    Py_CLEAR(self->encode);
    Py_CLEAR(self->tables);
    Py_CLEAR(self->masks);
    Py_CLEAR(self->room);
    Py_CLEAR(self->add);
    Py_CLEAR(self->event_type);
    return 0;
}

static void
FastPlan_dealloc(FastPlan *self)
{
    PyObject_GC_UnTrack(self);
    FastPlan_clear(self);
    PyMem_Free(self->meta_idx);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define SET_REF(field, value) \
    do {                      \
        Py_XSETREF(field, Py_NewRef(value)); \
    } while (0)

/*
 * FastPlan(width, indexes, constants, meta, meta_const, job, ts_text, ts_datetime, tz_is_utc, utc,
 *          slow, encode, counter, event_type, person, namespace, content_cap)
 */
static int
FastPlan_init(FastPlan *self, PyObject *args, PyObject *kwds)
{
    Py_ssize_t width, content_cap;
    PyObject *indexes, *constants, *meta, *meta_const, *job, *ts_text, *ts_datetime, *utc, *slow, *encode;
    PyObject *counter, *event_type;
    int tz_is_utc;
    const char *person, *ns;
    Py_ssize_t person_len, ns_len;
    if (self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "a FastPlan is initialised once");
        return -1;
    }
    if (kwds != NULL && PyDict_GET_SIZE(kwds) > 0) {
        PyErr_SetString(PyExc_TypeError, "FastPlan takes positional arguments only");
        return -1;
    }
    if (!PyArg_ParseTuple(args, "nO!O!O!OOO!O!pOO!OOO!y#y#n", &width, &PyTuple_Type, &indexes, &PyTuple_Type,
                          &constants, &PyTuple_Type, &meta, &meta_const, &job, &PyDict_Type, &ts_text,
                          &PyDict_Type, &ts_datetime, &tz_is_utc, &utc, &PyTuple_Type, &slow,
                          &encode, &counter, &PyType_Type,
                          &event_type, &person, &person_len, &ns, &ns_len, &content_cap)) {
        return -1;
    }
    if (PyTuple_GET_SIZE(indexes) != 4 || PyTuple_GET_SIZE(constants) != 4 || PyTuple_GET_SIZE(slow) != 4) {
        PyErr_SetString(PyExc_ValueError, "indexes, constants and slow hold four fields");
        return -1;
    }
    if (!PyType_IsSubtype((PyTypeObject *)event_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "event_type must be a tuple subclass");
        return -1;
    }
    if (content_cap < 16 || content_cap > (1 << 26)) {
        PyErr_SetString(PyExc_ValueError, "content_cap out of range");
        return -1;
    }
    self->width = width;
    for (int i = 0; i < 4; i++) {
        Py_ssize_t ix = PyLong_AsSsize_t(PyTuple_GET_ITEM(indexes, i));
        if (ix == -1 && PyErr_Occurred()) {
            return -1;
        }
        PyObject *k = PyTuple_GET_ITEM(constants, i);
        if (ix >= width || (ix < 0 && !PyBytes_Check(k))) {
            PyErr_SetString(PyExc_ValueError, "a field needs a column in the row or an encoded constant");
            return -1;
        }
        self->idx[i] = ix;
        SET_REF(self->konst[i], k);
        SET_REF(self->slow[i], PyTuple_GET_ITEM(slow, i));
    }
    Py_ssize_t n_meta = PyTuple_GET_SIZE(meta);
    PyObject *keys = PyTuple_New(n_meta);
    if (keys == NULL) {
        return -1;
    }
    PyMem_Free(self->meta_idx);
    self->meta_idx = PyMem_New(Py_ssize_t, n_meta > 0 ? n_meta : 1);
    if (self->meta_idx == NULL) {
        Py_DECREF(keys);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n_meta; i++) {
        PyObject *pair = PyTuple_GET_ITEM(meta, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0))) {
            Py_DECREF(keys);
            PyErr_SetString(PyExc_ValueError, "meta holds (encoded key, column) pairs");
            return -1;
        }
        Py_ssize_t ix = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
        if ((ix == -1 && PyErr_Occurred()) || ix < 0 || ix >= width) {
            Py_DECREF(keys);
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "a metadata column is not in the row");
            }
            return -1;
        }
        self->meta_idx[i] = ix;
        PyTuple_SET_ITEM(keys, i, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    }
    self->n_meta = n_meta;
    Py_XSETREF(self->meta_keys, keys);
    if (n_meta == 0 && !PyBytes_Check(meta_const)) {
        PyErr_SetString(PyExc_ValueError, "meta_const must be bytes when no column feeds metadata");
        return -1;
    }
    if (job != Py_None && !PyBytes_Check(job)) {
        PyErr_SetString(PyExc_TypeError, "job must be bytes or None");
        return -1;
    }
    SET_REF(self->meta_const, meta_const);
    SET_REF(self->job, job);
    SET_REF(self->ts_text, ts_text);
    SET_REF(self->ts_datetime, ts_datetime);
    self->tz_is_utc = tz_is_utc;
    SET_REF(self->utc, utc);
    SET_REF(self->encode, encode);

    PyObject *tables = PyObject_GetAttrString(counter, "tables");
    PyObject *masks = PyObject_GetAttrString(counter, "masks");
    PyObject *room = PyObject_GetAttrString(counter, "room");
    PyObject *add = PyObject_GetAttrString(counter, "add");
    Py_XSETREF(self->tables, tables);
    Py_XSETREF(self->masks, masks);
    Py_XSETREF(self->room, room);
    Py_XSETREF(self->add, add);
    if (tables == NULL || masks == NULL || room == NULL || add == NULL) {
        return -1;
    }
    if (!PyList_CheckExact(tables) || !PyList_CheckExact(masks) || !PyList_CheckExact(room) ||
        PyList_GET_SIZE(tables) != 64 || PyList_GET_SIZE(masks) != 64 || PyList_GET_SIZE(room) != 64) {
        PyErr_SetString(PyExc_TypeError, "counter must hold 64 tables, masks and room counts in lists");
        return -1;
    }
    Py_XSETREF(self->event_type, (PyTypeObject *)Py_NewRef(event_type));

    b2_init(&self->seed, 16, (const uint8_t *)person, (size_t)person_len);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) {
        len8[i] = (uint8_t)((uint64_t)ns_len >> (8 * i));
    }
    b2_update(&self->seed, len8, 8);
    b2_update(&self->seed, (const uint8_t *)ns, (size_t)ns_len);

    self->content_cap = content_cap;
    PyMem_Free(self->buf);
    self->buf = PyMem_Malloc((size_t)content_cap + 128);  /* + the eventId */
    if (self->buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->ready = 1;
    return 0;
}

/* CustomerEntityId or metric: text as it is, or what the mapper's converter makes of another kind. */
static int
put_identifier(FastPlan *self, Out *w, int field, PyObject *row)
{
    if (self->idx[field] < 0) {
        return put_bytes(w, self->konst[field]);
    }
    PyObject *raw = PyTuple_GET_ITEM(row, self->idx[field]);
    if (PyUnicode_CheckExact(raw)) {
        return put_text(w, raw, 1);  /* blank or padded text is Python's to judge */
    }
    int r = OK;
    PyObject *text = call_slow(self->slow[field], raw, &r);
    if (text == NULL) {
        return r;
    }
    r = PyUnicode_CheckExact(text) ? put_text(w, text, 0) : STOP;
    Py_DECREF(text);
    return r;
}

/* A value as orjson writes it: floats and ints here, anything else (exact digits...) by orjson. */
static int
put_encoded(FastPlan *self, Out *w, PyObject *value)
{
    int r = put_value(w, value);
    if (r != STOP) {
        return r;
    }
    PyObject *data = call_slow(self->encode, value, &r);
    if (data == NULL) {
        return r;
    }
    r = PyBytes_CheckExact(data) ? put_bytes(w, data) : STOP;
    Py_DECREF(data);
    return r;
}

/* The value: a finite float or a 64-bit int as is (as Python's loop), else what its converter makes. */
static int
put_event_value(FastPlan *self, Out *w, PyObject *row)
{
    if (self->idx[2] < 0) {
        return put_bytes(w, self->konst[2]);
    }
    PyObject *raw = PyTuple_GET_ITEM(row, self->idx[2]);
    if ((PyFloat_CheckExact(raw) && isfinite(PyFloat_AS_DOUBLE(raw))) || PyLong_CheckExact(raw)) {
        return put_encoded(self, w, raw);
    }
    int r = OK;
    PyObject *value = call_slow(self->slow[2], raw, &r);
    if (value == NULL) {
        return r;
    }
    r = put_encoded(self, w, value);
    Py_DECREF(value);
    return r;
}

/*
 * 'YYYY-MM-DDTHH:MM:SSZ' naming a real moment from 1970 to 2261 (TIMESTAMP_MIN..MAX): the wire form
 * itself, which the Python converter returns unchanged. Anything else is the converter's to judge.
 */
static int
is_wire_timestamp(PyObject *s)
{
    if (!PyUnicode_IS_ASCII(s) || PyUnicode_GET_LENGTH(s) != 20) {
        return 0;
    }
    const unsigned char *p = (const unsigned char *)PyUnicode_DATA(s);
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
    for (int i = 0; i < 20; i++) {
        if (shape[i] == 'd' ? (p[i] < '0' || p[i] > '9') : p[i] != (unsigned char)shape[i]) {
            return 0;
        }
    }
#define NUM2(i) ((p[i] - '0') * 10 + (p[(i) + 1] - '0'))
    int year = NUM2(0) * 100 + NUM2(2), month = NUM2(5), day = NUM2(8);
    int hour = NUM2(11), minute = NUM2(14), second = NUM2(17);
#undef NUM2
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1970 || year > 2261 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 ||
        second > 59) {
        return 0;
    }
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return day <= days[month - 1] + (month == 2 && leap);
}

/* The timestamp: from the mapper's caches, else from its converter (which fills them). */
static int
put_timestamp(FastPlan *self, Out *w, PyObject *row)
{
    if (self->idx[3] < 0) {
        return put_bytes(w, self->konst[3]);
    }
    PyObject *raw = PyTuple_GET_ITEM(row, self->idx[3]);
    PyObject *ts = NULL;  /* borrowed from a cache */
    if (PyUnicode_CheckExact(raw)) {
        ts = PyDict_GetItemWithError(self->ts_text, raw);
    }
    else if (PyDateTime_CheckExact(raw)) {
        PyObject *tz = PyDateTime_DATE_GET_TZINFO(raw);
        if (tz == self->utc || (self->tz_is_utc && tz == Py_None)) {
            ts = PyDict_GetItemWithError(self->ts_datetime, raw);
        }
    }
    if (ts != NULL) {
        /* Written at once: a borrowed cache entry must not outlive a call into Python. */
        return PyUnicode_CheckExact(ts) ? put_text(w, ts, 0) : STOP;
    }
    if (PyErr_Occurred()) {
        return ERR;
    }
    if (PyUnicode_CheckExact(raw) && is_wire_timestamp(raw)) {
        return put_text(w, raw, 0);  /* distinct timestamps need no trip through Python */
    }
    int r = OK;
    PyObject *fresh = call_slow(self->slow[3], raw, &r);
    if (fresh == NULL) {
        return r;
    }
    r = PyUnicode_CheckExact(fresh) ? put_text(w, fresh, 0) : STOP;
    Py_DECREF(fresh);
    return r;
}

/*
 * Write one row's content (the event without its eventId): OK, STOP or ERR. The fields are
 * written in the wire order (sorted keys); the converters it may call change nothing but the
 * timestamp caches, so a row stopped half-way leaves no trace that matters.
 */
static int
write_content(FastPlan *self, PyObject *row, Out *w)
{
    int r;
    if (!PUT_LIT(w, "{\"CustomerEntityId\":")) {
        return STOP;
    }
    if ((r = put_identifier(self, w, 0, row)) != OK) {
        return r;
    }
    if (!PUT_LIT(w, ",")) {
        return STOP;
    }
    if (self->job != Py_None && put_bytes(w, self->job) != OK) {
        return STOP;
    }
    if (!PUT_LIT(w, "\"metadata\":")) {
        return STOP;
    }
    if (self->n_meta == 0) {
        if (put_bytes(w, self->meta_const) != OK) {
            return STOP;
        }
    }
    else {
        if (!PUT_LIT(w, "{")) {
            return STOP;
        }
        for (Py_ssize_t i = 0; i < self->n_meta; i++) {
            if (i > 0 && !PUT_LIT(w, ",")) {
                return STOP;
            }
            if (put_bytes(w, PyTuple_GET_ITEM(self->meta_keys, i)) != OK) {
                return STOP;
            }
            if ((r = put_meta_value(w, PyTuple_GET_ITEM(row, self->meta_idx[i]))) != OK) {
                return r;
            }
        }
        if (!PUT_LIT(w, "}")) {
            return STOP;
        }
    }
    if (!PUT_LIT(w, ",\"metric\":")) {
        return STOP;
    }
    if ((r = put_identifier(self, w, 1, row)) != OK) {
        return r;
    }
    if (!PUT_LIT(w, ",\"timestamp\":")) {
        return STOP;
    }
    if ((r = put_timestamp(self, w, row)) != OK) {
        return r;
    }
    if (!PUT_LIT(w, ",\"value\":")) {
        return STOP;
    }
    if ((r = put_event_value(self, w, row)) != OK) {
        return r;
    }
    return PUT_LIT(w, "}") ? OK : STOP;
}

/*
 * Count one occurrence of a fingerprint in the mapper's OccurrenceCounter (see _occurrences.py for
 * the layout): probed here, and handed to the counter's own add() only to grow a table or to count
 * past what a slot holds. Returns the occurrence number, or -1 with an error set.
 */
static long long
count_occurrence(FastPlan *self, uint64_t fp)
{
    Py_ssize_t part = (Py_ssize_t)(fp & 63);
    PyObject *table = PyList_GET_ITEM(self->tables, part);
    Py_ssize_t mask = PyLong_AsSsize_t(PyList_GET_ITEM(self->masks, part));
    Py_ssize_t room = PyLong_AsSsize_t(PyList_GET_ITEM(self->room, part));
    if ((mask == -1 || room == -1) && PyErr_Occurred()) {
        return -1;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(table, &view, PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        return -1;
    }
    long long seen = 0;  /* 0: the counter's add() decides */
    if (view.itemsize == 8 && view.len / 8 > mask) {
        uint64_t *slots = (uint64_t *)view.buf;
        uint64_t key = fp ^ (uint64_t)part;
        Py_ssize_t slot = (Py_ssize_t)((fp >> 6) & (uint64_t)mask);
        for (;;) {
            uint64_t held = slots[slot];
            if (held == 0) {
                if (room > 1) {
                    slots[slot] = key | 1;
                    seen = 1;
                }
                break;
            }
            if ((held & ~(uint64_t)63) == key) {
                if ((held & 63) < 63) {
                    slots[slot] = held + 1;
                    seen = (long long)(held & 63) + 1;
                }
                break;
            }
            slot = (slot + 1) & mask;
        }
    }
    PyBuffer_Release(&view);
    if (seen == 1) {
        PyObject *left = PyLong_FromSsize_t(room - 1);
        if (left == NULL) {
            return -1;
        }
        PyList_SetItem(self->room, part, left);  /* steals `left` */
    }
    if (seen > 0) {
        return seen;
    }
    PyObject *number = PyLong_FromUnsignedLongLong(fp);
    if (number == NULL) {
        return -1;
    }
    PyObject *result = PyObject_CallOneArg(self->add, number);
    Py_DECREF(number);
    if (result == NULL) {
        return -1;
    }
    seen = PyLong_AsLongLong(result);
    Py_DECREF(result);
    return seen;
}

/* rehash(old, new): move every held slot of one counter table into a table twice its size. */
static PyObject *
rehash(PyObject *module, PyObject *args)
{
    PyObject *old_obj, *new_obj;
    if (!PyArg_ParseTuple(args, "OO", &old_obj, &new_obj)) {
        return NULL;
    }
    Py_buffer old, new;
    if (PyObject_GetBuffer(old_obj, &old, PyBUF_FORMAT) < 0) {
        return NULL;
    }
    if (PyObject_GetBuffer(new_obj, &new, PyBUF_WRITABLE | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&old);
        return NULL;
    }
    Py_ssize_t n_old = old.len / 8, n_new = new.len / 8;
    if (old.itemsize != 8 || new.itemsize != 8 || n_new < 2 * n_old || (n_new & (n_new - 1)) != 0) {
        PyBuffer_Release(&old);
        PyBuffer_Release(&new);
        PyErr_SetString(PyExc_ValueError, "rehash takes two 8-byte tables, the new one a larger power of 2");
        return NULL;
    }
    const uint64_t *src = (const uint64_t *)old.buf;
    uint64_t *dst = (uint64_t *)new.buf;
    uint64_t mask = (uint64_t)n_new - 1;
    for (Py_ssize_t i = 0; i < n_old; i++) {
        uint64_t held = src[i];
        if (held) {
            uint64_t slot = (held >> 6) & mask;
            while (dst[slot]) {
                slot = (slot + 1) & mask;
            }
            dst[slot] = held;
        }
    }
    PyBuffer_Release(&old);
    PyBuffer_Release(&new);
    Py_RETURN_NONE;
}

static const char HEX[] = "0123456789abcdef";

/* An Event (a tuple subclass) of three items, stealing the references. */
static PyObject *
new_event(PyTypeObject *type, PyObject *a, PyObject *b, PyObject *c)
{
#if PY_VERSION_HEX >= 0x030E0000
    /* Tuples cache their hash from 3.14: let tuple's own constructor set up what it needs. */
    PyObject *items = PyTuple_Pack(3, a, b, c);
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(c);
    if (items == NULL) {
        return NULL;
    }
    PyObject *args = PyTuple_Pack(1, items);
    Py_DECREF(items);
    if (args == NULL) {
        return NULL;
    }
    PyObject *event = PyTuple_Type.tp_new(type, args, NULL);
    Py_DECREF(args);
    return event;
#else
    /* What tuple's constructor does for a subclass: allocate, then fill the slots. */
    PyObject *event = type->tp_alloc(type, 3);
    if (event == NULL) {
        Py_DECREF(a);
        Py_DECREF(b);
        Py_DECREF(c);
        return NULL;
    }
    PyTuple_SET_ITEM(event, 0, a);
    PyTuple_SET_ITEM(event, 1, b);
    PyTuple_SET_ITEM(event, 2, c);
    return event;
#endif
}

/*
 * map(rows, start, end, index) -> (events, stop)
 *
 * Maps rows[start:end] until `end` or the first row this path does not take, which is left
 * untouched (no id counted; at most a timestamp cached, as Python would) at position `stop`.
 * `index` is the run index of rows[start].
 */
static PyObject *
FastPlan_map(FastPlan *self, PyObject *args)
{
    PyObject *rows;
    Py_ssize_t start, end, index;
    if (!PyArg_ParseTuple(args, "O!nnn", &PyList_Type, &rows, &start, &end, &index)) {
        return NULL;
    }
    if (!self->ready) {
        PyErr_SetString(PyExc_RuntimeError, "FastPlan is not initialised");
        return NULL;
    }
    if (start < 0 || end < start) {
        PyErr_SetString(PyExc_ValueError, "map needs 0 <= start <= end");
        return NULL;
    }
    PyObject *events = PyList_New(0);
    if (events == NULL) {
        return NULL;
    }
    Py_ssize_t i = start;
    Out w;
    w.data = self->buf;
    w.cap = self->content_cap;
    for (; i < end && i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != self->width) {
            break;
        }
        Py_INCREF(row);  /* the row list may change under a call into Python */
        w.len = 0;
        int r = write_content(self, row, &w);
        Py_DECREF(row);
        if (r == ERR) {
            goto error;
        }
        if (r == STOP) {
            break;
        }
        b2_state st = self->seed;
        uint8_t digest[16];
        b2_update(&st, (const uint8_t *)w.data, (size_t)w.len);
        b2_final(&st, digest, 16);
        long long seen = count_occurrence(self, load64(digest));
        if (seen < 1) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_RuntimeError, "the occurrence counter returned no count");
            }
            goto error;
        }
        /* "ev_" + 32 hex digits, and "-<n>" after the first occurrence of the same content. */
        char id[3 + 32 + 24];
        memcpy(id, "ev_", 3);
        for (int k = 0; k < 16; k++) {
            id[3 + 2 * k] = HEX[digest[k] >> 4];
            id[4 + 2 * k] = HEX[digest[k] & 15];
        }
        Py_ssize_t id_len = 35;
        if (seen > 1) {
            id_len += snprintf(id + 35, sizeof id - 35, "-%lld", seen);
        }
        /* The content's closing brace becomes ',"eventId":"<id>"}' (the cap leaves room for it). */
        w.len -= 1;
        memcpy(w.data + w.len, ",\"eventId\":\"", 12);
        w.len += 12;
        memcpy(w.data + w.len, id, (size_t)id_len);
        w.len += id_len;
        memcpy(w.data + w.len, "\"}", 2);
        w.len += 2;

        PyObject *event_id = PyUnicode_New(id_len, 127);
        PyObject *data = PyBytes_FromStringAndSize(w.data, w.len);
        PyObject *number = PyLong_FromSsize_t(index + (i - start));
        if (event_id == NULL || data == NULL || number == NULL) {
            Py_XDECREF(event_id);
            Py_XDECREF(data);
            Py_XDECREF(number);
            goto error;
        }
        memcpy(PyUnicode_DATA(event_id), id, (size_t)id_len);
        PyObject *event = new_event(self->event_type, number, event_id, data);  /* steals all three */
        if (event == NULL) {
            goto error;
        }
        int appended = PyList_Append(events, event);
        Py_DECREF(event);
        if (appended < 0) {
            goto error;
        }
    }
    return Py_BuildValue("(Nn)", events, i);

error:
    Py_DECREF(events);
    return NULL;
}

static PyMethodDef FastPlan_methods[] = {
    {"map", (PyCFunction)FastPlan_map, METH_VARARGS,
     "map(rows, start, end, index) -> (events, stop): rows[start:end] up to the first row left to Python."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FastPlanType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "enso_provider.events._speedups.FastPlan",
    .tp_basicsize = sizeof(FastPlan),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The mapper's fast path for one column layout.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)FastPlan_init,
    .tp_dealloc = (destructor)FastPlan_dealloc,
    .tp_traverse = (traverseproc)FastPlan_traverse,
    .tp_clear = (inquiry)FastPlan_clear,
    .tp_methods = FastPlan_methods,
};

/*
 * fill_batch(items, start, batch, size, limit_count, limit_bytes, event_type) -> (stop, size)
 *
 * Append items[start:] to `batch` while each is an `event_type` whose data (plus a comma) fits the
 * batch's count and byte limits; stop at the first that is not (a rejection, a full batch, an event
 * too large), which the delivery's own loop then handles. `size` is the batch's bytes so far.
 */
static PyObject *
fill_batch(PyObject *module, PyObject *args)
{
    PyObject *items, *batch, *event_type;
    Py_ssize_t start, size, limit_count, limit_bytes;
    if (!PyArg_ParseTuple(args, "O!nO!nnnO!", &PyList_Type, &items, &start, &PyList_Type, &batch, &size,
                          &limit_count, &limit_bytes, &PyType_Type, &event_type)) {
        return NULL;
    }
    Py_ssize_t i = start < 0 ? 0 : start;
    for (; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (Py_TYPE(item) != (PyTypeObject *)event_type || PyTuple_GET_SIZE(item) != 3) {
            break;
        }
        PyObject *data = PyTuple_GET_ITEM(item, 2);
        if (!PyBytes_CheckExact(data)) {
            break;
        }
        Py_ssize_t n = PyBytes_GET_SIZE(data) + 1;
        if (PyList_GET_SIZE(batch) >= limit_count || size + n > limit_bytes) {
            break;
        }
        if (PyList_Append(batch, item) < 0) {
            return NULL;
        }
        size += n;
    }
    return Py_BuildValue("(nn)", i, size);
}

/* blake2b_16(person, data) -> 16-byte digest: for the tests, against hashlib. */
static PyObject *
blake2b_16(PyObject *module, PyObject *args)
{
    const char *person, *data;
    Py_ssize_t person_len, data_len;
    if (!PyArg_ParseTuple(args, "y#y#", &person, &person_len, &data, &data_len)) {
        return NULL;
    }
    b2_state st;
    uint8_t digest[16];
    b2_init(&st, 16, (const uint8_t *)person, (size_t)person_len);
    b2_update(&st, (const uint8_t *)data, (size_t)data_len);
    b2_final(&st, digest, 16);
    return PyBytes_FromStringAndSize((const char *)digest, 16);
}

/* float_text(x) -> bytes or None: the text the fast path writes for a float, None where it defers. */
static PyObject *
float_text(PyObject *module, PyObject *arg)
{
    double d = PyFloat_AsDouble(arg);
    if (d == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    char tmp[64];
    Out w = {tmp, 0, (Py_ssize_t)sizeof tmp};
    int r = put_float(&w, d);
    if (r == ERR) {
        return NULL;
    }
    if (r == STOP) {
        Py_RETURN_NONE;
    }
    return PyBytes_FromStringAndSize(tmp, w.len);
}

static PyMethodDef module_methods[] = {
    {"blake2b_16", blake2b_16, METH_VARARGS, "A 16-byte personalised BLAKE2b digest (for the tests)."},
    {"fill_batch", fill_batch, METH_VARARGS, "Append the events that fit to a batch (the delivery's loop)."},
    {"rehash", rehash, METH_VARARGS, "Move a counter table's entries into a table twice its size."},
    {"float_text", float_text, METH_O, "The fast path's text for a float, or None (for the tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "enso_provider.events._speedups",
    .m_doc = "The mapper's optional fast path (see _mapper.py for the reference loop).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    if (PyType_Ready(&FastPlanType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&speedups_module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "FastPlan", (PyObject *)&FastPlanType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
