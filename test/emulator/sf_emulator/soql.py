"""The SOQL subset of Bulk API 2.0 query jobs and of REST /query: tokenizer, parser (resolved against the
schema) and evaluation over the record store (docs/bulk-api-2.md §9.1, §12.2). Both engines share this evaluator,
so a Bulk query job and a REST query of the same statement select the same rows in the same order; the semantics
are those of docs/soql-and-rest.md §2 (case-insensitive text, LIKE escapes, two-valued !=, boolean = null, outer
joins through parent paths, nulls first, typed literals)."""

import itertools
import operator
import re
import string
import unicodedata
from decimal import Decimal, InvalidOperation

from .common import normalize_id
from .store import COMPOUND_FIELDS, parse_date, parse_datetime


class SoqlError(Exception):
    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code, self.message = code, message


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>'(?:[^'\\]|\\[\s\S])*')
  | (?P<dt>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<dtnozone>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)
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
NUMERIC_TYPES = ("int", "double", "currency", "percent")
# the types whose literals are quoted strings; the others take unquoted literals (docs/soql-and-rest.md §2.6)
_UNQUOTED_TYPES = NUMERIC_TYPES + ("boolean", "date", "datetime")


def caret(text, pos, message, column=None):
    """Salesforce's positioned error text: the statement, a caret under the offending position, the position and
    the message (docs/soql-and-rest.md §1.5, recorded for INVALID_FIELD). Parser errors count columns from 1;
    lexer errors ("no viable alternative") repeat ANTLR's 0-based position, as the logged one does (§1.1)."""
    return "\n%s\n%s^\nERROR at Row:1:Column:%d\n%s" % (text, " " * pos, pos + 1 if column is None else column,
                                                      message)


def lexer_error(q, pos):
    """An unusable character: the logged form of §1.1 (a raw '+' in a date-time offset arrives as a space)."""
    ch = q[pos] if pos < len(q) else "<EOF>"
    return SoqlError("MALFORMED_QUERY", caret(q, pos, "line 1:%d no viable alternative at character '%s'"
                                              % (pos, ch), column=pos))


def tokenize(q):
    pos, out = 0, []
    while pos < len(q):
        m = _TOKEN_RE.match(q, pos)
        if not m:
            raise lexer_error(q, pos)
        kind = m.lastgroup
        if kind == "dtnozone":  # a date-time needs Z or an offset (§2.6): the lexer fails right after it
            raise lexer_error(q, m.end())
        if kind != "ws":
            text = m.group(kind)
            if kind == "ident" and text.lower() in _KEYWORDS:
                out.append(("kw", text.lower(), m.start()))
            else:
                out.append((kind, text, m.start()))
        pos = m.end()
    out.append(("end", "", len(q)))
    return out


# -- string literals (docs/soql-and-rest.md §2.2, §2.6) ------------------------------------------------------
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}


class BadLiteral(Exception):
    pass


def scan_literal(body, like):
    """The characters of a quoted literal's body as (char, wildcard) pairs. Escapes: \\' \\" \\\\ \\n \\r \\t \\b \\f
    (letters in either case) and \\uXXXX; in a LIKE pattern also \\% and \\_ (literal, not wildcards), which are
    errors elsewhere; any other backslash is an error. A surrogate pair written as two \\u escapes is one
    character; a lone surrogate is an error (Unicode must round-trip)."""
    out, i, n = [], 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append((c, like and c in "%_"))
            i += 1
            continue
        e = body[i + 1]  # the tokenizer guarantees a character after every backslash
        if e in "uU":
            hx = body[i + 2:i + 6]
            if len(hx) != 4 or not all(h in string.hexdigits for h in hx):
                raise BadLiteral("Illegal unicode sequence. '%s' in string literal." % body[i:i + 6].lower())
            out.append((chr(int(hx, 16)), False))
            i += 6
            continue
        r = _ESCAPES.get(e if e in "'\"\\" else e.lower())
        if r is None and like and e in "%_":
            r = e
        if r is None:
            raise BadLiteral("Illegal character sequence '\\%s' in string literal." % e)
        out.append((r, False))
        i += 2
    if any("\ud800" <= c <= "\udfff" for c, _ in out):
        out = _join_surrogates(out)
    return out


