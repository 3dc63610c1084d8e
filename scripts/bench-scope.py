#!/usr/bin/env python3
"""Benchmarks of choosing what a connection reads (issue 10), against the release build and a fake
GitLab with 10,000 projects in 500 nested groups answering every request after 50 ms:

  1. discovery: GitLab 17.4+ (associations) and older GitLab (group and project listings), median of
     3 refreshes, against the request chain it cannot avoid (the first page, then the rest with at
     most 4 in flight);
  2. the preview of 100 projects (400 counts);
  3. the picker's first page: server time (loopback) and HTML size;
  4. the server's resident memory before the first list and after three, with pages served.

Prints a Markdown section for BENCHMARKS.md (scripts/bench-section.py scope). Run by scripts/bench.sh
after `make build`; needs nothing but Python's standard library."""
import http.cookiejar
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LATENCY_MS = int(os.environ.get("SCOPE_LATENCY_MS", "50"))
GROUPS, PROJECTS, IN_FLIGHT, PER_PAGE = 500, 10_000, 4, 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url):
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"{url} did not come up")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Client:
    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)
        self.bearer = None

    def call(self, method, path, body=None, form=None, accept="application/json"):
        headers = {"accept": accept, "origin": self.base}
        data = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["content-type"] = "application/json"
        if self.bearer:
            headers["authorization"] = f"Bearer {self.bearer}"
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with self.opener.open(request, timeout=120) as r:
                return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    work = tempfile.mkdtemp()
    procs = []
    try:
        fakes = {}
        for name, extra in (("associations", []), ("listings", ["--no-associations"])):
            port = free_port()
            procs.append(subprocess.Popen(
                [f"{ROOT}/target/release/fake-gitlab", "--port", str(port), "--latency-ms", str(LATENCY_MS),
                 "--groups", str(GROUPS), "--projects", str(PROJECTS), *extra],
                stdout=subprocess.DEVNULL))
            fakes[name] = f"http://127.0.0.1:{port}"
            wait_for(fakes[name] + "/users/sign_in")
        port = free_port()
        env = dict(os.environ, ONRAMP_DATA_DIR=f"{work}/data", LEPTOS_SITE_ADDR=f"127.0.0.1:{port}",
                   DATABASE_URL="", ONRAMP_SECRET_KEY="", ONRAMP_OUTBOUND_ALLOW="127.0.0.1",
                   ONRAMP_CHECK_RATE_PER_MIN="100000", ONRAMP_SIGNUPS_PER_IP_PER_HOUR="100000", RUST_LOG="warn")
        onramp = subprocess.Popen([f"{ROOT}/target/release/onramp"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(onramp)
        base = f"http://127.0.0.1:{port}"
        wait_for(base + "/healthz")
        time.sleep(1)
        rtts = []
        for _ in range(10):
            start = time.perf_counter()
            urllib.request.urlopen(urllib.request.Request(fakes["associations"] + "/api/v4/user",
                                                          headers={"PRIVATE-TOKEN": "glpat-good"})).read()
            rtts.append((time.perf_counter() - start) * 1000)
        rtt = statistics.median(rtts)

        results = {}
        rss_before = None
        pages = {}
        for name, fake in fakes.items():
            c = Client(base)
            status, _, _ = c.call("POST", "/api/auth/signup", accept="text/html",
                                  form={"email": f"{name}@example.com", "password": "correct horse battery staple",
                                        "next": "/"})
            assert status in (302, 303), status
            if rss_before is None:
                rss_before = rss_kib(onramp.pid)
            status, headers, _ = c.call("POST", "/api/gitlab/validate", accept="text/html",
                                        form={"base_url": fake, "token": "glpat-good"})
            check = headers["location"].split("check=")[1].split("&")[0]
            status, headers, _ = c.call("POST", "/api/gitlab/accept", accept="text/html", form={"check": check})
            assert "step/13" in headers["location"], headers
            status, _, body = c.call("GET", "/api/integrations")
            cid = json.loads(body)[0]["id"]
            scope = f"/api/gitlab/connections/{cid}/scope"

            def wait_ready():
                while True:
                    status, _, body = c.call("GET", scope + "?per_page=1")
                    answer = json.loads(body)
                    if answer["state"] != "discovering":
                        assert answer["state"] == "ready", answer
                        return answer
                    time.sleep(0.01)

            wait_ready()  # the list made at save
            times = []
            for _ in range(3):
                start = time.perf_counter()
                status, _, _ = c.call("POST", scope + "/refresh")
                assert status == 202, status
                answer = wait_ready()
                times.append((time.perf_counter() - start) * 1000)
            results[name] = (statistics.median(times), answer["found"]["projects"], answer["found"]["groups"])
            pages[name] = (c, cid, scope)

        c, cid, scope = pages["associations"]
        status, _, body = c.call("GET", scope + "?role=readable&archived=false&per_page=100")
        chosen = [p["path_with_namespace"] for p in json.loads(body)["projects"]][:100]
        status, _, body = c.call("PUT", scope, body={"projects": chosen})
        assert status == 200, body
        previews = []
        for _ in range(3):
            start = time.perf_counter()
            status, _, body = c.call("GET", scope + "/preview")
            previews.append((time.perf_counter() - start) * 1000)
            assert status == 200, body
        counted = len(json.loads(body)["projects"])

        picker = f"/integrations/gitlab/connections/{cid}/scope"
        page_times = []
        size = 0
        for _ in range(21):
            start = time.perf_counter()
            status, _, body = c.call("GET", picker, accept="text/html")
            page_times.append((time.perf_counter() - start) * 1000)
            assert status == 200, status
            size = len(body)
        rss_after = rss_kib(onramp.pid)

        chain_pages = math.ceil(PROJECTS / PER_PAGE)
        chain = (1 + math.ceil((chain_pages - 1) / IN_FLIGHT)) * rtt
        new_ms, projects, groups = results["associations"]
        old_ms, old_projects, _ = results["listings"]
        old_chain = (1 + math.ceil((math.ceil(PROJECTS / 50) - 1) / IN_FLIGHT)) * rtt
        print(f"""## Choosing groups and projects at 10,000 projects

`make bench` (scripts/bench-scope.py) on {time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores. Release
build; `fake-gitlab --groups {GROUPS} --projects {PROJECTS} --latency-ms {LATENCY_MS}` (one request: {rtt:.0f} ms),
the token's user in {groups} of the groups and {projects} projects. Discovery: median of 3 refreshes, timed
from `POST …/scope/refresh` until `GET …/scope` says ready (polled every 10 ms). The chain it cannot avoid:
the first page (which says how many there are), then the rest with at most {IN_FLIGHT} in flight.

| what | measured | target |
|---|---|---|
| discovery, GitLab 17.4+ (associations, {PER_PAGE} per page) | {new_ms:.0f} ms = {new_ms / chain:.2f} x the chain ({chain:.0f} ms) | <= 3 s and <= 2 x |
| discovery, older GitLab (6 group listings + projects, 50 per page) | {old_ms:.0f} ms = {old_ms / old_chain:.2f} x its chain ({old_chain:.0f} ms), {old_projects} projects | - |
| preview of {counted} projects ({counted * 4} counts, 16 in flight) | {statistics.median(previews):.0f} ms (median of 3) | <= 1.5 s |
| picker's first page, server time on loopback | {statistics.median(page_times):.1f} ms (median of 21) | <= 50 ms |
| picker's first page, HTML | {size / 1024:.0f} KB raw | <= 200 KB |
| resident memory added by two 10,000-project lists (6 discoveries, pages served) | {(rss_after - rss_before) / 1024:.1f} MB ({rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB) | <= 50 MB |
""")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
