#!/usr/bin/python3
"""Validates a META.json against the PGXN Meta Spec 1.0.0 (https://pgxn.org/spec/), standard library only.

    validate_meta.py META.json [--control sf_bulk.control] [--zip sf_bulk-X.zip]
    validate_meta.py --self-test

The rules are the spec's: the required keys, what each known key may hold (terms, SemVer versions, version
ranges, licenses from the spec's list, the prereqs phases and relationships, resources, no_index, tags), and no
unknown key at any level that the spec closes, except custom keys starting with x_ or X_. Beyond the spec, for
this distribution: --control checks that provides.<extension>.version is the control file's default_version
read as SemVer (1.3 -> 1.3.0), --zip that every file META.json names is in the release archive, under its one
top directory <name>-<version>/.

Prints `ok - …` / `not ok - …` lines (scripts/test counts them); exits 1 when one fails. --self-test feeds the
validator documents that break one rule each and checks that each is refused for that rule, so a validator that
accepts everything cannot pass.
"""

import argparse
import copy
import json
import os
import re
import sys
import zipfile

# SemVer 2.0.0 (semver.org's regular expression): the spec's Version type.
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
# Version Range: a version (at least that version), optionally after an operator; several joined by commas; 0 is any.
RANGE_OP = re.compile(r"^(?:(==|!=|<=|>=|<|>)\s*)?(.+)$")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2", "gfdl_1_3",
    "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown",
}
REQUIRED = ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec")
OPTIONAL = ("description", "generated_by", "tags", "no_index", "prereqs", "release_status", "resources")
PHASES = ("configure", "build", "test", "runtime", "develop")
RELATIONSHIPS = ("requires", "recommends", "suggests", "conflicts")
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_custom(key):
    return isinstance(key, str) and len(key) > 2 and key[:2] in ("x_", "X_")


def is_term(v):
    # At least two characters, no slash, backslash, whitespace or control character.
    return isinstance(v, str) and len(v) >= 2 and not re.search(r"[/\\\s\x00-\x1f\x7f]", v)


def is_tag(v):
    return isinstance(v, str) and 1 <= len(v) <= 255 and not re.search(r"[/\\\x00-\x1f\x7f]", v)


def is_path(v):
    # A relative path with unix separators that stays inside the distribution.
    return (isinstance(v, str) and v != "" and not v.startswith("/") and "\\" not in v
            and ".." not in v.split("/"))


def is_semver(v):
    return isinstance(v, str) and SEMVER.match(v) is not None


def is_version_range(v):
    if v == 0 or v == "0":
        return True
    if not isinstance(v, str):
        return False
    for part in v.split(","):
        m = RANGE_OP.match(part.strip())
        if not m or not is_semver(m.group(2).strip()):
            return False
    return True


def closed(obj, allowed, where, errors):
    """Every key of obj is one of allowed or a custom x_/X_ key."""
    for key in obj:
        if key not in allowed and not is_custom(key):
            errors.append("%s: unknown key %r (custom keys start with x_ or X_)" % (where, key))


