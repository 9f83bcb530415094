# JupyterHub for a tinytorch class on one shared server (docs/instructor.md, "A class on JupyterHub").
#
# Every student and instructor is a Unix account of the server and logs in with its password (PAM); each gets
# their own JupyterLab, started as that user in their home folder. Assignments move through nbgrader's exchange.
# Start it as root, in the folder that keeps the hub's state (its database and cookie secret):
#     cd /srv/tinytorch/state && jupyterhub -f /srv/tinytorch/hub/jupyterhub_config.py
# The values below come from environment variables, with the defaults of a deployment laid out as in the docs;
# tests/test_hub.py starts this same file with its own values.
import os

c = get_config()  # noqa: F821 (JupyterHub defines it)

HUB = os.path.dirname(os.path.abspath(__file__))   # this folder, with the per-role settings beside it
INSTRUCTORS = set(os.environ.get("TINYTORCH_INSTRUCTORS", "").split())
STUDENTS = set(os.environ.get("TINYTORCH_STUDENTS", "").split())
# The single-user environment: a Python every account can run, holding jupyterhub, jupyterlab, nbgrader,
# numpy and the course kit (docs/instructor.md lists it).
PYTHON = os.environ.get("TINYTORCH_SINGLEUSER_PYTHON", "/opt/tinytorch/bin/python")

# Where people connect. Put a TLS-terminating web server in front of it, or set c.JupyterHub.ssl_cert/ssl_key.
c.JupyterHub.ip = os.environ.get("TINYTORCH_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("TINYTORCH_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("TINYTORCH_HUB_API_PORT", "8081"))
# JupyterHub's proxy, configurable-http-proxy (npm install -g configurable-http-proxy); its API stays local.
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('TINYTORCH_PROXY_API_PORT', '8001')}"

# Unix accounts, with their passwords; only the class may log in.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = INSTRUCTORS | STUDENTS
c.Authenticator.admin_users = INSTRUCTORS
c.PAMAuthenticator.open_sessions = False   # no login session per server (containers often lack pam_systemd)

# Each user's JupyterLab runs as that user, in their home folder (which must be theirs alone: mode 0700).
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [PYTHON, "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180


def role_settings(spawner) -> str:
    """Per role: students see nbgrader's Assignment List only; instructors also the formgrader and its tools."""
    return os.path.join(HUB, "instructor" if spawner.user.name in INSTRUCTORS else "student")


c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": role_settings,
    # A terminal in JupyterLab finds the single-user environment's `tito` and `jupyter`, not the hub's.
    "PATH": os.pathsep.join([os.path.dirname(PYTHON), "/usr/local/bin", "/usr/bin", "/bin"]),
    "TINYTORCH_EXCHANGE": os.environ.get("TINYTORCH_EXCHANGE", "/srv/nbgrader/exchange"),
    "TINYTORCH_COURSE_ID": os.environ.get("TINYTORCH_COURSE_ID", "tinytorch"),
}

# Resources per user. LocalProcessSpawner only passes these on (MEM_LIMIT, CPU_LIMIT); to enforce them, use
# jupyterhub-systemdspawner (c.JupyterHub.spawner_class = "systemdspawner"), which puts each server in a
# systemd scope with these limits; it needs systemd as the server's init.
c.Spawner.mem_limit = os.environ.get("TINYTORCH_MEM_LIMIT", "2G")
c.Spawner.cpu_limit = float(os.environ.get("TINYTORCH_CPU_LIMIT", "1"))
# Stop servers nobody used for an hour: python -m jupyterhub_idle_culler as a hub service would do it; here,
# JupyterLab stops itself.
c.Spawner.args = ["--ServerApp.shutdown_no_activity_timeout=3600",
                  "--MappingKernelManager.cull_idle_timeout=3600"]
