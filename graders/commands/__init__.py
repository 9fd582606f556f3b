"""One module per ``python -m graders`` command; shared argument types live in graders.deadline."""
