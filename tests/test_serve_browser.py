"""`ifkd serve` in a real browser: headless Chromium uploads examples/chair.png, presses Reconstruct, waits
for the mesh, downloads the GLB and saves a screenshot of the page to docs/serve.png (the README's); and
in the *Several views* tab uploads three synthetic renders with their rendering_metadata.txt, presses its
button and waits for the fused mesh's GLB.

Slow (make test-browser); skipped unless gradio, selenium, chromium and chromedriver are installed:
    apt-get install chromium chromium-driver
    pip install 'gradio>=5' selenium
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "chair.png"
SCREENSHOT = ROOT / "docs" / "serve.png"
START_TIMEOUT = 120  # s: import torch + gradio, load the model, bind the port
RESULT_TIMEOUT = 120  # s: one 128^3 reconstruction on a busy 2-core machine takes a few seconds

gradio = pytest.importorskip("gradio", reason="gradio is not installed (pip install 'ifkd[app]')")
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)


def _find(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _find("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMEDRIVER = _find("chromedriver")
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "chromium and chromedriver are needed (Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python -m ifkd.commands.serve` on a free port of 127.0.0.1, in its own process -> its URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("serve") / "server.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_WAIT_POLICY": "PASSIVE"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ifkd.commands.serve", "--port", str(port), "--device", "cpu"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the server did not answer within {START_TIMEOUT}s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in containers
        "--disable-dev-shm-usage",
        "--window-size=1440,1100",
        "--hide-scrollbars",
        "--enable-unsafe-swiftshader",  # software WebGL for the 3D viewer
        "--use-angle=swiftshader",
        "--disable-gpu-sandbox",
    ):
        options.add_argument(arg)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_window_size(1440, 1100)
    driver.downloads = downloads
    driver.failure_screenshot = tmp_path / "serve-failed.png"
    driver.result_box = "#result-text textarea"
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, what: str, condition, timeout: float):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except TimeoutException:
        result = driver.find_elements("css selector", driver.result_box)
        text = result[0].get_attribute("value") if result else "(no result box)"
        driver.save_screenshot(str(driver.failure_screenshot))
        pytest.fail(
            f"timed out after {timeout:.0f}s waiting for {what}; result box: {text!r}; "
            f"screenshot: {driver.failure_screenshot}"
        )


def _upload(browser, server: str, path) -> None:
    """Open the app and put ``path`` into its image upload field."""
    from selenium.webdriver.common.by import By

    browser.get(server)
    upload = _wait(
        browser,
        "the upload field",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image input[type=file]"),
        60,
    )[0]
    upload.send_keys(str(path))


def test_upload_reconstruct_download(server, browser):
    from selenium.webdriver.common.by import By

    t0 = time.monotonic()
    _upload(browser, server, EXAMPLE)
    _wait(browser, "the uploaded image", lambda d: d.find_elements(By.CSS_SELECTOR, "#input-image img"), 30)
    browser.find_element(By.CSS_SELECTOR, "#reconstruct").click()

    glb_link = _wait(
        browser,
        "the GLB download link",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#glb-file a[href*='.glb']"),
        RESULT_TIMEOUT,
    )[0]
    text = browser.find_element(By.CSS_SELECTOR, "#result-text textarea").get_attribute("value")
    assert "faces" in text and "timings" in text and "bounding-box diagonal" in text, text
    assert browser.find_elements(By.CSS_SELECTOR, "#framed-input img"), "the framed input is not shown"
    _wait(browser, "the 3D viewer", lambda d: d.find_elements(By.CSS_SELECTOR, "#mesh-viewer canvas"), 30)

    glb_link.click()
    downloaded = _wait(
        browser,
        "the downloaded GLB",
        lambda d: [p for p in d.downloads.glob("*.glb") if p.stat().st_size > 0],
        30,
    )[0]
    data = downloaded.read_bytes()
    assert data[:4] == b"glTF", f"{downloaded.name} is not a binary glTF (starts with {data[:4]!r})"
    assert int.from_bytes(data[8:12], "little") == len(data), "GLB length field does not match the file"

    import trimesh

    mesh = trimesh.load(downloaded, force="mesh")
    assert len(mesh.faces) > 100

    time.sleep(3)  # let the viewer draw the mesh before the picture
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    print(f"upload -> mesh -> download in {time.monotonic() - t0:.1f}s; screenshot {SCREENSHOT}")


def test_a_broken_image_gives_a_readable_message(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a PNG\n" * 10)
    _upload(browser, server, broken)
    time.sleep(1)  # the upload itself
    browser.find_element(By.CSS_SELECTOR, "#reconstruct").click()

    def message(d):
        boxes = d.find_elements(By.CSS_SELECTOR, "#result-text textarea")
        value = boxes[0].get_attribute("value") if boxes else ""
        return value if value.startswith("Error") else None

    text = _wait(browser, "the error message", message, RESULT_TIMEOUT)
    assert "broken.png: not an image file" in text, text
    assert "Traceback" not in browser.page_source
    assert not browser.find_elements(By.CSS_SELECTOR, "#glb-file a[href*='.glb']")


@pytest.fixture(scope="module")
def chair_views(tmp_path_factory):
    """(three R2N2-style renders of a synthetic chair, their rendering_metadata.txt)."""
    from ifkd.data.format import METADATA_FILE, RENDER_DIR, read_index, read_views, shape_dir
    from ifkd.data.synth.generate import SynthSettings, generate_dataset

    root = tmp_path_factory.mktemp("views") / "data"
    settings = SynthSettings(per_category=3, views=3, seed=7, image_size=96, categories=("chair",))
    generate_dataset(root, settings, progress=False)
    folder = shape_dir(root, read_index(root)["splits"]["test"][0]) / RENDER_DIR
    names, _ = read_views(folder)
    return [folder / n for n in names], folder / METADATA_FILE


def test_several_views_upload_fuse_download(server, browser, chair_views):
    from selenium.webdriver.common.by import By

    files, metadata = chair_views
    browser.result_box = "#views-result-text textarea"
    t0 = time.monotonic()
    browser.get(server)
    tab = _wait(
        browser,
        "the Several views tab",
        lambda d: d.find_elements(By.XPATH, "//button[@role='tab'][contains(., 'Several views')]"),
        60,
    )[0]
    tab.click()
    images = _wait(
        browser,
        "the views' upload field",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#views-images input[type=file]"),
        30,
    )[0]
    images.send_keys("\n".join(str(f) for f in files))  # several files in one go, as a file dialog does
    browser.find_element(By.CSS_SELECTOR, "#views-metadata input[type=file]").send_keys(str(metadata))

    def uploaded(d):
        # each uploaded file is listed as its stem, its suffix and its size with a download mark
        shown = d.find_element(By.CSS_SELECTOR, "#views-images").text.splitlines()
        meta = d.find_element(By.CSS_SELECTOR, "#views-metadata").text.splitlines()
        listed = all(f.stem in shown for f in files) and sum("⇣" in line for line in shown) == len(files)
        return listed and any("⇣" in line for line in meta)

    _wait(browser, "the uploaded views and metadata", uploaded, 30)
    browser.find_element(By.CSS_SELECTOR, "#views-reconstruct").click()

    glb_link = _wait(
        browser,
        "the fused mesh's GLB link",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#views-glb-file a[href*='.glb']"),
        RESULT_TIMEOUT,
    )[0]
    text = browser.find_element(By.CSS_SELECTOR, browser.result_box).get_attribute("value")
    assert text.startswith("3 views fused (mean) -> "), text
    assert "rendering_metadata.txt, by the images' numbers" in text and "object frame" in text, text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#views-inputs img")) >= 3, "the views are not shown"
    _wait(
        browser, "the 3D viewer", lambda d: d.find_elements(By.CSS_SELECTOR, "#views-mesh-viewer canvas"), 30
    )

    with urllib.request.urlopen(glb_link.get_attribute("href"), timeout=30) as response:
        data = response.read()
    assert data[:4] == b"glTF" and int.from_bytes(data[8:12], "little") == len(data)
    import trimesh

    mesh = trimesh.load(trimesh.util.wrap_as_stream(data), file_type="glb", force="mesh")
    assert len(mesh.faces) > 100
    print(f"3 views + metadata -> fused mesh -> GLB in {time.monotonic() - t0:.1f}s")
