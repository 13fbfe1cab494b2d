"""The image filesystem browser and the tag diff in a real browser: skopeo pushes two tags of a two-layer image
(the second changes ``/etc/hello`` and adds a file), the visitor browses from the tag page to ``/etc/hello``,
reads and downloads it, follows a layer link and a symlink, and diffs the two tags. File names and previewed
file contents carrying HTML/JS payloads render inert; a private repository's file, download and diff pages are
404 to anonymous visitors and to signed-in outsiders."""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import make_containers_env
from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.images import AMD64, LayoutWriter, build_multiarch_layout
from tests.support.oci import OCI_MANIFEST
from tests.support.tools import require_tool
from tests.web.conftest import shot
from tests.web.pages import XSS, assert_inert, check_accessibility, sign_in, signed_in_client, watch_scripts

EVIL_NAME = '<img src=x onerror="window.__xss=7">.txt'
EVIL_TEXT = f"<html>{XSS}<script>alert(1)</script></html>\n".encode()
BIG = b"a log line\n" * 30_000  # past the 256 KiB preview cap
PYTHON = b'def hello(name: str) -> str:\n    return f"hello {name}"  # greet\n'


@dataclass(frozen=True)
class Pushed:
    user: str
    password: str
    repo: str  # user/name
    v1: str
    v2: str


def _layout(path: Path) -> tuple[str, str]:
    writer = LayoutWriter(path)
    base = (
        {
            "bin/tool": b"#!tool\n" * 50,
            "etc/base": b"base\n",
            "bin/blob": b"\x7fELF\x00\x01\x02" * 20,
            "srv/big.log": BIG,
        },
        {"bin/sh": "tool"},
    )
    top = {f"etc/{EVIL_NAME}": b"evil name\n", "srv/evil.html": EVIL_TEXT, "srv/app.py": PYTHON}
    digests = []
    for tag, hello, extra in (
        ("v1", b"hello v1\n", {}),
        ("v2", b"hello v2, longer\n", {"etc/new": b"new\n", f"srv/{EVIL_NAME}": b"x"}),
    ):
        image = writer.image(AMD64, [base, ({"etc/hello": hello, **top, **extra}, {})], f"files-{tag}")
        writer.tag(tag, OCI_MANIFEST, image.manifest, platform=AMD64.as_dict())
        digests.append(image.manifest_digest)
    writer.finish()
    return digests[0], digests[1]


@pytest.fixture(scope="module")
def pushed(secure_server: AppServer, admin: HubAdmin, tmp_path_factory: pytest.TempPathFactory) -> Pushed:
    skopeo = require_tool("skopeo")
    user, password = admin.user("files")
    root = tmp_path_factory.mktemp("files")
    v1, v2 = _layout(root / "layout")
    env = make_containers_env(root / "containers", secure_server)
    for tag in ("v1", "v2"):
        subprocess.run(
            [skopeo, "copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", f"{user}:{password}",
             f"oci:{root / 'layout'}:{tag}", f"docker://{secure_server.host}/{user}/files:{tag}"],
            env=env.env, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return Pushed(user, password, f"{user}/files", v1, v2)


def _signed_in_page(factory: Any, server: AppServer, pushed: Pushed) -> tuple[Any, list[str]]:
    page = factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, server, pushed.user, pushed.password)
    return page, dialogs