def validate(meta):
    """Returns the list of rule violations of a META.json document (empty: valid)."""
    errors = []
    if not isinstance(meta, dict):
        return ["the document is not a JSON object"]
    for key in REQUIRED:
        if key not in meta:
            errors.append("required key %r is missing" % key)
    closed(meta, REQUIRED + OPTIONAL, "top level", errors)

    if "name" in meta and not is_term(meta["name"]):
        errors.append("name: %r is not a term (2+ characters, no slash, backslash, space or control)" % meta["name"])
    for key in ("abstract", "description", "generated_by"):
        if key in meta and not (isinstance(meta[key], str) and meta[key]):
            errors.append("%s: must be a non-empty string" % key)
    if "version" in meta and not is_semver(meta["version"]):
        errors.append("version: %r is not a semantic version" % (meta["version"],))

    if "maintainer" in meta:
        m = meta["maintainer"]
        items = m if isinstance(m, list) else [m]
        if (isinstance(m, list) and not m) or not all(isinstance(x, str) and x for x in items):
            errors.append("maintainer: must be a non-empty string or a non-empty list of them")
        elif isinstance(m, list) and len(set(m)) != len(m):
            errors.append("maintainer: duplicate entries")

    if "license" in meta:
        lic = meta["license"]
        if isinstance(lic, str):
            if lic not in LICENSES:
                errors.append("license: %r is not one of the spec's license strings" % lic)
        elif isinstance(lic, list):
            bad = [x for x in lic if x not in LICENSES]
            if not lic or bad:
                errors.append("license: %r is not a non-empty list of the spec's license strings" % (bad or lic,))
        elif isinstance(lic, dict):
            if not lic or not all(isinstance(v, str) and URI.match(v) for v in lic.values()):
                errors.append("license: an object must map license names to URIs")
        else:
            errors.append("license: must be a string, a list or an object")

    if "provides" in meta:
        p = meta["provides"]
        if not isinstance(p, dict) or not p:
            errors.append("provides: must be a non-empty object")
        else:
            for ext, spec in p.items():
                where = "provides.%s" % ext
                if not is_term(ext):
                    errors.append("%s: the extension name is not a term" % where)
                if not isinstance(spec, dict):
                    errors.append("%s: must be an object" % where)
                    continue
                closed(spec, ("file", "version", "abstract", "docfile"), where, errors)
                for key in ("file", "version"):
                    if key not in spec:
                        errors.append("%s: required key %r is missing" % (where, key))
                if "version" in spec and not is_semver(spec["version"]):
                    errors.append("%s.version: %r is not a semantic version" % (where, spec["version"]))
                for key in ("file", "docfile"):
                    if key in spec and not is_path(spec[key]):
                        errors.append("%s.%s: %r is not a relative unix path" % (where, key, spec[key]))
                if "abstract" in spec and not (isinstance(spec["abstract"], str) and spec["abstract"]):
                    errors.append("%s.abstract: must be a non-empty string" % where)

    if "meta-spec" in meta:
        ms = meta["meta-spec"]
        if not isinstance(ms, dict):
            errors.append("meta-spec: must be an object")
        else:
            closed(ms, ("version", "url"), "meta-spec", errors)
            if not re.match(r"^1\.0\.\d+$", str(ms.get("version", ""))) or not isinstance(ms.get("version"), str):
                errors.append("meta-spec.version: %r is not 1.0.x" % (ms.get("version"),))
            if "url" in ms and ms["url"] not in ("https://pgxn.org/meta/spec.txt", "http://pgxn.org/meta/spec.txt"):
                errors.append("meta-spec.url: %r is not the spec's URL" % ms["url"])

    if "tags" in meta:
        t = meta["tags"]
        if not isinstance(t, list) or not t or not all(is_tag(x) for x in t):
            errors.append("tags: must be a non-empty list of tags (1-255 characters, no slash, backslash, control)")
        elif len(set(t)) != len(t):
            errors.append("tags: duplicate entries")

    if "no_index" in meta:
        ni = meta["no_index"]
        if not isinstance(ni, dict) or not ni:
            errors.append("no_index: must be a non-empty object")
        else:
            closed(ni, ("file", "directory"), "no_index", errors)
            for key in ("file", "directory"):
                v = ni.get(key, [])
                v = [v] if isinstance(v, str) else v
                if not isinstance(v, list) or not all(is_path(x) for x in v):
                    errors.append("no_index.%s: must be a path or a list of paths" % key)

    if "prereqs" in meta:
        pr = meta["prereqs"]
        if not isinstance(pr, dict) or not pr:
            errors.append("prereqs: must be a non-empty object")
        else:
            closed(pr, PHASES, "prereqs", errors)
            for phase, rels in pr.items():
                if is_custom(phase):
                    continue
                where = "prereqs.%s" % phase
                if not isinstance(rels, dict) or not rels:
                    errors.append("%s: must be a non-empty object of relationships" % where)
                    continue
                closed(rels, RELATIONSHIPS, where, errors)
                for rel, reqs in rels.items():
                    if is_custom(rel):
                        continue
                    w = "%s.%s" % (where, rel)
                    if not isinstance(reqs, dict) or not reqs:
                        errors.append("%s: must map extension names to version ranges" % w)
                        continue
                    for name, rng in reqs.items():
                        if not is_term(name):
                            errors.append("%s: %r is not a term" % (w, name))
                        if not is_version_range(rng):
                            errors.append("%s.%s: %r is not a version range" % (w, name, rng))

    if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
        errors.append("release_status: %r is not stable, testing or unstable" % (meta["release_status"],))

    if "resources" in meta:
        r = meta["resources"]
        if not isinstance(r, dict) or not r:
            errors.append("resources: must be a non-empty object")
        else:
            closed(r, ("homepage", "bugtracker", "repository"), "resources", errors)
            if "homepage" in r and not (isinstance(r["homepage"], str) and URI.match(r["homepage"])):
                errors.append("resources.homepage: must be a URI")
            bt = r.get("bugtracker")
            if bt is not None:
                if not isinstance(bt, dict) or not bt:
                    errors.append("resources.bugtracker: must be a non-empty object")
                else:
                    closed(bt, ("web", "mailto"), "resources.bugtracker", errors)
                    if "web" in bt and not (isinstance(bt["web"], str) and URI.match(bt["web"])):
                        errors.append("resources.bugtracker.web: must be a URI")
                    if "mailto" in bt and not (isinstance(bt["mailto"], str) and EMAIL.match(bt["mailto"])):
                        errors.append("resources.bugtracker.mailto: must be an email address")
            repo = r.get("repository")
            if repo is not None:
                if not isinstance(repo, dict) or not repo:
                    errors.append("resources.repository: must be a non-empty object")
                else:
                    closed(repo, ("url", "web", "type"), "resources.repository", errors)
                    for key in ("url", "web"):
                        if key in repo and not (isinstance(repo[key], str) and URI.match(repo[key])):
                            errors.append("resources.repository.%s: must be a URI" % key)
                    if "type" in repo and not (isinstance(repo["type"], str) and re.match(r"^[a-z]+$", repo["type"])):
                        errors.append("resources.repository.type: must be a lower-case word such as git")
    return errors


