"""The emulated org's state: settings, record store, jobs, tokens, usage counters and the request log."""

import collections
import json
import os
import threading

from . import auth, common
from .common import EMU_DIR, ORG_ID, USER_ID, ApiError
from .faults import Faults
from .store import Schema, Store


DEFAULT_CONFIG = {
    "processing_delay_ms": 0,       # queue wait before a job leaves UploadComplete
    "batch_delay_ms": 0,            # extra time per internal batch ("slow processing")
    "batch_size": 10000,            # internal batch size
    "token_ttl_seconds": 7200,      # lifetime of tokens issued by the token endpoint
    "daily_api_limit": 15000,
    "daily_records_limit": 150000000,
    "daily_batches_limit": 15000,
    "daily_query_jobs_limit": 10000,
    "limits_per_app": False,        # /limits nests a per-connected-app entry (docs/soql-and-rest.md §5.2)
    "daily_query_result_kb_limit": 1000000000,  # query result volume per 24 h (docs/bulk-api-2.md §9.1, §10)
    "shuffle_results": True,
    "seed": 1,
    "lock_failure_fraction": 0.0,
    "next_job_fails": None,         # null | true | {"after_batches": K, "message": "..."}
    "stuck_jobs": False,
    "hard_delete_allowed": True,
    "second_upload_mode": "put",   # "put": 2nd PUT -> 400 BULK_API_ERROR; "close": accepted, close -> 400
    "max_upload_bytes": 150000000,  # limit on the base64-encoded size of one upload (Salesforce: 150 MB)
    "query_page_size": 100000,      # default rows per results page when maxRecords is absent
    "result_pages_per_call": 5,     # resultPages links per call (Salesforce: up to 5)
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
    # SOQL `!=`, NOT IN, EXCLUDES keep rows whose value is null (two-valued, docs/soql-and-rest.md §2.4);
    # false: SQL's three-valued logic (a comparison with null is unknown), for a client that must work either way
    "soql_not_equal_keeps_nulls": True,
    # REST /query paging (docs/soql-and-rest.md §1.1, §1.3)
    "rest_query_batch_size": 2000,      # rows per page without Sforce-Query-Options
    "rest_query_min_batch_size": 200,   # the floor a batchSize is clamped to (Salesforce: 200)
    "query_cursor_ttl_seconds": 172800,  # an open cursor's life from its first page (two days); null = forever
    "max_query_cursors": 1000,          # open cursors kept; the oldest is evicted beyond this
    # request target > N bytes: 414; target + header lines > N: 431 (docs/soql-and-rest.md §1.6); 0 = no limit
    "max_request_head_bytes": 16384,
    # change tracking (docs/soql-and-rest.md §4.2, §4.3)
    "recycle_bin_days": 15,             # deleted rows stay in the bin this long, then are purged
    "updated_reach_days": 30,           # /updated/ answers for starts up to this far back
    "replication_id_limit": 600000,     # more ids in one /updated/ or /deleted/ window: EXCEEDED_ID_LIMIT
    "replication_enabled_date": None,   # ISO date-time: starts before it get "...before org replication enabled date"
    "replication_settle_seconds": 0,    # latestDateCovered stays this far behind the clock (commits in flight)
    "not_replicable_error_code": "INVALID_TYPE",  # errorCode of "sObject type X is not replicable" (unverified)
    "deleted_before_earliest_fails": False,  # /deleted/ with start < earliestDateAvailable: error, not an answer
}


class Emulator:
    def __init__(self, args):
        self.args = args
        self.schema = Schema(args.metadata)
        with open(os.path.join(EMU_DIR, "default_org.json"), "r", encoding="utf-8") as fh:
            self.org = json.load(fh)
        self.lock = threading.RLock()
        self.store = Store(self.schema)
        self.faults = Faults()
        self.log_lock = threading.Lock()
        self.base_url = None
        self.pubkey = self.load_public_key(args.jwt_cert or os.path.join(EMU_DIR, self.org["jwt"]["certificate"]))
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
            if self.schema.edited:  # back to the metadata file, with describes newer than the edited ones
                self.schema = Schema(self.args.metadata, after=self.schema.modified())
                self.store.schema = self.schema
            self.store.clear()
            self.seed_records()
            self.log = []
            self.log_seq = 0
            self.api_used = 0
            self.records_used = 0
            self.batches_used = 0
            self.query_jobs_used = 0
            self.query_storage_kb = 0
            self.record_counts = None  # /limits/recordCount snapshot {object: count}; None: live counts
            self.cursors = collections.OrderedDict()  # REST query cursors by locator, oldest first
            self.cursor_counter = getattr(self, "cursor_counter", 0)  # never reset: locators are not reused
            self.faults.clear()
            auth.reset_tokens(self)
            self.config = dict(DEFAULT_CONFIG)
            self.config.update(self.startup_config)
            common.reset_clock()
            self.store.bin_days = self.config["recycle_bin_days"]

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


    # -- limits ----------------------------------------------------------------------------------------------
    def limit_header(self):
        return "api-usage=%d/%d" % (self.api_used, self.config["daily_api_limit"])

    def count_call(self):
        with self.lock:
            if self.api_used >= self.config["daily_api_limit"]:
                raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", core=True)
            self.api_used += 1
            if self.calls_until_expiry is not None:
                self.calls_until_expiry -= 1
                if self.calls_until_expiry <= 0:
                    self.calls_until_expiry = None
                    auth.expire_tokens(self)
