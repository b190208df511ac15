#!/usr/bin/env python3
"""Start, drive and stop mmkit's workshop JupyterHub (hub/jupyterhub_config.py).

    python hub/workshop.py serve                 # make hub: http://127.0.0.1:8000, Ctrl-C stops all
    python hub/workshop.py serve --port 8010 --password 'class-2026'

The same pieces are used by tests/test_hub.py and hub/bench.py:

* :func:`proxy_command` installs configurable-http-proxy once with ``npm ci`` from the
  lock file in ``hub/proxy/`` into a cache outside the checkout (``~/.cache/mmkit/npm``, or
  ``$MMKIT_NPM_CACHE``), like slides/build.py does for reveal.js; later runs are offline.
* :class:`Hub` starts ``jupyterhub`` in a state folder and, on exit, stops it *and* every
  process it started (proxy, culler, students' servers, kernels), even after a failure.
* :class:`Student` logs in through the hub's login form, asks the hub's REST API for a token
  and a server, and executes notebook cells through the Jupyter server's kernel websocket.

Every wait is bounded in time; nothing listens on anything but 127.0.0.1 unless ``serve --ip``
(``MMKIT_HUB_IP``) says so for the proxy.
"""

import argparse
import hashlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HUB_DIR = pathlib.Path(__file__).resolve().parent
ROOT = HUB_DIR.parent
CONFIG = HUB_DIR / "jupyterhub_config.py"
LOCK = HUB_DIR / "proxy" / "package-lock.json"
NPM_CACHE = pathlib.Path(os.environ.get("MMKIT_NPM_CACHE", pathlib.Path.home() / ".cache" / "mmkit" / "npm"))
PROXY_BIN = pathlib.Path("node_modules", "configurable-http-proxy", "bin", "configurable-http-proxy")


class Missing(RuntimeError):
    """A part the hub needs is not on this machine (the message says which and how to get it)."""


