"""What the web client does, by hand, for tests that drive the API as a browser would: the access
token in memory, the refresh token in the cookie, exactly as the server set it.

requests keeps Secure cookies off plain http (browsers exempt localhost), so the refresh cookie
travels by hand. (The installable client, clients/python's AuthSession, does the same for scripts;
these tests keep a hand-made one to see each cookie and answer as it is.)
"""

from __future__ import annotations

import requests

PASSWORD = "correct horse battery"


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.access_token: str | None = None
        self.refresh_token: str | None = None

    def _remember(self, response: requests.Response) -> None:
        set_cookie = response.headers.get("Set-Cookie", "")
        if set_cookie.startswith("refresh_token="):
            self.refresh_token = set_cookie.split(";", 1)[0].split("=", 1)[1] or None  # '' clears it
        if response.ok and response.headers.get("Content-Type") == "application/json":
            self.access_token = response.json().get("access_token", self.access_token)

    def post_credentials(self, path: str, body: dict) -> requests.Response:
        response = self.http.post(f"{self.base}{path}", json=body)
        self._remember(response)
        return response

    def cookie_call(self, path: str) -> requests.Response:
        headers = {"Cookie": f"refresh_token={self.refresh_token}"} if self.refresh_token else {}
        response = self.http.post(f"{self.base}{path}", headers=headers)
        self._remember(response)
        return response

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.access_token}", **kwargs.pop("headers", {})}
        return self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs)