def control_default_version(path):
    with open(path) as fh:
        m = re.search(r"^default_version\s*=\s*'([^']*)'", fh.read(), re.M)
    return m.group(1) if m else None


def as_semver(v):
    """An extension version as SemVer: 1.3 -> 1.3.0, 2 -> 2.0.0."""
    parts = v.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts))) if len(parts) < 3 else v


def files_named(meta):
    for ext, spec in (meta.get("provides") or {}).items():
        for key in ("file", "docfile"):
            if isinstance(spec, dict) and key in spec:
                yield "provides.%s.%s" % (ext, key), spec[key]


def report(name, problems):
    if problems:
        print("not ok - %s" % name)
        for p in problems:
            print("#   %s" % p)
    else:
        print("ok - %s" % name)
    return not problems


def check(meta_path, control=None, zip_path=None):
    with open(meta_path, "rb") as fh:
        meta = json.loads(fh.read().decode("utf-8"))
    good = report("META.json validates against the PGXN Meta Spec 1.0.0", validate(meta))
    if control:
        want = as_semver(control_default_version(control) or "")
        got = {ext: spec.get("version") for ext, spec in meta.get("provides", {}).items()}
        name = meta.get("name")
        good &= report("provides.%s.version is %s's default_version as SemVer (%s)" % (name, os.path.basename(control), want),
                       [] if got.get(name) == want else ["provides versions: %r" % got])
    if zip_path:
        with zipfile.ZipFile(zip_path) as z:
            members = set(z.namelist())
        top = "%s-%s/" % (meta.get("name"), meta.get("version"))
        outside = sorted(m for m in members if not m.startswith(top))
        good &= report("every entry of %s is under its one top directory %s" % (os.path.basename(zip_path), top),
                       ["outside: %s" % ", ".join(outside[:5])] if outside else [])
        missing = ["%s: %s" % (k, v) for k, v in files_named(meta) if top + v not in members]
        if top + "META.json" not in members:
            missing.append("META.json itself")
        good &= report("the archive holds every file META.json names (and META.json)", missing)
    return good


