"""Object metadata (the org's schema), the canonical form of field values, and the record store.

Values are kept as canonical text: what a CSV cell becomes once Salesforce has accepted it (docs/bulk-api-2.md §8)."""

import datetime as _dt
import functools
import json
import re
from decimal import Decimal, InvalidOperation

from . import common
from .common import USER_ID, RowError, make_id, make_ids, normalize_id


# ----------------------------------------------------------------------------------------------------------
# Metadata
# ----------------------------------------------------------------------------------------------------------
# a field's length when the metadata gives none: what Salesforce reports for that type (ids: 18 characters)
DEFAULT_LENGTH = {"id": 18, "reference": 18, "string": 255, "picklist": 255, "multipicklist": 4099, "email": 80,
                  "textarea": 32000}
UNSIZED_TYPES = ("boolean", "int", "double", "currency", "percent", "date", "datetime", "time")  # length 0
SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
              "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double", "date": "xsd:date",
              "datetime": "xsd:dateTime", "time": "xsd:time", "base64": "xsd:base64Binary",
              "address": "urn:address", "location": "urn:location"}  # any other type: xsd:string
FIELD_TYPES = set(SOAP_TYPES) | {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist"}


class Field:
    def __init__(self, d):
        self.name = d["name"]
        self.label = d.get("label", self.name)
        self.type = d.get("type", "string")
        self.length = int(d.get("length", DEFAULT_LENGTH.get(self.type, 0)))
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
        self.auto_number = bool(d.get("autoNumber", False))
        # an auto-number's display format, "INV-{0000}": the number zero-padded to the width of the braces
        fmt = re.fullmatch(r"(.*)\{(0+)\}(.*)", d.get("displayFormat", "{0}"), re.S) if self.auto_number else None
        self.auto_number_format = (fmt.group(1), len(fmt.group(2)), fmt.group(3)) if fmt else None
        self.formula = d.get("calculatedFormula")
        self.compound = self.type in ("address", "location")  # read-only structured value of component fields
        self.parts = []  # a compound's (member, component Field) pairs, set by its SObject
        self.compound_field_name = d.get("compoundFieldName")
        # deactivated values: still in describe (active: false) and in old data, but not accepted on a restricted
        # picklist, which is why they stay out of picklist/picklist_set
        self.inactive_picklist = [v for v in d.get("inactivePicklistValues", []) if v not in self.picklist_set]
        self.child_relationship = d.get("childRelationshipName")
        # the per-type flags of docs/soql-and-rest.md §2.7/§3.2, shared by describe and SOQL (which refuses what
        # describe says is not filterable or sortable, as Salesforce does)
        self.long_text = self.type == "textarea" and self.length > 255
        self.filterable = not (self.long_text or self.compound or self.type == "base64")
        self.sortable = self.filterable and self.type != "multipicklist"

    def describe(self):
        """One field of a describe, every property docs/soql-and-rest.md §3.2 lists, with the per-type flags of §2.7
        and §3.2: long text (> 255), base64 and compounds are not filterable or sortable; multipicklist not sortable;
        date-time, double/currency/percent, long text, multipicklist and auto-number not groupable; byteLength is
        3 x length; a polymorphic reference is namePointing. Keys in alphabetical order, as Salesforce sends them."""
        t = self.type
        numeric = t in ("double", "currency", "percent")
        length = 0 if t in UNSIZED_TYPES or self.compound else self.length
        unfilterable = not self.filterable
        return {
            # COUNT(Id) and COUNT_DISTINCT(ref) are valid, so ids and references aggregate; booleans do not
            "aggregatable": not unfilterable and t not in ("multipicklist", "boolean"),
            "autoNumber": self.auto_number, "byteLength": 3 * length,
            "calculated": self.computed, "calculatedFormula": self.formula, "caseSensitive": self.case_sensitive,
            "compoundFieldName": self.compound_field_name, "createable": self.createable,
            "custom": self.name.endswith("__c"), "defaultValue": self.default,
            "defaultedOnCreate": self.defaulted_on_create, "dependentPicklist": False,
            "deprecatedAndHidden": False, "digits": self.precision if t == "int" else 0, "encrypted": False,
            "externalId": self.external_id, "filterable": not unfilterable,
            "groupable": not (unfilterable or numeric or self.auto_number or t in ("datetime", "multipicklist")),
            "htmlFormatted": False, "idLookup": self.id_lookup, "label": self.label, "length": length,
            "name": self.name, "nameField": self.name == "Name", "namePointing": self.polymorphic,
            "nillable": self.nillable,
            "picklistValues": [{"active": active, "defaultValue": v == self.default, "label": v, "validFor": None,
                                "value": v} for values, active in ((self.picklist, True),
                                                                   (self.inactive_picklist, False)) for v in values],
            "polymorphicForeignKey": self.polymorphic,
            "precision": self.precision if numeric else 0,
            "referenceTo": self.reference_to, "relationshipName": self.relationship_name,
            "restrictedPicklist": self.restricted, "scale": self.scale if numeric else 0,
            "soapType": SOAP_TYPES.get(t, "xsd:string"),
            "sortable": self.sortable,
            "type": t, "unique": self.unique, "updateable": self.updateable,
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
# the members of a compound value, alphabetical (docs/soql-and-rest.md §1.4); components map to them by name ending
COMPOUND_KEYS = {"address": ("city", "country", "geocodeAccuracy", "latitude", "longitude", "postalCode", "state",
                             "street"),
                 "location": ("latitude", "longitude")}
COMPOUND_FIELDS = {"address", "billingaddress", "shippingaddress", "mailingaddress", "otheraddress", "location"}


GLOBAL_FLAGS = {"activateable": False, "createable": True, "custom": None, "customSetting": False,
                "deletable": True, "deprecatedAndHidden": False, "feedEnabled": True, "keyPrefix": None,
                "label": None, "labelPlural": None, "layoutable": True, "mergeable": True, "name": None,
                "queryable": True, "replicateable": True, "retrieveable": True, "searchable": True,
                "triggerable": True, "undeletable": True, "updateable": True}


class SObject:
    def __init__(self, name, d):
        self.name = name
        self.key_prefix = d["keyPrefix"]
        self.label = d.get("label", name)
        self.label_plural = d.get("labelPlural", self.label + "s")
        self.name_fields = d.get("nameFields")
        self.bulk_ingest = bool(d.get("bulkIngest", True))
        self.modified = 0  # when the describe last changed, whole epoch seconds (If-Modified-Since); set by Schema
        # describeGlobal flags: the recorded Account entry's values unless the metadata sets one (e.g.
        # "replicateable": false); the None members are filled per object by describe_global
        self.global_flags = {k: d.get(k, v) for k, v in GLOBAL_FLAGS.items()}
        self.fields = {}
        defs = (SYSTEM_FIELDS[:1] if d.get("systemFields", True) else []) + list(d.get("fields", []))
        if d.get("systemFields", True):
            defs += SYSTEM_FIELDS[1:]
        for fd in defs:
            f = Field(fd)
            self.fields[f.name] = f
        self.rebuild()

    def rebuild(self):
        """The lookup tables derived from self.fields (again after a field is added, replaced or dropped)."""
        self.fields_lower = {k.lower(): f for k, f in self.fields.items()}
        self.defaults = {f.name: f.default for f in self.fields.values() if f.default is not None and f.name != "Id"}
        self.defaults.update({"IsDeleted": "false", "CreatedById": USER_ID, "LastModifiedById": USER_ID})
        if "OwnerId" in self.fields:
            self.defaults["OwnerId"] = USER_ID
        self.rel_lower = {f.relationship_name.lower(): f for f in self.fields.values() if f.relationship_name}
        self.auto_numbers = [(f.name,) + f.auto_number_format for f in self.fields.values() if f.auto_number_format]
        for f in self.fields.values():
            if f.compound:  # (member, component field): BillingPostalCode -> postalCode, Site__Latitude__s -> latitude
                f.parts = [(key, c) for c in self.fields.values() if c.compound_field_name == f.name
                           for key in COMPOUND_KEYS[f.type] if c.name.lower().replace("__s", "").endswith(key.lower())]

    def describe_global(self):
        """The object's describeGlobal entry: the members of docs/soql-and-rest.md §3.1 in its order (alphabetical,
        urls last); "{v}" in the urls stands for the API version."""
        out = dict(self.global_flags)
        out.update({"custom": self.name.endswith("__c"), "keyPrefix": self.key_prefix, "label": self.label,
                    "labelPlural": self.label_plural, "name": self.name})
        out["urls"] = {"sobject": "/services/data/v{v}/sobjects/%s" % self.name,
                       "describe": "/services/data/v{v}/sobjects/%s/describe" % self.name,
                       "rowTemplate": "/services/data/v{v}/sobjects/%s/{ID}" % self.name}
        return out


class Schema:
    def __init__(self, path, after=None):
        """The metadata file's schema, its describes stamped with the load time in whole seconds (as HTTP dates
        carry them), or later than after: the stamp of a schema this one replaces."""
        with open(path, "r", encoding="utf-8") as fh:
            doc = json.load(fh)
        self.objects = {n: SObject(n, d) for n, d in doc["objects"].items()}
        self.edited = False  # changed at run time (admin API) since it was loaded
        loaded = int(common.now()) if after is None else max(int(common.now()), int(after) + 1)
        for o in self.objects.values():
            o.modified = loaded
        self.lower = {n.lower(): o for n, o in self.objects.items()}
        self.by_prefix = {o.key_prefix: o for o in self.objects.values()}

    def get(self, name):
        return self.lower.get((name or "").lower())

    def modified(self):
        """describeGlobal's time stamp: the latest change of any object."""
        return max(o.modified for o in self.objects.values())

    def touch(self, objs):
        """Marks the describes of objs changed. The stamp is the next whole second: a client that read them earlier
        in this second holds this second as its If-Modified-Since date and must not get a 304."""
        t = int(common.now()) + 1
        for o in objs:
            o.modified = max(o.modified + 1, t)
        self.edited = True

    def child_relationships(self, obj):
        """describe childRelationships[]: every reference field of any object that points at obj."""
        out = []
        for o in self.objects.values():
            for f in o.fields.values():
                if f.type == "reference" and obj.name in f.reference_to:
                    out.append({"cascadeDelete": False, "childSObject": o.name, "deprecatedAndHidden": False,
                                "field": f.name, "relationshipName": f.child_relationship})
        return out


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
        self.bin_days = 15  # recycle-bin retention (config recycle_bin_days, kept in step by the Emulator)
        self.clear()

    def clear(self):
        self.records = {n: {} for n in self.schema.objects}
        self.index, self.index_list = {}, {}
        for o in self.schema.objects.values():
            self.empty_indexes(o)
        self.counters = {n: 0 for n in self.schema.objects}
        self.auto_counters = {n: 0 for n in self.schema.objects}  # the last auto-number given, per object
        # Change tracking (docs/soql-and-rest.md §4.2, §4.3), per object: the deletion log that /deleted reads,
        # {id: (epoch second, stamp text)} for rows in the recycle bin and hard-deleted rows until they are purged;
        # a lower bound of its epochs (bin expiry costs nothing until one is due); the minute from which the log
        # is complete after a physical purge (earliestDateAvailable); formula values given to every row, which rows
        # inserted later get too (a formula computes for every row, docs/soql-and-rest.md §4.5)
        self.deleted_log = {n: {} for n in self.schema.objects}
        self.log_min = {n: float("inf") for n in self.schema.objects}
        self.purged_until = {n: None for n in self.schema.objects}
        self.formula_defaults = {}

    def empty_indexes(self, obj):
        """Empty unique/external-id indexes for obj's indexed fields, also as (field name, index, case-sensitive)
        for the per-record loops."""
        self.index[obj.name] = {f.name: {} for f in obj.fields.values() if f.indexed}
        self.index_list[obj.name] = [(fname, idx, obj.fields[fname].case_sensitive)
                                     for fname, idx in self.index[obj.name].items()]

    # -- schema changes at run time (admin API) ----------------------------------------------------------------
    def put_field(self, obj, f):
        """Adds field f to obj, or replaces obj's field of that name (any case): a retype keeps the field's name and
        its place in describe, converts the stored values the new type accepts and clears the others (a type
        change in Setup loses what does not convert). A checkbox is never null: records without a value get its
        default. Returns True when the field is new."""
        old = obj.fields_lower.get(f.name.lower())
        if old is None:
            obj.fields[f.name] = f
        else:
            f.name = old.name
            obj.fields = {k: (f if k == f.name else v) for k, v in obj.fields.items()}
        obj.rebuild()
        self.formula_defaults.get(obj.name, {}).pop(f.name, None)
        recs = self.records[obj.name].values()
        if old is not None:
            conv = make_converter(f, 1)
            for rec in recs:
                v = rec.get(f.name)
                if v is None:
                    continue
                try:
                    v = conv(v) if conv else (normalize_id(v) if f.type == "reference" else v)
                except RowError:
                    v = None
                if v is None:
                    del rec[f.name]
                else:
                    rec[f.name] = v
        if f.type == "boolean":
            for rec in recs:
                rec.setdefault(f.name, f.default or "false")
        self.reindex(obj)
        return old is None

    def drop_field(self, obj, f):
        """Removes field f from obj, and its values from every record (a deleted field takes its data along)."""
        del obj.fields[f.name]
        obj.rebuild()
        self.formula_defaults.get(obj.name, {}).pop(f.name, None)
        for rec in self.records[obj.name].values():
            rec.pop(f.name, None)
        self.reindex(obj)

    def reindex(self, obj):
        """obj's indexes rebuilt from its live records, after its fields changed."""
        self.empty_indexes(obj)
        if self.index_list[obj.name]:
            for rec in self.records[obj.name].values():
                if rec.get("IsDeleted") != "true":
                    self.index_add(obj, rec)

    def live_counts(self):
        """{object: number of records not in the recycle bin} for every object."""
        return {n: sum(1 for r in recs.values() if r.get("IsDeleted") != "true") for n, recs in self.records.items()}

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

    def assign_auto_numbers(self, obj, rec):
        """Salesforce numbers a new record's auto-number fields in insert order, from 1; a value seeded through the
        admin API is kept."""
        n = self.auto_counters[obj.name] = self.auto_counters[obj.name] + 1
        for name, prefix, width, suffix in obj.auto_numbers:
            if rec.get(name) is None:
                rec[name] = "%s%0*d%s" % (prefix, width, n, suffix)

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
        ts = ts or common.write_ts()
        rec = dict(obj.defaults)
        rec["Id"] = values.get("Id") or self.new_id(obj)
        rec["CreatedDate"] = rec["LastModifiedDate"] = rec["SystemModstamp"] = ts
        fd = self.formula_defaults.get(obj.name)
        if fd:
            rec.update(fd)
        apply_values(rec, values)
        self.compute_name(obj, rec)
        if obj.auto_numbers:
            self.assign_auto_numbers(obj, rec)
        self.records[obj.name][rec["Id"]] = rec
        if rec.get("IsDeleted") != "true":
            self.index_add(obj, rec)
        else:
            self.log_deletion(obj.name, rec["Id"], rec.get("SystemModstamp") or ts)
        return rec

    def insert_many(self, obj, items, ts=None):
        """insert_raw for many records (the admin API's seeding): one timestamp, the defaults copied, no per-record
        clock or name-field work beyond what the object needs. Returns the ids."""
        ts = ts or common.write_ts()
        base = dict(obj.defaults)
        base["CreatedDate"] = base["LastModifiedDate"] = base["SystemModstamp"] = ts
        base.update(self.formula_defaults.get(obj.name) or {})
        recs, ids = self.records[obj.name], []
        index_list, counters, prefix = self.index_list[obj.name], self.counters, obj.key_prefix
        named = bool(obj.name_fields)
        for values in items:
            rec = base.copy()
            rid = values.get("Id")
            if not rid:
                counters[obj.name] += 1
                rid = make_id(prefix, counters[obj.name])
            rec["Id"] = rid
            apply_values(rec, values)
            if named:
                self.compute_name(obj, rec)
            if obj.auto_numbers:
                self.assign_auto_numbers(obj, rec)
            recs[rid] = rec
            ids.append(rid)
            if rec.get("IsDeleted") == "true":
                self.log_deletion(obj.name, rid, rec.get("SystemModstamp") or ts)
            elif index_list:
                self.index_add(obj, rec)
        return ids

    def insert_generated(self, obj, fixed, numbered, start, count, ts=None, cycled=()):
        """count records numbered start, start+1, ...: the fixed values, for each (field, prefix, suffix) of
        numbered the value prefix + n + suffix, and for each (field, values) of cycled the k-th record's
        values[k % len(values)] (None: the field is null). The seeding path for millions of records (admin
        "generate")."""
        ts = ts or common.write_ts()
        base = dict(obj.defaults)
        base["CreatedDate"] = base["LastModifiedDate"] = base["SystemModstamp"] = ts
        base.update(self.formula_defaults.get(obj.name) or {})
        base.update(fixed)
        for k in [k for k, v in base.items() if v is None]:
            del base[k]
        recs, counters = self.records[obj.name], self.counters
        generated = {k for k, _, _ in numbered} | {k for k, _ in cycled}
        index_list = [(f, idx, cs) for f, idx, cs in self.index_list[obj.name]
                      if base.get(f) is not None or f in generated]
        name_fields = obj.name_fields
        first = last = None
        live = base.get("IsDeleted") != "true"
        c = counters[obj.name]
        for k, (i, rid) in enumerate(zip(range(start, start + count), make_ids(obj.key_prefix, c + 1, count))):
            rec = base.copy()
            rec["Id"] = rid
            n = str(i)
            for f, pre, post in numbered:
                rec[f] = pre + n + post
            for f, values in cycled:
                v = values[k % len(values)]
                if v is None:
                    rec.pop(f, None)
                else:
                    rec[f] = v
            if name_fields:
                self.compute_name(obj, rec)
            if obj.auto_numbers:
                self.assign_auto_numbers(obj, rec)
            recs[rid] = rec
            if live:
                for fname, idx, case_sensitive in index_list:
                    v = rec.get(fname)
                    if v is not None:
                        idx[v if case_sensitive else v.lower()] = rid
            else:
                self.log_deletion(obj.name, rid, rec.get("SystemModstamp") or ts)
            if first is None:
                first = rid
            last = rid
        counters[obj.name] = c + count
        return count, first, last

    # -- writes after insert, the recycle bin and the deletion log (docs/soql-and-rest.md §4.1-§4.3) -------------
    def update(self, obj, rec, values, ts, user=True):
        """Writes values into a live record. Every write moves SystemModstamp; a user's (or integration's) write
        also LastModifiedDate and LastModifiedById, an automated one (user False: workflow, a flow, a roll-up,
        a system job) does not, so LastModifiedDate <= SystemModstamp and only SystemModstamp sees every change
        (docs/soql-and-rest.md §4.1, trap 14)."""
        self.index_remove(obj, rec)
        apply_values(rec, values)
        rec["SystemModstamp"] = ts
        if user:
            rec["LastModifiedDate"] = ts
            rec["LastModifiedById"] = USER_ID
        self.compute_name(obj, rec)
        self.index_add(obj, rec)

    def soft_delete(self, obj, rec, ts):
        """A delete: the row goes to the recycle bin (IsDeleted = true: hidden from query, kept by queryAll) and
        into the deletion log with deletedDate = its new SystemModstamp (§4.2, §4.3). A user's delete, so it moves
        LastModifiedDate as well (the doc is silent; the emulator's choice, README)."""
        self.index_remove(obj, rec)
        rec["IsDeleted"] = "true"
        rec["SystemModstamp"] = rec["LastModifiedDate"] = ts
        rec["LastModifiedById"] = USER_ID
        self.log_deletion(obj.name, rec["Id"], ts)

    def hard_delete(self, obj, rec, ts):
        """A hard delete: the row leaves the store at once (neither query nor queryAll sees it), its deletion stays
        in the log for /deleted until the log is purged (§4.2). A row already in the bin keeps its deletedDate."""
        if rec.get("IsDeleted") != "true":
            self.index_remove(obj, rec)
            self.log_deletion(obj.name, rec["Id"], ts)
        del self.records[obj.name][rec["Id"]]

    def unique_conflict(self, obj, rec):
        """(field, other id) when a unique value of rec is held by another live record, else None."""
        for fname, idx, case_sensitive in self.index_list[obj.name]:
            v = rec.get(fname)
            if v is not None:
                other = idx.get(v if case_sensitive else v.lower())
                if other and other != rec["Id"]:
                    return fname, other
        return None

    def undelete(self, obj, rec, ts):
        """Back from the recycle bin: IsDeleted false, out of the deletion log, stamped like a user's write (so an
        incremental pull sees the row again, §4.2); a merge loser forgets its MasterRecordId."""
        rec["IsDeleted"] = "false"
        rec.pop("MasterRecordId", None)
        rec["SystemModstamp"] = rec["LastModifiedDate"] = ts
        rec["LastModifiedById"] = USER_ID
        self.index_add(obj, rec)
        self.deleted_log[obj.name].pop(rec["Id"], None)

    def merge(self, obj, master, losers, values, ts):
        """Salesforce's merge (Account, Contact, Lead): the master takes values and is stamped; each loser is
        deleted into the bin with MasterRecordId = the master (queryAll shows it so, §4.2); records of any object
        that pointed at a loser are re-pointed at the master and stamped like a user's write (Salesforce
        reparents related records; that this moves their stamps is the emulator's reading). Returns
        {object: [re-pointed ids]}."""
        self.update(obj, master, values, ts)
        gone = {r["Id"] for r in losers}
        for rec in losers:
            self.soft_delete(obj, rec, ts)
            if "MasterRecordId" in obj.fields:
                rec["MasterRecordId"] = master["Id"]
        moved = {}
        for o in self.schema.objects.values():
            refs = [f.name for f in o.fields.values() if f.type == "reference" and obj.name in f.reference_to
                    and f.name != "MasterRecordId"]
            if not refs:
                continue
            for rec in self.records[o.name].values():
                if rec.get("IsDeleted") == "true" or rec["Id"] == master["Id"] or rec["Id"] in gone:
                    continue
                changed = {f: master["Id"] for f in refs if rec.get(f) in gone}
                if changed:
                    self.update(o, rec, changed, ts)
                    moved.setdefault(o.name, []).append(rec["Id"])
        return moved

    def set_formula(self, obj, f, value=None, per_row=None):
        """A formula field's value changes without any stamp moving (docs/soql-and-rest.md §4.5, trap 17): value
        for every row (bin rows too; rows inserted later get it as well), or per_row {id: value}. None clears.
        Returns the number of rows set."""
        recs = self.records[obj.name]
        if per_row is None:
            targets = [(r, value) for r in recs.values()]
            fd = self.formula_defaults.setdefault(obj.name, {})
            if value is None:
                fd.pop(f.name, None)
            else:
                fd[f.name] = value
        else:
            targets = [(recs[rid], v) for rid, v in per_row.items()]
        for rec, v in targets:
            if v is None:
                rec.pop(f.name, None)
            else:
                rec[f.name] = v
        return len(targets)

    def log_deletion(self, name, rid, ts):
        t = _stamp_epoch(ts)
        self.deleted_log[name][rid] = (t, ts)
        if t < self.log_min[name]:
            self.log_min[name] = t

    def reach_start(self, t=None):
        """The oldest minute the recycle bin still holds: bin_days before the current minute."""
        t = common.now() if t is None else t
        return (t // 60) * 60 - float(self.bin_days) * 86400

    def purge(self, name, rids):
        """Physical deletion of rids: bin rows leave the store (queryAll no longer sees them) and their deletions,
        like those of hard-deleted rows, leave the log (/deleted no longer lists them). The log is complete only
        from the minute after the latest deletion removed: earliestDateAvailable (§4.3). Returns the number of
        bin rows removed."""
        log, recs = self.deleted_log[name], self.records[name]
        latest, n = None, 0
        for rid in rids:
            e = log.pop(rid, None)
            rec = recs.get(rid)
            if rec is not None and rec.get("IsDeleted") == "true":
                del recs[rid]
                n += 1
                if e is None:
                    e = (_stamp_epoch(rec["SystemModstamp"]),)
            if e is not None and (latest is None or e[0] > latest):
                latest = e[0]
        if latest is not None:
            cut = (latest // 60) * 60 + 60
            self.purged_until[name] = max(self.purged_until[name] or cut, cut)
        self.log_min[name] = min((e for e, _ in log.values()), default=float("inf"))
        return n

    def empty_bin(self, name, before=None):
        """Empties obj's recycle bin (before: only deletions older than that epoch): every bin row and every logged
        deletion, hard ones included."""
        log = self.deleted_log[name]
        if before is None:
            rids = set(log)
            rids.update(rid for rid, r in self.records[name].items() if r.get("IsDeleted") == "true")
        else:
            rids = [rid for rid, (e, _) in log.items() if e < before]
        return self.purge(name, rids)

    def expire_bin(self, names=None, t=None):
        """Rows stay in the bin bin_days (15), then are purged (§4.2): checked lazily on every read that could see
        them, at no cost until the oldest deletion is due."""
        cutoff = self.reach_start(t)
        for name in (names if names is not None else list(self.deleted_log)):
            if self.log_min[name] < cutoff:
                self.purge(name, [rid for rid, (e, _) in self.deleted_log[name].items() if e < cutoff])

    def earliest_available(self, name, t=None, enabled=None):
        """/deleted's earliestDateAvailable: from when the deletion log of name is complete: not before the bin's
        reach, the latest physical purge, or (enabled) the org's replication enabled date."""
        return max(x for x in (self.reach_start(t), self.purged_until[name], enabled) if x is not None)

    def dump(self):
        return {"counters": self.counters, "auto_counters": self.auto_counters, "records": self.records,
                "deleted_log": self.deleted_log, "purged_until": self.purged_until,
                "formula_defaults": self.formula_defaults}

    def load(self, d):
        self.clear()
        for key, counters in (("counters", self.counters), ("auto_counters", self.auto_counters)):
            for n, c in d.get(key, {}).items():
                if n in counters:
                    counters[n] = c
        for n, recs in d.get("records", {}).items():
            obj = self.schema.objects.get(n)
            if not obj:
                continue
            for rid, rec in recs.items():
                self.records[n][rid] = rec
                if rec.get("IsDeleted") != "true":
                    self.index_add(obj, rec)
                elif "deleted_log" not in d:  # a store written before the log existed: its bin rows
                    self.log_deletion(n, rid, rec.get("SystemModstamp") or common.write_ts())
        for n, log in d.get("deleted_log", {}).items():
            if n in self.deleted_log:
                for rid, (t, ts) in log.items():
                    self.log_deletion(n, rid, ts)
        for n, t in d.get("purged_until", {}).items():
            if n in self.purged_until:
                self.purged_until[n] = t
        self.formula_defaults = {n: dict(v) for n, v in d.get("formula_defaults", {}).items()
                                 if n in self.schema.objects}


@functools.lru_cache(maxsize=4096)
def _stamp_epoch(ts):
    """A stored stamp's epoch second (cached: the rows of one write share their stamp)."""
    return common.ts_epoch(ts)
