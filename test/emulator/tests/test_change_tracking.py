"""Change tracking against docs/soql-and-rest.md §4.1, §4.2, §4.5 and §6 "Change tracking": SystemModstamp on every
write from the emulator clock (set, advanced, frozen, skewed), LastModifiedDate only on user writes, the recycle
bin (soft delete, undelete, hard delete, purge, expiry), merges with MasterRecordId, formula values that change
without a stamp. /updated/ and /deleted/ are in test_replication.py."""

import email.utils
import unittest

from emu import EmuTestCase

T0 = "2025-11-01T00:00:00.000Z"


def ts(minutes=0, seconds=0):
    """T0 plus an offset, as the store writes date-times."""
    s = minutes * 60 + seconds
    return "2025-11-01T%02d:%02d:%02d.000Z" % (s // 3600, s // 60 % 60, s % 60)


class ClockCase(EmuTestCase):
    def setUp(self):
        EmuTestCase.setUp(self)
        self.at(T0)

    def at(self, iso):
        """The emulator clock at iso, standing still (every write stamped exactly so)."""
        return self.admin("POST", "/clock", {"set": iso, "freeze": True})

    def later(self, seconds):
        return self.admin("POST", "/clock", {"advance_seconds": seconds})

    def rec(self, obj, rid):
        return next(r for r in self.records(obj) if r["Id"] == rid)

    def seed(self, obj, *recs):
        return self.admin("POST", "/records/" + obj, list(recs))["ids"]

    def soql(self, q, all_rows=False):
        import urllib.parse
        r = self.api("GET", "/%s?q=%s" % ("queryAll" if all_rows else "query", urllib.parse.quote(q)))
        self.assertEqual(r.status, 200, r.text)
        return r.json()["records"]


class Clock(ClockCase):
    def test_clock_can_be_set_frozen_advanced_and_read(self):
        st = self.admin("GET", "/clock")
        self.assertEqual((st["now"], st["frozen"]), (T0, True))
        self.assertEqual(self.later(90)["now"], ts(1, 30))
        st = self.admin("POST", "/clock", {"freeze": False})
        self.assertFalse(st["frozen"])
        self.assertIn(st["now"], (ts(1, 30), ts(1, 31)))  # runs on from where it stood
        r = self.request("POST", "/__emulator/clock", {"sett": T0}, token=None)
        self.assertEqual(r.status, 400, r.text)

    def test_reset_puts_the_clock_back(self):
        self.admin("POST", "/clock", {"skew_seconds": 30})
        self.admin("POST", "/reset")
        st = self.admin("GET", "/clock")
        self.assertEqual((st["frozen"], st["skew_seconds"], st["offset_seconds"]), (False, 0.0, 0.0))

    def test_date_header_follows_the_emulator_clock(self):
        """A client takes "now" from the server's Date header (§4.4 step 1): it must be the records' clock."""
        r = self.api("GET", "/limits")
        self.assertEqual(email.utils.parsedate_to_datetime(r.headers["Date"]).isoformat(), "2025-11-01T00:00:00+00:00")


if __name__ == "__main__":
    unittest.main()
