#!/usr/bin/python3
"""Salesforce Bulk API 2.0 emulator for sf_bulk tests, the demo and users' offline pipeline tests.

Standalone, Python 3 standard library only (plus Debian's python3-cryptography for RS256 JWT checks).
Protocol reference: docs/bulk-api-2.md (shared project docs). See README.md beside this file.

Usage:
  /usr/bin/python3 sf_emulator.py [--host 127.0.0.1] [--port 0] [--url-file PATH] [--metadata FILE]
                                  [--data-dir DIR] [--processing-delay-ms N] [--token-ttl-seconds N] [--seed N]
"""

import argparse
import base64
import csv
import datetime as _dt
import gc
import gzip
import hashlib
import hmac
import io
import itertools
import ipaddress
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
csv.field_size_limit(64 * 1024 * 1024)

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
# Time
# ----------------------------------------------------------------------------------------------------------
_clock_offset = [0.0]


def now():
    return time.time() + _clock_offset[0]


def job_ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(t))


def apply_values(rec, values):
    """Writes field values into a record; None clears the field."""
    if None in values.values():
        for k, v in values.items():
            if v is None:
                rec.pop(k, None)
            else:
                rec[k] = v
    else:
        rec.update(values)


def record_ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


# ----------------------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------------------
class Field:
    def __init__(self, d):
        self.name = d["name"]
        self.label = d.get("label", self.name)
        self.type = d.get("type", "string")
        self.length = int(d.get("length", 255 if self.type in ("string", "picklist", "multipicklist") else 0))
        if self.type in ("email",) and not d.get("length"):
            self.length = 80
        if self.type in ("textarea",) and not d.get("length"):
            self.length = 32000
        self.precision = int(d.get("precision", 18))
        self.scale = int(d.get("scale", 0 if self.type in ("int", "currency") else 2))
        self.required = bool(d.get("required", False))
        self.nillable = bool(d.get("nillable", not self.required and self.type != "boolean"))
        self.createable = bool(d.get("createable", True))
        self.updateable = bool(d.get("updateable", True))
        self.external_id = bool(d.get("externalId", False))
        self.unique = bool(d.get("unique", False))
        self.case_sensitive = bool(d.get("caseSensitive", False))
        self.id_lookup = bool(d.get("idLookup", self.external_id or self.type == "id"))
        self.picklist = list(d.get("picklistValues", []))
        self.picklist_set = set(self.picklist)
        self.restricted = bool(d.get("restrictedPicklist", False))
        self.default = d.get("defaultValue")
        self.defaulted_on_create = bool(d.get("defaultedOnCreate", self.default is not None))
        self.reference_to = list(d.get("referenceTo", []))
        self.relationship_name = d.get("relationshipName")
        self.computed = bool(d.get("computed", False))
        self.polymorphic = len(self.reference_to) > 1
        self.indexed = self.unique or self.external_id

    def describe(self):
        soap = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
                "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
                "datetime": "xsd:dateTime"}.get(self.type, "xsd:string")
        return {
            "name": self.name, "label": self.label, "type": self.type,
            "length": self.length if self.type not in ("boolean", "int", "double", "currency", "percent", "date",
                                                       "datetime") else 0,
            "precision": self.precision if self.type in ("double", "currency", "percent") else 0,
            "scale": self.scale if self.type in ("double", "currency", "percent") else 0,
            "digits": self.precision if self.type == "int" else 0,
            "byteLength": self.length * 3 if self.type not in ("boolean", "int", "double", "currency", "percent",
                                                               "date", "datetime") else 0,
            "soapType": soap,
            "nillable": self.nillable, "createable": self.createable, "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted_on_create, "defaultValue": self.default,
            "externalId": self.external_id, "unique": self.unique, "caseSensitive": self.case_sensitive,
            "idLookup": self.id_lookup, "filterable": True, "sortable": self.type not in ("textarea", "multipicklist"),
            "calculated": self.computed, "custom": self.name.endswith("__c"),
            "picklistValues": [{"active": True, "defaultValue": v == self.default, "label": v, "validFor": None,
                                "value": v} for v in self.picklist],
            "restrictedPicklist": self.restricted,
            "referenceTo": self.reference_to, "relationshipName": self.relationship_name,
            "polymorphicForeignKey": self.polymorphic,
        }


SYSTEM_FIELDS = [
    {"name": "Id", "label": "Record ID", "type": "id", "length": 18, "createable": False, "updateable": False,
     "idLookup": True, "nillable": False},
    {"name": "IsDeleted", "label": "Deleted", "type": "boolean", "createable": False, "updateable": False,
     "defaultValue": "false"},
    {"name": "CreatedDate", "label": "Created Date", "type": "datetime", "createable": False, "updateable": False},
    {"name": "CreatedById", "label": "Created By ID", "type": "reference", "referenceTo": ["User"],
     "relationshipName": "CreatedBy", "createable": False, "updateable": False},
    {"name": "LastModifiedDate", "label": "Last Modified Date", "type": "datetime", "createable": False,
     "updateable": False},
    {"name": "LastModifiedById", "label": "Last Modified By ID", "type": "reference", "referenceTo": ["User"],
     "relationshipName": "LastModifiedBy", "createable": False, "updateable": False},
    {"name": "SystemModstamp", "label": "System Modstamp", "type": "datetime", "createable": False,
     "updateable": False},
]
COMPOUND_FIELDS = {"address", "billingaddress", "shippingaddress", "mailingaddress", "otheraddress", "location"}


class SObject:
    def __init__(self, name, d):
        self.name = name
        self.key_prefix = d["keyPrefix"]
        self.label = d.get("label", name)
        self.label_plural = d.get("labelPlural", self.label + "s")
        self.name_fields = d.get("nameFields")
        self.bulk_ingest = bool(d.get("bulkIngest", True))
        self.fields = {}
        defs = (SYSTEM_FIELDS[:1] if d.get("systemFields", True) else []) + list(d.get("fields", []))
        if d.get("systemFields", True):
            defs += SYSTEM_FIELDS[1:]
        for fd in defs:
            f = Field(fd)
            self.fields[f.name] = f
        self.fields_lower = {k.lower(): f for k, f in self.fields.items()}
        self.defaults = {f.name: f.default for f in self.fields.values() if f.default is not None and f.name != "Id"}
        self.defaults.update({"IsDeleted": "false", "CreatedById": USER_ID, "LastModifiedById": USER_ID})
        if "OwnerId" in self.fields:
            self.defaults["OwnerId"] = USER_ID
        self.rel_lower = {f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name}

    def describe_global(self):
        return {"name": self.name, "label": self.label, "labelPlural": self.label_plural,
                "keyPrefix": self.key_prefix, "custom": self.name.endswith("__c"), "createable": True,
                "updateable": True, "deletable": True, "queryable": True, "searchable": True,
                "urls": {"sobject": "/services/data/v{v}/sobjects/%s" % self.name,
                         "describe": "/services/data/v{v}/sobjects/%s/describe" % self.name,
                         "rowTemplate": "/services/data/v{v}/sobjects/%s/{ID}" % self.name}}


class Schema:
    def __init__(self, path):
        with open(path, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        self.objects = {n: SObject(n, d) for n, d in doc["objects"].items()}
        self.lower = {n.lower(): o for n, o in self.objects.items()}
        self.by_prefix = {o.key_prefix: o for o in self.objects.values()}

    def get(self, name):
        return self.lower.get((name or "").lower())


# ----------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        Exception.__init__(self, message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


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

# ----------------------------------------------------------------------------------------------------------
# Value conversion (CSV text -> canonical stored text) per Salesforce type
# ----------------------------------------------------------------------------------------------------------
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_DEC_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_DBL_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})?$")
_BOOL = {"true": "true", "false": "false", "1": "true", "0": "false"}


def parse_date(v):
    m = _DATE_RE.match(v)
    if not m:
        return None
    y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1700 <= y <= 4000):
        return None
    try:
        _dt.date(y, mo, d)
    except ValueError:
        return None
    return v


def parse_datetime(v):
    m = _DT_RE.match(v)
    if not m:
        return None
    y, mo, d, hh, mi, ss = (int(m.group(i)) for i in range(1, 7))
    ms = int((m.group(7) or "0").ljust(3, "0"))
    if not (1700 <= y <= 4000):
        return None
    try:
        base = _dt.datetime(y, mo, d, hh, mi, ss, ms * 1000)
    except ValueError:
        return None
    tz = m.group(8)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if oh > 14 or om > 59:
            return None
        base -= sign * _dt.timedelta(hours=oh, minutes=om)
    return base.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (base.microsecond // 1000)


# Forms that a converter returns unchanged and without error (see make_converter's "plain" predicates). They are
# strict subsets of what the converters accept: anything else simply takes the exact per-value path.
_PLAIN_DATE = (r"(?:1[7-9][0-9]{2}|[23][0-9]{3}|4000)-"        # years 1700-4000
               r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"  # days 1-28 exist in every month
               r"|(?:0[13-9]|1[0-2])-(?:29|30)"                # 29/30: every month but February (leap days: exact path)
               r"|(?:0[13578]|1[02])-31)")                      # 31: the long months
_PLAIN_DATE_RE = re.compile(_PLAIN_DATE)
_PLAIN_DATETIME_RE = re.compile(_PLAIN_DATE + r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{3}Z")


def _all_match(rx, col):
    """True when every non-empty cell of col matches rx completely (C loops: map/filter)."""
    return all(map(rx.fullmatch, filter(None, col)))


def _deser(col, v, xsd, f):
    return RowError("INVALID_FIELD", "Failed to deserialize field at col %d. Due to, '%s' is not a valid value "
                    "for the type %s" % (col, v, xsd), [f.name])


def make_converter(f, col):
    """Return a function text -> canonical value, raising RowError. Only syntax/length/picklist checks.

    The function carries a predicate conv.plain(column): True when conv(v) == v without error for every
    non-empty cell of the column (a tuple of cells of one internal batch). It is checked with C-level loops over
    the whole column, so clean data skips the per-cell call; a column for which it says False is converted cell by
    cell. None means "no shortcut"."""
    conv = _make_converter(f, col)
    if conv is not None:
        conv.plain = _plain_predicate(f)
    return conv


def _plain_predicate(f):
    t = f.type
    if t in ("string", "textarea", "phone", "url", "id", "email", "picklist"):
        maxlen = f.length or (80 if t == "email" else 255)
        allowed = f.picklist_set if (t == "picklist" and f.restricted) else None

        def plain(col):
            if max(map(len, col)) > maxlen:
                return False
            if allowed is not None and not allowed.issuperset(filter(None, col)):
                return False
            return t != "email" or _all_match(_EMAIL_RE, col)
        return plain
    if t == "boolean":
        return {"", "true", "false"}.issuperset
    if t == "int":
        # digits without sign or leading zero, at most 9 of them: str(int(v)) == v and always inside the int range
        rx = re.compile(r"0|[1-9][0-9]{0,%d}" % (min(f.precision or 9, 9) - 1))
        return lambda col: _all_match(rx, col)
    if t in ("double", "currency", "percent"):
        # exactly `scale` decimals, no sign, no leading zero, integer part within precision: quantize() keeps it
        intdigits, scale = max(1, f.precision - f.scale), f.scale
        if intdigits + scale > 28:  # beyond the decimal context's precision quantize() may fail: exact path
            return None
        rx = re.compile(r"(?:0|[1-9][0-9]{0,%d})%s" % (intdigits - 1, r"\.[0-9]{%d}" % scale if scale else ""))
        return lambda col: _all_match(rx, col)
    if t == "date":
        return lambda col: _all_match(_PLAIN_DATE_RE, col)
    if t == "datetime":
        return lambda col: _all_match(_PLAIN_DATETIME_RE, col)
    if t in ("multipicklist", "reference"):
        return None
    return lambda col: True  # types without checks keep the text as it is


def _make_converter(f, col):
    t = f.type
    name, label = f.name, f.label
    if t in ("string", "textarea", "phone", "url", "id"):
        maxlen = f.length or 255

        def conv(v):
            if len(v) > maxlen:
                raise RowError("STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)" % (label, v, maxlen),
                               [name])
            return v
        return conv
    if t == "email":
        maxlen = f.length or 80

        def conv(v):
            if len(v) > maxlen:
                raise RowError("STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)" % (label, v, maxlen),
                               [name])
            if not _EMAIL_RE.match(v):
                raise RowError("INVALID_EMAIL_ADDRESS", "%s: invalid email address: %s" % (label, v), [name])
            return v
        return conv
    if t == "picklist":
        allowed, restricted, maxlen = f.picklist_set, f.restricted, f.length or 255

        def conv(v):
            if restricted and v not in allowed:
                raise RowError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                               "%s: bad value for restricted picklist field: %s" % (label, v), [name])
            if len(v) > maxlen:
                raise RowError("STRING_TOO_LONG", "%s: data value too large: %s (max length=%d)" % (label, v, maxlen),
                               [name])
            return v
        return conv
    if t == "multipicklist":
        allowed, restricted = f.picklist_set, f.restricted

        def conv(v):
            parts = [p for p in v.split(";")]
            if restricted:
                for p in parts:
                    if p not in allowed:
                        raise RowError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                       "%s: bad value for restricted picklist field: %s" % (label, p), [name])
            return ";".join(parts)
        return conv
    if t == "boolean":
        def conv(v):
            r = _BOOL.get(v.lower())
            if r is None:
                raise RowError("INVALID_TYPE_ON_FIELD_IN_RECORD", "%s: value not of required type: %s" % (label, v),
                               [name])
            return r
        return conv
    if t == "int":
        digits = f.precision or 9

        def conv(v):
            if not _INT_RE.match(v):
                if _DBL_RE.match(v):
                    raise RowError("INVALID_TYPE_ON_FIELD_IN_RECORD",
                                   "%s: value not of required type: %s" % (label, v), [name])
                raise _deser(col, v, "xsd:int", f)
            n = int(v)
            if len(str(abs(n))) > digits or not (-2147483648 <= n <= 2147483647):
                raise RowError("NUMBER_OUTSIDE_VALID_RANGE",
                               "%s: value outside of valid range on numeric field: %s" % (label, v), [name])
            return str(n)
        return conv
    if t in ("double", "currency", "percent"):
        intdigits = max(1, f.precision - f.scale)
        scale = f.scale
        q = Decimal(1).scaleb(-scale)
        rx = _DBL_RE if t == "double" else _DEC_RE

        def conv(v):
            if not rx.match(v):
                raise _deser(col, v, "xsd:double", f)
            try:
                d = Decimal(v).quantize(q)
            except InvalidOperation:
                raise RowError("NUMBER_OUTSIDE_VALID_RANGE",
                               "%s: value outside of valid range on numeric field: %s" % (label, v), [name])
            if len(str(abs(int(d)))) > intdigits:
                raise RowError("NUMBER_OUTSIDE_VALID_RANGE",
                               "%s: value outside of valid range on numeric field: %s" % (label, v), [name])
            s = format(d, "f")
            if d == 0:
                s = format(Decimal(0).quantize(q), "f")
            return s
        return conv
    if t in ("date", "datetime"):
        parse, xsd = (parse_date, "xsd:date") if t == "date" else (parse_datetime, "xsd:dateTime")

        def conv(v):
            r = parse(v)
            if r is None:
                raise _deser(col, v, xsd, f)
            return r
        return conv
    if t == "reference":
        return None  # resolved against the store
    return lambda v: v


