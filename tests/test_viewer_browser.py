"""The viewer's page in a real browser: headless Chromium driven by Selenium (Debian's ``chromium`` and
``chromium-driver``; nothing is downloaded). A user's whole flow — open, degrade, compare with the slider, switch
the axis, continue with a reference, read the metrics, download, reload — checked on screenshots by a few pixels
and against the API's own answers."""

from __future__ import annotations

import io
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import medrestore.server.app as app
from medrestore.server.app import ViewerServer
from test_viewer import call, root, server  # noqa: F401 - pytest fixtures used by name
from test_viewer_security import slow_operation  # noqa: F401

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="headless browser tests need Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
)

from selenium.webdriver.common.by import By  # noqa: E402 - after the skip
from selenium.webdriver.support.select import Select  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

LONG_NAME = "a-very-long-file-name-of-a-brain-volume-from-a-scanner-export-with-the-series-description-in-it.nii.gz"


@pytest.fixture()
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def arrivals(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None]]:
    """``(method, path, Origin)`` of every request the viewer receives during the test."""
    seen: list[tuple[str, str, str | None]] = []
    dispatch = app.ViewerHandler._dispatch

    def recorded(handler: app.ViewerHandler, method: str) -> None:
        seen.append((method, handler.path, handler.headers.get("Origin")))
        dispatch(handler, method)

    monkeypatch.setattr(app.ViewerHandler, "_dispatch", recorded)
    return seen


def wait_for(driver: Any, condition: Any, seconds: float = 60.0) -> Any:
    return WebDriverWait(driver, seconds, poll_frequency=0.1).until(lambda d: condition(d))


def status(driver: Any) -> str:
    return driver.find_element(By.ID, "status").text


def stage_grey(driver: Any) -> np.ndarray:
    """The before/after stage as grey levels, from a screenshot of it."""
    png = driver.find_element(By.ID, "stage").screenshot_as_png
    return np.asarray(PILImage.open(io.BytesIO(png)).convert("L"), np.float64)


def images_loaded(driver: Any) -> bool:
    return bool(driver.execute_script('return ["img-before", "img-after"].every((id) => { const i = document.getElementById(id); return i.complete && i.naturalWidth > 0; })'))


def set_split(driver: Any, percent: int) -> None:
    driver.execute_script(f'const s = document.getElementById("split"); s.value = {percent}; s.dispatchEvent(new Event("input"));')


def test_a_users_whole_flow_in_headless_chromium(
    browser: Any, server: ViewerServer, root: Path, slow_operation: Any, arrivals: list[tuple[str, str, str | None]]
) -> None:
    shutil.copy(root / "clean.nii.gz", root / LONG_NAME)
    browser.get(server.url)
    wait_for(browser, lambda d: d.find_elements(By.LINK_TEXT, "clean.nii.gz"))
    browser.find_element(By.LINK_TEXT, "clean.nii.gz").click()
    wait_for(browser, lambda d: status(d) == "opened clean.nii.gz")

    # degrade: Rician noise, 5 % of the maximum
    Select(browser.find_element(By.ID, "operation")).select_by_value("degrade-rician")
    browser.find_element(By.NAME, "sigma").send_keys("0.05")
    browser.find_element(By.NAME, "relative").click()
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda d: status(d).startswith("r1: degrade-rician"))
    wait_for(browser, images_loaded)

    # the slider: left of it the clean input (flat 60 → grey 153 inside the inner block), right of it the noisy result
    set_split(browser, 50)
    grey = stage_grey(browser)
    height, width = grey.shape
    left = grey[int(0.45 * height) : int(0.55 * height), int(0.38 * width) : int(0.46 * width)]
    right = grey[int(0.45 * height) : int(0.55 * height), int(0.54 * width) : int(0.62 * width)]
    assert abs(left.mean() - 153) <= 2 and left.std() < 1.0  # the window is [0, 100]: 60 → 153
    assert right.std() > 4.0 and abs(right.mean() - 153) < 12
    set_split(browser, 100)
    assert stage_grey(browser)[int(0.45 * height) : int(0.55 * height), int(0.54 * width) : int(0.62 * width)].std() < 1.0  # all before
    set_split(browser, 0)
    assert stage_grey(browser)[int(0.45 * height) : int(0.55 * height), int(0.38 * width) : int(0.46 * width)].std() > 4.0  # all after

    # the axis: sagittal planes are A (44 voxels of 1 mm) wide and S (36 of 1.2 mm) high
    axial = browser.execute_script('const r = document.getElementById("stage").getBoundingClientRect(); return [r.width, r.height];')
    assert axial[0] / axial[1] == pytest.approx(40 / 44, rel=0.02)
    Select(browser.find_element(By.ID, "axis")).select_by_value("0")
    wait_for(browser, lambda d: d.execute_script('return document.getElementById("img-before").naturalWidth') == 44 and images_loaded(d))
    sagittal = browser.execute_script('const r = document.getElementById("stage").getBoundingClientRect(); return [r.width, r.height];')
    assert sagittal[0] / sagittal[1] == pytest.approx(44 / (36 * 1.2), rel=0.02)

    # download: the result file as written
    link = browser.find_element(By.LINK_TEXT, "download")
    with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as response:
        assert response.read() == server.viewer.studies["s1"].results["r1"].path.read_bytes()

    # continue with the clean input as reference: the metrics are the API's, and never another image's
    browser.find_element(By.XPATH, "//button[text()='continue']").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "ref-name").text == "clean.nii.gz")
    wait_for(browser, lambda d: "psnr" in d.find_element(By.ID, "metrics").text, 120)
    _, expected = call(server, "GET", "/api/studies/s2/metrics?source=input")
    cells = {row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
             for row in browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")}  # fmt: skip
    assert float(cells["psnr"]) == pytest.approx(expected["psnr"], rel=1e-4) and float(cells["ssim"]) == pytest.approx(expected["ssim"], rel=1e-4)
    shown = browser.execute_script(
        'const a = document.getElementById("after"); a.value = "reference"; a.dispatchEvent(new Event("change"));'
        'return document.getElementById("metrics").tBodies[0].textContent;'
    )  # at once after the change, before any answer
    assert shown == "computing…"
    wait_for(browser, lambda d: "∞" in d.find_element(By.ID, "metrics").text)  # the reference against itself

    # restore: non-local means; its metrics beat the noisy input's, and moving through slices asks for none again
    Select(browser.find_element(By.ID, "operation")).select_by_value("denoise-mri")
    Select(browser.find_element(By.NAME, "method")).select_by_value("nlm")
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda d: status(d).startswith("r1: denoise-mri"), 120)
    wait_for(browser, lambda d: "psnr" in d.find_element(By.ID, "metrics").text and "computing" not in d.find_element(By.ID, "metrics").text, 120)
    rows = {row.find_elements(By.TAG_NAME, "td")[0].text: [float(c.text) for c in row.find_elements(By.TAG_NAME, "td")[1:]]
            for row in browser.find_elements(By.CSS_SELECTOR, "#metrics tbody tr")}  # fmt: skip
    assert rows["psnr"][1] > rows["psnr"][0] + 3.0 and rows["ssim"][1] > rows["ssim"][0]
    asked = sum("/metrics" in path for _, path, _ in arrivals)
    for index in (5, 6, 7, 30):
        browser.execute_script(f'const s = document.getElementById("index"); s.value = {index}; s.dispatchEvent(new Event("input")); s.dispatchEvent(new Event("change"));')
    wait_for(browser, lambda d: any("index=30" in path for _, path, _ in arrivals) and images_loaded(d))
    assert sum("/metrics" in path for _, path, _ in arrivals) == asked

    # a long job shows its progress and stops on Cancel
    Select(browser.find_element(By.ID, "operation")).select_by_value("test-slow")
    browser.find_element(By.ID, "run").click()
    wait_for(browser, lambda d: "steps" in d.find_element(By.ID, "progress").text)
    assert "/2000" in browser.find_element(By.ID, "progress").text
    browser.find_element(By.ID, "cancel").click()
    wait_for(browser, lambda d: "cancelled" in status(d))
    assert browser.find_element(By.ID, "progress").text == "" and browser.find_element(By.ID, "run").is_enabled()
    assert list(server.viewer.studies["s2"].results) == ["r1"]

    # a long file name does not run under the other label
    browser.find_element(By.LINK_TEXT, LONG_NAME).click()
    wait_for(browser, lambda d: status(d) == f"opened {LONG_NAME}")
    before, after = (browser.execute_script(f'return document.getElementById("{tag}").getBoundingClientRect().toJSON();') for tag in ("tag-before", "tag-after"))
    assert before["right"] <= after["left"]

    # a reloaded page lists the studies still open and shows one
    browser.refresh()
    wait_for(browser, lambda d: len(Select(d.find_element(By.ID, "studies")).options) == 3)
    assert [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "studies")).options] == ["s1", "s2", "s3"]
    assert browser.find_element(By.ID, "study-info").text.startswith(LONG_NAME)


