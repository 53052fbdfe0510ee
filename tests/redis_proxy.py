"""A TCP proxy between a server and a real redis-server, for network faults at an exact command.

Redis sends replies in the order of the commands, so the proxy can tell
which reply answers which command. It can lose the reply of a chosen command
after Redis ran it (the connection breaks just as a late reply would make the
server's watchdog break it), and hold the commands from a chosen one on
until the test releases them (a server stuck in one phase of its work).
Nothing else is changed: every other byte reaches Redis or the server as sent.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from contextlib import suppress

import hiredis

Command = list[bytes]
Matcher = Callable[[Command], bool]


class RedisProxy:
    def __init__(self, redis_port: int) -> None:
        self._redis_port = redis_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._lose: Matcher | None = None
        self._hold: Matcher | None = None
        self.held = threading.Event()  # set once a command matched `hold_from`
        self._released = threading.Event()
        self.lost = threading.Event()  # set once a reply was lost
        self.commands: list[Command] = []  # every command that reached Redis, in order
        self._closing = False
        self._sockets: list[socket.socket] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_reply_of(self, matcher: Matcher) -> None:
        """The next command matching `matcher` runs in Redis, but its reply (and any behind it) never arrives:
        the server's connection breaks once Redis has answered it."""
        with self._lock:
            self._lose = matcher

    def hold_from(self, matcher: Matcher) -> None:
        """From the next command matching `matcher` on, commands wait in the proxy until `release`."""
        with self._lock:
            self._hold = matcher
            self._released.clear()

    def release(self) -> None:
        self._released.set()

    def close(self) -> None:
        self._closing = True
        self._released.set()
        self._listener.close()
        for sock in self._sockets:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._redis_port))
            self._sockets += [client, upstream]
            # Index (in this connection's commands) of the command whose reply is to be lost.
            cut: list[int | None] = [None]
            sent = [0]
            threading.Thread(target=self._commands, args=(client, upstream, cut, sent), daemon=True).start()
            threading.Thread(target=self._replies, args=(upstream, client, cut), daemon=True).start()

    def _commands(self, client: socket.socket, upstream: socket.socket, cut: list[int | None],
                  sent: list[int]) -> None:
        reader = hiredis.Reader()
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                with suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)
                return
            reader.feed(data)
            while (command := reader.gets()) is not False:
                with self._lock:
                    if self._hold is not None and self._hold(command):
                        self._hold = None
                        self.held.set()
                        holding = True
                    else:
                        holding = False
                    if self._lose is not None and cut[0] is None and self._lose(command):
                        self._lose = None
                        cut[0] = sent[0]
                if holding:
                    self._released.wait()
                sent[0] += 1
                self.commands.append(command)
                try:
                    upstream.sendall(hiredis.pack_command(tuple(command)))
                except OSError:
                    return

    def _replies(self, upstream: socket.socket, client: socket.socket, cut: list[int | None]) -> None:
        reader = hiredis.Reader()
        answered = 0
        while True:
            try:
                data = upstream.recv(65536)
            except OSError:
                data = b""
            if not data:
                with suppress(OSError):
                    client.close()
                return
            if cut[0] is None:
                # Counted only up to the cut; replies are forwarded as they come.
                reader.feed(data)
                while reader.gets() is not False:
                    answered += 1
                try:
                    client.sendall(data)
                except OSError:
                    return
                continue
            # From the cut on nothing more is forwarded: wait for the lost reply itself, then break the connection.
            reader.feed(data)
            while answered <= cut[0] and reader.gets() is not False:
                answered += 1
            if answered > cut[0]:
                self.lost.set()
                with suppress(OSError):
                    client.shutdown(socket.SHUT_RDWR)
                    client.close()
                with suppress(OSError):
                    upstream.close()
                return


def script_call(sha: str, *markers: str) -> Matcher:
    """Matches an EVALSHA of the script `sha` whose arguments include every marker."""
    wanted = [marker.encode() for marker in markers]

    def matches(command: Command) -> bool:
        return (len(command) > 1 and command[0].upper() == b"EVALSHA" and command[1] == sha.encode()
                and all(marker in command for marker in wanted))

    return matches
