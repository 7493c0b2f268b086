#!/usr/bin/python3
"""Measures the emulator's own speed so it is never a benchmark's bottleneck.

  /usr/bin/python3 test/emulator/bench_emulator.py [--rows 1000000] [--upload-mb 100]

Starts an emulator on a free port, then reports:
  * time to accept a ~100 MB upload (PUT with Content-Length, and chunked as jsforce/sf CLI send it)
  * time to process N Lead rows (insert, from UploadComplete to JobComplete) and to fetch successfulResults
  * that other requests keep being served while a job is processing
"""
import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "default_org.json")) as fh:
    TOKEN = json.load(fh)["access_token"]


def lead_rows(n):
    # ~95 bytes a row: 1,000,000 rows stay below the 100 MB a client puts in one job
    yield "External_Id__c,FirstName,LastName,Company,Email,Status,NumberOfEmployees,AnnualRevenue\n"
    for i in range(n):
        yield ("L%07d,First%d,Last%d,Company %d,l%d@example.org,Working - Contacted,%d,%d\n"
               % (i, i, i, i % 5000, i, i % 5000, i * 10 % 9999999))


def cpu_seconds(pid):
    """user+system CPU time of a process (load-independent companion to wall-clock figures)."""
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--upload-mb", type=int, default=100)
    ap.add_argument("--operation", choices=("insert", "upsert"), default="insert",
                    help="upsert runs the rows twice by External_Id__c: creates, then updates")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sfemu-bench-")
    url_file = os.path.join(tmp, "url")
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "sf_emulator"), "--port", "0",
                             "--url-file", url_file], stdout=subprocess.DEVNULL)
    try:
        while not os.path.exists(url_file):
            time.sleep(0.01)
        host, port = open(url_file).read().strip()[len("http://"):].split(":")
        port = int(port)

        def call(method, path, body=None, headers=None, conn=None):
            c = conn or http.client.HTTPConnection(host, port, timeout=600)
            h = {"Authorization": "Bearer " + TOKEN}
            h.update(headers or {})
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            if conn is None:
                c.close()
            return r.status, data

        def create(op="insert"):
            body = {"object": "Lead", "operation": op}
            if op == "upsert":
                body["externalIdFieldName"] = "External_Id__c"
            st, data = call("POST", "/services/data/v62.0/jobs/ingest", json.dumps(body),
                            {"Content-Type": "application/json"})
            assert st == 200, data
            return json.loads(data)["id"]

        # -- 1. upload accept time ----------------------------------------------------------------------------
        target = args.upload_mb * 1000 * 1000
        parts, size = [], 0
        for line in lead_rows(10 ** 9):
            b = line.encode()
            if size + len(b) > target:
                break
            parts.append(b)
            size += len(b)
        blob = b"".join(parts)
        del parts
        jid = create()
        c0 = cpu_seconds(proc.pid)
        t0 = time.time()
        st, _ = call("PUT", "/services/data/v62.0/jobs/ingest/%s/batches" % jid, blob, {"Content-Type": "text/csv"})
        t_put = time.time() - t0
        assert st == 201, st
        print("upload %d bytes (Content-Length): %.2f s wall, %.2f s emulator CPU  (%.0f MB/s)"
              % (len(blob), t_put, cpu_seconds(proc.pid) - c0, len(blob) / t_put / 1e6))
        call("PATCH", "/services/data/v62.0/jobs/ingest/%s" % jid, json.dumps({"state": "Aborted"}),
             {"Content-Type": "application/json"})
        jid = create()
        c = http.client.HTTPConnection(host, port, timeout=600)

        def chunks():
            step = 64 * 1024
            for i in range(0, len(blob), step):
                yield blob[i:i + step]
        c0 = cpu_seconds(proc.pid)
        t0 = time.time()
        c.request("PUT", "/services/data/v62.0/jobs/ingest/%s/batches" % jid, body=chunks(),
                  headers={"Authorization": "Bearer " + TOKEN, "Content-Type": "text/csv"}, encode_chunked=True)
        r = c.getresponse()
        r.read()
        t_chunk = time.time() - t0
        assert r.status == 201, r.status
        print("upload %d bytes (chunked, 64 KiB chunks): %.2f s wall, %.2f s emulator CPU  (%.0f MB/s)"
              % (len(blob), t_chunk, cpu_seconds(proc.pid) - c0, len(blob) / t_chunk / 1e6))
        call("PATCH", "/services/data/v62.0/jobs/ingest/%s" % jid, json.dumps({"state": "Aborted"}),
             {"Content-Type": "application/json"})
        del blob
        call("POST", "/__emulator/reset")

        # -- 2. processing N Lead rows ------------------------------------------------------------------------
        data = "".join(lead_rows(args.rows)).encode()
        for rnd in range(2 if args.operation == "upsert" else 1):
            jid = process(call, create, cpu_seconds, proc, host, port, args, data, rnd)
        del data
        c0 = cpu_seconds(proc.pid)
        t0 = time.time()
        st, body = call("GET", "/services/data/v62.0/jobs/ingest/%s/successfulResults" % jid)
        print("successfulResults (%d bytes): %.2f s wall, %.2f s emulator CPU"
              % (len(body), time.time() - t0, cpu_seconds(proc.pid) - c0))
        print("load average during the run: %s" % open("/proc/loadavg").read().split()[:3])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    return 0


def process(call, create, cpu_seconds, proc, host, port, args, data, rnd):
    if True:
        jid = create(args.operation)
        t0 = time.time()
        st, _ = call("PUT", "/services/data/v62.0/jobs/ingest/%s/batches" % jid, data, {"Content-Type": "text/csv"})
        assert st == 201, st
        print("upload of %d Lead rows (%d bytes): %.2f s" % (args.rows, len(data), time.time() - t0))
        c0 = cpu_seconds(proc.pid)
        t0 = time.time()
        call("PATCH", "/services/data/v62.0/jobs/ingest/%s" % jid, json.dumps({"state": "UploadComplete"}),
             {"Content-Type": "application/json"})
        worst, polls = 0.0, 0
        conn = http.client.HTTPConnection(host, port, timeout=600)
        while True:
            p0 = time.time()
            st, body = call("GET", "/services/data/v62.0/jobs/ingest/%s" % jid, conn=conn)
            worst = max(worst, time.time() - p0)
            polls += 1
            info = json.loads(body)
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            time.sleep(0.2)
        t_proc = time.time() - t0
        what = args.operation + (" (updates)" if rnd else " (creates)" if args.operation == "upsert" else "")
        print("%s of %d Lead rows: %.2f s wall (%.0f rows/s), %.2f s emulator CPU, state %s, processed %d, "
              "failed %d" % (what, args.rows, t_proc, args.rows / t_proc, cpu_seconds(proc.pid) - c0,
                             info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]))
        print("  %d job-info polls during processing, slowest answered in %.3f s" % (polls, worst))
    return jid


if __name__ == "__main__":
    sys.exit(main())
