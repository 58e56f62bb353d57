"""The README's command lines, run the way a newcomer runs them.

A fresh copy of the repository (the files git knows: no instance/, no .env), `make run`
started once in it, then every other command of the README's ```sh blocks, as written and
in the README's order, in one shell (so `API=...` and `ORG=$(...)` carry over), each
checked for exit status 0. The commands are read from README.md every time, so the test
stays true when the README changes.

What stands in for the newcomer's own steps:
- `make install` is the suite's virtualenv: the copy's .venv links to it and make is told
  not to rebuild it (`-o .venv/.installed`); its bin directory comes first on PATH, as
  after `. .venv/bin/activate`.
- `make run` serves on a free port instead of 5000, and the commands' `127.0.0.1:5000`
  are pointed at it.
- a command that prompts (create-admin asks for a password twice) gets its answers on
  standard input; no command has a terminal.
- curl runs with --fail-with-body, so that an HTTP error in the walk-through fails like
  a non-zero exit would (a newcomer reads the answer; this test reads the status); a
  command whose comment promises a status (`# 304 until...`, `# 409 seats_taken, ...`)
  must answer that status, and that error code when one is named.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from tests import support

pytestmark = pytest.mark.slow

SERVER = "make run"
# The README's commands this test does not run, and why.
NOT_RUN = {
    "make test": "the test suite, this test included",
    "make test-fast": "the test suite, this test excluded",
    "make bench": "the benchmark: ten minutes, and a PostgreSQL server",
    "make serve": "the production server, beside make run's",
    "make schemathesis": "CI runs it on its own",
}
PASSWORD = "newcomer-password"
# The settings a developer's shell may hold; a newcomer's has none of them.
SETTINGS = set(dotenv_values(support.ROOT / ".env.example")) | {"FLASK_APP", "FLASK_DEBUG", "ADMIN_PASSWORD",
                                                                 "TEST_DATABASE_URL", "BENCH_DATABASE_URL"}
FENCE = re.compile(r"^```(?:sh|bash|shell)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
MAKE = re.compile(r"^(?:\w+=\S*\s+)*(make\s+[\w-]+)")
# A comment at the end of a command that promises its status: "# 409 seats_taken, ..."
PROMISE = re.compile(r"\s#\s*([1-5]\d\d)\b(?:\s+([a-z]+_[a-z_]+))?[^'\"]*$")


def readme_commands(text):
    """The commands of the README's shell blocks, in order: a line continued by a
    trailing backslash or an open quote is one command with the lines after it."""
    commands = []
    for block in FENCE.findall(text):
        pending = []
        for line in block.splitlines():
            pending.append(line)
            command = "\n".join(pending)
            if command.endswith("\\"):
                continue
            try:
                words = shlex.split(command, comments=True)
            except ValueError:  # an open quote: the command goes on
                continue
            if words:
                commands.append(command)
            pending = []
        assert not pending, f"unfinished command in a README block: {pending}"
    return commands


def target(command):
    match = MAKE.match(command)
    return " ".join(match.group(1).split()) if match else None


def fresh_copy(path):
    """The files git knows, copied, and the suite's virtualenv as the copy's .venv."""
    listed = subprocess.run(["git", "-C", str(support.ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout
    for name in {n for n in listed.decode().split("\0") if n}:
        if (support.ROOT / name).is_file():
            (path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(support.ROOT / name, path / name)
    assert not (path / "instance").exists() and not (path / ".env").exists()
    (path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return path


def script(commands, port, answers):
    lines = [
        "curl() { command curl --fail-with-body \"$@\"; }",
        "failed() { echo \"README command $1 exited $2\" >&2; exit 1; }",
    ]
    answered, said = shlex.quote(str(answers.with_name("status"))), shlex.quote(str(answers.with_name("said")))
    for number, command in enumerate(commands):
        command = command.replace("127.0.0.1:5000", f"127.0.0.1:{port}").replace("localhost:5000", f"localhost:{port}")
        lines.append(f"echo '--- README command {number}' >&2")
        promise = PROMISE.search(command.splitlines()[-1])
        if promise is None:
            lines.append(f"{{ {command}\n}} < {shlex.quote(str(answers))} || failed {number} $?")
            continue
        status, code = promise.groups()
        lines += [
            "curl() { command curl -w '%{stderr}\\nHTTP_STATUS %{http_code}\\n' \"$@\"; }",
            f"{{ {command}\n}} < {shlex.quote(str(answers))} > {said} 2> {answered} || failed {number} $?",
            f"cat {said}",
            f"grep -q '^HTTP_STATUS {status}$' {answered} || "
            f"{{ echo \"README command {number} answered $(grep HTTP_STATUS {answered}), not {status}\" >&2; exit 1; }}",
        ]
        if code:
            lines.append(f"grep -q '\"code\": *\"{code}\"' {said} || "
                         f"{{ echo \"README command {number} answered $(cat {said}), not {code}\" >&2; exit 1; }}")
        lines.append("curl() { command curl --fail-with-body \"$@\"; }")
    return "\n".join(["set -o pipefail", *lines, ""])


def test_every_command_of_the_readme_works_after_make_run(tmp_path):
    copy = fresh_copy(tmp_path / "eventbook")
    commands = readme_commands((copy / "README.md").read_text())
    assert SERVER in [target(c) for c in commands], "the README no longer shows `make run`"
    runnable = [c for c in commands if target(c) != SERVER and target(c) not in NOT_RUN]
    assert runnable, "no README command to run"

    env = {key: value for key, value in os.environ.items() if key not in SETTINGS}
    env["PATH"] = f"{copy / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    port = support.free_port()
    log = tmp_path / "make-run.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(["make", "run", f"PORT={port}", "-o", ".venv/.installed"], cwd=copy, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up():
            assert server.poll() is None, f"make run exited with {server.returncode}:\n{log.read_text()[-3000:]}"
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/health", verify=support.SSL, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        support.wait_until(up, 90, 0.2, "make run to serve /api/health")
        answers = tmp_path / "answers"
        answers.write_text(f"{PASSWORD}\n{PASSWORD}\n")  # every prompt, twice at most
        (tmp_path / "readme.sh").write_text(script(runnable, port, answers))
        result = subprocess.run(["bash", str(tmp_path / "readme.sh")], cwd=copy, env=env, capture_output=True,
                                text=True, timeout=300, start_new_session=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)

    failed = re.search(r"README command (\d+) (exited \d+|answered .*)", result.stderr)
    assert result.returncode == 0, (
        f"{'`' + runnable[int(failed.group(1))] + '` ' + failed.group(2) if failed else 'the commands failed'}"
        f"\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}\n--- make run\n{log.read_text()[-2000:]}"
    )
    assert result.stderr.count("--- README command") == len(runnable)
    promised = [c for c in runnable if PROMISE.search(c.splitlines()[-1])]
    assert len(promised) >= 2, promised  # the seat map's 304 and its 409 seats_taken, at least
    assert (copy / "instance" / "eventbook.db").is_file()  # the copy's own database, not the suite's
