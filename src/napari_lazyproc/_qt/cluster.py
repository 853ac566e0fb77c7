"""Where a panel's job runs: threads here, a local dask cluster, or a scheduler.

The choice is what ``lp.export``, ``lp.measure``, ``seg.run`` and the command line's
``--workers`` / ``--scheduler`` take (``_shared.cluster.distributed_client`` opens and
closes the cluster around the job).
"""

from __future__ import annotations

from magicgui.widgets import ComboBox, Container, LineEdit, SpinBox

#: the choices, and what each needs
RUN_ON = (("threads here", "threads"), ("local dask cluster", "local"),
          ("dask scheduler", "scheduler"))


class ClusterChoice(Container):
    """*run on*: threads here, a local cluster of N worker processes, or a scheduler's
    address (``tcp://host:8786``); ``options()`` gives ``scheduler=`` and ``workers=``."""

    def __init__(self) -> None:
        super().__init__(labels=True, label="run on")
        self.margins = (0, 0, 0, 0)
        self.where = ComboBox(label="", choices=list(RUN_ON), value="threads")  # the row says it
        self.workers = SpinBox(label="workers", value=2, min=1, max=512, visible=False,
                               tooltip="worker processes of the local cluster (one thread "
                                       "each), started for the job and closed after it")
        self.address = LineEdit(label="scheduler", value="", visible=False,
                                tooltip="a running dask scheduler, e.g. tcp://host:8786 "
                                        "(its workers must reach the job's files)")
        self.extend([self.where, self.workers, self.address])
        self.where.changed.connect(self._show)

    def _show(self, _=None) -> None:
        self.workers.visible = self.where.value == "local"
        self.address.visible = self.where.value == "scheduler"

    def options(self) -> dict:
        """``{"scheduler": ..., "workers": ...}`` for the job (``ValueError`` when a
        scheduler is chosen without an address)."""
        if self.where.value == "local":
            return {"scheduler": None, "workers": int(self.workers.value)}
        if self.where.value == "scheduler":
            address = self.address.value.strip()
            if not address:
                raise ValueError("run on a dask scheduler: type its address "
                                 "(tcp://host:8786)")
            return {"scheduler": address, "workers": None}
        return {"scheduler": None, "workers": None}

    def describe(self) -> str:
        opts = self.options()
        if opts["workers"]:
            return f"a local dask cluster of {opts['workers']} workers"
        return f"the dask scheduler at {opts['scheduler']}" if opts["scheduler"] else \
            "threads here"