# ----------------------------------------------------------------------------------------------------------
# Record store
# ----------------------------------------------------------------------------------------------------------
class Store:
    def __init__(self, schema):
        self.schema = schema
        self.clear()

    def clear(self):
        self.records = {n: {} for n in self.schema.objects}
        self.index = {n: {f.name: {} for f in o.fields.values() if f.indexed} for n, o in self.schema.objects.items()}
        # the same indexes as (field name, index, case-sensitive) for the per-record loops
        self.index_list = {n: [(fname, idx, o.fields[fname].case_sensitive) for fname, idx in self.index[n].items()]
                           for n, o in self.schema.objects.items()}
        self.counters = {n: 0 for n in self.schema.objects}

    def key(self, f, v):
        return v if f.case_sensitive else v.lower()

    def new_id(self, obj):
        self.counters[obj.name] += 1
        return make_id(obj.key_prefix, self.counters[obj.name])

    def get_any(self, rid):
        obj = self.schema.by_prefix.get(rid[:3])
        if not obj:
            return None, None
        return obj, self.records[obj.name].get(rid)

    def index_add(self, obj, rec):
        for fname, idx, case_sensitive in self.index_list[obj.name]:
            v = rec.get(fname)
            if v is not None:
                idx[v if case_sensitive else v.lower()] = rec["Id"]

    def index_remove(self, obj, rec):
        for fname, idx, case_sensitive in self.index_list[obj.name]:
            v = rec.get(fname)
            if v is not None:
                k = v if case_sensitive else v.lower()
                if idx.get(k) == rec["Id"]:
                    del idx[k]

    def find_by(self, obj, f, value):
        """Live (not deleted) records whose field f equals value. Returns list of ids."""
        if f.name == "Id":
            rid = normalize_id(value)
            rec = self.records[obj.name].get(rid) if rid else None
            return [rid] if rec and rec.get("IsDeleted") != "true" else []
        idx = self.index[obj.name].get(f.name)
        if idx is not None:
            rid = idx.get(self.key(f, value))
            return [rid] if rid else []
        lv = value.lower()
        return [r["Id"] for r in self.records[obj.name].values()
                if r.get("IsDeleted") != "true" and (r.get(f.name) or "").lower() == lv]

    def compute_name(self, obj, rec):
        nf = obj.name_fields
        if nf:
            a, b = rec.get(nf[0]), rec.get(nf[1])
            name = (a + " " + b) if a and b else (a or b)
            if name:
                rec["Name"] = name
            else:
                rec.pop("Name", None)

    def insert_raw(self, obj, values, ts=None):
        ts = ts or record_ts(now())
        rec = dict(obj.defaults)
        rec["Id"] = values.get("Id") or self.new_id(obj)
        rec["CreatedDate"] = rec["LastModifiedDate"] = rec["SystemModstamp"] = ts
        apply_values(rec, values)
        self.compute_name(obj, rec)
        self.records[obj.name][rec["Id"]] = rec
        if rec.get("IsDeleted") != "true":
            self.index_add(obj, rec)
        return rec

    def dump(self):
        return {"counters": self.counters, "records": self.records}

    def load(self, d):
        self.clear()
        for n, c in d.get("counters", {}).items():
            if n in self.counters:
                self.counters[n] = c
        for n, recs in d.get("records", {}).items():
            obj = self.schema.objects.get(n)
            if not obj:
                continue
            for rid, rec in recs.items():
                self.records[n][rid] = rec
                if rec.get("IsDeleted") != "true":
                    self.index_add(obj, rec)


# ----------------------------------------------------------------------------------------------------------
# Jobs
# ----------------------------------------------------------------------------------------------------------
DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
INGEST_OPS = ("insert", "update", "upsert", "delete", "hardDelete")
TERMINAL = ("JobComplete", "Failed", "Aborted")


class BadRow:
    __slots__ = ("msg",)

    def __init__(self, msg):
        self.msg = msg


class Job:
    def __init__(self, jid, kind, operation, obj, api_version, delimiter, line_ending):
        self.id = jid
        self.kind = kind
        self.operation = operation
        self.object = obj
        self.api_version = api_version
        self.delimiter = delimiter
        self.line_ending = line_ending
        self.created = now()
        self.modstamp = self.created
        self.state = "Open" if kind == "ingest" else "UploadComplete"
        self.ext_id = None
        self.assignment_rule_id = None
        self.content = None
        self.upload_count = 0
        self.processed = 0
        self.failed = 0
        self.retries = 0
        self.total_ms = 0
        self.api_ms = 0
        self.error = None
        self.header = None
        self.rows = None
        self.next_index = 0
        self.success = []
        self.failures = []
        self.abort_requested = False
        self.killed = False
        self.thread = None
        self.result_cache = {}
        self.query = None
        self.query_columns = None
        self.query_rows = None
        self.lock_fraction = 0.0
        self.fail_spec = None
        self.synthetic_rows = None

    def touch(self):
        self.modstamp = now()

    def common(self, with_ext=True):
        d = {"id": self.id, "operation": self.operation, "object": self.object, "createdById": USER_ID,
             "createdDate": job_ts(self.created), "systemModstamp": job_ts(self.modstamp), "state": self.state}
        if with_ext and self.ext_id is not None:
            d["externalIdFieldName"] = self.ext_id
        return d

    def create_shape(self):
        d = self.common()
        if self.assignment_rule_id:
            d["assignmentRuleId"] = self.assignment_rule_id
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        if self.kind == "ingest":
            d["contentUrl"] = "services/data/v%s/jobs/ingest/%s/batches" % (self.api_version, self.id)
        d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        return d

    def reduced_shape(self):
        d = self.common()
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        return d

    def info_shape(self):
        d = self.common()
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version)})
        if self.kind == "ingest":
            d["jobType"] = "V2Ingest"
            if self.state == "Open":
                d["contentUrl"] = "services/data/v%s/jobs/ingest/%s/batches" % (self.api_version, self.id)
            d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
                      "numberRecordsProcessed": self.processed, "numberRecordsFailed": self.failed,
                      "retries": self.retries, "totalProcessingTime": self.total_ms,
                      "apiActiveProcessingTime": self.api_ms, "apexProcessingTime": 0})
        else:
            d["jobType"] = "V2Query"
            d.update({"lineEnding": self.line_ending, "columnDelimiter": self.delimiter,
                      "numberRecordsProcessed": self.processed, "retries": self.retries,
                      "totalProcessingTime": self.total_ms, "isPkChunkingSupported": True})
        if self.state == "Failed" and self.error:
            d["errorMessage"] = self.error
        return d

    def list_shape(self):
        d = self.common(with_ext=False)
        d.update({"concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": ApiVersion(self.api_version),
                  "jobType": "V2Ingest" if self.kind == "ingest" else "V2Query",
                  "lineEnding": self.line_ending, "columnDelimiter": self.delimiter})
        return d


class ApiVersion(float):
    """A float that JSON-encodes with one decimal (62.0)."""


def dumps(obj, pretty=False):
    s = json.dumps(obj, indent=2 if pretty else None, separators=(", ", " : ") if pretty else (",", ":"),
                   ensure_ascii=False)
    return s.encode("utf-8")


# ----------------------------------------------------------------------------------------------------------
# SOQL subset
# ----------------------------------------------------------------------------------------------------------
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

    def __init__(self, text, schema):
        self.text = text
        self.schema = schema
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
        self.columns = [self.resolve(name, pos) for name, pos in raw_fields]
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

    def resolve(self, name, pos):
        """Returns (header, [rel fields...], final Field)."""
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
                if p.lower() in COMPOUND_FIELDS:
                    raise SoqlError("API_ERROR", "Selecting compound data not supported in Bulk Query")
                f = obj.fields_lower.get(p.lower())
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


class SyntheticRows:
    """A huge query result generated on demand, page by page (fault: large result sets, bounded memory)."""

    def __init__(self, n, soql, schema):
        self.n = n
        self.gens = []
        for header, chain, f in soql.columns:
            self.gens.append(self.generator(header, f, schema, soql.obj if not chain else None))

    @staticmethod
    def generator(header, f, schema, obj):
        t = f.type
        if t == "id" and obj is not None:
            return lambda i, p=obj.key_prefix: make_id(p, i + 1)
        if t in ("id", "reference"):
            target = schema.get(f.reference_to[0]) if f.reference_to else None
            prefix = target.key_prefix if target else "000"
            return lambda i, p=prefix: make_id(p, i % 1000 + 1)
        if t == "boolean":
            return lambda i: "true" if i % 2 else "false"
        if t == "int":
            return lambda i: str(i)
        if t in ("double", "currency", "percent"):
            return lambda i: "%d.%02d" % (i, i % 100)
        if t == "date":
            return lambda i: (_dt.date(2020, 1, 1) + _dt.timedelta(days=i % 3650)).isoformat()
        if t == "datetime":
            return lambda i: record_ts(1577836800 + i)
        if t == "picklist" and f.picklist:
            return lambda i, v=f.picklist: v[i % len(v)]
        return lambda i, h=header: "%s %d" % (h, i)

    def __len__(self):
        return self.n

    def __getitem__(self, sl):
        start, stop, _ = sl.indices(self.n)
        return [[g(i) for g in self.gens] for i in range(start, stop)]


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

    def run(self, lock=None):
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
        cols = self.q.columns
        return [[self.value(r, c) for c in cols] for r in recs]


