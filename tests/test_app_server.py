"""The app's server does only what it should: paths confined to the runs directory, Host names on an allow-list,
a token beyond this machine, a limit on jobs (no Streamlit needed here)."""
import json
import os

import pytest

from vaelab.access import allowed_hosts, host_allowed, host_name, token_ok
from vaelab.app import jobs
from vaelab.app.paths import PathError, check_name, confine, inside, relative
from vaelab.app.runs import find_runs, run_info
from vaelab.cli import main


@pytest.fixture
def root(tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    return tmp_path / "runs"


@pytest.mark.parametrize("name, why", [(".", "'.' and '..'"), ("..", "'.' and '..'"), ("../x", "'.' and '..'"),
                                       ("a/../../x", "'.' and '..'"), ("/etc", "absolute path"),
                                       ("~/x", "absolute path"), (".hidden", "not starting with a dot"),
                                       ("a b", "letters, digits"), ("", "a run name is needed"),
                                       ("a//b", "letters, digits")])
def test_a_run_name_that_is_not_a_folder_inside_the_runs_directory_is_refused(root, name, why):
    with pytest.raises(PathError, match=why):
        confine(root, name)


def test_names_inside_are_kept_and_a_symlink_out_is_refused(root):
    assert check_name("beta-vae_4.1") == "beta-vae_4.1"
    assert confine(root, "group/run-1") == root.resolve() / "group" / "run-1"
    (root / "out").symlink_to(root.parent / "outside")
    with pytest.raises(PathError, match="leads out of the runs directory"):
        confine(root, "out")
    with pytest.raises(PathError, match="leads out of the runs directory"):
        confine(root, "out/deeper")
    (root / "in").symlink_to(root / "a")  # a link that stays inside is a folder like any other
    assert confine(root, "in") == root.resolve() / "in"


def test_a_typed_folder_must_resolve_inside_the_runs_directory(root):
    assert relative(root, "a") == relative(root, str(root / "a")) == (root / "a").resolve()
    for typed in (str(root.parent / "outside"), "../outside", "a/../../outside", str(root), "/"):
        with pytest.raises(PathError, match="outside the runs directory"):
            relative(root, typed)
    assert not inside(root, root) and inside(root, root / "a")


def test_a_run_linked_from_outside_is_listed_as_refused_not_opened(root):
    (root.parent / "outside" / "config.yaml").write_text("version: 2\n")
    (root / "escape").symlink_to(root.parent / "outside")
    (info,) = [r for r in find_runs(root) if r.name == "escape"]
    assert "leads out of the runs directory" in info.error and not info.trained
    assert info.state == "unreadable"
    assert "leads out" in run_info(root, root.parent / "outside").error


def test_host_names_and_the_allow_list():
    assert host_name("[::1]:8501") == "::1" and host_name("LocalHost:8501") == "localhost"
    assert host_name("example.org") == "example.org" and host_name("::1") == "::1"
    hosts = allowed_hosts("127.0.0.1", ["my.box"])
    assert {"localhost", "127.0.0.1", "::1", "my.box"} <= set(hosts)
    assert host_allowed("localhost:8501", hosts) and host_allowed("my.box", hosts)
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, but the browser still sends it as Host
    assert not host_allowed("evil.example:8501", hosts) and not host_allowed(None, hosts)
    assert not host_allowed("localhost.evil.example", hosts)
    assert token_ok("s3cret", "s3cret") and not token_ok("s3cre", "s3cret") and not token_ok(None, "s3cret")


def test_serving_beyond_this_machine_needs_a_token(capsys, monkeypatch):
    monkeypatch.delenv("VAELAB_APP_TOKEN", raising=False)
    assert main(["app", "--host", "0.0.0.0", "--runs", "nowhere"]) != 0
    err = capsys.readouterr().err
    assert "--host 0.0.0.0 serves the app beyond this machine: give it a --token" in err
    assert "Traceback" not in err


def test_jobs_beyond_the_limit_are_refused_with_a_message(root, monkeypatch):
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "1")
    assert jobs.max_jobs() == 1
    busy = jobs.job_file(root / "a", "train")  # a job that runs: this test's own process
    busy.parent.mkdir()
    busy.write_text(json.dumps({"state": "running", "pid": os.getpid()}))
    assert [j.path for j in jobs.running(root)] == [busy]
    with pytest.raises(jobs.JobLimit, match=r"1 jobs are running, the most this app runs at once \(1;"):
        jobs.start(root / "b", "train", ["train"], root=root)
    assert not (root / "b").exists()
    monkeypatch.delenv(jobs.MAX_JOBS_ENV)
    assert jobs.max_jobs() == max(1, os.cpu_count() // 2)
