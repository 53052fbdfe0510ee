"""A plain HTTP client with a cookie jar, for what a browser would hide: status codes and forged posts."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from typing import IO

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Message,
                         newurl: str) -> None:
        return None


class Session:
    """One cookie jar, as one browser; redirects are answers, not followed."""

    def __init__(self, base: str, language: str = "zh-CN") -> None:
        self.base = base
        self.language = language
        self.jar = http.cookiejar.CookieJar()
        self._opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def get(self, path: str) -> tuple[int, str]:
        return self._send(urllib.request.Request(self.base + path, headers={"Accept-Language": self.language}))

    def post(self, path: str, fields: dict[str, str] | list[tuple[str, str]],
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        """A form post as a browser sends it from one of the console's pages: with the console's Origin."""
        body = urllib.parse.urlencode(fields).encode()
        return self._send(urllib.request.Request(
            self.base + path, data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept-Language": self.language,
                     "Origin": self.base, **(headers or {})}))

    def get_as(self, path: str, headers: dict[str, str]) -> tuple[int, str]:
        return self._send(urllib.request.Request(self.base + path,
                                                 headers={"Accept-Language": self.language, **headers}))

    def csrf(self, path: str = "/apps") -> str:
        status, body = self.get(path)
        match = _CSRF.search(body)
        assert match, f"no CSRF token on {path} ({status})"
        return match.group(1)

    def _send(self, request: urllib.request.Request) -> tuple[int, str]:
        try:
            with self._opener.open(request, timeout=30) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