# ----------------------------------------------------------------------------------------------------------
# Faults
# ----------------------------------------------------------------------------------------------------------
class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.specs = []
        self.next_id = 1

    def add(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        action = spec.get("action", "status")
        if action not in ("status", "drop", "stall", "delay", "trickle", "reset"):
            raise ValueError("unknown action: %s" % action)
        s = dict(spec)
        s["action"] = action
        s["id"] = self.next_id
        s["hits"] = 0
        s["seen"] = 0
        s["_method"] = re.compile("^(?:%s)$" % spec.get("method", ".*"), re.I)
        s["_path"] = re.compile(spec.get("path", ".*"))
        s["_query"] = re.compile(spec["query"]) if spec.get("query") else None
        if action == "status" and "status" not in s:
            s["status"] = 503
        s.setdefault("count", 1)
        s.setdefault("skip", 0)
        self.next_id += 1
        with self.lock:
            self.specs.append(s)
        return self.public(s)

    @staticmethod
    def public(s):
        return {k: v for k, v in s.items() if not k.startswith("_")}

    def clear(self):
        with self.lock:
            self.specs = []

    def list(self):
        with self.lock:
            return [self.public(s) for s in self.specs]

    def match(self, method, path, query):
        with self.lock:
            for s in self.specs:
                if not s["_method"].match(method) or not s["_path"].search(path):
                    continue
                if s["_query"] is not None and not s["_query"].search(query):
                    continue
                if s["count"] is not None and s["count"] >= 0 and s["hits"] >= s["count"]:
                    continue
                s["seen"] += 1
                if s["seen"] <= s["skip"]:
                    continue
                s["hits"] += 1
                return s
        return None


# ----------------------------------------------------------------------------------------------------------
# The emulator state
# ----------------------------------------------------------------------------------------------------------
DEFAULT_CONFIG = {
    "processing_delay_ms": 0,       # queue wait before a job leaves UploadComplete
    "batch_delay_ms": 0,            # extra time per internal batch ("slow processing")
    "batch_size": 10000,            # internal batch size
    "token_ttl_seconds": 7200,      # lifetime of tokens issued by the token endpoint
    "daily_api_limit": 15000,
    "daily_records_limit": 150000000,
    "daily_batches_limit": 15000,
    "daily_query_jobs_limit": 10000,
    "shuffle_results": True,
    "seed": 1,
    "lock_failure_fraction": 0.0,
    "next_job_fails": None,         # null | true | {"after_batches": K, "message": "..."}
    "stuck_jobs": False,
    "hard_delete_allowed": True,
    "second_upload_mode": "put",   # "put": 2nd PUT -> 400 BULK_API_ERROR; "close": accepted, close -> 400
    "max_upload_bytes": 150000000,  # limit on the base64-encoded size of one upload (Salesforce: 150 MB)
    "query_page_size": 100000,      # default rows per results page when maxRecords is absent
    "list_page_size": 1000,
    "gzip_responses": True,
    "jwt_full_response": False,
    "jwt_max_exp_seconds": 300,
    "max_api_version": 67,
    "max_concurrent_requests": 0,   # 0 = unlimited
    "job_retention_seconds": 7 * 86400,
    "unprocessed_final_newline": False,
    "tokens_expire_after_calls": None,
    "query_errors_at": "create",    # "create": bad SOQL -> 400 at creation; "job": job goes Failed
    "my_domain_hosts": None,        # Host header values accepted for client_credentials; null = own host
    "synthetic_query_rows": None,   # N: query jobs return N generated rows, built page by page (big results)
    "multipart_max_chars": 100000,  # data limit of a multipart create (job + content in one request)
}


class Emulator:
    def __init__(self, args):
        self.args = args
        self.schema = Schema(args.metadata)
        with open(os.path.join(HERE, "default_org.json"), "r", encoding="utf-8") as fh:
            self.org = json.load(fh)
        self.lock = threading.RLock()
        self.store = Store(self.schema)
        self.faults = Faults()
        self.log_lock = threading.Lock()
        self.base_url = None
        self.pubkey = self.load_public_key(args.jwt_cert or os.path.join(HERE, self.org["jwt"]["certificate"]))
        self.startup_config = {"processing_delay_ms": args.processing_delay_ms,
                               "token_ttl_seconds": args.token_ttl_seconds, "seed": args.seed}
        self.config = dict(DEFAULT_CONFIG)
        self.inflight = 0
        self.reset(initial=True)
        if args.data_dir:
            p = os.path.join(args.data_dir, "store.json")
            if os.path.exists(p):
                with open(p, "r", encoding="utf-8") as fh:
                    self.store.load(json.load(fh))

    @staticmethod
    def load_public_key(path):
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives import serialization
        except ImportError:
            return None
        with open(path, "rb") as fh:
            data = fh.read()
        if b"CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return serialization.load_pem_public_key(data)

    def reset(self, initial=False):
        with self.lock:
            for j in getattr(self, "jobs", {}).values():
                j.abort_requested = True
                j.killed = True  # running threads check this inside every critical section
            self.jobs = {}
            self.job_counter = 0
            self.store.clear()
            self.seed_records()
            self.log = []
            self.log_seq = 0
            self.api_used = 0
            self.records_used = 0
            self.batches_used = 0
            self.query_jobs_used = 0
            self.faults.clear()
            self.tokens = {}
            self.refresh_tokens = {}
            self.calls_until_expiry = None
            self.config = dict(DEFAULT_CONFIG)
            self.config.update(self.startup_config)
            u = self.org["user"]
            self.tokens[self.org["access_token"]] = {"username": u["username"], "client_id": self.org["client_id"],
                                                     "expires": None, "revoked": False}
            self.refresh_tokens[self.org["refresh_token"]] = {"username": u["username"],
                                                              "client_id": self.org["client_id"], "revoked": False}
            _clock_offset[0] = 0.0

    def seed_records(self):
        u = self.org["user"]
        user_obj = self.schema.objects.get("User")
        if user_obj:
            self.store.insert_raw(user_obj, {"Id": USER_ID, "Username": u["username"], "FirstName": u["first_name"],
                                             "LastName": u["last_name"], "Email": u["email"], "Alias": "emu",
                                             "IsActive": "true", "TimeZoneSidKey": "GMT",
                                             "LanguageLocaleKey": "en_US"})
            self.store.counters["User"] = max(self.store.counters["User"], 1)
        org_obj = self.schema.objects.get("Organization")
        if org_obj:
            self.store.insert_raw(org_obj, {"Id": ORG_ID, "Name": self.org["org_name"],
                                            "OrganizationType": "Developer Edition", "IsSandbox": "false",
                                            "InstanceName": "EMU1"})
            self.store.counters["Organization"] = max(self.store.counters["Organization"], 1)

    def persist(self):
        if not self.args.data_dir:
            return
        os.makedirs(self.args.data_dir, exist_ok=True)
        p = os.path.join(self.args.data_dir, "store.json")
        with self.lock:
            data = json.dumps(self.store.dump())
        with open(p + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(p + ".tmp", p)

    # -- tokens ----------------------------------------------------------------------------------------------
    def new_token(self, username, client_id):
        secret = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=").replace("-", ".").replace("_", "")
        tok = "%s!AR%s" % (ORG_ID[:15], secret)
        ttl = self.config["token_ttl_seconds"]
        with self.lock:
            self.tokens[tok] = {"username": username, "client_id": client_id,
                                "expires": (now() + ttl) if ttl else None, "revoked": False}
        return tok

    def check_token(self, tok):
        with self.lock:
            s = self.tokens.get(tok)
            if not s or s["revoked"] or (s["expires"] is not None and now() >= s["expires"]):
                return None
            return s

    def expire_tokens(self, token=None, refresh_token=None):
        n = 0
        with self.lock:
            if token is None and refresh_token is None:
                for s in self.tokens.values():
                    s["revoked"] = True
                    n += 1
            if token is not None and token in self.tokens:
                self.tokens[token]["revoked"] = True
                n += 1
            if refresh_token is not None and refresh_token in self.refresh_tokens:
                self.refresh_tokens[refresh_token]["revoked"] = True
                n += 1
        return n

    # -- limits ----------------------------------------------------------------------------------------------
    def limit_header(self):
        return "api-usage=%d/%d" % (self.api_used, self.config["daily_api_limit"])

    def count_call(self):
        with self.lock:
            if self.api_used >= self.config["daily_api_limit"]:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            self.api_used += 1
            if self.calls_until_expiry is not None:
                self.calls_until_expiry -= 1
                if self.calls_until_expiry <= 0:
                    self.calls_until_expiry = None
                    self.expire_tokens()

    # -- jobs ------------------------------------------------------------------------------------------------
    def new_job_id(self):
        self.job_counter += 1
        return make_id("750", self.job_counter)

    def purge_old_jobs(self):
        cutoff = now() - self.config["job_retention_seconds"]
        for jid in [j.id for j in self.jobs.values() if j.state in TERMINAL and j.modstamp < cutoff]:
            del self.jobs[jid]

    def get_job(self, jid, kind):
        self.purge_old_jobs()
        j = self.jobs.get(jid) or self.jobs.get(normalize_id(jid) or "")
        if not j or j.kind != kind:
            raise ApiError(404, *NOT_FOUND)
        return j

    def start_processing(self, job):
        t = threading.Thread(target=self.run_job, args=(job,), daemon=True, name="job-" + job.id)
        job.thread = t
        t.start()

    def wait_interruptible(self, job, ms):
        end = time.time() + ms / 1000.0
        while time.time() < end:
            if job.abort_requested:
                return False
            time.sleep(min(0.01, max(0.0, end - time.time())))
        return not job.abort_requested

    def run_job(self, job):
        t0 = time.time()
        try:
            if not self.wait_interruptible(job, self.config["processing_delay_ms"]):
                return
            while self.config["stuck_jobs"] and not job.abort_requested:
                time.sleep(0.02)
            if job.abort_requested:
                return
            if job.kind == "ingest":
                self.process_ingest(job, t0)
            else:
                self.process_query(job, t0)
        except Exception as e:  # keep the server alive, fail the job visibly
            with self.lock:
                if job.state not in TERMINAL:
                    job.state = "Failed"
                    job.error = "Unknown : emulator internal error: %r" % (e,)
                    job.touch()
            import traceback
            traceback.print_exc()

    def set_state(self, job, state, error=None):
        with self.lock:
            if job.state in TERMINAL:
                return False
            job.state = state
            if error:
                job.error = error
            job.touch()
            return True

    def fail_job(self, job, msg, t0):
        with self.lock:
            if job.state in TERMINAL:
                return
            job.state = "Failed"
            job.error = msg
            job.total_ms = int((time.time() - t0) * 1000)
            job.touch()

    # ---------------------------------------------------------------------------------------------- ingest
    def process_ingest(self, job, t0):
        obj = self.schema.get(job.object)
        if job.upload_count == 0:
            return self.fail_job(job, "InvalidBatch : No data was uploaded for this job (upload the CSV with PUT "
                                 "before setting the state to UploadComplete)", t0)
        content = job.content or b""
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            self.parse_rows_lenient(job, content)
            return self.fail_job(job, "InvalidBatch : Failed to parse CSV: the data is not valid UTF-8", t0)
        delim = DELIMITERS[job.delimiter]
        if not check_line_endings(text, job.line_ending):
            self.parse_rows(job, text, delim)
            return self.fail_job(job, "ClientInputError : LineEnding is invalid on user data. Current LineEnding "
                                 "setting is %s" % job.line_ending, t0)
        self.parse_rows(job, text, delim)
        if not job.header or job.header == [""]:
            return self.fail_job(job, "InvalidBatch : Field name not found : ", t0)
        try:
            plan = IngestPlan(self, job, obj)
        except JobFailure as e:
            return self.fail_job(job, str(e), t0)
        if not self.set_state(job, "InProgress"):
            return
        fail_spec = job.fail_spec
        bsize = max(1, int(self.config["batch_size"]))
        nrows = len(job.rows)
        batch_no = 0
        rng = random.Random("%s:%s:lock" % (self.config["seed"], job.id))
        while job.next_index < nrows:
            if job.abort_requested:
                return
            if fail_spec is not None and batch_no >= fail_spec.get("after_batches", 0):
                if not fail_spec.get("message"):
                    job.retries = 10  # the internal batch was retried until the limit
                return self.fail_job(job, fail_spec.get("message") or
                                     "InvalidBatch : Failed to process query: the job was retried more than 10 "
                                     "times", t0)
            with self.lock:
                if self.batches_used >= self.config["daily_batches_limit"]:
                    fail = "ExceededQuota : Maximum number of batches per rolling 24 hour period exceeded"
                elif self.records_used >= self.config["daily_records_limit"]:
                    fail = "ExceededQuota : Maximum number of records per rolling 24 hour period exceeded"
                else:
                    fail = None
                    self.batches_used += 1
            if fail:
                return self.fail_job(job, fail, t0)
            bt = time.time()
            end = min(nrows, job.next_index + bsize)
            frac = self.config["lock_failure_fraction"]
            if batch_no % 10 == 9:
                gc.freeze()
            # An internal batch that has started is finished even when the job is aborted meanwhile (abort takes
            # effect at the batch boundary); only a reset of the emulator stops it at once.
            for sub in range(job.next_index, end, 1000):
                with self.lock:  # short critical sections: other requests interleave with processing
                    if job.killed:
                        return
                    plan.run_batch(sub, min(end, sub + 1000), rng if frac else None, frac, job.next_index, end)
                # Locks are not fair: without a real pause this thread would take the lock straight back and
                # starve the request threads waiting for it.
                time.sleep(0.0002)
            with self.lock:
                if job.killed:
                    return
                self.records_used += end - job.next_index
                job.next_index = end
                job.processed = len(job.success) + len(job.failures)
                job.failed = len(job.failures)
                job.api_ms += int((time.time() - bt) * 1000)
                job.total_ms = int((time.time() - t0) * 1000)
                if job.state not in TERMINAL:
                    job.touch()
            batch_no += 1
            if job.state in TERMINAL:
                return
            if self.config["batch_delay_ms"] and job.next_index < nrows:
                if not self.wait_interruptible(job, self.config["batch_delay_ms"]):
                    return
        with self.lock:
            if job.state in TERMINAL:
                return
            job.total_ms = int((time.time() - t0) * 1000)
            job.state = "JobComplete"
            job.touch()
        gc.freeze()

    def parse_rows(self, job, text, delim):
        rows = split_plain_csv(text, delim)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delim, strict=True)
        before = -1 if rows is None else len(rows)
        rows = rows or []
        while len(rows) != before:
            before = len(rows)
            try:
                # slices, so that the parse of a big file gives other threads the GIL in between
                rows.extend(itertools.islice(reader, 2000))
            except csv.Error as e:
                rows.append(BadRow(str(e)))
                before = -1
        rows = [r for r in rows if not (isinstance(r, list) and len(r) == 0)]
        if not rows:
            job.header, job.rows = [], []
            return
        hdr = rows[0]
        job.header = hdr if isinstance(hdr, list) else [""]
        job.rows = rows[1:]
        # Parsed rows and store records are acyclic; keep the cyclic GC from rescanning millions of them.
        gc.freeze()

    def parse_rows_lenient(self, job, content):
        self.parse_rows(job, content.decode("utf-8", "replace"), DELIMITERS[job.delimiter])

    # ---------------------------------------------------------------------------------------------- query
    def process_query(self, job, t0):
        if not self.set_state(job, "InProgress"):
            return
        if isinstance(job.query, SoqlError):
            return self.fail_job(job, "%s : %s" % (job.query.code, job.query.message.strip()), t0)
        if job.synthetic_rows is not None:
            rows = SyntheticRows(job.synthetic_rows, job.query, self.schema)
        else:
            rows = QueryRunner(job.query, self.store, job.operation == "queryAll").run(self.lock)
        if self.config["batch_delay_ms"]:
            if not self.wait_interruptible(job, self.config["batch_delay_ms"]):
                return
        fail_spec = job.fail_spec
        if fail_spec is not None:
            return self.fail_job(job, fail_spec.get("message") or "InvalidBatch : Failed to process query: the "
                                 "job was retried more than 15 times", t0)
        with self.lock:
            if job.state in TERMINAL:
                return
            job.query_rows = rows
            job.processed = len(rows)
            job.total_ms = int((time.time() - t0) * 1000)
            job.state = "JobComplete"
            job.touch()


def split_plain_csv(text, delim):
    """csv.reader's rows for a text it would only split: no quotes, no NUL, one kind of line ending, no value
    over the field size limit (str.split is twice as fast). None for any other text."""
    if '"' in text or "\0" in text:
        return None
    if "\r" not in text:
        lines = text.split("\n")
    elif text.count("\r\n") == text.count("\r") == text.count("\n"):
        lines = text.split("\r\n")
    else:
        return None
    if len(text) > csv.field_size_limit() and max(map(len, lines)) > csv.field_size_limit():
        return None
    rows = []
    for i in range(0, len(lines), 2000):  # slices, so that other threads get the GIL in between
        rows.extend([line.split(delim) for line in lines[i:i + 2000] if line])  # empty line: no record
    return rows


def check_line_endings(text, le):
    """True when every record separator outside quotes matches the declared line ending."""
    if le == "LF":
        if "\r" not in text:
            return True
        parts = text.split('"')
        return not any("\r" in parts[i] for i in range(0, len(parts), 2))
    if "\n" not in text and "\r" not in text:
        return True
    parts = text.split('"')
    for i in range(0, len(parts), 2):
        p = parts[i]
        if p.count("\n") != p.count("\r\n") or p.count("\r") != p.count("\r\n"):
            return False
    return True


class IngestPlan:
    """Header resolution (job-level failures) and per-row application against the store."""

    def __init__(self, emu, job, obj):
        self.emu, self.job, self.obj = emu, job, obj
        self.store = emu.store
        self.op = job.operation
        self.ncols = len(job.header)
        self.id_col = None
        self.cols = []  # (index, field, converter, kind, extra)
        for i, h in enumerate(job.header):
            if "." in h:
                self.cols.append(self.relationship_column(i, h))
                continue
            f = obj.fields_lower.get(h.lower())
            if not f:
                raise JobFailure("InvalidBatch : Field name not found : %s" % h)
            if f.name == "Id":
                self.id_col = i
                continue
            self.cols.append((i, f, make_converter(f, i), "ref" if f.type == "reference" else "val", None))
        self.ext_field = None
        self.ext_col = None
        if self.op == "upsert":
            self.ext_field = obj.fields_lower.get(job.ext_id.lower())
            if self.ext_field.name == "Id":
                self.ext_col = self.id_col
            else:
                for c in self.cols:
                    if c[3] == "val" and c[1] is self.ext_field:
                        self.ext_col = c[0]
        self.required = [f for f in obj.fields.values() if f.required and f.createable]
        self.required_defaults = [(f.name, f.default) for f in self.required]
        # hot path: column lists specialised once per job
        self.fast = {}
        for creating in (True, False):
            blocked = [(i, f) for i, f, c, k, e in self.cols
                       if not (f.createable if creating else f.updateable)]
            simple = [(i, f.name, c) for i, f, c, k, e in self.cols
                      if k == "val" and (f.createable if creating else f.updateable)]
            other = [(i, f, c, k, e) for i, f, c, k, e in self.cols
                     if k != "val" and (f.createable if creating else f.updateable)]
            self.fast[creating] = (blocked, simple, other)
        # column-at-a-time conversion (convert_columns): the value columns in header order
        self.val_convs = [(i, c) for i, f, c, k, e in self.cols if k == "val"]
        self.val_names = tuple(f.name for i, f, c, k, e in self.cols if k == "val")
        self.blank_row = [""] * self.ncols

    def relationship_column(self, i, h):
        obj = self.obj
        typ = None
        spec = h
        if ":" in spec:
            a, spec = spec.split(":", 1)
            rel_part, fld = spec.split(".", 1)
            if obj.rel_lower.get(a.lower()) is not None and obj.rel_lower.get(rel_part.lower()) is None:
                typ, rel_part = rel_part, a       # Rel:Type.Field
            else:
                typ = a                           # Type:Rel.Field
        else:
            rel_part, fld = spec.split(".", 1)
        rf = obj.rel_lower.get(rel_part.lower())
        if rf is None or "." in fld:
            raise JobFailure("InvalidBatch : Unable to find relationship: %s" % rel_part)
        if typ is not None and not rf.polymorphic:
            raise JobFailure("InvalidBatch : type is not needed for non polymorphic foreign key references: %s"
                             % rf.relationship_name)
        if typ is None:
            target = self.emu.schema.get(rf.reference_to[-1] if rf.polymorphic else rf.reference_to[0])
        else:
            target = self.emu.schema.get(typ)
            if target is None or target.name not in rf.reference_to:
                raise JobFailure("InvalidBatch : Unable to find relationship: %s" % h)
        if target is None:
            raise JobFailure("InvalidBatch : Unable to find relationship: %s" % rel_part)
        tf = target.fields_lower.get(fld.lower())
        if tf is None:
            raise JobFailure("InvalidBatch : Field name not found : %s" % h)
        if not (tf.id_lookup or tf.external_id):
            raise JobFailure("InvalidBatch : Invalid field for upsert, must be an External Id custom or standard "
                             "indexed field: %s (%s)" % (tf.name, target.name))
        if rf.createable is False and rf.updateable is False:
            raise JobFailure("InvalidBatch : Field name not found : %s" % h)
        return (i, rf, None, "rel", (target, tf))

    def run_batch(self, start, end, rng, frac, bstart=None, bend=None):
        """Apply rows [start, end) of the internal batch [bstart, bend)."""
        if bstart is None:
            bstart, bend = start, end
        if getattr(self, "dup_range", None) != (bstart, bend):
            self.dup = self.duplicates(bstart, bend)
            self.dup_range = (bstart, bend)
        self.apply_rows(start, end, rng, frac, self.dup)

    def duplicates(self, bstart, bend):
        """Rows of an upsert batch whose external id occurs more than once in the same internal batch."""
        dup = set()
        rows, ncols, op = self.job.rows, self.ncols, self.op
        if op == "upsert" and self.ext_col is not None:
            ec = self.ext_col
            f = self.ext_field
            fold = not (f.case_sensitive or f.name == "Id")
            keys = [r[ec] for r in rows[bstart:bend] if isinstance(r, list) and len(r) == ncols]
            keys = [k.lower() if fold else k for k in keys if k != "" and k != "#N/A"]
            if len(set(keys)) == len(keys):
                return dup  # the usual case: every key is distinct
            seen = {}
            for k in range(bstart, bend):
                r = rows[k]
                if isinstance(r, list) and len(r) == ncols and r[ec] not in ("", "#N/A"):
                    key = r[ec] if (f.case_sensitive or f.name == "Id") else r[ec].lower()
                    if key in seen:
                        dup.add(seen[key])
                        dup.add(k)
                    else:
                        seen[key] = k
        return dup

    def convert_columns(self, start, end):
        """The value cells of rows [start, end) converted a column at a time: one tuple per row, in the order of
        val_names, "" for an empty cell; None for a row that must take the exact per-row path of values() (a cell
        is #N/A or fails conversion, so that path reports the row's first error). Whole clean columns are
        accepted by their converter's plain() predicate without a call per cell."""
        ncols, blank = self.ncols, self.blank_row
        # malformed rows (reported before any conversion) stand in as blanks so that the columns line up
        batch = [r if isinstance(r, list) and len(r) == ncols else blank for r in self.job.rows[start:end]]
        columns = list(zip(*batch))
        converted, irregular = [], set()
        for i, conv in self.val_convs:
            col = columns[i]
            if conv.plain is not None and "#N/A" not in col and conv.plain(col):
                converted.append(col)
                continue
            out = []
            for n, v in enumerate(col):
                if v == "":
                    out.append(v)
                elif v == "#N/A":
                    irregular.add(n)
                    out.append(None)
                else:
                    try:
                        out.append(conv(v))
                    except RowError:
                        irregular.add(n)
                        out.append(None)
            converted.append(out)
        pre = list(zip(*converted)) if converted else [()] * len(batch)
        for n in irregular:
            pre[n] = None
        return pre

    def apply_rows(self, start, end, rng, frac, dup):
        job = self.job
        rows = job.rows
        success, failures = job.success, job.failures
        ncols = self.ncols
        op = self.op
        ts = record_ts(now())
        pre = self.convert_columns(start, end) if op in ("insert", "update", "upsert") else None
        for k in range(start, end):
            r = rows[k]
            if isinstance(r, BadRow):
                failures.append((k, "", "INVALID_FIELD:Failed to parse CSV row: %s:--" % r.msg))
                continue
            if len(r) != ncols:
                failures.append((k, "", "INVALID_FIELD:Row has %d columns but the header has %d:--"
                                 % (len(r), ncols)))
                continue
            if rng is not None and rng.random() < frac:
                rid = normalize_id(r[self.id_col]) if self.id_col is not None else None
                failures.append((k, rid or "", "UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this "
                                               "record:--"))
                continue
            if k in dup:
                v = r[self.ext_col]
                failures.append((k, "", "DUPLICATE_EXTERNAL_ID:Duplicate external id specified: %s:%s --"
                                 % (v, self.ext_field.name)))
                continue
            try:
                if op == "insert":
                    rid = self.do_insert(r, ts, pre[k - start])
                    success.append((k, rid, True))
                elif op == "update":
                    rid = self.target_id(r)
                    self.do_update(rid, r, ts, pre[k - start])
                    success.append((k, rid, False))
                elif op == "upsert":
                    rid, created = self.do_upsert(r, ts, pre[k - start])
                    success.append((k, rid, created))
                else:
                    rid = self.target_id(r)
                    self.do_delete(rid, op == "hardDelete")
                    success.append((k, rid, False))
            except RowError as e:
                failures.append((k, getattr(e, "rid", "") or "", e.text))

    # -- row helpers
    def values(self, r, creating, rid=None, pre=None):
        """Convert the row's cells. Returns dict field->value (None = clear). pre: the row's value cells as
        convert_columns returned them (None: convert them here, one by one)."""
        blocked, simple, other = self.fast[creating]
        if pre is not None and not blocked:  # every value column is in `simple`, in header order
            if "" in pre:
                out = {name: v for name, v in zip(self.val_names, pre) if v != ""}
            else:
                out = dict(zip(self.val_names, pre))
        else:
            for i, f in blocked:
                if r[i] != "":
                    e = RowError("INVALID_FIELD_FOR_INSERT_UPDATE", "Unable to create/update fields: %s. Please "
                                 "check the security settings of this field and verify that it is read/write for "
                                 "your profile or permission set." % f.name, [f.name])
                    e.rid = rid
                    raise e
            out = {}
            for i, name, conv in simple:
                v = r[i]
                if v == "":
                    continue
                out[name] = None if v == "#N/A" else conv(v)
        for i, f, conv, kind, extra in other:
            v = r[i]
            if v == "":
                continue
            if v == "#N/A":
                out[f.name] = None
                continue
            if kind == "ref":
                out[f.name] = self.check_reference(f, v)
            else:
                target, tf = extra
                ids = self.store.find_by(target, tf, v)
                if not ids:
                    raise RowError("INVALID_FIELD", "Foreign key external ID: %s not found for field %s in entity %s"
                                   % (v, tf.name, target.name))
                if len(ids) > 1:
                    raise RowError("INVALID_FIELD", "More than 1 record found for External ID field: %s"
                                   % tf.name)
                out[f.name] = ids[0]
        return out

    def check_reference(self, f, v):
        rid = normalize_id(v)
        if rid is None:
            raise RowError("MALFORMED_ID", "%s: id value of incorrect type: %s" % (f.label, v), [f.name])
        target = self.emu.schema.by_prefix.get(rid[:3])
        if target is None or target.name not in f.reference_to:
            raise RowError("FIELD_INTEGRITY_EXCEPTION", "%s: id value of incorrect type: %s" % (f.label, v),
                           [f.name])
        rec = self.store.records[target.name].get(rid)
        if rec is None:
            raise RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        if rec.get("IsDeleted") == "true":
            raise RowError("ENTITY_IS_DELETED", "entity is deleted")
        return rid

    def check_unique(self, vals, self_id):
        for fname, idx, case_sensitive in self.store.index_list[self.obj.name]:
            v = vals.get(fname)
            if v is None:
                continue
            other = idx.get(v if case_sensitive else v.lower())
            if other and other != self_id:
                raise RowError("DUPLICATE_VALUE", "duplicate value found: %s duplicates value on record with id: %s"
                               % (fname, other))

    def check_required(self, rec, rid=None):
        missing = [f.name for f in self.required if rec.get(f.name) in (None, "")]
        if missing:
            e = RowError("REQUIRED_FIELD_MISSING", "Required fields are missing: [%s]" % ", ".join(missing), missing)
            e.rid = rid
            raise e

    def do_insert(self, r, ts, pre=None):
        if self.id_col is not None and r[self.id_col] != "":
            raise RowError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
        vals = self.values(r, True, None, pre)
        return self.create(vals, ts)

    def create(self, vals, ts):
        obj = self.obj
        for name, default in self.required_defaults:
            v = vals[name] if name in vals else default
            if v is None or v == "":
                self.check_required(dict(obj.defaults, **vals))
        self.check_unique(vals, None)
        rec = self.store.insert_raw(obj, vals, ts)
        return rec["Id"]

    def target_id(self, r):
        if self.id_col is None or r[self.id_col] == "":
            if self.op == "update":
                raise RowError("MISSING_ARGUMENT", "Id not specified in an update call")
            raise RowError("MISSING_ARGUMENT", "Id not specified in a delete call")
        v = r[self.id_col]
        rid = normalize_id(v)
        if rid is None or rid[:3] != self.obj.key_prefix:
            raise RowError("MALFORMED_ID", "%s ID: id value of incorrect type: %s" % (self.obj.label, v), ["Id"])
        rec = self.store.records[self.obj.name].get(rid)
        if rec is None:
            e = RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            e.rid = rid
            raise e
        if rec.get("IsDeleted") == "true":
            e = RowError("ENTITY_IS_DELETED", "entity is deleted")
            e.rid = rid
            raise e
        return rid

    def do_update(self, rid, r, ts, pre=None):
        vals = self.values(r, False, rid, pre)
        self.apply_update(rid, vals, ts)

    def apply_update(self, rid, vals, ts):
        obj = self.obj
        rec = self.store.records[obj.name][rid]
        try:
            for name, default in self.required_defaults:  # the record as it would be after the update
                v = vals[name] if name in vals else rec.get(name)
                if v is None or v == "":
                    merged = dict(rec)
                    merged.update(vals)
                    self.check_required(merged, rid)
            self.check_unique(vals, rid)
        except RowError as e:
            e.rid = rid
            raise
        self.store.index_remove(obj, rec)
        apply_values(rec, vals)
        rec["LastModifiedDate"] = ts
        rec["SystemModstamp"] = ts
        rec["LastModifiedById"] = USER_ID
        self.store.compute_name(obj, rec)
        self.store.index_add(obj, rec)

    def do_upsert(self, r, ts, pre=None):
        f = self.ext_field
        key = r[self.ext_col] if self.ext_col is not None else ""
        if key in ("", "#N/A"):
            if f.name == "Id":
                vals = self.values(r, True, None, pre)
                return self.create(vals, ts), True
            raise RowError("MISSING_ARGUMENT", "%s not specified" % f.name)
        if f.name == "Id":
            rid = normalize_id(key)
            if rid is None or rid[:3] != self.obj.key_prefix:
                raise RowError("MALFORMED_ID", "%s ID: id value of incorrect type: %s" % (self.obj.label, key),
                               ["Id"])
            rec = self.store.records[self.obj.name].get(rid)
            if rec is None:
                raise RowError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
            if rec.get("IsDeleted") == "true":
                e = RowError("ENTITY_IS_DELETED", "entity is deleted")
                e.rid = rid
                raise e
            self.apply_update(rid, self.values(r, False, rid, pre), ts)
            return rid, False
        ids = self.store.find_by(self.obj, f, key)
        if ids:
            rid = ids[0]
            vals = self.values(r, False, rid, pre)
            self.apply_update(rid, vals, ts)
            return rid, False
        vals = self.values(r, True, None, pre)
        return self.create(vals, ts), True

    def do_delete(self, rid, hard):
        obj = self.obj
        rec = self.store.records[obj.name][rid]
        self.store.index_remove(obj, rec)
        if hard:
            del self.store.records[obj.name][rid]
        else:
            rec["IsDeleted"] = "true"
            rec["SystemModstamp"] = record_ts(now())


# ----------------------------------------------------------------------------------------------------------
# CSV writing for results
# ----------------------------------------------------------------------------------------------------------
_NUMERIC_RE = re.compile(r"^-?\d+(\.\d+)?$")


def csv_quote_all(rows, delim, le):
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delim, lineterminator=le, quoting=csv.QUOTE_ALL)
    for i in range(0, len(rows), 5000):  # slices: let other threads have the GIL in between
        w.writerows(rows[i:i + 5000])
    return buf.getvalue()


