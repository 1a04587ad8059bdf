"""``scripts/kafka-dev up`` is deterministic: down/up ten times in a row.

It used to fail about once in four right after ``down`` ("broker exited during
startup") while the previous JVM still held the ports. ``up`` now waits until
they are free, retries a failed start once, and prints the JVM's last lines when
it gives up. This restarts the shared dev broker, under its lock.
"""

import re
import socket
import time

import pytest

from .conftest import kafka_dev

PORTS = (9092, 9093, 9094, 9095)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.usefixtures("broker_lock")
def test_down_up_ten_times_in_a_row() -> None:
    timings = []
    for cycle in range(10):
        down = kafka_dev("down")
        assert down.returncode == 0, f"cycle {cycle} down: {down.stderr[-3000:]}"
        started = time.monotonic()
        up = kafka_dev("up")
        timings.append(time.monotonic() - started)
        assert up.returncode == 0, f"cycle {cycle} up: {up.stderr[-3000:]}"
        # A broker of another checkout on the same ports would make this pass
        # without a restart: each cycle must start this checkout's broker.
        assert "kafka-dev: starting broker\n" in up.stderr, up.stderr
        assert "broker up on 127.0.0.1:9092" in up.stderr
        assert (
            kafka_dev("status").returncode == 0
        ), f"cycle {cycle}: up but not answering"
        assert all(_listening(port) for port in PORTS), f"cycle {cycle}: a port closed"
    print("up after down, seconds: " + ", ".join(f"{t:.1f}" for t in timings))


@pytest.mark.usefixtures("broker_lock")
def test_a_start_that_fails_twice_shows_the_jvms_last_lines() -> None:
    # A broker that cannot bind: another process holds its PLAINTEXT port.
    assert kafka_dev("down").returncode == 0
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        holder.bind(("127.0.0.1", 9092))
        holder.listen(1)
        started = time.monotonic()
        up = kafka_dev("up", env={"KAFKA_DEV_PORT_WAIT": "2"})
        elapsed = time.monotonic() - started
    finally:
        holder.close()
    try:
        assert up.returncode != 0
        log = up.stderr
        # It waited for the port and said so, started, retried once, and gave
        # up with the JVM's own words about the bind.
        assert re.search(r"port 9092 on 127.0.0.1 still in use after 2s", log), log
        assert "starting broker again (retry)" in log, log
        assert log.count("broker exited during startup") == 2, log
        assert "giving up; the JVM's last lines:" in log, log
        tail = log.split("giving up; the JVM's last lines:", 1)[1]
        assert re.search(
            r"Address already in use|BindException|failed to bind", tail
        ), tail
        print(f"gave up after {elapsed:.1f} s")
    finally:
        again = kafka_dev("up")
        assert again.returncode == 0, again.stderr[-3000:]
