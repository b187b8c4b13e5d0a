"""The job the CLI process hands the namespace stage (rootless.create.protocol): what arrives is
what was sent, objects and fds included, over a real socket pair between two processes."""

import os
import stat

from rootless.create import protocol
from rootless.oci import mounts, namespaces


def _job(**fields) -> protocol.InitJob:
    mount = mounts.Mount("/data", None, "/srv", 4096, "", [], True, None, recursive=(1, 2))
    fields.setdefault("config", {"process": {"args": ["true"], "env": []}, "linux": {"namespaces": []}})
    fields.setdefault("ns_plan", namespaces.NamespacePlan([("network", "/run/netns/x")], True, ["pid", "ipc"], True))
    fields.setdefault("mount_plan", [mount, mounts.Symlink("/proc/self/fd", "/dev/fd")])
    return protocol.InitJob(container_id="c1", seccomp_filter=None, state_dir_fd=None, console_fd=None, **fields)


def _roundtrip(job: protocol.InitJob) -> protocol.InitJob:
    parent, child = protocol.make_socket_pair()
    try:
        parent.send_job(job)
        return child.receive_job()
    finally:
        parent.close()
        child.close()


def test_data_and_plan_objects_arrive_as_sent() -> None:
    got = _roundtrip(_job(bpf=b"\x00\x01", count=3, flags=(1, "a")))
    assert got.config == {"process": {"args": ["true"], "env": []}, "linux": {"namespaces": []}}
    assert (got.bpf, got.count, got.flags) == (b"\x00\x01", 3, (1, "a"))
    assert isinstance(got.ns_plan, namespaces.NamespacePlan)
    assert got.ns_plan.join == [("network", "/run/netns/x")] and got.ns_plan.unshare_flags == (
        namespaces.FLAGS["pid"] | namespaces.FLAGS["ipc"])
    mount, link = got.mount_plan
    assert isinstance(mount, mounts.Mount) and isinstance(link, mounts.Symlink)
    assert (mount.destination, mount.source, mount.flags, mount.recursive, mount.bind) == (
        "/data", "/srv", 4096, (1, 2), True)
    assert mount.tree_fd is None  # the class's default, never set on the instance
    assert (link.target, link.path) == ("/proc/self/fd", "/dev/fd")


def test_fds_travel_beside_the_data_and_are_close_on_exec(tmp_path) -> None:
    (tmp_path / "f").write_text("x")
    state_dir = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    read_end, write_end = os.pipe()
    job = _job()
    job.state_dir_fd, job.console_fd = state_dir, write_end
    job.mount_plan[0].tree_fd = read_end
    parent, child = protocol.make_socket_pair()
    pid = os.fork()
    if pid == 0:  # the receiver is another process, as the stage is: its fds are its own
        try:
            parent.close()
            got = child.receive_job()
            ok = (os.stat("f", dir_fd=got.state_dir_fd).st_size == 1
                  and stat.S_ISFIFO(os.fstat(got.console_fd).st_mode)
                  and stat.S_ISFIFO(os.fstat(got.mount_plan[0].tree_fd).st_mode)
                  and not any(os.get_inheritable(fd) for fd in (got.state_dir_fd, got.console_fd)))
            os.write(got.console_fd, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    child.close()
    parent.send_job(job)
    os.close(write_end)
    os.close(state_dir)
    assert os.read(read_end, 2) == b"ok"
    os.waitpid(pid, 0)
    os.close(read_end)
    parent.close()


def test_a_big_job_arrives_whole() -> None:
    # Bigger than a socket's buffer: several writes and reads.
    big = {"process": {"args": ["x" * 100] * 40000, "env": []}, "linux": {"namespaces": []}}
    parent, child = protocol.make_socket_pair()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            got = child.receive_job()
            child.send("got", size=len(got.config["process"]["args"]), after=got.after)
        finally:
            os._exit(0)
    child.close()
    parent.send_job(_job(config=big, after="end"))
    assert parent.receive() == {"type": "got", "size": 40000, "after": "end"}
    os.waitpid(pid, 0)
    parent.close()


def test_end_of_file_before_a_job_is_none() -> None:
    parent, child = protocol.make_socket_pair()
    parent.close()
    assert child.receive_job() is None
    child.close()


def test_a_peer_gone_with_a_message_unread_reads_as_end_of_file() -> None:
    # A socket closed with data unread makes its peer's read fail with ECONNRESET: the same
    # news as end of file (the stage died before it read "mapped").
    parent, child = protocol.make_socket_pair()
    parent.send("mapped")
    child.close()
    assert parent.receive() is None
    parent.close()


def test_a_stage_the_front_started_is_taken_only_while_it_runs() -> None:
    """The front's ROOTLESS_STAGE names a child of ours; one that has already exited (it could
    not start Python) is not used, and fork() then makes a stage of its own."""
    from rootless.create import stagefork
    for alive in (True, False):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            if alive:
                os.read(read_end, 1)
            os._exit(0)
        if not alive:
            while not os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT):
                pass
        environ = {"ROOTLESS_STAGE": f"{pid} {write_end}"}
        stagefork.from_environment(environ)
        assert environ == {}
        if alive:
            stage = stagefork.fork()
            assert (stage.pid, stage.channel.write_fd) == (pid, write_end)
            assert not os.get_inheritable(write_end)
            stage.discard()  # kills and reaps it
            assert stage.pid is None
        else:
            assert stagefork._started is None
            try:
                os.fstat(write_end)
            except OSError:
                pass
            else:
                raise AssertionError("the dead stage's fd is still open")
        os.close(read_end)
