#!/usr/bin/python3
"""Measures the emulator's read path: seed N Accounts through the admin API, run a Bulk API 2.0 query job over
them and download every result page (docs/bulk-api-2.md §9.3).

  /usr/bin/python3 test/emulator/bench_query.py [--rows 1000000] [--max-records N] [--parallel K]

Prints wall-clock seconds of each step and the emulator's CPU seconds. --parallel K fetches the pages listed by
resultPages (58.0+) with K connections instead of following Sforce-Locator one page after the other.
"""
import argparse
import http.client
import json
import os
import subprocess
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "default_org.json")) as fh:
    TOKEN = json.load(fh)["access_token"]
SOQL = "SELECT Id, Name, External_Id__c, NumberOfEmployees, Industry, CreatedDate, Owner.Email FROM Account"


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--max-records", type=int, default=None, help="maxRecords per page (default: the emulator's)")
    ap.add_argument("--parallel", type=int, default=0, help="download the resultPages links with K connections")
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

        def call(method, path, body=None, conn=None):
            c = conn or http.client.HTTPConnection(host, port, timeout=600)
            h = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
            c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
            r = c.getresponse()
            data = r.read()
            if conn is None:
                c.close()
            return r, data

        cpu0 = cpu_seconds(proc.pid)
        t0 = time.time()
        r, data = call("POST", "/__emulator/records/Account", {"generate": {"count": args.rows, "values": {
            "Name": "Account {n}", "External_Id__c": "A{n}", "NumberOfEmployees": 42, "Industry": "Banking"}}})
        assert r.status == 200, data
        t_seed = time.time() - t0
        cpu_seed = cpu_seconds(proc.pid) - cpu0

        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        r, data = call("POST", "/services/data/v62.0/jobs/query", {"operation": "query", "query": SOQL})
        assert r.status == 200, data
        jid = json.loads(data)["id"]
        conn = http.client.HTTPConnection(host, port, timeout=600)
        while True:
            r, data = call("GET", "/services/data/v62.0/jobs/query/" + jid, conn=conn)
            info = json.loads(data)
            if info["state"] in ("JobComplete", "Failed", "Aborted"):
                break
            time.sleep(0.05)
        assert info["state"] == "JobComplete", info
        t_job = time.time() - t0
        cpu_job = cpu_seconds(proc.pid) - cpu0

        cpu0, t0 = cpu_seconds(proc.pid), time.time()
        size = "&maxRecords=%d" % args.max_records if args.max_records else ""
        base = "/services/data/v62.0/jobs/query/%s/" % jid
        total, nbytes, pages = 0, 0, 0
        if args.parallel:
            urls, nxt = [], base + "resultPages?" + size.lstrip("&")
            while nxt:
                r, data = call("GET", nxt, conn=conn)
                body = json.loads(data)
                urls += [p["resultUrl"] for p in body["resultPages"]]
                nxt = None if body["done"] else body["nextRecordsUrl"]
            lock = threading.Lock()
            counts = []

            def worker():
                c = http.client.HTTPConnection(host, port, timeout=600)
                while True:
                    with lock:
                        if not urls:
                            return
                        u = urls.pop(0)
                    rr, d = call("GET", u, conn=c)
                    assert rr.status == 200, d[:200]
                    with lock:
                        counts.append((int(rr.getheader("Sforce-NumberOfRecords")), len(d)))
            ts = [threading.Thread(target=worker) for _ in range(args.parallel)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            total, nbytes, pages = sum(c for c, _ in counts), sum(b for _, b in counts), len(counts)
        else:
            loc = None
            while True:
                r, data = call("GET", base + "results?" + (("locator=" + loc) if loc else "") + size, conn=conn)
                assert r.status == 200, data[:200]
                total += int(r.getheader("Sforce-NumberOfRecords"))
                nbytes += len(data)
                pages += 1
                loc = r.getheader("Sforce-Locator")
                if loc == "null":
                    break
        t_dl = time.time() - t0
        cpu_dl = cpu_seconds(proc.pid) - cpu0
        assert total == args.rows, (total, args.rows)
        print("seed %d Accounts (admin generate):   %6.2f s wall, %6.2f s emulator CPU" % (args.rows, t_seed, cpu_seed))
        print("query job create -> JobComplete:     %6.2f s wall, %6.2f s emulator CPU" % (t_job, cpu_job))
        print("download %d pages, %d rows, %.0f MB: %6.2f s wall, %6.2f s emulator CPU"
              % (pages, total, nbytes / 1e6, t_dl, cpu_dl))
        print("query + download total:              %6.2f s wall" % (t_job + t_dl))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
