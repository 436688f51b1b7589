"""The lesson's lost update as a scenario for the command line:

    critsec explore examples/racy.py:scenario --seed 1

Two tasks each add one to a shared number with ``+=``: a read, then a
write. Some interleaving makes one of them write over the other.
"""


def setup():
    # Fresh shared state for every schedule.
    return {"n": 0}


def bump(state):
    state["n"] += 1


def both_counted(state):
    return state["n"] == 2


scenario = (setup, [bump, bump], both_counted)
