"""The student wing: a student's workspace made from the course folder's releases, handing work in (to a course
folder or through nbgrader's exchange), new modules, JupyterLab, and the kit that ships it all to students."""
