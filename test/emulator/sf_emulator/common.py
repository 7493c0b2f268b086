"""What every part of the emulator shares: ids, the emulator clock, errors, JSON, requests and responses, routes.

Protocol facts: docs/bulk-api-2.md (§2 conventions of every call, §4 errors)."""

import calendar
import datetime
import email.utils
import json
import os
import re
import time
import urllib.parse

EMU_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # test/emulator: metadata, keys, org

# ----------------------------------------------------------------------------------------------------------
# Ids
# ----------------------------------------------------------------------------------------------------------
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID15_RE = re.compile(r"^[0-9A-Za-z]{15}$")
_ID18_RE = re.compile(r"^[0-9A-Za-z]{18}$")


_BLOCK_CHAR = {}


def _block_char(block):
    c = _BLOCK_CHAR.get(block)
    if c is None:
        n = 0
        for i, ch in enumerate(block):
            if "A" <= ch <= "Z":
                n |= 1 << i
        c = _SUFFIX_CHARS[n]
        if len(_BLOCK_CHAR) < 500000:
            _BLOCK_CHAR[block] = c
    return c


def id_suffix(id15):
    return _block_char(id15[0:5]) + _block_char(id15[5:10]) + _block_char(id15[10:15])


def to18(id15):
    return id15 + id_suffix(id15)


def normalize_id(s):
    """Return the 18-char form of a 15/18-char id, or None when malformed (bad chars, length, checksum)."""
    if len(s) == 15:
        if not _ID15_RE.match(s):
            return None
        return to18(s)
    if len(s) == 18:
        if not _ID18_RE.match(s):
            return None
        if id_suffix(s[:15]).upper() != s[15:].upper():
            return None
        return s[:15] + id_suffix(s[:15])
    return None


def make_id(prefix, n):
    """The n-th id of an object: prefix + "Em" + n in 10 base-62 digits, plus the checksum suffix.

    Inserts call this once per record, so it avoids to18()'s generic work: the first 10 characters (and their two
    checksum characters) change only every 62**5 ids and are cached; the last 5 digits and their checksum
    character come from tables of 2-digit pieces."""
    hi, lo = divmod(n, 62 ** 5)
    head = _ID_HEADS.get((prefix, hi))
    if head is None:
        first10 = prefix + "Em" + _b62_5(hi)
        head = _ID_HEADS[(prefix, hi)] = (first10, _block_char(first10[0:5]) + _block_char(first10[5:10]))
    a, rest = divmod(lo, 62 ** 4)
    b, c = divmod(rest, 62 ** 2)
    # checksum bit i = character i of the block is an upper-case letter
    mask = _B62_UPPER[a] | _B62_PAIR_UPPER[b] << 1 | _B62_PAIR_UPPER[c] << 3
    return head[0] + _B62[a] + _B62_PAIRS[b] + _B62_PAIRS[c] + head[1] + _SUFFIX_CHARS[mask]


def make_ids(prefix, n, count):
    """make_id(prefix, n), make_id(prefix, n + 1), ... (count ids) without per-id arithmetic: nested loops over the
    tables of digit pairs; the same ids as make_id."""
    end = n + count
    while n < end:
        hi, lo = divmod(n, 62 ** 5)
        make_id(prefix, n)  # caches the head of this block
        first10, sfx = _ID_HEADS[(prefix, hi)]
        a0, rest = divmod(lo, 62 ** 4)
        b0, c0 = divmod(rest, 62 ** 2)
        for a in range(a0, 62):
            ha, ma = first10 + _B62[a], _B62_UPPER[a]
            for b in range(b0, 62 * 62):
                hb, mb = ha + _B62_PAIRS[b], ma | _B62_PAIR_UPPER[b] << 1
                for c in range(c0, 62 * 62):
                    if n >= end:
                        return
                    yield hb + _B62_PAIRS[c] + sfx + _SUFFIX_CHARS[mb | _B62_PAIR_UPPER[c] << 3]
                    n += 1
                c0 = 0
            b0 = 0


