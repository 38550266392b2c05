"""The Django admin as a person uses it: log in, open a change form, save."""

from __future__ import annotations

import re

import httpx

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

#: The superuser ``create_superuser`` makes.
USERNAME, PASSWORD = "admin", "admin-pass"


def superuser_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for ``manage.py createsuperuser --noinput``."""
    return {
        **env,
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
    }


class AdminSession:
    """A logged-in admin session on a real server (cookies, CSRF and all)."""

    def __init__(self, base_url: str, *, timeout: float = 20) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout)

    async def login(self) -> AdminSession:
        token = await self._token("/admin/login/")
        response = await self.http.post(
            "/admin/login/?next=/admin/",
            data={
                "username": USERNAME,
                "password": PASSWORD,
                "csrfmiddlewaretoken": token,
                "next": "/admin/",
            },
        )
        if response.status_code != 302:
            raise RuntimeError(f"Admin login failed: {response.status_code}")
        return self

    async def save(self, pk: int, data: str) -> httpx.Response:
        """Open resource ``pk``'s change form and save ``data`` with it."""
        url = f"/admin/selector_app/resource/{pk}/change/"
        token = await self._token(url)
        return await self.http.post(
            url, data={"data": data, "csrfmiddlewaretoken": token}
        )

    async def _token(self, url: str) -> str:
        page = await self.http.get(url)
        match = TOKEN.search(page.text)
        if match is None:
            raise RuntimeError(f"No CSRF token on {url} ({page.status_code}).")
        return match.group(1)

    async def __aenter__(self) -> AdminSession:
        return await self.login()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.http.aclose()