def _join_surrogates(chars):
    out, i = [], 0
    while i < len(chars):
        c = chars[i][0]
        if "\ud800" <= c <= "\udbff" and i + 1 < len(chars) and "\udc00" <= chars[i + 1][0] <= "\udfff":
            out.append(((c + chars[i + 1][0]).encode("utf-16-le", "surrogatepass").decode("utf-16-le"), False))
            i += 2
            continue
        if "\ud800" <= c <= "\udfff":
            raise BadLiteral("Illegal unicode sequence. '\\u%04x' in string literal." % ord(c))
        out.append(chars[i])
        i += 1
    return out


def like_regex(chars, case_sensitive):
    """A LIKE pattern as a regular expression matched against the whole value: % any run (line breaks too), _ one
    character, case-insensitive unless the field is case-sensitive (§2.1, §2.2)."""
    rx = "".join(".*" if w and c == "%" else "." if w else re.escape(c) for c, w in chars)
    return re.compile(rx, re.S if case_sensitive else re.S | re.I)


class Soql:
    """Parses the SOQL subset and resolves it against the schema."""

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

    def caret(self, pos, message):
        return caret(self.text, pos, message)

    def parse(self):
        t = self.peek()
        if t[0] != "kw" or t[1] != "select":  # recorded: unquoted, no position (docs/soql-and-rest.md §1.5)
            raise SoqlError("MALFORMED_QUERY", "unexpected token: %s" % (t[1] or "<EOF>"))
        self.take()
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
            raise SoqlError("INVALID_TYPE", self.caret(t[2], "sObject type '%s' is not supported. If you are "
                            "attempting to use a custom object, be sure to append the '__c' after the entity name. "
                            "Please reference your WSDL or the describe call for the appropriate names." % t[1]))
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
                path = self.resolve(f[1], f[2], use="sorted")
                # §2.5: ASC by default; nulls first ascending, last descending, unless NULLS says otherwise
                desc, nulls_last = False, False
                t = self.peek()
                if t[0] == "kw" and t[1] in ("asc", "desc"):
                    desc = self.take()[1] == "desc"
                    nulls_last = desc
                t = self.peek()
                if t[0] == "kw" and t[1] == "nulls":
                    self.take()
                    w = self.take()
                    if w[0] != "kw" or w[1] not in ("first", "last"):
                        raise SoqlError("MALFORMED_QUERY", self.caret(w[2], "unexpected token: '%s'"
                                                                      % (w[1] or "<EOF>")))
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

    def resolve(self, name, pos, select=False, use=None):
        """Returns (header, [rel fields...], final Field); select: a SELECT-list item; use: "filtered" (WHERE) or
        "sorted" (ORDER BY), refused for fields whose describe says they are not filterable / sortable (§2.7)."""
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
                # refused by name too: standard compounds the schema need not model (docs/bulk-api-2.md §9.1);
                # REST lets a modelled compound through here, to be refused as unfilterable/unsortable below
                selectable = self.compound_select and f is not None and (select or use is not None)
                if (p.lower() in COMPOUND_FIELDS or (f is not None and f.compound)) and not selectable:
                    raise SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
                if not f:
                    raise self.no_column(name, pos)
                if use == "filtered" and not f.filterable:
                    raise SoqlError("INVALID_FIELD", self.caret(pos, "field '%s' can not be filtered in query call"
                                                                % f.name))
                if use == "sorted" and not f.sortable:
                    raise SoqlError("INVALID_FIELD", self.caret(pos, "field '%s' can not be sorted in a query call"
                                                                % f.name))
                canon.append(f.name)
                return (".".join(canon), chain, f)

    def no_column(self, name, pos):
        last = name.split(".")[-1] if "." not in name else name
        return SoqlError("INVALID_FIELD", self.caret(pos, "No such column '%s' on entity '%s'. If you are attempting "
                         "to use a custom field, be sure to append the '__c' after the custom field name. Please "
                         "reference your WSDL or the describe call for the appropriate names." % (last, self.obj.name)))

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
        path = self.resolve(f[1], f[2], use="filtered")
        fld = path[2]
        t = self.take()
        if t[0] == "op":
            if fld.type == "multipicklist" and t[1] not in ("=", "!=", "<>"):
                raise self.bad_operator(t, "invalid operator on multipicklist field")
            v = self.literal(path)
            return ("cmp", "!=" if t[1] == "<>" else t[1], path, v)
        if t[0] == "kw" and t[1] == "like":
            if fld.type == "multipicklist":
                raise self.bad_operator(t, "invalid operator on multipicklist field")
            v = self.take()
            if v[0] != "str":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % v[1])
            return ("like", path, like_regex(self.string(v, like=True), fld.case_sensitive))
        if t[0] == "kw" and t[1] in ("includes", "excludes"):
            if fld.type != "multipicklist":
                raise self.bad_operator(t, "includes or excludes operator only valid on multipicklist field")
            sets = [v for v in self.literal_list(path) if v is not None]
            return ("includes", path, sets, t[1] == "excludes")
        neg = False
        if t[0] == "kw" and t[1] == "not":
            neg = True
            t = self.take()
        if t[0] == "kw" and t[1] == "in":
            return ("in", path, self.literal_list(path), neg)
        raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))

    def literal_list(self, path):
        """( literal, ... ): never empty -- IN () is a syntax error (docs/soql-and-rest.md §1.5, §2.3)."""
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
                return vals
            if t[1] != ",":
                raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % t[1])

    def bad_operator(self, tok, message):
        return SoqlError("INVALID_QUERY_FILTER_OPERATOR", self.caret(tok[2], message))

    def string(self, tok, like=False):
        """A quoted literal's characters (see scan_literal); an illegal escape is MALFORMED_QUERY in the logged
        form "Invalid string literal '...'. Illegal character sequence '\\x' in string literal."."""
        body = tok[1][1:-1]
        if "\\" not in body and not like:
            return body
        try:
            chars = scan_literal(body, like)
        except BadLiteral as e:
            raise SoqlError("MALFORMED_QUERY", self.caret(tok[2], "Invalid string literal '%s'. %s" % (body, e)))
        return chars if like else "".join(c for c, _ in chars)

    def type_error(self, tok, f):
        """A literal of the wrong kind for the field: INVALID_FIELD with Salesforce's wording (quoted for text,
        unquoted for numbers, booleans, dates and date-times, which are not interchangeable: §2.6)."""
        if f.type in _UNQUOTED_TYPES:
            kind = {"datetime": "dateTime", "currency": "double", "percent": "double"}.get(f.type, f.type)
            how = "should not be enclosed in quotes"
        else:
            kind, how = "string", "should be enclosed in quotes"
        return SoqlError("INVALID_FIELD", self.caret(tok[2], "value of filter criterion for field '%s' must be of "
                                                     "type %s and %s" % (f.name, kind, how)))

    def literal(self, path):
        """A literal in the comparable form of the field's values (see typed): text lower-cased unless the field is
        case-sensitive, ids in their 18-character form, numbers as decimals, date-times as UTC instants."""
        t = self.take()
        f = path[2]
        if t[0] == "kw" and t[1] == "null":
            return None
        if t[0] == "kw" and t[1] in ("true", "false"):
            if f.type != "boolean":
                raise self.type_error(t, f)
            return t[1] == "true"
        if t[0] == "str":
            if f.type in _UNQUOTED_TYPES:
                raise self.type_error(t, f)
            s = self.string(t)
            if f.type in ("id", "reference"):
                # 15 or 18 characters: compared on the 18-character form (§2.1); anything else is refused
                n = normalize_id(s)
                if n is None and not re.fullmatch(r"[0-9A-Za-z]{18}", s):
                    raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", self.caret(t[2], "invalid ID field: %s" % s))
                return n or s  # a well-formed 18 whose suffix does not fit its case matches nothing
            return typed(f, s)
        if t[0] == "num":
            if f.type not in NUMERIC_TYPES:
                raise self.type_error(t, f)
            return Decimal(t[1])
        if t[0] == "date":
            if f.type != "date":
                raise self.type_error(t, f)
            if parse_date(t[1]) is None:
                raise SoqlError("MALFORMED_QUERY", self.caret(t[2], "invalid date: %s" % t[1]))
            return t[1]
        if t[0] == "dt":
            if f.type != "datetime":
                raise self.type_error(t, f)
            v = parse_datetime(t[1])  # Z, +hh:mm, -hh:mm, .000: the UTC instant, in the stored form
            if v is None:
                raise SoqlError("MALFORMED_QUERY", self.caret(t[2], "invalid date-time literal: %s" % t[1]))
            return v
        raise SoqlError("MALFORMED_QUERY", "unexpected token: '%s'" % (t[1] or "<end>"))


