"""The daemon under test as a child process, shared by the Python black-box tests: where the
default model lives, and `specontext serve` started on a free loopback port, its address read
from the "listening on" line, its output kept for failure reports."""
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path


def default_model_path():
    """Mirrors DefaultModelPath() in server/serving_model.cc."""
    if os.environ.get("SPECONTEXT_CACHE"):
        cache = Path(os.environ["SPECONTEXT_CACHE"])
    elif os.environ.get("XDG_CACHE_HOME"):
        cache = Path(os.environ["XDG_CACHE_HOME"]) / "specontext"
    else:
        cache = Path.home() / ".cache" / "specontext"
    return cache / "models" / "SmolLM2-135M-Instruct"


class DaemonProcess:
    """Runs `args` (a `specontext serve` command line with --port 0) and waits until it listens."""

    def __init__(self, args, env=None, log_path=None, start_timeout_s=120):
        self.log = open(log_path, "w+") if log_path else tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        env=env)
        self.base_url = self._wait_for_listening(start_timeout_s)

    def _wait_for_listening(self, timeout_s):
        found = {}

        def read():
            for line in self.process.stdout:
                match = re.search(r"listening on (http://\S+)", line)
                if match and "url" not in found:
                    found["url"] = match.group(1)
                self.log.write(line)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while "url" not in found:
            if self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("daemon did not print 'listening on' in time:\n" + self.tail())
            time.sleep(0.05)
        return found["url"]

    def tail(self, lines=30):
        self.log.flush()
        self.log.seek(0)
        return "".join(self.log.readlines()[-lines:])

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
