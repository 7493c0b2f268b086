"""The SOQL subset of Bulk API 2.0 query jobs and of REST /query: tokenizer, parser (resolved against the
schema) and evaluation over the record store (docs/bulk-api-2.md §9.1, §12.2)."""

import itertools
import re
from decimal import Decimal, InvalidOperation

from .common import normalize_id
from .store import COMPOUND_FIELDS, parse_date, parse_datetime


class SoqlError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code, self.message = code, message


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\.)*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<num>[+-]?(?:\d+\.?\d*|\.\d+))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punc>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z0-9_]+)?)
""", re.X)
_KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc", "desc", "nulls",
             "first", "last", "limit", "null", "true", "false", "group", "having", "offset", "typeof", "includes",
             "excludes", "with", "for", "using"}
_AGGREGATES = {"count", "count_distinct", "sum", "avg", "min", "max", "fields", "tolabel", "format",
               "convertcurrency", "calendar_year", "calendar_month", "day_only", "grouping"}


def tokenize(q):
    pos, out = 0, []
    while pos < len(q):
        m = _TOKEN_RE.match(q, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % q[pos:pos + 10])
        kind = m.lastgroup
        if kind != "ws":
            text = m.group(kind)
            if kind == "ident" and text.lower() in _KEYWORDS:
                out.append(("kw", text.lower(), m.start()))
            else:
                out.append((kind, text, m.start()))
        pos = m.end()
    out.append(("end", "", len(q)))
    return out


class Soql:
    """Parses the bulk-query SOQL subset and resolves it against the schema."""

    def __init__(self, text, schema, compound_select=False):
        """compound_select: compound fields may be selected (REST /query does, Bulk refuses: docs/soql-and-rest.md
        §2.9); they are never filtered or sorted on."""
        self.text = text
        self.schema = schema
        self.compound_select = compound_select
        self.toks = tokenize(text)
        self.i = 0
        self.parse()

    def peek(self):
        return self.toks[self.i]

    def take(self):
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect_kw(self, kw):
        t = self.take()
        if t[0] != "kw" or t[1] != kw:
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))

    def parse(self):
        self.expect_kw("select")
        raw_fields = []
        while True:
            t = self.take()
            if t[0] == "kw" and t[1] == "typeof":
                raise SoqlError("API_ERROR", "TYPEOF is not supported by the Bulk API")
            if t[0] == "punc" and t[1] == "(":
                raise SoqlError("API_ERROR", "Parent-to-child relationship subqueries are not supported by the "
                                "Bulk API")
            if t[0] != "ident":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))
            if self.peek()[0] == "punc" and self.peek()[1] == "(":
                if t[1].lower() in _AGGREGATES:
                    raise SoqlError("API_ERROR", "Aggregate or function %s() is not supported by the Bulk API"
                                    % t[1].upper() if t[1].lower() != "fields" else
                                    "FIELDS() is not supported by the Bulk API")
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '('")
            raw_fields.append((t[1], t[2]))
            t = self.peek()
            if t[0] == "punc" and t[1] == ",":
                self.take()
                continue
            break
        self.expect_kw("from")
        t = self.take()
        if t[0] != "ident":
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % t[1])
        self.obj = self.schema.get(t[1])
        if not self.obj:
            raise SoqlError("INVALID_TYPE", "\n%s\n%s^\nERROR at Row:1:Column:%d\nsObject type '%s' is not "
                            "supported. If you are attempting to use a custom object, be sure to append the '__c' "
                            "after the entity name. Please reference your WSDL or the describe call for the "
                            "appropriate names." % (self.text, " " * t[2], t[2] + 1, t[1]))
        self.columns = [self.resolve(name, pos, True) for name, pos in raw_fields]
        self.where = None
        self.order = []
        self.limit = None
        t = self.peek()
        if t[0] == "kw" and t[1] == "where":
            self.take()
            self.where = self.parse_or()
        t = self.peek()
        if t[0] == "kw" and t[1] in ("group", "having"):
            raise SoqlError("API_ERROR", "GROUP BY is not supported by the Bulk API")
        if t[0] == "kw" and t[1] == "order":
            self.take()
            self.expect_kw("by")
            while True:
                f = self.take()
                if f[0] != "ident":
                    raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % f[1])
                path = self.resolve(f[1], f[2])
                desc, nulls_last = False, False
                t = self.peek()
                if t[0] == "kw" and t[1] in ("asc", "desc"):
                    desc = self.take()[1] == "desc"
                    nulls_last = desc
                t = self.peek()
                if t[0] == "kw" and t[1] == "nulls":
                    self.take()
                    w = self.take()
                    nulls_last = w[1] == "last"
                self.order.append((path, desc, nulls_last))
                if self.peek()[0] == "punc" and self.peek()[1] == ",":
                    self.take()
                    continue
                break
        t = self.peek()
        if t[0] == "kw" and t[1] == "limit":
            self.take()
            n = self.take()
            if n[0] != "num" or not n[1].isdigit():
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % n[1])
            self.limit = int(n[1])
        t = self.peek()
        if t[0] == "kw" and t[1] == "offset":
            raise SoqlError("API_ERROR", "OFFSET is not supported by the Bulk API")
        if t[0] != "end":
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % t[1])

    def resolve(self, name, pos, select=False):
        """Returns (header, [rel fields...], final Field); select: a SELECT-list item."""
        parts = name.split(".")
        obj = self.obj
        chain = []
        canon = []
        for k, p in enumerate(parts):
            if k < len(parts) - 1:
                rf = obj.rel_lower.get(p.lower())
                if not rf:
                    raise self.no_column(name, pos)
                chain.append(rf)
                canon.append(rf.relationship_name)
                obj = self.schema.get(rf.reference_to[-1] if rf.polymorphic else rf.reference_to[0])
                if rf.polymorphic:
                    obj = self.schema.get("User") or obj
                if not obj:
                    raise self.no_column(name, pos)
            else:
                f = obj.fields_lower.get(p.lower())
                # refused by name too: standard compounds the schema need not model (docs/bulk-api-2.md §9.1)
                selectable = select and self.compound_select and f is not None
                if (p.lower() in COMPOUND_FIELDS or (f is not None and f.compound)) and not selectable:
                    raise SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
                if not f:
                    raise self.no_column(name, pos)
                canon.append(f.name)
                return (".".join(canon), chain, f)

    def no_column(self, name, pos):
        last = name.split(".")[-1] if "." not in name else name
        return SoqlError("INVALID_FIELD", "\n%s\n%s^\nERROR at Row:1:Column:%d\nNo such column '%s' on entity "
                         "'%s'. If you are attempting to use a custom field, be sure to append the '__c' after the "
                         "custom field name. Please reference your WSDL or the describe call for the appropriate "
                         "names." % (self.text, " " * pos, pos + 1, last, self.obj.name))

    # WHERE --------------------------------------------------------------------------------------------------
    def parse_or(self):
        left = self.parse_and()
        while self.peek()[0] == "kw" and self.peek()[1] == "or":
            self.take()
            right = self.parse_and()
            left = ("or", left, right)
        return left

    def parse_and(self):
        left = self.parse_not()
        while self.peek()[0] == "kw" and self.peek()[1] == "and":
            self.take()
            right = self.parse_not()
            left = ("and", left, right)
        return left

    def parse_not(self):
        if self.peek()[0] == "kw" and self.peek()[1] == "not":
            self.take()
            return ("not", self.parse_not())
        t = self.peek()
        if t[0] == "punc" and t[1] == "(":
            self.take()
            e = self.parse_or()
            t = self.take()
            if t[1] != ")":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % t[1])
            return e
        f = self.take()
        if f[0] != "ident":
            raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (f[1] or "<end>"))
        if self.peek()[0] == "punc" and self.peek()[1] == "(":
            raise SoqlError("API_ERROR", "Functions in WHERE are not supported by the emulator")
        path = self.resolve(f[1], f[2])
        t = self.take()
        if t[0] == "op":
            v = self.literal(path)
            return ("cmp", "!=" if t[1] == "<>" else t[1], path, v)
        if t[0] == "kw" and t[1] == "like":
            v = self.take()
            if v[0] != "str":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % v[1])
            pat = unquote_soql(v[1])
            rx = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pat)
            return ("like", path, re.compile("^" + rx + "$", re.I | re.S))
        neg = False
        if t[0] == "kw" and t[1] == "not":
            neg = True
            t = self.take()
        if t[0] == "kw" and t[1] == "in":
            p = self.take()
            if p[1] != "(":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % p[1])
            if self.peek()[0] == "kw" and self.peek()[1] == "select":
                raise SoqlError("API_ERROR", "Semi-join subqueries are not supported by the emulator")
            vals = []
            while True:
                vals.append(self.literal(path))
                t = self.take()
                if t[1] == ")":
                    break
                if t[1] != ",":
                    raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % t[1])
            return ("in", path, vals, neg)
        raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))

    def literal(self, path):
        t = self.take()
        f = path[2]
        if t[0] == "kw" and t[1] == "null":
            return None
        if t[0] == "kw" and t[1] in ("true", "false"):
            if f.type != "boolean":
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type %s and "
                                "should not be enclosed in quotes" % (f.name, f.type))
            return (True if t[1] == "true" else False)
        if t[0] == "str":
            s = unquote_soql(t[1])
            if f.type in ("int", "double", "currency", "percent", "boolean", "date", "datetime"):
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type %s and "
                                "should not be enclosed in quotes" % (f.name, f.type))
            if f.type in ("id", "reference"):
                n = normalize_id(s)
                return n if n else s
            return s.lower()
        if t[0] == "num":
            if f.type not in ("int", "double", "currency", "percent"):
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type %s"
                                % (f.name, f.type))
            return Decimal(t[1])
        if t[0] == "date":
            if f.type == "datetime":
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type "
                                "dateTime and should not be enclosed in quotes" % f.name)
            if f.type != "date" or parse_date(t[1]) is None:
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type %s"
                                % (f.name, f.type))
            return t[1]
        if t[0] == "dt":
            if f.type != "datetime":
                raise SoqlError("INVALID_FIELD", "value of filter criterion for field '%s' must be of type %s"
                                % (f.name, f.type))
            v = parse_datetime(t[1])
            if v is None:
                raise SoqlError("MALFORMED_QUERY", "invalid date-time literal: %s" % t[1])
            return v
        raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))


def unquote_soql(s):
    body = s[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def typed(f, v):
    """Comparable form of a stored canonical value."""
    if v is None:
        return None
    t = f.type
    if t in ("int", "double", "currency", "percent"):
        try:
            return Decimal(v)
        except InvalidOperation:
            return None
    if t == "boolean":
        return v == "true"
    if t in ("id", "reference", "date", "datetime"):
        return v
    return v.lower()


class QueryRunner:
    def __init__(self, soql, store, include_deleted):
        self.q, self.store, self.include_deleted = soql, store, include_deleted

    def value(self, rec, path):
        header, chain, f = path
        cur = rec
        for rf in chain:
            pid = cur.get(rf.name)
            if not pid:
                return None
            _, cur = self.store.get_any(pid)
            if cur is None:
                return None
        return cur.get(f.name)

    def evaluate(self, e, rec):
        op = e[0]
        if op == "and":
            return self.evaluate(e[1], rec) and self.evaluate(e[2], rec)
        if op == "or":
            return self.evaluate(e[1], rec) or self.evaluate(e[2], rec)
        if op == "not":
            return not self.evaluate(e[1], rec)
        if op == "like":
            v = self.value(rec, e[1])
            return v is not None and bool(e[2].match(v))
        if op == "in":
            v = typed(e[1][2], self.value(rec, e[1]))
            hit = v in e[2]
            return (not hit) if e[3] else hit
        _, cmp, path, lit = e
        v = typed(path[2], self.value(rec, path))
        if lit is None:
            return (v is None) if cmp == "=" else (v is not None) if cmp == "!=" else False
        if cmp == "=":
            return v == lit
        if cmp == "!=":
            return v != lit
        if v is None:
            return False
        try:
            if cmp == "<":
                return v < lit
            if cmp == ">":
                return v > lit
            if cmp == "<=":
                return v <= lit
            if cmp == ">=":
                return v >= lit
        except TypeError:
            return False
        return False

    def records(self, lock=None):
        """The matching records in result order: WHERE, ORDER BY, LIMIT."""
        if lock is not None:
            with lock:  # snapshot only; evaluation runs without the store lock
                recs = list(self.store.records[self.q.obj.name].values())
        else:
            recs = list(self.store.records[self.q.obj.name].values())
        if not self.include_deleted:
            recs = [r for r in recs if r.get("IsDeleted") != "true"]
        if self.q.where is not None:
            recs = [r for r in recs if self.evaluate(self.q.where, r)]
        for path, desc, nulls_last in reversed(self.q.order):
            f = path[2]
            present = [r for r in recs if self.value(r, path) is not None]
            absent = [r for r in recs if self.value(r, path) is None]
            present.sort(key=lambda r: typed(f, self.value(r, path)), reverse=desc)
            recs = present + absent if nulls_last else absent + present
        if self.q.limit is not None:
            recs = recs[:self.q.limit]
        return recs

    def column(self, recs, path):
        """One SELECT column over recs (None for null), built with C-level map() calls: a direct field straight
        from the records, a parent path through a lookup table of the distinct parent ids (null parent -> None).
        A compound field's values are the records holding its components (REST builds the objects from them)."""
        header, chain, f = path
        if not chain:
            return list(recs) if f.compound else list(map(dict.get, recs, itertools.repeat(f.name)))
        vals = list(map(dict.get, recs, itertools.repeat(chain[0].name)))
        for k, rf in enumerate(chain):
            nxt = chain[k + 1].name if k + 1 < len(chain) else f.name
            table = {}
            for pid in set(vals):
                if pid is not None:
                    _, parent = self.store.get_any(pid)
                    if parent is not None and f.compound and k + 1 == len(chain):
                        table[pid] = parent
                    else:
                        table[pid] = parent.get(nxt) if parent is not None else None
            vals = list(map(table.get, vals))
        return vals

    def columns(self, lock=None):
        """(number of rows, [column values...]) in SELECT order."""
        recs = self.records(lock)
        return len(recs), [self.column(recs, c) for c in self.q.columns]

    def run(self, lock=None):
        n, cols = self.columns(lock)
        return [list(r) for r in zip(*cols)] if n else []


# ----------------------------------------------------------------------------------------------------------