def typed(f, v):
    """Comparable form of a stored canonical value (and of a literal, see Soql.literal): numbers as decimals,
    booleans as bools, ids, dates and date-times (fixed-width UTC text) as they are, a multi-select picklist as the
    set of its values, other text lower-cased unless the field is caseSensitive (§2.1, §2.3)."""
    if v is None:
        return None
    t = f.type
    if t in NUMERIC_TYPES:
        try:
            return Decimal(v)
        except InvalidOperation:
            return None
    if t == "boolean":
        return v == "true"
    if t in ("id", "reference", "date", "datetime"):
        return v
    if t == "multipicklist":
        return frozenset(v.lower().split(";"))
    return v if f.case_sensitive else text_key(v)


def _converter(f):
    """typed() for the non-null values of f, as one function; None when the stored text is its own comparable
    form (ids, references, dates, date-times, case-sensitive text)."""
    t = f.type
    if t in NUMERIC_TYPES:
        def number(v):
            try:
                return Decimal(v)
            except InvalidOperation:
                return None
        return number
    if t == "boolean":
        return "true".__eq__
    if t in ("id", "reference", "date", "datetime"):
        return None
    if t == "multipicklist":
        return lambda v: frozenset(v.lower().split(";"))
    return None if f.case_sensitive else text_key