_B62_PAIRS = [x + y for x in _B62 for y in _B62]
_B62_UPPER = [1 if "A" <= x <= "Z" else 0 for x in _B62]
_B62_PAIR_UPPER = [_B62_UPPER[i // 62] | _B62_UPPER[i % 62] << 1 for i in range(62 * 62)]
_ID_HEADS = {}


def _b62_5(n):
    a, rest = divmod(n, 62 ** 4)
    b, c = divmod(rest, 62 ** 2)
    return _B62[a] + _B62_PAIRS[b] + _B62_PAIRS[c]


ORG_ID = make_id("00D", 1)
USER_ID = make_id("005", 1)

# ----------------------------------------------------------------------------------------------------------
# The emulator clock (POST /__emulator/clock sets, advances, freezes and skews it; in-process tests may replace
# common.now). Record time stamps come from it (docs/soql-and-rest.md §4.1, §6 "Change tracking").
# ----------------------------------------------------------------------------------------------------------
_clock = {"offset": 0.0,       # emulator time minus real time while running
          "frozen": None,      # emulator time while frozen (it stands still), else None
          "skew": 0.0,         # seconds the next writes are stamped behind the clock (a late commit)
          "skew_writes": None}  # how many write operations keep that skew; None = until cleared


def now():
    f = _clock["frozen"]
    return f if f is not None else time.time() + _clock["offset"]


def advance_clock(seconds):
    _clock["offset"] += seconds
    if _clock["frozen"] is not None:
        _clock["frozen"] += seconds
    return _clock["offset"]


def set_clock(t):
    """The emulator's time is t (epoch seconds) from now on; it keeps running unless frozen."""
    _clock["offset"] = t - time.time()
    if _clock["frozen"] is not None:
        _clock["frozen"] = float(t)


def freeze_clock(frozen):
    """A frozen clock stands still (every write of a test gets the same, known stamp) until unfrozen, when it
    runs on from where it stood."""
    if frozen and _clock["frozen"] is None:
        _clock["frozen"] = now()
    elif not frozen and _clock["frozen"] is not None:
        _clock["offset"] = _clock["frozen"] - time.time()
        _clock["frozen"] = None


def set_skew(seconds, writes=None):
    """Writes are stamped seconds behind the clock: for the next `writes` write operations (an admin write call,
    an ingest job), or until cleared with 0. This plays a transaction stamped when it wrote but seen only at its
    commit, or an app server whose clock lags: a row that surfaces behind the largest SystemModstamp a client has
    already read (docs/soql-and-rest.md §4.4 step 3, §6 "Change tracking", trap 14)."""
    _clock["skew"] = float(seconds)
    _clock["skew_writes"] = int(writes) if writes is not None and seconds else None


def take_skew():
    """The skew of one write operation (0.0 when none), counting it against skew_writes."""
    s = _clock["skew"]
    if s and _clock["skew_writes"] is not None:
        _clock["skew_writes"] -= 1
        if _clock["skew_writes"] <= 0:
            _clock["skew"], _clock["skew_writes"] = 0.0, None
    return s


def write_ts(skew=0.0):
    """The stamp of a record write now (CreatedDate, LastModifiedDate, SystemModstamp): the clock minus skew."""
    return record_ts(now() - skew)


def clock_state():
    return {"offset_seconds": _clock["offset"], "frozen": _clock["frozen"] is not None,
            "skew_seconds": _clock["skew"], "skew_writes": _clock["skew_writes"], "now": record_ts(now()),
            "now_epoch": now()}


def reset_clock():
    _clock.update(offset=0.0, frozen=None, skew=0.0, skew_writes=None)


def job_ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(t))


def record_ts(t):
    """A record's date-time value: UTC, whole seconds, ".000Z" (docs/soql-and-rest.md §1.4: Salesforce keeps
    date-times to the second; the Bulk result form of docs/bulk-api-2.md §9.3)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def ts_epoch(text):
    """A stored date-time ("2025-11-02T22:07:19.000Z", the canonical form) as epoch seconds."""
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) + int(text[20:23] or 0) / 1000.0


def rest_ts(t):
    """A date-time as REST JSON writes it, "2025-11-03T23:59:00.000+0000" (docs/soql-and-rest.md §1.4, §4.3)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03d+0000" % int(round((t % 1) * 1000) % 1000)


def log_ts(t):
    """Millisecond UTC timestamp of the request log (admin API only)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def http_date(t):
    """An HTTP date (RFC 9110 IMF-fixdate), e.g. for If-Modified-Since."""
    return email.utils.formatdate(t, usegmt=True)


def parse_http_date(h):
    """An HTTP date header as epoch seconds; None when absent or unparsable. A date without a zone is UTC."""
    try:
        d = email.utils.parsedate_to_datetime(h) if h else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if d is None:
        return None
    return (d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)).timestamp()


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------
class ApiError(Exception):
    """A Salesforce error answer: status and a JSON array [{errorCode, message}].

    Member order differs by subsystem (docs/bulk-api-2.md §4.1): the jobs framework writes errorCode first, REST core
    (sessions, limits, describe, REST query, routing) writes message first. core=None takes the order of the
    subsystem whose route raised the error (Request.subsystem)."""

    def __init__(self, status, code, message, headers=None, core=None):
        Exception.__init__(self, message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}
        self.core = core

    def body(self, subsystem):
        core = self.core if self.core is not None else subsystem == "rest"
        if core:
            return dumps([{"message": self.message, "errorCode": self.code}])
        return dumps([{"errorCode": self.code, "message": self.message}])


class OAuthError(Exception):
    def __init__(self, error, desc, status=400):
        Exception.__init__(self, desc)
        self.error, self.desc, self.status = error, desc, status


class RowError(Exception):
    __slots__ = ("text",)

    def __init__(self, code, message, fields=None):
        if fields:
            self.text = "%s:%s:%s --" % (code, message, ",".join(fields))
        else:
            self.text = "%s:%s:--" % (code, message)


class JobFailure(Exception):
    pass


NOT_FOUND = ("NOT_FOUND", "The requested resource does not exist")


def method_not_allowed(method, allowed):
    return ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are %s"
                    % (method, ",".join(allowed)))


# ----------------------------------------------------------------------------------------------------------
# JSON, CSV and HTTP vocabulary
# ----------------------------------------------------------------------------------------------------------
class ApiVersion(float):
    """A float that JSON-encodes with one decimal (62.0)."""


def dumps(obj, pretty=False):
    s = json.dumps(obj, indent=2 if pretty else None, separators=(", ", " : ") if pretty else (",", ":"),
                   ensure_ascii=False)
    return s.encode("utf-8")


# A number in Salesforce's own spelling (1.2345678E7, docs/soql-and-rest.md §1.4) cannot come out of json.dumps,
# which writes floats its own way. Such a value travels as a string between two lone surrogates, which no decoded
# request, CSV or JSON text holds (and which could not be encoded as UTF-8 if one did); dumps_raw removes the
# string's quotes together with the marks, so the C encoder still writes every page.
_RAW_OPEN, _RAW_CLOSE = "\udfff", "\udffe"


def raw_json(text):
    """text (a JSON number) to be written verbatim by dumps_raw."""
    return _RAW_OPEN + text + _RAW_CLOSE


def dumps_raw(obj, pretty=False):
    """dumps() for values holding raw_json numbers."""
    s = json.dumps(obj, indent=2 if pretty else None, separators=(", ", " : ") if pretty else (",", ":"),
                   ensure_ascii=False)
    return s.replace('"' + _RAW_OPEN, "").replace(_RAW_CLOSE + '"', "").encode("utf-8")


JSON_CT = "application/json;charset=UTF-8"
CSV_CT = "text/csv"
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL = ("JobComplete", "Failed", "Aborted")


class Response:
    __slots__ = ("status", "headers", "body", "stream")

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))


class Request:
    """One HTTP request as the route handlers see it."""

    def __init__(self, emu, method, path, query, headers, body):
        self.emu, self.method, self.path, self.query, self.headers, self.body = emu, method, path, query, headers, body
        self.ver = None          # "62.0" on /services/data/vNN.0/... routes
        self.major = None
        self.subsystem = "rest"  # whose error member order applies (ApiError.body)
        self.counted = False     # counted against the API request allocation

    def header(self, name):
        return self.headers.get(name) or ""

    def params(self):
        """The query string's parameters, first value of each."""
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.query).items()}

    def json(self, obj, status=200, raw=False):
        """A JSON answer (X-PrettyPrint: 1 indents it); raw: obj holds raw_json numbers (see dumps_raw)."""
        pretty = self.header("X-PrettyPrint").strip() in ("1", "true")
        return Response(status, (dumps_raw if raw else dumps)(obj, pretty), JSON_CT)