HOSTILE_PAGE = """<!doctype html><html><body>
<form id="form" method="POST" enctype="text/plain" target="sink" action="VIEWER/api/studies"><input name='{"path": "clean.nii.gz", "x": "' value='"}'></form>
<iframe name="sink"></iframe>
<script>
const viewer = "VIEWER";
const body = JSON.stringify({ path: "clean.nii.gz" });
window.attempts = Promise.allSettled([
  fetch(viewer + "api/studies", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body }),
  fetch(viewer + "api/studies", { method: "POST", headers: { "Content-Type": "application/json", "X-Medrestore-Token": "guess" }, body }),
  fetch(viewer + "api/files").then((r) => r.text()),
]).then((results) => results.map((r) => r.status));
document.getElementById("form").submit();
</script></body></html>"""


def test_a_hostile_page_in_the_same_browser_cannot_drive_the_viewer(
    browser: Any, server: ViewerServer, tmp_path: Path, serve_directory: Callable[[Path], str], arrivals: list[tuple[str, str, str | None]]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "evil.html").write_text(HOSTILE_PAGE.replace("VIEWER", server.url))
    hostile = serve_directory(site)
    browser.get(hostile + "evil.html")
    outcomes = browser.execute_async_script("arguments[0](await window.attempts)")
    wait_for(browser, lambda d: sum(method == "POST" for method, _, _ in arrivals) >= 2, 30)  # the no-cors fetch and the form
    assert server.viewer.studies == {}  # they arrived, and opened nothing
    assert {origin for method, _, origin in arrivals if method == "POST"} == {hostile.rstrip("/")}
    assert outcomes[1] == "rejected"  # the token header needs a preflight the viewer does not grant
    assert outcomes[2] == "rejected"  # nor may another site read the viewer's answers
    # the viewer's own page, with its token, does what they could not
    browser.get(server.url)
    wait_for(browser, lambda d: d.find_elements(By.LINK_TEXT, "clean.nii.gz"))
    browser.find_element(By.LINK_TEXT, "clean.nii.gz").click()
    wait_for(browser, lambda d: status(d) == "opened clean.nii.gz")
    assert list(server.viewer.studies) == ["s1"]
    Select(browser.find_element(By.ID, "operation")).select_by_value("harmonize")  # a model is named in a text field
    assert browser.find_element(By.NAME, "model").get_attribute("type") == "text"
    assert browser.find_element(By.NAME, "model").get_attribute("value") == "cyclegan-sim"
