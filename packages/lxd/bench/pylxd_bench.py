"""pylxd side of `npm run bench:lxd`: one long-lived process, driven over stdin/stdout.

Run with Debian's interpreter (/usr/bin/python3, which has python3-pylxd). Each stdin line is a
JSON command; each answer is one JSON line on stdout with the driver's own in-process timings
(time.perf_counter), so Python's start-up and this pipe are never measured.

Every call below is pylxd's ordinary public API as its documentation shows it (pylxd 2.2.x talks
to /1.0/containers), except `list_raw`, which uses pylxd's raw `client.api` node to send the
same single recursion=2 request the other two clients send.
"""

import hashlib
import json
import logging
import os
import sys
import time
import traceback

os.environ.setdefault("PYLXD_WARNINGS", "none")
# ws4py logs a "Connection reset by peer" traceback when LXD closes an exec socket; not an error.
logging.getLogger("ws4py").setLevel(logging.CRITICAL)

import pylxd  # noqa: E402
from urllib.parse import quote  # noqa: E402

PREFIX = "vmpb-"


def ms_since(t0):
    return (time.perf_counter() - t0) * 1000.0


def check(name):
    if not isinstance(name, str) or not name.startswith(PREFIX):
        raise ValueError("refusing to touch %r: not a benchmark instance" % (name,))
    return name


class Driver:
    def __init__(self):
        self.client = pylxd.Client()
        # A second client through the bench's timing proxy (op `proxy`); `via: "proxy"` picks it.
        self.proxied = None
        self.payload = b""
        self.containers = {}

    def proxy(self, cmd):
        # pylxd only takes a socket path that is a regular file; a socket is given as its URL.
        self.proxied = pylxd.Client(endpoint="http+unix://" + quote(cmd["socket"], safe=""))
        self.containers = {}
        # Fetched now, so that no timed call through the proxy sends this GET.
        for via in ("direct", "proxy"):
            self.container({"name": cmd["name"], "via": via})
        return {}

    def container(self, cmd):
        """The instance's object, fetched once per client: its files API needs no other request,
        so that the proxy sees only the transfer itself."""
        via = cmd.get("via") == "proxy"
        key = (via, check(cmd["name"]))
        if key not in self.containers:
            self.containers[key] = (self.proxied if via else self.client).containers.get(key[1])
        return self.containers[key]

    def ping(self, _cmd):
        t0 = time.perf_counter()
        self.client.api.get()
        return {"ms": ms_since(t0), "version": pylxd.__version__}

    def cycle(self, cmd):
        """create (wait) + start (wait) + stop --force (wait) + delete (wait) of one container."""
        name = check(cmd["name"])
        config = {"name": name, "source": {"type": "image", "alias": cmd["alias"]}}
        t0 = time.perf_counter()
        c = self.client.containers.create(config, wait=True)
        c.start(wait=True)
        c.stop(force=True, wait=True)
        c.delete(wait=True)
        return {"ms": ms_since(t0)}

    def execs(self, cmd):
        """`count` sequential container.execute(command); every exit code must be 0."""
        name = check(cmd["name"])
        c = self.client.containers.get(name)
        samples = []
        failures = []
        t_all = time.perf_counter()
        for _ in range(int(cmd["count"])):
            # pylxd 2.2 connects the three websockets one after another and never the control one;
            # now and then LXD has already closed one when ws4py answers a ping (BrokenPipeError).
            # Such an attempt is retried and reported, and only the successful attempt is timed.
            for attempt in range(3):
                t0 = time.perf_counter()
                try:
                    result = c.execute(cmd["command"])
                except (OSError, ValueError) as e:
                    if attempt == 2:
                        raise
                    failures.append("%s: %s" % (type(e).__name__, e))
                    continue
                samples.append(ms_since(t0))
                break
            if result[0] != 0:
                raise RuntimeError("exec exit code %r" % (result[0],))
        return {"ms": ms_since(t_all), "samples": samples, "failures": failures}

    def execs_parallel(self, cmd):
        """`rounds` rounds of `width` container.execute() at once, one thread each; counts the
        commands whose stdout or stderr came back other than the command printed it."""
        from concurrent.futures import ThreadPoolExecutor

        name = check(cmd["name"])
        c = self.client.containers.get(name)
        width = int(cmd["width"])
        lost = 0
        errors = []

        def one(tag):
            try:
                result = c.execute(["sh", "-c", "echo out-%s; echo err-%s >&2" % (tag, tag)])
            except (OSError, ValueError) as e:
                errors.append("%s: %s" % (type(e).__name__, e))
                return True
            return result[1] != "out-%s\n" % tag or result[2] != "err-%s\n" % tag

        with ThreadPoolExecutor(max_workers=width) as pool:
            for r in range(int(cmd["rounds"])):
                lost += sum(pool.map(one, ["%d-%d" % (r, i) for i in range(width)]))
        return {"lost": lost, "errors": errors}

    def list_idiomatic(self, _cmd):
        """containers.all() (names only, recursion=0), then what recursion=2 holds for each
        instance: its config (attribute access syncs: GET /1.0/containers/<n>) and its state."""
        t0 = time.perf_counter()
        out = []
        for c in self.client.containers.all():
            state = c.state()
            out.append((c.name, c.status, c.config, state.status))
        return {"ms": ms_since(t0), "count": len(out)}

    def list_raw(self, _cmd):
        """One GET /1.0/instances?recursion=2 through pylxd's raw API node, JSON decoded."""
        t0 = time.perf_counter()
        metadata = self.client.api.instances.get(params={"recursion": 2}).json()["metadata"]
        return {"ms": ms_since(t0), "count": len(metadata)}

    def load(self, cmd):
        with open(cmd["file"], "rb") as f:
            self.payload = f.read()
        return {"bytes": len(self.payload)}

    def push(self, cmd):
        c = self.container(cmd)
        at = time.time()
        t0 = time.perf_counter()
        c.files.put(cmd["path"], self.payload)
        ms = ms_since(t0)
        return {"ms": ms, "startedAt": at * 1000.0, "endedAt": at * 1000.0 + ms}

    def pull(self, cmd):
        c = self.container(cmd)
        at = time.time()
        t0 = time.perf_counter()
        data = c.files.get(cmd["path"])
        ms = ms_since(t0)
        return {
            "ms": ms,
            "startedAt": at * 1000.0,
            "endedAt": at * 1000.0 + ms,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }

    def pull_file(self, cmd):
        """files.get (pylxd's only way: the whole content in memory), written to a local file."""
        c = self.container(cmd)
        t0 = time.perf_counter()
        data = c.files.get(cmd["path"])
        with open(cmd["file"], "wb") as f:
            f.write(data)
        return {"ms": ms_since(t0)}

    def cleanup(self, cmd):
        """Best effort: stop and delete the given benchmark containers if they exist."""
        for name in cmd["names"]:
            check(name)
            try:
                c = self.client.containers.get(name)
            except pylxd.exceptions.NotFound:
                continue
            try:
                if c.status != "Stopped":
                    c.stop(force=True, wait=True)
                c.delete(wait=True)
            except Exception:  # noqa: BLE001
                pass
        return {}


def main():
    driver = Driver()
    out = sys.stdout
    out.write(json.dumps({"ready": True, "version": pylxd.__version__}) + "\n")
    out.flush()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        try:
            handler = getattr(driver, cmd["op"])
            answer = {"ok": True, **handler(cmd)}
        except Exception as e:  # noqa: BLE001
            answer = {"ok": False, "error": "%s: %s" % (type(e).__name__, e), "trace": traceback.format_exc()}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