_COMPARE = {"=": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt, "<=": operator.le,
            ">=": operator.ge}


def text_key(v):
    """Case-insensitive text in an order close to a locale's (§2.1, §2.5): accents and case are ignored first
    ("Émile" sorts among the E's, not after "Zed"), then accents count; case never does. Equal keys mean equal
    text but for case, which is what `=` needs (so "Émile" != "emile")."""
    low = v.lower()
    return low if low.isascii() else _folded(low)


def _folded(low):
    """The key of non-ASCII lower-cased text: the text without accents, NUL, the text. It orders as the pair
    (unaccented, accented) would, also against ASCII keys, which are their own unaccented form; text holds no NUL."""
    return "".join(c for c in unicodedata.normalize("NFKD", low) if not unicodedata.combining(c)) + "\0" + low


def sort_keys(f, vals):
    """ORDER BY keys of non-null stored values: as typed, except that text always sorts case-insensitively (§2.5).
    Text takes C-level loops when it is all ASCII (the usual case)."""
    if f.type in NUMERIC_TYPES or f.type in ("boolean", "id", "reference", "date", "datetime"):
        return [typed(f, v) for v in vals] if f.type in NUMERIC_TYPES or f.type == "boolean" else vals
    low = list(map(str.lower, vals))
    if all(map(str.isascii, low)):
        return low
    return [k if k.isascii() else _folded(k) for k in low]