def test_browse_to_etc_hello_read_and_download(
    browser_context_factory: Any, secure_server: AppServer, pushed: Pushed
) -> None:
    page, dialogs = _signed_in_page(browser_context_factory, secure_server, pushed)
    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v1")
    page.click("[data-testid=browse-files]")
    page.wait_for_selector("[data-testid=listing]")
    listing = page.inner_text("[data-testid=listing]")
    for name in ("bin/", "etc/", "srv/"):
        assert name in listing
    shot(page, "files-root", phone=True)

    page.click("[data-testid=listing] >> text=etc/")
    page.wait_for_selector("[data-testid=listing] >> text=hello")
    rows = {
        row.locator("td").nth(0).inner_text().strip(): row
        for row in page.locator("[data-testid=listing] tbody tr").all()
    }
    hello = rows["hello"]
    assert hello.locator("td").nth(2).inner_text() == "-rwxr-xr-x"
    assert hello.locator("td").nth(3).inner_text() == "0:0"
    assert hello.locator("td").nth(4).inner_text() == "#2"  # the top layer
    assert rows["base"].locator("td").nth(4).inner_text() == "#1"
    assert EVIL_NAME in rows  # a file name carrying markup is text
    assert_inert(page, secure_server, "/etc listing")
    shot(page, "files-etc")

    # The layer link leads to that layer's row on the tag page.
    layer_href = hello.locator("td").nth(4).locator("a").get_attribute("href")
    assert layer_href is not None
    assert layer_href.startswith(f"/r/{pushed.repo}/tags/v1#layer-")
    page.goto(secure_server.url + layer_href)
    assert page.locator(f"#{layer_href.split('#', 1)[1]}").count() == 1
    check_accessibility(page, "tag-layer-anchor")
    page.go_back()

    page.click("[data-testid=listing] >> text=hello")
    page.wait_for_selector("[data-testid=preview]")
    assert page.inner_text("[data-testid=preview] pre").strip() == "hello v1"
    crumbs = page.inner_text("[data-testid=breadcrumbs]")
    assert "etc" in crumbs
    assert "hello" in crumbs
    facts = page.inner_text("[data-testid=file-facts]")
    assert hashlib.sha256(b"hello v1\n").hexdigest() in facts
    shot(page, "files-etc-hello", phone=True)

    href = page.get_attribute("[data-testid=download]", "href")
    assert href is not None
    response = page.request.get(secure_server.url + href)
    assert response.status == 200
    assert response.body() == b"hello v1\n"
    assert response.headers["content-disposition"] == "attachment; filename*=UTF-8''hello"
    assert response.headers["content-type"] == "application/octet-stream"

    # Python is highlighted on the server (Pygments classes; no inline style, the CSP allows none).
    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v1/files/srv/app.py")
    assert page.locator("[data-testid=preview] .highlight .k").count() >= 1
    assert page.locator("[data-testid=preview] [style]").count() == 0
    shot(page, "files-highlighted")

    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v1/files/bin/blob")
    assert "binary" in page.inner_text("[data-testid=no-preview]")
    check_accessibility(page, "files-binary")
    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v1/files/srv/big.log")
    assert "larger than 256 KiB" in page.inner_text("[data-testid=no-preview]")
    big = page.request.get(secure_server.url + (page.get_attribute("[data-testid=download]", "href") or ""))
    assert big.body() == BIG
    assert page.locator("[data-testid=preview]").count() == 0

    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v1/files/bin/sh")
    page.click("[data-testid=symlink-target]")
    page.wait_for_selector("[data-testid=preview]")
    assert page.url.endswith("/files/bin/tool")
    assert dialogs == []


def test_hostile_file_content_renders_inert(
    browser_context_factory: Any, secure_server: AppServer, pushed: Pushed
) -> None:
    page, dialogs = _signed_in_page(browser_context_factory, secure_server, pushed)
    page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v2/files/srv/evil.html")
    page.wait_for_selector("[data-testid=preview]")
    assert page.inner_text("[data-testid=preview] pre").strip() == EVIL_TEXT.decode().strip()
    assert_inert(page, secure_server, "evil.html preview")
    shot(page, "files-xss-preview")
    response = page.goto(f"{secure_server.url}/r/{pushed.repo}/tags/v2/files/etc/{EVIL_NAME}")
    assert response is not None
    assert response.status == 200
    assert EVIL_NAME in page.inner_text("[data-testid=breadcrumbs]")
    assert_inert(page, secure_server, "evil name")
    shot(page, "files-xss-name")
    assert dialogs == []


def test_private_files_are_404_to_anonymous_and_outsiders(
    secure_server: AppServer, admin: HubAdmin, pushed: Pushed
) -> None:
    outsider, outsider_pw = admin.user("fout")
    paths = [
        f"/r/{pushed.repo}/tags/v1/files",
        f"/r/{pushed.repo}/tags/v1/files/etc",
        f"/r/{pushed.repo}/tags/v1/files/etc/hello",
        f"/r/{pushed.repo}/tags/{pushed.v1}/files/etc/hello",
        f"/r/{pushed.repo}/tags/v1/download/etc/hello",
        f"/r/{pushed.repo}/diff?from=v1&to=v2",
    ]
    with httpx.Client(base_url=secure_server.url, timeout=30) as anonymous:
        for path in paths:
            response = anonymous.get(path)
            assert response.status_code == 404, path
            assert "hello v1" not in response.text
    with signed_in_client(secure_server, outsider, outsider_pw) as client:
        for path in paths:
            assert client.get(path).status_code == 404, path
    with signed_in_client(secure_server, pushed.user, pushed.password) as client:
        for path in paths:
            assert client.get(path).status_code == 200, path
        assert client.get(f"/r/{pushed.repo}/tags/v1/download/etc/hello").content == b"hello v1\n"
        assert client.get(f"/r/{pushed.repo}/tags/v1/files/nothing").status_code == 404
        assert client.get(f"/r/{pushed.repo}/tags/v1/download/etc").status_code == 400  # a directory