def csv_quote_all_lines(rows, delim, heads=None):
    """Each row as one CSV line (without line ending), every value quoted, exactly as csv.writer(quoting=QUOTE_ALL)
    writes it (quotes doubled), built with one join per row instead of the writer's work per value.
    heads (optional, one per row): leading values already quoted and followed by the delimiter."""
    sep = '"' + delim + '"'
    lines = []
    for n, row in enumerate(rows):
        body = sep.join(row)
        if body.count('"') != 2 * len(row) - 2:  # some value has quotes of its own: double them
            body = sep.join([v.replace('"', '""') for v in row])
        lines.append('"' + body + '"' if heads is None else heads[n] + '"' + body + '"')
    return lines


def csv_bytes(lines, le):
    """lines joined as UTF-8 with a line ending after each, encoded a slice at a time: bounded extra memory, and
    other threads get the GIL in between."""
    step = 5000
    return b"".join((le.join(lines[i:i + step]) + le).encode("utf-8") for i in range(0, len(lines), step))


def shuffle(rnd, x):
    """rnd.shuffle(x), the same permutation from the same generator state, ~2x faster: random.shuffle pays a
    Python call to _randbelow per element; this inlines it (getrandbits with rejection, as Random does)."""
    getrandbits = rnd.getrandbits
    for i in reversed(range(1, len(x))):
        n = i + 1
        k = n.bit_length()
        j = getrandbits(k)
        while j >= n:
            j = getrandbits(k)
        x[i], x[j] = x[j], x[i]


