# nbgrader's settings for a student's JupyterLab on the hub (the Assignment List and `tito student` read them).
import os

c = get_config()  # noqa: F821
c.Exchange.root = os.environ.get("TINYTORCH_EXCHANGE", "/srv/nbgrader/exchange")
c.CourseDirectory.course_id = os.environ.get("TINYTORCH_COURSE_ID", "tinytorch")
