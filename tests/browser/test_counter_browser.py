"""The counter in a real browser (Debian's chromium driven by Playwright) against real processes."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from edgenode.sync.nodeconfig import write_certs_template
from tests.integration.conftest import CLI, LG, HubProc, make_node, run, running_hub, serving_node

CHROMIUM = "/usr/bin/chromium"
PW = "madoguchi-2026"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Site:
    hub: HubProc
    node: Path
    url: str
    person: dict  # type: ignore[type-arg]


def _add_user(hub: HubProc, name: str, role: str) -> None:
    subprocess.run(
        [*CLI, "user", "add", "--data", str(hub.data), "--name", name, "--role", role, "--lg-code", LG],
        input=PW + "\n",
        text=True,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    with running_hub(tmp_path, residents=300) as hub:
        _add_user(hub, "tanaka", "clerk")
        _add_user(hub, "suzuki", "supervisor")
        node = make_node(tmp_path, hub.url, hub.token("honcho-1"), "honcho-1")
        write_certs_template(node, LG, "門川町", "門川　一郎", replace=True)
        with open(node / "node.toml", "a", encoding="utf-8") as f:
            f.write("cookie_secure = false\noffline_after = 3.0\n")
        run("node", "sync", "--data", str(node), "--once")
        records = [json.loads(x) for x in hub.export().splitlines()]
        person = next(r for r in records if r["status"] == "住民" and r.get("kana") and r["relationship"] == "世帯主")
        with serving_node(node, tmp_path) as url:
            yield Site(hub, node, url, person)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (./dev does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def _login(page: Page, site: Site, user: str) -> None:
    page.goto(f"{site.url}/")
    assert "/login" in page.url
    page.fill("#login-user", user)
    page.fill("#login-password", PW)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}/")


def test_a_clerk_logs_in_finds_a_resident_by_kana_and_gets_the_pdf(
    site: Site, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    _login(page, site, "tanaka")
    kana = site.person["kana"].replace("\u3000", " ")
    page.fill("#q", kana.replace("ー", ""))  # the clerk types without 長音: still found
    page.keyboard.press("Enter")
    page.wait_for_selector("table.results")
    page.click(f"a[href='/person/{site.person['atena_no']}']")
    page.wait_for_selector("h1:has-text('住民の確認')")
    page.click("text=証明書を請求する")
    page.click("button:has-text('確認画面へ')")
    page.wait_for_selector("text=交付内容の確認")
    with page.expect_download() as dl:
        page.click("button:has-text('交付する')")
    pdf = tmp_path / "out.pdf"
    dl.value.save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert site.person["name"].split("\u3000")[0] in text and "証明する" in text
    page.goto(f"{site.url}/issuances")
    assert "件数 1 件" in page.inner_text("p.totals").replace("\u3000", " ")
    page.screenshot(path=str(tmp_path / "issuances.png"))


def test_the_offline_banner_appears_when_the_hub_stops(site: Site, browser: Browser) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    _login(page, site, "tanaka")
    assert "通常運用" in page.inner_text(".banner")
    site.hub.stop()
    deadline = time.monotonic() + 30
    while "縮退運転中" not in page.inner_text(".banner"):
        assert time.monotonic() < deadline, "the banner never switched to offline"
        time.sleep(1)
        page.reload()
    assert "データ基準日時" in page.inner_text(".banner")
    # the counter keeps working offline
    page.fill("#q", site.person["atena_no"])
    page.keyboard.press("Enter")
    page.wait_for_selector(f"a[href='/person/{site.person['atena_no']}']")


def test_roles_and_cross_site_posts_are_refused_in_the_browser(site: Site, browser: Browser) -> None:
    page = browser.new_page()
    _login(page, site, "tanaka")
    r = page.goto(f"{site.url}/admin")
    assert r is not None and r.status == 403 and "権限がありません" in page.content()
    # a page from elsewhere posting to the node with the clerk's cookies is refused
    page.set_content(
        f'<form id=f method=post action="{site.url}/admin/mode"><input name=action value=force_offline></form>'
    )
    with page.expect_navigation():
        page.evaluate("document.getElementById('f').submit()")
    assert "403" in page.content() or "権限" in page.content() or "不正" in page.content()
    st = json.loads(run("node", "status", "--data", str(site.node), "--json").stdout)
    assert not st["forced_offline"]


def test_the_admin_page_draws_its_charts_without_breaking_the_csp(site: Site, browser: Browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    _login(page, site, "suzuki")
    page.goto(f"{site.url}/admin")
    charts = page.locator("svg.lagchart")
    assert charts.count() == 2
    for i in range(2):
        box = charts.nth(i).bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 100
    assert (page.locator("svg.lagchart title").first.text_content() or "").startswith("過去24時間")
    page.click("button:has-text('今すぐ同期')")
    page.wait_for_selector("p.notice:has-text('同期ループを起こしました')")
    page.screenshot(path=str(tmp_path / "admin.png"), full_page=True)
    assert not [m for m in console if "Content Security Policy" in m], console
