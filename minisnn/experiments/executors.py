"""Executors: run trial specs somewhere and yield their records as they finish.

- LocalExecutor(workers): worker processes on this machine (standard library; workers=0 runs
  the trials in this process, its thread pools limited while a trial runs). Each worker pins
  its BLAS, OpenMP and Numba pools to threads = max(1, cores // workers) threads, so
  workers x threads = cores.
- DaskExecutor(address=None, workers=2, retries=1): a Dask distributed scheduler at `address`,
  or a LocalCluster of `workers` single-threaded worker processes (`pip install
  "minisnn[dask]"`). A trial that raises is retried `retries` times, then recorded as failed.

Workers receive plain spec dicts and return plain records. Before any worker runs a trial, the
ahead-of-time Numba kernels are built once per machine (prepare_kernels, serialized by a file
lock), instead of every worker compiling them at first use. A trial that raises becomes a
"failed" record with its error; the executor goes on.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import importlib.util
import multiprocessing
import os
import sys
from typing import Any, Iterable, Iterator

from .spec import TrialSpec
from .trial import failure_record, run_trial, run_trial_safely

THREAD_ENVIRONMENT = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
DASK_HINT = 'the Dask executor needs dask.distributed: pip install "minisnn[dask]"'


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def pin_threads(threads: int) -> None:
    """Limit this process's BLAS, OpenMP and Numba pools to `threads` (also for libraries loaded later)."""
    for name in THREAD_ENVIRONMENT:
        os.environ[name] = str(threads)
    if importlib.util.find_spec("threadpoolctl") is not None:
        from ..threads import set_threads

        set_threads(threads)


@contextlib.contextmanager
def threads_limited(threads: int):
    """Within the block, this process's BLAS and OpenMP pools (and Numba's, if imported) use at most
    `threads` threads; the previous limits come back after it (the in-process executor)."""
    numba = sys.modules.get("numba")
    numba_before = numba.get_num_threads() if numba is not None else None
    try:
        if numba is not None:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        if importlib.util.find_spec("threadpoolctl") is None:
            yield
        else:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=threads):
                yield
    finally:
        if numba is not None:
            numba.set_num_threads(numba_before)