def csv_unprocessed(header, rows, delim, le, final_newline):
    def q(v):
        if _NUMERIC_RE.match(v):
            return v
        return '"' + v.replace('"', '""') + '"'
    lines = [delim.join(q(h) for h in header)]
    for r in rows:
        lines.append(delim.join(q(v) for v in r))
    out = le.join(lines)
    if final_newline:
        out += le
    return out


# ----------------------------------------------------------------------------------------------------------
# HTTP layer
# ----------------------------------------------------------------------------------------------------------
class Response:
    __slots__ = ("status", "headers", "body", "stream")

    def __init__(self, status, body=b"", content_type=None, headers=None):
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        if content_type:
            self.headers.append(("Content-Type", content_type))


JSON_CT = "application/json;charset=UTF-8"
CSV_CT = "text/csv"
VERSION_RE = re.compile(r"^/services/data/v(\d+)\.(\d)(/.*)?$")


def _release_label(v):
    k = v - 41
    return "%s '%02d" % (("Winter", "Spring", "Summer")[k % 3], 18 + k // 3)


class Dropped(Exception):
    pass


class Oversize(bytes):
    """Stands for a request body that was read and thrown away because it exceeded the upload cap."""
    size = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator/1.0"
    sys_version = ""
    rbufsize = 256 * 1024

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # -- body -------------------------------------------------------------------------------------------------
    def read_body(self, fault):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        drop_at = None
        if fault and fault["action"] == "drop" and fault.get("when", "response") == "request":
            drop_at = fault.get("after_bytes")
        if "chunked" in te:
            out = bytearray()
            oversize, total, cap = False, 0, None
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise Dropped()
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise ApiError(400, "INVALID_REQUEST", "Malformed chunked body")
                if size == 0:
                    while True:
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                data = self.rfile.read(size)
                if len(data) < size:
                    raise Dropped()
                if oversize:
                    total += len(data)
                else:
                    out += data
                    cap = self.body_cap() if cap is None else cap
                    if cap is not None and len(out) > cap:
                        oversize, total = True, len(out)
                        out = bytearray()
                self.rfile.readline()
                if drop_at is not None and len(out) >= drop_at:
                    raise Dropped()
            if drop_at is not None:
                raise Dropped()
            if oversize:
                o = Oversize()
                o.size = total
                return o
            return bytes(out)
        n = int(self.headers.get("Content-Length") or 0)
        cap = self.body_cap()
        if cap is not None and n > cap and not (fault and fault["action"] == "drop"):
            left = n
            while left > 0:
                got = self.rfile.read(min(left, 1 << 20))
                if not got:
                    raise Dropped()
                left -= len(got)
            o = Oversize()
            o.size = n
            return o
        if drop_at is not None or (fault and fault["action"] == "drop" and fault.get("when") == "request"):
            part = fault.get("after_bytes", n // 2)
            if part:
                self.rfile.read(min(part, n))
            raise Dropped()
        if n <= 0:
            return b""
        data = self.rfile.read(n)
        if len(data) < n:
            raise Dropped()
        return data

    def body_cap(self):
        """Raw-byte limit for an upload body (PUT .../batches); None for other requests."""
        if self.command != "PUT" or not self.path.split("?", 1)[0].rstrip("/").endswith("/batches"):
            return None
        if (self.headers.get("Content-Encoding") or "").strip().lower() not in ("", "identity"):
            return None
        return self.server.emu.config["max_upload_bytes"] * 3 // 4 + 3

    # -- dispatch ---------------------------------------------------------------------------------------------
    def dispatch(self):
        emu = self.server.emu
        t0 = self._t0 = time.time()
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, url.query
        admin = path.startswith("/__emulator/") or path == "/__emulator"
        method = self.command
        fault = None if admin else emu.faults.match(method, path, query)
        entry = {"method": method, "path": path, "query": query, "status": None, "request_bytes": 0,
                 "response_bytes": 0, "start": record_ts(t0), "start_epoch_ms": int(t0 * 1000),
                 "duration_ms": 0, "admin": admin, "fault": fault["id"] if fault else None,
                 "chunked": "chunked" in (self.headers.get("Transfer-Encoding") or "").lower(),
                 "client": call_options_client(self.headers.get("Sforce-Call-Options"))}
        counted = [False]
        with emu.lock:
            emu.inflight += 1
        try:
            try:
                body = self.read_body(fault)
            except Dropped:
                entry["status"] = None
                entry["dropped"] = "request"
                self.abort_connection()
                return
            entry["request_bytes"] = len(body)
            if fault and fault["action"] in ("stall", "delay"):
                time.sleep(float(fault.get("ms", 30000)) / 1000.0)
            if fault and fault["action"] == "reset":
                entry["dropped"] = "request"
                self.abort_connection()
                return
            resp = None
            if fault and fault["action"] == "status" and not fault.get("after_processing"):
                resp = self.fault_response(fault)
            if resp is None:
                try:
                    resp = self.route(emu, method, path, query, body, counted)
                except ApiError as e:
                    resp = Response(e.status, dumps([{"errorCode": e.code, "message": e.message}]), JSON_CT,
                                    list(e.headers.items()))
                except OAuthError as e:
                    resp = Response(e.status, dumps({"error": e.error, "error_description": e.desc}), JSON_CT)
                except Exception as e:  # pragma: no cover - keep serving
                    import traceback
                    traceback.print_exc()
                    resp = Response(500, dumps([{"errorCode": "UNKNOWN_EXCEPTION",
                                                 "message": "emulator error: %r" % (e,)}]), JSON_CT)
                if fault and fault["action"] == "status" and fault.get("after_processing"):
                    resp = self.fault_response(fault)
            if counted[0] and not admin:
                resp.headers.append(("Sforce-Limit-Info", emu.limit_header()))
            entry["status"] = resp.status
            self.send(resp, fault, entry)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout):
            self.close_connection = True
        finally:
            with emu.lock:
                emu.inflight -= 1
            self.commit_log(entry)

    def commit_log(self, entry):
        """Append the request-log entry once; called just before the response goes out, so a client that has
        seen a response always finds its entry in the log."""
        if "seq" in entry:
            return
        emu = self.server.emu
        entry["duration_ms"] = round((time.time() - self._t0) * 1000.0, 3)
        with emu.log_lock:
            emu.log_seq += 1
            entry["seq"] = emu.log_seq
            emu.log.append(entry)
            if len(emu.log) > 200000:
                del emu.log[:50000]

    def abort_connection(self):
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def fault_response(self, fault):
        status = int(fault.get("status", 503))
        kind = fault.get("body")
        headers = list((fault.get("headers") or {}).items())
        if kind is None:
            kind = "empty" if status in (406, 420) else "html" if status == 502 else "json"
        if kind == "empty":
            return Response(status, b"", None, headers)
        if kind == "html":
            html = ("<html><head><title>%d</title></head><body><h1>%d Error</h1><p>The server encountered an "
                    "error.</p></body></html>" % (status, status)).encode()
            return Response(status, html, "text/html;charset=UTF-8", headers)
        if kind == "json":
            code = {500: "UNKNOWN_EXCEPTION", 503: "SERVER_UNAVAILABLE", 429: "REQUEST_LIMIT_EXCEEDED",
                    403: "REQUEST_LIMIT_EXCEEDED", 401: "INVALID_SESSION_ID"}.get(status, "UNKNOWN_EXCEPTION")
            msg = fault.get("message") or {
                500: "An unexpected error occurred. Please include this ErrorId if you contact support: "
                     "1234567890-12345 (-1234567890)",
                503: "Server temporarily unavailable", 429: "Too Many Requests",
                401: "Session expired or invalid"}.get(status, "Error %d" % status)
            return Response(status, dumps([{"errorCode": fault.get("error_code", code), "message": msg}]), JSON_CT,
                            headers)
        return Response(status, str(kind).encode("utf-8"), fault.get("content_type", "text/plain"), headers)

    def send(self, resp, fault, entry):
        body = resp.body
        ae = (self.headers.get("Accept-Encoding") or "").lower()
        emu = self.server.emu
        if (body and len(body) >= 512 and "gzip" in ae and emu.config["gzip_responses"] and self.command != "HEAD"):
            body = gzip.compress(body, 1)
            resp.headers.append(("Content-Encoding", "gzip"))
            resp.headers.append(("Vary", "Accept-Encoding"))
        chunked = bool(fault and fault["action"] == "drop" and fault.get("chunked"))
        self.send_response(resp.status)
        for k, v in resp.headers:
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif resp.status not in (204, 304) and not (resp.status == 201 and not body):
            self.send_header("Content-Length", str(len(body)))
        elif resp.status == 201:
            self.send_header("Content-Length", "0")
        if self.close_connection:
            self.send_header("Connection", "close")
        dropping = bool(fault and fault["action"] == "drop" and fault.get("when", "response") == "response")
        cut = int(fault.get("after_bytes", len(body) // 2)) if dropping else len(body)
        entry["response_bytes"] = 0 if self.command == "HEAD" else cut
        if dropping:
            entry["dropped"] = "response"
        self.commit_log(entry)
        self.end_headers()
        if self.command == "HEAD":
            return
        if dropping:
            if chunked:
                part = body[:cut]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if part else b"")
            else:
                self.wfile.write(body[:cut])
            self.wfile.flush()
            self.abort_connection()
            return
        if fault and fault["action"] == "trickle" and body:
            bps = max(1, int(fault.get("bytes_per_second", 1024)))
            step = max(1, bps // 10)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(0.1)
        elif chunked:
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    # -- helpers ----------------------------------------------------------------------------------------------
    def json_resp(self, obj, status=200):
        pretty = (self.headers.get("X-PrettyPrint") or "").strip() in ("1", "true")
        return Response(status, dumps(obj, pretty), JSON_CT)

    def parse_json(self, body):
        try:
            return json.loads(body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError) as e:
            line, col = 1, 1
            if isinstance(e, json.JSONDecodeError):
                line, col = e.lineno, e.colno
            raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected character at [line:%d, column:%d]" % (line, col))

    def authenticate(self, emu):
        h = self.headers.get("Authorization")
        if not h:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        parts = h.split(None, 1)
        if len(parts) != 2 or parts[0].lower() not in ("bearer", "oauth"):
            raise ApiError(401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
        s = emu.check_token(parts[1].strip())
        if s is None:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return s

    def base_url(self):
        return self.server.emu.base_url

    # -- routing ----------------------------------------------------------------------------------------------
    def route(self, emu, method, path, query, body, counted):
        if path.startswith("/__emulator"):
            return self.admin(emu, method, path, query, body)
        if path == "/services/oauth2/token":
            if method != "POST":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are POST" % method)
            return self.oauth_token(emu, body)
        if path == "/services/oauth2/revoke":
            params = urllib.parse.parse_qs(body.decode("utf-8", "replace") or query)
            tok = (params.get("token") or [""])[0]
            emu.expire_tokens(token=tok, refresh_token=tok)
            return Response(200, b"")
        if path == "/services/oauth2/userinfo" or re.match(r"^/id/00D[0-9A-Za-z]{15}/005[0-9A-Za-z]{15}$", path):
            s = self.authenticate(emu)
            return self.json_resp(self.userinfo(emu, s))
        if path in ("/services/data", "/services/data/"):
            if method != "GET":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are GET" % method)
            return self.json_resp([{"label": _release_label(v), "url": "/services/data/v%d.0" % v,
                                    "version": "%d.0" % v} for v in range(41, emu.config["max_api_version"] + 1)])
        m = VERSION_RE.match(path)
        if not m:
            raise ApiError(404, *NOT_FOUND)
        major, minor, rest = int(m.group(1)), m.group(2), m.group(3) or ""
        if minor != "0" or major < 20 or major > emu.config["max_api_version"]:
            raise ApiError(404, *NOT_FOUND)
        ver = "%d.0" % major
        self.authenticate(emu)
        max_conc = emu.config["max_concurrent_requests"]
        if max_conc and emu.inflight > max_conc:
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentRequests (Concurrent API Requests) Limit "
                           "exceeded.")
        counted[0] = True
        emu.count_call()
        if rest.endswith("/") and len(rest) > 1:
            rest = rest[:-1]
        if rest in ("", "/"):
            if method != "GET":
                raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are GET" % method)
            return self.json_resp({k: "/services/data/v%s/%s" % (ver, k) for k in
                                   ("limits", "sobjects", "query", "queryAll", "jobs")})
        if rest.startswith("/jobs/ingest"):
            if major < 41:
                raise ApiError(404, *NOT_FOUND)
            return self.ingest_routes(emu, method, rest[len("/jobs/ingest"):], query, body, ver)
        if rest.startswith("/jobs/query"):
            if major < 47:
                raise ApiError(404, *NOT_FOUND)
            return self.query_routes(emu, method, rest[len("/jobs/query"):], query, body, ver)
        if rest == "/limits":
            self.allow(method, "GET")
            return self.json_resp(self.limits(emu))
        if rest == "/sobjects":
            self.allow(method, "GET")
            return self.json_resp({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": [
                json.loads(json.dumps(o.describe_global()).replace("{v}", ver)) for o in emu.schema.objects.values()]})
        sm = re.match(r"^/sobjects/([A-Za-z0-9_]+)(?:/(describe|[0-9A-Za-z]{15}|[0-9A-Za-z]{18}))?$", rest)
        if sm:
            self.allow(method, "GET")
            obj = emu.schema.get(sm.group(1))
            if not obj:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            what = sm.group(2)
            if what == "describe":
                return self.json_resp(self.describe(obj, ver))
            if what is None:
                g = json.loads(json.dumps(obj.describe_global()).replace("{v}", ver))
                return self.json_resp({"objectDescribe": g, "recentItems": []})
            rid = normalize_id(what)
            with emu.lock:
                rec = emu.store.records[obj.name].get(rid) if rid else None
                rec = dict(rec) if rec and rec.get("IsDeleted") != "true" else None
            if not rec:
                raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
            return self.json_resp(self.record_json(obj, rec, ver, query))
        if rest in ("/query", "/queryAll"):
            self.allow(method, "GET")
            return self.rest_query(emu, query, rest == "/queryAll", ver)
        if rest == "/tooling/query":
            # The CLI's login probes SandboxProcess here; a production org has none.
            self.allow(method, "GET")
            q = (urllib.parse.parse_qs(query).get("q") or [""])[0]
            m = re.search(r"\bfrom\s+([A-Za-z0-9_]+)", q, re.I)
            ent = m.group(1) if m else ""
            if emu.schema.get(ent):
                return self.rest_query(emu, query, False, ver)
            return self.json_resp({"size": 0, "totalSize": 0, "done": True, "queryLocator": None,
                                   "entityTypeName": ent, "records": []})
        raise ApiError(404, *NOT_FOUND)

    def allow(self, method, *allowed):
        if method not in allowed:
            raise ApiError(405, "METHOD_NOT_ALLOWED", "HTTP Method '%s' not allowed. Allowed are %s"
                           % (method, ",".join(allowed)))

    # -- OAuth ------------------------------------------------------------------------------------------------
    def oauth_token(self, emu, body):
        ct = (self.headers.get("Content-Type") or "").lower()
        if "application/x-www-form-urlencoded" not in ct:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        try:
            params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        basic_id = basic_secret = None
        h = self.headers.get("Authorization") or ""
        if h.lower().startswith("basic "):
            try:
                basic_id, basic_secret = base64.b64decode(h[6:].strip()).decode("utf-8").split(":", 1)
                basic_id = urllib.parse.unquote(basic_id)
                basic_secret = urllib.parse.unquote(basic_secret)
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials")
        client_id = params.get("client_id") or basic_id
        client_secret = params.get("client_secret") or basic_secret
        grant = params.get("grant_type")
        org = emu.org
        apps = {org["client_id"]: org["client_secret"]}

        def check_client(require_secret=True):
            if client_id not in apps:
                raise OAuthError("invalid_client_id", "client identifier invalid")
            if require_secret and client_secret != apps[client_id]:
                raise OAuthError("invalid_client", "invalid client credentials")
        users = {org["user"]["username"].lower(): org["user"]}
        full = True
        if grant == "password":
            check_client()
            u = users.get((params.get("username") or "").lower())
            if not u or params.get("password") != u["password"] + u.get("security_token", ""):
                if not (u and params.get("password") == u["password"] and not u.get("require_security_token")):
                    raise OAuthError("invalid_grant", "authentication failure")
            username = u["username"]
        elif grant == "client_credentials":
            host = (self.headers.get("Host") or "").lower()
            allowed = emu.config["my_domain_hosts"]
            if allowed is None:
                bu = urllib.parse.urlsplit(emu.base_url)
                allowed = [bu.netloc.lower(), "localhost:%d" % bu.port, "127.0.0.1:%d" % bu.port]
            if host not in [a.lower() for a in allowed]:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
            check_client()
            username = org["user"]["username"]
        elif grant == "refresh_token":
            check_client()
            rt = emu.refresh_tokens.get(params.get("refresh_token") or "")
            if not rt or rt["revoked"] or rt["client_id"] != client_id:
                raise OAuthError("invalid_grant", "expired access/refresh token")
            username = rt["username"]
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            username = self.check_jwt(emu, params.get("assertion") or "", users)
            client_id = self.jwt_iss
            full = emu.config["jwt_full_response"]
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        tok = emu.new_token(username, client_id)
        base = emu.base_url
        ident = "%s/id/%s/%s" % (base, ORG_ID, USER_ID)
        issued = str(int(now() * 1000))
        out = {"access_token": tok}
        if full:
            sig = base64.b64encode(hmac.new(apps[client_id].encode(), (ident + issued).encode(),
                                            hashlib.sha256).digest()).decode()
            out["signature"] = sig
        out.update({"scope": "api",
                    "instance_url": base, "id": ident, "token_type": "Bearer"})
        if full:
            out["issued_at"] = issued
        return self.json_resp(out)

    def check_jwt(self, emu, assertion, users):
        parts = assertion.split(".")
        if len(parts) != 3:
            raise OAuthError("invalid_grant", "invalid assertion")

        def b64(s):
            return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        try:
            header = json.loads(b64(parts[0]))
            claims = json.loads(b64(parts[1]))
            sig = b64(parts[2])
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_grant", "invalid assertion")
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise OAuthError("invalid_grant", "invalid assertion")
        iss = claims.get("iss")
        if iss != emu.org["client_id"]:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if emu.pubkey is None:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding
            from cryptography.exceptions import InvalidSignature
            emu.pubkey.verify(sig, (parts[0] + "." + parts[1]).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError, TypeError):
            raise OAuthError("invalid_grant", "invalid assertion")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        ok_auds = {a.rstrip("/") for a in emu.org["jwt"]["audiences"]} | {emu.base_url.rstrip("/")}
        if not any(isinstance(a, str) and a.rstrip("/") in ok_auds for a in auds):
            raise OAuthError("invalid_grant", "audience is invalid")
        exp = claims.get("exp")
        try:
            exp = float(exp)
        except (TypeError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion")
        t = now()
        if exp < t - 5 or exp > t + emu.config["jwt_max_exp_seconds"] + 5:
            raise OAuthError("invalid_grant", "expired authorization code" if exp < t else "invalid assertion")
        u = users.get(str(claims.get("sub") or "").lower())
        if not u or not u.get("jwt_preauthorized", True):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        self.jwt_iss = iss
        return u["username"]

    def userinfo(self, emu, s):
        u = emu.org["user"]
        base = emu.base_url
        v = "%d.0" % emu.config["max_api_version"]
        return {"sub": "%s/id/%s/%s" % (base, ORG_ID, USER_ID), "user_id": USER_ID, "organization_id": ORG_ID,
                "preferred_username": u["username"], "nickname": u["username"].split("@")[0],
                "name": "%s %s" % (u["first_name"], u["last_name"]), "email": u["email"], "email_verified": True,
                "given_name": u["first_name"], "family_name": u["last_name"], "zoneinfo": "GMT",
                "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
                "utcOffset": 0, "is_app_installed": True,
                "urls": {"enterprise": base + "/services/Soap/c/{version}/" + ORG_ID[:15],
                         "partner": base + "/services/Soap/u/{version}/" + ORG_ID[:15],
                         "rest": base + "/services/data/v{version}/",
                         "sobjects": base + "/services/data/v{version}/sobjects/",
                         "query": base + "/services/data/v{version}/query/",
                         "profile": base + "/" + USER_ID,
                         "custom_domain": base},
                "organization": {"id": ORG_ID, "name": emu.org["org_name"]}, "api_version": v}

    # -- describe / limits / REST query ------------------------------------------------------------------------
    def describe(self, obj, ver):
        g = json.loads(json.dumps(obj.describe_global()).replace("{v}", ver))
        g.update({"fields": [f.describe() for f in obj.fields.values()], "childRelationships": [],
                  "recordTypeInfos": [], "activateable": False})
        return g

    def limits(self, emu):
        c = emu.config

        def lim(mx, used):
            return {"Max": mx, "Remaining": max(0, mx - used)}
        return {"DailyApiRequests": lim(c["daily_api_limit"], emu.api_used),
                "DailyBulkApiBatches": lim(c["daily_batches_limit"], emu.batches_used),
                "DailyBulkV2QueryJobs": lim(c["daily_query_jobs_limit"], emu.query_jobs_used),
                "DailyBulkV2QueryFileStorageMB": lim(976562, 0),
                "DataStorageMB": lim(1024, 0), "FileStorageMB": lim(1024, 0),
                "DailyAsyncApexExecutions": lim(250000, 0),
                "ConcurrentAsyncGetReportInstances": lim(200, 0)}

    def record_json(self, obj, rec, ver, query=""):
        fields = None
        q = urllib.parse.parse_qs(query)
        if q.get("fields"):
            fields = [x.strip() for x in q["fields"][0].split(",")]
        out = {"attributes": {"type": obj.name, "url": "/services/data/v%s/sobjects/%s/%s" % (ver, obj.name,
                                                                                             rec["Id"])}}
        for f in obj.fields.values():
            if fields and f.name not in fields:
                continue
            out[f.name] = json_value(f, rec.get(f.name))
        return out

    def rest_query(self, emu, query, all_rows, ver):
        q = urllib.parse.parse_qs(query).get("q")
        if not q:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            soql = Soql(q[0], emu.schema)
        except SoqlError as e:
            if e.code == "API_ERROR":
                pass
            else:
                raise ApiError(400, e.code, e.message)
            raise ApiError(400, "MALFORMED_QUERY", e.message)
        with emu.lock:
            rows = QueryRunner(soql, emu.store, all_rows).run()
        records = []
        for r in rows:
            rec = {"attributes": {"type": soql.obj.name}}
            for (hdr, chain, f), v in zip(soql.columns, r):
                if chain:
                    cur = rec
                    for rf in chain:
                        cur = cur.setdefault(rf.relationship_name, {"attributes": {"type": rf.reference_to[0]}})
                    cur[f.name] = json_value(f, v)
                else:
                    rec[f.name] = json_value(f, v)
            records.append(rec)
        return self.json_resp({"totalSize": len(records), "done": True, "records": records})

    # -- ingest -----------------------------------------------------------------------------------------------
    def ingest_routes(self, emu, method, rest, query, body, ver):
        if rest in ("", "/"):
            if method == "POST":
                return self.create_ingest(emu, body, ver)
            if method == "GET":
                return self.list_jobs(emu, "ingest", query, ver)
            self.allow(method, "GET", "POST")
        m = re.match(r"^/([0-9A-Za-z]{15,18})(?:/(batches|successfulResults|failedResults|unprocessedrecords))?/?$",
                     rest)
        if not m:
            raise ApiError(404, *NOT_FOUND)
        jid, sub = m.group(1), m.group(2)
        with emu.lock:
            job = emu.get_job(jid, "ingest")
        if sub is None:
            if method == "GET":
                with emu.lock:
                    return self.json_resp(job.info_shape())
            if method == "PATCH":
                return self.patch_job(emu, job, body)
            if method == "DELETE":
                return self.delete_job(emu, job)
            self.allow(method, "GET", "PATCH", "DELETE")
        if sub == "batches":
            self.allow(method, "PUT")
            return self.upload(emu, job, body)
        self.allow(method, "GET")
        return self.ingest_results(emu, job, sub)

    def job_request(self, body):
        self.check_json_ct()
        d = self.parse_json(body)
        if not isinstance(d, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of job request from non-object "
                           "value")
        for k, v in d.items():
            if v is not None and not isinstance(v, str):
                col = body.decode("utf-8", "replace").find('"%s"' % k) + len(k) + 4
                raise ApiError(400, "API_ERROR", "Value does not match expected type at [line:1, column:%d]" % col)
        return d

    def check_json_ct(self):
        ct = (self.headers.get("Content-Type") or "").lower()
        if ct and "json" not in ct and "multipart" not in ct and "octet-stream" not in ct:
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Content type '%s' is not supported for this resource"
                           % ct)

    def common_options(self, d):
        delim = d.get("columnDelimiter") or "COMMA"
        if delim not in DELIMITERS:
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'columnDelimiter'" % delim)
        le = d.get("lineEnding") or "LF"
        if le not in LINE_ENDINGS:
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'lineEnding'" % le)
        ct = d.get("contentType") or "CSV"
        if ct != "CSV":
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'contentType'" % ct)
        return delim, le

    def multipart_parts(self, body):
        import email.parser
        import email.policy
        ct = self.headers.get("Content-Type") or ""
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ct.encode("latin-1") + b"\r\n\r\n" + body)
        parts = {}
        if msg.is_multipart():
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                if name:
                    parts[name] = part.get_payload(decode=True) or b""
        if "job" not in parts:
            raise ApiError(400, "API_ERROR", "Multipart request must contain a 'job' part")
        return parts

    def create_ingest(self, emu, body, ver):
        content = None
        if (self.headers.get("Content-Type") or "").lower().startswith("multipart/form-data"):
            parts = self.multipart_parts(body)
            body = parts["job"]
            content = parts.get("content")
            if content is None:
                raise ApiError(400, "API_ERROR", "Multipart request must contain a 'content' part")
            if len(content.decode("utf-8", "replace")) > emu.config["multipart_max_chars"]:
                raise ApiError(400, "INVALIDJOB", "InvalidJob : The content of a multipart request may not exceed "
                               "%d characters" % emu.config["multipart_max_chars"])
        d = self.job_request(body)
        op = d.get("operation")
        if op not in INGEST_OPS:
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'operation'" % op)
        delim, le = self.common_options(d)
        obj = emu.schema.get(d.get("object"))
        if not obj or not obj.bulk_ingest:
            raise ApiError(400, "INVALIDJOB", "InvalidJob : Unable to find object: %s" % (d.get("object") or ""))
        ext = None
        if op == "upsert":
            ext = d.get("externalIdFieldName")
            if not ext:
                raise ApiError(400, "INVALIDJOB", "InvalidJob : External ID was blank for %s. An External ID must be "
                               "specified for upsert." % obj.name)
            f = obj.fields_lower.get(ext.lower())
            if not f or not (f.external_id or f.name == "Id"):
                raise ApiError(400, "INVALIDJOB", "InvalidJob : Field name provided, %s does not match an External "
                               "ID for %s" % (ext, obj.name))
            ext = f.name
        if op == "hardDelete" and not emu.config["hard_delete_allowed"]:
            raise ApiError(400, "FEATURENOTENABLED", "FeatureNotEnabled : hardDelete operation requires special "
                           "user profile permission, please contact your system administrator")
        arid = d.get("assignmentRuleId")
        with emu.lock:
            job = Job(emu.new_job_id(), "ingest", op, obj.name, ver, delim, le)
            job.ext_id = ext
            if arid:
                job.assignment_rule_id = arid
            nj = emu.config["next_job_fails"]
            if nj:
                job.fail_spec = nj if isinstance(nj, dict) else {}
                emu.config["next_job_fails"] = None
            emu.jobs[job.id] = job
            if content is not None:
                job.content = content
                job.upload_count = 1
                job.state = "UploadComplete"
                shape = job.create_shape()
                del shape["contentUrl"]
                resp = self.json_resp(shape)
                emu.start_processing(job)
                return resp
            return self.json_resp(job.create_shape())

    def upload(self, emu, job, body):
        ct = (self.headers.get("Content-Type") or "").lower()
        if ct and not ct.startswith("text/csv"):
            raise ApiError(400, "API_ERROR", "Unsupported content type: %s; use text/csv" % ct)
        ce = (self.headers.get("Content-Encoding") or "").lower().strip()
        if ce in ("gzip", "x-gzip"):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise ApiError(400, "API_ERROR", "Unable to decompress the request body")
        elif ce not in ("", "identity"):
            raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported Content-Encoding: %s" % ce)
        raw_len = body.size if isinstance(body, Oversize) else len(body)
        b64len = 4 * ((raw_len + 2) // 3)
        with emu.lock:
            if job.state != "Open":
                raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Job state %s does not allow data upload; "
                               "the job must be Open" % job.state)
            if b64len > emu.config["max_upload_bytes"]:
                raise ApiError(400, "INVALIDBATCH", "InvalidBatch : Exceeded max size limit of %d bytes with "
                               "request size %d (base64-encoded)" % (emu.config["max_upload_bytes"], b64len))
            if job.upload_count >= 1 and emu.config["second_upload_mode"] == "put":
                raise ApiError(400, "BULK_API_ERROR", multiple_contents_msg(job))
            job.upload_count += 1
            if job.upload_count > 1:
                job.content = None
            else:
                job.content = body
            job.touch()
        return Response(201, b"")

    def patch_job(self, emu, job, body):
        d = self.job_request(body)
        st = d.get("state")
        if st not in ("UploadComplete", "Aborted", "Open", "JobComplete", "Failed", "InProgress"):
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'state'" % st)
        with emu.lock:
            if st == "Aborted":
                if job.state in TERMINAL:
                    raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot abort a job in state %s"
                                   % job.state)
                job.abort_requested = True
                job.state = "Aborted"
                job.touch()
                return self.json_resp(job.reduced_shape())
            if st == "UploadComplete" and job.kind == "ingest":
                if job.state != "Open":
                    raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to "
                                   "UploadComplete" % job.state)
                if job.upload_count > 1:
                    raise ApiError(400, "INVALIDJOB", multiple_contents_msg(job))
                job.state = "UploadComplete"
                job.touch()
                resp = self.json_resp(job.reduced_shape())
                emu.start_processing(job)
                return resp
            raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to %s"
                           % (job.state, st))

    def delete_job(self, emu, job):
        with emu.lock:
            if job.kind == "ingest" and job.state in ("Open", "InProgress"):
                raise ApiError(400, "API_ERROR", "Error encountered when deleting the job because the job is not "
                               "terminated")
            if job.kind == "query" and job.state not in TERMINAL:
                raise ApiError(400, "API_ERROR", "Error encountered when deleting the job because the job is not "
                               "terminated")
            job.abort_requested = True
            del emu.jobs[job.id]
        return Response(204, b"")

    def list_jobs(self, emu, kind, query, ver):
        q = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        jt = q.get("jobType")
        want = "V2Ingest" if kind == "ingest" else "V2Query"
        if jt and jt not in ("V2Ingest", "V2Query", "Classic", "BigObjectIngest"):
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'jobType'" % jt)
        start = 0
        if q.get("queryLocator"):
            try:
                start = int(base64.urlsafe_b64decode(q["queryLocator"] + "=" * (-len(q["queryLocator"]) % 4)))
            except ValueError:
                raise ApiError(400, "API_ERROR", "Invalid queryLocator: %s" % q["queryLocator"])
        with emu.lock:
            emu.purge_old_jobs()
            jobs = [j for j in emu.jobs.values() if j.kind == kind and (not jt or jt == want)]
            if q.get("concurrencyMode") and q["concurrencyMode"] != "Parallel":
                jobs = []
            jobs.sort(key=lambda j: j.id)
            size = emu.config["list_page_size"]
            page = jobs[start:start + size]
            out = {"done": start + size >= len(jobs), "records": [j.list_shape() for j in page]}
            if not out["done"]:
                loc = base64.urlsafe_b64encode(str(start + size).encode()).decode().rstrip("=")
                out["nextRecordsUrl"] = "/services/data/v%s/jobs/%s?queryLocator=%s%s" % (
                    ver, kind, loc, ("&jobType=" + jt) if jt else "")
            else:
                out["nextRecordsUrl"] = None
        return self.json_resp(out)

    def ingest_results(self, emu, job, sub):
        delim = DELIMITERS[job.delimiter]
        le = LINE_ENDINGS[job.line_ending]
        with emu.lock:  # snapshot under the lock; the (possibly large) file is built outside it
            # cache only once nothing can change any more (an aborted job finishes its current internal batch)
            cache_ok = job.state in TERMINAL and (job.thread is None or not job.thread.is_alive())
            if cache_ok and sub in job.result_cache:
                return Response(200, job.result_cache[sub], CSV_CT)
            if job.rows is None and job.content is not None and job.state in ("Aborted", "Failed"):
                emu.parse_rows(job, job.content.decode("utf-8", "replace"), delim)
            header = list(job.header or [])
            rows = job.rows or []
            shuffle_results = emu.config["shuffle_results"]
            seed = emu.config["seed"]
            final_nl = emu.config["unprocessed_final_newline"]
            if sub == "successfulResults":
                entries = list(job.success)
            elif sub == "failedResults":
                entries = list(job.failures)
            else:
                entries = list(range(job.next_index, len(rows))) if job.state in ("Failed", "Aborted") else []
        rnd = random.Random("%s:%s:%s" % (seed, job.id, sub))
        blank = [""] * len(header)
        if sub in ("successfulResults", "failedResults"):
            # Lines are built in upload order (memory order: fast) and then shuffled: the same permutation as
            # shuffling the entries first, as it depends only on the generator and the number of lines.
            if sub == "successfulResults":
                head = ["sf__Id", "sf__Created"] + header
                created = {True: '"%s"' + delim + '"true"' + delim, False: '"%s"' + delim + '"false"' + delim}
                lines = csv_quote_all_lines([rows[k] for k, rid, c in entries], delim,
                                            [created[c] % rid for k, rid, c in entries])
            else:
                head = ["sf__Id", "sf__Error"] + header
                api53 = float(job.api_version) >= 53.0
                lines = csv_quote_all_lines([[rid if api53 else "", err] + (rows[k] if isinstance(rows[k], list)
                                                                            else blank)
                                             for k, rid, err in entries], delim)
            if shuffle_results:
                shuffle(rnd, lines)
            blob = csv_bytes(csv_quote_all_lines([head], delim) + lines, le)
        else:
            if shuffle_results:
                shuffle(rnd, entries)
            pending = [rows[k] if isinstance(rows[k], list) else blank for k in entries]
            blob = csv_unprocessed(header, pending, delim, le, final_nl).encode("utf-8")
        if cache_ok:
            with emu.lock:
                job.result_cache[sub] = blob
        return Response(200, blob, CSV_CT)

    # -- query jobs -------------------------------------------------------------------------------------------
    def query_routes(self, emu, method, rest, query, body, ver):
        if rest in ("", "/"):
            if method == "POST":
                return self.create_query(emu, body, ver)
            if method == "GET":
                return self.list_jobs(emu, "query", query, ver)
            self.allow(method, "GET", "POST")
        m = re.match(r"^/([0-9A-Za-z]{15,18})(?:/(results|resultPages))?/?$", rest)
        if not m:
            raise ApiError(404, *NOT_FOUND)
        jid, sub = m.group(1), m.group(2)
        with emu.lock:
            job = emu.get_job(jid, "query")
        if sub is None:
            if method == "GET":
                with emu.lock:
                    return self.json_resp(job.info_shape())
            if method == "PATCH":
                d = self.job_request(body)
                if d.get("state") != "Aborted":
                    raise ApiError(400, "INVALIDJOBSTATE", "InvalidJobState : Cannot change state from %s to %s"
                                   % (job.state, d.get("state")))
                return self.patch_job(emu, job, body)
            if method == "DELETE":
                return self.delete_job(emu, job)
            self.allow(method, "GET", "PATCH", "DELETE")
        self.allow(method, "GET")
        if job.api_version != ver:
            raise ApiError(409, "API_ERROR", "The API version of the request (%s) does not match the API version "
                           "of the job (%s)" % (ver, job.api_version))
        if sub == "resultPages" and float(ver) < 58:
            raise ApiError(404, *NOT_FOUND)
        if job.state != "JobComplete":
            raise ApiError(400, "JOB_NOT_COMPLETE", "Job is not complete. Current state: %s" % job.state)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        page = emu.config["query_page_size"]
        if "maxRecords" in q:
            try:
                page = int(q["maxRecords"])
                if page <= 0:
                    raise ValueError
            except ValueError:
                raise ApiError(400, "INVALIDPARAMETER", "Invalid value for maxRecords: %s" % q["maxRecords"])
        start = 0
        if q.get("locator"):
            start = decode_locator(q["locator"])
            if start is None or start > len(job.query_rows):
                raise ApiError(400, "INVALIDPARAMETER", "Invalid locator: %s" % q["locator"])
        rows = job.query_rows
        if sub == "resultPages":
            urls = []
            pos = start
            while pos < len(rows) and len(urls) < 5:
                loc = encode_locator(pos)
                urls.append({"resultUrl": "/services/data/v%s/jobs/query/%s/results?locator=%s&maxRecords=%d"
                             % (ver, job.id, loc, page) if pos else
                             "/services/data/v%s/jobs/query/%s/results?maxRecords=%d" % (ver, job.id, page)})
                pos += page
            if not rows and start == 0:
                urls.append({"resultUrl": "/services/data/v%s/jobs/query/%s/results" % (ver, job.id)})
            done = pos >= len(rows)
            out = {"resultPages": urls, "done": done,
                   "nextRecordsUrl": None if done else "/services/data/v%s/jobs/query/%s/resultPages?locator=%s"
                   "&maxRecords=%d" % (ver, job.id, encode_locator(pos), page)}
            return self.json_resp(out)
        chunk = rows[start:start + page]
        nxt = start + page
        cols = job.query_columns
        data = csv_quote_all([cols] + [["" if v is None else v for v in r] for r in chunk],
                             DELIMITERS[job.delimiter], LINE_ENDINGS[job.line_ending])
        return Response(200, data.encode("utf-8"), CSV_CT,
                        [("Sforce-Locator", encode_locator(nxt) if nxt < len(rows) else "null"),
                         ("Sforce-NumberOfRecords", str(len(chunk)))])

    def create_query(self, emu, body, ver):
        d = self.job_request(body)
        op = d.get("operation")
        if op not in ("query", "queryAll"):
            raise ApiError(400, "API_ERROR", "Invalid value: '%s' supplied for property: 'operation'" % op)
        delim, le = self.common_options(d)
        text = d.get("query")
        if not text:
            raise ApiError(400, "API_ERROR", "Query is required for a query job")
        try:
            soql = Soql(text, emu.schema)
            obj_name = soql.obj.name
        except SoqlError as e:
            if emu.config["query_errors_at"] != "job" or e.code == "MALFORMED_QUERY":
                raise ApiError(400, e.code, e.message)
            soql = e
            m = re.search(r"\bfrom\s+([A-Za-z0-9_]+)", text, re.I)
            obj_name = m.group(1) if m else ""
        with emu.lock:
            if emu.query_jobs_used >= emu.config["daily_query_jobs_limit"]:
                raise ApiError(400, "LIMIT_EXCEEDED", "ExceededQuota : Maximum number of Bulk API 2.0 query jobs "
                               "per rolling 24 hour period exceeded")
            emu.query_jobs_used += 1
            job = Job(emu.new_job_id(), "query", op, obj_name, ver, delim, le)
            job.query = soql
            if not isinstance(soql, SoqlError):
                cols = [c[0] for c in soql.columns]
                job.query_columns = sorted(cols, key=str.lower) if float(ver) < 50 else cols
                if float(ver) < 50:
                    order = sorted(range(len(cols)), key=lambda i: cols[i].lower())
                    soql.columns = [soql.columns[i] for i in order]
            nj = emu.config["next_job_fails"]
            if nj:
                job.fail_spec = nj if isinstance(nj, dict) else {}
                emu.config["next_job_fails"] = None
            if emu.config["synthetic_query_rows"] and not isinstance(soql, SoqlError):
                job.synthetic_rows = int(emu.config["synthetic_query_rows"])
            emu.jobs[job.id] = job
            resp = self.json_resp(job.create_shape())
            emu.start_processing(job)
            return resp

    # -- admin ------------------------------------------------------------------------------------------------
    def admin(self, emu, method, path, query, body):
        sub = path[len("/__emulator"):].rstrip("/")
        q = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}

        def jbody():
            if not body:
                return {}
            try:
                return json.loads(body.decode("utf-8"))
            except ValueError:
                raise ApiError(400, "JSON_PARSER_ERROR", "admin: body is not JSON")
        if sub == "/reset" and method == "POST":
            emu.reset()
            return self.json_resp({"ok": True})
        if sub == "/health":
            return self.json_resp({"ok": True, "base_url": emu.base_url})
        if sub == "/requests" and method == "GET":
            since = int(q.get("since", 0))
            incl_admin = q.get("admin") in ("1", "true")
            with emu.log_lock:
                entries = [e for e in emu.log if e.get("seq", 0) > since and (incl_admin or not e["admin"])]
                last = emu.log_seq
            return self.json_resp({"last_seq": last, "requests": entries})
        if sub == "/requests" and method == "DELETE":
            with emu.log_lock:
                emu.log = []
            return self.json_resp({"ok": True})
        m = re.match(r"^/records/([A-Za-z0-9_]+)$", sub)
        if m:
            obj = emu.schema.get(m.group(1))
            if not obj:
                raise ApiError(404, "NOT_FOUND", "Unknown object %s" % m.group(1))
            if method == "GET":
                with emu.lock:
                    recs = []
                    for r in emu.store.records[obj.name].values():
                        d = dict(r)
                        d["deleted"] = r.get("IsDeleted") == "true"
                        recs.append(d)
                return self.json_resp({"object": obj.name, "totalSize": len(recs), "records": recs})
            if method == "POST":
                data = jbody()
                items = data if isinstance(data, list) else data.get("records", [])
                ids = []
                with emu.lock:
                    for it in items:
                        ids.append(emu.store.insert_raw(obj, {k: (None if v is None else str(v))
                                                              for k, v in it.items()})["Id"])
                return self.json_resp({"ids": ids})
        if sub == "/faults":
            if method == "GET":
                return self.json_resp({"faults": emu.faults.list()})
            if method == "POST":
                data = jbody()
                try:
                    added = [emu.faults.add(s) for s in (data if isinstance(data, list) else [data])]
                except (ValueError, re.error) as e:
                    raise ApiError(400, "INVALID_FAULT", str(e))
                return self.json_resp({"faults": added})
            if method == "DELETE":
                emu.faults.clear()
                return self.json_resp({"ok": True})
        if sub == "/tokens/expire" and method == "POST":
            data = jbody()
            if data.get("after_calls"):
                with emu.lock:
                    emu.calls_until_expiry = int(data["after_calls"])
                return self.json_resp({"expire_after_calls": emu.calls_until_expiry})
            n = emu.expire_tokens(data.get("access_token"), data.get("refresh_token"))
            return self.json_resp({"expired": n})
        if sub == "/tokens" and method == "POST":
            data = jbody()
            u = emu.org["user"]["username"]
            ttl = data.get("ttl_seconds")
            tok = emu.new_token(u, emu.org["client_id"])
            with emu.lock:
                if ttl is not None:
                    emu.tokens[tok]["expires"] = now() + float(ttl) if ttl else None
                rt = "5Aep" + base64.urlsafe_b64encode(os.urandom(36)).decode().rstrip("=").replace("-", ".")
                emu.refresh_tokens[rt] = {"username": u, "client_id": emu.org["client_id"], "revoked": False}
            return self.json_resp({"access_token": tok, "refresh_token": rt, "instance_url": emu.base_url})
        if sub == "/config":
            if method == "POST":
                data = jbody()
                bad = [k for k in data if k not in DEFAULT_CONFIG]
                if bad:
                    raise ApiError(400, "INVALID_CONFIG", "unknown config keys: %s" % ", ".join(bad))
                with emu.lock:
                    emu.config.update(data)
                    if "tokens_expire_after_calls" in data:
                        emu.calls_until_expiry = data["tokens_expire_after_calls"]
                    if "daily_api_limit" in data and data.get("reset_usage"):
                        emu.api_used = 0
            return self.json_resp(emu.config)
        if sub == "/usage" and method == "POST":
            data = jbody()
            with emu.lock:
                for k, attr in (("api", "api_used"), ("records", "records_used"), ("batches", "batches_used"),
                                ("query_jobs", "query_jobs_used")):
                    if k in data:
                        setattr(emu, attr, int(data[k]))
            return self.json_resp({"api": emu.api_used, "records": emu.records_used, "batches": emu.batches_used,
                                   "query_jobs": emu.query_jobs_used})
        if sub == "/clock" and method == "POST":
            data = jbody()
            _clock_offset[0] += float(data.get("advance_seconds", 0))
            return self.json_resp({"offset_seconds": _clock_offset[0], "now": record_ts(now())})
        if sub == "/jobs" and method == "GET":
            with emu.lock:
                emu.purge_old_jobs()
                out = []
                for j in emu.jobs.values():
                    d = j.info_shape()
                    d["kind"] = j.kind
                    d["uploadCount"] = j.upload_count
                    d["uploadBytes"] = len(j.content) if j.content is not None else 0
                    out.append(d)
            return self.json_resp({"jobs": out})
        if sub == "/save" and method == "POST":
            emu.persist()
            return self.json_resp({"ok": True})
        raise ApiError(404, "NOT_FOUND", "Unknown admin resource")


