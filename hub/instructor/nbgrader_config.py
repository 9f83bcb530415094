# nbgrader's settings for an instructor's JupyterLab on the hub (the formgrader reads them; `tito nbgrader` reads the course's settings.ini).
import os

c = get_config()  # noqa: F821
c.Exchange.root = os.environ.get("TINYTORCH_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("TINYTORCH_COURSE_ID", "tinytorch")
# The formgrader's course folder: the course repository in the instructor's home.
c.CourseDirectory.root = os.path.expanduser(os.environ.get("TINYTORCH_COURSE_DIR", "~/tinytorch/course"))