@contextlib.contextmanager
def restored_environment():
    """Put os.environ back as it was after the block (a Dask LocalCluster leaves its workers'
    OMP_NUM_THREADS=1 and other variables in the parent's environment)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def prepare_kernels(backends: Iterable[str]) -> str | None:
    """Build the ahead-of-time Numba kernels once on this machine if a trial may use them
    (backend "numba" or "auto" with Numba installed); returns where they are, or None."""
    if not {"numba", "auto"} & set(backends) or importlib.util.find_spec("numba") is None:
        return None
    if os.environ.get("MINISNN_NUMBA_KERNELS", "").strip().lower() == "jit":
        return None
    from ..backends import numba_aot

    directory = numba_aot.cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)  # other workers of this machine wait for one build
        except ImportError:  # not POSIX: an unlocked build, still atomic
            pass
        module, where = numba_aot.load(build=True)
    return where if module is not None else None


def _backends(specs: list[dict[str, Any]]) -> set[str]:
    return {spec.get("training", {}).get("backend", "numpy") for spec in specs}


class LocalExecutor:
    """Worker processes on this machine (module doc)."""

    def __init__(self, workers: int | None = None, threads: int | None = None):
        available = cores()
        self.workers = available if workers is None else int(workers)
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0, got {workers}")
        self.threads = threads or max(1, available // max(1, self.workers))
        self.name = f"local ({self.workers} worker{'s' if self.workers != 1 else ''} x {self.threads} threads)"

    def run(self, specs: Iterable[TrialSpec | dict], data_root: str | None = None) -> Iterator[dict[str, Any]]:
        """The records of `specs`, in the order they finish."""
        specs = [spec.to_dict() if isinstance(spec, TrialSpec) else spec for spec in specs]
        if not specs:
            return
        prepare_kernels(_backends(specs))
        if self.workers == 0:
            for spec in specs:
                with threads_limited(self.threads):
                    record = run_trial_safely(spec, data_root)
                yield record
            return
        queue = iter(specs)
        while True:  # a fresh pool after a worker died
            completed = 0
            broken: Exception | None = None
            for outcome in self._run_pool(queue, data_root):
                if isinstance(outcome, Exception):
                    broken = outcome
                else:
                    completed += 1
                    yield outcome
            if broken is None:
                return
            if completed == 0:
                raise RuntimeError(f"worker processes die before finishing a trial ({broken}); a script that "
                                   f"starts workers must guard its code with if __name__ == '__main__'")

    def _run_pool(self, queue: Iterator[dict], data_root: str | None) -> Iterator[dict[str, Any] | Exception]:
        """Run specs from `queue` on one process pool; records, then the pool's error if a worker died
        (the trials in flight then are recorded as failed)."""
        context = multiprocessing.get_context("spawn")  # no inherited locks or thread pools
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context, initializer=pin_threads,
                                                    initargs=(self.threads,)) as pool:
            in_flight: dict[concurrent.futures.Future, dict] = {}
            try:
                while True:
                    for spec in queue:  # keep two trials per worker in flight
                        in_flight[pool.submit(run_trial_safely, spec, data_root)] = spec
                        if len(in_flight) >= 2 * self.workers:
                            break
                    if not in_flight:
                        return
                    done, _ = concurrent.futures.wait(in_flight, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        spec = in_flight.pop(future)
                        yield future.result()
            except concurrent.futures.process.BrokenProcessPool as exc:
                for spec in in_flight.values():
                    yield failure_record(spec, RuntimeError(f"a worker process died while this trial ran ({exc})"))
                yield exc
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """Dask distributed (module doc): a scheduler address, or a LocalCluster of `workers` processes."""

    def __init__(self, address: str | None = None, workers: int = 2, retries: int = 1, threads: int = 1):
        if importlib.util.find_spec("distributed") is None:
            raise ImportError(DASK_HINT)
        if retries < 0 or workers < 1 or threads < 1:
            raise ValueError(f"DaskExecutor needs retries >= 0, workers >= 1, threads >= 1; "
                             f"got {retries}, {workers}, {threads}")
        self.address, self.workers, self.retries, self.threads = address, int(workers), int(retries), int(threads)
        self.name = (f"dask ({address})" if address
                     else f"dask LocalCluster ({self.workers} workers x {threads} threads)")

    @contextlib.contextmanager
    def _client(self, backends: set[str]):
        from distributed import Client, LocalCluster

        if self.address:
            with Client(self.address) as client:
                client.run(prepare_kernels, sorted(backends))  # one build per node: the others wait on its lock
                client.run(pin_threads, self.threads)
                yield client
            return
        prepare_kernels(backends)  # this machine is the cluster's
        with restored_environment(), LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None, silence_logs=40) as cluster, \
                Client(cluster) as client:
            client.run(pin_threads, self.threads)
            yield client

    def run(self, specs: Iterable[TrialSpec | dict], data_root: str | None = None) -> Iterator[dict[str, Any]]:
        """The records of `specs`, in the order they finish."""
        from distributed import as_completed

        specs = [spec.to_dict() if isinstance(spec, TrialSpec) else spec for spec in specs]
        if not specs:
            return
        with self._client(_backends(specs)) as client:
            futures = {}
            for spec in specs:
                key = f"minisnn-trial-{TrialSpec.from_dict(spec).key}"
                futures[client.submit(run_trial, spec, data_root, key=key, pure=False, retries=self.retries)] = spec
            try:
                for future in as_completed(futures):
                    spec = futures.pop(future)
                    try:
                        yield future.result()
                    except Exception as exc:  # noqa: BLE001 - the trial's own error, after its retries
                        yield failure_record(spec, exc)
            finally:
                client.cancel(list(futures))
