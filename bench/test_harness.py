#!/usr/bin/env python3
"""Unit tests of bench/harness.py's accounting: what counts as an answer, what fails a run,
which revision a binary reports, and the allocator comparison. Standard library only; run by
bench/run.sh before any measurement.   Usage: bench/test_harness.py [unittest args]"""

import os
import tempfile
import unittest
from pathlib import Path

import harness


def wrk_summary(requests, status=0, read=0):
    return {"requests": requests, "duration_us": 1_000_000, "bytes": 0,
            "errors": {"connect": 0, "read": read, "write": 0, "status": status, "timeout": 0},
            "latency_us": {"p50": 1, "p90": 1, "p99": 1, "max": 1, "mean": 1.0}}


def route(rps, cpu, errors=0, requests=1000):
    return {"rps": rps, "server_cpu_us_per_req": cpu, "errors": errors, "requests": requests,
            "error_detail": {"status": errors}}


def server(health, root, **phases):
    return {"routes": {"/health": health, "/": root}, **phases}


class Answers(unittest.TestCase):
    def test_error_answers_are_not_requests(self):
        r = harness.wrk_result(wrk_summary(1000, status=400))
        self.assertEqual((r["requests"], r["answers"]), (600, 1000))
        self.assertEqual(r["errors"]["status"], 400)

    def test_clean_run_keeps_every_answer(self):
        self.assertEqual(harness.wrk_result(wrk_summary(1000))["requests"], 1000)


class Problems(unittest.TestCase):
    def test_a_clean_run_has_none(self):
        res = {"servers": {"api": server(route(1, 1), route(1, 1))}}
        self.assertEqual(harness.problems(res, []), [])

    def test_errors_fail_every_phase(self):
        for phase in ("routes", "fixed_rate", "fixed_rate_idle"):
            with self.subTest(phase=phase):
                s = server(route(1, 1), route(1, 1))
                s[phase] = {"/health": route(1, 1, errors=3)}
                found = harness.problems({"servers": {"api": s}}, [])
                self.assertEqual(len(found), 1)
                self.assertIn(f"api {phase} /health: 3 errors", found[0])

    def test_no_answer_fails(self):
        res = {"servers": {"api": server(route(0, None, requests=0), route(1, 1))}}
        self.assertEqual(len(harness.problems(res, [])), 1)

    def test_lost_access_lines_and_failed_servers_fail(self):
        s = server(route(1, 1), route(1, 1))
        s["access_log"] = {"lines": 9, "answered": 10}
        found = harness.problems({"servers": {"api": s}}, ["bare: did not start"])
        self.assertEqual(found, ["bare: did not start", "api: 9 access lines for 10 answers on /"])


class Revision(unittest.TestCase):
    def binary(self, text):
        d = tempfile.mkdtemp()
        path = Path(d) / "datapress-api"
        path.write_text(f"#!/bin/sh\n[ \"$1\" = version ] && echo '{text}'\n")
        path.chmod(0o755)
        self.addCleanup(lambda: (path.unlink(), os.rmdir(d)))
        return str(path)

    def test_reads_the_revision(self):
        self.assertEqual(harness.binary_revision(self.binary("datapress-api 1.0.0 (0123abc)")), "0123abc")

    def test_anything_else_is_no_revision(self):
        self.assertTrue(harness.binary_revision(self.binary("garbage")).startswith("none"))
        self.assertTrue(harness.binary_revision("/nonexistent/datapress-api").startswith("none"))


class Allocators(unittest.TestCase):
    def test_shipped_against_the_best_on_its_worst_route(self):
        servers = {
            "api": server(route(95, 10), route(100, 20)),
            "api-musl-system": server(route(50, 30), route(40, 40)),
            "api-glibc": server(route(100, 9), route(90, 22)),
        }
        got = harness.allocator_vs_best(servers, "routes")
        self.assertAlmostEqual(got["alloc_rps_vs_best"], 0.95)
        self.assertAlmostEqual(got["alloc_cpu_vs_best"], 10 / 9)
        self.assertEqual(harness.verdict("alloc_rps_vs_best", got["alloc_rps_vs_best"]), "PASS")
        self.assertEqual(harness.verdict("alloc_cpu_vs_best", got["alloc_cpu_vs_best"]), "MISS")

    def test_imposed_rate_cpu_when_measured(self):
        fixed = {"fixed_rate": {"/health": route(0, 5), "/": route(0, 5)}}
        servers = {"api": server(route(1, 50), route(1, 50), **fixed),
                   "api-glibc": server(route(1, 1), route(1, 1), fixed_rate={"/health": route(0, 10), "/": route(0, 10)})}
        self.assertAlmostEqual(harness.allocator_vs_best(servers, "fixed_rate")["alloc_cpu_vs_best"], 1.0)

    def test_nothing_to_compare(self):
        got = harness.allocator_vs_best({"api": server(route(1, 1), route(1, 1))}, "routes")
        self.assertEqual(got, {"alloc_rps_vs_best": None, "alloc_cpu_vs_best": None})


if __name__ == "__main__":
    unittest.main(verbosity=1)