# -- configurable-http-proxy ------------------------------------------------------------------
def proxy_command(cache=NPM_CACHE, log=print):
    """``[node, configurable-http-proxy]``, installing the proxy with ``npm ci`` on first use."""
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        raise Missing("node not found: the hub's configurable-http-proxy needs Node.js and npm "
                      "(Debian: apt-get install npm)")
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    version = json.loads(LOCK.read_text())["packages"]["node_modules/configurable-http-proxy"]["version"]
    where = pathlib.Path(cache) / f"configurable-http-proxy-{version}-{digest}"
    if not (where / PROXY_BIN).exists():
        npm = shutil.which("npm")
        if npm is None:
            raise Missing(f"npm not found: needed once to install configurable-http-proxy {version} "
                          f"into {where} (Debian: apt-get install npm)")
        where.parent.mkdir(parents=True, exist_ok=True)
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=where.name + ".", dir=where.parent))
        try:
            shutil.copy(HUB_DIR / "proxy" / "package.json", tmp)
            shutil.copy(LOCK, tmp)
            log(f"npm ci: configurable-http-proxy {version} into {where}")
            done = subprocess.run([npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--ignore-scripts"],
                                  cwd=tmp, capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise Missing(f"npm ci of configurable-http-proxy {version} failed (no npm registry?): "
                              + done.stderr.strip()[-400:])
            tmp.chmod(0o755)
            try:
                tmp.rename(where)
            except OSError:                     # another run installed it meanwhile
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return [node, str(where / PROXY_BIN)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what, test, timeout, every=0.25, alive=None):
    """Poll ``test()`` until it returns something true, for at most ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the hub exited")
        got = test()
        if got:
            return got
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: not after {timeout} s")
        time.sleep(every)


# -- the hub ------------------------------------------------------------------------------
class Hub:
    """A running workshop hub; use as a context manager so that everything stops."""

    def __init__(self, state=None, port=None, password=None, cull_timeout=3600, release="1",
                 admin_password=None, log=print, quiet=True, keep_log=None, ip="127.0.0.1", env=None):
        self.tmp = state is None
        self.state = pathlib.Path(state or tempfile.mkdtemp(prefix="mmkit-hub-")).resolve()
        self.port = port or free_port()
        self.password = password or secrets.token_urlsafe(12)
        self.cull_timeout = cull_timeout
        self.release = release
        self.admin_password = admin_password
        self.log = log
        self.quiet = quiet
        self.proc = None
        self.logfile = None
        self.keep_log = keep_log        # copy the hub's log (hub, proxy, servers) here on stop
        self.ip = ip
        self.env = dict(env or {})      # more MMKIT_HUB_* settings (MMKIT_HUB_USERS, MMKIT_HUB_AUTH ...)
        # where this machine reaches the proxy: the address it listens on, or loopback for "all"
        self.host = "127.0.0.1" if ip in ("", "0.0.0.0", "::", "127.0.0.1") else ip
        self.url = f"http://{self.host}:{self.port}"
        self._seen = {}                 # pid -> psutil.Process: everything the hub started

    def start(self, timeout=90):
        import psutil  # noqa: F401  (checked before anything starts)
        proxy = proxy_command(log=self.log)
        self.state.mkdir(parents=True, exist_ok=True)
        # students' servers may run as other uids: they must be able to reach their homes
        for path in (self.state, self.state / "homes"):
            path.mkdir(exist_ok=True)
            path.chmod(0o711)
        env = dict(os.environ,
                   MMKIT_HUB_STATE=str(self.state), MMKIT_HUB_PORT=str(self.port),
                   MMKIT_HUB_HUB_PORT=str(free_port()), MMKIT_HUB_PROXY_API_PORT=str(free_port()),
                   MMKIT_HUB_PROXY_COMMAND="\x1f".join(proxy), MMKIT_HUB_PASSWORD=self.password,
                   MMKIT_HUB_CULL_TIMEOUT=str(int(self.cull_timeout)), MMKIT_HUB_RELEASE=self.release,
                   MMKIT_HUB_IP=self.ip)
        env.update(self.env)
        if self.admin_password:
            env["MMKIT_HUB_ADMIN_PASSWORD"] = self.admin_password
        self.logfile = open(self.state / "hub.log", "ab") if self.quiet else None
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)],
                                     cwd=self.state, env=env, start_new_session=True,
                                     stdout=self.logfile, stderr=subprocess.STDOUT if self.quiet else None)
        try:
            _wait("hub start", self._up, timeout, alive=lambda: self.proc.poll() is None)
        except (RuntimeError, TimeoutError) as e:
            raise RuntimeError(f"{e}; its log ends:\n{self.log_tail(2000)}") from None
        self._track()
        return self

    def _up(self):
        import requests
        try:
            return requests.get(self.url + "/hub/api/", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def _track(self):
        """Remember every descendant of the hub (servers call setsid, but stay its children)."""
        import psutil
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self._seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def processes(self):
        """The hub's live descendants now (proxy, culler, servers, kernels)."""
        self._track()
        return [p for p in self._seen.values() if p.is_running()]

    def log_tail(self, n=4000):
        try:
            return (self.state / "hub.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=60):
        """SIGTERM the hub (it stops servers and proxy), then kill whatever is left."""
        import psutil
        if self.proc is not None:
            self._track()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            left = [p for p in self._seen.values() if p.is_running()]
            for p in left:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
            psutil.wait_procs(left, timeout=10)
            self.proc = None
        if self.logfile:
            self.logfile.close()
            self.logfile = None
        if self.keep_log and (self.state / "hub.log").exists():
            shutil.copy(self.state / "hub.log", self.keep_log)
        if self.tmp:
            shutil.rmtree(self.state, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()


# -- a student, over HTTP only ------------------------------------------------------------------
class Student:
    """One student: log in by the form, get a token and a server from the hub's REST API,
    run notebook cells on the server's kernel websocket."""

    def __init__(self, hub, name, password=None):
        import requests
        self.hub, self.name = hub, name
        self.password = password if password is not None else hub.password
        self.web = requests.Session()
        self.token = None

    # the hub
    def login(self):
        r = self.web.get(f"{self.hub.url}/hub/login", timeout=30)
        r.raise_for_status()
        xsrf = self.web.cookies.get("_xsrf")
        r = self.web.post(f"{self.hub.url}/hub/login", allow_redirects=False, timeout=60,
                          data={"username": self.name, "password": self.password, "_xsrf": xsrf})
        if r.status_code != 302:
            raise PermissionError(f"{self.name}: login refused ({r.status_code})")
        r = self.web.post(f"{self.hub.url}/hub/api/users/{self.name}/tokens", timeout=60,
                          headers={"X-XSRFToken": self.web.cookies.get("_xsrf") or xsrf},
                          json={"note": "mmkit workshop client", "expires_in": 3600})
        r.raise_for_status()
        self.token = r.json()["token"]
        return self

    def _hub_api(self, method, path, **kw):
        import requests
        r = requests.request(method, f"{self.hub.url}/hub/api{path}", timeout=60,
                             headers={"Authorization": f"token {self.token}"}, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    def start(self, timeout=240):
        self._hub_api("POST", f"/users/{self.name}/server")
        _wait(f"{self.name}'s server", self.ready, timeout, every=1.0)
        return self

    def ready(self):
        server = self._hub_api("GET", f"/users/{self.name}").get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def stop(self, timeout=60):
        import requests
        try:
            self._hub_api("DELETE", f"/users/{self.name}/server")
            _wait(f"{self.name}'s server stop", lambda: not self._hub_api(
                "GET", f"/users/{self.name}").get("servers"), timeout, every=0.5)
        except requests.RequestException:
            pass

    # the student's own Jupyter server, through the proxy
    def api(self, method, path, **kw):
        import requests
        r = requests.request(method, f"{self.hub.url}/user/{self.name}/api{path}", timeout=120,
                             headers={"Authorization": f"token {self.token}"}, **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    def notebook(self, path):
        """The notebook as the student's server has it (their copy)."""
        return self.api("GET", f"/contents/{path}", params={"content": "1"})["content"]

    def kernel(self, path):
        """A kernel started for ``path`` (a notebook session: it runs in the notebook's folder)."""
        session = self.api("POST", "/sessions", json={"path": path, "type": "notebook", "name": "",
                                                      "kernel": {"name": "python3"}})
        return Kernel(self, session)

    def run_notebook(self, path, timeout=600, keep=None):
        """Execute every code cell of the student's copy of ``path`` in order.

        Returns a list of (seconds, error-or-None), one per code cell: the time from sending
        execute_request to receiving its execute_reply.  Cells tagged ``raises-exception`` may fail.
        With ``keep`` (a list) the kernel is left running and appended to it, as a student who
        leaves the notebook's tab open does; the caller closes it.
        """
        import contextlib
        cells = [c for c in self.notebook(path)["cells"] if c["cell_type"] == "code"]
        out = []
        kernel = self.kernel(path)
        if keep is not None:
            keep.append(kernel)
        with (contextlib.nullcontext(kernel) if keep is not None else kernel) as k:
            end = time.monotonic() + timeout
            for i, cell in enumerate(cells):
                t0 = time.perf_counter()
                try:
                    reply = k.execute("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"],
                                      timeout=max(1.0, end - time.monotonic()))
                except Exception as e:
                    raise RuntimeError(f"code cell {i} (after {time.perf_counter() - t0:.1f} s): {e!r}") from e
                dt = time.perf_counter() - t0
                err = None
                if reply["status"] != "ok" and "raises-exception" not in cell.get("metadata", {}).get("tags", []):
                    err = f"{reply.get('ename')}: {reply.get('evalue')}"
                out.append((dt, err))
        return out


def _decode(frame):
    """A kernel websocket message: text JSON, or a binary frame carrying buffers (widgets'
    images), laid out as jupyter_server's legacy format: count, offsets, JSON, buffers."""
    if isinstance(frame, str):
        return json.loads(frame)
    n = int.from_bytes(frame[:4], "big")
    offsets = [int.from_bytes(frame[4 + 4 * i:8 + 4 * i], "big") for i in range(n)] + [len(frame)]
    return json.loads(frame[offsets[0]:offsets[1]].decode())


class Kernel:
    """A kernel on a student's server, spoken to over its websocket (the Jupyter protocol)."""

    def __init__(self, student, session):
        import websocket
        self.student, self.session = student, session
        self.id = session["kernel"]["id"]
        url = (f"ws://{student.hub.host}:{student.hub.port}/user/{student.name}/api/kernels/{self.id}/channels"
               f"?session_id={uuid.uuid4().hex}")
        self.ws = websocket.create_connection(url, timeout=120,
                                              header=[f"Authorization: token {student.token}"])

    def execute(self, code, timeout=300):
        """Send ``code``; return the execute_reply content once the kernel is idle again."""
        import websocket
        msg_id = uuid.uuid4().hex
        self.ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.student.name, "session": self.session["id"],
                       "msg_type": "execute_request", "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        reply = idle = None
        self.stdout = []
        end = time.monotonic() + timeout
        while reply is None or not idle:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"cell not done after {timeout:.0f} s")
            self.ws.settimeout(left)
            try:
                msg = _decode(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                raise TimeoutError(f"cell not done after {timeout:.0f} s") from None
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["header"]["msg_type"]
            if kind == "execute_reply":
                reply = msg["content"]
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                idle = True
            elif kind == "stream" and msg["content"].get("name") == "stdout":
                self.stdout.append(msg["content"]["text"])
        return reply

    def close(self):
        try:
            self.ws.close()
        finally:
            try:
                self.student.api("DELETE", f"/sessions/{self.session['id']}")
            except Exception:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- make hub ---------------------------------------------------------------------------------
def _default_state():
    # root's home is closed to the students' uids, so a root hub keeps its state in /var/lib
    if os.geteuid() == 0:
        return pathlib.Path("/var/lib/mmkit-hub")
    base = os.environ.get("XDG_STATE_HOME") or pathlib.Path.home() / ".local" / "state"
    return pathlib.Path(base) / "mmkit-hub"


def serve(args):
    state = pathlib.Path(args.state or _default_state())
    state.mkdir(parents=True, exist_ok=True)
    password = args.password or os.environ.get("MMKIT_HUB_PASSWORD")
    pwfile = state / "class-password"
    if not password:
        if not pwfile.exists():
            pwfile.write_text(secrets.token_urlsafe(9) + "\n")
            pwfile.chmod(0o600)
        password = pwfile.read_text().strip()
    ip = args.ip or os.environ.get("MMKIT_HUB_IP") or "127.0.0.1"
    env = {}
    if args.users:
        env["MMKIT_HUB_USERS_FILE" if os.path.exists(args.users) else "MMKIT_HUB_USERS"] = (
            os.path.abspath(args.users) if os.path.exists(args.users) else args.users)
    sys.path.insert(0, str(HUB_DIR))
    import hub_auth
    check = dict(os.environ, MMKIT_HUB_PASSWORD=password, **env)
    hub_auth.settings(check)                     # a clear error now, not in the hub's log
    hub = Hub(state=state, port=args.port, password=password, cull_timeout=args.cull_timeout,
              release="0" if args.answers else "1", quiet=False, ip=ip, env=env)
    hub.tmp = False                              # a lecturer's hub keeps its students' work
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):   # also when started with SIGINT ignored (&)
        signal.signal(sig, lambda *a: stop.append(1))
    shared = hub_auth.mode(check) == "shared"
    where = ("127.0.0.1 only: put a TLS reverse proxy in front for a room, hub/README.md" if ip == "127.0.0.1"
             else f"listening on {ip}" + (": WITHOUT TLS the class password crosses the network in clear"
                                          if shared else ""))
    try:
        with hub:
            print(f"\nmmkit {'WORKSHOP ' if shared else ''}hub: http://{ip if ip not in ('', '0.0.0.0', '::') else hub.host}"
                  f":{hub.port}/  ({where})\n"
                  f"  {hub_auth.describe(check)}\n"
                  + (f"  class password: {password}\n" if shared else "")
                  + f"  their copies of the notebooks: {state / 'homes'}/<name>/notebooks (updated on each start;"
                  f" edited ones are kept, new versions beside them as <name>.updated.ipynb)\n"
                  f"  release mode (answers hidden): {'off' if args.answers else 'on'};"
                  f" idle servers stop after {args.cull_timeout} s, idle kernels after "
                  f"{os.environ.get('MMKIT_HUB_KERNEL_CULL_TIMEOUT', '1800')} s\n"
                  "  no per-student memory limit on one machine (hub/README.md)\n"
                  "  Ctrl-C stops the hub and every server.\n",
                  flush=True)
            while not stop and hub.proc.poll() is None:
                time.sleep(0.5)
            print("mmkit workshop hub: stopping the hub and every server", flush=True)
    except KeyboardInterrupt:
        pass
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the workshop hub until Ctrl-C")
    s.add_argument("--port", type=int, default=int(os.environ.get("PORT_HUB", 8000)))
    s.add_argument("--state", help="folder for the hub's database and the students' homes "
                                   "(default /var/lib/mmkit-hub as root, else ~/.local/state/mmkit-hub)")
    s.add_argument("--password", help="the class password (default: $MMKIT_HUB_PASSWORD, "
                                      "else one generated once and kept in STATE/class-password)")
    s.add_argument("--ip", help="address the proxy listens on (default $MMKIT_HUB_IP, else 127.0.0.1; "
                                "for a room prefer a TLS reverse proxy in front of 127.0.0.1, hub/README.md)")
    s.add_argument("--users", help="allow-list: a file of student names (one a line) or 'alice,bob'; "
                                   "other names are refused (default $MMKIT_HUB_USERS / $MMKIT_HUB_USERS_FILE)")
    s.add_argument("--cull-timeout", type=int, default=3600, help="stop servers idle this many seconds")
    s.add_argument("--answers", action="store_true", help="instructor hub: do not set the student release mode")
    s.add_argument("--proxy-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.proxy_only:
        print(" ".join(proxy_command()))
        return 0
    try:
        return serve(args)
    except Missing as e:
        print(f"make hub: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:                      # hub_auth.AuthConfigError: a setting is missing
        if isinstance(e.code, str):
            print(f"make hub: {e.code}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
