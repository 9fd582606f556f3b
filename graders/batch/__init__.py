"""Instructor batch grading: a whole class graded in parallel with nbclient, nothing lost.

Data flows one way::

    inputs (learner folders, LMS zips, roster)  ->  pool (one worker process per core, one
    learner at a time)  ->  execute (pristine lab notebook in the worker's kernel, parameters
    injected, result harvested)  ->  store (one result file per learner, atomic, written by the
    worker)  ->  gradebook / feedback / summary (always rebuilt from the stored result files)

The learner never supplies code that runs unless the instructor asks for it
(``--execute-submitted-notebooks``); by default their files are data for the course's own notebook.
"""
