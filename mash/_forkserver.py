"""Imported first by the parse workers' forkserver: it dies with the run (see #21).

The forkserver imports this module before anything else (``set_forkserver_preload``);
from then on the kernel kills it when the run dies. Each worker forks from it with this
module loaded, and ``mash.lifetime.start_worker`` ties the worker to the forkserver in
turn. Without this, a run killed with SIGKILL left its forkserver and workers waiting
for jobs for good: each worker holds the forkserver's "alive" pipe open, so neither saw
the end. Never import this module in the run itself: it would tie the run to its own
parent (a shell, cron).

Not done here: a run that dies before the forkserver has imported this module. The
forkserver then finds its "alive" pipe closed as it starts serving, and exits, as
multiprocessing makes it do.
"""

from __future__ import annotations

import os

from mash.lifetime import die_with_parent

SERVER = os.getpid()  # in a worker, which inherits the module: the forkserver's pid
die_with_parent(os.getppid())
