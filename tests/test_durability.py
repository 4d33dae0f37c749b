"""What survives a crash: atomic rewrites, metrics that hold one record per finished epoch, checksummed checkpoints
with a previous one to fall back on, one trainer per run directory, --overwrite leaving nothing behind, `vaelab check`.
Faults are injected in-process (a failing os.replace or write, ENOSPC, a kill simulated between two writes)."""
import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vaelab import checkpoint, durable
from vaelab.cli import main
from vaelab.durable import VaelabWarning, write_atomic
from vaelab.rundir import RunDir
from vaelab.train import Trainer

TINY = ["--dataset", "digits", "--set", "model.hidden=[16]", "--set", "model.latent_dim=2",
        "--set", "train.batch_size=64", "--set", "train.progress=false"]  # 20 steps an epoch


def train(out, *args):
    return main(["train", *TINY, "--out", str(out), *args])


def weights(path):
    return checkpoint.load_weights(path)[0]


def same_weights(a: Path, b: Path) -> None:
    for name in ("last", "best"):
        wa, wb = weights(a / "checkpoints" / f"{name}.safetensors"), weights(b / "checkpoints" / f"{name}.safetensors")
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=f"{name} {k}")


def records(run: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in RunDir(run).records()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of 4 epochs (80 steps)."""
    ref = tmp_path_factory.mktemp("ref") / "run"
    assert train(ref, "--epochs", "4") == 0
    return ref


# ---------------------------------------------------------------------------------------- atomic writes
def test_a_failing_rename_or_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("old")

    def no_rename(src, dst):
        raise OSError(errno.EIO, "injected", str(dst))

    with monkeypatch.context() as m:
        m.setattr(os, "replace", no_rename)
        with pytest.raises(OSError, match="injected"):
            write_atomic(path, "new")
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]

    real_write = os.write

    def half_then_full_disk(fd, data):  # the first write goes half-way, then the disk is full
        if ".tmp" in os.readlink(f"/proc/self/fd/{fd}"):
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    with monkeypatch.context() as m:
        m.setattr(os, "write", half_then_full_disk)
        with pytest.raises(OSError, match="No space left"):
            write_atomic(path, "new content " * 1000)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    write_atomic(path, "new")
    assert path.read_text() == "new"


def test_unsynced_writes_replace_whole_without_flushing_to_disk(tmp_path, monkeypatch):
    """write_atomic(sync=False) (progress.json, rewritten every second) still replaces the file whole, but makes no
    fsync: a training epoch wrote it ~10 times at ~5 ms each when it did."""
    path, synced = tmp_path / "progress.json", []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    write_atomic(path, "{}", sync=False)
    assert path.read_text() == "{}" and not synced and [p.name for p in tmp_path.iterdir()] == ["progress.json"]
    write_atomic(path, "[]")
    assert path.read_text() == "[]" and synced


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_says_which(reference, tmp_path, monkeypatch,
                                                                               capsys):
    run = tmp_path / "run"
    assert train(run, "--epochs", "2") == 0
    last, prev = run / "checkpoints" / "last.safetensors", run / "checkpoints" / "prev.safetensors"
    kept = last.read_bytes(), prev.read_bytes()
    real_save = checkpoint.save_file

    def full_disk(tensors, filename, metadata=None):  # half a file written, then ENOSPC
        real_save(tensors, filename, metadata=metadata)
        Path(filename).write_bytes(Path(filename).read_bytes()[:1000])
        raise OSError(errno.ENOSPC, "No space left on device", str(filename))

    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "No space left on device" in err
    assert f"the last checkpoint, {last} (step 40) is kept" in err
    assert (last.read_bytes(), prev.read_bytes()) == kept
    assert not [p for p in run.rglob("*.tmp")]
    monkeypatch.undo()
    # epoch 3's record was appended before its checkpoint failed: the resume drops it and trains the epoch again
    assert [r["epoch"] for r in RunDir(run).records()] == [1, 2, 3]
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 0
    same_weights(run, reference)
    assert records(run) == records(reference)


def test_a_read_only_run_directory_is_one_line(reference, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    real_open = os.open

    def read_only(path, flags, *args, **kw):  # as a read-only mount answers (root ignores chmod)
        if str(path).startswith(str(run)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Read-only file system" in err and "give it write access" in err


# --------------------------------------------------------------------------------------------- metrics
def test_a_kill_between_an_epochs_record_and_its_checkpoint_leaves_one_record_per_epoch(reference, tmp_path,
                                                                                        monkeypatch):
    run = tmp_path / "run"
    saves = []
    real_save = checkpoint.save

    def killed_at_the_third_epoch_end(path, *args, **kw):
        saves.append(Path(path).name)
        if saves.count("last.safetensors") == 3:
            raise SystemExit("killed")  # after epoch 3's record, before its checkpoint
        real_save(path, *args, **kw)

    monkeypatch.setattr(checkpoint, "save", killed_at_the_third_epoch_end)
    with pytest.raises(SystemExit):
        train(run, "--epochs", "4")
    monkeypatch.undo()
    assert [r["epoch"] for r in RunDir(run).records()] == [1, 2, 3]
    assert checkpoint.load(run / "checkpoints" / "last.safetensors")[1]["step"] == 40
    assert main(["check", str(run)]) == 0  # a record from after the last checkpoint is a note, not damage
    assert main(["train", "--resume", str(run)]) == 0
    assert records(run) == records(reference)
    same_weights(run, reference)


def test_a_torn_last_line_is_skipped_with_a_warning_and_repaired_on_resume(reference, tmp_path, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:3]) + lines[3][:40])  # epoch 4's append cut by a kill
    with pytest.warns(VaelabWarning, match=r"skipped line 4 \(torn"):
        assert [r["epoch"] for r in RunDir(run).records()] == [1, 2, 3]  # what the app's Runs page reads
    assert main(["check", str(run)]) == 1
    assert "damaged  metrics.jsonl: line 4 (torn" in capsys.readouterr().out
    assert main(["train", "--resume", str(run)]) == 0  # complete: the resume only repairs
    err = capsys.readouterr().err
    assert "dropped line 4" in err and "wrote back epoch 4's record from the checkpoint" in err
    assert records(run) == records(reference)
    assert main(["check", str(run)]) == 0


# ----------------------------------------------------------------------------------------- checkpoints
def test_a_damaged_last_checkpoint_falls_back_to_the_previous_one(reference, tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "--epochs", "3") == 0
    last = run / "checkpoints" / "last.safetensors"
    data = bytearray(last.read_bytes())
    data[-7] ^= 1  # one bit of a tensor
    last.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match="is damaged: its content does not match the sha256"):
        checkpoint.load(last)
    assert main(["check", str(run)]) == 1
    assert "falls back to checkpoints/prev.safetensors (step 40)" in capsys.readouterr().out
    assert main(["train", "--resume", str(run), "--epochs", "4"]) == 0
    captured = capsys.readouterr()
    assert "resuming from" in captured.err and "prev.safetensors, the checkpoint before it (step 40)" in captured.err
    assert f"resuming {run} at step 40 of 80" in captured.out
    same_weights(run, reference)  # bit-exact, from the checkpoint before the damaged one
    assert records(run) == records(reference)
    assert checkpoint.load(run / "checkpoints" / "prev.safetensors")[1]["step"] == 60  # the damaged one is gone


def test_stale_temporary_files_are_removed_at_the_next_start(reference, tmp_path, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    litter = [run / "checkpoints" / "last.safetensorsa8x2k1.tmp",  # vaelab 0.1.0's checkpoint temporaries
              run / f".config.yaml.{dead.stdout.strip()}.00beef.tmp", run / f".progress.json.{dead.stdout.strip()}.tmp"]
    for path in litter:
        path.write_bytes(bytes(1 << 20))
    alive = run / f".eval.json.{os.getpid()}.abcdef.tmp"  # a writer still at work
    alive.write_text("{")
    assert main(["check", str(run)]) == 0
    assert "3 temporary file(s) (3.1 MB) left by killed writers" in capsys.readouterr().out
    assert main(["train", "--resume", str(run)]) == 0
    assert "removed 3 temporary file(s) (3.1 MB)" in capsys.readouterr().err
    assert not any(p.exists() for p in litter) and alive.exists()


# --------------------------------------------------------------------------------------------- the lock
def test_a_second_trainer_is_refused_naming_the_first(reference, tmp_path, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    holder = subprocess.Popen([sys.executable, "-c", f"""
import sys
from vaelab import lock
lock.acquire({str(run)!r})
print("locked", flush=True)
sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        for argv in (["train", "--resume", str(run), "--epochs", "5"],
                     ["train", *TINY, "--epochs", "1", "--out", str(run), "--overwrite"]):
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert len(err.splitlines()) == 1 and f"is in use by process {holder.pid} on " in err
        assert main(["check", str(run)]) == 0
        assert f"in use by process {holder.pid}" in capsys.readouterr().out
    finally:
        holder.communicate("", timeout=60)
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 0  # released on exit
    assert not (run / ".vaelab.lock").exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(reference, tmp_path, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    (run / ".vaelab.lock").write_text(json.dumps({"pid": pid, "host": "elsewhere", "command": "vaelab train"}))
    assert not durable.pid_alive(pid)
    assert main(["train", "--resume", str(run), "--epochs", "5"]) == 0
    err = capsys.readouterr().err
    assert f"took over the lock of {run} from process {pid} on elsewhere" in err
    assert not (run / ".vaelab.lock").exists()


# ----------------------------------------------------------------------------------------- --overwrite
def test_overwrite_leaves_nothing_of_the_old_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert train(run, "--epochs", "3", "--set", "train.checkpoint_every=7") == 0
    assert main(["eval", str(run)]) == 0
    (run / "prior").mkdir()
    (run / "prior" / "config.yaml").write_text("version: 2\n")
    (run / "disentanglement.json").write_text("{}")
    assert train(run, "--steps", "5", "--overwrite") == 0
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    assert names == ["checkpoints", "checkpoints/best.safetensors", "checkpoints/last.safetensors", "config.yaml",
                     "curves.png", "metrics.jsonl", "progress.json", "run.json"]
    assert [r["step"] for r in RunDir(run).records()] == [5]
    assert not list(tmp_path.glob(".run.overwritten-*"))


def test_an_overwrite_killed_before_the_new_run_began_leaves_the_old_run(reference, tmp_path, monkeypatch, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    def killed(self, cfg, facts):
        raise KeyboardInterrupt  # after the old run was moved aside, before the new config is written

    monkeypatch.setattr(RunDir, "prepare", killed)
    assert train(run, "--steps", "5", "--overwrite") == 130
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    # a SIGKILL at the same moment: no exception handler runs; the next start puts the old run back
    aside = tmp_path / f".run.overwritten-{os.getpid()}"
    os.rename(run, aside)
    run.mkdir()
    assert main(["check", str(run)]) == 0
    assert "an --overwrite was killed before it finished" in capsys.readouterr().out
    assert main(["train", "--resume", str(run)]) == 0
    assert "put back the run in" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before and not aside.exists()


# ------------------------------------------------------------------------------------------ vaelab check
def test_check_reads_everything_and_says_what_to_do(reference, tmp_path, capsys):
    run = Path(shutil.copytree(reference, tmp_path / "run"))
    (run / "prior").mkdir()  # a train-prior killed while it started: nothing lost
    assert main(["check", str(run)]) == 0
    out = capsys.readouterr().out
    for line in ("note     prior/config.yaml: missing: its training was stopped before it began",
                 "ok       config.yaml: version 2, vae on digits", "ok       checkpoints/last.safetensors: step 80, "
                 "sha256 verified", "ok       metrics.jsonl: 4 epoch record(s)", f"{run}: nothing damaged"):
        assert line in out
    (run / "eval.json").write_text('{"nelbo": 3')
    (run / "jobs").mkdir()
    (run / "jobs" / "train.json").write_text("")
    best = run / "checkpoints" / "best.safetensors"
    best.write_bytes(best.read_bytes()[:-10])
    (run / "run.json").write_text("[]")
    assert main(["check", str(run)]) == 1
    out = capsys.readouterr().out
    assert f"damaged  eval.json: unreadable" in out and f"run `vaelab eval {run}` again" in out
    assert "damaged  jobs/train.json: unreadable" in out and "damaged  run.json:" in out
    assert "damaged  checkpoints/best.safetensors: checkpoint" in out and "delete it: commands then load" in out
    assert f"{run}: 4 damaged" in out
    assert main(["check", str(tmp_path / "nothing")]) == 2


# ---------------------------------------------------------------------------------------- train-prior
def test_a_stopped_train_prior_says_how_to_continue_and_that_works(tmp_path, capsys):
    import signal
    import time

    run = tmp_path / "vq"
    assert main(["train", "--model", "vqvae", *TINY, "--set", "vq.hidden=16", "--set", "vq.codebook_size=16",
                 "--set", "vq.dim=4", "--steps", "20", "--out", str(run)]) == 0
    small = ["--set", "code_prior.layers=2", "--set", "code_prior.dim=8"]
    proc = subprocess.Popen([sys.executable, "-m", "vaelab.cli", "train-prior", str(run), "--epochs", "1000", *small],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "prior" / "progress.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and f"continue with `vaelab train-prior {run} --resume`" in err, err
    done = len(RunDir(run / "prior").records())  # epochs finished before the signal (on a fast machine, several)
    assert main(["train-prior", str(run), "--resume", "--epochs", str(done + 2)]) == 0
    assert [r["epoch"] for r in RunDir(run / "prior").records()] == list(range(1, done + 3))
    # stopped before its first checkpoint: the resume starts it over (it used to crash on the missing checkpoint)
    shutil.rmtree(run / "prior" / "checkpoints")
    (run / "prior" / "metrics.jsonl").write_text("")
    capsys.readouterr()
    assert main(["train-prior", str(run), "--resume", "--epochs", "1"]) == 0
    assert "prior saved in" in capsys.readouterr().out