def json_value(f, v):
    if v is None:
        return None
    if f.type == "boolean":
        return v == "true"
    if f.type == "int":
        return int(v)
    if f.type in ("double", "currency", "percent"):
        return float(v)
    if f.type == "datetime":
        return v[:-1] + "+0000" if v.endswith("Z") else v
    return v


def call_options_client(h):
    if not h:
        return None
    for part in h.split(","):
        k, _, v = part.strip().partition("=")
        if k.strip() == "client":
            return v.strip()
    return None


def encode_locator(n):
    return base64.urlsafe_b64encode(str(n).encode()).decode().rstrip("=")


def decode_locator(s):
    try:
        return int(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode())
    except (ValueError, UnicodeDecodeError):
        return None


def multiple_contents_msg(job):
    return ("Found multipe contents for job: <%s>, please 'Close' / 'Abort' / 'Delete' the current Job then create "
            "a new Job and make sure you only do 'PUT' once on a given Job." % job.id[:15])


# ----------------------------------------------------------------------------------------------------------
# Server
# ----------------------------------------------------------------------------------------------------------
class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class Server6(Server):
    address_family = socket.AF_INET6


def start_gc_thread():
    """Automatic cyclic GC rescans millions of parsed rows/records over and over during big jobs (quadratic
    slow-down). Collect on a timer instead: the young generations often (linear in new objects), everything
    rarely. Nearly all emulator data is acyclic and freed by reference counting anyway."""
    gc.disable()

    def loop():
        n = 0
        while True:
            time.sleep(2.0)
            n += 1
            gc.collect(2 if n % 30 == 0 else 1)
    threading.Thread(target=loop, daemon=True, name="gc").start()


