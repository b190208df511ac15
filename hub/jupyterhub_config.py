# mmkit's workshop hub: JupyterHub's own parts, configured for one machine and a class.
#
#   make hub                      # or: .venv/bin/python hub/workshop.py serve
#
# Everything is JupyterHub's: configurable-http-proxy in front (on 127.0.0.1 unless --ip /
# MMKIT_HUB_IP), the hub on 127.0.0.1, SharedPasswordAuthenticator (one class password: a
# WORKSHOP hub, optionally with an allow-list of names) or oauthenticator (MMKIT_HUB_AUTH=oauth:
# graded use), see hub/hub_auth.py; SimpleLocalProcessSpawner (no system user per student),
# jupyterhub-idle-culler as a hub service and the servers' own idle-kernel culler.
# hub/workshop.py starts it with the settings below taken from MMKIT_HUB_* variables; see hub/README.md.
#
# One thing is added to the spawner, and only when the hub runs as root: each student's
# server runs under an unprivileged uid of its own (MMKIT_HUB_UID_BASE + the hub's user id,
# no /etc/passwd entry needed), in a home only that uid can read.  SimpleLocalProcessSpawner
# alone would run every student as root, able to read and kill each other's work (and the
# machine's); LocalProcessSpawner would need a system account per student.

import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile

from jupyterhub.spawner import SimpleLocalProcessSpawner

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hub"))
import hub_auth  # noqa: E402  (who may log in: MMKIT_HUB_AUTH, MMKIT_HUB_USERS)
import notebook_sync  # noqa: E402  (the students' copies of notebooks/, kept up to date)

NOTEBOOKS = ROOT / "notebooks"
BIN = pathlib.Path(sys.executable).parent


def _env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        raise SystemExit(f"hub/jupyterhub_config.py: {name} is not set (start the hub with hub/workshop.py)")
    return value


STATE = pathlib.Path(_env("MMKIT_HUB_STATE")).resolve()
HOMES = STATE / "homes"
IP = _env("MMKIT_HUB_IP", "127.0.0.1")        # the proxy's public address (--ip)
PORT = int(_env("MMKIT_HUB_PORT", "8000"))
HUB_PORT = int(_env("MMKIT_HUB_HUB_PORT", "8081"))
PROXY_API_PORT = int(_env("MMKIT_HUB_PROXY_API_PORT", "8001"))
PROXY_COMMAND = _env("MMKIT_HUB_PROXY_COMMAND").split("\x1f")   # node + the proxy's bin script
CULL_TIMEOUT = int(_env("MMKIT_HUB_CULL_TIMEOUT", "3600"))
KERNEL_CULL_TIMEOUT = int(_env("MMKIT_HUB_KERNEL_CULL_TIMEOUT", "1800"))   # 0: kernels are never culled
RELEASE = _env("MMKIT_HUB_RELEASE", "1")
UID_BASE = int(_env("MMKIT_HUB_UID_BASE", "2000000"))


def closed_to_others():
    """The first file the students' servers need that another uid cannot reach, or None.

    The interpreter (and its standard library), the venv's scripts and packages, the
    checkout's mmkit/, notebooks/ and hub/notebook_sync.py (the sync runs as the student) must be readable (and their folders searchable) by "others"."""
    import sysconfig
    need = [pathlib.Path(os.path.realpath(sys.executable)), BIN / "jupyterhub-singleuser",
            pathlib.Path(sysconfig.get_paths()["stdlib"]) / "os.py",
            pathlib.Path(sysconfig.get_paths()["purelib"]), ROOT / "mmkit" / "__init__.py",
            ROOT / "jupyter-config", NOTEBOOKS / "00-orientation.ipynb", ROOT / "hub" / "notebook_sync.py"]
    for path in need:
        path = pathlib.Path(os.path.realpath(path))
        for folder in [*reversed(path.parents)] + ([path] if path.is_dir() else []):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return folder
        if not path.is_dir() and not path.stat().st_mode & stat.S_IROTH:
            return path
    return None


# Students run as uids of their own when the hub is root, unless MMKIT_HUB_STUDENT_UIDS=0 or
# the Python they need is closed to other uids (e.g. a pyenv under /root, mode 0700): then the
# servers run as the hub's user, as plain SimpleLocalProcessSpawner does, and the log says why.
CLOSED = closed_to_others() if os.geteuid() == 0 else None
AS_ROOT = os.geteuid() == 0 and CLOSED is None and _env("MMKIT_HUB_STUDENT_UIDS", "1") != "0"
if os.geteuid() == 0 and not AS_ROOT:
    why = f"{CLOSED} is closed to other uids" if CLOSED else "MMKIT_HUB_STUDENT_UIDS=0"
    print(f"mmkit hub: WARNING: students' servers run as root ({why})", file=sys.stderr, flush=True)
(STATE / "students-run-as").write_text(
    ("uid-per-student" if AS_ROOT else "root" if os.geteuid() == 0 else "hub-user") + "\n")