class QueryRunner:
    """Evaluates a parsed statement over the store. not_equal_keeps_nulls: `!=`, NOT IN and EXCLUDES are true for
    a null value (the two-valued logic Salesforce is widely reported to use, docs/soql-and-rest.md §2.4, the
    default); False switches to SQL's three-valued logic, where a comparison with null is unknown and NOT of
    unknown is unknown, so those rows drop out."""

    def __init__(self, soql, store, include_deleted, not_equal_keeps_nulls=True):
        self.q, self.store, self.include_deleted = soql, store, include_deleted
        self.two_valued = not_equal_keeps_nulls
        self.unknown = False if not_equal_keeps_nulls else None  # a comparison with null that is not IS NULL

    def value(self, rec, path):
        """A path's stored value; a parent path through a missing parent is null (an outer join, §2.4)."""
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

    def predicate(self, e):
        """The WHERE tree e as a function record -> True, False or None (unknown: three-valued mode only; a row
        is selected only when True). Compiled once per run, so a row costs closure calls, not tree walks."""
        op = e[0]
        if op in ("and", "or"):
            a, b = self.predicate(e[1]), self.predicate(e[2])
            if op == "and":
                def both(r):
                    x = a(r)
                    if x is False:
                        return False
                    y = b(r)
                    return y if x is True else (False if y is False else None)
                return both

            def either(r):
                x = a(r)
                if x is True:
                    return True
                y = b(r)
                return y if x is False else (True if y is True else None)
            return either
        if op == "not":
            a = self.predicate(e[1])

            def negated(r):
                x = a(r)
                return None if x is None else not x
            return negated
        path = e[2] if op == "cmp" else e[1]
        get = self.getter(path)
        f = path[2]
        conv = _converter(f)
        unknown = self.unknown                          # a test of a null value
        null_negated = True if self.two_valued else None  # !=, NOT IN, EXCLUDES of a null value
        if op == "like":
            match = e[2].fullmatch

            def like(r):
                v = get(r)
                return unknown if v is None else match(v) is not None
            return like
        if op in ("in", "includes"):
            neg = e[3]
            if op == "in":
                wanted, has_null = set(v for v in e[2] if v is not None), None in e[2]
                if_null = (not neg) if has_null else (null_negated if neg else unknown)  # IN (null, ...)

                def test(v):
                    return v in wanted
            else:
                sets, if_null = e[2], null_negated if neg else unknown

                def test(v):
                    return any(s <= v for s in sets)  # 'a;b' in one literal: both values (§2.3)

            def member(r):
                v = get(r)
                if v is None:
                    return if_null
                hit = test(conv(v) if conv else v)
                return not hit if neg else hit
            return member
        _, cmp, _, lit = e
        if lit is None:
            if f.type == "boolean":  # a checkbox is never null: = null means false, != null true (§2.4)
                if cmp in ("=", "!="):
                    want = cmp == "!="
                    return lambda r: (get(r) == "true") is want
            elif cmp in ("=", "!="):
                want = cmp == "="
                return lambda r: (get(r) is None) is want
            return lambda r: False
        compare = _COMPARE[cmp]
        if_null = null_negated if cmp == "!=" else unknown

        def comparison(r):
            v = get(r)
            if v is None:
                return if_null
            try:
                return compare(conv(v) if conv else v, lit)
            except TypeError:
                return False
        return comparison

    def getter(self, path):
        """record -> the path's stored value (see value)."""
        header, chain, f = path
        if not chain:
            name = f.name
            return lambda r: r.get(name)
        return lambda r: self.value(r, path)

    def records(self, lock=None):
        """The matching records in result order: WHERE, ORDER BY (each key a stable sort, the last key first, so
        ties keep the order of the later keys and then the store's), LIMIT."""
        name = self.q.obj.name
        if lock is not None:
            with lock:  # snapshot only; evaluation runs without the store lock
                if self.include_deleted:
                    self.store.expire_bin([name])  # rows past the bin's days are purged first (§4.2)
                recs = list(self.store.records[name].values())
        else:
            if self.include_deleted:
                self.store.expire_bin([name])
            recs = list(self.store.records[name].values())
        if not self.include_deleted:
            recs = [r for r in recs if r.get("IsDeleted") != "true"]
        if self.q.where is not None:
            where = self.predicate(self.q.where)
            recs = [r for r in recs if where(r) is True]
        for path, desc, nulls_last in reversed(self.q.order):
            vals = self.column(recs, path)
            if None in vals:
                absent = [r for v, r in zip(vals, recs) if v is None]
                recs = [r for v, r in zip(vals, recs) if v is not None]
                vals = [v for v in vals if v is not None]
            else:
                absent = []
            keys = sort_keys(path[2], vals)
            order = sorted(range(len(recs)), key=keys.__getitem__, reverse=desc)  # reverse keeps ties in order
            recs = list(map(recs.__getitem__, order))
            recs = recs + absent if nulls_last else absent + recs
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