def loopback_only(host):
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def main(argv=None):
    p = argparse.ArgumentParser(description="Salesforce Bulk API 2.0 emulator (loopback only)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--url-file")
    p.add_argument("--metadata", default=os.path.join(HERE, "metadata.json"))
    p.add_argument("--data-dir")
    p.add_argument("--processing-delay-ms", type=int, default=0)
    p.add_argument("--token-ttl-seconds", type=int, default=7200)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--jwt-cert", help="PEM certificate or public key for JWT bearer checks")
    args = p.parse_args(argv)
    if not loopback_only(args.host):
        sys.stderr.write("sf_emulator: refusing to bind to non-loopback address %r\n" % args.host)
        return 2
    emu = Emulator(args)
    start_gc_thread()
    fam6 = ":" in args.host
    srv = (Server6 if fam6 else Server)((args.host, args.port), Handler)
    srv.emu = emu
    host, port = srv.server_address[:2]
    emu.base_url = "http://%s:%d" % ("[%s]" % host if fam6 else host, port)

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.url_file:
        tmp = args.url_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(emu.base_url + "\n")
        os.replace(tmp, args.url_file)
    print(emu.base_url, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
        try:
            emu.persist()
        except OSError as e:
            sys.stderr.write("sf_emulator: could not persist store: %s\n" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