class WorkshopSpawner(SimpleLocalProcessSpawner):
    """SimpleLocalProcessSpawner whose students land in their own copy of the notebooks
    and, when the hub is root, run under a uid of their own instead of root."""

    @property
    def student_uid(self):
        return UID_BASE + self.user.id

    def copy_notebooks(self):
        """Bring the student's copy of notebooks/ up to date on every spawn (hub/notebook_sync.py):
        new and untouched notebooks are copied, an edited one is never overwritten (the new
        version goes beside it as <name>.updated.ipynb, listed in UPDATES.md)."""
        home = pathlib.Path(self.home_dir)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)
        if AS_ROOT:
            # the student owns their home and could plant symlinks in it: the sync writes there
            # as the student's uid, never as root
            uid = self.student_uid
            os.lchown(home, uid, uid)

            def as_student():
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

            done = subprocess.run([sys.executable, str(ROOT / "hub" / "notebook_sync.py"), str(NOTEBOOKS),
                                   str(home / "notebooks")], preexec_fn=as_student, capture_output=True,
                                  text=True, timeout=120, cwd=str(home))
            for line in (done.stdout + done.stderr).splitlines():
                self.log.info("%s: %s", self.user.name, line)
            if done.returncode != 0:
                self.log.warning("mmkit notebooks for %s: sync failed (rc %s)", self.user.name, done.returncode)
        else:
            done = notebook_sync.sync(NOTEBOOKS, home / "notebooks")
            for what, rels in done.items():
                if rels and what != "kept":
                    self.log.info("mmkit notebooks for %s, %s: %s", self.user.name, what, ", ".join(rels))
        self.make_runtime_dir()

    def make_runtime_dir(self):
        """A short private folder for the kernels' Unix sockets (a socket path has at most
        107 bytes: ``<dir>/kernel-<uuid>-ipc-N`` leaves 58 for the folder)."""
        runtime = STATE / "rt" / str(self.user.id)
        if len(str(runtime)) > 56:
            runtime = pathlib.Path(tempfile.mkdtemp(prefix="mmkit-rt-"))
        runtime.parent.mkdir(mode=0o711, exist_ok=True)
        runtime.mkdir(mode=0o700, exist_ok=True)
        if AS_ROOT:
            os.lchown(runtime, self.student_uid, self.student_uid)
        self.runtime_dir = str(runtime)

    def make_preexec_fn(self, name):
        home = self.home_dir
        uid = self.student_uid if AS_ROOT else None

        def preexec():
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            os.chdir(home)

        return preexec

    def user_env(self, env):
        env = super().user_env(env)
        env["MMKIT_RELEASE"] = RELEASE                      # student release: answers hidden
        for name in ("MMKIT_RELEASE_HINTS", "MMKIT_RELEASE_CONTACT"):   # the lecturer's release settings
            if name in os.environ:
                env[name] = os.environ[name]
        env["JUPYTER_CONFIG_PATH"] = str(ROOT / "jupyter-config")
        if getattr(self, "runtime_dir", None):
            env["JUPYTER_RUNTIME_DIR"] = self.runtime_dir
        env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def get_args(self):
        args = super().get_args()
        # kernels on Unix sockets in the student's runtime folder, not on loopback TCP ports:
        # with a class starting kernels at once, a port picked free for one kernel was taken by
        # another before it bound it ("Address already in use", the kernel restarted, the
        # student's websocket lost: 2 of 2231 cells in one 30-student load test); and a TCP
        # kernel port is reachable by every user of the machine, a socket in a 0700 home is not
        args.append("--KernelManager.transport=ipc")
        # idle kernels: a student keeps several notebooks (kernels) open in JupyterLab; one idle
        # for KERNEL_CULL_TIMEOUT s is shut down even with its tab open (rerun the cells to go on)
        if KERNEL_CULL_TIMEOUT > 0:
            args += [f"--MappingKernelManager.cull_idle_timeout={KERNEL_CULL_TIMEOUT}",
                     f"--MappingKernelManager.cull_interval={max(60, KERNEL_CULL_TIMEOUT // 10)}",
                     "--MappingKernelManager.cull_connected=True"]
        if os.geteuid() == 0 and not AS_ROOT:
            args.append("--allow-root")
        return args


def pre_spawn_hook(spawner):
    spawner.copy_notebooks()


def post_stop_hook(spawner):
    if getattr(spawner, "runtime_dir", None):
        shutil.rmtree(spawner.runtime_dir, ignore_errors=True)


# -- the hub and its proxy: the proxy on IP (127.0.0.1 unless --ip), the hub on loopback -----
c = get_config()  # noqa: F821  (provided by JupyterHub when it loads this file)

c.JupyterHub.ip = IP
c.JupyterHub.port = PORT
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = HUB_PORT
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{PROXY_API_PORT}"
c.ConfigurableHTTPProxy.command = PROXY_COMMAND
c.ConfigurableHTTPProxy.pid_file = str(STATE / "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True          # stopping the hub stops every student's server
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.concurrent_spawn_limit = 50      # a whole class may press "start" at once

# -- who may log in (hub/hub_auth.py): a class password (workshop) or OAuth (graded use) -----
AUTH = hub_auth.settings()          # a clear SystemExit naming the missing setting
for section, traits in AUTH.items():
    for trait, value in traits.items():
        setattr(c[section], trait, value)
if hub_auth.mode() == "shared":     # every page says what kind of hub this is
    c.JupyterHub.template_vars = {"announcement": hub_auth.WORKSHOP_BANNER}

# -- the students' servers -----------------------------------------------------------------
c.JupyterHub.spawner_class = WorkshopSpawner
c.WorkshopSpawner.home_dir_template = str(HOMES / "{username}")
c.Spawner.pre_spawn_hook = pre_spawn_hook
c.Spawner.post_stop_hook = post_stop_hook
c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
c.Spawner.notebook_dir = str(HOMES / "{username}" / "notebooks")
c.Spawner.default_url = "/lab/tree/00-orientation.ipynb"
c.Spawner.start_timeout = 180                 # 30 servers starting at once on 2 cores
c.Spawner.http_timeout = 180

# -- the idle culler: stop servers nobody used for CULL_TIMEOUT seconds ----------------------
c.JupyterHub.services = [{
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={CULL_TIMEOUT}",
                f"--cull-every={max(30, CULL_TIMEOUT // 6)}"],
}]
c.JupyterHub.load_roles = [{
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
}]