# ----------------------------------------------------------------------------------------------------------
# Route tables: each module lists its resources as Route(pattern, {method: handler}, ...)
# ----------------------------------------------------------------------------------------------------------
class Route:
    """pattern: a regular expression matched against the whole path (below /services/data/vNN.0 for versioned
    routes). methods: {"GET": handler, ...}, handlers called as handler(req, match, resource). lookup(req, match)
    resolves the resource first (so an unknown job is a 404 before a wrong method is a 405). min_version: older
    API versions answer 404. subsystem: "jobs" or "rest", for the error member order."""
    __slots__ = ("regex", "methods", "lookup", "min_version", "subsystem")

    def __init__(self, pattern, methods, lookup=None, min_version=0, subsystem="rest"):
        self.regex = re.compile(pattern)
        self.methods, self.lookup, self.min_version, self.subsystem = methods, lookup, min_version, subsystem


def dispatch(routes, req, path):
    for r in routes:
        m = r.regex.fullmatch(path)
        if m is None:
            continue
        req.subsystem = r.subsystem
        if req.major is not None and req.major < r.min_version:
            raise ApiError(404, *NOT_FOUND)
        resource = r.lookup(req, m) if r.lookup else None
        fn = r.methods.get(req.method)
        if fn is None:
            raise method_not_allowed(req.method, r.methods)
        return fn(req, m, resource)
    raise ApiError(404, *NOT_FOUND)
