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


@pytest.mark.parametrize("edit", ["value changed", "not JSON", "no seal", "another job's",
                                  "a list"])
def test_a_result_edited_in_the_store_is_ignored_with_a_warning_and_the_job_runs_again(
        tmp_path, edit):
    import json

    calls = []

    def work(folder):
        calls.append(1)
        return {"value": 42}

    store = JobStore(tmp_path)
    runner = LocalRunner(store, log=lambda m: None)
    job = Job("demo", {"a": 1}, work)
    runner.run([job])
    path = store.folder(job) / "result.json"
    entry = json.loads(path.read_text())
    other = Job("demo", {"a": 2}, work)
    if edit == "value changed":
        path.write_text(path.read_text().replace("42", "99"))
    elif edit == "not JSON":
        path.write_text("{ not json")
    elif edit == "no seal":
        path.write_text(json.dumps({k: v for k, v in entry.items() if k != "sha256"}))
    elif edit == "another job's":
        runner.run([other])
        path.write_bytes((store.folder(other) / "result.json").read_bytes())
    else:
        path.write_text("[1, 2]")
    calls.clear()
    with pytest.warns(RuntimeWarning, match=r"ignoring the job result cache .*result\.json"):
        assert runner.run([job])[0]["value"] == 42
    assert calls == [1]  # measured again
    assert store.stored(job)["value"] == 42  # and rewritten
    assert runner.run([job])[0]["value"] == 42 and calls == [1]
