import pytest

from synsample.experiments.jobs import Job, JobStore, LocalRunner


def test_jobs_are_cached_by_config_and_failed_jobs_rerun(tmp_path):
    calls = []

    def work(folder):
        calls.append(folder.name)
        if len(calls) == 1:
            raise KeyboardInterrupt  # interrupted part way: no result is written
        return {"value": 42}

    store = JobStore(tmp_path)
    runner = LocalRunner(store, log=lambda m: None)
    job = Job("demo", {"a": 1}, work)
    with pytest.raises(KeyboardInterrupt):
        runner.run([job])
    assert not store.done(job)
    assert runner.run([job])[0]["value"] == 42
    assert runner.run([Job("demo", {"a": 1}, work)])[0]["value"] == 42
    assert len(calls) == 2  # the third run was served from the cache
    assert Job("demo", {"a": 2}, work).key != job.key


def test_two_runs_on_one_store_compute_a_job_once(tmp_path):
    import threading
    import time

    calls, logs = [], []
    started = threading.Event()

    def work(folder):
        calls.append(folder.name)
        started.set()
        time.sleep(0.3)  # the second run arrives while the first computes
        return {"value": len(calls)}

    store = JobStore(tmp_path)
    results = {}

    def run(who):
        results[who] = LocalRunner(store, log=logs.append).run([Job("demo", {"a": 1}, work)])[0]

    first = threading.Thread(target=run, args=("first",))
    first.start()
    started.wait(5)
    run("second")
    first.join()
    assert len(calls) == 1
    assert results["first"] == results["second"]
    assert any(m.startswith("[waiting] demo") and "pid" in m for m in logs)