def self_test():
    """Each mutation of a valid document breaks one rule; the validator must refuse it naming that rule."""
    base = {
        "name": "sf_bulk", "abstract": "a", "version": "1.3.0", "maintainer": ["m <m@example.org>"],
        "license": "postgresql", "provides": {"sf_bulk": {"file": "extension/sf_bulk--1.3.sql", "version": "1.3.0"}},
        "prereqs": {"runtime": {"requires": {"PostgreSQL": "15.0.0"}, "recommends": {"pg_cron": "1.4.0"}}},
        "resources": {"homepage": "https://pgxn.org/dist/sf_bulk/", "bugtracker": {"web": "https://example.org/"}},
        "tags": ["etl"], "meta-spec": {"version": "1.0.0", "url": "https://pgxn.org/meta/spec.txt"},
    }

    def drop(key):
        return lambda m: m.pop(key)

    def put(path, value):
        def f(m):
            *parents, last = path
            for p in parents:
                m = m[p]
            m[last] = value
        return f

    cases = [("required %s" % k, drop(k), "required key '%s'" % k) for k in REQUIRED]
    cases += [
        ("two-part version", put(["version"], "1.3"), "version: '1.3' is not a semantic version"),
        ("leading zero in version", put(["version"], "1.03.0"), "version: '1.03.0'"),
        ("unknown top-level key", put(["homepage"], "https://x.org/"), "top level: unknown key 'homepage'"),
        ("custom top-level key is allowed", put(["x_ci"], {"any": 1}), None),
        ("license not in the list", put(["license"], "PostgreSQL"), "license: 'PostgreSQL' is not one"),
        ("license list with an unknown one", put(["license"], ["mit", "wtfpl"]), "license: ['wtfpl']"),
        ("license object with a URI", put(["license"], {"PostgreSQL": "https://www.postgresql.org/about/licence"}),
         None),
        ("provides without file", lambda m: m["provides"]["sf_bulk"].pop("file"),
         "provides.sf_bulk: required key 'file'"),
        ("provides version not semver", put(["provides", "sf_bulk", "version"], "1.3"),
         "provides.sf_bulk.version: '1.3'"),
        ("provides unknown key", put(["provides", "sf_bulk", "schema"], "x"), "provides.sf_bulk: unknown key 'schema'"),
        ("provides absolute file", put(["provides", "sf_bulk", "file"], "/etc/passwd"),
         "provides.sf_bulk.file: '/etc/passwd'"),
        ("name with a space", put(["name"], "sf bulk"), "name: 'sf bulk' is not a term"),
        ("meta-spec 2.0.0", put(["meta-spec", "version"], "2.0.0"), "meta-spec.version: '2.0.0' is not 1.0.x"),
        ("unknown prereqs phase", put(["prereqs", "install"], {"requires": {"x": 0}}),
         "prereqs: unknown key 'install'"),
        ("unknown relationship", put(["prereqs", "runtime", "needs"], {"x": 0}),
         "prereqs.runtime: unknown key 'needs'"),
        ("version range not semver", put(["prereqs", "runtime", "requires", "PostgreSQL"], "15"),
         "prereqs.runtime.requires.PostgreSQL: '15' is not a version range"),
        ("version range with operators", put(["prereqs", "runtime", "requires", "PostgreSQL"], ">= 15.0.0, < 18.0.0"),
         None),
        ("version range 0 (any)", put(["prereqs", "runtime", "requires", "plpgsql"], 0), None),
        ("relationship not an object", put(["prereqs", "runtime", "requires"], ["PostgreSQL"]),
         "prereqs.runtime.requires: must map"),
        ("unknown resources key", put(["resources", "docs"], "https://x.org/"), "resources: unknown key 'docs'"),
        ("empty maintainer list", put(["maintainer"], []), "maintainer: must be"),
        ("tag with a slash", put(["tags"], ["a/b"]), "tags: must be"),
        ("release_status", put(["release_status"], "final"), "release_status: 'final'"),
    ]
    good = report("self-test: the base document is valid", validate(base))
    for name, mutate, expect in cases:
        doc = copy.deepcopy(base)
        mutate(doc)
        errors = validate(doc)
        if expect is None:
            good &= report("self-test: %s" % name, errors)
        else:
            hit = [e for e in errors if expect in e]
            good &= report("self-test: refused: %s" % name,
                           [] if hit else ["expected an error containing %r, got %r" % (expect, errors)])
    return good


def main(argv):
    ap = argparse.ArgumentParser(description="Validates META.json against the PGXN Meta Spec 1.0.0.")
    ap.add_argument("meta", nargs="?", help="the META.json to check")
    ap.add_argument("--control", help="the extension's control file (provides.<name>.version must follow it)")
    ap.add_argument("--zip", help="the release archive (must hold every file META.json names)")
    ap.add_argument("--self-test", action="store_true", help="check the validator itself against broken documents")
    args = ap.parse_args(argv[1:])
    if args.self_test:
        return 0 if self_test() else 1
    if not args.meta:
        ap.error("META.json path required")
    return 0 if check(args.meta, args.control, args.zip) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