def test_diff_two_tags_shows_the_changed_file(
    browser_context_factory: Any, secure_server: AppServer, pushed: Pushed
) -> None:
    page, dialogs = _signed_in_page(browser_context_factory, secure_server, pushed)
    page.goto(f"{secure_server.url}/r/{pushed.repo}")
    page.fill("[data-testid=diff-form] #diff-from", "v1")
    page.fill("[data-testid=diff-form] #diff-to", "v2")
    page.click("[data-testid=diff-form] button[type=submit]")
    page.wait_for_selector("[data-testid=diff-files]")
    assert page.inner_text("[data-testid=diff-counts]") == "2 added · 0 removed · 1 changed"
    rows = {
        row.locator("td").nth(0).inner_text(): row.locator("td").all_inner_texts()
        for row in page.locator("[data-testid=diff-files] tbody tr").all()
    }
    assert rows["/etc/hello"][1:4] == ["changed", "file", "9 → 17"]
    assert "sha256" in rows["/etc/hello"][5]
    assert "size" in rows["/etc/hello"][5]
    assert rows["/etc/new"][1] == "added"
    assert rows[f"/srv/{EVIL_NAME}"][1] == "added"  # a hostile name in a diff is text too
    layers = page.inner_text("[data-testid=diff-layers]")
    assert "1 shared" in layers
    assert "removed" in layers
    assert "added" in layers
    config = page.inner_text("[data-testid=diff-config]")
    assert "labels" in config
    assert "files-v1" in config
    assert "files-v2" in config
    assert page.locator("[data-testid=diff-truncated]").count() == 0
    assert_inert(page, secure_server, "diff")
    shot(page, "diff", phone=True)
    page.click("[data-testid=diff-files] a:text-is('/etc/hello')")
    page.wait_for_selector("[data-testid=preview]")
    assert page.inner_text("[data-testid=preview] pre").strip() == "hello v2, longer"

    # By digest too; an unknown reference is said on the form.
    page.goto(f"{secure_server.url}/r/{pushed.repo}/diff?from={pushed.v1}&to=v2")
    assert page.inner_text("[data-testid=diff-counts]") == "2 added · 0 removed · 1 changed"
    response = page.goto(f"{secure_server.url}/r/{pushed.repo}/diff?from=v1&to=nope")
    assert response is not None
    assert response.status == 404
    assert "nope" in page.inner_text("[data-testid=diff-error]")
    shot(page, "diff-unknown-tag")
    assert dialogs == []


def test_platform_chooser_of_an_index(
    browser_context_factory: Any, secure_server: AppServer, admin: HubAdmin, tmp_path: Path
) -> None:
    skopeo = require_tool("skopeo")
    busybox = Path(require_tool("busybox")).resolve()
    user, password = admin.user("multi")
    layout = build_multiarch_layout(tmp_path / "layout", user, busybox=busybox)
    env = make_containers_env(tmp_path / "containers", secure_server)
    subprocess.run(
        [skopeo, "copy", "--all", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds",
         f"{user}:{password}", layout.ref, f"docker://{secure_server.host}/{user}/multi:latest"],
        env=env.env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    page = browser_context_factory().new_page()
    sign_in(page, secure_server, user, password)
    page.goto(f"{secure_server.url}/r/{user}/multi/tags/latest")
    links = page.locator("[data-testid=browse-files]")
    assert links.count() == 2
    links.nth(1).click()
    page.wait_for_selector("[data-testid=preview], [data-testid=listing]")
    assert "linux/arm64/v8" in page.inner_text("[data-testid=files-title]")
    page.goto(f"{secure_server.url}/r/{user}/multi/tags/latest/files/etc/dockyard-arch")
    assert page.inner_text("[data-testid=preview] pre").strip() == "amd64"  # linux/amd64 by default
    chooser = page.locator("[data-testid=platform-chooser] a")
    assert chooser.all_inner_texts() == ["linux/amd64", "linux/arm64/v8"]
    shot(page, "files-platforms")
    chooser.nth(1).click()
    page.wait_for_selector("[data-testid=preview]")
    assert page.inner_text("[data-testid=preview] pre").strip() == "arm64"
    assert "platform=linux%2Farm64%2Fv8" in page.url
    href = page.get_attribute("[data-testid=download]", "href")
    assert href is not None
    assert page.request.get(secure_server.url + href).body() == b"arm64\n"
